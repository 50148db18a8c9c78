"""The human majority vote on real games: does the most frequent move beat the human mixture?

The paper's mechanism (Prop. 2-4) says a low-temperature model acts as a majority vote of the
experts it imitates. Here we measure that directly on people, with no model in between. For each
rating cap (games where both players are rated <= cap) and each position ``x`` (keyed by FEN
without move counters) visited more than ``threshold`` times:

* the empirical mixture f̄(y|x) = n(x, y) / n(x), i.e. the human policy at τ = 1;
* the empirical argmax: the most frequent move (ties: uniform over the tied moves), i.e. τ → 0;
* the reward r(x, y): the expected score for the mover after ``y``.

Per state, the favor of the vote over the mixture is F(x) = r_x(argmax) − r_x(f̄) (the favor of docs/paper-notes.md with
the human data in place of the model), averaged over the common states (plain and visit-weighted)
with percentile-bootstrap 95% intervals over states.

Rewards: by default from the ``[%eval]`` comment after the move in the data (lichess server
Stockfish, White's side, converted with python-chess's lichess WDL model for the mover), averaged
over the occurrences of (x, y); a move that ends the game gets 1 (mate) or ½ (stalemate,
insufficient material); any remaining move without an eval is scored by our Stockfish (multipv
over the position's legal moves, cached). ``--reward=stockfish`` scores every move with our
Stockfish instead. The counts of each source are in the results.

Writes ``<out>/results.json`` (per cap and threshold), ``<out>/states.csv`` (one row per common
state) and ``<out>/config.json``. Figure: ``paper_figs/analysis_majority.py``.
"""

from __future__ import annotations

import argparse
import math
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import chess
import numpy as np

from chess_exp.analysis import _cli
from chess_exp.analysis.games_io import iter_games, sample_pgn
from chess_exp.analysis.reward import DEFAULT_NODES, RewardOracle, eval_to_reward, terminal_reward
from chess_exp.analysis.stats import bootstrap_mean, paired_bootstrap_means

__all__ = ["MajorityConfig", "PlyTable", "collect_plies", "state_table", "summarize_states",
           "run_majority", "add_arguments", "main"]

SRC_EVAL, SRC_TERMINAL, SRC_STOCKFISH, SRC_MISSING = 0, 1, 2, 3
SOURCE_NAMES = {SRC_EVAL: "data_eval", SRC_TERMINAL: "game_end", SRC_STOCKFISH: "stockfish"}


@dataclass(frozen=True, kw_only=True)
class MajorityConfig:
    data: str = ""  # the sample directory or its .pgn[.xz]; "" = $TRANSCENDENCE_DATA or ../shared/data
    caps: tuple[int, ...] = (1000, 1300, 1500)  # rating caps (both players rated <= cap), ascending
    thresholds: tuple[int, ...] = (100, 50, 20)  # a state is common when visited MORE than this (paper: 100)
    max_games: int = 0  # read at most this many games of the file (0 = all)
    max_ply: int = 0  # only positions before ply < max_ply (0 = all plies)
    reward: Literal["data", "stockfish"] = "data"  # data: [%eval] where present, Stockfish where not
    nodes: int = DEFAULT_NODES  # Stockfish node limit per position for moves scored by Stockfish
    workers: int = 1  # Stockfish processes for uncached positions
    cache: str = ""  # reward cache file ("" = runs/cache/stockfish_rewards.sqlite)
    disjoint: bool = True  # also report disjoint rating bins (<=1000, 1001-1300, 1301-1500)
    n_boot: int = 2000  # bootstrap resamples
    seed: int = 0  # bootstrap seed


def encode_move(move: chess.Move) -> int:
    return move.from_square * 64 + move.to_square + 4096 * (move.promotion or 0)


def decode_move(code: int) -> chess.Move:
    promo = code // 4096
    return chess.Move((code % 4096) // 64, code % 64, promo or None)


@dataclass
class PlyTable:
    """One row per ply of the games read: the state before the move, the move, its reward."""

    keys: list[str] = field(default_factory=list)  # state id -> position key (EPD)
    state: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # (n_plies,)
    move: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))  # encoded move
    level: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))  # smallest cap index holding the game
    ply: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int16))
    reward: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))  # nan = not yet scored
    source: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))
    games_per_level: list[int] = field(default_factory=list)


