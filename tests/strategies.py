"""Shared hypothesis strategies for the core (built with .map, never .filter).

Probabilities are drawn as small integer weights (0..4) normalised per row, so instances have
exact ties and exact zeros as often as a researcher's hand-made examples do.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp


def _normalise_rows(weights: np.ndarray) -> np.ndarray:
    w = weights.astype(float)
    empty = w.sum(axis=-1) == 0
    w[..., 0] += empty                      # a row of zeros becomes a point mass: no rejection
    return w / w.sum(axis=-1, keepdims=True)


def stochastic(shape: tuple[int, ...], max_weight: int = 4) -> st.SearchStrategy[np.ndarray]:
    """Arrays of the given shape whose last axis is a probability vector (ties and zeros included)."""
    return hnp.arrays(np.int64, shape, elements=st.integers(0, max_weight)).map(_normalise_rows)


def sizes(max_k: int = 6, max_x: int = 8, max_y: int = 6) -> st.SearchStrategy[tuple[int, int, int]]:
    return st.tuples(st.integers(1, max_k), st.integers(1, max_x), st.integers(2, max_y))


@st.composite
def instances(draw, max_k: int = 6, max_x: int = 8, max_y: int = 6, per_expert_inputs: bool = False):
    """(experts (k,n_x,n_y), reward (n_x,n_y), test_dist (n_x,), input_dists or None, weights or None)."""
    k, n_x, n_y = draw(sizes(max_k, max_x, max_y))
    experts = draw(stochastic((k, n_x, n_y)))
    reward = draw(hnp.arrays(np.int64, (n_x, n_y), elements=st.integers(0, 3))).astype(float)
    test = draw(stochastic((n_x,), max_weight=3))
    input_dists = draw(stochastic((k, n_x), max_weight=3)) if per_expert_inputs else None
    weights = (draw(hnp.arrays(np.int64, (k,), elements=st.integers(1, 4))).astype(float)
               if per_expert_inputs else None)
    return experts, reward, test, input_dists, weights


def real_rows(n_rows: int = 5, n_y: int = 6) -> st.SearchStrategy[np.ndarray]:
    """Row-stochastic arrays with arbitrary real entries (softmax of random logits, some set to 0)."""
    logits = hnp.arrays(np.float64, (n_rows, n_y), elements=st.floats(-20, 20))
    zeros = hnp.arrays(np.bool_, (n_rows, n_y))

    def build(args):
        lg, z = args
        p = np.exp(lg - lg.max(axis=1, keepdims=True))
        z = z.copy()
        z[np.arange(n_rows), np.argmax(p, axis=1)] = False   # keep each row's top entry
        p[z] = 0.0
        return p / p.sum(axis=1, keepdims=True)

    return st.tuples(logits, zeros).map(build)
