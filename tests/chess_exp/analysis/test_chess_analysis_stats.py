"""The bootstrap wrappers over scipy.stats.bootstrap: same intervals as a plain percentile bootstrap, the
cluster bootstrap, the paired bootstrap, BCa, entropy."""
from __future__ import annotations

import math

import numpy as np
import pytest

from chess_exp.analysis.stats import bootstrap_mean, cluster_bootstrap_mean, entropy_bits, paired_bootstrap_means


def reference_percentile(v, rng, n_boot, level=0.95, w=None, chunk=None):
    """A percentile bootstrap written out by hand: resample units with replacement, mean, quantiles."""
    chunk = chunk or n_boot
    stats = []
    for start in range(0, n_boot, chunk):
        idx = rng.integers(0, v.size, size=(min(chunk, n_boot - start), v.size))
        stats.append(v[idx].mean(axis=1) if w is None else (w[idx] * v[idx]).sum(axis=1) / w[idx].sum(axis=1))
    s = np.concatenate(stats)
    a = (1 - level) / 2
    return np.quantile(s, [a, 1 - a])


@pytest.mark.parametrize("n", [2, 17, 400, 3000])
def test_percentile_interval_equals_a_hand_written_bootstrap_with_the_same_seed(n):
    v = np.random.default_rng(n).gamma(0.5, size=n)  # skewed, like the favor values
    iv = bootstrap_mean(v, rng=np.random.default_rng(42), n_boot=2000)
    chunk = max(1, 1_000_000 // n)  # units resampled at once
    lo, hi = reference_percentile(v, np.random.default_rng(42), 2000, chunk=chunk)
    assert (round(iv.lo, 5), round(iv.hi, 5)) == (round(lo, 5), round(hi, 5))
    assert iv.mean == pytest.approx(v.mean()) and iv.n == n
    again = bootstrap_mean(v, rng=np.random.default_rng(42), n_boot=2000)
    assert (again.lo, again.hi) == (iv.lo, iv.hi)


def test_weighted_interval_equals_a_hand_written_paired_bootstrap():
    g = np.random.default_rng(3)
    v, w = g.normal(size=60), g.integers(1, 9, size=60).astype(float)
    iv = bootstrap_mean(v, rng=np.random.default_rng(5), n_boot=1500, weights=w)
    lo, hi = reference_percentile(v, np.random.default_rng(5), 1500, w=w)
    assert iv.mean == pytest.approx((w * v).sum() / w.sum())
    assert (round(iv.lo, 5), round(iv.hi, 5)) == (round(lo, 5), round(hi, 5))


def test_bca_differs_from_percentile_on_skewed_data_and_covers_the_mean():
    v = np.random.default_rng(0).exponential(size=80) ** 2
    p = bootstrap_mean(v, rng=np.random.default_rng(1), n_boot=4000)
    b = bootstrap_mean(v, rng=np.random.default_rng(1), n_boot=4000, method="BCa")
    assert b.lo < v.mean() < b.hi
    assert b.hi > p.hi  # right-skewed: BCa moves the interval toward the long tail
    with pytest.raises(ValueError, match="method"):
        bootstrap_mean(v, rng=np.random.default_rng(1), method="normal")


def test_degenerate_inputs():
    assert math.isnan(bootstrap_mean(np.array([]), rng=np.random.default_rng(0)).mean)
    one = bootstrap_mean(np.array([0.3]), rng=np.random.default_rng(0))
    assert (one.mean, one.lo, one.hi, one.n) == (0.3, 0.3, 0.3, 1)
    const = bootstrap_mean(np.full(9, 0.7), rng=np.random.default_rng(0), method="BCa")
    assert (const.lo, const.hi) == pytest.approx((0.7, 0.7))
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_mean(np.ones(3), rng=np.random.default_rng(0), n_boot=0)


def test_cluster_bootstrap_resamples_whole_clusters():
    # 30 games of 1-12 positions; within a game the values are identical, so the positions carry no
    # more information than the game: the cluster interval must equal the game-level weighted bootstrap.
    g = np.random.default_rng(9)
    sizes = g.integers(1, 13, size=30)
    game_value = g.normal(size=30)
    clusters = np.repeat(np.arange(30) * 7 + 3, sizes)  # arbitrary labels
    values = np.repeat(game_value, sizes)
    iv = cluster_bootstrap_mean(values, clusters, rng=np.random.default_rng(4), n_boot=1000)
    lo, hi = reference_percentile(game_value, np.random.default_rng(4), 1000, w=sizes.astype(float))
    assert iv.n == 30 and iv.mean == pytest.approx(values.mean())
    assert (round(iv.lo, 5), round(iv.hi, 5)) == (round(lo, 5), round(hi, 5))
    # and it is wider than pretending the positions were independent
    naive = bootstrap_mean(values, rng=np.random.default_rng(4), n_boot=1000)
    assert iv.hi - iv.lo > 1.5 * (naive.hi - naive.lo)
    with pytest.raises(ValueError, match="clusters"):
        cluster_bootstrap_mean(values, clusters[:-1], rng=np.random.default_rng(0))


def test_paired_bootstrap_resamples_the_same_units_for_every_group():
    base = np.random.default_rng(1).normal(size=50)
    vals = np.stack([base + 0.2, base + 0.1, base])  # each row 0.1 above the next on every unit
    boots = paired_bootstrap_means(vals, rng=np.random.default_rng(0), n_boot=300)
    assert boots.shape == (3, 300)
    np.testing.assert_allclose(boots[0] - boots[1], 0.1, atol=1e-12)  # paired: the difference never varies
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 50, size=(300, 50))
    np.testing.assert_allclose(boots[2], base[idx].mean(axis=1))


def test_entropy_bits_hand_values():
    assert entropy_bits(np.array([1, 1])) == pytest.approx(1.0)
    assert entropy_bits(np.array([2, 1, 1, 0])) == pytest.approx(1.5)
    assert entropy_bits(np.array([5])) == 0.0
