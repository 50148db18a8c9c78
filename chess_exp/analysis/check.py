"""``transcendence chess check``: transcendence on chess positions, checked exactly as the core defines it.

A set of N chess positions is an instance of the core's formal setup:

* inputs x: the N test positions, with a uniform test distribution (each position weight 1/N);
* outputs y: each position's legal moves, sorted by UCI (the experts' order); rows are padded to
  the widest position, and padding gets probability 0 from every policy and reward 0;
* experts ``(k, N, Y)``: each synthetic expert's exact policy (``chess_exp.experts``);
* learner ``(N, Y)``: a trained model's exact distribution over the legal moves;
* reward ``(N, Y)``: Stockfish's expected score for the mover after the move
  (``chess_exp.analysis.reward``, a fixed node limit, cached on disk and shared with the analyses).

Everything else is the core: :func:`transcendence.mixture`, :func:`~transcendence.temper`,
:func:`~transcendence.tempered_reward`, :func:`~transcendence.check_transcendence`,
:func:`~transcendence.critical_temperature` and :func:`~transcendence.favor`. This module only builds
the arrays and attaches intervals: positions of one game are dependent, so every 95% interval is a
percentile bootstrap over games (``chess_exp.analysis.stats.bootstrap_mean`` on per-game means
weighted by their number of positions, i.e. a cluster bootstrap of the position mean).

Per row (player, temperature, subset): the expected reward R with its interval, the margin over the
best expert of the subset (per position: the core's favor of the player over that expert) with its
interval, the break-even noise

.. math:: \\varepsilon^*(\\pi) = \\frac{R(\\text{oracle}) - R(\\pi)}{R(\\text{oracle}) - R(\\text{uniform})}

(``pi`` beats every noisy expert whose error rate exceeds it), the probability it gives the
oracle's move, and for the model the mass its unmasked softmax puts on legal moves.
"""

from __future__ import annotations

import argparse
import functools
import math
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import chess
import numpy as np

import transcendence as tr
from chess_exp.analysis._cli import exit_status, nonneg_floats
from transcendence.config import add_config_arguments, config_from_args

__all__ = ["Position", "Instance", "sample_positions", "build_instance", "learner_matrix",
           "cluster_interval", "evaluate", "model_critical_temperature", "visit_counts", "main",
           "add_arguments", "CheckConfig"]

DEFAULT_TEMPERATURES = (0.0, 0.1, 0.25, 0.5, 1.0)
DEFAULT_NODES = 20_000


@dataclass(frozen=True)
class Position:
    """One test position: the game it comes from (the bootstrap cluster), the ply, the board with
    its move stack, and the SAN moves that led to it (the transcript model's prompt)."""

    game: str
    ply: int
    board: chess.Board
    sans: tuple[str, ...]


@dataclass
class Instance:
    """The dense core instance built from positions."""

    positions: list[Position]
    moves: list[list[chess.Move]]  # legal moves per position (sorted by UCI); columns of the arrays
    experts: np.ndarray  # (k, N, Y)
    expert_names: list[str]
    weights: np.ndarray  # (k,) panel weights
    reward: np.ndarray  # (N, Y), 0 on padding
    oracle: np.ndarray  # (N, Y) one-hot on the oracle's move
    uniform: np.ndarray  # (N, Y) uniform over the legal moves
    legal: np.ndarray  # (N, Y) bool

    @property
    def test(self) -> np.ndarray:
        n = len(self.positions)
        return np.full(n, 1.0 / n)

    @property
    def clusters(self) -> np.ndarray:
        return np.array([p.game for p in self.positions])


# --- positions -----------------------------------------------------------------------------------

def _read_games(source: str | Path, max_games: int | None):
    from chess_exp.data.readers import read_games

    out = []
    for g in read_games(source):
        out.append(g)
        if max_games is not None and len(out) >= max_games:
            break
    return out


