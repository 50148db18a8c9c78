"""Invariants of chess_exp.model.gpt: causality, KV cache, exact continuation scores, shape of the net."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from chess_exp.model.checkpoints import load_model
from chess_exp.model.gpt import GPT, GPTConfig, score_continuations

# its own shape, not the shared tiny_gpt: the GPT module itself is under test (two layers, a vocabulary
# that is no tokenizer's, enlarged weights below), and dataclasses.replace derives variants from it
VOCAB = 23
SMALL = GPTConfig(vocab_size=VOCAB, block_size=48, n_layer=2, n_head=2, n_embd=16)


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
    from chess_exp.model.checkpoints import save_checkpoint
    from chess_exp.model.train import TrainConfig
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


# ----------------------------------------------------------------------------- checkpoints of others

# its own shape: stands in for a nanoGPT char checkpoint written by another program (block_size 40)
CHAR_NET = GPTConfig(vocab_size=32, block_size=40, n_layer=2, n_head=2, n_embd=16)


@pytest.fixture(scope="module")
def char_model(one_thread) -> GPT:
    torch.manual_seed(1)
    return GPT(CHAR_NET).eval()


def _nanogpt_dict(net: GPT, *, prefix: str = "", iter_num: int = 600000, bias_buffers: bool = True) -> dict:
    """A checkpoint laid out as nanoGPT's train.py, the paper's code and Karvonen's chess GPT write it."""
    state = {prefix + k: v.clone() for k, v in net.state_dict().items()}
    if bias_buffers:  # nanoGPT without flash attention registers the causal mask as a buffer "bias"
        T = net.config.block_size
        for i in range(net.config.n_layer):
            state[f"{prefix}transformer.h.{i}.attn.bias"] = torch.tril(torch.ones(T, T)).view(1, 1, T, T)
    c = net.config
    return {"model": state, "optimizer": {"state": {}, "param_groups": []},
            "model_args": {"n_layer": c.n_layer, "n_head": c.n_head, "n_embd": c.n_embd,
                           "block_size": c.block_size, "bias": c.bias, "vocab_size": c.vocab_size,
                           "dropout": 0.0},
            "iter_num": iter_num, "best_val_loss": 0.9,
            "config": {"batch_size": 100, "dataset": "lichess_hf_dataset", "learning_rate": 3e-4}}


@pytest.mark.parametrize("prefix", ["", "_orig_mod.", "module._orig_mod."])
def test_peer_checkpoints_load_with_identical_logits_char_tokenizer_and_iter_num(tmp_path, char_model, prefix):
    from chess_exp.data.tokenizers import get_tokenizer
    from chess_exp.model.checkpoints import load_checkpoint
    torch.save(_nanogpt_dict(char_model, prefix=prefix), tmp_path / "ckpt.pt")
    loaded = load_checkpoint(tmp_path)  # a folder holding nanoGPT's out/ckpt.pt
    assert loaded.tokenizer == "char" and loaded.step == 600000 and loaded.meta["format"] == "nanogpt"
    ids = torch.tensor([get_tokenizer("char").encode_game(["e4", "e5", "Nf3", "Nc6"])])
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(ids)[0], char_model(ids)[0], rtol=0, atol=0)
    again = load_checkpoint(tmp_path / "ckpt.pt", tokenizer="char", step=5)  # the flags override the file
    assert again.step == 5
    model, meta = load_model(tmp_path / "ckpt.pt")  # the tuple form every command uses
    assert meta["tokenizer"] == "char" and meta["step"] == 600000 and meta["config"]["block_size"] == 40


def test_peer_checkpoint_with_a_move_sized_vocabulary_needs_the_tokenizer_flag(tmp_path):
    from chess_exp.model.checkpoints import load_checkpoint
    net = GPT(dataclasses.replace(CHAR_NET, vocab_size=1970))
    torch.save(_nanogpt_dict(net, bias_buffers=False), tmp_path / "ckpt.pt")
    assert load_checkpoint(tmp_path).tokenizer == "char"  # 1970 ids cover the 32 characters
    assert load_checkpoint(tmp_path, tokenizer="move").tokenizer == "move"
    with pytest.raises(ValueError, match="tokenizer must be one of"):
        load_checkpoint(tmp_path, tokenizer="bpe")
    torch.save(_nanogpt_dict(GPT(dataclasses.replace(CHAR_NET, vocab_size=20))), tmp_path / "small.pt")
    with pytest.raises(ValueError, match="20 token ids but tokenizer 'char' needs 32"):
        load_checkpoint(tmp_path / "small.pt")


