"""Partition experts (Prop. 4): margin against how the test distribution covers the parts.

The inputs are split into k parts of (nearly) equal size at random; expert ``i`` is optimal on part
``i`` and uniformly random elsewhere (``transcendence.partition_experts``). Rewards are
``Uniform(0, 1)`` i.i.d. The test distribution gives part ``j`` the mass
``pi_j = (1 - coverage) * [j == 0] + coverage / k`` (uniform within a part): ``coverage = 0`` puts
all test mass on part 0, where expert 0 is already optimal (no transcendence possible);
``coverage = 1`` covers every part equally. Prop. 4: the argmax transcends as soon as no part has
all the mass; its margin is ``min_i sum_{x not in X_i} p(x) (max_y r(x,y) - mean_y r(x,y))``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from sims._common import check_probabilities, check_temperatures
from sims._instances import random_reward
from sims._runner import Task
from transcendence import check_transcendence, critical_temperature, mixture, partition_experts, tempered_reward

NAME = "partition_experts"


@dataclass(frozen=True, kw_only=True)
class PartitionExpertsConfig:
    ks: tuple[int, ...] = (2, 3, 5)  # numbers of experts = parts k (grid axis)
    coverages: tuple[float, ...] = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)  # test mass spread over parts, 0 = all on part 0 (grid axis)
    n_outputs: int = 5  # |Y|
    n_inputs: int = 300  # |X|, split into k parts of nearly equal size
    temperatures: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)  # temperatures recorded (0 = argmax)
    mode: Literal["logit", "prob"] = "logit"  # temperature convention (see transcendence.temper)
    n_seeds: int = 5  # replicates per grid point
    seed: int = 0  # root seed; replicate s uses SeedSequence(seed).spawn(n_seeds)[s]


CONFIG = PartitionExpertsConfig
PRESETS = {
    "quick": PartitionExpertsConfig(),
    "full": PartitionExpertsConfig(
        ks=(2, 3, 4, 5, 8, 10, 20), coverages=tuple(np.round(np.linspace(0, 1, 21), 2).tolist()),
        n_inputs=600, n_seeds=10,
        temperatures=(0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5)),
}


def validate(cfg: PartitionExpertsConfig) -> None:
    if not cfg.ks or min(cfg.ks) < 1:
        raise ValueError(f"ks must be numbers of parts >= 1, got {cfg.ks}")
    if max(cfg.ks) > cfg.n_inputs:
        raise ValueError(f"every k must be <= n_inputs={cfg.n_inputs}, got {max(cfg.ks)}")
    check_probabilities("coverages", cfg.coverages)
    if cfg.n_outputs < 2:
        raise ValueError(f"n_outputs must be >= 2, got {cfg.n_outputs}")
    check_temperatures(cfg.temperatures)


def grid(cfg: PartitionExpertsConfig) -> dict[str, tuple[Any, ...]]:
    return {"k": cfg.ks, "coverage": cfg.coverages}


def part_masses(k: int, coverage: float) -> np.ndarray:
    """Test mass of each part, ``(k,)``: ``(1 - coverage) e_0 + coverage / k``."""
    pi = np.full(k, coverage / k)
    pi[0] += 1.0 - coverage
    return pi


def make_instance(k: int, coverage: float, n_inputs: int, n_outputs: int, *,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(reward (n_x, n_y), parts (n_x,), test_dist (n_x,), experts (k, n_x, n_y))``."""
    reward = random_reward(n_inputs, n_outputs, rng=rng)
    parts = rng.permutation(np.arange(n_inputs) % k)
    sizes = np.bincount(parts, minlength=k)
    test = part_masses(k, coverage)[parts] / sizes[parts]
    return reward, parts, test, partition_experts(reward, parts)


def run_point(cfg: PartitionExpertsConfig, task: Task) -> list[dict[str, Any]]:
    point, s, seed = task
    rng = np.random.default_rng(seed)
    k, coverage = int(point["k"]), float(point["coverage"])
    reward, parts, test, experts = make_instance(k, coverage, cfg.n_inputs, cfg.n_outputs, rng=rng)

    at_zero = check_transcendence(experts, reward, test, temperature=0, mode=cfg.mode)
    tau_star = critical_temperature(experts, reward, test, mode=cfg.mode)
    best = float(np.max(at_zero.expert_rewards))
    curve = tempered_reward(mixture(experts), np.asarray(cfg.temperatures), reward, test,
                            mode=cfg.mode)
    pi = part_masses(k, coverage)
    nz = pi[pi > 0]
    base = {"k": k, "coverage": coverage, "seed": s,
            "max_part_mass": float(pi.max()),
            "effective_parts": float(np.exp(-np.sum(nz * np.log(nz)))),
            "best_expert_reward": best,
            "argmax_margin": float(at_zero.margin), "argmax_transcends": bool(at_zero.holds),
            "critical_temperature": math.nan if tau_star is None else float(tau_star)}
    return [{**base, "temperature": float(t), "predictor_reward": float(r), "margin": float(r) - best}
            for t, r in zip(cfg.temperatures, curve)]


def summarize(rows: list[dict[str, Any]], cfg: PartitionExpertsConfig) -> dict[str, Any]:
    """Mean argmax margin and mean tau=1 margin at each coverage, per k."""
    out: dict[str, Any] = {}
    t1 = min(cfg.temperatures, key=lambda t: abs(t - 1.0))
    for k in cfg.ks:
        entry = {}
        for c in cfg.coverages:
            sel = [r for r in rows if r["k"] == k and r["coverage"] == c]
            entry[f"coverage={c}"] = {
                "mean_argmax_margin": float(np.mean([r["argmax_margin"] for r in sel
                                                      if r["temperature"] == cfg.temperatures[0]])),
                f"mean_margin_tau={t1}": float(np.mean([r["margin"] for r in sel
                                                        if r["temperature"] == t1])),
                "fraction_transcending": float(np.mean([r["argmax_transcends"] for r in sel
                                                         if r["temperature"] == cfg.temperatures[0]])),
            }
        out[f"k={k}"] = entry
    return out
