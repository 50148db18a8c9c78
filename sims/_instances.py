"""Random instances shared by the sweeps: rewards and experts with random mistakes.

Shapes follow the core: reward ``(n_x, n_y)``, experts ``(k, n_x, n_y)``.
"""

from __future__ import annotations

import math

import numpy as np

from transcendence import noisy_expert

__all__ = ["random_reward", "random_noise", "noisy_experts"]


def random_reward(n_x: int, n_y: int, *, rng: np.random.Generator) -> np.ndarray:
    """Rewards ``r(x, y) ~ Uniform(0, 1)`` i.i.d., shape ``(n_x, n_y)`` (unique best output a.s.)."""
    return rng.random((n_x, n_y))


def random_noise(shape: tuple[int, ...], concentration: float, *,
                 rng: np.random.Generator) -> np.ndarray:
    """Mistake distributions ``q ~ Dirichlet(concentration * 1)`` over the last axis.

    ``concentration = inf`` gives the uniform distribution (Prop. 3's noise). Small concentrations
    give peaked mistakes: an expert that errs at ``x`` errs mostly towards one output.
    """
    n_y = shape[-1]
    if math.isinf(concentration):
        return np.full(shape, 1.0 / n_y)
    g = rng.gamma(concentration, size=shape)
    total = g.sum(axis=-1, keepdims=True)
    # All-zero rows (underflow at tiny concentrations) fall back to uniform.
    return np.where(total > 0, g / np.where(total > 0, total, 1.0), 1.0 / n_y)


def noisy_experts(reward: np.ndarray, rhos: np.ndarray, concentration: float, *,
                  rng: np.random.Generator) -> np.ndarray:
    """Experts ``f_i(y|x) = (1 - rho_i(x)) f*(y|x) + rho_i(x) q_{i,x}(y)`` with independent noise.

    ``rhos``: error rates, shape ``(k,)`` or ``(k, n_x)``; ``q_{i,x}`` from :func:`random_noise`,
    independent across experts and inputs. With ``concentration = inf`` and one rate per expert
    each expert is exactly :func:`transcendence.noisy_expert` (Prop. 3's ``f_rho``).
    Returns ``(k, n_x, n_y)``.
    """
    rhos = np.asarray(rhos, dtype=float)
    if np.any(rhos < 0) or np.any(rhos > 1):
        raise ValueError(f"rhos must lie in [0, 1], got min {rhos.min()}, max {rhos.max()}")
    n_x, n_y = reward.shape
    k = rhos.shape[0]
    if rhos.ndim == 1:
        noise = None if math.isinf(concentration) else random_noise((k, n_x, n_y), concentration, rng=rng)
        return noisy_expert(reward, rhos, noise=noise)
    noise = random_noise((k, n_x, n_y), concentration, rng=rng)
    return noisy_expert(reward, rhos, noise=noise)
