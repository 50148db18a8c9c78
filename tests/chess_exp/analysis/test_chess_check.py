"""``transcendence chess check``: the dense instance, agreement with the core, intervals, the CLI."""

from __future__ import annotations

import argparse
import json

import chess
import chess.pgn
import numpy as np
import pytest

import transcendence as tr
from chess_exp.analysis import check

FENS = ["rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1",
        "6k1/5ppp/8/8/8/8/5PPP/R5K1 w - - 0 1",
        "7k/8/8/8/8/8/8/K6R b - - 0 1"]


class _FixedExpert:
    """A hand-made expert: a fixed probability vector per position (in legal_moves order)."""

    def __init__(self, name: str, table: dict[str, np.ndarray]) -> None:
        self.name, self.table = name, table

    def probs(self, board: chess.Board, moves) -> np.ndarray:
        return self.table[board.fen()]


def _hand_made():
    from chess_exp.experts.policies import legal_moves

    positions = [check.Position(game=f"g{i % 2}", ply=i, board=chess.Board(f), sans=()) for i, f in enumerate(FENS)]
    rng = np.random.default_rng(3)
    tables = [{}, {}]
    rewards, best = [], []
    for p in positions:
        ms = legal_moves(p.board)
        for t in tables:
            v = rng.random(len(ms)) ** 3
            t[p.board.fen()] = v / v.sum()
        rewards.append({m: float(rng.random()) for m in ms})
        best.append(ms[0])
    experts = [_FixedExpert("a", tables[0]), _FixedExpert("b", tables[1])]
    return positions, experts, tables, rewards, best


def _dense_by_hand(positions, tables, rewards, best):
    """The same instance written out in the test: padding columns stay 0."""
    from chess_exp.experts.policies import legal_moves

    ms = [legal_moves(p.board) for p in positions]
    y = max(len(m) for m in ms)
    e = np.zeros((len(tables), len(positions), y))
    r = np.zeros((len(positions), y))
    for x, (p, m) in enumerate(zip(positions, ms)):
        for i, t in enumerate(tables):
            e[i, x, :len(m)] = t[p.board.fen()]
        r[x, :len(m)] = [rewards[x][mv] for mv in m]
    return e, r


def test_check_equals_the_core_on_hand_made_positions() -> None:
    positions, experts, tables, rewards, best = _hand_made()
    inst = check.build_instance(positions, experts, [0.7, 0.3], rewards, best)
    e, r = _dense_by_hand(positions, tables, rewards, best)
    assert np.array_equal(inst.experts, e) and np.array_equal(inst.reward, r)
    learner = np.where(inst.legal, 1.0, 0.0) ** 1
    learner = learner * (np.arange(learner.shape[1]) + 1.0)
    learner = np.where(inst.legal, learner, 0.0)
    learner /= learner.sum(axis=1, keepdims=True)
    taus = (0.0, 0.5, 1.0, 2.0)
    rows = check.evaluate(inst, {"model": learner}, temperatures=taus, n_boot=200)
    test = np.full(len(positions), 1 / len(positions))
    by = {(row["player"], row["temperature"]): row for row in rows}
    exp_r = tr.expected_reward(e, r, test)
    best_i = int(np.argmax(exp_r))
    for i, name in enumerate(["a", "b"]):
        # R(expert) as a plain double sum over positions and moves
        want = sum(np.dot(e[i, x], r[x]) for x in range(len(positions))) / len(positions)
        assert by[(name, 1.0)]["reward"] == pytest.approx(want, abs=1e-12)
    for tau in taus:
        res = tr.check_transcendence(e, r, test, temperature=tau, weights=[0.7, 0.3])
        assert by[("mixture", tau)]["reward"] == pytest.approx(res.predictor_reward, abs=1e-12)
        assert by[("mixture", tau)]["margin"] == pytest.approx(res.margin, abs=1e-12)
        want = tr.tempered_reward(learner, tau, r, test)
        assert by[("model", tau)]["reward"] == pytest.approx(want, abs=1e-12)
        assert by[("model", tau)]["margin"] == pytest.approx(want - exp_r[best_i], abs=1e-12)
    assert by[("mixture", 0.0)]["tau_star"] == tr.critical_temperature(e, r, test, weights=[0.7, 0.3])


