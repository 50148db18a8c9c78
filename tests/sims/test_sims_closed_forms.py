"""Sweep numbers checked against closed forms (Props. 1, 3, 4, the Taxonomy paper's Thm 2.1) and Monte Carlo."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from sims import correlated_errors, finite_sample, linear_toy, noisy_experts, partition_experts, skill_selection
from sims._runner import make_tasks


def _rows(module, cfg, **point):
    """Rows of the first replicate at one grid point, and that replicate's seed."""
    tasks = [t for t in make_tasks(module.grid(cfg), cfg.n_seeds, cfg.seed)
             if all(t[0][k] == v for k, v in point.items())]
    return module.run_point(cfg, tasks[0]), tasks[0][2]


@pytest.mark.parametrize("rho", [0.1, 0.5, 0.9])
def test_noisy_experts_k1_matches_prop3(rho):
    """k = 1, uniform noise: R(f_rho) = rho * mean_x rbar(x) + (1 - rho) * mean_x max_y r(x, y),
    the argmax is f* (margin rho * mean_x (max - mean)), and tau* = 1 in logit mode (f_rho^(1/tau)
    beats f_rho exactly when tau < 1)."""
    cfg = dataclasses.replace(noisy_experts.PRESETS["quick"], ks=(1,), noises=(rho,), n_outputs=(4,),
                              noise_spread=0.0, concentration=math.inf, n_inputs=50, n_seeds=1,
                              temperatures=(0.0, 0.5, 1.0, 2.0))
    rows, seed = _rows(noisy_experts, cfg)
    reward, experts, _ = noisy_experts.make_instance(cfg, 1, rho, 4, rng=np.random.default_rng(seed))
    mean_r, max_r = reward.mean(axis=1).mean(), reward.max(axis=1).mean()
    by_t = {r["temperature"]: r for r in rows}
    assert by_t[0.0]["best_expert_reward"] == pytest.approx(rho * mean_r + (1 - rho) * max_r, abs=1e-12)
    assert by_t[0.0]["predictor_reward"] == pytest.approx(max_r, abs=1e-12)
    assert by_t[0.0]["argmax_margin"] == pytest.approx(rho * (max_r - mean_r), abs=1e-12)
    assert by_t[1.0]["margin"] == pytest.approx(0.0, abs=1e-12)          # f_hat_1 = f_rho
    assert by_t[0.5]["margin"] > 0 > by_t[2.0]["margin"]
    assert by_t[0.0]["critical_temperature"] == pytest.approx(1.0, rel=1e-6)


def test_noisy_experts_mixture_at_tau_one_never_transcends():
    """Prop. 1: at tau = 1 the mixture's reward is the experts' mean, so the margin is <= 0."""
    cfg = dataclasses.replace(noisy_experts.PRESETS["quick"], ks=(5,), noises=(0.6,), n_outputs=(3,),
                              n_inputs=40, n_seeds=1, temperatures=(1.0,))
    rows, _ = _rows(noisy_experts, cfg)
    assert rows[0]["margin"] <= 1e-12
    assert rows[0]["predictor_reward"] <= rows[0]["best_expert_reward"] + 1e-12


def _maj3(q):
    return q ** 3 + 3 * q ** 2 * (1 - q)


@pytest.mark.parametrize("c", [0.0, 0.5, 0.9])
def test_correlated_errors_vote_matches_closed_form(c):
    """Binary outputs, k = 3: given the shared answer, each expert is right with probability
    a1 = c + (1 - c) a (shared right) or a0 = (1 - c) a (shared wrong), independently, so the
    majority vote is right with probability a maj3(a1) + (1 - a) maj3(a0), maj3(q) = q^3 + 3q^2(1-q).
    Monte Carlo over 20,000 inputs, tolerance 5 standard errors."""
    rho, n_x = 0.3, 20_000
    cfg = dataclasses.replace(correlated_errors.PRESETS["quick"], ks=(3,), error_rates=(rho,),
                              correlations=(c,), n_outputs=2, n_inputs=n_x, n_seeds=1,
                              temperatures=(0.0,))
    row = _rows(correlated_errors, cfg)[0][0]
    a = 1 - rho
    expected = a * _maj3(c + (1 - c) * a) + (1 - a) * _maj3((1 - c) * a)
    se = math.sqrt(expected * (1 - expected) / n_x)
    assert row["predictor_reward"] == pytest.approx(expected, abs=5 * se)
    assert row["mean_expert_reward"] == pytest.approx(a, abs=5 * math.sqrt(a * (1 - a) / (3 * n_x)))
    if c == 0.0:
        assert abs(row["error_correlation"]) < 0.05
    else:  # correctness indicators correlate with c^2 (for c < 1)
        assert row["error_correlation"] == pytest.approx(c ** 2, abs=0.05)


