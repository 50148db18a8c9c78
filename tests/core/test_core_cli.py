"""The `transcendence` command line, the demo, and the typed config overrides."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Literal

import pytest

from transcendence.config import (apply_overrides, config_from_dict, config_to_dict,
                                  write_run_metadata)


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
    assert out.returncode == 0 and "demo" in out.stdout


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
