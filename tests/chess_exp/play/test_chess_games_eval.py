"""`transcendence chess eval` end to end on a tiny random model (real Stockfish, small limits)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from chess_exp.play import ladder as evaluate
from chess_exp.play.games import load_records


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    evaluate.add_arguments(parser)
    return evaluate.main(parser.parse_args(argv))


@pytest.mark.engine
def test_eval_cli_plays_rates_writes_and_resumes(tmp_path: Path, stockfish_path: str, tiny_checkpoint) -> None:
    ckpt = tiny_checkpoint(tmp_path / "tiny-run" / "checkpoints" / "ckpt.pt")
    out = tmp_path / "eval"
    argv = ["--checkpoint", str(ckpt), "--out", str(out), "--temperatures", "0,1", "--levels", "1,3",
            "--games", "2", "--limit", "nodes=300", "--engines", "1", "--max-moves", "25",
            "--stockfish", stockfish_path, "--cap", "1300", "--no-progress"]
    assert _run(argv) == 0
    results = json.loads((out / "results.json").read_text())
    assert [row["temperature"] for row in results["rows"]] == [0.0, 1.0]
    for row in results["rows"]:
        assert row["games"] == 4 and set(row["wdl"]) == {"1", "3"}
        assert row["glicko2"]["lo"] < row["glicko2"]["rating"] < row["glicko2"]["hi"]
        assert sum(w["games"] for w in row["wdl"].values()) == 4
    assert results["cap"] == 1300 and results["model"] == "tiny-run"
    assert (out / "rating_temperature.png").stat().st_size > 0
    assert "| τ |" in (out / "results.md").read_text()
    config = json.loads((out / "config.json").read_text())
    assert config["config"]["limit"] == "nodes=300"
    records = load_records(out)
    assert len(records) == 8
    pgn = (out / "games.pgn").read_text()
    for header in ("Model", "Checkpoint", "Policy", "Temperature", "Level", "Limit", "Seed"):
        assert f'[{header} "' in pgn
    colours = [r.tags["model_colour"] for r in records if r.tags["temperature"] == 0.0 and r.tags["level"] == 1]
    assert sorted(colours) == ["black", "white"]
    # resume: nothing is replayed, nothing is lost or doubled, results identical
    before = (out / "games.jsonl").read_text()
    assert _run(argv) == 0
    assert (out / "games.jsonl").read_text() == before
    assert json.loads((out / "results.json").read_text())["rows"] == results["rows"]
    # same seed and node limit: a second run elsewhere plays the very same games
    assert _run([a if a != str(out) else str(tmp_path / "again") for a in argv]) == 0
    assert (tmp_path / "again" / "games.pgn").read_text() == (out / "games.pgn").read_text()
    # a different evaluation may not reuse these games
    changed = [a if a != "nodes=300" else "nodes=400" for a in argv]
    assert _run(changed) == 2
    assert (out / "games.jsonl").read_text() == before


def test_eval_rejects_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny_checkpoint) -> None:
    ckpt = tiny_checkpoint(tmp_path / "r" / "ckpt.pt")
    assert _run(["--checkpoint", str(ckpt), "--out", str(tmp_path / "o"), "--levels", "7"]) == 2
    assert "levels" in capsys.readouterr().err
    assert _run(["--checkpoint", str(ckpt), "--out", str(tmp_path / "o"), "--limit", "speed=1"]) == 2
    assert "limit" in capsys.readouterr().err


@pytest.mark.engine
def test_eval_sampled_policy_char_model(tmp_path: Path, stockfish_path: str, tiny_checkpoint) -> None:
    """The paper's protocol end to end: an untrained char model forfeits after 5 illegal samples."""
    ckpt = tiny_checkpoint(tmp_path / "char-run" / "ckpt.pt", "char")  # the char tokenizer's 32 ids
    out = tmp_path / "eval"
    assert _run(["--checkpoint", str(ckpt), "--out", str(out), "--temperatures", "1", "--levels", "1",
                 "--games", "2", "--policy", "sampled", "--limit", "nodes=300", "--engines", "1",
                 "--stockfish", stockfish_path, "--no-progress"]) == 0
    (row,) = json.loads((out / "results.json").read_text())["rows"]
    assert row["games"] == 2 and row["score"] <= 0.5
    records = load_records(out)
    lost = [r for r in records if r.termination in ("forfeit", "resign")]
    assert lost and all(r.illegal_attempts[r.tags["model_colour"]] >= 1 or r.termination == "resign" for r in lost)
