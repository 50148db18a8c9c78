"""Invariants of chess_exp.model.gpt: causality, KV cache, exact continuation scores, shape of the net."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from chess_exp.model.gpt import GPT, GPTConfig, score_continuations, load_model

VOCAB = 23
SMALL = GPTConfig(vocab_size=VOCAB, block_size=48, n_layer=2, n_head=2, n_embd=16)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models on a shared 2-core machine: a second OpenMP thread only adds waiting."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def model(one_thread) -> GPT:
    torch.manual_seed(0)
    net = GPT(SMALL).eval()
    # bigger weights than the init, so that every position really depends on the past
    with torch.no_grad():
        for p in net.parameters():
            if p.dim() >= 2:
                p.mul_(10.0)
    return net


def brute_logprob(model: GPT, prefix: list[int], cont: list[int]) -> float:
    """log p(cont | prefix) from one full forward pass over prefix + cont."""
    with torch.no_grad():
        logits, _ = model(torch.tensor([prefix + cont]))
    logp = torch.log_softmax(logits[0].double(), dim=-1)
    return sum(float(logp[len(prefix) - 1 + i, tok]) for i, tok in enumerate(cont))


tokens = st.integers(0, VOCAB - 1)


@settings(max_examples=30)
@given(seq=st.lists(tokens, min_size=2, max_size=40), data=st.data())
def test_future_tokens_do_not_change_past_logits(model, seq, data):
    """Causality: logits at positions <= k are the same whatever the tokens after k are."""
    k = data.draw(st.integers(0, len(seq) - 2))
    other = seq[:k + 1] + data.draw(st.lists(tokens, min_size=len(seq) - k - 1, max_size=len(seq) - k - 1))
    with torch.no_grad():
        a, _ = model(torch.tensor([seq]))
        b, _ = model(torch.tensor([other]))
    torch.testing.assert_close(a[0, :k + 1], b[0, :k + 1], rtol=1e-5, atol=1e-5)


def test_kv_cache_incremental_equals_full_forward(model):
    torch.manual_seed(1)
    x = torch.randint(0, VOCAB, (3, 30))
    with torch.no_grad():
        full, _ = model(x)
        cache = model.init_cache(3)
        parts = [model(x[:, :11], cache=cache)[0]]
        for t in range(11, 30):
            parts.append(model(x[:, t:t + 1], cache=cache)[0])
    torch.testing.assert_close(torch.cat(parts, dim=1), full, rtol=1e-5, atol=1e-5)
    assert cache.length == 30 and cache.pos.tolist() == [30, 30, 30]


def test_kv_cache_with_rows_of_different_lengths(model):
    """Right-padded prefixes (n_new) then one token per row: equals each row's own full forward."""
    torch.manual_seed(2)
    lengths = [5, 12, 1]
    rows = [torch.randint(0, VOCAB, (n,)).tolist() for n in lengths]
    nxt = [3, 7, 11]
    padded = torch.full((3, 12), 4, dtype=torch.long)  # padding token 4 must not matter
    for r, row in enumerate(rows):
        padded[r, :len(row)] = torch.tensor(row)
    with torch.no_grad():
        cache = model.init_cache(3)
        model(padded, cache=cache, n_new=torch.tensor(lengths))
        step, _ = model(torch.tensor(nxt)[:, None], cache=cache)
        for r, row in enumerate(rows):
            ref, _ = model(torch.tensor([row + [nxt[r]]]))
            torch.testing.assert_close(step[r, 0], ref[0, -1], rtol=1e-5, atol=1e-5)
    assert cache.pos.tolist() == [6, 13, 2]


@settings(max_examples=25)
@given(data=st.data())
def test_score_continuations_equals_brute_force(model, data):
    """score_continuations(prefix, cands)[j] == sum_i log p(cand_j[i] | prefix + cand_j[:i])."""
    n_games = data.draw(st.integers(1, 4))
    prefixes = [data.draw(st.lists(tokens, min_size=1, max_size=20)) for _ in range(n_games)]
    cands = [data.draw(st.lists(st.lists(tokens, min_size=1, max_size=5), min_size=0, max_size=5))
             for _ in range(n_games)]
    max_tokens = data.draw(st.sampled_from([8, 1 << 16]))  # small: forces one game per chunk
    got = score_continuations(model, prefixes, cands, max_tokens=max_tokens)
    assert len(got) == n_games
    for prefix, cs, scores in zip(prefixes, cands, got):
        assert scores.shape == (len(cs),) and scores.dtype == np.float64
        for c, s in zip(cs, scores):
            assert s == pytest.approx(brute_logprob(model, prefix, c), abs=2e-4)


