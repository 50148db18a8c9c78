"""Players for the game loop: a small batched Protocol and its implementations.

A :class:`Player` receives the positions of many games at once (``choose(requests)``) and answers
with one :class:`MoveChoice` per game, so that a model can score all of them in one batch and a
:class:`~chess_exp.play.engines.StockfishPool` can search them in parallel. Each request carries the
game's own NumPy generator: a player draws all its randomness from it, which makes every game
repeatable whatever else is in flight.

- :class:`DistributionPlayer` samples from an exact move distribution (a :data:`MovePolicy`) after
  ``transcendence.temper`` (temperature 0 = argmax, uniform over ties): the theory's object.
- :class:`EnginePlayer` asks a Stockfish pool at a Skill Level; :class:`RandomPlayer`
  plays uniformly random legal moves.
- :class:`ModelPlayer` plays a trained GPT with the ``exact`` policy (every legal move scored,
  tempered at the move level) or the paper's ``sampled`` character protocol: a thin layer over
  :mod:`chess_exp.model.inference`.

``PrefixCache``, ``length_groups``, ``sample_index`` and ``_score_after_prefill`` now live in
:mod:`chess_exp.model.inference`; they stay importable from here for one release.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import chess
import numpy as np

from chess_exp.model.inference import (
    PrefixCache,
    eval_mode,
    length_groups,
    move_distributions,
    sample_index,
    sample_text,
    sample_text_uncached,
)
from chess_exp.model.inference import move_text_complete as _move_text_complete  # noqa: F401 (old name)
from chess_exp.model.inference import score_after_prefill as _score_after_prefill  # noqa: F401 (old name)
from transcendence import temper

if TYPE_CHECKING:
    from chess_exp.play.engines import StockfishPool

__all__ = ["Player", "RandomPlayer", "MoveRequest", "MoveChoice", "MovePolicy", "DistributionPlayer", "EnginePlayer",
           "ModelPlayer", "PrefixCache", "RESULT_STRINGS", "sample_index", "length_groups", "parse_sampled_move"]

#: A result string emitted by a model is a resignation (the paper's rule): a loss.
RESULT_STRINGS = ("1-0", "0-1", "1/2-1/2")

#: An exact move distribution: the legal moves of ``board`` and their probabilities (summing to 1).
MovePolicy = Callable[[chess.Board], tuple[list[chess.Move], np.ndarray]]


@dataclass(frozen=True)
class MoveRequest:
    """One game waiting for a move: the position (with its move stack), its SAN history, its generator."""

    board: chess.Board  # the position to move in (a copy; players may not mutate the game's board)
    sans: tuple[str, ...]  # SAN of the moves so far, checks and mates included
    rng: np.random.Generator  # the game's generator: all of the player's randomness comes from it
    game_id: str = ""  # for logs
    player_key: str = ""  # the key the game loop knows the player by (e.g. one per temperature)
    temperature: float | None = None  # the player's temperature for this move (None: the player's own)


@dataclass(frozen=True)
class MoveChoice:
    """A player's answer: a legal move, or a resignation / forfeit (``move is None``)."""

    move: chess.Move | None  # None when the player resigned or forfeited
    illegal_attempts: int = 0  # samples rejected before this answer (sampled policy)
    resigned: bool = False  # emitted a result string ("1-0", "0-1", "1/2-1/2"): a loss
    forfeit: bool = False  # ran out of attempts: a loss
    engine_restarts: int = 0  # engine crashes/hangs survived while choosing this move
    info: dict[str, Any] = field(default_factory=dict)  # optional extras (e.g. the move's probability)


@runtime_checkable
class Player(Protocol):
    """What the game loop needs: a name and a batched move choice."""

    name: str

    def choose(self, requests: Sequence[MoveRequest]) -> list[MoveChoice]: ...


def _check_temperature(temperature: float) -> float:
    temperature = float(temperature)
    if not (temperature >= 0 and np.isfinite(temperature)):
        raise ValueError(f"temperature={temperature!r}: must be a finite number >= 0 (0 = argmax)")
    return temperature


class DistributionPlayer:
    """Samples from ``temper(policy(board), temperature)`` with the game's generator.

    ``policy`` returns the legal moves and their probabilities; ``mode`` is passed to
    :func:`transcendence.temper` ("logit": p^(1/tau); "prob": the paper's softmax(p / tau)).
    Temperature 0 plays the most probable move, uniformly among ties.
    """

    def __init__(self, policy: MovePolicy, temperature: float, *, mode: str = "logit",
                 name: str = "distribution") -> None:
        self.policy = policy
        self.temperature = _check_temperature(temperature)
        self.mode = mode
        self.name = name

    def choose(self, requests: Sequence[MoveRequest]) -> list[MoveChoice]:
        out = []
        for request in requests:
            moves, probs = self.policy(request.board)
            out.append(_pick(moves, np.asarray(probs, dtype=np.float64), self.temperature, self.mode,
                             request.rng))
        return out


