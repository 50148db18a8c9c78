"""Finite samples: margin of the tempered empirical predictor over the best expert against samples
per input, with and without smoothing, 95% bands over seeds; dashed: the exact mixture (n = inf).
Reads runs/finite_sample/results.csv."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np

from paper_figs._style import COLORS, band, curve, load_run, parse_args, plt, save, select

NAME = "finite_sample"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(NAME, __doc__, argv)
    cfg, cols = load_run(args.run)
    temps, smooths, ns = cfg["temperatures"], cfg["smoothings"], cfg["samples_per_input"]
    fig, axes = plt.subplots(1, len(temps), figsize=(3.1 * len(temps), 3.0), squeeze=False,
                             sharey=True)
    for j, t in enumerate(temps):
        ax = axes[0, j]
        for i, s in enumerate(smooths):
            band(ax, *curve(cols, "samples_per_input", "margin", ns, smoothing=s, temperature=t),
                 color=COLORS(i / max(1, len(smooths) - 1) * 0.8), marker=".",
                 label="no smoothing" if s == 0 else f"smoothing α={s:g}")
        ideal = np.mean(cols["ideal_margin"][select(cols, temperature=t)])
        ax.axhline(ideal, color="k", ls="--", lw=0.8, label="exact mixture")
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("samples per input n / |X|")
        ax.set_title(f"τ = {t:g}" + (" (argmax)" if t == 0 else ""))
        if j == 0:
            ax.set_ylabel("margin over the best expert")
            ax.legend()
    fig.suptitle(f"k={cfg['n_experts']} experts, noise ρ̄={cfg['noise']}, |X|={cfg['n_inputs']}, "
                 f"|Y|={cfg['n_outputs']}, {cfg['n_seeds']} seeds", fontsize=9)
    fig.tight_layout()
    save(fig, args.out, NAME)
    return 0


if __name__ == "__main__":
    sys.exit(main())
