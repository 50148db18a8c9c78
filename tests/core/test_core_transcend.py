"""Tests of check_transcendence, critical_temperature, the expert constructors and sampling."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import transcendence as tr
from tests.strategies import instances, stochastic


def _margin(experts, reward, test, tau, mode):
    best = tr.expected_reward(experts, reward, test).max()
    return tr.tempered_reward(tr.mixture(experts), tau, reward, test, mode=mode) - best


@given(instances(), st.sampled_from([0.0, 0.05, 1.0]), st.sampled_from(["logit", "prob"]))
def test_check_transcendence_agrees_with_its_parts(inst, tau, mode):
    """Invariant: margin = R(f_hat_tau) - max_i R(f_i); holds iff margin > tol; best expert is an argmax."""
    experts, reward, test, _, _ = inst
    res = tr.check_transcendence(experts, reward, test, temperature=tau, mode=mode)
    rewards = tr.expected_reward(experts, reward, test)
    pred = tr.expected_reward(tr.temper(tr.mixture(experts), tau, mode=mode), reward, test)
    assert res.margin == pytest.approx(pred - rewards.max(), abs=1e-12)
    assert res.holds == (res.margin > res.tol)
    assert rewards[res.best_expert] == rewards.max()
    assert res.per_input_favor @ test == pytest.approx(res.margin, abs=1e-12)


@settings(max_examples=60)
@given(instances(max_k=4, max_x=6, max_y=5), st.sampled_from(["logit", "prob"]))
def test_critical_temperature_agrees_with_dense_grid(inst, mode):
    """Invariant: tau* is None when the argmax loses and a number when it wins; every grid temperature
    below tau* transcends (ties: from where the margin first turns positive), and the first grid
    temperature above that which does not is at or above tau*."""
    experts, reward, test, _, _ = inst
    tau_star = tr.critical_temperature(experts, reward, test, mode=mode)
    tol = tr.MARGIN_TOL * np.abs(reward).max()
    m0 = _margin(experts, reward, test, 0.0, mode)
    if m0 > tol:
        assert tau_star is not None
    elif m0 < -tol:
        assert tau_star is None
    if tau_star is None:
        return
    grid = np.logspace(-6, 3, 3000)
    m = _margin(experts, reward, test, grid, mode)
    start = 0 if m0 > tol else int(np.argmax(m > tol))
    grid, m = grid[start:], m[start:]
    assert (m[grid < tau_star * (1 - 1e-7)] > 0).all()
    fails = grid[m <= tol]
    if math.isinf(tau_star):
        assert fails.size == 0
    else:
        assert fails.size == 0 or fails[0] >= tau_star * (1 - 1e-7)
        assert abs(_margin(experts, reward, test, tau_star, mode)) < 1e-9


def test_critical_temperature_when_argmax_only_ties_the_best_expert():
    """The argmax ties (0.6 = 0.6) but every tau in (0, 1) transcends (theory's argmax-ties-best-expert)."""
    experts, reward = [[[1, 0, 0]], [[0, 0.6, 0.4]]], [[0.6, 1, 0]]
    assert not tr.check_transcendence(experts, reward, [1.0])
    assert tr.check_transcendence(experts, reward, [1.0], temperature=0.5)
    assert tr.critical_temperature(experts, reward, [1.0]) == pytest.approx(1.0, rel=1e-8)


def test_margin_tolerance_scales_with_rewards():
    """Prop. 1 at tau = 1 with large rewards: rounding must not be reported as transcendence."""
    res = tr.check_transcendence([[[.3, .2, .5]], [[.2, .3, .5]]], [[123456.7, 123456.7, 0]], [1.0], temperature=1)
    assert not res.holds


def test_critical_temperature_three_action_closed_forms():
    experts = [[[0.6, 0.4, 0.0]], [[0.0, 0.4, 0.6]]]
    # logit: 0.4 = 1 / (1 + 2 * 0.75 ** (1/t)) holds at t = 1; prob: at t = 0.1 / ln(4/3)
    assert tr.critical_temperature(experts, [[0, 1, 0]], [1.0]) == pytest.approx(1.0, rel=1e-8)
    assert tr.critical_temperature(experts, [[0, 1, 0]], [1.0], mode="prob") == pytest.approx(
        0.1 / math.log(4 / 3), rel=1e-8)


def test_critical_temperature_none_when_errors_agree():
    """A shared wrong majority: both experts put most mass on the same wrong action."""
    experts = [[[0.6, 0.4, 0.0]], [[0.5, 0.5, 0.0]]]
    assert tr.critical_temperature(experts, [[0, 1, 0]], [1.0]) is None
    assert not tr.check_transcendence(experts, [[0, 1, 0]], [1.0])


def test_critical_temperature_inf_when_no_crossing_up_to_tau_max():
    """The three-action example crosses at tau = 1 (logit); scanning only up to 0.5 finds no crossing."""
    experts = [[[0.6, 0.4, 0.0]], [[0.0, 0.4, 0.6]]]
    assert tr.critical_temperature(experts, [[0, 1, 0]], [1.0], tau_max=0.5) == math.inf


def test_critical_temperature_resolves_near_ties_below_tau_min():
    eps = 1e-9
    experts = np.array([[[0.5 + eps, 0.5 - eps]], [[0.5 + eps, 0.5 - eps]]])
    # argmax picks action 0 (reward 1) and beats the experts (0.5 + eps); convergence needs tau << eps.
    tau = tr.critical_temperature(experts, [[1, 0]], [1.0], tau_min=1e-3)
    assert tau is not None and 0 < tau
    assert _margin(experts, np.array([[1.0, 0.0]]), np.array([1.0]), tau / 2, "logit") > 0


# ---------------------------------------------------------------- expert constructors
@given(stochastic((5, 4)).map(lambda a: a * 3), st.floats(0, 1))
def test_noisy_expert_closed_form_prop3(reward, rho):
    """Invariant (Prop. 3): r_x(f_rho) = rho * mean_y r + (1 - rho) * max_y r, and argmax f_rho = f* for rho < 1."""
    f = tr.noisy_expert(reward, rho)
    np.testing.assert_allclose(f.sum(axis=1), 1.0)
    want = rho * reward.mean(axis=1) + (1 - rho) * reward.max(axis=1)
    np.testing.assert_allclose(np.einsum("xy,xy->x", f, reward), want, atol=1e-12)
    if rho < 1:
        np.testing.assert_allclose(tr.argmax_policy(f, atol=1e-12 if rho < 1 - 1e-9 else 0), tr.optimal_policy(reward))


def test_noisy_expert_many_rates_and_independent_noise():
    reward = np.array([[0.0, 1.0, 0.5], [1.0, 0.0, 0.0]])
    noise = np.array([[[1.0, 0, 0], [0, 0, 1.0]], [[0, 0, 1.0], [0, 1.0, 0]]])
    f = tr.noisy_expert(reward, [0.2, 0.6], noise=noise)
    assert f.shape == (2, 2, 3)
    np.testing.assert_allclose(f[1, 0], [0.0, 0.4, 0.6])   # 0.6 * noise + 0.4 * f*
    per_input = tr.noisy_expert(reward, [[0.2, 1.0], [0.6, 0.0]], noise=noise)
    np.testing.assert_allclose(per_input[0, 1], noise[0, 1])          # rate 1 on input 1: pure noise
    np.testing.assert_allclose(per_input[1], [[0.0, 0.4, 0.6], [1.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match="rho"):
        tr.noisy_expert(reward, 1.5)
    with pytest.raises(ValueError, match="rho"):
        tr.noisy_expert(reward, [[0.1, 0.2, 0.3]])
    with pytest.raises(ValueError, match="noise"):
        tr.noisy_expert(reward, 0.2, noise=noise)


@given(st.integers(2, 5), st.integers(2, 12), st.integers(2, 5), st.data())
def test_partition_experts_prop4(k, n_x, n_y, data):
    """Invariant (Prop. 4): the argmax of the mixture is f* everywhere, and each expert is f* exactly on its part."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    reward = rng.integers(0, 3, size=(n_x, n_y)).astype(float)
    parts = rng.integers(0, k, size=n_x)
    experts = tr.partition_experts(reward, parts, n_experts=k)
    f_star = tr.optimal_policy(reward)
    for i in range(k):
        on = parts == i
        np.testing.assert_allclose(experts[i][on], f_star[on])
        np.testing.assert_allclose(experts[i][~on], 1.0 / n_y)
    np.testing.assert_allclose(tr.argmax_policy(tr.mixture(experts)), f_star)


# ---------------------------------------------------------------- sampling
def test_sample_dataset_per_expert_inputs_matches_joint():
    """Frequencies of (x, y) match sum_i w_i p_i(x) f_i(y|x) (chi-square style bound, 400k draws)."""
    rng = np.random.default_rng(7)
    k, n_x, n_y = 3, 4, 3
    experts = rng.dirichlet(np.ones(n_y), size=(k, n_x))
    p = rng.dirichlet(np.ones(n_x), size=k)
    w = np.array([1.0, 2.0, 5.0])
    x, i, y = tr.sample_dataset(experts, p, 400_000, rng=rng, weights=w)
    joint = np.einsum("k,kx,kxy->xy", w / w.sum(), p, experts)
    freq = np.bincount(x * n_y + y, minlength=n_x * n_y).reshape(n_x, n_y) / x.size
    se = np.sqrt(joint * (1 - joint) / x.size)
    assert (np.abs(freq - joint) < 5 * se + 1e-12).all()
    np.testing.assert_allclose(tr.empirical_policy(x, y, n_x, n_y), tr.mixture(experts, p, w), atol=0.01)


def test_sample_dataset_same_seed_same_numbers():
    experts = np.full((2, 3, 4), 0.25)
    a = tr.sample_dataset(experts, np.full(3, 1 / 3), 1000, rng=np.random.default_rng(3))
    b = tr.sample_dataset(experts, np.full(3, 1 / 3), 1000, rng=np.random.default_rng(3))
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    with pytest.raises(ValueError, match="rng"):
        tr.sample_dataset(experts, np.full(3, 1 / 3), 10, rng=3)


def test_empirical_policy_counts_smoothing_and_unseen_inputs():
    x = np.array([0, 0, 0, 1])
    y = np.array([0, 0, 1, 2])
    np.testing.assert_allclose(tr.empirical_policy(x, y, 3, 3), [[2 / 3, 1 / 3, 0], [0, 0, 1], [1 / 3] * 3])
    np.testing.assert_allclose(tr.empirical_policy(x, y, 3, 3, smoothing=1.0)[0], [3 / 6, 2 / 6, 1 / 6])
    with pytest.raises(ValueError, match="y"):
        tr.empirical_policy(x, np.array([0, 0, 1, 3]), 3, 3)


# ---------------------------------------------------------------- validation
GOOD_E = np.array([[[0.6, 0.4, 0.0]], [[0.0, 0.4, 0.6]]])
GOOD_R = np.array([[0.0, 1.0, 0.0]])
GOOD_P = np.array([1.0])


@pytest.mark.parametrize("call, arg", [
    (lambda: tr.mixture(GOOD_E[0]), "experts"),                                   # wrong ndim
    (lambda: tr.mixture(GOOD_E, input_dists=np.ones((3, 1))), "input_dists"),    # shape disagrees
    (lambda: tr.mixture(GOOD_E, weights=[1.0]), "weights"),
    (lambda: tr.mixture(GOOD_E, weights=[1.0, -1.0]), "weights"),
    (lambda: tr.mixture(np.where(GOOD_E == 0, np.nan, GOOD_E)), "experts"),     # NaN
    (lambda: tr.mixture(np.where(GOOD_E == 0, np.inf, GOOD_E)), "experts"),     # infinite
    (lambda: tr.mixture(GOOD_E * [[[1.2, 1.0, -0.2]]]), "experts"),             # negative
    (lambda: tr.mixture(GOOD_E * 0.9), "experts"),                              # rows do not sum to one
    (lambda: tr.temper(GOOD_E[0], -0.1), "temperature"),
    (lambda: tr.temper(GOOD_E[0], np.nan), "temperature"),
    (lambda: tr.temper(GOOD_E[0], 1.0, mode="softmax"), "mode"),
    (lambda: tr.temper(GOOD_E[0] * 2, 1.0), "policy"),
    (lambda: tr.expected_reward(GOOD_E[0], np.ones((2, 3)), GOOD_P), "test_dist"),
    (lambda: tr.expected_reward(GOOD_E[0], np.ones((1, 4)), GOOD_P), "policy"),
    (lambda: tr.expected_reward(GOOD_E[0], [[np.inf, 0, 0]], GOOD_P), "reward"),
    (lambda: tr.expected_reward(GOOD_E[0], GOOD_R, [0.5]), "test_dist"),
    (lambda: tr.favor(GOOD_E[0], np.ones((1, 4)) / 4, GOOD_R), "policy_b"),
    (lambda: tr.check_transcendence(GOOD_E, GOOD_R, GOOD_P, temperature=-1), "temperature"),
    (lambda: tr.critical_temperature(GOOD_E, GOOD_R, GOOD_P, mode="x"), "mode"),
    (lambda: tr.partition_experts(GOOD_R, [0.5]), "parts"),
    (lambda: tr.sample_dataset(GOOD_E, [0.5], 3, rng=np.random.default_rng()), "input_dists"),
])
def test_bad_input_raises_value_error_naming_the_argument(call, arg):
    with pytest.raises(ValueError, match=arg):
        call()


def test_nothing_is_renormalised_silently():
    almost = np.array([[0.5, 0.5 + 1e-7]])       # within ROW_ATOL: accepted as is
    assert tr.temper(almost, 1.0).shape == (1, 2)
    with pytest.raises(ValueError, match="sum to 1"):
        tr.temper(np.array([[0.5, 0.5 + 1e-4]]), 1.0)


def test_core_imports_neither_torch_nor_other_packages():
    import subprocess
    import sys
    code = ("import sys, transcendence, transcendence.cli, transcendence.config; "
            "bad = [m for m in ('torch', 'chess', 'matplotlib', 'theory', 'sims', 'chess_exp') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
