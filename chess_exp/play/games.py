"""The game loop: many games in flight, batched players, PGN + JSONL per game, resumable.

:func:`play_games` plays a list of :class:`GameSpec` between named :class:`~chess_exp.play.players.Player`
objects. All games that wait for the same player are handed to it in one ``choose`` call (a model
scores them in one batch; a Stockfish pool searches them in parallel), and different players' calls
run at the same time, so the model and the engines keep both cores busy.

This is the one game loop of the project: evaluation games (a model or an exact policy against the
Stockfish ladder) and the synthetic experts' training games (``chess_exp.experts.generate``) are both
played by :func:`run_games`, recorded as one :class:`GameRecord` and written by one PGN writer
(:func:`record_to_pgn`), under an explicit :class:`GameRules`:

- a game ends by checkmate, stalemate, insufficient material, fivefold repetition or the 75-move
  rule; with ``claim_draw`` also as soon as a threefold repetition or the fifty-move rule can be
  claimed;
- once the fullmove number exceeds ``max_moves`` (89: after 178 plies from the initial position)
  the game stops: a draw, or with ``adjudicate="engine"`` a Stockfish verdict;
- a player that resigns (a model that emitted a result string) or forfeits (5 illegal attempts) loses.

Two rule sets are named: :data:`EVALUATION_RULES` (no draw claims: the evaluation loop of the paper
stops on ``board.is_game_over()``, which claims nothing) and :data:`EXPERT_RULES` (draws claimed: the
experts' games are training data that should end like human games, where a repetition or fifty
moves is claimed rather than played on to the fivefold/75-move limit). Termination names are those
of :data:`TERMINATIONS`.

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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import chess
import chess.pgn
import numpy as np

from chess_exp.play.players import MoveChoice, MoveRequest, Player
from transcendence.io import atomic_write_text

__all__ = ["GameSpec", "GameRecord", "GameRules", "EVALUATION_RULES", "EXPERT_RULES", "MAX_MOVES", "TERMINATIONS",
           "MatchConfig", "Game", "run_games", "play_games", "ladder_specs", "load_records", "record_to_pgn",
           "engine_adjudicator", "game_seed", "score_for"]

log = logging.getLogger(__name__)


MAX_MOVES = 89  # full moves before a game stops (the paper's MAX_MOVES)

#: Every way a game can end: python-chess's outcomes (lower-case ``Termination`` names), the move
#: limit, an engine's verdict at the move limit, a resignation and a forfeit.
TERMINATIONS = tuple(t.name.lower() for t in chess.Termination) + ("move_limit", "adjudication", "resign",
                                                                     "forfeit")


@dataclass(frozen=True, kw_only=True)
class GameRules:
    """How a game ends (see the module docstring)."""

    max_moves: int = MAX_MOVES  # the game stops once the fullmove number exceeds this
    claim_draw: bool = False  # True: a claimable draw (threefold, fifty moves) ends the game at once
    adjudicate: Literal["draw", "engine"] = "draw"  # at the move limit: a draw, or a Stockfish verdict
    adjudicate_cp: int = 300  # |evaluation| (centipawns, mover-independent) needed to award a win

    def __post_init__(self) -> None:
        if not (isinstance(self.max_moves, int) and self.max_moves >= 1):
            raise ValueError(f"max_moves={self.max_moves!r}: must be an integer >= 1")
        if self.adjudicate not in ("draw", "engine"):
            raise ValueError(f"adjudicate={self.adjudicate!r}: must be 'draw' or 'engine'")


#: Evaluation games: only automatic draws (the paper's loop stops on ``board.is_game_over()``).
EVALUATION_RULES = GameRules()
#: The synthetic experts' training games: claimable draws end the game.
EXPERT_RULES = GameRules(claim_draw=True)

_RULE_FIELDS = ("max_moves", "claim_draw", "adjudicate", "adjudicate_cp")


@dataclass(frozen=True, kw_only=True)
class MatchConfig:
    """How games are played (``rules``) and scheduled (``in_flight``).

    ``max_moves``, ``adjudicate``, ``adjudicate_cp`` and ``claim_draw`` are shorthands: given, they
    replace that field of ``rules``; afterwards they read the rules' values.
    """

    rules: GameRules = EVALUATION_RULES  # how a game ends
    in_flight: int = 64  # games played at the same time
    max_moves: int | None = None  # shorthand for rules.max_moves
    adjudicate: Literal["draw", "engine"] | None = None  # shorthand for rules.adjudicate
    adjudicate_cp: int | None = None  # shorthand for rules.adjudicate_cp
    claim_draw: bool | None = None  # shorthand for rules.claim_draw

    def __post_init__(self) -> None:
        given = {name: getattr(self, name) for name in _RULE_FIELDS if getattr(self, name) is not None}
        rules = replace(self.rules, **given) if given else self.rules
        object.__setattr__(self, "rules", rules)
        for name in _RULE_FIELDS:
            object.__setattr__(self, name, getattr(rules, name))


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
    headers: dict[str, str]  # PGN headers beyond the players and the result (written in this order)
    tags: dict[str, Any]  # the caller's labels (opponent, colour, temperature, ...); JSONL only
    fen: str | None = None  # start position when not the initial one

    @property
    def plies(self) -> int:
        return len(self.sans)

    def start_board(self) -> chess.Board:
        return chess.Board() if self.fen is None else chess.Board(self.fen)

    @property
    def moves(self) -> tuple[chess.Move, ...]:
        """The moves, replayed from :meth:`start_board`."""
        board = self.start_board()
        out = []
        for san in self.sans:
            move = board.parse_san(san)
            out.append(move)
            board.push(move)
        return tuple(out)


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

_ROSTER = ("Event", "Site", "Date", "Round", "White", "Black", "Result")
#: Lichess's ``Termination`` for each way a game ends (what ``chess prepare --finished-only`` reads)
_LICHESS_TERMINATION = {"move_limit": "Adjudication", "adjudication": "Adjudication", "forfeit": "Rules infraction"}
#: The ``Ending`` tag's spelling of the move limit in the experts' files, kept as it was written so
#: that existing training files keep their bytes (``chess prepare`` derives game ids from them)
_PGN_ENDING = {"move_limit": "max moves"}


def record_to_pgn(record: GameRecord, *, style: Literal["evaluation", "lichess"] = "evaluation") -> str:
    """The game as PGN text (headers first, then the moves and the result), ending with a blank line.

    Headers: the seven-tag roster (``Event``/``Site``/``Date``/``Round`` from ``record.headers``
    or defaults), then the other ``record.headers``, then by ``style``:

    - ``"evaluation"``: the headers sorted (the same text whether written live or rebuilt from the
      JSONL on resume), then ``GameId``, ``Seed`` (JSON) and ``Termination`` (a name of
      :data:`TERMINATIONS`);
    - ``"lichess"`` (the experts' training files, read by ``chess prepare``): the headers in their
      order, then ``PlyCount``,
      ``Termination`` in lichess's words ("Normal" for a game ended on the board or by resignation,
      "Adjudication" at the move limit) and ``Ending`` (the precise termination).
    """
    if style not in ("evaluation", "lichess"):
        raise ValueError(f"style={style!r}: must be 'evaluation' or 'lichess'")
    game = chess.pgn.Game()
    if record.fen is not None:
        game.setup(chess.Board(record.fen))
    game.headers["Event"] = record.headers.get("Event", "transcendence evaluation")
    game.headers["Site"] = record.headers.get("Site", "local")
    game.headers["Date"] = record.headers.get("Date", "????.??.??")
    game.headers["Round"] = record.headers.get("Round", "-")
    game.headers["White"] = record.white
    game.headers["Black"] = record.black
    game.headers["Result"] = record.result
    extra = sorted(record.headers) if style == "evaluation" else list(record.headers)
    for key in extra:
        if key not in _ROSTER:
            game.headers[key] = str(record.headers[key])
    if style == "evaluation":
        game.headers["GameId"] = record.game_id
        game.headers["Seed"] = json.dumps(record.seed)
        game.headers["Termination"] = record.termination
    else:
        game.headers["PlyCount"] = str(record.plies)
        game.headers["Termination"] = _LICHESS_TERMINATION.get(record.termination, "Normal")
        game.headers["Ending"] = _PGN_ENDING.get(record.termination, record.termination)
    node: chess.pgn.GameNode = game
    for move in record.moves:
        node = node.add_variation(move)
    # evaluation files wrap the moves at 80 columns; the experts' files keep one line per game
    exporter = chess.pgn.StringExporter(headers=True, variations=False, comments=False,
                                        columns=80 if style == "evaluation" else None)
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
    records: list[GameRecord] = []
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
    data = asdict(record)
    if data["fen"] is None:  # the initial position: the line reads as it always did
        del data["fen"]
    return json.dumps(data, sort_keys=True) + "\n"


def _atomic_write(path: Path, text: str) -> None:
    atomic_write_text(path, text)


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

class Game:
    """One game in progress: its board, its generator and its bookkeeping.

    Built from a :class:`GameSpec` (:meth:`from_spec`: the initial position and a generator seeded by
    ``spec.seed``) or directly with a board and a generator already in use (the experts' games draw
    their players from it first).
    """

    def __init__(self, spec: GameSpec, *, rng: np.random.Generator, board: chess.Board | None = None,
                 share_board: bool = False) -> None:
        self.spec = spec
        self.board = chess.Board() if board is None else board
        # share_board: requests carry one board kept in step with the game's (O(1) per move instead of
        # a copy of the whole move stack); for players that only read it, like the experts' policies
        self._shared: chess.Board | None = self.board.copy() if share_board else None
        self.fen = None if board is None or board == chess.Board() else board.fen()
        self.sans: list[str] = []
        self.rng = rng
        self.illegal = {"white": 0, "black": 0}
        self.restarts = 0
        self.result: str | None = None
        self.termination: str | None = None

    @classmethod
    def from_spec(cls, spec: GameSpec) -> Game:
        return cls(spec, rng=np.random.default_rng(np.random.SeedSequence(spec.seed)))

    @property
    def colour(self) -> Literal["white", "black"]:
        return "white" if self.board.turn == chess.WHITE else "black"

    @property
    def player_key(self) -> str:
        return self.spec.white if self.board.turn == chess.WHITE else self.spec.black

    def request(self) -> MoveRequest:
        board = self.board.copy() if self._shared is None else self._shared
        return MoveRequest(board=board, sans=tuple(self.sans), rng=self.rng,
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
        shared = self._shared
        if shared is not None:
            if len(shared.move_stack) == len(self.board.move_stack) - 1:
                shared.push(choice.move)
            else:  # the player left the shared board changed: start again from a copy
                self._shared = self.board.copy()

    def check_end(self, rules: GameRules, adjudicator: Callable[[chess.Board], str] | None) -> bool:
        """Whether the game is over under ``rules`` (setting its result and termination)."""
        if self.result is not None:
            return True
        outcome = self.board.outcome(claim_draw=rules.claim_draw)
        if outcome is not None:
            self.result = outcome.result()
            self.termination = outcome.termination.name.lower()
            return True
        if self.board.fullmove_number > rules.max_moves:
            if rules.adjudicate == "engine" and adjudicator is not None:
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
                          headers={k: str(v) for k, v in spec.headers.items()}, tags=dict(spec.tags),
                          fen=self.fen)


def run_games(games: Iterable[Game], players: Mapping[str, Player], *, rules: GameRules = EVALUATION_RULES,
              in_flight: int = 64, adjudicator: Callable[[chess.Board], str] | None = None,
              on_finish: Callable[[Game, GameRecord], None] | None = None) -> list[GameRecord]:
    """The game loop: play ``games`` to their end, ``in_flight`` at a time; records in finishing order.

    Each turn, all games waiting for the same player object go to it in one ``choose`` call, and
    different players' calls run in parallel threads. ``on_finish(game, record)`` runs as each game ends.
    """
    if rules.adjudicate == "engine" and adjudicator is None:
        raise ValueError("rules.adjudicate='engine' needs an adjudicator (engine_adjudicator(pool.evaluate))")
    if in_flight < 1:
        raise ValueError(f"in_flight={in_flight}: must be >= 1")
    queue = list(games)
    queue.reverse()
    live: list[Game] = []
    out: list[GameRecord] = []
    executor: concurrent.futures.ThreadPoolExecutor | None = None

    def finish(game: Game) -> None:
        for key in {game.spec.white, game.spec.black}:
            hook = getattr(players[key], "game_over", None)
            if hook is not None:
                hook(game.spec.game_id)  # e.g. a model frees the game's cached prompt
        record = game.record(players)
        out.append(record)
        if on_finish is not None:
            on_finish(game, record)

    try:
        while queue or live:
            while queue and len(live) < in_flight:
                game = queue.pop()
                if game.check_end(rules, adjudicator):  # a start position that is already over
                    finish(game)
                else:
                    live.append(game)
            if not live:
                continue
            # one call per player object: a player registered under several keys (a model at
            # several temperatures) gets all its games in one batch; request.player_key tells them apart
            groups: dict[int, list[Game]] = {}
            for game in live:
                groups.setdefault(id(players[game.player_key]), []).append(game)
            if len(groups) == 1:  # nothing to overlap: no thread
                (games_,) = groups.values()
                answers = {next(iter(groups)): players[games_[0].player_key].choose([g.request() for g in games_])}
            else:
                if executor is None:
                    executor = concurrent.futures.ThreadPoolExecutor(len({id(p) for p in players.values()}))
                futures = {group: executor.submit(players[gs[0].player_key].choose, [g.request() for g in gs])
                           for group, gs in groups.items()}
                answers = {group: future.result() for group, future in futures.items()}
            for group, games_ in groups.items():
                choices = answers[group]
                if len(choices) != len(games_):
                    raise ValueError(f"player {games_[0].player_key!r} answered {len(choices)} of "
                                     f"{len(games_)} requests")
                for game, choice in zip(games_, choices):
                    game.apply(choice)
            still = []
            for game in live:
                if game.check_end(rules, adjudicator):
                    finish(game)
                else:
                    still.append(game)
            live = still
    finally:
        if executor is not None:
            executor.shutdown(wait=True)
    return out


def play_games(specs: Iterable[GameSpec], players: Mapping[str, Player], *,
               out_dir: str | os.PathLike[str] | None = None, config: MatchConfig = MatchConfig(),
               adjudicator: Callable[[chess.Board], str] | None = None, progress: bool = True,
               on_record: Callable[[GameRecord], None] | None = None) -> list[GameRecord]:
    """Play every spec not finished yet in ``out_dir``; return all records in spec order.

    ``players`` maps the keys used in the specs to players. ``adjudicator`` is needed when
    ``config.rules.adjudicate == "engine"`` (see :func:`engine_adjudicator`).
    """
    specs = list(specs)
    ids = [s.game_id for s in specs]
    if len(set(ids)) != len(ids):
        raise ValueError("specs: game ids must be unique (they are the resume key)")
    for spec in specs:
        for key in (spec.white, spec.black):
            if key not in players:
                raise ValueError(f"spec {spec.game_id}: no player named {key!r} (have {sorted(players)})")
    if config.rules.adjudicate == "engine" and adjudicator is None:
        raise ValueError("config.adjudicate='engine' needs an adjudicator (engine_adjudicator(pool.evaluate))")
    if config.in_flight < 1:
        raise ValueError("config.max_moves and config.in_flight must be >= 1")
    files = _GameFiles(Path(out_dir)) if out_dir is not None else None
    finished: dict[str, GameRecord] = {r.game_id: r for r in files.records} if files else {}
    todo = [s for s in specs if s.game_id not in finished]
    bar = _progress(len(todo), progress)

    def on_finish(game: Game, record: GameRecord) -> None:
        finished[record.game_id] = record
        if files is not None:
            files.append(record)
        if on_record is not None:
            on_record(record)
        bar.update(1)

    run_games([Game.from_spec(s) for s in todo], players, rules=config.rules, in_flight=config.in_flight,
              adjudicator=adjudicator, on_finish=on_finish)
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
