"""Correlated errors: the experts' mistakes agree with probability c (the diversity condition).

Each input ``x`` has one correct output ``y*(x)`` (reward 1, all others 0) and one *common wrong
answer* ``w(x) != y*(x)``. A shared answer ``a0(x)`` is ``y*(x)`` with probability ``1 - rho`` and
``w(x)`` otherwise. Expert ``i`` answers deterministically at ``x``: with probability ``c`` it copies
``a0(x)``; otherwise it answers on its own, correct with probability ``1 - rho`` and otherwise a
uniformly random wrong output. Every expert is right with probability ``1 - rho`` whatever ``c``;
only how much their mistakes coincide changes (correctness indicators have correlation ``c**2``).

At ``c = 0`` the errors are independent and the argmax of the mixture (a plurality vote) beats every
expert; at ``c = 1`` all experts are the same function and the margin is exactly 0. The figure shows
the argmax margin falling with ``c`` for each k and error rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from sims._common import check_probabilities, check_temperatures
from sims._runner import Task
from transcendence import check_transcendence, critical_temperature, mixture, tempered_reward

NAME = "correlated_errors"


@dataclass(frozen=True, kw_only=True)
class CorrelatedErrorsConfig:
    ks: tuple[int, ...] = (3, 5, 9)  # numbers of experts k (grid axis)
    error_rates: tuple[float, ...] = (0.3, 0.5)  # each expert's error probability rho (grid axis)
    correlations: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)  # probability c of copying the shared answer (grid axis)
    n_outputs: int = 5  # |Y|; reward 1 for the correct output, 0 otherwise
    n_inputs: int = 500  # |X|; the test distribution is uniform over X
    temperatures: tuple[float, ...] = (0.0, 0.1, 0.25, 0.5, 1.0)  # temperatures recorded (0 = argmax)
    mode: Literal["logit", "prob"] = "logit"  # temperature convention (see transcendence.temper)
    n_seeds: int = 5  # replicates per grid point
    seed: int = 0  # root seed; replicate s uses SeedSequence(seed).spawn(n_seeds)[s]


CONFIG = CorrelatedErrorsConfig
PRESETS = {
    "quick": CorrelatedErrorsConfig(),
    "full": CorrelatedErrorsConfig(
        ks=(2, 3, 5, 9, 15, 25), error_rates=(0.2, 0.4, 0.6),
        correlations=tuple(np.round(np.linspace(0, 1, 21), 2).tolist()),
        n_inputs=1000, n_seeds=10),
}


def validate(cfg: CorrelatedErrorsConfig) -> None:
    if not cfg.ks or min(cfg.ks) < 1:
        raise ValueError(f"ks must be numbers of experts >= 1, got {cfg.ks}")
    check_probabilities("error_rates", cfg.error_rates)
    check_probabilities("correlations", cfg.correlations)
    if cfg.n_outputs < 2:
        raise ValueError(f"n_outputs must be >= 2, got {cfg.n_outputs}")
    if cfg.n_inputs < 1:
        raise ValueError(f"n_inputs must be >= 1, got {cfg.n_inputs}")
    check_temperatures(cfg.temperatures)


def grid(cfg: CorrelatedErrorsConfig) -> dict[str, tuple[Any, ...]]:
    return {"error_rate": cfg.error_rates, "k": cfg.ks, "correlation": cfg.correlations}


def make_instance(k: int, error_rate: float, correlation: float, n_inputs: int, n_outputs: int, *,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(reward (n_x, n_y), experts (k, n_x, n_y) one-hot, answers (k, n_x))``.

    All uniforms are drawn whatever ``correlation`` is, so one seed gives coupled instances
    across ``c`` (common random numbers).
    """
    n_x, n_y = n_inputs, n_outputs
    correct = rng.integers(n_y, size=n_x)
    common_wrong = (correct + 1 + rng.integers(n_y - 1, size=n_x)) % n_y
    shared = np.where(rng.random(n_x) < 1 - error_rate, correct, common_wrong)
    own_wrong = (correct + 1 + rng.integers(n_y - 1, size=(k, n_x))) % n_y
    own = np.where(rng.random((k, n_x)) < 1 - error_rate, correct, own_wrong)
    answers = np.where(rng.random((k, n_x)) < correlation, shared, own)  # (k, n_x)
    reward = np.zeros((n_x, n_y))
    reward[np.arange(n_x), correct] = 1.0
    experts = np.zeros((k, n_x, n_y))
    experts[np.arange(k)[:, None], np.arange(n_x)[None, :], answers] = 1.0
    return reward, experts, answers


def _mean_pairwise_correlation(correct: np.ndarray) -> float:
    """Mean off-diagonal correlation of the experts' correctness indicators (nan if undefined)."""
    k = correct.shape[0]
    if k < 2 or np.any(correct.std(axis=1) == 0):
        return math.nan
    c = np.corrcoef(correct.astype(float))
    return float((c.sum() - k) / (k * (k - 1)))


def run_point(cfg: CorrelatedErrorsConfig, task: Task) -> list[dict[str, Any]]:
    point, s, seed = task
    rng = np.random.default_rng(seed)
    k, rho, c = int(point["k"]), float(point["error_rate"]), float(point["correlation"])
    reward, experts, answers = make_instance(k, rho, c, cfg.n_inputs, cfg.n_outputs, rng=rng)
    test = np.full(cfg.n_inputs, 1.0 / cfg.n_inputs)

    at_zero = check_transcendence(experts, reward, test, temperature=0, mode=cfg.mode)
    tau_star = critical_temperature(experts, reward, test, mode=cfg.mode)
    best = float(np.max(at_zero.expert_rewards))
    curve = tempered_reward(mixture(experts), np.asarray(cfg.temperatures), reward, test,
                            mode=cfg.mode)
    correct = answers == np.argmax(reward, axis=1)[None, :]
    base = {"error_rate": rho, "k": k, "correlation": c, "seed": s,
            "error_correlation": _mean_pairwise_correlation(correct),
            "best_expert_reward": best,
            "mean_expert_reward": float(np.mean(at_zero.expert_rewards)),
            "argmax_margin": float(at_zero.margin), "argmax_transcends": bool(at_zero.holds),
            "critical_temperature": math.nan if tau_star is None else float(tau_star)}
    return [{**base, "temperature": float(t), "predictor_reward": float(r), "margin": float(r) - best}
            for t, r in zip(cfg.temperatures, curve)]


def summarize(rows: list[dict[str, Any]], cfg: CorrelatedErrorsConfig) -> dict[str, Any]:
    """Mean argmax margin at each correlation, per error rate and k, and the fraction of seeds in
    which the argmax transcends."""
    first = [r for r in rows if r["temperature"] == cfg.temperatures[0]]
    out: dict[str, Any] = {}
    for rho in cfg.error_rates:
        for k in cfg.ks:
            sel = [r for r in first if r["error_rate"] == rho and r["k"] == k]
            out[f"rho={rho},k={k}"] = {
                f"c={c}": {"mean_argmax_margin": float(np.mean([r["argmax_margin"] for r in sel
                                                                  if r["correlation"] == c])),
                           "fraction_transcending": float(np.mean([r["argmax_transcends"] for r in sel
                                                                    if r["correlation"] == c]))}
                for c in cfg.correlations}
    return out
