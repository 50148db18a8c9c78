r"""Prop. 3: denoising a single expert who makes random mistakes.

With :math:`f_\rho = \rho\,u + (1-\rho) f^*` (:math:`u` uniform over outputs, :math:`f^*` uniform
over the optimal outputs :math:`Y^*_x`, :math:`0 < \rho < 1`) and data from :math:`f_\rho` alone
(:math:`k \ge 1` identical copies), the argmax predictor is exactly :math:`f^*` and it beats the
expert by the closed form

.. math::

    R(f^*) - R(f_\rho) = \rho\, \sum_x p_{test}(x)\,\big(\max_y r(x,y) - \bar r(x)\big),
    \qquad \bar r(x) = \tfrac1{|\mathcal Y|} \sum_y r(x, y),

which is positive iff :math:`r(x,\cdot)` is non-constant at some input of the test support (the
paper assumes it at every input). By Prop. 2, low temperatures transcend; the explicit threshold
:math:`\tau_0` of :func:`theory._lowtemp.low_temperature_threshold` is checked in both modes.
"""

from __future__ import annotations

import math

import numpy as np

import transcendence as tr
from theory import _random
from theory._base import Conclusion, Counterexample, Instance, Statement, reward_tol
from theory._lowtemp import argmax_differs_from_optimal, low_temperature_conclusion


def noise_level(instance: Instance) -> float | None:
    """The ρ with every expert equal to ``noisy_expert(reward, ρ)``; ``nan`` when any ρ fits
    (every reward row constant), ``None`` when none does."""
    e = instance.experts
    if not np.allclose(e, e[0], rtol=0.0, atol=1e-12):
        return None
    f_star = tr.optimal_policy(instance.reward)
    off = f_star == 0
    if not off.any():
        return math.nan if np.allclose(e[0], f_star, rtol=0.0, atol=1e-9) else None
    rho = float(instance.n_outputs * e[0][off].mean())
    if not 0.0 <= rho <= 1.0:
        return None
    if not np.allclose(e[0], tr.noisy_expert(instance.reward, rho), rtol=0.0, atol=1e-9):
        return None
    return rho


def _informative(instance: Instance) -> np.ndarray:
    r = instance.reward
    return (instance.test_dist > 0) & (r.max(axis=1) > r.min(axis=1))


def hypotheses(instance: Instance) -> bool:
    """Every expert is f_ρ with one 0 < ρ < 1, and r(x, ·) is non-constant at some test input."""
    rho = noise_level(instance)
    return rho is not None and 0.0 < rho < 1.0 and bool(_informative(instance).any())


def conclusion(instance: Instance) -> Conclusion:
    """f̂_max = f*, R(f̂_max) − R(f_ρ) equals the closed form and is > 0, and f̂_τ transcends for
    τ ≤ τ0 (explicit, both modes)."""
    tol = reward_tol(instance.reward)
    failed = argmax_differs_from_optimal(instance)
    if failed is not None:
        return failed
    delta = instance.check(temperature=0.0).margin
    values: dict[str, float] = {"argmax_margin": delta}
    rho = noise_level(instance)
    if rho is not None and not math.isnan(rho):
        r = instance.reward
        closed = rho * float(instance.test_dist @ (r.max(axis=1) - r.mean(axis=1)))
        values["closed_form"] = closed
        if abs(delta - closed) > tol:
            return Conclusion(False, delta, f"margin {delta:.6g} ≠ closed form {closed:.6g}", values)
    if delta <= tr.MARGIN_TOL:
        return Conclusion(False, delta, "τ = 0: f* does not beat the expert", values)
    margin, where = delta, "τ = 0"
    return low_temperature_conclusion(instance, delta, margin, where, values)


def sample(rng: np.random.Generator, *, n_experts: int | None = None, n_inputs: int | None = None,
           n_outputs: int | None = None) -> Instance:
    """k copies of f_ρ (ρ uniform in [0.01, 0.99]); one test input with a non-constant reward."""
    k, n_x, n_y = _random.sizes(rng, n_experts, n_inputs, n_outputs)
    reward = _random.reward(rng, n_x, n_y)
    x0 = int(rng.integers(n_x))
    reward[x0] = _random.non_constant_row(rng, n_y)
    test = _random.dist(rng, n_x, include=(x0,))
    rho = float(rng.uniform(0.01, 0.99))
    experts = np.broadcast_to(tr.noisy_expert(reward, rho), (k, n_x, n_y))
    input_dists = _random.rows(rng, (k,), n_x) if rng.random() < 0.3 else None
    return Instance(experts, reward, test, input_dists)


def _noisy(reward: list[list[float]], rho: float, test: list[float]) -> Instance:
    return Instance([tr.noisy_expert(reward, rho)], reward, test)


def counterexamples() -> tuple[Counterexample, ...]:
    reward = [[1.0, 1.0, 1.0], [0.0, 1.0, 0.0]]
    return (
        Counterexample(
            "constant-reward", "r(x, ·) non-constant on the test support",
            _noisy(reward, 0.5, [1.0, 0.0]),
            "The test distribution only sees an input where every output is equally good: "
            "f̂_max = f* still, but it cannot beat the noisy expert (margin 0)."),
        Counterexample(
            "no-mistakes", "0 < ρ (the expert makes mistakes)", _noisy(reward, 0.0, [0.5, 0.5]),
            "With ρ = 0 the expert is already f*: there is nothing to denoise (margin 0)."),
        Counterexample(
            "only-mistakes", "ρ < 1 (the expert carries signal)", _noisy(reward, 1.0, [0.5, 0.5]),
            "With ρ = 1 the expert is uniform, so is the argmax predictor, and f̂_max ≠ f*."),
    )


STATEMENT = Statement(
    id="prop3", title="Denoising a single expert with random mistakes",
    reference="Zhang et al. 2024, Prop. 3", source="paper",
    hypotheses=hypotheses, conclusion=conclusion, sample=sample, counterexamples=counterexamples,
    hypotheses_text="every expert is f_ρ = ρ·uniform + (1−ρ)·f* with 0 < ρ < 1; r(x, ·) is "
                    "non-constant at some input with p_test(x) > 0",
    conclusion_text="f̂_max = f*; R(f*) − R(f_ρ) = ρ·E_test[max r − mean r] > 0; f̂_τ transcends "
                    "for all τ ≤ τ0 (explicit) in both modes")
