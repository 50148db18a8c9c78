"""Games per minute against Stockfish: our concurrent evaluation vs the paper's one-game-at-a-time loop.

Both sides play the same game specs (seeds, colours) against Stockfish at the same node limit and
Skill Level, in the same run, with the same model:

- **baseline** (the paper's loop): one game at a time, one Stockfish process, the ``sampled``
  character protocol with no KV cache (each of the 10 characters re-runs the whole prompt);
- **ours, sampled**: the same protocol, ``--in-flight`` games at once, all games' characters sampled in
  one batch with the KV cache (stopping once every move is determined), a pool of ``--engines``
  Stockfish processes working while the model runs;
- **exact, one game** and **ours, exact**: the ``exact`` policy (every legal move scored, prefix in
  the KV cache) one game at a time with one Stockfish, and with our concurrency. With random
  weights these are the only full-length games (the exact policy never plays an illegal move), so
  this pair isolates what concurrency (batching across games + the Stockfish pool) buys.

The model is a ``small_cpu``-sized GPT (4 layers, 4 heads, 128 wide) with the char vocabulary:
``--checkpoint`` a trained one (recommended: with random weights almost every sampled move is
illegal and games end by forfeit after a move or two), else random weights. Reported: games/min,
plies/min (robust to game length) and their ratios. Run::

    nice python benchmarks/play.py --checkpoint runs/bench-play/char-small --games 32
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from chess_exp.engines import EngineLimit, StockfishPool  # noqa: E402
from chess_exp.games import MatchConfig, ladder_specs, play_games  # noqa: E402
from chess_exp.model import GPT, GPTConfig, load_model  # noqa: E402
from chess_exp.players import EnginePlayer, ModelPlayer  # noqa: E402
from chess_exp.tokenizers import get_tokenizer  # noqa: E402


def _model(checkpoint: str | None) -> tuple[GPT, str]:
    if checkpoint:
        model, meta = load_model(checkpoint)
        return model, meta["tokenizer"]
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=32, block_size=512, n_layer=4, n_head=4, n_embd=128)
    return GPT(config).eval(), "char"


def _run(label: str, model: GPT, tokenizer: Any, *, policy: str, use_cache: bool, in_flight: int,
         engines: int, threads: int, games: int, args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(threads)
    specs = ladder_specs("model", [f"L{args.level}"], games, seed=args.seed)
    player = ModelPlayer(model, tokenizer, policy=policy, temperature=args.temperature,
                         use_cache=use_cache, name=label)  # type: ignore[arg-type]
    limit = EngineLimit.parse(args.limit)
    config = MatchConfig(max_moves=args.max_moves, in_flight=in_flight)
    start = time.perf_counter()
    with StockfishPool(engines, limit=limit) as pool:
        players = {"model": player, f"L{args.level}": EnginePlayer(pool, args.level)}
        records = play_games(specs, players, config=config, progress=False)
    seconds = time.perf_counter() - start
    plies = sum(r.plies for r in records)
    forfeits = sum(r.termination in ("forfeit", "resign") for r in records)
    out = {"label": label, "policy": policy, "kv_cache": use_cache, "in_flight": in_flight,
           "engines": engines, "torch_threads": threads, "games": len(records), "plies": plies,
           "forfeits_or_resignations": forfeits, "seconds": seconds,
           "games_per_min": 60 * len(records) / seconds, "plies_per_min": 60 * plies / seconds}
    print(f"{label:>16}: {len(records)} games, {plies} plies, {forfeits} forfeits/resignations in "
          f"{seconds:.1f} s -> {out['games_per_min']:.1f} games/min, {out['plies_per_min']:.0f} plies/min",
          flush=True)
    return out


def _real_positions(n: int, seed: int) -> list[tuple[Any, tuple[str, ...]]]:
    """``n`` (board, SAN history) pairs at random plies of real lichess games (the shared sample)."""
    import itertools

    import chess
    import numpy as np

    from chess_exp.data import default_data_dir, read_games

    path = default_data_dir() / "lichess_rapid_2014-2022_ahmed-ghaf-404.transcripts.csv.xz"
    rng = np.random.default_rng(seed)
    out = []
    for game in itertools.islice(read_games(path), 4 * n):
        if len(game.sans) < 2:
            continue
        ply = int(rng.integers(0, min(len(game.sans), 160)))
        board = chess.Board()
        for san in game.sans[:ply]:
            board.push_san(san)
        if not board.is_game_over():
            out.append((board, tuple(game.sans[:ply])))
        if len(out) == n:
            break
    return out


def _decisions(model: GPT, tokenizer: Any, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Model move decisions per minute at real positions: one attempt of 10 characters each.

    Independent of how well the model plays (every variant does the same work per position),
    so it shows what the loops cost on a trained model's long prompts.
    """
    import numpy as np

    positions = _real_positions(args.positions, args.seed)
    mean_plies = float(np.mean([len(s) for _, s in positions]))
    prompts = [tokenizer.prefix(sans) for _, sans in positions]
    results = []

    def timed(label: str, threads: int, fn: Any) -> None:
        torch.set_num_threads(threads)
        start = time.perf_counter()
        fn()
        seconds = time.perf_counter() - start
        results.append({"label": label, "positions": len(positions), "mean_ply": mean_plies,
                        "seconds": seconds, "decisions_per_min": 60 * len(positions) / seconds})
        print(f"{label:>22}: {len(positions)} positions (mean ply {mean_plies:.0f}) in {seconds:.1f} s -> "
              f"{results[-1]['decisions_per_min']:.0f} decisions/min", flush=True)

    plain = ModelPlayer(model, tokenizer, policy="sampled", temperature=1.0, use_cache=False)
    cached = ModelPlayer(model, tokenizer, policy="sampled", temperature=1.0, use_cache=True)
    exact = ModelPlayer(model, tokenizer, policy="exact", temperature=1.0)
    rngs = [np.random.default_rng(i) for i in range(len(prompts))]
    batch = args.in_flight
    timed("paper loop (sampled)", args.baseline_threads,
          lambda: [plain.generate([p], [r], [1.0]) for p, r in zip(prompts, rngs)])
    timed("ours sampled, batched", args.threads,
          lambda: [cached.generate(prompts[i:i + batch], rngs[i:i + batch], [1.0] * len(prompts[i:i + batch]))
                   for i in range(0, len(prompts), batch)])
    timed("ours exact, batched", args.threads,
          lambda: [exact.move_distributions([b for b, _ in positions[i:i + batch]],
                                            [s for _, s in positions[i:i + batch]])
                   for i in range(0, len(positions), batch)])
    for r in results[1:]:
        r["speedup"] = r["decisions_per_min"] / results[0]["decisions_per_min"]
        print(f"{r['label']:>22}: {r['speedup']:.1f}x decisions/min vs the paper loop")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=None, help="trained char checkpoint (default: random weights)")
    parser.add_argument("--games", type=int, default=32, help="games per variant (default 32)")
    parser.add_argument("--level", type=int, default=1, help="Stockfish Skill Level (default 1)")
    parser.add_argument("--limit", default="nodes=2000", help="Stockfish limit (default nodes=2000)")
    parser.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default 1)")
    parser.add_argument("--max-moves", type=int, default=89, help="full-move limit (default 89)")
    parser.add_argument("--in-flight", type=int, default=32, help="games at once in our loop (default 32)")
    parser.add_argument("--engines", type=int, default=2, help="Stockfish processes in our loop (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads in our loop (default 1)")
    parser.add_argument("--baseline-threads", type=int, default=1,
                        help="torch threads in the baseline loop (default 1; 2 threads were >10x slower "
                             "per forward on the shared machine, see docs/bench-play.md)")
    parser.add_argument("--baseline-games", type=int, default=None,
                        help="games for the baseline (default: --games; it is slow)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--positions", type=int, default=64,
                        help="real-game positions for the decisions/min measurement (0 = skip)")
    parser.add_argument("--skip-exact", action="store_true", help="do not run the exact-policy variant")
    parser.add_argument("--out", default=str(REPO / "runs" / "bench-play" / "results.json"))
    args = parser.parse_args(argv)

    model, tokenizer_name = _model(args.checkpoint)
    if tokenizer_name != "char":
        parser.error("the baseline samples characters: give a char-tokenizer checkpoint")
    tokenizer = get_tokenizer("char")
    print(f"model: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, "
          f"{'checkpoint ' + args.checkpoint if args.checkpoint else 'random weights'}; "
          f"Stockfish L{args.level} {args.limit}; {args.games} games each; cores: {os.cpu_count()}", flush=True)
    runs = [_run("baseline", model, tokenizer, policy="sampled", use_cache=False, in_flight=1, engines=1,
                 threads=args.baseline_threads, games=args.baseline_games or args.games, args=args),
            _run("ours-sampled", model, tokenizer, policy="sampled", use_cache=True,
                 in_flight=args.in_flight, engines=args.engines, threads=args.threads, games=args.games,
                 args=args)]
    pairs = [(runs[0], runs[1])]
    if not args.skip_exact:
        runs.append(_run("exact-one-game", model, tokenizer, policy="exact", use_cache=True, in_flight=1,
                         engines=1, threads=args.baseline_threads, games=args.baseline_games or args.games,
                         args=args))
        runs.append(_run("ours-exact", model, tokenizer, policy="exact", use_cache=True,
                         in_flight=args.in_flight, engines=args.engines, threads=args.threads,
                         games=args.games, args=args))
        pairs.append((runs[2], runs[3]))
    for base, run in pairs:
        run["baseline"] = base["label"]
        run["speedup_games_per_min"] = run["games_per_min"] / base["games_per_min"]
        run["speedup_plies_per_min"] = run["plies_per_min"] / max(base["plies_per_min"], 1e-9)
        print(f"{run['label']:>16}: {run['speedup_games_per_min']:.1f}x games/min, "
              f"{run['speedup_plies_per_min']:.1f}x plies/min vs {base['label']}")
    decisions = _decisions(model, tokenizer, args) if args.positions > 0 else []
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"argv": sys.argv, "runs": runs, "decisions": decisions}, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
