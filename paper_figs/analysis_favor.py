"""Denoising on the model's own games, paper Fig. 4 and Table 1 (reads runs/favor; writes PNG + PDF).

    python paper_figs/analysis_favor.py [--run runs/favor] [--out paper_figs/out]

Panels: (a) per-state favor F(f_τ', f_1; x) histograms for the histogram temperatures (paper:
0.001 and 0.75) with their means; (b) mean expected score and top-1/3/5 agreement with Stockfish
per temperature; (c) concentration: share of the total favor from the top q of states;
(d) the paper's sampled estimate (100 draws per state) against the exact per-state favor.
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
    p.add_argument("--run", default="runs/favor", help="results directory of `transcendence chess favor`")
    p.add_argument("--out", default="paper_figs/out", help="output directory")
    args = p.parse_args(argv)
    run = Path(args.run)
    res = json.loads((run / "results.json").read_text())
    z = np.load(run / "states.npz")
    taus = list(z["temperatures"])
    hist_taus = list(z["hist_temperatures"])
    colors = plt.cm.viridis(np.linspace(0.1, 0.8, max(2, len(hist_taus))))

    fig, axes = plt.subplots(1, 4, figsize=(20, 4.5))
    ax = axes[0]
    allf = np.concatenate([100 * z["favor"][taus.index(t)] for t in hist_taus])
    bins = np.linspace(allf.min(), allf.max(), 60) if allf.size else 10
    for c, t in zip(colors, hist_taus):
        f = 100 * z["favor"][taus.index(t)]
        ax.hist(f, bins=bins, histtype="step", color=c, label=f"τ'={t:g}: mean {f.mean():+.2f} pp")
        ax.axvline(f.mean(), color=c, ls="--", lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("favor F(f_τ', f_1; x) (pp of expected score)")
    ax.set_ylabel("states")
    paper = res.get("paper", {}).get("favor_pp", {})
    ax.set_title("(a) favor per state (paper: " + ", ".join(f"{k}: +{v}" for k, v in paper.items()) + " pp)", fontsize=9)
    ax.legend(fontsize=8)

    ax = axes[1]
    rows = res["table1"]
    t_arr = np.array([r["temperature"] for r in rows])
    xs = np.arange(len(rows))
    e = np.array([[r["expected_score"]["mean"], r["expected_score"]["lo"], r["expected_score"]["hi"]] for r in rows]) * 100
    ax.errorbar(xs, e[:, 0], yerr=[e[:, 0] - e[:, 1], e[:, 2] - e[:, 0]], fmt="o-", color="k", capsize=3,
                label="expected score (%)")
    ax.set_ylabel("mean expected score of f_τ (%)")
    ax2 = ax.twinx()
    for k, ls in (("top1", ":"), ("top3", "--"), ("top5", "-")):
        ax2.plot(xs, [100 * r[k] for r in rows], ls, color="tab:blue", label=f"{k} agreement (%)")
    ax2.set_ylabel("mass on Stockfish's top-k moves (%)", color="tab:blue")
    ax.set_xticks(xs, [f"{t:g}" for t in t_arr])
    ax.set_xlabel("temperature τ")
    ax.set_title(f"(b) Table 1: {res['n_states']} states, {res['n_games']} games", fontsize=9)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="lower left")

    ax = axes[2]
    for c, t in zip(colors, hist_taus):
        f = np.sort(z["favor"][taus.index(t)])[::-1]
        if f.sum() == 0:
            continue
        q = np.arange(1, f.size + 1) / f.size
        ax.plot(100 * q, np.cumsum(f) / f.sum(), color=c, label=f"τ'={t:g}")
    qq = np.logspace(-1, 2, 50)
    ax.plot(qq, qq / 100, "k:", lw=0.8, label="equal share")
    ax.axhline(1, color="gray", lw=0.5)
    ax.set_xscale("log")
    ax.set_xlabel("top q% of states by favor")
    ax.set_ylabel("share of the total favor")
    ax.set_title("(c) concentration of the gain", fontsize=9)
    ax.legend(fontsize=8)

    ax = axes[3]
    for i, (c, t) in enumerate(zip(colors, hist_taus)):
        ex = 100 * z["favor"][taus.index(t)]
        sm = 100 * z["sampled_favor"][i]
        ax.scatter(ex, sm, s=5, alpha=0.4, color=c, label=f"τ'={t:g}: exact {ex.mean():+.2f}, sampled {sm.mean():+.2f}")
    lim = [min(ax.get_xlim()[0], ax.get_ylim()[0]), max(ax.get_xlim()[1], ax.get_ylim()[1])]
    ax.plot(lim, lim, "k--", lw=0.8)
    n_s = res["sampled_estimate"][0]["samples_per_state"] if res.get("sampled_estimate") else "?"
    ax.set_xlabel("exact favor (pp)")
    ax.set_ylabel(f"sampled estimate, {n_s} draws/state (pp)")
    ax.set_title("(d) paper's sampled estimator vs exact", fontsize=9)
    ax.legend(fontsize=7)
    fig.suptitle(f"Denoising on {res['model']['checkpoint']} (games at τ={res['games']['temperature']:g} vs level "
                 f"{res['games']['level']}; reward: Stockfish {res['reward']['limit']})", fontsize=10)
    fig.tight_layout()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for ext in ("png", "pdf"):
        fig.savefig(out / f"analysis_favor.{ext}", dpi=150)
    print(f"wrote {out}/analysis_favor.png/.pdf")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
