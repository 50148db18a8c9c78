"""Engines: finding Stockfish, limits, the emulated Skill Level, and real Stockfish games
(strength ordering, repeatability, crash and hang recovery)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Sequence
from pathlib import Path

import chess
import chess.engine
import numpy as np
import pytest

from chess_exp.play.engines import (
    DEFAULT_NODES,
    EngineLimit,
    Stockfish,
    StockfishNotFound,
    StockfishPool,
    find_stockfish,
    pick_skill_move,
    position_key,
)
from chess_exp.play.games import MatchConfig, ladder_specs, load_records, play_games, score_for
from chess_exp.play.players import EnginePlayer, MoveChoice, MoveRequest, RandomPlayer

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
    # python-chess limits are accepted wherever a limit is; the text form round-trips
    assert EngineLimit.coerce(chess.engine.Limit(nodes=500)) == EngineLimit(kind="nodes", value=500)
    assert EngineLimit.coerce(chess.engine.Limit(time=0.1)).to_chess() == chess.engine.Limit(time=0.1)
    assert EngineLimit.coerce("depth=8") == EngineLimit.parse(str(EngineLimit.parse("depth=8")))
    for bad_limit in (chess.engine.Limit(nodes=5, depth=3), chess.engine.Limit(), 5):
        with pytest.raises(ValueError, match="limit"):
            EngineLimit.coerce(bad_limit)  # type: ignore[arg-type]


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


def _state(pid: int) -> str:
    """The process state letter from /proc (R, S, T stopped, Z zombie), "gone" when it has exited."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return "gone"


def signal_and_wait(pid: int, sig: int, *, deadline: float = 60.0) -> None:
    """Send ``sig`` and wait for its effect (stopped, or dead) instead of sleeping a fixed time."""
    os.kill(pid, sig)
    wanted = {"T", "t"} if sig == signal.SIGSTOP else {"Z", "X", "gone"}
    end = time.monotonic() + deadline
    while _state(pid) not in wanted:
        assert time.monotonic() < end, f"process {pid} never reached {wanted} after signal {sig}"
        time.sleep(0.01)


class Killer:
    """Wraps a player; before its n-th call kills (or stops) every engine process of the pool and
    waits until the signal has taken effect."""

    def __init__(self, inner: EnginePlayer, pool: StockfishPool, at_call: int, sig: int) -> None:
        self.inner, self.pool, self.at_call, self.sig = inner, pool, at_call, sig
        self.name = inner.name
        self.calls = 0

    def choose(self, requests: Sequence[MoveRequest]) -> list[MoveChoice]:
        self.calls += 1
        if self.calls == self.at_call:
            for engine in self.pool.engines:
                signal_and_wait(engine.pid, self.sig)
        return self.inner.choose(requests)


@pytest.mark.engine
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSTOP])
def test_engine_crash_or_hang_mid_game_loses_no_game(stockfish_path: str, tmp_path: Path, sig: int) -> None:
    specs = ladder_specs("L2", ["L1"], 2, seed=5)
    config = MatchConfig(max_moves=30)
    with StockfishPool(1, stockfish_path, limit=FAST) as pool:
        players = {"L2": EnginePlayer(pool, 2), "L1": EnginePlayer(pool, 1)}
        clean = play_games(specs, players, config=config, progress=False)
    # a short hang timeout (the stopped engine is detected after it), but a generous start timeout and
    # restart budget: a loaded machine may make a normal search or a restart slow, never a failure
    with StockfishPool(1, stockfish_path, limit=FAST, hang_timeout=2.0, max_restarts=20) as pool:
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


# -- one Stockfish layer: the caches in front of it ------------------------------------------------

