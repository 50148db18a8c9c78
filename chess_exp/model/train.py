"""Train the GPT of ``chess_exp.model.gpt`` on prepared games (PAPER.md §3.4), nanoGPT-style.

One loop for a laptop CPU, one GPU, or many processes under ``torchrun`` (DDP; gloo on CPU, NCCL
on CUDA): AdamW (betas 0.9/0.95, weight decay on matrices only), linear warm-up then cosine decay,
gradient clipping, gradient accumulation, bf16 autocast and optional ``torch.compile`` on CUDA,
validation loss and held-out move-prediction accuracy at intervals, a progress line with tokens/s
and ETA, ``metrics.jsonl``, and atomic checkpoints.

Data order is a pure function of ``(seed, step)``: the global batch of step s is drawn from
``numpy.random.default_rng([seed, 1, s])`` and split between processes and micro-batches. So a
run killed at any moment (``kill -9`` included) and resumed from its last checkpoint sees the same
batches and produces the same losses as an uninterrupted run, and a DDP run over W processes
sees the same global batches as one process with the same ``grad_accum``.

Every training window starts at a game start (the paper's blocks start at ';'): the model learns
position 0 as the start of a game, which is where every play prompt starts.

Command line::

    transcendence chess train --preset small_cpu --data runs/data/move-1300 --out runs/small_cpu-1300 \\
        --max_iters=3000 --num_threads=1
    torchrun --nproc_per_node=4 -m chess_exp.model.train --preset paper_50m --data DIR --out runs/p50m
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from chess_exp.model.gpt import GPT, GPTConfig
from transcendence.config import apply_overrides, config_to_dict, write_run_metadata

__all__ = ["TrainConfig", "PRESETS", "train", "load_split", "get_batch", "next_move_accuracy",
           "legal_move_accuracy", "evaluate_run", "add_arguments", "main"]


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """One training run. Every field can be set from the command line (``--model.n_layer=4``)."""

    model: GPTConfig = field(default_factory=GPTConfig)  # network shape (vocab_size is taken from the data)
    data_dir: Path | None = None  # prepared dir: train.bin, val.bin, *_offsets.npy, meta.json
    out_dir: Path = Path("runs/train")  # run dir: config.json, metrics.jsonl, checkpoints/ckpt.pt
    seed: int = 1337  # init and data order (the batch of step s depends on (seed, s) only)
    batch_size: int = 12  # sequences per micro-batch per process
    grad_accum: int = 1  # micro-batches per optimizer step over ALL processes (a multiple of the world size)
    max_iters: int = 1000  # optimizer steps
    max_minutes: float = 0.0  # stop (with a checkpoint) after this much wall-clock time; 0 = no limit
    learning_rate: float = 3e-4  # peak learning rate
    min_lr: float = 3e-5  # learning rate at the end of the cosine
    warmup_iters: int = 100  # steps of linear warm-up from 0
    lr_decay_iters: int = 0  # steps over which the cosine decays to min_lr; 0 = max_iters
    weight_decay: float = 0.1  # AdamW weight decay, applied to matrices only
    beta1: float = 0.9  # AdamW beta1
    beta2: float = 0.95  # AdamW beta2
    grad_clip: float = 1.0  # clip the global gradient norm to this; 0 = no clipping
    eval_interval: int = 100  # steps between validation evaluations (and checkpoints)
    eval_iters: int = 10  # micro-batches per validation-loss estimate
    eval_acc_games: int = 200  # validation games for the move-prediction accuracy; 0 = skip
    log_interval: int = 10  # steps between progress lines / metrics records
    ckpt_interval: int = 0  # steps between checkpoints; 0 = at every evaluation
    resume: bool = True  # continue from out_dir/checkpoints/ckpt.pt when it exists
    device: str = "auto"  # "auto" (cuda if available), "cpu", "cuda", "cuda:1", ...
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"  # autocast dtype; auto = bf16 on CUDA
    compile: bool = False  # torch.compile the model (CUDA recommended)
    num_threads: int = 0  # torch CPU threads per process; 0 = torch's default


PRESETS: dict[str, TrainConfig] = {
    # The paper's ChessFormer (16 layers, 8 heads, 512 wide, context 1023, char tokens), 125 x 1023
    # tokens per step, 100k steps, lr 3e-4 with 2000 warm-up steps and a cosine over 4e6 steps
    # (so practically constant), bf16 + compile on a GPU.
    "paper_50m": TrainConfig(
        model=GPTConfig(vocab_size=32, block_size=1023, n_layer=16, n_head=8, n_embd=512),
        batch_size=125, grad_accum=1, max_iters=100_000, learning_rate=3e-4, min_lr=3e-5,
        warmup_iters=2000, lr_decay_iters=4_000_000, eval_interval=1000, eval_iters=20,
        log_interval=50, compile=True, seed=1337),
    # Move tokens (vocab 1970), trains in minutes on 2 CPU cores: 1.07M parameters, a quarter of
    # them in the tied embedding; 4096 tokens per step; context 256 moves (a game of 89 full
    # moves, the play limit, needs 179 positions).
    "small_cpu": TrainConfig(
        model=GPTConfig(vocab_size=1970, block_size=256, n_layer=4, n_head=4, n_embd=128,
                        dropout=0.1),
        batch_size=16, grad_accum=1, max_iters=1200, learning_rate=2e-3, min_lr=2e-4,
        warmup_iters=100, weight_decay=0.1, eval_interval=250, eval_iters=20, log_interval=25,
        eval_acc_games=300),
    # For tests: a few seconds on one core.
    "tiny": TrainConfig(
        model=GPTConfig(vocab_size=32, block_size=64, n_layer=2, n_head=2, n_embd=32),
        batch_size=8, grad_accum=1, max_iters=50, learning_rate=3e-3, min_lr=3e-4, warmup_iters=5,
        eval_interval=25, eval_iters=4, log_interval=1, eval_acc_games=50),
}


# ----------------------------------------------------------------------------- data

@dataclass(frozen=True)
class Split:
    """A prepared split: concatenated games ``tokens`` (memmap uint16) and game starts ``offsets``."""

    tokens: np.ndarray  # (N,) uint16
    offsets: np.ndarray  # (n_games,) int64, index of each game's start token
    meta: dict[str, Any]  # the directory's meta.json


def load_split(data_dir: str | os.PathLike[str], split: Literal["train", "val"]) -> Split:
    """Open ``data_dir/{split}.bin`` and ``{split}_offsets.npy`` (written by ``chess prepare``)."""
    data_dir = Path(data_dir)
    paths = [data_dir / f"{split}.bin", data_dir / f"{split}_offsets.npy", data_dir / "meta.json"]
    for p in paths:
        if not p.exists():
            raise ValueError(f"--data {data_dir}: missing {p.name}; write the directory with "
                             "`transcendence chess prepare ... --out DIR`")
    meta = json.loads(paths[2].read_text())
    if paths[0].stat().st_size == 0:
        raise ValueError(f"--data {data_dir}: the {split} split is empty; prepare more games"
                         + (" or use --val-fraction > 0" if split == "val" else ""))
    tokens = np.memmap(paths[0], dtype=np.uint16, mode="r")
    offsets = np.load(paths[1]).astype(np.int64)
    if len(offsets) == 0:
        raise ValueError(f"--data {data_dir}: the {split} split holds no games")
    return Split(tokens=tokens, offsets=offsets, meta=meta)


def tokenizer_name(meta: dict[str, Any]) -> str:
    tok = meta.get("tokenizer")
    if isinstance(tok, dict):
        tok = tok.get("name")
    if not isinstance(tok, str):
        raise ValueError("meta.json has no tokenizer name (key 'tokenizer')")
    return tok


def _window_starts(split: Split, block_size: int) -> np.ndarray:
    starts = split.offsets[split.offsets + block_size + 1 <= len(split.tokens)]
    if len(starts) == 0:
        raise ValueError(f"the split has {len(split.tokens)} tokens, fewer than block_size+1="
                         f"{block_size + 1}; use more games or a smaller --model.block_size")
    return starts


def get_batch(split: Split, rows: np.ndarray, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and targets (B, block_size) for windows starting at the game starts ``rows``."""
    idx = rows[:, None] + np.arange(block_size + 1)[None, :]  # (B, T+1)
    chunk = torch.from_numpy(split.tokens[idx].astype(np.int64))
    return chunk[:, :-1], chunk[:, 1:]


