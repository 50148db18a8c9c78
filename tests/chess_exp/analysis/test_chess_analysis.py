"""Tests for chess_exp.analysis: reward conversion, bootstrap, entropy, majority vote, diversity."""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict

import chess
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chess_exp.analysis import diversity, majority
from chess_exp.analysis.games_io import Game as SimpleGame
from chess_exp.analysis.games_io import iter_games
from chess_exp.analysis.reward import RewardCache, RewardOracle, eval_to_reward, terminal_reward
from chess_exp.analysis.stats import bootstrap_mean, entropy_bits, normalized_entropy, top_share

MATE_IN_ONE = "6k1/5ppp/8/8/8/8/5PPP/R5K1 w - - 0 1"  # Ra8# (back-rank mate)


# --- reward conversion -------------------------------------------------------------------------

def test_eval_conversion_known_values():
    assert eval_to_reward("0.00", chess.WHITE) == pytest.approx(0.5)
    assert eval_to_reward("#1", chess.WHITE) == pytest.approx(1.0, abs=2e-3)
    assert eval_to_reward("#-1", chess.WHITE) == pytest.approx(0.0, abs=2e-3)
    assert eval_to_reward("#-3", chess.BLACK) == pytest.approx(1.0, abs=2e-3)
    # lichess win% formula: 50 + 50 * (2 / (1 + exp(-0.00368208 cp)) - 1), with draws split evenly
    assert eval_to_reward("1.00", chess.WHITE) == pytest.approx(1 / (1 + math.exp(-0.368208)), abs=2e-3)
    assert eval_to_reward("1.00", chess.WHITE) > eval_to_reward("0.50", chess.WHITE) > 0.5


@given(st.integers(min_value=-3000, max_value=3000))
def test_eval_conversion_is_antisymmetric(cp):
    """For any eval, White's and Black's expected scores sum to 1 and increase with White's eval."""
    text = f"{cp / 100:.2f}"
    w, b = eval_to_reward(text, chess.WHITE), eval_to_reward(text, chess.BLACK)
    assert w + b == pytest.approx(1.0, abs=1e-9)
    assert eval_to_reward(f"{(cp + 50) / 100:.2f}", chess.WHITE) >= w


def test_terminal_reward():
    board = chess.Board(MATE_IN_ONE)
    board.push_san("Ra8#")
    assert terminal_reward(board, chess.WHITE) == 1.0
    assert terminal_reward(board, chess.BLACK) == 0.0
    stalemate = chess.Board("7k/5Q2/6K1/8/8/8/8/8 b - - 0 1")
    assert terminal_reward(stalemate, chess.WHITE) == 0.5
    assert terminal_reward(chess.Board(), chess.WHITE) is None


@pytest.mark.engine
def test_stockfish_reward_mate_in_one_and_cache(stockfish_path, tmp_path):
    board = chess.Board(MATE_IN_ONE)
    cache = tmp_path / "rewards.sqlite"
    with RewardOracle(stockfish_path, nodes=20_000, cache=cache) as oracle:
        rewards = oracle.move_rewards(board)
        assert set(rewards) == set(board.legal_moves)  # multipv covers every legal move
        mate = board.parse_san("Ra8#")
        assert rewards[mate] == pytest.approx(1.0, abs=2e-3)
        assert max(rewards, key=rewards.get) == mate
        assert all(0.0 <= r <= 1.0 for r in rewards.values())
        # a rook move that walks into nothing is worse than mating
        assert rewards[board.parse_san("Rb1")] < rewards[mate]
        ranked = oracle.ranked(board)
        assert ranked[0][0] == mate and [r for _, r in ranked] == sorted(rewards.values(), reverse=True)
        assert oracle.n_analysed == 1 and oracle.n_cached >= 1  # analysed once, then cached
    assert len(RewardCache(cache)) == 1
    with RewardOracle(stockfish_path, nodes=20_000, cache=cache) as again:  # a new process reads the disk cache
        assert again.move_rewards(board) == rewards
        assert again.n_analysed == 0


