"""Figure 1's form: rating against sampling temperature, with 95% bands and the rating cap dashed.

Reads one or more ``results.json`` written by ``transcendence chess eval`` (one line per model) and
writes PNG + PDF. Nothing is played or computed here beyond reading.

::

    python -m paper_figs.rating_temperature runs/eval-1000/results.json runs/eval-1300/results.json \\
        --out paper_figs/out/rating_temperature --estimator glicko2

``--estimator glicko2`` draws the paper's sequential Glicko-2 rating with +-2 RD; ``mle`` the
order-free maximum-likelihood Elo with its 95% profile-likelihood interval; ``both`` draws two panels.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["plot", "main"]


def _series(results: dict[str, Any], estimator: str) -> tuple[list[float], list[float], list[float], list[float]]:
    ts, mid, lo, hi = [], [], [], []
    for row in sorted(results["rows"], key=lambda r: r["temperature"]):
        if estimator == "glicko2":
            g = row["glicko2"]
            values: tuple[float, ...] = (g["rating"], g["lo"], g["hi"])
        else:
            m = row["mle"]
            values = tuple(_num(m[k]) for k in ("elo", "lo", "hi"))
        ts.append(row["temperature"])
        mid.append(values[0])
        lo.append(values[1])
        hi.append(values[2])
    return ts, mid, lo, hi


def _num(x: float | str) -> float:
    if isinstance(x, str):
        return {"inf": math.inf, "-inf": -math.inf}.get(x) or float(x)
    return float(x)


def plot(results_paths: Sequence[str | Path], out: str | Path, *, estimator: str = "glicko2",
         labels: Sequence[str] | None = None) -> list[Path]:
    """Draw the figure from ``results_paths``; write ``out``.png and ``out``.pdf; return the paths."""
    if estimator not in ("glicko2", "mle", "both"):
        raise ValueError(f"estimator={estimator!r}: must be glicko2, mle or both")
    results = [json.loads(Path(p).read_text()) for p in results_paths]
    if not results:
        raise ValueError("results_paths: give at least one results.json")
    estimators = ["glicko2", "mle"] if estimator == "both" else [estimator]
    fig, axes = plt.subplots(1, len(estimators), figsize=(5.5 * len(estimators), 4), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    # temperatures on evenly spaced positions (as in the paper's figure; 0 = argmax fits too)
    grid = sorted({row["temperature"] for res in results for row in res["rows"]})
    where = {t: i for i, t in enumerate(grid)}
    for ax, est in zip(axes[0], estimators):
        for k, res in enumerate(results):
            colour = colours[k % len(colours)]
            label = labels[k] if labels else str(res.get("model", f"model {k}"))
            ts, mid, lo, hi = _series(res, est)
            ts = [where[t] for t in ts]
            finite_lo = [v if math.isfinite(v) else min(m for m in mid if math.isfinite(m)) - 400 for v in lo]
            finite_hi = [v if math.isfinite(v) else max(m for m in mid if math.isfinite(m)) + 400 for v in hi]
            ax.plot(ts, mid, marker="o", color=colour, label=label)
            ax.fill_between(ts, finite_lo, finite_hi, color=colour, alpha=0.2, linewidth=0)
            if res.get("cap") is not None:
                ax.axhline(float(res["cap"]), color=colour, linestyle="--", linewidth=1,
                           label=f"{label}: training cap {float(res['cap']):g}")
        ax.set_xticks(range(len(grid)), [f"{t:g}" for t in grid])
        ax.set_xlabel("temperature τ")
        ax.set_ylabel("Glicko-2 rating (±2 RD)" if est == "glicko2" else "MLE Elo (95% interval)")
        first = results[0]
        ax.set_title(f"{'Glicko-2, sequential (paper)' if est == 'glicko2' else 'MLE Elo, pooled'}; "
                     f"{first.get('policy', '')}, {first.get('limit', '')}", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = [out.with_suffix(".png"), out.with_suffix(".pdf")]
    for path in paths:
        fig.savefig(path, dpi=150)
    plt.close(fig)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+", help="results.json files from `transcendence chess eval`")
    parser.add_argument("--out", default="paper_figs/out/rating_temperature", help="output path without suffix")
    parser.add_argument("--estimator", choices=("glicko2", "mle", "both"), default="glicko2")
    parser.add_argument("--labels", default=None, help="comma-separated line labels (default: model names)")
    args = parser.parse_args(argv)
    labels = args.labels.split(",") if args.labels else None
    for path in plot(args.results, args.out, estimator=args.estimator, labels=labels):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
