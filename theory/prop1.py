r"""Prop. 1: no transcendence by pure imitation (τ = 1) when the experts share one input distribution.

.. math::

    R(\hat f) = \sum_i w_i R(f_i) \le \max_i R(f_i),

with equality iff every expert with positive weight has the largest reward (with equal weights,
the paper's setting: iff all experts have equal reward). Checked in the quantitative form

.. math::

    w_{\min}\, G \;\le\; \max_i R(f_i) - R(\hat f) \;\le\; G, \qquad
    G = \max_{i: w_i > 0} \big(\max_j R(f_j) - R(f_i)\big),

which gives the inequality and both directions of the equality case at once.
"""

from __future__ import annotations

import numpy as np

from theory import _random
from theory._base import Conclusion, Counterexample, Instance, Statement, reward_tol, shared_input_distribution

ID = "prop1"
TITLE = "No transcendence at temperature 1 with a shared input distribution"
REFERENCE = "Zhang et al. 2024, Prop. 1"


def _weights(instance: Instance) -> np.ndarray:
    w = np.ones(instance.n_experts) if instance.weights is None else np.asarray(instance.weights)
    return w / w.sum()


def hypotheses(instance: Instance) -> bool:
    """One input distribution shared by all experts (any non-negative expert weights)."""
    return shared_input_distribution(instance)


def conclusion(instance: Instance) -> Conclusion:
    r"""R(f̂) = Σ w_i R(f_i) and w_min·G ≤ max_i R(f_i) − R(f̂) ≤ G (so ≤ holds, = iff G = 0)."""
    tol = reward_tol(instance.reward)
    res = instance.check(temperature=1.0)
    rewards = res.expert_rewards
    w = _weights(instance)
    active = w > 0
    gap = rewards.max() - rewards                      # (k,) how far each expert is from the best
    spread = float(gap[active].max())                  # G
    w_min = float(w[active].min())
    margin = float(rewards.max() - res.predictor_reward)  # max_i R(f_i) - R(f_hat)
    linear = abs(res.predictor_reward - float(w @ rewards)) <= tol
    lower = margin >= w_min * spread - tol
    upper = margin <= spread + tol
    holds = bool(margin >= -tol and linear and lower and upper)
    if not linear:
        where = "R(f̂) differs from the weighted average of the experts' rewards"
    elif margin < -tol:
        where = f"R(f̂) exceeds the best expert ({res.best_expert}) by {-margin:.3g}"
    elif not (lower and upper):
        where = "equality case: margin outside [w_min·G, G]"
    else:
        where = f"best expert {res.best_expert}"
    return Conclusion(holds, float(margin), where, {
        "predictor_reward": res.predictor_reward, "best_expert_reward": float(rewards.max()),
        "spread": spread, "w_min": w_min, "equality": float(abs(margin) <= tol)})


def sample(rng: np.random.Generator, *, n_experts: int | None = None, n_inputs: int | None = None,
           n_outputs: int | None = None) -> Instance:
    """Random experts sharing one input distribution; about a quarter are equality cases
    (identical experts, or a reward that is constant on the test support)."""
    k, n_x, n_y = _random.sizes(rng, n_experts, n_inputs, n_outputs)
    kind = rng.choice(["generic", "copies", "constant-reward"], p=[0.75, 0.15, 0.10])
    experts = _random.rows(rng, (k, n_x), n_y)
    if kind == "copies":
        experts = np.broadcast_to(experts[:1], experts.shape)
    reward = _random.reward(rng, n_x, n_y)
    test = _random.dist(rng, n_x)
    if kind == "constant-reward":
        reward[test > 0] = reward[test > 0, :1]
    input_dists = None
    if rng.random() < 0.5:                             # the shared distribution, given explicitly
        input_dists = np.broadcast_to(_random.dist(rng, n_x), (k, n_x))
    weights = None
    if rng.random() < 0.5:                             # unequal data shares, some may be zero
        weights = rng.integers(0, 5, size=k).astype(float)
        weights[rng.integers(k)] += 1.0
    return Instance(experts, reward, test, input_dists, weights)


def counterexamples() -> tuple[Counterexample, ...]:
    # Two inputs, two outputs, the right output at input x is y = x. Expert a is right on input 0
    # only, expert b on input 1 only; a sees mostly input 0, b mostly input 1. The learner then
    # trusts each expert where it is right: R(f̂) = 0.9 > 0.5 = R(f_a) = R(f_b).
    different = Instance(
        experts=[[[1.0, 0.0], [1.0, 0.0]], [[0.0, 1.0], [0.0, 1.0]]],
        reward=[[1.0, 0.0], [0.0, 1.0]], test_dist=[0.5, 0.5],
        input_dists=[[0.9, 0.1], [0.1, 0.9]])
    return (Counterexample(
        "different-input-distributions", "one shared input distribution", different,
        "Each expert mostly sees the inputs it is right on; the learner's posterior g(i|x) "
        "selects the right expert per input and R(f̂) = 0.9 > 0.5 = max_i R(f_i) at τ = 1."),)


STATEMENT = Statement(
    id=ID, title=TITLE, reference=REFERENCE, source="paper", hypotheses=hypotheses,
    conclusion=conclusion, sample=sample, counterexamples=counterexamples,
    hypotheses_text="all experts share one input distribution (any expert weights)",
    conclusion_text="R(f̂) ≤ max_i R(f_i), with equality iff every expert with positive weight "
                    "is a best expert (equal weights: iff all rewards are equal)")
