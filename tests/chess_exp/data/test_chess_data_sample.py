"""The readers and ``chess prepare`` on the real lichess sample (../shared/data; marker ``data``).

What runs here (about 30-60 s on one core): one text-level pass over the whole PGN and the whole
CSV (52,588 games each), ``prepare`` of the <=1000 games with both tokenizers, and python-chess's own
``parse_san`` over every move of the <=1000 games plus every 25th game of the whole file.
"""

from __future__ import annotations

import fcntl
import os
import pickle
import re

import chess
import numpy as np
import pytest

from chess_exp.data import readers as data
from chess_exp.data._pgn import transcript_to_sans
from chess_exp.data.prepare import prepare
from chess_exp.data.prepared import iter_game_tokens
from chess_exp.data.readers import SAMPLE_CSV, SAMPLE_PGN, ReadStats, read_games
from chess_exp.data.tokenizers import get_tokenizer

pytestmark = pytest.mark.data

# the data README, "Counts by rating cap" (counted from the CSV): cap -> (games, total plies)
README_COUNTS = {1000: (3_652, 258_881), 1300: (12_088, 859_717), 1500: (22_056, 1_601_353)}
N_GAMES = 52_588

# what an evaluation would look like if one leaked into a transcript: "0.24" (a '.' followed by a
# digit never occurs in "12.Nf3"), "#3"/"#-2" (a '#' followed by anything but the end or a space),
# or the comment syntax itself
EVAL_LEAK = re.compile(rb"\.[0-9-]|#[^ ]|[{}\[\]%]|eval")


def _records(path):
    stats = ReadStats()
    recs = [(r.game_id, r.white_elo, r.black_elo, r.n_plies, r.transcript) for r in data._records(path, stats)]
    return recs, stats


def _shared(tmp_path_factory, name, compute):
    """Compute once per test session, even across pytest-xdist workers (a file lock; the others load)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # shared by the workers of one run
    path = root / f"chess-data-sample-{name}.pkl"
    with open(root / f"chess-data-sample-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            return pickle.loads(path.read_bytes())
        value = compute()
        path.write_bytes(pickle.dumps(value))
        return value


@pytest.fixture(scope="module")
def pgn_records(shared_data_dir, tmp_path_factory):
    return _shared(tmp_path_factory, "pgn", lambda: _records(shared_data_dir / SAMPLE_PGN))


@pytest.fixture(scope="module")
def csv_records(shared_data_dir, tmp_path_factory):
    return _shared(tmp_path_factory, "csv", lambda: _records(shared_data_dir / SAMPLE_CSV))


def _cap_counts(recs):
    out = {}
    for cap in README_COUNTS:
        kept = [r for r in recs if r[1] is not None and r[2] is not None and max(r[1], r[2]) <= cap]
        out[cap] = (len(kept), sum(r[3] for r in kept))
    return out


def test_counts_per_cap_match_the_readme(pgn_records, csv_records):
    for recs, stats in (pgn_records, csv_records):
        assert len(recs) == N_GAMES and stats.seen == N_GAMES
        assert not stats.malformed
        assert _cap_counts(recs) == README_COUNTS


def test_pgn_text_parser_agrees_with_python_chess_csv_on_every_game(pgn_records, csv_records):
    """The CSV was re-serialised with python-chess: our board-free PGN parser must give exactly its
    moves (so no comment, eval, clock or result is left) for all 52,588 games, in the same order."""
    pgn, _ = pgn_records
    csv, _ = csv_records
    assert [r[0] for r in pgn] == [r[0] for r in csv]
    assert [r[1:] for r in pgn] == [r[1:] for r in csv]


def test_no_evaluation_reaches_a_transcript(pgn_records, shared_data_dir):
    pgn, _ = pgn_records
    assert not any(EVAL_LEAK.search(r[4]) for r in pgn)
    # and the evals are really in the file (what the check above guards against)
    games = []
    for game in read_games(shared_data_dir / SAMPLE_PGN, keep_evals=True, check_legal=False):
        games.append(game)
        if len(games) == 50:
            break
    evals = [e for g in games for e in g.evals if e is not None]
    assert len(evals) > 1000 and any(e.startswith("#") for e in evals)
    assert [data.transcript(g.sans).encode() for g in games] == [r[4] for r in pgn[:50]]


def test_char_round_trip_every_game(pgn_records):
    """PGN -> transcript -> char ids -> text gives back ';' + the transcript, and the SAN list."""
    tok = get_tokenizer("char")
    for _gid, _, _, n_plies, t in pgn_records[0]:
        ids = tok.encode_array(b";" + t)
        assert ids[0] == 15 and ids.max() < 32
        text = tok.decode(ids.tolist())
        assert text.encode() == b";" + t
        assert len(transcript_to_sans(t)) == n_plies


def test_moves_are_legal_by_python_chess(pgn_records):
    """Every move of every <=1000 game, and of every 25th game of the file, replayed with
    python-chess's own parse_san (independent of our fast SAN resolver)."""
    pgn, _ = pgn_records
    chosen = [r for i, r in enumerate(pgn) if i % 25 == 0 or (max(r[1], r[2]) <= 1000)]
    assert len(chosen) > 3_652 + 1_500
    plies = 0
    for r in chosen:
        board = chess.Board()
        for san in transcript_to_sans(r[4]):
            board.push(board.parse_san(san))
            plies += 1
    assert plies > 258_881


