"""Engines: finding Stockfish, limits, the emulated Skill Level, and real Stockfish games
(strength ordering, repeatability, crash and hang recovery)."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Sequence

import chess
import chess.engine
import numpy as np
import pytest

from chess_exp.play.engines import (EngineLimit, RandomPlayer, Stockfish, StockfishNotFound, StockfishPool,
                               find_stockfish, pick_skill_move)
from chess_exp.play.games import MatchConfig, ladder_specs, load_records, play_games, score_for
from chess_exp.play.players import EnginePlayer, MoveChoice, MoveRequest

FAST = EngineLimit(kind="nodes", value=2000)


# -- no engine needed ---------------------------------------------------------------------------

def test_find_stockfish_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "bin" / "stockfish"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    other = tmp_path / "sf-env"
    other.write_text("")
    monkeypatch.setenv("PATH", str(fake.parent))
    monkeypatch.delenv("STOCKFISH_PATH", raising=False)
    assert find_stockfish() == str(fake)
    monkeypatch.setenv("STOCKFISH_PATH", str(other))
    assert find_stockfish() == str(other)  # env before PATH
    assert find_stockfish(fake) == str(fake)  # config before env
    with pytest.raises(StockfishNotFound, match="apt-get install"):
        find_stockfish(tmp_path / "missing")
    monkeypatch.setenv("STOCKFISH_PATH", str(tmp_path / "missing"))
    with pytest.raises(StockfishNotFound, match="STOCKFISH_PATH"):
        find_stockfish()


def test_find_stockfish_missing_everywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("STOCKFISH_PATH", raising=False)
    real_is_file = Path.is_file
    monkeypatch.setattr(Path, "is_file", lambda self: False if str(self) == "/usr/games/stockfish"
                        else real_is_file(self))
    with pytest.raises(StockfishNotFound, match="apt-get install -y stockfish"):
        find_stockfish()


def test_engine_limit_parse_and_str() -> None:
    assert EngineLimit.parse("nodes=20000") == EngineLimit(kind="nodes", value=20000)
    assert str(EngineLimit.parse("time=0.1")) == "time=0.1"
    assert str(EngineLimit.parse("depth=8")) == "depth=8"
    assert EngineLimit.parse("nodes=500").to_chess(depth_cap=6) == chess.engine.Limit(nodes=500, depth=6)
    assert EngineLimit.parse("depth=8").to_chess(depth_cap=4).depth == 4
    for bad in ("nodes", "nodes=-1", "nodes=1.5", "speed=3", "time=abc"):
        with pytest.raises(ValueError):
            EngineLimit.parse(bad)


def _info(uci: str, cp: int) -> dict:
    return {"pv": [chess.Move.from_uci(uci)], "score": chess.engine.PovScore(chess.engine.Cp(cp), chess.WHITE)}


def test_skill_pick_is_seeded_and_weakens_with_level() -> None:
    """Stockfish's pick_best rule: level 20-like weakness 0 never leaves the best move; low levels
    sometimes take a worse one; the same generator state gives the same choice."""
    infos = [_info("e2e4", 30), _info("d2d4", 20), _info("g1f3", 0), _info("a2a3", -40)]
    picks = {lvl: [pick_skill_move(infos, lvl, np.random.default_rng(i)).uci() for i in range(300)]
             for lvl in (0, 19)}
    assert picks[0] == [pick_skill_move(infos, 0, np.random.default_rng(i)).uci() for i in range(300)]
    assert len(set(picks[0])) > 1
    assert picks[0].count("e2e4") < picks[19].count("e2e4")


def test_random_player_uniform_and_seeded() -> None:
    board = chess.Board()
    player = RandomPlayer()
    a = [player.play(board, rng=np.random.default_rng(i)) for i in range(200)]
    b = [player.play(board, rng=np.random.default_rng(i)) for i in range(200)]
    assert a == b and len(set(a)) == 20


# -- real Stockfish ------------------------------------------------------------------------------

@pytest.mark.engine
def test_stockfish_plays_legal_repeatable_moves(stockfish_path: str) -> None:
    board = chess.Board()
    with Stockfish(stockfish_path, level=1, limit=FAST) as engine:
        first = [engine.play(board, rng=np.random.default_rng(i)) for i in range(10)]
        again = [engine.play(board, rng=np.random.default_rng(i)) for i in range(10)]
        assert first == again and all(m in board.legal_moves for m in first)
        assert len(set(first)) > 1  # level 1 is weakened at random
        full = engine.play(board, rng=np.random.default_rng(0), level=20)
        assert full in board.legal_moves
    with pytest.raises(ValueError, match="level"):
        Stockfish(stockfish_path, level=21)


@pytest.mark.engine
def test_native_skill_option(stockfish_path: str) -> None:
    with Stockfish(stockfish_path, level=2, limit=FAST, skill="native") as engine:
        assert engine.play(chess.Board(), rng=np.random.default_rng(0)) in chess.Board().legal_moves


@pytest.mark.engine
def test_random_scores_below_ten_percent_against_level_5(stockfish_path: str) -> None:
    with StockfishPool(2, stockfish_path, limit=FAST) as pool:
        players = {"random": RandomPlayer(), "L5": EnginePlayer(pool, 5)}
        records = play_games(ladder_specs("random", ["L5"], 10, seed=0), players, progress=False)
    score = np.mean([score_for(r, r.tags["player_colour"]) for r in records])
    assert score < 0.10


@pytest.mark.engine
def test_level_5_beats_level_1(stockfish_path: str) -> None:
    with StockfishPool(2, stockfish_path, limit=FAST) as pool:
        players = {"L5": EnginePlayer(pool, 5), "L1": EnginePlayer(pool, 1)}
        records = play_games(ladder_specs("L5", ["L1"], 10, seed=0), players, progress=False)
    score = np.mean([score_for(r, r.tags["player_colour"]) for r in records])
    assert score > 0.5


@pytest.mark.engine
def test_node_limit_and_seed_give_identical_pgn(stockfish_path: str, tmp_path: Path) -> None:
    texts = []
    for run, (size, in_flight) in enumerate(((2, 4), (1, 2))):
        with StockfishPool(size, stockfish_path, limit=FAST) as pool:
            players = {"L3": EnginePlayer(pool, 3), "L1": EnginePlayer(pool, 1)}
            play_games(ladder_specs("L3", ["L1"], 4, seed=11), players, out_dir=tmp_path / str(run),
                       config=MatchConfig(max_moves=40, in_flight=in_flight), progress=False)
        texts.append((tmp_path / str(run) / "games.jsonl").read_text())
    assert texts[0] and sorted(texts[0].splitlines()) == sorted(texts[1].splitlines())
    with StockfishPool(2, stockfish_path, limit=FAST) as pool:
        players = {"L3": EnginePlayer(pool, 3), "L1": EnginePlayer(pool, 1)}
        play_games(ladder_specs("L3", ["L1"], 4, seed=11), players, out_dir=tmp_path / "x",
                   config=MatchConfig(max_moves=40, in_flight=4), progress=False)
    assert (tmp_path / "0" / "games.pgn").read_text() == (tmp_path / "x" / "games.pgn").read_text()


class Killer:
    """Wraps a player; before its n-th call kills every engine process of the pool (a crash)."""

    def __init__(self, inner: EnginePlayer, pool: StockfishPool, at_call: int, sig: int) -> None:
        self.inner, self.pool, self.at_call, self.sig = inner, pool, at_call, sig
        self.name = inner.name
        self.calls = 0

    def choose(self, requests: Sequence[MoveRequest]) -> list[MoveChoice]:
        self.calls += 1
        if self.calls == self.at_call:
            for engine in self.pool.engines:
                os.kill(engine.pid, self.sig)
        return self.inner.choose(requests)


@pytest.mark.engine
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSTOP])
def test_engine_crash_or_hang_mid_game_loses_no_game(stockfish_path: str, tmp_path: Path, sig: int) -> None:
    specs = ladder_specs("L2", ["L1"], 2, seed=5)
    config = MatchConfig(max_moves=30)
    with StockfishPool(1, stockfish_path, limit=FAST) as pool:
        players = {"L2": EnginePlayer(pool, 2), "L1": EnginePlayer(pool, 1)}
        clean = play_games(specs, players, config=config, progress=False)
    with StockfishPool(1, stockfish_path, limit=FAST, hang_timeout=1.0) as pool:
        players = {"L2": EnginePlayer(pool, 2), "L1": Killer(EnginePlayer(pool, 1), pool, 4, sig)}
        crashed = play_games(specs, players, config=config, out_dir=tmp_path, progress=False)
        assert pool.restarts >= 1 and pool.engines[0].events
    assert sum(r.engine_restarts for r in crashed) >= 1
    assert [r.sans for r in crashed] == [r.sans for r in clean]  # the game went on from its position
    assert sorted(r.game_id for r in load_records(tmp_path)) == sorted(s.game_id for s in specs)


@pytest.mark.engine
def test_engine_adjudication_with_real_stockfish(stockfish_path: str) -> None:
    from chess_exp.play.games import engine_adjudicator

    white_up = chess.Board("4k3/8/8/8/8/8/8/QQQQK3 w - - 0 1")
    black_up = chess.Board("qqqqk3/8/8/8/8/8/8/4K3 w - - 0 1")
    level = chess.Board()
    with StockfishPool(1, stockfish_path, limit=FAST) as pool:
        adjudicate = engine_adjudicator(pool.evaluate)
        assert adjudicate(white_up) == "1-0"
        assert adjudicate(black_up) == "0-1"
        assert adjudicate(level) == "1/2-1/2"


@pytest.mark.engine
def test_emulated_skill_matches_native_move_distribution(stockfish_path: str) -> None:
    """The repeatable Skill Level plays the same moves, as often, as Stockfish's own option.

    Native Stockfish seeds its generator from the clock, so its side is random: with 120 samples
    the total-variation distance of two equal distributions over four moves is ~0.08 (sd ~0.03);
    the bound 0.25 fails with probability well below 1e-4.
    """
    import collections

    board = chess.Board("r1bqkbnr/pppp1ppp/2n5/4p3/4P3/5N2/PPPP1PPP/RNBQKB1R w KQkq - 2 3")
    limit = EngineLimit(kind="nodes", value=3000)  # level 1 picks at depth 2, reached long before
    with Stockfish(stockfish_path, level=1, limit=limit, skill="native") as native, \
            Stockfish(stockfish_path, level=1, limit=limit) as emulated:
        a = collections.Counter(native.play(board, rng=np.random.default_rng(0)) for _ in range(120))
        rng = np.random.default_rng(1)
        b = collections.Counter(emulated.play(board, rng=rng) for _ in range(120))
    common = set(a) & set(b)
    assert len(common) >= 3
    tv = 0.5 * sum(abs(a[m] - b[m]) for m in set(a) | set(b)) / 120
    assert tv < 0.25
