r"""Ratings from games against opponents of known strength: Glicko-2 as the paper ran it, and an MLE Elo.

Two estimates of a player's rating from its scores :math:`s_j \in \{0, \tfrac12, 1\}` against
opponents of fixed ratings :math:`R_j` (for Stockfish, :data:`STOCKFISH_LEVEL_RATINGS`):

- :func:`glicko2_sequential`: Glickman's Glicko-2 (2012, "Example of the Glicko-2 system"), run the
  way the paper's code ran it: model prior 1500 / RD 500 / volatility 0.06, system constant
  :math:`\tau = 0.5`, one game per rating period in play order, opponents at RD 0. The final rating
  :math:`\pm 2\,\mathrm{RD}` is the paper's 95% band. This estimate depends on the order of the games.
- :func:`mle_elo`: the maximum-likelihood rating under the logistic Elo model

  .. math:: P(\text{win}_j) = E_j(R) = \frac{1}{1 + 10^{(R_j - R)/400}}, \qquad
            \ell(R) = \sum_j s_j \log E_j(R) + (1 - s_j) \log(1 - E_j(R))

  (draws as half points), with a 95% profile-likelihood interval
  :math:`\{R : 2(\ell(\hat R) - \ell(R)) \le \chi^2_{1,0.95}\}`. It uses every game at once and does
  not depend on their order. When every game is won (lost) the MLE is :math:`+\infty`
  (:math:`-\infty`) and only the lower (upper) bound is finite.

>>> round(mle_elo([1, 0], [1554, 1554]).elo, 6)
1554.0
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy import optimize, stats

__all__ = ["STOCKFISH_LEVEL_RATINGS", "GLICKO2_SCALE", "Glicko2Rating", "Glicko2Result", "EloEstimate",
           "glicko2_update", "glicko2_sequential", "mle_elo", "wdl_table", "JointElo", "joint_mle_elo"]

#: Ratings the paper's code gives Stockfish levels 1-5 (``eval/glicko2.py``; their provenance
#: is uncertain: the paper's text quotes ~1552/1842/2142 for levels 1/3/5).
STOCKFISH_LEVEL_RATINGS: dict[int, float] = {1: 1554.0, 2: 1759.0, 3: 1867.0, 4: 2006.0, 5: 2148.0}
GLICKO2_SCALE = 173.7178  # Glicko-2 scale factor (Glickman 2012, step 2)
_CHI2_95 = float(stats.chi2.ppf(0.95, df=1))  # 3.8415
_EPSILON = 1e-6  # convergence tolerance of the volatility iteration (Glickman's epsilon)


class Glicko2Rating(NamedTuple):
    rating: float  # on the Glicko scale (1500 centre)
    rd: float  # rating deviation
    volatility: float  # sigma


@dataclass(frozen=True)
class Glicko2Result:
    """The final Glicko-2 rating and its track (``history[0]`` is the prior, then one row per game)."""

    rating: float
    rd: float
    volatility: float
    history: np.ndarray  # (n_games + 1, 3): rating, rd, volatility after each period

    @property
    def band(self) -> tuple[float, float]:
        """rating -/+ 2 RD: the paper's 95% band."""
        return self.rating - 2 * self.rd, self.rating + 2 * self.rd


class EloEstimate(NamedTuple):
    """MLE Elo and its 95% interval (unpacks as ``elo, lo, hi``)."""

    elo: float
    lo: float
    hi: float


def _g(phi: np.ndarray | float) -> np.ndarray | float:
    return 1.0 / np.sqrt(1.0 + 3.0 * np.square(phi) / math.pi ** 2)


