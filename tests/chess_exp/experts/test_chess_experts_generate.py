"""`chess experts generate` never loses a file: foreign PGN, mismatched settings, fewer games and a
broken Stockfish are refused with one line (exit 2) and the file is left byte for byte as it was;
only a torn tail after complete generated games is cut."""

from __future__ import annotations

import io
from pathlib import Path

import chess
import chess.pgn
import pytest

from chess_exp.experts import generate_games, get_panel
from chess_exp.experts.generate import ForeignPGN, inspect_pgn
from chess_exp.play.engines import StockfishUnusable, check_stockfish

pytestmark = pytest.mark.engine

MAX_MOVES = 6  # short games: these tests are about files, not chess


def _lichess_like(n: int) -> str:
    """``n`` games in the lichess sample's style (not written by the generator)."""
    out = []
    for i in range(n):
        game = chess.pgn.Game()
        game.headers["Event"] = "Rated Rapid game"
        game.headers["Site"] = f"https://lichess.org/abcd{i:04d}"
        game.headers["Result"] = "1-0"
        node = game
        for san in ("e4", "e5", "Qh5", "Nc6", "Bc4", "Nf6", "Qxf7#"):
            node = node.add_variation(node.board().parse_san(san))
        out.append(str(game) + "\n\n")
    return "".join(out)


def _generate(path: Path, n: int, stockfish: str, cache: Path, **kw):
    kw.setdefault("seed", 3)
    return generate_games(get_panel(kw.pop("panel", "noisy3")), n, path, workers=1, cache_dir=cache,
                          stockfish=stockfish, max_moves=MAX_MOVES, progress=False, **kw)


def _cli(capsys, *args: str) -> tuple[int, str]:
    from transcendence.cli import main
    rc = main(["chess", "experts", "generate", "--no-progress", "--workers", "1", *args])
    captured = capsys.readouterr()
    return rc, captured.err


@pytest.fixture()
def generated(tmp_path: Path, stockfish_path: str) -> Path:
    out = tmp_path / "g.pgn"
    _generate(out, 4, stockfish_path, tmp_path / "cache")
    return out


def test_foreign_pgn_is_refused_and_untouched(tmp_path: Path, stockfish_path: str, capsys) -> None:
    mine = tmp_path / "mine.pgn"
    mine.write_text(_lichess_like(5))
    before = mine.read_bytes()
    rc, err = _cli(capsys, "--panel", "noisy3", "--games", "3", "--out", str(mine), "--stockfish", stockfish_path,
                   "--max-moves", str(MAX_MOVES), "--cache", str(tmp_path / "cache"))
    assert rc == 2 and mine.read_bytes() == before
    assert err.count("\n") == 1 and "did not write" in err and "Traceback" not in err
    # also text that is not PGN at all, and a file whose first line is junk before generated games
    for text in ("hello\n", "\n\n  1. e4 e5 *\n"):
        mine.write_text(text)
        with pytest.raises(ForeignPGN, match="did not write"):
            _generate(mine, 2, stockfish_path, tmp_path / "cache")
        assert mine.read_text() == text


def test_foreign_game_after_generated_games_is_refused(generated: Path, stockfish_path: str,
                                                       tmp_path: Path) -> None:
    with open(generated, "a") as f:
        f.write(_lichess_like(1))
    before = generated.read_bytes()
    with pytest.raises(ForeignPGN, match="game 5"):
        _generate(generated, 6, stockfish_path, tmp_path / "cache")
    assert generated.read_bytes() == before


def test_hand_edited_game_is_refused(generated: Path, stockfish_path: str, tmp_path: Path) -> None:
    text = generated.read_text()
    edited = text.replace('[Round "1"]', '[Round "1"]\n[Annotator "me"]', 1)
    assert edited != text
    generated.write_text(edited)
    with pytest.raises(ForeignPGN):
        _generate(generated, 6, stockfish_path, tmp_path / "cache")
    assert generated.read_text() == edited


@pytest.mark.parametrize("change, match", [({"seed": 4}, "--seed"), ({"panel": "noisy1"}, "--panel"),
                                           ({"panel": "phases3"}, "--panel")])
def test_resume_with_other_settings_is_refused(generated: Path, stockfish_path: str, tmp_path: Path,
                                               change: dict, match: str) -> None:
    before = generated.read_bytes()
    with pytest.raises(ForeignPGN, match=match):
        _generate(generated, 6, stockfish_path, tmp_path / "cache", **change)
    assert generated.read_bytes() == before