def collect_plies(games: Iterable, caps: tuple[int, ...], *, max_ply: int = 0,
                  progress: bool = False) -> PlyTable:
    """Walk the games of the largest cap; record (state, move, cap level, reward from the data)."""
    if list(caps) != sorted(caps) or not caps:
        raise ValueError(f"caps: must be a non-empty ascending list, got {caps}")
    index: dict[str, int] = {}
    keys: list[str] = []
    st, mv, lv, pl, sr = array("q"), array("i"), array("b"), array("h"), array("b")
    rw = array("d")
    games_per_level = [0] * len(caps)
    it = games
    if progress:
        from tqdm import tqdm
        it = tqdm(games, desc="games", unit="game", mininterval=2.0)
    for game in it:
        w, b = game.white_elo, game.black_elo
        if w is None or b is None:
            continue
        top = max(w, b)
        level = next((i for i, c in enumerate(caps) if top <= c), None)
        if level is None:
            continue
        games_per_level[level] += 1
        evals = game.evals or (None,) * len(game.sans)
        board = chess.Board()
        for i, san in enumerate(game.sans):
            if max_ply and i >= max_ply:
                break
            key = board.epd()
            sid = index.get(key)
            if sid is None:
                sid = index[key] = len(keys)
                keys.append(key)
            try:
                move = board.parse_san(san)
            except ValueError:
                break  # the readers only yield legal games; be safe anyway
            mover = board.turn
            board.push(move)
            ev = evals[i] if i < len(evals) else None
            if ev is not None:
                r, s = eval_to_reward(ev, mover), SRC_EVAL
            else:
                t = terminal_reward(board, mover)
                r, s = (t, SRC_TERMINAL) if t is not None else (math.nan, SRC_MISSING)
            st.append(sid); mv.append(encode_move(move)); lv.append(level); pl.append(i)
            rw.append(r); sr.append(s)
    return PlyTable(keys=keys, state=np.frombuffer(st, np.int64).copy(),
                    move=np.frombuffer(mv, np.int32).copy(), level=np.frombuffer(lv, np.int8).copy(),
                    ply=np.frombuffer(pl, np.int16).copy(), reward=np.frombuffer(rw, np.float64).copy(),
                    source=np.frombuffer(sr, np.int8).copy(), games_per_level=games_per_level)


def _common_rows(table: PlyTable, level: int, threshold: int, *, disjoint: bool = False) -> np.ndarray:
    mask = table.level == level if disjoint else table.level <= level
    visits = np.bincount(table.state[mask], minlength=len(table.keys))
    common = visits > threshold
    return np.flatnonzero(mask & common[table.state])


def score_with_stockfish(table: PlyTable, rows: np.ndarray, oracle: RewardOracle, *,
                         only_missing: bool, progress: bool = False) -> None:
    """Fill ``table.reward`` for ``rows`` (all, or only those without a reward) from Stockfish."""
    rows = rows[np.isnan(table.reward[rows])] if only_missing else rows
    if rows.size == 0:
        return
    sids = np.unique(table.state[rows])
    boards = [chess.Board(table.keys[s] + " 0 1") for s in sids]
    ranked = oracle.many(boards, progress=progress)
    by_state = {int(s): {encode_move(m): r for m, r in rk} for s, rk in zip(sids, ranked)}
    for row in rows:
        table.reward[row] = by_state[int(table.state[row])][int(table.move[row])]
        table.source[row] = SRC_STOCKFISH


