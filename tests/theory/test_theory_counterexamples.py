"""Counterexamples: each drops one hypothesis and its statement's conclusion fails there.

This is what makes the property tests bite: if a hypothesis were dropped from a statement (or
its conclusion weakened to something the counterexample satisfies), the statement would be
refuted by the counterexample below.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import theory
import transcendence as tr
from theory._base import _default_confirm

CASES = [(s.id, c) for s in theory.STATEMENTS.values() for c in s.counterexamples()]


@pytest.mark.parametrize("statement_id, cex", CASES, ids=[f"{s}-{c.name}" for s, c in CASES])
def test_counterexample_is_confirmed(statement_id, cex):
    statement = theory.get(statement_id)
    assert cex.confirm(statement, cex.instance)


DEFAULT = [(s, c) for s, c in CASES if c.confirm is _default_confirm
           or s in ("prop2", "prop2-converse")]


@pytest.mark.parametrize("statement_id, cex", DEFAULT, ids=[f"{s}-{c.name}" for s, c in DEFAULT])
def test_dropping_the_hypothesis_refutes_the_statement(statement_id, cex):
    """The counterexample violates a hypothesis *and* the conclusion: the statement without that
    hypothesis (here: with no hypotheses at all) is false."""
    statement = theory.get(statement_id)
    assert not statement.hypotheses(cex.instance)
    assert not statement.conclusion(cex.instance).holds
    weakened = dataclasses.replace(statement, hypotheses=lambda instance: True)
    assert not weakened.check(cex.instance).ok


def test_every_statement_has_a_counterexample():
    for statement in theory.STATEMENTS.values():
        assert statement.counterexamples(), statement.id
        assert statement.counterexample().name == statement.counterexamples()[0].name


def test_prop1_strict_inequality_would_be_false():
    """Prop. 1's ≤ cannot be strengthened to <: identical experts give equality exactly."""
    expert = [[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]]
    inst = theory.Instance([expert, expert], [[1.0, 0.0, 2.0], [0.0, 1.0, 0.0]], [0.5, 0.5])
    c = theory.check("prop1", inst).conclusion
    assert c.holds and abs(c.margin) <= 1e-15 and c.values["equality"] == 1.0


def test_prop1_different_input_distributions_transcend_at_temperature_one():
    cex = theory.get("prop1").counterexample()
    result = cex.instance.check(temperature=1.0)
    assert result.holds and result.predictor_reward == pytest.approx(0.9)
    assert result.expert_rewards == pytest.approx([0.5, 0.5])


def test_prop3_closed_form_against_monte_carlo():
    """R(f*) − R(f_ρ) = ρ·E[max r − mean r], checked by sampling x ~ p_test, y ~ f_ρ(·|x)."""
    rng = np.random.default_rng(0)
    reward = np.array([[0.0, 1.0, 3.0, 1.0], [2.0, 2.0, 2.0, 2.0], [1.0, -1.0, 0.0, 0.0]])
    test, rho = np.array([0.5, 0.2, 0.3]), 0.4
    inst = theory.Instance([tr.noisy_expert(reward, rho)], reward, test)
    c = theory.check("prop3", inst).conclusion
    n = 200_000
    x = rng.choice(3, size=n, p=test)
    cum = np.cumsum(inst.experts[0][x], axis=1)
    y = (rng.random(n)[:, None] > cum).sum(axis=1)
    sampled_expert = reward[x, y].mean()
    optimal = reward.max(axis=1)[x].mean()             # f* always earns max_y r(x, y)
    closed = rho * float(test @ (reward.max(axis=1) - reward.mean(axis=1)))
    assert c.values["closed_form"] == pytest.approx(closed)
    se = reward[x, y].std() / np.sqrt(n)
    assert abs((optimal - sampled_expert) - closed) < 5 * se + 0.01


def test_prop4_closed_form_against_brute_force():
    """min_i Σ_{x∉X_i} p(x)(max r − mean r) against max_i R(f_i) computed entry by entry."""
    reward = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 1.0], [3.0, 3.0, 0.0], [0.0, 0.0, 1.0]])
    parts = np.array([0, 1, 1, 2])
    test = np.array([0.1, 0.4, 0.2, 0.3])
    inst = theory.Instance(tr.partition_experts(reward, parts), reward, test, parts=parts)
    best = max(sum(test[x] * inst.experts[i, x, y] * reward[x, y]
                   for x in range(4) for y in range(3)) for i in range(3))
    optimal = float(test @ reward.max(axis=1))
    c = theory.check("prop4", inst).conclusion
    assert c.holds
    assert c.values["closed_form"] == pytest.approx(optimal - best)
