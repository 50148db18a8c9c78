"""Players for the game loop: a small batched Protocol and its implementations.

A :class:`Player` receives the positions of many games at once (``choose(requests)``) and answers
with one :class:`MoveChoice` per game, so that a model can score all of them in one batch and a
:class:`~chess_exp.play.engines.StockfishPool` can search them in parallel. Each request carries the
game's own NumPy generator: a player draws all its randomness from it, which makes every game
repeatable whatever else is in flight.

- :class:`DistributionPlayer` samples from an exact move distribution (a :data:`MovePolicy`) after
  ``transcendence.temper`` (temperature 0 = argmax, uniform over ties): the theory's object.
- :class:`EnginePlayer` asks a Stockfish pool at a Skill Level; :class:`~chess_exp.play.engines.RandomPlayer`
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
    from chess_exp.play.engines import StockfishPool

__all__ = ["Player", "MoveRequest", "MoveChoice", "MovePolicy", "DistributionPlayer", "EnginePlayer",
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


def length_groups(lengths: Sequence[int], *, slack: float = 1.25, free: int = 256) -> list[list[int]]:
    """Indices grouped by similar length so that padding each group to its longest member costs at
    most ``slack`` times its real tokens or ``free`` extra tokens, whichever is more (a batch of very
    different prompts is mostly padding; a few padded short prompts cost less than another call)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    groups: list[list[int]] = []
    total = 0
    for i in order:
        n = lengths[i]
        padded = n * (len(groups[-1]) + 1) if groups else 0
        if groups and padded <= max(slack * (total + n), total + n + free):
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
    """Stockfish at one Skill Level, served by a :class:`~chess_exp.play.engines.StockfishPool`."""

    def __init__(self, pool: "StockfishPool", level: int, *, name: str | None = None) -> None:
        self.pool = pool
        self.level = level
        self.name = name or f"stockfish-L{level}"

    def choose(self, requests: Sequence[MoveRequest]) -> list[MoveChoice]:
        results = self.pool.play_many([r.board for r in requests], [r.rng for r in requests],
                                      [self.level] * len(requests))
        return [MoveChoice(move=move, engine_restarts=restarts) for move, restarts in results]


# -- the model ------------------------------------------------------------------------------------

@dataclass
class _CacheEntry:
    tokens: list[int]  # the prompt whose keys/values are cached
    kv: list[tuple[Any, Any]]  # per layer (k, v), each (n_head, len(tokens), head_size)
    last: Any  # logits (V,) after the prompt's last token


