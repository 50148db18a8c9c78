"""Games between a panel's experts: a PGN training set, generated on all cores and resumable.

Game ``g`` of a run is a pure function of ``(seed, g)``: its two experts are drawn independently from
the panel's weights (White first, then Black) and its moves are sampled from their exact
distributions with ``numpy.random.default_rng([seed, g])``. So an interrupted run resumes by playing
only the missing indices, and the resumed file holds the same games as an uninterrupted one (in
completion order; the ``Round`` tag is the index). The games are played by the project's one game
loop (:func:`chess_exp.play.games.run_games`) under :data:`~chess_exp.play.games.EXPERT_RULES`
(draws claimed as soon as possible, a draw once the fullmove number passes ``max_moves``) and
written by its one PGN writer in the lichess style.

Each game is appended to the PGN with one write and flushed. On resume the file is read back first
(:func:`inspect_pgn`) and nothing is changed unless it is safe:

- every complete game must be byte for byte what this generator writes (``Event``/``Site`` tags,
  ``Round``, ``PlyCount`` matching the moves); anything else (a user's own PGN, a hand-edited game,
  text between games) is refused with :class:`ForeignPGN` and the file is left untouched;
- the games' ``Panel``, ``EngineLimit`` and ``Seed`` tags must match the run, and no game index may
  be ``>= n_games`` (a 30-game file is never silently left at 30 by ``n_games=10``): refused too;
- only then a torn last game (a prefix of a generated game, what a crash in the middle of its one
  write leaves) is cut off, and the indices already present are skipped.

PGN tags: ``White``/``Black`` and ``WhiteExpert``/``BlackExpert`` (the expert names), ``Panel``,
``EngineLimit``, ``Seed``, ``Round`` (game index), ``PlyCount``, ``Result``, ``Termination``
(lichess's "Normal" for a game that ended on the board, "Adjudication" at the move limit) and
``Ending`` (checkmate, stalemate, threefold_repetition, ...; the termination ``move_limit`` is
spelled "max moves" there, as the files have always had it, so that existing training files keep
their bytes and ``chess prepare`` their game ids).
"""

from __future__ import annotations

import io
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path

import chess
import chess.pgn
import numpy as np

from chess_exp.experts.oracle import Oracle
from chess_exp.experts.panel import Panel, build_experts
from chess_exp.experts.policies import MovePolicy
from chess_exp.play.engines import check_stockfish
from chess_exp.play.games import (
    EXPERT_RULES,
    MAX_MOVES,
    Game,
    GameRecord,
    GameRules,
    GameSpec,
    record_to_pgn,
    run_games,
)
from chess_exp.play.players import MoveChoice, MoveRequest, Player
from transcendence.cli import check_output_file

__all__ = ["GameRecord", "PolicyPlayer", "play_game", "generate_games", "scan_pgn", "inspect_pgn", "check_resume",
           "PgnScan", "ForeignPGN", "game_pgn", "MAX_MOVES"]

_RESULTS = ("1-0", "0-1", "1/2-1/2")


class PolicyPlayer:
    """A :data:`~chess_exp.play.players.MovePolicy` as a player of the game loop: each move is drawn
    from the policy's exact distribution with the game's generator (``rng.choice``)."""

    def __init__(self, policy: MovePolicy, name: str | None = None) -> None:
        self.policy = policy
        self.name: str = name or str(getattr(policy, "name", "policy"))

    def choose(self, requests: Sequence[MoveRequest]) -> list[MoveChoice]:
        out = []
        for request in requests:
            moves, probs = self.policy(request.board)
            out.append(MoveChoice(move=moves[int(request.rng.choice(len(moves), p=probs))]))
        return out


def play_game(white: MovePolicy, black: MovePolicy, *, rng: np.random.Generator,
              max_moves: int = MAX_MOVES, board: chess.Board | None = None, rules: GameRules | None = None,
              game_id: str = "", seed: tuple[int, ...] = (), headers: dict[str, str] | None = None) -> GameRecord:
    """Play one game between two move policies through the game loop, sampling each move from the
    policy's distribution with ``rng``.

    Rules: :data:`~chess_exp.play.games.EXPERT_RULES` with ``max_moves`` (draws are claimed as soon
    as they can be; a game whose fullmove number passes ``max_moves`` is a draw, "move_limit").
    """
    rules = replace(EXPERT_RULES, max_moves=max_moves) if rules is None else rules
    spec = GameSpec(game_id=game_id, white="white", black="black", seed=seed, headers=dict(headers or {}))
    players: dict[str, Player] = {"white": PolicyPlayer(white), "black": PolicyPlayer(black)}
    game = Game(spec, rng=rng, board=board, share_board=True)  # the policies only read the board
    (record,) = run_games([game], players, rules=rules, in_flight=1)
    return record


def game_pgn(record: GameRecord) -> str:
    """The game as the experts' files hold it: :func:`~chess_exp.play.games.record_to_pgn` in the
    lichess style (``PlyCount``, ``Termination`` "Normal"/"Adjudication", ``Ending``)."""
    return record_to_pgn(record, style="lichess")


_GAME_START = re.compile(r"(?m)^\[Event ")
EVENT_PREFIX = "transcendence synthetic experts ("
SITE = "transcendence chess experts generate"


class ForeignPGN(ValueError):
    """``out`` holds text this generator did not write (or wrote with other settings): never touched."""


@dataclass(frozen=True)
class PgnScan:
    """What :func:`inspect_pgn` found in an existing output file."""

    games: dict[int, dict[str, str]]  # game index (Round) -> headers of each complete generated game
    good_end: int  # byte length of the complete part: where a torn last game starts
    size: int  # file size in bytes (``good_end < size``: a torn tail to cut)