def test_correlated_errors_identical_experts_at_c_one():
    """c = 1: every expert copies the shared answer, so f_hat = f_i and every margin is 0."""
    cfg = dataclasses.replace(correlated_errors.PRESETS["quick"], ks=(5,), error_rates=(0.4,),
                              correlations=(1.0,), n_inputs=200, n_seeds=1)
    rows = _rows(correlated_errors, cfg)[0]
    assert all(abs(r["margin"]) < 1e-12 for r in rows)
    assert rows[0]["argmax_transcends"] is False and math.isnan(rows[0]["critical_temperature"])


@pytest.mark.parametrize("k,coverage", [(2, 0.0), (2, 0.3), (3, 1.0), (5, 0.6)])
def test_partition_experts_margin_matches_prop4(k, coverage):
    """Prop. 4: f_hat_max = f*, and R(f*) - R(f_i) = sum_{x not in X_i} p(x) (max_y r - mean_y r),
    so the argmax margin is the minimum of that over i; 0 when all test mass is on one part."""
    cfg = dataclasses.replace(partition_experts.PRESETS["quick"], ks=(k,), coverages=(coverage,),
                              n_inputs=60, n_seeds=1, temperatures=(0.0,))
    rows, seed = _rows(partition_experts, cfg)
    reward, parts, test, _ = partition_experts.make_instance(k, coverage, 60, cfg.n_outputs,
                                                             rng=np.random.default_rng(seed))
    gap = reward.max(axis=1) - reward.mean(axis=1)
    expected = min(np.sum((test * gap)[parts != i]) for i in range(k))
    assert rows[0]["argmax_margin"] == pytest.approx(expected, abs=1e-12)
    assert rows[0]["predictor_reward"] == pytest.approx(np.sum(test * reward.max(axis=1)), abs=1e-12)
    assert rows[0]["argmax_transcends"] == (coverage > 0)
    assert test.sum() == pytest.approx(1.0)
    assert partition_experts.part_masses(k, coverage).sum() == pytest.approx(1.0)


def test_finite_sample_converges_to_the_mixture_and_smoothing_keeps_the_argmax():
    """With many samples per input the empirical argmax equals the mixture's argmax (margin ->
    ideal margin); additive smoothing never changes the argmax, so tau = 0 margins coincide."""
    cfg = dataclasses.replace(finite_sample.PRESETS["quick"], n_inputs=10, samples_per_input=(0.5, 3000.0),
                              smoothings=(0.0, 1.0), temperatures=(0.0, 1.0), n_seeds=1)
    rows = _rows(finite_sample, cfg, samples_per_input=3000.0)[0]
    at0 = [r for r in rows if r["temperature"] == 0.0]
    assert at0[0]["margin"] == at0[1]["margin"]
    assert at0[0]["margin"] == pytest.approx(at0[0]["ideal_margin"], abs=1e-12)
    at1 = [r for r in rows if r["temperature"] == 1.0 and r["smoothing"] == 0.0]
    assert at1[0]["margin"] == pytest.approx(at1[0]["ideal_margin"], abs=0.02)
    few = _rows(finite_sample, cfg, samples_per_input=0.5)[0]
    assert few[0]["n_samples"] == 5 and few[0]["fraction_inputs_seen"] <= 0.5