def test_padding_never_gets_probability() -> None:
    positions, experts, tables, rewards, best = _hand_made()
    inst = check.build_instance(positions, experts, [0.5, 0.5], rewards, best)
    assert inst.legal.sum(axis=1).tolist() == [20, len(list(chess.Board(FENS[1]).legal_moves)),
                                              len(list(chess.Board(FENS[2]).legal_moves))]
    pad = ~inst.legal
    assert pad.any()
    mix = tr.mixture(inst.experts, weights=inst.weights)
    for policy in [*inst.experts, inst.oracle, inst.uniform, mix]:
        for tau in (0.0, 0.01, 1.0, 10.0):
            assert np.all(tr.temper(policy, tau)[pad] == 0.0)
    assert np.all(inst.reward[pad] == 0.0)
    # a learner given moves that are not the position's legal moves is refused
    moves = list(chess.Board().legal_moves)[:5]
    with pytest.raises(ValueError, match="legal moves"):
        check.learner_matrix(inst, [(moves, np.full(5, 0.2))] * 3)


def test_model_critical_temperature_brackets_the_crossing() -> None:
    positions, experts, tables, rewards, best = _hand_made()
    inst = check.build_instance(positions, experts, [0.5, 0.5], rewards, best)
    r, test = inst.reward, inst.test
    best_r = float(np.max(tr.expected_reward(inst.experts, r, test)))
    top = np.where(inst.legal, r, -np.inf).argmax(axis=1)
    worst = np.where(inst.legal, -r, -np.inf).argmax(axis=1)
    rows = np.arange(len(top))
    for (p_top, p_worst), via_core in (((0.38, 0.37), True), ((0.95, 0.0), False)):
        # the argmax is the reward-best move; at tau = 1 the learner loses (the core's
        # critical_temperature answers) or wins (the direct search answers)
        uniform = np.where(inst.legal, 1.0, 0.0)
        uniform /= uniform.sum(axis=1, keepdims=True)
        learner = (1 - p_top - p_worst) * uniform
        learner[rows, top] += p_top
        learner[rows, worst] += p_worst
        assert (tr.expected_reward(learner, r, test) <= best_r) == via_core
        ts = check.model_critical_temperature(inst.experts, learner, r, test)
        if via_core:
            assert ts is not None and 0 < ts < np.inf
            assert tr.tempered_reward(learner, ts * 0.9, r, test) > best_r
            assert tr.tempered_reward(learner, ts * 1.1, r, test) < best_r
        else:  # here even the uniform mover beats these random experts: no crossing at all
            assert ts == np.inf
            assert min(tr.tempered_reward(learner, np.logspace(-4, 4, 50), r, test)) > best_r
    # a learner whose argmax loses: no tau*
    bad = np.where(inst.legal, 1.0, 0.0)
    bad[np.arange(len(worst)), worst] += 5.0
    bad = np.where(inst.legal, bad, 0.0)
    bad /= bad.sum(axis=1, keepdims=True)
    assert check.model_critical_temperature(inst.experts, bad, r, test) is None


def test_cluster_interval_covers_at_its_nominal_rate() -> None:
    """Clustered data (a game effect shared by its positions): the 95% interval over games covers
    the true mean in about 95% of repeated samples; an interval that ignored the clustering would not."""
    rng = np.random.default_rng(0)
    hits, naive_hits, reps = 0, 0, 300
    from chess_exp.analysis.stats import bootstrap_mean
    for _ in range(reps):
        games = 40
        sizes = rng.integers(1, 12, size=games)
        effect = rng.normal(0.0, 1.0, size=games)
        values = np.concatenate([effect[g] + rng.normal(0.0, 0.5, size=s) for g, s in enumerate(sizes)])
        clusters = np.repeat(np.arange(games), sizes)
        iv = check.cluster_interval(values, clusters, rng=rng, n_boot=400)
        hits += iv.lo <= 0.0 <= iv.hi
        naive = bootstrap_mean(values, rng=rng, n_boot=400)
        naive_hits += naive.lo <= 0.0 <= naive.hi
    assert 0.90 <= hits / reps <= 0.99
    assert naive_hits / reps < 0.85  # positions are not independent: the clustering matters


def _args(**kw) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    check.add_arguments(p)
    base = ["--panel", "noisy3", "--positions", "x.pgn", "--out", "o"]
    extra = [f"--{k.replace('_', '-')}={v}" for k, v in kw.items()]
    return p.parse_args(base + extra)


def test_bad_input_is_one_line_exit_2(tmp_path, capsys) -> None:
    assert check.main(_args(n=0, model="false")) == 2
    assert "--n" in capsys.readouterr().err
    assert check.main(_args(model="true")) == 2
    assert "--checkpoint" in capsys.readouterr().err
    a = _args(model="false", out=str(tmp_path / "o"), positions=str(tmp_path / "missing.pgn"))
    assert check.main(a) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: positions:") and err.count("\n") == 1
    with pytest.raises(SystemExit):
        _args(temperatures="-1")


