"""Unit and property tests of mixture, temper, argmax_policy, expected_reward, favor."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import brentq

import transcendence as tr
from tests.strategies import instances, real_rows, stochastic


# ---------------------------------------------------------------- mixture
@given(instances(per_expert_inputs=True), st.integers(1, 5))
def test_mixture_of_identical_experts_is_that_expert(inst, copies):
    """Invariant: k copies of one expert mix to that expert, whatever the input distributions and weights."""
    experts, _, _, input_dists, _ = inst
    one = experts[:1]
    same = np.repeat(one, copies, axis=0)
    dists = np.repeat(input_dists[:1], copies, axis=0)
    weights = np.arange(1, copies + 1, dtype=float)
    np.testing.assert_allclose(tr.mixture(same, dists, weights), one[0], atol=1e-12)


@given(instances(per_expert_inputs=True), st.randoms(use_true_random=False))
def test_mixture_does_not_depend_on_expert_order(inst, rnd):
    """Invariant: permuting experts together with their input distributions and weights changes nothing."""
    experts, _, _, input_dists, weights = inst
    perm = list(range(experts.shape[0]))
    rnd.shuffle(perm)
    a = tr.mixture(experts, input_dists, weights)
    b = tr.mixture(experts[perm], input_dists[perm], weights[perm])
    np.testing.assert_allclose(a, b, atol=1e-12)


@given(instances(per_expert_inputs=True))
def test_shared_input_distribution_equal_weights_is_plain_average(inst):
    """Invariant: one shared p and equal weights give (1/k) sum_i f_i, eq. (1) of the paper."""
    experts, _, _, input_dists, _ = inst
    k = experts.shape[0]
    shared = np.repeat(input_dists[:1], k, axis=0)
    avg = experts.mean(axis=0)
    np.testing.assert_allclose(tr.mixture(experts), avg, atol=1e-12)
    np.testing.assert_allclose(tr.mixture(experts, shared, np.full(k, 7.0)), avg, atol=1e-12)


@given(instances(per_expert_inputs=True))
def test_mixture_matches_posterior_formula_by_brute_force(inst):
    """Invariant: f(y|x) = sum_i w_i p_i(x) f_i(y|x) / sum_j w_j p_j(x), computed input by input."""
    experts, _, _, p, w = inst
    k, n_x, n_y = experts.shape
    got = tr.mixture(experts, p, w)
    for x in range(n_x):
        den = sum(w[i] * p[i, x] for i in range(k))
        if den == 0:
            want = sum(w[i] * experts[i, x] for i in range(k)) / w.sum()
        else:
            want = sum(w[i] * p[i, x] * experts[i, x] for i in range(k)) / den
        np.testing.assert_allclose(got[x], want, atol=1e-12)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-12)


def test_mixture_unvisited_inputs_get_prior_weighted_average():
    experts = np.array([[[1.0, 0.0], [1.0, 0.0]], [[0.0, 1.0], [0.0, 1.0]]])
    p = np.array([[1.0, 0.0], [1.0, 0.0]])        # input 1 is visited by no expert
    got = tr.mixture(experts, p, [3.0, 1.0])
    np.testing.assert_allclose(got[1], [0.75, 0.25])


# ---------------------------------------------------------------- temper
@given(real_rows())
def test_logit_temperature_one_is_identity(f):
    """Invariant: softmax(log f / 1) = f (zeros included)."""
    np.testing.assert_allclose(tr.temper(f, 1.0), f, atol=1e-12)


@given(stochastic((4, 5)), st.sampled_from(["logit", "prob"]))
def test_low_temperature_converges_to_uniform_over_ties(f, mode):
    """Invariant: as tau -> 0 both modes converge to the argmax with ties split uniformly."""
    target = tr.argmax_policy(f)
    np.testing.assert_allclose(tr.temper(f, 1e-8, mode=mode), target, atol=1e-12)
    np.testing.assert_array_equal(tr.temper(f, 0.0, mode=mode), target)
    errors = [np.abs(tr.temper(f, t, mode=mode) - target).max() for t in (1e-1, 1e-2, 1e-3, 1e-4)]
    assert all(b <= a + 1e-15 for a, b in zip(errors, errors[1:])), errors


@given(real_rows(), st.sampled_from(["logit", "prob"]),
       st.sampled_from([1e-8, 1e-5, 0.01, 0.37, 1.0, 2.5, 100.0, 1e3]))
def test_tempered_rows_are_finite_and_normalised(f, mode, tau):
    """Invariant: every temperature in [1e-8, 1e3] gives finite rows that sum to one."""
    out = tr.temper(f, tau, mode=mode)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-12)
    if mode == "logit":
        assert (out[f == 0] == 0).all(), "exact zeros must stay zero in logit mode"


@given(real_rows(), st.sampled_from(["logit", "prob"]))
def test_temper_matches_definition(f, mode):
    """Invariant: logit mode is proportional to f**(1/tau); prob mode to exp(f/tau)."""
    for tau in (0.3, 1.7):
        want = f ** (1 / tau) if mode == "logit" else np.exp(f / tau)
        want = want / want.sum(axis=1, keepdims=True)
        np.testing.assert_allclose(tr.temper(f, tau, mode=mode), want, rtol=1e-9, atol=1e-15)


@given(real_rows(3, 4), st.lists(st.sampled_from([0.0, 1e-6, 0.05, 0.5, 1.0, 3.0]), min_size=1, max_size=5))
def test_array_of_temperatures_equals_one_at_a_time(f, taus):
    """Invariant: temper(f, [t1, t2, ...])[j] == temper(f, tj)."""
    stacked = tr.temper(f, np.array(taus))
    assert stacked.shape == (len(taus),) + f.shape
    for j, t in enumerate(taus):
        np.testing.assert_array_equal(stacked[j], tr.temper(f, t))


def test_three_action_example_temperatures_for_point_nine():
    """The paper's (0.05, 0.9, 0.05) at tau ~ 0.0346 (prob) and ~ 0.0995 (logit), found by root finding."""
    q = tr.mixture([[[0.6, 0.4, 0.0]], [[0.0, 0.4, 0.6]]])
    np.testing.assert_allclose(q, [[0.3, 0.4, 0.3]])
    for mode, expected in (("prob", 0.0346), ("logit", 0.0995)):
        tau = brentq(lambda t, m=mode: tr.temper(q, t, mode=m)[0, 1] - 0.9, 1e-3, 1.0)
        assert tau == pytest.approx(expected, abs=5e-5)
    # closed forms: 0.1 / ln 18 and ln(4/3) / ln 18
    assert tr.temper(q, 0.1 / math.log(18), mode="prob")[0, 1] == pytest.approx(0.9, abs=1e-12)
    assert tr.temper(q, math.log(4 / 3) / math.log(18))[0, 1] == pytest.approx(0.9, abs=1e-12)


