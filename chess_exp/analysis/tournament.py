"""``transcendence chess tournament``: a panel's experts, its exact mixture and a trained model in
games against each other, rated together by one joint maximum-likelihood Elo.

Per-position transcendence (``chess check``) asks whether a policy's move is better than the best
expert's on a fixed set of positions. This command asks the same in games, where each side's errors
decide which positions the other side meets. The players:

- the panel's experts (``noisy-eps0.1``, ...), the best of them the reference (rated 0);
- the exact mixture of the panel at each ``--mixture-temperatures`` (``mixture@0`` plays the
  mixture's argmax, the theory's majority vote);
- the model (``--checkpoint``: a board-policy run or a transcript checkpoint) at each
  ``--model-temperatures`` (``model@0`` is the argmax);
- lower anchors: noisy Stockfish players with random-move rates ``--anchors`` (rate 1 is the
  uniformly random mover, ``random``), so that a weak player still meets opponents it can score against;
- Stockfish Skill Levels ``--levels`` at their fixed ratings
  (:data:`~chess_exp.play.ratings.STOCKFISH_LEVEL_RATINGS`), the absolute scale.

The schedule (colours alternate in every pairing; game ``i`` of pairing ``a``-``b`` has its own seed
``(seed, crc32("a|b"), i)``, so adding players or games never changes a game already played):

1. a round robin of experts, mixtures and models, ``--games`` per pairing;
2. the model at every temperature against the best expert, topped up to ``--h2h-games``;
3. the anchors: a chain by random-move rate (the panel's weakest expert, then the anchors), each
   player against its next and second-next in the chain, and every model temperature against every
   anchor, ``--anchor-games`` each;
4. every Stockfish level against every panel expert, the mixture's lowest temperature and every
   anchor that is not the random mover, ``--level-games`` each.

Ratings come from :func:`~chess_exp.play.ratings.joint_mle_elo` over all games: relative to the
best expert, and (with ``--levels``) on the levels' scale, each with a 95% bootstrap interval over
the games of every pairing. A player that lost every game it played against the rest is ``-inf``.
Games are written as they finish; a rerun with the same ``--out`` resumes and plays only what is
missing. With ``--visits`` (the model's training PGN) the model's games against the best expert are
replayed to say where they leave the positions the training data visited.

::

    transcendence chess tournament --panel noisy3 --checkpoint runs/h1/board/ckpt.pt \\
        --visits runs/h1/train_noisy3.pgn --visits-games 3000 --out runs/h1/tournament
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from chess_exp.analysis._cli import exit_status, nonneg_floats
from chess_exp.experts.panel import anchor_name
from transcendence.config import add_config_arguments, config_from_args, config_to_dict

__all__ = ["TournamentConfig", "schedule", "pair_table", "head_to_head_rows", "rate", "run", "main",
           "add_arguments"]


_rates = functools.partial(nonneg_floats, allow_empty=True)


@dataclass(frozen=True, kw_only=True)
class TournamentConfig:
    """What ``transcendence chess tournament`` does; each field is the option of the same name."""

    out: str  # results directory (a rerun with the same options resumes it)
    panel: str = "noisy3"  # preset panel: its experts and its exact mixture play
    checkpoint: str | None = None  # the model: a board-policy run or a transcript checkpoint (none: no model)
    model_temperatures: tuple[float, ...] = field(default=(0.0, 0.5, 1.0),
                                                  metadata={"parse": _rates})  # the model's temperatures (0: argmax)
    mixture_temperatures: tuple[float, ...] = field(default=(0.0, 1.0),
                                                    metadata={"parse": _rates})  # the exact mixture's temperatures
    games: int = 20  # games per pairing of the round robin (experts, mixtures, models), colours alternating
    h2h_games: int = 200  # games of the model at each temperature against the best expert (at least)
    best: str | None = None  # the reference expert (default: the panel's lowest random-move rate)
    anchors: tuple[float, ...] = field(default=(0.5, 0.7, 0.9, 1.0),
                                      metadata={"parse": _rates})  # random-move rates of noisy-Stockfish anchors (1: random mover)
    anchor_games: int = 20  # games per anchor pairing
    levels: tuple[int, ...] = (1,)  # Stockfish Skill Levels at fixed ratings (empty: relative ratings only)
    level_games: int = 20  # games of each level against each expert, the mixture and each anchor
    limit: str = "nodes=20000"  # the levels' search per move: nodes=N | depth=D | time=SECONDS
    skill: Literal["emulated", "native"] = "emulated"  # repeatable Skill Level, or Stockfish's own
    max_moves: int = 89  # full moves before a game is a draw
    seed: int = 0  # base seed of every game and of the bootstrap
    boot: int = 1000  # bootstrap resamples for the rating intervals
    in_flight: int = 32  # games played at the same time
    visits: str | None = None  # the model's training PGN: where its games leave the training data
    visits_games: int = 0  # count visits in the first N games of --visits only (0: all)
    experts_cache: str | None = None  # oracle best-move cache directory (default: the shared one)
    stockfish: str | None = None  # Stockfish binary
    progress: bool = True  # progress bar (--no-progress: none)


#: options that decide the games; a rerun must keep them (the rest may change)
_GAME_DEFINING = ("panel", "checkpoint", "limit", "skill", "max_moves", "seed")


def _key(prefix: str, t: float) -> str:
    return f"{prefix}@{t:g}"


@dataclass(frozen=True)
class Roster:
    """The players by kind (names), and the reference."""

    experts: tuple[str, ...]
    mixtures: tuple[str, ...]
    models: tuple[str, ...]
    anchors: tuple[str, ...]
    levels: tuple[str, ...]
    best: str
    chain: tuple[str, ...]  # weakest panel expert first, then the anchors by random-move rate

    def kind(self, name: str) -> str:
        for kind in ("experts", "mixtures", "models", "anchors", "levels"):
            if name in getattr(self, kind):
                return kind[:-1]
        raise KeyError(name)


def roster(cfg: TournamentConfig, expert_eps: dict[str, float]) -> Roster:
    """The players of ``cfg`` given the panel's experts and their random-move rates."""
    best = cfg.best or min(expert_eps, key=lambda n: (expert_eps[n], list(expert_eps).index(n)))
    if best not in expert_eps:
        raise ValueError(f"--best: {best!r} is not an expert of panel {cfg.panel} ({', '.join(expert_eps)})")
    taken = set(expert_eps.values())
    anchors = tuple(anchor_name(e) for e in sorted(set(cfg.anchors)) if e not in taken)
    weakest = max(expert_eps, key=lambda n: expert_eps[n])
    return Roster(experts=tuple(expert_eps), mixtures=tuple(_key("mixture", t) for t in cfg.mixture_temperatures),
                  models=tuple(_key("model", t) for t in cfg.model_temperatures) if cfg.checkpoint else (),
                  anchors=anchors, levels=tuple(f"L{lv}" for lv in cfg.levels), best=best,
                  chain=(weakest, *anchors))


