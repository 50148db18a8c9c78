"""Games between a panel's experts: a PGN training set, generated on all cores and resumable.

Game ``g`` of a run is a pure function of ``(seed, g)``: its two experts are drawn independently from
the panel's weights (White first, then Black) and its moves are sampled from their exact
distributions with ``numpy.random.default_rng([seed, g])``. So an interrupted run resumes by playing
only the missing indices, and the resumed file holds the same games as an uninterrupted one (in
completion order; the ``Round`` tag is the index).

Each game is appended to the PGN with one write and flushed. On resume the file is scanned, a torn
last game (one whose text does not end with its result, or whose ``PlyCount`` does not match its
moves) is cut off, and the indices already present are skipped.

PGN tags: ``White``/``Black`` and ``WhiteExpert``/``BlackExpert`` (the expert names), ``Panel``,
``EngineLimit``, ``Seed``, ``Round`` (game index), ``PlyCount``, ``Result``, ``Termination``
(lichess's "Normal" for a game that ended on the board, "Adjudication" at the move limit) and
``Ending`` (checkmate, stalemate, threefold_repetition, ..., or "max moves").
"""

from __future__ import annotations

import io
import os
import re
import sys
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Callable, Iterator

import chess
import chess.pgn
import numpy as np

from chess_exp.experts.oracle import Oracle
from chess_exp.experts.panel import Panel, build_experts
from chess_exp.experts.policies import MovePolicy

__all__ = ["GameRecord", "play_game", "generate_games", "scan_pgn", "game_pgn", "MAX_MOVES"]

MAX_MOVES = 89  # full moves before a game is stopped and scored a draw (the paper's evaluation rule)

_RESULTS = ("1-0", "0-1", "1/2-1/2")


@dataclass(frozen=True)
class GameRecord:
    """One finished game."""

    moves: tuple[chess.Move, ...]
    result: str  # "1-0", "0-1" or "1/2-1/2"
    termination: str  # "checkmate", "stalemate", ..., or "max moves"


def play_game(white: MovePolicy, black: MovePolicy, *, rng: np.random.Generator,
              max_moves: int = MAX_MOVES, board: chess.Board | None = None) -> GameRecord:
    """Play one game between two move policies, sampling each move from the policy's distribution.

    Draws are claimed as soon as they can be (threefold repetition, fifty moves); a game that reaches
    ``max_moves`` full moves is a draw with termination "max moves".
    """
    board = chess.Board() if board is None else board
    while True:
        outcome = board.outcome(claim_draw=True)
        if outcome is not None:
            return GameRecord(tuple(board.move_stack), outcome.result(), outcome.termination.name.lower())
        if board.fullmove_number > max_moves:
            return GameRecord(tuple(board.move_stack), "1/2-1/2", "max moves")
        policy = white if board.turn == chess.WHITE else black
        moves, probs = policy(board)
        board.push(moves[int(rng.choice(len(moves), p=probs))])


def game_pgn(record: GameRecord, headers: dict[str, str]) -> str:
    """The game as PGN text ending with a blank line."""
    game = chess.pgn.Game()
    for key, value in headers.items():
        game.headers[key] = value
    game.headers["Result"] = record.result
    game.headers["PlyCount"] = str(len(record.moves))
    # lichess's convention: "Normal" when the game ended on the board (what `chess prepare
    # --finished-only` keeps), "Adjudication" for the move limit; the precise reason in "Ending"
    game.headers["Termination"] = "Adjudication" if record.termination == "max moves" else "Normal"
    game.headers["Ending"] = record.termination
    node = game
    for move in record.moves:
        node = node.add_variation(move)
    return str(game) + "\n\n"


_GAME_START = re.compile(r"(?m)^\[Event ")


def scan_pgn(path: str | Path) -> tuple[set[int], int]:
    """The game indices (``Round`` tags) of the complete games in ``path`` and the byte length of the
    complete part (where a torn last game starts)."""
    path = Path(path)
    if not path.exists():
        return set(), 0
    text = path.read_bytes().decode("ascii", errors="replace")
    starts = [m.start() for m in _GAME_START.finditer(text)] + [len(text)]
    done: set[int] = set()
    good_end = 0
    for a, b in zip(starts[:-1], starts[1:]):
        chunk = text[a:b]
        game = chess.pgn.read_game(io.StringIO(chunk))
        ok = (game is not None and not game.errors
              and game.headers.get("Result") in _RESULTS
              and chunk.rstrip().endswith(game.headers.get("Result", "?"))
              and game.headers.get("PlyCount") == str(sum(1 for _ in game.mainline_moves()))
              and game.headers.get("Round", "").isdigit())
        if not ok:
            break  # a torn game: everything from here on is rewritten
        done.add(int(game.headers["Round"]))
        good_end = b
    return done, good_end