def test_three_action_example_rewards():
    experts = np.array([[[0.6, 0.4, 0.0]], [[0.0, 0.4, 0.6]]])
    reward, test = np.array([[0.0, 1.0, 0.0]]), np.array([1.0])
    np.testing.assert_allclose(tr.expected_reward(experts, reward, test), [0.4, 0.4])
    assert tr.expected_reward(tr.mixture(experts), reward, test) == pytest.approx(0.4)
    assert tr.expected_reward(tr.argmax_policy(tr.mixture(experts)), reward, test) == pytest.approx(1.0)
    res = tr.check_transcendence(experts, reward, test)
    assert res.holds and res.margin == pytest.approx(0.6) and res.predictor_reward == pytest.approx(1.0)


def test_argmax_tolerance_absorbs_rounding_only():
    a = 0.1 + 0.2          # 0.30000000000000004
    f = np.array([[a, 0.3, 0.2, 0.2]])
    np.testing.assert_allclose(tr.argmax_policy(f), [[0.5, 0.5, 0.0, 0.0]])
    np.testing.assert_allclose(tr.argmax_policy(f, atol=0.0), [[1.0, 0.0, 0.0, 0.0]])
    np.testing.assert_allclose(tr.argmax_policy([[0.3, 0.3 + 1e-9, 0.4 - 1e-9]]), [[0, 0, 1.0]])


# ---------------------------------------------------------------- rewards
@given(instances(), st.floats(0, 1))
def test_expected_reward_is_linear(inst, a):
    """Invariant: R(a f + (1-a) g) = a R(f) + (1-a) R(g), and R(mixture) = mean_i R(f_i) (Prop. 1's identity)."""
    experts, reward, test, _, _ = inst
    f, g = experts[0], experts[-1]
    lhs = tr.expected_reward(a * f + (1 - a) * g, reward, test)
    rhs = a * tr.expected_reward(f, reward, test) + (1 - a) * tr.expected_reward(g, reward, test)
    assert lhs == pytest.approx(rhs, abs=1e-12)
    per_expert = tr.expected_reward(experts, reward, test)
    assert per_expert.shape == (experts.shape[0],)
    assert tr.expected_reward(tr.mixture(experts), reward, test) == pytest.approx(per_expert.mean(), abs=1e-12)


@given(instances(), st.sampled_from(["logit", "prob"]))
def test_tempered_reward_equals_reward_of_tempered_policy(inst, mode):
    """Invariant: the fused path gives the same numbers as temper followed by expected_reward."""
    experts, reward, test, _, _ = inst
    f_hat = tr.mixture(experts)
    taus = np.array([0.0, 1e-4, 0.1, 1.0, 10.0])
    want = tr.expected_reward(tr.temper(f_hat, taus, mode=mode), reward, test)
    np.testing.assert_allclose(tr.tempered_reward(f_hat, taus, reward, test, mode=mode), want, atol=1e-12)


@given(instances(), instances())
def test_favor_is_difference_of_per_input_rewards(inst, other):
    """Invariant: F(a, b; x) = r_x(a) - r_x(b); weighting by any test distribution gives R(a) - R(b)."""
    experts, reward, test, _, _ = inst
    a, b = experts[0], experts[-1]
    fav = tr.favor(a, b, reward)
    assert fav.shape == (reward.shape[0],)
    assert fav @ test == pytest.approx(tr.expected_reward(a, reward, test) - tr.expected_reward(b, reward, test), abs=1e-12)
    np.testing.assert_allclose(tr.favor(a, a, reward), 0.0)


def test_expected_reward_matches_monte_carlo():
    """R(f_hat) against the mean reward of 200k triples drawn by sample_dataset (within 5 standard errors)."""
    rng = np.random.default_rng(1)
    k, n_x, n_y = 3, 6, 4
    experts = rng.dirichlet(np.ones(n_y), size=(k, n_x))
    reward = rng.random((n_x, n_y))
    p = rng.dirichlet(np.ones(n_x))
    x, i, y = tr.sample_dataset(experts, p, 200_000, rng=rng)
    draws = reward[x, y]
    se = draws.std() / math.sqrt(draws.size)
    assert abs(draws.mean() - tr.expected_reward(tr.mixture(experts), reward, p)) < 5 * se
    assert np.bincount(i, minlength=k) / i.size == pytest.approx(np.full(k, 1 / k), abs=0.01)