def glicko2_update(player: Glicko2Rating | tuple[float, float, float],
                   opponents: Sequence[tuple[float, float]], scores: Sequence[float], *,
                   tau: float = 0.5) -> Glicko2Rating:
    """One Glicko-2 rating period (Glickman 2012, steps 1-8).

    ``player`` = (rating, RD, volatility); ``opponents`` = [(rating, RD), ...]; ``scores`` in
    {0, 0.5, 1}. With no games only the RD grows (step 6 alone).

    >>> r = glicko2_update((1500, 200, 0.06), [(1400, 30), (1550, 100), (1700, 300)], [1, 0, 0])
    >>> f"{r.rating:.2f} {r.rd:.2f} {r.volatility:.6f}"  # Glickman: 1464.06, 151.52, 0.05999 (rounded steps)
    '1464.05 151.52 0.059996'
    """
    rating, rd, sigma = (float(x) for x in player)
    if rd < 0 or sigma <= 0 or tau <= 0:
        raise ValueError(f"player={player!r}, tau={tau}: RD must be >= 0, volatility and tau > 0")
    if len(opponents) != len(scores):
        raise ValueError(f"opponents has {len(opponents)} entries but scores has {len(scores)}")
    mu = (rating - 1500.0) / GLICKO2_SCALE
    phi = rd / GLICKO2_SCALE
    if not opponents:
        return Glicko2Rating(rating, math.sqrt(phi ** 2 + sigma ** 2) * GLICKO2_SCALE, sigma)
    opp = np.asarray(opponents, dtype=np.float64)
    s = _check_scores(scores)
    mu_j = (opp[:, 0] - 1500.0) / GLICKO2_SCALE
    g_j = _g(opp[:, 1] / GLICKO2_SCALE)
    e_j = 1.0 / (1.0 + np.exp(-g_j * (mu - mu_j)))
    v = 1.0 / float(np.sum(g_j ** 2 * e_j * (1.0 - e_j)))
    delta = v * float(np.sum(g_j * (s - e_j)))
    # step 5: the new volatility by the Illinois algorithm
    a = math.log(sigma ** 2)

    def f(x: float) -> float:
        ex = math.exp(x)
        return ex * (delta ** 2 - phi ** 2 - v - ex) / (2.0 * (phi ** 2 + v + ex) ** 2) - (x - a) / tau ** 2

    big_a = a
    if delta ** 2 > phi ** 2 + v:
        big_b = math.log(delta ** 2 - phi ** 2 - v)
    else:
        k = 1
        while f(a - k * tau) < 0:
            k += 1
        big_b = a - k * tau
    f_a, f_b = f(big_a), f(big_b)
    while abs(big_b - big_a) > _EPSILON:
        big_c = big_a + (big_a - big_b) * f_a / (f_b - f_a)
        f_c = f(big_c)
        if f_c * f_b <= 0:
            big_a, f_a = big_b, f_b
        else:
            f_a /= 2.0
        big_b, f_b = big_c, f_c
    sigma_new = math.exp(big_a / 2.0)
    phi_star = math.sqrt(phi ** 2 + sigma_new ** 2)
    phi_new = 1.0 / math.sqrt(1.0 / phi_star ** 2 + 1.0 / v)
    mu_new = mu + phi_new ** 2 * float(np.sum(g_j * (s - e_j)))
    return Glicko2Rating(GLICKO2_SCALE * mu_new + 1500.0, GLICKO2_SCALE * phi_new, sigma_new)


def glicko2_sequential(scores: Sequence[float], opponent_ratings: Sequence[float], *,
                       prior: tuple[float, float, float] = (1500.0, 500.0, 0.06), tau: float = 0.5,
                       opponent_rd: float = 0.0) -> Glicko2Result:
    """The paper's Glicko-2: one game per rating period, in the given order.

    ``scores[i]`` is the player's score in game ``i`` against an opponent rated
    ``opponent_ratings[i]`` (RD ``opponent_rd``, 0 in the paper).
    """
    s = _check_scores(scores)
    opp = np.asarray(opponent_ratings, dtype=np.float64)
    if opp.shape != s.shape:
        raise ValueError(f"opponent_ratings has {opp.shape[0] if opp.ndim else 0} entries but scores has {len(s)}")
    state = Glicko2Rating(*prior)
    history = [tuple(state)]
    for score, rating in zip(s, opp):
        state = glicko2_update(state, [(float(rating), opponent_rd)], [float(score)], tau=tau)
        history.append(tuple(state))
    return Glicko2Result(rating=state.rating, rd=state.rd, volatility=state.volatility,
                         history=np.asarray(history, dtype=np.float64))


def _check_scores(scores: Iterable[float]) -> np.ndarray:
    s = np.asarray(list(scores), dtype=np.float64)
    if s.ndim != 1 or not np.all(np.isin(s, (0.0, 0.5, 1.0))):
        raise ValueError("scores: each must be 0 (loss), 0.5 (draw) or 1 (win)")
    return s


