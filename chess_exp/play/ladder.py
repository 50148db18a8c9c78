"""``transcendence chess eval``: play Stockfish at several temperatures and rate the model.

::

    transcendence chess eval --checkpoint runs/small_cpu-1300 --temperatures 0.001,0.1,0.5,1 \\
        --levels 1,3,5 --games 100 --policy exact --limit nodes=20000 --out runs/eval-1300

For every temperature the model plays ``--games`` games against each Stockfish level, half as
White and half as Black (the paper's protocol). All games of all temperatures are in flight
together: the model scores every waiting position in one batch, and a pool of Stockfish processes
plays the engine moves meanwhile. The run directory gets

- ``config.json`` (the resolved :class:`EvalConfig`, command line, commit, versions),
- ``games.pgn`` and ``games.jsonl`` (every game, in the grid's order once the run ends; an
  interrupted run resumes from them),
- ``results.json``: per temperature, the paper's sequential Glicko-2 (rating, RD, +-2 RD band),
  the order-free MLE Elo with its 95% interval, W/D/L per level, illegal-attempt rate, forfeits,
- ``results.md``: the same as a table, and ``rating_temperature.png``/``.pdf`` (Figure 1's form).

Across machines: ``--shard i/N`` plays game ``j`` of the (temperature, level, game) grid when
``j % N == i``; ``transcendence chess eval merge --out DIR SHARD_DIR...`` combines finished shards
into the files one unsharded run writes. ``transcendence chess eval steps --out DIR RUN_OR_CKPT...``
rates several checkpoints of a training run and plots rating against training step.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import chess.engine

from chess_exp.play.games import (
    GameRecord,
    GameSpec,
    MatchConfig,
    _json_line,  # the game loop's one JSONL line format
    load_records,
    play_games,
    record_to_pgn,
    score_for,
)
from chess_exp.play.ratings import STOCKFISH_LEVEL_RATINGS, glicko2_sequential, mle_elo, wdl_table
from transcendence.config import add_config_arguments, config_from_args
from transcendence.io import atomic_open, atomic_write_json, atomic_write_text

__all__ = ["EvalConfig", "add_arguments", "main", "evaluate", "summarize", "eval_specs", "parse_shard",
           "shard_specs", "merge_shards", "merge_caches", "rate_steps", "results_table"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class EvalConfig:
    """One evaluation run."""

    checkpoint: str  # checkpoint file or training run dir
    out: str  # run directory for games and results
    temperatures: tuple[float, ...] = (0.001, 0.01, 0.1, 0.3, 0.5, 0.75, 1.0, 1.5)  # comma list; the paper's grid
    levels: tuple[int, ...] = (1, 3, 5)  # comma list of Stockfish Skill Levels (ratings: STOCKFISH_LEVEL_RATINGS)
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
    shard: str | None = None  # "i/N": play only game j of the grid with j % N == i; join with `chess eval merge`
    tokenizer: str | None = None  # override the checkpoint's tokenizer (peer checkpoints: char)
    step: int | None = None  # override the checkpoint's training step


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"i/N"`` -> ``(i, N)`` with ``0 <= i < N``; None -> None."""
    if text is None:
        return None
    try:
        i, n = (int(x) for x in str(text).split("/"))
    except ValueError:
        raise ValueError(f"shard={text!r}: expected i/N, e.g. 0/4 (shards 0/4 .. 3/4)") from None
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"shard={text!r}: need N >= 1 and 0 <= i < N (shards are numbered 0/N .. {max(n, 1) - 1}/N)")
    return i, n


def game_id(seed: int, temperature: float, level: int, index: int) -> str:
    """A game's id: unique across temperatures, levels, game indices and base seeds."""
    return f"s{seed}-t{temperature:g}-L{level}-{index:04d}"