def _pick(moves: Sequence[chess.Move], probs: np.ndarray, temperature: float, mode: str,
          rng: np.random.Generator) -> MoveChoice:
    if len(moves) != probs.shape[0] or len(moves) == 0:
        raise ValueError(f"policy returned {len(moves)} moves but {probs.shape[0]} probabilities")
    tempered = temper(probs[None, :], temperature, mode=mode)[0]
    i = sample_index(tempered, rng)
    return MoveChoice(move=moves[i], info={"p": float(probs[i]), "p_tempered": float(tempered[i])})


class EnginePlayer:
    """Stockfish at one Skill Level, served by a :class:`~chess_exp.play.engines.StockfishPool`."""

    def __init__(self, pool: StockfishPool, level: int, *, name: str | None = None) -> None:
        self.pool = pool
        self.level = level
        self.name = name or f"stockfish-L{level}"

    def choose(self, requests: Sequence[MoveRequest]) -> list[MoveChoice]:
        results = self.pool.play_many([r.board for r in requests], [r.rng for r in requests],
                                      [self.level] * len(requests))
        return [MoveChoice(move=move, engine_restarts=restarts) for move, restarts in results]


# -- the model ------------------------------------------------------------------------------------

class ModelPlayer:
    """A trained GPT as a player, batched across games: a thin layer over :mod:`chess_exp.model.inference`.

    ``policy="exact"``: every legal move's tokens (``tokenizer.move_tokens``) are scored after the
    game's prompt (:func:`~chess_exp.model.inference.move_distributions`, one batch for all games),
    giving the model's distribution over legal moves; ``transcendence.temper`` then applies the
    request's temperature at the move level (0 = argmax, uniform ties). Works with both tokenizers.

    ``policy="sampled"`` (the paper's protocol, char tokenizer only): from the prompt
    ``;1.e4 e5 2.`` sample up to ``max_chars`` characters at temperature ``tau`` per character, cut
    the text at ``;`` and ``+``, parse the first word as SAN; an illegal or unparsable word is
    resampled, up to ``attempts`` times, then the model forfeits; a result string is a resignation.

    Temperature: each request carries it (``MoveRequest.temperature``); a request without one gets
    the player's ``temperature``, a float or a mapping from the request's ``player_key`` (one model
    at several temperatures in one batch). The game's SAN history (checks and mates included) is the
    prompt, as in training; prompts longer than the context are cropped on the left.
    ``use_cache=True`` keeps each game's prompt in the KV cache between its moves (freed by
    :meth:`game_over`; at most ``cache_games`` games, least recently used dropped first); ``False``
    is a cache of size 0 for the exact policy (the same numbers) and
    nanoGPT's re-run-everything loop for the sampled one (the reference).
    """

    def __init__(self, model: Any, tokenizer: Any, *, policy: Literal["exact", "sampled"] = "exact",
                 temperature: float | Mapping[str, float] = 1.0, mode: str = "logit", attempts: int = 5,
                 max_chars: int = 10, use_cache: bool = True, cache_games: int = 256, name: str = "model") -> None:
        if policy not in ("exact", "sampled"):
            raise ValueError(f"policy={policy!r}: must be 'exact' or 'sampled'")
        if policy == "sampled" and getattr(tokenizer, "name", "char") != "char":
            raise ValueError(f"policy='sampled' is the paper's character protocol and needs the char "
                             f"tokenizer, not {tokenizer.name!r}; use policy='exact'")
        if attempts < 1 or max_chars < 1:
            raise ValueError("attempts and max_chars must be >= 1")
        self.model = model
        self.tokenizer = tokenizer
        self.policy = policy
        if isinstance(temperature, Mapping):
            if not temperature:
                raise ValueError("temperature: an empty mapping (player key -> temperature)")
            self.temperature: float | dict[str, float] = {k: _check_temperature(t) for k, t in temperature.items()}
        else:
            self.temperature = _check_temperature(temperature)
        self.mode = mode
        self.attempts = attempts
        self.max_chars = max_chars
        self.use_cache = use_cache
        self.name = name
        self.prefix_cache = (PrefixCache(model, max_games=cache_games if use_cache else 0)
                             if model is not None else None)

    def game_over(self, game_id: str) -> None:
        """Forget a finished game's cached prompt (called by the game loop)."""
        if self.prefix_cache is not None:
            self.prefix_cache.drop(game_id)

    def temperature_for(self, request: MoveRequest) -> float:
        """The request's temperature, else the player's (``temperature[request.player_key]`` for a mapping)."""
        if request.temperature is not None:
            return _check_temperature(request.temperature)
        if isinstance(self.temperature, dict):
            try:
                return self.temperature[request.player_key]
            except KeyError:
                raise ValueError(f"no temperature for player key {request.player_key!r} "
                                 f"(have {sorted(self.temperature)})") from None
        return self.temperature

    def choose(self, requests: Sequence[MoveRequest]) -> list[MoveChoice]:
        if not requests:
            return []
        requests = [replace(r, temperature=self.temperature_for(r)) for r in requests]  # a float each
        with eval_mode(self.model):  # no dropout while playing; the caller's mode is restored
            if self.policy == "exact":
                return [_pick(moves, probs, r.temperature, self.mode, r.rng)  # type: ignore[arg-type]
                        for (moves, probs), r in zip(self.distributions(requests), requests)]
            return self._choose_sampled(requests)

    # exact ---------------------------------------------------------------------------------------
    def distributions(self, requests: Sequence[MoveRequest]) -> list[tuple[list[chess.Move], np.ndarray]]:
        """The exact move distribution of each request's position, prompts cached under its game id."""
        return move_distributions(self.model, self.tokenizer, [r.board for r in requests],
                                  [r.sans for r in requests], cache=self.prefix_cache,
                                  keys=[r.game_id or None for r in requests])

    def move_distributions(self, boards: Sequence[chess.Board], sans: Sequence[Sequence[str]]
                           ) -> list[tuple[list[chess.Move], np.ndarray]]:
        """The model's exact distribution over the legal moves of each position (one batch, no cache)."""
        return move_distributions(self.model, self.tokenizer, boards, sans)

    # sampled -------------------------------------------------------------------------------------
    def _choose_sampled(self, requests: Sequence[MoveRequest]) -> list[MoveChoice]:
        n = len(requests)
        answers: list[MoveChoice | None] = [None] * n
        illegal = [0] * n
        prompts = [list(self.tokenizer.prefix(tuple(r.sans))) for r in requests]
        for _ in range(self.attempts):
            todo = [i for i in range(n) if answers[i] is None]
            if not todo:
                break
            texts = self.generate([prompts[i] for i in todo], [requests[i].rng for i in todo],
                                  [self.temperature_for(requests[i]) for i in todo],
                                  keys=[requests[i].game_id or None for i in todo])
            for i, text in zip(todo, texts):
                kind, move = parse_sampled_move(text, requests[i].board)
                if kind == "move":
                    answers[i] = MoveChoice(move=move, illegal_attempts=illegal[i], info={"text": text})
                elif kind == "resign":
                    answers[i] = MoveChoice(move=None, resigned=True, illegal_attempts=illegal[i],
                                            info={"text": text})
                else:
                    illegal[i] += 1
        return [a if a is not None else MoveChoice(move=None, forfeit=True, illegal_attempts=illegal[i])
                for i, a in enumerate(answers)]

    def generate(self, prompts: Sequence[Sequence[int]], rngs: Sequence[np.random.Generator],
                 temperatures: Sequence[float], *, keys: Sequence[str | None] | None = None) -> list[str]:
        """Sample up to ``max_chars`` tokens after each prompt at its temperature; decoded text.

        Batched with the KV cache (``use_cache=True``) or, without it, by re-running the whole
        sequence for each new token (the paper's nanoGPT loop; the benchmark's baseline).
        """
        if not self.use_cache:
            return sample_text_uncached(self.model, self.tokenizer, prompts, rngs, temperatures,
                                        max_chars=self.max_chars)
        assert self.prefix_cache is not None
        return sample_text(self.model, self.tokenizer, self.prefix_cache, prompts, rngs, temperatures,
                           max_chars=self.max_chars, keys=keys)


