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


def test_anchors_rated_by_a_tournament_join_the_ladder(tmp_path, stockfish_path, capsys):
    """Anchors rated once (a `chess tournament` with levels) become ladder opponents at those ratings:
    each player's MLE then uses the level's and the anchors' ratings, and level games keep their seeds."""
    import argparse
    import dataclasses

    from chess_exp.analysis import tournament as tn
    from chess_exp.experts.measure import load_anchor_ratings
    from chess_exp.experts.panel import get_panel
    from chess_exp.play.games import load_records, score_for
    from chess_exp.play.ratings import mle_elo

    tdir = tmp_path / "tournament"
    tcfg = tn.TournamentConfig(out=str(tdir), games=2, anchors=(0.9, 1.0), anchor_games=2, levels=(1,),
                               level_games=2, max_moves=12, boot=0, limit="nodes=500", experts_cache=str(tmp_path / "cache"),
                               stockfish=stockfish_path, progress=False)
    assert tn.main(argparse.Namespace(**dataclasses.asdict(tcfg))) == 0
    anchors = load_anchor_ratings(tdir / "results.json", get_panel("noisy3"))
    assert {k: v[0] for k, v in anchors.items()} == {"noisy-eps0.9": 0.9, "random": 1.0}

    base = dataclasses.replace(_config(tmp_path, stockfish_path), model=False, rating_games=2, levels=(1,),
                               mixture_temperatures=(0.0,), max_moves=12)
    plain = measure(dataclasses.replace(base, out=tmp_path / "plain"), progress=False)
    with_anchors = measure(dataclasses.replace(base, out=tmp_path / "anchored", anchor_ratings=tdir / "results.json"),
                           progress=False)
    games = load_records(tmp_path / "anchored" / "rating" / "games.jsonl")
    level_games = {g.game_id: g.sans for g in load_records(tmp_path / "plain" / "rating" / "games.jsonl")}
    assert {g.game_id: g.sans for g in games if g.tags["opponent"] == "L1"} == level_games  # same seeds
    rating_of = {"L1": 1554.0, **{k: v[1] for k, v in anchors.items()}}
    for key, row in with_anchors["players"].items():
        mine = [g for g in games if g.tags["player"] == key]
        assert row["games"] == 6 and set(row["wdl"]) == {"L1", "noisy-eps0.9", "random"}
        est = mle_elo([score_for(g, g.tags["player_colour"]) for g in mine], [rating_of[g.tags["opponent"]] for g in mine])
        assert (row["elo"], row["lo"], row["hi"]) == pytest.approx((est.elo, est.lo, est.hi), abs=1e-6)
        assert plain["players"][key]["games"] == 2

    # a results.json from another oracle is refused with the option named
    other = json.loads((tdir / "results.json").read_text())
    other["oracle"] = "nodes=999"
    (tmp_path / "other.json").write_text(json.dumps(other))
    with pytest.raises(ValueError, match="--anchor_ratings: .*oracle"):
        load_anchor_ratings(tmp_path / "other.json", get_panel("noisy3"))
    with pytest.raises(ValueError, match="--anchor_ratings: .*nodes=20000"):
        load_anchor_ratings(tdir / "results.json", get_panel("noisy3"), "nodes=20000")
    with pytest.raises(FileNotFoundError, match="--anchor_ratings"):
        load_anchor_ratings(tmp_path / "none.json", get_panel("noisy3"))
