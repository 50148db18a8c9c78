"""The sweep registry and :func:`run_sweep`, which turns a config into a results directory."""

from __future__ import annotations

import dataclasses
import importlib
import math
import time
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from sims._runner import make_tasks, resolve_workers, run_tasks, write_rows
from transcendence.io import atomic_write_json

__all__ = ["SWEEPS", "get_sweep", "run_sweep", "SweepOutput", "t_interval", "check_positive",
           "check_temperatures", "check_probabilities"]

#: name -> one-line description; the module is ``sims.<name>``.
SWEEPS: dict[str, str] = {
    "noisy_experts": "k experts with independent random mistakes: margin vs temperature, phase diagram",
    "correlated_errors": "experts whose mistakes agree with probability c: transcendence vanishes as c -> 1",
    "partition_experts": "Prop. 4 experts, each optimal on one part: margin vs how the test covers the parts",
    "finite_sample": "predictor fitted from n samples (empirical policy): margin vs samples per input",
    "linear_toy": "the paper's linear softmax toy (its Fig. 7): accuracy vs temperature per sigma",
    "skill_selection": "experts with their own input distributions: margin at tau=1 and tau->0 vs selection",
}


def get_sweep(name: str) -> ModuleType:
    """The module of sweep ``name``; ``ValueError`` listing the sweeps when it is unknown."""
    if name not in SWEEPS:
        raise ValueError(f"unknown sweep {name!r}; known sweeps: {', '.join(SWEEPS)} "
                         "(transcendence sweep --list)")
    return importlib.import_module(f"sims.{name}")


@dataclasses.dataclass(frozen=True)
class SweepOutput:
    """What :func:`run_sweep` wrote: the run directory, the result rows and the summary."""

    run_dir: Path
    rows: list[dict[str, Any]]
    summary: dict[str, Any]
    seconds: float
    workers: int


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return v if math.isfinite(v) else str(v)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def run_sweep(name: str, config: Any = None, *, out_dir: str | Path | None = None,
              workers: int | None = None, progress: bool = True) -> SweepOutput:
    """Run sweep ``name`` with ``config`` (default: its ``quick`` preset) into ``out_dir``.

    Writes ``config.json`` (via :func:`transcendence.config.write_run_metadata`), ``results.csv``
    (one row per grid point, seed and temperature) and ``summary.json`` (the headline numbers).
    ``workers``: processes (``None``/0 = all cores); the numbers do not depend on it.
    """
    from transcendence.config import write_run_metadata

    module = get_sweep(name)
    cfg = module.PRESETS["quick"] if config is None else config
    if not isinstance(cfg, module.CONFIG):
        raise ValueError(f"config for sweep {name!r} must be a {module.CONFIG.__name__}, "
                         f"got {type(cfg).__name__}")
    module.validate(cfg)
    run_dir = Path(out_dir) if out_dir is not None else Path("runs") / name
    n_workers = resolve_workers(workers)
    tasks = make_tasks(module.grid(cfg), cfg.n_seeds, cfg.seed)   # checked before anything is written
    write_run_metadata(run_dir, cfg, extra={"sweep": name, "workers": n_workers})
    start = time.perf_counter()
    rows = run_tasks(partial(module.run_point, cfg), tasks, workers=n_workers, desc=name,
                     progress=progress)
    seconds = time.perf_counter() - start
    write_rows(run_dir / "results.csv", rows)
    summary = _jsonable(module.summarize(rows, cfg))
    atomic_write_json(run_dir / "summary.json", summary)
    return SweepOutput(run_dir=run_dir, rows=rows, summary=summary, seconds=seconds,
                       workers=n_workers)


def t_interval(values: np.ndarray, axis: int = -1, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Mean and half-width of the Student-t confidence interval over ``axis`` (nan for n < 2)."""
    from scipy import stats

    values = np.asarray(values, dtype=float)
    n = values.shape[axis]
    mean = values.mean(axis=axis)
    if n < 2:
        return mean, np.full_like(mean, np.nan)
    sem = values.std(axis=axis, ddof=1) / math.sqrt(n)
    return mean, stats.t.ppf(0.5 + level / 2, n - 1) * sem


def check_positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value}")


def check_temperatures(temperatures: tuple[float, ...]) -> None:
    if len(temperatures) == 0:
        raise ValueError("temperatures is empty: give at least one, e.g. --temperatures=0,0.1,1")
    if any((not math.isfinite(t)) or t < 0 for t in temperatures):
        raise ValueError(f"temperatures must be finite and >= 0, got {temperatures}")


def check_probabilities(name: str, values: tuple[float, ...]) -> None:
    if len(values) == 0 or any(not 0 <= v <= 1 for v in values):
        raise ValueError(f"{name} must be a non-empty list of numbers in [0, 1], got {values}")
