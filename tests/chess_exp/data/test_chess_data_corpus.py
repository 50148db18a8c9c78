"""A seeded corpus of mutated games through ``prepare`` in every input format, python-chess as the reference.

Mutations: characters deleted, duplicated or swapped; games cut short; an illegal SAN; headers
removed; the blank line before the next game removed (a single-newline join); a block of random
bytes; in CSV a stray quote. Checked for each format (``.pgn``, ``.pgn.xz``, ``.pgn.gz``,
``.pgn.zst``, CSV):

- ``prepare`` returns (never a traceback) and every game seen is kept or counted under one named
  reason (``seen == kept + sum(malformed) + sum(filtered)``);
- no unmutated game is lost: each one is in the output, move for move;
- every kept game is, move for move, one that python-chess reads in the file or in that game's own
  text (or the start of one: where a game runs into the next game's headers without a blank line,
  python-chess reads those header lines as more movetext and may find a move in them), and every
  kept move is written in its canonical SAN (``--check-legal``);
- the games python-chess reads in full that are not kept are at most the games counted as dropped.
"""

from __future__ import annotations

import gzip
import io
import lzma
from collections import Counter
from pathlib import Path

import chess
import chess.pgn
import numpy as np
import pytest

from chess_exp.data._pgn import sans_to_transcript
from chess_exp.data.prepare import prepare
from chess_exp.data.prepared import load_prepared
from chess_exp.data.tokenizers import get_tokenizer

N_GAMES = 2_000
MUTATIONS = ("delete", "duplicate", "swap", "cut", "illegal", "no_headers", "join", "binary")


def _random_games(rng: np.random.Generator, n: int) -> list[tuple[list[str], str]]:
    """``n`` short random legal games (SAN moves, result)."""
    games = []
    for _ in range(n):
        board = chess.Board()
        sans = []
        for _ in range(int(rng.integers(4, 17))):
            legal = list(board.legal_moves)
            if not legal:
                break
            move = legal[int(rng.integers(len(legal)))]
            sans.append(board.san(move))
            board.push(move)
        result = "1-0" if board.is_checkmate() and not board.turn else (
            "0-1" if board.is_checkmate() else "1/2-1/2")
        games.append((sans, result))
    return games


def _movetext(sans: list[str], result: str) -> str:
    parts = []
    for i, san in enumerate(sans):
        parts.append(f"{i // 2 + 1}. {san}" if i % 2 == 0 else san)
    return " ".join(parts + [result])


def _pgn_game(gid: str, sans: list[str], result: str, headers: bool = True) -> str:
    head = (f'[Event "Rated Rapid game"]\n[Site "https://lichess.org/{gid}"]\n[Result "{result}"]\n'
            f'[WhiteElo "{900 + len(sans)}"]\n[BlackElo "950"]\n[TimeControl "600+0"]\n\n') if headers else ""
    return head + _movetext(sans, result) + "\n\n"


def _mutate(text: bytes, kind: str, rng: np.random.Generator) -> bytes:
    n = len(text)
    i = int(rng.integers(0, max(1, n - 2)))
    if kind == "delete":
        return text[:i] + text[i + 1:]
    if kind == "duplicate":
        return text[:i + 1] + text[i:]
    if kind == "swap":
        return text[:i] + text[i + 1:i + 2] + text[i:i + 1] + text[i + 2:]
    if kind == "cut":
        return text[:i] + b"\n\n"
    if kind == "binary":  # random bytes, except "{": python-chess reads a stray "{" as a comment that
        # runs to the next "}", possibly to the end of the file (see test_stray_brace_swallows_no_game)
        block = bytes(rng.integers(0, 256, size=8, dtype=np.uint8)).replace(b"{", b"(")
        return text[:i] + block + text[i:]
    raise AssertionError(kind)


def _corpus(seed: int, n: int) -> tuple[bytes, bytes, dict[str, str], list[bytes]]:
    """(PGN bytes, CSV bytes, {game id: canonical transcript} of the unmutated games, the PGN text
    of each mutated game)."""
    rng = np.random.default_rng(seed)
    pool = _random_games(rng, n)
    pgn_parts: list[bytes] = []
    csv_rows = [b"url,WhiteElo,BlackElo,result,transcript\n"]
    clean: dict[str, str] = {}
    mutated: list[bytes] = []
    for k in range(n):
        gid = f"m{k:07d}"
        sans, result = pool[k]
        kind = MUTATIONS[int(rng.integers(len(MUTATIONS)))] if rng.random() < 0.5 else None
        if kind == "illegal":
            j = int(rng.integers(len(sans)))
            sans = sans[:j] + ["Ke5" if j % 2 == 0 else "Kd4"] + sans[j + 1:]
            kind = "done"
        text = _pgn_game(gid, sans, result, headers=kind != "no_headers").encode()
        row = f"https://lichess.org/{gid},{900 + len(sans)},950,{result},{sans_to_transcript(sans)}\n".encode()
        if kind == "join":
            text = text[:-1]  # one newline before the next game's headers
        elif kind in ("delete", "duplicate", "swap", "cut", "binary"):
            text = _mutate(text, kind, rng)
            row = _mutate(row[:-1], kind, rng).replace(b"\n", b"") + b"\n"
        if kind is not None and rng.random() < 0.3:  # a stray quote somewhere in the CSV row
            j = int(rng.integers(max(1, len(row) - 1)))
            row = row[:j] + b'"' + row[j:]
        if kind is None:
            clean[gid] = sans_to_transcript(sans)
        else:
            mutated.append(text)
        pgn_parts.append(text)
        csv_rows.append(row)
    return b"".join(pgn_parts), b"".join(csv_rows), clean, mutated