def test_files_that_are_not_checkpoints_give_one_line_errors(tmp_path, char_model):
    import argparse

    from chess_exp.model.checkpoints import load_checkpoint, save_checkpoint
    pgn = tmp_path / "games.pgn"
    pgn.write_text('[Event "x"]\n\n1. e4 e5 *\n')
    with pytest.raises(ValueError, match="is not a torch checkpoint"):
        load_checkpoint(pgn)
    save_checkpoint(tmp_path / "run" / "checkpoints" / "ckpt.pt", char_model, None, 3, None, "char")
    whole = (tmp_path / "run" / "checkpoints" / "ckpt.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ValueError, match="truncated"):
        load_checkpoint(tmp_path / "cut.pt")
    # a pickled Python object is refused (weights_only=True): reading it could run code
    torch.save({**_nanogpt_dict(char_model), "args": argparse.Namespace(a=1)}, tmp_path / "objects.pt")
    with pytest.raises(ValueError, match="Python objects"):
        load_checkpoint(tmp_path / "objects.pt")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a model checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(ValueError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


@pytest.mark.parametrize("name", ["model.safetensors", "model-weights.pt"])
def test_weights_only_export_round_trip(tmp_path, char_model, name):
    from chess_exp.model.checkpoints import export_weights, load_checkpoint, save_checkpoint
    if name.endswith(".safetensors"):
        pytest.importorskip("safetensors")
    opt = char_model.configure_optimizers(0.1, 1e-3, (0.9, 0.95), "cpu")
    save_checkpoint(tmp_path / "run" / "checkpoints" / "ckpt.pt", char_model, opt, 42, None, "char")
    out = export_weights(tmp_path / "run", tmp_path / name)
    loaded = load_checkpoint(out)
    assert loaded.tokenizer == "char" and loaded.step == 42
    assert out.stat().st_size < (tmp_path / "run" / "checkpoints" / "ckpt.pt").stat().st_size  # no optimizer
    ids = torch.randint(0, 32, (2, 12))
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(ids)[0], char_model(ids)[0], rtol=0, atol=0)
    if name.endswith(".pt"):
        assert set(torch.load(out, weights_only=True)) == {"model", "config", "tokenizer", "step", "format"}


def test_step_numbered_checkpoint_names(tmp_path, char_model):
    from chess_exp.model.checkpoints import (
        checkpoint_path,
        keep_step_copy,
        read_checkpoint_step,
        save_checkpoint,
        step_checkpoints,
    )
    latest = checkpoint_path(tmp_path)
    for step in (1000, 2000):
        save_checkpoint(latest, char_model, None, step, None, "char")
        keep_step_copy(latest, tmp_path, step)
    save_checkpoint(latest, char_model, None, 2500, None, "char")
    kept = step_checkpoints(tmp_path)
    assert list(kept) == [1000, 2000] and kept[1000].name == "ckpt-0001000.pt"
    assert [read_checkpoint_step(p) for p in kept.values()] == [1000, 2000]  # the links kept the old files
    assert read_checkpoint_step(tmp_path) == 2500


@pytest.mark.parametrize("command", [
    ["chess", "eval", "--checkpoint", "{ckpt}", "--out", "{out}", "--tokenizer", "char", "--step", "7"],
    ["chess", "favor", "--out", "{out}", "--checkpoint={ckpt}", "--tokenizer=char", "--step=7"],
    ["chess", "tsne", "--out", "{out}", "--checkpoint={ckpt}", "--tokenizer=char", "--step=7"],
])
def test_commands_load_peer_checkpoints_through_the_one_loader_with_the_flags(tmp_path, char_model, monkeypatch,
                                                                            capsys, command):
    """eval, favor and tsne read a nanoGPT-layout checkpoint through ``checkpoints.load_model`` and pass
    --tokenizer/--step to it (the command is stopped right after the model is loaded)."""
    from chess_exp.model import checkpoints
    from transcendence.cli import main
    torch.save(_nanogpt_dict(char_model, prefix="_orig_mod."), tmp_path / "ckpt.pt")
    real, seen = checkpoints.load_model, []

    def load_then_stop(*args, **kwargs):
        model, meta = real(*args, **kwargs)
        seen.append((meta["tokenizer"], meta["step"], meta["format"]))
        raise ValueError("stopped after loading")

    monkeypatch.setattr(checkpoints, "load_model", load_then_stop)
    argv = [a.format(ckpt=tmp_path / "ckpt.pt", out=tmp_path / "out") for a in command]
    try:
        rc = main(argv)
    except SystemExit as exc:
        rc = exc.code
    assert rc == 2 and "stopped after loading" in capsys.readouterr().err
    assert seen == [("char", 7, "nanogpt")]
