"""The `transcendence` command line, the demo, and the typed config overrides."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Literal

import pytest

from transcendence.config import apply_overrides, config_from_dict, config_to_dict, write_run_metadata


def test_demo_prints_table_and_writes_plot(tmp_path):
    out = subprocess.run([sys.executable, "-m", "transcendence.cli", "demo", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "TRANSCENDS" in out.stdout and "critical temperature" in out.stdout
    plot = tmp_path / "reward_vs_temperature.png"
    assert plot.stat().st_size > 10_000 and str(plot.resolve()) in out.stdout
    results = json.loads((tmp_path / "results.json").read_text())
    three = results[0]
    assert three["experts"] and all(v == pytest.approx(0.4) for v in three["experts"].values())
    assert three["mixture_tau1"] == pytest.approx(0.4) and three["argmax"] == pytest.approx(1.0)
    panel = results[1]
    assert panel["argmax"] > panel["best_expert"] >= panel["mixture_tau1"]


def test_help_lists_subcommands():
    out = subprocess.run([sys.executable, "-m", "transcendence.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for name in ("demo", "theory", "sweep", "chess"):
        assert f"    {name} " in out.stdout


# ---------------------------------------------------------------- the static, lazy command table
_PROBE = """
import sys
from transcendence.cli import main
try:
    rc = main({argv!r})
except SystemExit as exc:
    rc = exc.code
