"""``transcendence chess eval``: play Stockfish at several temperatures and rate the model.

::

    transcendence chess eval --checkpoint runs/small_cpu-1300 --temperatures 0.001,0.1,0.5,1 \\
        --levels 1,3,5 --games 100 --policy exact --limit nodes=20000 --out runs/eval-1300

For every temperature the model plays ``--games`` games against each Stockfish level, half as
White and half as Black (PAPER.md §3.5). All games of all temperatures are in flight together:
the model scores every waiting position in one batch, and a pool of Stockfish processes plays the
engine moves meanwhile. The run directory gets

- ``config.json`` (the resolved :class:`EvalConfig`, command line, commit, versions),
- ``games.pgn`` and ``games.jsonl`` (every game; an interrupted run resumes from them),
- ``results.json``: per temperature, the paper's sequential Glicko-2 (rating, RD, +-2 RD band),
  the order-free MLE Elo with its 95% interval, W/D/L per level, illegal-attempt rate, forfeits,
- ``results.md``: the same as a table, and ``rating_temperature.png/.pdf`` (Figure 1's form).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from chess_exp.play.games import GameRecord, GameSpec, MatchConfig, play_games, score_for
from chess_exp.play.ratings import STOCKFISH_LEVEL_RATINGS, glicko2_sequential, mle_elo, wdl_table

__all__ = ["EvalConfig", "add_arguments", "main", "evaluate", "summarize", "eval_specs"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class EvalConfig:
    """One evaluation run."""

    checkpoint: str  # checkpoint file or training run dir
    out: str  # run directory for games and results
    temperatures: tuple[float, ...] = (0.001, 0.01, 0.1, 0.3, 0.5, 0.75, 1.0, 1.5)  # the paper's grid
    levels: tuple[int, ...] = (1, 3, 5)  # Stockfish Skill Levels (ratings: STOCKFISH_LEVEL_RATINGS)
    games: int = 100  # games per (temperature, level), colours alternating
    policy: Literal["exact", "sampled"] = "exact"  # move-level distribution, or the paper's char sampling
    mode: Literal["logit", "prob"] = "logit"  # temper mode for the exact policy
    limit: str = "nodes=20000"  # Stockfish per move: nodes=N | depth=D | time=SECONDS (paper: time=0.1)
    skill: Literal["emulated", "native"] = "emulated"  # repeatable Skill Level, or Stockfish's own
    engines: int = 2  # Stockfish processes in the pool
    in_flight: int = 64  # games played at the same time
    max_moves: int = 89  # full moves before a game is stopped (the paper's rule)
    adjudicate: Literal["draw", "engine"] = "draw"  # games at the move limit: draws or Stockfish verdict
    seed: int = 0  # base seed; game (t, level, i) uses (seed, round(t*1e6), level, i)
    threads: int = 1  # torch threads for the model
    device: str = "cpu"  # torch device for the model
    stockfish: str | None = None  # Stockfish binary (else STOCKFISH_PATH, PATH, /usr/games/stockfish)
    cap: float | None = None  # the training data's rating cap, drawn dashed in the figure (None: from checkpoint)


def eval_specs(config: EvalConfig, *, model_name: str, headers: dict[str, str]) -> list[GameSpec]:
    """The games of a run, in the paper's order: per temperature, level by level, game by game."""
    specs = []
    for t in config.temperatures:
        key = _model_key(t)
        for level in config.levels:
            for i in range(config.games):
                white = i % 2 == 0
                opponent = f"L{level}"
                specs.append(GameSpec(
                    game_id=f"t{t:g}-L{level}-{i:04d}", white=key if white else opponent,
                    black=opponent if white else key,
                    seed=(config.seed, int(round(t * 1_000_000)), level, i),
                    headers={**headers, "Temperature": f"{t:g}", "Level": str(level),
                             "Policy": config.policy, "Limit": config.limit, "Skill": config.skill,
                             "BaseSeed": str(config.seed)},
                    tags={"temperature": t, "level": level, "model_colour": "white" if white else "black",
                          "model": model_name}))
    return specs


def _model_name(path: Path) -> str:
    """``runs/NAME/checkpoints/ckpt.pt`` or ``NAME/ckpt.pt`` -> NAME; any other file -> its stem."""
    path = path.resolve()
    if path.parent.name == "checkpoints":
        return path.parent.parent.name
    if path.name == "ckpt.pt" and path.parent.name:
        return path.parent.name
    return path.stem


