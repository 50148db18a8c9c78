"""Tests for chess_exp.analysis.favor: exact favor tables, sampled estimator, end-to-end run."""

from __future__ import annotations

import json

import chess
import numpy as np
import pytest

from chess_exp.analysis import favor
from chess_exp.play.players import ModelPlayer

GAMES = [
    ("e4 e5 Nf3 Nc6 Bb5 a6 Ba4 Nf6 O-O Be7", 0.001, 1, "white"),
    ("d4 d5 c4 e6 Nc3 Nf6 Bg5 Be7", 0.001, 1, "black"),
    ("d4 Nf6 c4 g6", 1.0, 1, "white"),  # another temperature: not used
    ("e4 c5 Nf3 d6", 0.001, 3, "white"),  # another level: not used
]


def _records():
    return [{"game_id": f"g{i}", "white": "w", "black": "b", "result": "1/2-1/2", "termination": "move_limit",
             "sans": s.split(), "illegal_attempts": {"white": 0, "black": 0}, "engine_restarts": 0,
             "seed": [0, i], "headers": {}, "tags": {"temperature": t, "level": lv, "model_colour": c}}
            for i, (s, t, lv, c) in enumerate(GAMES)]


def test_model_states_selects_the_model_side():
    states = favor.model_states(_records(), game_temperature=0.001, level=1, n_games=10)
    assert [(s.game, s.ply) for s in states] == [(0, 0), (0, 2), (0, 4), (0, 6), (0, 8), (1, 1), (1, 3), (1, 5), (1, 7)]
    assert all(s.board.turn == (chess.WHITE if s.game == 0 else chess.BLACK) for s in states)
    assert len(favor.model_states(_records(), game_temperature=0.001, level=1, n_games=1)) == 5


def test_favor_tables_against_brute_force(tokenizer, tiny_gpt, fake_oracle):
    tok = tokenizer("move")
    model = tiny_gpt("move")
    states = favor.model_states(_records(), game_temperature=0.001, level=1, n_games=10)
    cfg = favor.FavorConfig(temperatures=(0.0, 0.75, 1.0), baseline=1.0, batch=4)
    arrays, tables = favor.compute_favor(model, tok, states, fake_oracle.ranked, cfg)
    dists = ModelPlayer(model, tok, policy="exact").move_distributions([s.board for s in states],
                                                                      [s.sans for s in states])
    for x, (_s, (moves, p), ranked) in enumerate(zip(states, dists, fake_oracle.ranked([s.board for s in states]))):
        r = dict(ranked)
        rv = np.array([r[m] for m in moves])
        # tau = 1: the plain expectation; tau = 0: the reward of the model's most likely move
        assert tables["expected"][2, x] == pytest.approx(float(p @ rv))
        assert tables["expected"][0, x] == pytest.approx(rv[np.argmax(p)])
        q = p ** (1 / 0.75)
        q /= q.sum()
        assert tables["favor"][1, x] == pytest.approx(float(q @ rv - p @ rv))
        best = ranked[0][0]
        assert tables["topk"][0, x, 0] == pytest.approx(float(moves[np.argmax(p)] == best))
        top5 = {m for m, _ in ranked[:5]}
        assert tables["topk"][2, x, 2] == pytest.approx(sum(pi for m, pi in zip(moves, p) if m in top5))
    assert np.all(tables["favor"][2] == 0)  # the baseline against itself


def test_sampled_estimator_is_unbiased():
    """Mean of the sampled estimate over many draws equals the exact expectation (Monte Carlo)."""
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(6), size=5)
    probs[:, -1] = 0.0  # a padded slot is never drawn
    probs /= probs.sum(1, keepdims=True)
    reward = rng.random((5, 6))
    reward[:, -1] = 10.0
    exact = (probs * reward).sum(1)
    est = favor.sampled_rewards(probs[None], reward, 20_000, rng=np.random.default_rng(1))[0]
    se = np.sqrt(((reward - exact[:, None]) ** 2 * probs).sum(1) / 20_000)
    assert np.all(np.abs(est - exact) < 4 * se)


@pytest.mark.engine
def test_run_favor_end_to_end(stockfish_path, tmp_path, monkeypatch, tiny_checkpoint):
    monkeypatch.setenv("STOCKFISH_PATH", stockfish_path)
    ckpt = tiny_checkpoint(tmp_path / "ckpt.pt", "move", step=0)
    (tmp_path / "games.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _records()))
    cfg = favor.FavorConfig(checkpoint=str(ckpt), games=str(tmp_path / "games.jsonl"), nodes=2000,
                            cache=str(tmp_path / "cache.sqlite"), samples=20, n_boot=100,
                            temperatures=(0.001, 0.75, 1.0))
    res = favor.run_favor(cfg, tmp_path / "out", progress=False)
    assert res["n_states"] == 9 and res["n_games"] == 2
    rows = {r["temperature"]: r for r in res["table1"]}
    assert rows[1.0]["favor_vs_baseline"]["mean"] == 0.0
    for r in rows.values():
        assert 0.0 <= r["expected_score"]["mean"] <= 1.0
        assert r["top1"] <= r["top3"] <= r["top5"] <= 1.0
    npz = np.load(tmp_path / "out" / "states.npz")
    assert npz["favor"].shape == (3, 9) and npz["sampled_favor"].shape == (2, 9)
    assert (tmp_path / "out" / "table1.md").read_text().startswith("| τ |")


def test_summary_intervals_follow_ci_method(tmp_path, tokenizer, tiny_gpt, fake_oracle):
    tok = tokenizer("move")
    model = tiny_gpt("move")
    states = favor.model_states(_records(), game_temperature=0.001, level=1, n_games=10)
    tables = {}
    for method in ("percentile", "BCa"):
        cfg = favor.FavorConfig(temperatures=(0.0, 1.0), baseline=1.0, batch=4, n_boot=500, ci_method=method)
        arrays, t = favor.compute_favor(model, tok, states, fake_oracle.ranked, cfg)
        tables[method] = favor.summarize_favor(arrays, t, cfg, rng=np.random.default_rng(0))["table1"][0]
    p, b = tables["percentile"]["favor_vs_baseline"], tables["BCa"]["favor_vs_baseline"]
    assert p["mean"] == b["mean"] and (p["lo"], p["hi"]) != (b["lo"], b["hi"])
    for iv in (p, b, tables["BCa"]["favor_vs_baseline_by_game"]):
        assert iv["lo"] <= iv["mean"] <= iv["hi"]
    with pytest.raises(ValueError, match="ci_method"):
        favor.run_favor(favor.FavorConfig(ci_method="normal"), tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
