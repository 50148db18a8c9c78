"""Denoising: the favor of low temperature over τ = 1 on a model's own games (Fig. 4, Table 1; docs/paper-notes.md).

For every position ``x`` of the given games where the model is to move, the model's exact
distribution over the legal moves f(y|x) (the ``exact`` policy: every legal move's continuation
scored with ``score_continuations``, as ``chess_exp.play.players.ModelPlayer`` does) is tempered with
``transcendence.temper`` and combined with the Stockfish reward r(x, y) (``analysis.reward``):

* r_x(f_τ) = Σ_y f_τ(y|x) r(x, y), the exact expected reward (no sampling noise);
* the favor F(f_τ', f_1; x) = r_x(f_τ') − r_x(f_1) (``transcendence.favor``), its mean with
  percentile-bootstrap 95% intervals (over states, as the paper, and over games, which respects
  the dependence between positions of one game), its distribution (for the histograms) and how
  concentrated it is (share of the total favor from the top 1/5/10% of states);
* Table 1: mean expected score per τ and the top-1/3/5 agreement with Stockfish's ranking, here
  the probability mass f_τ puts on Stockfish's k best moves (the exact counterpart of the paper's
  share of sampled moves);
* the paper's estimator for comparison: ``samples`` moves drawn from f_τ per state, their mean
  reward (the paper drew 100 character-level samples per state, counting illegal ones as 0; the
  exact policy never produces an illegal move).

Illegal moves: the paper's sampled estimator scores an illegal or unparsable sample as reward 0, and
such samples are frequent at τ = 1 and rare at low τ, so its favor mixes denoising among legal moves
with the disappearance of illegal samples (roughly (illegal share at τ = 1) × (reward at τ = 1) on
top). Here the distribution is over legal moves only, so the favor measures the denoising alone and
is not directly comparable with the paper's number (docs/deviations.md).

The games are the ones the model played (``games.jsonl`` written by ``transcendence chess eval``,
filtered to ``game_temperature`` and Stockfish ``level``; the paper: τ = 0.001 against level 1).
Without ``--games`` they are played here first with ``chess eval``'s machinery.

Writes ``<out>/results.json``, ``<out>/states.npz`` (per-state arrays for the figures),
``<out>/table1.md`` and ``<out>/config.json``. Figure: ``paper_figs/analysis_favor.py``.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import chess
import numpy as np

import transcendence as T
from chess_exp.analysis import _cli
from chess_exp.analysis.reward import DEFAULT_NODES, RewardOracle
from chess_exp.analysis.stats import bootstrap_mean, cluster_bootstrap_mean, summarize, top_share

__all__ = ["FavorConfig", "ModelState", "model_states", "StateArrays", "build_arrays", "favor_tables",
           "sampled_rewards", "summarize_favor", "run_favor", "add_arguments", "main"]

RankedFn = Callable[[Sequence[chess.Board]], list[list[tuple[chess.Move, float]]]]


@dataclass(frozen=True, kw_only=True)
class FavorConfig:
    checkpoint: str = "runs/small_cpu-1300"  # checkpoint file or training run dir
    tokenizer: str | None = None  # override the checkpoint's tokenizer (nanoGPT-style checkpoints: char)
    step: int | None = None  # override the checkpoint's training step (nanoGPT-style: iter_num)
    games: str = ""  # games.jsonl (or its dir) from `chess eval`; "" = play them first into <out>/games
    game_temperature: float = 0.001  # use the games played at this temperature (paper: 0.001)
    level: int = 1  # ... against this Stockfish level (paper: 1)
    n_games: int = 100  # at most this many games (paper: 100)
    temperatures: tuple[float, ...] = (0.001, 0.01, 0.1, 0.3, 0.5, 0.75, 1.0, 1.5)  # Table 1 rows
    baseline: float = 1.0  # the favor is measured against f at this temperature
    hist_temperatures: tuple[float, ...] = (0.001, 0.75)  # temperatures with histograms and sampled estimates
    samples: int = 100  # moves sampled per state for the paper's estimator
    mode: Literal["logit", "prob"] = "logit"  # temper mode: softmax(log f / tau) or softmax(f / tau)
    nodes: int = DEFAULT_NODES  # Stockfish node limit per position for the rewards
    workers: int = 1  # Stockfish processes for uncached positions
    cache: str = ""  # reward cache ("" = runs/cache/stockfish_rewards.sqlite)
    play_limit: str = "nodes=20000"  # opponent limit when the games are played here
    max_states: int = 0  # use at most this many states (0 = all), for quick runs
    batch: int = 64  # positions per model batch
    n_boot: int = 2000  # bootstrap resamples
    ci_method: str = "percentile"  # bootstrap interval: percentile (as measured in docs/results), BCa or basic
    seed: int = 0  # seed for the bootstrap and the sampled estimator
    device: str = "cpu"  # torch device for the model
    threads: int = 1  # torch threads


@dataclass(frozen=True)
class ModelState:
    game: int  # index of the game among those used
    ply: int  # ply index of the position in the game
    board: chess.Board  # the position, model to move
    sans: tuple[str, ...]  # the game so far


def _tag(record: Any, key: str) -> Any:
    tags = record.tags if hasattr(record, "tags") else record.get("tags", {})
    return tags.get(key)


def model_states(records: Sequence[Any], *, game_temperature: float | None, level: int | None,
                 n_games: int) -> list[ModelState]:
    """Positions where the model is to move, from games whose tags match the temperature and level."""
    out: list[ModelState] = []
    used = 0
    for rec in records:
        t, lv = _tag(rec, "temperature"), _tag(rec, "level")
        if game_temperature is not None and (t is None or not math.isclose(float(t), game_temperature, rel_tol=1e-9)):
            continue
        if level is not None and lv is not None and int(lv) != level:
            continue
        colour = _tag(rec, "model_colour")
        if colour not in ("white", "black"):
            raise ValueError(f"game {getattr(rec, 'game_id', '?')}: tags have no model_colour; "
                             "use games written by `transcendence chess eval`")
        if used >= n_games:
            break
        turn = chess.WHITE if colour == "white" else chess.BLACK
        sans = tuple(rec.sans if hasattr(rec, "sans") else rec["sans"])
        board = chess.Board()
        for i, san in enumerate(sans):
            if board.turn == turn and not board.is_game_over():
                out.append(ModelState(game=used, ply=i, board=board.copy(stack=False), sans=sans[:i]))
            board.push_san(san)
        used += 1
    return out


@dataclass
class StateArrays:
    """Padded per-state arrays (n_x states, n_y = most legal moves of any state)."""

    probs: np.ndarray  # (n_x, n_y) model distribution over legal moves, 0 on padding
    reward: np.ndarray  # (n_x, n_y) expected score for the mover after each move, 0 on padding
    rank: np.ndarray  # (n_x, n_y) Stockfish's rank of the move (0 = best), n_y on padding
    n_legal: np.ndarray  # (n_x,)
    game: np.ndarray  # (n_x,)
    ply: np.ndarray  # (n_x,)


def build_arrays(states: Sequence[ModelState], distributions: Sequence[tuple[list[chess.Move], np.ndarray]],
                 ranked: Sequence[list[tuple[chess.Move, float]]]) -> StateArrays:
    n_y = max(len(m) for m, _ in distributions)
    n_x = len(states)
    probs, reward = np.zeros((n_x, n_y)), np.zeros((n_x, n_y))
    rank = np.full((n_x, n_y), n_y, dtype=np.int32)
    for i, ((moves, p), rk) in enumerate(zip(distributions, ranked)):
        pos = {m: j for j, (m, _) in enumerate(rk)}
        val = dict(rk)
        if set(val) != set(moves):
            raise ValueError(f"state {i}: reward moves and model moves differ")
        probs[i, :len(moves)] = p
        reward[i, :len(moves)] = [val[m] for m in moves]
        rank[i, :len(moves)] = [pos[m] for m in moves]
    return StateArrays(probs=probs, reward=reward, rank=rank,
                       n_legal=np.array([len(m) for m, _ in distributions]),
                       game=np.array([s.game for s in states]), ply=np.array([s.ply for s in states]))


def favor_tables(arrays: StateArrays, temperatures: Sequence[float], baseline: float, *,
                 mode: str = "logit") -> dict[str, np.ndarray]:
    """Tempered policies' exact per-state expected reward, favor vs ``baseline``, top-k mass.

    Returns ``expected`` (n_t, n_x), ``favor`` (n_t, n_x) and ``topk`` (n_t, n_x, 3) for k = 1, 3, 5.
    """
    taus = np.asarray(list(temperatures) + [baseline], dtype=float)
    tempered = T.temper(arrays.probs, taus, mode=mode)  # (n_t + 1, n_x, n_y)
    base = tempered[-1]
    expected = np.einsum("txy,xy->tx", tempered[:-1], arrays.reward)
    favor = np.stack([T.favor(tempered[i], base, arrays.reward) for i in range(len(temperatures))])
    topk = np.stack([(tempered[:-1] * (arrays.rank < k)).sum(-1) for k in (1, 3, 5)], axis=-1)
    return {"expected": expected, "favor": favor, "topk": topk, "tempered": tempered}


def sampled_rewards(tempered: np.ndarray, reward: np.ndarray, samples: int, *,
                    rng: np.random.Generator) -> np.ndarray:
    """The paper's estimator: mean reward of ``samples`` draws from each state's tempered policy.

    ``tempered`` (n_t, n_x, n_y) -> (n_t, n_x).
    """
    n_t, n_x, _ = tempered.shape
    cdf = np.cumsum(tempered, axis=-1)
    cdf[..., -1] = 1.0 + 1e-12
    u = rng.random((n_t, n_x, samples))
    out = np.empty((n_t, n_x))
    for t in range(n_t):
        for x in range(n_x):
            idx = np.searchsorted(cdf[t, x], u[t, x], side="right")
            out[t, x] = reward[x, np.minimum(idx, reward.shape[1] - 1)].mean()
    return out


def summarize_favor(arrays: StateArrays, tables: dict[str, np.ndarray], cfg: FavorConfig, *,
                    rng: np.random.Generator) -> dict:
    taus = list(cfg.temperatures)
    n_games = int(arrays.game.max()) + 1 if arrays.game.size else 0
    game_n = np.bincount(arrays.game, minlength=n_games).astype(float)
    keep = game_n > 0

    def by_game(v: np.ndarray) -> dict:
        return cluster_bootstrap_mean(v, arrays.game, rng=rng, n_boot=cfg.n_boot, method=cfg.ci_method).as_dict()

    rows = []
    for i, t in enumerate(taus):
        e, f = tables["expected"][i], tables["favor"][i]
        rows.append({
            "temperature": t,
            "expected_score": bootstrap_mean(e, rng=rng, n_boot=cfg.n_boot, method=cfg.ci_method).as_dict(),
            "favor_vs_baseline": bootstrap_mean(f, rng=rng, n_boot=cfg.n_boot, method=cfg.ci_method).as_dict(),
            "favor_vs_baseline_by_game": by_game(f),
            "top1": float(tables["topk"][i, :, 0].mean()), "top3": float(tables["topk"][i, :, 1].mean()),
            "top5": float(tables["topk"][i, :, 2].mean()),
            "favor_distribution": summarize(f),
            "favor_concentration": top_share(f),
            "share_states_favor_positive": float((f > 1e-9).mean()),
            "share_states_favor_negative": float((f < -1e-9).mean()),
        })
    return {"n_states": int(arrays.probs.shape[0]), "n_games": int(keep.sum()),
            "mean_legal_moves": float(arrays.n_legal.mean()) if arrays.n_legal.size else None,
            "baseline": cfg.baseline, "table1": rows}


def compute_favor(model: Any, tokenizer: Any, states: Sequence[ModelState], ranked_fn: RankedFn,
                  cfg: FavorConfig, *, progress: bool = False) -> tuple[StateArrays, dict[str, np.ndarray]]:
    """Model distributions (exact policy) and rewards for ``states``, then :func:`favor_tables`."""
    from chess_exp.play.players import ModelPlayer

    player = ModelPlayer(model, tokenizer, policy="exact")
    dists: list[tuple[list[chess.Move], np.ndarray]] = []
    rng_batches = range(0, len(states), cfg.batch)
    if progress:
        from tqdm import tqdm
        rng_batches = tqdm(rng_batches, desc="model", unit="batch")
    for start in rng_batches:
        chunk = states[start:start + cfg.batch]
        dists.extend(player.move_distributions([s.board for s in chunk], [s.sans for s in chunk]))
    ranked = ranked_fn([s.board for s in states])
    arrays = build_arrays(states, dists, ranked)
    return arrays, favor_tables(arrays, cfg.temperatures, cfg.baseline, mode=cfg.mode)


def _load_records(cfg: FavorConfig, run_dir: Path) -> list:
    from chess_exp.play.games import load_records

    if cfg.games:
        records = load_records(cfg.games)
        if not records:
            raise FileNotFoundError(f"no games in {cfg.games}: expected a games.jsonl from `transcendence chess eval`")
        return records
    from chess_exp.play.ladder import EvalConfig, evaluate

    games_dir = run_dir / "games"
    print(f"no --games given: playing {cfg.n_games} games at τ={cfg.game_temperature:g} against level "
          f"{cfg.level} into {games_dir}", file=sys.stderr)
    evaluate(EvalConfig(checkpoint=cfg.checkpoint, out=str(games_dir), temperatures=(cfg.game_temperature,),
                        levels=(cfg.level,), games=cfg.n_games, limit=cfg.play_limit, seed=cfg.seed,
                        threads=cfg.threads, device=cfg.device, tokenizer=cfg.tokenizer, step=cfg.step))
    return load_records(games_dir)


def run_favor(cfg: FavorConfig, out: str | Path, *, progress: bool = True) -> dict:
    import torch

    from chess_exp.data.tokenizers import get_tokenizer
    from chess_exp.model.checkpoints import load_model

    if cfg.ci_method not in ("percentile", "BCa", "basic"):
        raise ValueError(f"ci_method: must be percentile, BCa or basic, got {cfg.ci_method!r}")
    torch.set_num_threads(cfg.threads)
    model, meta = load_model(cfg.checkpoint, device=cfg.device, tokenizer=cfg.tokenizer, step=cfg.step)
    run_dir = _cli.start_run(out, cfg)  # after the checkpoint loaded: a bad --checkpoint leaves nothing behind
    tokenizer = get_tokenizer(meta["tokenizer"])
    records = _load_records(cfg, run_dir)
    states = model_states(records, game_temperature=cfg.game_temperature, level=cfg.level, n_games=cfg.n_games)
    if cfg.max_states:
        states = states[:cfg.max_states]
    if not states:
        raise ValueError(f"no model-to-move positions in the games at temperature {cfg.game_temperature:g} "
                         f"and level {cfg.level}")
    with RewardOracle(nodes=cfg.nodes, cache=cfg.cache or None, workers=cfg.workers) as oracle:
        arrays, tables = compute_favor(model, tokenizer, states,
                                       lambda boards: oracle.many(boards, progress=progress), cfg, progress=progress)
        reward_info = oracle.describe() | {"positions_analysed_now": oracle.n_analysed}
    rng = np.random.default_rng(cfg.seed)
    results = summarize_favor(arrays, tables, cfg, rng=rng)
    # the paper's sampled estimate for the histogram temperatures (and the baseline)
    hist = [t for t in cfg.hist_temperatures]
    samp_taus = hist + [cfg.baseline]
    tempered = T.temper(arrays.probs, np.asarray(samp_taus, float), mode=cfg.mode)
    sampled = sampled_rewards(tempered, arrays.reward, cfg.samples, rng=rng)
    exact = np.einsum("txy,xy->tx", tempered, arrays.reward)
    results["sampled_estimate"] = []
    for i, t in enumerate(hist):
        f_s = sampled[i] - sampled[-1]
        f_e = exact[i] - exact[-1]
        results["sampled_estimate"].append({
            "temperature": t, "samples_per_state": cfg.samples,
            "favor_sampled": bootstrap_mean(f_s, rng=rng, n_boot=cfg.n_boot, method=cfg.ci_method).as_dict(),
            "favor_exact": float(f_e.mean()),
            "mean_abs_diff_per_state": float(np.abs(f_s - f_e).mean()),
            "sd_diff_per_state": float((f_s - f_e).std()),
        })
    results.update({"model": {"checkpoint": cfg.checkpoint, "step": meta.get("step"),
                              "tokenizer": meta["tokenizer"]},
                    "games": {"source": cfg.games or str(run_dir / "games"), "temperature": cfg.game_temperature,
                              "level": cfg.level},
                    "reward": reward_info, "mode": cfg.mode,
                    "paper": {"favor_pp": {"0.001": 2.15, "0.75": 0.99},
                              "expected_score_pct": {"0.001": 39.95, "0.75": 38.79, "1.0": 37.80},
                              "top1_3_5_pct": {"0.001": [29.61, 54.26, 66.86], "0.75": [25.08, 47.84, 60.37],
                                               "1.0": [22.61, 44.00, 56.27]}}})
    _cli.write_json(run_dir / "results.json", results)
    np.savez_compressed(run_dir / "states.npz", temperatures=np.asarray(cfg.temperatures, float),
                        expected=tables["expected"], favor=tables["favor"], topk=tables["topk"],
                        hist_temperatures=np.asarray(hist, float), sampled_favor=sampled[:-1] - sampled[-1],
                        game=arrays.game, ply=arrays.ply, n_legal=arrays.n_legal)
    (run_dir / "table1.md").write_text(table1_markdown(results))
    return results


def table1_markdown(results: dict) -> str:
    lines = ["| τ | E[P_τ] expected score (%) | E[P_τ − P_base] (pp) [95% CI states] | [95% CI games] | "
             "top-1 (%) | top-3 (%) | top-5 (%) |", "|---|---|---|---|---|---|---|"]
    for r in results["table1"]:
        e, f, g = r["expected_score"], r["favor_vs_baseline"], r["favor_vs_baseline_by_game"]
        lines.append(f"| {r['temperature']:g} | {100 * e['mean']:.2f} | {100 * f['mean']:+.2f} "
                     f"[{100 * f['lo']:+.2f}, {100 * f['hi']:+.2f}] | [{100 * g['lo']:+.2f}, {100 * g['hi']:+.2f}] | "
                     f"{100 * r['top1']:.2f} | {100 * r['top3']:.2f} | {100 * r['top5']:.2f} |")
    return "\n".join(lines) + f"\n\n{results['n_states']} states from {results['n_games']} games.\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _cli.add_config_arguments(parser, FavorConfig(), "runs/favor")


def main(args: argparse.Namespace) -> int:
    cfg = _cli.resolve_config(FavorConfig(), args)
    res = _cli.run_or_report(run_favor, cfg, args.out)
    if res is None:
        return 2
    print(table1_markdown(res))
    for s in res["sampled_estimate"]:
        fs = s["favor_sampled"]
        print(f"τ={s['temperature']:g}: favor exact {100 * s['favor_exact']:+.2f} pp, sampled ({s['samples_per_state']}"
              f"/state) {100 * fs['mean']:+.2f} [{100 * fs['lo']:+.2f}, {100 * fs['hi']:+.2f}] pp")
    for r in res["table1"]:
        if r["temperature"] in cfg.hist_temperatures:
            print(f"τ={r['temperature']:g} favor concentration: {r['favor_concentration']}")
    print(f"wrote {args.out}/results.json, states.npz, table1.md")
    return 0
