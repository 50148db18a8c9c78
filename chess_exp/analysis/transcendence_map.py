"""``transcendence chess map``: where a trained learner transcends, over expert noise and training budget.

One resumable command over a grid of cells. A cell is

* a panel of three noisy experts with random-move rates ``eps_min``, ``eps_min + 0.1``,
  ``eps_min + 0.2`` (capped at 1; ``eps = 1`` is a uniformly random mover), each Stockfish with a
  fixed node limit otherwise (:func:`noisy_panel`);
* a training budget: passes (epochs) of the board-input learner (``chess_exp.model.board``) over the
  panel's training games (generated once per ``eps_min`` and shared by its budgets);
* the check of ``transcendence chess check`` on positions of fresh panel games (another seed): the
  dense instance (:func:`chess_exp.analysis.check.build_instance`), the learner's exact distribution
  (:func:`~chess_exp.analysis.check.learner_matrix`) and the rows of
  :func:`~chess_exp.analysis.check.evaluate` (the core's maths, intervals over games). No maths is
  repeated here: the cell keeps the model's margin over the best expert at tau -> 0 and tau = 1 with
  its 95% interval, eps*, the oracle agreement and tau*.

The theory's reading: the learner beats the best expert exactly when its own break-even noise
eps*(f) = (R(oracle) - R(f)) / (R(oracle) - R(uniform)) is below ``eps_min`` (each noisy expert's eps*
is its own eps), so the map's second panel draws eps*(f_max) against ``eps_min`` with the diagonal.

Every finished cell is written atomically to ``cells/<key>.json``; a rerun with the same ``--out``
and options skips finished cells (games, training runs and the reward cache resume too), so an
interrupted run continues at the next cell with the same numbers.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["noisy_panel", "cell_key", "run_cell", "summarise_rows", "run", "write_outputs", "main",
           "add_arguments"]

DEFAULT_EPS_MIN = (0.1, 0.3, 0.5, 0.6, 0.7, 0.8)
DEFAULT_BUDGETS = (1.0, 4.0, 16.0)
VISITED = "train visits >= 10"


def noisy_panel(eps_min: float, *, nodes: int = 50, step: float = 0.1, k: int = 3):
    """Three (``k``) noisy experts with random-move rates ``eps_min + i * step`` (capped at 1) over a
    Stockfish oracle with ``nodes`` nodes; named ``noisy-min<eps_min>``."""
    from chess_exp.experts.oracle import EngineSpec
    from chess_exp.experts.panel import Panel
    from chess_exp.experts.policies import ExpertSpec

    if not 0.0 <= eps_min <= 1.0:
        raise ValueError(f"eps_min: must be in [0, 1], got {eps_min}")
    eps = sorted({round(min(1.0, eps_min + i * step), 6) for i in range(k)})
    return Panel(name=f"noisy-min{eps_min:g}", experts=tuple(ExpertSpec(name=f"noisy-eps{e:g}", eps=e) for e in eps),
                 engine=EngineSpec(nodes=nodes),
                 description=f"Stockfish ({nodes} nodes) with random-move rates {', '.join(f'{e:g}' for e in eps)}")


def cell_key(eps_min: float, budget: float) -> str:
    return f"eps{eps_min:g}_b{budget:g}"


def _pick(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("reward", "ci_low", "ci_high", "margin", "margin_ci_low", "margin_ci_high", "transcends",
            "eps_star", "oracle_agreement", "tau_star")
    return {k: row[k] for k in keys}


def summarise_rows(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per subset: the model at tau -> 0 and tau = 1 and the exact mixture at tau -> 0 (each: R,
    margin over the best expert with its interval, transcends, eps*, oracle agreement, tau*)."""
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        s = out.setdefault(r["subset"], {"n_positions": r["n_positions"], "n_games": r["n_games"],
                                         "best_expert": r["best_expert"]})
        if r["player"] == r["best_expert"]:
            s["best_expert_reward"] = r["reward"]
        for player, tau, name in (("model", 0.0, "model_tau0"), ("model", 1.0, "model_tau1"),
                                  ("mixture", 0.0, "mixture_tau0")):
            if r["player"] == player and r["temperature"] == tau:
                s[name] = _pick(r)
    return out