def test_resume_with_another_engine_limit_is_refused(generated: Path, stockfish_path: str,
                                                     tmp_path: Path) -> None:
    text = generated.read_text().replace('[EngineLimit "nodes=50"]', '[EngineLimit "nodes=200"]')
    generated.write_text(text)
    with pytest.raises(ForeignPGN, match="engine limit"):
        _generate(generated, 6, stockfish_path, tmp_path / "cache")
    assert generated.read_text() == text


def test_fewer_games_than_the_file_holds_is_refused(generated: Path, stockfish_path: str, tmp_path: Path,
                                                    capsys) -> None:
    before = generated.read_bytes()
    rc, err = _cli(capsys, "--panel", "noisy3", "--seed", "3", "--games", "2", "--out", str(generated),
                   "--stockfish", stockfish_path, "--max-moves", str(MAX_MOVES), "--cache", str(tmp_path / "cache"))
    assert rc == 2 and generated.read_bytes() == before
    assert "holds 4 games" in err and "--games 4" in err and err.count("\n") == 1
    # the same number is fine: nothing to play, nothing changed
    calls: list[int] = []
    _generate(generated, 4, stockfish_path, tmp_path / "cache", on_game=calls.append)
    assert calls == [] and generated.read_bytes() == before


def test_torn_tail_is_cut_but_only_a_generated_one(generated: Path, stockfish_path: str, tmp_path: Path) -> None:
    text = generated.read_text()
    start = text.index("[Event ", 1)
    one_game = text[:start]
    for torn in (one_game[:7], one_game[:len(one_game) // 2], one_game[:-1]):  # crashes inside one write
        generated.write_text(text + torn)
        scan = inspect_pgn(generated)
        assert set(scan.games) == {0, 1, 2, 3} and scan.good_end == len(text.encode())
    _generate(generated, 5, stockfish_path, tmp_path / "cache")
    games = []
    handle = io.StringIO(generated.read_text())
    while (game := chess.pgn.read_game(handle)) is not None:
        games.append(int(game.headers["Round"]))
    assert sorted(games) == [0, 1, 2, 3, 4]
    assert generated.read_text().startswith(text)  # the four complete games kept as they were
    # a torn first write into an empty file is cut as well
    first = tmp_path / "first.pgn"
    first.write_text(one_game[:20])
    _generate(first, 1, stockfish_path, tmp_path / "cache")
    assert first.read_text() == one_game


@pytest.mark.parametrize("binary", ["false", "not_uci", "not_executable", "missing"])
def test_broken_stockfish_is_one_line_exit_2_and_no_file(tmp_path: Path, capsys, binary: str) -> None:
    path = {"false": Path("/bin/false"), "missing": tmp_path / "nope"}.get(binary, tmp_path / "fake")
    if binary == "not_uci":
        path.write_text("#!/bin/sh\necho 'hello, I am not a chess engine'\nexit 0\n")
        path.chmod(0o755)
    elif binary == "not_executable":
        path.write_text("not a program\n")
        path.chmod(0o644)
    out = tmp_path / "out" / "g.pgn"
    rc, err = _cli(capsys, "--panel", "noisy3", "--games", "2", "--out", str(out), "--stockfish", str(path),
                   "--cache", str(tmp_path / "cache"))
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert str(path) in err or repr(str(path)) in err
    assert not out.exists()
    if binary != "missing":
        with pytest.raises(StockfishUnusable, match="not a working UCI engine"):
            check_stockfish(path, timeout=5)


def test_check_stockfish_accepts_the_real_one(stockfish_path: str) -> None:
    assert check_stockfish(stockfish_path) == stockfish_path


@pytest.mark.parametrize("args, needle", [
    (["--games", "0"], "--games"), (["--workers", "-3"], "--workers"), (["--max-moves", "0"], "--max-moves"),
    (["--out", "{file}/g.pgn"], "--out"), (["--out", "{file}/deeper/g.pgn"], "--out"), (["--out", "{dir}"], "--out"),
])
def test_bad_arguments_are_one_line_exit_2(tmp_path: Path, capsys, args: list[str], needle: str) -> None:
    a_file = tmp_path / "a_file.txt"
    a_file.write_text("keep me\n")
    (tmp_path / "a_dir").mkdir()
    argv = ["--panel", "noisy3", "--games", "2", "--out", str(tmp_path / "out" / "g.pgn")]
    argv += [a.format(file=a_file, dir=tmp_path / "a_dir") for a in args]
    rc, err = _cli(capsys, *argv)
    assert rc == 2 and needle in err and err.count("\n") == 1 and "Traceback" not in err
    assert a_file.read_text() == "keep me\n" and not (tmp_path / "out").exists()
    assert list((tmp_path / "a_dir").iterdir()) == []
