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

__all__ = ["san_to_move", "push_light", "replay_sans"]

_SQ = {name: i for i, name in enumerate(chess.SQUARE_NAMES)}
_BY_FILE = {f: chess.BB_FILES[i] for i, f in enumerate("abcdefgh")}
_BY_RANK = {r: chess.BB_RANKS[i] for i, r in enumerate("12345678")}
_PIECE = {"N": chess.KNIGHT, "B": chess.BISHOP, "R": chess.ROOK, "Q": chess.QUEEN, "K": chess.KING}
_BB = chess.BB_SQUARES
_RAYS = chess.BB_RAYS
_KNIGHT, _KING = chess.BB_KNIGHT_ATTACKS, chess.BB_KING_ATTACKS
_DIAG, _DIAG_MASK = chess.BB_DIAG_ATTACKS, chess.BB_DIAG_MASKS
_RANK, _RANK_MASK = chess.BB_RANK_ATTACKS, chess.BB_RANK_MASKS
_FILE, _FILE_MASK_SQ = chess.BB_FILE_ATTACKS, chess.BB_FILE_MASKS
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
        occ = board.occupied
        if c == "N":
            cands = _KNIGHT[to] & board.knights
        elif c == "B":
            cands = _DIAG[to][_DIAG_MASK[to] & occ] & board.bishops
        elif c == "R":
            cands = (_RANK[to][_RANK_MASK[to] & occ] | _FILE[to][_FILE_MASK_SQ[to] & occ]) & board.rooks
        elif c == "Q":
            cands = (_DIAG[to][_DIAG_MASK[to] & occ] | _RANK[to][_RANK_MASK[to] & occ]
                     | _FILE[to][_FILE_MASK_SQ[to] & occ]) & board.queens
        else:
            cands = _KING[to] & board.kings
        cands &= board.occupied_co[turn]
        middle = s[1:-2].replace("x", "")
        if middle:
            if len(middle) == 1:
                mask = _BY_FILE.get(middle) or _BY_RANK.get(middle)
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
    # Legal unless it leaves the own king in check. Shortcut: a piece that is not the king, does not
    # stand on a line through its king (so cannot be pinned) and moves while the king is not in
    # check, is legal (en passant excluded: it also removes a pawn from another square).
    # (a pin also needs an enemy slider on that line).
    king = (board.kings & board.occupied_co[turn]).bit_length() - 1
    frm = move.from_square
    ray = _RAYS[king][frm] if king >= 0 else 0
    if (frm == king or king < 0
            or (ray and ray & (board.bishops | board.rooks | board.queens) & board.occupied_co[not turn])
            or (board.ep_square == move.to_square and board.pawns & _BB[frm])
            or board.attackers_mask(not turn, king)):
        if board.is_into_check(move):
            raise ValueError(f"illegal san: {san!r} in {board.fen()}")
    return move


def push_light(board: chess.Board, move: chess.Move) -> None:
    """``board.push(move)`` for standard chess without the undo stack and move counters.

    The same piece placement, side to move, castling rights and en passant square as ``push``
    (checked against it in the tests), at about half the cost. ``pop``, ``move_stack``, repetition
    and fifty-move queries do not work on a board advanced this way; the move must be legal.
    """
    move = board._to_chess960(move)
    ep_square = board.ep_square
    board.ep_square = None
    turn = board.turn
    frm, to = move.from_square, move.to_square
    from_bb, to_bb = _BB[frm], _BB[to]
    promoted = bool(board.promoted & from_bb)
    piece_type = board._remove_piece_at(frm)
    captured = board.piece_type_at(to)
    rights = board.castling_rights & ~to_bb & ~from_bb
    if piece_type == chess.KING and not promoted:
        rights &= ~(chess.BB_RANK_1 if turn else chess.BB_RANK_8)
    elif captured == chess.KING and not board.promoted & to_bb:
        if turn and to >> 3 == 7:
            rights &= ~chess.BB_RANK_8
        elif not turn and to >> 3 == 0:
            rights &= ~chess.BB_RANK_1
    board.castling_rights = rights
    if piece_type == chess.PAWN:
        diff = to - frm
        if diff == 16 and frm >> 3 == 1:
            board.ep_square = frm + 8
        elif diff == -16 and frm >> 3 == 6:
            board.ep_square = frm - 8
        elif to == ep_square and abs(diff) in (7, 9) and not captured:
            board._remove_piece_at(ep_square + (-8 if turn else 8))
    if move.promotion:
        promoted = True
        piece_type = move.promotion
    if piece_type == chess.KING and board.occupied_co[turn] & to_bb:  # castling (king takes own rook)
        board._remove_piece_at(frm)
        board._remove_piece_at(to)
        if chess.square_file(to) < chess.square_file(frm):
            board._set_piece_at(chess.C1 if turn else chess.C8, chess.KING, turn)
            board._set_piece_at(chess.D1 if turn else chess.D8, chess.ROOK, turn)
        else:
            board._set_piece_at(chess.G1 if turn else chess.G8, chess.KING, turn)
            board._set_piece_at(chess.F1 if turn else chess.F8, chess.ROOK, turn)
    else:
        board._set_piece_at(to, piece_type, turn, promoted)
    board.turn = not turn


def replay_sans(sans: Sequence[str]) -> list[chess.Move]:
    """The moves of a game given as SAN from the initial position (ValueError at the first bad one)."""
    board = chess.Board()
    moves = []
    for san in sans:
        move = san_to_move(board, san)
        push_light(board, move)
        moves.append(move)
    return moves
