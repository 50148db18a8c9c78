"""The chess reward r(x, y): Stockfish's expected score for the mover after playing ``y`` in ``x``.

Paper §3.7 (code ``analysis/advantage/1_calculate_advantages.py``): Stockfish ``analyse`` with
``multipv`` covering every legal move, each line's score converted with python-chess's
``score.wdl(model="lichess").expectation()`` (P(win) + ½ P(draw)) from the mover's side. The paper
used ``Limit(time=1.0)``; we default to a node limit (repeatable, machine-independent) and record
it next to every cached value and in every results file.

Results are cached on disk (SQLite, one row per position and limit), keyed by
:func:`chess_exp.play.engines.position_key` (the FEN without the fullmove number), so no position is
analysed twice, across runs and processes. The engines are a
:class:`chess_exp.play.engines.StockfishPool` (timeouts, restarts after a crash or a hang), and every
position is analysed alone (no move history, cleared hash) so a cached value is a function of its
key. Cache format 2 (table ``rewards_v2``, default file ``stockfish_rewards.v2.sqlite``): format 1
keyed positions by ``board.epd()`` (no halfmove clock) and analysed them with their history and a
warm hash, so its values depended on which game reached a position first; its rows are never read.

>>> from chess_exp.analysis.reward import eval_to_reward
>>> round(eval_to_reward("0.00", chess.WHITE), 3), round(eval_to_reward("#-1", chess.WHITE), 3)
(0.5, 0.001)
"""

from __future__ import annotations

import atexit
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import chess
import chess.engine

from chess_exp.play.engines import DEFAULT_NODES as _ENGINE_NODES
from chess_exp.play.engines import EngineLimit, Stockfish, StockfishPool, find_stockfish, position_key

__all__ = ["DEFAULT_NODES", "default_cache_path", "eval_to_reward", "score_to_reward",
           "terminal_reward", "position_key", "RewardCache", "RewardOracle", "move_rewards",
           "find_stockfish_path"]

DEFAULT_NODES = _ENGINE_NODES["reward"]  # Stockfish nodes per position (shared by all multipv lines)
CACHE_FORMAT = 2  # the key format (position_key) and the analysis protocol; in the table and file name


def default_cache_path() -> Path:
    """$TRANSCENDENCE_REWARD_CACHE or <repo>/runs/cache/stockfish_rewards.v2.sqlite."""
    env = os.environ.get("TRANSCENDENCE_REWARD_CACHE")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "runs" / "cache" / f"stockfish_rewards.v{CACHE_FORMAT}.sqlite"


#: the engine layer's finder, under the name this module has always exported
find_stockfish_path = find_stockfish


def score_to_reward(score: chess.engine.PovScore, mover: chess.Color) -> float:
    """Expected score in [0, 1] for ``mover`` under the lichess WDL model."""
    return float(score.pov(mover).wdl(model="lichess").expectation())


def eval_to_reward(text: str, mover: chess.Color) -> float:
    """Convert a lichess ``[%eval ...]`` value (White's side: "0.24" pawns, "#3", "#-2") for ``mover``.

    The value is the evaluation of the position *after* the move, so for the player who made the
    move this is r(x, y).
    """
    t = text.strip()
    if t.startswith("#"):
        n = int(t[1:])
        score: chess.engine.Score = chess.engine.Mate(n)
    else:
        score = chess.engine.Cp(int(round(float(t) * 100)))
    return score_to_reward(chess.engine.PovScore(score, chess.WHITE), mover)


def terminal_reward(board_after: chess.Board, mover: chess.Color) -> float | None:
    """The mover's score when the game is over after the move (mate 1, draw ½), else ``None``."""
    if board_after.is_checkmate():
        return 1.0 if board_after.turn != mover else 0.0
    if board_after.is_stalemate() or board_after.is_insufficient_material():
        return 0.5
    return None


class RewardCache:
    """SQLite cache: (position key, limit key) -> [[uci, reward, raw score], ...] best first.

    Rows live in table ``rewards_v2``; a format-1 table (``rewards``) in the same file is ignored.
    """

    TABLE = f"rewards_v{CACHE_FORMAT}"

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, timeout=120, check_same_thread=False)
        with self._lock:
            self._conn.execute(f"CREATE TABLE IF NOT EXISTS {self.TABLE} (key TEXT, lim TEXT, value TEXT, "
                               "PRIMARY KEY (key, lim))")
            self._conn.commit()

    def get(self, key: str, lim: str) -> list | None:
        with self._lock:
            row = self._conn.execute(f"SELECT value FROM {self.TABLE} WHERE key=? AND lim=?",
                                     (key, lim)).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, key: str, lim: str, value: list) -> None:
        with self._lock:
            self._conn.execute(f"INSERT OR REPLACE INTO {self.TABLE} VALUES (?, ?, ?)",
                               (key, lim, json.dumps(value)))
            self._conn.commit()

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute(f"SELECT COUNT(*) FROM {self.TABLE}").fetchone()[0])

    def close(self) -> None:
        self._conn.close()


