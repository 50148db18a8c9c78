r"""The low-temperature step shared by Props. 2, 3 and 4.

Prop. 2 turns a positive argmax margin into a temperature range; Props. 3 and 4 conclude that the
mixture's argmax is the optimal policy f* and then reuse the same low-temperature conclusion. Both
pieces live here so that the three statements import one module instead of each other.
"""

from __future__ import annotations

import math

import numpy as np

import transcendence as tr
from theory._base import Conclusion, Instance

#: The two temperature modes of ``transcendence.temper`` that every statement is checked in.
MODES = ("logit", "prob")


def low_temperature_threshold(instance: Instance, *, mode: str = "logit", budget: float,
                              side: str = "loss") -> float:
    r"""An explicit :math:`\tau_0` with :math:`|R(\hat f_\tau) - R(\hat f_{\max})|` one-sidedly
    bounded by ``budget`` for every :math:`\tau \in (0, \tau_0]`.

    ``side="loss"``: :math:`R(\hat f_\tau) \ge R(\hat f_{\max}) - \text{budget}`;
    ``side="gain"``: :math:`R(\hat f_\tau) \le R(\hat f_{\max}) + \text{budget}`.

    Per input :math:`x`, let :math:`T_x` be the argmax set of :math:`\hat f(\cdot\mid x)`, :math:`m_x`
    its maximum and :math:`O_x` the other outputs (in logit mode only those with
    :math:`\hat f > 0`; zeros stay zero). Then :math:`\hat f_\tau = (1-\varepsilon_x) u_{T_x} +
    \varepsilon_x \nu_x` with :math:`\nu_x` a distribution on :math:`O_x` and

    .. math::

        \varepsilon_x \le \frac{|O_x|}{|T_x|}\,\kappa_x^{1/\tau}, \qquad
        \kappa_x = \max_{y \in O_x} \frac{\hat f(y\mid x)}{m_x} \ \text{(logit)}, \quad
        \kappa_x = e^{-(m_x - \max_{O_x} \hat f)} \ \text{(prob)},

    so :math:`R(\hat f_{\max}) - R(\hat f_\tau) \le \sum_x p(x) \varepsilon_x L_x \le C \kappa^{1/\tau}`
    with :math:`L_x = \max_{y \in O_x} (r_x(u_{T_x}) - r(x, y))_+` (``side="gain"``: the positive
    part the other way), :math:`C = \sum_x p(x) |O_x| L_x / |T_x|` and :math:`\kappa` the largest
    :math:`\kappa_x` over inputs that contribute. Hence :math:`\tau_0 = \ln(1/\kappa)/\ln(C/\text{budget})`,
    or ``inf`` when :math:`C \le` budget. Exact ties are assumed inside :math:`T_x` (near-ties within
    ``transcendence.ARGMAX_ATOL`` shift the bound by about 1e-12/τ).
    """
    if not budget > 0:
        raise ValueError(f"budget: must be > 0, got {budget!r}")
    if side not in ("loss", "gain"):
        raise ValueError(f"side: must be 'loss' or 'gain', got {side!r}")
    q = instance.mixture()
    argmax = tr.argmax_policy(q)
    tied = argmax > 0
    others = ~tied & (q > 0) if mode == "logit" else ~tied
    r = instance.reward
    tied_reward = np.einsum("xy,xy->x", argmax, r)                    # r_x(u_T)
    diff = (tied_reward[:, None] - r) if side == "loss" else (r - tied_reward[:, None])
    worst = np.where(others, np.maximum(diff, 0.0), 0.0).max(axis=1)  # L_x
    weight = instance.test_dist * others.sum(axis=1) * worst / tied.sum(axis=1)
    contributing = weight > 0
    if not contributing.any():
        return math.inf
    c_total = float(weight.sum())
    top = q.max(axis=1)
    runner_up = np.where(others, q, -np.inf).max(axis=1)
    if mode == "logit":
        log_kappa = np.log(runner_up[contributing] / top[contributing])   # < 0
    else:
        log_kappa = -(top[contributing] - runner_up[contributing])
    kappa_log = float(log_kappa.max())
    if c_total <= budget:
        return math.inf
    return -kappa_log / math.log(c_total / budget)



def low_temperature_conclusion(instance: Instance, delta: float, margin: float, where: str,
                               values: dict) -> Conclusion:
    """Given an argmax margin ``delta`` > 0, check that f̂_τ keeps at least δ/2 of it at τ0, τ0/10
    and τ0/1000 in both modes (τ0 = :func:`low_temperature_threshold` with budget δ/2)."""
    for mode in MODES:
        tau0 = low_temperature_threshold(instance, mode=mode, budget=delta / 2)
        values[f"tau0_{mode}"] = tau0
        anchor = tau0 if math.isfinite(tau0) else 1e3
        taus = anchor * np.array([1.0, 0.1, 1e-3])
        m = instance.margins(taus, mode=mode)
        i = int(np.argmin(m))
        if m[i] < delta / 2 - 1e-12:
            return Conclusion(False, float(m[i]), f"{mode}: τ = {taus[i]:.4g} does not transcend", values)
        if m[i] < margin:
            margin, where = float(m[i]), f"{mode}, τ = {taus[i]:.3g}"
    return Conclusion(True, margin, where, values)


def argmax_differs_from_optimal(instance: Instance) -> Conclusion | None:
    """A failed Conclusion naming the first input where the mixture's argmax is not f*, else None
    (Props. 3 and 4 both conclude f̂_max = f*)."""
    f_star = tr.optimal_policy(instance.reward)
    argmax = tr.argmax_policy(instance.mixture())
    diff = np.abs(argmax - f_star).max(axis=1)
    if diff.max() > 1e-12:
        x = int(np.argmax(diff))
        return Conclusion(False, -float(diff[x]), f"input {x}: argmax ≠ f*")
    return None
