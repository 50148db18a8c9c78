"""Train the GPT of ``chess_exp.model.gpt`` on prepared games, nanoGPT-style.

One loop for a laptop CPU, one GPU, or many processes on many nodes under ``torchrun`` (DDP; gloo on
CPU, NCCL on CUDA): AdamW (betas 0.9/0.95, weight decay on matrices only), linear warm-up then
cosine decay, gradient clipping, bf16 autocast and optional ``torch.compile`` on CUDA, validation
loss and held-out move-prediction accuracy at intervals, a progress line with tokens/s and MFU,
``metrics.jsonl`` (optionally mirrored to TensorBoard or wandb), and atomic checkpoints.

``batch_size`` is the GLOBAL batch: sequences per optimizer step over all processes. Each process
takes a contiguous share of it and, when ``micro_batch_size`` is set, accumulates gradients over
micro-batches of at most that many sequences; each micro-batch's loss is weighted by its share of
the global batch, so the gradient is the mean over the global batch for any world size.
``paper_50m`` therefore makes the paper's 125 x 1023 = 127,875-token steps on 1, 2, 4 or 8 GPUs.

Data order is a pure function of ``(seed, step)``: the global batch of step s is drawn from
``numpy.random.default_rng([seed, 1, s])`` and split between processes and micro-batches. So a
run killed at any moment (``kill -9`` included) and resumed from its last checkpoint sees the same
batches and produces the same losses as an uninterrupted run, and a DDP run over W processes sees
the same global batches as one process.

SIGTERM and SIGUSR1 (a scheduler's preemption notice) make every process stop at the next step:
rank 0 writes a checkpoint and ``status.json`` says ``"preempted"``; rerunning the same command
resumes. Every rank checks that it resumed from the same step (the run directory must be on a
filesystem all nodes share).

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
import datetime
import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from chess_exp.data.prepared import game_spans
from chess_exp.model.checkpoints import (
    checkpoint_path,
    keep_step_copy,
    load_model,
    load_training_state,
    resolve_device,
    save_checkpoint,
)
from chess_exp.model.gpt import GPT, GPTConfig
from transcendence.config import apply_overrides, config_to_dict, write_run_metadata
from transcendence.io import atomic_write_json, atomic_write_text

__all__ = ["TrainConfig", "PRESETS", "train", "load_split", "get_batch", "next_move_accuracy",
           "legal_move_accuracy", "evaluate_run", "estimate_losses", "train_step", "plan_batch",
           "BatchPlan", "MetricsLog", "peak_flops", "checkpoint_path", "add_arguments", "main"]


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """One training run. Every field can be set from the command line (``--model.n_layer=4``)."""

    model: GPTConfig = field(default_factory=GPTConfig)  # network shape (vocab_size is taken from the data)
    data_dir: Path | None = None  # prepared dir: train.bin, val.bin, *_offsets.npy, meta.json
    out_dir: Path = Path("runs/train")  # run dir: config.json, metrics.jsonl, checkpoints/ckpt.pt
    seed: int = 1337  # init and data order (the batch of step s depends on (seed, s) only)
    batch_size: int = 12  # GLOBAL batch: sequences per optimizer step, over all processes
    micro_batch_size: int = 0  # most sequences per forward pass per process (gradient accumulation); 0 = no limit
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
    eval_iters: int = 10  # global batches per validation-loss estimate
    eval_acc_games: int = 200  # validation games for the move-prediction accuracy; 0 = skip
    log_interval: int = 10  # steps between progress lines / metrics records
    ckpt_interval: int = 0  # steps between checkpoints; 0 = at every evaluation
    keep_every: int = 0  # also keep checkpoints/ckpt-<step>.pt every this many steps; 0 = keep none
    resume: bool = True  # continue from out_dir/checkpoints/ckpt.pt when it exists
    device: str = "auto"  # "auto" (cuda if available), "cpu", "cuda", "cuda:1", ...
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"  # autocast dtype; auto = bf16 on CUDA
    compile: bool = False  # torch.compile the model (CUDA recommended)
    num_threads: int = 0  # torch CPU threads per process; 0 = torch's default
    dist_timeout_s: float = 600.0  # init_process_group and collective timeout under torchrun, seconds
    peak_tflops: float = 0.0  # accelerator peak (dense bf16) per process for MFU; 0 = from the GPU's name
    log_sink: Literal["none", "tensorboard", "wandb"] = "none"  # mirror metrics.jsonl there (optional package)

    def __post_init__(self) -> None:
        at_least = {"batch_size": 1, "max_iters": 0, "eval_interval": 1, "eval_iters": 1, "log_interval": 1,
                    "micro_batch_size": 0, "warmup_iters": 0, "lr_decay_iters": 0, "ckpt_interval": 0,
                    "keep_every": 0, "eval_acc_games": 0, "num_threads": 0}
        for name, low in at_least.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"--{name} must be an integer >= {low}, got {value!r}")
        for name in ("learning_rate", "min_lr", "weight_decay", "grad_clip", "max_minutes", "peak_tflops"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"--{name} must be a finite number >= 0, got {value!r}")
        if self.learning_rate <= 0:
            raise ValueError(f"--learning_rate must be > 0, got {self.learning_rate!r}")
        for name in ("beta1", "beta2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"--{name} must be in [0, 1), got {getattr(self, name)!r}")
        if not (math.isfinite(self.dist_timeout_s) and self.dist_timeout_s > 0):
            raise ValueError(f"--dist_timeout_s must be > 0 seconds, got {self.dist_timeout_s!r}")
        if self.device != "auto":
            try:
                torch.device(self.device)
            except (RuntimeError, TypeError):
                raise ValueError(f"--device={self.device!r} is not a torch device; use auto, cpu, cuda, "
                                 "cuda:1 or mps") from None


PRESETS: dict[str, TrainConfig] = {
    # The paper's ChessFormer (16 layers, 8 heads, 512 wide, context 1023, char tokens), 125 x 1023
    # tokens per step (global, on any number of GPUs), 100k steps, lr 3e-4 with 2000 warm-up steps
    # and a cosine over 4e6 steps (so practically constant), bf16 + compile on a GPU. On a GPU with
    # less memory, --micro_batch_size=32 (say) accumulates instead; the step is the same.
    "paper_50m": TrainConfig(
        model=GPTConfig(vocab_size=32, block_size=1023, n_layer=16, n_head=8, n_embd=512),
        batch_size=125, max_iters=100_000, learning_rate=3e-4, min_lr=3e-5,
        warmup_iters=2000, lr_decay_iters=4_000_000, eval_interval=1000, eval_iters=20,
        log_interval=50, keep_every=10_000, compile=True, seed=1337),
    # Move tokens (vocab 1970), trains in minutes on 2 CPU cores: 1.07M parameters, a quarter of
    # them in the tied embedding; 4096 tokens per step; context 256 moves (a game of 89 full
    # moves, the play limit, needs 179 positions).
    "small_cpu": TrainConfig(
        model=GPTConfig(vocab_size=1970, block_size=256, n_layer=4, n_head=4, n_embd=128,
                        dropout=0.1),
        batch_size=16, max_iters=1200, learning_rate=2e-3, min_lr=2e-4,
        warmup_iters=100, weight_decay=0.1, eval_interval=250, eval_iters=20, log_interval=25,
        eval_acc_games=300),
    # For tests: a few seconds on one core.
    "tiny": TrainConfig(
        model=GPTConfig(vocab_size=32, block_size=64, n_layer=2, n_head=2, n_embd=32),
        batch_size=8, max_iters=50, learning_rate=3e-3, min_lr=3e-4, warmup_iters=5,
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
    """Open ``data_dir/{split}.bin`` and ``{split}_offsets.npy`` (written by ``chess prepare``), checked
    against ``meta.json`` by ``chess_exp.data.prepared.load_prepared`` (sizes, counts, token range,
    tokenizer); ValueError naming what is inconsistent and how to rebuild it."""
    from chess_exp.data.prepared import load_prepared
    prepared = load_prepared(data_dir, split, what="--data")
    if len(prepared.tokens) == 0 or prepared.n_games == 0:
        raise ValueError(f"--data {data_dir}: the {split} split is empty; prepare more games"
                         + (" or use --val-fraction > 0" if split == "val" else ""))
    return Split(tokens=prepared.tokens, offsets=prepared.offsets, meta=prepared.meta)


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

def _whole_game_batches(split: Split, block_size: int, batch_size: int, max_games: int = 0
                        ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches ``(x, y)`` (B, W) of whole games read from position 0 (the first ``max_games``, 0 = all),
    each cut at ``block_size + 1`` tokens; padding is 0 in ``x`` and -1 in ``y``."""
    games = list(zip(*game_spans(split.offsets, len(split.tokens))))[: max_games or None]
    for i in range(0, len(games), batch_size):
        batch = games[i:i + batch_size]
        width = min(block_size + 1, max(int(e - s) for s, e in batch))
        seq = torch.full((len(batch), width), -1, dtype=torch.long)
        for r, (s, e) in enumerate(batch):
            n = min(int(e - s), width)
            seq[r, :n] = torch.from_numpy(split.tokens[s:s + n].astype(np.int64))
        yield seq[:, :-1].clamp(min=0), seq[:, 1:]


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
    correct = total = 0
    for x, y in _whole_game_batches(split, model.config.block_size, batch_size, max_games):
        x, y = x.to(device), y.to(device)
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

    games = []
    for s, e in list(zip(*game_spans(split.offsets, len(split.tokens))))[: max_games or None]:
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
            prefixes.clear()
            candidates.clear()
            truth.clear()

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
                 max_games: int = 0, legal_games: int = 200, device: str | torch.device = "cpu",
                 batch_size: int = 32) -> dict[str, Any]:
    """Held-out numbers of a trained run on the validation split of ``data_dir``.

    ``val_loss`` (mean next-token cross-entropy over whole validation games, each read from
    position 0), ``unigram_loss`` (the same for the train split's token frequencies: the baseline
    a model must beat), ``val_move_acc`` (top-1 next-token accuracy over move targets, start/end
    tokens excluded; with the move tokenizer this is next-move accuracy) over ``max_games`` games
    (0 = all), and ``val_legal_move_acc`` (argmax over legal moves, see :func:`legal_move_accuracy`)
    over the first ``legal_games`` (0 = skip). Runs on ``device``; memory stays bounded (the train split's
    token counts are read from the memory map in chunks). ``run_dir`` may also be a checkpoint file (a
    kept copy, an export, a nanoGPT-style file). Written to ``heldout.json`` in that folder.
    """
    from chess_exp.data.tokenizers import get_tokenizer

    model, meta = load_model(run_dir, device=device)
    device = model.lm_head.weight.device
    val, train_split = load_split(data_dir, "val"), load_split(data_dir, "train")
    if tokenizer_name(val.meta) != meta["tokenizer"]:
        raise ValueError(f"--data {data_dir} uses tokenizer {tokenizer_name(val.meta)!r} but the model was "
                         f"trained on {meta['tokenizer']!r}")
    ignore = _special_ids(val.meta)
    acc, n = next_move_accuracy(model, val, max_games=max_games, ignore=ignore, batch_size=batch_size)
    # loss over whole games from position 0, the same token set as the accuracy plus start/end
    n_games = len(val.offsets[: max_games or None])
    nll = count = 0.0
    counts = _token_counts(train_split.tokens, model.config.vocab_size) + 1.0
    unigram = torch.from_numpy(-np.log(counts / counts.sum()))
    uni = 0.0
    for x, y in _whole_game_batches(val, model.config.block_size, batch_size, max_games):
        logits, _ = model(x.to(device))
        keep = y >= 0
        nll += float(torch.nn.functional.cross_entropy(logits[keep.to(device)].float(), y[keep].to(device),
                                                       reduction="sum"))
        uni += float(unigram[y[keep]].sum())
        count += int(keep.sum())
    tokenizer = get_tokenizer(meta["tokenizer"])
    legal_acc, legal_n = (legal_move_accuracy(model, tokenizer, split_games_sans(val, tokenizer, legal_games))
                          if legal_games else (float("nan"), 0))  # 0 = skip
    result = {"step": meta["step"], "tokenizer": meta["tokenizer"], "val_games": n_games,
              "val_loss": nll / count, "unigram_loss": uni / count, "val_move_acc": acc,
              "val_move_acc_n": n, "val_legal_move_acc": legal_acc, "val_legal_move_acc_n": legal_n,
              "legal_games": legal_games, "device": str(device)}
    folder = Path(run_dir) if Path(run_dir).is_dir() else Path(run_dir).parent  # a run dir, or a checkpoint file
    atomic_write_json(folder / "heldout.json", result)
    return result


