"""The generation loop samples each move from the expert's stated distribution: a fast check on a fake oracle.

The same chi-square check against the real Stockfish oracle, 4,000 draws per case, is marked ``long``
(``test_sampled_moves_match_stated_distribution`` in test_chess_experts.py).
"""
from __future__ import annotations

import chess
import numpy as np
import pytest
from scipy import stats

from chess_exp.experts import Expert, ExpertSpec, legal_moves, play_game

OPENING = "r1bqk2r/1pppbppp/p1n2n2/4p3/B3P3/5N2/PPPP1PPP/RNBQR1K1 b kq - 5 6"
ENDGAME = "8/5pk1/6p1/3R4/8/6P1/r4PK1/8 w - - 0 40"


@pytest.mark.parametrize("spec, fen, eps", [
    (ExpertSpec(name="noisy", eps=0.3), OPENING, 0.3),
    (ExpertSpec(name="endgame-pro", eps=0.6, skill="phase:endgame", eps_skill=0.05), ENDGAME, 0.05),
])
def test_sampled_moves_match_stated_distribution_fake_oracle(spec, fen, eps, fake_oracle):
    board = chess.Board(fen)
    moves = legal_moves(board)
    best = fake_oracle.best_move(board)  # the last legal move in UCI order
    expected = np.full(len(moves), eps / len(moves))  # written out from the definition, not from Expert
    expected[moves.index(best)] += 1 - eps
    expert = Expert(spec, fake_oracle)
    _, probs = expert(board)
    np.testing.assert_allclose(probs, expected, atol=1e-12)

    rng = np.random.default_rng(11)
    n = 1500
    counts = np.zeros(len(moves))
    for _ in range(n):
        b = chess.Board(fen)
        record = play_game(expert, expert, rng=rng, max_moves=b.fullmove_number, board=b)
        counts[moves.index(record.moves[0])] += 1
    exp_counts = expected * n
    big = exp_counts >= 5
    obs = np.append(counts[big], counts[~big].sum())
    ex = np.append(exp_counts[big], exp_counts[~big].sum())
    if ex[-1] == 0:
        obs, ex = obs[:-1], ex[:-1]
    assert stats.chisquare(obs, ex).pvalue > 1e-3
    # and the best move is played about 1 - eps + eps/|Y| of the time (4 standard errors)
    p_best = expected[moves.index(best)]
    assert abs(counts[moves.index(best)] / n - p_best) < 4 * np.sqrt(p_best * (1 - p_best) / n)