def test_position_key_is_one_function() -> None:
    from chess_exp.analysis import reward
    from chess_exp.experts import oracle

    assert oracle.position_key is position_key and reward.position_key is position_key
    board = chess.Board("r1bqk2r/1pppbppp/p1n2n2/4p3/B3P3/5N2/PPPP1PPP/RNBQR1K1 b kq - 5 6")
    assert position_key(board) == "r1bqk2r/1pppbppp/p1n2n2/4p3/B3P3/5N2/PPPP1PPP/RNBQR1K1 b kq - 5"
    later = chess.Board(board.fen().replace(" 5 6", " 5 40"))
    assert position_key(later) == position_key(board)  # the fullmove number never changes a search
    assert position_key(chess.Board(board.fen().replace(" 5 6", " 0 6"))) != position_key(board)
    # an en-passant square enters the key only when the capture is legal
    no_capture = chess.Board("rnbqkbnr/pppppppp/8/8/4P3/8/PPPP1PPP/RNBQKBNR b KQkq e3 0 1")
    assert position_key(no_capture).split()[3] == "-"
    capture = chess.Board("rnbqkbnr/ppp1pppp/8/8/3pP3/8/PPPP1PPP/RNBQKBNR b KQkq e3 0 3")
    assert position_key(capture).split()[3] == "e3"


def test_default_node_table_is_the_one_source() -> None:
    from chess_exp.analysis.reward import DEFAULT_NODES as reward_nodes
    from chess_exp.experts.oracle import EngineSpec

    assert DEFAULT_NODES == {"play": 20_000, "oracle": 200, "reward": 100_000}
    assert EngineLimit() == EngineLimit(kind="nodes", value=20_000)
    assert EngineSpec().nodes == 200 and EngineSpec().tag == "nodes=200" and reward_nodes == 100_000
    by_depth = EngineSpec(nodes=None, depth=6)
    assert by_depth.tag == "depth=6" and by_depth.limit() == chess.engine.Limit(depth=6)


def test_reward_cache_ignores_the_old_key_format(tmp_path: Path) -> None:
    import sqlite3

    from chess_exp.analysis.reward import RewardCache, default_cache_path

    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)  # a format-1 cache: epd keys in table "rewards"
    conn.execute("CREATE TABLE rewards (key TEXT, lim TEXT, value TEXT, PRIMARY KEY (key, lim))")
    conn.execute("INSERT INTO rewards VALUES (?, ?, ?)", (chess.Board().epd(), "nodes=100000", "[]"))
    conn.commit()
    conn.close()
    cache = RewardCache(path)
    assert len(cache) == 0 and cache.get(chess.Board().epd(), "nodes=100000") is None
    cache.close()
    assert ".v2." in default_cache_path().name or os.environ.get("TRANSCENDENCE_REWARD_CACHE")


@pytest.mark.engine
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSTOP])
def test_oracle_survives_an_engine_crash_or_hang(stockfish_path: str, tmp_path: Path, sig: int) -> None:
    from chess_exp.experts.oracle import EngineSpec, Oracle

    boards = [chess.Board(), chess.Board("r1bqk2r/1pppbppp/p1n2n2/4p3/B3P3/5N2/PPPP1PPP/RNBQR1K1 b kq - 5 6"),
              chess.Board("8/5pk1/6p1/3R4/8/6P1/r4PK1/8 w - - 0 40")]
    with Oracle(EngineSpec(nodes=50), stockfish=stockfish_path) as clean:
        expected = [clean.best_move(b) for b in boards]
    with Oracle(EngineSpec(nodes=50), stockfish=stockfish_path, hang_timeout=2.0) as oracle:
        assert oracle.best_move(boards[0]) == expected[0]
        engine = oracle._open()
        signal_and_wait(engine.pid, sig)
        assert [oracle.best_move(b) for b in boards[1:]] == expected[1:]
        assert oracle.restarts >= 1 and engine.events  # >= : a very loaded machine may add a slow search


@pytest.mark.engine
def test_reward_oracle_survives_an_engine_crash(stockfish_path: str, tmp_path: Path) -> None:
    from chess_exp.analysis.reward import RewardOracle

    board = chess.Board("6k1/5ppp/8/8/8/8/5PPP/R5K1 w - - 0 1")
    with RewardOracle(stockfish_path, nodes=2000, cache=tmp_path / "a.sqlite") as clean:
        expected = clean.move_rewards(board)
    with RewardOracle(stockfish_path, nodes=2000, cache=tmp_path / "b.sqlite") as oracle:
        oracle.move_rewards(chess.Board())  # starts the engine
        (engine,) = oracle.pool.engines
        signal_and_wait(engine.pid, signal.SIGKILL)
        assert oracle.move_rewards(board) == expected  # replayed on a fresh engine: the same values
        assert oracle.restarts == 1