def schedule(cfg: TournamentConfig, r: Roster) -> dict[tuple[str, str], int]:
    """Games per pairing (a, b), a before b in the roster's order."""
    order = {p: i for i, p in enumerate((*r.experts, *r.mixtures, *r.models, *r.anchors, *r.levels))}
    pairs: dict[tuple[str, str], int] = {}

    def add(a: str, b: str, n: int) -> None:
        if a == b or n <= 0:
            return
        key = (a, b) if order[a] < order[b] else (b, a)
        pairs[key] = max(pairs.get(key, 0), n)

    core = (*r.experts, *r.mixtures, *r.models)
    for i, a in enumerate(core):
        for b in core[i + 1:]:
            add(a, b, cfg.games)
    for m in r.models:
        add(m, r.best, cfg.h2h_games)
        for anchor in r.anchors:
            add(m, anchor, cfg.anchor_games)
    for step in (1, 2):  # neighbours and second neighbours: two paths through every anchor
        for a, b in zip(r.chain, r.chain[step:]):
            add(a, b, cfg.anchor_games)
    strong = (*r.experts, *r.mixtures[:1], *(x for x in r.anchors if x != "random"))
    for level in r.levels:
        for p in strong:
            add(level, p, cfg.level_games)
    return pairs


def game_specs(pairs: dict[tuple[str, str], int], seed: int) -> list[Any]:
    from chess_exp.play.games import GameSpec, game_seed

    specs = []
    for (a, b), n in pairs.items():
        pair_seed = zlib.crc32(f"{a}|{b}".encode())
        for i in range(n):
            white, black = (a, b) if i % 2 == 0 else (b, a)
            specs.append(GameSpec(game_id=f"{a}--{b}-{i:04d}", white=white, black=black,
                                  seed=game_seed(seed, pair_seed, i), headers={"Event": "transcendence chess tournament"},
                                  tags={"white_key": white, "black_key": black}))
    return specs


