r"""Skill selection ("A Taxonomy of Transcendence", Abreu et al. 2025, Thm 2.1).

Two experts :math:`a, b` with their own input distributions :math:`p_a, p_b` and weights
:math:`w_a, w_b`. The learner is :math:`\hat f = g(a\mid x) f_a + g(b\mid x) f_b` with
:math:`g(i\mid x) \propto w_i p_i(x)`. At temperature 1, for every test distribution,

.. math::

    \mathbb E_{p_{test}}\big[(r_x(f_a) - r_x(f_b))(g(a\mid x) - g(b\mid x))\big]
    = \big(R(\hat f) - R(f_a)\big) + \big(R(\hat f) - R(f_b)\big),

so transcendence at τ = 1 forces this "selection covariance" to be positive, indeed at least twice
the transcendence margin. Unlike Prop. 1, different input distributions *can* give transcendence
at τ = 1: every sampled instance is such an example, and :func:`example` is the smallest.
"""

from __future__ import annotations

import numpy as np

import transcendence as tr
from theory import _random
from theory._base import Conclusion, Counterexample, Instance, Statement, reward_tol


def responsibilities(instance: Instance) -> np.ndarray:
    r""":math:`g(i\mid x)`, shape (k, n_x), as the core's ``mixture`` computes it (read off by mixing
    experts that always play output i, so unvisited inputs follow the core's convention)."""
    k, n_x = instance.n_experts, instance.n_inputs
    indicator = np.broadcast_to(np.eye(k)[:, None, :], (k, n_x, k))
    return tr.mixture(indicator, instance.input_dists, instance.weights).T


def selection_covariance(instance: Instance) -> float:
    r""":math:`\mathbb E_{p_{test}}[(r_x(f_a) - r_x(f_b))(g(a\mid x) - g(b\mid x))]` for k = 2."""
    g = responsibilities(instance)
    per_input = np.einsum("kxy,xy->kx", instance.experts, instance.reward)   # r_x(f_i)
    return float(instance.test_dist @ ((per_input[0] - per_input[1]) * (g[0] - g[1])))


def hypotheses(instance: Instance) -> bool:
    """Two experts, and the mixture itself (τ = 1) transcends."""
    return instance.n_experts == 2 and bool(instance.check(temperature=1.0).holds)


def conclusion(instance: Instance) -> Conclusion:
    """The selection covariance equals (R(f̂) − R(f_a)) + (R(f̂) − R(f_b)) and is > 0."""
    if instance.n_experts != 2:
        return Conclusion(False, float("nan"), f"needs 2 experts, got {instance.n_experts}")
    res = instance.check(temperature=1.0)
    cov = selection_covariance(instance)
    identity = 2 * res.predictor_reward - float(res.expert_rewards.sum())
    values = {"covariance": cov, "tau1_margin": res.margin, "identity": identity}
    if abs(cov - identity) > reward_tol(instance.reward):
        return Conclusion(False, cov, f"covariance {cov:.6g} ≠ 2R(f̂) − R(f_a) − R(f_b) = {identity:.6g}",
                          values)
    holds = cov > tr.MARGIN_TOL
    where = "E_test[(r_x(f_a) − r_x(f_b))(g(a|x) − g(b|x))]"
    return Conclusion(bool(holds), cov, where if holds else where + " ≤ 0", values)