def _python_chess_prefixes(text: str) -> tuple[set[str], int]:
    """(every prefix of the main line of every game python-chess reads, the number of games it reads
    in full: no error and at least one move). A prefix, because where a game is followed by the next
    game's headers without a blank line python-chess reads those header lines as more movetext."""
    handle = io.StringIO(text)
    prefixes: set[str] = set()
    full = 0
    while True:
        game = chess.pgn.read_game(handle)
        if game is None:
            break
        sans, board = [], game.board()
        for move in game.mainline_moves():
            sans.append(board.san(move))
            board.push(move)
            prefixes.add(sans_to_transcript(sans))
        full += bool(not game.errors and sans)
    return prefixes, full


def _kept_transcripts(out: Path) -> list[str]:
    tok = get_tokenizer("char")
    kept = []
    for split in ("train", "val"):
        for ids in load_prepared(out, split):
            kept.append(tok.decode(ids.tolist())[1:])
    return kept


def _write(path: Path, data: bytes) -> Path:
    if path.name.endswith(".xz"):
        data = lzma.compress(data)
    elif path.name.endswith(".gz"):
        data = gzip.compress(data)
    elif path.name.endswith(".zst"):
        zstandard = pytest.importorskip("zstandard")
        data = zstandard.ZstdCompressor().compress(data)
    path.write_bytes(data)
    return path


def _check(tmp_path: Path, seed: int, n: int, workers: int = 1) -> None:
    pgn_bytes, csv_bytes, clean, mutated = _corpus(seed, n)
    reference, n_reference = _python_chess_prefixes(pgn_bytes.decode("utf-8", "replace"))
    # python-chess also on each mutated game alone: where two mutations meet (a game joined to the
    # next by one newline, and that game's headers run into its moves) python-chess reads both as
    # one game with an error, and here they are two games
    for text in mutated:
        reference |= _python_chess_prefixes(text.decode("utf-8", "replace"))[0]
    tmp_path.mkdir(parents=True, exist_ok=True)
    first_pgn = None
    for name in ("games.pgn", "games.pgn.xz", "games.pgn.gz", "games.pgn.zst", "games.csv"):
        data_bytes = csv_bytes if name.endswith(".csv") else pgn_bytes
        src = _write(tmp_path / name, data_bytes)
        out = tmp_path / f"out-{name}"
        meta = prepare([src], out, tokenizer="char", check_legal=True, workers=workers, dedupe=False,
                       val_fraction=0.1, progress=False)
        st = meta["stats"]
        dropped = sum(st["malformed"].values()) + sum(st["filtered"].values())
        assert st["seen"] == st["kept"] + dropped, (name, st)
        assert not st["cuts"]
        if name.endswith(".pgn") or name.endswith(".csv"):
            kept = _kept_transcripts(out)
            assert len(kept) == st["kept"]
            kept_count = Counter(kept)
            missing = Counter(clean.values()) - kept_count
            assert not missing, (name, "unmutated games lost", list(missing.items())[:3])
            for t in kept_count:  # canonical SAN, legal move by move
                board = chess.Board()
                for san in t.split(" "):
                    san = san.split(".", 1)[1] if "." in san else san
                    move = board.parse_san(san)
                    assert board.san(move) == san, (name, t)
                    board.push(move)
        if name.endswith(".pgn"):
            extra = [t for t in kept_count if t not in reference]
            assert not extra, (name, "kept games python-chess does not read so", extra[:3])
            assert n_reference - st["kept"] <= dropped, (name, n_reference, st)
            first_pgn = (out, st)
        elif not name.endswith(".csv"):  # compressed: exactly what the plain file gives
            assert first_pgn is not None and st == first_pgn[1], name
            for f in ("train.bin", "val.bin", "train_offsets.npy", "val_offsets.npy"):
                assert (out / f).read_bytes() == (first_pgn[0] / f).read_bytes(), (name, f)


def test_mutated_corpus_in_every_format(tmp_path):
    _check(tmp_path, seed=14, n=N_GAMES)


@pytest.mark.long
def test_mutated_corpus_in_every_format_big(tmp_path):
    for seed in (1, 2, 3):
        _check(tmp_path / str(seed), seed=seed, n=20_000, workers=2)


def test_stray_brace_swallows_no_game(tmp_path):
    """A stray "{" opens a comment that, for python-chess, runs to the next "}" (here: the end of the
    file, so it reads one game); here a comment never runs past a blank line and the next game's
    headers, so the game with the brace is dropped (counted) and the games after it are kept."""
    games = [_pgn_game(f"b{k:07d}", ["e4", "e5", "Nf3"], "1/2-1/2") for k in range(5)]
    games[1] = games[1].replace("2. Nf3", "{ 2. Nf3")
    src = tmp_path / "brace.pgn"
    src.write_text("".join(games))
    assert len(_python_chess_prefixes(src.read_text())[0]) == 3  # python-chess: games 0 and 1, no more
    meta = prepare([src], tmp_path / "out", tokenizer="char", workers=1, dedupe=False, progress=False)
    assert meta["stats"]["kept"] == 4 and meta["stats"]["malformed"] == {"truncated": 1}
