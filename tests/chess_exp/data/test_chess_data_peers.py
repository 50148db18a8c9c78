"""Nothing lost: PGN layouts python-chess reads, CSV quoting, --force, the prepared-format checks,
--check-legal's canonical SAN, --max-games; and the peers' formats (the paper's shards, Karvonen's blocks)."""

from __future__ import annotations

import argparse
import io
import json
import shutil
from pathlib import Path

import chess.pgn
import numpy as np
import pytest

from chess_exp.data._pgn import sans_to_transcript
from chess_exp.data.prepare import add_arguments, main, prepare
from chess_exp.data.prepared import SCHEMA, game_spans, load_prepared
from chess_exp.data.readers import Filters, ReadStats, expand_inputs, input_format, read_games
from chess_exp.data.tokenizers import get_tokenizer

SCHOLAR = ["e4", "e5", "Bc4", "Nc6", "Qh5", "Nf6", "Qxf7#"]
FOOL = ["f3", "e5", "g4", "Qh4#"]


def game(gid: str, sans: list[str], result: str, elo: int = 900, blank: bool = True, end: str = "\n\n") -> str:
    moves = " ".join(f"{i // 2 + 1}. {s}" if i % 2 == 0 else s for i, s in enumerate(sans)) + f" {result}"
    return (f'[Event "Rated Rapid game"]\n[Site "https://lichess.org/{gid}"]\n[Result "{result}"]\n'
            f'[WhiteElo "{elo}"]\n[BlackElo "{elo}"]\n[TimeControl "600+0"]\n' + ("\n" if blank else "")
            + moves + end)


def python_chess_moves(text: str) -> list[list[str]]:
    handle, games = io.StringIO(text), []
    while (g := chess.pgn.read_game(handle)) is not None:
        board, sans = g.board(), []
        for move in g.mainline_moves():
            if not move:  # a null move "--" python-chess finds in the next game's header lines
                break
            sans.append(board.san(move))
            board.push(move)
        games.append(sans)
    return games


def read(path: Path, **kw) -> tuple[list, ReadStats]:
    stats = ReadStats()
    return list(read_games(path, stats=stats, **kw)), stats


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return main(parser.parse_args(argv))


# --- PGN: the games python-chess reads ----------------------------------------------------------

@pytest.mark.parametrize("layout", ["single_newline", "cat", "headerless", "no_blank_after_headers"])
def test_pgn_games_are_the_ones_python_chess_reads(tmp_path, layout):
    if layout == "single_newline":  # 300 games separated by one newline only
        text = "".join(game(f"s{k:07d}", SCHOLAR if k % 2 else FOOL, "1-0" if k % 2 else "0-1", end="\n")
                       for k in range(300))
    elif layout == "cat":  # `cat a.pgn b.pgn`, each file ending with a single newline
        a = "".join(game(f"a{k:07d}", SCHOLAR, "1-0") for k in range(3)).rstrip("\n") + "\n"
        b = "".join(game(f"b{k:07d}", FOOL, "0-1") for k in range(3)).rstrip("\n") + "\n"
        text = a + b + a.replace("a0", "c0")
    elif layout == "headerless":  # a game without headers between two games
        text = game("h0000001", SCHOLAR, "1-0") + "1. d4 d5 2. c4 1/2-1/2\n\n" + game("h0000002", FOOL, "0-1")
    else:
        text = "".join(game(f"n{k:07d}", FOOL, "0-1", blank=False) for k in range(4))
    src = tmp_path / "g.pgn"
    src.write_text(text)
    games, stats = read(src)
    reference = python_chess_moves(text)
    assert [list(g.sans) for g in games] == reference
    assert stats.seen == len(reference) and not stats.malformed
    if layout == "single_newline":
        assert len(games) == 300 and games[1].game_id == "s0000001"  # the headers are kept too
    if layout == "headerless":
        assert games[1].result == "1/2-1/2" and games[1].white_elo is None and games[1].game_id.startswith("h")
        meta = prepare([src], tmp_path / "capped", filters=Filters(cap=1000), workers=1, progress=False)
        assert meta["stats"]["filtered"] == {"unrated": 1}  # no ratings: in no cap, and counted


