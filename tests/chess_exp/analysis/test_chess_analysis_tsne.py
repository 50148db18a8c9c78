"""Tests for chess_exp.analysis.tsne: the NumPy t-SNE, perplexity calibration, probes, hidden states."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from chess_exp.analysis import tsne as T


def _blobs(n_per=40, k=4, d=20, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * 6
    labels = np.repeat(np.arange(k), n_per)
    return centres[labels] + rng.normal(size=(k * n_per, d)), labels


def test_perplexity_calibration():
    """Every row of P has perplexity 2^H(P_i) equal to the requested one."""
    x, _ = _blobs()
    p = T.conditional_probabilities(x, 15.0)
    assert np.allclose(p.sum(1), 1.0) and np.all(np.diag(p) == 0)
    h = -(p * np.log2(np.where(p > 0, p, 1.0))).sum(1)
    assert np.allclose(2 ** h, 15.0, rtol=1e-3)
    with pytest.raises(ValueError, match="perplexity"):
        T.conditional_probabilities(x, 1000.0)


def test_tsne_separates_clusters():
    x, labels = _blobs()
    y = T.tsne(x, rng=np.random.default_rng(1), perplexity=15, n_iter=500)
    d = ((y[:, None] - y[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    assert (labels[d.argmin(1)] == labels).mean() == 1.0  # 1-NN in the map recovers the clusters
    assert T.knn_smoothness(y, labels.astype(float)) > 0.99
    y2 = T.tsne(x, rng=np.random.default_rng(1), perplexity=15, n_iter=500)
    assert np.array_equal(y, y2)  # same seed, same map


def test_ridge_probe_and_pca():
    rng = np.random.default_rng(0)
    h = rng.normal(size=(500, 8))
    v = h @ rng.normal(size=8) + 0.01 * rng.normal(size=500)
    assert T.ridge_probe_r2(h, v, rng=np.random.default_rng(1)) > 0.99
    assert T.ridge_probe_r2(h, rng.normal(size=500), rng=np.random.default_rng(1)) < 0.1
    z = T.pca(h, 3)
    assert z.shape == (500, 3) and np.allclose(z.mean(0), 0)
    assert np.all(np.diff(z.var(0)) <= 1e-12)  # components in order of variance


@pytest.mark.parametrize("name", ["move", "char"])
def test_hidden_for_matches_a_direct_forward(name, tokenizer, tiny_gpt):
    tok = tokenizer(name)
    model = tiny_gpt(name)
    sans = tuple("e4 e5 Nf3 Nc6 Bb5 a6 Ba4 Nf6".split())
    positions = [{"game_id": "g", "sans": sans, "ply": i} for i in (1, 4, 7)]
    h = T.hidden_for(model, tok, positions)
    for k, p in enumerate(positions):
        direct = model.hidden_states(torch.tensor([tok.prefix(sans[:p["ply"]])]))[0, -1].numpy()
        assert np.allclose(h[k], direct, atol=1e-5)


# --- the optional scikit-learn backend -----------------------------------------------------------

def test_sklearn_backend_separates_clusters_and_agrees_with_numpy_on_probes():
    pytest.importorskip("sklearn")
    x, labels = _blobs(n_per=25)
    y = T.tsne(x, rng=np.random.default_rng(1), perplexity=10, n_iter=400, backend="sklearn")
    d = ((y[:, None] - y[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    assert y.shape == (100, 2) and (labels[d.argmin(1)] == labels).mean() == 1.0
    # the closed-form ridge probe and brute-force neighbours give the reference implementations' answers
    rng = np.random.default_rng(0)
    h = rng.normal(size=(400, 12))
    v = h @ rng.normal(size=12) + rng.normal(size=400)
    r_np = T.ridge_probe_r2(h, v, rng=np.random.default_rng(3))
    r_sk = T.ridge_probe_r2(h, v, rng=np.random.default_rng(3), backend="sklearn")
    assert r_sk == pytest.approx(r_np, abs=1e-6) and 0.8 < r_np < 0.98
    pts, vals = rng.normal(size=(300, 2)), rng.normal(size=300)
    assert T.knn_smoothness(pts, vals, backend="sklearn") == pytest.approx(T.knn_smoothness(pts, vals), abs=1e-12)


def test_backend_errors_are_one_clear_line(monkeypatch):
    x, _ = _blobs()
    with pytest.raises(ValueError, match="backend: must be one of numpy, sklearn"):
        T.tsne(x, rng=np.random.default_rng(0), backend="opentsne")
    monkeypatch.setitem(__import__("sys").modules, "sklearn", None)  # as if scikit-learn were not installed
    with pytest.raises(ValueError, match=r"needs scikit-learn.*\.\[analysis\]"):
        T.tsne(x, rng=np.random.default_rng(0), backend="sklearn")
    with pytest.raises(ValueError, match="needs scikit-learn"):
        T.run_tsne(T.TsneConfig(checkpoint="does-not-exist", backend="sklearn"), "unused-out-dir", progress=False)


@pytest.mark.parametrize("name", ["move", "char"])
def test_plies_fitting_keeps_every_prefix_inside_the_context(name, tokenizer):
    tok = tokenizer(name)
    sans = tuple("e4 e5 Nf3 Nc6 Bb5 a6 Ba4 Nf6 O-O Be7 Re1 b5 Bb3 d6 c3 O-O h3 Nb8 d4 Nbd7".split())
    for budget in (1, 5, 17, 40, 63, 500):
        n = T.plies_fitting(tok, sans, budget)
        lengths = [len(tok.prefix(sans[:i])) for i in range(len(sans))]  # counted directly
        assert n == sum(1 for L in lengths if L <= budget)  # lengths only grow, so this is a prefix
    # the move tokenizer: one start token plus one per ply
    if name == "move":
        assert T.plies_fitting(tok, sans, 10) == 10
