"""Tokenizers for game transcripts: the paper's 32 characters (``char``) and one token per move (``move``).

``char`` (the paper's 32 characters and ids, docs/paper-notes.md)::

    0:' ' 1:'#' 2:'+' 3:'-' 4:'.' 5-14:'0'-'9' 15:';' 16:'=' 17:'B' 18:'K' 19:'N' 20:'O'
    21:'Q' 22:'R' 23-30:'a'-'h' 31:'x'

A game is ``';' + transcript``: ``;1.e4 e5 2.Nf3``. The next game's ``;`` ends it (no end token).

``move``: id 0 is the game-start token, id 1 the game-end token, then every from-to move a queen or
a knight could make on an empty board (1,792, which covers king, rook, bishop and pawn moves too,
castling being the king's two-square move ``e1g1``), then every promotion ``a7a8q`` ... (176):
1,970 ids in all. A game is ``[start, m1, ..., mn, end]``.

Both satisfy the contract used by the exact move policy: for every ply ``i`` with position
``board_i`` and move ``move_i``::

    prefix(sans[:i]) + move_tokens(board_i, move_i)  is a prefix of  encode_game(sans) + [terminator]

and no legal move's ``move_tokens`` is a prefix of another's (``char`` ends each with a space).

>>> tok = get_tokenizer("char")
>>> tok.encode_game(["e4", "e5"])[:4]
[15, 6, 4, 27]
>>> tok.decode(tok.encode_game(["e4", "e5", "Nf3"]))
';1.e4 e5 2.Nf3'
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

import chess
import numpy as np

__all__ = ["Tokenizer", "CharTokenizer", "MoveTokenizer", "get_tokenizer", "TOKENIZERS", "CHAR_VOCAB",
           "MOVE_VOCAB"]

#: the paper's vocabulary, in id order
CHAR_VOCAB: str = " #+-.0123456789;=BKNOQRabcdefghx"
assert len(CHAR_VOCAB) == 32 and CHAR_VOCAB.index(";") == 15 and CHAR_VOCAB.index("x") == 31


def _all_uci_moves() -> list[str]:
    """Every from-to move of a queen or knight on an empty board, then every pawn promotion."""
    moves = []
    for frm in chess.SQUARES:
        for to in chess.SQUARES:
            if frm == to:
                continue
            df = abs(chess.square_file(frm) - chess.square_file(to))
            dr = abs(chess.square_rank(frm) - chess.square_rank(to))
            if df == 0 or dr == 0 or df == dr or {df, dr} == {1, 2}:
                moves.append(chess.square_name(frm) + chess.square_name(to))
    for from_rank, to_rank in ((6, 7), (1, 0)):
        for f in range(8):
            for tf in (f - 1, f, f + 1):
                if 0 <= tf < 8:
                    for piece in "qrbn":
                        moves.append(chess.square_name(chess.square(f, from_rank))
                                     + chess.square_name(chess.square(tf, to_rank)) + piece)
    return moves


MOVE_START, MOVE_END = "<start>", "<end>"
#: the move vocabulary, in id order
MOVE_VOCAB: tuple[str, ...] = (MOVE_START, MOVE_END, *_all_uci_moves())
assert len(MOVE_VOCAB) == 1970


class Tokenizer(Protocol):
    """What the model, the players and the data pipeline need from a tokenizer."""

    name: str
    vocab_size: int
    start_id: int  # every game starts with it
    end_id: int | None  # the game-end token, or None (char: the next game's ';' ends a game)

    def encode_game(self, sans: Sequence[str]) -> list[int]: ...

    def prefix(self, sans: Sequence[str]) -> list[int]: ...

    def move_tokens(self, board: chess.Board, move: chess.Move) -> list[int]: ...

    def decode(self, ids: Iterable[int]) -> str: ...


class CharTokenizer:
    """The paper's character tokenizer (32 ids, ``;`` = 15 starts a game)."""

    name = "char"
    vocab_size = 32
    start_id = 15
    end_id: int | None = None
    vocab = CHAR_VOCAB

    def __init__(self) -> None:
        self._stoi = {c: i for i, c in enumerate(CHAR_VOCAB)}
        table = bytearray([255]) * 256
        for i, c in enumerate(CHAR_VOCAB):
            table[ord(c)] = i
        self._table = bytes(table)  # bytes.translate table: ASCII char -> id (255 = not in vocabulary)

    def encode(self, text: str) -> list[int]:
        """Characters -> ids; ValueError naming the first character outside the vocabulary."""
        return self.encode_array(text.encode("ascii", "replace") if isinstance(text, str) else text).tolist()

    def encode_array(self, text: bytes) -> np.ndarray:
        """ASCII bytes -> np.uint8 ids (fast path used by preparation)."""
        ids = np.frombuffer(text.translate(self._table), dtype=np.uint8)
        if ids.size and ids.max() == 255:
            bad = chr(text[int(np.argmax(ids == 255))])
            raise ValueError(f"text: character {bad!r} is not in the char vocabulary {CHAR_VOCAB!r}")
        return ids

    def encode_game(self, sans: Sequence[str]) -> list[int]:
        """``;1.e4 e5 2.Nf3`` as ids."""
        from chess_exp.data._pgn import sans_to_transcript
        return self.encode(";" + sans_to_transcript(list(sans)))

    def prefix(self, sans: Sequence[str]) -> list[int]:
        """The ids before the next move: ``;1.e4 e5 2.`` (White to move) or ``;1.e4 `` (Black)."""
        from chess_exp.data._pgn import sans_to_transcript
        n = len(sans)
        text = ";" + sans_to_transcript(list(sans))
        if n == 0:
            text = ";1."
        elif n % 2 == 0:
            text += f" {n // 2 + 1}."
        else:
            text += " "
        return self.encode(text)

    def prefix_board(self, board: chess.Board) -> list[int]:
        """``prefix`` of the game that led to ``board`` (its move stack, from the initial position)."""
        return self.prefix(_stack_sans(board))

    def move_tokens(self, board: chess.Board, move: chess.Move) -> list[int]:
        """``SAN + ' '`` (the space terminates the move, so no move's tokens prefix another's)."""
        return self.encode(board.san(move) + " ")

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(CHAR_VOCAB[i] for i in ids)


