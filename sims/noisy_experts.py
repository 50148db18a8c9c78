"""Noisy experts: k experts, each rho_i-noisy around the optimal policy with independent noise.

Expert ``i`` plays the optimal policy ``f*`` with probability ``1 - rho_i`` and otherwise a mistake
distribution ``q_{i,x} ~ Dirichlet(concentration)`` drawn independently per expert and input
(``concentration = inf``: uniform mistakes, which is Prop. 3's ``f_rho``). Rewards are
``Uniform(0, 1)`` i.i.d.; the test distribution is uniform over inputs. The learner is the ideal
mixture ``f_hat = (1/k) sum_i f_i``.

Per grid point (k, mean noise, |Y|) and seed it records the margin
``R(f_hat_tau) - max_i R(f_i)`` at each temperature, whether the argmax transcends, and the
critical temperature (``transcendence.critical_temperature``). The figure shows margin against
temperature and a phase diagram over (mean noise, k) coloured by the critical temperature.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from sims._common import check_positive, check_probabilities, check_temperatures
from sims._instances import noisy_experts, random_reward
from sims._runner import Task
from transcendence import (
    check_transcendence,
    critical_temperature,
    expected_reward,
    mixture,
    optimal_policy,
    tempered_reward,
)

NAME = "noisy_experts"

_TEMPS = (0.0, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0)


@dataclass(frozen=True, kw_only=True)
class NoisyExpertsConfig:
    ks: tuple[int, ...] = (1, 2, 3, 5, 9)  # numbers of experts k (grid axis)
    noises: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7, 0.9)  # mean error rate rho-bar (grid axis): mass each expert moves off f*
    noise_spread: float = 0.1  # each expert's rho_i = clip(rho-bar + Uniform(-spread, spread), 0, 1)
    n_outputs: tuple[int, ...] = (3, 10)  # output-space sizes |Y| (grid axis)
    n_inputs: int = 100  # |X|; the test distribution is uniform over X
    concentration: float = 0.2  # Dirichlet concentration of each mistake distribution (small = peaked mistakes; inf = uniform, Prop. 3)
    temperatures: tuple[float, ...] = _TEMPS  # temperatures of the margin curves (0 = argmax)
    mode: Literal["logit", "prob"] = "logit"  # temperature convention (see transcendence.temper)
    n_seeds: int = 5  # replicates per grid point
    seed: int = 0  # root seed; replicate s uses SeedSequence(seed).spawn(n_seeds)[s]


CONFIG = NoisyExpertsConfig
PRESETS = {
    "quick": NoisyExpertsConfig(),
    "full": NoisyExpertsConfig(
        ks=(1, 2, 3, 4, 5, 7, 9, 13, 21),
        noises=tuple(np.round(np.arange(0.05, 0.951, 0.05), 2).tolist()),
        n_outputs=(2, 5, 20), n_inputs=200, n_seeds=10,
        temperatures=(0.0, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5,
                      0.75, 1.0, 1.5, 2.0)),
}


def validate(cfg: NoisyExpertsConfig) -> None:
    if not cfg.ks or min(cfg.ks) < 1:
        raise ValueError(f"ks must be numbers of experts >= 1, got {cfg.ks}")
    check_probabilities("noises", cfg.noises)
    if not 0 <= cfg.noise_spread <= 1:
        raise ValueError(f"noise_spread must be in [0, 1], got {cfg.noise_spread}")
    if not cfg.n_outputs or min(cfg.n_outputs) < 2:
        raise ValueError(f"n_outputs must be >= 2, got {cfg.n_outputs}")
    if cfg.n_inputs < 1:
        raise ValueError(f"n_inputs must be >= 1, got {cfg.n_inputs}")
    check_positive("concentration", cfg.concentration)
    check_temperatures(cfg.temperatures)


def grid(cfg: NoisyExpertsConfig) -> dict[str, tuple[Any, ...]]:
    return {"n_outputs": cfg.n_outputs, "k": cfg.ks, "noise": cfg.noises}


def make_instance(cfg: NoisyExpertsConfig, k: int, noise: float, n_outputs: int, *,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(reward (n_x, n_y), experts (k, n_x, n_y), rhos (k,))`` for one grid point."""
    reward = random_reward(cfg.n_inputs, n_outputs, rng=rng)
    rhos = np.clip(noise + cfg.noise_spread * rng.uniform(-1.0, 1.0, size=k), 0.0, 1.0)
    return reward, noisy_experts(reward, rhos, cfg.concentration, rng=rng), rhos


def run_point(cfg: NoisyExpertsConfig, task: Task) -> list[dict[str, Any]]:
    point, s, seed = task
    rng = np.random.default_rng(seed)
    k, noise, n_y = int(point["k"]), float(point["noise"]), int(point["n_outputs"])
    reward, experts, rhos = make_instance(cfg, k, noise, n_y, rng=rng)
    test = np.full(cfg.n_inputs, 1.0 / cfg.n_inputs)

    at_zero = check_transcendence(experts, reward, test, temperature=0, mode=cfg.mode)
    tau_star = critical_temperature(experts, reward, test, mode=cfg.mode)
    best = float(np.max(at_zero.expert_rewards))
    curve = tempered_reward(mixture(experts), np.asarray(cfg.temperatures), reward, test,
                            mode=cfg.mode)  # (n_t,)
    base = {"n_outputs": n_y, "k": k, "noise": noise, "seed": s, "mean_rho": float(rhos.mean()),
            "best_expert_reward": best,
            "optimal_reward": float(expected_reward(optimal_policy(reward), reward, test)),
            "argmax_margin": float(at_zero.margin), "argmax_transcends": bool(at_zero.holds),
            "critical_temperature": math.nan if tau_star is None else float(tau_star)}
    return [{**base, "temperature": float(t), "predictor_reward": float(r), "margin": float(r) - best}
            for t, r in zip(cfg.temperatures, curve)]


def summarize(rows: list[dict[str, Any]], cfg: NoisyExpertsConfig) -> dict[str, Any]:
    """Per |Y| and k: the largest mean noise at which the argmax transcends in at least half the
    seeds, and the median critical temperature at the noise closest to 0.5."""
    first = [r for r in rows if r["temperature"] == cfg.temperatures[0]]
    mid = min(cfg.noises, key=lambda v: abs(v - 0.5))
    out: dict[str, Any] = {"noise_for_median_tau": mid}
    for n_y in cfg.n_outputs:
        per_k = {}
        for k in cfg.ks:
            sel = [r for r in first if r["n_outputs"] == n_y and r["k"] == k]
            frac = {v: np.mean([r["argmax_transcends"] for r in sel if r["noise"] == v])
                    for v in cfg.noises}
            ok = [v for v, f in frac.items() if f >= 0.5]
            taus = [r["critical_temperature"] for r in sel if r["noise"] == mid]
            per_k[f"k={k}"] = {
                "max_noise_argmax_transcends": max(ok) if ok else None,
                "fraction_transcending_at_mid_noise": float(frac[mid]),
                "median_critical_temperature_at_mid_noise": float(np.nanmedian(taus))
                if np.any(np.isfinite(taus) | np.isinf(taus)) else None,
            }
        out[f"n_outputs={n_y}"] = per_k
    return out