@pytest.fixture(scope="module")
def prepared_1000(shared_data_dir, tmp_path_factory):
    def compute():
        root = tmp_path_factory.mktemp("prepared")
        char = prepare([shared_data_dir / SAMPLE_PGN], root / "char", tokenizer="char", progress=False,
                       filters=data.Filters(cap=1000))
        move = prepare([shared_data_dir / SAMPLE_CSV], root / "move", tokenizer="move", progress=False,
                       filters=data.Filters(cap=1000), workers=2)
        return root, char, move
    return _shared(tmp_path_factory, "prepared", compute)


def test_prepare_counts_and_meta(prepared_1000, shared_data_dir):
    root, char, move = prepared_1000
    games, plies = README_COUNTS[1000]
    for meta in (char, move):
        c = meta["counts"]
        assert c["train"]["games"] + c["val"]["games"] == games
        assert c["train"]["plies"] + c["val"]["plies"] == plies
        assert meta["stats"]["malformed"] == {}
        assert meta["stats"]["filtered"] == {"above_cap": N_GAMES - games}
        assert 0.03 < c["val"]["games"] / games < 0.07
    assert char["sources"][0]["sha256"] == "6bd35b7e577bbfede65d9e1d8f6ce2190a2ca798aa2e11af5e817cadda6e20ac"
    assert move["sources"][0]["sha256"] == "ab7026c0d719bc560d8716ed08c08cf5a8edc51428d6e3150b6cba46c781bc50"
    # char tokens: ';' + transcript per game -> characters = plies + move numbers + ...; move: plies + 2
    assert move["counts"]["train"]["tokens"] == move["counts"]["train"]["plies"] + 2 * move["counts"]["train"]["games"]


def test_prepared_text_is_exactly_the_moves(prepared_1000, csv_records):
    """The prepared char text of each <=1000 game is ';' + the python-chess transcript (from the CSV),
    so no evaluation or anything else reaches the training text; the move tokens decode to the same
    games; both splits follow split_of(game_id)."""
    root, _, _ = prepared_1000
    csv, _ = csv_records
    kept = [r for r in csv if max(r[1], r[2]) <= 1000]
    char_tok, move_tok = get_tokenizer("char"), get_tokenizer("move")
    for split in ("train", "val"):
        expected = [r for r in kept if data.split_of(r[0]) == split]
        texts = [char_tok.decode(ids.tolist()) for ids in iter_game_tokens(root / "char", split)]
        assert texts == [";" + r[4].decode() for r in expected]
        assert not any(EVAL_LEAK.search(t.encode()) for t in texts)
        raw = np.fromfile(root / "char" / f"{split}.bin", dtype=np.uint16)
        assert raw.max() < 32 and (raw == 15).sum() == len(expected)
        for ids, r in zip(iter_game_tokens(root / "move", split), expected):
            assert ids[0] == move_tok.start_id and ids[-1] == move_tok.end_id
            board = chess.Board()
            sans = []
            for token in ids[1:-1]:
                move = move_tok.id_to_move(int(token))
                assert board.is_legal(move)
                sans.append(board.san(move))
                board.push(move)
            assert data.transcript(sans).encode() == r[4]
