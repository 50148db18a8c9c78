r"""Prop. 4: experts skilled on disjoint parts of the input space, combined by voting.

With a partition :math:`\mathcal X = X_1 \dot\cup \cdots \dot\cup X_k` and expert :math:`i`
optimal on :math:`X_i` and uniform elsewhere (``transcendence.partition_experts``), the mixture
at :math:`x \in X_i` is :math:`w_i f^* + (1-w_i) u`, so the argmax predictor is :math:`f^*` on all
of :math:`\mathcal X` (any positive weights; the paper's are equal). Its margin has the closed form

.. math::

    R(f^*) - \max_i R(f_i) = \min_i \sum_{x \notin X_i} p_{test}(x)\,\big(\max_y r(x,y) - \bar r(x)\big),

positive iff the test inputs with a non-constant reward meet at least two parts (the paper: the
test distribution covers two parts and every reward row is non-constant). By Prop. 2, low
temperatures transcend; the explicit threshold :math:`\tau_0` is checked in both modes.
"""

from __future__ import annotations

import numpy as np

import transcendence as tr
from theory import _random
from theory._base import Conclusion, Counterexample, Instance, Statement, reward_tol, shared_input_distribution
from theory._lowtemp import argmax_differs_from_optimal, low_temperature_conclusion


def _gap(instance: Instance) -> np.ndarray:
    r = instance.reward
    return r.max(axis=1) - r.mean(axis=1)               # (n_x,) max r - mean r, >= 0


def hypotheses(instance: Instance) -> bool:
    """``parts`` given; the experts are ``partition_experts(reward, parts)``; one shared input
    distribution; positive weights; the test inputs with a non-constant reward meet two parts."""
    if instance.parts is None or not shared_input_distribution(instance):
        return False
    if instance.weights is not None and not (np.asarray(instance.weights) > 0).all():
        return False
    parts = np.asarray(instance.parts)
    if parts.min() < 0 or parts.max() >= instance.n_experts:
        return False
    want = tr.partition_experts(instance.reward, parts, n_experts=instance.n_experts)
    if not np.allclose(instance.experts, want, rtol=0.0, atol=1e-12):
        return False
    informative = (instance.test_dist > 0) & (_gap(instance) > 0)
    return np.unique(parts[informative]).size >= 2


def conclusion(instance: Instance) -> Conclusion:
    """f̂_max = f* everywhere; the margin equals the closed form and is > 0; f̂_τ transcends for
    τ ≤ τ0 (explicit, both modes)."""
    tol = reward_tol(instance.reward)
    failed = argmax_differs_from_optimal(instance)
    if failed is not None:
        return failed
    res = instance.check(temperature=0.0)
    delta = res.margin
    values: dict[str, float] = {"argmax_margin": delta}
    if instance.parts is not None:
        parts = np.asarray(instance.parts)
        weighted = instance.test_dist * _gap(instance)
        per_expert = np.array([weighted[parts != i].sum() for i in range(instance.n_experts)])
        closed = float(per_expert.min())
        values["closed_form"] = closed
        if abs(delta - closed) > tol:
            return Conclusion(False, delta, f"margin {delta:.6g} ≠ closed form {closed:.6g}", values)
    if delta <= tr.MARGIN_TOL:
        return Conclusion(False, delta, f"τ = 0: expert {res.best_expert} is as good as f*", values)
    margin, where = delta, f"τ = 0, best expert {res.best_expert}"
    return low_temperature_conclusion(instance, delta, margin, where, values)


def sample(rng: np.random.Generator, *, n_experts: int | None = None, n_inputs: int | None = None,
           n_outputs: int | None = None) -> Instance:
    """A random partition (parts may be empty) with two test inputs in different parts whose
    rewards are non-constant; sometimes unequal positive weights."""
    k, n_x, n_y = _random.sizes(rng, n_experts, n_inputs, n_outputs, min_experts=2, min_inputs=2)
    reward = _random.reward(rng, n_x, n_y)
    x0, x1 = (int(v) for v in rng.choice(n_x, size=2, replace=False))
    reward[x0] = _random.non_constant_row(rng, n_y)
    reward[x1] = _random.non_constant_row(rng, n_y)
    parts = rng.integers(0, k, size=n_x)
    parts[x1] = (parts[x0] + 1 + rng.integers(0, k - 1)) % k
    test = _random.dist(rng, n_x, include=(x0, x1))
    experts = tr.partition_experts(reward, parts, n_experts=k)
    weights = rng.integers(1, 5, size=k).astype(float) if rng.random() < 0.3 else None
    return Instance(experts, reward, test, weights=weights, parts=parts)


def _partition(reward: list[list[float]], parts: list[int], test: list[float]) -> Instance:
    parts_arr = np.asarray(parts)
    return Instance(tr.partition_experts(reward, parts_arr), reward, test, parts=parts_arr)


def counterexamples() -> tuple[Counterexample, ...]:
    reward = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
    return (
        Counterexample(
            "one-part", "the test distribution covers two parts",
            _partition(reward, [0, 1, 1], [1.0, 0.0, 0.0]),
            "All test mass on part X_0: expert 0 is optimal there, so f* only ties with it."),
        Counterexample(
            "constant-reward-on-second-part", "r(x, ·) non-constant on the covered parts",
            _partition(reward, [0, 1, 1], [0.5, 0.0, 0.5]),
            "The test distribution covers X_0 and X_1, but on the X_1 input it sees every output "
            "is equally good: expert 0 still ties with f*. Covering two parts is not enough."),
    )


STATEMENT = Statement(
    id="prop4", title="Experts skilled on disjoint parts, combined by voting",
    reference="Zhang et al. 2024, Prop. 4", source="paper",
    hypotheses=hypotheses, conclusion=conclusion, sample=sample, counterexamples=counterexamples,
    hypotheses_text="expert i is optimal on part X_i and uniform elsewhere; shared input "
                    "distribution, positive weights; the test inputs with a non-constant reward "
                    "meet at least two parts",
    conclusion_text="f̂_max = f* everywhere; R(f*) − max_i R(f_i) = min_i Σ_{x∉X_i} p(x)(max r − "
                    "mean r) > 0; f̂_τ transcends for all τ ≤ τ0 (explicit) in both modes")