def state_table(table: PlyTable, rows: np.ndarray) -> list[dict]:
    """Per common state: visits, moves, argmax, r(argmax), r(mixture), best observed reward, favor."""
    if np.isnan(table.reward[rows]).any():
        raise ValueError("table: some rows have no reward; run score_with_stockfish first")
    if rows.size == 0:
        return []
    s, m, r = table.state[rows], table.move[rows].astype(np.int64), table.reward[rows]
    pair = s * 65536 + m
    order = np.argsort(pair, kind="stable")
    pair_u, start, count = np.unique(pair[order], return_index=True, return_counts=True)
    r_sum = np.add.reduceat(r[order], start)
    r_sq = np.add.reduceat(r[order] ** 2, start)
    pair_state = pair_u // 65536
    out = []
    bounds = np.flatnonzero(np.r_[True, np.diff(pair_state) != 0, True])
    for a, b in zip(bounds[:-1], bounds[1:]):
        n = count[a:b].astype(float)
        rxy = r_sum[a:b] / n
        var = np.maximum(r_sq[a:b] / n - rxy ** 2, 0.0)
        top = n == n.max()
        r_arg = float(rxy[top].mean())
        r_mix = float((n * rxy).sum() / n.sum())
        best = int(np.argmax(n))
        sid = int(pair_state[a])
        out.append({
            "state": sid, "fen": table.keys[sid], "visits": int(n.sum()), "n_moves_observed": int(b - a),
            "argmax_move": decode_move(int(pair_u[a + best] % 65536)).uci(),
            "argmax_share": float(n.max() / n.sum()), "n_tied_argmax": int(top.sum()),
            "r_argmax": r_arg, "r_mixture": r_mix, "r_best_observed": float(rxy.max()),
            "favor": r_arg - r_mix,
            "reward_sd_within_move": float(np.sqrt((n * var).sum() / n.sum())),
        })
    return out


def summarize_states(states: list[dict], *, rng: np.random.Generator, n_boot: int = 2000) -> dict:
    if not states:
        return {"n_states": 0}
    f = np.array([x["favor"] for x in states])
    v = np.array([x["visits"] for x in states], float)
    ra = np.array([x["r_argmax"] for x in states])
    rm = np.array([x["r_mixture"] for x in states])
    rb = np.array([x["r_best_observed"] for x in states])
    gap = rb - rm
    closed = np.divide(f, gap, out=np.full_like(f, np.nan), where=gap > 1e-9)
    return {
        "n_states": len(states), "n_visits": int(v.sum()),
        "favor": bootstrap_mean(f, rng=rng, n_boot=n_boot).as_dict(),
        "favor_visit_weighted": bootstrap_mean(f, rng=rng, n_boot=n_boot, weights=v).as_dict(),
        "r_argmax": bootstrap_mean(ra, rng=rng, n_boot=n_boot).as_dict(),
        "r_mixture": bootstrap_mean(rm, rng=rng, n_boot=n_boot).as_dict(),
        "r_best_observed_mean": float(rb.mean()),
        "share_favor_positive": float((f > 1e-12).mean()),
        "share_favor_negative": float((f < -1e-12).mean()),
        "share_argmax_is_best_observed": float(np.mean(np.isclose(ra, rb))),
        "median_gap_closed": float(np.nanmedian(closed)) if np.isfinite(closed).any() else None,
        "mean_reward_sd_within_move": float(np.mean([x["reward_sd_within_move"] for x in states])),
    }


def paired_over_shared_states(per_group: dict[int, list[dict]], key: str, *, rng: np.random.Generator,
                              n_boot: int = 2000) -> dict:
    """Mean ``key`` per group on the states present in every group, with paired bootstrap differences."""
    groups = list(per_group)
    fens = set.intersection(*[{x["fen"] for x in per_group[g]} for g in groups]) if groups else set()
    if len(fens) < 2:
        return {"n_states": len(fens)}
    order = sorted(fens)
    vals = np.array([[{x["fen"]: x[key] for x in per_group[g]}[f] for f in order] for g in groups])
    boots = paired_bootstrap_means(vals, rng=rng, n_boot=n_boot)  # (groups, n_boot), the same states resampled
    means = vals.mean(axis=1)
    return {"n_states": len(order), "means": {str(g): float(m) for g, m in zip(groups, means)},
            "paired_differences": {f"{groups[i]}-{groups[i + 1]}": {
                "diff": float(means[i] - means[i + 1]),
                "lo": float(np.quantile(boots[i] - boots[i + 1], 0.025)),
                "hi": float(np.quantile(boots[i] - boots[i + 1], 0.975))} for i in range(len(groups) - 1)}}


