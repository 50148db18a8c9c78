"""``transcendence chess map``: panels for any eps, resuming at the next cell, the output schema."""

from __future__ import annotations

import json

import pytest

from chess_exp.analysis import transcendence_map as tm
from chess_exp.experts.policies import Expert

TINY = ["--eps-min", "0.5,0.8", "--budgets", "1,3", "--train-games", "4", "--test-games", "2", "--n", "10",
        "--nodes", "100", "--expert-nodes", "5", "--max-moves", "20", "--hidden", "16", "--layers", "1",
        "--batch", "32", "--boot", "200", "--warmup", "2"]


def test_noisy_panel_for_any_eps_min() -> None:
    p = tm.noisy_panel(0.1)
    assert [e.eps for e in p.experts] == [0.1, 0.2, 0.3]
    p = tm.noisy_panel(0.8, nodes=7)
    assert [e.eps for e in p.experts] == [0.8, 0.9, 1.0]
    assert p.names == ["noisy-eps0.8", "noisy-eps0.9", "noisy-eps1"] and p.engine.nodes == 7
    assert tm.noisy_panel(0.9).names == ["noisy-eps0.9", "noisy-eps1"]  # capped at 1, no duplicate
    with pytest.raises(ValueError, match="eps_min"):
        tm.noisy_panel(1.5)


def test_eps_one_expert_is_uniform() -> None:
    import chess

    class _NoOracle:  # eps = 1 never asks the oracle for its move's weight beyond the mode
        def best_move(self, board):
            return next(iter(board.legal_moves))

    spec = tm.noisy_panel(0.8).experts[-1]
    board = chess.Board()
    moves = sorted(board.legal_moves, key=lambda m: m.uci())
    probs = Expert(spec, _NoOracle()).probs(board, moves)
    assert probs == pytest.approx([1 / 20] * 20)


def _fake_cell(calls: list):
    """A cell without Stockfish or training: its numbers depend only on (eps_min, budget)."""

    def cell(a, eps_min, budget, out, log):
        calls.append((eps_min, budget))
        margin = 0.1 * eps_min * budget - 0.1  # (0.5, 3) and (0.8, 3) transcend
        m = {"reward": 0.5, "ci_low": 0.4, "ci_high": 0.6, "margin": margin, "margin_ci_low": margin - 0.01,
             "margin_ci_high": margin + 0.01, "transcends": margin - 0.01 > 0, "eps_star": eps_min - margin,
             "oracle_agreement": 0.5, "tau_star": None}
        flat = {**m, "margin": -0.5, "margin_ci_low": -0.6, "margin_ci_high": -0.4, "transcends": False}
        return {"key": tm.cell_key(eps_min, budget), "eps_min": eps_min, "budget_epochs": budget,
                "experts": [eps_min], "seconds": {"total": 0.0}, "rows": [],
                "subsets": {"all": {"n_positions": 10, "n_games": 2, "best_expert": "x",
                                    "model_tau0": m, "model_tau1": flat, "mixture_tau0": flat}}}

    return cell


def test_interrupted_map_resumes_at_the_next_cell(tmp_path) -> None:
    out = tmp_path / "map"
    calls: list = []
    a = tm._parse(["--out", str(out), *TINY, "--max-cells", "1"])
    res = tm.run(a, log=lambda s: None, cell_fn=_fake_cell(calls))
    assert calls == [(0.5, 1.0)] and not res["complete"]
    first = (out / "cells" / "eps0.5_b1.json").read_bytes()
    assert json.loads((out / "results.json").read_text())["complete"] is False

    calls.clear()
    res = tm.run(tm._parse(["--out", str(out), *TINY]), log=lambda s: None, cell_fn=_fake_cell(calls))
    assert calls == [(0.5, 3.0), (0.8, 1.0), (0.8, 3.0)]  # the finished cell is not redone
    assert (out / "cells" / "eps0.5_b1.json").read_bytes() == first
    doc = json.loads((out / "results.json").read_text())
    assert doc["complete"] is True and [c["key"] for c in doc["cells"]] == ["eps0.5_b1", "eps0.5_b3",
                                                                             "eps0.8_b1", "eps0.8_b3"]
    assert all("rows" not in c for c in doc["cells"])
    assert (out / "map.png").stat().st_size > 0
    rows = [line for line in (out / "results.md").read_text().splitlines() if line.startswith(("| 0.5 |", "| 0.8 |"))]
    assert len(rows) == 4
    assert [("✓" in line) for line in rows] == [False, True, False, True]
    assert [c["subsets"]["all"]["model_tau0"]["transcends"] for c in doc["cells"]] == [False, True, False, True]

    calls.clear()
    tm.run(tm._parse(["--out", str(out), *TINY]), log=lambda s: None, cell_fn=_fake_cell(calls))
    assert calls == []  # a finished map is only rewritten from its cells