def eval_specs(config: EvalConfig, *, model_name: str, headers: dict[str, str]) -> list[GameSpec]:
    """The games of the whole grid, in the paper's order: per temperature, level by level, game by game."""
    specs = []
    for t in config.temperatures:
        key = _model_key(t)
        for level in config.levels:
            for i in range(config.games):
                white = i % 2 == 0
                opponent = f"L{level}"
                specs.append(GameSpec(
                    game_id=game_id(config.seed, t, level, i), white=key if white else opponent,
                    black=opponent if white else key,
                    seed=(config.seed, int(round(t * 1_000_000)), level, i),
                    headers={**headers, "Temperature": f"{t:g}", "Level": str(level),
                             "Policy": config.policy, "Limit": config.limit, "Skill": config.skill,
                             "BaseSeed": str(config.seed)},
                    tags={"temperature": t, "level": level, "model_colour": "white" if white else "black",
                          "model": model_name}))
    return specs


def shard_specs(specs: Sequence[GameSpec], shard: str | None) -> list[GameSpec]:
    """The shard's games: spec ``j`` of the grid when ``j % N == i`` (round robin, so every shard
    gets about the same share of each temperature and level)."""
    parsed = parse_shard(shard)
    if parsed is None:
        return list(specs)
    i, n = parsed
    return [s for j, s in enumerate(specs) if j % n == i]


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