def sample_positions(source: str | Path, n: int, *, seed: int, min_ply: int = 0,
                     max_ply: int | None = None, max_games: int | None = None) -> list[Position]:
    """``n`` positions drawn without replacement (with ``default_rng(seed)``) from all positions
    before a played move at plies ``min_ply <= ply < max_ply`` of the games of ``source`` (any file
    ``chess_exp.data.readers.read_games`` takes: PGN or CSV, compressed or not)."""
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"positions: {source} not found (a PGN/CSV of games, e.g. from "
                                f"`transcendence chess experts generate` with a new --seed)")
    games = _read_games(source, max_games)
    if not games:
        raise ValueError(f"positions: no readable game in {source}")
    cands = [(gi, p) for gi, g in enumerate(games)
             for p in range(min_ply, len(g.sans) if max_ply is None else min(len(g.sans), max_ply))]
    if len(cands) < n:
        raise ValueError(f"n: {source} has only {len(cands)} positions in the ply range; ask for fewer")
    rng = np.random.default_rng(seed)
    chosen = sorted(cands[i] for i in rng.choice(len(cands), size=n, replace=False))
    out: list[Position] = []
    for gi, ply in chosen:
        g = games[gi]
        board = chess.Board()
        for san in g.sans[:ply]:
            board.push_san(san)
        out.append(Position(game=f"{gi}:{g.game_id}", ply=ply, board=board, sans=tuple(g.sans[:ply])))
    return out


_VISITS: dict[tuple, dict[str, int]] = {}


def visit_counts(pgn: str | Path, keys: set[str], *, max_games: int | None = None) -> dict[str, int]:
    """How often the games of ``pgn`` visit each position key in ``keys`` (the oracle's key).
    The counts of a file are kept in memory for later calls in the same process."""
    from collections import Counter

    from chess_exp.experts.oracle import position_key

    path = Path(pgn)
    memo = (str(path.resolve()), path.stat().st_mtime_ns, max_games)
    if memo not in _VISITS:
        counts: Counter = Counter()
        for g in _read_games(path, max_games):
            board = chess.Board()
            for san in g.sans:
                counts[position_key(board)] += 1
                board.push_san(san)
        _VISITS.clear()
        _VISITS[memo] = dict(counts)
    allc = _VISITS[memo]
    return {k: allc.get(k, 0) for k in keys}


# --- the dense instance ----------------------------------------------------------------------------

def build_instance(positions: Sequence[Position], experts: Sequence[Any], weights: Sequence[float] | np.ndarray,
                   rewards: Sequence[dict[chess.Move, float]], oracle_moves: Sequence[chess.Move],
                   expert_names: Sequence[str] | None = None) -> Instance:
    """Dense arrays from positions, expert policies (``expert.probs(board, moves)``), one
    ``{move: reward}`` per position and the oracle's move per position."""
    from chess_exp.experts.policies import legal_moves

    if not positions:
        raise ValueError("positions: need at least one position")
    moves = [legal_moves(p.board) for p in positions]
    if any(not m for m in moves):
        raise ValueError("positions: every position needs a legal move")
    n, y, k = len(positions), max(len(m) for m in moves), len(experts)
    e = np.zeros((k, n, y))
    reward = np.zeros((n, y))
    oracle = np.zeros((n, y))
    uniform = np.zeros((n, y))
    legal = np.zeros((n, y), dtype=bool)
    for x, (pos, ms) in enumerate(zip(positions, moves)):
        L = len(ms)
        legal[x, :L] = True
        uniform[x, :L] = 1.0 / L
        for i, ex in enumerate(experts):
            e[i, x, :L] = ex.probs(pos.board, ms)
        missing = [m for m in ms if m not in rewards[x]]
        if missing:
            raise ValueError(f"rewards: no reward for {missing[0].uci()} in {pos.board.fen()}")
        reward[x, :L] = [rewards[x][m] for m in ms]
        oracle[x, ms.index(oracle_moves[x])] = 1.0
    names = list(expert_names) if expert_names is not None else [getattr(ex, "name", f"expert{i}")
                                                                 for i, ex in enumerate(experts)]
    return Instance(list(positions), moves, e, names, np.asarray(weights, dtype=float), reward, oracle,
                    uniform, legal)