def run_majority(cfg: MajorityConfig, out: str | Path, *, progress: bool = True) -> dict:
    sample_pgn(cfg.data or None)  # a missing --data is reported before anything is written
    if not cfg.caps or list(cfg.caps) != sorted(cfg.caps):
        raise ValueError(f"--caps={','.join(map(str, cfg.caps))}: need one or more rating caps in ascending order, "
                         "e.g. --caps=1000,1300,1500")
    if not cfg.thresholds:
        raise ValueError("--thresholds is empty: give one or more visit counts, e.g. --thresholds=100,50,20")
    run_dir = _cli.start_run(out, cfg)
    games = iter_games(cfg.data or None, keep_evals=cfg.reward == "data", max_games=cfg.max_games or None)
    table = collect_plies(games, tuple(cfg.caps), max_ply=cfg.max_ply, progress=progress)
    top_level = len(cfg.caps) - 1
    all_rows = _common_rows(table, top_level, min(cfg.thresholds))  # superset of every (cap, threshold)
    oracle = RewardOracle(nodes=cfg.nodes, cache=cfg.cache or None, workers=cfg.workers)
    with oracle:
        need_sf = cfg.reward == "stockfish" or bool(np.isnan(table.reward[all_rows]).any())
        if need_sf:
            score_with_stockfish(table, all_rows, oracle, only_missing=cfg.reward == "data", progress=progress)
    rng = np.random.default_rng(cfg.seed)
    results: dict = {
        "reward": {"mode": cfg.reward,
                   "data_eval": "lichess [%eval] after the move, White's side -> mover's expected score, "
                                "python-chess wdl(model='lichess').expectation(); mean over occurrences",
                   "stockfish": oracle.describe() if need_sf else None},
        "games_per_cap": {}, "plies_per_cap": {}, "caps": {}}
    rows_csv = []
    results["bins"] = {}
    results["shared_states_favor"] = {}
    for grouping, disjoint in (("cumulative", False), ("disjoint", True)):
        if disjoint and not cfg.disjoint:
            continue
        by_group: dict[int, dict[int, list[dict]]] = {}
        for li, cap in enumerate(cfg.caps):
            if not disjoint:
                results["games_per_cap"][str(cap)] = int(sum(table.games_per_level[: li + 1]))
                results["plies_per_cap"][str(cap)] = int((table.level <= li).sum())
            per_t = {}
            for t in cfg.thresholds:
                rows = _common_rows(table, li, t, disjoint=disjoint)
                states = state_table(table, rows)
                by_group.setdefault(t, {})[cap] = states
                summary = summarize_states(states, rng=rng, n_boot=cfg.n_boot)
                src = table.source[rows]
                summary["reward_sources_per_visit"] = {name: int((src == k).sum()) for k, name in SOURCE_NAMES.items()}
                summary["max_ply_of_common_states"] = int(table.ply[rows].max()) if rows.size else None
                if disjoint:
                    summary["games"] = int(table.games_per_level[li])
                per_t[str(t)] = summary
                for x in states:
                    rows_csv.append({"grouping": grouping, "cap": cap, "threshold": t,
                                     **{k: v for k, v in x.items() if k != "state"}})
            results["bins" if disjoint else "caps"][str(cap)] = per_t
        results["shared_states_favor"][grouping] = {
            str(t): paired_over_shared_states(g, "favor", rng=rng, n_boot=cfg.n_boot) for t, g in by_group.items()}
    _cli.write_json(run_dir / "results.json", results)
    _cli.write_csv(run_dir / "states.csv", rows_csv)
    return results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _cli.add_config_arguments(parser, MajorityConfig(), "runs/majority")


def main(args: argparse.Namespace) -> int:
    cfg = _cli.resolve_config(MajorityConfig(), args)
    res = _cli.run_or_report(run_majority, cfg, args.out)
    if res is None:
        return 2
    for cap, per_t in [(f"<={c}", p) for c, p in res["caps"].items()] + [(f"bin to {c}", p) for c, p in res["bins"].items()]:
        for t, s in per_t.items():
            if s["n_states"] == 0:
                print(f"{cap} >{t} visits: no states")
                continue
            f, fw = s["favor"], s["favor_visit_weighted"]
            print(f"{cap} >{t} visits: {s['n_states']} states; r(argmax) {s['r_argmax']['mean']:.4f} "
                  f"r(mixture) {s['r_mixture']['mean']:.4f}; favor {100 * f['mean']:+.2f} pp "
                  f"[{100 * f['lo']:+.2f}, {100 * f['hi']:+.2f}] (visit-weighted {100 * fw['mean']:+.2f} "
                  f"[{100 * fw['lo']:+.2f}, {100 * fw['hi']:+.2f}]); sources {s['reward_sources_per_visit']}")
    print(f"wrote {args.out}/results.json, states.csv")
    return 0
