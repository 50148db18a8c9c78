r"""An intermediate temperature can beat both τ → 0 and τ = 1, and be the only one that transcends.

The question: is there an instance where some :math:`0 < \tau < 1` beats both the argmax
predictor and the plain mixture? Yes, already with one input and three outputs:

==========  =========  ========  =========
output       "safe"    "better"    "bad"
==========  =========  ========  =========
reward        0.6        1.0        0.0
expert 1     0.975      0.025      0
expert 2     0.025      0.575      0.4
mixture       0.5        0.3        0.2
==========  =========  ========  =========

:math:`R(f_1) = 0.61`, :math:`R(f_2) = 0.59`. The argmax plays "safe" (0.6) and the mixture gets
:math:`0.5 \cdot 0.6 + 0.3 = 0.6`: both lose to expert 1. At :math:`\tau` in between, the tempered
mixture :math:`\propto (0.5^{1/\tau}, 0.3^{1/\tau}, 0.2^{1/\tau})` (logit mode) takes mass away from
"safe" and gives it mostly to "better", because "better" is ranked above "bad": at
:math:`\tau = 0.35` the reward is about 0.638 > 0.61. In prob mode the peak is about 0.621 near
:math:`\tau = 0.11`.

Mechanism: the argmax wins nothing when the plurality output is a mediocre "safe" choice; a soft
vote keeps the runner-up, which is better, while still suppressing the worst output. The chess
results (peak at τ = 0.01–0.1, not at τ → 0) fit this pattern. The general criterion (ours): if
the runner-ups of the inputs closest to a tie are better than the argmax, then
:math:`R(\hat f_\tau) > R(\hat f_{\max})` for all small :math:`\tau > 0` (the first-order term of
the expansion in :math:`\kappa^{1/\tau}` is positive; see ``theory/README.md``).
"""

from __future__ import annotations

import math

import numpy as np

import transcendence as tr
from theory import _random
from theory._base import Conclusion, Counterexample, Instance, Statement

#: Temperatures on which the curve is scanned (0 and 1 included).
GRID = np.concatenate([[0.0], np.geomspace(1e-3, 1.0, 400)])


def example() -> Instance:
    """The instance in the module docstring."""
    return Instance(experts=[[[0.975, 0.025, 0.0]], [[0.025, 0.575, 0.4]]],
                    reward=[[0.6, 1.0, 0.0]], test_dist=[1.0])


def interior_optimum(instance: Instance, *, mode: str = "logit") -> Conclusion:
    """Does some τ in (0, 1) beat both τ = 0 and τ = 1, and transcend while neither end does?

    ``margin`` is m(τ_best) − max(m(0), m(1), 0) over :data:`GRID`, where m is the transcendence
    margin; ``where`` names τ_best.
    """
    m = instance.margins(GRID, mode=mode)
    ends = max(float(m[0]), float(m[-1]))
    i = int(np.argmax(m[1:-1])) + 1
    margin = float(m[i]) - max(ends, 0.0)
    return Conclusion(bool(margin > 0 and ends <= 0), margin, f"{mode}, τ = {GRID[i]:.3g}",
                      {"margin_tau0": float(m[0]), "margin_tau1": float(m[-1]),
                       "best_tau": float(GRID[i]), "best_margin": float(m[i])})


# --------------------------------------------------------------------------------------------
# The criterion as a statement: first-order gain at small τ, and an interior optimum.

#: Temperatures scanned by the statement's conclusion (plus the explicit witness τ_w).
_COARSE = np.geomspace(1e-4, 1.0, 97)[:-1]
#: Two runner-up ratios within this relative distance count as equal.
RATIO_RTOL = 1e-12


