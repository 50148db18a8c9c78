"""Linear toy (paper Fig. 7): test accuracy of the fitted softmax model against
temperature for each sigma, 95% bands over seeds, against the best expert (grey band) and the
experts' majority vote (dotted). Solid: logit temperature softmax(Wx/τ) (what models do); dashed:
the paper's formula softmax(f/τ) on probabilities. Reads runs/linear_toy/results.csv."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np

from paper_figs._style import band, curve, load_run, mean_ci, parse_args, plt, save, select

NAME = "linear_toy"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(NAME, __doc__, argv)
    cfg, cols = load_run(args.run)
    sigmas, temps = cfg["sigmas"], cfg["temperatures"]
    n = len(sigmas)
    ncols = min(4, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.0 * ncols, 2.8 * nrows), squeeze=False)
    for idx, sigma in enumerate(sigmas):
        ax = axes[idx // ncols, idx % ncols]
        band(ax, *curve(cols, "temperature", "model_accuracy", temps, sigma=sigma), color="C0",
             marker=".", label="model, softmax(Wx/τ)")
        band(ax, *curve(cols, "temperature", "model_accuracy_prob", temps, sigma=sigma),
             color="C1", ls="--", label="model, paper's softmax(f/τ)")
        first = select(cols, sigma=sigma, temperature=temps[0])
        m, h = mean_ci(cols["best_expert_accuracy"][first])
        ax.axhspan(m - h, m + h, color="grey", alpha=0.35, lw=0)
        ax.axhline(m, color="grey", lw=1, label="best expert")
        ax.axhline(np.mean(cols["vote_accuracy"][first]), color="k", ls=":", lw=1,
                   label="experts' majority vote")
        ax.set_title(f"σ = {sigma:g}")
        ax.set_xlabel("temperature τ")
        ax.set_ylabel("test accuracy")
        lo = min(m - 3 * h, np.min(cols["model_accuracy"][select(cols, sigma=sigma)])) - 0.02
        ax.set_ylim(max(0.0, lo), 1.0)
        if idx == 0:
            ax.legend(loc="lower left")
    for idx in range(n, nrows * ncols):
        axes[idx // ncols, idx % ncols].axis("off")
    fig.suptitle(f"k={cfg['n_experts']} experts, d={cfg['n_features']}, {cfg['n_classes']} classes, "
                 f"{cfg['n_train']} training examples, {cfg['n_seeds']} seeds", fontsize=9)
    fig.tight_layout()
    save(fig, args.out, NAME)
    return 0


if __name__ == "__main__":
    sys.exit(main())
