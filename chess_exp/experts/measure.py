"""The synthetic-experts measurement: does a model trained on a panel's games transcend the panel?

One pipeline, resumable stage by stage, in ``out``:

1. ``games/train.pgn``: ``games`` games between the panel's experts (:func:`generate_games`);
2. ``data/``: the same file through ``chess prepare`` (move tokens);
3. ``model/``: ``chess train`` with a preset (``small_cpu``), ``train_iters`` steps;
4. ``rating/``: every player against the Stockfish ladder (``levels`` at ``limit``), colours
   alternating, ``rating_games`` games per level: each expert (its exact policy), the exact mixture
   at each of ``mixture_temperatures`` (no learning involved: the theory's f̂_τ and f̂_max), and the
   model with the ``exact`` move policy at each of ``temperatures``; MLE Elo with a 95% interval;
5. ``agreement``: on positions of ``heldout_games`` fresh panel games (another seed, never trained
   on), how often the model's most probable move is a most probable move of the exact mixture, the
   model's mean probability on it, and the mean KL(mixture || model);
6. ``results.json`` and ``results.md`` (the table), also printed.

``transcendence chess experts measure`` runs it with :data:`FULL` (sized for about an hour on 2
cores), ``transcendence chess experts demo`` with :data:`DEMO` (a few minutes); ``--key=value``
overrides any field.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import chess
import numpy as np

from chess_exp.experts.generate import MAX_MOVES, generate_games
from chess_exp.experts.oracle import Oracle
from chess_exp.experts.panel import MixturePolicy, anchor_player, build_experts, get_panel

__all__ = ["MeasureConfig", "DEMO", "FULL", "measure", "results_table", "agreement"]


@dataclass(frozen=True, kw_only=True)
class MeasureConfig:
    """One run of the synthetic-experts measurement."""

    panel: str = "noisy3"  # preset panel (chess_exp.experts.panel.PANELS)
    out: Path = Path("runs/experts-noisy3")  # run directory
    seed: int = 0  # training games use (seed, g); held-out games (seed + 1, g); rating games (seed, ...)
    games: int = 5000  # training games between the panel's experts
    max_moves: int = MAX_MOVES  # full moves before a game is a draw (generation and rating)
    workers: int = 0  # processes for generation and prepare (0: all cores)
    val_fraction: float = 0.05  # share of the training games held out for validation loss (by game id hash)
    train_preset: str = "small_cpu"  # chess_exp.model.train.PRESETS entry
    train_iters: int = 1200  # optimizer steps
    train_minutes: float = 0.0  # stop training after this much wall time (0: no limit)
    train_overrides: tuple[str, ...] = ()  # TrainConfig overrides, e.g. --train_overrides=--model.n_layer=6
    threads: int = 1  # torch threads (training and play)
    levels: tuple[int, ...] = (1, 2, 3)  # Stockfish Skill Levels of the ladder (ratings: STOCKFISH_LEVEL_RATINGS)
    limit: str = "nodes=20000"  # the ladder's search limit (EngineLimit.parse)
    rating_games: int = 20  # games per (player, level), colours alternating
    temperatures: tuple[float, ...] = (0.0, 0.01, 0.1, 0.3, 0.5, 1.0)  # the model's temperatures
    mixture_temperatures: tuple[float, ...] = (1.0, 0.0)  # the exact mixture's temperatures
    mixture_kind: Literal["prior", "posterior"] = "prior"  # which ideal mixture plays (see panel.py)
    mode: Literal["logit", "prob"] = "logit"  # temper mode
    rate_experts: bool = True  # rate each expert too
    model: bool = True  # False: no games, no training; rate only the experts and the exact mixture
    heldout_games: int = 100  # fresh panel games whose positions measure agreement
    heldout_positions: int = 1000  # at most this many of their positions (evenly spaced)
    engines: int = 2  # Stockfish processes serving the ladder
    in_flight: int = 48  # rating games played at once
    stockfish: str | None = None  # Stockfish binary (default: chess_exp.play.engines.find_stockfish)
    cache_dir: Path | None = None  # oracle cache (default: <out>/cache)
    # a `chess tournament` run's results.json (same panel oracle): its lower anchors join the ladder as
    # opponents at the ratings it gave them on the levels' scale, so a weak player gets a finite rating
    anchor_ratings: Path | None = None  # a tournament's results.json: its rated anchors join the ladder


# about 4.5 minutes of CPU (measured: 600 games, 300 steps); a few minutes on 2 idle cores
DEMO = MeasureConfig(out=Path("runs/experts-demo"), games=500, train_iters=200, rating_games=4,
                     heldout_games=20, heldout_positions=300, in_flight=32)
# sized for about an hour on 2 otherwise idle cores
FULL = MeasureConfig()


def _log(message: str) -> None:
    print(f"[experts] {time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def _cache_dir(config: MeasureConfig) -> Path:
    return config.cache_dir if config.cache_dir is not None else config.out / "cache"


def _player_keys(config: MeasureConfig, expert_names: list[str], *, model: bool = True
                 ) -> dict[str, dict[str, Any]]:
    """key -> description of every rated player, in table order."""
    keys: dict[str, dict[str, Any]] = {}
    if config.rate_experts:
        for name in expert_names:
            keys[f"expert:{name}"] = {"kind": "expert", "name": name}
    for t in config.mixture_temperatures:
        keys[f"mixture@{t:g}"] = {"kind": "mixture", "temperature": t, "mixture_kind": config.mixture_kind}
    for t in (config.temperatures if model else ()):
        keys[f"model@{t:g}"] = {"kind": "model", "temperature": t}
    return keys


def measure(config: MeasureConfig, *, progress: bool = True) -> dict[str, Any]:
    """Run (or resume) every stage; return the results dict (also written to ``out/results.json``)."""
    import torch

    from transcendence.config import write_run_metadata

    panel = get_panel(config.panel)
    # read (and refused) before anything is written
    anchors = load_anchor_ratings(config.anchor_ratings, panel, config.limit) if config.anchor_ratings else {}
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    write_run_metadata(out, config)
    torch.set_num_threads(config.threads)
    timings: dict[str, float] = {}

    ckpt: Path | None = None
    agree: dict[str, Any] = {}
    if config.model:
        ckpt = _train_stages(config, panel, timings, progress=progress)
    rating = _timed(timings, "rating_s", lambda: _rate(config, panel, ckpt, anchors, progress=progress))
    if ckpt is not None:
        agree = _timed(timings, "agreement_s", lambda: _agreement_stage(config, panel, ckpt, progress=progress))

    results = {"config": {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(config).items()},
               "panel": {"name": panel.name, "description": panel.description, "engine": panel.engine.tag,
                         "experts": [dataclasses.asdict(e) for e in panel.experts],
                         "weights": panel.probabilities.tolist()},
               "players": rating, "agreement": agree, "timings": timings,
               "train": _train_summary(out / "model") if config.model else {}}
    results["verdict"] = verdict(results)
    (out / "results.json").write_text(json.dumps(results, indent=2, default=_json_default) + "\n")
    table = results_table(results)
    (out / "results.md").write_text(table + "\n")
    print(table)
    return results


def _timed(timings: dict[str, float], key: str, fn):
    t0 = time.perf_counter()
    value = fn()
    timings[key] = time.perf_counter() - t0
    return value


def _train_stages(config: MeasureConfig, panel, timings: dict[str, float], *, progress: bool) -> Path:
    """Stages 1-3: the panel's games, prepared data, the trained model; returns the checkpoint."""
    out = Path(config.out)
    # 1. games
    t0 = time.perf_counter()
    _log(f"generating {config.games} games of panel {panel.name} -> {out / 'games/train.pgn'}")
    train_pgn = generate_games(panel, config.games, out / "games" / "train.pgn", seed=config.seed,
                               workers=config.workers or None, cache_dir=_cache_dir(config),
                               stockfish=config.stockfish, max_moves=config.max_moves, progress=progress)
    timings["generate_s"] = time.perf_counter() - t0

    # 2. prepare
    t0 = time.perf_counter()
    data_dir = out / "data"
    if not (data_dir / "meta.json").exists():
        from chess_exp.data.prepare import prepare
        _log(f"preparing {train_pgn} -> {data_dir}")
        prepare([train_pgn], data_dir, tokenizer="move", workers=config.workers or 0, progress=progress,
                val_fraction=config.val_fraction, force=True)
    timings["prepare_s"] = time.perf_counter() - t0

    # 3. train
    t0 = time.perf_counter()
    from chess_exp.model.train import PRESETS, checkpoint_path, train
    if config.train_preset not in PRESETS:
        raise ValueError(f"train_preset: unknown {config.train_preset!r}; choose one of {', '.join(PRESETS)}")
    base = PRESETS[config.train_preset]
    train_config = dataclasses.replace(
        base, data_dir=data_dir, out_dir=out / "model", max_iters=config.train_iters,
        max_minutes=config.train_minutes, num_threads=config.threads,
        eval_interval=max(config.train_iters // 4, 1), eval_acc_games=min(base.eval_acc_games, 100))
    if config.train_overrides:
        from transcendence.config import apply_overrides
        train_config = apply_overrides(train_config, list(config.train_overrides))
    ckpt = checkpoint_path(out / "model")
    done_marker = out / "model" / "measure_done.json"  # training finished (max_iters or max_minutes)
    if not (_trained(ckpt, config.train_iters) or done_marker.exists()):
        _log(f"training {config.train_preset} for {config.train_iters} steps -> {out / 'model'}")
        train(train_config)
        done_marker.write_text(json.dumps({"train_iters": config.train_iters,
                                           "train_minutes": config.train_minutes}) + "\n")
    timings["train_s"] = time.perf_counter() - t0
    return ckpt


def _json_default(x: Any) -> Any:
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serialisable: {type(x)}")


def _trained(ckpt: Path, iters: int) -> bool:
    if not ckpt.exists():
        return False
    from chess_exp.model.checkpoints import read_checkpoint_step
    return (read_checkpoint_step(ckpt) or 0) >= iters


def _train_summary(run_dir: Path) -> dict[str, Any]:
    """The last logged training and validation losses."""
    path = run_dir / "metrics.jsonl"
    summary: dict[str, Any] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            for key, value in record.items():
                if isinstance(value, (int, float)):
                    summary[key] = value
    return summary


def load_anchor_ratings(path: Path, panel, limit: str | None = None) -> dict[str, tuple[float, float]]:
    """``{name: (random-move rate, Elo on the levels' scale)}`` of the lower anchors rated by a
    ``chess tournament`` run (its ``results.json``); they must use ``panel``'s oracle and, when
    ``limit`` is given, have been rated against levels searching with that limit."""
    what = f"--anchor_ratings: {path}"
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} not found (run `transcendence chess tournament` with --levels first)") from None
    except (OSError, ValueError) as exc:
        raise ValueError(f"{what} is not a tournament's results.json ({exc})") from None
    if not isinstance(data, dict) or "ratings" not in data or "anchor_eps" not in data:
        raise ValueError(f"{what} is not a tournament's results.json (no ratings or anchor_eps)")
    if data.get("oracle") != panel.engine.tag:
        raise ValueError(f"{what} rated anchors over the oracle {data.get('oracle')}, this panel uses "
                         f"{panel.engine.tag}; rate them with this panel's oracle")
    if limit is not None and data.get("limit") != limit:
        raise ValueError(f"{what} rated anchors against levels at {data.get('limit')}, this ladder searches "
                         f"at {limit}; rate them with the same --limit")
    out = {}
    for row in data["ratings"]:
        if row.get("kind") != "anchor":
            continue
        elo = row.get("elo_abs")
        if elo is None or not math.isfinite(elo):
            raise ValueError(f"{what}: anchor {row['player']} has no finite rating on the levels' scale "
                             f"({elo}); play more anchor or level games")
        out[row["player"]] = (float(data["anchor_eps"][row["player"]]), float(elo))
    if not out:
        raise ValueError(f"{what} holds no rated anchors (run the tournament with --anchors and --levels)")
    return out


def _rate(config: MeasureConfig, panel, ckpt: Path | None, anchors: dict[str, tuple[float, float]], *,
          progress: bool) -> dict[str, Any]:
    """Every player against the levels (and ``anchors``: name -> (random-move rate, rating))."""
    from chess_exp.data.tokenizers import get_tokenizer
    from chess_exp.model.checkpoints import load_model
    from chess_exp.play.engines import EngineLimit, StockfishPool
    from chess_exp.play.games import MatchConfig, ladder_specs, play_games, score_for
    from chess_exp.play.players import DistributionPlayer, EnginePlayer, ModelPlayer
    from chess_exp.play.ratings import STOCKFISH_LEVEL_RATINGS, mle_elo

    for level in config.levels:
        if level not in STOCKFISH_LEVEL_RATINGS:
            raise ValueError(f"levels: {level} has no known rating (have {sorted(STOCKFISH_LEVEL_RATINGS)})")
    rating_of = {f"L{level}": STOCKFISH_LEVEL_RATINGS[level] for level in config.levels}
    rating_of.update({name: elo for name, (_, elo) in anchors.items()})
    oracle = Oracle(panel.engine, cache_dir=_cache_dir(config), stockfish=config.stockfish)
    experts = build_experts(panel, oracle)
    mixture = MixturePolicy(experts, panel.probabilities, kind=config.mixture_kind,
                            name=f"{panel.name}-mixture-{config.mixture_kind}")
    keys = _player_keys(config, [e.name for e in experts], model=ckpt is not None)
    players: dict[str, Any] = {}
    model_temps = {}
    model_player = None
    for key, info in keys.items():
        if info["kind"] == "expert":
            expert = next(e for e in experts if e.name == info["name"])
            players[key] = DistributionPlayer(expert, 1.0, name=key)
        elif info["kind"] == "mixture":
            players[key] = DistributionPlayer(mixture, info["temperature"], mode=config.mode, name=key)
        else:
            model_temps[key] = info["temperature"]
    if model_temps:
        assert ckpt is not None
        model, meta = load_model(ckpt)
        tokenizer = get_tokenizer(meta["tokenizer"])
        model_player = ModelPlayer(model, tokenizer, policy="exact", temperature=model_temps, mode=config.mode,
                                   name="model")
        for key in model_temps:
            players[key] = model_player
    for name, (eps, _) in anchors.items():
        players[name] = anchor_player(eps, oracle)
    opponents = [f"L{level}" for level in config.levels] + list(anchors)  # anchors last: level games keep their seeds
    specs = []
    for n, key in enumerate(keys):
        specs += ladder_specs(key, opponents, config.rating_games, seed=config.seed, prefix=f"{key}-vs-",
                              seed_key=(n,), headers={"Panel": panel.name, "Limit": config.limit},
                              tags={"player": key})
    _log(f"rating {len(keys)} players: {len(specs)} games against levels {list(config.levels)} at {config.limit}"
         + (f" and anchors {', '.join(anchors)}" if anchors else ""))
    try:
        with StockfishPool(config.engines, config.stockfish, limit=EngineLimit.parse(config.limit)) as pool:
            for level in config.levels:
                players[f"L{level}"] = EnginePlayer(pool, level)
            records = play_games(specs, players, out_dir=config.out / "rating",
                                 config=MatchConfig(max_moves=config.max_moves, in_flight=config.in_flight),
                                 progress=progress)
    finally:
        oracle.close()
    rating: dict[str, Any] = {}
    for key, info in keys.items():
        scores, opp = [], []
        wdl: dict[str, list[int]] = {}
        for r in records:
            if r.tags.get("player") != key:
                continue
            colour = r.tags["player_colour"]
            s = score_for(r, colour)
            opponent = r.tags["opponent"]
            scores.append(s)
            opp.append(rating_of[opponent])
            row = wdl.setdefault(opponent, [0, 0, 0])
            row[0 if s == 1 else 1 if s == 0.5 else 2] += 1
        est = mle_elo(scores, opp)
        rating[key] = {**info, "elo": est.elo, "lo": est.lo, "hi": est.hi, "games": len(scores),
                       "score": float(np.mean(scores)) if scores else math.nan, "wdl": wdl}
    return rating


def agreement(model, tokenizer, mixture: MixturePolicy, boards: list[chess.Board],
              sans: list[tuple[str, ...]], *, batch: int = 64, progress: bool = False) -> dict[str, float]:
    """How closely the model follows the exact mixture on the given positions.

    Returns the fraction of positions where the model's most probable move is a most probable move
    of the mixture (``argmax_agreement``), the mean probability the model puts on the mixture's
    argmax set (``p_on_argmax``), the same for a uniform policy over the legal moves (the floor of
    a model that learned nothing, ``uniform_p_on_argmax``), and the mean KL(mixture || model) in
    nats (``kl``).
    """
    from chess_exp.play.players import ModelPlayer
    from transcendence import argmax_policy

    player = ModelPlayer(model, tokenizer, policy="exact", temperature=1.0)
    hits, p_on, p_uniform, kls = [], [], [], []
    iterator = range(0, len(boards), batch)
    if progress:
        from tqdm import tqdm
        iterator = tqdm(iterator, desc="agreement", unit="batch", file=sys.stderr, dynamic_ncols=True)
    for start in iterator:
        chunk = slice(start, start + batch)
        dists = player.move_distributions(boards[chunk], sans[chunk])
        for board, (moves, q) in zip(boards[chunk], dists):
            mix_moves, p = mixture(board)
            order = [moves.index(m) for m in mix_moves]  # the model's moves in the mixture's order
            q = np.asarray(q, dtype=float)[order]
            best = argmax_policy(p[None, :])[0] > 0
            hits.append(bool(best[int(np.argmax(q))]))
            p_on.append(float(q[best].sum()))
            p_uniform.append(float(best.sum() / len(p)))
            support = p > 0
            kls.append(float(np.sum(p[support] * (np.log(p[support]) - np.log(np.maximum(q[support], 1e-300))))))
    return {"positions": len(hits), "argmax_agreement": float(np.mean(hits)) if hits else math.nan,
            "p_on_argmax": float(np.mean(p_on)) if p_on else math.nan,
            "uniform_p_on_argmax": float(np.mean(p_uniform)) if p_uniform else math.nan,
            "kl": float(np.mean(kls)) if kls else math.nan}


def heldout_positions(pgn: Path, limit: int) -> tuple[list[chess.Board], list[tuple[str, ...]]]:
    """Every position (with its SAN history) of the games in ``pgn`` where a move was played,
    thinned evenly to at most ``limit``."""
    import chess.pgn
    boards, sans = [], []
    with open(pgn) as f:
        while (game := chess.pgn.read_game(f)) is not None:
            board = game.board()
            history: list[str] = []
            for move in game.mainline_moves():
                boards.append(board.copy())
                sans.append(tuple(history))
                history.append(board.san(move))
                board.push(move)
    if len(boards) > limit > 0:
        keep = np.linspace(0, len(boards) - 1, limit).round().astype(int)
        boards, sans = [boards[i] for i in keep], [sans[i] for i in keep]
    return boards, sans


def _agreement_stage(config: MeasureConfig, panel, ckpt: Path, *, progress: bool) -> dict[str, Any]:
    from chess_exp.data.tokenizers import get_tokenizer
    from chess_exp.model.checkpoints import load_model

    if config.heldout_games <= 0:
        return {}
    pgn = generate_games(panel, config.heldout_games, config.out / "games" / "heldout.pgn",
                         seed=config.seed + 1, workers=config.workers or None, cache_dir=_cache_dir(config),
                         stockfish=config.stockfish, max_moves=config.max_moves, progress=progress)
    boards, sans = heldout_positions(pgn, config.heldout_positions)
    model, meta = load_model(ckpt)
    tokenizer = get_tokenizer(meta["tokenizer"])
    out: dict[str, Any] = {}
    with Oracle(panel.engine, cache_dir=_cache_dir(config), stockfish=config.stockfish) as oracle:
        experts = build_experts(panel, oracle)
        for kind in ("prior", "posterior"):
            mix = MixturePolicy(experts, panel.probabilities, kind=kind)
            out[kind] = agreement(model, tokenizer, mix, boards, sans, progress=progress)
    return out


def _fmt_elo(row: dict[str, Any]) -> str:
    elo, lo, hi = row["elo"], row["lo"], row["hi"]
    if not math.isfinite(elo):
        return f"{'>' if elo > 0 else '<'} {lo if elo > 0 else hi:.0f}"
    lo_s = f"{lo:.0f}" if math.isfinite(lo) else "-inf"
    hi_s = f"{hi:.0f}" if math.isfinite(hi) else "+inf"
    return f"{elo:.0f} [{lo_s}, {hi_s}]"


def verdict(results: dict[str, Any]) -> dict[str, Any]:
    """Compare every player with the best expert: point estimates and interval separation."""
    players = results["players"]
    experts = {k: v for k, v in players.items() if v["kind"] == "expert"}
    if not experts:
        return {}
    best_key = max(experts, key=lambda k: experts[k]["elo"])
    best = experts[best_key]
    out: dict[str, Any] = {"best_expert": best_key, "best_expert_elo": best["elo"],
                           "best_expert_interval": [best["lo"], best["hi"]]}
    for key, row in players.items():
        if row["kind"] == "expert":
            continue
        out[key] = {"above_point": bool(row["elo"] > best["elo"]),
                    "above_interval": bool(row["lo"] > best["hi"])}
    return out


def results_table(results: dict[str, Any]) -> str:
    """The table as Markdown."""
    cfg = results["config"]
    tr = results.get("train") or {}
    trained = "no model (experts and the exact mixture only)" if not cfg.get("model", True) else (
               f"{cfg['train_preset']} {tr.get('step', cfg['train_iters'])} steps (val loss "
               f"{tr.get('val_loss', math.nan):.3f}, val next-move accuracy {tr.get('val_move_acc', math.nan):.3f})")
    if not cfg.get("model", True):
        cfg = {**cfg, "games": 0}
    lines = [f"Panel `{results['panel']['name']}` ({results['panel']['description']}); oracle "
             f"{results['panel']['engine']}; {cfg['games']} training games; {trained}; ladder levels "
             f"{list(cfg['levels'])} at {cfg['limit']}"
             + (f" and the lower anchors rated in {cfg['anchor_ratings']}" if cfg.get("anchor_ratings") else "")
             + f", {cfg['rating_games']} games per opponent per player; MLE Elo with 95% interval.",
             "", "| player | Elo [95% CI] | games | score | W/D/L per opponent |", "|---|---|---|---|---|"]
    for key, row in results["players"].items():
        wdl = ", ".join(f"{lvl} {w}/{d}/{l}" for lvl, (w, d, l) in sorted(row["wdl"].items()))
        lines.append(f"| {key} | {_fmt_elo(row)} | {row['games']} | {row['score']:.2f} | {wdl} |")
    v = results.get("verdict") or {}
    if v:
        lines += ["", f"Best expert: {v['best_expert']} ({_fmt_elo(results['players'][v['best_expert']])})."]
        above = [k for k, x in v.items() if isinstance(x, dict) and x["above_interval"]]
        point = [k for k, x in v.items() if isinstance(x, dict) and x["above_point"] and not x["above_interval"]]
        lines.append("Above the best expert's interval (lower bound > its upper bound): "
                     + (", ".join(above) if above else "none") + ".")
        lines.append("Above its point estimate only: " + (", ".join(point) if point else "none") + ".")
    agree = results.get("agreement") or {}
    if agree:
        lines += ["", "| held-out positions: model vs exact mixture | positions | argmax agreement | "
                  "P_model(mixture argmax) | uniform baseline | KL(mixture‖model) |", "|---|---|---|---|---|---|"]
        for kind, a in agree.items():
            lines.append(f"| {kind} mixture | {a['positions']} | {a['argmax_agreement']:.3f} | "
                         f"{a['p_on_argmax']:.3f} | {a['uniform_p_on_argmax']:.3f} | {a['kl']:.3f} |")
    t = results.get("timings") or {}
    if t:
        lines += ["", "Wall time (s): " + ", ".join(f"{k[:-2]} {v:.0f}" for k, v in t.items())]
    return "\n".join(lines)
