"""Finite samples: draw (input, expert, output) triples from experts, and fit a policy from them."""

from __future__ import annotations

import numpy as np

from transcendence import _validate as _v
from transcendence.policies import _validate_experts

__all__ = ["sample_dataset", "empirical_policy"]

_CHUNK = 1 << 16


def _draw_rows(cdf_rows: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Index drawn from each row's CDF with uniforms ``u`` (inverse-CDF sampling)."""
    idx = (cdf_rows < u[:, None]).sum(axis=1)
    return np.minimum(idx, cdf_rows.shape[1] - 1)  # guards a final CDF value of 1 - 1e-16


def sample_dataset(experts: object, input_dists: object, n: int, *, rng: np.random.Generator,
                   weights: object = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Draw ``n`` training triples from the data-generating process.

    Each triple: an expert :math:`i \sim w` (uniform by default), an input :math:`x \sim p_i`,
    an output :math:`y \sim f_i(\cdot \mid x)`. With one shared input distribution this is the
    paper's process (:math:`x \sim p`, :math:`i \sim \mathrm{Unif}[k]`, :math:`y \sim f_i`), whose
    joint is :math:`p(x) \bar f(y \mid x)`; in general the joint is
    :math:`\sum_i w_i p_i(x) f_i(y \mid x)`, whose conditional is :func:`~transcendence.mixture`.

    Parameters
    ----------
    experts : (k, n_x, n_y).
    input_dists : (n_x,) shared by all experts, or (k, n_x) one per expert.
    n : number of triples.
    rng : ``numpy.random.Generator`` (required: randomness is an argument).
    weights : (k,) relative weights, optional.

    Returns
    -------
    ``(x, expert, y)``: three int64 arrays of length ``n``.
    """
    if not isinstance(rng, np.random.Generator):
        raise ValueError("rng: pass a numpy.random.Generator, e.g. numpy.random.default_rng(0)")
    n = _v.integer("n", n, minimum=0)
    e = _validate_experts(experts)
    k, n_x, n_y = e.shape
    p = _v.as_array("input_dists", input_dists, ndim=(1, 2))
    if p.ndim == 1:
        _v.check_shape("input_dists", p, (n_x,), against="experts (k, n_x, n_y)")
    else:
        _v.check_shape("input_dists", p, (k, n_x), against="experts (k, n_x, n_y)")
    _v.check_distribution("input_dists", p, what="distribution")
    w = np.full(k, 1.0 / k) if weights is None else _v.weights(weights, k)
    expert = rng.choice(k, size=n, p=w)
    x = np.empty(n, dtype=np.int64)
    input_cdf = np.cumsum(np.atleast_2d(p), axis=1)
    u_x = rng.random(n)
    if p.ndim == 1:
        x[:] = np.minimum(np.searchsorted(input_cdf[0], u_x, side="right"), n_x - 1)
    else:
        for i in range(k):
            sel = expert == i
            x[sel] = np.minimum(np.searchsorted(input_cdf[i], u_x[sel], side="right"), n_x - 1)
    y = np.empty(n, dtype=np.int64)
    u_y = rng.random(n)
    for start in range(0, n, _CHUNK):
        sl = slice(start, start + _CHUNK)
        y[sl] = _draw_rows(np.cumsum(e[expert[sl], x[sl]], axis=1), u_y[sl])
    return x, expert.astype(np.int64), y


def empirical_policy(x: object, y: object, n_x: int, n_y: int, *, smoothing: float = 0.0) -> np.ndarray:
    r"""Fit :math:`\hat f` from samples: the (additively smoothed) conditional frequencies.

    .. math:: \hat f(y \mid x) = \frac{N(x, y) + \alpha}{N(x) + \alpha\, n_y}

    This is the maximum-likelihood (cross-entropy) fit for ``smoothing`` :math:`\alpha = 0`.
    Inputs never seen (with :math:`\alpha = 0`) get the uniform distribution: the learner has no
    information there, and uniform is the maximum-entropy choice.

    Returns an ``(n_x, n_y)`` policy. With no samples at all there is nothing to fit: that is an
    error (``x, y: no samples``), not a silently uniform policy.
    """
    n_x = _v.integer("n_x", n_x, minimum=1)
    n_y = _v.integer("n_y", n_y, minimum=1)
    xa, ya = np.asarray(x), np.asarray(y)
    if xa.shape != ya.shape or xa.ndim != 1:
        raise ValueError(f"x, y: must be 1-d arrays of the same length, got shapes {xa.shape} and {ya.shape}")
    if xa.size == 0:
        raise ValueError("x, y: no samples (empty arrays); draw at least one, e.g. with sample_dataset")
    for name, a, size in (("x", xa, n_x), ("y", ya, n_y)):
        if not np.issubdtype(a.dtype, np.integer) or a.min() < 0 or a.max() >= size:
            raise ValueError(f"{name}: must hold integer indices in [0, {size})")
    smoothing = _v.tolerance("smoothing", smoothing)
    counts = np.bincount(xa * n_y + ya, minlength=n_x * n_y).reshape(n_x, n_y).astype(float)
    counts += smoothing
    totals = counts.sum(axis=1, keepdims=True)
    unseen = totals[:, 0] == 0
    counts[unseen] = 1.0
    totals[unseen] = n_y
    return counts / totals
