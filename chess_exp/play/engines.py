"""Chess engines behind a small Protocol: Stockfish (with a repeatable Skill Level) and a random mover.

An :class:`Engine` answers one question, ``play(board, rng=...) -> chess.Move``. Two implementations:

- :class:`Stockfish`, a python-chess UCI wrapper opened in a ``with`` block: one thread, a node,
  depth or time :class:`EngineLimit` (nodes by default, because it is repeatable and independent of
  the machine), the paper's ``Skill Level``, and restarts after a crash or a hang with the game going
  on from the same position (each event is logged and counted in ``Stockfish.restarts``).

:class:`StockfishPool` runs several Stockfish processes side by side so that many games can be in
flight at once (``chess_exp.play.games``).

This module is the one place where Stockfish is found (:func:`find_stockfish`, :func:`check_stockfish`),
started and supervised (:class:`Stockfish`, :class:`StockfishPool`: timeouts, restarts), where a
search limit is parsed and written (:class:`EngineLimit`, defaults in :data:`DEFAULT_NODES`) and where
a position is turned into a cache key (:func:`position_key`). The experts' best-move oracle
(``chess_exp.experts.oracle.Oracle``) and the analyses' reward oracle
(``chess_exp.analysis.reward.RewardOracle``) are caches in front of these engines
(:meth:`Stockfish.best_move`, :meth:`Stockfish.analyse`).

Skill Level and repeatability
-----------------------------
Stockfish's own ``Skill Level`` (levels < 20) picks its move at search depth ``1 + level`` from the
four best root moves with a random perturbation drawn from a generator seeded with the wall clock
(``Skill::pick_best``, ``static PRNG rng(now())``), so two identical runs give different games. By
default (``skill="emulated"``) this wrapper reproduces that rule with the game's own NumPy generator:
it searches at full strength with ``MultiPV=4`` to depth ``1 + level`` (capped by the limit) and
applies Stockfish's formula

.. math::  \\text{push}_i = \\big\\lfloor (w\\,(s_0 - s_i) + \\delta\\,U_i) / 128 \\big\\rfloor,\\quad
           w = 120 - 2\\,\\text{level},\\ \\delta = \\min(s_0 - s_{k-1}, \\text{PawnValueMg}),\\
           U_i \\sim \\mathcal U\\{0..w-1\\}

choosing the last move with the largest ``s_i + push_i``. Because real Stockfish also takes its
skill move at depth ``1 + level`` whatever the remaining time (the paper's 0.1 s only deepens a search
whose result it discards), the emulated engine plays the same move distribution, now repeatable:
the same seed and limit give the same games. ``skill="native"`` uses Stockfish's own option instead
(what the paper ran; not repeatable). Scores are converted from UCI centipawns back to Stockfish
15.1's internal units with :data:`INTERNAL_PER_CP`, an assumed constant (Stockfish's
``NormalizeToPawnValue / 100``, which differs between versions, e.g. 3.28 in Stockfish 16); an
error in it only rescales the comparison of the score gaps with the random term.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import os
import shutil
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

import chess
import chess.engine
import numpy as np

__all__ = ["Engine", "EngineLimit", "Stockfish", "StockfishPool", "StockfishNotFound",
           "StockfishUnusable", "check_stockfish",
           "find_stockfish", "DEFAULT_LIMIT", "DEFAULT_NODES", "INSTALL_HINT", "position_key"]

log = logging.getLogger(__name__)

INSTALL_HINT = ("install it with `sudo apt-get install -y stockfish` (Debian/Ubuntu; the binary lands in "
                "/usr/games/stockfish), `brew install stockfish` (macOS), or `make stockfish`; or point "
                "STOCKFISH_PATH at the binary")
#: Stockfish 15.1 constants used by the emulated Skill Level (src/types.h, src/uci.h).
PAWN_VALUE_MG = 126
INTERNAL_PER_CP = 3.61  # internal value units per UCI centipawn (NormalizeToPawnValue / 100; assumed)
VALUE_MATE = 32000
_ENGINE_ERRORS = (chess.engine.EngineError, TimeoutError, asyncio.TimeoutError, OSError, EOFError,
                  RuntimeError, concurrent.futures.CancelledError)

T = TypeVar("T")


class StockfishNotFound(FileNotFoundError):
    """No Stockfish binary was found; the message says how to install one."""


def find_stockfish(path: str | os.PathLike[str] | None = None) -> str:
    """Locate the Stockfish binary.

    Order: ``path`` (from a config or the command line), ``$STOCKFISH_PATH``, ``stockfish`` on
    ``$PATH``, ``/usr/games/stockfish``. Raises :class:`StockfishNotFound` with the install command
    when none exists; a given ``path`` or ``$STOCKFISH_PATH`` that does not exist is an error too
    (never silently replaced by another binary).
    """
    if path is not None:
        if Path(path).is_file():
            return str(path)
        raise StockfishNotFound(f"stockfish path {str(path)!r} does not exist; {INSTALL_HINT}")
    env = os.environ.get("STOCKFISH_PATH")
    if env:
        if Path(env).is_file():
            return env
        raise StockfishNotFound(f"STOCKFISH_PATH={env!r} does not exist; {INSTALL_HINT}")
    on_path = shutil.which("stockfish")
    if on_path:
        return on_path
    if Path("/usr/games/stockfish").is_file():
        return "/usr/games/stockfish"
    raise StockfishNotFound(f"Stockfish not found (looked at STOCKFISH_PATH, PATH, /usr/games/stockfish); "
                            f"{INSTALL_HINT}")


#: Default Stockfish node counts, one per use (nodes, not time: repeatable and machine-independent).
#: ``play``: the Skill Level ladder and engine adjudication; ``oracle``: the experts' best move
#: (``EngineSpec``'s default; the preset panels use 50); ``reward``: r(x, y) for the analyses, shared
#: by all MultiPV lines of one position.
DEFAULT_NODES: dict[str, int] = {"play": 20_000, "oracle": 200, "reward": 100_000}


def position_key(board: chess.Board) -> str:
    """The cache key of a position: the FEN without the fullmove number.

    Piece placement, side to move, castling rights, the en-passant square only when a capture there
    is legal, and the halfmove clock. The halfmove clock stays in because Stockfish's evaluation
    depends on it (it scales evaluations towards a draw as the fifty-move rule nears), so two
    positions that differ only in it can get different best moves or scores; the fullmove number
    never changes a search. Every cache of Stockfish results keys positions with this function, and
    every cached search is run on the position alone (no move history, cleared hash), so a cached
    value is a function of its key.
    """
    return " ".join(board.fen(en_passant="legal").split()[:5])


@dataclass(frozen=True, kw_only=True)
class EngineLimit:
    """How long Stockfish thinks per move: exactly one of nodes, depth or time.

    ``nodes``/``depth`` are repeatable (the default); ``time`` (seconds, the paper's 0.1) is not.
    ``str(limit)`` gives the ``kind=value`` form that :meth:`parse` reads and that PGN headers record.
    """

    kind: Literal["nodes", "depth", "time"] = "nodes"  # which budget
    value: float = DEFAULT_NODES["play"]  # nodes (count), depth (plies) or time (seconds)

    def __post_init__(self) -> None:
        if self.kind not in ("nodes", "depth", "time"):
            raise ValueError(f"limit kind {self.kind!r}: must be nodes, depth or time (for example nodes=20000)")
        if not (self.value > 0 and math.isfinite(self.value)):
            raise ValueError(f"limit {self.kind}={self.value!r}: must be a positive number")
        if self.kind in ("nodes", "depth") and float(self.value) != int(self.value):
            raise ValueError(f"limit {self.kind}={self.value!r}: must be an integer")

    @classmethod
    def parse(cls, text: str) -> EngineLimit:
        """``"nodes=20000"``, ``"depth=8"`` or ``"time=0.1"``."""
        kind, sep, value = text.partition("=")
        if not sep:
            raise ValueError(f"limit {text!r}: expected nodes=N, depth=D or time=SECONDS")
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"limit {text!r}: {value!r} is not a number") from None
        return cls(kind=kind.strip(), value=number)  # type: ignore[arg-type]

    @classmethod
    def coerce(cls, limit: EngineLimit | chess.engine.Limit | str) -> EngineLimit:
        """An :class:`EngineLimit` from itself, its text form, or a ``chess.engine.Limit`` that sets
        exactly one of nodes, depth or time."""
        if isinstance(limit, cls):
            return limit
        if isinstance(limit, str):
            return cls.parse(limit)
        if isinstance(limit, chess.engine.Limit):
            given = [(k, getattr(limit, k)) for k in ("nodes", "depth", "time") if getattr(limit, k) is not None]
            others = [k for k in ("white_clock", "black_clock", "white_inc", "black_inc", "remaining_moves", "mate")
                      if getattr(limit, k, None) is not None]
            if len(given) != 1 or others:
                raise ValueError(f"limit={limit!r}: give exactly one of nodes, depth or time")
            kind, value = given[0]
            return cls(kind=kind, value=value)  # type: ignore[arg-type]
        raise ValueError(f"limit={limit!r}: must be an EngineLimit, a chess.engine.Limit or text like nodes=20000")

    def to_chess(self, *, depth_cap: int | None = None) -> chess.engine.Limit:
        """The python-chess limit; ``depth_cap`` adds a depth bound (emulated Skill Level)."""
        if self.kind == "nodes":
            return chess.engine.Limit(nodes=int(self.value), depth=depth_cap)
        if self.kind == "depth":
            depth = int(self.value) if depth_cap is None else min(int(self.value), depth_cap)
            return chess.engine.Limit(depth=depth)
        return chess.engine.Limit(time=float(self.value), depth=depth_cap)

    def __str__(self) -> str:
        value = self.value if self.kind == "time" else int(self.value)
        return f"{self.kind}={value}"


DEFAULT_LIMIT = EngineLimit(kind="nodes", value=DEFAULT_NODES["play"])


@runtime_checkable
class Engine(Protocol):
    """Anything that picks a move in a position. ``rng`` is the game's generator."""

    name: str

    def play(self, board: chess.Board, *, rng: np.random.Generator) -> chess.Move: ...


def _internal_score(info: chess.engine.InfoDict) -> int:
    """Root score from the mover's side in Stockfish's internal units."""
    score = info["score"].relative
    if score.is_mate():
        mate = score.mate()
        assert mate is not None
        return VALUE_MATE - abs(mate) if mate > 0 else -VALUE_MATE + abs(mate)
    cp = score.score()
    assert cp is not None
    return int(round(cp * INTERNAL_PER_CP))


def pick_skill_move(infos: Sequence[chess.engine.InfoDict], level: int, rng: np.random.Generator) -> chess.Move:
    """Stockfish's ``Skill::pick_best`` on a MultiPV result, with ``rng`` instead of its clock-seeded PRNG."""
    lines = [info for info in infos if info.get("pv") and "score" in info]
    if not lines:
        raise chess.engine.EngineError("the engine returned no principal variation")
    scores = [_internal_score(info) for info in lines]
    top = scores[0]
    delta = min(top - scores[-1], PAWN_VALUE_MG)
    weakness = 120 - 2 * level
    best = lines[0]["pv"][0]
    max_score = -math.inf
    for info, score in zip(lines, scores):
        push = (weakness * (top - score) + delta * int(rng.integers(weakness))) // 128
        if score + push >= max_score:
            max_score = score + push
            best = info["pv"][0]
    return best


class Stockfish:
    """Stockfish through python-chess: one thread, a limit, a Skill Level, restarts on crash or hang.

    Use it in a ``with`` block::

        with Stockfish(level=1, limit=EngineLimit(kind="nodes", value=20_000)) as engine:
            move = engine.play(board, rng=np.random.default_rng(0))

    Parameters
    ----------
    path : binary, else :func:`find_stockfish`.
    level : default Skill Level 0..20 (20 = full strength); ``play(..., level=)`` overrides it.
    limit : per move: an :class:`EngineLimit`, its text (``"nodes=20000"``) or a ``chess.engine.Limit``.
    skill : ``"emulated"`` (repeatable, see the module docstring) or ``"native"`` (Stockfish's option).
    hash_mb : hash table size in MB.
    hang_timeout : seconds beyond the limit after which a silent engine counts as hung and is restarted.
    max_restarts : restarts tried for one move before giving up with ``chess.engine.EngineError``.
    start_timeout : seconds allowed for starting the process and the UCI handshake (kept apart from
        ``hang_timeout`` so that a short hang timeout does not fail a restart on a loaded machine).

    Every search starts from a cleared engine state (``ucinewgame``), so a move depends only on the
    position, the limit and the game's generator, not on which process of a pool played the last one.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, level: int = 20,
                 limit: EngineLimit | chess.engine.Limit | str = DEFAULT_LIMIT,
                 skill: Literal["emulated", "native"] = "emulated",
                 hash_mb: int = 16, hang_timeout: float = 30.0, max_restarts: int = 3,
                 name: str | None = None, start_timeout: float = 60.0) -> None:
        _check_level(level)
        if skill not in ("emulated", "native"):
            raise ValueError(f"skill={skill!r}: must be 'emulated' (repeatable) or 'native'")
        self.path = find_stockfish(path)
        self.level = level
        self.limit = EngineLimit.coerce(limit)
        self.skill = skill
        self.hash_mb = hash_mb
        self.hang_timeout = hang_timeout
        self.start_timeout = max(start_timeout, hang_timeout)
        self.max_restarts = max_restarts
        self.name = name or f"stockfish-L{level}"
        self.restarts = 0  # crashes or hangs survived
        self.events: list[dict[str, Any]] = []  # one entry per restart: {"error", "fen"}
        self._engine: chess.engine.SimpleEngine | None = None
        self._lock = threading.RLock()

    # -- lifetime -------------------------------------------------------------------------------
    def __enter__(self) -> Stockfish:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        with self._lock:
            if self._engine is None:
                engine = chess.engine.SimpleEngine.popen_uci(self.path, timeout=self.start_timeout)
                try:
                    engine.configure({"Threads": 1, "Hash": self.hash_mb})
                except BaseException:
                    engine.close()
                    raise
                self._engine = engine

    def close(self) -> None:
        with self._lock:
            engine, self._engine = self._engine, None
            if engine is not None:
                try:
                    engine.quit()
                except Exception:  # already dead: nothing to say goodbye to
                    pass
                finally:
                    engine.close()

    def _kill(self) -> None:
        engine, self._engine = self._engine, None
        if engine is None:
            return
        try:
            engine.protocol.loop.call_soon_threadsafe(engine.transport.kill)
        except Exception:
            pass
        engine.close()

    @property
    def pid(self) -> int | None:
        """Process id of the running engine (tests kill it to simulate a crash)."""
        engine = self._engine
        return None if engine is None else engine.transport.get_pid()

    # -- calls ----------------------------------------------------------------------------------
    def _call(self, make_coro: Callable[[chess.engine.Protocol], Any], board: chess.Board,
              limit: EngineLimit | None = None) -> Any:
        limit = self.limit if limit is None else limit
        with self._lock:
            for attempt in range(self.max_restarts + 1):
                try:
                    if self._engine is None:
                        self.open()
                    engine = self._engine
                    assert engine is not None
                    timeout = self.hang_timeout + (limit.value if limit.kind == "time" else 0.0)
                    protocol = engine.protocol

                    async def bounded(protocol: chess.engine.Protocol = protocol, timeout: float = timeout) -> Any:
                        return await asyncio.wait_for(make_coro(protocol), timeout)

                    coro = bounded()
                    try:
                        future = asyncio.run_coroutine_threadsafe(coro, protocol.loop)
                    except BaseException:
                        coro.close()  # the loop is gone: the engine died
                        raise
                    return future.result()
                except _ENGINE_ERRORS as exc:
                    if attempt == self.max_restarts:
                        raise chess.engine.EngineError(
                            f"{self.name}: gave up after {self.max_restarts} restarts at {board.fen()}: {exc!r}"
                        ) from exc
                    self.restarts += 1
                    self.events.append({"error": repr(exc), "fen": board.fen()})
                    log.warning("%s: engine failed (%r) at %s; restarting and replaying the position",
                                self.name, exc, board.fen())
                    self._kill()
            raise AssertionError("unreachable")

    def play(self, board: chess.Board, *, rng: np.random.Generator, level: int | None = None) -> chess.Move:
        """The engine's move in ``board`` at ``level`` (default: the engine's level)."""
        level = self.level if level is None else level
        _check_level(level)
        if board.is_game_over():
            raise ValueError(f"board: the game is over ({board.fen()})")
        fresh = object()  # a new game key each call: python-chess sends ucinewgame (clears hash/history)
        if level >= 20:
            result = self._call(lambda p: p.play(board, self.limit.to_chess(), game=fresh,
                                                 options={"Skill Level": 20}), board)
            return self._checked(result.move, board)
        if self.skill == "native":
            result = self._call(lambda p: p.play(board, self.limit.to_chess(), game=fresh,
                                                 options={"Skill Level": level}), board)
            return self._checked(result.move, board)
        multipv = min(4, board.legal_moves.count())
        infos = self._call(lambda p: p.analyse(board, self.limit.to_chess(depth_cap=1 + level), game=fresh,
                                               multipv=multipv, options={"Skill Level": 20}), board)
        return self._checked(pick_skill_move(infos, level, rng), board)

    def evaluate(self, board: chess.Board) -> chess.engine.PovScore:
        """Full-strength evaluation of ``board`` under the engine's limit (for adjudication)."""
        fresh = object()
        info = self._call(lambda p: p.analyse(board, self.limit.to_chess(), game=fresh,
                                              options={"Skill Level": 20}), board)
        return info["score"]

    def best_move(self, board: chess.Board, limit: EngineLimit | None = None) -> chess.Move:
        """Full-strength move in ``board`` alone (no move history, cleared hash): a function of
        :func:`position_key` and the limit, which is what makes it cacheable."""
        limit = self.limit if limit is None else limit
        fresh_board = board.copy(stack=False)
        if not any(fresh_board.generate_legal_moves()):
            raise ValueError(f"board: no legal move in {board.fen()}")
        result = self._call(lambda p: p.play(fresh_board, limit.to_chess(), game=object(),
                                             options={"Skill Level": 20}), fresh_board, limit)
        return self._checked(result.move, fresh_board)

    def analyse(self, board: chess.Board, limit: EngineLimit | None = None, *,
                multipv: int | None = None) -> list[chess.engine.InfoDict]:
        """Full-strength MultiPV analysis of ``board`` alone (no history, cleared hash): one info per
        line, best first (``multipv=None``: one line)."""
        limit = self.limit if limit is None else limit
        fresh_board = board.copy(stack=False)
        infos = self._call(lambda p: p.analyse(fresh_board, limit.to_chess(), game=object(), multipv=multipv or 1,
                                               options={"Skill Level": 20}), fresh_board, limit)
        return list(infos)

    @staticmethod
    def _checked(move: chess.Move | None, board: chess.Board) -> chess.Move:
        if move is None or move not in board.legal_moves:
            raise chess.engine.EngineError(f"engine returned {move} in {board.fen()}")
        return move


