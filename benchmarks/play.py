"""Games per minute against Stockfish: our concurrent evaluation vs the paper's one-game-at-a-time loop.

Both sides play the same game specs (seeds, colours) against Stockfish at the same node limit and
Skill Level, in the same run, with the same model:

- **baseline** (the paper's loop): one game at a time, one Stockfish process, the ``sampled``
  character protocol with no KV cache (each of the 10 characters re-runs the whole prompt);
- **ours, sampled**: the same protocol, ``--in-flight`` games at once, all games' characters sampled in
  one batch with the KV cache (stopping once every move is determined), a pool of ``--engines``
  Stockfish processes working while the model runs;
- **ours, exact**: the same concurrency with the ``exact`` policy (every legal move scored in one
  batched pass).

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
    if not args.skip_exact:
        runs.append(_run("ours-exact", model, tokenizer, policy="exact", use_cache=True,
                         in_flight=args.in_flight, engines=args.engines, threads=args.threads,
                         games=args.games, args=args))
    base = runs[0]
    for run in runs[1:]:
        run["speedup_games_per_min"] = run["games_per_min"] / base["games_per_min"]
        run["speedup_plies_per_min"] = run["plies_per_min"] / base["plies_per_min"]
        print(f"{run['label']:>16}: {run['speedup_games_per_min']:.1f}x games/min, "
              f"{run['speedup_plies_per_min']:.1f}x plies/min vs baseline")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"argv": sys.argv, "runs": runs}, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