class RewardOracle:
    """Stockfish move rewards with an on-disk cache; opens engines lazily, use in a ``with`` block.

    ``ranked(board)`` gives [(move, reward)] best first (Stockfish's multipv order);
    ``move_rewards(board)`` the same as a dict; ``many(boards)`` analyses uncached positions on
    ``workers`` engines at once (one process each).
    """

    def __init__(self, stockfish_path: str | None = None, *, nodes: int | None = DEFAULT_NODES,
                 time_s: float | None = None, cache: RewardCache | str | Path | None = None,
                 hash_mb: int = 64, workers: int = 1, hang_timeout: float = 300.0):
        if (nodes is None) == (time_s is None):
            raise ValueError("nodes/time_s: give exactly one limit (nodes is the repeatable default)")
        if nodes is not None and nodes <= 0:
            raise ValueError(f"nodes: must be positive, got {nodes}")
        self.stockfish_path = stockfish_path
        self.engine_limit = (EngineLimit(kind="nodes", value=nodes) if nodes is not None
                             else EngineLimit(kind="time", value=float(time_s)))  # type: ignore[arg-type]
        self.limit = self.engine_limit.to_chess()
        self.limit_key = str(self.engine_limit)
        self.cache = cache if isinstance(cache, RewardCache) else RewardCache(cache)
        self.hash_mb = hash_mb
        self.workers = max(1, int(workers))
        self.hang_timeout = hang_timeout  # a MultiPV search over every legal move can take a while
        self._pool: StockfishPool | None = None
        self._elock = threading.Lock()
        self.n_analysed = 0  # positions sent to Stockfish by this oracle
        self.n_cached = 0  # positions answered from the cache

    # -- engines ---------------------------------------------------------------------------------
    @property
    def pool(self) -> StockfishPool:
        """The engines (started on first use), one per worker."""
        with self._elock:
            if self._pool is None:
                self._pool = StockfishPool(self.workers, find_stockfish(self.stockfish_path), limit=self.engine_limit,
                                           hash_mb=self.hash_mb, hang_timeout=self.hang_timeout)
            return self._pool

    @property
    def restarts(self) -> int:
        """Engine crashes or hangs survived."""
        return 0 if self._pool is None else self._pool.restarts

    def close(self) -> None:
        with self._elock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    def __enter__(self) -> RewardOracle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def describe(self) -> dict:
        """What produced the rewards (goes into results files)."""
        return {"engine": "stockfish", "limit": self.limit_key, "multipv": "all legal moves",
                "wdl_model": "lichess", "cache": str(self.cache.path)}

    # -- analysis --------------------------------------------------------------------------------
    def _analyse(self, board: chess.Board) -> list:
        mover = board.turn
        legal = list(board.legal_moves)
        if not legal:
            return []
        return self.pool.run(lambda engine: self._analyse_on(engine, board, mover, legal))

    def _analyse_on(self, engine: Stockfish, board: chess.Board, mover: chess.Color,
                    legal: list[chess.Move]) -> list:
        """The position (alone, cleared hash) and, for lines Stockfish did not report, the children."""
        infos = engine.analyse(board, multipv=len(legal))
        rows: dict[chess.Move, list] = {}
        for info in infos:
            pv = info.get("pv")
            if pv and pv[0] in board.legal_moves and pv[0] not in rows and "score" in info:
                rows[pv[0]] = [pv[0].uci(), score_to_reward(info["score"], mover), str(info["score"].white())]
        for move in legal:  # lines Stockfish did not report: analyse the child position
            if move in rows:
                continue
            child = board.copy(stack=False)
            child.push(move)
            term = terminal_reward(child, mover)
            if term is not None:
                rows[move] = [move.uci(), term, "terminal"]
            else:
                (info,) = engine.analyse(child)
                rows[move] = [move.uci(), score_to_reward(info["score"], mover), str(info["score"].white())]
        # multipv order is Stockfish's ranking; re-sort stably by reward for the filled-in lines
        ordered = sorted(rows.values(), key=lambda r: -r[1])
        return ordered

    def ranked(self, board: chess.Board) -> list[tuple[chess.Move, float]]:
        key = position_key(board)
        value = self.cache.get(key, self.limit_key)
        if value is None:
            value = self._analyse(board)
            self.cache.put(key, self.limit_key, value)
            self.n_analysed += 1
        else:
            self.n_cached += 1
        return [(chess.Move.from_uci(u), float(r)) for u, r, _ in value]

    def move_rewards(self, board: chess.Board) -> dict[chess.Move, float]:
        return dict(self.ranked(board))

    def many(self, boards: Sequence[chess.Board], *, progress: bool = False) -> list[list[tuple[chess.Move, float]]]:
        """``ranked`` for many positions, analysing the uncached ones on ``workers`` engines."""
        todo: dict[str, chess.Board] = {}
        for b in boards:
            k = position_key(b)
            if k not in todo and self.cache.get(k, self.limit_key) is None:
                todo[k] = b
        if todo:
            items = list(todo.items())
            bar = None
            if progress:
                from tqdm import tqdm
                bar = tqdm(total=len(items), desc=f"stockfish ({self.limit_key})", unit="pos")

            def work(item: tuple[str, chess.Board]) -> None:
                k, b = item
                self.cache.put(k, self.limit_key, self._analyse(b))
                with self._elock:
                    self.n_analysed += 1
                    if bar is not None:
                        bar.update(1)

            with ThreadPoolExecutor(max_workers=self.workers) as pool:
                list(pool.map(work, items))
            if bar is not None:
                bar.close()
        return [self.ranked(b) for b in boards]


_DEFAULT: RewardOracle | None = None


def move_rewards(board: chess.Board, *, oracle: RewardOracle | None = None) -> dict[chess.Move, float]:
    """Expected score for the mover after each legal move of ``board`` (cached on disk).

    Without ``oracle`` a shared default one is used (default node limit and cache, closed at exit).
    """
    global _DEFAULT
    if oracle is None:
        if _DEFAULT is None:
            _DEFAULT = RewardOracle()
            atexit.register(_DEFAULT.close)
        oracle = _DEFAULT
    return oracle.move_rewards(board)


def rewards_for(boards: Iterable[chess.Board], oracle: RewardOracle) -> list[dict[chess.Move, float]]:
    """Convenience: ``move_rewards`` for several boards through ``oracle.many``."""
    return [dict(r) for r in oracle.many(list(boards))]
