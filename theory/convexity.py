r"""Convexity (ours): for fixed experts and reward, the test distributions
on which the argmax predictor transcends form a convex set.

The margin :math:`m(p) = \min_i \langle p, a_i \rangle`, :math:`a_i(x) = r_x(\hat f_{\max}) - r_x(f_i)`,
is a minimum of linear functions of :math:`p`, hence concave:

.. math:: m(\lambda p + (1-\lambda) p') \ge \lambda\, m(p) + (1-\lambda)\, m(p'),

and the set :math:`\{p : m(p) > 0\}` is an intersection of :math:`k` open half-spaces with the
simplex. The same holds for any *fixed* predictor (any fixed temperature and mode), because the
predictor does not depend on the test distribution.

An instance is a :class:`Segment`: two instances with the same experts, input distributions,
weights and reward, and different test distributions. The conclusion is checked at every
:math:`\lambda` in :data:`LAMBDAS`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import transcendence as tr
from theory import _construct, _random
from theory._base import Conclusion, Counterexample, Instance, Statement

LAMBDAS = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)


@dataclass(frozen=True, eq=False)
class Segment:
    """Two endpoints; the statement is about the instances on the segment between them."""

    a: Instance
    b: Instance

    def at(self, lam: float) -> Instance:
        """The instance ``lam * a + (1 - lam) * b`` (every array mixed entrywise)."""
        def mix(u, v, default):
            if u is None and v is None:
                return None
            u = default if u is None else np.asarray(u, dtype=float)
            v = default if v is None else np.asarray(v, dtype=float)
            return lam * u + (1 - lam) * v

        a, b = self.a, self.b
        k, n_x = a.n_experts, a.n_inputs
        return Instance(
            experts=lam * a.experts + (1 - lam) * b.experts,
            reward=lam * a.reward + (1 - lam) * b.reward,
            test_dist=lam * a.test_dist + (1 - lam) * b.test_dist,
            input_dists=mix(a.input_dists, b.input_dists, np.full((k, n_x), 1.0 / n_x)),
            weights=mix(None if a.weights is None else a.weights / a.weights.sum(),
                        None if b.weights is None else b.weights / b.weights.sum(),
                        np.full(k, 1.0 / k)))


def _same(u: np.ndarray | None, v: np.ndarray | None) -> bool:
    if u is None or v is None:
        return u is None and v is None
    return u.shape == v.shape and bool(np.array_equal(u, v))


def hypotheses(segment: Segment) -> bool:
    """Same experts, input distributions, weights and reward at both ends; the argmax predictor
    transcends at both ends."""
    a, b = segment.a, segment.b
    same = (_same(a.experts, b.experts) and _same(a.reward, b.reward)
            and _same(a.input_dists, b.input_dists) and _same(a.weights, b.weights))
    return same and bool(a.check().holds) and bool(b.check().holds)


def conclusion(segment: Segment) -> Conclusion:
    """At every λ in LAMBDAS the argmax predictor transcends, and m(λ) ≥ λ m(a) + (1 − λ) m(b)."""
    m_a, m_b = segment.a.check().margin, segment.b.check().margin
    worst, where = np.inf, ""
    for lam in LAMBDAS:
        m = segment.at(lam).check().margin
        chord = lam * m_a + (1 - lam) * m_b
        if m < chord - 1e-9 * max(1.0, abs(chord)):
            return Conclusion(False, m, f"λ = {lam}: margin {m:.6g} below the chord {chord:.6g}")
        if m <= tr.MARGIN_TOL:
            return Conclusion(False, m, f"λ = {lam}: no transcendence")
        if m < worst:
            worst, where = m, f"λ = {lam}"
    return Conclusion(True, float(worst), where, {"margin_a": m_a, "margin_b": m_b})


def sample(rng: np.random.Generator, *, n_experts: int | None = None, n_inputs: int | None = None,
           n_outputs: int | None = None) -> Segment:
    """Experts and reward on which the argmax transcends for two test distributions at once
    (``theory._construct`` with two test distributions)."""
    k, n_x, n_y = _random.sizes(rng, n_experts, n_inputs, n_outputs)
    experts, reward, tests, input_dists, weights = _construct.decisive(rng, k, n_x, n_y, sign=1,
                                                                       n_tests=2)
    a = Instance(experts, reward, tests[0], input_dists, weights)
    return Segment(a, a.replace(test_dist=tests[1]))


def counterexamples() -> tuple[Counterexample, ...]:
    # Different experts at the two ends: each single expert has a different winner, y0 or y1 (both
    # right), but both put 0.38 on the wrong y2. Averaged, y2 becomes the winner.
    reward = [[1.0, 1.0, 0.0]]
    panels = Segment(Instance([[[0.42, 0.20, 0.38]]], reward, [1.0]),
                     Instance([[[0.20, 0.42, 0.38]]], reward, [1.0]))
    # Same single expert, but reward and test distribution both change: at each end the argmax
    # sees only the input where its choice is rewarded; halfway it sees both with a reward that
    # favours the other output.
    expert = [[[0.6, 0.4], [0.6, 0.4]]]
    rewards = Segment(Instance(expert, [[1.0, 0.0], [0.0, 3.0]], [1.0, 0.0]),
                      Instance(expert, [[0.0, 3.0], [1.0, 0.0]], [0.0, 1.0]))
    return (
        Counterexample(
            "different-experts", "fixed experts", panels,
            "Each end transcends (1 > 0.62), the averaged expert (0.31, 0.31, 0.38) does not: "
            "its argmax is the wrong y2. The set of expert panels that transcend is not convex."),
        Counterexample(
            "different-rewards", "fixed reward", rewards,
            "Each end transcends (1 > 0.6); halfway the reward is (0.5, 1.5) on both inputs and "
            "the argmax (0.5) loses to the expert (0.9). Mixing reward and test distribution "
            "together is bilinear, not linear."),
    )


STATEMENT = Statement(
    id="convexity", title="The test distributions on which the argmax transcends form a convex set",
    reference="ours", source="ours", hypotheses=hypotheses,
    conclusion=conclusion, sample=sample, counterexamples=counterexamples,
    hypotheses_text="fixed experts, input distributions, weights and reward; the argmax predictor "
                    "transcends on test distributions p and p'",
    conclusion_text="it transcends on every λp + (1−λ)p', with margin ≥ λ m(p) + (1−λ) m(p') "
                    "(concave margin)")