def sample(rng: np.random.Generator, *, n_experts: int | None = 2, n_inputs: int | None = None,
           n_outputs: int | None = None) -> Instance:
    """Two experts, each better on some test input, whose input distributions select them there.

    Construction: at two test inputs x1, x2 (non-constant rewards) expert a plays f* at x1 and the
    worst output at x2, expert b the reverse, so D_x = r_x(f_a) − r_x(f_b) takes both signs. With
    P, N the test-weighted positive and negative parts of D and η < min(P, N)/(P + N), choose
    g(a|x) ∈ [1−η, 1] where D > 0 and ∈ [0, η] where D < 0; then both R(f̂) − R(f_a) and
    R(f̂) − R(f_b) are positive. Input distributions p_i ∝ g(i|x) p̄(x) and weights w_i ∝ Σ_x g(i|x)
    p̄(x) realise exactly this g.
    """
    if n_experts not in (None, 2):
        raise ValueError(f"n_experts: skill selection is about 2 experts, got {n_experts}")
    _, n_x, n_y = _random.sizes(rng, 2, n_inputs, n_outputs, min_inputs=2)
    reward = _random.reward(rng, n_x, n_y)
    x1, x2 = (int(v) for v in rng.choice(n_x, size=2, replace=False))
    experts = _random.rows(rng, (2, n_x), n_y)
    for x, good, bad in ((x1, 0, 1), (x2, 1, 0)):
        reward[x] = _random.non_constant_row(rng, n_y)
        experts[good, x] = tr.optimal_policy(reward[x][None])[0]
        experts[bad, x] = np.eye(n_y)[int(np.argmin(reward[x]))]
    test = _random.dist(rng, n_x, include=(x1, x2))
    per_input = np.einsum("kxy,xy->kx", experts, reward)
    d = per_input[0] - per_input[1]
    pos, neg = float(test @ np.maximum(d, 0)), float(test @ np.maximum(-d, 0))
    eta = float(rng.uniform(0.0, 0.99)) * min(pos, neg) / (pos + neg)
    g_a = rng.uniform(0.0, 1.0, size=n_x)
    g_a = np.where(d > 0, 1.0 - eta * g_a, np.where(d < 0, eta * g_a, g_a))
    exact = rng.random(n_x) < 0.2                                 # some exact 0/1: zero p_i(x)
    g_a = np.where(exact & (d > 0), 1.0, np.where(exact & (d < 0), 0.0, g_a))
    p_bar = _random.dist(rng, n_x)
    p_bar = np.where(test > 0, np.maximum(p_bar, 0.05), p_bar)   # the learner sees every test input
    joint = np.stack([g_a * p_bar, (1.0 - g_a) * p_bar])           # w_i p_i(x), up to a constant
    mass = joint.sum(axis=1)
    return Instance(experts, reward, test, input_dists=joint / mass[:, None], weights=mass)


def example() -> Instance:
    """Transcendence at τ = 1 with different input distributions (impossible with a shared one).

    Two inputs, two outputs, output y is right at input x = y. Expert a is right on input 0 only,
    expert b on input 1 only; a sees input 0 nine times out of ten, b input 1. Then
    R(f̂) = 0.9 > 0.5 = R(f_a) = R(f_b), and the covariance is 0.8 = 2 × 0.4.
    """
    return Instance(experts=[[[1.0, 0.0], [1.0, 0.0]], [[0.0, 1.0], [0.0, 1.0]]],
                    reward=[[1.0, 0.0], [0.0, 1.0]], test_dist=[0.5, 0.5],
                    input_dists=[[0.9, 0.1], [0.1, 0.9]])


def _confirm_not_sufficient(statement: Statement, instance: Instance) -> bool:
    return not statement.hypotheses(instance) and statement.conclusion(instance).holds


def counterexamples() -> tuple[Counterexample, ...]:
    toy = Instance(experts=[[[0.6, 0.4, 0.0]], [[0.0, 0.4, 0.6]]], reward=[[0.0, 1.0, 0.0]],
                   test_dist=[1.0])
    dominated = Instance(experts=[[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [1.0, 0.0]]],
                         reward=[[1.0, 0.0], [0.0, 1.0]], test_dist=[0.5, 0.5], weights=[3.0, 1.0])
    return (
        Counterexample(
            "low-temperature-without-selection", "temperature 1", toy,
            "The paper's three-action example: shared inputs, so g(a|x) = g(b|x) and the "
            "covariance is 0, yet the argmax predictor transcends (1.0 > 0.4). Skill selection "
            "is necessary only at τ = 1."),
        Counterexample(
            "selection-not-sufficient", "(converse) covariance > 0 implies transcendence",
            dominated,
            "Expert a is right everywhere and b nowhere; a gets 3/4 of the data. The covariance "
            "is 0.5 > 0 but R(f̂) = 0.75 < 1 = R(f_a): the condition is necessary, not sufficient.",
            confirm=_confirm_not_sufficient),
    )


STATEMENT = Statement(
    id="skill", title="Skill selection: transcendence at τ = 1 needs experts over-represented "
                      "where they are better",
    reference="Abreu, Zhang, Malach, Saphra 2025 ('A Taxonomy of Transcendence'), Thm 2.1",
    source="follow-up", hypotheses=hypotheses, conclusion=conclusion, sample=sample,
    counterexamples=counterexamples,
    hypotheses_text="two experts with their own input distributions and weights; f̂ (τ = 1) "
                    "transcends",
    conclusion_text="E_test[(r_x(f_a) − r_x(f_b))(g(a|x) − g(b|x))] = (R(f̂) − R(f_a)) + "
                    "(R(f̂) − R(f_b)) > 0")
