"""Readers, malformed input, filters, split and ``chess prepare`` on small synthetic files."""

from __future__ import annotations

import argparse
import bz2
import gzip
import json
import lzma
from pathlib import Path

import chess
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chess_exp.data import _pgn
from chess_exp.data._pgn_replay import san_to_move
from chess_exp.data.prepare import add_arguments, main, prepare
from chess_exp.data.prepared import iter_game_tokens, load_prepared
from chess_exp.data.readers import (
    Filters,
    Game,
    ReadStats,
    in_cap,
    read_games,
    split_of,
    time_control_speed,
    transcript,
)
from chess_exp.data.tokenizers import get_tokenizer


def pgn_game(gid: str, movetext: str, *, result: str = "1-0", white_elo: str = "900",
             black_elo: str = "950", extra: str = "", tc: str = "600+0", termination: str = "Normal") -> str:
    return (f'[Event "Rated Rapid game"]\n[Site "https://lichess.org/{gid}"]\n[White "a"]\n[Black "b"]\n'
            f'[Result "{result}"]\n[WhiteElo "{white_elo}"]\n[BlackElo "{black_elo}"]\n'
            f'[TimeControl "{tc}"]\n[Termination "{termination}"]\n{extra}\n{movetext}\n\n')


LICHESS_MOVES = ("1. e4 { [%eval 0.24] } 1... e5 { [%eval 0.31] } 2. Nf3 { [%eval #3] } 2... Nc6 "
                 "{ [%eval -0.12] } 3. Bb5 { [%eval 0.2] } 1-0")
SCHOLAR = "1. e4 e5 2. Bc4 Nc6 3. Qh5 Nf6 4. Qxf7# 1-0"

GOOD = [pgn_game("good0001", LICHESS_MOVES), pgn_game("good0002", SCHOLAR)]

# (reason, game text): each kind of malformed input the reader must skip and count
MALFORMED = [
    ("truncated", pgn_game("trunc001", "1. e4 { [%eval 0.24] } 1... e5 { [%eval 0.31] } 2. Nf3")),
    ("truncated", pgn_game("trunc002", "1. e4 { [%eval 0.24] } 1... e5 { [%eval 0.3")),
    ("truncated", pgn_game("trunc003", "")),
    ("illegal_move", pgn_game("illeg001", "1. e4 e5 2. e8 Nc6 1-0")),  # pawn to the 8th without promotion
    ("illegal_move", pgn_game("illeg002", "1. e4 e5 2. Qh5# Nf6 1-0")),  # mate before the end
    ("illegal_move", pgn_game("illeg003", "1. Ke5 e5 1-0")),  # only a board finds this one
    ("illegal_move", pgn_game("illeg004", "1. e4 e5 2. Nf3 Nc6 3. Nf3 1-0")),  # no knight reaches f3
    ("unknown_characters", pgn_game("unkno001", "1. e4 e5 2. Nf3 Ж 1-0")),
    ("unknown_characters", pgn_game("unkno002", "1. e4 e5 2. Nf3 Nc6 3. Bb5 a6 4. B@a4 1-0")),
    ("bad_header", pgn_game("badhd001", "1. e4 e5 1-0", extra="[WhiteRatingDiff +8]\n")),
    ("bad_header", pgn_game("badhd002", "1. e4 e5 1-0", white_elo="nine hundred")),
    ("bad_header", pgn_game("badhd003", "1. e4 e5 1-0", result="2-0")),
    ("bad_movetext", pgn_game("badmv001", "1. e4 e5 3. Nf3 Nc6 1-0")),  # move numbers skip
    ("bad_movetext", pgn_game("badmv002", "1. e4 e5 2. Nf9 Nc6 1-0")),
    ("result_mismatch", pgn_game("resmm001", "1. e4 e5 0-1")),
    ("result_mismatch", pgn_game("resmm002", SCHOLAR.replace("1-0", "0-1"), result="0-1")),
    ("no_moves", pgn_game("nomov001", "1-0")),
    ("nonstandard", pgn_game("nonst001", "1. e4 e5 1-0", extra='[Variant "Crazyhouse"]\n')),
]


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def read_all(path: Path, **kw) -> tuple[list[Game], ReadStats]:
    stats = ReadStats()
    return list(read_games(path, stats=stats, **kw)), stats


