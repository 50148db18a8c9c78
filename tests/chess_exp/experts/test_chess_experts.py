"""Synthetic chess experts: exact distributions, the mixture, generation and resume.

All tests use the real Stockfish (marker ``engine``) at the panels' small node limit (50 nodes).
"""

from __future__ import annotations

import io
from pathlib import Path

import chess
import chess.engine
import chess.pgn
import numpy as np
import pytest
from scipy import stats

from chess_exp.experts import (
    EngineSpec,
    Expert,
    ExpertSpec,
    MixturePolicy,
    Oracle,
    Panel,
    TemperedPolicy,
    generate_games,
    get_panel,
    legal_moves,
    play_game,
    position_key,
    scan_pgn,
)

pytestmark = pytest.mark.engine

SPEC = EngineSpec(nodes=50)
# A Black-to-move middlegame-ish position after 1.e4 e5 2.Nf3 Nc6 3.Bb5 a6 4.Ba4 Nf6 5.O-O Be7 6.Re1
OPENING = "r1bqk2r/1pppbppp/p1n2n2/4p3/B3P3/5N2/PPPP1PPP/RNBQR1K1 b kq - 5 6"
# An endgame (non-pawn material 10 <= 26), White to move
ENDGAME = "8/5pk1/6p1/3R4/8/6P1/r4PK1/8 w - - 0 40"


@pytest.fixture()
def oracle(stockfish_path: str, tmp_path: Path):
    with Oracle(SPEC, cache_dir=tmp_path / "cache", stockfish=stockfish_path) as o:
        yield o


def _reference_best(stockfish_path: str, board: chess.Board) -> chess.Move:
    """Stockfish's move computed independently of the oracle (same settings: fresh game, no history)."""
    engine = chess.engine.SimpleEngine.popen_uci(stockfish_path)
    try:
        engine.configure({"Threads": 1, "Hash": 16})
        return engine.play(chess.Board(board.fen()), chess.engine.Limit(nodes=50), game=object()).move
    finally:
        engine.quit()


def _stated(board: chess.Board, best: chess.Move, eps: float) -> np.ndarray:
    """The issue's definition: best move with prob 1 - eps, else uniform over the legal moves."""
    moves = legal_moves(board)
    p = np.full(len(moves), eps / len(moves))
    p[moves.index(best)] += 1 - eps
    return p


@pytest.mark.long  # 4,000 draws per case with the real oracle; the fast check is test_chess_experts_sampler.py
@pytest.mark.parametrize("spec, fen, eps", [
    (ExpertSpec(name="noisy", eps=0.3), OPENING, 0.3),
    (ExpertSpec(name="opening-pro", eps=0.6, skill="phase:opening", eps_skill=0.05), OPENING, 0.05),
    (ExpertSpec(name="endgame-pro", eps=0.6, skill="phase:endgame", eps_skill=0.05), OPENING, 0.6),
    (ExpertSpec(name="endgame-pro", eps=0.6, skill="phase:endgame", eps_skill=0.05), ENDGAME, 0.05),
    (ExpertSpec(name="major-pro", eps=0.5, skill="piece:major", eps_skill=0.1), ENDGAME, 0.1),
])
def test_sampled_moves_match_stated_distribution(spec, fen, eps, oracle, stockfish_path):
    """Moves sampled by the generation loop follow the expert's stated distribution (chi-square)."""
    board = chess.Board(fen)
    best = _reference_best(stockfish_path, board)
    expected = _stated(board, best, eps)
    expert = Expert(spec, oracle)
    moves, probs = expert(board)
    assert moves == legal_moves(board)
    np.testing.assert_allclose(probs, expected, atol=1e-12)

    rng = np.random.default_rng(7)
    n = 4000
    counts = np.zeros(len(moves))
    # play_game stops after one move: the side to move has fullmove number `stop`, and the game ends
    # once the fullmove number exceeds it (Black to move) or after White's and Black's moves.
    for _ in range(n):
        b = chess.Board(fen)
        record = play_game(expert, expert, rng=rng, max_moves=b.fullmove_number, board=b)
        first = record.moves[len(chess.Board(fen).move_stack)]
        counts[moves.index(first)] += 1
    # pool the rare moves so every expected count is >= 5
    exp_counts = expected * n
    big = exp_counts >= 5
    obs = np.append(counts[big], counts[~big].sum())
    ex = np.append(exp_counts[big], exp_counts[~big].sum())
    if ex[-1] == 0:
        obs, ex = obs[:-1], ex[:-1]
    assert stats.chisquare(obs, ex).pvalue > 1e-3


