"""Inference for play: each game's prompt kept in a KV cache, the exact move distribution, sampling.

What a player needs from the model, in one place:

- :class:`PrefixCache`: each game's prompt in the model's KV cache between its moves, so a move runs
  only the new tokens. ``max_games=0`` keeps nothing: every prompt is computed afresh (the same
  code path, so cached and uncached distributions agree).
- :func:`score_after_prefill`: the summed log-probability of every candidate continuation after
  each game's cached prompt, all candidates sharing a trie of their prefixes (one forward pass).
  :func:`chess_exp.model.gpt.score_continuations` is the same quantity without a cache.
- :func:`move_distributions`: the model's exact distribution over the legal moves of each position
  (softmax of the summed log-probabilities of each move's tokens), batched by similar cost.
- :func:`sample_text` / :func:`sample_text_uncached`: the paper's character sampling after each
  prompt, batched with the cache, or nanoGPT's re-run-everything loop (the reference).

Prompts longer than the context are cropped on the left (as nanoGPT's ``generate`` does) and then
computed afresh: a cropped window is not a continuation of the cached one.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import chess
import numpy as np

__all__ = ["PrefixCache", "score_after_prefill", "move_distributions", "prompt_tokens", "length_groups",
           "sample_index", "sample_tokens", "sample_text", "sample_text_uncached", "move_text_complete",
           "eval_mode", "crop"]

#: padded tokens per forward pass before a batch is split (bounds activation memory)
MAX_BATCH_TOKENS = 1 << 17


def sample_index(probs: np.ndarray, rng: np.random.Generator) -> int:
    """Draw an index of ``probs`` (1-d, sums to 1) with one uniform from ``rng`` (inverse CDF)."""
    cdf = np.cumsum(probs)
    u = rng.random() * cdf[-1]
    return int(min(np.searchsorted(cdf, u, side="right"), len(probs) - 1))


def length_groups(lengths: Sequence[int], *, slack: float = 1.25, free: int = 256,
                  max_tokens: int | None = None) -> list[list[int]]:
    """Indices grouped by similar length so that padding each group to its longest member costs at
    most ``slack`` times its real tokens or ``free`` extra tokens, whichever is more (a batch of very
    different prompts is mostly padding; a few padded short prompts cost less than another call).
    With ``max_tokens``, a group's padded size (longest member x members) also stays within it
    (a single member may exceed it)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    groups: list[list[int]] = []
    total = 0
    for i in order:
        n = lengths[i]
        padded = n * (len(groups[-1]) + 1) if groups else 0
        fits = max_tokens is None or padded <= max_tokens
        if groups and fits and padded <= max(slack * (total + n), total + n + free):
            groups[-1].append(i)
            total += n
        else:
            groups.append([i])
            total = n
    return groups


@contextmanager
def eval_mode(model: Any) -> Iterator[None]:
    """The model in eval mode (no dropout) inside the block; the caller's mode restored after."""
    was_training = bool(getattr(model, "training", False))
    if was_training:
        model.eval()
    try:
        yield
    finally:
        if was_training:
            model.train(True)


def prompt_tokens(tokenizer: Any, board: chess.Board, sans: Sequence[str]) -> list[int]:
    """The tokens before the next move of the game ``sans`` (the training format).

    With a move tokenizer and a board holding the game's move stack, the ids come from the stack
    directly (no SAN replay)."""
    move_id = getattr(tokenizer, "move_id", None)
    if move_id is not None and len(board.move_stack) == len(sans):
        return [tokenizer.start_id, *(move_id(m) for m in board.move_stack)]
    return list(tokenizer.prefix(tuple(sans)))