def first_order(instance: Instance) -> dict[str, float]:
    r"""The small-τ expansion of :math:`R(\hat f_\tau) - R(\hat f_{\max})` in logit mode.

    Returns ``c`` (the first-order coefficient), ``kappa`` (the largest runner-up ratio over test
    inputs), and the quantities of the explicit witness: ``tau_w`` with
    :math:`R(\hat f_\tau) - R(\hat f_{\max}) \ge \kappa^{1/\tau} c/2 > 0` for every
    :math:`\tau \in (0, \tau_w]` when ``c > 0`` (``tau_w = nan`` otherwise). See theory/README.md.
    """
    q = instance.mixture()
    argmax = tr.argmax_policy(q)
    tied = argmax > 0
    t = tied.sum(axis=1)
    others = ~tied & (q > 0)
    active = (instance.test_dist > 0) & others.any(axis=1)
    out = {"c": 0.0, "kappa": 0.0, "tau_w": math.nan}
    if not active.any():
        return out
    ratio = np.where(others, q / q.max(axis=1, keepdims=True), 0.0)
    kappa = float(ratio[active].max())
    top = others & active[:, None] & (ratio >= kappa * (1 - RATIO_RTOL))
    rest = others & active[:, None] & ~top
    d = instance.reward - np.einsum("xy,xy->x", argmax, instance.reward)[:, None]
    p_t = instance.test_dist / t
    per_input = np.where(top, d, 0.0).sum(axis=1)                  # D_x
    c = float(p_t @ per_input)
    out.update(c=c, kappa=kappa)
    if c <= 0:
        return out
    p_plus = float(p_t @ np.maximum(per_input, 0.0))
    n_ratio = float((others.sum(axis=1) / t)[top.any(axis=1)].max())
    q_rest = float(p_t @ np.where(rest, np.abs(d), 0.0).sum(axis=1))
    s = 1.0 + 1e-9
    if 4 * p_plus * n_ratio > c:
        s = max(s, math.log(4 * p_plus * n_ratio / c) / -math.log(kappa))
    if q_rest > 0 and 4 * q_rest > c:
        kappa_next = float(ratio[rest].max())
        s = max(s, math.log(4 * q_rest / c) / math.log(kappa / kappa_next))
    out.update(tau_w=1.0 / s, p_plus=p_plus, n_ratio=n_ratio, q_rest=q_rest)
    return out


def _ends(instance: Instance) -> tuple[float, float]:
    r0, r1 = tr.tempered_reward(instance.mixture(), np.array([0.0, 1.0]), instance.reward,
                                instance.test_dist)
    return float(r0), float(r1)


def _tol(instance: Instance) -> float:
    return 1e-12 * max(1.0, float(np.abs(instance.reward).max()))


def hypotheses(instance: Instance) -> bool:
    """Logit mode: the first-order coefficient c is positive (runner-ups of the closest-to-tie test
    inputs are better than the argmax, on balance) and R(f̂_max) ≥ R(f̂) (τ = 1)."""
    r0, r1 = _ends(instance)
    return first_order(instance)["c"] > _tol(instance) and r0 >= r1 - _tol(instance)


def conclusion(instance: Instance) -> Conclusion:
    """Some τ in (0, 1) has R(f̂_τ) > max(R(f̂_max), R(f̂)); margin = the best such excess."""
    r0, r1 = _ends(instance)
    fo = first_order(instance)
    taus = list(_COARSE)
    if math.isfinite(fo["tau_w"]):
        taus += [fo["tau_w"] * f for f in (1.0, 0.5, 0.1) if fo["tau_w"] * f < 1.0]
    taus = np.array(taus)
    values = np.asarray(tr.tempered_reward(instance.mixture(), taus, instance.reward,
                                           instance.test_dist))
    i = int(np.argmax(values))
    margin = float(values[i]) - max(r0, r1)
    info = {"reward_tau0": r0, "reward_tau1": r1, "best_tau": float(taus[i]),
            "c": fo["c"], "tau_w": fo["tau_w"]}
    return Conclusion(margin > _tol(instance), margin, f"τ = {taus[i]:.3g}", info)