def _token_counts(tokens: np.ndarray, vocab_size: int, chunk: int = 1 << 22) -> np.ndarray:
    """``np.bincount(tokens)`` over a memory map, ``chunk`` tokens at a time (no whole-split copy)."""
    counts = np.zeros(vocab_size, dtype=np.int64)
    for i in range(0, len(tokens), chunk):
        part = np.bincount(np.asarray(tokens[i:i + chunk]), minlength=vocab_size)
        if len(part) > vocab_size:
            raise ValueError(f"token id {len(part) - 1} in the data is >= the model's vocab_size {vocab_size}")
        counts += part
    return counts


# ----------------------------------------------------------------------------- batch plan

@dataclass(frozen=True)
class BatchPlan:
    """How one process takes its part of the global batch of every step."""

    global_batch: int  # sequences per optimizer step, over all processes
    world: int  # processes
    start: int  # this process's rows are global rows [start, start + sum(micro))
    micro: tuple[int, ...]  # this process's micro-batch sizes, in order

    def weights(self) -> tuple[float, ...]:
        """Loss weight of each micro-batch: its share of the global batch, times the world size
        (DDP averages gradients over processes), so the gradient is the global-batch mean."""
        return tuple(n * self.world / self.global_batch for n in self.micro)

    def slices(self) -> list[slice]:
        out, at = [], self.start
        for n in self.micro:
            out.append(slice(at, at + n))
            at += n
        return out