def _options(a: argparse.Namespace) -> dict[str, Any]:
    """The options a cell's numbers depend on (a rerun must give the same)."""
    return {"train_games": a.train_games, "test_games": a.test_games, "n": a.n, "expert_nodes": a.expert_nodes,
            "nodes": a.nodes, "hidden": a.hidden, "layers": a.layers, "batch": a.batch, "lr": a.lr, "warmup": a.warmup,
            "seed": a.seed, "train_seed": a.train_seed, "test_seed": a.test_seed, "max_moves": a.max_moves,
            "boot": a.boot, "max_ply": a.max_ply}


def run_cell(a: argparse.Namespace, eps_min: float, budget: float, out: Path,
             log: Callable[[str], None] = print) -> dict[str, Any]:
    """Games (reused), training (resumed), the check: the cell's record (not yet written)."""
    import torch

    from chess_exp.analysis import check
    from chess_exp.analysis.reward import RewardOracle
    from chess_exp.experts.generate import generate_games
    from chess_exp.experts.oracle import Oracle, position_key
    from chess_exp.experts.panel import build_experts
    from chess_exp.model import board as bp

    t0 = time.time()
    panel = noisy_panel(eps_min, nodes=a.expert_nodes)
    from chess_exp.experts.oracle import default_cache_dir
    cache = Path(a.experts_cache) if a.experts_cache else default_cache_dir()
    gdir = out / "games" / f"eps{eps_min:g}"
    kw = dict(workers=1, cache_dir=cache, stockfish=a.stockfish, max_moves=a.max_moves, progress=False)
    train_pgn = generate_games(panel, a.train_games, gdir / "train.pgn", seed=a.train_seed, **kw)
    test_pgn = generate_games(panel, a.test_games, gdir / "test.pgn", seed=a.test_seed, **kw)
    t_games = time.time() - t0

    cfg = bp.TrainConfig(games=str(train_pgn), max_games=0,
                         model=bp.BoardPolicyConfig(hidden=a.hidden, layers=a.layers), batch=a.batch, lr=a.lr,
                         epochs=float(budget), warmup=min(100, a.warmup), seed=a.seed, threads=a.threads,
                         log_every=10 ** 9, ckpt_every=a.ckpt_every)
    run_dir = out / "train" / cell_key(eps_min, budget)
    t1 = time.time()
    ckpt = bp.train(cfg, run_dir, log=lambda line: None)
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    t_train = time.time() - t1

    positions = check.sample_positions(test_pgn, a.n, seed=a.seed, max_ply=a.max_ply)
    oracle = Oracle(panel.engine, cache_dir=cache, stockfish=a.stockfish)
    try:
        experts = build_experts(panel, oracle)
        best = [oracle.best_move(p.board) for p in positions]
        with RewardOracle(a.stockfish, nodes=a.nodes, cache=a.reward_cache) as ro:
            ranked = ro.many([p.board for p in positions])
        inst = check.build_instance(positions, experts, panel.probabilities, [dict(x) for x in ranked], best,
                                    panel.names)
    finally:
        oracle.close()
    model = bp.load_board_policy(ckpt)
    dists = [(m, p) for m, p, _ in model.move_distributions([p.board for p in positions])]
    learner = check.learner_matrix(inst, dists)
    keys = [position_key(p.board) for p in positions]
    counts = check.visit_counts(train_pgn, set(keys))
    visits = np.array([counts[k] for k in keys])
    subsets = {"all": np.ones(len(positions), dtype=bool), VISITED: visits >= 10}
    rows = check.evaluate(inst, {"model": learner}, temperatures=(0.0, 1.0), subsets=subsets, seed=a.seed,
                          n_boot=a.boot)
    return {"key": cell_key(eps_min, budget), "eps_min": eps_min, "budget_epochs": float(budget),
            "experts": [e.eps for e in panel.experts], "panel": panel.name, "oracle": panel.engine.tag,
            "options": _options(a),
            "train": {"steps": int(state["step"]), "positions": int(state["n_positions"]),
                      "cpu_s": round(float(state["cpu_s"]), 1), "wall_s": round(float(state["wall_s"]), 1)},
            "subsets": summarise_rows(rows), "rows": rows,
            "seconds": {"games": round(t_games, 1), "train": round(t_train, 1),
                        "total": round(time.time() - t0, 1)}}


