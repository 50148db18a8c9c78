"""The char and move tokenizers: the paper's ids, vocabulary coverage, and the prefix contract."""

from __future__ import annotations

import chess
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chess_exp.data.tokenizers import CHAR_VOCAB, MOVE_VOCAB, get_tokenizer


def _random_game(choices: list[int]) -> tuple[list[str], list[chess.Board], list[chess.Move]]:
    """A game of legal moves picked by ``choices`` (index modulo the number of legal moves)."""
    board = chess.Board()
    sans, boards, moves = [], [], []
    for c in choices:
        legal = list(board.legal_moves)
        if not legal:
            break
        move = legal[c % len(legal)]
        boards.append(board.copy(stack=False))
        moves.append(move)
        sans.append(board.san(move))
        board.push(move)
    return sans, boards, moves


games = st.lists(st.integers(min_value=0, max_value=10_000), min_size=0, max_size=120).map(_random_game)


def test_char_ids_are_the_papers():
    """The paper's ids: 0:' ' 1:'#' 2:'+' 3:'-' 4:'.' 5-14:'0'-'9' 15:';' 16:'=' 17:'B' 18:'K' 19:'N'
    20:'O' 21:'Q' 22:'R' 23-30:'a'-'h' 31:'x'."""
    tok = get_tokenizer("char")
    expected = {" ": 0, "#": 1, "+": 2, "-": 3, ".": 4, ";": 15, "=": 16, "B": 17, "K": 18, "N": 19,
                "O": 20, "Q": 21, "R": 22, "x": 31}
    expected.update({str(d): 5 + d for d in range(10)})
    expected.update({f: 23 + i for i, f in enumerate("abcdefgh")})
    assert len(expected) == 32 == tok.vocab_size == len(CHAR_VOCAB)
    for ch, i in expected.items():
        assert tok.encode(ch) == [i]
    assert tok.start_id == 15 and tok.end_id is None


def test_char_encode_game_and_prefix_examples():
    tok = get_tokenizer("char")
    sans = ["e4", "e5", "Nf3", "Nc6", "Bb5", "a6"]
    assert tok.decode(tok.encode_game(sans)) == ";1.e4 e5 2.Nf3 Nc6 3.Bb5 a6"
    assert tok.decode(tok.prefix([])) == ";1."
    assert tok.decode(tok.prefix(["e4"])) == ";1.e4 "
    assert tok.decode(tok.prefix(["e4", "e5"])) == ";1.e4 e5 2."
    board = chess.Board()
    assert tok.decode(tok.move_tokens(board, chess.Move.from_uci("e2e4"))) == "e4 "


def test_char_rejects_characters_outside_the_vocabulary():
    tok = get_tokenizer("char")
    with pytest.raises(ValueError, match="'!'"):
        tok.encode("e4!")


def test_move_vocabulary():
    """1,792 queen/knight from-to moves + 176 promotions + start + end = 1,970, no duplicates."""
    tok = get_tokenizer("move")
    assert tok.vocab_size == len(MOVE_VOCAB) == 1970 == len(set(MOVE_VOCAB))
    assert (tok.start_id, tok.end_id) == (0, 1)
    assert sum(len(m) == 5 for m in MOVE_VOCAB[2:]) == 176
    for uci in ("e1g1", "e1c1", "e8g8", "a7a8q", "h2g1n", "b1c3", "a1h8"):
        assert MOVE_VOCAB[tok.move_id(chess.Move.from_uci(uci))] == uci
    with pytest.raises(ValueError):
        tok.move_id(chess.Move.from_uci("a1b3q"))


def test_move_encode_game_example():
    tok = get_tokenizer("move")
    assert tok.decode(tok.encode_game(["e4", "e5", "Nf3"])) == "<start> e2e4 e7e5 g1f3 <end>"
    assert tok.decode(tok.prefix(["e4"])) == "<start> e2e4"


@given(games)
def test_every_legal_move_has_a_distinct_token(game):
    """Invariant: in every position of a random game, each legal move maps to a distinct move token
    that decodes back to the same move."""
    tok = get_tokenizer("move")
    sans, boards, _ = game
    for board in boards[:40]:
        ids = [tok.move_id(m) for m in board.legal_moves]
        assert len(set(ids)) == len(ids)
        assert all(tok.id_to_move(i) == m for i, m in zip(ids, board.legal_moves))


@pytest.mark.parametrize("name", ["char", "move"])
@given(game=games)
def test_prefix_contract(name, game):
    """Invariant (the exact move policy relies on it): prefix(sans[:i]) + move_tokens(board_i, move_i)
    is a prefix of encode_game(sans) + [terminator], prefix_board(board_i) == prefix(sans[:i]), and
    no legal move's tokens are a prefix of another legal move's tokens."""
    tok = get_tokenizer(name)
    sans, boards, moves = game
    full = tok.encode_game(sans) + (tok.encode(" ") if name == "char" else [])
    assert full[0] == tok.start_id
    replay = chess.Board()
    for i, (board, move) in enumerate(zip(boards, moves)):
        seq = tok.prefix(sans[:i]) + tok.move_tokens(board, move)
        assert full[: len(seq)] == seq
        if i % 10 == 0:
            assert tok.prefix_board(replay) == tok.prefix(sans[:i])
        replay.push(move)
    for board in boards[:: max(1, len(boards) // 5)]:
        conts = [tuple(tok.move_tokens(board, m)) for m in board.legal_moves]
        for a in conts:
            for b in conts:
                assert a == b or b[: len(a)] != a


@given(games)
def test_char_round_trip(game):
    """Invariant: decode(encode_game(sans)) is ';' + the paper's transcript, and the transcript's
    SAN words give back sans."""
    from chess_exp.data.readers import transcript
    tok = get_tokenizer("char")
    sans, _, _ = game
    text = tok.decode(tok.encode_game(sans))
    assert text == ";" + transcript(sans)
    words = [w.split(".")[-1] for w in text[1:].split()]
    assert words == sans
    assert np.array_equal(tok.encode_array(text.encode()), np.array(tok.encode(text), dtype=np.uint8))