def check_out_dir(out: Path, *, name: str = "--out") -> None:
    """Refuse an output directory that cannot be one (a file, under a file, not writable) before
    anything is written or loaded."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"{name}={out} is a file, not a directory; choose a directory")
    probe = out
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise ValueError(f"{name}={out} lies under the file {probe}; choose a directory")
    try:  # the nearest existing folder must take a file (os.access says yes to root on a read-only mount)
        fd, tmp = tempfile.mkstemp(prefix=".write-test-", dir=probe)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise ValueError(f"{name}={out}: {probe} is not writable ({exc.strerror or exc}); choose a directory "
                         "you can write to") from None


def _upgrade_legacy_ids(out: Path, seed: int) -> None:
    """Games written before ids carried the base seed (``t0.1-L1-0003``) get the seed prefix, so a
    resumed run finds them instead of playing them again."""
    path = out / "games.jsonl"
    if not path.exists():
        return
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    changed = False
    for k, line in enumerate(lines):
        if not line.endswith("\n"):
            continue  # a torn last line: the game loop discards it
        try:
            data = json.loads(line)
        except ValueError:
            continue  # not ours to judge here: the game loop reports a damaged line
        gid = str(data.get("game_id", "")) if isinstance(data, dict) else ""
        if gid.startswith("t") and (data.get("headers") or {}).get("BaseSeed") == str(seed):
            data["game_id"] = f"s{seed}-{gid}"
            lines[k] = json.dumps(data, sort_keys=True) + "\n"
            changed = True
    if changed:
        atomic_write_text(path, "".join(lines))


def _write_games(out: Path, records: Sequence[GameRecord]) -> None:
    """games.jsonl and games.pgn holding ``records`` in this order (atomic replacements)."""
    with atomic_open(out / "games.jsonl") as fh:
        for record in records:
            fh.write(_json_line(record))  # the game loop's own line format
    with atomic_open(out / "games.pgn") as fh:
        for record in records:
            fh.write(record_to_pgn(record))


def _in_grid_order(records: Sequence[GameRecord], specs: Sequence[GameSpec]) -> list[GameRecord]:
    """The records of ``specs`` in spec order, then any others (e.g. games of temperatures this
    run no longer asks for) in their previous order."""
    by_id = {r.game_id: r for r in records}
    ordered = [by_id[s.game_id] for s in specs if s.game_id in by_id]
    wanted = {s.game_id for s in specs}
    return ordered + [r for r in records if r.game_id not in wanted]


def _load(config: EvalConfig) -> tuple[Any, dict[str, Any]]:
    from chess_exp.model.checkpoints import load_model
    return load_model(config.checkpoint, device=config.device, tokenizer=config.tokenizer, step=config.step)


def evaluate(config: EvalConfig, *, progress: bool = True) -> dict[str, Any]:
    """Play (or resume) all games of ``config`` (or its shard), rate them, write results; return them."""
    import torch

    from chess_exp.data.tokenizers import get_tokenizer
    from chess_exp.play.engines import EngineLimit, StockfishPool
    from chess_exp.play.games import engine_adjudicator
    from chess_exp.play.players import EnginePlayer, ModelPlayer
    from transcendence.config import write_run_metadata

    _validate(config)
    out = Path(config.out)
    check_out_dir(out)
    limit = EngineLimit.parse(config.limit)
    _check_same_evaluation(out, config)
    model, meta = _load(config)  # a bad checkpoint stops here, before anything is written
    torch.set_num_threads(config.threads)
    tokenizer = get_tokenizer(meta["tokenizer"])
    model_name = meta.get("name") or _model_name(Path(meta.get("path", config.checkpoint)))
    cap = config.cap if config.cap is not None else _cap_from_meta(meta)
    model_info = {"name": model_name, "step": meta.get("step"), "tokenizer": meta["tokenizer"], "cap": cap}
    headers = {"Event": "transcendence chess eval", "Model": model_name, "Checkpoint": str(config.checkpoint),
               "Step": str(meta.get("step")), "Tokenizer": str(meta["tokenizer"])}
    grid = eval_specs(config, model_name=model_name, headers=headers)
    specs = shard_specs(grid, config.shard)
    player = ModelPlayer(model, tokenizer, policy=config.policy, mode=config.mode,
                         temperature={_model_key(t): t for t in config.temperatures}, name=model_name,
                         cache_games=max(256, config.in_flight))  # every game in flight keeps its prompt
    match = MatchConfig(max_moves=config.max_moves, adjudicate=config.adjudicate, in_flight=config.in_flight)
    with StockfishPool(config.engines, config.stockfish, limit=limit, skill=config.skill) as pool:
        # Stockfish answers before anything is written
        write_run_metadata(out, config, extra={"model": model_info})
        _upgrade_legacy_ids(out, config.seed)
        players: dict[str, Any] = {_model_key(t): player for t in config.temperatures}
        players.update({f"L{level}": EnginePlayer(pool, level) for level in config.levels})
        adjudicator = engine_adjudicator(pool.evaluate) if config.adjudicate == "engine" else None
        records = play_games(specs, players, out_dir=out, config=match, adjudicator=adjudicator,
                             progress=progress)
        restarts = pool.restarts
    _write_games(out, _in_grid_order(load_records(out), grid))
    results = _results(config, records, model_info)
    results["engine_restarts_this_session"] = restarts
    _write_results(out, results)
    return results


def _results(config: EvalConfig, records: Sequence[GameRecord], model: dict[str, Any]) -> dict[str, Any]:
    results = summarize(records, temperatures=config.temperatures, levels=config.levels)
    results.update({"model": model["name"], "checkpoint": str(config.checkpoint), "step": model.get("step"),
                    "tokenizer": model["tokenizer"], "policy": config.policy, "limit": config.limit,
                    "skill": config.skill, "cap": model.get("cap"), "seed": config.seed, "shard": config.shard,
                    "level_ratings": {str(k): STOCKFISH_LEVEL_RATINGS[k] for k in config.levels}})
    return results


def _write_results(out: Path, results: dict[str, Any]) -> None:
    atomic_write_json(out / "results.json", results, sort_keys=True)
    atomic_write_text(out / "results.md", results_table(results))
    try:
        plot_bands({f"{r['temperature']:g}": r for r in results["rows"]}, out / "rating_temperature.png",
                   xlabel="temperature τ", title=f"{results.get('model')}: rating against temperature",
                   cap=results.get("cap"), categorical=True)
    except ImportError as exc:  # matplotlib is optional for the results themselves
        log.warning("figure not written: %s", exc)


def plot_bands(series: dict[str, dict[str, Any]] | dict[str, list[tuple[float, dict[str, Any]]]], path: Path, *,
               xlabel: str, title: str, cap: float | None = None, categorical: bool = False) -> Path:
    """Rating with its 95% band: Glicko-2 +-2 RD (left) and the MLE Elo interval (right); ``path``
    (PNG) and the same name with ``.pdf``.

    ``series``: label -> a results row (one point per label, ``categorical``: the labels are the x
    ticks), or label -> [(x, row), ...] (one line per label)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines: dict[str, list[tuple[float, dict[str, Any]]]]
    if categorical:
        lines = {"": [(float(k), row) for k, row in series.items()]}  # type: ignore[misc]
    else:
        lines = series  # type: ignore[assignment]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), squeeze=False)
    for ax, est in zip(axes[0], ("glicko2", "mle")):
        for label, points in lines.items():
            points = sorted(points, key=lambda p: p[0])
            xs = list(range(len(points))) if categorical else [p[0] for p in points]
            est3 = [_estimate(row, est) for _, row in points]
            finite = [e[0] for e in est3 if math.isfinite(e[0])] or [1500.0]
            far_lo, far_hi = min(finite) - 400, max(finite) + 400  # an infinite MLE or bound: drawn off the points
            mid = [m if math.isfinite(m) else (far_hi if m > 0 else far_lo) for m, _, _ in est3]
            lo = [v if math.isfinite(v) else far_lo for _, v, _ in est3]
            hi = [v if math.isfinite(v) else far_hi for _, _, v in est3]
            line, = ax.plot(xs, mid, marker="o", label=label or None)
            ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
            if categorical:
                ax.set_xticks(xs, [f"{p[0]:g}" for p in points])
        if cap is not None:
            ax.axhline(float(cap), color="grey", linestyle="--", linewidth=1, label=f"training cap {float(cap):g}")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("Glicko-2, sequential (±2 RD)" if est == "glicko2" else "MLE Elo (95% interval)")
        ax.grid(alpha=0.3)
        if any(label for label in lines) or cap is not None:
            ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    for fmt in ("png", "pdf"):
        with atomic_open(path.with_suffix(f".{fmt}"), "wb") as fh:
            fig.savefig(fh, format=fmt, dpi=130)
    plt.close(fig)
    return path


