"""The sweep runner: tasks and seeds, worker-count independence, CSV round trip, the CLI."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from sims import run_sweep
from sims._runner import make_tasks, read_rows, substreams, write_rows
from sims.noisy_experts import PRESETS as NOISY_PRESETS

TINY_NOISY = dataclasses.replace(NOISY_PRESETS["quick"], ks=(1, 3), noises=(0.3, 0.7),
                                 n_outputs=(3,), n_inputs=20, n_seeds=3,
                                 temperatures=(0.0, 0.1, 1.0))


def test_make_tasks_grid_major_and_common_random_numbers():
    tasks = make_tasks({"a": (1, 2, 3), "b": ("x", "y")}, n_seeds=4, seed=7)
    assert len(tasks) == 3 * 2 * 4
    assert [t[0] for t in tasks[:5]] == [{"a": 1, "b": "x"}] * 4 + [{"a": 1, "b": "y"}]
    # Replicate s has the same seed at every grid point, different seeds across replicates.
    by_rep = {}
    for _point, s, seed in tasks:
        by_rep.setdefault(s, set()).add(tuple(seed.generate_state(4)))
    assert all(len(v) == 1 for v in by_rep.values())
    assert len({next(iter(v)) for v in by_rep.values()}) == 4


def test_make_tasks_rejects_empty_axis_and_no_seeds():
    with pytest.raises(ValueError, match="'b'"):
        make_tasks({"a": (1,), "b": ()}, n_seeds=1, seed=0)
    with pytest.raises(ValueError, match="n_seeds"):
        make_tasks({"a": (1,)}, n_seeds=0, seed=0)


def test_substreams_match_spawn_and_do_not_mutate_the_parent():
    parent = np.random.SeedSequence(123).spawn(1)[0]
    first = [s.generate_state(2).tolist() for s in substreams(parent, 3)]
    again = [s.generate_state(2).tolist() for s in substreams(parent, 3)]
    assert first == again
    assert parent.n_children_spawned == 0
    spawned = [s.generate_state(2).tolist() for s in parent.spawn(3)]
    assert first == spawned


def test_csv_round_trip_keeps_floats_exactly(tmp_path):
    rows = [{"a": 1, "b": 0.1 + 0.2, "c": math.inf, "d": None, "e": True},
            {"a": 2, "b": -1e-300, "c": math.nan, "d": 3.0, "e": False}]
    cols = read_rows(write_rows(tmp_path / "r.csv", rows))
    assert cols["a"].tolist() == [1.0, 2.0]
    assert cols["b"].tolist() == [0.1 + 0.2, -1e-300]
    assert np.isinf(cols["c"][0]) and np.isnan(cols["c"][1])
    assert np.isnan(cols["d"][0]) and cols["e"].tolist() == [1.0, 0.0]


def test_same_seed_same_numbers_with_one_and_two_workers(tmp_path):
    one = run_sweep("noisy_experts", TINY_NOISY, out_dir=tmp_path / "w1", workers=1, progress=False)
    two = run_sweep("noisy_experts", TINY_NOISY, out_dir=tmp_path / "w2", workers=2, progress=False)
    assert repr(one.rows) == repr(two.rows)  # repr: nan == nan
    assert (tmp_path / "w1" / "results.csv").read_bytes() == (tmp_path / "w2" / "results.csv").read_bytes()
    other = run_sweep("noisy_experts", dataclasses.replace(TINY_NOISY, seed=1),
                      out_dir=tmp_path / "s1", workers=1, progress=False)
    assert [r["margin"] for r in other.rows] != [r["margin"] for r in one.rows]


def test_run_dir_describes_itself(tmp_path):
    out = run_sweep("noisy_experts", TINY_NOISY, out_dir=tmp_path, workers=1, progress=False)
    meta = json.loads((tmp_path / "config.json").read_text())
    assert meta["config"]["ks"] == [1, 3] and meta["sweep"] == "noisy_experts"
    assert "commit" in meta and "versions" in meta
    assert json.loads((tmp_path / "summary.json").read_text()) == out.summary


def test_cli_list_and_run_with_overrides(tmp_path, capsys):
    from transcendence.cli import main

    assert main(["sweep", "--list"]) == 0
    listed = capsys.readouterr().out
    for name in ("noisy_experts", "correlated_errors", "partition_experts", "finite_sample",
                 "linear_toy", "skill_selection"):
        assert name in listed
    rc = main(["sweep", "partition_experts", "--out", str(tmp_path), "--quiet", "--workers=1",
               "--ks=2,3", "--coverages=0,1", "--n_seeds", "2", "--n_inputs=30"])
    assert rc == 0
    meta = json.loads((tmp_path / "config.json").read_text())["config"]
    assert meta["ks"] == [2, 3] and meta["coverages"] == [0.0, 1.0] and meta["n_seeds"] == 2
    cols = read_rows(tmp_path / "results.csv")
    assert len(cols["k"]) == 2 * 2 * 2 * len(meta["temperatures"])


def test_cli_errors_name_the_problem(tmp_path, capsys):
    from transcendence.cli import main

    assert main(["sweep", "partition_experts", "--out", str(tmp_path), "--no_such_key=1"]) == 2
    assert "no_such_key" in capsys.readouterr().err
    assert main(["sweep", "nope"]) == 2
    assert "unknown sweep 'nope'" in capsys.readouterr().err
    assert main(["sweep", "noisy_experts", "--noises=0.5,2"]) == 2
    assert "noises" in capsys.readouterr().err
    assert not (tmp_path / "results.csv").exists()


def test_bad_sweep_arguments_leave_no_run_directory(tmp_path, capsys):
    """n_seeds = 0, a negative seed or --workers are refused before config.json is written, through
    the command line and through run_sweep."""
    from transcendence.cli import main

    for extra in (["--n_seeds=0"], ["--seed=-2"], ["--workers", "-3"]):
        assert main(["sweep", "noisy_experts", "--out", str(tmp_path / "cli"), "--quiet", *extra]) == 2
        assert "error:" in capsys.readouterr().err
    assert not (tmp_path / "cli").exists()
    for cfg, workers in ((dataclasses.replace(TINY_NOISY, n_seeds=0), 1), (TINY_NOISY, -3)):
        with pytest.raises(ValueError, match="n_seeds|workers"):
            run_sweep("noisy_experts", cfg, out_dir=tmp_path / "api", workers=workers, progress=False)
    assert not (tmp_path / "api").exists()