# --- outputs -------------------------------------------------------------------------------------

def _f(v: Any, nd: int = 4, sign: bool = True) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:+.{nd}f}" if sign else f"{v:.{nd}f}"


def _margin(m: dict | None) -> str:
    if not m:
        return "-"
    star = " **✓**" if m["transcends"] else ""
    return f"{_f(m['margin'])} [{_f(m['margin_ci_low'])}, {_f(m['margin_ci_high'])}]{star}"


def table_markdown(cells: list[dict[str, Any]]) -> str:
    head = ("| ε_min | budget (epochs) | subset | positions (games) | model τ → 0: margin [95% CI] "
            "| model τ = 1: margin [95% CI] | ε*(f_max) | ε*(τ = 1) | oracle agr. (τ → 0) | mixture τ → 0: margin |\n"
            "|---|---|---|---|---|---|---|---|---|---|\n")
    lines = []
    for c in cells:
        for subset, s in c["subsets"].items():
            m0, m1, mx = s.get("model_tau0"), s.get("model_tau1"), s.get("mixture_tau0")
            lines.append(f"| {c['eps_min']:g} | {c['budget_epochs']:g} | {subset} | {s['n_positions']} ({s['n_games']}) "
                         f"| {_margin(m0)} | {_margin(m1)} | {_f(m0 and m0['eps_star'], 2, False)} "
                         f"| {_f(m1 and m1['eps_star'], 2, False)} | {_f(m0 and m0['oracle_agreement'], 2, False)} "
                         f"| {_margin(mx)} |")
    return head + "\n".join(lines) + "\n"


