"""Prop. 2 in both directions, the explicit low-temperature bound, and the critical temperature."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings

import theory
import transcendence as tr
from tests.strategies_theory import arbitrary_instances, instances_of
from theory.prop2 import TIE_AT_ZERO, low_temperature_threshold

TOY = theory.Instance(experts=[[[0.6, 0.4, 0.0]], [[0.0, 0.4, 0.6]]], reward=[[0.0, 1.0, 0.0]],
                      test_dist=[1.0])


@settings(max_examples=300)
@given(arbitrary_instances())
def test_prop2_is_an_iff_with_the_argmax_convention(inst):
    """Invariant: with f̂_0 = f̂_max, "f̂_τ transcends on [0, τ*] for some τ* > 0" (the conclusion)
    holds exactly when the argmax predictor transcends (the hypothesis), on arbitrary instances."""
    statement = theory.get("prop2")
    assert statement.hypotheses(inst) == statement.conclusion(inst).holds


@settings(max_examples=300)
@given(arbitrary_instances())
def test_prop2_converse_on_arbitrary_instances(inst):
    """Invariant: whenever the argmax predictor strictly loses, so does every τ ≤ τ0⁻."""
    assert theory.check("prop2-converse", inst).ok


@settings(max_examples=100)
@given(instances_of("prop2", max_x=12, max_y=8))
def test_explicit_threshold_against_a_dense_grid(inst):
    """Invariant: below the explicit τ0 (budget δ/2, δ the argmax margin), a dense grid of
    temperatures keeps the margin ≥ δ/2, in both modes (brute force of the bound)."""
    delta = inst.check().margin
    for mode in ("logit", "prob"):
        tau0 = low_temperature_threshold(inst, mode=mode, budget=delta / 2)
        top = tau0 if math.isfinite(tau0) else 1e3
        taus = np.geomspace(top * 1e-4, top, 200)
        assert (inst.margins(taus, mode=mode) >= delta / 2 - 1e-12).all()


@settings(max_examples=100)
@given(instances_of("prop2-converse", max_x=12, max_y=8))
def test_explicit_threshold_gain_side_against_a_dense_grid(inst):
    """Invariant: when the argmax loses by |δ|, below τ0⁻ every temperature loses by ≥ |δ|/2."""
    delta = inst.check().margin
    for mode in ("logit", "prob"):
        tau0 = low_temperature_threshold(inst, mode=mode, budget=-delta / 2, side="gain")
        top = tau0 if math.isfinite(tau0) else 1e3
        taus = np.geomspace(top * 1e-4, top, 200)
        assert (inst.margins(taus, mode=mode) <= delta / 2 + 1e-12).all()


def test_threshold_on_the_paper_example_is_exact_enough():
    """Three-action example, logit mode, budget δ/2 = 0.3: the bound has the closed form below
    and lies under the exact critical temperature τ* = 1."""
    tau0 = low_temperature_threshold(TOY, mode="logit", budget=0.3)
    # C = |O|·L/|T| = 2·1/1 = 2, κ = 0.3/0.4: τ0 = ln(4/3) / ln(2/0.3).
    assert tau0 == pytest.approx(math.log(4 / 3) / math.log(2 / 0.3), rel=1e-12)
    assert tau0 < TOY.critical_temperature() == pytest.approx(1.0, rel=1e-8)


def test_threshold_rejects_bad_arguments():
    with pytest.raises(ValueError, match="budget"):
        low_temperature_threshold(TOY, budget=0.0)
    with pytest.raises(ValueError, match="side"):
        low_temperature_threshold(TOY, budget=0.1, side="both")


def test_paper_example_through_check():
    """The paper's three-action example: the argmax wins by 0.6, τ* = 1 in logit mode."""
    result = theory.check("prop2", TOY)
    assert result.hypotheses and result.conclusion.holds
    assert result.conclusion.values["argmax_margin"] == pytest.approx(0.6)
    assert result.conclusion.values["tau_star_logit"] == pytest.approx(1.0, rel=1e-8)
    assert result.conclusion.values["tau_star_prob"] == pytest.approx(0.1 / math.log(4 / 3), rel=1e-6)


def test_argmax_tie_transcends_at_every_small_positive_temperature():
    """The converse needs f̂_0 = f̂_max (or a strict loss): the argmax only ties with the best
    expert, yet every τ in (0, 1) transcends (logit mode); critical_temperature finds that τ* = 1."""
    assert TIE_AT_ZERO.check().margin == pytest.approx(0.0, abs=1e-15)
    assert TIE_AT_ZERO.check(temperature=1.0).margin == pytest.approx(0.0, abs=1e-15)
    assert TIE_AT_ZERO.critical_temperature() == pytest.approx(1.0, rel=1e-6)
    taus = np.linspace(0.05, 0.95, 19)
    assert (TIE_AT_ZERO.margins(taus) > 1e-6).all()
    # First order in τ -> 0: the runner-up (reward 1 > 0.6) gets 0.6^(1/τ) of the argmax's mass.
    tau = 0.05
    q = np.array([0.5, 0.3, 0.2]) ** (1 / tau)
    assert TIE_AT_ZERO.margins([tau])[0] == pytest.approx(q @ [0.6, 1.0, 0.0] / q.sum() - 0.6)


def test_transcendence_result_types_are_core_types():
    """theory uses the core's check (no reimplementation): its result is the core's dataclass."""
    assert isinstance(TOY.check(), tr.TranscendenceResult)
