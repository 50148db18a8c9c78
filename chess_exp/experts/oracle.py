"""Stockfish's best move at a fixed search limit, as a pure function of the position, cached by FEN.

Every synthetic expert is built on one *oracle*: the move Stockfish picks with a fixed node (or
depth) limit, one thread, a fresh hash table for every search (``ucinewgame``) and the position
sent without its move history. With those settings Stockfish is deterministic, so the oracle is a
function of the position alone and can be cached: the expert's move distribution on a board is then
known exactly, and generation, the mixture and the agreement measurement never search the same
position twice.

The oracle is a cache in front of :class:`chess_exp.play.engines.Stockfish` (so a crash or a hang
of the engine is survived by a restart, with the same timeouts as in games). The cache key is
:func:`chess_exp.play.engines.position_key`, the first five FEN fields (pieces, side, castling, legal
en-passant square, halfmove clock): everything the search can see. The on-disk cache is an append-only text file, one
``key<TAB>uci`` line per position; several processes may append to it at once (each line is one
``write`` to a file opened with ``O_APPEND``, which is atomic for lines this short), and a torn last
line from a crash is ignored on reading.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import chess
import chess.engine

from chess_exp.play.engines import DEFAULT_NODES, EngineLimit, Stockfish, find_stockfish, position_key

__all__ = ["EngineSpec", "Oracle", "position_key", "default_cache_dir"]


def default_cache_dir() -> Path:
    """``$TRANSCENDENCE_EXPERTS_CACHE`` or ``runs/experts_cache`` under the current directory."""
    return Path(os.environ.get("TRANSCENDENCE_EXPERTS_CACHE", "runs/experts_cache"))


@dataclass(frozen=True, kw_only=True)
class EngineSpec:
    """The search behind every expert: Stockfish at full strength with a fixed, repeatable limit."""

    nodes: int | None = DEFAULT_NODES["oracle"]  # node limit per search (None: use depth)
    depth: int | None = None  # depth limit per search (used when nodes is None)
    hash_mb: int = 16  # Stockfish hash table (MB); cleared before every search

    def __post_init__(self) -> None:
        if (self.nodes is None) == (self.depth is None):
            raise ValueError("EngineSpec: give exactly one of nodes= or depth=")
        for name in ("nodes", "depth"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"EngineSpec: {name} must be >= 1, got {value}")

    @property
    def engine_limit(self) -> EngineLimit:
        """The limit as the engine layer's :class:`~chess_exp.play.engines.EngineLimit`."""
        if self.nodes is not None:
            return EngineLimit(kind="nodes", value=self.nodes)
        assert self.depth is not None
        return EngineLimit(kind="depth", value=self.depth)

    def limit(self) -> chess.engine.Limit:
        return self.engine_limit.to_chess()

    @property
    def tag(self) -> str:
        """A short name used in PGN headers and cache file names, e.g. ``nodes=200``."""
        return str(self.engine_limit)


class Oracle:
    """Stockfish's deterministic best move per position, with an in-memory and an on-disk cache.

    Picklable: the engine process is not pickled; each process opens its own on first use. Use as a
    context manager, or call :meth:`close`.

    Parameters
    ----------
    spec : EngineSpec
        The fixed search limit.
    cache_dir : path or None
        Directory of the on-disk cache (one file per limit and Stockfish version); None: memory only.
    stockfish : str or None
        Path of the Stockfish binary (default: found as ``chess_exp.play.engines.find_stockfish`` does).
    """

    def __init__(self, spec: EngineSpec = EngineSpec(), *, cache_dir: str | Path | None = None,
                 stockfish: str | None = None, hang_timeout: float = 30.0) -> None:
        self.spec = spec
        self.stockfish = find_stockfish(stockfish)
        self.hang_timeout = hang_timeout
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._engine: Stockfish | None = None
        self._cache: dict[str, str] = {}
        self._fd: int | None = None
        self.searches = 0  # searches this process ran (cache misses)
        self.lookups = 0
        self._lock = threading.Lock()  # the game loop may call players (and so the oracle) from threads
        if self.cache_dir is not None:
            self._load()

    # -- pickling: drop the engine and the file descriptor -----------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_engine"] = None
        state["_fd"] = None
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def cache_file(self) -> Path | None:
        if self.cache_dir is None:
            return None
        # the binary's size stands in for its version: another Stockfish gets another file
        version = os.stat(self.stockfish).st_size
        return self.cache_dir / f"bestmove-sf{version}-{self.spec.tag.replace('=', '')}.tsv"

    def _load(self) -> None:
        path = self.cache_file
        assert path is not None
        if not path.exists():
            return
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.endswith("\n"):
                    continue  # a torn last line
                parts = line.rstrip("\n").split("\t")
                if len(parts) == 2 and 4 <= len(parts[1]) <= 5:
                    self._cache[parts[0]] = parts[1]

    def __len__(self) -> int:
        return len(self._cache)

    def _open(self) -> Stockfish:
        if self._engine is None:
            self._engine = Stockfish(self.stockfish, limit=self.spec.engine_limit, hash_mb=self.spec.hash_mb,
                                     hang_timeout=self.hang_timeout, name="oracle")
        return self._engine

    @property
    def restarts(self) -> int:
        """Engine crashes or hangs survived by this process's engine."""
        return 0 if self._engine is None else self._engine.restarts

    def _append(self, key: str, uci: str) -> None:
        path = self.cache_file
        if path is None:
            return
        if self._fd is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(self._fd, f"{key}\t{uci}\n".encode())

    def best_move(self, board: chess.Board) -> chess.Move:
        """Stockfish's move in ``board`` at the fixed limit (the board must have a legal move)."""
        key = position_key(board)
        with self._lock:
            return chess.Move.from_uci(self._best_uci(key, board))

    def _best_uci(self, key: str, board: chess.Board) -> str:
        self.lookups += 1
        uci = self._cache.get(key)
        if uci is None:
            fresh = chess.Board(key + " 1")  # no history: the answer depends on the key alone
            if not any(fresh.generate_legal_moves()):
                raise ValueError(f"board: no legal move in {board.fen()}")
            # the engine layer restarts a crashed or hung Stockfish and replays the search
            uci = self._open().best_move(fresh).uci()
            self.searches += 1
            self._cache[key] = uci
            self._append(key, uci)
        return uci

    def close(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Oracle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