def learner_matrix(inst: Instance, dists: Sequence[tuple[list[chess.Move], np.ndarray]]) -> np.ndarray:
    """(N, Y) learner from per-position ``(moves, probs)`` (any move order); padding gets 0."""
    f = np.zeros(inst.reward.shape)
    for x, (ms, probs) in enumerate(dists):
        col = {m: j for j, m in enumerate(inst.moves[x])}
        if set(ms) != set(col):
            raise ValueError(f"learner: its moves at position {x} are not the legal moves")
        for m, p in zip(ms, probs):
            f[x, col[m]] = p
    return f


# --- statistics ----------------------------------------------------------------------------------

def cluster_interval(values: np.ndarray, clusters: np.ndarray, *, rng: np.random.Generator,
                     n_boot: int = 2000, level: float = 0.95):
    """Mean of per-position ``values`` with a percentile interval from resampling whole clusters
    (games): the mean of per-cluster means weighted by cluster size is the position mean."""
    from chess_exp.analysis.stats import cluster_bootstrap_mean

    return cluster_bootstrap_mean(values, clusters, rng=rng, n_boot=n_boot, level=level)


def _per_position_reward(policy: np.ndarray, reward: np.ndarray) -> np.ndarray:
    return np.einsum("xy,xy->x", policy, reward)


def model_critical_temperature(experts: np.ndarray, learner: np.ndarray, reward: np.ndarray,
                               test: np.ndarray) -> float | None:
    """The learner's tau*: the largest tau with the tempered learner beating the best expert on
    every (0, tau*); ``None`` when its argmax does not beat the best expert.

    Computed by :func:`transcendence.critical_temperature` on the panel plus the learner with all
    the weight on the learner (the "mixture" is then the learner itself). That instance's best
    "expert" includes the learner at tau = 1, so when the learner at tau = 1 already beats the
    panel the crossing is instead located on :func:`transcendence.tempered_reward` directly (a
    log grid from 1e-4 to 1e4 refined by Brent's method; ``inf`` when none).
    """
    best = float(np.max(tr.expected_reward(experts, reward, test)))
    if tr.expected_reward(learner, reward, test) <= best:
        stacked = np.concatenate([experts, learner[None]], axis=0)
        w = np.zeros(len(stacked))
        w[-1] = 1.0
        return tr.critical_temperature(stacked, reward, test, weights=w)
    from scipy.optimize import brentq

    taus = np.logspace(-4, 4, 129)
    m = np.asarray(tr.tempered_reward(learner, taus, reward, test)) - best
    if tr.tempered_reward(learner, 0.0, reward, test) - best <= 0 or m[0] <= 0:
        return None
    below = np.flatnonzero(m <= 0)
    if below.size == 0:
        return math.inf
    j = int(below[0])
    g = lambda lt: float(tr.tempered_reward(learner, math.exp(lt), reward, test)) - best  # noqa: E731
    return float(math.exp(brentq(g, math.log(taus[j - 1]), math.log(taus[j]), xtol=1e-12)))


def _row(player: str, tau: float, policy: np.ndarray, value: float, extra: dict | None = None, *,
         subset: str, reward: np.ndarray, best_policy: np.ndarray, clusters: np.ndarray, oracle: np.ndarray,
         r_oracle: float, gap: float, best_name: str, rng: np.random.Generator, n_boot: int) -> dict[str, Any]:
    """One result row: R and the margin over the best expert with intervals over games, eps*, agreement."""
    per_pos = _per_position_reward(policy, reward)
    assert abs(per_pos.mean() - value) < 1e-9, "per-position rewards disagree with the core"
    margin_pos = tr.favor(policy, best_policy, reward)  # the core's per-input favor over the best expert
    iv = cluster_interval(per_pos, clusters, rng=rng, n_boot=n_boot)
    ivm = cluster_interval(margin_pos, clusters, rng=rng, n_boot=n_boot)
    out = {"subset": subset, "n_positions": int(len(clusters)), "n_games": int(len(np.unique(clusters))),
           "player": player, "temperature": tau, "reward": value, "ci_low": iv.lo, "ci_high": iv.hi,
           "margin": float(margin_pos.mean()), "margin_ci_low": ivm.lo, "margin_ci_high": ivm.hi,
           "transcends": bool(ivm.lo > 0),
           "eps_star": float((r_oracle - value) / gap) if gap > 0 else float("nan"),
           "oracle_agreement": float((policy * oracle).sum(axis=1).mean()),
           "best_expert": best_name, "legal_mass": None, "tau_star": None}
    out.update(extra or {})
    return out


