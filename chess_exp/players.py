"""Players for the game loop: a small batched Protocol and its implementations.

A :class:`Player` receives the positions of many games at once (``choose(requests)``) and answers
with one :class:`MoveChoice` per game, so that a model can score all of them in one batch and a
:class:`~chess_exp.engines.StockfishPool` can search them in parallel. Each request carries the
game's own NumPy generator: a player draws all its randomness from it, which makes every game
repeatable whatever else is in flight.

- :class:`DistributionPlayer` samples from an exact move distribution (a :data:`MovePolicy`) after
  ``transcendence.temper`` (temperature 0 = argmax, uniform over ties): the theory's object.
- :class:`EnginePlayer` asks a Stockfish pool at a Skill Level; :class:`~chess_exp.engines.RandomPlayer`
  plays uniformly random legal moves.
- :class:`ModelPlayer` plays a trained GPT with the ``exact`` policy (every legal move scored,
  tempered at the move level) or the paper's ``sampled`` character protocol.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Literal, Mapping, Protocol, Sequence, runtime_checkable

import chess
import numpy as np

from transcendence import temper

if TYPE_CHECKING:
    from chess_exp.engines import StockfishPool

__all__ = ["Player", "MoveRequest", "MoveChoice", "MovePolicy", "DistributionPlayer", "EnginePlayer",
           "ModelPlayer", "RESULT_STRINGS", "sample_index"]

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


def sample_index(probs: np.ndarray, rng: np.random.Generator) -> int:
    """Draw an index of ``probs`` (1-d, sums to 1) with one uniform from ``rng`` (inverse CDF)."""
    cdf = np.cumsum(probs)
    u = rng.random() * cdf[-1]
    return int(min(np.searchsorted(cdf, u, side="right"), len(probs) - 1))


def length_groups(lengths: Sequence[int], *, slack: float = 1.25) -> list[list[int]]:
    """Indices grouped by similar length so that padding each group to its longest member costs at
    most ``slack`` times the real tokens (a batch of very different prompts is mostly padding)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    groups: list[list[int]] = []
    total = 0
    for i in order:
        n = lengths[i]
        if groups and n * (len(groups[-1]) + 1) <= slack * (total + n):
            groups[-1].append(i)
            total += n
        else:
            groups.append([i])
            total = n
    return groups


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
    """Stockfish at one Skill Level, served by a :class:`~chess_exp.engines.StockfishPool`."""

    def __init__(self, pool: "StockfishPool", level: int, *, name: str | None = None) -> None:
        self.pool = pool
        self.level = level
        self.name = name or f"stockfish-L{level}"

    def choose(self, requests: Sequence[MoveRequest]) -> list[MoveChoice]:
        results = self.pool.play_many([r.board for r in requests], [r.rng for r in requests],
                                      [self.level] * len(requests))
        return [MoveChoice(move=move, engine_restarts=restarts) for move, restarts in results]


# -- the model ------------------------------------------------------------------------------------

