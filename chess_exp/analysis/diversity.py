"""Dataset diversity (Fig. 5; see docs/paper-notes.md): normalised action entropy of common states per rating cap.

For each cap (games where both players are rated <= cap), positions before plies 0..16 are keyed by
FEN without move counters; a state is *common* when visited more than ``threshold`` times (the
paper: 100). For each common state the empirical move distribution f(y|x) gives

.. math:: \\mathcal H_f(Y \\mid x) = \\frac{-\\sum_y f(y|x) \\log_2 f(y|x)}{\\log_2 |\\mathcal Y|}

with two normalisations: ``|Y|`` = number of legal moves (the paper's text) and ``|Y|`` = number of
distinct observed moves (the paper's code, 0 when one move was observed). The unweighted mean over
common states is reported with a percentile-bootstrap 95% interval over states, with the state
counts, and the question the paper asks: is the ordering 1000 > 1300 > 1500?

The paper used 500k-1M games per cap; the sample has 3.7k / 12k / 22k. Because the plug-in
entropy of a state depends on how often it was seen, ``--equal_games=N`` also subsamples every cap
to the same number of games (for example the size of the smallest cap) as a control, and
``--subsample_draws=N`` repeats that subsample N times (seeded) and reports, per threshold and
normalisation, the share of draws in which the ordering holds: how much the answer depends on which
games happened to be drawn.

Writes ``<out>/results.json``, ``<out>/states.csv`` (one row per common state, for the
histograms) and ``<out>/config.json``. Figure: ``paper_figs/analysis_diversity.py``.
"""

from __future__ import annotations

import argparse
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import chess
import numpy as np

from chess_exp.analysis import _cli
from chess_exp.analysis.games_io import iter_games, sample_pgn
from chess_exp.analysis.stats import bootstrap_mean, entropy_bits, normalized_entropy, paired_bootstrap_means

__all__ = ["DiversityConfig", "OpeningTable", "collect_openings", "state_entropies", "mean_entropies",
           "subsample_ordering", "run_diversity",
           "add_arguments", "main"]


@dataclass(frozen=True, kw_only=True)
class DiversityConfig:
    data: str = ""  # the sample directory or a .pgn[.xz]; "" = $TRANSCENDENCE_DATA or ../shared/data
    caps: tuple[int, ...] = (1000, 1300, 1500)  # rating caps (both players rated <= cap), ascending
    thresholds: tuple[int, ...] = (100, 50, 20)  # a state is common when visited MORE than this (paper: 100)
    max_ply: int = 16  # last ply whose position is counted (paper: plies 0-16)
    max_games: int = 0  # read at most this many games of the file (0 = all)
    equal_games: int = -1  # also subsample every cap to this many games (-1 = size of the smallest cap, 0 = off)
    disjoint: bool = True  # also use disjoint rating bins (<=1000, 1001-1300, 1301-1500) instead of cumulative caps
    n_boot: int = 2000  # bootstrap resamples
    seed: int = 0  # seed for the bootstrap and the equal-size subsample
    subsample_draws: int = 0  # robustness: this many seeded equal-game-count subsamples per cap (0 = off; use >= 100)


@dataclass
class OpeningTable:
    """One row per counted ply: state id, move, cap level of the game, game index."""

    keys: list[str]  # state id -> EPD
    n_legal: np.ndarray  # (n_states,) legal moves in the state
    state: np.ndarray  # (n_rows,)
    move: np.ndarray  # (n_rows,) encoded move (from*64 + to + 4096*promotion)
    level: np.ndarray  # (n_rows,) smallest cap index that holds the game
    game: np.ndarray  # (n_rows,) index of the game among those kept
    game_level: np.ndarray  # (n_games,)