def sample(rng: np.random.Generator, *, n_experts: int | None = None, n_inputs: int | None = None,
           n_outputs: int | None = None) -> Instance:
    """An instance with c > 0 and R(f̂_max) ≥ R(f̂), by construction (n_outputs ≥ 3).

    At a test input x*, every expert plays q* = (m on T, κm on S, βκm on the rest), with κ above
    every other test input's runner-up ratio, so x* alone sets the first-order term; rewards at x*
    are 0 on T, positive on S and −L on the rest. The other inputs' reward rows are scaled down so
    that their losses cannot hide x*'s gain, and L is the smallest value (plus slack) that makes
    R(f̂_max) ≥ R(f̂).
    """
    if n_outputs is not None and n_outputs < 3:
        raise ValueError("n_outputs: need >= 3 (with one input and two outputs R(f̂_τ) is "
                         f"monotone in τ), got {n_outputs}")
    k, n_x, n_y = _random.sizes(rng, n_experts, n_inputs, n_outputs)
    n_y = max(n_y, 3)
    experts = _random.rows(rng, (k, n_x), n_y)
    input_dists = _random.rows(rng, (k,), n_x) if rng.random() < 0.3 else None
    weights = rng.integers(1, 5, size=k).astype(float) if rng.random() < 0.3 else None
    x_star = int(rng.integers(n_x))
    test = _random.dist(rng, n_x, include=(x_star,))
    reward = _random.reward(rng, n_x, n_y)

    # Other inputs: their largest runner-up ratio on the test support.
    q = tr.mixture(experts, input_dists, weights)
    tied = tr.argmax_policy(q) > 0
    others = ~tied & (q > 0)
    ratio = np.where(others, q / q.max(axis=1, keepdims=True), 0.0)
    mask = np.ones(n_x, bool)
    mask[x_star] = False
    kappa_min = float(ratio[mask & (test > 0)].max()) if (mask & (test > 0)).any() else 0.0
    kappa = kappa_min + (1.0 - kappa_min) * float(rng.uniform(0.3, 0.9))
    beta = float(rng.uniform(0.1, 0.6))
    n_t = int(rng.integers(1, 3)) if n_y >= 4 else 1
    n_s = int(rng.integers(1, 3)) if n_y - n_t >= 3 else 1
    n_rest = n_y - n_t - n_s
    m = 1.0 / (n_t + n_s * kappa + n_rest * beta * kappa)
    perm = rng.permutation(n_y)
    t_idx, s_idx, r_idx = perm[:n_t], perm[n_t:n_t + n_s], perm[n_t + n_s:]
    row = np.empty(n_y)
    row[t_idx], row[s_idx], row[r_idx] = m, kappa * m, beta * kappa * m
    experts[:, x_star, :] = row / row.sum()

    # Rewards at x*: 0 on T, positive on S; scale the other rows down.
    gains = rng.integers(1, 4, size=n_s).astype(float)
    reward[x_star, t_idx] = 0.0
    reward[x_star, s_idx] = gains
    c = float(test[x_star] * gains.sum() / n_t)
    argmax = tr.argmax_policy(tr.mixture(experts, input_dists, weights))
    d = reward - np.einsum("xy,xy->x", argmax, reward)[:, None]
    loss = float((test / argmax.astype(bool).sum(axis=1) * np.where(others, np.abs(d), 0.0).sum(axis=1))[mask].sum())
    if loss > c / 8:
        reward[mask] *= c / (8 * loss)
    # L: the smallest penalty on the rest outputs at x* that makes R(f̂_max) >= R(f̂), plus slack.
    reward[x_star, r_idx] = 0.0
    f_hat = tr.mixture(experts, input_dists, weights)
    r0, r1 = (float(v) for v in tr.tempered_reward(f_hat, np.array([0.0, 1.0]), reward, test))
    rest_mass = float(test[x_star] * f_hat[x_star, r_idx].sum())
    penalty = max(0.0, (r1 - r0) / rest_mass) + float(rng.uniform(0.0, 2.0))
    reward[x_star, r_idx] = -math.ceil(penalty * 8.0) / 8.0
    return Instance(experts, reward, test, input_dists, weights)


def counterexamples() -> tuple[Counterexample, ...]:
    toy = Instance([[[0.6, 0.4, 0.0]], [[0.0, 0.4, 0.6]]], [[0.0, 1.0, 0.0]], [1.0])
    soft = Instance([[[0.5, 0.3, 0.2]]], [[0.0, 1.0, 0.9]], [1.0])
    return (
        Counterexample(
            "runner-up-worse", "c > 0 (the runner-up is better than the argmax)", toy,
            "The paper's example: the runner-ups are wrong (c = −2 < 0) and R(f̂_τ) falls "
            "monotonically from 1 at τ → 0 to 0.4 at τ = 1: the argmax is best."),
        Counterexample(
            "mixture-beats-argmax", "R(f̂_max) ≥ R(f̂)", soft,
            "c = 1 > 0, so small τ > 0 beat the argmax (reward 0), but the reward keeps rising up "
            "to τ = 1 (0.48): the best temperature in [0, 1] is the end τ = 1."),
    )


STATEMENT = Statement(
    id="interior", title="A better runner-up near a tie makes an intermediate temperature best",
    reference="ours (theory/README.md, 'An intermediate temperature can beat both ...')",
    source="ours", hypotheses=hypotheses, conclusion=conclusion, sample=sample,
    counterexamples=counterexamples,
    hypotheses_text="logit mode; first-order coefficient c > 0 at the closest-to-tie test inputs; "
                    "R(f̂_max) ≥ R(f̂)",
    conclusion_text="some τ in (0, 1) has R(f̂_τ) > max(R(f̂_max), R(f̂)); explicitly every "
                    "τ ≤ τ_w beats the argmax")