def step_rows(starts: np.ndarray, seed: int, step: int, n: int) -> np.ndarray:
    """The ``n`` window starts of the global batch of ``step``: a pure function of (seed, step)."""
    rng = np.random.default_rng([seed, 1, step])
    return starts[rng.integers(0, len(starts), size=n)]


# ----------------------------------------------------------------------------- schedule

def learning_rate(config: TrainConfig, step: int) -> float:
    """Linear warm-up to ``learning_rate``, then cosine decay to ``min_lr`` at ``lr_decay_iters``."""
    decay_iters = config.lr_decay_iters or config.max_iters
    if step < config.warmup_iters:
        return config.learning_rate * (step + 1) / (config.warmup_iters + 1)
    if step >= decay_iters:
        return config.min_lr
    ratio = (step - config.warmup_iters) / max(1, decay_iters - config.warmup_iters)
    coeff = 0.5 * (1.0 + math.cos(math.pi * ratio))
    return config.min_lr + coeff * (config.learning_rate - config.min_lr)


# ----------------------------------------------------------------------------- evaluation

@torch.no_grad()
def next_move_accuracy(model: GPT, split: Split, *, max_games: int = 0, batch_size: int = 32,
                       ignore: tuple[int, ...] = ()) -> tuple[float, int]:
    """Top-1 next-token accuracy over whole games, each read from position 0 (truncated at block_size).

    With the move tokenizer each token is a move, so this is the held-out next-move accuracy;
    targets in ``ignore`` (start/end tokens) are not counted. Uses the first ``max_games`` games
    (0 = all). Returns (accuracy, number of predictions counted).
    """
    was_training = model.training
    model.eval()
    device = model.lm_head.weight.device
    T = model.config.block_size
    ends = np.append(split.offsets[1:], len(split.tokens))
    games = list(zip(split.offsets, ends))[: max_games or None]
    correct = total = 0
    for i in range(0, len(games), batch_size):
        batch = games[i:i + batch_size]
        width = min(T + 1, max(int(e - s) for s, e in batch))
        seq = torch.full((len(batch), width), -1, dtype=torch.long)
        for r, (s, e) in enumerate(batch):
            n = min(int(e - s), width)
            seq[r, :n] = torch.from_numpy(split.tokens[s:s + n].astype(np.int64))
        x, y = seq[:, :-1].clamp(min=0).to(device), seq[:, 1:].to(device)
        logits, _ = model(x)
        keep = y >= 0
        for token in ignore:
            keep &= y != token
        correct += int(((logits.argmax(-1) == y) & keep).sum())
        total += int(keep.sum())
    model.train(was_training)
    return (correct / total if total else float("nan")), total


