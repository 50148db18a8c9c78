"""The paper's results as executable statements, checked on random instances.

Every statement has a stable id, a title and reference, ``hypotheses(instance) -> bool``,
``conclusion(instance) -> Conclusion`` (truthy when it holds; with the margin and where it is
tightest), ``sample(rng, **size)`` (a random instance satisfying the hypotheses by construction)
and ``counterexamples()`` (instances showing that a hypothesis is needed). Proofs are in
``theory/README.md``.

>>> import numpy as np
>>> import theory
>>> inst = theory.Instance(experts=[[[0.6, 0.4, 0.0]], [[0.0, 0.4, 0.6]]],
...                        reward=[[0.0, 1.0, 0.0]], test_dist=[1.0])
>>> result = theory.check("prop2", inst)
>>> result.hypotheses, result.conclusion.holds, round(result.conclusion.values["argmax_margin"], 6)
(True, True, 0.6)
>>> theory.check("prop1", inst).conclusion.margin       # max_i R(f_i) - R(f_hat) at tau = 1
0.0
"""

from __future__ import annotations

from typing import Any

from theory import convexity, intermediate, prop1, prop2, prop3, prop4, skill_selection
from theory._base import Check, Conclusion, Counterexample, Instance, Statement
from theory.convexity import Segment

#: Every statement, by id, in the order of the paper.
STATEMENTS: dict[str, Statement] = {s.id: s for s in (
    prop1.STATEMENT, prop2.STATEMENT, prop2.CONVERSE, prop3.STATEMENT, prop4.STATEMENT,
    skill_selection.STATEMENT, convexity.STATEMENT, intermediate.STATEMENT)}


def get(statement_id: str) -> Statement:
    """The statement with this id, or ValueError listing the ids."""
    try:
        return STATEMENTS[statement_id]
    except KeyError:
        raise ValueError(f"statement_id: unknown {statement_id!r}; "
                         f"choose one of {', '.join(STATEMENTS)}") from None


def check(statement_id: str, instance: Any) -> Check:
    """Check one statement on your own instance: hypotheses, and the conclusion with its margin.

    ``instance`` is an :class:`Instance` (a :class:`Segment` for ``"convexity"``). The result is
    truthy when hypotheses imply conclusion on it (``result.ok``).
    """
    return get(statement_id).check(instance)


__all__ = ["STATEMENTS", "get", "check", "Instance", "Segment", "Conclusion", "Counterexample",
           "Statement", "Check"]
