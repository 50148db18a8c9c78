"""Correlated errors: the argmax margin against how often the experts' mistakes agree (c), per
error rate and number of experts; the right panel plots it against the measured correlation of the
experts' correctness. Reads runs/correlated_errors/results.csv."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np

from paper_figs._style import COLORS, band, curve, load_run, parse_args, plt, save, select

NAME = "correlated_errors"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(NAME, __doc__, argv)
    cfg, cols = load_run(args.run)
    rates, ks, cs = cfg["error_rates"], cfg["ks"], cfg["correlations"]
    first = np.isclose(cols["temperature"], cfg["temperatures"][0])
    sub = {key: value[first] for key, value in cols.items()}
    fig, axes = plt.subplots(1, len(rates) + 1, figsize=(3.4 * (len(rates) + 1), 3.2), squeeze=False)
    for j, rho in enumerate(rates):
        ax = axes[0, j]
        for i, k in enumerate(ks):
            x, m, h = curve(sub, "correlation", "argmax_margin", cs, error_rate=rho, k=k)
            band(ax, x, m, h, color=COLORS(i / max(1, len(ks) - 1)), label=f"k={k}", marker=".")
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xlabel("c = P(copy the shared answer)")
        ax.set_ylabel("argmax margin R(f̂_max) − max_i R(f_i)")
        ax.set_title(f"error rate ρ={rho}, |Y|={cfg['n_outputs']}")
        ax.legend()
    ax = axes[0, -1]
    for j, rho in enumerate(rates):
        for i, k in enumerate(ks):
            sel = select(sub, error_rate=rho, k=k)
            xs = [np.nanmean(sub["error_correlation"][sel & np.isclose(sub["correlation"], c)]) for c in cs]
            y = [np.mean(sub["argmax_margin"][sel & np.isclose(sub["correlation"], c)]) for c in cs]
            ax.plot(xs, y, marker="os^vD"[j % 5], ms=3, lw=0.8, color=COLORS(i / max(1, len(ks) - 1)),
                    label=f"ρ={rho}, k={k}" if i in (0, len(ks) - 1) else None)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xlabel("measured correlation of experts' correctness")
    ax.set_ylabel("mean argmax margin")
    ax.set_title("the diversity condition")
    ax.legend(ncol=1)
    fig.tight_layout()
    save(fig, args.out, NAME)
    return 0


if __name__ == "__main__":
    sys.exit(main())