def _results(records: Sequence[Any]) -> list[tuple[str, str, float]]:
    """``(white key, black key, white's score)`` per game."""
    from chess_exp.play.games import score_for
    return [(r.tags["white_key"], r.tags["black_key"], score_for(r, "white")) for r in records]


def pair_table(games: Sequence[tuple[str, str, float]]) -> list[dict[str, Any]]:
    """Per pairing: games, and the first player's wins, draws, losses and score."""
    rows: dict[tuple[str, str], list[float]] = {}
    for w, b, s in games:
        a, c, sa = (w, b, s) if (w, b) in rows or (b, w) not in rows else (b, w, 1 - s)
        rows.setdefault((a, c), []).append(sa)
    return [{"a": a, "b": b, "games": len(v), "wins": int(sum(x == 1 for x in v)),
             "draws": int(sum(x == 0.5 for x in v)), "losses": int(sum(x == 0 for x in v)),
             "score": float(np.mean(v))} for (a, b), v in rows.items()]


def head_to_head_rows(records: Sequence[Any], models: Sequence[str], best: str, *, seed: int,
                      n_boot: int = 4000) -> list[dict[str, Any]]:
    """The model at each temperature against the best expert: score with a 95% bootstrap interval
    over games, W/D/L, mean plies, and the Elo difference the score implies (profile interval)."""
    from chess_exp.play.games import score_for
    from chess_exp.play.ratings import mle_elo

    out = []
    for m in models:
        games = [r for r in records if {r.tags["white_key"], r.tags["black_key"]} == {m, best}]
        if not games:
            continue
        s = np.array([score_for(r, "white" if r.tags["white_key"] == m else "black") for r in games])
        boot = np.random.default_rng(seed).choice(s, size=(n_boot, s.size)).mean(axis=1)
        lo, hi = np.quantile(boot, [0.025, 0.975])
        elo = mle_elo(s.tolist(), [0.0] * s.size)
        out.append({"model": m, "opponent": best, "games": int(s.size), "score": float(s.mean()),
                    "score_ci_low": float(lo), "score_ci_high": float(hi), "wins": int((s == 1).sum()),
                    "draws": int((s == 0.5).sum()), "losses": int((s == 0).sum()),
                    "mean_plies": float(np.mean([r.plies for r in games])),
                    "elo_diff": elo.elo, "elo_diff_ci_low": elo.lo, "elo_diff_ci_high": elo.hi})
    return out