def evaluate(inst: Instance, learners: dict[str, np.ndarray], *, temperatures: Sequence[float],
             subsets: dict[str, np.ndarray] | None = None, legal_mass: dict[str, np.ndarray] | None = None,
             seed: int = 0, n_boot: int = 2000, mode: str = "logit") -> list[dict[str, Any]]:
    """One row per (subset, player, temperature): see the module docstring for the fields.

    Players: every expert (its own policy, temperature 1), the oracle and the uniform mover
    (references), the exact mixture of the panel and each learner at every temperature.
    """
    subsets = subsets if subsets is not None else {"all": np.ones(len(inst.positions), dtype=bool)}
    legal_mass = legal_mass or {}
    rows: list[dict[str, Any]] = []
    for s_i, (subset, mask) in enumerate(subsets.items()):
        idx = np.flatnonzero(mask)
        if idx.size == 0:
            continue
        rng = np.random.default_rng([seed, s_i])
        e, r = inst.experts[:, idx], inst.reward[idx]
        clusters = inst.clusters[idx]
        test = np.full(idx.size, 1.0 / idx.size)
        base = tr.check_transcendence(e, r, test, temperature=0.0, weights=inst.weights, mode=mode)
        best = base.best_expert
        r_oracle = float(tr.expected_reward(inst.oracle[idx], r, test))
        r_uniform = float(tr.expected_reward(inst.uniform[idx], r, test))
        gap = r_oracle - r_uniform

        row = functools.partial(_row, subset=subset, reward=r, best_policy=e[best], clusters=clusters,
                                oracle=inst.oracle[idx], r_oracle=r_oracle, gap=gap,
                                best_name=inst.expert_names[best], rng=rng, n_boot=n_boot)

        for i, name in enumerate(inst.expert_names):
            rows.append(row(name, 1.0, e[i], float(base.expert_rewards[i])))
        rows.append(row("oracle", 0.0, inst.oracle[idx], r_oracle))
        rows.append(row("uniform", 1.0, inst.uniform[idx], r_uniform))
        mix = tr.mixture(e, weights=inst.weights)
        tau_star_mix = tr.critical_temperature(e, r, test, weights=inst.weights, mode=mode)
        for tau in temperatures:
            res = tr.check_transcendence(e, r, test, temperature=tau, weights=inst.weights, mode=mode)
            rows.append(row("mixture", float(tau), tr.temper(mix, tau, mode=mode), res.predictor_reward,
                            {"tau_star": tau_star_mix}))
        for name, f in learners.items():
            f_s = f[idx]
            tau_star = model_critical_temperature(e, f_s, r, test)
            lm = legal_mass.get(name)
            for tau in temperatures:
                value = float(tr.tempered_reward(f_s, tau, r, test, mode=mode))
                rows.append(row(name, float(tau), tr.temper(f_s, tau, mode=mode), value,
                                {"tau_star": tau_star,
                                 "legal_mass": None if lm is None else float(np.mean(lm[idx]))}))
    return rows


# --- output --------------------------------------------------------------------------------------

