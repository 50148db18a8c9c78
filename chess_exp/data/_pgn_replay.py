"""Replaying SAN games fast, with exactly python-chess's idea of legality.

- ``replay_ids(sans, table)``: a whole game on plain-integer bitboards (python-chess's attack
  tables, no ``Board`` object): each SAN's candidate pieces come from the attack tables, a
  candidate is applied to copies of the bitboards and kept when its king is not attacked
  (make-and-test), castling checks the right, the empty and the unattacked squares. About 4x
  ``Board.parse_san`` + ``push`` per game. Rare SAN spellings (``e8Q``, ``0-0`` ...) come back as
  "other" for the path below.
- ``san_to_move(board, san)`` + ``push_light(board, move)``: the same on a ``chess.Board`` one
  move at a time (bitboard lookups, ``is_into_check`` only when a pin or check is possible, push
  without the undo stack); castling, promotions and odd spellings go to ``Board.parse_san``.

Both give the move python-chess would parse, or an error where python-chess raises (illegal,
ambiguous, not SAN); the tests check this on random games and on every game of the sample.
"""

from __future__ import annotations

from collections.abc import Sequence

import chess

__all__ = ["san_to_move", "push_light", "replay_sans", "replay_ids"]

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


# --- a whole game on local bitboards (the `move` preparation path) ------------------------------

_K_PUSH, _K_CAPTURE, _K_PROMO, _K_PROMO_CAPTURE, _K_PIECE, _K_OO, _K_OOO, _K_OTHER = range(8)
_PROMO_TYPE = {"Q": chess.QUEEN, "R": chess.ROOK, "B": chess.BISHOP, "N": chess.KNIGHT}
_PIECE_INDEX = {"N": 1, "B": 2, "R": 3, "Q": 4, "K": 5}  # index into (P, N, B, R, Q, K)
_GAME_PARSED: dict[str, tuple] = {}
_PAWN_ATT = chess.BB_PAWN_ATTACKS


def _parse_game_san(san: str) -> tuple:
    """Position-independent reading of one SAN for ``replay_ids`` (_K_OTHER: leave it to python-chess)."""
    s = san.rstrip("+#")
    if s in ("O-O", "O-O-O"):
        return (_K_OO if s == "O-O" else _K_OOO,)
    c = s[:1]
    if c and c in _FILES:
        promo = 0
        if len(s) >= 4 and s[-2] == "=" and s[-1] in _PROMO_TYPE:
            promo, s = _PROMO_TYPE[s[-1]], s[:-2]
        if s[-1:] in ("1", "8") and not promo or promo and s[-1:] not in ("1", "8"):
            return (_K_OTHER,)
        if len(s) == 2 and s in _SQ:
            return (_K_PROMO if promo else _K_PUSH, _SQ[s], 0, promo)
        if len(s) == 4 and s[1] == "x" and s[2:] in _SQ:
            to = _SQ[s[2:]]
            delta = _FILES.index(c) - chess.square_file(to)
            if abs(delta) != 1:
                return (_K_OTHER,)
            return (_K_PROMO_CAPTURE if promo else _K_CAPTURE, to, delta, promo)
        return (_K_OTHER,)
    p = _parse(san)
    if p[0] == _PIECE_MOVE:
        return (_K_PIECE, p[1], _PIECE_INDEX[p[2]], p[3])
    return (_K_OTHER,)


def _attacked(sq: int, pcs: list[int], occ: int, enemy: int, by_white: bool) -> int:
    """Pieces of the side ``enemy`` (occupancy mask) that attack ``sq``; ``pcs`` = (P, N, B, R, Q, K)."""
    return ((_KNIGHT[sq] & pcs[1]) | (_KING[sq] & pcs[5]) | (_PAWN_ATT[not by_white][sq] & pcs[0])
            | (_DIAG[sq][_DIAG_MASK[sq] & occ] & (pcs[2] | pcs[4]))
            | ((_RANK[sq][_RANK_MASK[sq] & occ] | _FILE[sq][_FILE_MASK_SQ[sq] & occ]) & (pcs[3] | pcs[4]))
            ) & enemy


_CASTLING = {  # (white, kingside) -> king from, king to, rook from, rook to, squares that must be empty,
    # squares the king crosses (must not be attacked)
    (True, True): (chess.E1, chess.G1, chess.H1, chess.F1, chess.BB_F1 | chess.BB_G1, (chess.F1, chess.G1)),
    (True, False): (chess.E1, chess.C1, chess.A1, chess.D1, chess.BB_B1 | chess.BB_C1 | chess.BB_D1,
                    (chess.D1, chess.C1)),
    (False, True): (chess.E8, chess.G8, chess.H8, chess.F8, chess.BB_F8 | chess.BB_G8, (chess.F8, chess.G8)),
    (False, False): (chess.E8, chess.C8, chess.A8, chess.D8, chess.BB_B8 | chess.BB_C8 | chess.BB_D8,
                     (chess.D8, chess.C8)),
}


