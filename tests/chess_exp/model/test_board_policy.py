"""The board-input move policy: encoding, move slots, the legal-move loss, exact resume."""

from __future__ import annotations

import chess
import chess.pgn
import numpy as np
import pytest
import torch

from chess_exp.model import board as bp


def _random_games(n: int, seed: int, plies: int = 60) -> list[list[chess.Move]]:
    rng = np.random.default_rng(seed)
    games = []
    for _ in range(n):
        b, moves = chess.Board(), []
        for _ in range(plies):
            legal = list(b.legal_moves)
            if not legal:
                break
            m = legal[int(rng.integers(len(legal)))]
            moves.append(m)
            b.push(m)
        games.append(moves)
    return games


def _write_pgn(path, games) -> None:
    with open(path, "w") as f:
        for i, moves in enumerate(games):
            g = chess.pgn.Game()
            g.headers["Round"] = str(i)
            node = g
            for m in moves:
                node = node.add_variation(m)
            f.write(str(g) + "\n\n")


def test_move_slots_are_distinct_and_mirrored() -> None:
    for moves in _random_games(20, 1, plies=120):
        b = chess.Board()
        for m in moves:
            _, idx = bp.legal_indices(b)
            assert len(set(idx.tolist())) == len(idx)  # no two legal moves share a slot
            assert idx.min() >= 0 and idx.max() < bp.N_MOVES
            b.push(m)
    # the mover's frame: 1.e4 for White and ...e5 for Black are the same slot
    assert bp.move_index(chess.Move.from_uci("e2e4"), chess.WHITE) == bp.move_index(
        chess.Move.from_uci("e7e5"), chess.BLACK) == chess.E2 * 64 + chess.E4
    # under-promotions get their own slots, queen promotion is the from/to slot
    q, n = chess.Move.from_uci("a7a8q"), chess.Move.from_uci("a7a8n")
    assert bp.move_index(q, chess.WHITE) == chess.A7 * 64 + chess.A8
    assert bp.move_index(n, chess.WHITE) >= 64 * 64


def test_encoding_is_from_the_movers_side() -> None:
    b = chess.Board()
    b.push_uci("e2e4")
    # mirroring the board (colours swapped, side to move swapped) gives the same features
    assert np.array_equal(bp.encode_board(b), bp.encode_board(b.mirror()))
    f = bp.unpack_features(bp.encode_board(chess.Board())[None])[0]
    assert f.shape == (bp.N_FEATURES,)
    assert f[:64].sum() == 8 and f[64 * 6:64 * 7].sum() == 8  # own and opponent pawns
    assert f[64 * 12:64 * 12 + 4].tolist() == [1, 1, 1, 1]  # all castling rights
    assert f[chess.E2] == 1 and f[64 * 6 + chess.E7] == 1  # White to move: no mirroring
    g = bp.unpack_features(bp.encode_board(b)[None])[0]  # Black to move after 1.e4: mirrored
    assert g[chess.E2] == 1 and g[64 * 6 + chess.E5] == 1 and g[64 * 6 + chess.E2] == 0


def test_policy_is_over_legal_moves_only() -> None:
    torch.manual_seed(0)
    model = bp.BoardPolicy(bp.BoardPolicyConfig(hidden=32, layers=1))
    boards = []
    for moves in _random_games(3, 2, plies=30):
        b = chess.Board()
        for m in moves:
            b.push(m)
            if not b.is_game_over():
                boards.append(b.copy())
    for b, (moves, probs, legal_mass) in zip(boards, model.move_distributions(boards)):
        assert moves == sorted(b.legal_moves, key=chess.Move.uci)
        assert probs.shape == (len(moves),) and abs(probs.sum() - 1) < 1e-12 and probs.min() > 0
        assert 0 < legal_mass < 1
    # the gathered legal logits are the full head's entries
    feats = torch.from_numpy(bp.unpack_features(np.stack([bp.encode_board(b) for b in boards[:4]])))
    idx = torch.tensor([bp.legal_indices(b)[1][:5].tolist() for b in boards[:4]])
    valid = torch.ones_like(idx, dtype=torch.bool)
    valid[0, 4] = False
    got = model.legal_logits(feats, idx, valid)
    full = model(feats)
    assert torch.isinf(got[0, 4]) and got[0, 4] < 0
    assert torch.allclose(got[1], full[1, idx[1]])


def test_training_learns_a_majority_and_resumes_exactly(tmp_path) -> None:
    # every game repeats one opening line, so the played move is the majority at each position
    line = [chess.Move.from_uci(u) for u in ("e2e4", "e7e5", "g1f3", "b8c6", "f1b5")]
    games = []  # the line, then random continuations
    rng = np.random.default_rng(4)
    for _ in range(20):
        b = chess.Board()
        for m in line:
            b.push(m)
        moves = list(line)
        for _ in range(6):
            legal = list(b.legal_moves)
            m = legal[int(rng.integers(len(legal)))]
            moves.append(m)
            b.push(m)
        games.append(moves)
    pgn = tmp_path / "g.pgn"
    _write_pgn(pgn, games)
    cfg = bp.TrainConfig(games=str(pgn), model=bp.BoardPolicyConfig(hidden=64, layers=1), batch=32,
                         lr=1e-2, epochs=8, warmup=3, seed=7, threads=1, log_every=1000, ckpt_every=3)
    logs: list[str] = []
    bp.train(cfg, tmp_path / "a", log=logs.append)
    model = bp.load_board_policy(tmp_path / "a")
    b = chess.Board()
    for m in line:
        moves, probs, _ = model.move_distributions([b])[0]
        assert moves[int(np.argmax(probs))] == m  # the majority move is the argmax
        b.push(m)
    # interrupted after a few steps, then resumed: the same weights as the uninterrupted run
    import dataclasses
    short = dataclasses.replace(cfg, stop_after_s=1e-9)
    bp.train(short, tmp_path / "b", log=logs.append)
    state_b = torch.load(tmp_path / "b" / "ckpt.pt", weights_only=False)
    assert 0 < state_b["step"] < state_b["total_steps"]
    bp.train(cfg, tmp_path / "b", log=logs.append)
    sa = torch.load(tmp_path / "a" / "ckpt.pt", weights_only=False)["model"]
    sb = torch.load(tmp_path / "b" / "ckpt.pt", weights_only=False)["model"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    # another config in the same directory is refused
    with pytest.raises(ValueError, match="another config"):
        bp.train(dataclasses.replace(cfg, lr=5e-3), tmp_path / "b", log=logs.append)
    # the same games through a symlink are the same run: the finished checkpoint is returned as it is
    (tmp_path / "link").symlink_to(tmp_path)
    before = (tmp_path / "b" / "ckpt.pt").read_bytes()
    assert bp.train(dataclasses.replace(cfg, games=str(tmp_path / "link" / "g.pgn")), tmp_path / "b",
                    log=logs.append) == tmp_path / "b" / "ckpt.pt"
    assert (tmp_path / "b" / "ckpt.pt").read_bytes() == before


def test_cli_bad_input_exits_2(tmp_path, capsys) -> None:
    assert bp.main(["--games", str(tmp_path / "missing.pgn"), "--out", str(tmp_path / "o")]) == 2
    assert "--games" in capsys.readouterr().err
    pgn = tmp_path / "g.pgn"
    _write_pgn(pgn, _random_games(1, 0, plies=4))
    assert bp.main(["--games", str(pgn), "--out", str(tmp_path / "o"), "--hidden", "0"]) == 2
    assert "--hidden" in capsys.readouterr().err