def test_headerless_file_is_read_in_bounded_chunks():
    from chess_exp.data import _pgn
    text = "1. e4 e5 2. Nf3 Nc6 3. Bb5 a6 1/2-1/2\n\n" * 3000  # no header line anywhere
    chunks = list(_pgn.pgn_chunks(io.BytesIO(text.encode()), chunk_size=1000))
    assert max(map(len, chunks)) <= 9 * 1000 + 100 and len(chunks) > 10
    games = [g for c in chunks for g in _pgn.split_pgn_games(c)]
    assert len(games) == 3000 and all(g.startswith(b"\n\n1. e4") for g in games)


def test_cut_headers_before_a_new_game_lose_only_themselves(tmp_path):
    cut = game("x0000001", SCHOLAR, "1-0")[:60]  # the file was cut inside the headers
    src = tmp_path / "cut.pgn"
    src.write_text(cut + "\n\n" + game("x0000002", FOOL, "0-1") + game("x0000003", SCHOLAR, "1-0"))
    games, stats = read(src)
    assert [g.game_id for g in games] == ["x0000002", "x0000003"] and dict(stats.malformed) == {"truncated": 1}


# --- CSV: a stray quote ---------------------------------------------------------------------------

@pytest.mark.parametrize("n_rows", [200, 3000])
def test_stray_quote_in_csv_costs_one_row(tmp_path, n_rows):
    rows = ["url,WhiteElo,BlackElo,result,transcript"]
    rows += [f"https://lichess.org/q{k:07d},900,950,1-0,{sans_to_transcript(SCHOLAR)}" for k in range(n_rows)]
    rows[50] = rows[50].replace(",900,", ',"900,')  # one stray quote
    src = tmp_path / "q.csv"
    src.write_text("\n".join(rows) + "\n")
    games, stats = read(src)
    assert len(games) == n_rows - 1 and stats.seen == n_rows
    assert dict(stats.malformed) == {"bad_csv_row": 1}


# --- prepare: --force, --max-games, --check-legal, the prepared format ----------------------------

def _src(tmp_path: Path, n: int = 40) -> Path:
    src = tmp_path / "in.pgn"
    src.write_text("".join(game(f"p{k:07d}", SCHOLAR if k % 2 else FOOL, "1-0" if k % 2 else "0-1")
                           for k in range(n)))
    return src


def test_interrupted_force_leaves_the_old_dataset_whole(tmp_path, monkeypatch):
    src = _src(tmp_path)
    out = tmp_path / "out"
    prepare([src], out, workers=1, progress=False, max_games=10)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    from chess_exp.data import prepare as prep_mod

    def boom(*args, **kwargs):  # the run dies while writing
        raise KeyboardInterrupt

    monkeypatch.setattr(prep_mod, "_consume", boom)
    with pytest.raises(KeyboardInterrupt):
        prepare([src], out, workers=1, progress=False, force=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]  # no temporary folder left
    monkeypatch.undo()
    meta = prepare([src], out, workers=1, progress=False, force=True)  # a finished --force replaces it whole
    assert meta["stats"]["kept"] == 40 and load_prepared(out, "train").meta["stats"]["kept"] == 40