@pytest.mark.parametrize("selection", [-2.0, 0.0, 1.5])
def test_skill_selection_tau_one_margin_matches_closed_form(selection):
    """k = 2, uniform noise, equal regions: on region i, g(i|x) = s = e^lam / (1 + e^lam), so the
    mixture is noisy with rate s rho_g + (1 - s) rho_b there and
    margin(tau=1) = min_i sum_x p(x) rho_i(x) gap(x) - sum_x p(x) rho_mix(x) gap(x).
    the Taxonomy paper's Thm 2.1: a positive margin needs a positive covariance condition; Prop. 1 at lam = 0."""
    cfg = dataclasses.replace(skill_selection.PRESETS["quick"], ks=(2,), selections=(selection,),
                              concentration=math.inf, n_inputs=40, n_seeds=1, temperatures=(1.0,))
    rows, seed = _rows(skill_selection, cfg)
    reward, _, dists, regions = skill_selection.make_instance(cfg, 2, selection,
                                                              rng=np.random.default_rng(seed))
    p = np.full(40, 1 / 40)
    gap = reward.max(axis=1) - reward.mean(axis=1)
    rho = np.where(regions[None, :] == np.arange(2)[:, None], cfg.good_noise, cfg.bad_noise)
    s = math.exp(selection) / (1 + math.exp(selection))
    rho_mix = s * cfg.good_noise + (1 - s) * cfg.bad_noise
    expected = min(np.sum(p * rho[i] * gap) for i in range(2)) - np.sum(p * rho_mix * gap)
    assert rows[0]["margin"] == pytest.approx(expected, abs=1e-12)
    g = skill_selection.expert_posterior(dists)
    assert g[regions == 0, 0] == pytest.approx(np.full((regions == 0).sum(), s))
    if selection == 0.0:
        assert rows[0]["margin"] <= 1e-12 and rows[0]["tax_condition"] == pytest.approx(0.0, abs=1e-12)
    if rows[0]["margin"] > 0:
        assert rows[0]["tax_condition"] > 0


def test_softmax_regression_recovers_a_softmax_model():
    """Labels drawn from softmax(W x): the cross-entropy fit recovers W (consistency of the MLE)."""
    rng = np.random.default_rng(0)
    w_true = rng.standard_normal((3, 4))
    x = rng.standard_normal((40_000, 4))
    z = x @ w_true.T
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    y = (rng.random(40_000)[:, None] > p.cumsum(axis=1)).sum(axis=1)
    w, b, info = linear_toy.fit_softmax_regression(x, y, 3)
    assert info["converged"] and np.all(b == 0)
    # Softmax is invariant to adding a vector to every class row: compare centred weights.
    centred = lambda a: a - a.mean(axis=0)  # noqa: E731
    assert np.abs(centred(w) - centred(w_true)).max() < 0.1


def test_linear_toy_noiseless_experts_and_the_papers_best_expert():
    """sigma = 0: every expert is W*, accuracy 1. sigma = 0.2 at the paper's sizes: the best
    expert's accuracy is near the paper's reading of about 0.83 (its Fig. 7)."""
    cfg = dataclasses.replace(linear_toy.PRESETS["quick"], sigmas=(0.0,), n_features=10, n_classes=3,
                              n_train=2000, n_test=2000, n_seeds=1, temperatures=(0.0, 1.0, 1e6))
    rows = _rows(linear_toy, cfg)[0]
    assert rows[0]["best_expert_accuracy"] == pytest.approx(1.0) and rows[0]["vote_accuracy"] == pytest.approx(1.0)
    assert rows[0]["model_accuracy"] > 0.95
    # The paper's softmax(f / tau) on probabilities is uniform for large tau. (Logit mode need not
    # be: noiseless labels are separable, so the fitted logits grow without bound.)
    assert rows[2]["model_accuracy_prob"] == pytest.approx(1 / 3, abs=1e-4)
    cfg = dataclasses.replace(linear_toy.PRESETS["quick"], sigmas=(0.2,), n_test=5000, n_seeds=1,
                              temperatures=(0.0,))
    row = _rows(linear_toy, cfg)[0][0]
    assert 0.78 < row["best_expert_accuracy"] < 0.88
    assert row["best_expert_accuracy"] < row["vote_accuracy"]
