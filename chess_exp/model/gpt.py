"""A GPT language model in one file: the paper's "ChessFormer" (nanoGPT; docs/paper-notes.md).

Decoder-only transformer with pre-LayerNorm blocks, no biases, GELU, learned absolute positions,
causal ``F.scaled_dot_product_attention``, and the token embedding tied to the output head.
Weights start at N(0, 0.02); the projections that write into the residual stream start at
N(0, 0.02 / sqrt(2 * n_layer)).

Besides the training forward pass it offers what playing chess needs:

- a key/value cache (:class:`KVCache`) for incremental decoding, which also lets rows of a batch
  hold prefixes of different lengths (right padding, masked out);
- :func:`score_continuations`: the summed log-probability of every candidate continuation (every
  legal move) after each game's prefix, with the prefix run once and all candidates of all games
  scored together. This is the model's exact move distribution f̂(move | game so far).
- :meth:`GPT.hidden_states`: the last layer after the final LayerNorm (for the t-SNE analysis);
Checkpoints (saving, loading, peers' layouts) live in ``chess_exp.model.checkpoints``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
from torch.nn import functional as F

__all__ = ["GPTConfig", "GPT", "KVCache", "score_continuations"]


@dataclass(frozen=True, kw_only=True)
class GPTConfig:
    """Shape of the network. Defaults are the paper's 50M ChessFormer (16 x 8 x 512, context 1023)."""

    vocab_size: int = 32  # number of token ids (char tokenizer: 32)
    block_size: int = 1023  # context length in tokens (positions 0 .. block_size-1)
    n_layer: int = 16  # transformer blocks
    n_head: int = 8  # attention heads per block
    n_embd: int = 512  # width of the residual stream (d_model)
    dropout: float = 0.0  # dropout probability (paper: 0)
    bias: bool = False  # biases in Linear and LayerNorm layers (paper: none)

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            if getattr(self, name) < 1:
                raise ValueError(f"GPTConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.n_embd % self.n_head:
            raise ValueError(f"GPTConfig.n_embd={self.n_embd} must be divisible by n_head={self.n_head}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"GPTConfig.dropout must be in [0, 1), got {self.dropout}")


class KVCache:
    """Keys and values of the tokens seen so far, per layer, for incremental decoding.

    ``valid`` (B, S) marks the cached slots that hold real tokens (padding slots stay masked);
    ``pos`` (B,) is the position the next token of each row will take. Rows may therefore hold
    prefixes of different lengths. Created by :meth:`GPT.init_cache`, filled by :meth:`GPT.forward`.
    """

    def __init__(self, batch: int, n_layer: int, device: torch.device | str = "cpu") -> None:
        self.kv: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * n_layer
        self.valid = torch.zeros(batch, 0, dtype=torch.bool, device=device)  # (B, S)
        self.pos = torch.zeros(batch, dtype=torch.long, device=device)  # (B,)

    @property
    def length(self) -> int:
        """Number of cached slots (valid or padding)."""
        return self.valid.shape[1]


class LayerNorm(nn.Module):
    """LayerNorm with an optional bias (PyTorch's cannot switch the bias off in old versions)."""

    def __init__(self, ndim: int, bias: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.dropout = config.dropout

    def forward(self, x: torch.Tensor, past: tuple[torch.Tensor, torch.Tensor] | None = None,
                mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """x (B, T, C); past: cached (k, v), each (B, nh, S, hs); mask (B, 1, T, S+T), True = attend.

        Without a mask the attention is plain causal (and ``past`` must be None).
        Returns the output (B, T, C) and this call's (k, v), each (B, nh, T, hs).
        """
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        new_kv = (k, v)
        if past is not None:
            k = torch.cat([past[0], k], dim=2)  # (B, nh, S+T, hs)
            v = torch.cat([past[1], v], dim=2)
        dropout = self.dropout if self.training else 0.0
        if mask is None:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C)
        return self.resid_dropout(self.c_proj(y)), new_kv


class MLP(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, past: tuple[torch.Tensor, torch.Tensor] | None = None,
                mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        a, new_kv = self.attn(self.ln_1(x), past, mask)
        x = x + a
        x = x + self.mlp(self.ln_2(x))
        return x, new_kv


class _Trunk(nn.ModuleDict):
    """The transformer's parts under nanoGPT's names (so the state-dict keys are nanoGPT's), typed."""

    wte: nn.Embedding
    wpe: nn.Embedding
    drop: nn.Dropout
    h: nn.ModuleList
    ln_f: LayerNorm


class GPT(nn.Module):
    """The language model. ``forward(idx, targets)`` -> ``(logits (B, T, V), loss or None)``."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.transformer = _Trunk(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=LayerNorm(config.n_embd, bias=config.bias),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # weight tying
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # scaled init of the residual projections (GPT-2)
            if name.endswith("c_proj.weight"):
                torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self, non_embedding: bool = False) -> int:
        """Parameters (the tied embedding counted once); without position embeddings if asked."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.transformer.wpe.weight.numel() if non_embedding else n

    def init_cache(self, batch: int) -> KVCache:
        """An empty cache for ``batch`` rows, on the model's device."""
        return KVCache(batch, self.config.n_layer, device=self.lm_head.weight.device)

    def _trunk(self, idx: torch.Tensor, cache: KVCache | None, pos: torch.Tensor | None,
               mask: torch.Tensor | None, n_new: torch.Tensor | None) -> torch.Tensor:
        """Embeddings and blocks; returns the last layer after ln_f, (B, T, C)."""
        B, T = idx.shape
        device = idx.device
        if cache is None:
            if T > self.config.block_size:
                raise ValueError(f"sequence of length {T} is longer than block_size={self.config.block_size}")
            if pos is not None or mask is not None:
                raise ValueError("pos and mask are only used together with a cache")
            positions = torch.arange(T, device=device)[None, :]  # (1, T)
            full_mask = None  # plain causal
        else:
            steps = torch.arange(T, device=device)
            positions = cache.pos[:, None] + steps[None, :] if pos is None else pos  # (B, T)
            if int(positions.max()) >= self.config.block_size:
                raise ValueError(f"position {int(positions.max())} is beyond block_size="
                                 f"{self.config.block_size}")
            if mask is None:
                mask = (steps[None, :] <= steps[:, None]).expand(B, T, T)  # causal among new tokens
            full_mask = torch.cat([cache.valid[:, None, :].expand(B, T, cache.length), mask], dim=2)
            full_mask = full_mask[:, None]  # (B, 1, T, S+T)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(positions))  # (B, T, C)
        for i, block in enumerate(self.transformer.h):
            x, new_kv = block(x, None if cache is None else cache.kv[i], full_mask)
            if cache is not None:
                old = cache.kv[i]
                cache.kv[i] = new_kv if old is None else (torch.cat([old[0], new_kv[0]], dim=2),
                                                          torch.cat([old[1], new_kv[1]], dim=2))
        if cache is not None:  # the first n_new[b] new tokens of row b are real, the rest padding
            n = torch.full((B,), T, device=device) if n_new is None else n_new.to(device)
            real = torch.arange(T, device=device)[None, :] < n[:, None]  # (B, T)
            cache.valid = torch.cat([cache.valid, real], dim=1)
            cache.pos = cache.pos + n
        return self.transformer.ln_f(x)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, *,
                cache: KVCache | None = None, pos: torch.Tensor | None = None,
                mask: torch.Tensor | None = None, n_new: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (B, T, V) for the tokens ``idx`` (B, T), and the mean cross-entropy if ``targets``.

        Without ``cache`` this is the ordinary causal forward pass from position 0. With a cache
        (:meth:`init_cache`) the new tokens attend to the cached real tokens and to each other
        causally, take positions ``cache.pos + t``, and are appended to the cache; ``n_new`` (B,)
        says how many of each row's T tokens are real (right padding). ``pos`` (B, T) and ``mask``
        (B, T, T; True = may attend) override the positions and the mask among the new tokens
        (used by :func:`score_continuations` to score many candidates side by side).
        Targets equal to -1 are ignored by the loss.
        """
        x = self._trunk(idx, cache, pos, mask, n_new)
        logits = self.lm_head(x)  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)).float(), targets.reshape(-1),
                                   ignore_index=-1)
        return logits, loss

    @torch.no_grad()
    def hidden_states(self, idx: torch.Tensor) -> torch.Tensor:
        """The last layer's activations after the final LayerNorm, (B, T, C), for ``idx`` (B, T)."""
        return self._trunk(idx, None, None, None, None)

    def configure_optimizers(self, weight_decay: float, learning_rate: float,
                             betas: tuple[float, float], device_type: str) -> torch.optim.AdamW:
        """AdamW with weight decay on matrices (dim >= 2) only, not on gains, biases or vectors."""
        params = [p for p in self.parameters() if p.requires_grad]
        groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
                  {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
        fused = device_type == "cuda"
        return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, fused=fused)

    def flops_per_token(self) -> float:
        """Training FLOPs per token (forward + backward), PaLM appendix B: 6N + 12 L T C."""
        c = self.config
        return 6 * self.num_params(non_embedding=True) + 12 * c.n_layer * c.block_size * c.n_embd


@torch.no_grad()
def score_continuations(model: GPT, prefixes: list[list[int]], candidates: list[list[list[int]]],
                        *, max_tokens: int = 1 << 16) -> list[np.ndarray]:
    """Summed log-probability of each candidate continuation after its game's prefix.

    ``prefixes[g]`` are the tokens of game g so far (starting with the start token) and
    ``candidates[g][j]`` the tokens that play move j (ending with a terminator). Returns, for each
    game, a float64 array ``(len(candidates[g]),)`` with log p(candidate | prefix) summed over the
    candidate's tokens. Each prefix is run once into a KV cache; then all candidates of a game
    are laid side by side in one row, each attending to the prefix and causally to its own
    tokens only, so a batch of games costs two forward passes (one when every candidate is a
    single token, as with the move tokenizer). Games are processed in chunks of about
    ``max_tokens`` candidate tokens to bound memory.
    """
    if len(prefixes) != len(candidates):
        raise ValueError(f"prefixes has {len(prefixes)} games but candidates has {len(candidates)}")
    for g, (prefix, cands) in enumerate(zip(prefixes, candidates)):
        if len(prefix) == 0:
            raise ValueError(f"prefixes[{g}] is empty: it must start with the start token")
        if any(len(c) == 0 for c in cands):
            raise ValueError(f"candidates[{g}] holds an empty continuation")
        longest = len(prefix) + max((len(c) for c in cands), default=1) - 1
        if longest > model.config.block_size:
            raise ValueError(f"game {g}: prefix of {len(prefix)} tokens plus its longest candidate need "
                             f"{longest} positions, more than block_size={model.config.block_size}")
    out: list[np.ndarray] = [np.zeros(0)] * len(prefixes)
    order = sorted(range(len(prefixes)), key=lambda g: len(prefixes[g]))  # similar lengths together
    chunk: list[int] = []
    size = 0
    for g in order:
        cost = len(prefixes[g]) + sum(len(c) for c in candidates[g])
        if chunk and size + cost > max_tokens:
            _score_chunk(model, prefixes, candidates, chunk, out)
            chunk, size = [], 0
        chunk.append(g)
        size += cost
    if chunk:
        _score_chunk(model, prefixes, candidates, chunk, out)
    return out


def _score_chunk(model: GPT, prefixes: list[list[int]], candidates: list[list[list[int]]],
                 games: list[int], out: list[np.ndarray]) -> None:
    was_training = model.training
    model.eval()
    device = model.lm_head.weight.device
    G = len(games)
    lengths = torch.tensor([len(prefixes[g]) for g in games], device=device)
    idx = torch.zeros(G, int(lengths.max()), dtype=torch.long, device=device)
    for row, g in enumerate(games):
        idx[row, :len(prefixes[g])] = torch.tensor(prefixes[g], device=device)
    cache = model.init_cache(G)
    logits, _ = model(idx, cache=cache, n_new=lengths)  # (G, L, V)
    first = F.log_softmax(logits[torch.arange(G, device=device), lengths - 1].float(), dim=-1)  # (G, V)
    scores = []
    for row, g in enumerate(games):
        firsts = torch.tensor([c[0] for c in candidates[g]], dtype=torch.long, device=device)
        scores.append(first[row, firsts].double().cpu().numpy())
    # the candidates' later tokens: feed each candidate's tokens but its last, side by side
    tails = [[c[:-1] for c in candidates[g]] for g in games]
    width = max(sum(len(t) for t in rows) for rows in tails)
    if width > 0:
        new = torch.zeros(G, width, dtype=torch.long, device=device)
        pos = torch.zeros(G, width, dtype=torch.long, device=device)
        owner = torch.full((G, width), -1, dtype=torch.long, device=device)  # candidate of each slot
        for row, rows in enumerate(tails):
            at = 0
            for j, tail in enumerate(rows):
                n = len(tail)
                new[row, at:at + n] = torch.tensor(tail, dtype=torch.long, device=device)
                pos[row, at:at + n] = lengths[row] + torch.arange(n, device=device)
                owner[row, at:at + n] = j
                at += n
        steps = torch.arange(width, device=device)
        causal = steps[None, :] <= steps[:, None]  # (T, T)
        same = owner[:, :, None] == owner[:, None, :]  # (G, T, T)
        mask = same & causal & (owner[:, :, None] >= 0)
        logits, _ = model(new, cache=cache, pos=pos, mask=mask)
        logp = F.log_softmax(logits.float(), dim=-1).double().cpu()  # (G, T, V)
        for row, (g, rows) in enumerate(zip(games, tails)):
            at = 0
            for j, (tail, cand) in enumerate(zip(rows, candidates[g])):
                n = len(tail)
                if n:
                    targets = torch.tensor(cand[1:], dtype=torch.long)
                    scores[row][j] += float(logp[row, at + torch.arange(n), targets].sum())
                at += n
    for row, g in enumerate(games):
        out[g] = scores[row]
    model.train(was_training)
