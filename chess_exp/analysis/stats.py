"""Small statistics shared by the analyses: bootstrap intervals, entropies, concentration.

Intervals come from :func:`scipy.stats.bootstrap` (percentile by default, BCa on request); the
per-game cluster bootstrap and the paired bootstrap of several groups on the same units are thin
wrappers over it. Entropies use :func:`scipy.stats.entropy`. Every random function takes a
keyword-only ``rng``; the same seed gives the same interval.
"""

from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from scipy import stats as _stats

__all__ = ["Interval", "bootstrap_mean", "cluster_bootstrap_mean", "paired_bootstrap_means",
           "normalized_entropy", "entropy_bits", "top_share", "summarize"]

Method = Literal["percentile", "BCa", "basic"]
#: resampled values held at once (about 8 MB of float64), as ``batch`` for scipy
_BATCH_VALUES = 1_000_000
_RNG_KW = "rng" if "rng" in inspect.signature(_stats.bootstrap).parameters else "random_state"  # scipy < 1.15


@dataclass(frozen=True)
class Interval:
    """A point estimate with a bootstrap interval."""

    mean: float  # the plain (or weighted) sample mean
    lo: float  # lower end of the interval
    hi: float  # upper end of the interval
    n: int  # number of units that were resampled
    level: float  # coverage, e.g. 0.95

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _check(level: float, n_boot: int, method: str) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level: must be in (0, 1), got {level}")
    if int(n_boot) < 1:
        raise ValueError(f"n_boot: must be >= 1, got {n_boot}")
    if method not in ("percentile", "BCa", "basic"):
        raise ValueError(f"method: must be 'percentile', 'BCa' or 'basic', got {method!r}")


def _bootstrap(data: tuple[np.ndarray, ...], statistic: Any, *, rng: np.random.Generator, n_boot: int,
               level: float, method: str, paired: bool, batched: bool = True) -> Any:
    n = data[0].shape[-1]
    batch = max(1, _BATCH_VALUES // n) if batched else None
    return _stats.bootstrap(data, statistic, n_resamples=int(n_boot), batch=batch,
                            vectorized=True, paired=paired, axis=-1, confidence_level=level, method=method,
                            **{_RNG_KW: rng})


def bootstrap_mean(values: np.ndarray, *, rng: np.random.Generator, n_boot: int = 2000,
                   level: float = 0.95, weights: np.ndarray | None = None,
                   method: Method | str = "percentile") -> Interval:
    """Mean of ``values`` with a bootstrap interval (units resampled with replacement).

    With ``weights`` the statistic is the weighted mean ``sum(w v) / sum(w)``, resampling
    (value, weight) pairs together. ``method`` is scipy's: ``"percentile"`` (the default, what the
    results in docs/results use), ``"BCa"`` (bias-corrected and accelerated, for skewed values) or
    ``"basic"``. One unit gives a zero-width interval; none gives NaN.

    >>> iv = bootstrap_mean(np.array([0.0, 1.0] * 50), rng=np.random.default_rng(0))
    >>> round(iv.mean, 2), iv.lo < 0.5 < iv.hi
    (0.5, True)
    """
    _check(level, n_boot, method)
    v = np.asarray(values, dtype=float).ravel()
    if v.size == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0, level)
    if not np.all(np.isfinite(v)):
        raise ValueError("values: must be finite")
    w = None if weights is None else np.asarray(weights, dtype=float).ravel()
    if w is not None and (w.shape != v.shape or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0):
        raise ValueError("weights: must be finite, non-negative, same length as values, not all zero")
    point = float(v.mean() if w is None else (w @ v) / w.sum())
    if v.size == 1:  # scipy needs two units; draw the same resamples anyway, so later intervals do not shift
        rng.integers(0, 1, size=(int(n_boot), 1))
        return Interval(point, point, point, 1, level)
    if np.ptp(v) == 0:  # every resample has the same mean; BCa would divide by zero
        method = "percentile"
    if w is None:
        res = _bootstrap((v,), np.mean, rng=rng, n_boot=n_boot, level=level, method=method, paired=False)
    else:
        def weighted_mean(x: np.ndarray, ww: np.ndarray, axis: int = -1) -> np.ndarray:
            return (ww * x).sum(axis=axis) / np.maximum(ww.sum(axis=axis), 1e-300)
        res = _bootstrap((v, w), weighted_mean, rng=rng, n_boot=n_boot, level=level, method=method, paired=True)
    ci = res.confidence_interval
    return Interval(point, float(ci.low), float(ci.high), int(v.size), level)