def _fmt(v: Any, nd: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if math.isnan(v):
            return "-"
        if math.isinf(v):
            return "inf"
        return f"{v:.{nd}f}"
    return str(v)


def table_markdown(rows: list[dict[str, Any]]) -> str:
    head = ("| subset | n (games) | player | τ | R [95% CI] | margin vs best [95% CI] | ε* | oracle agr. "
            "| legal mass | τ* |\n|---|---|---|---|---|---|---|---|---|---|\n")
    lines = []
    for r in rows:
        star = " **✓**" if r["transcends"] and r["player"] not in ("oracle",) else ""
        lines.append(
            f"| {r['subset']} | {r['n_positions']} ({r['n_games']}) | {r['player']} | {_fmt(r['temperature'], 2)} "
            f"| {_fmt(r['reward'])} [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}] "
            f"| {r['margin']:+.4f} [{r['margin_ci_low']:+.4f}, {r['margin_ci_high']:+.4f}]{star} "
            f"| {_fmt(r['eps_star'], 2)} | {_fmt(r['oracle_agreement'], 2)} | {_fmt(r['legal_mass'], 2)} "
            f"| {_fmt(r['tau_star'], 3)} |")
    return head + "\n".join(lines) + "\n"


def plot_figure(inst: Instance, learners: dict[str, np.ndarray], path: Path, *, subset: str = "all",
                mask: np.ndarray | None = None, seed: int = 0, n_boot: int = 500, mode: str = "logit") -> None:
    """R against tau: each learner with its 95% band, the exact mixture, each expert a horizontal
    line, tau* marked; tau = 0 (argmax) drawn at the left edge."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    idx = np.flatnonzero(mask) if mask is not None else np.arange(len(inst.positions))
    e, r = inst.experts[:, idx], inst.reward[idx]
    test = np.full(idx.size, 1.0 / idx.size)
    taus = np.logspace(-2, 1, 31)
    tau0 = taus[0] / 2  # where tau = 0 is drawn
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, name in enumerate(inst.expert_names):
        ax.axhline(float(tr.expected_reward(e[i], r, test)), color="0.5", lw=1, ls=[":", "--", "-."][i % 3],
                   label=f"{name}")
    mix = tr.mixture(e, weights=inst.weights)
    rm = tr.tempered_reward(mix, np.concatenate([[0.0], taus]), r, test, mode=mode)
    ax.plot(np.concatenate([[tau0], taus]), rm, color=colors[0], label="exact mixture")
    ts = tr.critical_temperature(e, r, test, weights=inst.weights, mode=mode)
    if ts is not None and math.isfinite(ts):
        ax.axvline(ts, color=colors[0], lw=0.8, ls="--", label=f"τ* of the mixture = {ts:.3g}")
    rng = np.random.default_rng(seed)
    clusters = inst.clusters[idx]
    for j, (name, f) in enumerate(learners.items()):
        f_s = f[idx]
        grid = np.concatenate([[0.0], taus])
        vals = tr.tempered_reward(f_s, grid, r, test, mode=mode)
        lo, hi = [], []
        for tau in grid:
            iv = cluster_interval(_per_position_reward(tr.temper(f_s, tau, mode=mode), r), clusters, rng=rng,
                                  n_boot=n_boot)
            lo.append(iv.lo)
            hi.append(iv.hi)
        c = colors[(j + 1) % len(colors)]
        xs = np.concatenate([[tau0], taus])
        ax.plot(xs, vals, color=c, label=f"{name} (95% band over games)")
        ax.fill_between(xs, lo, hi, color=c, alpha=0.2)
        ts = model_critical_temperature(e, f_s, r, test)
        if ts is not None and math.isfinite(ts):
            ax.axvline(ts, color=c, lw=0.8, ls="--", label=f"τ* of {name} = {ts:.3g}")
    ax.set_xscale("log")
    ax.set_xlabel("temperature τ (leftmost point: τ → 0, argmax)")
    ax.set_ylabel("R: mean expected score of the mover")
    ax.set_title(f"chess check, {subset} ({idx.size} positions)")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)


# --- the command ---------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class CheckConfig:
    """What ``transcendence chess check`` does; each field is the option of the same name."""

    panel: str  # preset panel (`transcendence chess experts panels`)
    positions: str  # games to draw positions from: PGN/CSV (.pgn, .pgn.xz, .pgn.zst, .csv[.xz]), unseen in training
    n: int = 200  # number of positions
    out: str  # results directory
    checkpoint: str | None = None  # the learner: a board-policy run (chess_exp.model.board) or a transcript-model checkpoint
    model: bool = True  # false: experts and exact mixture only
    nodes: int = DEFAULT_NODES  # Stockfish nodes per reward
    temperatures: tuple[float, ...] = field(default=DEFAULT_TEMPERATURES,
                                            metadata={"parse": nonneg_floats})  # comma-separated (0 = argmax)
    seed: int = 0  # position sampling and bootstrap seed
    min_ply: int = 0  # draw positions at plies >= this
    max_ply: int | None = None  # draw positions at plies < this (e.g. 12: the opening)
    max_games: int = 3000  # read at most this many games of --positions
    visits: str | None = None  # training PGN: add subsets by how often it visits each test position (0, 1-9, >= 10)
    visits_games: int = 0  # count visits in the first N games of --visits only (the games trained on; 0: all)
    opening_plies: int = 12  # subset 'opening': plies < this
    boot: int = 2000  # bootstrap resamples
    workers: int = 1  # Stockfish processes for the rewards
    experts_cache: str | None = None  # oracle best-move cache directory
    reward_cache: str | None = None  # SQLite reward cache (default: the shared one)
    stockfish: str | None = None  # Stockfish binary


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_config_arguments(p, CheckConfig)
    p.set_defaults(func=main)


def _validate(a: CheckConfig) -> str | None:
    if a.n < 1:
        return f"--n: must be >= 1, got {a.n}"
    if a.nodes < 1:
        return f"--nodes: must be >= 1, got {a.nodes}"
    if a.boot < 100:
        return f"--boot: must be >= 100, got {a.boot}"
    if a.model and not a.checkpoint:
        return "--checkpoint: needed unless --model=false"
    if a.checkpoint and a.model and not Path(a.checkpoint).exists():
        return f"--checkpoint: {a.checkpoint} not found"
    if a.visits and not Path(a.visits).exists():
        return f"--visits: {a.visits} not found"
    if a.max_ply is not None and a.max_ply <= a.min_ply:
        return f"--max-ply: must be > --min-ply ({a.min_ply}), got {a.max_ply}"
    return None


def _learner_distributions(checkpoint: str, positions: list[Position]
                           ) -> tuple[list[tuple[list[chess.Move], np.ndarray]], np.ndarray | None, str]:
    """The model's exact distributions over legal moves, its legal mass (board policy only), family."""
    from chess_exp.model.board import board_checkpoint, load_board_policy
    ckpt = board_checkpoint(checkpoint)
    if ckpt is not None:
        board_model = load_board_policy(ckpt)
        out = board_model.move_distributions([p.board for p in positions])
        return [(m, p) for m, p, _ in out], np.array([lm for _, _, lm in out]), "board policy (MLP, from/to head)"
    from chess_exp.data.tokenizers import get_tokenizer
    from chess_exp.model.checkpoints import load_model
    from chess_exp.play.players import ModelPlayer
    model, meta = load_model(checkpoint)
    player = ModelPlayer(model, get_tokenizer(meta["tokenizer"]), policy="exact")
    dists = []
    for start in range(0, len(positions), 64):
        chunk = positions[start:start + 64]
        dists += player.move_distributions([p.board for p in chunk], [p.sans for p in chunk])
    return dists, None, "transcript GPT"


def run(a: CheckConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    from chess_exp.analysis.reward import RewardOracle
    from chess_exp.experts.oracle import Oracle, position_key
    from chess_exp.experts.panel import build_experts, get_panel
    from transcendence.io import atomic_write_json, atomic_write_text

    t0 = time.time()
    panel = get_panel(a.panel)
    positions = sample_positions(a.positions, a.n, seed=a.seed, min_ply=a.min_ply, max_ply=a.max_ply,
                                 max_games=a.max_games)
    out = Path(a.out)  # created only once the inputs are known to be good
    out.mkdir(parents=True, exist_ok=True)
    log(f"{len(positions)} positions from {len(set(p.game for p in positions))} games of {a.positions}")
    from chess_exp.experts.oracle import default_cache_dir
    oracle = Oracle(panel.engine, cache_dir=a.experts_cache or default_cache_dir(), stockfish=a.stockfish)
    try:
        experts = build_experts(panel, oracle)
        best = [oracle.best_move(p.board) for p in positions]
        with RewardOracle(a.stockfish, nodes=a.nodes, cache=a.reward_cache, workers=a.workers) as ro:
            t_r = time.time()
            ranked = ro.many([p.board for p in positions])
            reward_info = {**ro.describe(), "analysed": ro.n_analysed, "seconds": round(time.time() - t_r, 1)}
        inst = build_instance(positions, experts, panel.probabilities, [dict(x) for x in ranked], best,
                              panel.names)
    finally:
        oracle.close()
    log(f"rewards: {reward_info['analysed']} positions analysed ({reward_info['seconds']} s), the rest cached")
    learners: dict[str, np.ndarray] = {}
    legal_mass: dict[str, np.ndarray] = {}
    family = None
    if a.model:
        dists, lm, family = _learner_distributions(a.checkpoint, positions)
        learners["model"] = learner_matrix(inst, dists)
        if lm is not None:
            legal_mass["model"] = lm
    plies = np.array([p.ply for p in positions])
    subsets = {"all": np.ones(len(positions), dtype=bool), f"opening (ply < {a.opening_plies})": plies < a.opening_plies}
    visits = None
    if a.visits:
        keys = [position_key(p.board) for p in positions]
        counts = visit_counts(a.visits, set(keys), max_games=a.visits_games or None)
        visits = np.array([counts[k] for k in keys])
        subsets.update({"train visits 0": visits == 0, "train visits 1-9": (visits >= 1) & (visits < 10),
                        "train visits >= 10": visits >= 10})
    rows = evaluate(inst, learners, temperatures=a.temperatures, subsets=subsets, legal_mass=legal_mass,
                    seed=a.seed, n_boot=a.boot)
    table = table_markdown(rows)
    result = {"argv": " ".join(sys.argv),
              "panel": panel.name, "positions": str(a.positions), "n": len(positions), "seed": a.seed,
              "ply_range": [a.min_ply, a.max_ply], "reward": reward_info, "oracle": panel.engine.tag,
              "checkpoint": a.checkpoint if a.model else None, "model_family": family,
              "temperatures": list(a.temperatures), "interval": "95% percentile bootstrap over games",
              "subset_sizes": {k: int(v.sum()) for k, v in subsets.items()},
              "seconds": round(time.time() - t0, 1), "rows": rows}
    atomic_write_json(out / "results.json", result)
    atomic_write_text(out / "results.md", f"# chess check: {panel.name} on {a.positions}\n\n{table}")
    per_pos: dict[str, Any] = {"game": inst.clusters, "ply": plies, "reward": inst.reward, "experts": inst.experts,
               "oracle": inst.oracle, "legal": inst.legal}
    if visits is not None:
        per_pos["visits"] = visits
    for k, v in learners.items():
        per_pos[k] = v
    np.savez_compressed(out / "instance.npz", **per_pos)
    figures = []
    for name, mask in subsets.items():
        if mask.sum() < 2:
            continue
        slug = "" if name == "all" else "_" + re.sub(r"[^a-z0-9]+", "_", name.replace(">=", "ge")).strip("_")
        figures.append(out / f"r_vs_tau{slug}.png")
        plot_figure(inst, learners, figures[-1], subset=name, mask=mask, seed=a.seed, mode="logit")
    log(table)
    log(f"wrote {out / 'results.json'}, {out / 'results.md'}, {', '.join(str(f) for f in figures)} "
        f"({time.time() - t0:.0f} s)")
    return result


def main(args: argparse.Namespace) -> int:
    return exit_status(_validate, run, config_from_args(CheckConfig, args))
