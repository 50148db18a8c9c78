"""Shared command-line plumbing for the analysis subcommands.

Each analysis has one frozen config dataclass. The subcommand takes ``--out`` plus typed
``--key=value`` overrides of that dataclass (``transcendence.config.apply_overrides``); the
resolved config goes to ``<out>/config.json`` with the command line, commit and versions.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from transcendence.config import apply_overrides, config_to_dict, write_run_metadata
from transcendence.io import atomic_open, atomic_write_json

C = TypeVar("C")


def add_config_arguments(parser: argparse.ArgumentParser, default_cfg: Any, default_out: str) -> None:
    fields = "\n".join(f"  --{f.name}={_fmt(getattr(default_cfg, f.name))}"
                       for f in dataclasses.fields(default_cfg))
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "config overrides (--key=value):\n" + fields
    parser.add_argument("--out", default=default_out, help=f"results directory (default {default_out})")
    parser.set_defaults(accepts_overrides=True)


def _fmt(v: Any) -> str:
    if isinstance(v, (tuple, list)):
        return ",".join(str(x) for x in v)
    return str(v)


def resolve_config(default_cfg: C, args: argparse.Namespace) -> C:
    try:
        cfg = apply_overrides(default_cfg, list(getattr(args, "overrides", None) or []))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print(json.dumps(config_to_dict(cfg)), file=sys.stderr)
    return cfg


def start_run(out: str | Path, cfg: Any) -> Path:
    run_dir = Path(out)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_run_metadata(run_dir, cfg)
    return run_dir


def run_or_report(fn: Any, cfg: Any, out: str) -> Any | None:
    """``fn(cfg, out)``, or None after printing the error when the input is missing or invalid."""
    try:
        return fn(cfg, out)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def nonneg_floats(text: str, *, allow_empty: bool = False) -> tuple[float, ...]:
    """A comma list of numbers >= 0 (temperatures, random-move rates) for a config field's ``parse``."""
    try:
        vals = tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers >= 0, got {text!r}") from None
    if (not vals and not allow_empty) or any(not (v >= 0 and math.isfinite(v)) for v in vals):
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers >= 0, got {text!r}")
    return vals


def exit_status(validate: Callable[[C], str | None], run: Callable[[C], Any], cfg: C) -> int:
    """A command's exit status: 2 with one ``error:`` line when ``validate(cfg)`` names a problem or
    ``run(cfg)`` meets missing or invalid input (nothing else is caught), else 0."""
    err = validate(cfg)
    if err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        run(cfg)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def write_json(path: Path, obj: Any) -> None:
    atomic_write_json(path, obj, indent=1, default=_default)


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write ``rows`` (dicts with the same keys) as CSV, atomically; nothing when there are none."""
    if not rows:
        return
    with atomic_open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _default(o: Any) -> Any:
    if dataclasses.is_dataclass(o):
        return dataclasses.asdict(o)
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o)}")