def split_games_sans(split: Split, tokenizer: Any, max_games: int = 0) -> list[list[str]]:
    """The SAN moves of the first ``max_games`` games of a prepared split (0 = all)."""
    import re
    import chess

    ends = np.append(split.offsets[1:], len(split.tokens))
    games = []
    for s, e in list(zip(split.offsets, ends))[: max_games or None]:
        ids = [int(t) for t in split.tokens[s:e]]
        if tokenizer.name == "move":
            board, sans = chess.Board(), []
            for token in ids[1:]:
                if token == tokenizer.end_id:
                    break
                move = tokenizer.id_to_move(token)
                sans.append(board.san(move))
                board.push(move)
        else:
            text = tokenizer.decode(ids).lstrip(";")
            sans = [re.sub(r"^\d+\.", "", w) for w in text.split()]
        games.append(sans)
    return games


@torch.no_grad()
def legal_move_accuracy(model: GPT, tokenizer: Any, games: list[list[str]], *,
                        positions_per_call: int = 512) -> tuple[float, int]:
    """How often the model's most likely LEGAL move (the exact policy at temperature 0, from
    :func:`score_continuations` over all legal moves) is the move played, over every position of
    ``games`` (lists of SAN) that fits in the context. Returns (accuracy, positions counted)."""
    was_training = model.training
    model.eval()
    try:
        return _legal_move_accuracy(model, tokenizer, games, positions_per_call)
    finally:
        model.train(was_training)


