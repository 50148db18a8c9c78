"""The pieces every statement is made of: an instance, a conclusion with its margin, a counterexample.

A *statement* is a formal result written so that a computer can check it on one instance:

* ``hypotheses(instance) -> bool``: does the instance satisfy the result's hypotheses?
* ``conclusion(instance) -> Conclusion``: does the conclusion hold, by what margin, and where is
  it tightest? ``Conclusion`` is truthy exactly when it holds.
* ``sample(rng, **size)``: a random instance that satisfies the hypotheses *by construction*.
* ``counterexamples()``: instances that drop one hypothesis and on which the conclusion fails,
  which shows that the hypothesis is needed.

Shapes follow the core: experts ``(k, n_x, n_y)``, input distributions ``(k, n_x)``, weights
``(k,)``, reward ``(n_x, n_y)``, test distribution ``(n_x,)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np

import transcendence as tr

__all__ = ["Instance", "Conclusion", "Counterexample", "Statement", "Check", "reward_tol",
           "shared_input_distribution"]


def _array(name: str, value: object, ndim: int) -> np.ndarray:
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected an array of numbers, got {type(value).__name__}") from None
    if arr.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions, got shape {arr.shape}")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class Instance:
    r"""One setting :math:`(f_1, \dots, f_k, p_i, w, r, p_{test})` of the paper.

    Attributes
    ----------
    experts : (k, n_x, n_y) array
        :math:`f_i(y \mid x)`, each row a probability vector.
    reward : (n_x, n_y) array
        :math:`r(x, y)`, any finite numbers.
    test_dist : (n_x,) array
        :math:`p_{test}`.
    input_dists : (k, n_x) array or None
        :math:`p_i`, one input distribution per expert; ``None`` = one shared distribution
        (the paper's setting; its value does not change the learned predictor).
    weights : (k,) array or None
        :math:`w_i`, relative amount of data per expert; ``None`` = equal.
    parts : (n_x,) int array or None
        Prop. 4 only: the part :math:`X_i` each input belongs to.

    The arrays are copied and made read-only. Validation of probabilities is left to the core,
    which raises ``ValueError`` naming the argument.
    """

    experts: np.ndarray
    reward: np.ndarray
    test_dist: np.ndarray
    input_dists: np.ndarray | None = None
    weights: np.ndarray | None = None
    parts: np.ndarray | None = None

    def __post_init__(self) -> None:
        e = _array("experts", self.experts, 3)
        r = _array("reward", self.reward, 2)
        p = _array("test_dist", self.test_dist, 1)
        k, n_x, n_y = e.shape
        if r.shape != (n_x, n_y):
            raise ValueError(f"reward: shape {r.shape} does not agree with experts {e.shape} "
                             f"(expected ({n_x}, {n_y}))")
        if p.shape != (n_x,):
            raise ValueError(f"test_dist: shape {p.shape} does not agree with experts {e.shape} "
                             f"(expected ({n_x},))")
        object.__setattr__(self, "experts", e)
        object.__setattr__(self, "reward", r)
        object.__setattr__(self, "test_dist", p)
        if self.input_dists is not None:
            d = _array("input_dists", self.input_dists, 2)
            if d.shape != (k, n_x):
                raise ValueError(f"input_dists: shape {d.shape} does not agree with experts "
                                 f"{e.shape} (expected ({k}, {n_x}))")
            object.__setattr__(self, "input_dists", d)
        if self.weights is not None:
            w = _array("weights", self.weights, 1)
            if w.shape != (k,):
                raise ValueError(f"weights: shape {w.shape} does not agree with experts "
                                 f"{e.shape} (expected ({k},))")
            object.__setattr__(self, "weights", w)
        if self.parts is not None:
            parts = np.array(self.parts)
            if parts.shape != (n_x,) or not np.issubdtype(parts.dtype, np.integer):
                raise ValueError(f"parts: expected ({n_x},) integer part ids, got {parts.dtype} "
                                 f"array of shape {parts.shape}")
            parts.setflags(write=False)
            object.__setattr__(self, "parts", parts)

    @property
    def n_experts(self) -> int:
        return int(self.experts.shape[0])

    @property
    def n_inputs(self) -> int:
        return int(self.experts.shape[1])

    @property
    def n_outputs(self) -> int:
        return int(self.experts.shape[2])

    def mixture(self) -> np.ndarray:
        r""":math:`\hat f`, the ideal learner (``transcendence.mixture``), shape (n_x, n_y)."""
        return self._mixture

    def expert_rewards(self) -> np.ndarray:
        r""":math:`R_{p_{test}}(f_i)` for every expert, shape (k,)."""
        return self._expert_rewards

    @cached_property
    def _mixture(self) -> np.ndarray:
        f = tr.mixture(self.experts, self.input_dists, self.weights)
        f.setflags(write=False)
        return f

    @cached_property
    def _expert_rewards(self) -> np.ndarray:
        r = np.asarray(tr.expected_reward(self.experts, self.reward, self.test_dist), dtype=float)
        r.setflags(write=False)
        return r

    def margins(self, temperatures: object, *, mode: str = "logit") -> np.ndarray:
        r""":math:`m(\tau) = R(\hat f_\tau) - \max_i R(f_i)` at each temperature, shape (n_t,)."""
        taus = np.atleast_1d(np.asarray(temperatures, dtype=float))
        values = tr.tempered_reward(self.mixture(), taus, self.reward, self.test_dist, mode=mode)
        return np.asarray(values, dtype=float) - float(self.expert_rewards().max())

    def check(self, temperature: float = 0.0, *, mode: str = "logit") -> tr.TranscendenceResult:
        """``transcendence.check_transcendence`` on this instance."""
        return tr.check_transcendence(self.experts, self.reward, self.test_dist,
                                      temperature=temperature, mode=mode,
                                      input_dists=self.input_dists, weights=self.weights)

    def critical_temperature(self, *, mode: str = "logit", **options: Any) -> float | None:
        """``transcendence.critical_temperature`` on this instance (``options`` passed on)."""
        return tr.critical_temperature(self.experts, self.reward, self.test_dist, mode=mode,
                                       input_dists=self.input_dists, weights=self.weights,
                                       **options)

    def replace(self, **changes: Any) -> Instance:
        """A copy with some fields changed."""
        fields = dict(experts=self.experts, reward=self.reward, test_dist=self.test_dist,
                      input_dists=self.input_dists, weights=self.weights, parts=self.parts)
        fields.update(changes)
        return Instance(**fields)


@dataclass(frozen=True)
class Conclusion:
    """Whether a statement's conclusion holds on one instance, by what margin and where.

    Attributes
    ----------
    holds : bool
        The conclusion holds (every inequality and identity it asserts). ``bool(conclusion)``.
    margin : float
        The slack of the tightest inequality the conclusion asserts (for example
        :math:`\\max_i R(f_i) - R(\\hat f)` for Prop. 1). It is >= 0 for non-strict and > 0 for
        strict inequalities when the conclusion holds.
    where : str
        Where the tightest inequality sits (an expert, an input, a temperature), or which check
        failed.
    values : mapping
        The quantities the check computed (rewards, thresholds), for inspection.
    """

    holds: bool
    margin: float
    where: str
    values: Mapping[str, float] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return self.holds


def _default_confirm(statement: Statement, instance: Any) -> bool:
    return (not statement.hypotheses(instance)) and (not statement.conclusion(instance).holds)


@dataclass(frozen=True, eq=False)
class Counterexample:
    """An instance that drops one hypothesis of a statement, on which its conclusion fails.

    Attributes
    ----------
    name : short id.
    dropped : the hypothesis that fails on ``instance``.
    instance : the instance.
    note : what it shows, in words.
    confirm : ``confirm(statement, instance) -> bool``; default: the hypotheses fail *and* the
        conclusion fails (so the hypothesis cannot be dropped from the statement).
    """

    name: str
    dropped: str
    instance: Any
    note: str
    confirm: Callable[[Statement, Any], bool] = _default_confirm


@dataclass(frozen=True)
class Check:
    """The outcome of checking one statement on one instance (``theory.check``)."""

    statement: str
    hypotheses: bool
    conclusion: Conclusion

    @property
    def ok(self) -> bool:
        """Hypotheses imply conclusion on this instance (vacuously true if the hypotheses fail)."""
        return (not self.hypotheses) or self.conclusion.holds

    def __bool__(self) -> bool:
        return self.ok


@dataclass(frozen=True)
class Statement:
    """A formal result as an executable statement (see the module docstring)."""

    id: str
    title: str
    reference: str
    source: Literal["paper", "follow-up", "ours"]
    hypotheses: Callable[[Any], bool]
    conclusion: Callable[[Any], Conclusion]
    sample: Callable[..., Any]
    counterexamples: Callable[[], tuple[Counterexample, ...]]
    hypotheses_text: str = ""
    conclusion_text: str = ""

    def counterexample(self) -> Counterexample:
        """The first (main) counterexample."""
        return self.counterexamples()[0]

    def check(self, instance: Any) -> Check:
        """Evaluate hypotheses and conclusion on ``instance``."""
        return Check(self.id, bool(self.hypotheses(instance)), self.conclusion(instance))


def reward_tol(reward: np.ndarray) -> float:
    """Absolute tolerance for identities between expected rewards: 1e-9 times the reward scale."""
    return 1e-9 * max(1.0, float(np.max(np.abs(reward))))


def shared_input_distribution(instance: Instance) -> bool:
    """All experts share one input distribution (``input_dists`` is None or has equal rows)."""
    d = instance.input_dists
    return d is None or bool(np.allclose(d, d[0], rtol=0.0, atol=1e-12))