def _log_likelihood(r: float, s: np.ndarray, opp: np.ndarray) -> float:
    x = (r - opp) * (math.log(10.0) / 400.0)  # log-odds of a win
    # s log sigmoid(x) + (1 - s) log sigmoid(-x), stable
    return float(np.sum(-s * np.logaddexp(0.0, -x) - (1.0 - s) * np.logaddexp(0.0, x)))


def mle_elo(scores: Sequence[float], opponent_ratings: Sequence[float], *,
            confidence: float = 0.95) -> EloEstimate:
    """Maximum-likelihood Elo and its profile-likelihood interval (order-independent).

    ``scores[i]`` in {0, 0.5, 1} against an opponent rated ``opponent_ratings[i]``.

    >>> est = mle_elo([1, 0, 0.5, 0.5], [1554, 1554, 1554, 1554])
    >>> round(est.elo, 6), est.lo < 1554 < est.hi
    (1554.0, True)
    """
    s = _check_scores(scores)
    opp = np.asarray(opponent_ratings, dtype=np.float64)
    if len(s) == 0:
        raise ValueError("scores: need at least one game")
    if opp.shape != s.shape:
        raise ValueError(f"opponent_ratings has {opp.size} entries but scores has {len(s)}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence={confidence}: must be in (0, 1)")
    crit = float(stats.chi2.ppf(confidence, df=1)) / 2.0
    span = 400.0 * 20  # search window around the opponents: beyond it the likelihood is flat to 1e-20
    low_edge, high_edge = float(opp.min()) - span, float(opp.max()) + span
    total = float(s.sum())
    if total == len(s):  # all wins: l(R) increases to 0
        best, ll_best = math.inf, 0.0
    elif total == 0.0:  # all losses
        best, ll_best = -math.inf, 0.0
    else:
        res = optimize.minimize_scalar(lambda r: -_log_likelihood(r, s, opp),
                                       bounds=(low_edge, high_edge), method="bounded",
                                       options={"xatol": 1e-7})
        # polish with Newton steps on the score equation (smooth, concave)
        best = float(res.x)
        for _ in range(20):
            p = 1.0 / (1.0 + 10.0 ** ((opp - best) / 400.0))
            c = math.log(10.0) / 400.0
            grad = c * float(np.sum(s - p))
            hess = -c * c * float(np.sum(p * (1 - p)))
            step = grad / hess
            best -= step
            if abs(step) < 1e-10:
                break
        ll_best = _log_likelihood(best, s, opp)

    def gap(r: float) -> float:
        return ll_best - _log_likelihood(r, s, opp) - crit

    lo = -math.inf if best == -math.inf else optimize.brentq(
        gap, low_edge, min(best, high_edge), xtol=1e-8)
    hi = math.inf if best == math.inf else optimize.brentq(
        gap, max(best, low_edge), high_edge, xtol=1e-8)
    return EloEstimate(float(best), float(lo), float(hi))


def wdl_table(scores: Sequence[float], groups: Sequence[object]) -> dict[object, dict[str, float]]:
    """Wins, draws, losses, games and score fraction per group (e.g. per Stockfish level)."""
    s = _check_scores(scores)
    if len(groups) != len(s):
        raise ValueError(f"groups has {len(groups)} entries but scores has {len(s)}")
    table: dict[object, dict[str, float]] = {}
    for group in dict.fromkeys(groups):
        mask = np.array([g == group for g in groups])
        g_s = s[mask]
        table[group] = {"wins": int(np.sum(g_s == 1)), "draws": int(np.sum(g_s == 0.5)),
                        "losses": int(np.sum(g_s == 0)), "games": int(g_s.size),
                        "score": float(g_s.mean())}
    return table


# -- every player at once: the joint maximum-likelihood Elo -------------------------------------

@dataclass(frozen=True)
class JointElo:
    """A joint Elo fit (see :func:`joint_mle_elo`).

    ``elo[p]`` is finite for the players of the reference's strongly connected component,
    ``+inf``/``-inf`` for a group that took every point from (lost every point to) it, and ``nan``
    where the games do not compare the two. With ``fixed`` ratings the numbers are on their scale,
    otherwise relative to ``reference`` (rated 0). ``lo``/``hi`` are the percentile bootstrap
    interval (``nan`` when no bootstrap was asked for).
    """

    players: tuple[str, ...]
    elo: dict[str, float]
    lo: dict[str, float]
    hi: dict[str, float]
    reference: str
    fixed: dict[str, float]
    log_likelihood: float
    n_boot: int
    separated: tuple[str, ...]  # players whose rating is not finite


