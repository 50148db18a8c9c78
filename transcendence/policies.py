"""Mixtures of experts, temperature, the argmax predictor, rewards and favor.

Shapes (one axis order everywhere): experts ``(k, n_x, n_y)``, per-expert input distributions
``(k, n_x)``, expert weights ``(k,)``, a policy ``(n_x, n_y)`` (row-stochastic), a reward
``(n_x, n_y)``, a test distribution ``(n_x,)``. Sweep axes (temperatures) go in front.

Paper symbol -> argument:

=================  ==========================
:math:`f_i`        ``experts[i]``
:math:`p_i`        ``input_dists[i]``
:math:`w_i`        ``weights[i]``
:math:`\\hat f`     ``mixture(...)``
:math:`\\tau`       ``temperature``
:math:`r(x, y)`    ``reward[x, y]``
:math:`p_{test}`   ``test_dist``
=================  ==========================
"""

from __future__ import annotations

import numpy as np

from transcendence import _validate as _v

__all__ = ["ARGMAX_ATOL", "mixture", "temper", "argmax_policy", "expected_reward", "favor",
           "tempered_reward"]

#: Two probabilities within this absolute distance of a row's maximum are tied maximisers.
#: It absorbs floating-point rounding (for example 0.1 + 0.2 versus 0.3 after averaging experts
#: in a different order) and is far below any difference a finite data set can resolve.
ARGMAX_ATOL = 1e-12

# Rows processed per block: keeps the working set of the tempering loops in cache.
_BLOCK_ELEMENTS = 1 << 15


def _validate_experts(experts: object) -> np.ndarray:
    e = _v.as_array("experts", experts, ndim=3)
    _v.check_distribution("experts", e, what="row experts[i, x, :]")
    return e


def mixture(experts: object, input_dists: object = None, weights: object = None) -> np.ndarray:
    r"""The ideal cross-entropy learner of a mixture of experts.

    .. math::

        \hat f(y \mid x) = \sum_i g(i \mid x)\, f_i(y \mid x), \qquad
        g(i \mid x) = \frac{w_i\, p_i(x)}{\sum_j w_j\, p_j(x)} .

    With one shared input distribution (``input_dists=None``) and equal weights this is the plain
    average :math:`\frac1k \sum_i f_i`, eq. (1) of the paper. With per-expert input distributions it
    is the posterior-weighted mixture of "A Taxonomy of Transcendence".

    Parameters
    ----------
    experts : (k, n_x, n_y) array, each row a probability vector.
    input_dists : (k, n_x) array, each row a probability vector over inputs, optional.
        Inputs that no expert visits (:math:`\sum_j w_j p_j(x) = 0`) get the prior-weighted
        average :math:`\sum_i w_i f_i(\cdot\mid x) / \sum_i w_i`.
    weights : (k,) array of non-negative relative weights (how much data each expert gives),
        optional, default equal. Only their ratios matter; they need not sum to one.

    Returns
    -------
    (n_x, n_y) array.

    Examples
    --------
    >>> import numpy as np
    >>> mixture(np.array([[[0.6, 0.4, 0.0]], [[0.0, 0.4, 0.6]]]))
    array([[0.3, 0.4, 0.3]])
    """
    e = _validate_experts(experts)
    k, n_x, _ = e.shape
    w = np.full(k, 1.0 / k) if weights is None else _v.weights(weights, k)
    if input_dists is None:
        return np.tensordot(w, e, axes=1)
    p = _v.as_array("input_dists", input_dists, ndim=2)
    _v.check_shape("input_dists", p, (k, n_x), against="experts (k, n_x, n_y)")
    _v.check_distribution("input_dists", p, what="row input_dists[i, :]")
    joint = w[:, None] * p                        # (k, n_x)
    total = joint.sum(axis=0)                     # (n_x,)
    unvisited = total <= 0
    g = np.where(unvisited[None, :], w[:, None], joint / np.where(unvisited, 1.0, total)[None, :])
    return np.einsum("kx,kxy->xy", g, e)


def _argmax_into(f: np.ndarray, out: np.ndarray, atol: float) -> None:
    top = f.max(axis=-1, keepdims=True)
    np.greater_equal(f, top - atol, out=out, casting="unsafe")
    out /= out.sum(axis=-1, keepdims=True)


def argmax_policy(policy: object, *, atol: float = ARGMAX_ATOL) -> np.ndarray:
    r"""The argmax predictor: uniform over the maximisers of each row (the paper's tie rule).

    .. math::

        \arg\max(q)_y = \mathbb 1\{y \in Y_q\} / |Y_q|, \qquad
        Y_q = \{y : q_y \ge \max(q) - \mathrm{atol}\}.

    ``atol`` (default :data:`ARGMAX_ATOL` = 1e-12) only absorbs floating-point rounding; set it
    to 0 for exact ties. Works on any array whose last axis holds the outputs.

    >>> argmax_policy([[0.3, 0.4, 0.3], [0.5, 0.0, 0.5]])
    array([[0. , 1. , 0. ],
           [0.5, 0. , 0.5]])
    """
    f = _v.as_array("policy", policy, min_ndim=1)
    _v.check_distribution("policy", f)
    atol = _v.tolerance("atol", atol)
    out = np.empty_like(f)
    _argmax_into(f, out, atol)
    return out


