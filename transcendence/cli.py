"""The ``transcendence`` command line.

The core registers ``demo``. The other packages (``theory``, ``sims``, ``chess_exp``) contribute their
subcommands through the ``transcendence.commands`` entry-point group declared in ``pyproject.toml``:
each entry point is a function ``register(subparsers)`` that adds one subcommand whose parser has a
``func`` default taking the parsed arguments and returning an exit code.
"""

from __future__ import annotations

import argparse
import sys
from importlib import metadata
from typing import Sequence

__all__ = ["main", "build_parser"]


def _register_demo(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo", help="show transcendence on built-in examples (table + plot, < 1 minute)",
        description="The main job on built-in defaults: the paper's three-action example and a "
                    "panel of noisy experts, with a table and a plot of reward against temperature.")
    p.add_argument("--out", default="runs/demo", help="directory for the table and plot (default: runs/demo)")
    p.add_argument("--seed", type=int, default=0, help="seed for the noisy-expert panel (default 0)")

    def run(args: argparse.Namespace) -> int:
        from transcendence.demo import run_demo
        run_demo(out_dir=args.out, seed=args.seed)
        return 0

    p.set_defaults(func=run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="transcendence",
        description="Exact, testable transcendence: when does a model trained on experts beat them?")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    _register_demo(subparsers)
    for ep in sorted(metadata.entry_points(group="transcendence.commands"), key=lambda e: e.name):
        module_name = ep.value.split(":")[0]
        try:
            register = ep.load()
        except ModuleNotFoundError as exc:  # a package of this repo not built yet
            if exc.name and module_name.startswith(exc.name):
                continue
            raise
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    # Subcommands that accept --key=value overrides declare `accepts_overrides=True`.
    if extra and not getattr(args, "accepts_overrides", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.overrides = extra
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