def collect_openings(games: Iterable, caps: tuple[int, ...], *, max_ply: int = 16,
                     progress: bool = False) -> OpeningTable:
    if list(caps) != sorted(caps) or not caps:
        raise ValueError(f"caps: must be a non-empty ascending list, got {caps}")
    index: dict[str, int] = {}
    keys: list[str] = []
    n_legal = array("i")
    st, mv, lv, gm, glv = array("q"), array("i"), array("b"), array("i"), array("b")
    it = games
    if progress:
        from tqdm import tqdm
        it = tqdm(games, desc="games", unit="game", mininterval=2.0)
    for game in it:
        w, b = game.white_elo, game.black_elo
        if w is None or b is None:
            continue
        level = next((i for i, c in enumerate(caps) if max(w, b) <= c), None)
        if level is None:
            continue
        gi = len(glv)
        glv.append(level)
        board = chess.Board()
        for san in game.sans[: max_ply + 1]:
            key = board.epd()
            sid = index.get(key)
            if sid is None:
                sid = index[key] = len(keys)
                keys.append(key)
                n_legal.append(board.legal_moves.count())
            try:
                move = board.parse_san(san)
            except ValueError:
                break
            board.push(move)
            st.append(sid); mv.append(move.from_square * 64 + move.to_square + 4096 * (move.promotion or 0))
            lv.append(level); gm.append(gi)
    return OpeningTable(keys=keys, n_legal=np.frombuffer(n_legal, np.int32).copy(),
                        state=np.frombuffer(st, np.int64).copy(), move=np.frombuffer(mv, np.int32).copy(),
                        level=np.frombuffer(lv, np.int8).copy(), game=np.frombuffer(gm, np.int32).copy(),
                        game_level=np.frombuffer(glv, np.int8).copy())


def state_entropies(table: OpeningTable, rows: np.ndarray, threshold: int) -> list[dict]:
    """Per state visited more than ``threshold`` times among ``rows``: both normalised entropies."""
    s = table.state[rows]
    visits = np.bincount(s, minlength=len(table.keys))
    keep = visits > threshold
    rows = rows[keep[s]]
    if rows.size == 0:
        return []
    pair = table.state[rows] * 65536 + table.move[rows].astype(np.int64)
    pair_u, count = np.unique(pair, return_counts=True)
    pstate = pair_u // 65536
    bounds = np.flatnonzero(np.r_[True, np.diff(pstate) != 0, True])
    out = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        sid = int(pstate[a])
        c = count[a:b]
        out.append({"fen": table.keys[sid], "visits": int(c.sum()), "n_legal": int(table.n_legal[sid]),
                    "n_observed": int(b - a), "entropy_bits": entropy_bits(c),
                    "h_legal": normalized_entropy(c, int(table.n_legal[sid])),
                    "h_observed": normalized_entropy(c, int(b - a))})
    return out