def crop(prompt: Sequence[int], room: int) -> list[int]:
    """The last ``room`` tokens of ``prompt`` (all of it when it fits)."""
    return list(prompt[-room:]) if len(prompt) > room else list(prompt)


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
    least recently used first, beyond ``max_games``; ``max_games=0`` stores nothing.
    """

    def __init__(self, model: Any, *, max_games: int = 256) -> None:
        if max_games < 0:
            raise ValueError(f"max_games={max_games}: must be >= 0 (0 = keep nothing)")
        self.model = model
        self.max_games = max_games
        self.entries: OrderedDict[str, _CacheEntry] = OrderedDict()

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
        """``(cache, last)``: a KVCache (B rows) holding each prompt, and logits (B, V) after it.

        Every prompt must fit the context (``len(prompt) <= block_size``). Rows are right-padded to
        the longest new part; a padding slot takes its row's last valid position (it is masked out
        of the cache and never read), so a short cached row beside a long fresh one stays within
        the context.
        """
        import torch
        model = self.model
        device = model.lm_head.weight.device
        block = model.config.block_size
        G = len(prompts)
        too_long = [len(p) for p in prompts if len(p) > block]
        if too_long:
            raise ValueError(f"prompt of {max(too_long)} tokens is longer than block_size={block}: crop it first")
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
            # real tokens at S[g] + t; padding clamped to the row's last position (never attended to)
            lengths = torch.tensor([len(p) for p in prompts], dtype=torch.long, device=device)
            pos = torch.tensor(S, dtype=torch.long, device=device)[:, None] + torch.arange(N_max, device=device)[None, :]
            pos = torch.minimum(pos, (lengths - 1).clamp(min=0)[:, None])
            logits, _ = model(idx, cache=cache, pos=pos, n_new=torch.tensor(n_new, device=device))  # (G, N_max, V)
        for g, e in enumerate(olds):
            last[g] = logits[g, n_new[g] - 1] if n_new[g] else e.last  # type: ignore[union-attr]
        if self.max_games > 0:
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


def score_after_prefill(model: Any, cache: Any, last: Any, prompt_lengths: Sequence[int],
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


def move_distributions(model: Any, tokenizer: Any, boards: Sequence[chess.Board],
                       sans: Sequence[Sequence[str]], *, cache: PrefixCache | None = None,
                       keys: Sequence[str | None] | None = None, max_tokens: int = MAX_BATCH_TOKENS
                       ) -> list[tuple[list[chess.Move], np.ndarray]]:
    """The model's exact distribution over the legal moves of each position.

    ``boards[i]`` is the position after the moves ``sans[i]`` (SAN, checks included). Every legal
    move's tokens (``tokenizer.move_tokens``) are scored after the game's prompt, and the
    probabilities are the softmax of the summed log-probabilities. ``cache`` keeps each game's
    prompt (under ``keys[i]``) between calls; without one every prompt is computed afresh (a cache
    of size 0: the same arithmetic). Positions are batched by similar cost, within ``max_tokens``
    padded tokens per forward pass.
    """
    import torch
    if len(boards) != len(sans):
        raise ValueError(f"boards has {len(boards)} positions but sans has {len(sans)} histories")
    if cache is None:
        cache = PrefixCache(model, max_games=0)
    keys = list(keys) if keys is not None else [None] * len(boards)
    block = model.config.block_size
    prompts, candidates, legal = [], [], []
    for g, (board, history) in enumerate(zip(boards, sans)):
        moves = list(board.legal_moves)
        if not moves:
            raise ValueError(f"boards[{g}] has no legal move (the game is over): {board.fen()}")
        cands = [list(tokenizer.move_tokens(board, move)) for move in moves]
        prompt = prompt_tokens(tokenizer, board, history)
        room = block + 1 - max(len(c) for c in cands)
        if len(prompt) > room:  # beyond the context: a cropped window, computed afresh
            prompt = crop(prompt, room)
            if keys[g] is not None:
                cache.drop(keys[g])  # type: ignore[arg-type]
            keys[g] = None
        prompts.append(prompt)
        candidates.append(cands)
        legal.append(moves)
    cost = [cache.new_tokens(k, p) + sum(map(len, c)) for k, p, c in zip(keys, prompts, candidates)]
    logps: list[np.ndarray] = [np.zeros(0)] * len(prompts)
    with torch.no_grad(), eval_mode(model):
        for group in length_groups(cost, max_tokens=max_tokens):
            batch_cache, last = cache.prefill([keys[i] for i in group], [prompts[i] for i in group])
            scored = score_after_prefill(model, batch_cache, last, [len(prompts[i]) for i in group],
                                         [candidates[i] for i in group])
            for i, logp in zip(group, scored):
                logps[i] = logp
    out = []
    for moves, logp in zip(legal, logps):
        probs = np.exp(logp - logp.max())
        out.append((moves, probs / probs.sum()))
    return out


# -- sampling (the paper's character protocol) -----------------------------------------------------

def sample_tokens(logits: Any, rngs: Sequence[np.random.Generator], temperatures: Sequence[float]) -> list[int]:
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


def move_text_complete(text: str) -> bool:
    """Whether more characters can no longer change the parsed move (cut at ';' or '+', or a
    word followed by a space)."""
    if ";" in text or "+" in text:
        return True
    stripped = text.lstrip()
    return bool(stripped) and any(c.isspace() for c in stripped)


def sample_text(model: Any, tokenizer: Any, cache: PrefixCache, prompts: Sequence[Sequence[int]],
                rngs: Sequence[np.random.Generator], temperatures: Sequence[float], *, max_chars: int,
                keys: Sequence[str | None] | None = None) -> list[str]:
    """Up to ``max_chars`` tokens sampled after each prompt at its temperature, decoded.

    All prompts are decoded together with the KV cache (grouped by similar new-token counts);
    a row stops once its move text is complete (:func:`move_text_complete`). Prompts longer than
    ``block_size - max_chars`` are cropped and computed afresh.
    """
    import torch
    room = model.config.block_size - max_chars
    keys = list(keys) if keys is not None else [None] * len(prompts)
    keys = [k if len(p) <= room else None for k, p in zip(keys, prompts)]  # a cropped window: afresh
    cropped = [crop(p, room) for p in prompts]
    device = model.lm_head.weight.device
    texts = [""] * len(prompts)
    with torch.no_grad(), eval_mode(model):
        for group in length_groups([cache.new_tokens(k, p) for k, p in zip(keys, cropped)]):
            batch_cache, last = cache.prefill([keys[i] for i in group], [cropped[i] for i in group])
            out: list[list[int]] = [[] for _ in group]
            done = [False] * len(group)
            g_rngs = [rngs[i] for i in group]
            g_temps = [temperatures[i] for i in group]
            for _step in range(max_chars):
                tokens = sample_tokens(last, g_rngs, g_temps)
                for row, t in enumerate(tokens):
                    if not done[row]:
                        out[row].append(t)
                        done[row] = move_text_complete(tokenizer.decode(out[row]))
                if all(done):
                    break
                logits, _ = model(torch.tensor(tokens, device=device)[:, None], cache=batch_cache)
                last = logits[:, -1]
            for i, ids in zip(group, out):
                texts[i] = tokenizer.decode(ids)
    return texts


def sample_text_uncached(model: Any, tokenizer: Any, prompts: Sequence[Sequence[int]],
                         rngs: Sequence[np.random.Generator], temperatures: Sequence[float], *,
                         max_chars: int) -> list[str]:
    """nanoGPT's loop (the paper's): ``max_chars`` tokens per prompt, one game at a time, the whole
    (cropped) sequence re-run for each new token. The reference the cached loop is tested against."""
    import torch
    block = model.config.block_size
    room = block - max_chars
    device = model.lm_head.weight.device
    texts = []
    with torch.no_grad(), eval_mode(model):
        for prompt, rng, temperature in zip(prompts, rngs, temperatures):
            seq = crop(prompt, room)
            out = []
            for _step in range(max_chars):
                logits, _ = model(torch.tensor([seq[-block:]], dtype=torch.long, device=device))
                t = sample_tokens(logits[:, -1], [rng], [temperature])[0]
                seq.append(t)
                out.append(t)
            texts.append(tokenizer.decode(out))
    return texts