def _estimate(row: dict[str, Any], estimator: str) -> tuple[float, float, float]:
    if estimator == "glicko2":
        g = row["glicko2"]
        return float(g["rating"]), float(g["lo"]), float(g["hi"])
    m = row["mle"]
    return tuple(_num(m[k]) for k in ("elo", "lo", "hi"))  # type: ignore[return-value]


def _num(x: float | str) -> float:
    return {"inf": math.inf, "-inf": -math.inf}[x] if isinstance(x, str) else float(x)


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
_GAME_DEFINING = ("checkpoint", "policy", "mode", "limit", "skill", "max_moves", "adjudicate", "seed", "tokenizer")


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
    if len(set(config.levels)) != len(config.levels):
        raise ValueError(f"levels={config.levels}: values must be distinct")
    for name in ("games", "engines", "in_flight", "max_moves", "threads"):
        if getattr(config, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')}={getattr(config, name)}: must be >= 1")
    if config.policy not in ("exact", "sampled"):
        raise ValueError(f"policy={config.policy!r}: must be exact or sampled")
    if config.step is not None and config.step < 0:
        raise ValueError(f"--step={config.step}: a training step is >= 0 (leave it out to use the checkpoint's)")
    parse_shard(config.shard)


# -- shards -----------------------------------------------------------------------------------------

def _config_from_json(data: dict[str, Any], **changes: Any) -> EvalConfig:
    names = {f.name for f in dataclasses.fields(EvalConfig)}
    values = {k: (tuple(v) if k in ("temperatures", "levels") else v) for k, v in data.items() if k in names}
    return EvalConfig(**{**values, **changes})


def _read_run_config(folder: Path, what: str) -> dict[str, Any]:
    path = folder / "config.json"
    if not path.is_file():
        raise ValueError(f"{folder}: no config.json; pass directories written by `transcendence chess {what}`")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} cannot be read ({exc}); rerun the evaluation that wrote it") from None
    if not isinstance(meta.get("config"), dict) or "temperatures" not in meta["config"]:
        raise ValueError(f"{path} is not the config of `transcendence chess {what}`")
    return meta