_C = math.log(10.0) / 400.0  # Elo points -> natural log-odds


def _pair_tables(games: Iterable[tuple[str, str, float]], players: Sequence[str]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n[i, j]`` games between i and j and ``wdl[i, j] = (wins, draws, losses)`` of i, for i < j;
    ``s[i, j]``: points i took from j (both triangles)."""
    index = {p: i for i, p in enumerate(players)}
    k = len(players)
    wdl = np.zeros((k, k, 3), dtype=np.int64)
    for white, black, score in games:
        if white == black:
            raise ValueError(f"games: {white!r} plays itself")
        if score not in (0.0, 0.5, 1.0):
            raise ValueError(f"games: score {score!r} of {white} vs {black} must be 0, 0.5 or 1")
        i, j = index[white], index[black]
        col = {1.0: 0, 0.5: 1, 0.0: 2}[float(score)]
        wdl[i, j, col] += 1
        wdl[j, i, 2 - col] += 1
    n = wdl.sum(axis=2)
    s = wdl[:, :, 0] + 0.5 * wdl[:, :, 1]
    return n, s, wdl


def _components(s: np.ndarray, n: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """Strongly connected components of "i took a point from j" and the reachability between them."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components, shortest_path

    took = (s > 0) & (n > 0)
    k, labels = connected_components(csr_matrix(took.astype(np.int8)), directed=True, connection="strong")
    reach = np.isfinite(shortest_path(csr_matrix(took.astype(np.int8)), unweighted=True))
    return k, labels, reach


def _joint_loglik(r: np.ndarray, s: np.ndarray) -> float:
    """sum over i, j of s[i, j] log E_ij(r) (both triangles: each game counted from both sides)."""
    d = _C * (r[:, None] - r[None, :])
    return float(np.sum(-s * np.logaddexp(0.0, -d)))


def _fit(n: np.ndarray, s: np.ndarray, free: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Newton's method with backtracking on the concave log-likelihood; ``free`` are the players
    fitted, the others keep ``start``. Only games among the players of ``free | fixed`` count."""
    r = start.astype(np.float64).copy()
    idx = np.flatnonzero(free)
    if idx.size == 0:
        return r

    ll = _joint_loglik(r, s)
    for _ in range(200):
        d = _C * (r[:, None] - r[None, :])
        p = 1.0 / (1.0 + np.exp(-d))
        grad = _C * np.sum(s - n * p, axis=1)[idx]
        w = _C * _C * n * p * (1 - p)
        hess = -np.diag(w.sum(axis=1))[np.ix_(idx, idx)] + w[np.ix_(idx, idx)]
        try:
            step = np.linalg.solve(hess, -grad)
        except np.linalg.LinAlgError:
            step = grad / max(1e-12, float(np.max(np.abs(np.diag(hess)))))
        t = 1.0
        while True:
            cand = r.copy()
            cand[idx] += t * step
            ll_new = _joint_loglik(cand, s)
            if ll_new >= ll - 1e-12 or t < 1e-8:
                break
            t /= 2
        r, ll_old, ll = cand, ll, ll_new
        if np.max(np.abs(t * step)) < 1e-9 or abs(ll - ll_old) < 1e-13:
            break
    return r


def _solve(n: np.ndarray, s: np.ndarray, ref: int, fixed: dict[int, float]) -> np.ndarray:
    """Ratings of every player: finite in the reference's component, else +-inf or nan."""
    k = n.shape[0]
    n_comp, labels, reach = _components(s, n)
    main = labels == labels[ref]
    fixed_main = {i: v for i, v in fixed.items() if main[i]}
    start = np.zeros(k)
    for i, v in fixed_main.items():
        start[i] = v
    if not fixed_main:
        start[ref] = 0.0
    free = main.copy()
    for i in (fixed_main or {ref: 0.0}):
        free[i] = False
    mask = main[:, None] & main[None, :]
    r = _fit(np.where(mask, n, 0), np.where(mask, s, 0.0), free, start)
    out = np.full(k, np.nan)
    out[main] = r[main]
    for j in np.flatnonzero(~main).tolist():
        up, down = reach[j, ref], reach[ref, j]  # i took points from the reference's group / it from i
        out[j] = math.inf if up and not down else -math.inf if down and not up else math.nan
    return out


def joint_mle_elo(games: Iterable[tuple[str, str, float]], *, reference: str | None = None,
                  fixed: dict[str, float] | None = None, n_boot: int = 0, confidence: float = 0.95,
                  seed: int = 0) -> JointElo:
    r"""The maximum-likelihood Elo of every player from games among them.

    ``games``: ``(white, black, white's score)`` with scores 0, 0.5 or 1. Under the logistic Elo
    model (no colour advantage; schedules here alternate colours) player i scores against j with
    expectation :math:`E_{ij} = 1 / (1 + 10^{(R_j - R_i)/400})`, draws as half points, and the
    log-likelihood :math:`\sum_{i \neq j} s_{ij} \log E_{ij}` (:math:`s_{ij}`: points i took from
    j) is maximised over the ratings not in ``fixed``. Without ``fixed``, ``reference`` is rated 0.
    At the maximum every free player's expected points equal its points. ``reference`` defaults to the
    first of ``fixed``, else to White of the first game; nothing else depends on the order of ``games``.

    A finite maximum exists only among players joined by "took a point from" both ways (a strongly
    connected component); a group that won (lost) every game against the reference's group is rated
    ``+inf`` (``-inf``), one with no path either way ``nan``.

    ``n_boot > 0``: the ``confidence`` percentile interval of each rating over resamples of the
    games, each pairing resampled on its own (its win/draw/loss counts drawn from their shares),
    so the schedule is kept.

    >>> fit = joint_mle_elo([("a", "b", 1.0), ("b", "a", 1.0)], reference="a")
    >>> fit.elo["b"]
    0.0
    """
    games = list(games)
    if not games:
        raise ValueError("games: need at least one game")
    fixed = dict(fixed or {})
    # sorted: the fit and its bootstrap depend on the games, not on the order they come in
    players = tuple(sorted({p for w, b, _ in games for p in (w, b)} | set(fixed)))
    if reference is None:
        reference = next(iter(fixed)) if fixed else games[0][0]
    if reference not in players:
        raise ValueError(f"reference: {reference!r} played no game (players: {', '.join(players)})")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence={confidence}: must be in (0, 1)")
    if n_boot < 0:
        raise ValueError(f"n_boot={n_boot}: must be >= 0")
    index = {p: i for i, p in enumerate(players)}
    ref = index[reference]
    fixed_i = {index[p]: float(v) for p, v in fixed.items()}
    n, s, wdl = _pair_tables(games, players)
    est = _solve(n, s, ref, fixed_i)
    finite = np.isfinite(est)
    ll = _joint_loglik(np.where(finite, est, 0.0), np.where(finite[:, None] & finite[None, :], s, 0.0))
    lo = np.full(len(players), np.nan)
    hi = np.full(len(players), np.nan)
    if n_boot:
        rng = np.random.default_rng(seed)
        iu, ju = np.triu_indices(len(players), 1)
        pairs = [(i, j) for i, j in zip(iu, ju) if n[i, j] > 0]
        draws = np.empty((n_boot, len(players)))
        for b in range(n_boot):
            s_b = np.zeros_like(s)
            for i, j in pairs:
                w, dr, lo_ = rng.multinomial(n[i, j], wdl[i, j] / n[i, j])
                s_b[i, j] = w + 0.5 * dr
                s_b[j, i] = lo_ + 0.5 * dr
            draws[b] = _solve(n, s_b, ref, fixed_i)
        alpha = (1 - confidence) / 2
        for p in range(len(players)):
            col = draws[:, p]
            if np.isnan(col).any():
                continue
            lo[p] = float(np.quantile(col, alpha, method="inverted_cdf"))
            hi[p] = float(np.quantile(col, 1 - alpha, method="inverted_cdf"))
    return JointElo(players=players, elo={p: float(est[index[p]]) for p in players},
                    lo={p: float(lo[index[p]]) for p in players}, hi={p: float(hi[index[p]]) for p in players},
                    reference=reference, fixed={p: float(v) for p, v in fixed.items()}, log_likelihood=ll,
                    n_boot=n_boot, separated=tuple(p for p in players if not np.isfinite(est[index[p]])))
