"""Every statement: hypotheses ⇒ conclusion on random instances of varied sizes (500 each in CI).

The instances come from the statements' own constructive samplers, driven by hypothesis
(tests/strategies_theory.py): 1-8 experts, 1-50 inputs, 2-30 outputs, exact ties and zeros.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings

import theory
from tests.strategies_theory import instances_of

MANY = settings(max_examples=500)


def _holds(statement_id: str, instance) -> theory.Conclusion:
    statement = theory.get(statement_id)
    assert statement.hypotheses(instance), "the sampler must satisfy the hypotheses"
    conclusion = statement.conclusion(instance)
    assert conclusion.holds, f"{statement_id}: {conclusion.where} (margin {conclusion.margin})"
    return conclusion


@MANY
@given(instances_of("prop1"))
def test_prop1_mixture_never_beats_best_expert(inst):
    """Invariant (Prop. 1): with a shared input distribution, R(f̂) ≤ max_i R(f_i), and the gap is
    between w_min·G and G, G the largest shortfall of an expert with positive weight (so equality
    iff all such experts are best). Expert rewards recomputed here by brute force."""
    c = _holds("prop1", inst)
    per_expert = np.array([sum(inst.test_dist[x] * inst.experts[i, x] @ inst.reward[x]
                               for x in range(inst.n_inputs)) for i in range(inst.n_experts)])
    w = np.ones(inst.n_experts) if inst.weights is None else inst.weights
    w = w / w.sum()
    mixed = sum(inst.test_dist[x] * (w @ inst.experts[:, x]) @ inst.reward[x]
                for x in range(inst.n_inputs))
    gap = per_expert.max() - mixed
    spread = (per_expert.max() - per_expert)[w > 0].max()
    assert gap >= -1e-9
    assert w[w > 0].min() * spread - 1e-9 <= gap <= spread + 1e-9
    assert abs(c.margin - gap) <= 1e-9


@MANY
@given(instances_of("prop2"))
def test_prop2_low_temperature_transcends(inst):
    """Invariant (Prop. 2): if the argmax predictor transcends, f̂_τ transcends for all τ in
    [0, τ*] in both modes, τ* = critical_temperature ≥ the explicit bound τ0 > 0, and τ* is sharp."""
    c = _holds("prop2", inst)
    for mode in ("logit", "prob"):
        assert c.values[f"tau0_{mode}"] > 0
        assert c.values[f"tau_star_{mode}"] >= c.values[f"tau0_{mode}"] * (1 - 1e-9)


@MANY
@given(instances_of("prop2-converse"))
def test_prop2_converse_losing_argmax_means_losing_low_temperatures(inst):
    """Invariant (Prop. 2, converse): if the argmax predictor strictly loses, critical_temperature
    is None and every τ ≤ τ0⁻ (explicit) loses by at least half as much, in both modes."""
    c = _holds("prop2-converse", inst)
    assert c.margin > 0


@MANY
@given(instances_of("prop3"))
def test_prop3_denoising_a_noisy_expert(inst):
    """Invariant (Prop. 3): copies of f_ρ have argmax f* and R(f*) − R(f_ρ) = ρ·E[max r − mean r] > 0;
    low temperatures transcend."""
    c = _holds("prop3", inst)
    assert abs(c.values["argmax_margin"] - c.values["closed_form"]) <= 1e-9


@MANY
@given(instances_of("prop4"))
def test_prop4_voting_combines_disjoint_skills(inst):
    """Invariant (Prop. 4): partition experts have argmax f* everywhere and the margin equals
    min_i Σ_{x∉X_i} p(x)(max r − mean r) > 0; low temperatures transcend."""
    c = _holds("prop4", inst)
    assert abs(c.values["argmax_margin"] - c.values["closed_form"]) <= 1e-9


@MANY
@given(instances_of("skill"))
def test_skill_selection_is_necessary_at_temperature_one(inst):
    """Invariant (Taxonomy Thm 2.1): when f̂ transcends at τ = 1 with two experts, the selection
    covariance equals (R(f̂) − R(f_a)) + (R(f̂) − R(f_b)) ≥ 2 × margin > 0."""
    c = _holds("skill", inst)
    assert c.values["covariance"] >= 2 * c.values["tau1_margin"] - 1e-9
    assert c.values["tau1_margin"] > 0                 # different inputs do transcend at τ = 1


@MANY
@given(instances_of("convexity"))
def test_convexity_of_transcending_test_distributions(inst):
    """Invariant (convexity): if the argmax transcends on p and p' (same experts and reward), it
    transcends on every mixture, with margin ≥ the chord (concave margin)."""
    _holds("convexity", inst)


@MANY
@given(instances_of("interior"))
def test_interior_optimum_when_a_better_runner_up_is_closest_to_a_tie(inst):
    """Invariant (ours): if the first-order coefficient c of R(f̂_τ) − R(f̂_max) at small τ is
    positive and R(f̂_max) ≥ R(f̂), some τ in (0, 1) beats both ends; every τ ≤ τ_w beats the argmax."""
    from theory.intermediate import first_order
    c = _holds("interior", inst)
    fo = first_order(inst)
    taus = fo["tau_w"] * np.array([1.0, 0.5, 0.1])
    gains = np.asarray(inst.margins(taus)) - inst.margins([0.0])[0]
    assert gains[0] > 0                                  # visible at τ_w (below, it may underflow)
    assert (gains >= fo["kappa"] ** (1 / taus) * fo["c"] / 2 - 1e-12).all()   # the explicit bound
    assert c.values["best_tau"] < 1.0