def test_single_token_candidates_form_a_distribution(model):
    """With every token as a one-token candidate the probabilities sum to one."""
    scores = score_continuations(model, [[1, 2, 3]], [[[t] for t in range(VOCAB)]])[0]
    assert np.exp(scores).sum() == pytest.approx(1.0, abs=1e-5)


def test_score_continuations_rejects_bad_input(model):
    with pytest.raises(ValueError, match="prefixes"):
        score_continuations(model, [[]], [[[1]]])
    with pytest.raises(ValueError, match="empty continuation"):
        score_continuations(model, [[1]], [[[]]])
    with pytest.raises(ValueError, match="block_size"):
        score_continuations(model, [[1] * 48], [[[1, 2]]])
    with pytest.raises(ValueError, match="candidates"):
        score_continuations(model, [[1], [2]], [[[1]]])


def test_longer_than_block_size_is_an_error(model):
    with pytest.raises(ValueError, match="block_size"):
        model(torch.zeros(1, 49, dtype=torch.long))


def test_hidden_states_feed_the_tied_head(model):
    x = torch.randint(0, VOCAB, (2, 9))
    h = model.hidden_states(x)
    assert h.shape == (2, 9, SMALL.n_embd)
    with torch.no_grad():
        logits, _ = model(x)
        torch.testing.assert_close(logits, h @ model.transformer.wte.weight.T, rtol=1e-5, atol=1e-5)


def test_weights_are_tied_and_there_are_no_biases():
    net = GPT(SMALL)
    assert net.lm_head.weight is net.transformer.wte.weight
    assert not [name for name, _ in net.named_parameters() if "bias" in name]
    with_bias = GPT(dataclasses.replace(SMALL, bias=True))
    assert [name for name, _ in with_bias.named_parameters() if "bias" in name]


def test_paper_50m_has_about_50m_parameters():
    c = GPTConfig()  # the defaults are the paper's ChessFormer
    net = GPT(c)
    per_layer = 12 * c.n_embd ** 2 + 2 * c.n_embd  # attention 4C^2, MLP 8C^2, two LayerNorm gains
    expected = c.n_layer * per_layer + c.n_embd + (c.vocab_size + c.block_size) * c.n_embd
    assert net.num_params() == expected
    assert 50e6 < net.num_params() < 52e6


def test_init_scales():
    torch.manual_seed(0)
    c = GPTConfig(vocab_size=64, block_size=64, n_layer=4, n_head=4, n_embd=256)
    net = GPT(c)
    proj = net.transformer.h[0].mlp.c_proj.weight
    fc = net.transformer.h[0].mlp.c_fc.weight
    assert float(proj.detach().std()) == pytest.approx(0.02 / math.sqrt(2 * c.n_layer), rel=0.05)
    assert float(fc.detach().std()) == pytest.approx(0.02, rel=0.05)


def test_config_validation():
    with pytest.raises(ValueError, match="n_head"):
        GPTConfig(n_embd=10, n_head=3)
    with pytest.raises(ValueError, match="block_size"):
        GPTConfig(block_size=0)


def test_load_model_round_trip(tmp_path, model):
    from chess_exp.model.train import TrainConfig, save_checkpoint
    opt = model.configure_optimizers(0.1, 1e-3, (0.9, 0.95), "cpu")
    save_checkpoint(tmp_path / "checkpoints" / "ckpt.pt", model, opt, 7, TrainConfig(model=SMALL),
                    "move", {})
    loaded, meta = load_model(tmp_path)
    assert meta["step"] == 7 and meta["tokenizer"] == "move" and meta["config"]["n_embd"] == SMALL.n_embd
    x = torch.randint(0, VOCAB, (2, 10))
    with torch.no_grad():
        torch.testing.assert_close(loaded(x)[0], model(x)[0])
    assert not loaded.training
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no checkpoint"):
        load_model(tmp_path / "empty")
