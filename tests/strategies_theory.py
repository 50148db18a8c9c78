"""Hypothesis strategies for the theory statements (built with .map, never .filter).

Hypothesis draws the sizes (shrinkable: 1-8 experts, 1-50 inputs, 2-30 outputs) and a seed; the
statement's own ``sample`` then builds an instance that satisfies its hypotheses by construction.
The probabilities are small integer weights normalised per row and the rewards small integers, so
exact ties and exact zeros are frequent (see ``theory/_random.py``).
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import theory
from theory import _random
from theory._base import Instance

#: Smallest sizes a statement's sampler accepts: (experts, inputs, outputs).
_MINIMUM = {"prop4": (2, 2, 2), "skill": (2, 2, 2), "interior": (1, 1, 3)}
_SEEDS = st.integers(0, 2**32 - 1)


def sizes(max_k: int = 8, max_x: int = 50, max_y: int = 30) -> st.SearchStrategy[tuple[int, int, int]]:
    """(k, n_x, n_y), shrinking towards the smallest instance."""
    return st.tuples(st.integers(1, max_k), st.integers(1, max_x), st.integers(2, max_y))


def instances_of(statement_id: str, *, max_k: int = 8, max_x: int = 50,
                 max_y: int = 30) -> st.SearchStrategy:
    """Random instances of one statement that satisfy its hypotheses (by construction)."""
    statement = theory.get(statement_id)
    min_k, min_x, min_y = _MINIMUM.get(statement_id, (1, 1, 2))

    def build(args: tuple[tuple[int, int, int], int]):
        (k, n_x, n_y), seed = args
        k = 2 if statement_id == "skill" else max(k, min_k)
        return statement.sample(np.random.default_rng(seed), n_experts=k,
                                n_inputs=max(n_x, min_x), n_outputs=max(n_y, min_y))

    return st.tuples(sizes(max_k, max_x, max_y), _SEEDS).map(build)


def arbitrary_instances(*, max_k: int = 8, max_x: int = 50, max_y: int = 30) -> st.SearchStrategy:
    """Instances with no hypothesis imposed: any experts, per-expert input distributions or none,
    weights or none, rewards with ties; the argmax predictor may win, tie or lose."""

    def build(args: tuple[tuple[int, int, int], int]) -> Instance:
        (k, n_x, n_y), seed = args
        rng = np.random.default_rng(seed)
        experts = _random.rows(rng, (k, n_x), n_y)
        if rng.random() < 0.3:                      # copies of one expert: many exact ties
            experts[:] = experts[0]
        input_dists = _random.rows(rng, (k,), n_x) if rng.random() < 0.5 else None
        weights = rng.integers(1, 5, size=k).astype(float) if rng.random() < 0.5 else None
        return Instance(experts, _random.reward(rng, n_x, n_y), _random.dist(rng, n_x),
                        input_dists, weights)

    return st.tuples(sizes(max_k, max_x, max_y), _SEEDS).map(build)