def cluster_bootstrap_mean(values: np.ndarray, clusters: np.ndarray, *, rng: np.random.Generator,
                           n_boot: int = 2000, level: float = 0.95, method: Method | str = "percentile") -> Interval:
    """Mean of ``values`` over all units, with an interval that resamples whole clusters.

    Units of one cluster (the positions of one game) are dependent, so the clusters are resampled
    with replacement, each bringing all its units: the statistic is the ratio
    ``sum of the drawn clusters' totals / sum of their sizes``. scipy has no cluster bootstrap; this
    is the paired bootstrap of (cluster mean, cluster size) with the size-weighted mean, which is
    that ratio. The point estimate is the plain mean of ``values``.
    """
    v = np.asarray(values, dtype=float).ravel()
    g = np.asarray(clusters).ravel()
    if g.shape != v.shape:
        raise ValueError(f"clusters: must have one label per value, got {g.size} labels for {v.size} values")
    if v.size == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0, level)
    _, inverse, sizes = np.unique(g, return_inverse=True, return_counts=True)
    means = np.bincount(inverse, weights=v) / sizes
    iv = bootstrap_mean(means, rng=rng, n_boot=n_boot, level=level, weights=sizes.astype(float), method=method)
    return Interval(float(v.mean()), iv.lo, iv.hi, int(sizes.size), level)


def paired_bootstrap_means(values: np.ndarray, *, rng: np.random.Generator, n_boot: int = 2000) -> np.ndarray:
    """Bootstrap distribution of each row's mean when the same units (columns) are resampled for every row.

    ``values`` is (groups, units), e.g. one row per rating cap over the states common to all caps;
    returns (groups, n_boot). Differences between rows and orderings are then read off the same
    resamples (a paired comparison).
    """
    vals = np.asarray(values, dtype=float)
    if vals.ndim != 2 or vals.shape[1] < 1:
        raise ValueError(f"values: must be (groups, units) with at least one unit, got shape {vals.shape}")
    if vals.shape[1] == 1:
        return np.repeat(vals, int(n_boot), axis=1)

    def row_means(*rows: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.stack([r.mean(axis=axis) for r in rows])

    res = _bootstrap(tuple(vals), row_means, rng=rng, n_boot=n_boot, level=0.95, method="percentile", paired=True,
                     batched=False)
    return np.asarray(res.bootstrap_distribution).reshape(vals.shape[0], int(n_boot))


def entropy_bits(counts: np.ndarray) -> float:
    """Plug-in Shannon entropy (bits) of the empirical distribution given by ``counts``."""
    c = np.asarray(counts, dtype=float)
    if np.any(c < 0) or c.sum() <= 0:
        raise ValueError("counts: must be non-negative with a positive total")
    return float(_stats.entropy(c, base=2))


def normalized_entropy(counts: np.ndarray, n_outcomes: int) -> float:
    """Entropy of ``counts`` divided by ``log2(n_outcomes)`` (Figure 5's metric); 0 when ``n_outcomes <= 1``.

    The paper's text normalises by the number of legal moves; its code by the number of distinct
    observed moves (``n_outcomes = number of non-zero counts``), returning 0 for a single move.

    >>> normalized_entropy(np.array([5, 5]), 2)
    1.0
    >>> round(normalized_entropy(np.array([5, 5]), 4), 3)
    0.5
    """
    c = np.asarray(counts)
    if n_outcomes < int(np.count_nonzero(c)):
        raise ValueError(f"n_outcomes: {n_outcomes} is fewer than the {np.count_nonzero(c)} observed outcomes")
    if n_outcomes <= 1:
        return 0.0
    return entropy_bits(c) / float(np.log2(n_outcomes))


def top_share(values: np.ndarray, fractions: tuple[float, ...] = (0.01, 0.05, 0.10)) -> dict[str, float]:
    """Share of ``sum(values)`` contributed by the largest ``ceil(f * n)`` values, for each ``f``.

    Used for "how concentrated is the favor": a value above ``f`` means the top states carry more
    than their proportional share. Shares can exceed 1 when the remaining values are negative.
    """
    v = np.sort(np.asarray(values, dtype=float).ravel())[::-1]
    total = v.sum()
    out = {}
    for f in fractions:
        k = max(1, int(np.ceil(f * v.size)))
        out[f"top_{round(f * 100, 3):g}pct"] = float(v[:k].sum() / total) if total != 0 else float("nan")
    return out


def summarize(values: np.ndarray) -> dict[str, float]:
    """Mean, std, quantiles of ``values`` (for results files)."""
    v = np.asarray(values, dtype=float).ravel()
    if v.size == 0:
        return {"n": 0}
    q = np.quantile(v, [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0])
    return {"n": int(v.size), "mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else 0.0,
            "min": float(q[0]), "p10": float(q[1]), "p25": float(q[2]), "median": float(q[3]),
            "p75": float(q[4]), "p90": float(q[5]), "max": float(q[6])}
