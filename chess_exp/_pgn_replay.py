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


_PUSH, _PAWN_CAPTURE, _PIECE_MOVE, _FALLBACK, _BAD = range(5)
_PARSED: dict[str, tuple] = {}  # SAN -> its parse (a few thousand distinct SANs occur in practice)
_ALL = chess.BB_ALL


def _parse(san: str) -> tuple:
    """What a SAN says, independent of the position: (kind, target square, piece letter/file delta, mask)."""
    s = san.rstrip("+#")
    c = s[:1]
    if c and c in _FILES:
        if "=" in s or s[-1:] in ("1", "8"):  # promotions (and pawn moves to a last rank): python-chess
            return (_FALLBACK,)
        if len(s) == 2 and s in _SQ:
            return (_PUSH, _SQ[s])
        if len(s) == 4 and s[1] == "x" and s[2:] in _SQ:
            to = _SQ[s[2:]]
            delta = _FILES.index(c) - chess.square_file(to)
            return (_PAWN_CAPTURE, to, delta) if abs(delta) == 1 else (_BAD,)
        return (_FALLBACK,)
    if c in _PIECE:
        to = _SQ.get(s[-2:])
        middle = s[1:-2].replace("x", "") if to is not None else ""
        if to is None or len(s) > 7:
            return (_FALLBACK,)
        if not middle:
            mask = _ALL
        elif len(middle) == 1 and (middle in _BY_FILE or middle in _BY_RANK):
            mask = _BY_FILE.get(middle) or _BY_RANK[middle]
        elif middle in _SQ:
            mask = _BB[_SQ[middle]]
        else:
            return (_FALLBACK,)
        return (_PIECE_MOVE, to, c, mask)
    return (_FALLBACK,)


def san_to_move(board: chess.Board, san: str) -> chess.Move:
    """The legal move ``san`` denotes in ``board`` (ValueError if none, or ambiguous)."""
    p = _PARSED.get(san)
    if p is None:
        p = _parse(san)
        if len(_PARSED) < 200_000:
            _PARSED[san] = p
    kind = p[0]
    turn = board.turn
    if kind == _PUSH:
        to = p[1]
        step = 8 if turn else -8
        frm = to - step
        if not 0 <= frm < 64 or board.occupied & _BB[to]:
            raise ValueError(f"illegal san: {san!r} in {board.fen()}")
        own_pawns = board.pawns & board.occupied_co[turn]
        if not own_pawns & _BB[frm]:
            # double push from the second rank through an empty square
            frm2 = frm - step
            if (to >> 3 != (3 if turn else 4) or board.occupied & _BB[frm]
                    or not own_pawns & _BB[frm2]):
                raise ValueError(f"illegal san: {san!r} in {board.fen()}")
            frm = frm2
    elif kind == _PAWN_CAPTURE:
        to = p[1]
        frm = to - (8 if turn else -8) + p[2]
        if (not 0 <= frm < 64 or not (board.pawns & board.occupied_co[turn] & _BB[frm])
                or not (board.occupied_co[not turn] & _BB[to] or board.ep_square == to)):
            raise ValueError(f"illegal san: {san!r} in {board.fen()}")
    elif kind == _PIECE_MOVE:
        _, to, c, mask = p
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
        cands &= board.occupied_co[turn] & mask
        if not cands:
            raise ValueError(f"illegal san: {san!r} in {board.fen()}")
        if cands & (cands - 1):  # several pieces can reach it: only pins may decide (else ambiguous)
            return board.parse_san(san)
        frm = cands.bit_length() - 1
    elif kind == _BAD:
        raise ValueError(f"illegal san: {san!r} in {board.fen()}")
    else:  # castling, promotions, anything unusual
        return board.parse_san(san)
    move = chess.Move(frm, to)
    # Legal unless it leaves the own king in check. Shortcut: a piece that is not the king and is
    # not on a line through its king with an enemy slider on it (so cannot be pinned), moving while
    # the king is not in check, is legal (en passant excluded: it also removes a pawn elsewhere).
    king = (board.kings & board.occupied_co[turn]).bit_length() - 1
    ray = _RAYS[king][frm] if king >= 0 else 0
    if (frm == king or king < 0
            or (ray and ray & (board.bishops | board.rooks | board.queens) & board.occupied_co[not turn])
            or (kind == _PAWN_CAPTURE and board.ep_square == to)
            or board.attackers_mask(not turn, king)):
        if board.is_into_check(move):
            raise ValueError(f"illegal san: {san!r} in {board.fen()}")
    return move