loaded = [m for m in ("theory", "sims", "chess_exp", "chess_exp.data.prepare", "torch") if m in sys.modules]
print("LOADED", loaded, file=sys.stderr)
sys.exit(rc)
"""


def _probe(argv: list[str], *, block: str | None = None) -> subprocess.CompletedProcess:
    code = (f"import sys; sys.modules[{block!r}] = None\n" if block else "") + _PROBE.format(argv=argv)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_help_imports_no_command_module():
    """`transcendence --help` lists every command from the table without importing any of them."""
    out = _probe(["--help"])
    assert out.returncode == 0 and "chess" in out.stdout and "sweep" in out.stdout
    assert "LOADED []" in out.stderr


def test_only_the_command_run_is_imported():
    out = _probe(["sweep", "--list"])
    assert out.returncode == 0 and "noisy_experts" in out.stdout
    loaded = out.stderr.split("LOADED")[-1]
    assert "'sims'" in loaded and "chess_exp" not in loaded and "torch" not in loaded


def test_a_missing_dependency_fails_loudly_instead_of_hiding_commands():
    """Without python-chess, `chess --help` still lists every chess command (it imports none of
    them), and running one says which module is missing: exit 1, one line, no traceback."""
    from chess_exp.cli import COMMANDS as CHESS

    listing = _probe(["chess", "--help"], block="chess")
    assert listing.returncode == 0, listing.stderr
    for name in CHESS:
        assert f"    {name} " in listing.stdout, name
    out = _probe(["chess", "prepare", "--help"], block="chess")
    assert out.returncode == 1
    err = out.stderr.split("LOADED")[0].strip()
    assert err.startswith("transcendence chess: error: cannot load the command: module 'chess' is missing")
    assert "Traceback" not in out.stderr and len(err.splitlines()) == 1
    assert "transcendence demo" not in err and _probe(["demo", "--help"], block="chess").returncode == 0


def test_every_command_of_the_table_loads_and_registers():
    import argparse

    from transcendence import cli

    parser = cli.build_parser(load="all")
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert list(sub.choices) == list(cli.COMMANDS)
    for name, command_parser in sub.choices.items():
        assert command_parser.get_default("func") is not None, name


# ---------------------------------------------------------------- the one error handler
def _register_boom(subparsers):
    p = subparsers.add_parser("boom")
    p.add_argument("--kind", required=True)
    p.add_argument("--out-dir", default="/nonexistent/run")
    p.add_argument("--seed", type=int, default=0)

    def run(args):
        from transcendence.cli import UsageError
        if args.kind == "usage":
            raise UsageError("--kind: not a good kind")
        if args.kind == "value":
            raise ValueError("tol: must be a finite real number >= 0, got nan\nsecond line")
        if args.kind == "missing":
            open("/nonexistent/dir/file.txt")
        if args.kind == "under-out":
            open(args.out_dir + "/results.csv")
        if args.kind == "oserror":
            raise OSError("a failure that is not about a path")
        if args.kind == "interrupt":
            raise KeyboardInterrupt
        return 0

    p.set_defaults(func=run, accepts_overrides=True)


@pytest.fixture()
def boom(monkeypatch):
    from transcendence import cli
    monkeypatch.setitem(cli.COMMANDS, "boom", ("tests.core.test_core_cli:_register_boom", "test command"))
    return cli.main


@pytest.mark.parametrize("kind, message", [
    ("usage", "transcendence boom: error: --kind: not a good kind"),
    ("value", "transcendence boom: error: tol: must be a finite real number >= 0, got nan second line"),
    ("missing", "transcendence boom: error: No such file or directory: /nonexistent/dir/file.txt"),
    ("under-out", "transcendence boom: error: --out-dir: No such file or directory: /nonexistent/run/results.csv"),
])
def test_errors_are_one_line_exit_2(boom, capsys, kind, message):
    assert boom(["boom", "--kind", kind]) == 2
    err = capsys.readouterr().err
    assert err == message + "\n"


def test_other_failures_are_not_hidden(boom, capsys):
    with pytest.raises(OSError, match="not about a path"):
        boom(["boom", "--kind", "oserror"])
    assert boom(["boom", "--kind", "interrupt"]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert boom(["boom", "--kind", "fine"]) == 0


@pytest.mark.parametrize("extra, message", [
    (["--seed", "-2"], "--seed: must be >= 0, got -2"),
    (["--seed=-1"], "--seed: must be >= 0, got -1"),                 # an override
    (["--model.seed", "-3"], "--model.seed: must be >= 0, got -3"),  # a nested override, two tokens
])
def test_a_negative_seed_is_refused_for_every_command(boom, capsys, extra, message):
    assert boom(["boom", "--kind", "fine", *extra]) == 2
    assert capsys.readouterr().err == f"transcendence boom: error: {message}\n"


def test_a_non_numeric_seed_override_is_left_to_the_command(boom):
    assert boom(["boom", "--kind", "fine", "--model.seed=abc"]) == 0
    assert boom(["boom", "--kind", "fine", "--seed", "7"]) == 0


def test_traceback_on_request(boom, monkeypatch):
    monkeypatch.setenv("TRANSCENDENCE_TRACEBACK", "1")
    with pytest.raises(ValueError, match="^tol: "):
        boom(["boom", "--kind", "value"])


def _writable(directory: str) -> bool:
    import os
    import tempfile
    try:
        fd, name = tempfile.mkstemp(dir=directory)
    except OSError:
        return False
    os.close(fd)
    os.unlink(name)
    return True


def test_output_path_checks(tmp_path):
    from transcendence.cli import UsageError, check_output_dir, check_output_file

    a_file = tmp_path / "f.txt"
    a_file.write_text("x")
    assert check_output_dir(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert check_output_file(tmp_path / "new" / "out.json", "--json") == tmp_path / "new" / "out.json"
    with pytest.raises(UsageError, match="^--out: .* is a file"):
        check_output_dir(a_file)
    with pytest.raises(UsageError, match="^--out: .* lies under .*f.txt, which is a file"):
        check_output_dir(a_file / "sub")
    with pytest.raises(UsageError, match="^--json: .* is a directory"):
        check_output_file(tmp_path, "--json")
    with pytest.raises(UsageError, match="^--json: .* lies under"):
        check_output_file(a_file / "x.json", "--json")
    if not _writable("/sys"):                               # read-only even for root
        with pytest.raises(UsageError, match="^--out: cannot write"):
            check_output_dir("/sys/transcendence-test")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]   # nothing created


@dataclass(frozen=True, kw_only=True)
class _Model:
    n_layer: int = 2      # layers
    act: Literal["gelu", "relu"] = "gelu"


@dataclass(frozen=True, kw_only=True)
class _Run:
    seed: int = 0
    lr: float = 1e-3
    taus: tuple[float, ...] = (0.0, 1.0)
    compile: bool = False
    name: str | None = None
    model: _Model = field(default_factory=_Model)


def test_overrides_are_typed_and_checked():
    cfg = apply_overrides(_Run(), ["--seed=3", "--lr", "0.5", "--model.n_layer=4", "--taus=0.1,0.2",
                                   "--compile=true", "--model.act=relu", "--name=none"])
    assert cfg == _Run(seed=3, lr=0.5, taus=(0.1, 0.2), compile=True, model=_Model(n_layer=4, act="relu"))
    with pytest.raises(ValueError, match="unknown config key --model.width"):
        apply_overrides(_Run(), ["--model.width=3"])
    with pytest.raises(ValueError, match="--seed"):
        apply_overrides(_Run(), ["--seed=abc"])
    with pytest.raises(ValueError, match="must be one of"):
        apply_overrides(_Run(), ["--model.act=tanh"])
    with pytest.raises(ValueError, match="group of settings"):
        apply_overrides(_Run(), ["--model=3"])


def test_config_round_trip_and_run_metadata(tmp_path):
    cfg = _Run(seed=5, taus=(0.5,), model=_Model(n_layer=7))
    assert config_from_dict(_Run, json.loads(json.dumps(config_to_dict(cfg)))) == cfg
    path = write_run_metadata(tmp_path / "run", cfg)
    record = json.loads(path.read_text())
    assert record["config"]["model"]["n_layer"] == 7 and "numpy" in record["versions"]
    assert "command" in record and "commit" in record
