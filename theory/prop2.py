r"""Prop. 2: low-temperature sampling transcends iff the argmax predictor does.

Forward (``prop2``): if :math:`R(\hat f_{\max}) > \max_i R(f_i)` then there is :math:`\tau^* > 0`
with :math:`\hat f_\tau` transcending for every :math:`\tau \in [0, \tau^*]`, in both temperature
modes. The check goes beyond existence:

* an explicit threshold :math:`\tau_0` (our bound, :func:`low_temperature_threshold`) below which
  the margin stays at least half the argmax margin, verified on a grid;
* ``transcendence.critical_temperature`` returns a :math:`\tau^* \ge \tau_0`; the margin is
  positive on a log grid of :math:`(0, \tau^*)` and just below :math:`\tau^*`, and (when
  :math:`\tau^*` is finite) not positive just above it.

Converse (``prop2-converse``): if the argmax predictor strictly loses,
:math:`R(\hat f_{\max}) < \max_i R(f_i)`, then every low temperature loses too: for all
:math:`\tau \le \tau_0^-` (explicit) the margin is at most half the (negative) argmax margin, and
``critical_temperature`` is ``None``. With the convention :math:`\hat f_0 = \hat f_{\max}` this is
the paper's "only if". The strictness is needed: see the counterexample, where the argmax only
ties with the best expert and every :math:`\tau \in (0, 1)` transcends.
"""

from __future__ import annotations

import math

import numpy as np

import transcendence as tr
from theory import _construct, _random, prop3, prop4
from theory._base import Conclusion, Counterexample, Instance, Statement
from theory._lowtemp import MODES, argmax_differs_from_optimal, low_temperature_conclusion, low_temperature_threshold  # noqa: F401

#: Relative offset for "just below" and "just above" the critical temperature.
NEAR = 1e-4
#: Grid density passed to ``critical_temperature`` (its default is 32). The check below scans
#: (0, τ*) itself at 16 points per decade or more, so a dip the coarser search misses is caught.
POINTS_PER_DECADE = 8


def hypotheses(instance: Instance) -> bool:
    """The argmax predictor transcends: R(f̂_max) > max_i R(f_i) (beyond ``MARGIN_TOL``)."""
    return bool(instance.check(temperature=0.0).holds)


def _forward(instance: Instance, mode: str) -> tuple[bool, float, str, dict[str, float]]:
    delta = instance.check(temperature=0.0).margin
    values = {"argmax_margin": delta}
    if delta <= tr.MARGIN_TOL:
        return False, delta, "τ = 0: the argmax predictor does not transcend", values
    tau0 = low_temperature_threshold(instance, mode=mode, budget=delta / 2, side="loss")
    tau_star = instance.critical_temperature(mode=mode, points_per_decade=POINTS_PER_DECADE)
    values[f"tau0_{mode}"] = tau0
    values[f"tau_star_{mode}"] = math.nan if tau_star is None else tau_star
    if tau_star is None:
        return False, delta, f"{mode}: critical_temperature returned None", values
    if tau_star < tau0 * (1 - 1e-9):
        return False, delta, f"{mode}: critical_temperature {tau_star:.6g} < bound {tau0:.6g}", values
    # 1. The explicit bound: margin >= delta/2 on (0, tau0].
    anchor = tau0 if math.isfinite(tau0) else 1e3
    cert = anchor * np.array([1.0, 0.3, 0.1, 1e-2, 1e-4])
    m_cert = instance.margins(cert, mode=mode)
    if (m_cert < delta / 2 - 1e-12).any():
        i = int(np.argmin(m_cert))
        return False, float(m_cert[i]), f"{mode}: bound violated at τ = {cert[i]:.4g}", values
    # 2. Positive on a log grid of (0, tau*) and just below tau*.
    top = tau_star * (1 - NEAR) if math.isfinite(tau_star) else 1e3
    grid = np.geomspace(min(top, anchor) * 1e-3, top, 48)
    m_grid = instance.margins(grid, mode=mode)
    if (m_grid <= tr.MARGIN_TOL).any():
        i = int(np.argmax(m_grid <= tr.MARGIN_TOL))
        return False, float(m_grid[i]), f"{mode}: no transcendence at τ = {grid[i]:.6g} < τ*", values
    # 3. Not transcending just above a finite tau*.
    if math.isfinite(tau_star):
        above = float(instance.margins([tau_star * (1 + NEAR)], mode=mode)[0])
        values[f"margin_above_{mode}"] = above
        if above > tr.MARGIN_TOL:
            return False, above, f"{mode}: still transcends just above τ* = {tau_star:.6g}", values
    i = int(np.argmin(m_cert))
    return True, float(min(delta, m_cert[i])), f"{mode}, τ = {cert[i]:.3g}", values


