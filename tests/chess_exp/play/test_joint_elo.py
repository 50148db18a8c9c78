"""The joint maximum-likelihood Elo of many players (chess_exp.play.ratings.joint_mle_elo)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize

from chess_exp.play.ratings import joint_mle_elo, mle_elo


def _simulate(true: dict[str, float], pairs: list[tuple[str, str]], n: int, rng: np.random.Generator,
              draw: float = 0.3) -> list[tuple[str, str, float]]:
    """Games whose expected score is the Elo curve: a draw with probability ``draw * min(p, 1-p) * 2``."""
    games = []
    for a, b in pairs:
        p = 1.0 / (1.0 + 10 ** ((true[b] - true[a]) / 400))
        q_draw = draw * 2 * min(p, 1 - p)
        p_win = p - q_draw / 2  # E[score] = p_win + q_draw / 2 = p
        for g in range(n):
            u = rng.random()
            s = 1.0 if u < p_win else 0.5 if u < p_win + q_draw else 0.0
            games.append((a, b, s) if g % 2 == 0 else (b, a, 1.0 - s))
    return games


def _loglik(r: dict[str, float], games: list[tuple[str, str, float]]) -> float:
    c = math.log(10) / 400
    return sum(s * -np.logaddexp(0, -c * (r[w] - r[b])) + (1 - s) * -np.logaddexp(0, c * (r[w] - r[b]))
               for w, b, s in games)


def test_one_free_player_against_fixed_opponents_equals_the_single_player_mle():
    rng = np.random.default_rng(1)
    for _ in range(20):
        levels = {"L1": 1554.0, "L3": 1867.0}
        scores = rng.choice([0.0, 0.5, 1.0], size=30)
        opp = rng.choice(list(levels), size=30)
        games = [("m", o, float(s)) if i % 2 else (o, "m", 1.0 - float(s))
                 for i, (s, o) in enumerate(zip(scores, opp))]
        if scores.sum() in (0, 30):
            continue
        fit = joint_mle_elo(games, fixed=levels)
        single = mle_elo(scores, [levels[o] for o in opp])
        assert fit.elo["m"] == pytest.approx(single.elo, abs=1e-6)
        assert fit.elo["L1"] == 1554.0 and fit.elo["L3"] == 1867.0


def test_the_fit_is_the_likelihood_maximum_and_solves_the_score_equations():
    rng = np.random.default_rng(2)
    names = ["a", "b", "c", "d", "e"]
    for _trial in range(10):
        true = {p: float(rng.normal(0, 200)) for p in names}
        pairs = [(names[i], names[j]) for i in range(5) for j in range(i + 1, 5) if rng.random() < 0.8]
        pairs += [(names[i], names[i + 1]) for i in range(4)]  # keep it connected
        games = _simulate(true, pairs, 12, rng)
        fit = joint_mle_elo(games, reference="a")
        if fit.separated:
            continue
        # score equations: each player's expected points equal its points
        for p in names:
            points = sum(s if w == p else 1 - s for w, b, s in games if p in (w, b))
            expected = sum(1 / (1 + 10 ** ((fit.elo[b if w == p else w] - fit.elo[p]) / 400))
                           for w, b, s in games if p in (w, b))
            assert expected == pytest.approx(points, abs=1e-6)
        # an independent optimiser finds no higher likelihood
        x0 = np.zeros(4)
        res = optimize.minimize(lambda x, g=games: -_loglik(dict(zip(names, [0.0, *x])), g), x0, method="Nelder-Mead",
                                options={"xatol": 1e-6, "fatol": 1e-10, "maxiter": 20000})
        assert -res.fun <= fit.log_likelihood + 1e-6
        assert [fit.elo[p] for p in names[1:]] == pytest.approx(list(res.x), abs=0.05)


def test_ratings_are_relative_to_the_reference_and_shift_with_it():
    rng = np.random.default_rng(3)
    true = {"a": 0.0, "b": 100.0, "c": -150.0}
    games = _simulate(true, [("a", "b"), ("b", "c"), ("a", "c")], 40, rng)
    fa = joint_mle_elo(games, reference="a")
    fb = joint_mle_elo(games, reference="b")
    fixed = joint_mle_elo(games, fixed={"c": 1000.0})
    for p in true:
        assert fa.elo[p] - fa.elo["b"] == pytest.approx(fb.elo[p], abs=1e-6)
        assert fixed.elo[p] - fixed.elo["c"] == pytest.approx(fa.elo[p] - fa.elo["c"], abs=1e-6)


def test_separated_players_are_infinite_and_unconnected_ones_nan():
    games = [("a", "b", 1.0), ("b", "a", 0.5),     # a and b compare
             ("a", "w", 0.0), ("w", "b", 1.0),     # w took every point: above
             ("l", "a", 0.0), ("b", "l", 1.0),     # l lost every game: below
             ("x", "y", 0.5)]                       # x, y never met the others
    fit = joint_mle_elo(games, reference="a")
    assert math.isfinite(fit.elo["b"])
    assert fit.elo["w"] == math.inf and fit.elo["l"] == -math.inf
    assert math.isnan(fit.elo["x"]) and math.isnan(fit.elo["y"])
    assert set(fit.separated) == {"w", "l", "x", "y"}


def test_a_single_draw_makes_a_rating_finite():
    lost_all = [("m", "e", 0.0)] * 10
    assert joint_mle_elo(lost_all, reference="e").elo["m"] == -math.inf
    one_draw = lost_all + [("e", "m", 0.5)]
    r = joint_mle_elo(one_draw, reference="e").elo["m"]
    assert math.isfinite(r)
    assert r == pytest.approx(-400 * math.log10(10.5 / 0.5), abs=1e-6)  # score 0.5 / 11


def test_bootstrap_intervals_cover_the_true_differences_at_about_the_nominal_rate():
    rng = np.random.default_rng(4)
    true = {"a": 0.0, "b": 120.0, "c": -80.0, "d": 250.0}
    pairs = [("a", "b"), ("a", "c"), ("b", "c"), ("b", "d"), ("c", "d")]
    hits, total = 0, 0
    for sim in range(60):
        games = _simulate(true, pairs, 30, rng)
        fit = joint_mle_elo(games, reference="a", n_boot=200, seed=sim)
        for p in ("b", "c", "d"):
            total += 1
            hits += fit.lo[p] <= true[p] <= fit.hi[p]
    assert 0.85 <= hits / total <= 1.0, hits / total


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="at least one game"):
        joint_mle_elo([])
    with pytest.raises(ValueError, match="must be 0, 0.5 or 1"):
        joint_mle_elo([("a", "b", 0.7)])
    with pytest.raises(ValueError, match="plays itself"):
        joint_mle_elo([("a", "a", 1.0)])
    with pytest.raises(ValueError, match="reference"):
        joint_mle_elo([("a", "b", 1.0)], reference="z")


def test_the_same_seed_gives_the_same_interval():
    rng = np.random.default_rng(5)
    games = _simulate({"a": 0.0, "b": 50.0}, [("a", "b")], 30, rng)
    f1 = joint_mle_elo(games, reference="a", n_boot=100, seed=3)
    f2 = joint_mle_elo(games, reference="a", n_boot=100, seed=3)
    assert (f1.lo, f1.hi) == (f2.lo, f2.hi)


def test_the_order_of_the_games_changes_nothing():
    rng = np.random.default_rng(6)
    games = _simulate({"a": 0.0, "b": 80.0, "c": -60.0}, [("a", "b"), ("b", "c"), ("a", "c")], 15, rng)
    shuffled = [games[i] for i in rng.permutation(len(games))]
    f1 = joint_mle_elo(games, reference="a", n_boot=200, seed=1)
    f2 = joint_mle_elo(shuffled, reference="a", n_boot=200, seed=1)
    assert f1.elo == pytest.approx(f2.elo, abs=1e-9) and (f1.lo, f1.hi) == (f2.lo, f2.hi)
