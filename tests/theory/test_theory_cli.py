"""`transcendence theory`: the table, the JSON, the exit code, reproducible instances."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import theory
from theory import runner
from theory._base import Conclusion
from transcendence.cli import main


def test_theory_command_prints_one_row_per_statement(tmp_path, capsys):
    out = tmp_path / "theory.json"
    assert main(["theory", "--instances", "3", "--seed", "1", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    for statement_id in theory.STATEMENTS:
        assert statement_id in text
    assert "3/3" in text and "confirmed" in text and "intermediate temperature" in text
    rows = json.loads(out.read_text())["rows"]
    assert [r["id"] for r in rows] == list(theory.STATEMENTS)
    assert all(r["ok"] and r["held"] == 3 for r in rows)


def test_theory_command_one_statement(capsys):
    assert main(["theory", "--instances", "2", "--statement", "prop3"]) == 0
    text = capsys.readouterr().out
    assert "prop3" in text and "prop4" not in text


def test_theory_command_rejects_unknown_statement():
    with pytest.raises(SystemExit) as exc:
        main(["theory", "--statement", "prop9"])
    assert exc.value.code == 2


def test_theory_command_exits_nonzero_when_a_conclusion_fails(monkeypatch, capsys):
    broken = dataclasses.replace(theory.STATEMENTS["prop1"],
                                 conclusion=lambda inst: Conclusion(False, -1.0, "broken"))
    monkeypatch.setitem(theory.STATEMENTS, "prop1", broken)
    assert main(["theory", "--instances", "2", "--statement", "prop1"]) == 1
    assert "FAIL prop1" in capsys.readouterr().err


def test_same_seed_same_instances():
    a = runner.instance("prop2", 7, 3)
    b = runner.instance("prop2", 7, 3)
    c = runner.instance("prop2", 8, 3)
    assert np.array_equal(a.experts, b.experts) and np.array_equal(a.reward, b.reward)
    assert not (a.experts.shape == c.experts.shape and np.array_equal(a.experts, c.experts)
                and np.array_equal(a.reward, c.reward))


def test_run_statement_counts():
    row = runner.run_statement(theory.get("skill"), 5, seed=0)
    assert row.ok and row.instances == row.held == 5 and row.smallest_margin > 0
    assert row.counterexamples == row.counterexamples_total == 2


def test_theory_command_checks_its_arguments_before_the_run(tmp_path, capsys, monkeypatch):
    """A bad --seed or an unwritable --json is refused before any statement is checked."""
    calls = []
    monkeypatch.setattr(runner, "run_statement", lambda *a, **k: calls.append(a))
    assert main(["theory", "--seed", "-5"]) == 2
    assert capsys.readouterr().err.startswith("transcendence theory: error: --seed: must be >= 0")
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    assert main(["theory", "--json", str(blocker / "rows.json")]) == 2
    assert "--json" in capsys.readouterr().err
    assert main(["theory", "--json", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert calls == [] and sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def test_run_statement_refuses_a_negative_seed():
    with pytest.raises(ValueError, match="^seed: "):
        runner.run_statement(theory.get("skill"), 2, seed=-1)
    with pytest.raises(ValueError, match="^n: "):
        runner.run_statement(theory.get("skill"), 0)
