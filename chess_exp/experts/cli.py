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

from transcendence.config import add_config_arguments, config_from_args

__all__ = ["GenerateConfig", "add_arguments", "main"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class GenerateConfig:
    """What ``transcendence chess experts generate`` does; each field is the option of the same name."""

    panel: str  # preset panel (see `transcendence chess experts panels`)
    games: int  # number of games the file should hold
    # a file this command wrote with the same --panel and --seed is completed (a torn last game is cut);
    # anything else is refused and left untouched
    out: Path  # PGN file; one written with the same --panel and --seed is completed, anything else refused
    seed: int = 0  # game g uses numpy default_rng([seed, g])
    workers: int = 0  # processes, one Stockfish each (0: all cores)
    cache: Path | None = None  # best-move cache directory (default: $TRANSCENDENCE_EXPERTS_CACHE or runs/experts_cache)
    max_moves: int = 89  # full moves before a game is a draw
    stockfish: str | None = None  # Stockfish binary (default: STOCKFISH_PATH, PATH, /usr/games)
    progress: bool = True  # progress bar (--no-progress: none)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="experts_command", metavar="EXPERTS_COMMAND")

    g = sub.add_parser("generate", help="play the panel's experts against each other into a PGN (resumable)",
                       description="Games between a panel's experts (both sides drawn from the panel's "
                                   "weights), on all cores, appended to --out; a second call resumes.")
    add_config_arguments(g, GenerateConfig)
    g.set_defaults(func=_generate)

    from chess_exp.experts.measure import DEMO, FULL, MeasureConfig
    for name, help_text, preset in (
            ("demo", "small end-to-end measurement on built-in defaults (a few minutes)", DEMO),
            ("measure", "the full measurement: generate, prepare, train, rate, agreement", FULL)):
        p = sub.add_parser(name, help=help_text,
                           description=help_text + ". Every field of MeasureConfig is an option, "
                                       "e.g. --games=2000 --rating_games=10 --levels=1,2,3.")
        add_config_arguments(p, MeasureConfig, defaults=preset)
        p.add_argument("--no-progress", action="store_true", help="no progress bars")
        p.set_defaults(func=_run)

    s = sub.add_parser("panels", help="list the preset panels")
    s.set_defaults(func=_panels)
    parser.set_defaults(func=main, experts_parser=parser)


def main(args: argparse.Namespace) -> int:
    func = getattr(args, "func", None)
    if func is None or func is main:
        args.experts_parser.print_help()
        return 0
    return int(func(args) or 0)


def _generate(ns: argparse.Namespace) -> int:
    from chess_exp.experts.generate import generate_games
    from chess_exp.experts.oracle import default_cache_dir
    from chess_exp.experts.panel import get_panel
    args = config_from_args(GenerateConfig, ns)
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
                             max_moves=args.max_moves, progress=args.progress)
    except (ValueError, OSError) as exc:  # bad argument, foreign --out, missing or non-UCI Stockfish
        print(f"transcendence chess experts generate: error: {exc}", file=sys.stderr)
        return 2
    print(out)
    return 0


def _run(args: argparse.Namespace) -> int:
    """``demo`` and ``measure``: the same run, from the DEMO or FULL preset's defaults."""
    from chess_exp.experts.measure import MeasureConfig, measure
    try:
        measure(config_from_args(MeasureConfig, args), progress=not args.no_progress)
    except (ValueError, FileNotFoundError) as exc:
        print(f"transcendence chess experts: error: {exc}", file=sys.stderr)
        return 2
    return 0


def _panels(args: argparse.Namespace) -> int:
    from chess_exp.experts.panel import PANELS
    for panel in PANELS.values():
        experts = ", ".join(f"{e.name} (eps {e.eps:g}" + (f", {e.skill} eps {e.eps_skill:g})" if e.skill else ")")
                            for e in panel.experts)
        print(f"{panel.name}: {panel.description}\n    oracle {panel.engine.tag}; experts: {experts}; "
              f"weights {[round(float(w), 3) for w in panel.probabilities]}")
    return 0
