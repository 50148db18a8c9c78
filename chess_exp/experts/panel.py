"""Panels of synthetic experts, and the exact ideal mixture over a panel as a chess policy.

A :class:`Panel` is a list of experts, their weights (the share of game sides each one plays) and
the search limit of the oracle they share. :class:`MixturePolicy` is the ideal learner's move
distribution, computed through :func:`transcendence.mixture`; temper it with
:func:`transcendence.temper` (``tempered(...)``, or ``chess_exp.play.players.DistributionPlayer``) to get the
theory's :math:`\\hat f_\\tau` and :math:`\\hat f_{\\max}`.

What "the ideal mixture" is in chess
------------------------------------
In the paper an expert is drawn per input, and every expert sees the same input
distribution, so the ideal learner is :math:`\\bar f(y\\mid x)=\\sum_i w_i f_i(y\\mid x)`. In generated
games one expert plays a whole side and positions are reached by play, so expert :math:`i` has its
own input distribution :math:`p_i`. The model sees the game prefix :math:`h` (the move history), and
the cross-entropy minimiser is (as in "A Taxonomy of Transcendence"; docs/paper-notes.md)

.. math:: \\bar f(y\\mid h) = \\sum_i g(i\\mid h)\\, f_i(y\\mid x_h),\\qquad
          g(i\\mid h) \\propto w_i \\prod_{t\\in\\text{own plies of }h} f_i(m_t\\mid x_t),

the posterior over which expert plays the side to move, given the moves that side has made (the
other side's moves carry no information about it because the two sides are drawn independently).
Both are implemented:

* ``kind="prior"`` (default): :math:`g(i\\mid h)=w_i`, the paper's formula (1) applied per position.
  A function of the board alone, the natural "mixture of the panel".
* ``kind="posterior"``: the exact Bayes predictor above, what a perfect learner of the generated
  games converges to. It is :func:`transcendence.mixture` with ``weights = g(·|h)`` (the core's
  :math:`g(i\\mid x)\\propto w_i p_i(x)` with :math:`p_i(h)` the probability that expert :math:`i`
  produced the side-to-move's moves of :math:`h`).

For the noisy-engine panels (every expert's mode is the oracle's move) both have the same argmax,
the oracle's move, whatever :math:`g`; they differ at :math:`\\tau=1`. For biased panels the argmax
can differ when the posterior is confident about an expert that is noisy in the current class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import chess
import numpy as np

from chess_exp.experts.oracle import EngineSpec, Oracle
from chess_exp.experts.policies import Expert, ExpertSpec, legal_moves

__all__ = ["Panel", "PANELS", "get_panel", "MixturePolicy", "TemperedPolicy", "build_experts", "anchor_name",
           "anchor_player"]


@dataclass(frozen=True, kw_only=True)
class Panel:
    """Experts, their weights and the oracle's search limit."""

    name: str  # preset name, written into the PGN `Panel` tag
    experts: tuple[ExpertSpec, ...]  # the experts
    weights: tuple[float, ...] = ()  # share of game sides per expert (normalised; empty: equal)
    engine: EngineSpec = field(default_factory=EngineSpec)  # the oracle's search limit
    description: str = ""  # one line for --help and the docs

    def __post_init__(self) -> None:
        if not self.experts:
            raise ValueError(f"Panel {self.name!r}: experts must not be empty")
        names = [e.name for e in self.experts]
        if len(set(names)) != len(names):
            raise ValueError(f"Panel {self.name!r}: expert names must be unique, got {names}")
        if self.weights and len(self.weights) != len(self.experts):
            raise ValueError(f"Panel {self.name!r}: weights has {len(self.weights)} entries for "
                             f"{len(self.experts)} experts")
        if self.weights and (min(self.weights) < 0 or sum(self.weights) <= 0):
            raise ValueError(f"Panel {self.name!r}: weights must be >= 0 with a positive sum")

    @property
    def probabilities(self) -> np.ndarray:
        """The weights as a probability vector ``(k,)``."""
        w = np.asarray(self.weights if self.weights else [1.0] * len(self.experts), dtype=float)
        return w / w.sum()

    @property
    def names(self) -> list[str]:
        return [e.name for e in self.experts]