def test_reads_lichess_layout_and_keeps_evals_out_of_the_moves(tmp_path):
    games, stats = read_all(write(tmp_path / "g.pgn", "".join(GOOD)), keep_evals=True)
    assert [g.game_id for g in games] == ["good0001", "good0002"]
    g = games[0]
    assert g.sans == ("e4", "e5", "Nf3", "Nc6", "Bb5")
    assert (g.white_elo, g.black_elo, g.result) == (900, 950, "1-0")
    assert g.evals == ("0.24", "0.31", "#3", "-0.12", "0.2")
    assert games[1].evals == (None,) * 7
    assert transcript(g.sans) == "1.e4 e5 2.Nf3 Nc6 3.Bb5"
    assert g.headers["TimeControl"] == "600+0"
    assert stats.seen == 2 and stats.kept == 2 and not stats.malformed


@pytest.mark.parametrize("reason,text", MALFORMED, ids=[f"{r}-{i}" for i, (r, _) in enumerate(MALFORMED)])
def test_each_malformed_game_is_skipped_and_counted(tmp_path, reason, text):
    """A malformed game between two good ones: both good games survive, the bad one is counted."""
    path = write(tmp_path / "m.pgn", GOOD[0] + text + GOOD[1])
    games, stats = read_all(path)
    assert [g.game_id for g in games] == ["good0001", "good0002"]
    assert stats.malformed == {reason: 1}
    assert stats.seen == 3 and stats.kept == 2


def test_all_malformed_kinds_at_once_and_summary(tmp_path):
    text = GOOD[0] + "".join(t for _, t in MALFORMED) + GOOD[1]
    games, stats = read_all(write(tmp_path / "all.pgn", text))
    assert len(games) == 2
    expected = {}
    for reason, _ in MALFORMED:
        expected[reason] = expected.get(reason, 0) + 1
    assert dict(stats.malformed) == expected
    summary = stats.summary()
    assert "kept: 2" in summary and "illegal_move=4" in summary


def test_non_utf8_bytes_are_skipped(tmp_path):
    bad = pgn_game("nonut001", "1. e4 e5 1-0").encode().replace(b'[White "a"]', b'[White "\xff\xfe"]')
    path = write(tmp_path / "b.pgn", GOOD[0].encode() + bad + GOOD[1].encode())
    games, stats = read_all(path)
    assert [g.game_id for g in games] == ["good0001", "good0002"]
    assert stats.malformed == {"non_utf8": 1}
    # valid UTF-8 in a header is fine
    ok = pgn_game("utf8ok01", "1. e4 e5 1-0").replace('[White "a"]', '[White "Jérôme"]')
    games, stats = read_all(write(tmp_path / "u.pgn", ok))
    assert games[0].headers["White"] == "Jérôme" and not stats.malformed


def test_board_free_checks_without_replay(tmp_path):
    """check_legal=False: what the text-level parser catches; a move legal-looking but impossible in
    its position (1.Ke5) passes, which is why the move path and check_legal=True replay."""
    text = GOOD[0] + "".join(t for _, t in MALFORMED) + GOOD[1]
    games, stats = read_all(write(tmp_path / "all.pgn", text), check_legal=False)
    assert sorted(g.game_id for g in games) == ["good0001", "good0002", "illeg003", "illeg004"]
    assert stats.malformed["illegal_move"] == 2


def test_evals_skip_variations_and_float_ratings(tmp_path):
    movetext = ("1. e4 { [%eval 0.3] [%clk 0:10:00] } 1... e5 ( 1... c5 { [%eval 0.9] } ) 2. Nf3 "
                "{ [%clk 0:09:58] [%eval #-2] } 1-0")
    games, _ = read_all(write(tmp_path / "e.pgn", pgn_game("evals001", movetext, white_elo="1500.0")),
                        keep_evals=True)
    assert games[0].evals == ("0.3", None, "#-2") and games[0].white_elo == 1500