def merge_shards(out: str | os.PathLike[str], shard_dirs: Sequence[str | os.PathLike[str]]) -> dict[str, Any]:
    """Combine finished ``chess eval --shard i/N`` directories into ``out``.

    ``out`` gets the ``games.jsonl``, ``games.pgn`` (grid order), ``results.json``, ``results.md``
    and figure that one unsharded run of the same evaluation writes; its ``config.json`` names the
    shards. The shards must be of one evaluation (same checkpoint, grid, seed and rules), and
    together hold every game of the grid; a game found in two shards must be the same game.
    """
    from transcendence.config import write_run_metadata

    out = Path(out)
    check_out_dir(out)
    folders = [Path(d) for d in shard_dirs]
    if not folders:
        raise ValueError("merge: give the shard directories to combine")
    metas = [_read_run_config(d, "eval --shard i/N") for d in folders]
    first = metas[0]["config"]
    must_match = (*_GAME_DEFINING, "temperatures", "levels", "games")
    for folder, meta in zip(folders[1:], metas[1:]):
        diff = [k for k in must_match if meta["config"].get(k) != first.get(k)]
        if diff:
            details = ", ".join(f"{k}: {first.get(k)!r} vs {meta['config'].get(k)!r}" for k in diff)
            raise ValueError(f"{folder} is a shard of a different evaluation than {folders[0]} ({details}); "
                             "merge shards of one evaluation")
    config = _config_from_json(first, out=str(out), shard=None)
    _validate(config)
    grid = eval_specs(config, model_name="", headers={})
    wanted = {s.game_id for s in grid}
    found: dict[str, GameRecord] = {}
    for folder in folders:
        for record in load_records(folder):
            if record.game_id not in wanted:
                continue
            other = found.get(record.game_id)
            if other is not None and other != record:
                raise ValueError(f"game {record.game_id} differs between shards ({folder}); the shards do "
                                 "not come from one evaluation")
            found[record.game_id] = record
    missing = [j for j, s in enumerate(grid) if s.game_id not in found]
    if missing:
        counts = sorted({parse_shard(m["config"].get("shard")) or (0, 1) for m in metas}, key=lambda s: s[1])
        n = max(s[1] for s in counts)
        incomplete = sorted({j % n for j in missing})
        raise ValueError(f"{len(missing)} of {len(grid)} games are missing (shards "
                         f"{', '.join(f'{i}/{n}' for i in incomplete)}); finish them by rerunning their "
                         "`chess eval --shard` command, or pass their directories")
    _check_same_evaluation(out, config)
    records = [found[s.game_id] for s in grid]
    model_info = metas[0].get("model") or {}
    restarts = 0
    for folder in folders:
        try:
            restarts += int(json.loads((folder / "results.json").read_text()).get("engine_restarts_this_session", 0))
        except (OSError, ValueError, TypeError):
            pass
    out.mkdir(parents=True, exist_ok=True)
    write_run_metadata(out, config, extra={"model": model_info, "merged_from": [str(f) for f in folders]})
    _write_games(out, records)
    results = _results(config, records, {"name": model_info.get("name"), **model_info})
    results["engine_restarts_this_session"] = restarts
    _write_results(out, results)
    return results


# -- caches written on several machines ------------------------------------------------------------

def merge_caches(dest: str | os.PathLike[str], sources: Sequence[str | os.PathLike[str]]) -> dict[str, int]:
    """Fold per-shard Stockfish caches into ``dest`` (created if missing); return counts.

    Two kinds, told apart by the suffix: the experts' best-move files (``.tsv``, one
    ``key<TAB>move`` line per position; all files must have ``dest``'s name, which encodes the
    engine and the limit) and the reward databases (``.sqlite``; every table of a source is copied
    into the same table of ``dest``, created with the source's schema). An entry already in ``dest``
    is kept; a source entry that disagrees with it is counted in ``conflicts`` (a deterministic
    search gives none: a conflict means two different engines or settings). ``dest`` is replaced
    atomically (TSV) or written in one transaction (SQLite), so a crash leaves it whole.
    """
    dest = Path(dest)
    paths = [Path(p) for p in sources]
    if not paths:
        raise ValueError("merge-caches: give the cache files to fold in")
    for path in paths:
        if not path.is_file():
            raise ValueError(f"{path}: no such cache file")
        if path.suffix != dest.suffix or path.suffix not in (".tsv", ".sqlite"):
            raise ValueError(f"{path}: merge .tsv into .tsv or .sqlite into .sqlite (dest is {dest.name})")
        if path.suffix == ".tsv" and path.name != dest.name:
            raise ValueError(f"{path}: best-move files of one engine and limit share a name; {path.name} "
                             f"is not {dest.name}")
    if dest.exists() and not dest.is_file():
        raise ValueError(f"--out={dest} is not a file")
    check_out_dir(dest.parent, name="--out's folder")
    if dest.suffix == ".tsv":
        return _merge_tsv(dest, paths)
    return _merge_sqlite(dest, paths)


