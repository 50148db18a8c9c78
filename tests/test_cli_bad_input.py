"""Every command refuses bad arguments the same way: exit 2, one error line that names the
argument, no traceback, and nothing written to ``--out`` (or to a file given as output).

One table, run in-process through ``transcendence.cli.main`` (a few cases also as a real
subprocess). Placeholders in an argument list: ``{out}`` a path that does not exist yet (it must
not exist afterwards either, or be empty), ``{file}`` an existing file whose bytes must not change,
``{dir}`` an existing empty directory (it must stay empty), ``{missing}`` a path that does not
exist, ``{data}`` a small prepared chess dataset, ``{pgn}`` a small PGN file.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from transcendence.cli import main

REPO = Path(__file__).resolve().parents[1]

PGN = """[Event "t"]
[Site "https://lichess.org/aaaaaaaa"]
[White "a"]
[Black "b"]
[Result "1-0"]
[WhiteElo "1200"]
[BlackElo "1200"]

1. e4 e5 2. Qh5 Nc6 3. Bc4 Nf6 4. Qxf7# 1-0

[Event "t"]
[Site "https://lichess.org/bbbbbbbb"]
[White "c"]
[Black "d"]
[Result "0-1"]
[WhiteElo "1100"]
[BlackElo "1150"]

1. f3 e5 2. g4 Qh4# 0-1