def conclusion(instance: Instance) -> Conclusion:
    """For both modes: f̂_τ transcends for all τ in [0, τ*], τ* = critical_temperature ≥ τ0 > 0."""
    values: dict[str, float] = {}
    worst = (True, math.inf, "")
    for mode in MODES:
        holds, margin, where, v = _forward(instance, mode)
        values.update(v)
        if not holds:
            return Conclusion(False, margin, where, values)
        if margin < worst[1]:
            worst = (True, margin, where)
    return Conclusion(True, worst[1], worst[2], values)


def sample(rng: np.random.Generator, *, n_experts: int | None = None, n_inputs: int | None = None,
           n_outputs: int | None = None) -> Instance:
    """An instance whose argmax predictor transcends, built as in ``theory._construct``; about a
    fifth are Prop. 3 or Prop. 4 instances instead."""
    u = rng.random()
    if u < 0.1:
        return prop3.sample(rng, n_experts=n_experts, n_inputs=n_inputs, n_outputs=n_outputs)
    if u < 0.2 and (n_experts is None or n_experts >= 2) and (n_inputs is None or n_inputs >= 2):
        return prop4.sample(rng, n_experts=n_experts, n_inputs=n_inputs, n_outputs=n_outputs)
    k, n_x, n_y = _random.sizes(rng, n_experts, n_inputs, n_outputs)
    experts, reward, tests, input_dists, weights = _construct.decisive(rng, k, n_x, n_y, sign=1)
    return Instance(experts, reward, tests[0], input_dists, weights)


# Three experts, one input, three outputs, only output 0 is right. Two experts share the same
# mistake (output 1) and outvote the good one: the argmax picks output 1.
SHARED_WRONG_MAJORITY = Instance(
    experts=[[[0.2, 0.8, 0.0]], [[0.2, 0.8, 0.0]], [[1.0, 0.0, 0.0]]],
    reward=[[1.0, 0.0, 0.0]], test_dist=[1.0])


def _confirm_no_low_temperature(statement: Statement, instance: Instance) -> bool:
    small = np.array([1e-4, 1e-3, 1e-2, 1e-1, 1.0])
    return (not statement.hypotheses(instance) and not statement.conclusion(instance).holds
            and all(instance.critical_temperature(mode=m) is None for m in MODES)
            and all((instance.margins(small, mode=m) < 0).all() for m in MODES))


def counterexamples() -> tuple[Counterexample, ...]:
    return (Counterexample(
        "shared-wrong-majority", "the argmax predictor beats the best expert",
        SHARED_WRONG_MAJORITY,
        "Two of three experts make the same mistake, so the majority vote is wrong: "
        "R(f̂_max) = 0 < 1 = R(f_3), and no temperature in [0, 1] transcends.",
        confirm=_confirm_no_low_temperature),)


STATEMENT = Statement(
    id="prop2", title="Low temperature transcends if the argmax predictor does",
    reference="Zhang et al. 2024, Prop. 2", source="paper",
    hypotheses=hypotheses, conclusion=conclusion, sample=sample, counterexamples=counterexamples,
    hypotheses_text="R(f̂_max) > max_i R(f_i) (any experts, input distributions, weights)",
    conclusion_text="in both modes, f̂_τ transcends for all τ ∈ [0, τ*] with τ* = "
                    "critical_temperature ≥ τ0 (explicit bound) > 0; τ* is sharp when finite")


# --------------------------------------------------------------------------------------------
# The converse.


def converse_hypotheses(instance: Instance) -> bool:
    """The argmax predictor strictly loses: R(f̂_max) < max_i R(f_i) (beyond ``MARGIN_TOL``)."""
    return bool(instance.check(temperature=0.0).margin < -tr.MARGIN_TOL)


