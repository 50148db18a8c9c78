"""Figure 1 for synthetic experts: rating against temperature, the best expert's interval as a band.

Reads the ``results.json`` of ``transcendence chess experts measure`` (or ``demo``) and writes
``experts_rating.png`` and ``.pdf``. Nothing is played or computed beyond reading.

- the model (``exact`` policy) at each temperature: MLE Elo with its 95% interval;
- the exact ideal mixture of the panel at tau = 1 and tau = 0 (no learning involved);
- the best expert: its 95% interval as a shaded band and its estimate dashed; the other experts
  as dotted lines.

Temperatures are on a symmetric-log axis so that tau = 0 (argmax) is drawn. A player that won
(lost) every game has an infinite MLE: it is drawn at its finite bound with an arrow.

::

    python -m paper_figs.experts_rating --run runs/experts-noisy3 --out paper_figs/out
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["plot", "main"]


def _point(row: dict[str, Any]) -> tuple[float, float, float, str]:
    """(y, lower error, upper error, marker) with infinite estimates drawn at their finite bound."""
    elo, lo, hi = float(row["elo"]), float(row["lo"]), float(row["hi"])
    if math.isinf(elo):
        bound = lo if elo > 0 else hi
        return bound, 0.0, 0.0, "^" if elo > 0 else "v"
    lo = lo if math.isfinite(lo) else elo - 400
    hi = hi if math.isfinite(hi) else elo + 400
    return elo, elo - lo, hi - elo, "o"


def plot(results_path: str | Path, out: str | Path) -> list[Path]:
    """Draw the figure from one ``results.json``; write ``out``.png and ``out``.pdf."""
    results = json.loads(Path(results_path).read_text())
    players = results["players"]
    fig, ax = plt.subplots(figsize=(6, 4))
    experts = {k: v for k, v in players.items() if v["kind"] == "expert"}
    if experts:
        best_key = max(experts, key=lambda k: experts[k]["elo"])
        best = experts[best_key]
        lo = best["lo"] if math.isfinite(best["lo"]) else best["elo"] - 400
        hi = best["hi"] if math.isfinite(best["hi"]) else best["elo"] + 400
        ax.axhspan(lo, hi, color="tab:gray", alpha=0.25, lw=0, label=f"best expert {best_key.split(':', 1)[1]} (95% CI)")
        if math.isfinite(best["elo"]):
            ax.axhline(best["elo"], color="tab:gray", ls="--", lw=1)
        for key, row in experts.items():
            if key != best_key and math.isfinite(row["elo"]):
                ax.axhline(row["elo"], color="tab:gray", ls=":", lw=0.8)
                ax.annotate(key.split(":", 1)[1], (1.5, row["elo"]), fontsize=6, color="tab:gray",
                            va="bottom", ha="right")
    for kind, color, label in (("model", "tab:blue", "model (exact policy)"),
                               ("mixture", "tab:red", "exact ideal mixture")):
        rows = sorted((v for v in players.values() if v["kind"] == kind), key=lambda v: v["temperature"])
        if not rows:
            continue
        xs = [r["temperature"] for r in rows]
        pts = [_point(r) for r in rows]
        ax.plot(xs, [p[0] for p in pts], color=color, lw=1.2 if kind == "model" else 0, alpha=0.8)
        for x, (y, el, eu, marker) in zip(xs, pts):
            ax.errorbar([x], [y], yerr=[[el], [eu]], fmt=marker, color=color, ms=5, capsize=3)
        ax.plot([], [], marker="o", color=color, ls="-" if kind == "model" else "", label=label)
    if any(math.isinf(float(v["elo"])) for v in players.values()):
        ax.text(0.01, 0.01, "▼ lost (▲ won) every game: drawn at its 95% bound", transform=ax.transAxes,
                fontsize=6, color="0.3", va="bottom")
    ax.set_xscale("symlog", linthresh=0.01)
    ax.set_xlim(-0.002, 1.6)
    ax.set_xlabel("temperature τ (0 = argmax)")
    ax.set_ylabel("MLE Elo vs Stockfish ladder (95% CI)")
    cfg = results.get("config", {})
    ax.set_title(f"Synthetic experts: panel {results['panel']['name']}, {cfg.get('games', '?')} games, "
                 f"{cfg.get('train_preset', '?')} {(results.get('train') or {}).get('step', cfg.get('train_iters', '?'))} steps",
                 fontsize=8)
    ax.legend(loc="best")
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = [out.with_suffix(".png"), out.with_suffix(".pdf")]
    for path in paths:
        fig.savefig(path)
    plt.close(fig)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="paper_figs/experts_rating.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--run", default="runs/experts-noisy3", help="measurement directory (default runs/experts-noisy3)")
    p.add_argument("--out", default="paper_figs/out", help="output directory (default paper_figs/out)")
    args = p.parse_args(argv)
    results = Path(args.run) / "results.json"
    if not results.exists():
        raise SystemExit(f"{results} not found: run `transcendence chess experts measure` (or demo) first")
    for path in plot(results, Path(args.out) / "experts_rating"):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
