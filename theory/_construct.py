"""Instances on which the argmax predictor wins (or loses) against every expert, by construction.

The construction (used by Prop. 2, its converse and the convexity statement):

1. Draw arbitrary experts (ties, zeros), optional per-expert input distributions and weights, and
   a base reward :math:`r_0`.
2. Pick a *disagreement input* :math:`x_0` in every test support and overwrite the experts' rows
   there: :math:`f_i(\\cdot\\mid x_0) = (1 - a_i)\\,u_T + a_i\\, e_{z_i}` with a set :math:`T` of
   outputs, :math:`z_i \\notin T` and :math:`0 < a_i \\le 1/(2(|T|+1))`. Whatever the posterior
   :math:`g(i\\mid x_0)`, the mixture's maximisers at :math:`x_0` are exactly :math:`T`, and every
   expert puts mass :math:`a_i > 0` outside the argmax set on the test support.
3. Add a bonus :math:`\\lambda\\,b` to the reward, :math:`b(x, y) = 1\\{\\hat f_{\\max}(y\\mid x) > 0\\}`.
   Then :math:`R(\\hat f_{\\max})` grows by :math:`\\lambda` and :math:`R(f_i)` by
   :math:`\\lambda c_i` with :math:`c_i = R_b(f_i) < 1`, so a large enough :math:`\\lambda` makes
   the argmax beat every expert (``sign=+1``), or a large enough :math:`-\\lambda` makes it lose
   to some expert (``sign=-1``). :math:`\\lambda` is the smallest such value plus a random slack,
   rounded up to a multiple of 1/8 so that reward ties stay common.
"""

from __future__ import annotations

import math

import numpy as np

import transcendence as tr
from theory import _random


def decisive(rng: np.random.Generator, k: int, n_x: int, n_y: int, *, sign: int = 1,
             n_tests: int = 1):
    """(experts, reward, test_dists (n_tests, n_x), input_dists or None, weights or None)."""
    experts = _random.rows(rng, (k, n_x), n_y)
    input_dists = None
    u = rng.random()
    if u < 0.3:
        input_dists = np.broadcast_to(_random.dist(rng, n_x), (k, n_x)).copy()
    elif u < 0.6:
        input_dists = _random.rows(rng, (k,), n_x)
    weights = None
    if rng.random() < 0.4:
        weights = rng.integers(0, 5, size=k).astype(float)
        weights[rng.integers(k)] += 1.0
    x0 = int(rng.integers(n_x))
    t = int(rng.integers(1, n_y))                              # |T| in 1 .. n_y - 1
    perm = rng.permutation(n_y)
    top, rest = perm[:t], perm[t:]
    a = rng.integers(1, 5, size=k) / (8.0 * (t + 1))          # 0 < a_i <= 1/(2(t+1))
    z = rest[rng.integers(0, rest.size, size=k)]
    experts[:, x0, :] = 0.0
    experts[:, x0, top] = ((1.0 - a) / t)[:, None]
    experts[np.arange(k), x0, z] += a
    tests = np.stack([_random.dist(rng, n_x, include=(x0,)) for _ in range(n_tests)])
    base = _random.reward(rng, n_x, n_y)

    argmax = tr.argmax_policy(tr.mixture(experts, input_dists, weights))
    bonus = (argmax > 0).astype(float)
    need = []
    for p in tests:
        r0_argmax = float(tr.expected_reward(argmax, base, p))
        r0_experts = np.asarray(tr.expected_reward(experts, base, p))
        c = np.asarray(tr.expected_reward(experts, bonus, p))   # < 1 for every expert
        if sign > 0:
            need.append(float(np.max((r0_experts - r0_argmax) / (1.0 - c))))
        else:
            need.append(float(np.min((r0_argmax - r0_experts) / (1.0 - c))))
    lam = max(0.0, max(need)) + float(rng.uniform(0.05, 1.0))
    lam = math.ceil(lam * 8.0) / 8.0
    reward = base + sign * lam * bonus
    return experts, reward, tests, input_dists, weights