class MoveTokenizer:
    """One token per move (UCI), with game-start and game-end tokens."""

    name = "move"
    vocab_size = len(MOVE_VOCAB)
    start_id = 0
    end_id: int | None = 1
    vocab = MOVE_VOCAB

    def __init__(self) -> None:
        self._stoi = {m: i for i, m in enumerate(MOVE_VOCAB)}
        # (from, to, promotion piece type or 0) -> id, as a flat lookup table
        table = np.full(64 * 64 * 7, -1, dtype=np.int32)
        for i, uci in enumerate(MOVE_VOCAB[2:], start=2):
            m = chess.Move.from_uci(uci)
            table[(m.from_square * 64 + m.to_square) * 7 + (m.promotion or 0)] = i
        self._table = table.tolist()

    def move_id(self, move: chess.Move) -> int:
        """The id of a move (KeyError-free: ValueError for a null or impossible move)."""
        i = self._table[(move.from_square * 64 + move.to_square) * 7 + (move.promotion or 0)]
        if i < 0:
            raise ValueError(f"move {move.uci()!r} has no token")
        return i

    def id_to_move(self, token: int) -> chess.Move:
        if token < 2 or token >= self.vocab_size:
            raise ValueError(f"token {token} is not a move token")
        return chess.Move.from_uci(MOVE_VOCAB[token])

    def encode_moves(self, moves: Iterable[chess.Move]) -> list[int]:
        return [self.start_id, *(self.move_id(m) for m in moves), 1]

    def encode_game(self, sans: Sequence[str]) -> list[int]:
        """``[start, e2e4, e7e5, ..., end]``; ValueError if a move is illegal."""
        return [*self.prefix(sans), 1]

    def prefix(self, sans: Sequence[str]) -> list[int]:
        """``[start, e2e4, e7e5]``: the ids of the game so far (replays ``sans``)."""
        board = chess.Board()
        ids = [self.start_id]
        for san in sans:
            move = board.parse_san(san)
            ids.append(self.move_id(move))
            board.push(move)
        return ids

    def prefix_board(self, board: chess.Board) -> list[int]:
        """``prefix`` of the game that led to ``board``: ``[start, *its move stack]`` (no SAN needed)."""
        return [self.start_id, *(self.move_id(m) for m in board.move_stack)]

    def move_tokens(self, board: chess.Board, move: chess.Move) -> list[int]:
        return [self.move_id(move)]

    def decode(self, ids: Iterable[int]) -> str:
        """Space-separated UCI moves, with ``<start>``/``<end>`` for the special tokens."""
        return " ".join(MOVE_VOCAB[i] for i in ids)


def _stack_sans(board: chess.Board) -> list[str]:
    """The SAN moves of ``board.move_stack`` replayed from the initial position."""
    if board.move_stack and board.root() != chess.Board():
        raise ValueError("board: its game must start from the initial position")
    replay = chess.Board()
    sans = []
    for move in board.move_stack:
        sans.append(replay.san(move))
        replay.push(move)
    return sans


TOKENIZERS = {"char": CharTokenizer, "move": MoveTokenizer}
_CACHE: dict[str, Tokenizer] = {}


def get_tokenizer(name: str) -> Tokenizer:
    """``"char"`` (the paper's 32 characters) or ``"move"`` (one UCI token per move)."""
    if name not in TOKENIZERS:
        raise ValueError(f"tokenizer must be one of {sorted(TOKENIZERS)}, got {name!r}")
    if name not in _CACHE:
        _CACHE[name] = TOKENIZERS[name]()
    return _CACHE[name]
