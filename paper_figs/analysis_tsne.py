"""t-SNE of the model's last hidden layer, paper Fig. 3 (reads runs/tsne; writes PNG + PDF).

    python paper_figs/analysis_tsne.py [--run runs/tsne] [--out paper_figs/out]

Panels: the same map coloured by the side to move, White's expected score (Stockfish, lichess WDL), by game length,
and by ply.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", default="runs/tsne", help="results directory of `transcendence chess tsne`")
    p.add_argument("--out", default="paper_figs/out", help="output directory")
    args = p.parse_args(argv)
    run = Path(args.run)
    res = json.loads((run / "results.json").read_text())
    z = np.load(run / "embedding.npz")
    y = z["y"]
    fig, axes = plt.subplots(1, 4, figsize=(21, 5))
    panels = [("turn_white", "side to move (1 = White)", "coolwarm", (0, 1)),("value_white", "White's expected score (Stockfish)", "RdBu_r", (0, 1)),
              ("game_length", "game length (plies)", "viridis", None),
              ("ply", "ply of the position", "magma", None)]
    for ax, (key, label, cmap, lim) in zip(axes, panels):
        c = z[key].astype(float)
        if key not in res["ridge_probe_r2"]:  # results written before this panel existed
            ax.set_visible(False)
            continue
        order = np.argsort(np.abs(c - 0.5)) if key == "value_white" else np.arange(c.size)
        sc = ax.scatter(y[order, 0], y[order, 1], c=c[order], cmap=cmap, s=6, alpha=0.8,
                        vmin=lim[0] if lim else None, vmax=lim[1] if lim else None)
        fig.colorbar(sc, ax=ax, label=label)
        probe = res["ridge_probe_r2"].get(key)
        control = res.get("ridge_probe_r2_random_init_control", {}).get(key)
        knn = res["knn10_corr_in_map"].get(key)
        title = f"{label}\nridge probe R² {probe:.2f}" + (f" (random init {control:.2f})" if control is not None else "")
        title += f", 10-NN corr in map {knn:.2f}"
        if key == "value_white":
            d, dk = res["ridge_probe_r2"]["decidedness_abs"], res["knn10_corr_in_map"]["decidedness_abs"]
            title += f"\n|value - 0.5|: R² {d:.2f}, 10-NN corr {dk:.2f}"
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"t-SNE of the last hidden layer: {res['n_positions']} positions from {res['n_games']} held-out "
                 f"games ({res['model']['checkpoint']}, step {res['model']['step']})", fontsize=10)
    fig.tight_layout()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for ext in ("png", "pdf"):
        fig.savefig(out / f"analysis_tsne.{ext}", dpi=150)
    print(f"wrote {out}/analysis_tsne.png/.pdf")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