def _check_level(level: int) -> None:
    if not (isinstance(level, (int, np.integer)) and 0 <= level <= 20):
        raise ValueError(f"level={level!r}: Stockfish Skill Level must be an integer in 0..20")


class StockfishPool:
    """Several :class:`Stockfish` processes serving moves of many games at once.

    ``play_many(boards, rngs, levels)`` spreads the positions over the processes (threads wait on the
    subprocesses, so the work runs in parallel). Results do not depend on which process played
    which position (each search starts from a cleared state). Use in a ``with`` block.
    """

    def __init__(self, size: int = 2, path: str | os.PathLike[str] | None = None, *,
                 limit: EngineLimit | chess.engine.Limit | str = DEFAULT_LIMIT,
                 skill: Literal["emulated", "native"] = "emulated",
                 hash_mb: int = 16, hang_timeout: float = 30.0, max_restarts: int = 3) -> None:
        if size < 1:
            raise ValueError(f"size={size}: a pool needs at least one engine")
        self.path = find_stockfish(path)
        self.limit = limit = EngineLimit.coerce(limit)
        self.skill = skill
        self.engines = [Stockfish(self.path, limit=limit, skill=skill, hash_mb=hash_mb,
                                  hang_timeout=hang_timeout, max_restarts=max_restarts, name=f"stockfish#{i}")
                        for i in range(size)]
        self._free: list[Stockfish] = list(self.engines)
        self._cond = threading.Condition()
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

    def __enter__(self) -> StockfishPool:
        self._executor = concurrent.futures.ThreadPoolExecutor(len(self.engines), thread_name_prefix="stockfish")
        try:
            for engine in self.engines:
                engine.open()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        for engine in self.engines:
            engine.close()

    @property
    def restarts(self) -> int:
        return sum(engine.restarts for engine in self.engines)

    def _with_engine(self, fn: Callable[[Stockfish], T]) -> T:
        with self._cond:
            while not self._free:
                self._cond.wait()
            engine = self._free.pop()
        try:
            return fn(engine)
        finally:
            with self._cond:
                self._free.append(engine)
                self._cond.notify()

    def play_many(self, boards: Sequence[chess.Board], rngs: Sequence[np.random.Generator],
                  levels: Sequence[int]) -> list[tuple[chess.Move, int]]:
        """For each position, ``(move, restarts during that move)``."""
        if self._executor is None:
            raise RuntimeError("StockfishPool must be used in a `with` block")

        def one(i: int) -> tuple[chess.Move, int]:
            def run(engine: Stockfish) -> tuple[chess.Move, int]:
                before = engine.restarts
                move = engine.play(boards[i], rng=rngs[i], level=levels[i])
                return move, engine.restarts - before
            return self._with_engine(run)

        return list(self._executor.map(one, range(len(boards))))

    def evaluate(self, board: chess.Board) -> chess.engine.PovScore:
        """Full-strength evaluation on one of the pool's engines."""
        return self._with_engine(lambda engine: engine.evaluate(board))

    def run(self, fn: Callable[[Stockfish], T]) -> T:
        """``fn(engine)`` on a free engine of the pool (waits for one); safe from many threads.

        Works outside a ``with`` block too: engines start on first use; call :meth:`close`.
        """
        return self._with_engine(fn)

    def close(self) -> None:
        self.__exit__()


class StockfishUnusable(ValueError):
    """The Stockfish path exists but is not a working UCI engine; the message is one line."""


def check_stockfish(path: str | os.PathLike[str] | None = None, *, timeout: float = 10.0) -> str:
    """:func:`find_stockfish`, then a UCI handshake with the binary; returns the path.

    A binary that exits at once (``/bin/false``), cannot be executed, or does not answer ``uci``
    within ``timeout`` seconds raises :class:`StockfishUnusable` with one line naming the path and
    what to do, so that commands fail before they write anything.
    """
    found = find_stockfish(path)
    try:
        engine = chess.engine.SimpleEngine.popen_uci(found, timeout=timeout)
    except chess.engine.EngineTerminatedError:
        problem = "exited during the UCI handshake"
    except TimeoutError:
        problem = f"did not answer the UCI handshake within {timeout:g} s"
    except OSError as exc:
        problem = f"cannot be run ({exc.strerror or exc})"
    except chess.engine.EngineError as exc:
        problem = f"answered the UCI handshake wrongly ({exc})"
    else:
        engine.quit()
        return found
    raise StockfishUnusable(f"stockfish {found}: not a working UCI engine: it {problem}; point --stockfish "
                            f"(or STOCKFISH_PATH) at a Stockfish binary")
