"""Skill selection: experts with their own input distributions (Taxonomy of Transcendence, Thm 2.1).

The inputs are split at random into k regions. Expert ``i`` is good on region ``i`` (error rate
``good_noise``) and poor elsewhere (``bad_noise``), with independent peaked random mistakes as in
``sims.noisy_experts``. Its input distribution is ``p_i(x) ∝ exp(selection * [x in region i])``:
``selection > 0`` means each expert is more present where it is better, ``< 0`` where it is worse,
``0`` is the paper's shared input distribution. The learner is the ideal mixture with
``g(i|x) ∝ p_i(x)`` (``transcendence.mixture(experts, input_dists)``); the test distribution is
uniform.

Per grid point it records the margin at each temperature (tau = 1 is pure imitation, where Prop. 1
forbids transcendence at ``selection = 0``), the total-variation distance between the experts'
input distributions, and for k = 2 the necessary condition of the Taxonomy paper's Thm 2.1,
``E_test[(r_x(f_a) - r_x(f_b)) (g(a|x) - g(b|x))]``, which must be > 0 when tau = 1 transcends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from typing import Any, Literal

import numpy as np

from sims._common import check_positive, check_temperatures
from sims._instances import noisy_experts, random_reward
from sims._runner import Task
from transcendence import check_transcendence, critical_temperature, favor, mixture, tempered_reward

NAME = "skill_selection"


@dataclass(frozen=True, kw_only=True)
class SkillSelectionConfig:
    ks: tuple[int, ...] = (2, 3)  # numbers of experts = skill regions k (grid axis)
    selections: tuple[float, ...] = (-4.0, -2.0, -1.0, 0.0, 1.0, 2.0, 4.0)  # log density ratio of an expert on its own region vs elsewhere (grid axis)
    good_noise: float = 0.1  # error rate of an expert on its own region
    bad_noise: float = 0.8  # error rate of an expert elsewhere
    concentration: float = 0.2  # Dirichlet concentration of each mistake distribution (inf = uniform)
    n_outputs: int = 5  # |Y|
    n_inputs: int = 200  # |X|; the test distribution is uniform over X
    temperatures: tuple[float, ...] = (0.0, 0.1, 0.25, 0.5, 1.0)  # temperatures recorded (0 = argmax)
    mode: Literal["logit", "prob"] = "logit"  # temperature convention (see transcendence.temper)
    n_seeds: int = 5  # replicates per grid point
    seed: int = 0  # root seed; replicate s uses SeedSequence(seed).spawn(n_seeds)[s]


CONFIG = SkillSelectionConfig
PRESETS = {
    "quick": SkillSelectionConfig(),
    "full": SkillSelectionConfig(
        ks=(2, 3, 5), selections=tuple(np.round(np.linspace(-6, 6, 25), 2).tolist()),
        n_inputs=600, n_seeds=20,
        temperatures=(0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)),
}


def validate(cfg: SkillSelectionConfig) -> None:
    if not cfg.ks or min(cfg.ks) < 2:
        raise ValueError(f"ks must be numbers of experts >= 2, got {cfg.ks}")
    if max(cfg.ks) > cfg.n_inputs:
        raise ValueError(f"every k must be <= n_inputs={cfg.n_inputs}, got {max(cfg.ks)}")
    if not cfg.selections or not all(math.isfinite(v) for v in cfg.selections):
        raise ValueError(f"selections must be finite numbers, got {cfg.selections}")
    for name in ("good_noise", "bad_noise"):
        if not 0 <= getattr(cfg, name) <= 1:
            raise ValueError(f"{name} must be in [0, 1], got {getattr(cfg, name)}")
    check_positive("concentration", cfg.concentration)
    if cfg.n_outputs < 2:
        raise ValueError(f"n_outputs must be >= 2, got {cfg.n_outputs}")
    check_temperatures(cfg.temperatures)


def grid(cfg: SkillSelectionConfig) -> dict[str, tuple[Any, ...]]:
    return {"k": cfg.ks, "selection": cfg.selections}


def input_distributions(regions: np.ndarray, k: int, selection: float) -> np.ndarray:
    """``p_i(x) ∝ exp(selection * [regions[x] == i])``, shape ``(k, n_x)``."""
    own = regions[None, :] == np.arange(k)[:, None]
    logits = selection * own
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


def make_instance(cfg: SkillSelectionConfig, k: int, selection: float, *,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(reward (n_x, n_y), experts (k, n_x, n_y), input_dists (k, n_x), regions (n_x,))``."""
    reward = random_reward(cfg.n_inputs, cfg.n_outputs, rng=rng)
    regions = rng.permutation(np.arange(cfg.n_inputs) % k)
    rhos = np.where(regions[None, :] == np.arange(k)[:, None], cfg.good_noise, cfg.bad_noise)
    experts = noisy_experts(reward, rhos, cfg.concentration, rng=rng)
    return reward, experts, input_distributions(regions, k, selection), regions


