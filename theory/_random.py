"""Random ingredients for the statements' instance generators.

Probabilities are small integer weights normalised per row, and rewards are small integers, so
exact ties and exact zeros are as common as in hand-made examples. Nothing is drawn by rejection:
a row that would be all zeros gets a unit weight at a random position instead.
"""

from __future__ import annotations

import numpy as np

#: Default size ranges (inclusive) of random instances: experts, inputs, outputs.
N_EXPERTS = (1, 8)
N_INPUTS = (1, 50)
N_OUTPUTS = (2, 30)


def sizes(rng: np.random.Generator, n_experts: int | None = None, n_inputs: int | None = None,
          n_outputs: int | None = None, *, min_experts: int = 1,
          min_inputs: int = 1) -> tuple[int, int, int]:
    """(k, n_x, n_y): the given values, the others drawn uniformly from the default ranges."""
    k = int(rng.integers(max(min_experts, N_EXPERTS[0]), N_EXPERTS[1] + 1)) if n_experts is None else n_experts
    n_x = int(rng.integers(max(min_inputs, N_INPUTS[0]), N_INPUTS[1] + 1)) if n_inputs is None else n_inputs
    n_y = int(rng.integers(N_OUTPUTS[0], N_OUTPUTS[1] + 1)) if n_outputs is None else n_outputs
    if k < min_experts or n_x < min_inputs or n_y < 2:
        raise ValueError(f"sizes: need n_experts >= {min_experts}, n_inputs >= {min_inputs}, "
                         f"n_outputs >= 2; got {k}, {n_x}, {n_y}")
    return k, n_x, n_y


def rows(rng: np.random.Generator, shape: tuple[int, ...], n: int) -> np.ndarray:
    """Row-stochastic array ``shape + (n,)`` from integer weights 0..G (G random: ties, zeros)."""
    grid = int(rng.choice([1, 2, 3, 4, 8]))
    zero_rate = float(rng.choice([0.0, 0.3, 0.7]))
    w = rng.integers(0, grid + 1, size=shape + (n,)).astype(float).reshape(-1, n)
    w[rng.random(w.shape) < zero_rate] = 0.0
    empty = np.flatnonzero(w.sum(axis=-1) == 0)
    w[empty, rng.integers(0, n, size=empty.size)] = 1.0
    return (w / w.sum(axis=-1, keepdims=True)).reshape(shape + (n,))


def dist(rng: np.random.Generator, n: int, *, include: tuple[int, ...] = ()) -> np.ndarray:
    """A probability vector over ``n`` items with some exact zeros; items in ``include`` are > 0."""
    p = rows(rng, (), n)
    if include:
        idx = np.asarray(include)
        w = p.copy()
        w[idx] += rng.integers(1, 4, size=idx.size) / 4.0
        p = w / w.sum()
    return p


def reward(rng: np.random.Generator, n_x: int, n_y: int) -> np.ndarray:
    """Integer rewards in [-L, L] (L random), with ties and some constant rows."""
    level = int(rng.choice([1, 2, 3, 5]))
    r = rng.integers(-level, level + 1, size=(n_x, n_y)).astype(float)
    constant = rng.random(n_x) < 0.1
    r[constant] = r[constant, :1]
    return r


def non_constant_row(rng: np.random.Generator, n_y: int) -> np.ndarray:
    """A reward row with at least two distinct values."""
    row = rng.integers(-3, 4, size=n_y).astype(float)
    i, j = rng.choice(n_y, size=2, replace=False)
    row[j] = row[i] + float(rng.integers(1, 4))
    return row
