"""Small statistics shared by the analyses: bootstrap intervals, entropies, concentration.

NumPy only. Every random function takes a keyword-only ``rng``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["Interval", "bootstrap_mean", "normalized_entropy", "entropy_bits", "top_share",
           "summarize"]


@dataclass(frozen=True)
class Interval:
    """A point estimate with a percentile-bootstrap interval."""

    mean: float  # the plain sample mean
    lo: float  # lower end of the interval
    hi: float  # upper end of the interval
    n: int  # number of units that were resampled
    level: float  # coverage, e.g. 0.95

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def bootstrap_mean(values: np.ndarray, *, rng: np.random.Generator, n_boot: int = 2000,
                   level: float = 0.95, weights: np.ndarray | None = None) -> Interval:
    """Mean of ``values`` with a percentile-bootstrap interval (units resampled with replacement).

    With ``weights`` the statistic is the weighted mean ``sum(w v) / sum(w)``, resampling
    (value, weight) pairs together.

    >>> iv = bootstrap_mean(np.array([0.0, 1.0] * 50), rng=np.random.default_rng(0))
    >>> round(iv.mean, 2), iv.lo < 0.5 < iv.hi
    (0.5, True)
    """
    v = np.asarray(values, dtype=float).ravel()
    if v.size == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0, level)
    if not np.all(np.isfinite(v)):
        raise ValueError("values: must be finite")
    if not 0 < level < 1:
        raise ValueError(f"level: must be in (0, 1), got {level}")
    w = None if weights is None else np.asarray(weights, dtype=float).ravel()
    if w is not None and (w.shape != v.shape or np.any(w < 0) or w.sum() <= 0):
        raise ValueError("weights: must be non-negative, same length as values, not all zero")
    point = float(v.mean() if w is None else (w @ v) / w.sum())
    # Resample in chunks to bound memory at about 8 MB.
    stats = np.empty(n_boot)
    chunk = max(1, int(1_000_000 // v.size))
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        idx = rng.integers(0, v.size, size=(stop - start, v.size))
        if w is None:
            stats[start:stop] = v[idx].mean(axis=1)
        else:
            ww = w[idx]
            stats[start:stop] = (ww * v[idx]).sum(axis=1) / np.maximum(ww.sum(axis=1), 1e-300)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(stats, [alpha, 1 - alpha])
    return Interval(point, float(lo), float(hi), int(v.size), level)


def entropy_bits(counts: np.ndarray) -> float:
    """Plug-in Shannon entropy (bits) of the empirical distribution given by ``counts``."""
    c = np.asarray(counts, dtype=float)
    if np.any(c < 0) or c.sum() <= 0:
        raise ValueError("counts: must be non-negative with a positive total")
    p = c[c > 0] / c.sum()
    return float(-(p * np.log2(p)).sum())


def normalized_entropy(counts: np.ndarray, n_outcomes: int) -> float:
    """Entropy of ``counts`` divided by ``log2(n_outcomes)`` (paper §3.8); 0 when ``n_outcomes <= 1``.

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