def expert_posterior(input_dists: np.ndarray) -> np.ndarray:
    """``g(i|x)``, shape ``(n_x, k)``: the core mixture of indicator 'experts' that answer i."""
    k, n_x = input_dists.shape
    indicators = np.zeros((k, n_x, k))
    indicators[np.arange(k), :, np.arange(k)] = 1.0
    return mixture(indicators, input_dists=input_dists)


def run_point(cfg: SkillSelectionConfig, task: Task) -> list[dict[str, Any]]:
    point, s, seed = task
    rng = np.random.default_rng(seed)
    k, selection = int(point["k"]), float(point["selection"])
    reward, experts, dists, _ = make_instance(cfg, k, selection, rng=rng)
    test = np.full(cfg.n_inputs, 1.0 / cfg.n_inputs)

    at_zero = check_transcendence(experts, reward, test, temperature=0, mode=cfg.mode,
                                  input_dists=dists)
    tau_star = critical_temperature(experts, reward, test, mode=cfg.mode, input_dists=dists)
    best = float(np.max(at_zero.expert_rewards))
    curve = tempered_reward(mixture(experts, input_dists=dists), np.asarray(cfg.temperatures),
                            reward, test, mode=cfg.mode)
    tv = np.mean([0.5 * np.abs(dists[i] - dists[j]).sum() for i, j in combinations(range(k), 2)])
    if k == 2:
        g = expert_posterior(dists)  # (n_x, 2)
        tax = float(np.sum(test * favor(experts[0], experts[1], reward) * (g[:, 0] - g[:, 1])))
    else:
        tax = math.nan
    base = {"k": k, "selection": selection, "seed": s, "tv_distance": float(tv),
            "best_expert_reward": best, "tax_condition": tax,
            "argmax_margin": float(at_zero.margin), "argmax_transcends": bool(at_zero.holds),
            "critical_temperature": math.nan if tau_star is None else float(tau_star)}
    return [{**base, "temperature": float(t), "predictor_reward": float(r), "margin": float(r) - best}
            for t, r in zip(cfg.temperatures, curve)]


def summarize(rows: list[dict[str, Any]], cfg: SkillSelectionConfig) -> dict[str, Any]:
    """Per k and selection: mean margin at tau = 1 and at the lowest temperature, with the
    fraction of seeds in which each transcends."""
    t_low = min(cfg.temperatures)
    t1 = min(cfg.temperatures, key=lambda t: abs(t - 1.0))
    out: dict[str, Any] = {"tau_low": t_low, "tau_one": t1}
    for k in cfg.ks:
        entry = {}
        for v in cfg.selections:
            sel = [r for r in rows if r["k"] == k and r["selection"] == v]
            lo = [r["margin"] for r in sel if r["temperature"] == t_low]
            one = [r["margin"] for r in sel if r["temperature"] == t1]
            entry[f"selection={v}"] = {
                "tv_distance": float(np.mean([r["tv_distance"] for r in sel])),
                "mean_margin_tau_low": float(np.mean(lo)), "fraction_tau_low": float(np.mean(np.array(lo) > 0)),
                "mean_margin_tau_one": float(np.mean(one)), "fraction_tau_one": float(np.mean(np.array(one) > 0)),
            }
        out[f"k={k}"] = entry
    return out
