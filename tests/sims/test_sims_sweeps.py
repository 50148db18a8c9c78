"""Every sweep end to end on tiny sizes: config -> run dir -> results -> summary -> figure."""

from __future__ import annotations

import dataclasses
import importlib
import json

import numpy as np
import pytest

from sims import SWEEPS, get_sweep, run_sweep
from sims._runner import read_rows

TINY = {
    "noisy_experts": dict(ks=(1, 3), noises=(0.2, 0.8), n_outputs=(3,), n_inputs=15, n_seeds=2,
                          temperatures=(0.0, 0.5, 1.0)),
    "correlated_errors": dict(ks=(3,), error_rates=(0.3,), correlations=(0.0, 1.0), n_inputs=50,
                              n_seeds=2, temperatures=(0.0, 1.0)),
    "partition_experts": dict(ks=(2,), coverages=(0.0, 1.0), n_inputs=20, n_seeds=2,
                              temperatures=(0.0, 1.0)),
    "finite_sample": dict(n_inputs=10, samples_per_input=(1.0, 10.0), n_seeds=3,
                          temperatures=(0.0, 1.0)),
    "linear_toy": dict(sigmas=(0.1, 0.4), n_features=8, n_classes=3, n_train=300, n_test=300,
                       n_seeds=2, temperatures=(0.0, 0.5, 1.0)),
    "skill_selection": dict(ks=(2,), selections=(-1.0, 0.0, 1.0), n_inputs=20, n_seeds=2,
                            temperatures=(0.0, 1.0)),
}
ROWS_PER_TASK = {"finite_sample": 2 * 2}  # smoothings x temperatures; others: temperatures


def test_every_sweep_has_a_tiny_config_and_presets():
    assert set(TINY) == set(SWEEPS)
    for name in SWEEPS:
        module = get_sweep(name)
        assert set(module.PRESETS) == {"quick", "full"}
        for cfg in module.PRESETS.values():
            module.validate(cfg)
            with pytest.raises(dataclasses.FrozenInstanceError):
                cfg.seed = 1


@pytest.mark.parametrize("name", sorted(SWEEPS))
def test_sweep_end_to_end(name, tmp_path):
    module = get_sweep(name)
    cfg = dataclasses.replace(module.PRESETS["quick"], **TINY[name])
    out = run_sweep(name, cfg, out_dir=tmp_path / "run", workers=1, progress=False)
    n_points = int(np.prod([len(v) for v in module.grid(cfg).values()]))
    per_task = ROWS_PER_TASK.get(name, len(cfg.temperatures))
    cols = read_rows(tmp_path / "run" / "results.csv")
    assert len(cols["seed"]) == n_points * cfg.n_seeds * per_task == len(out.rows)
    assert sorted(set(cols["seed"].tolist())) == list(range(cfg.n_seeds))
    assert np.all(np.isfinite(cols["margin"]))
    assert json.loads((tmp_path / "run" / "summary.json").read_text())
    figure = importlib.import_module(f"paper_figs.{name}")
    assert figure.main(["--run", str(tmp_path / "run"), "--out", str(tmp_path / "figs")]) == 0
    for ext in ("png", "pdf"):
        assert (tmp_path / "figs" / f"{name}.{ext}").stat().st_size > 1000


def test_validate_names_the_bad_field():
    module = get_sweep("linear_toy")
    with pytest.raises(ValueError, match="sigmas"):
        module.validate(dataclasses.replace(module.PRESETS["quick"], sigmas=(-0.1,)))
    module = get_sweep("finite_sample")
    with pytest.raises(ValueError, match="samples_per_input"):
        module.validate(dataclasses.replace(module.PRESETS["quick"], samples_per_input=(0.001,)))
    with pytest.raises(ValueError, match="config for sweep"):
        run_sweep("finite_sample", get_sweep("linear_toy").PRESETS["quick"])


def test_figure_script_without_results_says_what_to_run(tmp_path):
    figure = importlib.import_module("paper_figs.linear_toy")
    with pytest.raises(SystemExit, match="transcendence sweep"):
        figure.main(["--run", str(tmp_path / "linear_toy")])
