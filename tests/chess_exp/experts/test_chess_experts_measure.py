"""The synthetic-experts measurement end to end at toy size, its resume, the CLI and the figure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chess_exp.experts.measure import MeasureConfig, measure

pytestmark = [pytest.mark.engine, pytest.mark.slow]


def _config(tmp_path: Path, stockfish_path: str) -> MeasureConfig:
    return MeasureConfig(out=tmp_path / "run", games=6, max_moves=20, workers=1, val_fraction=0.5, train_preset="tiny",
                         train_iters=3, threads=1, levels=(1,), rating_games=2, limit="nodes=500",
                         temperatures=(0.0, 1.0), mixture_temperatures=(0.0,), heldout_games=2,
                         heldout_positions=20, engines=1, in_flight=8, stockfish=stockfish_path,
                         cache_dir=tmp_path / "cache")


def test_measure_end_to_end_and_resume(tmp_path, stockfish_path, capsys):
    config = _config(tmp_path, stockfish_path)
    results = measure(config, progress=False)
    players = results["players"]
    assert list(players) == ["expert:noisy-eps0.1", "expert:noisy-eps0.2", "expert:noisy-eps0.3",
                             "mixture@0", "model@0", "model@1"]
    for row in players.values():
        assert row["games"] == 2
        assert row["lo"] <= row["elo"] <= row["hi"]
        assert sum(sum(wdl) for wdl in row["wdl"].values()) == 2
    for kind in ("prior", "posterior"):
        a = results["agreement"][kind]
        assert 0 < a["positions"] <= 20
        assert 0.0 <= a["argmax_agreement"] <= 1.0 and 0.0 <= a["p_on_argmax"] <= 1.0 and a["kl"] >= 0.0
    assert "| player | Elo" in capsys.readouterr().out
    saved = json.loads((config.out / "results.json").read_text())
    assert saved["players"].keys() == players.keys()
    games = (config.out / "rating" / "games.jsonl").read_text().splitlines()
    assert len(games) == 12

    # a second call resumes every stage: no new game, no new training step
    measure(config, progress=False)
    assert (config.out / "rating" / "games.jsonl").read_text().splitlines() == games

    from chess_exp.experts.headtohead import head_to_head
    h2h = head_to_head(config.out, panel_name="noisy3", opponents=["noisy-eps0.3"], temperatures=[0.0],
                       games=2, cache_dir=config.cache_dir)
    assert h2h["model@0"]["noisy-eps0.3"]["games"] == 2 and sum(h2h["model@0"]["noisy-eps0.3"]["wdl"]) == 2

    from paper_figs.experts_rating import plot
    paths = plot(config.out / "results.json", tmp_path / "fig" / "experts_rating")
    assert all(p.exists() and p.stat().st_size > 0 for p in paths)


def test_measure_without_model(tmp_path, stockfish_path):
    """model=False rates the experts and the exact mixture only: no games, no training."""
    import dataclasses
    config = dataclasses.replace(_config(tmp_path, stockfish_path), model=False, panel="phases3",
                                 rating_games=1, mixture_temperatures=(1.0, 0.0))
    results = measure(config, progress=False)
    assert list(results["players"]) == ["expert:opening-expert", "expert:middlegame-expert",
                                        "expert:endgame-expert", "mixture@1", "mixture@0"]
    assert not (config.out / "games").exists() and not (config.out / "model").exists()
    assert results["agreement"] == {}


def test_cli_generate_and_bad_panel(tmp_path, stockfish_path, capsys):
    from transcendence.cli import main
    out = tmp_path / "g.pgn"
    argv = ["chess", "experts", "generate", "--panel", "pieces3", "--games", "2", "--out", str(out),
            "--workers", "1", "--cache", str(tmp_path / "cache"), "--max-moves", "15",
            "--stockfish", stockfish_path, "--no-progress"]
    assert main(argv) == 0
    assert out.read_text().count("[WhiteExpert ") == 2
    assert main(argv[:4] + ["nope"] + argv[5:]) == 2
    assert "unknown 'nope'" in capsys.readouterr().err