_TYPE_ATTR = {chess.PAWN: "pawns", chess.KNIGHT: "knights", chess.BISHOP: "bishops", chess.ROOK: "rooks",
              chess.QUEEN: "queens", chess.KING: "kings"}
_CASTLE = {  # (king from, king to) in standard notation -> (rook from, rook to)
    (chess.E1, chess.G1): (chess.H1, chess.F1), (chess.E1, chess.C1): (chess.A1, chess.D1),
    (chess.E8, chess.G8): (chess.H8, chess.F8), (chess.E8, chess.C8): (chess.A8, chess.D8)}


def push_light(board: chess.Board, move: chess.Move) -> None:
    """``board.push(move)`` for standard chess without the undo stack and move counters.

    The same piece placement, side to move, castling rights, en passant square and promoted-piece
    mask as ``push`` (checked against it in the tests), at about half the cost, working on the
    bitboards directly. ``pop``, ``move_stack``, repetition and fifty-move queries do not work on a
    board advanced this way; the move must be legal and in standard notation (castling ``e1g1``).
    """
    frm, to = move.from_square, move.to_square
    turn, them = board.turn, not board.turn
    from_bb, to_bb = _BB[frm], _BB[to]
    ep_square = board.ep_square
    board.ep_square = None
    piece_type = board.piece_type_at(frm)
    if piece_type == chess.KING and (frm, to) in _CASTLE and board.castling_rights & _BB[_CASTLE[frm, to][0]]:
        rook_from, rook_to = _CASTLE[frm, to]
        moved = from_bb | to_bb
        rmoved = _BB[rook_from] | _BB[rook_to]
        board.kings ^= moved
        board.rooks ^= rmoved
        board.occupied ^= moved | rmoved
        board.occupied_co[turn] ^= moved | rmoved
        board.castling_rights &= ~(chess.BB_RANK_1 if turn else chess.BB_RANK_8)
        board.turn = them
        return
    promoted = bool(board.promoted & from_bb)
    # lift the moving piece
    setattr(board, _TYPE_ATTR[piece_type], getattr(board, _TYPE_ATTR[piece_type]) & ~from_bb)
    board.occupied &= ~from_bb
    board.occupied_co[turn] &= ~from_bb
    board.promoted &= ~from_bb
    # take a captured piece
    captured = board.piece_type_at(to) if board.occupied_co[them] & to_bb else None
    if captured:
        setattr(board, _TYPE_ATTR[captured], getattr(board, _TYPE_ATTR[captured]) & ~to_bb)
        board.occupied_co[them] &= ~to_bb
        board.promoted &= ~to_bb
    rights = board.castling_rights & ~to_bb & ~from_bb
    if piece_type == chess.KING and not promoted:
        rights &= ~(chess.BB_RANK_1 if turn else chess.BB_RANK_8)
    board.castling_rights = rights
    if piece_type == chess.PAWN:
        diff = to - frm
        if diff == 16 and frm >> 3 == 1:
            board.ep_square = frm + 8
        elif diff == -16 and frm >> 3 == 6:
            board.ep_square = frm - 8
        elif to == ep_square and not captured and diff in (7, 9, -7, -9):
            victim = _BB[ep_square + (-8 if turn else 8)]
            board.pawns &= ~victim
            board.occupied &= ~victim
            board.occupied_co[them] &= ~victim
        if move.promotion:
            promoted = True
            piece_type = move.promotion
    # drop it on the target square
    setattr(board, _TYPE_ATTR[piece_type], getattr(board, _TYPE_ATTR[piece_type]) | to_bb)
    board.occupied |= to_bb
    board.occupied_co[turn] |= to_bb
    if promoted:
        board.promoted |= to_bb
    board.turn = them


def replay_sans(sans: Sequence[str]) -> list[chess.Move]:
    """The moves of a game given as SAN from the initial position (ValueError at the first bad one)."""
    board = chess.Board()
    moves = []
    for san in sans:
        move = san_to_move(board, san)
        push_light(board, move)
        moves.append(move)
    return moves
