"""Shared plumbing for the sweep figures: arguments, reading a run directory, grouping, saving.

Figure scripts only read results (``runs/<sweep>/results.csv`` and ``config.json``) and write
``<name>.png`` and ``<name>.pdf`` into ``paper_figs/out/`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["parse_args", "load_run", "select", "mean_ci", "curve", "band", "save", "plt", "COLORS"]

COLORS = plt.get_cmap("viridis")

plt.rcParams.update({"figure.dpi": 110, "savefig.dpi": 150, "font.size": 9, "axes.titlesize": 9,
                     "axes.grid": True, "grid.alpha": 0.3, "legend.fontsize": 7,
                     "legend.frameon": False})


def parse_args(name: str, doc: str | None, argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=f"paper_figs/{name}.py", description=(doc or "").split("\n\n")[0])
    p.add_argument("--run", default=f"runs/{name}", help=f"run directory (default runs/{name})")
    p.add_argument("--out", default="paper_figs/out", help="output directory (default paper_figs/out)")
    return p.parse_args(argv)


def load_run(run_dir: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``(config, columns)`` of a sweep run; columns are float arrays where they parse."""
    run_dir = Path(run_dir)
    results = run_dir / "results.csv"
    if not results.exists():
        raise SystemExit(f"{results} not found: run `transcendence sweep {run_dir.name}` first "
                         "(or pass --run DIR)")
    config = json.loads((run_dir / "config.json").read_text())["config"]
    with open(results, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        raw: list[list[str]] = [[] for _ in header]
        for line in reader:
            for col, value in zip(raw, line):
                col.append(value)
    cols: dict[str, np.ndarray] = {}
    for name, values in zip(header, raw):
        try:
            cols[name] = np.array([float(v) for v in values])
        except ValueError:
            cols[name] = np.array(values)
    return config, cols


def select(cols: dict[str, np.ndarray], **where: float) -> np.ndarray:
    """Boolean mask of the rows where every ``column == value`` (floats compared with isclose)."""
    mask = np.ones(len(next(iter(cols.values()))), dtype=bool)
    for key, value in where.items():
        mask &= np.isclose(cols[key], value)
    return mask


def mean_ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Mean and Student-t half-width over the values (half-width 0 for fewer than two)."""
    from scipy import stats

    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return math.nan, math.nan
    if values.size < 2:
        return float(values.mean()), 0.0
    half = stats.t.ppf(0.5 + level / 2, values.size - 1) * values.std(ddof=1) / math.sqrt(values.size)
    return float(values.mean()), float(half)


def curve(cols: dict[str, np.ndarray], x_key: str, y_key: str, xs: Sequence[float],
          **where: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and CI half-width of ``y_key`` over seeds at each ``x`` in ``xs``."""
    means, halves = [], []
    for x in xs:
        m, h = mean_ci(cols[y_key][select(cols, **{x_key: x}, **where)])
        means.append(m)
        halves.append(h)
    return np.asarray(xs, dtype=float), np.array(means), np.array(halves)


def band(ax: Any, x: np.ndarray, mean: np.ndarray, half: np.ndarray, **kwargs: Any) -> None:
    """A line with a shaded confidence band."""
    (line,) = ax.plot(x, mean, **kwargs)
    ax.fill_between(x, mean - half, mean + half, color=line.get_color(), alpha=0.2, linewidth=0)


def save(fig: Any, out_dir: str | Path, name: str) -> list[Path]:
    """Write ``name.png`` and ``name.pdf`` into ``out_dir``; returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
    for path in paths:
        fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    for path in paths:
        print(path)
    return paths