def test_headers_without_blank_line_before_the_moves(tmp_path):
    text = pgn_game("noblank1", SCHOLAR).replace('"Normal"]\n\n', '"Normal"]\n') + GOOD[0]
    games, stats = read_all(write(tmp_path / "n.pgn", text))
    assert [g.game_id for g in games] == ["noblank1", "good0001"] and not stats.malformed


def test_crlf_variations_nags_annotations_and_zero_castling(tmp_path):
    movetext = ("1. e4! $1 e5 (1... c5 2. Nf3 (2. c3)) 2. Nf3 Nc6 ; a comment\n3. Bc4 Bc5 4. 0-0 Nf6?! "
                "5. d3 0-0 1/2-1/2")
    text = pgn_game("crlf0001", movetext, result="1/2-1/2").replace("\n", "\r\n")
    games, stats = read_all(write(tmp_path / "c.pgn", text))
    assert not stats.malformed
    assert games[0].sans == ("e4", "e5", "Nf3", "Nc6", "Bc4", "Bc5", "O-O", "Nf6", "d3", "O-O")


@pytest.mark.parametrize("suffix", ["", ".xz", ".bz2", ".gz", ".zst"])
def test_compressed_inputs(tmp_path, suffix):
    raw = "".join(GOOD).encode()
    if suffix == ".xz":
        raw = lzma.compress(raw)
    elif suffix == ".bz2":
        raw = bz2.compress(raw)
    elif suffix == ".gz":
        raw = gzip.compress(raw)
    elif suffix == ".zst":
        zstandard = pytest.importorskip("zstandard")
        raw = zstandard.ZstdCompressor().compress(raw)
    games, stats = read_all(write(tmp_path / f"g.pgn{suffix}", raw))
    assert [g.game_id for g in games] == ["good0001", "good0002"]


def _compress(kind: str, raw: bytes) -> bytes:
    if kind == "xz":
        return lzma.compress(raw)
    if kind == "gz":
        return gzip.compress(raw)
    if kind == "bz2":
        return bz2.compress(raw, compresslevel=1)  # 100 kB blocks: half a file holds whole blocks
    zstandard = pytest.importorskip("zstandard")
    return zstandard.ZstdCompressor(write_checksum=True).compress(raw)  # damage is detected


def _reference_prefix(kind: str, data_bytes: bytes) -> bytes:
    """What a decompressor object recovers from damaged input (as ``xz -dc`` / ``zcat`` print it)."""
    import zlib
    if kind == "zst":
        import zstandard
        dec = zstandard.ZstdDecompressor().decompressobj()
    else:
        dec = {"xz": lzma.LZMADecompressor, "bz2": bz2.BZ2Decompressor,
               "gz": lambda: zlib.decompressobj(31)}[kind]()
    out = []
    for i in range(0, len(data_bytes), 512):
        try:
            out.append(dec.decompress(data_bytes[i:i + 512]))
        except Exception:  # noqa: BLE001
            break
    return b"".join(out)