class ModelPlayer:
    """A trained GPT as a player, batched across games.

    ``policy="exact"``: every legal move's continuation (``tokenizer.move_tokens``) is scored after
    the game's prefix with :func:`chess_exp.model.score_continuations` (one batch for all games),
    giving the model's distribution over legal moves, softmax of the summed log-probabilities;
    ``transcendence.temper`` then applies the temperature at the move level (0 = argmax, uniform
    ties). Works with both tokenizers.

    ``policy="sampled"`` (the paper's protocol, char tokenizer only): from the prompt
    ``;1.e4 e5 2.`` sample up to ``max_chars`` characters at temperature ``tau`` per character, cut
    the text at ``;`` and ``+``, parse the first word as SAN; an illegal or unparsable word is
    resampled, up to ``attempts`` times, then the model forfeits; a result string is a resignation.
    All games' attempts are generated together with the KV cache.

    The game's SAN history (checks and mates included, for both sides) is the prompt, as in
    training. Prompts longer than the model's context are cropped on the left (as nanoGPT's
    ``generate`` does).
    """

    def __init__(self, model: Any, tokenizer: Any, *, policy: Literal["exact", "sampled"] = "exact",
                 temperature: float | Mapping[str, float] = 1.0, mode: str = "logit", attempts: int = 5, max_chars: int = 10,
                 use_cache: bool = True, name: str = "model") -> None:
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

    def temperature_for(self, request: MoveRequest) -> float:
        """The request's temperature: the player's, or ``temperature[request.player_key]``."""
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
        if self.policy == "exact":
            return self._choose_exact(requests)
        return self._choose_sampled(requests)

    # exact ---------------------------------------------------------------------------------------
    def move_distributions(self, boards: Sequence[chess.Board], sans: Sequence[Sequence[str]]
                           ) -> list[tuple[list[chess.Move], np.ndarray]]:
        """The model's exact distribution over the legal moves of each position (one batch)."""
        from chess_exp.model import score_continuations
        block = self.model.config.block_size
        prefixes, candidates, legal = [], [], []
        for board, history in zip(boards, sans):
            moves = list(board.legal_moves)
            cands = [list(self.tokenizer.move_tokens(board, move)) for move in moves]
            prefix = self._prefix(board, history)
            room = block + 1 - max(len(c) for c in cands)
            prefixes.append(prefix[-room:] if len(prefix) > room else prefix)
            candidates.append(cands)
            legal.append(moves)
        logps: list[np.ndarray] = [np.zeros(0)] * len(prefixes)
        for group in length_groups([len(p) + sum(map(len, c)) for p, c in zip(prefixes, candidates)]):
            scored = score_continuations(self.model, [prefixes[i] for i in group], [candidates[i] for i in group])
            for i, logp in zip(group, scored):
                logps[i] = logp
        out = []
        for moves, logp in zip(legal, logps):
            logp = np.asarray(logp, dtype=np.float64)
            probs = np.exp(logp - logp.max())
            out.append((moves, probs / probs.sum()))
        return out

    def _prefix(self, board: chess.Board, sans: Sequence[str]) -> list[int]:
        move_id = getattr(self.tokenizer, "move_id", None)
        if move_id is not None and len(board.move_stack) == len(sans):  # move tokens: no SAN replay
            return [self.tokenizer.start_id, *(move_id(m) for m in board.move_stack)]
        return list(self.tokenizer.prefix(tuple(sans)))

    def _choose_exact(self, requests: Sequence[MoveRequest]) -> list[MoveChoice]:
        dists = self.move_distributions([r.board for r in requests], [r.sans for r in requests])
        return [_pick(moves, probs, self.temperature_for(r), self.mode, r.rng)
                for (moves, probs), r in zip(dists, requests)]

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
                                  [self.temperature_for(requests[i]) for i in todo])
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
                 temperatures: Sequence[float]) -> list[str]:
        """Sample up to ``max_chars`` tokens after each prompt at its temperature; decoded text.

        Batched with the KV cache (``use_cache=True``) or, without it, by re-running the whole
        sequence for each new token (the paper's nanoGPT loop; the benchmark's baseline).
        """
        block = self.model.config.block_size
        room = block - self.max_chars
        prompts = [list(p[-room:]) if len(p) > room else list(p) for p in prompts]
        if not self.use_cache:
            return self._generate(prompts, rngs, temperatures)
        texts = [""] * len(prompts)
        for group in length_groups([len(p) for p in prompts]):
            for i, text in zip(group, self._generate([prompts[i] for i in group], [rngs[i] for i in group],
                                                     [temperatures[i] for i in group])):
                texts[i] = text
        return texts

    def _generate(self, prompts: list[list[int]], rngs: Sequence[np.random.Generator],
                  temperatures: Sequence[float]) -> list[str]:
        import torch
        model = self.model
        block = model.config.block_size
        n = len(prompts)
        out: list[list[int]] = [[] for _ in range(n)]
        done = [False] * n
        device = model.lm_head.weight.device
        with torch.no_grad():
            if self.use_cache:
                lengths = torch.tensor([len(p) for p in prompts], device=device)
                idx = torch.zeros(n, int(lengths.max()), dtype=torch.long, device=device)
                for row, p in enumerate(prompts):
                    idx[row, :len(p)] = torch.tensor(p, dtype=torch.long)
                cache = model.init_cache(n)
                logits, _ = model(idx, cache=cache, n_new=lengths)
                last = logits[torch.arange(n, device=device), lengths - 1]  # (B, V)
                for _step in range(self.max_chars):
                    tokens = self._sample_tokens(last, rngs, temperatures)
                    for row, t in enumerate(tokens):
                        if not done[row]:
                            out[row].append(t)
                            done[row] = _move_text_complete(self.tokenizer.decode(out[row]))
                    if all(done):
                        break
                    logits, _ = model(torch.tensor(tokens, device=device)[:, None], cache=cache)
                    last = logits[:, -1]
            else:
                for row, prompt in enumerate(prompts):
                    seq = list(prompt)
                    for _step in range(self.max_chars):
                        logits, _ = model(torch.tensor([seq[-block:]], dtype=torch.long, device=device))
                        t = self._sample_tokens(logits[:, -1], [rngs[row]], [temperatures[row]])[0]
                        seq.append(t)
                        out[row].append(t)
        return [self.tokenizer.decode(ids) for ids in out]

    @staticmethod
    def _sample_tokens(logits: Any, rngs: Sequence[np.random.Generator], temperatures: Sequence[float]) -> list[int]:
        """One token per row from softmax(logits / tau) (argmax, uniform ties, at tau = 0)."""
        import torch
        logits = logits.detach().to(torch.float64).cpu().numpy()  # (B, V)
        tokens = []
        for row, rng, temperature in zip(logits, rngs, temperatures):
            if temperature == 0:
                best = np.flatnonzero(row == row.max())
                tokens.append(int(best[int(rng.integers(len(best)))] if len(best) > 1 else best[0]))
                continue
            z = row / temperature
            p = np.exp(z - z.max())
            tokens.append(sample_index(p / p.sum(), rng))
        return tokens


def _move_text_complete(text: str) -> bool:
    """Whether more characters can no longer change the parsed move."""
    if ";" in text or "+" in text:
        return True
    stripped = text.lstrip()
    return bool(stripped) and any(c.isspace() for c in stripped)


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
        return "move", board.parse_san(word)
    except ValueError:
        return "illegal", None
