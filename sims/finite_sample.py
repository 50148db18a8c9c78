"""Finite samples: the predictor is fitted from n samples instead of being the exact mixture.

The instance is the noisy-experts one (``sims.noisy_experts``: k experts with independent, peaked
random mistakes around ``f*``, ``Uniform(0, 1)`` rewards, uniform test distribution). A dataset of
``n = samples_per_input * n_inputs`` triples is drawn with ``transcendence.sample_dataset`` and the
predictor is ``transcendence.empirical_policy`` (counts, with and without additive smoothing).
For each n, smoothing and temperature it records the margin of the tempered empirical predictor
over the best expert, next to the margin of the exact mixture (n = infinity).

Note: additive smoothing adds the same pseudo-count to every output, so it never changes the argmax;
it matters only at temperatures > 0 (in ``logit`` mode unsmoothed zero counts stay zero).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from sims._common import check_positive, check_temperatures, t_interval
from sims._instances import noisy_experts, random_reward
from sims._runner import Task, substreams
from transcendence import empirical_policy, expected_reward, mixture, sample_dataset, tempered_reward

NAME = "finite_sample"


@dataclass(frozen=True, kw_only=True)
class FiniteSampleConfig:
    n_experts: int = 5  # k
    noise: float = 0.5  # mean error rate rho-bar of the experts
    noise_spread: float = 0.1  # each expert's rho_i = clip(rho-bar + Uniform(-spread, spread), 0, 1)
    concentration: float = 0.2  # Dirichlet concentration of each mistake distribution (inf = uniform)
    n_outputs: int = 5  # |Y|
    n_inputs: int = 50  # |X|; inputs drawn uniformly for training and for the test distribution
    samples_per_input: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)  # n / |X| (grid axis)
    smoothings: tuple[float, ...] = (0.0, 1.0)  # additive pseudo-counts of the empirical policy
    temperatures: tuple[float, ...] = (0.0, 0.1, 0.5, 1.0)  # temperatures recorded (0 = argmax)
    mode: Literal["logit", "prob"] = "logit"  # temperature convention (see transcendence.temper)
    n_seeds: int = 10  # replicates (instance and dataset) per grid point
    seed: int = 0  # root seed; replicate s uses SeedSequence(seed).spawn(n_seeds)[s]


CONFIG = FiniteSampleConfig
PRESETS = {
    "quick": FiniteSampleConfig(),
    "full": FiniteSampleConfig(
        n_inputs=200, n_seeds=100,
        samples_per_input=(0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0, 64.0,
                           128.0, 256.0),
        smoothings=(0.0, 0.5, 1.0), temperatures=(0.0, 0.05, 0.1, 0.25, 0.5, 1.0)),
}


def validate(cfg: FiniteSampleConfig) -> None:
    if cfg.n_experts < 1:
        raise ValueError(f"n_experts must be >= 1, got {cfg.n_experts}")
    if not 0 <= cfg.noise <= 1 or not 0 <= cfg.noise_spread <= 1:
        raise ValueError(f"noise and noise_spread must be in [0, 1], got {cfg.noise}, {cfg.noise_spread}")
    check_positive("concentration", cfg.concentration)
    if cfg.n_outputs < 2 or cfg.n_inputs < 1:
        raise ValueError(f"need n_outputs >= 2 and n_inputs >= 1, got {cfg.n_outputs}, {cfg.n_inputs}")
    if not cfg.samples_per_input or min(cfg.samples_per_input) * cfg.n_inputs < 1:
        raise ValueError("samples_per_input must be non-empty and give n = samples_per_input * "
                         f"n_inputs >= 1, got {cfg.samples_per_input}")
    if not cfg.smoothings or min(cfg.smoothings) < 0:
        raise ValueError(f"smoothings must be non-empty and >= 0, got {cfg.smoothings}")
    check_temperatures(cfg.temperatures)


def grid(cfg: FiniteSampleConfig) -> dict[str, tuple[Any, ...]]:
    return {"samples_per_input": cfg.samples_per_input}


def run_point(cfg: FiniteSampleConfig, task: Task) -> list[dict[str, Any]]:
    point, s, seed = task
    # Two streams: the instance is the same at every n for one replicate (common random numbers).
    instance_seed, data_seed = substreams(seed, 2)
    rng = np.random.default_rng(instance_seed)
    reward = random_reward(cfg.n_inputs, cfg.n_outputs, rng=rng)
    rhos = np.clip(cfg.noise + cfg.noise_spread * rng.uniform(-1, 1, size=cfg.n_experts), 0, 1)
    experts = noisy_experts(reward, rhos, cfg.concentration, rng=rng)
    test = np.full(cfg.n_inputs, 1.0 / cfg.n_inputs)
    best = float(np.max(expected_reward(experts, reward, test)))
    temps = np.asarray(cfg.temperatures)
    ideal = tempered_reward(mixture(experts), temps, reward, test, mode=cfg.mode) - best

    n = int(round(float(point["samples_per_input"]) * cfg.n_inputs))
    x, _, y = sample_dataset(experts, test, n, rng=np.random.default_rng(data_seed))
    seen = np.bincount(x, minlength=cfg.n_inputs) > 0
    rows = []
    for smoothing in cfg.smoothings:
        fitted = empirical_policy(x, y, cfg.n_inputs, cfg.n_outputs, smoothing=smoothing)
        curve = tempered_reward(fitted, temps, reward, test, mode=cfg.mode)
        for t, r, m_ideal in zip(temps, curve, ideal):
            rows.append({"samples_per_input": float(point["samples_per_input"]), "n_samples": n,
                         "seed": s, "smoothing": float(smoothing), "temperature": float(t),
                         "fraction_inputs_seen": float(seen.mean()),
                         "best_expert_reward": best, "predictor_reward": float(r),
                         "margin": float(r) - best, "ideal_margin": float(m_ideal)})
    return rows


def summarize(rows: list[dict[str, Any]], cfg: FiniteSampleConfig) -> dict[str, Any]:
    """Per smoothing and temperature: the smallest samples per input from which on the mean margin
    over seeds is positive with its 95% interval above 0, and the exact mixture's margin."""
    out: dict[str, Any] = {}
    for smoothing in cfg.smoothings:
        for t in cfg.temperatures:
            sel = [r for r in rows if r["smoothing"] == smoothing and r["temperature"] == t]
            lower = {}
            for n in cfg.samples_per_input:
                mean, half = t_interval(np.array([r["margin"] for r in sel
                                                  if r["samples_per_input"] == n]))
                lower[n] = float(mean - half) if np.isfinite(half) else float(mean)
            ok = [n for n in cfg.samples_per_input
                  if all(lower[m] > 0 for m in cfg.samples_per_input if m >= n)]
            out[f"smoothing={smoothing},tau={t}"] = {
                "min_samples_per_input_transcends": min(ok) if ok else None,
                "ideal_margin": float(np.mean([r["ideal_margin"] for r in sel])),
                "margin_ci_lower": lower,
            }
    return out