# --- worker side -------------------------------------------------------------------------------
_WORKER: dict = {}


def _init_worker(panel: Panel, cache_dir: str | None, stockfish: str | None) -> None:
    oracle = Oracle(panel.engine, cache_dir=cache_dir, stockfish=stockfish)
    _WORKER.update(panel=panel, oracle=oracle, experts=build_experts(panel, oracle))


def _play_index(args: tuple[int, int, int]) -> tuple[int, str]:
    index, seed, max_moves = args
    panel: Panel = _WORKER["panel"]
    experts = _WORKER["experts"]
    rng = np.random.default_rng([seed, index])
    w = panel.probabilities
    i_white, i_black = (int(rng.choice(len(w), p=w)) for _ in range(2))
    record = play_game(experts[i_white], experts[i_black], rng=rng, max_moves=max_moves)
    headers = {
        "Event": f"transcendence synthetic experts ({panel.name})",
        "Site": "transcendence chess experts generate",
        "Round": str(index),
        "White": experts[i_white].name,
        "Black": experts[i_black].name,
        "WhiteExpert": experts[i_white].name,
        "BlackExpert": experts[i_black].name,
        "Panel": panel.name,
        "EngineLimit": panel.engine.tag,
        "Seed": str(seed),
    }
    return index, game_pgn(record, headers)


def _run_sequential(panel: Panel, todo: list[int], seed: int, max_moves: int, cache_dir: str | None,
                    stockfish: str | None) -> Iterator[tuple[int, str]]:
    _init_worker(panel, cache_dir, stockfish)
    try:
        for index in todo:
            yield _play_index((index, seed, max_moves))
    finally:
        _WORKER["oracle"].close()
        _WORKER.clear()


def generate_games(panel: Panel, n_games: int, out: str | Path, *, seed: int = 0,
                   workers: int | None = None, cache_dir: str | Path | None = None,
                   stockfish: str | None = None, max_moves: int = MAX_MOVES, progress: bool = True,
                   on_game: Callable[[int], None] | None = None) -> Path:
    """Write ``n_games`` games between ``panel``'s experts to ``out`` (PGN), resuming an existing file.

    Parameters
    ----------
    panel : Panel
    n_games : int
        Total number of games the file should hold (indices ``0 .. n_games-1``).
    out : path
        The PGN file; games already in it (same indices) are kept and not replayed.
    seed : int
        Game ``g`` uses ``numpy.random.default_rng([seed, g])``.
    workers : int or None
        Processes (one Stockfish each); default: all cores. ``1`` runs in this process.
    cache_dir : path or None
        The oracle's on-disk best-move cache, shared by all workers.
    """
    if n_games < 0:
        raise ValueError(f"n_games: must be >= 0, got {n_games}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done, good_end = scan_pgn(out)
    if out.exists() and out.stat().st_size != good_end:
        with open(out, "r+b") as f:  # cut a torn last game
            f.truncate(good_end)
    todo = [g for g in range(n_games) if g not in done]
    workers = (os.cpu_count() or 1) if workers is None else workers
    workers = max(1, min(workers, len(todo) or 1))
    cache = str(cache_dir) if cache_dir is not None else None
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=n_games, initial=min(len(done), n_games), unit="game", file=sys.stderr,
                   desc=f"{panel.name} games", dynamic_ncols=True)
    with open(out, "a", encoding="ascii") as f:
        if workers == 1:
            results = _run_sequential(panel, todo, seed, max_moves, cache, stockfish)
            pool = None
        else:
            pool = get_context("spawn").Pool(workers, initializer=_init_worker,
                                              initargs=(panel, cache, stockfish))
            results = pool.imap_unordered(_play_index, [(g, seed, max_moves) for g in todo], chunksize=1)
        try:
            for index, text in results:
                f.write(text)
                f.flush()
                if bar is not None:
                    bar.update(1)
                if on_game is not None:
                    on_game(index)
        finally:
            if pool is not None:
                pool.terminate()
                pool.join()
            if bar is not None:
                bar.close()
    return out