@pytest.mark.engine
def test_stockfish_reward_black_to_move(stockfish_path, tmp_path):
    """Rewards are for the mover: Black mating gets ~1 as well."""
    board = chess.Board(chess.Board(MATE_IN_ONE).mirror().fen())
    with RewardOracle(stockfish_path, nodes=20_000, cache=tmp_path / "c.sqlite") as oracle:
        rewards = oracle.move_rewards(board)
    assert rewards[board.parse_san("Ra1#")] == pytest.approx(1.0, abs=2e-3)


# --- bootstrap -----------------------------------------------------------------------------------

def test_bootstrap_matches_normal_closed_form():
    """The percentile-bootstrap interval of a mean is close to mean ± 1.96 σ/√n (σ with ddof=0)."""
    rng = np.random.default_rng(1)
    x = rng.normal(0.3, 2.0, size=400)
    iv = bootstrap_mean(x, rng=np.random.default_rng(2), n_boot=20_000)
    half = 1.959964 * x.std() / math.sqrt(x.size)
    assert iv.mean == pytest.approx(x.mean())
    assert iv.lo == pytest.approx(x.mean() - half, abs=0.06 * half)
    assert iv.hi == pytest.approx(x.mean() + half, abs=0.06 * half)


def test_bootstrap_bernoulli_closed_form():
    """Bernoulli(p̂) sample: bootstrap sd of the mean = sqrt(p̂(1-p̂)/n)."""
    x = np.array([1.0] * 1200 + [0.0] * 2800)
    iv = bootstrap_mean(x, rng=np.random.default_rng(0), n_boot=10_000, level=0.6827)
    sd = math.sqrt(0.3 * 0.7 / x.size)
    assert (iv.hi - iv.lo) / 2 == pytest.approx(sd, rel=0.08)


def test_bootstrap_weights_and_degenerate():
    v = np.array([1.0, 2.0, 4.0])
    w = np.array([1.0, 2.0, 1.0])
    assert bootstrap_mean(v, rng=np.random.default_rng(0), weights=w).mean == pytest.approx(9 / 4)
    const = bootstrap_mean(np.full(10, 0.7), rng=np.random.default_rng(0))
    assert const.lo == pytest.approx(0.7) and const.hi == pytest.approx(0.7)
    with pytest.raises(ValueError, match="level"):
        bootstrap_mean(v, rng=np.random.default_rng(0), level=1.5)


def test_top_share():
    v = np.array([10.0] + [0.0] * 98 + [-0.0])
    assert top_share(v)["top_1pct"] == 1.0
    v = np.arange(1, 101, dtype=float)
    s = top_share(v, (0.01, 0.1))
    assert s["top_1pct"] == pytest.approx(100 / 5050)
    assert s["top_10pct"] == pytest.approx(sum(range(91, 101)) / 5050)


# --- entropy -------------------------------------------------------------------------------------

def test_entropy_hand_made_table():
    counts = np.array([2, 1, 1, 0])
    assert entropy_bits(counts) == pytest.approx(1.5)
    assert normalized_entropy(counts, 3) == pytest.approx(1.5 / math.log2(3))  # observed moves
    assert normalized_entropy(counts, 20) == pytest.approx(1.5 / math.log2(20))  # legal moves
    assert normalized_entropy(np.array([7]), 1) == 0.0  # the paper's code: one observed move -> 0
    assert normalized_entropy(np.array([7]), 20) == 0.0
    assert normalized_entropy(np.array([5, 5, 5, 5]), 4) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="n_outcomes"):
        normalized_entropy(counts, 2)


def _games(lines: list[tuple[int, int, str]]) -> list[SimpleGame]:
    return [SimpleGame(game_id=str(i), white_elo=w, black_elo=b, result="*", sans=tuple(m.split()))
            for i, (w, b, m) in enumerate(lines)]