class PrefixCache:
    """Each game's prompt in the model's KV cache, kept between its moves.

    A game's prompt only grows (two plies per model move), so each move runs just the new tokens
    through the model instead of the whole game. :meth:`prefill` assembles the cached prompts of a
    batch of games into one padded :class:`chess_exp.model.gpt.KVCache` (``valid`` masks the padding),
    runs all games' new tokens in one forward pass, stores the grown entries and returns the batch
    cache plus the logits after each prompt. ``key=None`` computes a prompt from scratch without
    storing it. Entries are dropped with :meth:`drop` (the game loop calls ``game_over``) or,
    least recently used first, beyond ``max_games``.
    """

    def __init__(self, model: Any, *, max_games: int = 256) -> None:
        from collections import OrderedDict
        self.model = model
        self.max_games = max_games
        self.entries: "OrderedDict[str, _CacheEntry]" = OrderedDict()

    def drop(self, key: str) -> None:
        self.entries.pop(key, None)

    def _entry(self, key: str | None, prompt: Sequence[int]) -> _CacheEntry | None:
        entry = self.entries.get(key) if key is not None else None
        if entry is None or len(entry.tokens) > len(prompt) or list(prompt[:len(entry.tokens)]) != entry.tokens:
            return None
        return entry

    def new_tokens(self, key: str | None, prompt: Sequence[int]) -> int:
        """How many of ``prompt``'s tokens :meth:`prefill` would have to run."""
        entry = self._entry(key, prompt)
        return len(prompt) - (len(entry.tokens) if entry else 0)

    def prefill(self, keys: Sequence[str | None], prompts: Sequence[Sequence[int]]) -> tuple[Any, Any]:
        """``(cache, last)``: a KVCache (B rows) holding each prompt, and logits (B, V) after it."""
        import torch
        model = self.model
        device = model.lm_head.weight.device
        G = len(prompts)
        olds = [self._entry(k, p) for k, p in zip(keys, prompts)]
        S = [len(e.tokens) if e else 0 for e in olds]
        n_new = [len(p) - s for p, s in zip(prompts, S)]
        S_max, N_max = max(S), max(n_new)
        cache = model.init_cache(G)
        if S_max > 0:
            ref = next(e for e in olds if e is not None).kv
            kv = []
            for layer in range(len(ref)):
                nh, _, hs = ref[layer][0].shape
                k = torch.zeros(G, nh, S_max, hs, dtype=ref[layer][0].dtype, device=device)
                v = torch.zeros_like(k)
                for g, e in enumerate(olds):
                    if e is not None:
                        k[g, :, :S[g]] = e.kv[layer][0]
                        v[g, :, :S[g]] = e.kv[layer][1]
                kv.append((k, v))
            cache.kv = kv
            cache.valid = torch.arange(S_max, device=device)[None, :] < torch.tensor(S, device=device)[:, None]
            cache.pos = torch.tensor(S, dtype=torch.long, device=device)
        last = torch.zeros(G, model.config.vocab_size, device=device)
        if N_max > 0:
            idx = torch.zeros(G, N_max, dtype=torch.long, device=device)
            for g, (prompt, s) in enumerate(zip(prompts, S)):
                if n_new[g]:
                    idx[g, :n_new[g]] = torch.tensor(list(prompt[s:]), dtype=torch.long, device=device)
            logits, _ = model(idx, cache=cache, n_new=torch.tensor(n_new, device=device))  # (G, N_max, V)
        for g, e in enumerate(olds):
            last[g] = logits[g, n_new[g] - 1] if n_new[g] else e.last  # type: ignore[union-attr]
        for g, (key, prompt) in enumerate(zip(keys, prompts)):
            if key is None:
                continue
            kv_g = [(torch.cat([k[g, :, :S[g]], k[g, :, S_max:S_max + n_new[g]]], dim=1),
                     torch.cat([v[g, :, :S[g]], v[g, :, S_max:S_max + n_new[g]]], dim=1))
                    for k, v in cache.kv] if cache.kv and cache.kv[0] is not None else []
            self.entries[key] = _CacheEntry(tokens=list(prompt), kv=kv_g, last=last[g].clone())
            self.entries.move_to_end(key)
        while len(self.entries) > self.max_games:
            self.entries.popitem(last=False)
        return cache, last