def plan_batch(global_batch: int, micro_batch_size: int, world: int, rank: int) -> BatchPlan:
    """Split ``global_batch`` sequences between ``world`` processes (contiguous shares differing by at
    most one) and each share into micro-batches of at most ``micro_batch_size`` (0 = one micro-batch)."""
    if global_batch < world:
        raise ValueError(f"--batch_size={global_batch} is the global batch and must be at least the number "
                         f"of processes ({world})")
    base, extra = divmod(global_batch, world)
    start = rank * base + min(rank, extra)
    share = base + (rank < extra)
    k = math.ceil(share / micro_batch_size) if micro_batch_size else 1
    sizes = tuple(share // k + (i < share % k) for i in range(k))
    return BatchPlan(global_batch=global_batch, world=world, start=start, micro=sizes)


# ----------------------------------------------------------------------------- throughput

#: dense bf16 tensor-core peak, TFLOP/s, by a substring of ``torch.cuda.get_device_name()``
PEAK_BF16_TFLOPS: dict[str, float] = {
    "H200": 989.0, "GH200": 989.0, "H100 PCIe": 756.0, "H100": 989.0, "H800": 989.0, "A100": 312.0,
    "A800": 312.0, "L40S": 362.0, "L40": 181.0, "L4": 121.0, "A10G": 70.0, "A10": 125.0, "V100": 125.0,
    "RTX 4090": 165.0, "RTX 3090": 71.0, "A6000": 155.0,
}


def peak_flops(device: torch.device, override_tflops: float = 0.0) -> float | None:
    """FLOP/s peak of one process's accelerator, for MFU: the override, else the GPU's entry in
    :data:`PEAK_BF16_TFLOPS`; None when unknown (CPUs)."""
    if override_tflops:
        return override_tflops * 1e12
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, tflops in PEAK_BF16_TFLOPS.items():  # longer names first where they overlap
        if key in name:
            return tflops * 1e12
    return None


# ----------------------------------------------------------------------------- metrics log

class MetricsLog:
    """``metrics.jsonl`` (one JSON record per line, rank 0 only), optionally mirrored to a sink."""

    def __init__(self, path: Path, *, enabled: bool, sink: str = "none", run_config: Any = None) -> None:
        self.path, self.enabled, self._sink = path, enabled, sink
        self._writer: Any = None  # a tensorboard SummaryWriter or a wandb run
        if enabled and sink == "tensorboard":
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise ValueError("--log_sink=tensorboard needs the tensorboard package "
                                 "(pip install tensorboard)") from None
            self._writer = SummaryWriter(log_dir=str(path.parent / "tensorboard"))
        elif enabled and sink == "wandb":
            try:
                import wandb
            except ImportError:
                raise ValueError("--log_sink=wandb needs the wandb package (pip install wandb)") from None
            self._writer = wandb.init(dir=str(path.parent), config=config_to_dict(run_config),
                                      name=path.parent.name, resume="allow")

    def truncate(self, step: int) -> None:
        """Keep the records before ``step`` (and its train record): a resumed run appends cleanly."""
        if not self.enabled or not self.path.exists():
            return
        if step == 0:
            self.path.unlink()
            return
        kept = []
        for line in self.path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a crash
            if record.get("step", 0) < step or (record.get("step") == step and record.get("kind") == "train"):
                kept.append(line)
        atomic_write_text(self.path, "".join(line + "\n" for line in kept))

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self._writer is not None:
            numbers = {f"{record['kind']}/{k}": v for k, v in record.items()
                       if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "step"}
            if self._sink == "tensorboard":
                for key, value in numbers.items():
                    self._writer.add_scalar(key, value, record["step"])
            else:
                self._writer.log(numbers, step=record["step"])

    def close(self) -> None:
        if self._writer is not None:
            (self._writer.close if self._sink == "tensorboard" else self._writer.finish)()


# ----------------------------------------------------------------------------- building and resuming

@dataclass
class Run:
    """Everything the loop needs, built once by :func:`build_run`."""

    config: TrainConfig
    device: torch.device
    rank: int
    world: int
    model: GPT  # the plain model (checkpoints, evaluation)
    module: torch.nn.Module  # what the train step calls: the model, compiled and/or DDP-wrapped
    optimizer: torch.optim.Optimizer
    splits: dict[str, tuple[Split, np.ndarray]]  # "train"/"val" -> (split, window starts)
    plan: BatchPlan
    tokenizer: str
    ignore: tuple[int, ...]  # start/end token ids, not counted by the accuracy
    autocast: Any  # a context manager factory
    step: int = 0  # optimizer steps completed

    @property
    def master(self) -> bool:
        return self.rank == 0

    @property
    def ddp(self) -> bool:
        return self.world > 1

    def all_sum(self, *values: float) -> list[float]:
        if not self.ddp:
            return list(values)
        import torch.distributed as dist
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.tolist()


def build_run(config: TrainConfig, device: torch.device, rank: int, world: int) -> Run:
    """Data, model, optimizer; resumed from ``out_dir/checkpoints/ckpt.pt`` when there is one."""
    assert config.data_dir is not None
    plan = plan_batch(config.batch_size, config.micro_batch_size, world, rank)
    train_split, val_split = load_split(config.data_dir, "train"), load_split(config.data_dir, "val")
    tokenizer = tokenizer_name(train_split.meta)
    vocab = int(train_split.meta.get("vocab_size", config.model.vocab_size))
    if vocab != config.model.vocab_size:  # the data decides the vocabulary (as nanoGPT's meta.pkl)
        config = dataclasses.replace(config, model=dataclasses.replace(config.model, vocab_size=vocab))
    T = config.model.block_size
    splits = {"train": (train_split, _window_starts(train_split, T)),
              "val": (val_split, _window_starts(val_split, T))}
    torch.manual_seed(config.seed)  # the run's entry point: seeds the initial weights
    model = GPT(config.model).to(device)
    optimizer = model.configure_optimizers(config.weight_decay, config.learning_rate,
                                           (config.beta1, config.beta2), device.type)
    step = 0
    ckpt_file = checkpoint_path(config.out_dir)
    if config.resume and ckpt_file.exists():
        ckpt = load_training_state(ckpt_file, device)
        if ckpt["config"] != dataclasses.asdict(config.model):
            raise ValueError(f"{ckpt_file} was written for model {ckpt['config']}, not "
                             f"{dataclasses.asdict(config.model)}; use another --out or --resume=false")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        step = int(ckpt["step"])
    use_bf16 = config.dtype == "bfloat16" or (config.dtype == "auto" and device.type == "cuda"
                                               and torch.cuda.is_bf16_supported())
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    module: torch.nn.Module = torch.compile(model) if config.compile else model  # type: ignore[assignment]
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP
        module = DDP(module, device_ids=[device.index] if device.type == "cuda" else None)
    run = Run(config=config, device=device, rank=rank, world=world, model=model, module=module,
              optimizer=optimizer, splits=splits, plan=plan, tokenizer=tokenizer,
              ignore=_special_ids(train_split.meta), step=step,
              autocast=(lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)) if use_bf16
              else contextlib.nullcontext)
    low = high = step  # every rank must resume from the same step
    if world > 1:
        import torch.distributed as dist
        t = torch.tensor([step], dtype=torch.int64, device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MIN)
        low = int(t)
        t = torch.tensor([step], dtype=torch.int64, device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        high = int(t)
    if low != high:
        raise ValueError(f"the processes resumed from different steps ({low} to {high}; rank {rank}: "
                         f"{step}): --out {config.out_dir} must be on a filesystem every node shares")
    return run


# ----------------------------------------------------------------------------- evaluation, one step

@torch.no_grad()
def estimate_losses(run: Run) -> dict[str, float]:
    """Mean loss on the same ``eval_iters`` global batches of each split at every evaluation,
    in chunks of this process's micro-batch size, spread over the processes."""
    config, plan = run.config, run.plan
    T, chunk = config.model.block_size, max(plan.micro)
    run.module.eval()
    out = {}
    for name, key, seed_step in (("val_loss", "val", 0), ("train_loss_est", "train", 1)):
        split, starts = run.splits[key]
        n_rows = config.eval_iters * config.batch_size
        rows = step_rows(starts, config.seed + 1, seed_step, n_rows)
        total = 0.0
        for k, at in enumerate(range(0, n_rows, chunk)):
            if k % run.world != run.rank:
                continue
            x, y = get_batch(split, rows[at:at + chunk], T)
            with run.autocast():
                _, loss = run.model(x.to(run.device), y.to(run.device))
            total += float(loss) * len(x)
        out[name] = run.all_sum(total)[0] / n_rows
    run.module.train()
    return out


def evaluate(run: Run) -> dict[str, Any]:
    """The evaluation record of the current step: losses, and the move accuracy on rank 0."""
    record: dict[str, Any] = {"kind": "eval", "step": run.step, **estimate_losses(run)}
    if run.config.eval_acc_games and run.master:
        with run.autocast():
            acc, n = next_move_accuracy(run.model, run.splits["val"][0], max_games=run.config.eval_acc_games,
                                        ignore=run.ignore)
        record.update(val_move_acc=acc, val_move_acc_n=n)
    return record


def train_step(run: Run) -> tuple[float, float, float]:
    """One optimizer step on the global batch of ``run.step``; returns (mean loss, grad norm, lr)."""
    config, plan = run.config, run.plan
    lr = learning_rate(config, run.step)
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    split, starts = run.splits["train"]
    rows = step_rows(starts, config.seed, run.step, config.batch_size)
    torch.manual_seed(config.seed * 1_000_003 + run.step * 131 + run.rank)  # dropout, if any: per step
    step_loss = 0.0
    for micro, (part, weight) in enumerate(zip(plan.slices(), plan.weights())):
        x, y = get_batch(split, rows[part], config.model.block_size)
        x, y = x.to(run.device, non_blocking=True), y.to(run.device, non_blocking=True)
        last = micro == len(plan.micro) - 1
        sync = run.module.no_sync() if run.ddp and not last else contextlib.nullcontext()  # type: ignore[operator]
        with sync:
            with run.autocast():
                _, loss = run.module(x, y)
            (loss * weight).backward()
        step_loss += loss.item() * weight / plan.world
    grad_norm = 0.0
    if config.grad_clip > 0:
        grad_norm = float(torch.nn.utils.clip_grad_norm_(run.module.parameters(), config.grad_clip))
    run.optimizer.step()
    run.optimizer.zero_grad(set_to_none=True)
    run.step += 1
    return run.all_sum(step_loss)[0], grad_norm, lr


# ----------------------------------------------------------------------------- stopping

class StopSignals:
    """While active (and installed), SIGTERM and SIGUSR1 set ``received``: the loop then checkpoints
    and stops. Handlers are installed only in the main thread, and the old ones restored on exit."""

    SIGNALS = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGUSR1", None)) if s)

    def __init__(self, install: bool = True) -> None:
        self.received: str | None = None
        self._install = install
        self._old: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if self._install and threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.received = signal.Signals(signum).name

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _stop_reason(run: Run, signals: StopSignals, t_start: float) -> str | None:
    """Why to stop before this step (the same answer on every process), or None."""
    timed_out = run.config.max_minutes > 0 and time.time() - t_start > 60 * run.config.max_minutes
    flags = run.all_sum(float(signals.received is not None), float(timed_out))
    if flags[0]:
        return f"received {signals.received or 'a stop signal (on another process)'}"
    if flags[1]:
        return f"--max_minutes={run.config.max_minutes} reached"
    return None


# ----------------------------------------------------------------------------- training

def _fmt_time(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}h{rest // 60:02d}m" if h else f"{rest // 60}m{rest % 60:02d}s"


def train(config: TrainConfig, *, stop_on_signals: bool = False) -> Path:
    """Train (or resume) the run described by ``config``; returns the run directory.

    With ``stop_on_signals`` (the command line's choice) SIGTERM and SIGUSR1 checkpoint and return
    (``status.json``: ``preempted``); a library caller keeps the process's own signal handling.

    Under ``torchrun`` (env RANK/WORLD_SIZE set) each process trains a DDP replica; rank 0 writes
    the files. Writes ``config.json``, ``metrics.jsonl`` (one JSON record per log/eval),
    ``checkpoints/ckpt.pt`` (and ``ckpt-<step>.pt`` every ``keep_every`` steps) and ``status.json``
    (``finished``, ``preempted`` or ``time_limit``, with the step).
    """
    if config.data_dir is None:
        raise ValueError("no data: pass --data DIR (a directory written by `transcendence chess prepare`)")
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    device = resolve_device(config.device)
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    if world > 1:
        import torch.distributed as dist
        if device.type == "cuda":
            device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}")
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo",
                                timeout=datetime.timedelta(seconds=config.dist_timeout_s))
    try:
        with StopSignals(install=stop_on_signals) as signals:
            return _train(build_run(config, device, rank, world), signals)
    finally:
        if world > 1:
            import torch.distributed as dist
            dist.destroy_process_group()


