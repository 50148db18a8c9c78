"""Shared tiny pieces for the chess tests: tokenizers, a tiny GPT, a tiny checkpoint, a tiny prepared
dataset, a PGN of random games and a fake oracle. Each is built one way, here; a test that needs another shape passes it to the
factory. torch and python-chess are imported inside the fixtures, so collecting tests/core stays cheap.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

TINY_VOCAB = 24  # the synthetic prepared dataset's vocabulary: tokens 0 (start), 1 (end), 2..23


@pytest.fixture(scope="session")
def tokenizer() -> Callable[[str], Any]:
    """``tokenizer("move")`` / ``tokenizer("char")``: the library's tokenizers, built once per session."""
    from chess_exp.data.tokenizers import get_tokenizer

    built: dict[str, Any] = {}

    def make(name: str = "move") -> Any:
        if name not in built:
            built[name] = get_tokenizer(name)
        return built[name]

    return make


@pytest.fixture(scope="session")
def tiny_gpt(tokenizer: Callable[[str], Any]) -> Callable[..., Any]:
    """``tiny_gpt("move")``: a fresh, seeded, untrained GPT in eval mode.

    Defaults: vocabulary of the named tokenizer, block_size=64, 1 layer, 2 heads, 16-dim embeddings,
    ``torch.manual_seed(0)`` just before construction, so equal arguments give equal weights. Every call
    builds a new model (a few milliseconds), so a test may change its model freely.
    """
    import torch

    from chess_exp.model.gpt import GPT, GPTConfig

    def make(tokenizer_name: str = "move", *, vocab_size: int | None = None, block_size: int = 64,
             n_layer: int = 1, n_head: int = 2, n_embd: int = 16, seed: int = 0) -> GPT:
        vocab = tokenizer(tokenizer_name).vocab_size if vocab_size is None else vocab_size
        torch.manual_seed(seed)
        return GPT(GPTConfig(vocab_size=vocab, block_size=block_size, n_layer=n_layer, n_head=n_head,
                             n_embd=n_embd)).eval()

    return make


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_gpt: Callable[..., Any]) -> Callable[..., Path]:
    """``tiny_checkpoint(path, tokenizer="move", step=7, seed=0, vocab_size=None)``: writes the tiny GPT as a
    minimal checkpoint dict (model, config, step, tokenizer), the smallest file the loaders accept."""
    import torch

    def make(path: Path, tokenizer: str = "move", *, step: int = 7, seed: int = 0,
             vocab_size: int | None = None) -> Path:
        model = tiny_gpt(tokenizer, vocab_size=vocab_size, seed=seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"model": model.state_dict(), "config": vars(model.config) | {}, "step": step,
                    "tokenizer": tokenizer}, path)
        return path

    return make


def write_prepared(out: Path, n_games: int = 300, seed: int = 0) -> Path:
    """A prepared dir in the format of `chess prepare`: games from a noisy Markov chain on tokens
    2..TINY_VOCAB-1, each ``[0, ..., 1]`` (start and end tokens as in the move tokenizer)."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_games), ("val", max(20, n_games // 10))):
        tokens: list[int] = []
        offsets = []
        for _ in range(n):
            t = int(rng.integers(2, TINY_VOCAB))
            game = [0]
            for _ in range(int(rng.integers(5, 50))):
                game.append(t)
                t = 2 + (3 * t + int(rng.integers(0, 2))) % (TINY_VOCAB - 2)
            offsets.append(len(tokens))
            tokens.extend(game + [1])
        np.asarray(tokens, dtype=np.uint16).tofile(out / f"{split}.bin")
        np.save(out / f"{split}_offsets.npy", np.asarray(offsets, dtype=np.int64))
    (out / "meta.json").write_text(json.dumps({"tokenizer": "move", "vocab_size": TINY_VOCAB}))
    return out


@pytest.fixture(scope="session")
def tiny_prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic prepared dataset (300 training games, 30 validation games, vocabulary TINY_VOCAB),
    written once per session. Read it; copy it (shutil.copytree) before changing anything in it."""
    return write_prepared(tmp_path_factory.mktemp("tiny-prepared"))


class FakeOracle:
    """A deterministic stand-in for the Stockfish oracle, no engine needed.

    ``best_move``: the last legal move in UCI order (any fixed rule will do). ``ranked(boards)``: per board,
    every legal move with a reward in [0, 1] from a hash of (position, move), best first.
    """

    def __init__(self) -> None:
        from chess_exp.experts.oracle import EngineSpec

        self.spec = EngineSpec(nodes=50)

    def best_move(self, board: Any) -> Any:
        return max(board.legal_moves, key=lambda m: m.uci())

    def ranked(self, boards: Iterable[Any]) -> list[list[tuple[Any, float]]]:
        out = []
        for b in boards:
            vals = [(m, (zlib.crc32((b.epd() + m.uci()).encode()) % 1000) / 999) for m in b.legal_moves]
            out.append(sorted(vals, key=lambda mv: -mv[1]))
        return out


@pytest.fixture(scope="session")
def fake_oracle() -> FakeOracle:
    """One FakeOracle for the session (it holds no state)."""
    return FakeOracle()


@pytest.fixture(scope="session")
def random_pgn() -> Callable[..., Path]:
    """``random_pgn(path, n_games, seed, plies=30)``: games of uniformly random legal moves (python-chess's
    move order, ``default_rng(seed)``), each with a lichess-like ``Site`` and its ``Result``, as a PGN file."""
    import chess
    import chess.pgn

    def write(path: Path, n_games: int, seed: int, plies: int = 30) -> Path:
        rng = np.random.default_rng(seed)
        with open(path, "w") as f:
            for g in range(n_games):
                game = chess.pgn.Game()
                game.headers["Site"] = f"https://lichess.org/game{g:04d}"
                b, node = chess.Board(), game
                for _ in range(plies):
                    legal = sorted(b.legal_moves, key=chess.Move.uci)
                    if not legal:
                        break
                    m = legal[int(rng.integers(len(legal)))]
                    node = node.add_variation(m)
                    b.push(m)
                game.headers["Result"] = b.result(claim_draw=True) if b.is_game_over(claim_draw=True) else "*"
                f.write(str(game) + "\n\n")
        return path

    return write