def _score_after_prefill(model: Any, cache: Any, last: Any, prompt_lengths: Sequence[int],
                         candidates: Sequence[Sequence[Sequence[int]]]) -> list[np.ndarray]:
    """Summed log-probabilities of each game's candidates after its cached prompt (one pass).

    A candidate's first token is scored from ``last``; its later tokens need the model run on its
    earlier ones. Those runs are shared as a trie: every distinct candidate prefix (``N``, ``Nf``,
    ``Nf3`` ...) is one token of the game's row, at position prompt + depth - 1, attending to the
    prompt and to its own ancestors only (about a third fewer tokens than one copy per candidate
    for SAN characters). The node for prefix ``c[:k]`` gives the distribution of ``c[k]``.
    """
    import torch
    import torch.nn.functional as F
    device = last.device
    G = len(candidates)
    first = F.log_softmax(last.float(), dim=-1).double().cpu()  # (G, V)
    scores = [first[g, [c[0] for c in candidates[g]]].numpy().copy() for g in range(G)]
    # the trie of each game: node id per prefix (length >= 1 and < the candidate's length)
    nodes: list[dict[tuple[int, ...], int]] = []
    for cands in candidates:
        index: dict[tuple[int, ...], int] = {}
        for c in cands:
            for k in range(1, len(c)):
                index.setdefault(tuple(c[:k]), len(index))
        nodes.append(index)
    width = max(len(index) for index in nodes)
    if width == 0:
        return scores
    new = torch.zeros(G, width, dtype=torch.long)
    pos = torch.zeros(G, width, dtype=torch.long)
    mask = torch.eye(width, dtype=torch.bool)[None].repeat(G, 1, 1)  # padding attends to itself only
    for g, index in enumerate(nodes):
        for prefix, i in index.items():
            new[g, i] = prefix[-1]
            pos[g, i] = prompt_lengths[g] + len(prefix) - 1
            for k in range(1, len(prefix)):
                mask[g, i, index[prefix[:k]]] = True  # its ancestors
    logits, _ = model(new.to(device), cache=cache, pos=pos.to(device), mask=mask.to(device))
    logp = F.log_softmax(logits.float(), dim=-1).double().cpu().numpy()  # (G, T, V)
    for g, (index, cands) in enumerate(zip(nodes, candidates)):
        for j, c in enumerate(cands):
            scores[g][j] += sum(float(logp[g, index[tuple(c[:k])], c[k]]) for k in range(1, len(c)))
    return scores
    new = torch.zeros(G, width, dtype=torch.long, device=device)
    pos = torch.zeros(G, width, dtype=torch.long, device=device)
    owner = torch.full((G, width), -1, dtype=torch.long, device=device)
    targets = torch.zeros(G, width, dtype=torch.long)
    for g, rows in enumerate(tails):
        at = 0
        for j, (tail, cand) in enumerate(zip(rows, candidates[g])):
            n = len(tail)
            if n:
                new[g, at:at + n] = torch.tensor(tail, dtype=torch.long)
                pos[g, at:at + n] = prompt_lengths[g] + torch.arange(n)
                owner[g, at:at + n] = j
                targets[g, at:at + n] = torch.tensor(list(cand[1:]), dtype=torch.long)
                at += n
    steps = torch.arange(width, device=device)
    causal = steps[None, :] <= steps[:, None]
    same = owner[:, :, None] == owner[:, None, :]
    diag = torch.eye(width, dtype=torch.bool, device=device)[None]
    mask = (same & causal & (owner[:, :, None] >= 0)) | diag  # padding attends to itself only
    logits, _ = model(new, cache=cache, pos=pos, mask=mask)
    logp = F.log_softmax(logits.float(), dim=-1).double().cpu()  # (G, T, V)
    picked = logp.gather(2, targets[:, :, None])[:, :, 0].numpy()  # (G, T)
    owners = owner.cpu().numpy()
    for g, rows in enumerate(tails):
        for j in range(len(rows)):
            scores[g][j] += float(picked[g][owners[g] == j].sum())
    return scores



