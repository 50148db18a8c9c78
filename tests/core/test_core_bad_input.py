"""The core refuses bad arguments with a ValueError naming them, and its answers do not depend on
the reward's units.

Property tests: every tolerance of every public function refuses NaN, infinities, negatives and
non-numbers; corrupted arrays (NaN, infinite, negative, complex, rows not summing to one, wrong
shape) are refused naming the argument; and multiplying the reward by any c in 1e-12 .. 1e12
changes no verdict of ``check_transcendence`` and no ``critical_temperature``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import transcendence as tr
from tests.strategies import instances

E = np.array([[[0.6, 0.4, 0.0]], [[0.0, 0.4, 0.6]]])
R = np.array([[0.0, 1.0, 0.0]])
P = np.array([1.0])
Q = np.array([[0.3, 0.4, 0.3]])

# ---------------------------------------------------------------- tolerances
#: (function name, tolerance argument, call with that argument set to a value)
TOLERANCE_CALLS = [
    ("check_transcendence", "tol", lambda v: tr.check_transcendence(E, R, P, tol=v)),
    ("check_transcendence", "atol", lambda v: tr.check_transcendence(E, R, P, atol=v)),
    ("critical_temperature", "tol", lambda v: tr.critical_temperature(E, R, P, tol=v)),
    ("critical_temperature", "atol", lambda v: tr.critical_temperature(E, R, P, atol=v)),
    ("critical_temperature", "xtol", lambda v: tr.critical_temperature(E, R, P, xtol=v)),
    ("critical_temperature", "rtol", lambda v: tr.critical_temperature(E, R, P, rtol=v)),
    ("critical_temperature", "tau_min", lambda v: tr.critical_temperature(E, R, P, tau_min=v)),
    ("critical_temperature", "tau_max", lambda v: tr.critical_temperature(E, R, P, tau_max=v)),
    ("temper", "atol", lambda v: tr.temper(Q, 0.0, atol=v)),
    ("tempered_reward", "atol", lambda v: tr.tempered_reward(Q, 0.0, R, P, atol=v)),
    ("argmax_policy", "atol", lambda v: tr.argmax_policy(Q, atol=v)),
    ("optimal_policy", "atol", lambda v: tr.optimal_policy(R, atol=v)),
    ("noisy_expert", "atol", lambda v: tr.noisy_expert(R, 0.5, atol=v)),
    ("partition_experts", "atol", lambda v: tr.partition_experts(R, [0], atol=v)),
    ("empirical_policy", "smoothing", lambda v: tr.empirical_policy([0], [1], 1, 3, smoothing=v)),
]

BAD_TOLERANCES = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, -1.0, -1e-300]),
    st.floats(max_value=-5e-324, allow_nan=False, allow_infinity=False),
    st.sampled_from(["1e-9", None, 1e-9j, [1e-9], True, np.array([1e-9, 1e-9])]),
)


@given(st.sampled_from(TOLERANCE_CALLS), BAD_TOLERANCES)
def test_every_tolerance_refuses_bad_values_naming_itself(call, bad):
    """Invariant: a NaN, infinite, negative or non-numeric tolerance is a ValueError that starts with
    the argument's name (never a verdict, a None, or an error blaming another argument)."""
    _, arg, f = call
    with pytest.raises(ValueError, match=rf"^{arg}: "):
        f(bad)


@pytest.mark.parametrize("call, arg", [
    (lambda: tr.critical_temperature(E, R, P, xtol=0.0), "xtol"),
    (lambda: tr.critical_temperature(E, R, P, rtol=1e-17), "rtol"),
    (lambda: tr.critical_temperature(E, R, P, tau_min=1.0, tau_max=0.5), "tau_min, tau_max"),
    (lambda: tr.critical_temperature(E, R, P, points_per_decade=0), "points_per_decade"),
    (lambda: tr.critical_temperature(E, R, P, points_per_decade=2.5), "points_per_decade"),
    (lambda: tr.critical_temperature(E, R, P, points_per_decade="8"), "points_per_decade"),
    (lambda: tr.partition_experts(R, [0], n_experts="two"), "n_experts"),
    (lambda: tr.sample_dataset(E, [1.0], math.nan, rng=np.random.default_rng(0)), "n"),
    (lambda: tr.empirical_policy([0], [1], 0, 3), "n_x"),
    (lambda: tr.empirical_policy([0], [1], 1, "3"), "n_y"),
])
def test_other_numeric_arguments_are_checked(call, arg):
    with pytest.raises(ValueError, match=rf"^{arg}: "):
        call()


