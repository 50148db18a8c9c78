"""A board-input move policy for CPU budgets: the position in, a from/to-square move head out.

The transcript GPT has to learn the rules of chess from move sequences before it can learn which
move an expert prefers; on two CPU cores and an hour it does not get that far. This model is
given the board and the legal moves, so all of its capacity goes to preferences:

* input: the position from the mover's side (the board is mirrored when Black moves), 12 piece
  planes (own pieces first) of 64 squares, 4 castling rights (own K/Q, opponent K/Q) and the file
  of a legal en-passant capture: 780 binary features;
* a small MLP trunk;
* a policy head that scores every (from, to) square pair (4,096 logits, in the mover's frame) plus
  72 under-promotion logits; a move's logit is its entry;
* the loss is the cross-entropy of the played move over the *legal* moves only (the softmax is
  masked to the position's legal moves), and the exact policy in play is the same masked softmax.

Because the input is the board (the theory's x) and not the game history, every expert of a panel
is a function of this input, so the ideal cross-entropy learner is the panel's prior mixture.

Training (``transcendence-board-train``, or ``python -m chess_exp.model.board``) reads PGN games,
is seeded, prints one progress line per ``log_every`` steps (step, epoch, loss, examples/s, wall
and CPU seconds) and checkpoints ``ckpt.pt`` atomically every ``ckpt_every`` steps and at the end.
A second call with the same ``--out`` resumes exactly: model, optimiser, step and the data order
(a pure function of ``(seed, epoch)``) are restored, so an interrupted run ends with the same
weights as an uninterrupted one.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import chess
import chess.pgn
import numpy as np
import torch
from torch import nn

__all__ = ["board_checkpoint", "BoardPolicyConfig", "BoardPolicy", "TrainConfig", "encode_board", "move_index",
           "legal_indices", "positions_from_pgn", "PositionSet", "train", "load_board_policy",
           "BoardPolicyPlayer", "N_FEATURES", "N_MOVES"]

N_PLANES = 12
N_FEATURES = N_PLANES * 64 + 4 + 8  # piece planes, castling rights, en-passant file
N_FROM_TO = 64 * 64
N_MOVES = N_FROM_TO + 3 * 24  # from/to pairs + under-promotions (piece x from-file x direction)

_PIECE_ORDER = (chess.PAWN, chess.KNIGHT, chess.BISHOP, chess.ROOK, chess.QUEEN, chess.KING)


def _flip(sq: int, turn: chess.Color) -> int:
    return sq if turn == chess.WHITE else chess.square_mirror(sq)


def move_index(move: chess.Move, turn: chess.Color) -> int:
    """The move's output index in the mover's frame: ``from*64+to``, or an under-promotion slot."""
    f, t = _flip(move.from_square, turn), _flip(move.to_square, turn)
    if move.promotion is not None and move.promotion != chess.QUEEN:
        piece = {chess.KNIGHT: 0, chess.BISHOP: 1, chess.ROOK: 2}[move.promotion]
        direction = chess.square_file(t) - chess.square_file(f) + 1  # 0, 1, 2
        return N_FROM_TO + 24 * piece + 3 * chess.square_file(f) + direction
    return f * 64 + t


def encode_board(board: chess.Board) -> np.ndarray:
    """The 780 binary features of ``board`` from the mover's side, packed: 12 uint64 plane
    bitboards followed by one uint64 holding castling (bits 0-3) and en-passant file (bits 4-11)."""
    turn = board.turn
    out = np.zeros(N_PLANES + 1, dtype=np.uint64)
    for side_i, color in enumerate((turn, not turn)):
        for p_i, piece in enumerate(_PIECE_ORDER):
            bb = int(board.pieces_mask(piece, color))
            if turn == chess.BLACK:
                bb = chess.flip_vertical(bb)
            out[side_i * 6 + p_i] = np.uint64(bb)
    extra = 0
    for bit, (color, rook_side) in enumerate(((turn, "K"), (turn, "Q"), (not turn, "K"), (not turn, "Q"))):
        has = (board.has_kingside_castling_rights(color) if rook_side == "K"
               else board.has_queenside_castling_rights(color))
        extra |= int(has) << bit
    ep = board.ep_square if board.has_legal_en_passant() else None
    if ep is not None:
        extra |= 1 << (4 + chess.square_file(ep))
    out[N_PLANES] = np.uint64(extra)
    return out


def unpack_features(packed: np.ndarray) -> np.ndarray:
    """(n, 13) uint64 packed boards -> (n, 780) float32 features."""
    packed = np.ascontiguousarray(packed, dtype=np.uint64)
    bits = np.unpackbits(packed.view(np.uint8).reshape(len(packed), 13, 8), axis=-1, bitorder="little")
    bits = bits.reshape(len(packed), 13 * 64)
    return bits[:, :N_FEATURES].astype(np.float32)


def legal_indices(board: chess.Board) -> tuple[list[chess.Move], np.ndarray]:
    """The legal moves (sorted by UCI, the experts' order) and their output indices."""
    moves = sorted(board.legal_moves, key=chess.Move.uci)
    return moves, np.array([move_index(m, board.turn) for m in moves], dtype=np.int64)


# --- the model -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class BoardPolicyConfig:
    hidden: int = 512  # width of the trunk
    layers: int = 2  # hidden layers of the trunk
    dropout: float = 0.0


class BoardPolicy(nn.Module):
    """MLP trunk over the board features and a linear head over the 4,168 move slots."""

    def __init__(self, config: BoardPolicyConfig = BoardPolicyConfig()) -> None:
        super().__init__()
        self.config = config
        dims = [N_FEATURES] + [config.hidden] * config.layers
        trunk: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            trunk += [nn.Linear(a, b), nn.GELU()]
            if config.dropout > 0:
                trunk.append(nn.Dropout(config.dropout))
        self.trunk = nn.Sequential(*trunk)
        self.head = nn.Linear(dims[-1], N_MOVES)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, 780) -> (B, 4168) logits over all move slots (mask to the legal ones)."""
        return self.head(self.trunk(features))

    def legal_logits(self, features: torch.Tensor, idx: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Logits of the move slots ``idx`` (B, L), -inf where ``valid`` is False (the softmax over
        them is the policy over legal moves). The full head and a gather: on CPU this is faster than
        gathering head rows, whose backward scatters into the weight."""
        return self(features).gather(1, idx).masked_fill(~valid, float("-inf"))

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @torch.no_grad()
    def move_distributions(self, boards: Sequence[chess.Board], batch: int = 1024
                           ) -> list[tuple[list[chess.Move], np.ndarray, float]]:
        """For each board: its legal moves (sorted by UCI), the exact policy over them (the softmax
        masked to the legal moves) and the mass the unmasked softmax puts on legal moves."""
        was = self.training
        self.eval()
        out: list[tuple[list[chess.Move], np.ndarray, float]] = []
        for start in range(0, len(boards), batch):
            chunk = boards[start:start + batch]
            feats = torch.from_numpy(unpack_features(np.stack([encode_board(b) for b in chunk])))
            logp_all = torch.log_softmax(self(feats).double(), dim=-1).numpy()
            for row, b in zip(logp_all, chunk):
                moves, idx = legal_indices(b)
                lp = row[idx]
                legal_mass = float(np.exp(lp).sum())
                p = np.exp(lp - lp.max())
                out.append((moves, p / p.sum(), legal_mass))
        self.train(was)
        return out


