"""Replaying SAN games with python-chess, about twice as fast as ``Board.parse_san`` per move.

``san_to_move(board, san)`` finds the moving piece with bitboards (pawn geometry, or the pieces
of the named type that attack the target square, narrowed by the disambiguation), then checks the
move with ``Board.is_into_check``. Castling, promotions and anything unusual go to
``Board.parse_san``. The result is the move python-chess would parse, or ValueError where
python-chess would raise (illegal, ambiguous, or not SAN).
"""

from __future__ import annotations

from typing import Sequence

import chess

__all__ = ["san_to_move", "replay_sans"]

_SQ = {name: i for i, name in enumerate(chess.SQUARE_NAMES)}
_FILE_MASK = {f: chess.BB_FILES[i] for i, f in enumerate("abcdefgh")}
_RANK_MASK = {r: chess.BB_RANKS[i] for i, r in enumerate("12345678")}
_PIECE = {"N": chess.KNIGHT, "B": chess.BISHOP, "R": chess.ROOK, "Q": chess.QUEEN, "K": chess.KING}
_BB = chess.BB_SQUARES
_FILES = "abcdefgh"


def san_to_move(board: chess.Board, san: str) -> chess.Move:
    """The legal move ``san`` denotes in ``board`` (ValueError if none, or ambiguous)."""
    s = san.rstrip("+#")
    c = s[:1]
    turn = board.turn
    if c in _FILES and c and "=" not in s and s[-1] not in "18":  # not a promotion
        n = len(s)
        if n == 2:  # pawn push
            to = _SQ.get(s)
            if to is None:
                return board.parse_san(san)
            step = 8 if turn else -8
            frm = to - step
            if not 0 <= frm < 64:
                raise ValueError(f"illegal san: {san!r} in {board.fen()}")
            own_pawns = board.pawns & board.occupied_co[turn]
            if board.occupied & _BB[to]:
                raise ValueError(f"illegal san: {san!r} in {board.fen()}")
            if not own_pawns & _BB[frm]:
                # double push from the second rank through an empty square
                frm2 = frm - step
                if (chess.square_rank(to) != (3 if turn else 4) or board.occupied & _BB[frm]
                        or not own_pawns & _BB[frm2]):
                    raise ValueError(f"illegal san: {san!r} in {board.fen()}")
                frm = frm2
            move = chess.Move(frm, to)
        elif n == 4 and s[1] == "x":  # pawn capture
            to = _SQ.get(s[2:])
            if to is None or s[0] not in _FILES:
                return board.parse_san(san)
            frm = to - (8 if turn else -8) + (_FILES.index(s[0]) - chess.square_file(to))
            if (abs(_FILES.index(s[0]) - chess.square_file(to)) != 1 or not 0 <= frm < 64
                    or not (board.pawns & board.occupied_co[turn] & _BB[frm])
                    or not (board.occupied_co[not turn] & _BB[to] or board.ep_square == to)):
                raise ValueError(f"illegal san: {san!r} in {board.fen()}")
            move = chess.Move(frm, to)
        else:
            return board.parse_san(san)
    elif c in _PIECE:
        to = _SQ.get(s[-2:])
        if to is None:
            return board.parse_san(san)
        if board.occupied_co[turn] & _BB[to]:
            raise ValueError(f"illegal san: {san!r} in {board.fen()}")
        cands = board.attackers_mask(turn, to) & board.pieces_mask(_PIECE[c], turn)
        middle = s[1:-2].replace("x", "")
        if middle:
            if len(middle) == 1:
                mask = _FILE_MASK.get(middle) or _RANK_MASK.get(middle)
                if mask is None:
                    return board.parse_san(san)
                cands &= mask
            elif middle in _SQ:
                cands &= _BB[_SQ[middle]]
            else:
                return board.parse_san(san)
        if not cands:
            raise ValueError(f"illegal san: {san!r} in {board.fen()}")
        if cands & (cands - 1):  # several pieces can reach it: only pins may decide (else ambiguous)
            return board.parse_san(san)
        move = chess.Move(cands.bit_length() - 1, to)
    else:  # castling, promotions, anything unusual
        return board.parse_san(san)
    if board.is_into_check(move):
        raise ValueError(f"illegal san: {san!r} in {board.fen()}")
    return move


def replay_sans(sans: Sequence[str]) -> list[chess.Move]:
    """The moves of a game given as SAN from the initial position (ValueError at the first bad one)."""
    board = chess.Board()
    moves = []
    for san in sans:
        move = san_to_move(board, san)
        board.push(move)
        moves.append(move)
    return moves