def test_diversity_on_hand_made_games():
    games = _games([(900, 950, "e4 e5"), (900, 950, "e4 c5"), (990, 900, "e4 e5"), (1200, 900, "d4 d5"),
                    (1400, 1450, "d4 Nf6"), (1600, 900, "c4")])  # the last game is outside every cap
    table = diversity.collect_openings(games, (1000, 1300, 1500), max_ply=1)
    assert table.game_level.tolist() == [0, 0, 0, 1, 2]
    start = table.keys.index(chess.Board().epd())
    assert table.n_legal[start] == 20
    # cap 1000: the start position was seen 3 times, all e4 -> entropy 0
    rows = np.flatnonzero(table.level <= 0)
    by_fen = {x["fen"]: x for x in diversity.state_entropies(table, rows, threshold=1)}
    assert by_fen[chess.Board().epd()]["h_legal"] == 0.0
    after_e4 = by_fen[table.keys[table.state[1]]]  # e5, c5, e5
    h = -(2 / 3) * math.log2(2 / 3) - (1 / 3) * math.log2(1 / 3)
    assert after_e4["visits"] == 3 and after_e4["n_observed"] == 2 and after_e4["n_legal"] == 20
    assert after_e4["h_observed"] == pytest.approx(h) and after_e4["h_legal"] == pytest.approx(h / math.log2(20))
    # cap 1500: start position e4 x3, d4 x2
    rows = np.flatnonzero(table.level <= 2)
    start_state = [x for x in diversity.state_entropies(table, rows, threshold=4) if x["fen"] == chess.Board().epd()]
    h = -(0.6 * math.log2(0.6) + 0.4 * math.log2(0.4))
    assert start_state[0]["h_observed"] == pytest.approx(h)
    assert diversity.state_entropies(table, rows, threshold=5) == []  # "more than" the threshold


# --- majority vote -------------------------------------------------------------------------------

def test_majority_state_table_hand_made():
    """Two states; rewards and counts by hand; argmax ties are averaged."""
    t = majority.PlyTable(keys=["x0", "x1"],
                          state=np.array([0, 0, 0, 0, 1, 1]), move=np.array([1, 1, 1, 2, 5, 6], np.int32),
                          level=np.zeros(6, np.int8), ply=np.zeros(6, np.int16),
                          reward=np.array([0.6, 0.6, 0.6, 0.2, 0.9, 0.1]), source=np.zeros(6, np.int8),
                          games_per_level=[6])
    states = {s["fen"]: s for s in majority.state_table(t, np.arange(6))}
    assert states["x0"]["r_argmax"] == pytest.approx(0.6)
    assert states["x0"]["r_mixture"] == pytest.approx(0.75 * 0.6 + 0.25 * 0.2)
    assert states["x0"]["favor"] == pytest.approx(0.6 - 0.5)
    assert states["x1"]["n_tied_argmax"] == 2 and states["x1"]["favor"] == pytest.approx(0.0)
    assert states["x1"]["r_best_observed"] == pytest.approx(0.9)


@pytest.mark.data
def test_majority_on_real_slice(shared_data_dir, tmp_path):
    """On the first 700 games: state_table agrees with a brute-force count, rewards are the evals."""
    games = list(iter_games(shared_data_dir, keep_evals=True, max_games=700))
    table = majority.collect_plies(games, (1500,))
    rows = majority._common_rows(table, 0, 20)
    assert rows.size > 0 and not np.isnan(table.reward[rows]).any()
    assert (table.source[rows] == majority.SRC_EVAL).all()  # common states are openings: evals exist
    states = majority.state_table(table, rows)
    # brute force from the games themselves
    moves: dict[str, Counter] = defaultdict(Counter)
    rew: dict[tuple[str, str], list[float]] = defaultdict(list)
    for g in games:
        if max(g.white_elo, g.black_elo) > 1500:
            continue
        board = chess.Board()
        for san, ev in zip(g.sans, g.evals):
            key, mover = board.epd(), board.turn
            move = board.parse_san(san)
            board.push(move)
            moves[key][move.uci()] += 1
            if ev is not None:
                rew[key, move.uci()].append(eval_to_reward(ev, mover))
    assert {s["fen"] for s in states} == {k for k, c in moves.items() if sum(c.values()) > 20}
    start = next(s for s in states if s["fen"] == chess.Board().epd())
    c = moves[chess.Board().epd()]
    assert start["visits"] == sum(c.values()) and start["argmax_move"] == c.most_common(1)[0][0]
    r = {m: np.mean(rew[chess.Board().epd(), m]) for m in c}
    mix = sum(n * r[m] for m, n in c.items()) / sum(c.values())
    assert start["r_mixture"] == pytest.approx(mix)
    assert start["favor"] == pytest.approx(r[start["argmax_move"]] - mix)
    # end to end through the CLI entry point's runner
    cfg = majority.MajorityConfig(data=str(shared_data_dir), caps=(1300, 1500), thresholds=(20,),
                                  max_games=700, n_boot=200, cache=str(tmp_path / "rewards.sqlite"))
    res = majority.run_majority(cfg, tmp_path / "maj", progress=False)
    on_disk = json.loads((tmp_path / "maj" / "results.json").read_text())
    s = on_disk["caps"]["1500"]["20"]
    assert s["n_states"] == len(states) == res["caps"]["1500"]["20"]["n_states"]
    assert s["favor"]["lo"] <= s["favor"]["mean"] <= s["favor"]["hi"]
    assert (tmp_path / "maj" / "states.csv").exists() and (tmp_path / "maj" / "config.json").exists()