def plot_map(cells: list[dict[str, Any]], path: Path, *, subset: str = "all") -> None:
    """Left: the model's margin at tau -> 0 over (eps_min, budget), significant cells marked.
    Right: eps*(f_max) against eps_min per budget; below the diagonal the learner beats its best expert."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    eps = sorted({c["eps_min"] for c in cells})
    budgets = sorted({c["budget_epochs"] for c in cells})
    grid = np.full((len(budgets), len(eps)), np.nan)
    sig = np.zeros_like(grid, dtype=bool)
    npos = np.zeros_like(grid, dtype=int)
    for c in cells:
        m = c["subsets"].get(subset, {}).get("model_tau0")
        if m:
            i, j = budgets.index(c["budget_epochs"]), eps.index(c["eps_min"])
            grid[i, j], sig[i, j] = m["margin"], m["transcends"]
            npos[i, j] = c["subsets"][subset]["n_positions"]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    lim = float(np.nanmax(np.abs(grid))) if np.isfinite(grid).any() else 1.0
    im = ax.imshow(grid, cmap="RdBu", vmin=-lim, vmax=lim, origin="lower", aspect="auto")
    for i in range(len(budgets)):
        for j in range(len(eps)):
            if np.isfinite(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:+.3f}" + (" ✓" if sig[i, j] else "") + f"\nn={npos[i, j]}",
                        ha="center", va="center",
                        fontsize=8, fontweight="bold" if sig[i, j] else "normal",
                        color="white" if abs(grid[i, j]) > lim / 2 else "black")
    ax.set_xticks(range(len(eps)), [f"{e:g}" for e in eps])
    ax.set_yticks(range(len(budgets)), [f"{b:g}" for b in budgets])
    ax.set_xlabel("ε_min: the best expert's random-move rate")
    ax.set_ylabel("training budget (epochs)")
    ax.set_title(f"margin of f_max over the best expert ({subset});\n✓: 95% interval over games above 0",
                 fontsize=9)
    fig.colorbar(im, ax=ax, label="R(f_max) − R(best expert)")
    for b in budgets:
        pts = sorted((c["eps_min"], c["subsets"][subset]["model_tau0"]["eps_star"]) for c in cells
                     if c["budget_epochs"] == b and c["subsets"].get(subset, {}).get("model_tau0"))
        if pts:
            ax2.plot(*zip(*pts), marker="o", label=f"{b:g} epochs")
    mix = sorted({(c["eps_min"], c["subsets"][subset]["mixture_tau0"]["eps_star"]) for c in cells
                  if c["subsets"].get(subset, {}).get("mixture_tau0")})
    if mix:
        ax2.plot(*zip(*mix), color="0.3", ls=":", marker="x", label="exact mixture, τ → 0")
    ax2.plot([0, 1], [0, 1], color="0.5", ls="--", lw=1, label="ε* = ε_min (break-even)")
    ax2.set_xlim(0, 1)
    lowest = min([0.0] + [y for line in ax2.get_lines() for y in np.asarray(line.get_ydata(), dtype=float)])
    ax2.set_ylim(bottom=lowest - 0.05)
    ax2.set_xlabel("ε_min")
    ax2.set_ylabel("ε*(f_max): the learner's break-even noise")
    ax2.set_title("theory: transcendence where ε*(f_max) < ε_min (below the diagonal)", fontsize=9)
    ax2.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)


def write_outputs(out: Path, cells: list[dict[str, Any]], meta: dict[str, Any]) -> None:
    from transcendence.io import atomic_write_json, atomic_write_text

    slim = [{k: v for k, v in c.items() if k != "rows"} for c in cells]
    atomic_write_json(out / "results.json", {**meta, "cells": slim})
    atomic_write_text(out / "results.md", "# chess map: the learner's margin over its best expert\n\n"
                      "Margin = R(model) − R(best expert, ε = ε_min); 95% intervals over games; "
                      "**✓**: interval above 0.\n\n" + table_markdown(cells))
    if cells:
        plot_map(cells, out / "map.png")
    if any(c["subsets"].get(VISITED, {}).get("model_tau0") for c in cells):
        plot_map(cells, out / "map_visited.png", subset=VISITED)


# --- the command ---------------------------------------------------------------------------------

def _floats(text: str) -> tuple[float, ...]:
    try:
        vals = tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not vals or any(not math.isfinite(v) for v in vals):
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}")
    return vals


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="map directory (a rerun with the same options resumes it)")
    p.add_argument("--eps-min", type=_floats, default=DEFAULT_EPS_MIN,
                   help="best experts' random-move rates; each panel is eps, eps+0.1, eps+0.2 (default "
                        + ",".join(f"{e:g}" for e in DEFAULT_EPS_MIN) + ")")
    p.add_argument("--budgets", type=_floats, default=DEFAULT_BUDGETS,
                   help="training budgets in epochs over the training games (default "
                        + ",".join(f"{b:g}" for b in DEFAULT_BUDGETS) + ")")
    p.add_argument("--train-games", type=int, default=3000, help="training games per panel (default 3000)")
    p.add_argument("--test-games", type=int, default=200, help="fresh test games per panel (default 200)")
    p.add_argument("--n", type=int, default=400, help="test positions per cell (default 400)")
    p.add_argument("--max-ply", type=int, default=None, help="test positions at plies < this only")
    p.add_argument("--expert-nodes", type=int, default=50, help="the experts' Stockfish nodes (default 50)")
    p.add_argument("--nodes", type=int, default=20_000, help="Stockfish nodes per reward (default 20000)")
    p.add_argument("--max-moves", type=int, default=None, help="plies per generated game (default: the generator's)")
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--threads", type=int, default=1, help="torch threads for training (default 1)")
    p.add_argument("--ckpt-every", type=int, default=200, help="training checkpoint every N steps")
    p.add_argument("--seed", type=int, default=0, help="training, position sampling and bootstrap seed")
    p.add_argument("--train-seed", type=int, default=0, help="seed of the training games")
    p.add_argument("--test-seed", type=int, default=2002, help="seed of the test games (never trained on)")
    p.add_argument("--boot", type=int, default=2000, help="bootstrap resamples (default 2000)")
    p.add_argument("--max-cells", type=int, default=0, help="compute at most N new cells in this call (0: all)")
    p.add_argument("--experts-cache", default=None, help="oracle best-move cache directory (default: the shared one)")
    p.add_argument("--reward-cache", default=None, help="SQLite reward cache (default: the shared one)")
    p.add_argument("--stockfish", default=None, help="Stockfish binary")
    p.set_defaults(func=main)


def _validate(a: argparse.Namespace) -> str | None:
    if any(not 0 <= e <= 1 for e in a.eps_min):
        return f"--eps-min: each must be in [0, 1], got {','.join(f'{e:g}' for e in a.eps_min)}"
    if any(b <= 0 for b in a.budgets):
        return f"--budgets: each must be > 0 epochs, got {','.join(f'{b:g}' for b in a.budgets)}"
    for name in ("train_games", "test_games", "n", "expert_nodes", "nodes", "hidden", "layers", "batch", "threads",
                 "ckpt_every"):
        if getattr(a, name) < 1:
            return f"--{name.replace('_', '-')}: must be >= 1, got {getattr(a, name)}"
    if a.boot < 100:
        return f"--boot: must be >= 100, got {a.boot}"
    if a.max_cells < 0:
        return f"--max-cells: must be >= 0, got {a.max_cells}"
    return None


def run(a: argparse.Namespace, log: Callable[[str], None] = print,
        cell_fn: Callable[..., dict[str, Any]] = run_cell) -> dict[str, Any]:
    from chess_exp.experts.generate import MAX_MOVES
    from transcendence.io import atomic_write_json

    if a.max_moves is None:
        a.max_moves = MAX_MOVES
    out = Path(a.out)
    opts = _options(a)
    cfg_path = out / "config.json"
    if cfg_path.exists():
        old = json.loads(cfg_path.read_text())
        if old != opts:
            diff = sorted(k for k in set(old) | set(opts) if old.get(k) != opts.get(k))
            raise ValueError(f"--out: {out} holds a map made with other "
                             f"{', '.join('--' + k.replace('_', '-') for k in diff)}; "
                             f"rerun with the same options or give another --out")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(cfg_path, opts)
    cells, new = [], 0
    t0 = time.time()
    grid = [(e, b) for e in a.eps_min for b in a.budgets]
    stopped = False
    for i, (e, b) in enumerate(grid):
        path = out / "cells" / f"{cell_key(e, b)}.json"
        if path.exists():
            cell = json.loads(path.read_text())
            log(f"[{i + 1}/{len(grid)}] {cell_key(e, b)}: done before, reused")
        else:
            if a.max_cells and new >= a.max_cells:
                stopped = True
                break
            cell = cell_fn(a, e, b, out, log)
            atomic_write_json(path, cell)
            new += 1
            s = cell["subsets"]["all"]["model_tau0"]
            log(f"[{i + 1}/{len(grid)}] {cell_key(e, b)}: margin(τ→0) {s['margin']:+.4f} "
                f"[{s['margin_ci_low']:+.4f}, {s['margin_ci_high']:+.4f}], ε* {s['eps_star']:.2f} "
                f"({cell['seconds']['total']:.0f} s)")
        cells.append(cell)
    meta = {"argv": " ".join(sys.argv), "options": opts, "eps_min": list(a.eps_min), "budgets": list(a.budgets),
            "complete": len(cells) == len(grid), "interval": "95% percentile bootstrap over games",
            "seconds_this_call": round(time.time() - t0, 1)}
    write_outputs(out, cells, meta)
    if stopped:
        log(f"stopped after {new} new cell(s) (--max-cells); run again to continue")
    log(f"wrote {out / 'results.json'}, {out / 'results.md'}, {out / 'map.png'} [and map_visited.png] "
        f"({len(cells)}/{len(grid)} cells)")
    return {**meta, "cells": cells}


def main(a: argparse.Namespace) -> int:
    from chess_exp.analysis._cli import exit_status
    return exit_status(_validate, run, a)


def _parse(argv: Sequence[str]) -> argparse.Namespace:  # for tests and scripts
    p = argparse.ArgumentParser()
    add_arguments(p)
    return p.parse_args(list(argv))