def _model_key(t: float) -> str:
    return f"model@{t:g}"


def evaluate(config: EvalConfig, *, progress: bool = True) -> dict[str, Any]:
    """Play (or resume) all games of ``config``, rate them, write results; return the results dict."""
    import torch

    from chess_exp.data.tokenizers import get_tokenizer
    from chess_exp.model.gpt import load_model
    from chess_exp.play.engines import EngineLimit, StockfishPool
    from chess_exp.play.games import engine_adjudicator
    from chess_exp.play.players import EnginePlayer, ModelPlayer
    from transcendence.config import write_run_metadata

    _validate(config)
    limit = EngineLimit.parse(config.limit)
    torch.set_num_threads(config.threads)
    model, meta = load_model(config.checkpoint, device=config.device)
    tokenizer = get_tokenizer(meta["tokenizer"])
    model_name = meta.get("name") or _model_name(Path(meta.get("path", config.checkpoint)))
    cap = config.cap if config.cap is not None else _cap_from_meta(meta)
    out = Path(config.out)
    _check_same_evaluation(out, config)
    write_run_metadata(out, config, extra={"model": {"name": model_name, "step": meta.get("step"),
                                                     "tokenizer": meta["tokenizer"], "cap": cap}})
    headers = {"Event": "transcendence chess eval", "Model": model_name, "Checkpoint": str(config.checkpoint),
               "Step": str(meta.get("step")), "Tokenizer": str(meta["tokenizer"])}
    specs = eval_specs(config, model_name=model_name, headers=headers)
    player = ModelPlayer(model, tokenizer, policy=config.policy, mode=config.mode,
                         temperature={_model_key(t): t for t in config.temperatures}, name=model_name)
    match = MatchConfig(max_moves=config.max_moves, adjudicate=config.adjudicate, in_flight=config.in_flight)
    with StockfishPool(config.engines, config.stockfish, limit=limit, skill=config.skill) as pool:
        players: dict[str, Any] = {_model_key(t): player for t in config.temperatures}
        players.update({f"L{level}": EnginePlayer(pool, level) for level in config.levels})
        adjudicator = engine_adjudicator(pool.evaluate) if config.adjudicate == "engine" else None
        records = play_games(specs, players, out_dir=out, config=match, adjudicator=adjudicator,
                             progress=progress)
        restarts = pool.restarts
    results = summarize(records, temperatures=config.temperatures, levels=config.levels)
    results.update({"model": model_name, "checkpoint": str(config.checkpoint), "step": meta.get("step"),
                    "tokenizer": meta["tokenizer"], "policy": config.policy, "limit": config.limit,
                    "skill": config.skill, "cap": cap, "engine_restarts_this_session": restarts,
                    "level_ratings": {str(k): STOCKFISH_LEVEL_RATINGS[k] for k in config.levels}})
    _write_json(out / "results.json", results)
    (out / "results.md").write_text(results_table(results), encoding="utf-8")
    try:
        from paper_figs.rating_temperature import plot
        plot([out / "results.json"], out / "rating_temperature")
    except Exception as exc:  # the figure is a convenience; the results are already written
        log.warning("figure not written: %r", exc)
    return results