@pytest.mark.parametrize("kind", ["xz", "gz", "bz2", "zst"])
@pytest.mark.parametrize("damage", ["truncated", "corrupt"])
def test_damaged_compressed_stream_keeps_every_complete_game_and_reports_the_cut(tmp_path, kind, damage):
    rng = np.random.default_rng(0)
    text = "".join(pgn_game(f"cut{i:05d}", SCHOLAR, white_elo=str(rng.integers(600, 3000)),
                            extra=f'[Opening "{rng.integers(1 << 60)}"]\n') for i in range(3000))
    raw = _compress(kind, text.encode())
    if damage == "truncated":
        bad = raw[: len(raw) // 2]
    else:
        mid = len(raw) // 2
        bad = raw[:mid] + bytes(b ^ 0x5A for b in raw[mid:mid + 64]) + raw[mid + 64:]
    games, stats = read_all(write(tmp_path / f"cut.pgn.{kind}", bad))
    ref = _reference_prefix(kind, bad)
    clean = text.encode()
    same = next((i for i, (x, y) in enumerate(zip(ref, clean)) if x != y), min(len(ref), len(clean)))
    before = clean[:same].count(b" 1-0\n\n")  # whole games decoded before the damage
    assert before > 300
    # at most one decompression step (4 KiB of text) before the damage is lost
    n_sure = clean[: max(0, same - 4096)].count(b" 1-0\n\n")
    ids = [g.game_id for g in games]
    assert ids[:n_sure] == [f"cut{i:05d}" for i in range(n_sure)]
    assert len(stats.cuts) == 1 and stats.cuts[0]["file"].endswith(f"cut.pgn.{kind}")
    assert stats.seen == stats.kept + sum(stats.malformed.values())
    if damage == "truncated":
        assert before - 1 <= len(games) <= before + 1 and ids == [f"cut{i:05d}" for i in range(len(games))]
        assert sum(stats.malformed.values()) <= 1  # the game the break falls in
    assert "stream cut" in stats.summary()


def test_sample_and_paper_csv_formats(tmp_path):
    sample = ("game_id,utc_date,utc_time,white_elo,black_elo,result,termination,lichess_status,time_control,"
              "eco,ply_count,moves_san\n"
              "aaaa0001,2022.01.01,10:00:00,900,950,1-0,Normal,mate,600+0,C50,7,e4 e5 Bc4 Nc6 Qh5 Nf6 Qxf7#\n"
              "aaaa0002,2022.01.01,10:00:00,900,950,1-0,Normal,mate,600+0,C50,2,e4 Ke5\n"
              "aaaa0003,2022.01.01,10:00:00,900,950,1-0,Normal\n"
              "aaaa0004,2022.01.01,10:00:00,?,950,1-0,Normal,resign,600+0,C50,2,e4 e5\n")
    games, stats = read_all(write(tmp_path / "s.transcripts.csv", sample))
    assert [g.game_id for g in games] == ["aaaa0001", "aaaa0004"]
    assert games[0].sans[-1] == "Qxf7#" and games[0].headers["time_control"] == "600+0"
    assert games[1].white_elo is None and not in_cap(games[1], 3000)
    assert dict(stats.malformed) == {"illegal_move": 1, "truncated": 1}
    paper = ("url,WhiteElo,BlackElo,result,transcript\n"
             "https://lichess.org/bbbb0001,900,950,1-0,\";1.e4 e5 2.Bc4 Nc6 3.Qh5 Nf6 4.Qxf7#\"\n"
             "https://lichess.org/bbbb0002,900,950,0-1,1.e4 e5 2.Nf3 Nc6 4.Bb5\n"
             "https://lichess.org/bbbb0003,900,950,0-1,1. d4 1... d5\n")
    games, stats = read_all(write(tmp_path / "shard.csv", paper))
    assert [g.game_id for g in games] == ["bbbb0001", "bbbb0003"]
    assert games[1].sans == ("d4", "d5")
    assert dict(stats.malformed) == {"bad_movetext": 1}


def test_bad_arguments_raise_value_error(tmp_path):
    with pytest.raises(ValueError, match="unknown format"):
        list(read_games(write(tmp_path / "x.txt", "")))
    with pytest.raises(ValueError, match="does not exist"):
        list(read_games(tmp_path / "missing.pgn"))
    with pytest.raises(ValueError, match="val_fraction"):
        split_of("abc", 1.5)


def test_game_ids_from_lichess_urls():
    from chess_exp.data.readers import _game_id_from_site
    assert _game_id_from_site("https://lichess.org/QU5UMayF") == "QU5UMayF"
    assert _game_id_from_site("https://lichess.org/QU5UMayFab12/black") == "QU5UMayF"
    assert _game_id_from_site(b"https://lichess.org/QU5UMayF#34") == "QU5UMayF"
    assert _game_id_from_site("https://example.org/game/1") is None


def test_split_is_deterministic_and_about_the_fraction():
    ids = [f"id{i:07d}" for i in range(20_000)]
    splits = [split_of(i) for i in ids]
    assert splits == [split_of(i) for i in ids]
    frac = splits.count("val") / len(ids)
    assert 0.04 < frac < 0.06
    assert all(split_of(i, 0.0) == "train" for i in ids[:100])
    assert all(split_of(i, 1.0) == "val" for i in ids[:100])


def test_filters():
    g = Game("x", 1000, 1300, "1-0", ("e4",) * 10, {"TimeControl": "600+0", "Termination": "Time forfeit"})
    assert in_cap(g, 1300) and not in_cap(g, 1299) and in_cap(g, None)
    assert Filters(cap=1300).game_reason(g) is None
    assert Filters(cap=1200).game_reason(g) == "above_cap"
    assert Filters(min_plies=11).game_reason(g) == "too_short"
    assert Filters(time_controls=("rapid",)).game_reason(g) is None
    assert Filters(time_controls=("600+0",)).game_reason(g) is None
    assert Filters(time_controls=("blitz", "900+10")).game_reason(g) == "time_control"
    assert Filters(finished_only=True).game_reason(g) == "not_finished"
    assert Filters(finished_only=True).game_reason(Game("z", 900, 900, "1-0", ("e4",))) is None
    assert Filters().game_reason(Game("y", None, None, "*", ("e4",))) == "no_result"
    assert Filters(cap=1500, drop_unfinished_result=False).game_reason(Game("y", None, 900, "1-0", ())) == "unrated"
    assert [time_control_speed(t) for t in ("15+0", "60+1", "180+2", "600+0", "1800+0", "-")] == [
        "ultrabullet", "bullet", "blitz", "rapid", "classical", "correspondence"]


@given(st.lists(st.integers(min_value=0, max_value=10_000), max_size=150))
def test_fast_san_resolution_matches_python_chess(choices):
    """Invariant: in every position of a random game, our SAN resolver returns python-chess's move for
    every legal SAN, and raises exactly where python-chess's parse_san raises."""
    board = chess.Board()
    probes = ["e4", "exd5", "Nf3", "Nbd2", "R1e2", "Qxh7", "Kxe2", "O-O", "e8=Q", "axb8=N", "h1", "Bb5+"]
    for c in choices:
        legal = list(board.legal_moves)
        if not legal:
            break
        for move in legal:
            assert san_to_move(board, board.san(move)) == move
        for san in probes:
            try:
                expected = board.parse_san(san)
            except ValueError:
                expected = None
            try:
                got = san_to_move(board, san)
            except ValueError:
                got = None
            assert got == expected
        board.push(legal[c % len(legal)])


def test_transcript_normalisation_forms():
    for text in (b";1.e4 e5 2.Nf3", b"1. e4 e5 2. Nf3", b"1. e4 1... e5 2. Nf3 *", b"1.e4 {c} e5 2.Nf3 1-0"):
        assert _pgn.normalise_transcript(text) == b"1.e4 e5 2.Nf3"


# --- chess prepare --------------------------------------------------------------------------

def _run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return main(parser.parse_args(argv))


@pytest.mark.parametrize("tokenizer", ["char", "move"])
def test_prepare_end_to_end_with_malformed_input(tmp_path, tokenizer, capsys):
    games = [pgn_game(f"ok{i:06d}", SCHOLAR if i % 2 else LICHESS_MOVES, white_elo=str(800 + 10 * i))
             for i in range(60)]
    text = "".join(games[:30]) + "".join(t for _, t in MALFORMED) + "".join(games[30:]) + games[0]
    src = write(tmp_path / "in.pgn", text)
    out = tmp_path / "out"
    rc = _run_cli(["--input", str(src), "--cap", "1200", "--tokenizer", tokenizer, "--out", str(out),
                   "--workers", "2", "--no-progress", "--val-fraction", "0.2"]
                  + (["--check-legal"] if tokenizer == "char" else []))
    assert rc == 0
    meta = json.loads((out / "meta.json").read_text())
    kept = [i for i in range(60) if 800 + 10 * i <= 1200]  # 41 games
    assert meta["counts"]["train"]["games"] + meta["counts"]["val"]["games"] == len(kept)
    assert meta["stats"]["filtered"] == {"above_cap": 60 - len(kept), "duplicate": 1}
    assert sum(meta["stats"]["malformed"].values()) == len(MALFORMED)
    assert meta["stats"]["malformed"]["illegal_move"] == 4  # the move path and --check-legal replay
    assert meta["sources"][0]["sha256"] and meta["tokenizer"] == tokenizer
    assert "malformed" in capsys.readouterr().err
    tok = get_tokenizer(tokenizer)
    expected = {f"ok{i:06d}": (SCHOLAR if i % 2 else LICHESS_MOVES) for i in kept}
    n = 0
    for split in ("train", "val"):
        loaded = load_prepared(out, split)
        assert loaded.tokens.dtype == np.uint16 and loaded.offsets.dtype == np.int64
        for ids in iter_game_tokens(out, split):
            assert ids[0] == tok.start_id
            n += 1
    assert n == len(kept)
    val_ids = {gid for gid in expected if split_of(gid, 0.2) == "val"}
    assert meta["counts"]["val"]["games"] == len(val_ids)


def test_prepare_char_check_legal_and_filters(tmp_path):
    games = [pgn_game("chk00001", "1. Ke5 e5 2. Nf3 Nc6 3. Bc4 Bc5 1-0"), pgn_game("chk00002", SCHOLAR, tc="180+0"),
             pgn_game("chk00003", SCHOLAR, termination="Time forfeit"), pgn_game("chk00004", LICHESS_MOVES)]
    src = write(tmp_path / "in.pgn", "".join(games))
    meta = prepare([src], tmp_path / "o1", tokenizer="char", progress=False)
    assert meta["counts"]["train"]["games"] + meta["counts"]["val"]["games"] == 4  # 1.Ke5 passes the text checks
    meta = prepare([src], tmp_path / "o2", tokenizer="char", check_legal=True, workers=1, progress=False,
                   filters=Filters(time_controls=("rapid",), finished_only=True, min_plies=6))
    assert meta["stats"]["malformed"] == {"illegal_move": 1}
    assert meta["stats"]["filtered"] == {"time_control": 1, "not_finished": 1, "too_short": 1}
    assert meta["counts"]["train"]["games"] + meta["counts"]["val"]["games"] == 0
    with pytest.raises(ValueError, match="not empty"):
        prepare([src], tmp_path / "o2", progress=False)
    assert _run_cli(["--input", str(tmp_path / "nope.pgn"), "--out", str(tmp_path / "o3"), "--no-progress"]) == 2


@given(st.lists(st.integers(min_value=0, max_value=10_000), max_size=200))
def test_push_light_matches_push(choices):
    """Invariant: after any sequence of legal moves (castling, en passant and promotions included,
    they are favoured), push_light leaves the same pieces, side to move, castling rights, en passant
    square and legal moves as python-chess's push."""
    from chess_exp.data._pgn_replay import push_light
    a, b = chess.Board(), chess.Board()
    for c in choices:
        legal = list(a.legal_moves)
        if not legal:
            break
        special = [m for m in legal if a.is_castling(m) or m.promotion or a.is_en_passant(m) or a.is_capture(m)]
        pool = special if special and c % 2 else legal
        move = pool[c % len(pool)]
        a.push(move)
        push_light(b, move)
        assert (a.board_fen(), a.turn, a.castling_rights, a.ep_square, a.promoted) == (
            b.board_fen(), b.turn, b.castling_rights, b.ep_square, b.promoted)
    assert set(a.legal_moves) == set(b.legal_moves)


_CLEAN = "".join(GOOD + [pgn_game("good0003", "1. d4 { [%eval 0.1] } 1... d5 { [%eval 0.2] } 2. c4 1/2-1/2",
                                  result="1/2-1/2")]).encode()


@given(st.lists(st.tuples(st.integers(0, len(_CLEAN)), st.integers(0, 40), st.binary(max_size=12)),
                min_size=1, max_size=6))
def test_reader_never_raises_on_corrupted_pgn(edits):
    """Invariant: whatever bytes are deleted or inserted, the reader neither raises nor yields a game
    with an illegal move, and every game it sees is either yielded or counted."""
    import tempfile
    data_bytes = _CLEAN
    for pos, n_delete, insert in edits:
        data_bytes = data_bytes[:pos] + insert + data_bytes[pos + n_delete:]
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "fuzz.pgn"
        path.write_bytes(data_bytes)
        stats = ReadStats()
        games = list(read_games(path, stats=stats))
    assert stats.kept == len(games)
    assert stats.seen == stats.kept + sum(stats.malformed.values())
    for g in games:
        board = chess.Board()
        for san in g.sans:
            board.push_san(san)


def test_prepare_output_does_not_depend_on_workers(tmp_path):
    games = "".join(pgn_game(f"w{i:07d}", SCHOLAR if i % 3 else LICHESS_MOVES) for i in range(700))
    src = write(tmp_path / "in.pgn", games)
    outs = []
    for workers in (1, 2):
        out = tmp_path / f"o{workers}"
        prepare([src], out, tokenizer="move", workers=workers, progress=False)
        outs.append(out)
    for name in ("train.bin", "val.bin", "train_offsets.npy", "val_offsets.npy"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes()


@given(st.text(alphabet=st.sampled_from(list("0123456789.-+#=xKQRBNOabcdefgh ;{}()$!?*/\n") + ["é", "\x00"]),
               max_size=80))
def test_transcript_normalisation_accepts_only_vocabulary_text(text):
    """Invariant: normalise_transcript either raises Malformed (a counted reason) or returns a
    transcript made only of the char vocabulary, starting with '1.'."""
    from chess_exp.data.tokenizers import CHAR_VOCAB
    try:
        t = _pgn.normalise_transcript(text.encode())
    except _pgn.Malformed as exc:
        assert exc.reason
        return
    assert t.startswith(b"1.") and set(t.decode()) <= set(CHAR_VOCAB) - {";"}


_PROBES = ["e4", "exd5", "Nf3", "Nbd2", "R1e2", "Qxh7", "Kxe2", "O-O", "O-O-O", "e8=Q", "axb8=N", "h1",
           "Bb5+", "d8=Q+", "exf6", "Kg1", "gxh8=Q", "b1=N", "c5", "Qd1f3", "e8"]


@given(st.lists(st.integers(min_value=0, max_value=10_000), max_size=200))
def test_whole_game_bitboard_replay_matches_python_chess(choices):
    """Invariant: replay_ids gives python-chess's moves for a random game (castling, en passant,
    promotions and captures favoured), the right id for every legal next move, and for probe SANs
    it rejects exactly what Board.parse_san rejects (or defers an odd spelling as "other")."""
    from chess_exp.data._pgn_replay import replay_ids
    table = get_tokenizer("move")._table

    def mid(m: chess.Move) -> int:
        return table[(m.from_square * 64 + m.to_square) * 7 + (m.promotion or 0)]

    board, sans = chess.Board(), []
    for c in choices:
        legal = list(board.legal_moves)
        if not legal:
            break
        special = [m for m in legal if board.is_castling(m) or m.promotion or board.is_en_passant(m)
                   or board.is_capture(m)]
        pool = special if special and c % 2 else legal
        move = pool[c % len(pool)]
        sans.append(board.san(move))
        board.push(move)
    ids = replay_ids(sans, table)
    assert ids == [mid(m) for m in board.move_stack]
    for move in board.legal_moves:
        assert replay_ids(sans + [board.san(move)], table) == ids + [mid(move)]
    for probe in _PROBES:
        try:
            expected = board.parse_san(probe)
        except ValueError:
            expected = None
        got = replay_ids(sans + [probe], table)
        if expected is None:
            assert got in ("illegal_move", "other")
        else:
            assert got == "other" or got == ids + [mid(expected)]