@pytest.mark.data
def test_diversity_on_real_slice(shared_data_dir, tmp_path):
    cfg = diversity.DiversityConfig(data=str(shared_data_dir), thresholds=(20,), max_games=700, n_boot=200)
    res = diversity.run_diversity(cfg, tmp_path / "div", progress=False)
    caps = res["variants"]["all_games"]["20"]["caps"]
    assert caps["1500"]["n_states"] >= caps["1300"]["n_states"] >= caps["1000"]["n_states"]
    assert caps["1500"]["n_states"] > 0
    for s in (c for c in caps.values() if c["n_states"]):
        for norm in ("h_legal", "h_observed"):
            assert 0.0 <= s[norm]["lo"] <= s[norm]["mean"] <= s[norm]["hi"] <= 1.0
        # fewer legal than observed moves is impossible, so the legal normalisation is smaller
        assert s["h_legal"]["mean"] <= s["h_observed"]["mean"]


def test_diversity_shared_states_paired_comparison():
    per_cap = {1000: [{"fen": "a", "h_legal": 0.9, "h_observed": 0.9}, {"fen": "b", "h_legal": 0.7, "h_observed": 0.8},
                      {"fen": "only1000", "h_legal": 0.0, "h_observed": 0.0}],
               1300: [{"fen": "a", "h_legal": 0.8, "h_observed": 0.9}, {"fen": "b", "h_legal": 0.6, "h_observed": 0.8}],
               1500: [{"fen": "b", "h_legal": 0.5, "h_observed": 0.8}, {"fen": "a", "h_legal": 0.7, "h_observed": 0.9}]}
    out = diversity._shared(per_cap, np.random.default_rng(0), 200)
    assert out["n_states"] == 2
    assert out["h_legal"]["means"] == pytest.approx({"1000": 0.8, "1300": 0.7, "1500": 0.6})
    assert out["h_legal"]["holds"] and out["h_legal"]["bootstrap_share_holding"] == 1.0  # every state drops
    assert out["h_legal"]["paired_differences"]["1000-1300"]["lo"] == pytest.approx(0.1)
    assert not out["h_observed"]["holds"]  # equal entropies: no strict ordering


def test_majority_paired_over_shared_states():
    per = {1000: [{"fen": "a", "favor": 0.03}, {"fen": "b", "favor": 0.01}],
           1300: [{"fen": "b", "favor": 0.0}, {"fen": "a", "favor": 0.02}, {"fen": "c", "favor": 0.5}]}
    out = majority.paired_over_shared_states(per, "favor", rng=np.random.default_rng(0), n_boot=100)
    assert out["n_states"] == 2 and out["means"] == pytest.approx({"1000": 0.02, "1300": 0.01})
    d = out["paired_differences"]["1000-1300"]
    assert d["diff"] == pytest.approx(0.01) and d["lo"] == pytest.approx(0.01) and d["hi"] == pytest.approx(0.01)