def test_force_refuses_a_folder_that_is_not_a_dataset(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a prepared dataset"):
        prepare([_src(tmp_path)], out, progress=False, force=True)
    assert (out / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("option,value", [("--cap", "-5"), ("--min-plies", "-1"), ("--time-control", "fast"),
                                          ("--workers", "-2"), ("--val-fraction", "1.5")])
def test_bad_filter_arguments_are_refused_before_anything_is_written(tmp_path, option, value, capsys):
    out = tmp_path / "out"
    assert run_cli(["--input", str(_src(tmp_path)), "--out", str(out), option, value, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert option in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]


@pytest.mark.parametrize("value", ["0", "-3"])
def test_max_games_below_one_is_refused(tmp_path, value, capsys):
    out = tmp_path / "out"
    assert run_cli(["--input", str(_src(tmp_path)), "--out", str(out), "--max-games", value, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--max-games" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_max_games_keeps_exactly_that_many(tmp_path):
    meta = prepare([_src(tmp_path)], tmp_path / "out", workers=2, progress=False, max_games=7)
    assert meta["stats"]["kept"] == 7 == meta["counts"]["train"]["games"] + meta["counts"]["val"]["games"]
    assert meta["stats"]["seen"] == 7


def test_check_legal_writes_canonical_san(tmp_path):
    # Qf3 for the capture Qxf3, Ncb5 (over-disambiguated), a4# that is not mate
    sans = ["e4", "d5", "exd5", "Qxd5", "Nc3", "Qa5", "d4", "Nf6", "Nf3", "Bg4", "h3", "Bxf3", "Qf3", "Nbd7",
            "Bd2", "Nb6", "Ncb5", "Nbd5", "a4#"]
    written = ["e4", "d5", "exd5", "Qxd5", "Nc3", "Qa5", "d4", "Nf6", "Nf3", "Bg4", "h3", "Bxf3", "Qxf3", "Nbd7",
               "Bd2", "Nb6", "Nb5", "Nbd5", "a4"]  # as python-chess's Board.san writes them
    assert written != sans
    src = tmp_path / "nc.pgn"
    src.write_text(game("c0000001", sans, "*").replace("1-0", "*") + game("c0000002", SCHOLAR, "1-0"))
    meta = prepare([src], tmp_path / "out", check_legal=True, workers=1, progress=False,
                   filters=Filters(drop_unfinished_result=False), val_fraction=0.0)
    tok = get_tokenizer("char")
    texts = [tok.decode(ids.tolist()) for ids in load_prepared(tmp_path / "out", "train")]
    assert texts == [";" + sans_to_transcript(written), ";" + sans_to_transcript(SCHOLAR)]
    assert meta["san_rewritten"] == 1


def test_check_legal_rewrites_capture_and_disambiguation(tmp_path):
    from chess_exp.data.prepare import canonical_transcript
    assert canonical_transcript(b"1.e4 d5 2.exd5 Qxd5 3.Nc3 Qd8 4.Nf3 Nf6 5.d4 Bg4 6.Be2 e6 7.O-O Be7 8.Re1 O-O "
                                b"9.Bf4 Nd5 10.Nd5") == (b"1.e4 d5 2.exd5 Qxd5 3.Nc3 Qd8 4.Nf3 Nf6 5.d4 Bg4 6.Be2 e6 "
                                                        b"7.O-O Be7 8.Re1 O-O 9.Bf4 Nd5 10.Nxd5")
    assert canonical_transcript(b"1.e4 e5 2.Ke3") == "illegal_move"


def _prepared(tmp_path: Path, tokenizer: str = "char") -> Path:
    out = tmp_path / f"ds-{tokenizer}"
    prepare([_src(tmp_path)], out, tokenizer=tokenizer, workers=1, progress=False, val_fraction=0.2)
    return out


@pytest.mark.parametrize("damage,match", [
    ("partial_bin", "holds .* tokens, meta.json says"),
    ("offsets", "holds .* games, meta.json says"),
    ("token_range", "outside the vocabulary"),
    ("tokenizer", "does not match the move tokenizer"),
    ("schema", "format .* is not one this version reads"),
    ("no_meta", "no meta.json"),
    ("bad_json", "not valid JSON"),
])
def test_load_names_what_is_inconsistent_and_how_to_rebuild(tmp_path, damage, match):
    out = _prepared(tmp_path)
    meta = json.loads((out / "meta.json").read_text())
    if damage == "partial_bin":  # an interrupted write of an older version
        data_bytes = (out / "train.bin").read_bytes()
        (out / "train.bin").write_bytes(data_bytes[: len(data_bytes) // 2])
    elif damage == "offsets":
        np.save(out / "train_offsets.npy", np.load(out / "train_offsets.npy")[:-1])
    elif damage == "token_range":
        arr = np.fromfile(out / "train.bin", dtype=np.uint16)
        arr[5] = 40  # the char vocabulary has 32 ids
        arr.tofile(out / "train.bin")
    elif damage == "tokenizer":  # char token ids under a move tokenizer's name
        meta["tokenizer"] = "move"
        (out / "meta.json").write_text(json.dumps(meta))
    elif damage == "schema":
        meta["format"] = "transcendence-chess-prepared/99"
        (out / "meta.json").write_text(json.dumps(meta))
    elif damage == "no_meta":
        (out / "meta.json").unlink()
    else:
        (out / "meta.json").write_text("{")
    with pytest.raises(ValueError, match=match) as info:
        load_prepared(out, "train", what="--data")
    assert "--data" in str(info.value) and "rebuild it with" in str(info.value)
    from chess_exp.model.train import load_split
    with pytest.raises(ValueError, match=match):
        load_split(out, "train")


def test_prepared_format_round_trip_and_spans(tmp_path):
    out = _prepared(tmp_path, "move")
    split = load_prepared(out, "train")
    assert split.meta["format"] == SCHEMA and split.max_token < split.meta["vocab_size"]
    starts, ends = split.spans()
    assert np.array_equal(starts, split.offsets) and ends[-1] == len(split.tokens)
    assert all(g[0] == 0 and g[-1] == 1 for g in split)  # <start> ... <end>
    assert game_spans(np.zeros(0, dtype=np.int64), 0)[0].size == 0


# --- the paper's shards and Karvonen's blocks ----------------------------------------------------

def _shard_line(site: str, w: int, b: int, result: str, sans: list[str]) -> str:
    """A line as the paper's dataset builder writes it: site,WhiteElo,BlackElo,Result,transcript."""
    return f"{site},{w},{b},{result},{sans_to_transcript(sans)}\n"


def test_input_format_of_shard_names():
    assert input_format("1000/lichess_db_standard_rated_2021-01.pgn.00.zst") == "shard"
    assert input_format("lichess_db_standard_rated_2021-01.pgn.31") == "shard"
    assert input_format("x.pgn.zst") == "pgn" and input_format("x.transcripts.csv.xz") == "csv"
    with pytest.raises(ValueError, match="unknown format"):
        input_format("x.txt")


def test_paper_shard_folder_is_read_up_to_the_cap_as_the_paper_selects_bins(tmp_path):
    zstandard = pytest.importorskip("zstandard")
    root = tmp_path / "lichess_elo_binned"
    lines = {  # bin -> lines; a bin holds games whose higher rating is in (bin - 100, bin]
        900: [_shard_line("aaaa0001", 850, 900, "1-0", SCHOLAR), _shard_line("aaaa0002", 880, 812, "0-1", FOOL)],
        1000: [_shard_line("bbbb0001", 990, 1000, "1-0", SCHOLAR), _shard_line("None", 1000, 950, "None", FOOL),
               _shard_line("bbbb0003", 950, 951, "0-1", FOOL)],
        1100: [_shard_line("cccc0001", 1090, 1100, "1-0", SCHOLAR)],
    }
    for b, rows in lines.items():
        (root / str(b)).mkdir(parents=True)
        half = len(rows) // 2 + 1
        for part, chunk in enumerate((rows[:half], rows[half:])):
            name = root / str(b) / f"lichess_db_standard_rated_2021-0{part + 1}.pgn.0{part}.zst"
            name.write_bytes(zstandard.ZstdCompressor().compress("".join(chunk).encode()))
    files = expand_inputs([root], 1000)
    assert [f.parent.name for f in files] == ["900", "900", "1000", "1000"]
    out = tmp_path / "out"
    assert run_cli(["--input", str(root), "--cap", "1000", "--out", str(out), "--no-progress",
                    "--val-fraction", "0", "--workers", "1"]) == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["stats"] | {"cuts": []} == {"seen": 5, "kept": 4, "malformed": {}, "filtered": {"no_result": 1},
                                            "cuts": []}
    assert [Path(s["path"]).parent.name for s in meta["sources"]] == ["900", "900", "1000", "1000"]
    tok = get_tokenizer("char")
    texts = [tok.decode(ids.tolist()) for ids in load_prepared(out, "train")]
    assert texts == [";" + sans_to_transcript(s) for s in (SCHOLAR, FOOL, SCHOLAR, FOOL)]
    games, _ = read(files[0])
    assert games[0].game_id == "aaaa0001" and games[0].white_elo == 850 and games[0].result == "1-0"
    assert len(expand_inputs([root], None)) == 6  # no cap: every bin


def test_headerless_shard_csv_and_bad_lines(tmp_path):
    src = tmp_path / "shard.csv"
    src.write_text(_shard_line("dddd0001", 900, 900, "1-0", SCHOLAR) + "dddd0002,900,900,1-0\n"
                   + _shard_line("dddd0003", 900, 900, "0-1", FOOL).replace("Qh4#", "Qh4#,x"))
    games, stats = read(src)
    assert [g.game_id for g in games] == ["dddd0001"]
    assert dict(stats.malformed) == {"truncated": 1, "bad_csv_row": 1}


def test_karvonen_blocks(tmp_path):
    """Karvonen's block CSV: a transcript column of 1,024-character blocks, each starting with ';'
    and holding games one after another; a full block's last game is cut (counted as block_cut)."""
    games = [SCHOLAR, FOOL, ["d4", "d5", "c4", "e6", "Nc3", "Nf6"], ["Nf3"]] * 40
    blocks, cur = [], ""
    for g in games:  # as the block writers do: the game cut at a block's end starts the next block
        t = ";" + sans_to_transcript(g)
        if len(cur) + len(t) > 1024:
            blocks.append((cur + t)[:1024])
            cur = t
        else:
            cur += t
    blocks.append(cur)
    src = tmp_path / "lichess_blocks.csv"
    src.write_text("transcript\n" + "\n".join(blocks) + "\n")
    got, stats = read(src)
    full_blocks = sum(len(b) == 1024 for b in blocks)
    assert full_blocks >= 3 and dict(stats.malformed) == {"block_cut": full_blocks}
    assert stats.seen == len(got) + full_blocks
    assert [list(g.sans) for g in got] == games  # every game once, complete, in order
    assert all(g.result == "?" and g.white_elo is None for g in got)
    meta = prepare([src], tmp_path / "out", workers=1, progress=False, dedupe=False)
    assert meta["stats"]["kept"] == len(games)
    meta = prepare([src], tmp_path / "capped", workers=1, progress=False, filters=Filters(cap=1500))
    assert meta["stats"]["filtered"] == {"unrated": len(games)}


def test_header_first_filtering_parses_no_movetext_of_filtered_games(tmp_path, monkeypatch):
    from chess_exp.data import _pgn
    calls = []
    real = _pgn.movetext_to_transcript
    monkeypatch.setattr(_pgn, "movetext_to_transcript", lambda m: calls.append(1) or real(m))
    src = tmp_path / "h.pgn"
    src.write_text("".join(game(f"f{k:07d}", SCHOLAR, "1-0", elo=800 + 100 * (k % 5)) for k in range(50)))
    stats = ReadStats()
    games = list(read_games(src, stats=stats, check_legal=False))
    assert len(games) == 50 and len(calls) == 50
    calls.clear()
    meta = prepare([src], tmp_path / "out", workers=1, progress=False, filters=Filters(cap=1000))
    assert meta["stats"]["kept"] == 30 and meta["stats"]["filtered"] == {"above_cap": 20}
    assert len(calls) == 30  # the 20 games above the cap were never parsed past their headers
    shutil.rmtree(tmp_path / "out")
