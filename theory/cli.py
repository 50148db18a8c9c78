"""``transcendence theory``: check every statement on random instances and its counterexamples."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``theory`` subcommand (listed in ``transcendence.cli.COMMANDS``)."""
    from theory import STATEMENTS
    p = subparsers.add_parser(
        "theory", help="check the paper's results on random instances (< 1 minute)",
        description="Draw N random instances per statement (Props. 1-4, Prop. 2's converse, skill "
                    "selection, convexity, interior optimum), check hypotheses => conclusion on each, check every "
                    "counterexample, and print one row per statement. Exits 1 if anything fails. "
                    "Proofs: theory/README.md.")
    p.add_argument("--instances", type=int, default=1000, metavar="N",
                   help="random instances per statement (default 1000)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed, >= 0 (default 0)")
    p.add_argument("--statement", action="append", choices=list(STATEMENTS), metavar="ID",
                   help=f"only this statement (repeatable): {', '.join(STATEMENTS)}")
    p.add_argument("--json", type=Path, default=None, metavar="PATH",
                   help="also write the rows (and failures) as JSON to PATH")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from theory import STATEMENTS, intermediate, runner
    from transcendence.cli import UsageError, check_output_file
    from transcendence.io import atomic_write_json
    if args.instances < 1:
        raise UsageError(f"--instances: must be >= 1, got {args.instances}")
    if args.seed < 0:
        raise UsageError(f"--seed: must be >= 0 (instances are drawn with default_rng([seed, ...])), "
                         f"got {args.seed}")
    if args.json is not None:        # checked before the run, not after it
        check_output_file(args.json, "--json")
    ids = args.statement or list(STATEMENTS)
    rows = [runner.run_statement(STATEMENTS[i], args.instances, seed=args.seed,
                                 progress=sys.stderr.isatty()) for i in ids]
    print(runner.format_table(rows))
    lines = []
    for mode in ("logit", "prob"):
        c = intermediate.interior_optimum(intermediate.example(), mode=mode)
        v = c.values
        lines.append(f"  {mode:5s}: best τ = {v['best_tau']:.3g}, margin {v['best_margin']:+.4f}; "
                     f"τ → 0: {v['margin_tau0']:+.4f}, τ = 1: {v['margin_tau1']:+.4f} "
                     f"({'confirmed' if c.holds else 'NOT confirmed'})")
    print("\nintermediate temperature (theory.intermediate.example): margin over the best expert")
    print("\n".join(lines))
    failed = [r for r in rows if not r.ok]
    for r in failed:
        for f in r.failures:
            print(f"FAIL {r.id}: {f} (rebuild: theory.runner.instance({r.id!r}, {args.seed}, i))",
                  file=sys.stderr)
    if args.json is not None:
        atomic_write_json(args.json, {"seed": args.seed, "instances": args.instances,
                                      "rows": [runner.as_dict(r) for r in rows]})
    return 1 if failed else 0