def mean_entropies(table: OpeningTable, rows: np.ndarray, thresholds: Iterable[int]) -> dict[int, tuple[int, float, float]]:
    """Per threshold: (number of common states, mean h_legal, mean h_observed) over the states among ``rows``.

    The same numbers as averaging :func:`state_entropies`, computed without building per-state records
    (used for the many subsample draws).
    """
    out: dict[int, tuple[int, float, float]] = {}
    if rows.size == 0:
        return {int(t): (0, float("nan"), float("nan")) for t in thresholds}
    pair = table.state[rows] * 65536 + table.move[rows].astype(np.int64)
    pair_u, count = np.unique(pair, return_counts=True)
    sid, pstate = np.unique(pair_u // 65536, return_inverse=True)
    visits = np.bincount(pstate, weights=count)
    p = count / visits[pstate]
    h_bits = np.bincount(pstate, weights=-p * np.log2(p))
    n_obs = np.bincount(pstate)
    n_legal = table.n_legal[sid]
    h_legal = np.divide(h_bits, np.log2(np.maximum(n_legal, 2)), out=np.zeros_like(h_bits), where=n_legal > 1)
    h_obs = np.divide(h_bits, np.log2(np.maximum(n_obs, 2)), out=np.zeros_like(h_bits), where=n_obs > 1)
    for t in thresholds:
        keep = visits > t
        n = int(keep.sum())
        out[int(t)] = (n, float(h_legal[keep].mean()) if n else float("nan"),
                       float(h_obs[keep].mean()) if n else float("nan"))
    return out


def subsample_ordering(table: OpeningTable, caps: tuple[int, ...], thresholds: tuple[int, ...], *,
                       n_games: int, draws: int, rng: np.random.Generator) -> dict:
    """How often the ordering cap_1 > cap_2 > ... of the mean entropy holds over equal-game-count subsamples.

    Each draw subsamples every cap (cumulative: both players rated <= cap) to ``n_games`` games without
    replacement (a cap with fewer games is used whole) and recomputes the mean normalised entropy of its
    common states. Returns, per threshold and normalisation, the share of draws in which the full ordering
    holds, the share for each neighbouring pair, and the quartiles of each cap's mean and state count.
    """
    if draws < 1:
        raise ValueError(f"subsample_draws: must be >= 1, got {draws}")
    games_of = [np.flatnonzero(table.game_level <= li) for li in range(len(caps))]
    # (draws, caps, thresholds, 3): n_states, mean h_legal, mean h_observed
    res = np.empty((draws, len(caps), len(thresholds), 3))
    for d in range(draws):
        for ci, games_in in enumerate(games_of):
            if n_games < games_in.size:
                games_in = np.sort(rng.choice(games_in, size=n_games, replace=False))
            mask = np.zeros(table.game_level.size, bool)
            mask[games_in] = True
            per_t = mean_entropies(table, np.flatnonzero(mask[table.game]), thresholds)
            for ti, t in enumerate(thresholds):
                res[d, ci, ti] = per_t[int(t)]
    out: dict = {"games_per_cap": int(n_games), "draws": int(draws),
                 "games_available": {str(c): int(g.size) for c, g in zip(caps, games_of)}, "thresholds": {}}
    for ti, t in enumerate(thresholds):
        entry: dict = {"n_states_quartiles": {str(c): np.quantile(res[:, ci, ti, 0], [0.25, 0.5, 0.75]).tolist()
                                              for ci, c in enumerate(caps)}}
        for k, norm in ((1, "h_legal"), (2, "h_observed")):
            m = res[:, :, ti, k]  # (draws, caps)
            steps = m[:, :-1] > m[:, 1:]
            entry[norm] = {
                "share_ordering_holds": float(np.mean(np.all(steps, axis=1))),
                "share_each_step": {f"{caps[i]}>{caps[i + 1]}": float(np.mean(steps[:, i])) for i in range(len(caps) - 1)},
                "mean_quartiles": {str(c): np.quantile(m[:, ci], [0.25, 0.5, 0.75]).tolist()
                                   for ci, c in enumerate(caps)}}
        out["thresholds"][str(t)] = entry
    return out


def _summary(states: list[dict], rng: np.random.Generator, n_boot: int) -> dict:
    if not states:
        return {"n_states": 0}
    out: dict = {"n_states": len(states), "n_visits": int(sum(x["visits"] for x in states))}
    for norm in ("h_legal", "h_observed"):
        v = np.array([x[norm] for x in states])
        out[norm] = bootstrap_mean(v, rng=rng, n_boot=n_boot).as_dict()
    return out


def _ordering(per_cap: dict[int, list[dict]], norm: str, rng: np.random.Generator, n_boot: int) -> dict:
    """Is mean(cap_1) > mean(cap_2) > ... ? With the bootstrap share of resamples where it holds."""
    caps = [c for c in per_cap if per_cap[c]]
    if len(caps) < 2:
        return {"holds": None}
    means = [float(np.mean([x[norm] for x in per_cap[c]])) for c in caps]
    boots = [paired_bootstrap_means(np.array([[x[norm] for x in per_cap[c]]]), rng=rng, n_boot=n_boot)[0]
             for c in caps]
    holds = all(a > b for a, b in zip(means, means[1:]))
    share = float(np.mean(np.all([boots[i] > boots[i + 1] for i in range(len(caps) - 1)], axis=0)))
    diffs = {f"{caps[i]}-{caps[i + 1]}": {
        "diff": means[i] - means[i + 1],
        "lo": float(np.quantile(boots[i] - boots[i + 1], 0.025)),
        "hi": float(np.quantile(boots[i] - boots[i + 1], 0.975))} for i in range(len(caps) - 1)}
    return {"caps": caps, "means": means, "holds": holds, "bootstrap_share_holding": share,
            "pairwise_differences": diffs,
            "note": "resamples drawn independently per cap although the caps are nested (1000 within 1300 within 1500)"}


def _shared(per_cap: dict[int, list[dict]], rng: np.random.Generator, n_boot: int) -> dict:
    """Paired comparison on the states common under every cap: same states, different players."""
    caps = list(per_cap)
    fens = set.intersection(*[{x["fen"] for x in per_cap[c]} for c in caps]) if caps else set()
    if len(fens) < 2:
        return {"n_states": len(fens)}
    order = sorted(fens)
    out: dict = {"n_states": len(order)}
    for norm in ("h_legal", "h_observed"):
        vals = np.array([[{x["fen"]: x[norm] for x in per_cap[c]}[f] for f in order] for c in caps])  # (caps, n)
        boots = paired_bootstrap_means(vals, rng=rng, n_boot=n_boot)  # (caps, n_boot), the same states resampled
        means = vals.mean(axis=1)
        out[norm] = {
            "means": {str(c): float(m) for c, m in zip(caps, means)},
            "holds": bool(all(a > b for a, b in zip(means, means[1:]))),
            "bootstrap_share_holding": float(np.mean(np.all(boots[:-1] > boots[1:], axis=0))),
            "paired_differences": {f"{caps[i]}-{caps[i + 1]}": {
                "diff": float(means[i] - means[i + 1]),
                "lo": float(np.quantile(boots[i] - boots[i + 1], 0.025)),
                "hi": float(np.quantile(boots[i] - boots[i + 1], 0.975))} for i in range(len(caps) - 1)}}
    return out


def run_diversity(cfg: DiversityConfig, out: str | Path, *, progress: bool = True) -> dict:
    if cfg.subsample_draws < 0:
        raise ValueError(f"subsample_draws: must be >= 0 (0 = off), got {cfg.subsample_draws}")
    sample_pgn(cfg.data or None)  # a missing --data is reported before anything is written
    run_dir = _cli.start_run(out, cfg)
    games = iter_games(cfg.data or None, keep_evals=False, max_games=cfg.max_games or None)
    table = collect_openings(games, tuple(cfg.caps), max_ply=cfg.max_ply, progress=progress)
    rng = np.random.default_rng(cfg.seed)
    games_per_cap = {c: int((table.game_level <= i).sum()) for i, c in enumerate(cfg.caps)}
    equal = cfg.equal_games if cfg.equal_games >= 0 else min(games_per_cap.values())
    variants: dict[str, int | str | None] = {"all_games": None}
    if equal > 0:
        variants[f"equal_{equal}_games"] = equal
    if cfg.disjoint:
        variants["disjoint_bins"] = "disjoint"
    results: dict = {"plies": f"0-{cfg.max_ply}", "games_per_cap": {str(c): n for c, n in games_per_cap.items()},
                     "variants": {}}
    csv_rows = []
    for vname, n_games in variants.items():
        vres: dict = {}
        for t in cfg.thresholds:
            per_cap: dict[int, list[dict]] = {}
            caps_out = {}
            for li, cap in enumerate(cfg.caps):
                if n_games == "disjoint":  # only the games whose stronger player is in (previous cap, cap]
                    games_in = np.flatnonzero(table.game_level == li)
                else:
                    games_in = np.flatnonzero(table.game_level <= li)
                if isinstance(n_games, int) and n_games < games_in.size:
                    games_in = np.sort(rng.choice(games_in, size=n_games, replace=False))
                mask = np.zeros(table.game_level.size, bool)
                mask[games_in] = True
                rows = np.flatnonzero(mask[table.game])
                states = state_entropies(table, rows, t)
                per_cap[cap] = states
                s = _summary(states, rng, cfg.n_boot)
                s["games"] = int(games_in.size)
                caps_out[str(cap)] = s
                for x in states:
                    csv_rows.append({"variant": vname, "threshold": t, "cap": cap, **x})
            vres[str(t)] = {"caps": caps_out, "shared_states": _shared(per_cap, rng, cfg.n_boot),
                            "ordering_h_legal": _ordering(per_cap, "h_legal", rng, cfg.n_boot),
                            "ordering_h_observed": _ordering(per_cap, "h_observed", rng, cfg.n_boot)}
        results["variants"][vname] = vres
    if cfg.subsample_draws:
        # a separate stream, so the tables above do not depend on whether draws were asked for
        results["subsample_ordering"] = subsample_ordering(
            table, tuple(cfg.caps), tuple(cfg.thresholds), n_games=equal or min(games_per_cap.values()),
            draws=cfg.subsample_draws, rng=np.random.default_rng([cfg.seed, 1]))
    results["paper"] = {"h_mean": {"1000": 0.70, "1300": 0.66, "1500": 0.64},
                        "n_states": {"1000": 2681, "1300": 3037, "1500": 3169}, "threshold": 100,
                        "games_per_cap": "500k (code) to 1M (text)"}
    _cli.write_json(run_dir / "results.json", results)
    _cli.write_csv(run_dir / "states.csv", csv_rows)
    return results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _cli.add_config_arguments(parser, DiversityConfig(), "runs/diversity")


def main(args: argparse.Namespace) -> int:
    cfg = _cli.resolve_config(DiversityConfig(), args)
    res = _cli.run_or_report(run_diversity, cfg, args.out)
    if res is None:
        return 2
    for vname, vres in res["variants"].items():
        for t, r in vres.items():
            parts = []
            for cap, s in r["caps"].items():
                if s["n_states"] == 0:
                    parts.append(f"{cap}: no states")
                    continue
                hl, ho = s["h_legal"], s["h_observed"]
                parts.append(f"{cap}: n={s['n_states']} legal {hl['mean']:.3f} [{hl['lo']:.3f},{hl['hi']:.3f}] "
                             f"observed {ho['mean']:.3f} [{ho['lo']:.3f},{ho['hi']:.3f}]")
            print(f"[{vname}] >{t} visits | " + " | ".join(parts)
                  + f" | ordering legal {r['ordering_h_legal'].get('holds')} observed {r['ordering_h_observed'].get('holds')}")
            sh = r["shared_states"]
            if sh["n_states"] >= 2:
                print(f"    same {sh['n_states']} states under every cap: legal {sh['h_legal']['means']} "
                      f"(ordering {sh['h_legal']['holds']}, bootstrap {sh['h_legal']['bootstrap_share_holding']:.2f}); "
                      f"observed {sh['h_observed']['means']} (ordering {sh['h_observed']['holds']})")
    sub = res.get("subsample_ordering")
    if sub:
        print(f"ordering {' > '.join(str(c) for c in cfg.caps)} over {sub['draws']} subsamples of "
              f"{sub['games_per_cap']} games per cap (share of draws in which it holds):")
        for t, e in sub["thresholds"].items():
            print(f"    >{t} visits: legal {e['h_legal']['share_ordering_holds']:.2f} "
                  f"{e['h_legal']['share_each_step']}, observed {e['h_observed']['share_ordering_holds']:.2f} "
                  f"{e['h_observed']['share_each_step']}")
    print(f"wrote {args.out}/results.json, states.csv")
    return 0
