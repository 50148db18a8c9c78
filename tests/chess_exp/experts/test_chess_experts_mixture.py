"""The mixture and the tau=0 wrapper on a fake oracle (no Stockfish): the panel's prior weights
matter, and ties at tau=0 are split uniformly, never given to the first maximiser."""

from __future__ import annotations

import chess
import numpy as np
import pytest

from chess_exp.experts import Expert, ExpertSpec, MixturePolicy, Panel, TemperedPolicy, legal_moves


def _stated(board: chess.Board, eps: float) -> np.ndarray:
    """An expert's stated distribution written out from the definition; the fake oracle's best move is the
    last legal move in UCI order."""
    moves = legal_moves(board)
    p = np.full(len(moves), eps / len(moves))
    p[-1] += 1 - eps
    return p


BOARDS = [chess.Board(), chess.Board("r1bqk2r/1pppbppp/p1n2n2/4p3/B3P3/5N2/PPPP1PPP/RNBQR1K1 b kq - 5 6")]


@pytest.mark.parametrize("board", BOARDS, ids=["start", "opening"])
def test_prior_mixture_uses_the_panel_weights(board: chess.Board, fake_oracle) -> None:
    oracle = fake_oracle
    specs = (ExpertSpec(name="sharp", eps=0.05), ExpertSpec(name="blunt", eps=0.95))
    experts = [Expert(s, oracle) for s in specs]
    for weights in ([0.9, 0.1], [0.1, 0.9], [3.0, 1.0]):
        w = np.asarray(weights) / np.sum(weights)
        moves, p = MixturePolicy(experts, weights)(board)
        expected = w[0] * _stated(board, 0.05) + w[1] * _stated(board, 0.95)
        assert moves == legal_moves(board)
        np.testing.assert_allclose(p, expected, atol=1e-12)
    # from a panel: its weights, not equal ones
    panel = Panel(name="lopsided", experts=specs, weights=(4.0, 1.0), engine=oracle.spec)
    _, p = MixturePolicy.from_panel(panel, oracle)(board)  # type: ignore[arg-type]
    np.testing.assert_allclose(p, 0.8 * _stated(board, 0.05) + 0.2 * _stated(board, 0.95), atol=1e-12)
    # the posterior before the side to move has moved is the prior
    fresh = chess.Board(board.fen())
    post = MixturePolicy(experts, [0.9, 0.1], kind="posterior")
    np.testing.assert_allclose(post.posterior(fresh), [0.9, 0.1], atol=1e-12)


class Tied:
    """A policy with two equal maxima that are not the first moves in the list."""

    name = "tied"

    def __call__(self, board: chess.Board) -> tuple[list[chess.Move], np.ndarray]:
        moves = legal_moves(board)
        p = np.full(len(moves), 1.0)
        p[3] = p[7] = 5.0
        return moves, p / p.sum()


@pytest.mark.parametrize("mode", ["logit", "prob"])
def test_tau_zero_splits_ties_uniformly(mode: str, fake_oracle) -> None:
    board = chess.Board()
    moves, p0 = TemperedPolicy(Tied(), 0.0, mode=mode)(board)
    expected = np.zeros(len(moves))
    expected[[3, 7]] = 0.5
    np.testing.assert_allclose(p0, expected, atol=1e-12)
    # a uniform expert at tau=0 stays uniform (every move is a maximiser)
    uniform = Expert(ExpertSpec(name="u", eps=1.0), fake_oracle)  # type: ignore[arg-type]
    moves, pu = TemperedPolicy(uniform, 0.0, mode=mode)(board)
    np.testing.assert_allclose(pu, np.full(len(moves), 1 / len(moves)), atol=1e-12)


def test_tau_zero_games_sample_both_tied_moves() -> None:
    """Played through the game loop's distribution player, the two tied moves come up about equally."""
    from chess_exp.play.players import DistributionPlayer, MoveRequest

    board = chess.Board()
    moves = legal_moves(board)
    player = DistributionPlayer(TemperedPolicy(Tied(), 0.0), 0.0)
    rng = np.random.default_rng(0)
    picks = [c.move for c in player.choose([MoveRequest(board=board, sans=(), rng=rng) for _ in range(400)])]
    assert set(picks) == {moves[3], moves[7]}
    share = picks.count(moves[3]) / len(picks)
    assert 0.4 < share < 0.6  # binomial(400, 0.5): sd 0.025, so this fails with probability < 1e-4