def parse_sampled_move(text: str, board: chess.Board) -> tuple[Literal["move", "resign", "illegal"],
                                                              chess.Move | None]:
    """The paper's parsing: cut at ';' and '+', take the first word, read it as SAN in ``board``.

    Returns ``("move", move)``, ``("resign", None)`` for a result string, or ``("illegal", None)``.
    """
    text = text.split(";", 1)[0].split("+", 1)[0]
    words = text.split()
    if not words:
        return "illegal", None
    word = words[0]
    if word in RESULT_STRINGS:
        return "resign", None
    try:
        move = board.parse_san(word)
    except ValueError:
        return "illegal", None
    if not move:  # python-chess reads "--", "Z0", "0000" and "@@@@" as a null move: not a legal move
        return "illegal", None
    return "move", move


class RandomPlayer:
    """A uniformly random legal move: a baseline and a test opponent.

    Implements both ``chess_exp.play.engines.Engine`` and :class:`Player`.
    """

    def __init__(self, name: str = "random") -> None:
        self.name = name

    def play(self, board: chess.Board, *, rng: np.random.Generator) -> chess.Move:
        moves = list(board.legal_moves)
        if not moves:
            raise ValueError("board: no legal moves (the game is over)")
        return moves[int(rng.integers(len(moves)))]

    def choose(self, requests: Sequence[MoveRequest]) -> list[MoveChoice]:
        return [MoveChoice(move=self.play(r.board, rng=r.rng)) for r in requests]
