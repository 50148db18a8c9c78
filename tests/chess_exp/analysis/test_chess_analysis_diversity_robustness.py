"""Diversity robustness: the vectorised mean entropies and the equal-game-count subsample draws."""
from __future__ import annotations

import math

import numpy as np
import pytest

from chess_exp.analysis import diversity
from chess_exp.analysis.games_io import Game as SimpleGame

CAPS = (1000, 1300, 1500)


def _games(lines):
    return [SimpleGame(game_id=str(i), white_elo=w, black_elo=b, result="*", sans=tuple(m.split()))
            for i, (w, b, m) in enumerate(lines)]


def _table(seed: int = 0, n: int = 300):
    """Random short games whose first moves are more varied under the lower caps."""
    g = np.random.default_rng(seed)
    first = ["e4", "d4", "c4", "Nf3", "g3", "b3"]
    reply = ["e5", "c5", "e6", "d5", "Nf6", "g6"]
    lines = []
    for i in range(n):
        level = i % 3
        k = 6 - 2 * level  # <=1000 spreads over 6 moves, 1001-1300 over 4, 1301-1500 over 2
        elo = (950, 1250, 1450)[level]
        lines.append((elo, elo - 50, f"{first[g.integers(k)]} {reply[g.integers(k)]}"))
    return diversity.collect_openings(_games(lines), CAPS, max_ply=2)


def test_mean_entropies_equal_the_mean_of_state_entropies():
    table = _table()
    for li in range(3):
        rows = np.flatnonzero(table.level <= li)
        fast = diversity.mean_entropies(table, rows, (1, 5, 40))
        for t in (1, 5, 40):
            states = diversity.state_entropies(table, rows, t)
            assert fast[t][0] == len(states)
            if states:
                assert fast[t][1] == pytest.approx(np.mean([s["h_legal"] for s in states]), abs=1e-12)
                assert fast[t][2] == pytest.approx(np.mean([s["h_observed"] for s in states]), abs=1e-12)
    empty = diversity.mean_entropies(table, np.array([], dtype=np.int64), (1,))
    assert empty[1][0] == 0 and math.isnan(empty[1][1])


def _start_table(diverse_levels):
    """100 games per rating bin, max_ply 0 (only the start position): bins in ``diverse_levels`` cycle
    through six first moves, the others always play e4."""
    first = ["e4", "d4", "c4", "Nf3", "g3", "b3"]
    lines = [((950, 1250, 1450)[lv], 900, first[i % 6] if lv in diverse_levels else "e4")
             for lv in range(3) for i in range(100)]
    return diversity.collect_openings(_games(lines), CAPS, max_ply=0)


def test_subsample_ordering_counts_draws_and_is_seeded():
    # cumulative caps: <=1000 is all diverse, <=1300 half, <=1500 a third, so the entropy of the start
    # position falls with the cap; with 60 of the games per draw the 1300 > 1500 step is about 2 sd wide
    table = _start_table({0})
    out = diversity.subsample_ordering(table, CAPS, (1, 5), n_games=60, draws=40, rng=np.random.default_rng(3))
    assert out["draws"] == 40 and out["games_per_cap"] == 60
    assert out["games_available"] == {"1000": 100, "1300": 200, "1500": 300}
    for t in ("1", "5"):
        for norm in ("h_legal", "h_observed"):
            e = out["thresholds"][t][norm]
            assert 0.0 <= e["share_ordering_holds"] <= min(e["share_each_step"].values()) <= 1.0
            assert e["share_each_step"]["1000>1300"] == 1.0
            assert e["share_ordering_holds"] > 0.8
        assert out["thresholds"][t]["n_states_quartiles"]["1000"] == [1.0, 1.0, 1.0]
    again = diversity.subsample_ordering(table, CAPS, (1, 5), n_games=60, draws=40, rng=np.random.default_rng(3))
    assert again == out


def test_subsample_ordering_when_higher_caps_are_more_diverse():
    table = _start_table({1, 2})  # <=1000 always plays e4: entropy 0, below every other cap
    out = diversity.subsample_ordering(table, CAPS, (1,), n_games=60, draws=20, rng=np.random.default_rng(0))
    e = out["thresholds"]["1"]["h_legal"]
    assert e["share_each_step"]["1000>1300"] == 0.0 and e["share_ordering_holds"] == 0.0
    with pytest.raises(ValueError, match="subsample_draws"):
        diversity.subsample_ordering(table, CAPS, (1,), n_games=60, draws=0, rng=np.random.default_rng(0))


def test_negative_draws_are_refused_before_reading_any_game(tmp_path):
    cfg = diversity.DiversityConfig(data=str(tmp_path / "missing.pgn"), subsample_draws=-1)
    with pytest.raises(ValueError, match="subsample_draws"):
        diversity.run_diversity(cfg, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_figure_draws_the_subsample_panel(tmp_path):
    import csv
    import json

    from paper_figs import analysis_diversity

    caps = {"1000": {"n_states": 1, "h_legal": {"mean": 0.5, "lo": 0.4, "hi": 0.6},
                     "h_observed": {"mean": 0.7, "lo": 0.6, "hi": 0.8}}}
    res = {"games_per_cap": {"1000": 10}, "variants": {"all_games": {"20": {"caps": caps}}},
           "subsample_ordering": {"draws": 100, "games_per_cap": 10, "thresholds": {
               "20": {"h_legal": {"share_ordering_holds": 0.9}, "h_observed": {"share_ordering_holds": 0.6}}}}}
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.json").write_text(json.dumps(res))
    with open(run / "states.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, ["variant", "threshold", "cap", "h_legal", "h_observed"])
        w.writeheader()
        w.writerow({"variant": "all_games", "threshold": "20", "cap": "1000", "h_legal": 0.5, "h_observed": 0.7})
    assert analysis_diversity.main(["--run", str(run), "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "analysis_diversity.png").stat().st_size > 10_000
