"""Checking one's own instance from Python; validation; the intermediate-temperature example."""

from __future__ import annotations

import numpy as np
import pytest

import theory
import transcendence as tr
from theory import intermediate, skill_selection


def test_check_a_users_instance():
    """The README example: the paper's three-action experts."""
    inst = theory.Instance(experts=[[[0.6, 0.4, 0.0]], [[0.0, 0.4, 0.6]]],
                           reward=[[0.0, 1.0, 0.0]], test_dist=[1.0])
    result = theory.check("prop2", inst)
    assert result.ok and result.hypotheses and bool(result.conclusion)
    assert theory.check("prop1", inst).conclusion.margin == pytest.approx(0.0, abs=1e-15)
    skipped = theory.check("prop3", inst)             # not a Prop. 3 instance: vacuously ok
    assert not skipped.hypotheses and skipped.ok


def test_unknown_statement_names_the_argument():
    with pytest.raises(ValueError, match="statement_id"):
        theory.check("prop9", None)


@pytest.mark.parametrize("kwargs, name", [
    (dict(experts=[[0.5, 0.5]], reward=[[0, 1]], test_dist=[1.0]), "experts"),
    (dict(experts=[[[0.5, 0.5]]], reward=[[0, 1, 2]], test_dist=[1.0]), "reward"),
    (dict(experts=[[[0.5, 0.5]]], reward=[[0, 1]], test_dist=[0.5, 0.5]), "test_dist"),
    (dict(experts=[[[0.5, 0.5]]], reward=[[0, 1]], test_dist=[1.0], input_dists=[[0.5, 0.5]]),
     "input_dists"),
    (dict(experts=[[[0.5, 0.5]]], reward=[[0, 1]], test_dist=[1.0], weights=[1.0, 1.0]), "weights"),
    (dict(experts=[[[0.5, 0.5]]], reward=[[0, 1]], test_dist=[1.0], parts=[0.5]), "parts"),
])
def test_instance_shape_errors_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        theory.Instance(**kwargs)


def test_core_validates_probabilities():
    inst = theory.Instance(experts=[[[0.7, 0.7]]], reward=[[0, 1]], test_dist=[1.0])
    with pytest.raises(ValueError, match="experts"):
        theory.check("prop1", inst)


def test_instance_arrays_are_read_only_copies():
    experts = np.array([[[0.5, 0.5]]])
    inst = theory.Instance(experts, [[0.0, 1.0]], [1.0])
    experts[0, 0, 0] = 0.9
    assert inst.experts[0, 0, 0] == 0.5
    with pytest.raises(ValueError):
        inst.experts[0, 0, 0] = 0.1


def test_intermediate_temperature_beats_both_ends():
    """An intermediate τ transcends while neither τ → 0 nor τ = 1 does (both modes)."""
    inst = intermediate.example()
    assert inst.expert_rewards() == pytest.approx([0.61, 0.59])
    assert inst.check(temperature=0.0).predictor_reward == pytest.approx(0.6)
    assert inst.check(temperature=1.0).predictor_reward == pytest.approx(0.6)
    for mode, (lo, hi) in {"logit": (0.2, 0.6), "prob": (0.05, 0.2)}.items():
        c = intermediate.interior_optimum(inst, mode=mode)
        assert c.holds and c.margin > 0.005
        assert lo < c.values["best_tau"] < hi
        assert c.values["margin_tau0"] < 0 and c.values["margin_tau1"] < 0
    # The logit curve in closed form at τ = 0.35.
    w = np.array([0.5, 0.3, 0.2]) ** (1 / 0.35)
    assert tr.tempered_reward(inst.mixture(), 0.35, inst.reward, inst.test_dist) == pytest.approx(
        w @ [0.6, 1.0, 0.0] / w.sum())
    assert w @ [0.6, 1.0, 0.0] / w.sum() > 0.635


def test_interior_optimum_is_false_for_the_paper_example():
    """The three-action example peaks at τ → 0: no interior optimum there."""
    inst = theory.Instance([[[0.6, 0.4, 0.0]], [[0.0, 0.4, 0.6]]], [[0.0, 1.0, 0.0]], [1.0])
    assert not intermediate.interior_optimum(inst).holds


def test_skill_selection_example_and_responsibilities():
    inst = skill_selection.example()
    g = skill_selection.responsibilities(inst)
    assert g == pytest.approx(np.array([[0.9, 0.1], [0.1, 0.9]]))
    assert skill_selection.selection_covariance(inst) == pytest.approx(0.8)
    assert theory.check("skill", inst).conclusion.holds
    assert not theory.check("prop1", inst).conclusion.holds        # and Prop. 1 fails here


def test_docstring_examples_run():
    import doctest
    result = doctest.testmod(theory, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("statement_id, sizes, name", [
    ("prop4", dict(n_experts=1), "n_experts"),
    ("skill", dict(n_experts=3), "n_experts"),
    ("interior", dict(n_outputs=2), "n_outputs"),
    ("prop1", dict(n_outputs=1), "n_outputs"),
])
def test_samplers_reject_sizes_they_cannot_satisfy(statement_id, sizes, name):
    with pytest.raises(ValueError, match=name):
        theory.get(statement_id).sample(np.random.default_rng(0), **sizes)


def test_samplers_honour_requested_sizes():
    for statement_id, statement in theory.STATEMENTS.items():
        inst = statement.sample(np.random.default_rng(1), n_experts=2, n_inputs=3, n_outputs=4)
        inst = inst.a if isinstance(inst, theory.Segment) else inst
        assert (inst.n_experts, inst.n_inputs, inst.n_outputs) == (2, 3, 4), statement_id