def converse_conclusion(instance: Instance) -> Conclusion:
    """For both modes: no τ* > 0 (critical_temperature is None) and, for all τ ≤ τ0⁻ (explicit),
    R(f̂_τ) − max_i R(f_i) ≤ δ/2 < 0 with δ the argmax margin."""
    delta = instance.check(temperature=0.0).margin
    values: dict[str, float] = {"argmax_margin": delta}
    small = np.array([1e-3, 1e-2, 1e-1])
    if delta >= -tr.MARGIN_TOL:                 # outside the hypotheses: look at small τ only
        for mode in MODES:
            m = instance.margins(small, mode=mode)
            if (m > tr.MARGIN_TOL).any():
                i = int(np.argmax(m))
                return Conclusion(False, -float(m[i]), f"{mode}: transcends at τ = {small[i]:g}", values)
        return Conclusion(True, -delta, "τ = 0", values)
    margin, where = -delta, "τ = 0"
    for mode in MODES:
        if instance.critical_temperature(mode=mode) is not None:
            return Conclusion(False, -delta, f"{mode}: critical_temperature is not None", values)
        tau0 = low_temperature_threshold(instance, mode=mode, budget=-delta / 2, side="gain")
        values[f"tau0_{mode}"] = tau0
        anchor = tau0 if math.isfinite(tau0) else 1e3
        taus = anchor * np.array([1.0, 0.3, 0.1, 1e-2, 1e-4])
        m = instance.margins(taus, mode=mode)
        i = int(np.argmax(m))
        if m[i] > delta / 2 + 1e-12:
            return Conclusion(False, -float(m[i]), f"{mode}: bound violated at τ = {taus[i]:.4g}", values)
        if -m[i] < margin:
            margin, where = -float(m[i]), f"{mode}, τ = {taus[i]:.3g}"
    return Conclusion(True, margin, where, values)


def converse_sample(rng: np.random.Generator, *, n_experts: int | None = None,
                    n_inputs: int | None = None, n_outputs: int | None = None) -> Instance:
    """An instance whose argmax predictor strictly loses to some expert, by construction."""
    k, n_x, n_y = _random.sizes(rng, n_experts, n_inputs, n_outputs)
    experts, reward, tests, input_dists, weights = _construct.decisive(rng, k, n_x, n_y, sign=-1)
    return Instance(experts, reward, tests[0], input_dists, weights)


# One input, outputs (safe, better, bad) with rewards (0.6, 1, 0). The mixture is (0.5, 0.3, 0.2):
# the argmax plays "safe" and only ties with the best expert (0.6), but any 0 < τ < 1 moves some
# mass to "better" faster than to "bad" and wins. So the converse needs the convention f̂_0 = f̂_max
# (or a strict loss): with τ > 0 only, "transcends on (0, τ*]" does not imply that the argmax wins.
TIE_AT_ZERO = Instance(
    experts=[[[1.0, 0.0, 0.0]], [[0.0, 0.6, 0.4]]], reward=[[0.6, 1.0, 0.0]], test_dist=[1.0])


#: Temperatures at which TIE_AT_ZERO visibly transcends (below them the gain is < 1e-12).
TIE_TEMPERATURES = {"logit": (0.05, 0.1, 0.3, 0.5, 0.9), "prob": (0.02, 0.05, 0.1)}


def _confirm_tie(statement: Statement, instance: Instance) -> bool:
    return (not statement.hypotheses(instance) and not statement.conclusion(instance).holds
            and abs(instance.check(temperature=0.0).margin) <= 1e-12
            and all((instance.margins(t, mode=m) > tr.MARGIN_TOL).all()
                    for m, t in TIE_TEMPERATURES.items()))


def converse_counterexamples() -> tuple[Counterexample, ...]:
    return (Counterexample(
        "argmax-ties-best-expert", "the argmax predictor strictly loses", TIE_AT_ZERO,
        "R(f̂_max) = max_i R(f_i) = 0.6 exactly, yet f̂_τ transcends for every τ in (0, 1) "
        "(logit mode) and for small τ > 0 (prob mode): a tie at τ = 0 does not carry over to "
        "small τ > 0.", confirm=_confirm_tie),)


CONVERSE = Statement(
    id="prop2-converse", title="If the argmax predictor loses, so does every low temperature",
    reference="Zhang et al. 2024, Prop. 2, 'only if' (v4); strict form and bound ours",
    source="paper", hypotheses=converse_hypotheses, conclusion=converse_conclusion,
    sample=converse_sample, counterexamples=converse_counterexamples,
    hypotheses_text="R(f̂_max) < max_i R(f_i)",
    conclusion_text="in both modes, critical_temperature is None and R(f̂_τ) − max_i R(f_i) ≤ δ/2 < 0 "
                    "for all τ ≤ τ0⁻ (explicit bound), δ the argmax margin")