def _train(run: Run, signals: StopSignals) -> Path:
    config, out_dir = run.config, Path(run.config.out_dir)
    log = MetricsLog(out_dir / "metrics.jsonl", enabled=run.master, sink=config.log_sink, run_config=config)
    if run.master:
        _announce(run, log)
    tokens_per_step = config.batch_size * config.model.block_size
    flops_per_step = run.model.flops_per_token() * tokens_per_step
    peak = peak_flops(run.device, config.peak_tflops)
    ckpt_every = config.ckpt_interval or config.eval_interval
    t_start, steps_this_run, window_s, window_steps = time.time(), 0, 0.0, 0
    last_eval: dict[str, Any] = {}
    status = "finished"
    run.module.train()
    while True:
        step = run.step
        if step % config.eval_interval == 0 or step == config.max_iters:
            last_eval = evaluate(run)
            log.write(last_eval)
            _print_eval(run, last_eval)
        if step > 0 and (step % ckpt_every == 0 or step == config.max_iters
                         or (config.keep_every and step % config.keep_every == 0)):
            _checkpoint(run, last_eval)
        if step >= config.max_iters:
            break
        reason = _stop_reason(run, signals, t_start)
        if reason:
            _checkpoint(run, last_eval)
            status = "preempted" if reason.startswith("received") else "time_limit"
            if run.master:
                print(f"stopping at step {step} ({reason}); checkpoint written, rerun the same command to "
                      "resume", file=sys.stderr, flush=True)
            break
        t0 = time.perf_counter()
        loss, grad_norm, lr = train_step(run)
        window_s += time.perf_counter() - t0
        window_steps += 1
        steps_this_run += 1
        if not math.isfinite(loss):
            raise ValueError(f"the training loss is {loss} at step {run.step}: training diverged; the last "
                             "checkpoint is kept; lower --learning_rate or raise --warmup_iters")
        if run.step % config.log_interval == 0 or run.step == config.max_iters:
            rate = window_steps * tokens_per_step / max(window_s, 1e-9)  # training time only
            mfu = window_steps * flops_per_step / max(window_s, 1e-9) / (peak * run.world) if peak else None
            elapsed = time.time() - t_start
            log.write({"kind": "train", "step": run.step, "loss": loss, "lr": lr, "grad_norm": grad_norm,
                       "tokens": run.step * tokens_per_step, "tok_per_s": rate, "mfu": mfu,
                       "elapsed_s": elapsed})
            if run.master:
                eta = (config.max_iters - run.step) * elapsed / steps_this_run
                print(f"step {run.step}/{config.max_iters} | loss {loss:.4f} | lr {lr:.2e} | {rate:,.0f} tok/s"
                      + (f" | MFU {100 * mfu:.1f}%" if mfu is not None else "")
                      + f" | elapsed {_fmt_time(elapsed)} | ETA {_fmt_time(eta)}", file=sys.stderr, flush=True)
            window_s, window_steps = 0.0, 0
    if run.master:
        atomic_write_json(out_dir / "status.json", {"status": status, "step": run.step,
                                                    "max_iters": config.max_iters})
    log.close()
    return out_dir