def _noisy_panel(name: str, eps: tuple[float, ...], nodes: int, description: str) -> Panel:
    return Panel(name=name, experts=tuple(ExpertSpec(name=f"noisy-eps{e:g}", eps=e) for e in eps),
                 engine=EngineSpec(nodes=nodes), description=description)


def _biased_panel(name: str, classifier: str, classes: tuple[str, ...], eps: float, nodes: int,
                  description: str) -> Panel:
    return Panel(name=name, experts=tuple(
        ExpertSpec(name=f"{c}-expert", eps=eps, skill=f"{classifier}:{c}", eps_skill=0.0) for c in classes),
        engine=EngineSpec(nodes=nodes), description=description)


PANELS: dict[str, Panel] = {p.name: p for p in [
    _noisy_panel("noisy3", (0.1, 0.2, 0.3), 50,
                 "Prop. 3: Stockfish (50 nodes) with random-move rates 0.1, 0.2, 0.3"),
    _noisy_panel("noisy1", (0.2,), 50, "Prop. 3 with one expert: Stockfish (50 nodes), random-move rate 0.2"),
    _biased_panel("phases3", "phase", ("opening", "middlegame", "endgame"), 0.5, 50,
                  "Prop. 4: each expert is Stockfish (50 nodes) in one game phase, 50% random moves elsewhere"),
    _biased_panel("pieces3", "piece", ("pawn", "minor", "major"), 0.5, 50,
                  "Prop. 4: each expert is Stockfish (50 nodes) when the best move is by its piece "
                  "type (pawn / knight-bishop / rook-queen-king), 50% random moves elsewhere"),
    _biased_panel("phases3-strict", "phase", ("opening", "middlegame", "endgame"), 1.0, 50,
                  "Prop. 4 exactly: optimal in one game phase, uniformly random elsewhere"),
]}


def get_panel(name: str) -> Panel:
    """The preset panel called ``name``."""
    if name not in PANELS:
        raise ValueError(f"panel: unknown {name!r}; choose one of {', '.join(PANELS)}")
    return PANELS[name]


def build_experts(panel: Panel, oracle: Oracle) -> list[Expert]:
    """The panel's experts as policies sharing ``oracle``."""
    if oracle.spec != panel.engine:
        raise ValueError(f"oracle: its limit {oracle.spec.tag} differs from the panel's {panel.engine.tag}")
    return [Expert(spec, oracle) for spec in panel.experts]


def anchor_name(eps: float) -> str:
    """The name of a lower anchor: ``random`` for random-move rate 1, else ``noisy-eps<eps>``."""
    return "random" if eps >= 1.0 else f"noisy-eps{eps:g}"


def anchor_player(eps: float, oracle: Oracle):
    """A lower anchor as a player: Stockfish at ``oracle``'s search with random-move rate ``eps``
    (``eps >= 1``: the uniformly random mover). Rated by ``chess tournament``, used by it and by
    ``experts measure --anchor_ratings``."""
    from chess_exp.play.players import DistributionPlayer, RandomPlayer

    name = anchor_name(eps)
    if eps >= 1.0:
        return RandomPlayer(name)
    return DistributionPlayer(Expert(ExpertSpec(name=name, eps=eps), oracle), 1.0, name=name)