def _is_generated(chunk: str) -> tuple[bool, dict[str, str]]:
    """Whether ``chunk`` is exactly the text :func:`game_pgn` writes for a complete game."""
    game = chess.pgn.read_game(io.StringIO(chunk))
    if game is None or game.errors:
        return False, {}
    headers = dict(game.headers)
    ok = (headers.get("Event", "").startswith(EVENT_PREFIX) and headers.get("Site") == SITE
          and headers.get("Result") in _RESULTS and headers.get("Round", "").isdigit()
          and all(k in headers for k in ("Panel", "EngineLimit", "Seed", "PlyCount"))
          and headers.get("PlyCount") == str(sum(1 for _ in game.mainline_moves()))
          and str(game) + "\n\n" == chunk)  # byte for byte what the writer produces
    return ok, headers


def _torn(chunk: str) -> bool:
    """A prefix of a generated game's text (what a crash in the middle of one write leaves)."""
    return chunk.startswith(f'[Event "{EVENT_PREFIX}') or f'[Event "{EVENT_PREFIX}'.startswith(chunk)


def inspect_pgn(path: str | Path) -> PgnScan:
    """Read an output file back: its complete generated games and where a torn last game starts.

    Raises :class:`ForeignPGN` (the file is not touched) when anything other than complete games
    of this generator followed by at most one torn generated game is in it: a user's own PGN, a
    game edited by hand, text between games.
    """
    path = Path(path)
    if not path.exists():
        return PgnScan({}, 0, 0)
    if not path.is_file():
        raise ForeignPGN(f"--out {path} is not a regular file; give a PGN file path")
    data = path.read_bytes()
    text = data.decode("ascii", errors="replace")
    starts = [m.start() for m in _GAME_START.finditer(text)]
    head = text[:starts[0]] if starts else text
    if head.strip():
        if not starts and _torn(head):  # a crash during the very first write
            return PgnScan({}, 0, len(data))
        raise ForeignPGN(f"--out {path} holds text that `chess experts generate` did not write (it starts "
                         f"with {head[:40]!r}); the file was left untouched: give another --out")
    games: dict[int, dict[str, str]] = {}
    good_end = 0
    bounds = starts + [len(text)]
    for k, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        chunk = text[a:b]
        ok, headers = _is_generated(chunk)
        if not ok:
            if k == len(starts) - 1 and _torn(chunk):
                break  # a torn last game: cut on resume
            raise ForeignPGN(f"--out {path} holds a game that `chess experts generate` did not write "
                             f"(game {k + 1}, byte {a}: {chunk.splitlines()[0][:60]!r}); the file was left "
                             f"untouched: give another --out")
        index = int(headers["Round"])
        if index in games:
            raise ForeignPGN(f"--out {path} holds game {index} twice (byte {a}); the file was left untouched: "
                             f"give another --out")
        games[index] = headers
        good_end = b
    return PgnScan(games, good_end, len(data))


def scan_pgn(path: str | Path) -> tuple[set[int], int]:
    """The game indices (``Round`` tags) of the complete games in ``path`` and the byte length of the
    complete part (where a torn last game starts). See :func:`inspect_pgn`."""
    scan = inspect_pgn(path)
    return set(scan.games), scan.good_end


def check_resume(scan: PgnScan, panel: Panel, n_games: int, seed: int, path: str | Path) -> None:
    """Refuse to complete a file made with another panel, seed or engine limit, or holding more games
    than asked for (``ValueError``, the file untouched)."""
    want = {"Panel": panel.name, "EngineLimit": panel.engine.tag, "Seed": str(seed)}
    flag = {"Panel": "--panel", "EngineLimit": "the panel's engine limit", "Seed": "--seed"}
    for index in sorted(scan.games):
        headers = scan.games[index]
        for key, value in want.items():
            if headers.get(key) != value:
                raise ForeignPGN(
                    f"--out {path} was generated with {flag[key]} {headers.get(key)!r} (game {index}) but this "
                    f"run asks for {value!r}; resume with the same --panel and --seed, or give another --out")
    extra = sorted(g for g in scan.games if g >= n_games)
    if extra:
        raise ForeignPGN(f"--out {path} already holds {len(scan.games)} games (indices up to {max(scan.games)}), "
                         f"more than --games {n_games}; nothing is removed: ask for --games "
                         f"{max(scan.games) + 1} or more, or give another --out")


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
    headers = {
        "Event": f"{EVENT_PREFIX}{panel.name})",
        "Site": SITE,
        "Round": str(index),
        "White": experts[i_white].name,
        "Black": experts[i_black].name,
        "WhiteExpert": experts[i_white].name,
        "BlackExpert": experts[i_black].name,
        "Panel": panel.name,
        "EngineLimit": panel.engine.tag,
        "Seed": str(seed),
    }
    record = play_game(experts[i_white], experts[i_black], rng=rng, max_moves=max_moves, game_id=str(index),
                       seed=(seed, index), headers=headers)
    return index, game_pgn(record)


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
    if max_moves < 1:
        raise ValueError(f"max_moves: must be >= 1, got {max_moves}")
    out = Path(out)
    check_output_file(out, "--out")
    scan = inspect_pgn(out)  # refuses a file this generator did not write, before anything is changed
    check_resume(scan, panel, n_games, seed, out)
    done = set(scan.games)
    todo = [g for g in range(n_games) if g not in done]
    if todo:
        check_stockfish(stockfish)  # a missing or non-UCI binary: one clear error, nothing written
    out.parent.mkdir(parents=True, exist_ok=True)
    if scan.size != scan.good_end:
        with open(out, "r+b") as f:  # cut a torn last game (a crash in the middle of its write)
            f.truncate(scan.good_end)
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