def _announce(run: Run, log: MetricsLog) -> None:
    """Rank 0: the resume line, a clean metrics log, config.json and the run's summary line."""
    config, out_dir = run.config, Path(run.config.out_dir)
    if run.step:
        print(f"resuming {out_dir} from step {run.step}", file=sys.stderr)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "status.json").unlink(missing_ok=True)
    log.truncate(run.step)
    write_run_metadata(out_dir, config, extra={"tokenizer": run.tokenizer, "world_size": run.world,
                                               "n_params": run.model.num_params(),
                                               "resumed_from_step": run.step})
    train_split, val_split = run.splits["train"][0], run.splits["val"][0]
    print(f"{run.model.num_params() / 1e6:.2f}M parameters, tokenizer {run.tokenizer}, "
          f"{len(train_split.offsets)} train / {len(val_split.offsets)} val games, "
          f"{config.batch_size * config.model.block_size} tokens per step ({config.batch_size} sequences "
          f"over {run.world} process(es), micro-batches {list(run.plan.micro)} on rank 0), "
          f"device {run.device}", file=sys.stderr)


def _print_eval(run: Run, record: dict[str, Any]) -> None:
    if run.master:
        acc = record.get("val_move_acc")
        print(f"step {record['step']}: val loss {record['val_loss']:.4f}, train loss "
              f"{record['train_loss_est']:.4f}" + (f", val move acc {acc:.4f}" if acc is not None else ""),
              file=sys.stderr)