def _read_tsv(path: Path) -> list[tuple[str, str]]:
    rows = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            parts = line.rstrip("\n").split("\t")
            if line.endswith("\n") and len(parts) == 2 and parts[0] and parts[1]:
                rows.append((parts[0], parts[1]))  # a torn or damaged line is left out
    return rows


def _merge_tsv(dest: Path, sources: Sequence[Path]) -> dict[str, int]:
    merged = dict(_read_tsv(dest)) if dest.exists() else {}
    before = len(merged)
    conflicts = 0
    for path in sources:
        for key, value in _read_tsv(path):
            old = merged.setdefault(key, value)
            conflicts += old != value
    atomic_write_text(dest, "".join(f"{k}\t{v}\n" for k, v in merged.items()))
    return {"entries": len(merged), "added": len(merged) - before, "conflicts": conflicts}


def _merge_sqlite(dest: Path, sources: Sequence[Path]) -> dict[str, int]:
    import sqlite3

    conn = sqlite3.connect(dest, timeout=120)
    added = conflicts = 0
    try:
        for path in sources:
            conn.execute("ATTACH DATABASE ? AS src", (str(path),))
            try:
                with conn:  # one transaction per source: a crash leaves dest as it was before it
                    tables = conn.execute("SELECT name, sql FROM src.sqlite_master WHERE type='table'").fetchall()
                    for name, sql in tables:
                        if not str(name).replace("_", "").isalnum():
                            raise ValueError(f"{path}: unexpected table name {name!r}")
                        conn.execute(sql.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS", 1))
                        info = conn.execute(f"PRAGMA src.table_info({name})").fetchall()
                        keys = [row[1] for row in info if row[5]]
                        others = [row[1] for row in info if not row[5]]
                        if keys and others:
                            join = " AND ".join(f"m.{k} = s.{k}" for k in keys)
                            differ = " OR ".join(f"m.{c} IS NOT s.{c}" for c in others)
                            conflicts += conn.execute(f"SELECT COUNT(*) FROM src.{name} s JOIN main.{name} m "
                                                      f"ON {join} WHERE {differ}").fetchone()[0]
                        before = conn.execute(f"SELECT COUNT(*) FROM main.{name}").fetchone()[0]
                        conn.execute(f"INSERT OR IGNORE INTO main.{name} SELECT * FROM src.{name}")
                        added += conn.execute(f"SELECT COUNT(*) FROM main.{name}").fetchone()[0] - before
            finally:
                conn.execute("DETACH DATABASE src")
        names = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        entries = sum(conn.execute(f"SELECT COUNT(*) FROM {name}").fetchone()[0] for name in names)
    except sqlite3.DatabaseError as exc:
        raise ValueError(f"merge-caches: {exc}; pass SQLite reward caches") from None
    finally:
        conn.close()
    return {"entries": entries, "added": added, "conflicts": conflicts}


# -- rating against training step -----------------------------------------------------------------

def _step_targets(paths: Sequence[str | os.PathLike[str]]) -> list[tuple[str, Path]]:
    """``("results", eval dir)`` or ``("checkpoint", file)`` for each path; a training run directory
    stands for its step-numbered checkpoints (or its latest one when it kept none)."""
    from chess_exp.model.checkpoints import step_checkpoints
    targets: list[tuple[str, Path]] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise ValueError(f"{path} does not exist: pass checkpoint files, training run directories or "
                             "finished `chess eval` directories")
        if path.is_dir() and (path / "results.json").is_file() and (path / "config.json").is_file():
            targets.append(("results", path))
        elif path.is_dir() and step_checkpoints(path):
            targets.extend(("checkpoint", p) for p in step_checkpoints(path).values())
        else:
            targets.append(("checkpoint", path))
    return targets


def rate_steps(out: str | os.PathLike[str], paths: Sequence[str | os.PathLike[str]], base: EvalConfig, *,
               progress: bool = True) -> dict[str, Any]:
    """Rate several checkpoints of a run (``base`` gives the games) and plot rating against step.

    Each checkpoint is evaluated into ``out/step-<step>`` (resumable; ``--shard`` works there as
    in ``chess eval``); a finished eval directory is read as it is. ``out`` gets
    ``rating_step.json``, ``rating_step.md`` and ``rating_step.png`` (Glicko-2 +-2 RD and MLE Elo
    95% bands, one line per temperature).
    """
    from chess_exp.model.checkpoints import read_checkpoint_step

    out = Path(out)
    check_out_dir(out)
    _validate(base)
    targets = _step_targets(paths)
    if not targets:
        raise ValueError("steps: give checkpoints, training run directories or eval directories")
    done: list[tuple[int, Path, dict[str, Any]]] = []
    for kind, path in targets:
        if kind == "results":
            results = json.loads((path / "results.json").read_text(encoding="utf-8"))
            folder = path
        else:
            step = base.step if base.step is not None else read_checkpoint_step(path)
            if step is None:
                raise ValueError(f"{path} does not record its training step; pass --step for a single "
                                 "checkpoint, or step-numbered checkpoints")
            folder = out / f"step-{int(step):07d}"
            results = evaluate(dataclasses.replace(base, checkpoint=str(path), out=str(folder)), progress=progress)
        if results.get("step") is None:
            raise ValueError(f"{path}: its results name no training step; rate checkpoints that record one")
        if results.get("shard"):
            log.warning("%s holds shard %s only: merge the shards first for the full grid", folder, results["shard"])
        done.append((int(results["step"]), folder, results))
    steps = [s for s, _, _ in done]
    if len(set(steps)) != len(steps):
        raise ValueError(f"steps {sorted(steps)}: two of the inputs are the same training step")
    done.sort(key=lambda d: d[0])
    points = []
    series: dict[str, list[tuple[float, dict[str, Any]]]] = {}
    for step, folder, results in done:
        for row in results["rows"]:
            points.append({"step": step, "dir": str(folder), "checkpoint": results.get("checkpoint"),
                           "temperature": row["temperature"], "games": row["games"], "score": row["score"],
                           "glicko2": row["glicko2"], "mle": row["mle"]})
            series.setdefault(f"τ={row['temperature']:g}", []).append((float(step), row))
    summary: dict[str, Any] = {"model": done[0][2].get("model"), "policy": done[0][2].get("policy"),
               "limit": done[0][2].get("limit"), "cap": done[0][2].get("cap"), "points": points}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "rating_step.json", summary, sort_keys=True)
    atomic_write_text(out / "rating_step.md", steps_table(summary))
    try:
        plot_bands(series, out / "rating_step.png", xlabel="training step", cap=summary["cap"],
                   title=f"{summary['model']}: rating against training step ({summary['policy']}, {summary['limit']})")
    except ImportError as exc:
        log.warning("figure not written: %s", exc)
    return summary


