"""``transcendence sweep <name> [--preset quick|full] [--key=value ...]`` and ``sweep --list``."""

from __future__ import annotations

import argparse
import json
import sys

from sims._common import SWEEPS

__all__ = ["register", "main"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``sweep`` subcommand (listed in ``transcendence.cli.COMMANDS``)."""
    listing = "\n".join(f"  {name:<18} {text}" for name, text in SWEEPS.items())
    p = subparsers.add_parser(
        "sweep", help="run a synthetic sweep into runs/<name>/ (--list to see them)",
        description="Run one synthetic sweep over all cores and write runs/<name>/ (config.json,\n"
                    "results.csv, summary.json). Config fields are set with --key=value, e.g.\n"
                    "  transcendence sweep noisy_experts --preset full --n_seeds=5 --ks=1,3,5\n"
                    "Draw its figure with: python paper_figs/<name>.py",
        epilog="sweeps:\n" + listing, formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False)
    add_arguments(p)
    p.set_defaults(func=main, accepts_overrides=True)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", help="the sweep to run (see --list)")
    p.add_argument("--list", action="store_true", help="list the sweeps and exit")
    p.add_argument("--preset", choices=("quick", "full"), default="quick",
                   help="config preset before overrides (default: quick, < 30 s on 2 cores)")
    p.add_argument("--out", default=None, help="run directory (default: runs/<name>)")
    p.add_argument("--workers", type=int, default=0,
                   help="worker processes (default 0 = all cores); results do not depend on it")
    p.add_argument("--quiet", action="store_true", help="no progress bar, no config echo")


def main(args: argparse.Namespace) -> int:
    from sims._common import get_sweep, run_sweep
    from sims._runner import make_tasks, resolve_workers
    from transcendence.cli import UsageError, check_output_dir
    from transcendence.config import apply_overrides, config_to_dict

    if args.list:
        for name, text in SWEEPS.items():
            print(f"{name:<18} {text}")
        return 0
    if not args.name:
        raise UsageError("give a sweep name or --list; sweeps: " + ", ".join(SWEEPS))
    overrides = list(getattr(args, "overrides", None) or [])
    # Every argument is checked before anything is written.
    module = get_sweep(args.name)
    cfg = apply_overrides(module.PRESETS[args.preset], overrides)
    try:
        _check_finite(cfg)
        module.validate(cfg)
        make_tasks(module.grid(cfg), cfg.n_seeds, cfg.seed)   # n_seeds, seed, empty grid axes
    except ValueError as exc:
        raise UsageError(_as_option(str(exc), cfg)) from None
    try:
        resolve_workers(args.workers)
    except ValueError:
        raise UsageError(f"--workers: must be >= 0 (0 = all cores), got {args.workers}") from None
    check_output_dir(args.out if args.out is not None else f"runs/{args.name}", "--out")
    if not args.quiet:
        print(f"# {args.name} ({args.preset} preset{', with overrides' if overrides else ''})",
              file=sys.stderr)
        print(json.dumps(config_to_dict(cfg)), file=sys.stderr)
    out = run_sweep(args.name, cfg, out_dir=args.out, workers=args.workers,
                    progress=not args.quiet)
    print(f"{args.name}: {len(out.rows)} rows in {out.seconds:.1f} s on {out.workers} worker(s) "
          f"-> {out.run_dir / 'results.csv'}")
    print(json.dumps(out.summary, indent=1))
    return 0


def _as_option(message: str, cfg: object) -> str:
    """``"ks must be ..."`` -> ``"--ks must be ..."`` when the message starts with a config field."""
    import dataclasses
    import re

    head = re.match(r"[A-Za-z_]\w*", message)
    names = {f.name for f in dataclasses.fields(cfg)} if dataclasses.is_dataclass(cfg) else set()
    return f"--{message}" if head and head.group(0) in names else message


def _check_finite(cfg: object) -> None:
    """No sweep setting may be NaN or infinite (each sweep's own checks then test the ranges)."""
    import dataclasses
    import math

    for f in dataclasses.fields(cfg):  # type: ignore[arg-type]
        value = getattr(cfg, f.name)
        values = value if isinstance(value, (tuple, list)) else (value,)
        if any(isinstance(v, float) and not math.isfinite(v) for v in values):
            raise ValueError(f"{f.name}: must be finite numbers, got {value}")
