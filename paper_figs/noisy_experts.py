"""Noisy experts: transcendence margin against temperature, and a phase diagram (where the argmax
transcends; the critical temperature as a colour). Reads runs/noisy_experts/results.csv."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np

from paper_figs._style import COLORS, band, curve, load_run, parse_args, plt, save, select

NAME = "noisy_experts"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(NAME, __doc__, argv)
    cfg, cols = load_run(args.run)
    n_outputs, ks, noises = cfg["n_outputs"], cfg["ks"], cfg["noises"]
    temps = cfg["temperatures"]
    mid = min(noises, key=lambda v: abs(v - 0.5))
    fig, axes = plt.subplots(2, len(n_outputs), figsize=(3.6 * len(n_outputs), 6.4), squeeze=False)
    for j, n_y in enumerate(n_outputs):
        ax = axes[0, j]
        for i, k in enumerate(ks):
            x, m, h = curve(cols, "temperature", "margin", temps, n_outputs=n_y, k=k, noise=mid)
            band(ax, x, m, h, color=COLORS(i / max(1, len(ks) - 1)), label=f"k={k}", marker=".")
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xscale("symlog", linthresh=0.01)
        ax.set_xlim(0, max(temps))
        ax.set_xlabel("temperature τ (0 = argmax)")
        ax.set_ylabel("R(f̂_τ) − max_i R(f_i)")
        ax.set_title(f"|Y|={n_y}, mean noise ρ̄={mid}")
        ax.legend(ncol=2)

        # Phase diagram: median critical temperature where the argmax transcends in >= half the seeds.
        ax = axes[1, j]
        first = np.isclose(cols["temperature"], temps[0])
        grid = np.full((len(ks), len(noises)), np.nan)
        for a, k in enumerate(ks):
            for b, v in enumerate(noises):
                sel = first & select(cols, n_outputs=n_y, k=k, noise=v)
                if cols["argmax_transcends"][sel].mean() >= 0.5:
                    tau = cols["critical_temperature"][sel]
                    tau = np.where(np.isnan(tau), 0.0, np.minimum(tau, 1e3))
                    grid[a, b] = np.log10(max(np.median(tau), 1e-4))
        cmap = plt.get_cmap("magma").with_extremes(bad="lightgrey")
        im = ax.imshow(np.ma.masked_invalid(grid), origin="lower", aspect="auto", cmap=cmap,
                       vmin=-2, vmax=0.5)
        ax.set_xticks(range(len(noises)))
        ax.set_xticklabels([f"{v:g}" for v in noises], rotation=90, fontsize=7)
        ax.set_yticks(range(len(ks)))
        ax.set_yticklabels([str(k) for k in ks])
        ax.set_xlabel("mean noise ρ̄")
        ax.set_ylabel("experts k")
        ax.set_title("median log10 τ* (grey: argmax does not transcend)")
        ax.grid(False)
        fig.colorbar(im, ax=ax, label="log10 critical temperature")
    fig.tight_layout()
    save(fig, args.out, NAME)
    return 0


if __name__ == "__main__":
    sys.exit(main())