def steps_table(summary: dict[str, Any]) -> str:
    """A markdown table: per step and temperature, Glicko-2 +-2 RD and MLE Elo [95%]."""
    lines = [f"model {summary.get('model')} ({summary.get('policy')}, {summary.get('limit')}); "
             f"cap {summary.get('cap')}", "", "| step | τ | games | score | Glicko-2 (±2RD) | MLE Elo [95%] |",
             "|---|---|---|---|---|---|"]
    for p in summary["points"]:
        g, m = p["glicko2"], p["mle"]
        lines.append(f"| {p['step']} | {p['temperature']:g} | {p['games']} | {p['score']:.3f} | "
                     f"{g['rating']:.0f} [{g['lo']:.0f}, {g['hi']:.0f}] | "
                     f"{_fmt(m['elo'])} [{_fmt(m['lo'])}, {_fmt(m['hi'])}] |")
    return "\n".join(lines) + "\n"


# -- command line -------------------------------------------------------------------------------

def _add_play_options(parser: argparse.ArgumentParser) -> None:
    """One option per field of :class:`EvalConfig` except ``checkpoint`` and ``out``, plus ``--no-progress``."""
    add_config_arguments(parser, EvalConfig, exclude=("checkpoint", "out"))
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", default=None, help="checkpoint file or training run directory (required)")
    parser.add_argument("--out", default=None, help="run directory (default: runs/eval-<checkpoint run name>)")
    _add_play_options(parser)
    sub = parser.add_subparsers(dest="eval_command", metavar="{merge,steps,merge-caches}")
    merge = sub.add_parser("merge", help="combine finished `chess eval --shard i/N` directories into one run",
                           description="Combine finished shard directories into the games.pgn, games.jsonl "
                                       "and results.json of one unsharded run.")
    merge.add_argument("--out", required=True, help="directory for the combined run")
    merge.add_argument("shards", nargs="+", metavar="SHARD_DIR", help="directories of `chess eval --shard i/N`")
    steps = sub.add_parser("steps", help="rate several checkpoints of a run; plot rating against training step",
                           description="Evaluate each checkpoint (or read finished eval directories) and plot "
                                       "rating against training step with 95%% bands.")
    steps.add_argument("--out", required=True, help="directory: step-<step>/ per checkpoint, rating_step.*")
    steps.add_argument("paths", nargs="+", metavar="RUN_OR_CKPT",
                       help="training run directories (their checkpoints/ckpt-<step>.pt), checkpoint files, "
                            "or finished `chess eval` directories")
    _add_play_options(steps)
    caches = sub.add_parser("merge-caches", help="fold per-shard Stockfish caches (.tsv best moves, .sqlite "
                                                 "rewards) into one", description=merge_caches.__doc__)
    caches.add_argument("--out", required=True, help="the cache file to create or extend")
    caches.add_argument("sources", nargs="+", metavar="CACHE", help="per-shard cache files of the same kind")