"""
#: enough games for the ``tiny`` training preset (both splits longer than its context)
MANY_PGN = "".join(PGN.replace("aaaaaaaa", f"a{i:07d}").replace("bbbbbbbb", f"b{i:07d}") for i in range(20))


def _unwritable_dir() -> str | None:
    """A directory this process cannot write in (even as root), or None if there is none."""
    for d in ("/sys", "/proc/self"):
        try:
            fd, name = tempfile.mkstemp(dir=d)
        except OSError:
            return d
        os.close(fd)
        os.unlink(name)
    return None


UNWRITABLE = _unwritable_dir()

#: a small evaluation grid, so that a bad argument accepted by mistake costs seconds, not minutes
_EVAL = ["--temperatures", "0", "--levels", "1", "--games", "1", "--max-moves", "4", "--no-progress"]

# (case id, argv, what the error must name: the option, or one of several spellings such as the
# option or the offending path). Cheap cases only: argument checks, not work.
CASES: list[tuple[str, list[str], str | tuple[str, ...]]] = [
    # demo
    ("demo --seed -1", ["demo", "--seed", "-1", "--out", "{out}"], "--seed"),
    ("demo --seed x", ["demo", "--seed", "x", "--out", "{out}"], "--seed"),
    ("demo --out FILE", ["demo", "--out", "{file}"], "--out"),
    ("demo --out FILE/sub", ["demo", "--out", "{file}/sub"], "--out"),
    ("demo --out unwritable", ["demo", "--out", f"{UNWRITABLE}/demo"], "--out"),
    ("demo unknown option", ["demo", "--out", "{out}", "--sed", "1"], "--sed"),
    # theory
    ("theory --seed -5", ["theory", "--seed", "-5", "--json", "{out}/t.json"], "--seed"),
    ("theory --instances 0", ["theory", "--instances", "0", "--json", "{out}/t.json"], "--instances"),
    ("theory --statement prop9", ["theory", "--statement", "prop9", "--json", "{out}/t.json"], "--statement"),
    ("theory --json DIR", ["theory", "--instances", "1", "--json", "{dir}"], "--json"),
    ("theory --json FILE/x", ["theory", "--instances", "1", "--json", "{file}/t.json"], "--json"),
    ("theory --json unwritable", ["theory", "--instances", "1", "--json", f"{UNWRITABLE}/t.json"], "--json"),
    # sweep
    ("sweep --n_seeds=0", ["sweep", "noisy_experts", "--out", "{out}", "--n_seeds=0"], "--n_seeds"),
    ("sweep --workers -3", ["sweep", "noisy_experts", "--out", "{out}", "--workers", "-3"], "--workers"),
    ("sweep --seed=-1", ["sweep", "noisy_experts", "--out", "{out}", "--seed=-1"], "--seed"),
    ("sweep --n_seeds=x", ["sweep", "noisy_experts", "--out", "{out}", "--n_seeds=x"], "--n_seeds"),
    ("sweep unknown key", ["sweep", "noisy_experts", "--out", "{out}", "--no_such_key=1"], "no_such_key"),
    ("sweep --noises=0.5,2", ["sweep", "noisy_experts", "--out", "{out}", "--noises=0.5,2"], "--noises"),
    ("sweep --temperatures=-1", ["sweep", "noisy_experts", "--out", "{out}", "--temperatures=-1"], "--temperatures"),
    ("sweep --ks=", ["sweep", "noisy_experts", "--out", "{out}", "--ks="], "--ks"),
    ("sweep --concentration=inf", ["sweep", "noisy_experts", "--out", "{out}", "--concentration=inf"],
     "--concentration"),
    ("sweep linear_toy --l2=nan", ["sweep", "linear_toy", "--out", "{out}", "--l2=nan"], "--l2"),
    ("sweep finite_sample --smoothings=nan", ["sweep", "finite_sample", "--out", "{out}", "--smoothings=0,nan"],
     "--smoothings"),
    ("sweep finite_sample --samples_per_input=inf", ["sweep", "finite_sample", "--out", "{out}",
                                                     "--samples_per_input=inf"], "--samples_per_input"),
    ("sweep unknown sweep", ["sweep", "nope", "--out", "{out}"], "nope"),
    ("sweep no name", ["sweep", "--out", "{out}"], "sweep name"),
    ("sweep --preset huge", ["sweep", "noisy_experts", "--out", "{out}", "--preset", "huge"], "--preset"),
    ("sweep --out FILE", ["sweep", "noisy_experts", "--out", "{file}"], "--out"),
    ("sweep --out FILE/sub", ["sweep", "noisy_experts", "--out", "{file}/sub"], "--out"),
    ("sweep --out unwritable", ["sweep", "noisy_experts", "--out", f"{UNWRITABLE}/sweep"], "--out"),
    # chess: argument checks that run before any work
    ("chess nope", ["chess", "nope"], "nope"),
    ("chess prepare --input missing", ["chess", "prepare", "--input", "{missing}", "--out", "{out}",
                                       "--workers", "1", "--no-progress"], "{missing}"),
    ("chess prepare --max-games 0", ["chess", "prepare", "--input", "{pgn}", "--out", "{out}", "--workers", "1",
                                     "--no-progress", "--max-games", "0"], "--max-games"),
    ("chess prepare --val-fraction 2", ["chess", "prepare", "--input", "{pgn}", "--out", "{out}", "--workers", "1",
                                        "--no-progress", "--val-fraction", "2"], "val"),
    ("chess prepare --out FILE", ["chess", "prepare", "--input", "{pgn}", "--out", "{file}", "--workers", "1",
                                  "--no-progress"], ("--out", "{file}")),
    ("chess prepare --out FILE/sub", ["chess", "prepare", "--input", "{pgn}", "--out", "{file}/sub",
                                      "--workers", "1", "--no-progress"], "--out"),
    ("chess prepare --out unwritable", ["chess", "prepare", "--input", "{pgn}", "--out", f"{UNWRITABLE}/prep",
                                        "--workers", "1", "--no-progress"], ("--out", f"{UNWRITABLE}/prep")),
    ("chess prepare --input DIR (empty)", ["chess", "prepare", "--input", "{dir}", "--out", "{out}", "--workers", "1",
                                           "--no-progress"], ("--input", "{dir}")),
    ("chess prepare --cap -5", ["chess", "prepare", "--input", "{pgn}", "--out", "{out}", "--workers", "1",
                                "--no-progress", "--cap", "-5"], "--cap"),
    ("chess prepare --min-plies -1", ["chess", "prepare", "--input", "{pgn}", "--out", "{out}", "--workers", "1",
                                      "--no-progress", "--min-plies", "-1"], "--min-plies"),
    ("chess prepare --time-control fast", ["chess", "prepare", "--input", "{pgn}", "--out", "{out}", "--workers",
                                           "1", "--no-progress", "--time-control", "fast"], "--time-control"),
    ("chess train --seed=-1", ["chess", "train", "--preset", "tiny", "--data", "{data}", "--out", "{out}",
                               "--max_iters=1", "--seed=-1"], "--seed"),
    ("chess train --data missing", ["chess", "train", "--preset", "tiny", "--data", "{missing}", "--out", "{out}"],
     "{missing}"),
    ("chess train --batch_size=0", ["chess", "train", "--preset", "tiny", "--data", "{data}", "--out", "{out}",
                                    "--batch_size=0"], "batch_size"),
    ("chess train --eval_interval=0", ["chess", "train", "--preset", "tiny", "--data", "{data}", "--out", "{out}",
                                       "--eval_interval=0"], "eval_interval"),
    ("chess train --device=cuda", ["chess", "train", "--preset", "tiny", "--data", "{data}", "--out", "{out}",
                                   "--device=cuda"], "device"),
    ("chess train --out FILE", ["chess", "train", "--preset", "tiny", "--data", "{data}", "--out", "{file}"],
     ("--out", "{file}")),
    ("chess train --out FILE/sub", ["chess", "train", "--preset", "tiny", "--data", "{data}", "--out", "{file}/run"],
     ("--out", "{file}")),
    ("chess train --out unwritable", ["chess", "train", "--preset", "tiny", "--data", "{data}", "--out",
                                      f"{UNWRITABLE}/run"], ("--out", f"{UNWRITABLE}/run")),
    ("chess eval --checkpoint truncated", ["chess", "eval", "--checkpoint", "{truncated}", "--out", "{out}"],
     ("--checkpoint", "{truncated}")),
    ("chess eval --stockfish /bin/false", ["chess", "eval", "--checkpoint", "{ckpt}", "--out", "{out}", *_EVAL,
                                           "--stockfish", "/bin/false"], ("--stockfish", "/bin/false")),
    ("chess eval --device cuda", ["chess", "eval", "--checkpoint", "{ckpt}", "--out", "{out}", *_EVAL,
                                  "--device", "cuda"], ("--device", "cuda")),
    ("chess eval --games 0", ["chess", "eval", "--checkpoint", "{ckpt}", "--out", "{out}", *_EVAL, "--games", "0"],
     "--games"),
    ("chess eval --levels 9", ["chess", "eval", "--checkpoint", "{ckpt}", "--out", "{out}", *_EVAL, "--levels", "9"],
     ("--levels", "levels=")),
    ("chess eval --temperatures -1", ["chess", "eval", "--checkpoint", "{ckpt}", "--out", "{out}", *_EVAL,
                                      "--temperatures=-1"], ("--temperatures", "temperatures=")),
    ("chess eval --shard 3/2", ["chess", "eval", "--checkpoint", "{ckpt}", "--out", "{out}", *_EVAL,
                                "--shard", "3/2"], ("--shard", "shard=")),
    ("chess eval --engines 0", ["chess", "eval", "--checkpoint", "{ckpt}", "--out", "{out}", *_EVAL,
                                "--engines", "0"], "--engines"),
    ("chess eval --seed -1", ["chess", "eval", "--checkpoint", "{ckpt}", "--out", "{out}", *_EVAL, "--seed", "-1"],
     "--seed"),
    ("chess eval --step -3", ["chess", "eval", "--checkpoint", "{ckpt}", "--out", "{out}", *_EVAL, "--step", "-3"],
     "--step"),
    ("chess eval --out FILE", ["chess", "eval", "--checkpoint", "{ckpt}", "--out", "{file}", *_EVAL],
     ("--out", "{file}")),
    ("chess eval --checkpoint missing", ["chess", "eval", "--checkpoint", "{missing}", "--out", "{out}"],
     "{missing}"),
    ("chess eval --checkpoint PGN", ["chess", "eval", "--checkpoint", "{pgn}", "--out", "{out}"],
     ("--checkpoint", "{pgn}")),
    ("chess experts generate --panel nope", ["chess", "experts", "generate", "--panel", "nope", "--games", "2",
                                             "--out", "{out}/g.pgn", "--workers", "1"], "nope"),
    ("chess experts generate --games 0", ["chess", "experts", "generate", "--panel", "noisy3", "--games", "0",
                                          "--out", "{out}/g.pgn", "--workers", "1"], "--games"),
    ("chess experts generate --workers -3", ["chess", "experts", "generate", "--panel", "noisy3", "--games", "2",
                                             "--out", "{out}/g.pgn", "--workers", "-3"], "--workers"),
    ("chess experts generate --out foreign PGN", ["chess", "experts", "generate", "--panel", "noisy3",
                                                  "--games", "2", "--out", "{pgn}", "--workers", "1"], "--out"),
    ("chess experts generate --out FILE/x", ["chess", "experts", "generate", "--panel", "noisy3", "--games", "2",
                                             "--out", "{file}/g.pgn", "--workers", "1"], ("--out", "{file}")),
    ("chess experts generate --seed -1", ["chess", "experts", "generate", "--panel", "noisy3", "--games", "2",
                                          "--out", "{out}/g.pgn", "--workers", "1", "--seed", "-1"], "--seed"),
    ("chess experts generate --out unwritable", ["chess", "experts", "generate", "--panel", "noisy3", "--games", "2",
                                                 "--out", f"{UNWRITABLE}/g.pgn", "--workers", "1"],
     ("--out", f"{UNWRITABLE}/g.pgn")),
    ("chess experts generate --stockfish /bin/false", ["chess", "experts", "generate", "--panel", "noisy3",
                                                       "--games", "2", "--out", "{out}/g.pgn", "--workers", "1",
                                                       "--stockfish", "/bin/false"], "--stockfish"),
    ("chess favor --checkpoint missing", ["chess", "favor", "--out", "{out}", "--checkpoint={missing}"],
     "{missing}"),
    ("chess majority --data missing", ["chess", "majority", "--out", "{out}", "--data={missing}"], "{missing}"),
    ("chess majority --caps=", ["chess", "majority", "--out", "{out}", "--caps="], "caps"),
    ("chess diversity --data missing", ["chess", "diversity", "--out", "{out}", "--data={missing}"], "{missing}"),
    ("chess diversity --n_boot=x", ["chess", "diversity", "--out", "{out}", "--n_boot=x"], "--n_boot"),
    ("chess tsne --checkpoint missing", ["chess", "tsne", "--out", "{out}", "--checkpoint={missing}"],
     "{missing}"),
    ("chess tournament --checkpoint missing", ["chess", "tournament", "--out", "{out}", "--checkpoint", "{missing}"],
     ("--checkpoint", "{missing}")),
    ("chess tournament --levels 9", ["chess", "tournament", "--out", "{out}", "--levels", "9"], "--levels"),
    ("chess tournament --anchors 2", ["chess", "tournament", "--out", "{out}", "--anchors", "2"], "--anchors"),
    ("chess tournament --games x", ["chess", "tournament", "--out", "{out}", "--games", "x"], "--games"),
    ("chess tournament --visits without model", ["chess", "tournament", "--out", "{out}", "--visits", "{pgn}"],
     "--visits"),
    ("chess experts measure --anchor_ratings missing", ["chess", "experts", "measure", "--out", "{out}",
                                                        "--model=false", "--anchor_ratings={missing}"],
     ("--anchor_ratings", "{missing}")),
]

#: chess cases that do not behave yet (their commands are being fixed elsewhere): case id -> reason
CHESS_PENDING: dict[str, str] = {}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """A two-game PGN and its prepared dataset (built once)."""
    root = tmp_path_factory.mktemp("bad-input-data")
    pgn = root / "games.pgn"
    pgn.write_text(MANY_PGN)
    data = root / "prepared"
    rc = main(["chess", "prepare", "--input", str(pgn), "--out", str(data), "--workers", "1", "--no-progress",
               "--val-fraction", "0.5"])
    assert rc == 0
    return root


@pytest.fixture(scope="module")
def trained(prepared) -> Path:
    """A one-step training run of the ``tiny`` preset (only built for the cases that need a checkpoint)."""
    run = prepared / "run"
    assert main(["chess", "train", "--preset", "tiny", "--data", str(prepared / "prepared"), "--out", str(run),
                 "--max_iters=1", "--eval_iters=1", "--eval_acc_games=0"]) == 0
    return run


def _fill(argv: list[str], paths: dict[str, str]) -> list[str]:
    return [a.format(**paths) for a in argv]


def _snapshot(paths: dict[str, str]) -> dict[str, object]:
    return {"file": Path(paths["file"]).read_bytes(), "pgn": Path(paths["pgn"]).read_bytes(),
            "dir": sorted(os.listdir(paths["dir"]))}


def _run_in_process(argv: list[str], capsys) -> tuple[int, str]:
    try:
        rc = main(argv)
    except SystemExit as exc:              # argparse's own usage errors
        rc = exc.code if isinstance(exc.code, int) else 2
    except BaseException as exc:           # noqa: BLE001 - a traceback is the failure being tested
        pytest.fail(f"raised {type(exc).__name__} instead of a one-line error: {exc}")
    return rc, capsys.readouterr().err


@pytest.mark.parametrize("case_id, argv, needle", [
    pytest.param(*case, id=case[0],
                 marks=[pytest.mark.xfail(strict=False, reason=CHESS_PENDING[case[0]])]
                 if case[0] in CHESS_PENDING else [])
    for case in CASES])
def test_bad_argument_is_refused_cleanly(case_id, argv, needle, tmp_path, prepared, capsys, request):
    if "None/" in " ".join(argv):
        pytest.skip("no unwritable directory on this machine")
    paths = {"out": str(tmp_path / "out"), "file": str(tmp_path / "a_file.txt"), "dir": str(tmp_path / "empty"),
             "missing": str(tmp_path / "missing.pgn"), "data": str(prepared / "prepared"),
             "pgn": str(tmp_path / "mine.pgn"), "truncated": str(tmp_path / "ckpt.pt"), "ckpt": ""}
    if "{ckpt}" in argv:
        paths["ckpt"] = str(request.getfixturevalue("trained"))
    Path(paths["truncated"]).write_bytes(b"PK\x03\x04" + bytes(range(200)))   # a zip header, then garbage
    Path(paths["file"]).write_text("not a directory\n")
    Path(paths["dir"]).mkdir()
    Path(paths["pgn"]).write_text(PGN)
    before = _snapshot(paths)
    rc, err = _run_in_process(_fill(argv, paths), capsys)
    assert rc == 2, f"exit {rc}, stderr: {err}"
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if "error" in line]
    assert lines, f"no error line in: {err}"
    names = [n.format(**paths) for n in ((needle,) if isinstance(needle, str) else needle)]
    assert any(n in lines[-1] for n in names), f"the error does not name {' or '.join(names)}: {err}"
    out = Path(paths["out"])
    assert not out.exists() or not any(out.iterdir()), f"left behind in --out: {sorted(os.listdir(out))}"
    assert _snapshot(paths) == before, "an existing file or directory was changed"


@pytest.mark.parametrize("argv, needle", [
    (["sweep", "noisy_experts", "--out", "{out}", "--workers", "-3"], "--workers"),
    (["theory", "--seed", "-5"], "--seed"),
    (["demo", "--out", "{file}"], "--out"),
])
def test_bad_argument_in_a_real_process(argv, needle, tmp_path):
    """The console script's view: exit status 2 and a single stderr line, nothing on stdout."""
    paths = {"out": str(tmp_path / "out"), "file": str(tmp_path / "a_file.txt")}
    Path(paths["file"]).write_text("x")
    out = subprocess.run([sys.executable, "-m", "transcendence.cli", *[a.format(**paths) for a in argv]],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 2 and out.stdout == ""
    assert len(out.stderr.strip().splitlines()) == 1 and needle in out.stderr
    assert out.stderr.startswith(f"transcendence {argv[0]}: error: ")
    assert not Path(paths["out"]).exists()