class MixturePolicy:
    """The exact ideal mixture over a panel: a :data:`~chess_exp.experts.policies.MovePolicy`.

    Parameters
    ----------
    experts : list of Expert
    weights : array (k,)
        Prior weights :math:`w_i` (normalised here).
    kind : "prior" or "posterior"
        ``prior``: :math:`\\sum_i w_i f_i(\\cdot\\mid x)`; ``posterior``: weights :math:`g(i\\mid h)`
        from the side-to-move's past moves in ``board.move_stack`` (see the module docstring).
    name : str
    """

    def __init__(self, experts: list[Expert], weights: np.ndarray | list[float] | None = None, *,
                 kind: Literal["prior", "posterior"] = "prior", name: str | None = None) -> None:
        if kind not in ("prior", "posterior"):
            raise ValueError(f"kind: must be 'prior' or 'posterior', got {kind!r}")
        if not experts:
            raise ValueError("experts: must not be empty")
        w = np.ones(len(experts)) if weights is None else np.asarray(weights, dtype=float)
        if w.shape != (len(experts),) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError(f"weights: need {len(experts)} non-negative weights with a positive sum, got {w}")
        self.experts = experts
        self.weights = w / w.sum()
        self.kind = kind
        self.name = name or f"mixture-{kind}"

    @classmethod
    def from_panel(cls, panel: Panel, oracle: Oracle, *, kind: Literal["prior", "posterior"] = "prior"
                   ) -> MixturePolicy:
        return cls(build_experts(panel, oracle), panel.probabilities, kind=kind,
                   name=f"{panel.name}-mixture-{kind}")

    def expert_probs(self, board: chess.Board) -> tuple[list[chess.Move], np.ndarray]:
        """The legal moves and every expert's distribution over them, ``(k, n_moves)``."""
        moves = legal_moves(board)
        if not moves:
            raise ValueError(f"board: no legal move in {board.fen()}")
        return moves, np.stack([e.probs(board, moves) for e in self.experts])

    def posterior(self, board: chess.Board) -> np.ndarray:
        """:math:`g(i\\mid h)` for the side to move of ``board`` given its moves in the move stack."""
        log_g = np.log(self.weights)
        replay = board.root()
        side = board.turn
        for move in board.move_stack:
            if replay.turn == side:
                moves = legal_moves(replay)
                j = moves.index(move)
                with np.errstate(divide="ignore"):
                    log_g = log_g + np.log([e.probs(replay, moves)[j] for e in self.experts])
            replay.push(move)
        if not np.isfinite(log_g.max()):  # no expert could have played these moves: fall back to w
            return self.weights.copy()
        g = np.exp(log_g - log_g.max())
        return g / g.sum()

    def __call__(self, board: chess.Board) -> tuple[list[chess.Move], np.ndarray]:
        from transcendence import mixture

        moves, probs = self.expert_probs(board)
        g = self.weights if self.kind == "prior" else self.posterior(board)
        mixed = mixture(probs[:, None, :], weights=g)[0]  # (k, 1, n_moves) -> (n_moves,)
        return moves, np.asarray(mixed, dtype=float)

    distribution = __call__

    def __repr__(self) -> str:
        return f"MixturePolicy({self.name!r}, kind={self.kind!r}, weights={np.round(self.weights, 3)})"


class TemperedPolicy:
    """``transcendence.temper`` applied to a policy's move distribution (tau=0: argmax, uniform ties)."""

    def __init__(self, policy, temperature: float, *, mode: Literal["logit", "prob"] = "logit",
                 name: str | None = None) -> None:
        if not (temperature >= 0 and math.isfinite(temperature)):
            raise ValueError(f"temperature: must be a finite number >= 0, got {temperature}")
        self.policy = policy
        self.temperature = float(temperature)
        self.mode = mode
        self.name = name or f"{getattr(policy, 'name', 'policy')}@tau={temperature:g}"

    def __call__(self, board: chess.Board) -> tuple[list[chess.Move], np.ndarray]:
        from transcendence import temper

        moves, probs = self.policy(board)
        return moves, np.asarray(temper(probs[None, :], self.temperature, mode=self.mode)[0], dtype=float)

    distribution = __call__
