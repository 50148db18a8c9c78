"""Partition experts (Prop. 4): argmax margin, tau = 1 margin and critical temperature against how
the test distribution covers the parts (coverage 0: all test mass on one part; 1: uniform).
Reads runs/partition_experts/results.csv."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np

from paper_figs._style import COLORS, band, curve, load_run, parse_args, plt, save

NAME = "partition_experts"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(NAME, __doc__, argv)
    cfg, cols = load_run(args.run)
    ks, covs, temps = cfg["ks"], cfg["coverages"], cfg["temperatures"]
    t1 = min(temps, key=lambda t: abs(t - 1.0))
    fig, axes = plt.subplots(1, 3, figsize=(10.5, 3.2))
    first = np.isclose(cols["temperature"], temps[0])
    sub = {key: value[first] for key, value in cols.items()}
    for i, k in enumerate(ks):
        color = COLORS(i / max(1, len(ks) - 1))
        band(axes[0], *curve(sub, "coverage", "argmax_margin", covs, k=k), color=color,
             label=f"k={k}", marker=".")
        band(axes[1], *curve(cols, "coverage", "margin", covs, k=k, temperature=t1), color=color,
             label=f"k={k}", marker=".")
        tau = sub["critical_temperature"].copy()
        tau[np.isinf(tau)] = np.nan
        med = [np.nanmedian(tau[np.isclose(sub["k"], k) & np.isclose(sub["coverage"], c)])
               if np.any(~np.isnan(tau[np.isclose(sub["k"], k) & np.isclose(sub["coverage"], c)]))
               else np.nan for c in covs]
        axes[2].plot(covs, med, marker=".", color=color, label=f"k={k}")
    axes[0].set_ylabel("argmax margin R(f*) − max_i R(f_i)")
    axes[1].set_ylabel(f"margin at τ={t1} (pure imitation)")
    axes[2].set_ylabel("median critical temperature τ*")
    titles = ("τ → 0: transcends once two parts are covered", f"τ = {t1}: Prop. 1, never > 0",
              "largest τ that still transcends")
    for ax, title in zip(axes, titles):
        ax.set_xlabel("test coverage of the parts")
        ax.set_title(title)
        ax.legend()
    for ax in axes[:2]:
        ax.axhline(0, color="k", lw=0.8)
    fig.tight_layout()
    save(fig, args.out, NAME)
    return 0


if __name__ == "__main__":
    sys.exit(main())