def test_oracle_is_deterministic_and_cached(stockfish_path, tmp_path):
    board = chess.Board(OPENING)
    with Oracle(SPEC, cache_dir=tmp_path, stockfish=stockfish_path) as first:
        move = first.best_move(board)
        assert first.best_move(board) == move and first.searches == 1
        assert move == _reference_best(stockfish_path, board)
    # a torn last line (a crash mid-write) is ignored
    with open(first.cache_file, "a") as f:
        f.write("8/8/8/8 w - -")
    with Oracle(SPEC, cache_dir=tmp_path, stockfish=stockfish_path) as second:
        assert len(second) == 1
        assert second.best_move(board) == move
        assert second.searches == 0  # read from the file, no search
    # the key ignores the move number but not the halfmove clock
    later = chess.Board(OPENING.replace(" 5 6", " 5 30"))
    assert position_key(later) == position_key(board)
    assert position_key(chess.Board(OPENING.replace(" 5 6", " 0 6"))) != position_key(board)


def test_mixture_of_identical_experts_is_that_expert(oracle):
    """f̄ = f when every f_i = f, for any weights, prior or posterior."""
    spec = ExpertSpec(name="e", eps=0.25, skill="phase:middlegame", eps_skill=0.1)
    expert = Expert(spec, oracle)
    board = chess.Board()
    rng = np.random.default_rng(3)
    for kind in ("prior", "posterior"):
        mix = MixturePolicy([expert, Expert(spec, oracle), expert], [0.2, 0.5, 0.3], kind=kind)
        b = chess.Board()
        for _ in range(12):
            moves, p = mix(b)
            moves_e, p_e = expert(b)
            assert moves == moves_e
            np.testing.assert_allclose(p, p_e, atol=1e-12)
            b.push(moves[int(rng.choice(len(moves), p=p))])
    assert board == chess.Board()


def test_mixture_values_and_argmax(oracle):
    """Prior mixture = sum_i w_i f_i; at tau=0 the noisy panel's mixture plays the oracle's move."""
    panel = get_panel("noisy3")
    mix = MixturePolicy.from_panel(panel, oracle)
    board = chess.Board(OPENING)
    moves, p = mix(board)
    best = oracle.best_move(board)
    eps_bar = float(np.mean([e.eps for e in panel.experts]))
    np.testing.assert_allclose(p, _stated(board, best, eps_bar), atol=1e-12)
    moves0, p0 = TemperedPolicy(mix, 0.0)(board)
    assert moves0[int(np.argmax(p0))] == best and p0.max() == 1.0


def test_posterior_mixture_identifies_the_expert(oracle):
    """g(i|h) ∝ w_i Π f_i(own moves): a non-oracle move rules out the noiseless expert."""
    exact = Expert(ExpertSpec(name="exact", eps=0.0), oracle)
    uniform = Expert(ExpertSpec(name="uniform", eps=1.0), oracle)
    mix = MixturePolicy([exact, uniform], [0.5, 0.5], kind="posterior")
    board = chess.Board()
    best = oracle.best_move(board)
    other = next(m for m in legal_moves(board) if m != best)
    board.push(other)  # White's move: not the oracle's
    board.push(oracle.best_move(board))  # Black: says nothing about White's expert
    np.testing.assert_allclose(mix.posterior(board), [0.0, 1.0])
    moves, p = mix(board)
    np.testing.assert_allclose(p, np.full(len(moves), 1 / len(moves)))
    # after the oracle's move instead, the posterior is Bayes' rule by hand
    board = chess.Board()
    board.push(best)
    board.push(oracle.best_move(board))
    n = board.root().legal_moves.count()
    np.testing.assert_allclose(mix.posterior(board), np.array([1.0, 1.0 / n]) / (1.0 + 1.0 / n))
    # Black's posterior ignores White's moves: one Black move so far, the oracle's
    board.push(oracle.best_move(board))
    g_black = mix.posterior(board)
    after_white = chess.Board()
    after_white.push(best)
    n_black = after_white.legal_moves.count()
    np.testing.assert_allclose(g_black, np.array([1.0, 1.0 / n_black]) / (1.0 + 1.0 / n_black))


