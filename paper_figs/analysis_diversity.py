"""Normalised action entropy of common states per rating cap, paper Fig. 5 (reads runs/diversity).

    python paper_figs/analysis_diversity.py [--run runs/diversity] [--out paper_figs/out] [--threshold T]

Panels: (a) mean entropy per cap with 95% bootstrap intervals for both normalisations (legal moves,
the paper's text; observed moves, the paper's code), every threshold and the equal-size control, with
the paper's 0.70/0.66/0.64 for reference; (b, c) per-state histograms at one threshold; (d), when
the run was made with ``--subsample_draws=N``, the share of equal-game-count subsample draws in which
the ordering of the caps holds, per threshold and normalisation.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", default="runs/diversity", help="results directory of `transcendence chess diversity`")
    p.add_argument("--out", default="paper_figs/out", help="output directory")
    p.add_argument("--threshold", default=None, help="visit threshold for the histograms (default: the lowest)")
    args = p.parse_args(argv)
    run = Path(args.run)
    res = json.loads((run / "results.json").read_text())
    with open(run / "states.csv") as fh:
        rows = list(csv.DictReader(fh))
    variants = list(res["variants"])
    thresholds = list(res["variants"][variants[0]])
    caps = list(res["games_per_cap"])
    t_hist = args.threshold or min(thresholds, key=int)
    colors = dict(zip(caps, plt.cm.viridis(np.linspace(0.1, 0.85, len(caps)))))

    sub = res.get("subsample_ordering")
    fig, axes = plt.subplots(1, 4 if sub else 3, figsize=(20 if sub else 15, 5.6))
    ax = axes[0]
    series = [(v, t) for v in variants for t in thresholds]
    width = 0.8 / len(series)
    for j, (v, t) in enumerate(series):
        for norm, marker, fill in (("h_legal", "o", "full"), ("h_observed", "s", "none")):
            xs, ys, lo, hi = [], [], [], []
            for i, cap in enumerate(caps):
                s = res["variants"][v][t]["caps"][cap]
                if s.get("n_states", 0) == 0:
                    continue
                xs.append(i + (j - (len(series) - 1) / 2) * width)
                ys.append(s[norm]["mean"])
                lo.append(s[norm]["mean"] - s[norm]["lo"])
                hi.append(s[norm]["hi"] - s[norm]["mean"])
            color = plt.cm.plasma(j / max(1, len(series)))
            ax.errorbar(xs, ys, yerr=[lo, hi], fmt=marker, fillstyle=fill, color=color, capsize=2, ms=4,
                        label=f"{norm.split('_')[1]}, >{t}, {v.replace('_', ' ')}")
    paper = res.get("paper", {}).get("h_mean", {})
    for i, cap in enumerate(caps):
        if cap in paper:
            ax.hlines(paper[cap], i - 0.45, i + 0.45, colors="k", linestyles="--", lw=1,
                      label="paper (1M games, >100)" if i == 0 else None)
    ax.set_xticks(range(len(caps)), [f"<= {c}\n({res['games_per_cap'][c]} games)" for c in caps])
    ax.set_ylabel("mean normalised action entropy")
    ax.set_title("(a) per cap, 95% CI (filled: /log2 legal, open: /log2 observed)", fontsize=9)
    ax.legend(fontsize=5.5, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.2))

    for ax, norm, title in ((axes[1], "h_legal", "(b) normalised by log2(#legal moves)"),
                            (axes[2], "h_observed", "(c) normalised by log2(#observed moves)")):
        for cap in caps:
            v = [float(r[norm]) for r in rows if r["variant"] == variants[0] and r["threshold"] == t_hist and r["cap"] == cap]
            if v:
                ax.hist(v, bins=np.linspace(0, 1, 26), histtype="step", color=colors[cap], density=True,
                        label=f"<= {cap}: n={len(v)}, mean {np.mean(v):.3f}")
        ax.set_xlabel("normalised entropy of the state's move distribution")
        ax.set_ylabel("density over states")
        ax.set_title(f"{title}, >{t_hist} visits, plies 0-16", fontsize=9)
        ax.legend(fontsize=7)
    if sub:
        ax = axes[3]
        ts = list(sub["thresholds"])
        for k, (norm, label) in enumerate((("h_legal", "/log2 legal"), ("h_observed", "/log2 observed"))):
            shares = [sub["thresholds"][t][norm]["share_ordering_holds"] for t in ts]
            bars = ax.bar(np.arange(len(ts)) + (k - 0.5) * 0.38, shares, width=0.36, label=label,
                          color=plt.cm.plasma(0.2 + 0.5 * k))
            ax.bar_label(bars, fmt="%.2f", fontsize=7)
        ax.set_xticks(range(len(ts)), [f">{t} visits" for t in ts])
        ax.set_ylim(0, 1.08)
        ax.axhline(0.5, color="grey", lw=0.8, ls=":")
        ax.set_ylabel("share of draws in which the ordering holds")
        ax.set_title(f"(d) {' > '.join(caps)} over {sub['draws']} subsamples of {sub['games_per_cap']} games",
                     fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for ext in ("png", "pdf"):
        fig.savefig(out / f"analysis_diversity.{ext}", dpi=150)
    print(f"wrote {out}/analysis_diversity.png/.pdf")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