def test_good_tolerances_still_work():
    """Zero is a valid tolerance (exact ties, exact margins), and so are integers."""
    assert tr.check_transcendence(E, R, P, tol=0, atol=0).holds
    assert tr.critical_temperature(E, R, P, tol=0.0, atol=0) == pytest.approx(1.0, rel=1e-8)
    assert tr.empirical_policy([0], [1], 1, 3, smoothing=0).tolist() == [[0.0, 1.0, 0.0]]


# ---------------------------------------------------------------- arrays
def test_complex_input_is_refused_not_truncated():
    with pytest.raises(ValueError, match="^experts: complex"):
        tr.mixture(E + 0j)
    with pytest.raises(ValueError, match="^reward: complex"):
        tr.check_transcendence(E, R + 1j, P)
    with pytest.raises(ValueError, match="^temperature: complex"):
        tr.temper(Q, 0.5 + 0.1j)
    with pytest.raises(ValueError, match="^test_dist: complex"):
        tr.expected_reward(Q, R, P.astype(complex))


def test_experts_that_disagree_with_the_reward_are_named():
    """Rows that sum to one but have an extra output: the error names experts, not an inner 'policy'."""
    for f in (tr.check_transcendence, tr.critical_temperature):
        with pytest.raises(ValueError, match=r"^experts: shape \(1, 1, 3\) does not agree with reward"):
            f([[[0.0, 1.0, 0.0]]], [[0.0, 1.0]], [1.0])


def test_empirical_policy_with_no_samples_is_an_error():
    for x, y in (([], []), (np.array([], dtype=np.int64), np.array([], dtype=np.int64))):
        with pytest.raises(ValueError, match="^x, y: no samples"):
            tr.empirical_policy(x, y, 2, 3)


@given(st.floats(-300, 308.25), st.booleans())
def test_weights_of_any_magnitude_give_the_same_mixture(log_scale, per_expert_inputs):
    """Invariant: only weight ratios matter, even near the float limit (weights whose sum exceeds
    1.8e308 used to overflow it and give all-zero rows)."""
    w = np.array([0.9, 1.0]) * 10.0 ** log_scale
    dists = np.array([[0.5, 0.5], [0.25, 0.75]]) if per_expert_inputs else None
    experts = np.array([[[1.0, 0.0], [0.5, 0.5]], [[0.0, 1.0], [0.2, 0.8]]])
    want = tr.mixture(experts, dists, [0.9, 1.0])
    np.testing.assert_allclose(tr.mixture(experts, dists, w), want, rtol=1e-12)
    if per_expert_inputs:
        x, i, _ = tr.sample_dataset(experts, dists, 50, rng=np.random.default_rng(0), weights=w)
        assert x.shape == (50,) and set(i.tolist()) <= {0, 1}


def test_weights_near_the_float_limit():
    np.testing.assert_allclose(tr.mixture(E, weights=[1e308, 1e308]), tr.mixture(E))
    np.testing.assert_allclose(tr.mixture(E, [[1.0], [1.0]], weights=[1.7e308, 1.7e308]), tr.mixture(E))
    np.testing.assert_allclose(tr.mixture(E, weights=[5e-324, 0.0]), E[0])


CORRUPTIONS = ("nan", "inf", "negative", "complex", "row_sum", "shape")
#: which corruptions each argument must refuse (a reward may be negative and need not sum to one)
REFUSES = {
    "experts": CORRUPTIONS,
    "test_dist": CORRUPTIONS,
    "reward": ("nan", "inf", "complex", "shape"),
    "input_dists": CORRUPTIONS,
    "weights": ("nan", "inf", "negative", "complex", "shape"),
}


def _corrupt(arr: np.ndarray, how: str, rng: np.random.Generator) -> np.ndarray:
    arr = np.array(arr, dtype=float)
    idx = tuple(int(rng.integers(0, s)) for s in arr.shape)
    if how == "nan":
        arr[idx] = np.nan
    elif how == "inf":
        arr[idx] = np.inf
    elif how == "negative":
        arr[idx] = -0.5
    elif how == "complex":
        return arr + 1e-3j
    elif how == "row_sum":
        arr[idx] += 0.25
    elif how == "shape":              # an extra zero entry: rows still sum to one, only the shape is wrong
        return np.concatenate([arr, np.zeros_like(arr[..., :1])], axis=-1)
    return arr


