"""Human majority vote vs the human mixture (reads runs/majority; writes PNG + PDF).

    python paper_figs/analysis_majority.py [--run runs/majority] [--out paper_figs/out]

Panels: (a) mean favor F = r(argmax) - r(mixture) per rating cap and visit threshold, with 95%
bootstrap intervals; (b) per-state r(mixture) vs r(argmax); (c) histogram of per-state favor;
(d) mean favor on the states common to every disjoint rating bin.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", default="runs/majority", help="results directory of `transcendence chess majority`")
    p.add_argument("--out", default="paper_figs/out", help="output directory")
    args = p.parse_args(argv)
    run = Path(args.run)
    res = json.loads((run / "results.json").read_text())
    with open(run / "states.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("grouping", "cumulative") == "cumulative"]
    caps = list(res["caps"])
    thresholds = list(next(iter(res["caps"].values())))
    t_low = min(thresholds, key=int)
    colors = dict(zip(caps, plt.cm.viridis([0.1, 0.5, 0.85, 0.95][: len(caps)])))

    fig, axes = plt.subplots(1, 4, figsize=(20, 4.4))
    ax = axes[0]
    width = 0.8 / max(1, len(thresholds))
    for j, t in enumerate(thresholds):
        for i, cap in enumerate(caps):
            s = res["caps"][cap][t]
            if s.get("n_states", 0) == 0:
                continue
            for k, (key, marker) in enumerate((("favor", "o"), ("favor_visit_weighted", "s"))):
                f = s[key]
                x = i + (j - (len(thresholds) - 1) / 2) * width + (k - 0.5) * width * 0.35
                ax.errorbar(x, 100 * f["mean"], yerr=[[100 * (f["mean"] - f["lo"])], [100 * (f["hi"] - f["mean"])]],
                            fmt=marker, color=plt.cm.plasma(j / max(1, len(thresholds))), capsize=3,
                            label=(f">{t} visits" + (" (visit-weighted)" if k else "")) if i == 0 else None)
            ax.annotate(f"n={s['n_states']}", (i + (j - (len(thresholds) - 1) / 2) * width, 0),
                        fontsize=7, ha="center", va="bottom", rotation=90)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(range(len(caps)), [f"<= {c}" for c in caps])
    ax.set_xlabel("rating cap (both players)")
    ax.set_ylabel("favor of the human argmax over the mixture (pp)")
    ax.set_title("(a) majority vote vs mixture, 95% CI")
    ax.legend(fontsize=7)

    ax = axes[1]
    for cap in caps:
        pts = [(float(r["r_mixture"]), float(r["r_argmax"])) for r in rows if r["cap"] == cap and r["threshold"] == t_low]
        if pts:
            xs, ys = zip(*pts)
            ax.scatter(xs, ys, s=8, alpha=0.6, color=colors[cap], label=f"<= {cap} ({len(pts)} states)")
    lo = min(float(r["r_mixture"]) for r in rows) if rows else 0.3
    hi = max(float(r["r_argmax"]) for r in rows) if rows else 0.7
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    ax.set_xlabel("r(mixture): mean human move (τ = 1)")
    ax.set_ylabel("r(argmax): most frequent human move")
    ax.set_title(f"(b) per state, >{t_low} visits")
    ax.legend(fontsize=7)

    ax = axes[2]
    for cap in caps:
        f = [100 * float(r["favor"]) for r in rows if r["cap"] == cap and r["threshold"] == t_low]
        if f:
            ax.hist(f, bins=40, histtype="step", color=colors[cap], label=f"<= {cap}", density=True)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel("favor F(argmax, mixture; x) (pp of expected score)")
    ax.set_ylabel("density over states")
    ax.set_title(f"(c) distribution, >{t_low} visits")
    ax.legend(fontsize=7)
    ax = axes[3]
    shared = res.get("shared_states_favor", {}).get("disjoint", {})
    for j, (t, sh) in enumerate(shared.items()):
        if sh.get("n_states", 0) < 2:
            continue
        bins = list(sh["means"])
        ax.plot(range(len(bins)), [100 * sh["means"][b] for b in bins], "o-",
                color=plt.cm.plasma(j / max(1, len(shared))), label=f">{t} visits ({sh['n_states']} shared states)")
    if shared:
        labels, prev = [], None
        for b in next(iter(shared.values())).get("means", {}):
            labels.append(f"<= {b}" if prev is None else f"{int(prev) + 1}-{b}")
            prev = b
        ax.set_xticks(range(len(labels)), labels)
        ax.legend(fontsize=7)
    ax.set_xlabel("rating bin of the stronger player (disjoint)")
    ax.set_ylabel("mean favor on the same states (pp)")
    ax.set_title("(d) same positions, different rating bins")
    src = res["reward"]["mode"]
    fig.suptitle(f"Human majority vote on the lichess sample (rewards: {src}; see results.json for sources)", fontsize=10)
    fig.tight_layout()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for ext in ("png", "pdf"):
        fig.savefig(out / f"analysis_majority.{ext}", dpi=150)
    print(f"wrote {out}/analysis_majority.png/.pdf")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
