"""The game loop: many games in flight, batched players, PGN + JSONL per game, resumable.

:func:`play_games` plays a list of :class:`GameSpec` between named :class:`~chess_exp.play.players.Player`
objects. All games that wait for the same player are handed to it in one ``choose`` call (a model
scores them in one batch; a Stockfish pool searches them in parallel), and different players' calls
run at the same time, so the model and the engines keep both cores busy.

Rules (the paper's, PAPER.md §3.5): a game ends by checkmate, stalemate, insufficient material,
fivefold repetition or the 75-move rule (threefold and 50 moves too with ``claim_draw``); after ``max_moves`` full moves (89) it is a
draw, or, with ``adjudicate="engine"``, decided by a Stockfish evaluation. A player that resigns
(a model that emitted a result string) or forfeits (5 illegal attempts) loses.

Files (``out_dir``): ``games.jsonl`` gets one line per finished game (result, termination, SAN
moves, illegal-attempt counts, engine restarts, seed, headers, tags) and ``games.pgn`` the same game
with its headers. A second call with the same ``out_dir`` keeps every finished game, replays none
and plays only the missing ones; a half-written last line is discarded (its game is replayed), and
the PGN is rebuilt from the JSONL so the two always agree.

Repeatability: each game draws all randomness from its own generator, seeded by
``GameSpec.seed``; with a node or depth limit the same specs give the same games, whatever the
number of games in flight.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Literal, Mapping, Sequence

import chess
import chess.pgn
import numpy as np

from chess_exp.play.players import MoveChoice, MoveRequest, Player

__all__ = ["GameSpec", "GameRecord", "MatchConfig", "play_games", "ladder_specs", "load_records",
           "record_to_pgn", "engine_adjudicator", "game_seed", "score_for"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class MatchConfig:
    """How games are played and scheduled."""

    max_moves: int = 89  # full moves before the game stops (the paper's MAX_MOVES)
    adjudicate: Literal["draw", "engine"] = "draw"  # games at the move limit: draws, or a Stockfish verdict
    adjudicate_cp: int = 300  # |evaluation| (centipawns, mover-independent) needed to award a win
    in_flight: int = 64  # games played at the same time
    claim_draw: bool = False  # True: claimable draws (threefold, 50 moves) end the game; False: only
    # the automatic ones (fivefold, 75 moves), as python-chess's board.is_game_over() in the paper's loop


@dataclass(frozen=True, kw_only=True)
class GameSpec:
    """One game to play: who plays which colour and its seed."""

    game_id: str  # unique and stable across runs (the resume key)
    white: str  # key of the white player in the players mapping
    black: str  # key of the black player
    seed: int | tuple[int, ...]  # entropy of the game's np.random.Generator
    headers: Mapping[str, str] = field(default_factory=dict)  # extra PGN headers
    tags: Mapping[str, Any] = field(default_factory=dict)  # extra JSONL fields (temperature, level, ...)


@dataclass(frozen=True, kw_only=True)
class GameRecord:
    """A finished game, as stored in one JSONL line."""

    game_id: str
    white: str  # player names
    black: str
    result: str  # "1-0", "0-1", "1/2-1/2"
    termination: str  # checkmate, stalemate, ..., move_limit, adjudication, resign, forfeit
    sans: list[str]  # SAN of every move, checks and mates included
    illegal_attempts: dict[str, int]  # {"white": n, "black": n}: rejected samples over the game
    engine_restarts: int  # engine crashes/hangs survived during the game
    seed: Any
    headers: dict[str, str]
    tags: dict[str, Any]

    @property
    def plies(self) -> int:
        return len(self.sans)


def game_seed(*parts: int) -> tuple[int, ...]:
    """A seed tuple for :class:`GameSpec` from integer parts (base seed, level, game index, ...)."""
    return tuple(int(p) for p in parts)


def score_for(record: GameRecord | Mapping[str, Any], colour: Literal["white", "black"]) -> float:
    """1, 0.5 or 0 for the player of ``colour``."""
    result = record.result if isinstance(record, GameRecord) else record["result"]
    white = {"1-0": 1.0, "0-1": 0.0, "1/2-1/2": 0.5}[result]
    return white if colour == "white" else 1.0 - white


def ladder_specs(player: str, opponents: Sequence[str], n_games: int, *, seed: int,
                 prefix: str = "", headers: Mapping[str, str] | None = None,
                 tags: Mapping[str, Any] | None = None, seed_key: Sequence[int] = ()) -> list[GameSpec]:
    """``n_games`` games of ``player`` against each opponent, colours alternating.

    Game ``i`` against opponent ``o`` has ``player`` as White when ``i`` is even; its id is
    ``f"{prefix}{o}-{i:04d}"`` and its seed ``(seed, *seed_key, opponent index, i)``.
    ``tags`` gain ``opponent`` and ``player_colour``.
    """
    specs = []
    for k, opponent in enumerate(opponents):
        for i in range(n_games):
            white = i % 2 == 0
            specs.append(GameSpec(
                game_id=f"{prefix}{opponent}-{i:04d}", white=player if white else opponent,
                black=opponent if white else player, seed=game_seed(seed, *seed_key, k, i),
                headers=dict(headers or {}),
                tags={**(tags or {}), "opponent": opponent, "player_colour": "white" if white else "black"}))
    return specs


# -- files ----------------------------------------------------------------------------------------

def record_to_pgn(record: GameRecord) -> str:
    """The game as PGN text (headers first, then the moves and the result)."""
    game = chess.pgn.Game()
    game.headers["Event"] = record.headers.get("Event", "transcendence evaluation")
    game.headers["Site"] = record.headers.get("Site", "local")
    game.headers["Date"] = record.headers.get("Date", "????.??.??")
    game.headers["Round"] = record.headers.get("Round", "-")
    game.headers["White"] = record.white
    game.headers["Black"] = record.black
    game.headers["Result"] = record.result
    for key in sorted(record.headers):  # sorted: the same text whether written live or rebuilt on resume
        if key not in ("Event", "Site", "Date", "Round", "White", "Black", "Result"):
            game.headers[key] = str(record.headers[key])
    game.headers["GameId"] = record.game_id
    game.headers["Seed"] = json.dumps(record.seed)
    game.headers["Termination"] = record.termination
    node: chess.pgn.GameNode = game
    board = chess.Board()
    for san in record.sans:
        move = board.parse_san(san)
        node = node.add_variation(move)
        board.push(move)
    exporter = chess.pgn.StringExporter(headers=True, variations=False, comments=False)
    return game.accept(exporter) + "\n\n"


def _record_from_json(line: str) -> GameRecord:
    data = json.loads(line)
    names = {f for f in GameRecord.__dataclass_fields__}
    return GameRecord(**{k: v for k, v in data.items() if k in names})


def load_records(path: str | os.PathLike[str]) -> list[GameRecord]:
    """Finished games from a ``games.jsonl`` (a directory holding one is fine); skips a torn last line."""
    path = Path(path)
    if path.is_dir():
        path = path / "games.jsonl"
    records = []
    if not path.exists():
        return records
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.endswith("\n"):
                log.warning("%s:%d: incomplete last line ignored (interrupted write)", path, number)
                break
            records.append(_record_from_json(line))
    return records


class _GameFiles:
    """Appends finished games to games.pgn and games.jsonl (fsync'd), after repairing them."""

    def __init__(self, out_dir: Path) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        self.jsonl = out_dir / "games.jsonl"
        self.pgn = out_dir / "games.pgn"
        self.records = load_records(self.jsonl)
        seen: set[str] = set()
        unique = []
        for record in self.records:
            if record.game_id not in seen:  # defensive: a duplicate line is never counted twice
                seen.add(record.game_id)
                unique.append(record)
        self.records = unique
        # rewrite both files from the good records: drops a torn line and PGN games without JSONL
        _atomic_write(self.jsonl, "".join(_json_line(r) for r in self.records))
        _atomic_write(self.pgn, "".join(record_to_pgn(r) for r in self.records))

    def append(self, record: GameRecord) -> None:
        for path, text in ((self.pgn, record_to_pgn(record)), (self.jsonl, _json_line(record))):
            with open(path, "a", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
        self.records.append(record)


def _json_line(record: GameRecord) -> str:
    return json.dumps(asdict(record), sort_keys=True) + "\n"


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# -- adjudication ---------------------------------------------------------------------------------

def engine_adjudicator(evaluate: Callable[[chess.Board], Any], *, threshold_cp: int = 300
                       ) -> Callable[[chess.Board], str]:
    """A function board -> result from a Stockfish evaluation (``StockfishPool.evaluate``).

    White wins when the evaluation from White's side is at least ``threshold_cp`` centipawns (or a
    mate for White), Black wins symmetrically, otherwise a draw.
    """
    def adjudicate(board: chess.Board) -> str:
        score = evaluate(board).white().score(mate_score=100_000)
        if score >= threshold_cp:
            return "1-0"
        if score <= -threshold_cp:
            return "0-1"
        return "1/2-1/2"
    return adjudicate


# -- the loop -------------------------------------------------------------------------------------

class _LiveGame:
    def __init__(self, spec: GameSpec) -> None:
        self.spec = spec
        self.board = chess.Board()
        self.sans: list[str] = []
        self.rng = np.random.default_rng(np.random.SeedSequence(spec.seed))
        self.illegal = {"white": 0, "black": 0}
        self.restarts = 0
        self.result: str | None = None
        self.termination: str | None = None

    @property
    def colour(self) -> Literal["white", "black"]:
        return "white" if self.board.turn == chess.WHITE else "black"

    @property
    def player_key(self) -> str:
        return self.spec.white if self.board.turn == chess.WHITE else self.spec.black

    def request(self) -> MoveRequest:
        return MoveRequest(board=self.board.copy(), sans=tuple(self.sans), rng=self.rng,
                           game_id=self.spec.game_id, player_key=self.player_key)

    def apply(self, choice: MoveChoice) -> None:
        colour = self.colour
        self.illegal[colour] += choice.illegal_attempts
        self.restarts += choice.engine_restarts
        if choice.move is None:
            self.result = "0-1" if colour == "white" else "1-0"
            self.termination = "resign" if choice.resigned else "forfeit"
            return
        if choice.move not in self.board.legal_moves:
            raise ValueError(f"game {self.spec.game_id}: the {colour} player returned illegal move "
                             f"{choice.move} in {self.board.fen()}")
        self.sans.append(self.board.san(choice.move))
        self.board.push(choice.move)

    def check_end(self, config: MatchConfig, adjudicator: Callable[[chess.Board], str] | None) -> bool:
        if self.result is not None:
            return True
        outcome = self.board.outcome(claim_draw=config.claim_draw)
        if outcome is not None:
            self.result = outcome.result()
            self.termination = outcome.termination.name.lower()
            return True
        if len(self.sans) >= 2 * config.max_moves:
            if config.adjudicate == "engine" and adjudicator is not None:
                self.result = adjudicator(self.board)
                self.termination = "adjudication"
            else:
                self.result = "1/2-1/2"
                self.termination = "move_limit"
            return True
        return False

    def record(self, players: Mapping[str, Player]) -> GameRecord:
        assert self.result is not None and self.termination is not None
        spec = self.spec
        return GameRecord(game_id=spec.game_id, white=players[spec.white].name, black=players[spec.black].name,
                          result=self.result, termination=self.termination, sans=list(self.sans),
                          illegal_attempts=dict(self.illegal), engine_restarts=self.restarts,
                          seed=list(spec.seed) if isinstance(spec.seed, tuple) else spec.seed,
                          headers={k: str(v) for k, v in spec.headers.items()}, tags=dict(spec.tags))


def play_games(specs: Iterable[GameSpec], players: Mapping[str, Player], *,
               out_dir: str | os.PathLike[str] | None = None, config: MatchConfig = MatchConfig(),
               adjudicator: Callable[[chess.Board], str] | None = None, progress: bool = True,
               on_record: Callable[[GameRecord], None] | None = None) -> list[GameRecord]:
    """Play every spec not finished yet in ``out_dir``; return all records in spec order.

    ``players`` maps the keys used in the specs to players. ``adjudicator`` is needed when
    ``config.adjudicate == "engine"`` (see :func:`engine_adjudicator`).
    """
    specs = list(specs)
    ids = [s.game_id for s in specs]
    if len(set(ids)) != len(ids):
        raise ValueError("specs: game ids must be unique (they are the resume key)")
    for spec in specs:
        for key in (spec.white, spec.black):
            if key not in players:
                raise ValueError(f"spec {spec.game_id}: no player named {key!r} (have {sorted(players)})")
    if config.adjudicate == "engine" and adjudicator is None:
        raise ValueError("config.adjudicate='engine' needs an adjudicator (engine_adjudicator(pool.evaluate))")
    if config.max_moves < 1 or config.in_flight < 1:
        raise ValueError("config.max_moves and config.in_flight must be >= 1")
    files = _GameFiles(Path(out_dir)) if out_dir is not None else None
    finished: dict[str, GameRecord] = {r.game_id: r for r in files.records} if files else {}
    todo = [s for s in specs if s.game_id not in finished]
    bar = _progress(len(todo), progress)
    queue = list(reversed(todo))
    live: list[_LiveGame] = []
    with concurrent.futures.ThreadPoolExecutor(max(2, len({id(p) for p in players.values()}))) as executor:
        while queue or live:
            while queue and len(live) < config.in_flight:
                live.append(_LiveGame(queue.pop()))
            # one call per player object: a player registered under several keys (a model at
            # several temperatures) gets all its games in one batch; request.player_key tells them apart
            groups: dict[int, list[_LiveGame]] = {}
            for game in live:
                groups.setdefault(id(players[game.player_key]), []).append(game)
            futures = {group: executor.submit(players[games[0].player_key].choose, [g.request() for g in games])
                       for group, games in groups.items()}
            for group, games in groups.items():
                choices = futures[group].result()
                if len(choices) != len(games):
                    raise ValueError(f"player {games[0].player_key!r} answered {len(choices)} of "
                                     f"{len(games)} requests")
                for game, choice in zip(games, choices):
                    game.apply(choice)
            still = []
            for game in live:
                if game.check_end(config, adjudicator):
                    for key in {game.spec.white, game.spec.black}:
                        hook = getattr(players[key], "game_over", None)
                        if hook is not None:
                            hook(game.spec.game_id)  # e.g. a model frees the game's cached prompt
                    record = game.record(players)
                    finished[record.game_id] = record
                    if files is not None:
                        files.append(record)
                    if on_record is not None:
                        on_record(record)
                    bar.update(1)
                else:
                    still.append(game)
            live = still
    bar.close()
    return [finished[s.game_id] for s in specs]


class _NoBar:
    def update(self, n: int) -> None: ...
    def close(self) -> None: ...


def _progress(total: int, enabled: bool) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm import tqdm
    return tqdm(total=total, desc="games", unit="game", file=None, dynamic_ncols=True, leave=False)
