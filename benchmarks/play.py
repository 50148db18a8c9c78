"""Games per minute against Stockfish: our concurrent evaluation vs the paper's one-game-at-a-time loop.

Both loops use the same ``small_cpu``-sized GPT (4 layers, 4 heads, 128 wide, char vocabulary;
``--checkpoint`` a trained one, else random weights), Stockfish at the same Skill Level and node
limit, in the same run:

- **paper loop**: one game at a time, one Stockfish process, the ``sampled`` character protocol with
  no KV cache (each of the 10 characters of each attempt re-runs the whole prompt), up to 5 attempts;
- **ours**: many games at once, all waiting games' model work in one batch, each game's prompt kept
  in the KV cache between its moves, a pool of ``--engines`` Stockfish processes working while the
  model runs; with the ``sampled`` protocol (same work as the paper) and the ``exact`` policy.

Two measurements:

1. *Played games* (``--games``): real games against Stockfish. With random weights every sampled
   move is illegal, so the sampled games end by forfeit at the model's first move (each costs 5
   attempts); the exact policy never forfeits. Pairs: paper loop vs ours (sampled), and the exact
   policy one game at a time vs ours (what concurrency alone buys).
2. *Replayed real games* (``--replay-games``, the headline): games of the lichess sample are replayed
   move by move; at each ply the side to move (model or Stockfish) decides with its full protocol,
   then the real move is played. Every loop does exactly the same decisions on realistic, growing
   prompts whatever the model's quality, so plies/min and games/min compare the loops themselves.

    nice python benchmarks/play.py --games 32 --baseline-games 8 --replay-games 32 --baseline-replay-games 2
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

from chess_exp.data.tokenizers import get_tokenizer  # noqa: E402
from chess_exp.model.checkpoints import load_model  # noqa: E402
from chess_exp.model.gpt import GPT, GPTConfig  # noqa: E402
from chess_exp.play.engines import EngineLimit, StockfishPool  # noqa: E402
from chess_exp.play.games import MatchConfig, ladder_specs, play_games  # noqa: E402
from chess_exp.play.players import EnginePlayer, ModelPlayer  # noqa: E402


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


def _real_games(n: int, max_plies: int) -> list[tuple[str, ...]]:
    """The SAN moves of the first ``n`` games of the shared lichess sample with >= 20 plies (capped)."""
    from chess_exp.data.readers import default_data_dir, read_games

    path = default_data_dir() / "lichess_rapid_2014-2022_ahmed-ghaf-404.transcripts.csv.xz"
    out = []
    for game in read_games(path):
        if len(game.sans) >= 20:
            out.append(tuple(game.sans[:max_plies]))
        if len(out) == n:
            break
    return out


def _replay(label: str, player: ModelPlayer, games: list[tuple[str, ...]], *, lockstep: bool,
            engines: int, threads: int, args: argparse.Namespace) -> dict[str, Any]:
    """Replay real games: at every ply the side to move (the model on even games' White plies and
    odd games' Black plies, Stockfish otherwise) decides with its full protocol, then the game's real
    move is played. Both loops do the same decisions, so the time compares the loops, whatever the
    model's quality. ``lockstep``: all games in lockstep, one model call per ply for all of them
    (prompts kept in the KV cache) while the Stockfish pool plays the other side; otherwise one game
    at a time, one engine."""
    import concurrent.futures

    import chess
    import numpy as np

    from chess_exp.play.players import MoveRequest

    torch.set_num_threads(threads)
    limit = EngineLimit.parse(args.limit)
    decisions = 0
    start = time.perf_counter()
    with StockfishPool(engines, limit=limit) as pool, concurrent.futures.ThreadPoolExecutor(1) as executor:
        batches = [list(range(len(games)))] if lockstep else [[g] for g in range(len(games))]
        for batch in batches:
            boards = {g: chess.Board() for g in batch}
            rngs = {g: np.random.default_rng([args.seed, g]) for g in batch}
            for ply in range(max(len(games[g]) for g in batch)):
                live = [g for g in batch if ply < len(games[g])]
                model_side = [g for g in live if (ply % 2 == 0) == (g % 2 == 0)]
                engine_side = [g for g in live if g not in model_side]
                future = executor.submit(pool.play_many, [boards[g] for g in engine_side],
                                         [rngs[g] for g in engine_side], [args.level] * len(engine_side))
                if model_side:
                    player.choose([MoveRequest(board=boards[g].copy(), sans=games[g][:ply], rng=rngs[g],
                                               game_id=f"replay-{g}") for g in model_side])
                future.result()
                decisions += len(live)
                for g in live:
                    boards[g].push_san(games[g][ply])
            for g in batch:
                player.game_over(f"replay-{g}")
    seconds = time.perf_counter() - start
    plies = sum(len(g) for g in games)
    out = {"label": label, "policy": player.policy, "lockstep": lockstep, "kv_cache": player.use_cache,
           "engines": engines, "torch_threads": threads, "games": len(games), "plies": plies,
           "seconds": seconds, "games_per_min": 60 * len(games) / seconds, "plies_per_min": 60 * plies / seconds}
    print(f"{label:>22}: {len(games)} replayed games, {plies} plies in {seconds:.1f} s -> "
          f"{out['games_per_min']:.1f} games/min, {out['plies_per_min']:.0f} plies/min", flush=True)
    return out


def _replays(model: GPT, tokenizer: Any, args: argparse.Namespace) -> list[dict[str, Any]]:
    games = _real_games(args.replay_games, args.replay_plies)
    paper = ModelPlayer(model, tokenizer, policy="sampled", temperature=args.temperature, use_cache=False)
    sampled = ModelPlayer(model, tokenizer, policy="sampled", temperature=args.temperature, use_cache=True)
    exact = ModelPlayer(model, tokenizer, policy="exact", temperature=args.temperature, use_cache=True)
    base_games = games[:args.baseline_replay_games or len(games)]
    results = [_replay("paper loop (sampled)", paper, base_games, lockstep=False, engines=1,
                       threads=args.baseline_threads, args=args),
               _replay("ours sampled", sampled, games, lockstep=True, engines=args.engines,
                       threads=args.threads, args=args),
               _replay("ours exact", exact, games, lockstep=True, engines=args.engines,
                       threads=args.threads, args=args)]
    for r in results[1:]:
        r["speedup_games_per_min"] = r["games_per_min"] / results[0]["games_per_min"]
        r["speedup_plies_per_min"] = r["plies_per_min"] / results[0]["plies_per_min"]
        print(f"{r['label']:>22}: {r['speedup_plies_per_min']:.1f}x plies/min, "
              f"{r['speedup_games_per_min']:.1f}x games/min vs the paper loop")
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
                             "per forward on the shared machine, see docs/benchmarks.md)")
    parser.add_argument("--baseline-games", type=int, default=None,
                        help="games for the baseline (default: --games; it is slow)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--replay-games", type=int, default=32,
                        help="real games replayed to compare the loops' cost per ply (0 = skip)")
    parser.add_argument("--baseline-replay-games", type=int, default=2,
                        help="of those, how many the (slow) paper loop replays (default 2)")
    parser.add_argument("--replay-plies", type=int, default=80,
                        help="replayed games are cut after this many plies (default 80, a typical game)")
    parser.add_argument("--skip-play", action="store_true", help="only the replay measurement")
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
    runs: list[dict[str, Any]] = []
    if not args.skip_play:
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
    replays = _replays(model, tokenizer, args) if args.replay_games > 0 else []
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"argv": sys.argv, "runs": runs, "replays": replays}, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
