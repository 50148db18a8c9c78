"""``transcendence chess tournament``: the schedule, stable game seeds, resuming, the joint Elo on
real games with real Stockfish, where the model's games leave its data, and bad input."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math

import pytest

from chess_exp.analysis import tournament as tn
from chess_exp.play.games import GameRecord

EPS = {"noisy-eps0.1": 0.1, "noisy-eps0.2": 0.2, "noisy-eps0.3": 0.3}


def _cfg(**kw) -> tn.TournamentConfig:
    return tn.TournamentConfig(**{"out": "unused", "checkpoint": "ckpt", **kw})


def test_the_schedule_pairs_whom_the_docs_say() -> None:
    cfg = _cfg(games=6, h2h_games=50, anchor_games=4, level_games=2, anchors=(0.5, 0.9, 1.0), levels=(1, 3))
    r = tn.roster(cfg, EPS)
    assert r.best == "noisy-eps0.1" and r.anchors == ("noisy-eps0.5", "noisy-eps0.9", "random")
    assert r.chain == ("noisy-eps0.3", "noisy-eps0.5", "noisy-eps0.9", "random")
    pairs = tn.schedule(cfg, r)
    core = [*EPS, "mixture@0", "mixture@1", "model@0", "model@0.5", "model@1"]
    for i, a in enumerate(core):
        for b in core[i + 1:]:
            n = pairs.get((a, b), pairs.get((b, a)))
            assert n == (50 if {a, b} & {"model@0", "model@0.5", "model@1"} and "noisy-eps0.1" in {a, b} else 6)
    for m in ("model@0", "model@0.5", "model@1"):
        for anchor in r.anchors:
            assert pairs[(m, anchor)] == 4
    for a, b in (("noisy-eps0.3", "noisy-eps0.5"), ("noisy-eps0.9", "random"), ("noisy-eps0.3", "noisy-eps0.9"),
                 ("noisy-eps0.5", "random")):  # neighbours and second neighbours in the chain
        assert pairs[(a, b)] == 4
    assert ("noisy-eps0.3", "random") not in pairs
    for level in ("L1", "L3"):
        for p in (*EPS, "mixture@0", "noisy-eps0.5", "noisy-eps0.9"):
            assert pairs[(p, level)] == 2
        assert (("random", level) not in pairs) and (("mixture@1", level) not in pairs)
    assert all(a != b for a, b in pairs) and len({frozenset(p) for p in pairs}) == len(pairs)


def test_anchor_at_a_panel_experts_rate_is_not_a_second_player_and_best_can_be_chosen() -> None:
    r = tn.roster(_cfg(anchors=(0.3, 1.0), best="noisy-eps0.2"), EPS)
    assert r.anchors == ("random",) and r.best == "noisy-eps0.2"
    with pytest.raises(ValueError, match="--best"):
        tn.roster(_cfg(best="nobody"), EPS)


def test_game_seeds_and_colours_do_not_depend_on_the_rest_of_the_schedule() -> None:
    small = tn.game_specs({("a", "b"): 3}, seed=5)
    big = tn.game_specs({("c", "d"): 2, ("a", "b"): 6, ("a", "c"): 1}, seed=5)
    by_id = {s.game_id: s for s in big}
    for s in small:
        assert by_id[s.game_id] == s
    assert [s.white for s in small] == ["a", "b", "a"]
    assert len({s.seed for s in big}) == len(big)
    assert tn.game_specs({("a", "b"): 1}, seed=6)[0].seed != small[0].seed


def _rec(gid: str, white: str, black: str, result: str, sans: list[str]) -> GameRecord:
    return GameRecord(game_id=gid, white=white, black=black, result=result, termination="checkmate", sans=sans,
                      illegal_attempts={"white": 0, "black": 0}, engine_restarts=0, seed=0, headers={},
                      tags={"white_key": white, "black_key": black})


def test_pair_table_and_head_to_head_count_from_each_side() -> None:
    games = [("a", "b", 1.0), ("b", "a", 0.5), ("b", "a", 1.0), ("c", "a", 0.0)]
    rows = {(r["a"], r["b"]): r for r in tn.pair_table(games)}
    assert rows[("a", "b")] == {"a": "a", "b": "b", "games": 3, "wins": 1, "draws": 1, "losses": 1, "score": 0.5}
    assert rows[("c", "a")]["losses"] == 1
    recs = [_rec("1", "model@0", "e", "1-0", ["e4"]), _rec("2", "e", "model@0", "1-0", ["e4", "e5"]),
            _rec("3", "e", "model@0", "1/2-1/2", ["d4"]), _rec("4", "x", "e", "1-0", ["d4"])]
    (h,) = tn.head_to_head_rows(recs, ["model@0"], "e", seed=0, n_boot=500)
    assert (h["games"], h["wins"], h["draws"], h["losses"]) == (3, 1, 1, 1)
    assert h["score"] == 0.5 and abs(h["elo_diff"]) < 1e-6 and h["score_ci_low"] < 0.5 < h["score_ci_high"]


def test_where_games_leave_counts_plies_against_the_training_games(tmp_path) -> None:
    train = tmp_path / "train.pgn"
    text = ""
    for _ in range(10):  # 10 games of 1. e4 e5 2. Nf3
        text += '[Event "t"]\n[Result "*"]\n\n1. e4 e5 2. Nf3 *\n\n'
    train.write_text(text)
    recs = [_rec("1", "model@0", "e", "0-1", ["e4", "e5", "Nf3", "Nc6", "Bc4"]),   # leaves at ply 3
            _rec("2", "e", "model@0", "1/2-1/2", ["d4", "d5"])]                    # leaves at ply 1
    (w,) = tn.where_games_leave(recs, ["model@0"], "e", str(train), None)
    assert w["games"] == 2 and w["first_unvisited_ply_median"] == 2.0
    # model moves: game 1 plies 0, 2, 4 (visited 10, 10, 0 times); game 2 ply 1 (0): 2 of 4 at >= 10
    assert w["model_moves_at_visited_ge_10"] == 0.5
    assert w["lost_games"] == 1 and w["lost_game_plies_median"] == 5.0


def _args(out, **kw) -> argparse.Namespace:
    cfg = tn.TournamentConfig(out=str(out), **kw)
    return argparse.Namespace(**dataclasses.asdict(cfg))


@pytest.mark.engine
def test_real_games_resume_and_rate_every_player(stockfish_path, tmp_path, capsys, random_pgn) -> None:
    from chess_exp.model import board as bp

    pgn = tmp_path / "train.pgn"
    random_pgn(pgn, 12, seed=0, plies=24)
    cfg = bp.TrainConfig(games=str(pgn), model=bp.BoardPolicyConfig(hidden=16, layers=1), batch=32, epochs=1,
                         warmup=2, threads=1, log_every=10 ** 9, ckpt_every=10 ** 6)
    ckpt = bp.train(cfg, tmp_path / "board", log=lambda line: None)
    out = tmp_path / "t"
    common = dict(checkpoint=str(ckpt), model_temperatures=(0.0, 1.0), anchors=(1.0,), anchor_games=2,
                  levels=(1,), level_games=2, max_moves=12, boot=200, experts_cache=str(tmp_path / "cache"),
                  stockfish=stockfish_path, visits=str(pgn), progress=False)
    assert tn.main(_args(out, games=2, h2h_games=4, **common)) == 0
    first = (out / "games" / "games.jsonl").read_text().splitlines()
    res = json.loads((out / "results.json").read_text())
    n1 = sum(tn.schedule(tn.TournamentConfig(out="x", games=2, h2h_games=4, **common),
                         tn.roster(tn.TournamentConfig(out="x", **common), EPS)).values())
    assert len(first) == res["n_games"] == n1
    players = {r["player"]: r for r in res["ratings"]}
    assert set(players) == {*EPS, "mixture@0", "mixture@1", "model@0", "model@1", "random", "L1"}
    assert players["noisy-eps0.1"]["elo"] == 0.0 and players["L1"]["elo_abs"] == 1554.0
    for p in players.values():
        assert p["games"] == sum(x["games"] for x in res["pairs"] if p["player"] in (x["a"], x["b"]))
    assert {h["model"]: h["games"] for h in res["head_to_head"]} == {"model@0": 4, "model@1": 4}
    assert [w["games"] for w in res["where"]] == [4, 4]
    assert (out / "ratings.png").stat().st_size > 0 and "| model@0 |" in (out / "results.md").read_text()
    # more games per pairing: every game already played is kept as it was, only new ones are added
    assert tn.main(_args(out, games=3, h2h_games=4, **common)) == 0
    second = (out / "games" / "games.jsonl").read_text().splitlines()
    assert second[:len(first)] == first and len(second) > len(first)
    # a rerun with the same options plays nothing
    assert tn.main(_args(out, games=3, h2h_games=4, **common)) == 0
    assert (out / "games" / "games.jsonl").read_text().splitlines() == second
    # games of another seed are refused, the folder untouched
    capsys.readouterr()
    assert tn.main(_args(out, games=3, h2h_games=4, **{**common, "seed": 1})) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --out:") and "--seed" in err and "\n" not in err
    assert (out / "games" / "games.jsonl").read_text().splitlines() == second


@pytest.mark.parametrize("kw, needle", [
    (dict(levels=(9,)), "--levels"), (dict(anchors=(1.5,)), "--anchors"), (dict(games=-1), "--games"),
    (dict(boot=10), "--boot"), (dict(checkpoint="nowhere.pt"), "--checkpoint"),
    (dict(visits="x.pgn"), "--visits")])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, kw, needle) -> None:
    out = tmp_path / "t"
    assert tn.main(_args(out, **kw)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {needle}") and "\n" not in err
    assert not out.exists()


def test_separated_players_show_as_infinite_in_the_table() -> None:
    r = tn.roster(_cfg(checkpoint=None, anchors=(1.0,), levels=()), EPS)
    games = [("noisy-eps0.1", "noisy-eps0.2", 0.5), ("noisy-eps0.2", "noisy-eps0.3", 1.0),
             ("noisy-eps0.3", "noisy-eps0.1", 0.5), ("noisy-eps0.3", "random", 1.0),
             ("mixture@0", "noisy-eps0.1", 0.5), ("mixture@1", "mixture@0", 0.5)]
    rows = {x["player"]: x for x in tn.rate(games, r, n_boot=0, seed=0)}
    assert rows["random"]["elo"] == -math.inf and rows["noisy-eps0.1"]["elo"] == 0.0
    md = tn.results_markdown({"panel": "p", "best": r.best, "n_games": 6, "boot": 0, "levels": {},
                              "ratings": list(rows.values()), "head_to_head": [], "where": [], "pairs": []})
    assert "| random | anchor | 1 | 0.000 | -inf |" in md


@pytest.mark.engine
def test_a_transcript_checkpoint_plays_as_the_model(stockfish_path, tmp_path, tiny_checkpoint) -> None:
    """A transcript GPT (not a board policy) is detected and plays at each temperature; its argmax
    games are the same on a rerun in another folder (seeded, exact policy)."""
    ckpt = tiny_checkpoint(tmp_path / "gpt" / "ckpt.pt")
    kw = dict(checkpoint=str(ckpt), model_temperatures=(0.0, 1.0), games=0, h2h_games=2, anchors=(),
              levels=(), max_moves=8, boot=0, experts_cache=str(tmp_path / "cache"), stockfish=stockfish_path,
              progress=False)
    runs = []
    for name in ("a", "b"):
        assert tn.main(_args(tmp_path / name, **kw)) == 0
        runs.append(json.loads((tmp_path / name / "results.json").read_text()))
        assert {h["model"]: h["games"] for h in runs[-1]["head_to_head"]} == {"model@0": 2, "model@1": 2}
    sans = [[json.loads(line)["sans"] for line in (tmp_path / n / "games" / "games.jsonl").read_text().splitlines()]
            for n in ("a", "b")]
    assert sans[0] == sans[1] and all(len(s) > 0 for s in sans[0])