def _legal_move_accuracy(model: GPT, tokenizer: Any, games: list[list[str]],
                         positions_per_call: int) -> tuple[float, int]:
    import chess
    from chess_exp.model.gpt import score_continuations

    correct = total = 0
    prefixes: list[list[int]] = []
    candidates: list[list[list[int]]] = []
    truth: list[int] = []

    def flush() -> None:
        nonlocal correct, total
        if prefixes:
            scores = score_continuations(model, prefixes, candidates)
            correct += sum(int(np.argmax(sc)) == t for sc, t in zip(scores, truth))
            total += len(truth)
            prefixes.clear(), candidates.clear(), truth.clear()

    if tokenizer.name == "move":  # one token per move: a single causal pass per game gives the same
        T = model.config.block_size
        device = model.lm_head.weight.device
        for sans in games:
            full = tokenizer.encode_game(sans)[:T]
            logits, _ = model(torch.tensor([full], device=device))
            board = chess.Board()
            for i, san in enumerate(sans[:len(full)]):
                move = board.parse_san(san)
                legal = list(board.legal_moves)
                ids = torch.tensor([tokenizer.move_tokens(board, m)[0] for m in legal], device=device)
                correct += legal[int(logits[0, i, ids].argmax())] == move
                total += 1
                board.push(move)
        return (correct / total if total else float("nan")), total

    for sans in games:
        board = chess.Board()
        full = None
        for i, san in enumerate(sans):
            move = board.parse_san(san)
            legal = list(board.legal_moves)
            prefix = full[:i + 1] if full is not None else tokenizer.prefix(sans[:i])
            cands = [tokenizer.move_tokens(board, m) for m in legal]
            if len(prefix) + max(len(c) for c in cands) - 1 > model.config.block_size:
                break
            prefixes.append(prefix)
            candidates.append(cands)
            truth.append(legal.index(move))
            board.push(move)
            if len(prefixes) >= positions_per_call:
                flush()
    flush()
    return (correct / total if total else float("nan")), total


def _special_ids(meta: dict[str, Any]) -> tuple[int, ...]:
    ids = []
    for key in ("start_id", "end_id"):
        value = meta.get(key)
        if value is None and isinstance(meta.get("tokenizer"), dict):
            value = meta["tokenizer"].get(key)
        if isinstance(value, int):
            ids.append(value)
    if not ids:
        try:
            from chess_exp.data.tokenizers import get_tokenizer
            tok = get_tokenizer(tokenizer_name(meta))
            ids = [tok.start_id] + ([tok.end_id] if tok.end_id is not None else [])
        except (ImportError, ValueError, KeyError):
            pass
    return tuple(ids)