# --- data ----------------------------------------------------------------------------------------

@dataclass
class PositionSet:
    """Positions of games: packed boards, the played move's index, the legal move indices (CSR)."""

    packed: np.ndarray  # (n, 13) uint64
    target: np.ndarray  # (n,) int64, output index of the played move
    legal_ptr: np.ndarray  # (n+1,) int64 offsets into legal_idx
    legal_idx: np.ndarray  # (total,) int16 output indices of the legal moves
    game: np.ndarray  # (n,) int32 game number in the file
    ply: np.ndarray  # (n,) int32 ply before the move

    def __len__(self) -> int:
        return len(self.target)

    def save(self, path: Path) -> None:
        from transcendence.io import atomic_open
        with atomic_open(path, "wb", encoding=None) as f:
            np.savez(f, **asdict(self))

    @classmethod
    def load(cls, path: Path) -> PositionSet:
        with np.load(path) as z:
            return cls(**{k: z[k] for k in ("packed", "target", "legal_ptr", "legal_idx", "game", "ply")})

    def legal_batch(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Padded legal move indices ``(B, L)``, their validity mask ``(B, L)`` and the position of
        the played move in each row ``(B,)``."""
        starts, stops = self.legal_ptr[rows], self.legal_ptr[rows + 1]
        width = int((stops - starts).max())
        idx = np.zeros((len(rows), width), dtype=np.int64)
        valid = np.zeros((len(rows), width), dtype=bool)
        where = np.zeros(len(rows), dtype=np.int64)
        for i, (a, b) in enumerate(zip(starts, stops)):
            legal = self.legal_idx[a:b]
            idx[i, :b - a] = legal
            valid[i, :b - a] = True
            where[i] = int(np.flatnonzero(legal == self.target[rows[i]])[0])
        return torch.from_numpy(idx), torch.from_numpy(valid), torch.from_numpy(where)


def iter_pgn_games(path: str | Path) -> Iterable[chess.pgn.Game]:
    with open(path, encoding="utf-8", errors="replace") as f:
        while True:
            game = chess.pgn.read_game(f)
            if game is None:
                return
            yield game


def positions_from_pgn(path: str | Path, *, max_games: int | None = None) -> PositionSet:
    """Every position (before each move) of the first ``max_games`` games of a PGN file."""
    packed, target, legal, games, plies = [], [], [], [], []
    for g, game in enumerate(iter_pgn_games(path)):
        if max_games is not None and g >= max_games:
            break
        board = game.board()
        for ply, move in enumerate(game.mainline_moves()):
            packed.append(encode_board(board))
            target.append(move_index(move, board.turn))
            legal.append(np.array([move_index(m, board.turn) for m in board.legal_moves], dtype=np.int16))
            games.append(g)
            plies.append(ply)
            board.push(move)
    if not packed:
        raise ValueError(f"positions: no game with moves in {path}")
    ptr = np.zeros(len(legal) + 1, dtype=np.int64)
    ptr[1:] = np.cumsum([len(x) for x in legal])
    return PositionSet(np.stack(packed), np.array(target, dtype=np.int64), ptr, np.concatenate(legal),
                       np.array(games, dtype=np.int32), np.array(plies, dtype=np.int32))


# --- training ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrainConfig:
    games: str = "runs/h1/train_noisy3.pgn"  # PGN of training games
    max_games: int = 0  # use the first N games (0: all)
    model: BoardPolicyConfig = field(default_factory=BoardPolicyConfig)
    batch: int = 512
    lr: float = 1e-3
    weight_decay: float = 0.0
    epochs: float = 10.0  # passes over the positions (fractional allowed)
    warmup: int = 100  # linear warm-up steps, then cosine decay to lr/10
    seed: int = 0
    threads: int = 2
    log_every: int = 50
    ckpt_every: int = 200
    keep_every: int = 0  # also keep a copy ckpt-step<N>.pt every N steps (a learning curve); 0: none
    stop_after_s: float = 0.0  # stop (with a checkpoint) after this many wall seconds in this call; 0: never


def _lr(cfg: TrainConfig, step: int, total: int) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    frac = min(1.0, (step - cfg.warmup) / max(1, total - cfg.warmup))
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))


def _order(seed: int, epoch: int, n: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(n)


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _config_from_dict(d: dict) -> TrainConfig:
    d = dict(d)
    d["model"] = BoardPolicyConfig(**d["model"])
    return TrainConfig(**d)


def _print(line: str) -> None:
    print(line, flush=True)


def train(cfg: TrainConfig, out: str | Path, *, log=_print) -> Path:
    """Train (or resume) a :class:`BoardPolicy` on ``cfg.games``; returns the checkpoint path."""
    from transcendence.io import atomic_open, atomic_write_json

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "ckpt.pt"
    torch.set_num_threads(cfg.threads)
    if ckpt_path.exists():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        saved = _config_from_dict(state["train_config"])
        # the same games reached by another path (a symlink, relative or absolute) are the same run
        games = saved.games if os.path.realpath(saved.games) == os.path.realpath(cfg.games) else cfg.games
        if asdict(saved) != {**asdict(cfg), "stop_after_s": saved.stop_after_s, "games": games}:
            raise ValueError(f"out: {out} holds a run with another config; use a new --out or the same options")
    else:
        state = None
    data_cache = out / "positions.npz"
    if data_cache.exists():
        data = PositionSet.load(data_cache)
    else:
        t0 = time.time()
        data = positions_from_pgn(cfg.games, max_games=cfg.max_games or None)
        data.save(data_cache)
        log(f"positions: {len(data)} from {data.game.max() + 1} games of {cfg.games} "
            f"({time.time() - t0:.0f} s)")
    torch.manual_seed(cfg.seed)
    model = BoardPolicy(cfg.model)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    n = len(data)
    steps_per_epoch = max(1, n // cfg.batch)
    total = max(1, int(round(cfg.epochs * steps_per_epoch)))
    step, cpu_before, wall_before = 0, 0.0, 0.0
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step, cpu_before, wall_before = state["step"], state["cpu_s"], state["wall_s"]
        torch.set_rng_state(state["torch_rng"])
        log(f"resumed at step {step}/{total}")
    else:
        atomic_write_json(out / "config.json", asdict(cfg))
    t_wall, t_cpu = time.time(), _cpu_seconds()

    def save() -> None:
        st = {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
              "train_config": asdict(cfg), "model_config": asdict(cfg.model),
              "cpu_s": cpu_before + _cpu_seconds() - t_cpu, "wall_s": wall_before + time.time() - t_wall,
              "torch_rng": torch.get_rng_state(), "n_positions": n, "total_steps": total}
        with atomic_open(ckpt_path, "wb", encoding=None) as f:
            torch.save(st, f)

    model.train()
    loss_sum, loss_n, t_log = 0.0, 0, time.time()
    while step < total:
        epoch, k = divmod(step, steps_per_epoch)
        rows = _order(cfg.seed, epoch, n)[k * cfg.batch:(k + 1) * cfg.batch]
        feats = torch.from_numpy(unpack_features(data.packed[rows]))
        idx, valid, where = data.legal_batch(rows)
        loss = nn.functional.cross_entropy(model.legal_logits(feats, idx, valid), where)
        for g in opt.param_groups:
            g["lr"] = _lr(cfg, step, total)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        loss_sum += float(loss.detach()) * len(rows)
        loss_n += len(rows)
        if step % cfg.log_every == 0 or step == total:
            dt = time.time() - t_log
            log(json.dumps({"step": step, "of": total, "epoch": round(step / steps_per_epoch, 3),
                            "loss_legal": round(loss_sum / loss_n, 4), "ex_per_s": round(loss_n / max(dt, 1e-9)),
                            "wall_s": round(wall_before + time.time() - t_wall, 1),
                            "cpu_s": round(cpu_before + _cpu_seconds() - t_cpu, 1),
                            "load1": round(os.getloadavg()[0], 2)}))
            loss_sum, loss_n, t_log = 0.0, 0, time.time()
        if step % cfg.ckpt_every == 0 or step == total:
            save()
        if cfg.keep_every and step % cfg.keep_every == 0:
            if step % cfg.ckpt_every != 0 and step != total:
                save()
            import shutil
            shutil.copyfile(ckpt_path, out / f"ckpt-step{step}.pt")
        if cfg.stop_after_s and time.time() - t_wall > cfg.stop_after_s and step < total:
            save()
            log(f"stopped at step {step}/{total} after {cfg.stop_after_s:g} s; run again to resume")
            break
    return ckpt_path


def board_checkpoint(path: str | Path) -> Path | None:
    """The ``ckpt.pt`` of ``path`` (a run directory or the file) when it is a board-policy
    checkpoint; None for anything else (for example a transcript model's checkpoint)."""
    path = Path(path)
    ckpt = path / "ckpt.pt" if path.is_dir() else path
    if not ckpt.is_file():
        return None
    try:  # memory-mapped: a large transcript checkpoint is not read just to say it is not ours
        state = torch.load(ckpt, map_location="cpu", weights_only=False, mmap=True)
    except RuntimeError:  # the legacy (non-zip) format cannot be mapped
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
    return ckpt if isinstance(state, dict) and "model_config" in state and "train_config" in state else None


def load_board_policy(path: str | Path) -> BoardPolicy:
    """A trained :class:`BoardPolicy` from a run directory or its ``ckpt.pt``."""
    path = Path(path)
    if path.is_dir():
        path = path / "ckpt.pt"
    if not path.exists():
        raise FileNotFoundError(f"checkpoint: {path} not found (train one with python -m chess_exp.model.board)")
    state = torch.load(path, map_location="cpu", weights_only=False)
    if "model_config" not in state:
        raise ValueError(f"checkpoint: {path} is not a board-policy checkpoint")
    model = BoardPolicy(BoardPolicyConfig(**state["model_config"]))
    model.load_state_dict(state["model"])
    model.eval()
    return model


class BoardPolicyPlayer:
    """A :data:`~chess_exp.experts.policies.MovePolicy` view: ``player(board) -> (moves, probs)``."""

    def __init__(self, model: BoardPolicy, name: str = "board-policy") -> None:
        self.model = model
        self.name = name

    def __call__(self, board: chess.Board) -> tuple[list[chess.Move], np.ndarray]:
        moves, probs, _ = self.model.move_distributions([board])[0]
        return moves, probs


# --- command line --------------------------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m chess_exp.model.board",
                                description="Train (or resume) a board-input move policy on PGN games.")
    p.add_argument("--games", required=True, help="PGN file of training games")
    p.add_argument("--out", required=True, help="run directory (a second call resumes it)")
    p.add_argument("--max-games", type=int, default=0)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--epochs", type=float, default=10.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--ckpt-every", type=int, default=200)
    p.add_argument("--keep-every", type=int, default=0, help="keep ckpt-step<N>.pt every N steps")
    p.add_argument("--stop-after-s", type=float, default=0.0, help="stop with a checkpoint after this many s")
    a = p.parse_args(argv)
    if not Path(a.games).exists():
        print(f"error: --games: {a.games} not found (generate games with `transcendence chess experts "
              f"generate`)", file=sys.stderr)
        return 2
    for name in ("hidden", "layers", "batch", "threads", "log_every", "ckpt_every"):
        if getattr(a, name) < 1:
            print(f"error: --{name.replace('_', '-')}: must be >= 1, got {getattr(a, name)}", file=sys.stderr)
            return 2
    if not (a.lr > 0 and a.epochs > 0):
        print("error: --lr and --epochs must be > 0", file=sys.stderr)
        return 2
    cfg = TrainConfig(games=a.games, max_games=a.max_games,
                      model=BoardPolicyConfig(hidden=a.hidden, layers=a.layers), batch=a.batch, lr=a.lr,
                      weight_decay=a.weight_decay, epochs=a.epochs, seed=a.seed, threads=a.threads,
                      log_every=a.log_every, ckpt_every=a.ckpt_every, keep_every=a.keep_every,
                      stop_after_s=a.stop_after_s)
    try:
        train(cfg, a.out)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
