"""Skill selection: margin at low temperature and at tau = 1 against how much the experts' input
distributions differ (selection > 0: each expert more present where it is better). For k = 2 the
last panel checks the necessary condition of the Taxonomy paper's Thm 2.1 against the tau = 1 margin.
Reads runs/skill_selection/results.csv."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np

from paper_figs._style import band, curve, load_run, parse_args, plt, save, select

NAME = "skill_selection"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(NAME, __doc__, argv)
    cfg, cols = load_run(args.run)
    ks, sels, temps = cfg["ks"], cfg["selections"], cfg["temperatures"]
    t_low, t1 = min(temps), min(temps, key=lambda t: abs(t - 1.0))
    has_two = 2 in ks
    n = len(ks) + int(has_two)
    fig, axes = plt.subplots(1, n, figsize=(3.4 * n, 3.2), squeeze=False)
    for j, k in enumerate(ks):
        ax = axes[0, j]
        band(ax, *curve(cols, "selection", "margin", sels, k=k, temperature=t_low), color="C0",
             marker=".", label=f"τ = {t_low:g}" + (" (argmax)" if t_low == 0 else ""))
        band(ax, *curve(cols, "selection", "margin", sels, k=k, temperature=t1), color="C3",
             marker=".", label=f"τ = {t1:g} (imitation)")
        ax.axhline(0, color="k", lw=0.8)
        ax.axvline(0, color="grey", lw=0.6, ls=":")
        ax.set_xlabel("selection λ = log p_i(own region) / p_i(elsewhere)")
        ax.set_ylabel("margin over the best expert")
        tv = [np.mean(cols["tv_distance"][select(cols, k=k, selection=v)]) for v in (min(sels), max(sels))]
        ax.set_title(f"k={k}: TV between p_i up to {max(tv):.2f}")
        ax.legend()
    if has_two:
        ax = axes[0, -1]
        sel = select(cols, k=2, temperature=t1)
        ax.scatter(cols["tax_condition"][sel], cols["margin"][sel], s=6, c=cols["selection"][sel],
                   cmap="coolwarm")
        ax.axhline(0, color="k", lw=0.8)
        ax.axvline(0, color="k", lw=0.8)
        ax.set_xlabel("E[(r_x(f_a) − r_x(f_b))(g(a|x) − g(b|x))]")
        ax.set_ylabel(f"margin at τ = {t1:g}")
        ax.set_title("k=2: τ=1 transcends only right of 0")
    fig.tight_layout()
    save(fig, args.out, NAME)
    return 0


if __name__ == "__main__":
    sys.exit(main())
