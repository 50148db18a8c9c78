"""The parallel runner shared by every sweep, plus results I/O.

A sweep is a list of *tasks*, one per (grid point, seed). Each task is a picklable tuple
``(grid_point: dict, seed_index: int, seed: numpy.random.SeedSequence)`` handed to a module-level
function that returns a list of result rows (flat dicts of scalars). :func:`run_tasks` runs them in
a pool of processes (``spawn``, one BLAS thread per process) with a progress bar on stderr and
returns the rows in task order, so the output does not depend on the number of workers.

Seeds: replicate ``s`` of a sweep with seed ``S`` uses ``SeedSequence(S).spawn(n_seeds)[s]`` at
*every* grid point (common random numbers): along a swept axis only the swept parameter changes,
which makes curves smooth and paired comparisons between grid points sharper.
"""

from __future__ import annotations

import csv
import math
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from itertools import product
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from transcendence.io import atomic_open

__all__ = ["Task", "make_tasks", "run_tasks", "write_rows", "read_rows", "resolve_workers",
           "substreams"]

Task = tuple[dict[str, Any], int, np.random.SeedSequence]
Row = dict[str, Any]

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def make_tasks(grid: Mapping[str, Sequence[Any]], n_seeds: int, seed: int) -> list[Task]:
    """All (grid point, replicate) pairs, grid-major, replicate fastest.

    ``grid`` maps a parameter name to its values; the grid is their Cartesian product in the
    order given. Replicate ``s`` gets the same child ``SeedSequence(seed).spawn(n_seeds)[s]`` at
    every grid point.
    """
    if isinstance(n_seeds, bool) or not isinstance(n_seeds, (int, np.integer)) or n_seeds < 1:
        raise ValueError(f"n_seeds: must be an integer >= 1 (replicates per grid point), got {n_seeds!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: must be an integer >= 0, got {seed!r}")
    for name, values in grid.items():
        if len(values) == 0:
            raise ValueError(f"grid axis {name!r} is empty: give at least one value")
    children = np.random.SeedSequence(seed).spawn(n_seeds)
    names = list(grid)
    tasks: list[Task] = []
    for values in product(*(grid[n] for n in names)):
        point = dict(zip(names, values))
        for s, child in enumerate(children):
            tasks.append((point, s, child))
    return tasks


def substreams(seed: np.random.SeedSequence, n: int) -> list[np.random.SeedSequence]:
    """``n`` independent children of ``seed`` without mutating it.

    ``SeedSequence.spawn`` counts the children it has handed out, so calling it on a task's seed
    would give different streams each time the same seed object is reused (replicates share one
    seed object across grid points). These children are the same as ``seed``'s first ``n`` spawns.
    """
    return [np.random.SeedSequence(seed.entropy, spawn_key=tuple(seed.spawn_key) + (i,),
                                   pool_size=seed.pool_size) for i in range(n)]


def resolve_workers(workers: int | None) -> int:
    """``None`` or 0 -> all cores the process may use; otherwise ``workers`` (>= 1)."""
    if workers is None or workers == 0:
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # pragma: no cover - not Linux
            return max(1, os.cpu_count() or 1)
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 0:
        raise ValueError(f"workers: must be an integer >= 0 (0 = all cores), got {workers!r}")
    return int(workers)


def run_tasks(fn: Callable[[Task], list[Row]], tasks: Sequence[Task], *, workers: int | None = None,
              desc: str = "sweep", progress: bool = True) -> list[Row]:
    """Run ``fn`` on every task and return all rows, in task order.

    ``fn`` must be a module-level function (it is pickled into worker processes). With
    ``workers == 1`` everything runs in this process; otherwise a ``spawn`` pool of ``workers``
    processes, each limited to one BLAS/OpenMP thread, runs chunks of tasks. Results do not depend
    on ``workers``: each task's randomness comes only from its own ``SeedSequence``.
    """
    from tqdm import tqdm

    n_workers = min(resolve_workers(workers), max(1, len(tasks)))
    bar = tqdm(total=len(tasks), desc=desc, unit="task", file=sys.stderr, disable=not progress,
               dynamic_ncols=True)
    rows: list[Row] = []
    try:
        if n_workers == 1:
            for task in tasks:
                rows.extend(fn(task))
                bar.update(1)
            return rows
        chunksize = max(1, math.ceil(len(tasks) / (n_workers * 8)))
        saved = {v: os.environ.get(v) for v in _THREAD_VARS}
        # Read by the spawned children at start-up (numpy's BLAS, and torch if a task imports it).
        os.environ.update({v: "1" for v in _THREAD_VARS})
        try:
            with ProcessPoolExecutor(max_workers=n_workers, mp_context=get_context("spawn")) as pool:
                for task_rows in pool.map(fn, tasks, chunksize=chunksize):
                    rows.extend(task_rows)
                    bar.update(1)
        finally:
            for v, old in saved.items():
                if old is None:
                    os.environ.pop(v, None)
                else:
                    os.environ[v] = old
        return rows
    finally:
        bar.close()


def _fmt(value: Any) -> str:
    if value is None:
        return "nan"
    if isinstance(value, (bool, np.bool_)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))  # round-trips exactly; inf / nan as 'inf' / 'nan'
    return str(value)


def write_rows(path: str | os.PathLike[str], rows: Iterable[Row]) -> Path:
    """Write rows (flat dicts) as CSV; columns in first-seen order. ``None`` is written ``nan``."""
    rows = list(rows)
    if not rows:
        raise ValueError(f"no rows to write to {path}")
    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    path = Path(path)
    with atomic_open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_fmt(row.get(c)) for c in columns])
    return path


def read_rows(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read a CSV written by :func:`write_rows` into columns (floats where they parse)."""
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        cols: list[list[str]] = [[] for _ in header]
        for line in reader:
            for c, v in zip(cols, line):
                c.append(v)
    out: dict[str, np.ndarray] = {}
    for name, values in zip(header, cols):
        try:
            out[name] = np.array([float(v) for v in values])
        except ValueError:
            out[name] = np.array(values)
    return out