def replay_ids(sans: Sequence[str], table: list[int]) -> list[int] | str:
    """Replay a game from the initial position on plain-integer bitboards and return the move ids
    ``table[(from * 64 + to) * 7 + promotion]`` of its moves; "illegal_move" if a move is illegal
    or ambiguous (exactly where ``Board.parse_san`` raises), or "other" for a SAN spelling this
    reader leaves to python-chess (then replay with ``san_to_move``).

    Legality by make-and-test: a candidate move is applied to copies of the bitboards and kept
    if the mover's king is not attacked afterwards; castling also needs the right, empty squares
    and no attacked square on the king's path.
    """
    b = chess.Board()
    pcs = [b.pawns, b.knights, b.bishops, b.rooks, b.queens, b.kings]  # both colours
    occ_c = [b.occupied_co[chess.BLACK], b.occupied_co[chess.WHITE]]  # index by colour (0 black, 1 white)
    rights = b.castling_rights
    ep = -1
    white = True
    ids = []
    parsed = _GAME_PARSED
    for san in sans:
        p = parsed.get(san)
        if p is None:
            p = _parse_game_san(san)
            if len(parsed) < 200_000:
                parsed[san] = p
        kind = p[0]
        us, them = occ_c[white], occ_c[not white]
        occ = us | them
        if kind == _K_OTHER:
            return "other"
        if kind == _K_OO or kind == _K_OOO:
            kf, kt, rf, rt, empty, path = _CASTLING[white, kind == _K_OO]
            if (not rights & _BB[rf] or not pcs[5] & us & _BB[kf] or not pcs[3] & us & _BB[rf]
                    or occ & empty or _attacked(kf, pcs, occ, them, not white)
                    or any(_attacked(sq, pcs, occ, them, not white) for sq in path)):
                return "illegal_move"
            kmove, rmove = _BB[kf] | _BB[kt], _BB[rf] | _BB[rt]
            pcs[5] ^= kmove
            pcs[3] ^= rmove
            occ_c[white] = us ^ kmove ^ rmove
            rights &= ~(chess.BB_RANK_1 if white else chess.BB_RANK_8)
            ep = -1
            ids.append(table[(kf * 64 + kt) * 7])
            white = not white
            continue
        to = p[1]
        to_bb = _BB[to]
        if us & to_bb:
            return "illegal_move"
        promo = 0
        ep_capture = False
        if kind == _K_PIECE:
            index, mask = p[2], p[3]
            if index == 1:
                cands = _KNIGHT[to]
            elif index == 2:
                cands = _DIAG[to][_DIAG_MASK[to] & occ]
            elif index == 3:
                cands = _RANK[to][_RANK_MASK[to] & occ] | _FILE[to][_FILE_MASK_SQ[to] & occ]
            elif index == 4:
                cands = (_DIAG[to][_DIAG_MASK[to] & occ] | _RANK[to][_RANK_MASK[to] & occ]
                         | _FILE[to][_FILE_MASK_SQ[to] & occ])
            else:
                cands = _KING[to]
            cands &= pcs[index] & us & mask
        else:
            index = 0
            step = 8 if white else -8
            frm = to - step + p[2]
            if not 0 <= frm < 64:
                return "illegal_move"
            own_pawns = pcs[0] & us
            if kind == _K_PUSH or kind == _K_PROMO:
                if occ & to_bb:
                    return "illegal_move"
                if kind == _K_PROMO and to >> 3 != (7 if white else 0):
                    return "illegal_move"
                if not own_pawns & _BB[frm]:
                    frm2 = frm - step
                    if (kind == _K_PROMO or to >> 3 != (3 if white else 4) or occ & _BB[frm]
                            or not own_pawns & _BB[frm2]):
                        return "illegal_move"
                    frm = frm2
            else:  # captures
                if not own_pawns & _BB[frm]:
                    return "illegal_move"
                if kind == _K_PROMO_CAPTURE and to >> 3 != (7 if white else 0):
                    return "illegal_move"
                if not them & to_bb:
                    if to != ep or kind == _K_PROMO_CAPTURE:
                        return "illegal_move"
                    ep_capture = True
            if kind == _K_PUSH or kind == _K_CAPTURE:
                if to >> 3 == (7 if white else 0):  # a pawn reaching the last rank must promote
                    return "illegal_move"
            promo = p[3]
            cands = _BB[frm]
        # make-and-test every candidate (usually one); more than one legal = ambiguous
        found = None
        while cands:
            frm = cands.bit_length() - 1
            cands ^= _BB[frm]
            from_bb = _BB[frm]
            new_us = (us ^ from_bb) | to_bb
            victim_bb = _BB[to - (8 if white else -8)] if ep_capture else (to_bb if them & to_bb else 0)
            new_them = them & ~victim_bb
            new = [x & ~victim_bb for x in pcs] if victim_bb else pcs[:]
            new[index] ^= from_bb
            new[promo - 1 if promo else index] |= to_bb  # piece types are 1-6, indices 0-5
            king = new[5] & new_us
            if king and _attacked(king.bit_length() - 1, new, new_us | new_them, new_them, not white):
                continue
            if found is not None:
                return "illegal_move"  # ambiguous
            found = (frm, new, new_us, new_them)
        if found is None:
            return "illegal_move"
        frm, pcs, occ_c[white], occ_c[not white] = found
        rights &= ~(_BB[frm] | to_bb)
        if index == 5:
            rights &= ~(chess.BB_RANK_1 if white else chess.BB_RANK_8)
        ep = (frm + to) // 2 if index == 0 and abs(to - frm) == 16 else -1
        ids.append(table[(frm * 64 + to) * 7 + promo])
        white = not white
    return ids
