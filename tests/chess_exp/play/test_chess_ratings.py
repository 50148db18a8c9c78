"""Ratings: Glicko-2 against Glickman's worked example, the paper's sequential mode, and the MLE Elo."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chess_exp.play.ratings import STOCKFISH_LEVEL_RATINGS, glicko2_sequential, glicko2_update, mle_elo, wdl_table


def test_glickman_worked_example() -> None:
    """Glickman (2012), 'Example of the Glicko-2 system': 1500/200/0.06 vs 1400/30 (win), 1550/100
    (loss), 1700/300 (loss), tau 0.5 -> 1464.06 / 151.52 / 0.05999 (his steps are rounded)."""
    r = glicko2_update((1500, 200, 0.06), [(1400, 30), (1550, 100), (1700, 300)], [1, 0, 0], tau=0.5)
    assert r.rating == pytest.approx(1464.06, abs=0.02)
    assert r.rd == pytest.approx(151.52, abs=0.01)
    assert r.volatility == pytest.approx(0.05999, abs=1e-5)


def test_glicko2_no_games_only_rd_grows() -> None:
    r = glicko2_update((1500, 200, 0.06), [], [])
    assert r.rating == 1500 and r.volatility == 0.06
    assert r.rd == pytest.approx(np.hypot(200 / 173.7178, 0.06) * 173.7178)


def test_paper_mode_prior_and_direction() -> None:
    """The paper's prior is 1500/500/0.06; a win against level 1 raises the rating, a loss lowers it."""
    win = glicko2_sequential([1], [STOCKFISH_LEVEL_RATINGS[1]])
    loss = glicko2_sequential([0], [STOCKFISH_LEVEL_RATINGS[1]])
    assert tuple(win.history[0]) == (1500, 500, 0.06)
    assert win.rating > 1500 > loss.rating
    assert win.rd < 500 and win.history.shape == (2, 3)
    assert win.band == (win.rating - 2 * win.rd, win.rating + 2 * win.rd)


def test_sequential_glicko2_depends_on_order_mle_does_not() -> None:
    scores = [1] * 20 + [0] * 20
    opponents = [STOCKFISH_LEVEL_RATINGS[3]] * 40
    forward = glicko2_sequential(scores, opponents)
    backward = glicko2_sequential(scores[::-1], opponents[::-1])
    assert abs(forward.rating - backward.rating) > 50  # recent games weigh more
    a, b = mle_elo(scores, opponents), mle_elo(scores[::-1], opponents[::-1])
    assert a == pytest.approx(b, abs=1e-6)


@given(st.lists(st.tuples(st.sampled_from([0.0, 0.5, 1.0]), st.sampled_from([1554, 1867, 2148])),
                min_size=0, max_size=30).map(lambda g: g + [(1.0, 2148), (0.0, 1554)]),
       st.randoms(use_true_random=False))
def test_mle_is_order_independent(games, random) -> None:
    """Invariant: the MLE Elo and its interval are functions of the multiset of games."""
    shuffled = list(games)
    random.shuffle(shuffled)
    a = mle_elo([s for s, _ in games], [r for _, r in games])
    b = mle_elo([s for s, _ in shuffled], [r for _, r in shuffled])
    assert np.allclose(a, b, atol=1e-5)
    assert a.lo < a.elo < a.hi


@pytest.mark.parametrize("opponent", [1554, 1867, 2148])
def test_mle_of_fifty_percent_scorer_is_the_opponent_rating(opponent: float) -> None:
    est = mle_elo([1, 0] * 10 + [0.5] * 6, [opponent] * 26)
    assert est.elo == pytest.approx(opponent, abs=1e-6)
    assert est.lo < opponent < est.hi


def test_mle_interval_shrinks_with_more_games() -> None:
    widths = []
    for n in (10, 40, 160):
        est = mle_elo([1, 0, 0.5, 1, 0] * n, [1867] * (5 * n))
        widths.append(est.hi - est.lo)
    assert widths[0] > widths[1] > widths[2]
    assert widths[1] / widths[2] == pytest.approx(2.0, rel=0.1)  # ~ 1/sqrt(n)


def test_mle_matches_brute_force_and_fisher_interval() -> None:
    """Closed form check: the MLE maximises the log-likelihood on a fine grid; the profile interval
    is close to the Fisher (Wald) interval for many games."""
    rng = np.random.default_rng(0)
    opp = rng.choice([1554.0, 1867.0, 2148.0], size=300)
    p = 1 / (1 + 10 ** ((opp - 1750) / 400))
    s = (rng.random(300) < p).astype(float)
    est = mle_elo(s, opp)
    grid = np.linspace(1400, 2100, 7001)
    x = (grid[:, None] - opp[None, :]) * np.log(10) / 400
    ll = (-s * np.logaddexp(0, -x) - (1 - s) * np.logaddexp(0, x)).sum(axis=1)
    assert est.elo == pytest.approx(grid[np.argmax(ll)], abs=0.1)
    q = 1 / (1 + 10 ** ((opp - est.elo) / 400))
    se = 1 / np.sqrt((np.log(10) / 400) ** 2 * np.sum(q * (1 - q)))
    assert (est.hi - est.lo) / 2 == pytest.approx(1.959964 * se, rel=0.03)


def test_mle_all_wins_is_unbounded_above() -> None:
    est = mle_elo([1, 1, 1], [1554] * 3)
    assert est.elo == np.inf and est.hi == np.inf and np.isfinite(est.lo) and est.lo > 1000


def test_bad_scores_rejected() -> None:
    with pytest.raises(ValueError, match="scores"):
        mle_elo([0.3], [1554])
    with pytest.raises(ValueError, match="opponent_ratings"):
        mle_elo([1, 0], [1554])


def test_wdl_table() -> None:
    table = wdl_table([1, 0.5, 0, 0, 1], [1, 1, 3, 3, 5])
    assert table[1] == {"wins": 1, "draws": 1, "losses": 0, "games": 2, "score": 0.75}
    assert table[3]["losses"] == 2 and table[5]["score"] == 1.0