def summarize(records: Sequence[GameRecord], *, temperatures: Sequence[float],
              levels: Sequence[int]) -> dict[str, Any]:
    """Ratings per temperature from finished games (model's side taken from each record's tags)."""
    rows = []
    for t in temperatures:
        games = [r for r in records if r.tags.get("temperature") == t]
        if not games:
            continue
        scores = [score_for(r, r.tags["model_colour"]) for r in games]
        opponents = [STOCKFISH_LEVEL_RATINGS[int(r.tags["level"])] for r in games]
        glicko = glicko2_sequential(scores, opponents)
        elo = mle_elo(scores, opponents)
        model_moves = sum((r.plies + (r.tags["model_colour"] == "white")) // 2 for r in games)
        illegal = sum(r.illegal_attempts[r.tags["model_colour"]] for r in games)
        table = wdl_table(scores, [int(r.tags["level"]) for r in games])
        rows.append({
            "temperature": t, "games": len(games), "score": sum(scores) / len(scores),
            "glicko2": {"rating": glicko.rating, "rd": glicko.rd, "volatility": glicko.volatility,
                        "lo": glicko.band[0], "hi": glicko.band[1]},
            "mle": {"elo": _finite(elo.elo), "lo": _finite(elo.lo), "hi": _finite(elo.hi)},
            "wdl": {str(level): table[level] for level in levels if level in table},
            "illegal_attempts": illegal, "model_moves": model_moves,
            "illegal_rate": illegal / max(1, illegal + model_moves),
            "forfeits": sum(r.termination == "forfeit" and _model_lost(r) for r in games),
            "resignations": sum(r.termination == "resign" and _model_lost(r) for r in games),
            "terminations": _count(r.termination for r in games),
            "engine_restarts": sum(r.engine_restarts for r in games),
        })
    return {"rows": rows, "levels": list(levels)}


def _model_lost(record: GameRecord) -> bool:
    return score_for(record, record.tags["model_colour"]) == 0.0


def _count(items: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        out[item] = out.get(item, 0) + 1
    return out


def _finite(x: float) -> float | str:
    return x if math.isfinite(x) else ("inf" if x > 0 else "-inf")


def results_table(results: dict[str, Any]) -> str:
    """A markdown table: per temperature, Glicko-2 +-2RD, MLE Elo [95%], score, W/D/L per level."""
    levels = results["levels"]
    head = ("| τ | games | score | Glicko-2 (±2RD) | MLE Elo [95%] | "
            + " | ".join(f"L{lv} W/D/L" for lv in levels) + " | illegal | forfeits |")
    sep = "|" + "---|" * (7 + len(levels))
    lines = [f"model {results.get('model')} ({results.get('policy')}, {results.get('limit')}, "
             f"skill {results.get('skill')}); cap {results.get('cap')}", "", head, sep]
    for row in results["rows"]:
        g, m = row["glicko2"], row["mle"]
        wdl = [row["wdl"].get(str(lv)) for lv in levels]
        cells = [f"{w['wins']}/{w['draws']}/{w['losses']}" if w else "-" for w in wdl]
        lines.append(f"| {row['temperature']:g} | {row['games']} | {row['score']:.3f} | "
                     f"{g['rating']:.0f} [{g['lo']:.0f}, {g['hi']:.0f}] | "
                     f"{_fmt(m['elo'])} [{_fmt(m['lo'])}, {_fmt(m['hi'])}] | " + " | ".join(cells)
                     + f" | {row['illegal_rate']:.3f} | {row['forfeits']} |")
    return "\n".join(lines) + "\n"


def _fmt(x: float | str) -> str:
    return x if isinstance(x, str) else f"{x:.0f}"


def _cap_from_meta(meta: dict[str, Any]) -> float | None:
    """The rating cap of the training data: a key of the checkpoint, else the prepared data's meta.json."""
    cap = _cap_from_keys(meta)
    if cap is not None:
        return cap
    data_dir = (meta.get("train_config") or {}).get("data_dir")
    if data_dir and (Path(data_dir) / "meta.json").exists():
        try:
            data_meta = json.loads((Path(data_dir) / "meta.json").read_text())
        except (OSError, ValueError):
            return None
        cap = (data_meta.get("filters") or {}).get("cap")
        return float(cap) if isinstance(cap, (int, float)) else None
    return None


def _cap_from_keys(meta: dict[str, Any]) -> float | None:
    for source in (meta, meta.get("train_config") or {}, meta.get("data_meta") or {}):
        if not isinstance(source, dict):
            continue
        for key in ("cap", "max_elo", "rating_cap", "elo_cap"):
            if isinstance(source.get(key), (int, float)):
                return float(source[key])
        data = source.get("data")
        if isinstance(data, dict):
            for key in ("cap", "max_elo", "rating_cap"):
                if isinstance(data.get(key), (int, float)):
                    return float(data[key])
    return None


#: fields that decide how a game is played: a run directory may only be resumed or extended
#: (more temperatures, levels or games) with the same values
_GAME_DEFINING = ("checkpoint", "policy", "mode", "limit", "skill", "max_moves", "adjudicate", "seed")


def _check_same_evaluation(out: Path, config: EvalConfig) -> None:
    path = out / "config.json"
    if not path.exists() or not (out / "games.jsonl").exists():
        return
    try:
        old = json.loads(path.read_text()).get("config", {})
    except (OSError, ValueError):
        return
    changed = [k for k in _GAME_DEFINING if k in old and old[k] != getattr(config, k)]
    if changed:
        details = ", ".join(f"{k}: {old[k]!r} -> {getattr(config, k)!r}" for k in changed)
        raise ValueError(f"{out} holds games of a different evaluation ({details}); resume with the same "
                         "settings or choose another --out")


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _validate(config: EvalConfig) -> None:
    from chess_exp.play.engines import EngineLimit
    EngineLimit.parse(config.limit)
    if not config.temperatures or any(not (t >= 0 and math.isfinite(t)) for t in config.temperatures):
        raise ValueError(f"temperatures={config.temperatures}: need one or more finite values >= 0")
    if len(set(config.temperatures)) != len(config.temperatures):
        raise ValueError(f"temperatures={config.temperatures}: values must be distinct")
    bad = [lv for lv in config.levels if lv not in STOCKFISH_LEVEL_RATINGS]
    if not config.levels or bad:
        raise ValueError(f"levels={config.levels}: each must be one of {sorted(STOCKFISH_LEVEL_RATINGS)} "
                         "(the levels with a rating)")
    if config.games < 1 or config.engines < 1 or config.in_flight < 1 or config.max_moves < 1:
        raise ValueError("games, engines, in_flight and max_moves must be >= 1")
    if config.policy not in ("exact", "sampled"):
        raise ValueError(f"policy={config.policy!r}: must be exact or sampled")


# -- command line -------------------------------------------------------------------------------

def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated numbers, e.g. 0.001,0.1,1") from None


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated integers, e.g. 1,3,5") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = EvalConfig(checkpoint="", out="")
    parser.add_argument("--checkpoint", required=True, help="checkpoint file or training run directory")
    parser.add_argument("--out", default=None, help="run directory (default: runs/eval-<checkpoint run name>)")
    parser.add_argument("--temperatures", type=_floats, default=d.temperatures,
                        help="comma-separated temperatures (default: the paper's 0.001,...,1.5)")
    parser.add_argument("--levels", type=_ints, default=d.levels, help="Stockfish Skill Levels (default 1,3,5)")
    parser.add_argument("--games", type=int, default=d.games, help="games per temperature and level (default 100)")
    parser.add_argument("--policy", choices=("exact", "sampled"), default=d.policy,
                        help="exact: temper the model's move distribution; sampled: the paper's char protocol")
    parser.add_argument("--mode", choices=("logit", "prob"), default=d.mode, help="temper mode (exact policy)")
    parser.add_argument("--limit", default=d.limit,
                        help="Stockfish limit per move: nodes=N (default nodes=20000), depth=D, time=0.1 (paper)")
    parser.add_argument("--skill", choices=("emulated", "native"), default=d.skill,
                        help="emulated: repeatable Skill Level (default); native: Stockfish's own option")
    parser.add_argument("--engines", type=int, default=d.engines, help="Stockfish processes (default 2)")
    parser.add_argument("--in-flight", type=int, default=d.in_flight, help="games at once (default 64)")
    parser.add_argument("--max-moves", type=int, default=d.max_moves, help="full-move limit (default 89)")
    parser.add_argument("--adjudicate", choices=("draw", "engine"), default=d.adjudicate,
                        help="games at the move limit: draw (paper) or a Stockfish evaluation")
    parser.add_argument("--seed", type=int, default=d.seed, help="base seed (default 0)")
    parser.add_argument("--threads", type=int, default=d.threads, help="torch threads (default 1)")
    parser.add_argument("--device", default=d.device, help="torch device (default cpu)")
    parser.add_argument("--stockfish", default=None, help="Stockfish binary (default: STOCKFISH_PATH, PATH, "
                                                         "/usr/games/stockfish)")
    parser.add_argument("--cap", type=float, default=None, help="training rating cap for the figure's dashed line")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    out = args.out or str(Path("runs") / f"eval-{Path(args.checkpoint).resolve().name}")
    try:
        config = EvalConfig(checkpoint=args.checkpoint, out=out, temperatures=args.temperatures,
                            levels=args.levels, games=args.games, policy=args.policy, mode=args.mode,
                            limit=args.limit, skill=args.skill, engines=args.engines,
                            in_flight=args.in_flight, max_moves=args.max_moves, adjudicate=args.adjudicate,
                            seed=args.seed, threads=args.threads, device=args.device,
                            stockfish=args.stockfish, cap=args.cap)
        _validate(config)
        results = evaluate(config, progress=not args.no_progress)
    except (ValueError, FileNotFoundError) as exc:
        print(f"transcendence chess eval: error: {exc}", file=sys.stderr)
        return 2
    print(results_table(results))
    print(f"wrote {out}/results.json, results.md, games.pgn, games.jsonl, rating_temperature.png")
    return 0
