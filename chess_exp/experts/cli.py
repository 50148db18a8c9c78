"""``transcendence chess experts {generate,demo,measure,panels}``.

::

    transcendence chess experts generate --panel noisy3 --games 3000 --out runs/experts/noisy3.pgn
    transcendence chess experts demo                       # small end to end, prints the table
    transcendence chess experts measure --out runs/experts-noisy3 --games=3000 --rating_games=20
    transcendence chess experts panels                     # the preset panels
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="experts_command", metavar="EXPERTS_COMMAND")

    g = sub.add_parser("generate", help="play the panel's experts against each other into a PGN (resumable)",
                       description="Games between a panel's experts (both sides drawn from the panel's "
                                   "weights), on all cores, appended to --out; a second call resumes.")
    g.add_argument("--panel", required=True, help="preset panel (see `transcendence chess experts panels`)")
    g.add_argument("--games", type=int, required=True, help="number of games the file should hold")
    g.add_argument("--out", type=Path, required=True, help="PGN file; one this command wrote with the same --panel and --seed is "
                        "completed (a torn last game is cut), anything else is refused and left untouched")
    g.add_argument("--seed", type=int, default=0, help="game g uses numpy default_rng([seed, g]) (default 0)")
    g.add_argument("--workers", type=int, default=0, help="processes, one Stockfish each (0: all cores)")
    g.add_argument("--cache", type=Path, default=None,
                   help="best-move cache directory (default: $TRANSCENDENCE_EXPERTS_CACHE or runs/experts_cache)")
    g.add_argument("--max-moves", type=int, default=89, help="full moves before a game is a draw (default 89)")
    g.add_argument("--stockfish", default=None, help="Stockfish binary (default: STOCKFISH_PATH, PATH, /usr/games)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.set_defaults(func=_generate)

    for name, help_text in (("demo", "small end-to-end measurement on built-in defaults (a few minutes)"),
                            ("measure", "the full measurement: generate, prepare, train, rate, agreement")):
        p = sub.add_parser(name, help=help_text,
                           description=help_text + ". Any field of MeasureConfig can be overridden as "
                                       "--key=value (e.g. --games=2000 --rating_games=10 --levels=1,2,3).")
        p.add_argument("--out", type=Path, default=None, help="run directory (default: the preset's)")
        p.add_argument("--no-progress", action="store_true", help="no progress bars")
        p.set_defaults(func=_demo if name == "demo" else _measure, accepts_overrides=True)

    s = sub.add_parser("panels", help="list the preset panels")
    s.set_defaults(func=_panels)
    parser.set_defaults(func=main, experts_parser=parser)


def main(args: argparse.Namespace) -> int:
    func = getattr(args, "func", None)
    if func is None or func is main:
        args.experts_parser.print_help()
        return 0
    return int(func(args) or 0)


def _generate(args: argparse.Namespace) -> int:
    from chess_exp.experts.generate import generate_games
    from chess_exp.experts.oracle import default_cache_dir
    from chess_exp.experts.panel import get_panel
    try:
        panel = get_panel(args.panel)
        if args.games < 1:
            raise ValueError(f"--games must be >= 1 (the number of games the file should hold), got {args.games}")
        if args.workers < 0:
            raise ValueError(f"--workers must be >= 0 (0: all cores), got {args.workers}")
        if args.max_moves < 1:
            raise ValueError(f"--max-moves must be >= 1, got {args.max_moves}")
        out = generate_games(panel, args.games, args.out, seed=args.seed, workers=args.workers or None,
                             cache_dir=args.cache or default_cache_dir(), stockfish=args.stockfish,
                             max_moves=args.max_moves, progress=not args.no_progress)
    except (ValueError, OSError) as exc:  # bad argument, foreign --out, missing or non-UCI Stockfish
        print(f"transcendence chess experts generate: error: {exc}", file=sys.stderr)
        return 2
    print(out)
    return 0


def _run(args: argparse.Namespace, preset) -> int:
    from chess_exp.experts.measure import measure
    from transcendence.config import apply_overrides
    try:
        config = apply_overrides(preset, getattr(args, "overrides", None) or [])
        if args.out is not None:
            config = dataclasses.replace(config, out=args.out)
        measure(config, progress=not args.no_progress)
    except (ValueError, FileNotFoundError) as exc:
        print(f"transcendence chess experts: error: {exc}", file=sys.stderr)
        return 2
    return 0


def _demo(args: argparse.Namespace) -> int:
    from chess_exp.experts.measure import DEMO
    return _run(args, DEMO)


def _measure(args: argparse.Namespace) -> int:
    from chess_exp.experts.measure import FULL
    return _run(args, FULL)


def _panels(args: argparse.Namespace) -> int:
    from chess_exp.experts.panel import PANELS
    for panel in PANELS.values():
        experts = ", ".join(f"{e.name} (eps {e.eps:g}" + (f", {e.skill} eps {e.eps_skill:g})" if e.skill else ")")
                            for e in panel.experts)
        print(f"{panel.name}: {panel.description}\n    oracle {panel.engine.tag}; experts: {experts}; "
              f"weights {[round(float(w), 3) for w in panel.probabilities]}")
    return 0