def test_other_options_refused_and_bad_input_exit_2(tmp_path, capsys) -> None:
    out = tmp_path / "map"
    tm.run(tm._parse(["--out", str(out), *TINY, "--max-cells", "1"]), log=lambda s: None, cell_fn=_fake_cell([]))
    before = sorted(p.name for p in (out / "cells").iterdir())
    a = tm._parse(["--out", str(out), *TINY, "--n", "11"])
    assert tm.main(a) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: --out:") and "other --n;" in err
    assert sorted(p.name for p in (out / "cells").iterdir()) == before
    for bad, word in ((["--budgets", "0"], "--budgets"), (["--eps-min", "1.2"], "--eps-min"), (["--n", "0"], "--n")):
        assert tm.main(tm._parse(["--out", str(tmp_path / "x"), *TINY, *bad])) == 2
        assert capsys.readouterr().err.startswith(f"error: {word}")
    assert not (tmp_path / "x").exists()


def test_summary_picks_the_model_rows() -> None:
    base = {"subset": "all", "n_positions": 3, "n_games": 2, "best_expert": "e1", "ci_low": 0, "ci_high": 1,
            "margin_ci_low": -1, "margin_ci_high": 1, "transcends": False, "eps_star": 0.3,
            "oracle_agreement": 0.2, "tau_star": None}
    rows = [{**base, "player": "e1", "temperature": 1.0, "reward": 0.7, "margin": 0.0},
            {**base, "player": "model", "temperature": 0.0, "reward": 0.8, "margin": 0.1},
            {**base, "player": "model", "temperature": 1.0, "reward": 0.6, "margin": -0.1},
            {**base, "player": "mixture", "temperature": 0.0, "reward": 0.9, "margin": 0.2},
            {**base, "player": "mixture", "temperature": 1.0, "reward": 0.65, "margin": -0.05}]
    s = tm.summarise_rows(rows)["all"]
    assert s["best_expert_reward"] == 0.7
    assert (s["model_tau0"]["margin"], s["model_tau1"]["margin"], s["mixture_tau0"]["margin"]) == (0.1, -0.1, 0.2)


@pytest.mark.long
def test_real_tiny_map_resumes_with_the_same_numbers(stockfish_path, tmp_path, monkeypatch) -> None:
    """Stockfish, generated games, training and the check on a 2 x 2 grid: an interrupted run
    (one cell, then a rerun) gives the same cells as an uninterrupted one, and skips the done cell."""
    common = [*TINY, "--stockfish", stockfish_path, "--reward-cache", str(tmp_path / "r.sqlite"),
              "--experts-cache", str(tmp_path / "ec")]
    whole = tm.run(tm._parse(["--out", str(tmp_path / "whole"), *common]), log=lambda s: None)
    calls: list = []

    def counting(*args, **kw):
        calls.append(args[1:3])
        return tm.run_cell(*args, **kw)

    tm.run(tm._parse(["--out", str(tmp_path / "cut"), *common, "--max-cells", "1"]), log=lambda s: None,
           cell_fn=counting)
    calls.clear()
    resumed = tm.run(tm._parse(["--out", str(tmp_path / "cut"), *common]), log=lambda s: None, cell_fn=counting)
    assert calls == [(0.5, 3.0), (0.8, 1.0), (0.8, 3.0)]

    def numbers(res):
        return [(c["key"], c["train"]["steps"], c["train"]["positions"], c["subsets"], c["rows"])
                for c in res["cells"]]  # everything but the seconds

    assert numbers(resumed) == numbers(whole)
    for c in whole["cells"]:
        s = c["subsets"]["all"]
        assert s["best_expert"] == f"noisy-eps{c['eps_min']:g}"
        assert c["experts"] == [c["eps_min"], round(c["eps_min"] + 0.1, 6), round(c["eps_min"] + 0.2, 6)][
            :len(c["experts"])]
        for name in ("model_tau0", "model_tau1", "mixture_tau0"):
            m = s[name]
            assert m["margin_ci_low"] <= m["margin"] <= m["margin_ci_high"]
            assert 0.0 <= m["oracle_agreement"] <= 1.0
        # the exact mixture's argmax is the oracle's move for a noisy panel: eps* 0, agreement 1
        assert s["mixture_tau0"]["eps_star"] == pytest.approx(0.0, abs=1e-9)
        assert s["mixture_tau0"]["oracle_agreement"] == pytest.approx(1.0)
    assert whole["cells"][0]["train"]["steps"] < whole["cells"][1]["train"]["steps"]  # budget 1 < budget 3