@torch.no_grad()
def evaluate_run(run_dir: str | os.PathLike[str], data_dir: str | os.PathLike[str], *,
                 max_games: int = 0, legal_games: int = 200) -> dict[str, Any]:
    """Held-out numbers of a trained run on the validation split of ``data_dir``.

    ``val_loss`` (mean next-token cross-entropy over whole validation games, each read from
    position 0), ``unigram_loss`` (the same for the train split's token frequencies: the baseline
    a model must beat), ``val_move_acc`` (top-1 next-token accuracy over move targets, start/end
    tokens excluded; with the move tokenizer this is next-move accuracy) over ``max_games`` games
    (0 = all), and ``val_legal_move_acc`` (argmax over legal moves, see :func:`legal_move_accuracy`)
    over the first ``legal_games``. Written to ``run_dir/heldout.json``.
    """
    from chess_exp.model.gpt import load_model
    from chess_exp.data.tokenizers import get_tokenizer

    model, meta = load_model(run_dir)
    val, train_split = load_split(data_dir, "val"), load_split(data_dir, "train")
    if tokenizer_name(val.meta) != meta["tokenizer"]:
        raise ValueError(f"--data {data_dir} uses tokenizer {tokenizer_name(val.meta)!r} but the model was "
                         f"trained on {meta['tokenizer']!r}")
    ignore = _special_ids(val.meta)
    acc, n = next_move_accuracy(model, val, max_games=max_games, ignore=ignore)
    # loss over whole games from position 0, the same token set as the accuracy plus start/end
    T = model.config.block_size
    ends = np.append(val.offsets[1:], len(val.tokens))
    games = list(zip(val.offsets, ends))[: max_games or None]
    nll = count = 0.0
    counts = np.bincount(np.asarray(train_split.tokens), minlength=model.config.vocab_size) + 1.0
    unigram = -np.log(counts / counts.sum())
    uni = 0.0
    for i in range(0, len(games), 32):
        batch = games[i:i + 32]
        width = min(T + 1, max(int(e - s) for s, e in batch))
        seq = torch.full((len(batch), width), -1, dtype=torch.long)
        for r, (s, e) in enumerate(batch):
            k = min(int(e - s), width)
            seq[r, :k] = torch.from_numpy(val.tokens[s:s + k].astype(np.int64))
        x, y = seq[:, :-1].clamp(min=0), seq[:, 1:]
        logits, _ = model(x)
        keep = y >= 0
        nll += float(torch.nn.functional.cross_entropy(logits[keep].float(), y[keep], reduction="sum"))
        uni += float(unigram[y[keep].numpy()].sum())
        count += int(keep.sum())
    tokenizer = get_tokenizer(meta["tokenizer"])
    legal_acc, legal_n = legal_move_accuracy(model, tokenizer, split_games_sans(val, tokenizer, legal_games))
    result = {"step": meta["step"], "tokenizer": meta["tokenizer"], "val_games": len(games),
              "val_loss": nll / count, "unigram_loss": uni / count, "val_move_acc": acc,
              "val_move_acc_n": n, "val_legal_move_acc": legal_acc, "val_legal_move_acc_n": legal_n,
              "legal_games": legal_games}
    (Path(run_dir) / "heldout.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


# ----------------------------------------------------------------------------- checkpoints

def checkpoint_path(out_dir: Path) -> Path:
    return Path(out_dir) / "checkpoints" / "ckpt.pt"


def save_checkpoint(path: Path, model: GPT, optimizer: torch.optim.Optimizer, step: int,
                    config: TrainConfig, tokenizer: str, extra: dict[str, Any]) -> None:
    """Write atomically: a temporary file in the same directory, then ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "step": step,  # optimizer steps completed
        "config": dataclasses.asdict(model.config),
        "train_config": config_to_dict(config),
        "tokenizer": tokenizer,
        **extra,
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop the records after ``step`` (written before a crash) so a resumed run appends cleanly."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by the crash
        # train records up to the checkpoint; evaluations before it (the resumed run redoes step's)
        if record.get("step", 0) < step or (record.get("step") == step and record.get("kind") == "train"):
            kept.append(line)
    path.write_text("".join(line + "\n" for line in kept))


# ----------------------------------------------------------------------------- training

def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _fmt_time(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}h{rest // 60:02d}m" if h else f"{rest // 60}m{rest % 60:02d}s"


def train(config: TrainConfig) -> Path:
    """Train (or resume) the run described by ``config``; returns the run directory.

    Under ``torchrun`` (env RANK/WORLD_SIZE set) each process trains a DDP replica; rank 0 writes
    the files. Writes ``config.json``, ``metrics.jsonl`` (one JSON record per log/eval) and
    ``checkpoints/ckpt.pt``.
    """
    if config.data_dir is None:
        raise ValueError("no data: pass --data DIR (a directory written by `transcendence chess prepare`)")
    ddp = int(os.environ.get("WORLD_SIZE", "1")) > 1
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    device = _resolve_device(config.device)
    if ddp:
        import torch.distributed as dist
        if device.type == "cuda":
            device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}")
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    try:
        return _train(config, device, rank, world, ddp)
    finally:
        if ddp:
            import torch.distributed as dist
            dist.destroy_process_group()


def _train(config: TrainConfig, device: torch.device, rank: int, world: int, ddp: bool) -> Path:
    master = rank == 0
    if config.grad_accum % world:
        raise ValueError(f"--grad_accum={config.grad_accum} must be a multiple of the number of "
                         f"processes ({world})")
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    train_split = load_split(config.data_dir, "train")
    val_split = load_split(config.data_dir, "val")
    tokenizer = tokenizer_name(train_split.meta)
    vocab = int(train_split.meta.get("vocab_size", config.model.vocab_size))
    if vocab != config.model.vocab_size:  # the data decides the vocabulary (as nanoGPT's meta.pkl)
        config = dataclasses.replace(config, model=dataclasses.replace(config.model, vocab_size=vocab))
    T, B = config.model.block_size, config.batch_size
    accum_local = config.grad_accum // world
    train_starts = _window_starts(train_split, T)
    val_starts = _window_starts(val_split, T)
    ignore = _special_ids(train_split.meta)

    out_dir = Path(config.out_dir)
    ckpt_file, metrics_file = checkpoint_path(out_dir), out_dir / "metrics.jsonl"
    torch.manual_seed(config.seed)  # the run's entry point: seeds the initial weights
    model = GPT(config.model).to(device)
    optimizer = model.configure_optimizers(config.weight_decay, config.learning_rate,
                                           (config.beta1, config.beta2), device.type)
    step = 0
    if config.resume and ckpt_file.exists():
        ckpt = torch.load(ckpt_file, map_location=device, weights_only=False)
        if ckpt["config"] != dataclasses.asdict(config.model):
            raise ValueError(f"{ckpt_file} was written for model {ckpt['config']}, not "
                             f"{dataclasses.asdict(config.model)}; use another --out or --resume=false")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        step = int(ckpt["step"])
        if master:
            print(f"resuming {out_dir} from step {step}", file=sys.stderr)
    if master:
        out_dir.mkdir(parents=True, exist_ok=True)
        if step == 0 and metrics_file.exists():
            metrics_file.unlink()
        _truncate_metrics(metrics_file, step)
        write_run_metadata(out_dir, config, extra={"tokenizer": tokenizer, "world_size": world,
                                                   "n_params": model.num_params(),
                                                   "resumed_from_step": step})
        print(f"{model.num_params() / 1e6:.2f}M parameters, tokenizer {tokenizer}, "
              f"{len(train_split.offsets)} train / {len(val_split.offsets)} val games, "
              f"{B * config.grad_accum * T} tokens per step, device {device}, world {world}",
              file=sys.stderr)

    use_bf16 = config.dtype == "bfloat16" or (config.dtype == "auto" and device.type == "cuda"
                                               and torch.cuda.is_bf16_supported())
    autocast = (torch.autocast(device_type=device.type, dtype=torch.bfloat16) if use_bf16
                else contextlib.nullcontext())
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    raw_model = model
    if config.compile:
        model = torch.compile(model)  # type: ignore[assignment]
    if ddp:
        from torch.nn.parallel import DistributedDataParallel as DDP
        model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)

    def all_mean(value: float) -> float:
        if not ddp:
            return value
        import torch.distributed as dist
        t = torch.tensor([value], dtype=torch.float64, device=device)
        dist.all_reduce(t)
        return float(t) / world

    def evaluate() -> dict[str, Any]:
        model.eval()
        losses = {}
        for name, split, starts in (("val_loss", val_split, val_starts), ("train_loss_est", train_split,
                                                                             train_starts)):
            rows = step_rows(starts, config.seed + 1, 0 if name == "val_loss" else 1,
                             config.eval_iters * B)  # the same windows at every evaluation
            total = 0.0
            mine = range(rank, config.eval_iters, world)
            with torch.no_grad():
                for k in mine:
                    x, y = get_batch(split, rows[k * B:(k + 1) * B], T)
                    with autocast:
                        _, loss = raw_model(x.to(device), y.to(device))
                    total += float(loss)
            losses[name] = all_mean(total) * world / config.eval_iters
        record: dict[str, Any] = {"kind": "eval", "step": step, **losses}
        if config.eval_acc_games and master:
            with autocast:
                acc, n = next_move_accuracy(raw_model, val_split, max_games=config.eval_acc_games,
                                            ignore=ignore)
            record.update(val_move_acc=acc, val_move_acc_n=n)
        model.train()
        return record

    def log(record: dict[str, Any]) -> None:
        if master:
            with open(metrics_file, "a") as f:
                f.write(json.dumps(record) + "\n")

    def checkpoint(extra: dict[str, Any]) -> None:
        if master:
            save_checkpoint(ckpt_file, raw_model, optimizer, step, config, tokenizer, extra)

    ckpt_every = config.ckpt_interval or config.eval_interval
    tokens_per_step = B * config.grad_accum * T
    t_start = time.time()
    steps_this_run = 0
    last_eval: dict[str, Any] = {}
    model.train()
    while True:
        if step % config.eval_interval == 0 or step == config.max_iters:
            last_eval = evaluate()
            log(last_eval)
            if master:
                acc = last_eval.get("val_move_acc")
                print(f"step {step}: val loss {last_eval['val_loss']:.4f}, train loss "
                      f"{last_eval['train_loss_est']:.4f}" + (f", val move acc {acc:.4f}" if acc is not None
                                                              else ""), file=sys.stderr)
        if step > 0 and (step % ckpt_every == 0 or step == config.max_iters):
            checkpoint({"last_eval": last_eval})
        if step >= config.max_iters:
            break
        elapsed = time.time() - t_start
        stop = config.max_minutes > 0 and elapsed > 60 * config.max_minutes
        if ddp:
            stop = all_mean(float(stop)) > 0
        if stop:
            checkpoint({"last_eval": last_eval})
            if master:
                print(f"stopping at step {step}: --max_minutes={config.max_minutes} reached", file=sys.stderr)
            break

        lr = learning_rate(config, step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        rows = step_rows(train_starts, config.seed, step, B * config.grad_accum)
        torch.manual_seed(config.seed * 1_000_003 + step * 131 + rank)  # dropout, if any: per step
        step_loss = 0.0
        for micro in range(accum_local):
            k = rank * accum_local + micro
            x, y = get_batch(train_split, rows[k * B:(k + 1) * B], T)
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            sync = micro == accum_local - 1
            ctx = model.no_sync() if ddp and not sync else contextlib.nullcontext()  # type: ignore[operator]
            with ctx:
                with autocast:
                    _, loss = model(x, y)
                (loss / accum_local).backward()
            step_loss += loss.item() / accum_local
        grad_norm = 0.0
        if config.grad_clip > 0:
            grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        steps_this_run += 1
        step_loss = all_mean(step_loss)
        if step % config.log_interval == 0 or step == config.max_iters:
            elapsed = time.time() - t_start
            rate = steps_this_run * tokens_per_step / max(elapsed, 1e-9)
            eta = (config.max_iters - step) * elapsed / steps_this_run
            log({"kind": "train", "step": step, "loss": step_loss, "lr": lr, "grad_norm": grad_norm,
                 "tokens": step * tokens_per_step, "tok_per_s": rate, "elapsed_s": elapsed})
            if master:
                print(f"step {step}/{config.max_iters} | loss {step_loss:.4f} | lr {lr:.2e} | "
                      f"{rate:,.0f} tok/s | elapsed {_fmt_time(elapsed)} | ETA {_fmt_time(eta)}",
                      file=sys.stderr, flush=True)
    return out_dir


# ----------------------------------------------------------------------------- command line

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=sorted(PRESETS), default="small_cpu",
                        help="starting configuration (default: small_cpu)")
    parser.add_argument("--data", type=Path, help="prepared data directory (from `chess prepare`)")
    parser.add_argument("--out", type=Path, help="run directory (default: runs/<preset>)")
    parser.add_argument("--eval-only", action="store_true",
                        help="do not train: evaluate the checkpoint in --out on the validation split of "
                             "--data (loss, unigram baseline, next-move accuracy) into heldout.json")
    parser.add_argument("--eval-games", type=int, default=0,
                        help="with --eval-only: validation games for loss and accuracy (0 = all)")
    parser.add_argument("--legal-games", type=int, default=200,
                        help="with --eval-only: validation games for the legal-move accuracy (default 200)")
    parser.epilog = ("Any field of TrainConfig can be overridden as --key=value, e.g. --max_iters=200 "
                     "--model.n_layer=2 --num_threads=1 --resume=false.")
    parser.set_defaults(accepts_overrides=True, func=main)


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    config = PRESETS[args.preset]
    config = apply_overrides(config, getattr(args, "overrides", None) or [])
    if args.data is not None:
        config = dataclasses.replace(config, data_dir=args.data)
    if args.out is not None:
        config = dataclasses.replace(config, out_dir=args.out)
    elif config.out_dir == Path("runs/train"):
        config = dataclasses.replace(config, out_dir=Path("runs") / args.preset)
    return config


def main(args: argparse.Namespace) -> int:
    try:
        config = resolve_config(args)
        if getattr(args, "eval_only", False):
            if config.num_threads:
                torch.set_num_threads(config.num_threads)
            if config.data_dir is None:
                raise ValueError("--eval-only needs --data DIR")
            result = evaluate_run(config.out_dir, config.data_dir, max_games=args.eval_games,
                                  legal_games=args.legal_games)
            print(json.dumps(result, indent=2))
            return 0
        if int(os.environ.get("RANK", "0")) == 0:
            print(json.dumps(config_to_dict(config)), file=sys.stderr)
        out = train(config)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", "0")) == 0:
        print(out)
    return 0


if __name__ == "__main__":  # python -m chess_exp.model.train / torchrun -m chess_exp.model.train
    parser = argparse.ArgumentParser(prog="python -m chess_exp.model.train", description=__doc__.split("\n")[0])
    add_arguments(parser)
    ns, extra = parser.parse_known_args()
    ns.overrides = extra
    sys.exit(main(ns))