class ModelPlayer:
    """A trained GPT as a player, batched across games.

    ``policy="exact"``: every legal move's continuation (``tokenizer.move_tokens``) is scored after
    the game's prefix with :func:`chess_exp.model.gpt.score_continuations` (one batch for all games),
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
        self.prefix_cache = PrefixCache(model) if model is not None else None

    def game_over(self, game_id: str) -> None:
        """Forget a finished game's cached prompt (called by the game loop)."""
        if self.prefix_cache is not None:
            self.prefix_cache.drop(game_id)

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
        was_training = bool(getattr(self.model, "training", False))
        if was_training:
            self.model.eval()  # no dropout while playing; the caller's mode is restored
        try:
            if self.policy == "exact":
                return self._choose_exact(requests)
            return self._choose_sampled(requests)
        finally:
            if was_training:
                self.model.train(True)

    # exact ---------------------------------------------------------------------------------------
    def move_distributions(self, boards: Sequence[chess.Board], sans: Sequence[Sequence[str]]
                           ) -> list[tuple[list[chess.Move], np.ndarray]]:
        """The model's exact distribution over the legal moves of each position (one batch)."""
        from chess_exp.model.gpt import score_continuations
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
        if self.use_cache:
            dists = self._cached_distributions(requests)
        else:
            dists = self.move_distributions([r.board for r in requests], [r.sans for r in requests])
        return [_pick(moves, probs, self.temperature_for(r), self.mode, r.rng)
                for (moves, probs), r in zip(dists, requests)]

    def _cached_distributions(self, requests: Sequence[MoveRequest]) -> list[tuple[list[chess.Move], np.ndarray]]:
        """Like :meth:`move_distributions`, with each game's prompt kept in the KV cache between moves."""
        import torch
        assert self.prefix_cache is not None
        block = self.model.config.block_size
        prompts, keys, candidates, legal = [], [], [], []
        for r in requests:
            moves = list(r.board.legal_moves)
            cands = [list(self.tokenizer.move_tokens(r.board, move)) for move in moves]
            prompt = self._prefix(r.board, r.sans)
            room = block + 1 - max(len(c) for c in cands)
            key: str | None = r.game_id or None
            if len(prompt) > room:  # beyond the context: a cropped window, computed afresh
                prompt, key = prompt[-room:], None
                if r.game_id:
                    self.prefix_cache.drop(r.game_id)
            prompts.append(prompt)
            keys.append(key)
            candidates.append(cands)
            legal.append(moves)
        cost = [self.prefix_cache.new_tokens(k, p) + sum(map(len, c)) for k, p, c in zip(keys, prompts, candidates)]
        logps: list[np.ndarray] = [np.zeros(0)] * len(requests)
        with torch.no_grad():
            for group in length_groups(cost):
                cache, last = self.prefix_cache.prefill([keys[i] for i in group], [prompts[i] for i in group])
                scored = _score_after_prefill(self.model, cache, last, [len(prompts[i]) for i in group],
                                              [candidates[i] for i in group])
                for i, logp in zip(group, scored):
                    logps[i] = logp
        out = []
        for moves, logp in zip(legal, logps):
            probs = np.exp(logp - logp.max())
            out.append((moves, probs / probs.sum()))
        return out

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
        block = self.model.config.block_size
        room = block - self.max_chars
        keys = list(keys) if keys is not None else [None] * len(prompts)
        cropped = [list(p[-room:]) if len(p) > room else list(p) for p in prompts]
        keys = [k if len(p) <= room else None for k, p in zip(keys, prompts)]  # a cropped window: afresh
        if not self.use_cache:
            return self._generate(cropped, rngs, temperatures, [None] * len(prompts))
        assert self.prefix_cache is not None
        texts = [""] * len(prompts)
        for group in length_groups([self.prefix_cache.new_tokens(k, p) for k, p in zip(keys, cropped)]):
            for i, text in zip(group, self._generate([cropped[i] for i in group], [rngs[i] for i in group],
                                                     [temperatures[i] for i in group], [keys[i] for i in group])):
                texts[i] = text
        return texts

    def _generate(self, prompts: list[list[int]], rngs: Sequence[np.random.Generator],
                  temperatures: Sequence[float], keys: Sequence[str | None]) -> list[str]:
        import torch
        model = self.model
        block = model.config.block_size
        n = len(prompts)
        out: list[list[int]] = [[] for _ in range(n)]
        done = [False] * n
        device = model.lm_head.weight.device
        with torch.no_grad():
            if self.use_cache:
                assert self.prefix_cache is not None
                cache, last = self.prefix_cache.prefill(keys, prompts)  # (B, V) after each prompt
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