def _checkpoint(run: Run, last_eval: dict[str, Any]) -> None:
    """Rank 0 writes ``ckpt.pt`` (atomically), and keeps a step-numbered copy every ``keep_every``."""
    if not run.master:
        return
    path = checkpoint_path(run.config.out_dir)
    save_checkpoint(path, run.model, run.optimizer, run.step, config_to_dict(run.config), run.tokenizer,
                    {"last_eval": last_eval})
    if run.config.keep_every and run.step % run.config.keep_every == 0:
        keep_step_copy(path, run.config.out_dir, run.step)


# ----------------------------------------------------------------------------- command line

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=sorted(PRESETS), default="small_cpu",
                        help="starting configuration (default: small_cpu)")
    parser.add_argument("--data", type=Path, help="prepared data directory (from `chess prepare`)")
    parser.add_argument("--out", type=Path, help="run directory (default: runs/<preset>)")
    parser.add_argument("--eval-only", action="store_true",
                        help="do not train: evaluate the checkpoint in --out on the validation split of "
                             "--data (loss, unigram baseline, next-move accuracy) into heldout.json, "
                             "on --device=...")
    parser.add_argument("--eval-games", type=int, default=0,
                        help="with --eval-only: validation games for loss and accuracy (0 = all)")
    parser.add_argument("--legal-games", type=int, default=200,
                        help="with --eval-only: validation games for the legal-move accuracy (default 200)")
    parser.add_argument("--export", type=Path, metavar="FILE",
                        help="do not train: write the weights of the checkpoint in --out to FILE "
                             "(.safetensors, or a weights-only torch file for any other name) and exit")
    parser.epilog = ("Any field of TrainConfig can be overridden as --key=value, e.g. --max_iters=200 "
                     "--model.n_layer=2 --num_threads=1 --resume=false. --batch_size is the global batch "
                     "(sequences per step over all processes); --micro_batch_size=N bounds memory.")
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
    rank0 = int(os.environ.get("RANK", "0")) == 0
    try:
        config = resolve_config(args)
        if getattr(args, "export", None) is not None:
            from chess_exp.model.checkpoints import export_weights
            print(export_weights(config.out_dir, args.export))
            return 0
        if getattr(args, "eval_only", False):
            for name in ("eval_games", "legal_games"):
                if getattr(args, name) < 0:
                    raise ValueError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(args, name)}")
            if config.num_threads:
                torch.set_num_threads(config.num_threads)
            if config.data_dir is None:
                raise ValueError("--eval-only needs --data DIR")
            result = evaluate_run(config.out_dir, config.data_dir, max_games=args.eval_games,
                                  legal_games=args.legal_games, device=resolve_device(config.device))
            print(json.dumps(result, indent=2))
            return 0
        if rank0:
            print(json.dumps(config_to_dict(config)), file=sys.stderr)
        out = train(config, stop_on_signals=True)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if rank0:
        print(out)
    return 0


if __name__ == "__main__":  # python -m chess_exp.model.train / torchrun -m chess_exp.model.train
    parser = argparse.ArgumentParser(prog="python -m chess_exp.model.train", description=__doc__.split("\n")[0])
    add_arguments(parser)
    ns, extra = parser.parse_known_args()
    ns.overrides = extra
    sys.exit(main(ns))
