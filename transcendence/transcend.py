"""Definition 1 (transcendence) as a check, and Prop. 2's critical temperature computed.

A setting transcends on a test distribution when the learned predictor beats the *best* expert:

.. math:: R_{p_{test}}(\\hat f_\\tau) > \\max_i R_{p_{test}}(f_i).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from transcendence import _validate as _v
from transcendence.policies import (
    ARGMAX_ATOL,
    _validate_experts,
    expected_reward,
    favor,
    mixture,
    temper,
    tempered_reward,
)

__all__ = ["TranscendenceResult", "check_transcendence", "critical_temperature", "MARGIN_TOL"]

#: A margin must exceed ``MARGIN_TOL * max|r|`` to count as transcendence, so that rounding in an
#: *equality* (for example Prop. 1 with identical experts) is never reported as a strict win. The
#: tolerance is relative to the reward's scale: multiplying the reward by any c > 0 changes no
#: verdict and no critical temperature (a reward in units of 1e-12 is treated like one in units of 1).
MARGIN_TOL = 1e-12


def _setting(experts: object, reward: object, tol: object) -> tuple[np.ndarray, float]:
    """The validated experts, and ``tol * max|r|`` (the reward's scale makes the tolerance unit-free)."""
    e = _validate_experts(experts)
    r = _v.as_array("reward", reward, ndim=2)
    _v.check_finite("reward", r)
    if e.shape[1:] != r.shape:
        raise ValueError(f"experts: shape {e.shape} does not agree with reward {r.shape} "
                         f"(expected (k, {r.shape[0]}, {r.shape[1]}))")
    return e, _v.tolerance("tol", tol) * float(np.max(np.abs(r)))


@dataclass(frozen=True, eq=False)
class TranscendenceResult:
    """The outcome of :func:`check_transcendence`.

    Attributes
    ----------
    holds : bool
        ``margin > tol``: the predictor beats every expert.
    margin : float
        :math:`R(\\hat f_\\tau) - \\max_i R(f_i)`.
    best_expert : int
        Index of the best expert (the first one on ties).
    expert_rewards : (k,) array
        :math:`R(f_i)` for each expert.
    predictor_reward : float
        :math:`R(\\hat f_\\tau)`.
    temperature : float
        The temperature checked (0 = argmax predictor).
    mode : str
        ``"logit"`` or ``"prob"``.
    per_input_favor : (n_x,) array
        :math:`F(\\hat f_\\tau, f_{best}; x)`: where the predictor gains or loses against the best expert.
    tol : float
        The tolerance used for ``holds`` in the reward's units: ``tol * max|r|`` (by default
        ``MARGIN_TOL * max|r|``).
    """

    holds: bool
    margin: float
    best_expert: int
    expert_rewards: np.ndarray
    predictor_reward: float
    temperature: float
    mode: str
    per_input_favor: np.ndarray
    tol: float = MARGIN_TOL

    def __bool__(self) -> bool:
        return self.holds

    def __repr__(self) -> str:
        return (f"TranscendenceResult(holds={self.holds}, margin={self.margin:.6g}, "
                f"best_expert={self.best_expert}, predictor_reward={self.predictor_reward:.6g}, "
                f"best_expert_reward={self.expert_rewards[self.best_expert]:.6g}, "
                f"temperature={self.temperature:g}, mode={self.mode!r})")


def check_transcendence(experts: object, reward: object, test_dist: object, *,
                        temperature: float = 0.0, mode: str = "logit", input_dists: object = None,
                        weights: object = None, atol: float = ARGMAX_ATOL,
                        tol: float = MARGIN_TOL) -> TranscendenceResult:
    """Does the tempered mixture transcend its experts on ``test_dist`` (Definition 1)?

    Parameters
    ----------
    experts : (k, n_x, n_y); reward : (n_x, n_y); test_dist : (n_x,).
    temperature : float >= 0. 0 (the default) checks the argmax predictor; 1 checks the mixture
        itself in logit mode (in prob mode, softmax(f / 1) is not f).
    mode, input_dists, weights, atol : as in :func:`mixture` and :func:`temper`.
    tol : relative tolerance, a finite number >= 0: the margin must exceed ``tol * max|r|`` (default
        :data:`MARGIN_TOL`). Relative to the reward's scale, so rescaling the reward by any c > 0
        changes no verdict.

    Examples
    --------
    >>> experts = [[[0.6, 0.4, 0.0]], [[0.0, 0.4, 0.6]]]
    >>> check_transcendence(experts, [[0, 1, 0]], [1.0]).margin
    0.6
    >>> check_transcendence(experts, [[0, 1, 0]], [1.0], temperature=1).holds
    False
    """
    e, tol = _setting(experts, reward, tol)
    taus, scalar = _v.temperatures(temperature)
    if not scalar:
        raise ValueError("temperature: check_transcendence takes one temperature; "
                         "use tempered_reward or critical_temperature for many")
    tau = float(taus[0])
    mode = _v.mode(mode)
    atol = _v.tolerance("atol", atol)
    predictor = temper(mixture(e, input_dists, weights), tau, mode=mode, atol=atol)
    expert_rewards = np.asarray(expected_reward(e, reward, test_dist), dtype=float)
    predictor_reward = float(expected_reward(predictor, reward, test_dist))
    best = int(np.argmax(expert_rewards))
    margin = predictor_reward - float(expert_rewards[best])
    return TranscendenceResult(
        holds=bool(margin > tol), margin=margin, best_expert=best, expert_rewards=expert_rewards,
        predictor_reward=predictor_reward, temperature=tau, mode=mode,
        per_input_favor=favor(predictor, e[best], reward), tol=tol)


def critical_temperature(experts: object, reward: object, test_dist: object, *,
                         mode: str = "logit", input_dists: object = None, weights: object = None,
                         tau_min: float = 1e-12, tau_max: float = 1e3, points_per_decade: int = 32,
                         atol: float = ARGMAX_ATOL, tol: float = MARGIN_TOL,
                         xtol: float = 1e-12, rtol: float = 1e-10) -> float | None:
    r"""Prop. 2's threshold, computed: the largest :math:`\tau^*` with :math:`\hat f_\tau`
    transcending for every :math:`\tau \in (0, \tau^*)`.

    Returns
    -------
    ``None`` when no :math:`\tau^* > 0` was found: the argmax predictor loses to the best expert
    (then, by continuity, so does every small enough temperature), or it only ties the best expert
    and the smallest scanned temperature ``tau_min`` does not transcend either. ``math.inf`` when
    no crossing is found up to ``tau_max``. Otherwise the first temperature where the margin
    :math:`m(\tau) = R(\hat f_\tau) - \max_i R(f_i)` falls to the tolerance
    ``tol * max|r|`` (relative to the reward's scale: rescaling the reward by any c > 0 gives the
    same answer).

    Arguments are checked first: ``tol``, ``atol`` finite and >= 0, ``xtol`` > 0, ``rtol`` at least
    4 machine epsilons, ``0 < tau_min < tau_max < inf``, ``points_per_decade`` an integer >= 1.

    Method and its limits
    ---------------------
    1. :math:`m(0)` (the argmax predictor) is computed. A strict loss returns ``None``.
    2. :math:`m` is evaluated on a log-spaced grid from ``tau_min`` to ``tau_max``
       (``points_per_decade`` per decade, fused by :func:`tempered_reward`). The first grid point
       with :math:`m \le` tol brackets the crossing with its predecessor, and Brent's method (on
       :math:`\log\tau`) refines it to ``xtol``/``rtol``.
    3. If the argmax wins but :math:`m(\tau_{min}) \le` tol (a near-tie in :math:`\hat f` that only
       very small temperatures resolve), the scan continues down to 1e-300. If even that does not
       transcend, the argmax won only because its tie tolerance ``atol`` merged two outputs that
       differ by more than rounding; the answer is then ``None``.
    4. If the argmax exactly ties the best expert (:math:`|m(0)| \le` tol), small positive
       temperatures may still transcend (see ``theory``'s ``argmax-ties-best-expert``), by margins
       that vanish as :math:`\tau \to 0` and so fall below the tolerance. The grid decides: if the
       margin becomes positive somewhere on the grid and is never below ``-tol`` before that, the
       small-temperature region is taken as transcending (it cannot be verified below the
       tolerance) and the crossing after it is returned; otherwise ``None``.
    5. Limits: a dip of :math:`m` below the tolerance that starts and ends between two
       neighbouring grid points is missed (a denser ``points_per_decade`` shrinks this risk but
       cannot exclude it); crossings above ``tau_max`` are reported as ``math.inf``.

    Examples
    --------
    >>> experts = [[[0.6, 0.4, 0.0]], [[0.0, 0.4, 0.6]]]
    >>> round(critical_temperature(experts, [[0, 1, 0]], [1.0]), 6)  # 0.4 = (0.4^(1/t)) / (0.4^(1/t) + 2*0.3^(1/t))
    1.0
    """
    e, tol = _setting(experts, reward, tol)
    tau_min = _v.tolerance("tau_min", tau_min)
    tau_max = _v.tolerance("tau_max", tau_max)
    if not 0 < tau_min < tau_max:
        raise ValueError(f"tau_min, tau_max: need 0 < tau_min < tau_max < inf, got {tau_min}, {tau_max}")
    points_per_decade = _v.integer("points_per_decade", points_per_decade, minimum=1)
    atol = _v.tolerance("atol", atol)
    xtol = _v.tolerance("xtol", xtol)
    if xtol <= 0:
        raise ValueError(f"xtol: must be > 0, got {xtol!r}")
    rtol = _v.tolerance("rtol", rtol)
    if rtol < 4 * np.finfo(float).eps:
        raise ValueError(f"rtol: must be at least 4 machine epsilons ({4 * np.finfo(float).eps:.3g}), got {rtol!r}")
    mode = _v.mode(mode)
    f_hat = mixture(e, input_dists, weights)
    best = float(np.max(expected_reward(e, reward, test_dist)))

    def margins(taus: np.ndarray) -> np.ndarray:
        return np.asarray(tempered_reward(f_hat, taus, reward, test_dist, mode=mode, atol=atol)) - best

    m0 = margins(np.array([0.0]))[0]
    if m0 < -tol:
        return None
    decades = math.log10(tau_max) - math.log10(tau_min)
    grid = np.logspace(math.log10(tau_min), math.log10(tau_max),
                       max(2, int(math.ceil(decades * points_per_decade)) + 1))
    m = margins(grid)
    if m0 <= tol:                # the argmax only ties the best expert
        positive = np.flatnonzero(m > tol)
        if positive.size == 0 or (m[:positive[0]] < -tol).any():
            return None
        grid, m = grid[positive[0]:], m[positive[0]:]
        if grid.size == 1 or (m > tol).all():
            return math.inf
    if m[0] <= tol:
        low = np.logspace(-300, math.log10(tau_min), 300 * points_per_decade)
        m_low = margins(low)
        if m_low[0] <= tol:      # the argmax's win comes from its tie tolerance merging a near-tie
            return None
        grid, m = np.concatenate([low, grid[1:]]), np.concatenate([m_low, m[1:]])
    below = np.flatnonzero(m <= tol)
    if below.size == 0:
        return math.inf
    i = int(below[0])
    lo, hi = float(grid[i - 1]), float(grid[i])

    def g(log_tau: float) -> float:
        return float(margins(np.array([math.exp(log_tau)]))[0]) - tol

    root = brentq(g, math.log(lo), math.log(hi), xtol=xtol, rtol=rtol)
    return float(math.exp(root))
