"""Constructors for the paper's experts: the optimal policy, Prop. 3's noisy expert, Prop. 4's
partition experts."""

from __future__ import annotations

import numpy as np

from transcendence import _validate as _v
from transcendence.policies import ARGMAX_ATOL, _argmax_into

__all__ = ["optimal_policy", "noisy_expert", "partition_experts"]


def _reward(reward: object) -> np.ndarray:
    r = _v.as_array("reward", reward, ndim=2)
    _v.check_finite("reward", r)
    return r


def optimal_policy(reward: object, *, atol: float = ARGMAX_ATOL) -> np.ndarray:
    r"""The optimal expert :math:`f^*(y \mid x) = \mathbb 1\{y \in Y^*_x\} / |Y^*_x|`,
    :math:`Y^*_x = \arg\max_y r(x, y)` (ties within ``atol * max|r|`` shared uniformly: the tie
    tolerance is relative to the reward's scale, so rescaling the reward changes nothing).

    >>> optimal_policy([[0.0, 1.0, 1.0]])
    array([[0. , 0.5, 0.5]])
    """
    r = _reward(reward)
    atol = _v.tolerance("atol", atol)
    out = np.empty_like(r)
    _argmax_into(r, out, atol * float(np.abs(r).max()))
    return out


def noisy_expert(reward: object, rho: object, *, noise: object = None,
                 atol: float = ARGMAX_ATOL) -> np.ndarray:
    r"""Prop. 3's expert with random mistakes: :math:`f_\rho = \rho\, u + (1 - \rho) f^*`.

    Parameters
    ----------
    reward : (n_x, n_y).
    rho : error rate in [0, 1]; a float gives one expert ``(n_x, n_y)``, a 1-d array of k rates
        gives k experts ``(k, n_x, n_y)``, and a ``(k, n_x)`` array gives k experts whose error
        rate depends on the input (expert i errs at rate ``rho[i, x]`` on input x).
    noise : the distribution :math:`u` of mistakes, default uniform over outputs (the paper's);
        an ``(n_x, n_y)`` policy shared by all, or ``(k, n_x, n_y)`` one per expert (independent noise).

    >>> noisy_expert([[0.0, 1.0]], 0.5)
    array([[0.25, 0.75]])
    """
    r = _reward(reward)
    f_star = optimal_policy(r, atol=atol)
    rates = _v.as_array("rho", rho, ndim=(0, 1, 2))
    if rates.ndim == 2 and rates.shape[1] != r.shape[0]:
        raise ValueError(f"rho: per-input rates need shape (k, {r.shape[0]}), got {rates.shape}")
    _v.check_finite("rho", rates)
    if (rates < 0).any() or (rates > 1).any():
        raise ValueError(f"rho: error rates must lie in [0, 1], got {rates}")
    if noise is None:
        u = np.full_like(r, 1.0 / r.shape[1])
    else:
        u = _v.as_array("noise", noise, ndim=(2, 3))
        if u.shape[-2:] != r.shape:
            raise ValueError(f"noise: trailing shape {u.shape[-2:]} does not agree with reward {r.shape}")
        _v.check_distribution("noise", u)
        if u.ndim == 3 and (rates.ndim == 0 or u.shape[0] != rates.shape[0]):
            raise ValueError(f"noise: {u.shape[0]} per-expert noise policies need rho with "
                             f"{u.shape[0]} rates, got rho of shape {rates.shape}")
    if rates.ndim == 0:
        return float(rates) * u + (1.0 - float(rates)) * f_star
    rr = rates[:, None, None] if rates.ndim == 1 else rates[:, :, None]
    return rr * u + (1.0 - rr) * f_star[None]


def partition_experts(reward: object, parts: object, *, n_experts: int | None = None,
                      atol: float = ARGMAX_ATOL) -> np.ndarray:
    r"""Prop. 4's experts: expert i is optimal on its part :math:`X_i` and uniform elsewhere.

    .. math::

        f_i(y \mid x) = \mathbb 1\{x \in X_i\}\, f^*(y \mid x)
                       + \mathbb 1\{x \notin X_i\} / |\mathcal Y|

    Parameters
    ----------
    reward : (n_x, n_y).
    parts : (n_x,) integer part ids in ``0 .. k-1`` (input x belongs to part ``parts[x]``).
    n_experts : k; default ``max(parts) + 1``. Parts with no input give an expert that is uniform
        everywhere.

    Returns
    -------
    (k, n_x, n_y) array.

    >>> partition_experts([[0.0, 1.0], [1.0, 0.0]], [0, 1])
    array([[[0. , 1. ],
            [0.5, 0.5]],
    <BLANKLINE>
           [[0.5, 0.5],
            [1. , 0. ]]])
    """
    r = _reward(reward)
    p = np.asarray(parts)
    if p.ndim != 1 or p.shape[0] != r.shape[0]:
        raise ValueError(f"parts: expected shape ({r.shape[0]},) (one part id per input), got {p.shape}")
    if not np.issubdtype(p.dtype, np.integer):
        raise ValueError(f"parts: must be integer part ids, got dtype {p.dtype}")
    if (p < 0).any():
        raise ValueError("parts: part ids must be >= 0")
    k = int(p.max()) + 1 if n_experts is None else _v.integer("n_experts", n_experts, minimum=1)
    if k <= int(p.max()):
        raise ValueError(f"n_experts: {k} is too small for part id {int(p.max())}")
    f_star = optimal_policy(r, atol=atol)
    out = np.full((k,) + r.shape, 1.0 / r.shape[1])
    out[p, np.arange(r.shape[0])] = f_star
    return out
