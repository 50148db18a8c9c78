"""`chess eval` across machines: shards that merge into one run, rating against training step, and
bad input refused before anything is written (tiny random models, real Stockfish at small limits)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest
import torch

from chess_exp.play import ladder
from chess_exp.play.games import load_records


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    ladder.add_arguments(parser)
    return ladder.main(parser.parse_args(argv))


def _grid(ckpt: Path, out: Path, stockfish: str, *extra: str) -> list[str]:
    return ["--checkpoint", str(ckpt), "--out", str(out), "--temperatures", "0,1", "--levels", "1,2",
            "--games", "3", "--limit", "nodes=50", "--engines", "1", "--max-moves", "12",
            "--in-flight", "5", "--stockfish", stockfish, "--no-progress", *extra]


def test_parse_shard_and_round_robin() -> None:
    assert ladder.parse_shard("0/1") == (0, 1) and ladder.parse_shard("3/4") == (3, 4)
    for bad in ("4/4", "-1/2", "1/0", "a/b", "2"):
        with pytest.raises(ValueError, match="shard"):
            ladder.parse_shard(bad)
    config = ladder.EvalConfig(checkpoint="c", out="o", temperatures=(0.0, 1.0), levels=(1, 3), games=5)
    grid = ladder.eval_specs(config, model_name="m", headers={})
    shards = [ladder.shard_specs(grid, f"{i}/3") for i in range(3)]
    ids = [s.game_id for shard in shards for s in shard]
    assert sorted(ids) == sorted(s.game_id for s in grid) and len(set(ids)) == len(grid) == 20  # a partition
    assert {len(s) for s in shards} == {6, 7}
    # ids carry the base seed: shards of different seeds never collide
    other = ladder.eval_specs(ladder.EvalConfig(checkpoint="c", out="o", temperatures=(0.0, 1.0), levels=(1, 3),
                                                games=5, seed=1), model_name="m", headers={})
    assert not {s.game_id for s in grid} & {s.game_id for s in other}


@pytest.mark.engine
def test_shards_merge_into_the_unsharded_run(tmp_path: Path, stockfish_path: str, tiny_checkpoint) -> None:
    ckpt = tiny_checkpoint(tmp_path / "tiny-run" / "checkpoints" / "ckpt.pt")
    assert _run(_grid(ckpt, tmp_path / "whole", stockfish_path)) == 0
    for i in range(3):
        assert _run(_grid(ckpt, tmp_path / f"shard{i}", stockfish_path, "--shard", f"{i}/3", "--in-flight", "2")) == 0
        assert len(load_records(tmp_path / f"shard{i}")) == 4
    # an incomplete set of shards is refused, naming the missing one
    assert _run(["merge", "--out", str(tmp_path / "merged"), str(tmp_path / "shard0"), str(tmp_path / "shard2")]) == 2
    assert not (tmp_path / "merged").exists()
    assert _run(["merge", "--out", str(tmp_path / "merged"),
                 *(str(tmp_path / f"shard{i}") for i in (2, 0, 1))]) == 0
    whole, merged = tmp_path / "whole", tmp_path / "merged"
    for name in ("games.jsonl", "games.pgn", "results.md"):
        assert (merged / name).read_text() == (whole / name).read_text(), name
    a, b = (json.loads((d / "results.json").read_text()) for d in (whole, merged))
    assert a == b
    assert [r["games"] for r in a["rows"]] == [6, 6]
    assert json.loads((merged / "config.json").read_text())["merged_from"][0].endswith("shard2")
    # shards of another evaluation are not mixed in
    ckpt2 = tiny_checkpoint(tmp_path / "tiny-run" / "checkpoints" / "ckpt.pt")
    assert _run(_grid(ckpt2, tmp_path / "other", stockfish_path, "--shard", "0/3", "--limit", "nodes=60")) == 0
    assert _run(["merge", "--out", str(tmp_path / "m2"), str(tmp_path / "other"), str(tmp_path / "shard1"),
                 str(tmp_path / "shard2")]) == 2


@pytest.mark.engine
def test_rating_against_training_step(tmp_path: Path, stockfish_path: str, tiny_checkpoint) -> None:
    run = tmp_path / "run"
    for step, seed in ((100, 0), (300, 1)):
        tiny_checkpoint(run / "checkpoints" / f"ckpt-{step:07d}.pt", step=step, seed=seed)
    tiny_checkpoint(run / "checkpoints" / "ckpt.pt", step=300, seed=1)  # the latest: not rated twice
    out = tmp_path / "steps"
    argv = ["steps", "--out", str(out), str(run), "--temperatures", "0", "--levels", "1", "--games", "2",
            "--limit", "nodes=50", "--engines", "1", "--max-moves", "8", "--stockfish", stockfish_path,
            "--no-progress"]
    assert _run(argv) == 0
    summary = json.loads((out / "rating_step.json").read_text())
    assert [p["step"] for p in summary["points"]] == [100, 300]
    for p in summary["points"]:
        assert p["games"] == 2 and p["glicko2"]["lo"] < p["glicko2"]["rating"] < p["glicko2"]["hi"]
        assert Path(p["dir"]).name == f"step-{p['step']:07d}"
    assert (out / "rating_step.png").stat().st_size > 0 and (out / "rating_step.pdf").stat().st_size > 0
    assert "| 300 | 0 | 2 |" in (out / "rating_step.md").read_text()
    # finished eval directories are read as they are (nothing replayed)
    before = (out / "step-0000100" / "games.jsonl").read_text()
    assert _run(["steps", "--out", str(tmp_path / "again"), str(out / "step-0000100"), str(out / "step-0000300"),
                 "--no-progress"]) == 0
    assert json.loads((tmp_path / "again" / "rating_step.json").read_text())["points"] == summary["points"]
    assert (out / "step-0000100" / "games.jsonl").read_text() == before


def _bad_out_cases(tmp_path: Path) -> list[tuple[str, str]]:
    a_file = tmp_path / "a_file"
    a_file.write_text("not a directory\n")
    cases = [(str(a_file), "is a file"), (str(a_file / "under"), "under the file")]
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    if os.geteuid() != 0:  # root writes anywhere; a read-only pseudo-filesystem stands in for it
        cases.append((str(locked / "out"), "not writable"))
    cases.append(("/proc/transcendence-no-such/out", "not writable"))
    return cases


def test_bad_out_and_checkpoint_one_line_exit_2_nothing_written(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str],
                                                                tiny_checkpoint) -> None:
    ckpt = tiny_checkpoint(tmp_path / "r" / "ckpt.pt")
    for out, message in _bad_out_cases(tmp_path):
        assert _run(["--checkpoint", str(ckpt), "--out", out, "--no-progress"]) == 2, out
        err = capsys.readouterr().err
        assert message in err and "--out" in err and "Traceback" not in err and err.count("\n") == 1, err
    pgn = tmp_path / "games.pgn"
    pgn.write_text('[Event "x"]\n\n1. e4 e5 *\n')
    truncated = tmp_path / "cut.pt"
    truncated.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    for bad in (pgn, truncated, tmp_path / "missing.pt"):
        out = tmp_path / f"out-{bad.name}"
        assert _run(["--checkpoint", str(bad), "--out", str(out), "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("transcendence chess eval: error:") and err.count("\n") == 1, err
        assert str(bad.name) in err and "Traceback" not in err
        assert not out.exists(), f"{out} was created for a bad checkpoint"
    assert _run(["--checkpoint", str(ckpt), "--out", str(tmp_path / "sf"), "--stockfish", "/bin/false",
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--stockfish" in err and err.count("\n") == 1 and not (tmp_path / "sf").exists()
    if not torch.cuda.is_available():
        assert _run(["--checkpoint", str(ckpt), "--out", str(tmp_path / "cuda"), "--device", "cuda",
                     "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert "--device" in err and err.count("\n") == 1 and not (tmp_path / "cuda").exists()
    assert _run(["--out", str(tmp_path / "x")]) == 2
    assert "--checkpoint is required" in capsys.readouterr().err
    assert _run(["--checkpoint", str(ckpt), "--out", str(tmp_path / "x"), "--shard", "3/3"]) == 2
    assert "shard" in capsys.readouterr().err and not (tmp_path / "x").exists()
    assert _run(["merge", "--out", str(tmp_path / "m"), str(tmp_path / "r")]) == 2
    assert "config.json" in capsys.readouterr().err and not (tmp_path / "m").exists()


def test_merge_caches_best_move_tsv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = "bestmove-sf123-nodes200.tsv"
    a, b = tmp_path / "a" / name, tmp_path / "b" / name
    a.parent.mkdir()
    b.parent.mkdir()
    a.write_text("k1\te2e4\nk2\td2d4\n")
    b.write_text("k2\tc2c4\nk3\tg1f3\nk4\tb1")  # k2 disagrees; k4 is a torn last line
    dest = tmp_path / "merged" / name
    assert _run(["merge-caches", "--out", str(dest), str(a), str(b)]) == 0
    assert dest.read_text() == "k1\te2e4\nk2\td2d4\nk3\tg1f3\n"
    assert "3 entries (3 added from 2 file(s), 1 conflicting" in capsys.readouterr().out
    assert ladder.merge_caches(dest, [b]) == {"entries": 3, "added": 0, "conflicts": 1}  # idempotent
    other = tmp_path / "bestmove-sf999-nodes200.tsv"
    other.write_text("k9\te2e4\n")
    assert _run(["merge-caches", "--out", str(dest), str(other)]) == 2  # another engine: refused
    assert "share a name" in capsys.readouterr().err and "k9" not in dest.read_text()


def test_merge_caches_reward_sqlite(tmp_path: Path) -> None:
    from chess_exp.analysis.reward import RewardCache

    shards = []
    for i, rows in enumerate(({"p1": [["e2e4", 0.5, "10"]], "p2": [["d2d4", 0.4, "5"]]},
                              {"p2": [["d2d4", 0.4, "5"]], "p3": [["g1f3", 0.6, "20"]]})):
        cache = RewardCache(tmp_path / f"shard{i}" / "stockfish_rewards.v2.sqlite")
        for key, value in rows.items():
            cache.put(key, "nodes=200", value)
        cache.close()
        shards.append(cache.path)
    dest = tmp_path / "stockfish_rewards.v2.sqlite"
    assert ladder.merge_caches(dest, shards) == {"entries": 3, "added": 3, "conflicts": 0}
    merged = RewardCache(dest)
    assert len(merged) == 3 and merged.get("p3", "nodes=200") == [["g1f3", 0.6, "20"]]
    merged.close()
    bad = tmp_path / "bad.sqlite"
    bad.write_text("not a database\n")
    with pytest.raises(ValueError, match="merge-caches"):
        ladder.merge_caches(dest, [bad])


@pytest.mark.engine
def test_resume_finds_games_written_before_ids_carried_the_seed(tmp_path: Path, stockfish_path: str,
                                                               tiny_checkpoint) -> None:
    ckpt = tiny_checkpoint(tmp_path / "r" / "ckpt.pt")
    out = tmp_path / "eval"
    argv = ["--checkpoint", str(ckpt), "--out", str(out), "--temperatures", "0", "--levels", "1", "--games", "2",
            "--limit", "nodes=50", "--engines", "1", "--max-moves", "8", "--stockfish", stockfish_path,
            "--no-progress", "--seed", "5"]
    assert _run(argv) == 0
    now = (out / "games.jsonl").read_text()
    assert '"game_id": "s5-t0-L1-0000"' in now
    (out / "games.jsonl").write_text(now.replace('"game_id": "s5-', '"game_id": "'))  # the old ids
    (out / "games.pgn").unlink()
    assert _run(argv) == 0
    assert (out / "games.jsonl").read_text() == now  # upgraded in place, nothing replayed or doubled
