"""``transcendence demo``: transcendence shown on built-in examples, with a table and a plot.

Two settings:

1. The paper's three-action example: experts (0.6, 0.4, 0) and (0, 0.4, 0.6), only
   the middle action is rewarded. Each expert and the mixture at tau = 1 score 0.4; the argmax scores 1.
2. A panel of noisy experts (Prop. 3 with several experts): k experts share the optimal policy
   and make mistakes at different rates with *independent* noise, so their errors disagree and the
   majority vote removes them.

matplotlib is imported here only (the core stays NumPy/SciPy).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from transcendence.experts import noisy_expert
from transcendence.io import atomic_open, atomic_write_json
from transcendence.policies import expected_reward, mixture, tempered_reward
from transcendence.transcend import check_transcendence, critical_temperature

__all__ = ["Setting", "three_action_setting", "noisy_panel_setting", "run_demo"]


@dataclass(frozen=True)
class Setting:
    name: str
    experts: np.ndarray      # (k, n_x, n_y)
    reward: np.ndarray       # (n_x, n_y)
    test_dist: np.ndarray    # (n_x,)
    expert_labels: tuple[str, ...]


def three_action_setting() -> Setting:
    experts = np.array([[[0.6, 0.4, 0.0]], [[0.0, 0.4, 0.6]]])
    return Setting("three-action example (paper)", experts, np.array([[0.0, 1.0, 0.0]]),
                   np.array([1.0]), ("expert 1 (.6,.4,0)", "expert 2 (0,.4,.6)"))


def noisy_panel_setting(seed: int = 0, *, n_inputs: int = 400, n_outputs: int = 8,
                        rhos: tuple[float, ...] = (0.35, 0.5, 0.6, 0.7, 0.8)) -> Setting:
    """k noisy experts with error rates ``rhos`` and independent Dirichlet(1) noise per expert and input."""
    rng = np.random.default_rng(seed)
    reward = rng.random((n_inputs, n_outputs))
    noise = rng.dirichlet(np.ones(n_outputs), size=(len(rhos), n_inputs))
    experts = noisy_expert(reward, np.array(rhos), noise=noise)
    return Setting(f"{len(rhos)} noisy experts, {n_inputs} inputs, {n_outputs} outputs (seed {seed})",
                   experts, reward, np.full(n_inputs, 1.0 / n_inputs),
                   tuple(f"expert rho={r:g}" for r in rhos))


def _summarise(setting: Setting) -> dict:
    e, r, p = setting.experts, setting.reward, setting.test_dist
    expert_rewards = np.atleast_1d(expected_reward(e, r, p))
    f_hat = mixture(e)
    result = check_transcendence(e, r, p)
    return {
        "name": setting.name,
        "experts": {lab: float(v) for lab, v in zip(setting.expert_labels, expert_rewards)},
        "best_expert": float(expert_rewards.max()),
        "mixture_tau1": float(expected_reward(f_hat, r, p)),
        "argmax": result.predictor_reward,
        "margin_argmax": result.margin,
        "transcends": result.holds,
        "critical_temperature": {m: critical_temperature(e, r, p, mode=m) for m in ("logit", "prob")},
    }


def _fmt_tau(t: float | None) -> str:
    if t is None:
        return "none (argmax does not transcend)"
    return "inf (all tau)" if math.isinf(t) else f"{t:.4g}"


def _print_table(summary: dict) -> None:
    print(f"\n== {summary['name']} ==")
    width = max(len(k) for k in summary["experts"]) + 2
    width = max(width, 34)
    for label, value in summary["experts"].items():
        print(f"  {label:<{width}} {value:8.4f}")
    print(f"  {'mixture at tau = 1':<{width}} {summary['mixture_tau1']:8.4f}")
    print(f"  {'argmax (tau -> 0, majority vote)':<{width}} {summary['argmax']:8.4f}   "
          f"margin over best expert {summary['margin_argmax']:+.4f}")
    ct = summary["critical_temperature"]
    print(f"  {'critical temperature tau*':<{width}} logit: {_fmt_tau(ct['logit'])}   "
          f"prob: {_fmt_tau(ct['prob'])}")
    verdict = "TRANSCENDS" if summary["transcends"] else "does not transcend"
    print(f"  -> the low-temperature model {verdict} its best expert")


def _plot(settings: list[Setting], summaries: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    taus = np.logspace(-3, 1, 200)
    fig, axes = plt.subplots(1, len(settings), figsize=(6 * len(settings), 4.2))
    for ax, s, summ in zip(np.atleast_1d(axes), settings, summaries):
        f_hat = mixture(s.experts)
        for mode, style in (("logit", "-"), ("prob", "--")):
            values = tempered_reward(f_hat, taus, s.reward, s.test_dist, mode=mode)
            label = "softmax(log f / tau)  [logit]" if mode == "logit" else "softmax(f / tau)  [prob, paper]"
            ax.plot(taus, values, style, lw=2, label=label)
            tc = summ["critical_temperature"][mode]
            if tc is not None and math.isfinite(tc) and tc <= taus[-1]:
                ax.axvline(tc, color="grey", ls=":", lw=1)
                ax.annotate(f"tau*={tc:.3g}", (tc, summ["best_expert"]), rotation=90, fontsize=8,
                            xytext=(3, 5), textcoords="offset points", color="grey")
        ax.axhline(summ["best_expert"], color="k", lw=1.5, label="best expert")
        ax.scatter([taus[0]], [summ["argmax"]], marker="*", s=120, color="C3", zorder=5,
                   label="argmax (tau = 0)")
        ax.set_xscale("log")
        ax.set_xlabel("temperature tau")
        ax.set_ylabel("expected reward on the test distribution")
        ax.set_title(s.name, fontsize=10)
        ax.legend(fontsize=8, loc="best")
        ax.grid(alpha=0.3)
    fig.suptitle("Transcendence: the tempered mixture against its best expert")
    fig.tight_layout()
    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=130)
    with atomic_open(path.with_suffix(".pdf"), "wb") as fh:
        fig.savefig(fh, format="pdf")
    plt.close(fig)


def run_demo(out_dir: str | Path = "runs/demo", seed: int = 0) -> dict:
    """Print the tables, write ``results.json`` and the plot into ``out_dir``; return the summaries."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed: must be an integer >= 0, got {seed!r}")
    out = Path(out_dir)
    settings = [three_action_setting(), noisy_panel_setting(seed)]
    summaries = [_summarise(s) for s in settings]
    out.mkdir(parents=True, exist_ok=True)
    print("Transcendence demo: each expert's expected reward, the mixture at tau = 1 (pure imitation),")
    print("the argmax predictor (tau -> 0) and the largest tau* below which the model beats every expert.")
    for summ in summaries:
        _print_table(summ)
    atomic_write_json(out / "results.json", summaries, default=str)
    plot = out / "reward_vs_temperature.png"
    _plot(settings, summaries, plot)
    print(f"\nPlot: {plot.resolve()}  (and .pdf)\nTable: {(out / 'results.json').resolve()}")
    print("\nNext: the same question on chess, with experts whose policies are known exactly "
          "(about 6-10 minutes on 2 cores):\n  .venv/bin/transcendence chess experts demo")
    return {"summaries": summaries, "plot": str(plot)}
