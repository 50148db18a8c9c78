"""Synthetic chess experts whose move distribution is known exactly on every board.

An expert is a :data:`MovePolicy`: called on a ``chess.Board`` it returns the legal moves (sorted by
UCI, one canonical order shared by every expert and the mixture) and their probabilities. All experts
are built on one :class:`~chess_exp.experts.oracle.Oracle` (Stockfish's deterministic move at a fixed
search limit), written :math:`m^*(x)` below.

Noisy engine expert (Prop. 3 on chess), error rate :math:`\\varepsilon`:

.. math:: f_\\varepsilon(y\\mid x) = \\frac{\\varepsilon}{|\\mathcal Y_x|} + (1-\\varepsilon)\\,
          \\mathbb 1\\{y = m^*(x)\\}

where :math:`\\mathcal Y_x` is the set of legal moves (the paper's :math:`|\\mathcal Y|`: in chess the
output space depends on the position). Biased expert (Prop. 4 on chess): the positions are split
into classes by a *classifier* (game phase, or the piece type of :math:`m^*(x)`); the expert uses
error rate ``eps_skill`` on its own class and ``eps`` elsewhere. With ``eps_skill=0, eps=1`` it is
Prop. 4's expert exactly: optimal on its part of :math:`\\mathcal X`, uniform elsewhere.

>>> spec = ExpertSpec(name="e10", eps=0.1)
>>> spec.error_rate(chess.Board(), best=chess.Move.from_uci("e2e4"))
0.1
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import chess
import numpy as np

from chess_exp.experts.oracle import Oracle
from chess_exp.play.players import MovePolicy  # the one definition, in the lower stage

__all__ = ["ExpertSpec", "Expert", "MovePolicy", "legal_moves", "CLASSIFIERS", "classify",
           "noisy_distribution"]

# Non-pawn material (N=B=3, R=5, Q=9, both sides) at or below which a position is an endgame;
# the start position has 62.
ENDGAME_MATERIAL = 26
# Positions up to this fullmove number (and above the endgame material) are the opening.
OPENING_FULLMOVES = 10

_VALUES = {chess.KNIGHT: 3, chess.BISHOP: 3, chess.ROOK: 5, chess.QUEEN: 9}


def legal_moves(board: chess.Board) -> list[chess.Move]:
    """The legal moves of ``board`` in the canonical order every expert uses (sorted by UCI)."""
    return sorted(board.legal_moves, key=chess.Move.uci)


def _phase(board: chess.Board, best: chess.Move | None) -> str:
    material = sum(v * len(board.pieces(p, c)) for p, v in _VALUES.items() for c in chess.COLORS)
    if material <= ENDGAME_MATERIAL:
        return "endgame"
    return "opening" if board.fullmove_number <= OPENING_FULLMOVES else "middlegame"


def _piece(board: chess.Board, best: chess.Move | None) -> str:
    assert best is not None
    piece = board.piece_type_at(best.from_square)
    if piece == chess.PAWN:
        return "pawn"
    return "minor" if piece in (chess.KNIGHT, chess.BISHOP) else "major"  # rook, queen, king


# classifier name -> (function(board, best move) -> class, its classes, needs the best move)
CLASSIFIERS: dict[str, tuple[Callable[[chess.Board, chess.Move | None], str], tuple[str, ...], bool]] = {
    "phase": (_phase, ("opening", "middlegame", "endgame"), False),
    "piece": (_piece, ("pawn", "minor", "major"), True),
}


def classify(classifier: str, board: chess.Board, best: chess.Move | None = None) -> str:
    """The class of ``board`` under ``classifier`` ("phase" or "piece" of the best move)."""
    if classifier not in CLASSIFIERS:
        raise ValueError(f"classifier: unknown {classifier!r}; choose one of {', '.join(CLASSIFIERS)}")
    return CLASSIFIERS[classifier][0](board, best)


def noisy_distribution(n_moves: int, best_index: int, eps: float) -> np.ndarray:
    """``eps`` spread uniformly over ``n_moves`` moves plus ``1 - eps`` on ``best_index``."""
    probs = np.full(n_moves, eps / n_moves)
    probs[best_index] += 1.0 - eps
    return probs


@dataclass(frozen=True, kw_only=True)
class ExpertSpec:
    """A synthetic expert as data (picklable; turn it into a policy with :class:`Expert`)."""

    name: str  # label written into the PGN (White/Black and WhiteExpert/BlackExpert tags)
    eps: float  # probability of a uniformly random legal move (outside the skill class if any)
    skill: str | None = None  # "classifier:class" where the expert plays with eps_skill, e.g. "phase:endgame"
    eps_skill: float = 0.0  # error rate inside the skill class

    def __post_init__(self) -> None:
        for field_name in ("eps", "eps_skill"):
            value = getattr(self, field_name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"ExpertSpec {self.name!r}: {field_name} must be in [0, 1], got {value}")
        if self.skill is not None:
            classifier, _, cls = self.skill.partition(":")
            if classifier not in CLASSIFIERS or cls not in CLASSIFIERS[classifier][1]:
                choices = [f"{c}:{k}" for c, (_, ks, _) in CLASSIFIERS.items() for k in ks]
                raise ValueError(f"ExpertSpec {self.name!r}: skill {self.skill!r} unknown; choose one of "
                                 f"{', '.join(choices)}")

    @property
    def needs_best_for_class(self) -> bool:
        return self.skill is not None and CLASSIFIERS[self.skill.partition(":")[0]][2]

    def error_rate(self, board: chess.Board, best: chess.Move | None = None) -> float:
        """The expert's error rate on ``board`` (``best``: the oracle's move, needed by "piece")."""
        if self.skill is None:
            return self.eps
        classifier, _, cls = self.skill.partition(":")
        return self.eps_skill if classify(classifier, board, best) == cls else self.eps


class Expert:
    """An :class:`ExpertSpec` bound to an oracle: a :data:`MovePolicy` with an exact distribution.

    ``expert(board)`` returns ``(moves, probs)`` with ``moves = legal_moves(board)``.
    """

    def __init__(self, spec: ExpertSpec, oracle: Oracle) -> None:
        self.spec = spec
        self.oracle = oracle

    @property
    def name(self) -> str:
        return self.spec.name

    def __repr__(self) -> str:
        return f"Expert({self.spec!r})"

    def __call__(self, board: chess.Board) -> tuple[list[chess.Move], np.ndarray]:
        moves = legal_moves(board)
        if not moves:
            raise ValueError(f"board: no legal move in {board.fen()}")
        return moves, self.probs(board, moves)

    distribution = __call__

    def probs(self, board: chess.Board, moves: list[chess.Move]) -> np.ndarray:
        """Probabilities over ``moves`` (which must be ``legal_moves(board)``)."""
        best = self.oracle.best_move(board) if self.spec.needs_best_for_class else None
        eps = self.spec.error_rate(board, best)
        if eps >= 1.0:
            return np.full(len(moves), 1.0 / len(moves))
        if best is None:
            best = self.oracle.best_move(board)
        return noisy_distribution(len(moves), moves.index(best), eps)

    def sample(self, board: chess.Board, *, rng: np.random.Generator) -> chess.Move:
        """One move drawn from the exact distribution."""
        moves, probs = self(board)
        return moves[int(rng.choice(len(moves), p=probs))]