@settings(max_examples=150)
@given(instances(max_k=3, max_x=4, max_y=4, per_expert_inputs=True),
       st.sampled_from([(a, c) for a, cs in REFUSES.items() for c in cs]), st.integers(0, 2**32 - 1))
def test_corrupted_arrays_are_refused_naming_the_argument(inst, case, seed):
    """Invariant: a corrupted argument of check_transcendence / critical_temperature is a ValueError
    whose message names that argument."""
    experts, reward, test, dists, weights = inst
    arg, how = case
    args = {"experts": experts, "reward": reward, "test_dist": test, "input_dists": dists, "weights": weights}
    args[arg] = _corrupt(args[arg], how, np.random.default_rng(seed))
    e, r, p = args.pop("experts"), args.pop("reward"), args.pop("test_dist")
    with pytest.raises(ValueError, match=arg):
        tr.check_transcendence(e, r, p, **args)
    with pytest.raises(ValueError, match=arg):
        tr.critical_temperature(e, r, p, **args)


# ---------------------------------------------------------------- the reward's units
@pytest.mark.parametrize("scale", [1e-12, 1e-9, 1.0, 1e9, 1e12])
def test_three_action_example_at_any_reward_scale(scale):
    """Worked by hand: tau* = 1 (0.4 = 1 / (1 + 2 * 0.75^(1/tau)) at tau = 1), margin 0.6 * scale.
    At scale 1e-12 the old absolute tolerance answered None / holds=False."""
    res = tr.check_transcendence(E, R * scale, P)
    assert res.holds and res.margin == pytest.approx(0.6 * scale, rel=1e-12)
    assert tr.critical_temperature(E, R * scale, P) == pytest.approx(1.0, rel=1e-8)
    assert tr.critical_temperature(E, R * scale, P, mode="prob") == pytest.approx(0.1 / math.log(4 / 3), rel=1e-8)


def test_optimal_policy_ties_do_not_depend_on_units():
    """Two rewards 1e-13 apart are distinct at any scale (they used to tie below scale 1)."""
    reward = np.array([[0.0, 1.0, 1.0 - 1e-6]])
    for scale in (1e-12, 1.0, 1e12):
        np.testing.assert_array_equal(tr.optimal_policy(reward * scale), [[0.0, 1.0, 0.0]])
        np.testing.assert_array_equal(tr.optimal_policy(np.array([[0.0, 1.0, 1.0]]) * scale), [[0.0, 0.5, 0.5]])


def _same_tau(a: float | None, b: float | None) -> bool:
    if a is None or b is None or math.isinf(a) or math.isinf(b):
        return a == b
    return math.isclose(a, b, rel_tol=1e-7)


@settings(max_examples=200)
@given(instances(max_k=4, max_x=5, max_y=4), st.floats(-12, 12), st.sampled_from(["logit", "prob"]),
       st.booleans())
def test_rescaling_the_reward_changes_no_verdict_and_no_critical_temperature(inst, log_c, mode, shift):
    """Invariant: for every c in 1e-12 .. 1e12, reward -> c * reward changes neither
    check_transcendence's verdict (at tau = 0, 0.05, 0.3, 1) nor critical_temperature, and scales
    every margin by c."""
    experts, reward, test, _, _ = inst
    if shift:                      # rewards of both signs, not only 0..3
        reward = reward - 1.5
    c = 10.0 ** log_c
    for tau in (0.0, 0.05, 0.3, 1.0):
        a = tr.check_transcendence(experts, reward, test, temperature=tau, mode=mode)
        b = tr.check_transcendence(experts, reward * c, test, temperature=tau, mode=mode)
        assert a.holds == b.holds, (tau, a, b)
        assert b.margin == pytest.approx(a.margin * c, rel=1e-9, abs=1e-12 * c * np.abs(reward).max())
    t1 = tr.critical_temperature(experts, reward, test, mode=mode)
    tc = tr.critical_temperature(experts, reward * c, test, mode=mode)
    assert _same_tau(t1, tc), (t1, tc)