def rate(games: Sequence[tuple[str, str, float]], r: Roster, *, n_boot: int, seed: int,
         level_ratings: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """Per player: kind, games, score, Elo relative to the best expert [95% CI] and, with
    ``level_ratings``, on the levels' scale."""
    from chess_exp.play.ratings import joint_mle_elo

    rel = joint_mle_elo(games, reference=r.best, n_boot=n_boot, seed=seed)
    absolute = joint_mle_elo(games, fixed=level_ratings, n_boot=n_boot, seed=seed) if level_ratings else None
    rows = []
    for p in rel.players:
        mine = [(s if w == p else 1 - s) for w, b, s in games if p in (w, b)]
        row: dict[str, Any] = {"player": p, "kind": r.kind(p), "games": len(mine), "score": float(np.mean(mine)),
               "elo": rel.elo[p], "elo_ci_low": rel.lo[p], "elo_ci_high": rel.hi[p]}
        if absolute is not None:
            row.update({"elo_abs": absolute.elo[p], "elo_abs_ci_low": absolute.lo[p],
                        "elo_abs_ci_high": absolute.hi[p]})
        rows.append(row)
    rows.sort(key=lambda x: -float(x["elo"]) if not math.isnan(float(x["elo"])) else math.inf)
    return rows


def where_games_leave(records: Sequence[Any], models: Sequence[str], best: str, visits_pgn: str,
                      max_games: int | None) -> list[dict[str, Any]]:
    """For the model's games against the best expert: the first ply at a position the training games
    never visited (median and quartiles), the share of the model's moves made at positions visited
    >= 10 times, and the median length of the games it lost."""
    import chess

    from chess_exp.analysis.check import visit_counts
    from chess_exp.experts.oracle import position_key

    per_model = {m: [r for r in records if {r.tags["white_key"], r.tags["black_key"]} == {m, best}] for m in models}
    keyed: list[tuple[str, Any, list[str], list[bool]]] = []
    wanted: set[str] = set()
    for m, games in per_model.items():
        for rec in games:
            board = rec.start_board()
            keys, mine = [], []
            model_white = rec.tags["white_key"] == m
            for san in rec.sans:
                keys.append(position_key(board))
                mine.append(board.turn == (chess.WHITE if model_white else chess.BLACK))
                board.push_san(san)
            wanted.update(keys)
            keyed.append((m, rec, keys, mine))
    counts = visit_counts(visits_pgn, wanted, max_games=max_games)
    out = []
    for m in models:
        firsts, visited_moves, model_moves, lost_plies = [], 0, 0, []
        for mm, rec, keys, mine in keyed:
            if mm != m:
                continue
            c = [counts[k] for k in keys]
            firsts.append(next((i for i, x in enumerate(c) if x == 0), len(c)))
            visited_moves += sum(1 for x, me in zip(c, mine) if me and x >= 10)
            model_moves += sum(mine)
            model_white = rec.tags["white_key"] == m
            if rec.result == ("0-1" if model_white else "1-0"):
                lost_plies.append(rec.plies)
        if not firsts:
            continue
        q1, med, q3 = (float(v) for v in np.percentile(firsts, [25, 50, 75]))
        out.append({"model": m, "games": len(firsts), "first_unvisited_ply_median": med,
                    "first_unvisited_ply_q1": q1, "first_unvisited_ply_q3": q3,
                    "model_moves_at_visited_ge_10": visited_moves / max(1, model_moves),
                    "lost_games": len(lost_plies),
                    "lost_game_plies_median": float(np.median(lost_plies)) if lost_plies else None})
    return out


# --- outputs -------------------------------------------------------------------------------------

def _e(v: float, lo: float | None = None, hi: float | None = None) -> str:
    def one(x: float) -> str:
        return "nan" if x is None or math.isnan(x) else ("+inf" if x == math.inf else "-inf" if x == -math.inf
                                                          else f"{x:+.0f}")
    text = one(v)
    if lo is not None and hi is not None and not (math.isnan(lo) or math.isnan(hi)):
        text += f" [{one(lo)}, {one(hi)}]"
    return text


def results_markdown(result: dict[str, Any]) -> str:
    lines = [f"# chess tournament: panel {result['panel']}, reference {result['best']}", "",
             f"{result['n_games']} games; Elo by joint maximum likelihood, 95% bootstrap intervals over the "
             f"games of each pairing ({result['boot']} resamples).", "",
             "| player | kind | games | score | Elo vs best expert [95% CI] |"
             + (" Elo on the levels' scale [95% CI] |" if result["levels"] else ""),
             "|---|---|---|---|---|" + ("---|" if result["levels"] else "")]
    for r in result["ratings"]:
        line = (f"| {r['player']} | {r['kind']} | {r['games']} | {r['score']:.3f} | "
                f"{_e(r['elo'], r['elo_ci_low'], r['elo_ci_high'])} |")
        if result["levels"]:
            fixed = " (fixed)" if r["kind"] == "level" else ""
            line += f" {_e(r['elo_abs'], r['elo_abs_ci_low'], r['elo_abs_ci_high'])}{fixed} |"
        lines.append(line)
    if result["head_to_head"]:
        lines += ["", "## The model against the best expert", "",
                  "| model | games | score [95% CI] | W / D / L | Elo difference [95% CI] | mean plies |",
                  "|---|---|---|---|---|---|"]
        for h in result["head_to_head"]:
            lines.append(f"| {h['model']} | {h['games']} | {h['score']:.3f} [{h['score_ci_low']:.3f}, "
                         f"{h['score_ci_high']:.3f}] | {h['wins']} / {h['draws']} / {h['losses']} | "
                         f"{_e(h['elo_diff'], h['elo_diff_ci_low'], h['elo_diff_ci_high'])} | {h['mean_plies']:.0f} |")
    if result.get("where"):
        lines += ["", "## Where the model's games leave its training data", "",
                  "| model | games | first unvisited ply: median (quartiles) | model moves at positions visited >= 10 times "
                  "| lost games | lost games' plies (median) |", "|---|---|---|---|---|---|"]
        for w in result["where"]:
            lost = "-" if w["lost_game_plies_median"] is None else f"{w['lost_game_plies_median']:.0f}"
            lines.append(f"| {w['model']} | {w['games']} | {w['first_unvisited_ply_median']:.0f} "
                         f"({w['first_unvisited_ply_q1']:.0f}, {w['first_unvisited_ply_q3']:.0f}) | "
                         f"{w['model_moves_at_visited_ge_10']:.2f} | {w['lost_games']} | {lost} |")
    lines += ["", "## Pairings", "", "| a | b | games | a: W / D / L | a's score |", "|---|---|---|---|---|"]
    for p in result["pairs"]:
        lines.append(f"| {p['a']} | {p['b']} | {p['games']} | {p['wins']} / {p['draws']} / {p['losses']} | "
                     f"{p['score']:.3f} |")
    return "\n".join(lines) + "\n"


_COLOURS = {"expert": "tab:blue", "mixture": "tab:green", "model": "tab:red", "anchor": "tab:gray",
            "level": "black"}


def plot_ratings(rows: Sequence[dict[str, Any]], path: Path, *, title: str) -> None:
    """Each player's Elo relative to the best expert with its interval; +-inf drawn as arrows."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in rows if not math.isnan(r["elo"])]
    finite = [v for r in shown for v in (r["elo"], r["elo_ci_low"], r["elo_ci_high"]) if math.isfinite(v)]
    left, right = (min(finite, default=-100) - 100, max(finite, default=100) + 100)
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(shown) + 1.5))
    for y, r in enumerate(reversed(shown)):
        colour = _COLOURS.get(r["kind"], "tab:purple")
        x = min(max(r["elo"], left), right)
        lo = r["elo_ci_low"] if not math.isnan(r["elo_ci_low"]) else r["elo"]
        hi = r["elo_ci_high"] if not math.isnan(r["elo_ci_high"]) else r["elo"]
        ax.plot([min(max(lo, left), right), min(max(hi, left), right)], [y, y], color=colour, lw=2)
        marker = "<" if r["elo"] == -math.inf else ">" if r["elo"] == math.inf else "o"
        ax.plot([x], [y], marker=marker, color=colour)
    ax.set_yticks(range(len(shown)), [r["player"] for r in reversed(shown)])
    ax.axvline(0, color="tab:blue", ls=":", lw=1)
    ax.set_xlim(left, right)
    ax.set_xlabel("Elo relative to the best expert (95% bootstrap interval)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


# --- running -------------------------------------------------------------------------------------

def _players(cfg: TournamentConfig, r: Roster, panel: Any, oracle: Any, pool: Any) -> dict[str, Any]:
    from chess_exp.experts.panel import MixturePolicy, anchor_player, build_experts
    from chess_exp.play.players import DistributionPlayer, EnginePlayer

    experts = build_experts(panel, oracle)
    players: dict[str, Any] = {e.name: DistributionPlayer(e, 1.0, name=e.name) for e in experts}
    mixture = MixturePolicy(experts, panel.probabilities, name=f"{panel.name}-mixture")
    for t, key in zip(cfg.mixture_temperatures, r.mixtures):
        players[key] = DistributionPlayer(mixture, t, name=key)
    for eps in sorted(set(cfg.anchors)):
        if anchor_name(eps) in r.anchors:
            players[anchor_name(eps)] = anchor_player(eps, oracle)
    for level, key in zip(cfg.levels, r.levels):
        players[key] = EnginePlayer(pool, level, name=key)
    if cfg.checkpoint:
        players.update(_model_players(cfg, r))
    return players


def _model_players(cfg: TournamentConfig, r: Roster) -> dict[str, Any]:
    import torch

    from chess_exp.model.board import BoardPolicyPlayer, board_checkpoint, load_board_policy
    from chess_exp.play.players import DistributionPlayer, ModelPlayer

    torch.set_num_threads(1)
    assert cfg.checkpoint is not None
    ckpt = board_checkpoint(cfg.checkpoint)
    if ckpt is not None:
        policy = BoardPolicyPlayer(load_board_policy(ckpt))
        return {key: DistributionPlayer(policy, t, name=key) for t, key in zip(cfg.model_temperatures, r.models)}
    from chess_exp.data.tokenizers import get_tokenizer
    from chess_exp.model.checkpoints import load_model
    model, meta = load_model(cfg.checkpoint)
    player = ModelPlayer(model, get_tokenizer(meta["tokenizer"]), policy="exact",
                         temperature=dict(zip(r.models, cfg.model_temperatures)), name="model",
                         cache_games=max(256, cfg.in_flight))
    return dict.fromkeys(r.models, player)


def _validate(cfg: TournamentConfig) -> str | None:
    for name, least in (("games", 0), ("h2h_games", 0), ("anchor_games", 0), ("level_games", 0), ("in_flight", 1),
                        ("max_moves", 1)):
        if getattr(cfg, name) < least:
            return f"--{name.replace('_', '-')}: must be >= {least}, got {getattr(cfg, name)}"
    if cfg.boot and cfg.boot < 100:
        return f"--boot: must be 0 or >= 100, got {cfg.boot}"
    if any(not 0 <= e <= 1 for e in cfg.anchors):
        return f"--anchors: each random-move rate must be in [0, 1], got {','.join(f'{e:g}' for e in cfg.anchors)}"
    from chess_exp.play.ratings import STOCKFISH_LEVEL_RATINGS
    unknown = [lv for lv in cfg.levels if lv not in STOCKFISH_LEVEL_RATINGS]
    if unknown:
        return f"--levels: no fixed rating for level(s) {unknown}; choose from {sorted(STOCKFISH_LEVEL_RATINGS)}"
    if cfg.checkpoint and not Path(cfg.checkpoint).exists():
        return f"--checkpoint: {cfg.checkpoint} not found"
    if cfg.visits and not Path(cfg.visits).exists():
        return f"--visits: {cfg.visits} not found"
    if cfg.visits and not cfg.checkpoint:
        return "--visits: needs --checkpoint (it describes the model's games)"
    return None


def _check_same_games(out: Path, cfg: TournamentConfig) -> None:
    path = out / "config.json"
    if not path.exists():
        return
    old = json.loads(path.read_text()).get("config", {})
    new = config_to_dict(cfg)
    diff = [k for k in _GAME_DEFINING if old.get(k) != new.get(k)]
    if diff:
        raise ValueError(f"--out: {out} holds games played with other {', '.join('--' + k.replace('_', '-') for k in diff)}"
                         f"; rerun with the same options or give another --out")


def run(cfg: TournamentConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    from chess_exp.experts.oracle import Oracle, default_cache_dir
    from chess_exp.experts.panel import get_panel
    from chess_exp.play.engines import EngineLimit, StockfishPool
    from chess_exp.play.games import MatchConfig, play_games
    from chess_exp.play.ratings import STOCKFISH_LEVEL_RATINGS
    from transcendence.config import write_run_metadata
    from transcendence.io import atomic_write_json, atomic_write_text

    t0 = time.time()
    panel = get_panel(cfg.panel)
    r = roster(cfg, {e.name: e.eps for e in panel.experts})
    out = Path(cfg.out)
    _check_same_games(out, cfg)
    limit = EngineLimit.parse(cfg.limit)
    pairs = schedule(cfg, r)
    specs = game_specs(pairs, cfg.seed)
    log(f"{len(specs)} games in {len(pairs)} pairings among {len(r.experts)} experts, {len(r.mixtures)} mixtures, "
        f"{len(r.models)} model temperatures, {len(r.anchors)} anchors, {len(r.levels)} Stockfish levels")
    oracle = Oracle(panel.engine, cache_dir=cfg.experts_cache or default_cache_dir(), stockfish=cfg.stockfish)
    try:
        with StockfishPool(1, cfg.stockfish, limit=limit, skill=cfg.skill) as pool:
            players = _players(cfg, r, panel, oracle, pool)
            out.mkdir(parents=True, exist_ok=True)
            write_run_metadata(out, cfg)
            records = play_games(specs, players, out_dir=out / "games", config=MatchConfig(
                max_moves=cfg.max_moves, in_flight=cfg.in_flight), progress=cfg.progress)
    finally:
        oracle.close()
    games = _results(records)
    level_ratings = {key: STOCKFISH_LEVEL_RATINGS[lv] for lv, key in zip(cfg.levels, r.levels)}
    ratings = rate(games, r, n_boot=cfg.boot, seed=cfg.seed, level_ratings=level_ratings or None)
    h2h = head_to_head_rows(records, r.models, r.best, seed=cfg.seed)
    where = where_games_leave(records, r.models, r.best, cfg.visits, cfg.visits_games or None) if cfg.visits else []
    anchor_eps = {anchor_name(e): float(e) for e in cfg.anchors if anchor_name(e) in r.anchors}
    result = {"panel": panel.name, "oracle": panel.engine.tag, "best": r.best, "checkpoint": cfg.checkpoint,
              "n_games": len(games), "anchor_eps": anchor_eps,
              "boot": cfg.boot, "levels": {k: v for k, v in level_ratings.items()}, "limit": cfg.limit,
              "interval": "95% percentile bootstrap over the games of each pairing", "ratings": ratings,
              "head_to_head": h2h, "where": where, "pairs": pair_table(games),
              "seconds": round(time.time() - t0, 1)}
    atomic_write_json(out / "results.json", result)
    table = results_markdown(result)
    atomic_write_text(out / "results.md", table)
    plot_ratings(ratings, out / "ratings.png", title=f"panel {panel.name}: joint Elo from {len(games)} games")
    log(table)
    log(f"wrote {out / 'results.json'}, {out / 'results.md'}, {out / 'ratings.png'} ({time.time() - t0:.0f} s)")
    return result


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_config_arguments(p, TournamentConfig)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    return exit_status(_validate, run, config_from_args(TournamentConfig, args))