def _config_from_args(args: argparse.Namespace, *, checkpoint: str, out: str) -> EvalConfig:
    return config_from_args(EvalConfig, args, checkpoint=checkpoint, out=out)


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    command = getattr(args, "eval_command", None)
    prog = "transcendence chess eval" + (f" {command}" if command else "")
    try:
        if command == "merge":
            results = merge_shards(args.out, args.shards)
            print(results_table(results))
            print(f"wrote {args.out}/results.json, results.md, games.pgn, games.jsonl, rating_temperature.png "
                  f"from {len(args.shards)} shard(s)")
            return 0
        if command == "merge-caches":
            counts = merge_caches(args.out, args.sources)
            print(f"{args.out}: {counts['entries']} entries ({counts['added']} added from {len(args.sources)} "
                  f"file(s), {counts['conflicts']} conflicting entries kept as they were)")
            return 0
        if command == "steps":
            summary = rate_steps(args.out, args.paths, _config_from_args(args, checkpoint="", out=args.out),
                                 progress=not args.no_progress)
            print(steps_table(summary))
            print(f"wrote {args.out}/rating_step.json, rating_step.md, rating_step.png")
            return 0
        if not args.checkpoint:
            raise ValueError("--checkpoint is required (or use `chess eval merge` / `chess eval steps`)")
        out = args.out or str(Path("runs") / f"eval-{Path(args.checkpoint).resolve().name}")
        config = _config_from_args(args, checkpoint=args.checkpoint, out=out)
        _validate(config)
        results = evaluate(config, progress=not args.no_progress)
    except (ValueError, OSError) as exc:  # bad input, missing or unwritable files, no Stockfish
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except chess.engine.EngineError as exc:  # a --stockfish that is not a working UCI engine
        print(f"{prog}: error: --stockfish={args.stockfish or 'stockfish'}: the engine failed ({exc}); "
              "point --stockfish at a Stockfish binary", file=sys.stderr)
        return 2
    print(results_table(results))
    print(f"wrote {out}/results.json, results.md, games.pgn, games.jsonl, rating_temperature.png"
          + (f" (shard {config.shard})" if config.shard else ""))
    return 0