def _base(f: np.ndarray, mode: str) -> np.ndarray:
    """Row-shifted scores whose exp(./tau), normalised, is the tempered policy (max of each row = 0)."""
    if mode == "logit":
        with np.errstate(divide="ignore"):
            base = np.log(f)                    # exact zeros -> -inf -> stay exactly zero
    else:
        base = f.copy()
    base -= base.max(axis=-1, keepdims=True)
    return base


def _ones(n: int) -> np.ndarray:
    return np.ones(n)


def _rowdot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise dot products of two (rows, n_y) arrays (``np.vecdot`` where NumPy has it)."""
    return np.vecdot(a, b) if hasattr(np, "vecdot") else np.einsum("xy,xy->x", a, b)


def _exp_normalised_into(base: np.ndarray, tau: float, out: np.ndarray) -> np.ndarray:
    """out = softmax(base / tau) along the last axis; returns the row sums before normalising."""
    inv = 1.0 / tau
    if np.isfinite(inv):
        np.multiply(base, inv, out=out)
    else:                                       # tau below ~5e-309: divide instead of inf * 0
        np.divide(base, tau, out=out)
    np.exp(out, out=out)
    return (out @ _ones(out.shape[-1]))[:, None]


def temper(policy: object, temperature: object, *, mode: str = "logit",
           atol: float = ARGMAX_ATOL) -> np.ndarray:
    r"""Temperature sampling of a policy, for one temperature or an array of them.

    ``mode="logit"`` (what models do, nanoGPT's ``logits / temperature``):

    .. math:: f_\tau(y \mid x) = \mathrm{softmax}(\log f(\cdot \mid x) / \tau)_y \propto f(y \mid x)^{1/\tau}

    ``mode="prob"`` (the paper's formula):

    .. math:: f_\tau(y \mid x) = \mathrm{softmax}(f(\cdot \mid x) / \tau)_y \propto e^{f(y \mid x)/\tau}

    ``temperature = 0`` is the argmax predictor (:func:`argmax_policy`, uniform over ties), the limit
    of both families as :math:`\tau \to 0^+`. Computed in log space with each row's maximum
    subtracted, so every :math:`\tau` from 1e-8 (and below) to 1e3 (and above) gives finite,
    normalised rows. In logit mode exact zeros stay exactly zero (a model never samples an output
    of probability 0); in prob mode they do not, as the formula says.

    Parameters
    ----------
    policy : (n_x, n_y) array (or any array whose last axis holds the outputs), row-stochastic.
    temperature : float >= 0, or a 1-d array of them.
    mode : ``"logit"`` or ``"prob"``.

    Returns
    -------
    Same shape as ``policy`` for a scalar temperature, ``(n_t, *policy.shape)`` for an array.

    Examples
    --------
    The paper's three-action example: the middle action reaches probability 0.9 near
    tau = 0.0995 (logit) and tau = 0.0346 (prob).

    >>> q = [[0.3, 0.4, 0.3]]
    >>> temper(q, 0.0995).round(3), temper(q, 0.0346, mode="prob").round(3)
    (array([[0.05, 0.9 , 0.05]]), array([[0.05, 0.9 , 0.05]]))
    """
    f = _v.as_array("policy", policy, min_ndim=1)
    _v.check_distribution("policy", f)
    taus, scalar = _v.temperatures(temperature)
    mode = _v.mode(mode)
    atol = _v.tolerance("atol", atol)
    rows = f.reshape(-1, f.shape[-1])
    base = _base(rows, mode)
    out = np.empty((taus.size,) + rows.shape)
    step = max(1, _BLOCK_ELEMENTS // rows.shape[1])
    for t, tau in enumerate(taus):
        for start in range(0, rows.shape[0], step):
            block = out[t, start:start + step]
            if tau == 0:
                _argmax_into(rows[start:start + step], block, atol)
            else:
                block /= _exp_normalised_into(base[start:start + step], float(tau), block)
    out = out.reshape((taus.size,) + f.shape)
    return out[0] if scalar else out


def _validate_reward_test(reward: object, test_dist: object) -> tuple[np.ndarray, np.ndarray]:
    r = _v.as_array("reward", reward, ndim=2)
    _v.check_finite("reward", r)
    p = _v.as_array("test_dist", test_dist, ndim=1)
    _v.check_shape("test_dist", p, (r.shape[0],), against="reward (n_x, n_y)")
    _v.check_distribution("test_dist", p, what="distribution")
    return r, p


def expected_reward(policy: object, reward: object, test_dist: object) -> np.ndarray | float:
    r"""Expected reward :math:`R_{p}(f) = \sum_x p(x) \sum_y f(y \mid x)\, r(x, y)`.

    Parameters
    ----------
    policy : (..., n_x, n_y) array, row-stochastic; leading axes (temperatures, experts) broadcast.
    reward : (n_x, n_y) array of finite numbers.
    test_dist : (n_x,) probability vector.

    Returns
    -------
    A float for a single policy, an array of shape ``policy.shape[:-2]`` otherwise.

    >>> expected_reward([[0.3, 0.4, 0.3]], [[0, 1, 0]], [1.0])
    0.4
    """
    r, p = _validate_reward_test(reward, test_dist)
    f = _v.as_array("policy", policy, min_ndim=2)
    if f.shape[-2:] != r.shape:
        raise ValueError(f"policy: trailing shape {f.shape[-2:]} does not agree with reward {r.shape}")
    lead = f.shape[:-2]
    mats = f.reshape((-1,) + r.shape)
    values = np.empty(mats.shape[0])
    step = max(1, _BLOCK_ELEMENTS // r.shape[1])
    per_input = np.empty(r.shape[0])
    ones = _ones(r.shape[1])
    for m in range(mats.shape[0]):
        for start in range(0, r.shape[0], step):  # validate and reduce while the block is in cache
            block = mats[m, start:start + step]
            sums = block @ ones
            if not (block.min() >= 0 and np.abs(sums - 1.0).max() <= _v.ROW_ATOL):
                _v.check_distribution("policy", f)   # names the offending row
            per_input[start:start + step] = _rowdot(block, r[start:start + step])
        values[m] = per_input @ p
    return float(values[0]) if not lead else values.reshape(lead)


def tempered_reward(policy: object, temperature: object, reward: object, test_dist: object, *,
                    mode: str = "logit", atol: float = ARGMAX_ATOL) -> np.ndarray | float:
    r"""``expected_reward(temper(policy, temperature, mode=mode), reward, test_dist)``, fused.

    Same numbers, but the tempered policies are never materialised: each temperature is
    processed in cache-sized blocks of inputs, using

    .. math:: r_x(f_\tau) = \frac{\sum_y e^{s_y/\tau} r(x,y)}{\sum_y e^{s_y/\tau}},

    so memory stays O(n_x n_y) whatever the number of temperatures. Use it for sweeps over many
    temperatures (:func:`critical_temperature` does).

    Returns a float for a scalar temperature, an array ``(n_t,)`` otherwise.
    """
    f = _v.as_array("policy", policy, ndim=2)
    _v.check_distribution("policy", f)
    r, p = _validate_reward_test(reward, test_dist)
    if f.shape != r.shape:
        raise ValueError(f"policy: shape {f.shape} does not agree with reward {r.shape}")
    taus, scalar = _v.temperatures(temperature)
    mode = _v.mode(mode)
    atol = _v.tolerance("atol", atol)
    base = _base(f, mode)
    step = max(1, _BLOCK_ELEMENTS // f.shape[1])
    buf = np.empty((min(step, f.shape[0]), f.shape[1]))
    per_input = np.empty(f.shape[0])
    values = np.empty(taus.size)
    if f.size * 4 <= _BLOCK_ELEMENTS:  # small policy: many temperatures per vectorised block
        chunk = _BLOCK_ELEMENTS // f.size
        positive = np.flatnonzero(taus > 0)
        for start in range(0, positive.size, chunk):
            idx = positive[start:start + chunk]
            z = np.divide(base[None], taus[idx, None, None])        # (t, n_x, n_y)
            np.exp(z, out=z)
            values[idx] = (np.einsum("txy,xy->tx", z, r) / z.sum(axis=-1)) @ p
        if positive.size < taus.size:
            arg = np.empty_like(f)
            _argmax_into(f, arg, atol)
            values[taus == 0] = _rowdot(arg, r) @ p
        return float(values[0]) if scalar else values
    for t, tau in enumerate(taus):
        for start in range(0, f.shape[0], step):
            block = buf[: min(step, f.shape[0] - start)]
            if tau == 0:
                _argmax_into(f[start:start + step], block, atol)
                per_input[start:start + step] = _rowdot(block, r[start:start + step])
            else:
                sums = _exp_normalised_into(base[start:start + step], float(tau), block)
                per_input[start:start + step] = _rowdot(block, r[start:start + step]) / sums[:, 0]
        values[t] = per_input @ p
    return float(values[0]) if scalar else values


def favor(policy_a: object, policy_b: object, reward: object) -> np.ndarray:
    r"""Per-input favor :math:`F(a, b; x) = r_x(a) - r_x(b)` (the paper's favor).

    Parameters
    ----------
    policy_a, policy_b : (..., n_x, n_y) row-stochastic arrays (leading axes broadcast).
    reward : (n_x, n_y).

    Returns
    -------
    (..., n_x) array.

    >>> favor([[0, 1, 0]], [[0.3, 0.4, 0.3]], [[0, 1, 0]])
    array([0.6])
    """
    r = _v.as_array("reward", reward, ndim=2)
    _v.check_finite("reward", r)
    out = []
    for name, pol in (("policy_a", policy_a), ("policy_b", policy_b)):
        f = _v.as_array(name, pol, min_ndim=2)
        if f.shape[-2:] != r.shape:
            raise ValueError(f"{name}: trailing shape {f.shape[-2:]} does not agree with reward {r.shape}")
        _v.check_distribution(name, f)
        out.append(np.einsum("...xy,xy->...x", f, r))
    return out[0] - out[1]