def _games(path: Path) -> dict[int, str]:
    text = path.read_text()
    out = {}
    handle = io.StringIO(text)
    while (game := chess.pgn.read_game(handle)) is not None:
        index = int(game.headers["Round"])
        assert index not in out, f"game {index} appears twice"
        out[index] = str(game.mainline_moves())
    return out


def test_generated_games_are_legal_and_tagged(tmp_path, stockfish_path):
    panel = get_panel("phases3")
    out = generate_games(panel, 6, tmp_path / "g.pgn", seed=1, workers=2, cache_dir=tmp_path / "cache",
                         stockfish=stockfish_path, max_moves=30, progress=False)
    handle = io.StringIO(out.read_text())
    seen = 0
    while (game := chess.pgn.read_game(handle)) is not None:
        seen += 1
        assert not game.errors
        h = game.headers
        assert h["WhiteExpert"] in panel.names and h["BlackExpert"] in panel.names
        assert h["White"] == h["WhiteExpert"] and h["Panel"] == "phases3" and h["EngineLimit"] == "nodes=50"
        board = game.board()
        for move in game.mainline_moves():
            assert move in board.legal_moves
            board.push(move)
        assert int(h["PlyCount"]) == len(board.move_stack)
        outcome = board.outcome(claim_draw=True)
        if outcome is None:
            assert h["Ending"] == "max moves" and h["Termination"] == "Adjudication"
            assert h["Result"] == "1/2-1/2"
            assert board.fullmove_number > 30
        else:
            assert h["Result"] == outcome.result() and h["Termination"] == "Normal"
            assert h["Ending"] == outcome.termination.name.lower()
    assert seen == 6
    # the file feeds `chess prepare` unchanged: the data reader keeps every game
    from chess_exp.data.readers import ReadStats, read_games
    read_stats = ReadStats()
    games = list(read_games(out, stats=read_stats))
    assert len(games) == 6 and read_stats.kept == 6
    assert len({g.game_id for g in games}) == 6


def test_resume_neither_duplicates_nor_loses_games(tmp_path, stockfish_path):
    panel = get_panel("noisy3")
    kwargs = dict(seed=5, cache_dir=tmp_path / "cache", stockfish=stockfish_path, max_moves=25,
                  progress=False, workers=1)
    full = generate_games(panel, 8, tmp_path / "full.pgn", **kwargs)
    part = tmp_path / "part.pgn"
    generate_games(panel, 5, part, **kwargs)
    # a crash in the middle of writing game 5: half of its text is on disk
    text = full.read_text()
    starts = [i for i in range(len(text)) if text.startswith("[Event ", i)]
    fifth = _games(full)
    torn = text[starts[5]: starts[5] + (starts[6] - starts[5]) // 2]
    with open(part, "a") as f:
        f.write(torn)
    done, good_end = scan_pgn(part)
    assert done == set(range(5)) and good_end < part.stat().st_size
    generate_games(panel, 8, part, **kwargs)
    assert _games(part) == fifth  # same games, each once, none lost
    # resuming a complete file plays nothing
    calls = []
    generate_games(panel, 8, part, on_game=calls.append, **kwargs)
    assert calls == [] and _games(part) == fifth


def test_panel_validation():
    with pytest.raises(ValueError, match="weights"):
        Panel(name="x", experts=(ExpertSpec(name="a", eps=0.1),), weights=(1.0, 2.0))
    with pytest.raises(ValueError, match="skill"):
        ExpertSpec(name="a", eps=0.1, skill="phase:lunch")
    with pytest.raises(ValueError, match="eps"):
        ExpertSpec(name="a", eps=1.5)
    with pytest.raises(ValueError, match="panel"):
        get_panel("nope")