@pytest.mark.engine
def test_real_stockfish_noisy_identity_and_mixture_argmax(stockfish_path, tmp_path, random_pgn) -> None:
    """Real positions, real Stockfish rewards: R(f_eps) = (1-eps) R(oracle) + eps R(uniform) to 1e-12,
    and the exact mixture's argmax earns exactly R(oracle) on a noisy (Prop. 3) panel."""
    pgn = tmp_path / "games.pgn"
    random_pgn(pgn, 8, seed=1)
    out = tmp_path / "out"
    a = _args(model="false", out=str(out), positions=str(pgn), n=24, nodes=2000, boot=200,
              experts_cache=str(tmp_path / "oracle"), reward_cache=str(tmp_path / "rewards.sqlite"),
              temperatures="0,1")
    assert check.main(a) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["reward"]["limit"] == "nodes=2000"
    for subset in {r["subset"] for r in res["rows"]}:
        rows = {(r["player"], r["temperature"]): r for r in res["rows"] if r["subset"] == subset}
        r_or, r_un = rows[("oracle", 0.0)]["reward"], rows[("uniform", 1.0)]["reward"]
        assert r_or > r_un  # Stockfish's move is better than a random one on average
        for eps in (0.1, 0.2, 0.3):
            got = rows[(f"noisy-eps{eps:g}", 1.0)]["reward"]
            assert abs(got - ((1 - eps) * r_or + eps * r_un)) < 1e-12
            assert rows[(f"noisy-eps{eps:g}", 1.0)]["eps_star"] == pytest.approx(eps, abs=1e-9)
        assert abs(rows[("mixture", 0.0)]["reward"] - r_or) < 1e-12
        assert rows[("mixture", 0.0)]["oracle_agreement"] == 1.0
        # tau = 1: the mixture is the average expert, eps = 0.2 (Prop. 1: no transcendence)
        assert rows[("mixture", 1.0)]["reward"] == pytest.approx(rows[("noisy-eps0.2", 1.0)]["reward"], abs=1e-12)
    assert (out / "results.md").read_text().count("| mixture |") >= 2
    assert (out / "r_vs_tau.png").stat().st_size > 1000


def test_visit_counts_count_positions_of_the_training_games(tmp_path) -> None:
    from chess_exp.experts.oracle import position_key

    pgn = tmp_path / "train.pgn"
    lines = [["e2e4", "e7e5"], ["e2e4", "c7c5"], ["d2d4", "d7d5"]]
    with open(pgn, "w") as f:
        for i, ucis in enumerate(lines):
            g = chess.pgn.Game()
            g.headers["Site"] = f"https://lichess.org/visit{i:03d}"
            node = g
            for u in ucis:
                node = node.add_variation(chess.Move.from_uci(u))
            f.write(str(g) + "\n\n")
    start, after_e4 = chess.Board(), chess.Board()
    after_e4.push_uci("e2e4")
    after_e4_e5 = after_e4.copy()
    after_e4_e5.push_uci("e7e5")  # the final position of a game is not "before a move": not counted
    keys = {position_key(b) for b in (start, after_e4, after_e4_e5)}
    counts = check.visit_counts(pgn, keys)
    assert counts[position_key(start)] == 3
    assert counts[position_key(after_e4)] == 2
    assert counts[position_key(after_e4_e5)] == 0
    assert check.visit_counts(pgn, keys, max_games=1)[position_key(after_e4)] == 1


def test_transcript_model_checkpoint_is_a_learner(tmp_path, tokenizer, tiny_gpt) -> None:
    """A transcript-GPT checkpoint gives the same exact distributions as the model's player does."""
    from chess_exp.model.checkpoints import save_checkpoint
    from chess_exp.play.players import ModelPlayer

    tok = tokenizer("move")
    model = tiny_gpt("move")
    ckpt = tmp_path / "checkpoints" / "ckpt.pt"
    save_checkpoint(ckpt, model, None, 3, {"note": "test"}, "move")
    board = chess.Board()
    sans = []
    for san in ("e4", "e5", "Nf3"):
        sans.append(san)
        board.push_san(san)
    positions = [check.Position("g", 0, chess.Board(), ()), check.Position("g", 3, board, tuple(sans))]
    dists, legal_mass, family = check._learner_distributions(str(ckpt), positions)
    assert family == "transcript GPT" and legal_mass is None
    want = ModelPlayer(model, tok, policy="exact").move_distributions([p.board for p in positions],
                                                                        [p.sans for p in positions])
    for (moves, probs), (w_moves, w_probs), pos in zip(dists, want, positions):
        assert set(moves) == set(pos.board.legal_moves) and abs(probs.sum() - 1) < 1e-12
        assert moves == w_moves and np.allclose(probs, w_probs, atol=1e-12)
