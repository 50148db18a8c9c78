"""t-SNE of the model's last hidden layer over positions from held-out games (Fig. 3; docs/paper-notes.md).

Positions are drawn from the sample's held-out games (``chess_exp.data.readers.split_of(game_id) == "val"``, the
games the model's training never saw), a few per game. Each position's representation is the
model's last hidden layer (after the final LayerNorm, ``GPT.hidden_states``) at the last token of
the game's prefix up to that position, i.e. where the model is about to predict the next move.

Colours: the side to move, Stockfish's expected score for White in the position (the lichess server evaluation
stored in the data after the previous move, converted with python-chess's lichess WDL model; the
paper colours by win probability), and the game's length in plies. The paper's claim is that
positions of similar value cluster although the model never saw a reward; besides the picture we
measure it: the R² of a ridge probe from the hidden state to the value (held-out positions) and the
correlation between a point's value and the mean value of its 10 nearest neighbours in the map.

Two backends (``--backend``). ``numpy`` (the default, no extra dependency): :func:`tsne` is a small
exact t-SNE in NumPy (PCA to 50 dimensions, perplexity calibration by bisection, early exaggeration,
momentum gradient descent; O(N²) memory and time per iteration, fine for a few thousand points), with
a closed-form ridge probe and brute-force neighbours. ``sklearn``: scikit-learn's PCA, Barnes-Hut
t-SNE, ``Ridge`` and ``NearestNeighbors``, the reference implementations, for larger maps or to compare;
it needs the optional extra (``pip install -e '.[analysis]'``) and is imported only when asked for.

Writes ``<out>/embedding.npz``, ``<out>/results.json``, ``<out>/config.json``.
Figure: ``paper_figs/analysis_tsne.py``.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import chess
import numpy as np

from chess_exp.analysis import _cli
from chess_exp.analysis.games_io import in_cap, iter_games, sample_pgn
from chess_exp.analysis.reward import eval_to_reward

__all__ = ["TsneConfig", "tsne", "pca", "conditional_probabilities", "ridge_probe_r2", "knn_smoothness",
           "run_tsne", "add_arguments", "main"]


@dataclass(frozen=True, kw_only=True)
class TsneConfig:
    checkpoint: str = "runs/small_cpu-1300"  # checkpoint file or training run dir
    tokenizer: str | None = None  # override the checkpoint's tokenizer (nanoGPT-style checkpoints: char)
    step: int | None = None  # override the checkpoint's training step (nanoGPT-style: iter_num)
    data: str = ""  # the sample directory or a .pgn[.xz] with [%eval] comments ("" = default)
    cap: int = 0  # only held-out games with both players rated <= cap (0 = every rating)
    val_fraction: float = 0.05  # the held-out share used by `chess prepare` (chess_exp.data.readers.split_of)
    n_positions: int = 2000  # points in the map
    per_game: int = 2  # positions drawn per held-out game
    min_ply: int = 1  # earliest ply (0 = start position has no eval)
    perplexity: float = 30.0  # t-SNE perplexity
    n_iter: int = 1000  # gradient steps
    pca_dims: int = 50  # PCA before t-SNE (0 = none)
    seed: int = 0  # position sampling and t-SNE initialisation
    backend: str = "numpy"  # "numpy" (exact t-SNE, no extra dependency) or "sklearn" (needs the `analysis` extra)
    device: str = "cpu"  # torch device for the model
    threads: int = 1  # torch threads


# ----------------------------------------------------------------------------------- t-SNE ------

BACKENDS = ("numpy", "sklearn")


def _check_backend(backend: str) -> None:
    """Refuse an unknown backend, or ``sklearn`` when scikit-learn is not installed, with a one-line reason."""
    if backend not in BACKENDS:
        raise ValueError(f"backend: must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "sklearn":
        try:
            import sklearn  # noqa: F401
        except ImportError:
            raise ValueError("backend: 'sklearn' needs scikit-learn, which is not installed; install the "
                             "optional extra with `pip install -e '.[analysis]'` or use --backend=numpy") from None


def pca(x: np.ndarray, dims: int) -> np.ndarray:
    """Project the centred rows of ``x`` (n, d) on their top ``dims`` principal axes."""
    xc = x - x.mean(axis=0)
    if dims <= 0 or dims >= x.shape[1]:
        return xc
    _, _, vt = np.linalg.svd(xc, full_matrices=False)
    return xc @ vt[:dims].T


def _sq_distances(x: np.ndarray) -> np.ndarray:
    s = (x * x).sum(1)
    d = s[:, None] + s[None, :] - 2.0 * x @ x.T
    np.maximum(d, 0.0, out=d)
    np.fill_diagonal(d, 0.0)
    return d


def conditional_probabilities(x: np.ndarray, perplexity: float, *, tol: float = 1e-5,
                              max_steps: int = 100) -> np.ndarray:
    """p_{j|i} with a per-point Gaussian width chosen so that 2^{H(P_i)} = ``perplexity`` (bisection).

    Returns the row-stochastic (n, n) matrix with a zero diagonal.
    """
    n = x.shape[0]
    if not 1.0 < perplexity < n:
        raise ValueError(f"perplexity: must be in (1, n_points={n}), got {perplexity}")
    d = _sq_distances(x)
    target = np.log(perplexity)  # entropy in nats
    p = np.zeros((n, n))
    for i in range(n):
        di = np.delete(d[i], i)
        lo, hi, beta = 0.0, np.inf, 1.0 / max(np.median(di), 1e-12)
        for _ in range(max_steps):
            w = np.exp(-(di - di.min()) * beta)
            sw = w.sum()
            h = np.log(sw) + beta * ((di - di.min()) * w).sum() / sw
            if abs(h - target) < tol:
                break
            if h > target:  # too flat: narrower kernel
                lo = beta
                beta = beta * 2 if hi == np.inf else (beta + hi) / 2
            else:
                hi = beta
                beta = (beta + lo) / 2
        p[i, np.arange(n) != i] = w / sw
    return p


def tsne(x: np.ndarray, *, rng: np.random.Generator, perplexity: float = 30.0, n_iter: int = 1000,
         pca_dims: int = 50, early_exaggeration: float = 12.0, exaggeration_iters: int = 250,
         learning_rate: float | None = None, progress: bool = False, backend: str = "numpy") -> np.ndarray:
    """Exact t-SNE (van der Maaten & Hinton 2008) of the rows of ``x`` (n, d) -> (n, 2).

    Gradient :math:`4 \\sum_j (p_{ij} - q_{ij}) (y_i - y_j) (1 + \\|y_i - y_j\\|^2)^{-1}` with
    symmetrised :math:`p_{ij} = (p_{j|i} + p_{i|j}) / 2n`, momentum 0.5 then 0.8, gains as in the
    reference implementation, learning rate ``max(n / early_exaggeration / 4, 50)`` by default.
    ``backend="sklearn"``: scikit-learn's PCA and Barnes-Hut ``TSNE`` with the same perplexity,
    exaggeration and number of steps, seeded from ``rng``.
    """
    _check_backend(backend)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 5:
        raise ValueError(f"x: need a (n >= 5, d) array, got shape {x.shape}")
    n = x.shape[0]
    if backend == "sklearn":
        from sklearn.decomposition import PCA
        from sklearn.manifold import TSNE

        seed = int(rng.integers(2**31 - 1))
        z = x - x.mean(axis=0)
        if 0 < pca_dims < min(x.shape):
            z = PCA(n_components=pca_dims, random_state=seed).fit_transform(x)
        return TSNE(n_components=2, perplexity=min(perplexity, (n - 1) / 3), early_exaggeration=early_exaggeration,
                    max_iter=max(n_iter, 250), learning_rate="auto" if learning_rate is None else learning_rate,
                    init="pca", random_state=seed).fit_transform(z)
    z = pca(x, pca_dims)
    z = z / max(np.abs(z).max(), 1e-12)
    p = conditional_probabilities(z, min(perplexity, (n - 1) / 3))
    p = (p + p.T) / (2.0 * n)
    np.maximum(p, 1e-12, out=p)
    lr = learning_rate if learning_rate is not None else max(n / early_exaggeration / 4.0, 50.0)
    y = rng.normal(0.0, 1e-4, size=(n, 2))
    update = np.zeros_like(y)
    gains = np.ones_like(y)
    steps = range(n_iter)
    if progress:
        from tqdm import tqdm
        steps = tqdm(steps, desc="t-SNE", unit="step", mininterval=5.0)
    for it in steps:
        exag = early_exaggeration if it < exaggeration_iters else 1.0
        num = 1.0 / (1.0 + _sq_distances(y))
        np.fill_diagonal(num, 0.0)
        q = np.maximum(num / num.sum(), 1e-12)
        w = (exag * p - q) * num  # (n, n)
        grad = 4.0 * (w.sum(1)[:, None] * y - w @ y)
        momentum = 0.5 if it < exaggeration_iters else 0.8
        same = np.sign(grad) == np.sign(update)
        gains = np.where(same, gains * 0.8, gains + 0.2)
        np.maximum(gains, 0.01, out=gains)
        update = momentum * update - lr * gains * grad
        y = y + update
        y = y - y.mean(0)
    return y


# ------------------------------------------------------------------------------ measurements ----

def _ridge_fit(h: np.ndarray, v: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mu, sd = h.mean(0), h.std(0) + 1e-8
    a = np.c_[(h - mu) / sd, np.ones(h.shape[0])]
    reg = alpha * np.eye(a.shape[1])
    reg[-1, -1] = 0.0
    return np.linalg.solve(a.T @ a + reg, a.T @ v), mu, sd


def _r2(v: np.ndarray, pred: np.ndarray) -> float:
    ss_tot = ((v - v.mean()) ** 2).sum()
    return float(1.0 - ((v - pred) ** 2).sum() / ss_tot) if ss_tot > 0 else float("nan")


def ridge_probe_r2(h: np.ndarray, v: np.ndarray, *, rng: np.random.Generator,
                   alphas: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0),
                   test_fraction: float = 0.3, backend: str = "numpy") -> float:
    """R² on held-out points of a ridge regression from hidden states ``h`` (n, C) to ``v`` (n,).

    The penalty is chosen from ``alphas`` on a quarter of the training points, then refitted.
    Features are standardised and the intercept is not penalised; ``backend="sklearn"`` fits
    scikit-learn's ``Ridge`` on the same split.
    """
    _check_backend(backend)
    n = h.shape[0]
    perm = rng.permutation(n)
    n_test = max(1, int(round(test_fraction * n)))
    test, train = perm[:n_test], perm[n_test:]
    n_val = max(1, train.size // 4)
    fit, val = train[n_val:], train[:n_val]

    if backend == "sklearn":
        from sklearn.linear_model import Ridge

        def fitted(a: float, idx: np.ndarray):
            mu, sd = h[idx].mean(0), h[idx].std(0) + 1e-8
            model = Ridge(alpha=a).fit((h[idx] - mu) / sd, v[idx])
            return lambda j: model.predict((h[j] - mu) / sd)

        best_sk = max(alphas, key=lambda a: _r2(v[val], fitted(a, fit)(val)))
        return _r2(v[test], fitted(best_sk, train)(test))

    def predict(coef, mu, sd, idx):
        return np.c_[(h[idx] - mu) / sd, np.ones(idx.size)] @ coef

    best = max(alphas, key=lambda a: _r2(v[val], predict(*_ridge_fit(h[fit], v[fit], a), val)))
    return _r2(v[test], predict(*_ridge_fit(h[train], v[train], best), test))


def knn_smoothness(y: np.ndarray, v: np.ndarray, k: int = 10, *, backend: str = "numpy") -> float:
    """Pearson correlation between each point's value and the mean value of its k nearest neighbours."""
    _check_backend(backend)
    if backend == "sklearn":
        from sklearn.neighbors import NearestNeighbors

        nn = NearestNeighbors(n_neighbors=k + 1).fit(y).kneighbors(y, return_distance=False)
        nn = np.array([[j for j in row if j != i][:k] for i, row in enumerate(nn)])
        return float(np.corrcoef(v, v[nn].mean(1))[0, 1])
    d = _sq_distances(y)
    np.fill_diagonal(d, np.inf)
    nn = np.argpartition(d, k, axis=1)[:, :k]
    return float(np.corrcoef(v, v[nn].mean(1))[0, 1])


# ------------------------------------------------------------------------------------ run ---------

def plies_fitting(tokenizer, sans: tuple[str, ...] | list[str], block_size: int) -> int:
    """The number of plies ``i`` (0 <= i < n) whose prefix ``tokenizer.prefix(sans[:i])`` fits in ``block_size`` tokens.

    Prefix lengths grow with ``i`` (one token per ply for ``move``, several for ``char``), so this is a
    bisection; positions past the model's context would need cropping, which changes the hidden state.
    """
    lo, hi = 0, len(sans)  # invariant: prefix(sans[:lo]) fits (the empty game does), or lo == 0
    if len(tokenizer.prefix(tuple(sans[:0]))) > block_size:
        return 0
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if len(tokenizer.prefix(tuple(sans[:mid]))) <= block_size:
            lo = mid
        else:
            hi = mid - 1
    return lo + 1 if lo < len(sans) else len(sans)


def collect_positions(cfg: TsneConfig, tokenizer, block_size: int, *, rng: np.random.Generator) -> list[dict]:
    from chess_exp.data.readers import split_of

    out: list[dict] = []
    for game in iter_games(cfg.data or None, keep_evals=True):
        if split_of(game.game_id, cfg.val_fraction) != "val" or (cfg.cap and not in_cap(game, cfg.cap)):
            continue
        n = plies_fitting(tokenizer, game.sans, block_size - 1)  # one token short of the context, as always
        evals = game.evals or ()  # read with keep_evals=True: one entry per ply
        plies = [i for i in range(cfg.min_ply, n) if i >= 1 and i - 1 < len(evals) and evals[i - 1] is not None]
        if not plies:
            continue
        for i in sorted(rng.choice(plies, size=min(cfg.per_game, len(plies)), replace=False)):
            board_turn = chess.WHITE if i % 2 == 0 else chess.BLACK
            out.append({"sans": game.sans, "ply": int(i), "game_length": len(game.sans),
                        "value_white": eval_to_reward(evals[i - 1], chess.WHITE),
                        "turn_white": board_turn == chess.WHITE, "game_id": game.game_id,
                        "white_elo": game.white_elo, "black_elo": game.black_elo})
        if len(out) >= cfg.n_positions:
            break
    return out[: cfg.n_positions]


def hidden_for(model, tokenizer, positions: list[dict]) -> np.ndarray:
    """Last-layer hidden state at the end of each position's prefix, (n, C)."""
    import torch

    by_game: dict[str, list[int]] = {}
    for k, p in enumerate(positions):
        by_game.setdefault(p["game_id"], []).append(k)
    device = model.lm_head.weight.device
    out = np.zeros((len(positions), model.config.n_embd), dtype=np.float32)
    for ks in by_game.values():
        sans = positions[ks[0]]["sans"]
        longest = max(positions[k]["ply"] for k in ks)
        tokens = tokenizer.prefix(tuple(sans[:longest]))
        hs = model.hidden_states(torch.tensor([tokens], dtype=torch.long, device=device))[0]  # (T, C)
        for k in ks:
            pre = tokenizer.prefix(tuple(sans[:positions[k]["ply"]]))
            if tokens[:len(pre)] != pre:  # not a prefix (should not happen): run it alone
                h = model.hidden_states(torch.tensor([pre], dtype=torch.long, device=device))[0, -1]
            else:
                h = hs[len(pre) - 1]
            out[k] = h.float().cpu().numpy()
    return out


def run_tsne(cfg: TsneConfig, out: str | Path, *, progress: bool = True) -> dict:
    import torch

    from chess_exp.data.tokenizers import get_tokenizer
    from chess_exp.model.checkpoints import load_model

    _check_backend(cfg.backend)  # before any work
    sample_pgn(cfg.data or None)  # a missing --data is reported before anything is written
    torch.set_num_threads(cfg.threads)
    model, meta = load_model(cfg.checkpoint, device=cfg.device, tokenizer=cfg.tokenizer, step=cfg.step)
    run_dir = _cli.start_run(out, cfg)  # after the checkpoint loaded: a bad --checkpoint leaves nothing behind
    tokenizer = get_tokenizer(meta["tokenizer"])
    rng = np.random.default_rng(cfg.seed)
    positions = collect_positions(cfg, tokenizer, model.config.block_size, rng=rng)
    if len(positions) < 10:
        raise ValueError(f"only {len(positions)} held-out positions found; lower --cap or check --data")
    if progress:
        print(f"{len(positions)} positions from held-out games; hidden states...", file=sys.stderr)
    h = hidden_for(model, tokenizer, positions)
    if progress:
        print(f"t-SNE of {h.shape[0]} x {h.shape[1]} ({cfg.n_iter} iterations)...", file=sys.stderr)
    y = tsne(h, rng=rng, perplexity=cfg.perplexity, n_iter=cfg.n_iter, pca_dims=cfg.pca_dims,
             progress=progress, backend=cfg.backend)
    be = cfg.backend
    value = np.array([p["value_white"] for p in positions])
    length = np.array([p["game_length"] for p in positions])
    ply = np.array([p["ply"] for p in positions])
    turn = np.array([p["turn_white"] for p in positions])
    mover_value = np.where(turn, value, 1 - value)
    decided = np.abs(value - 0.5)
    results = {
        "n_positions": len(positions), "n_games": len({p["game_id"] for p in positions}),
        "hidden_size": int(h.shape[1]), "model": {"checkpoint": cfg.checkpoint, "step": meta.get("step"),
                                                   "tokenizer": meta["tokenizer"]},
        "colour": "White's expected score from the data's [%eval] (lichess server Stockfish), lichess WDL",
        "ridge_probe_r2": {"turn_white": ridge_probe_r2(h, turn.astype(float), rng=rng, backend=be),
                           "value_white": ridge_probe_r2(h, value, rng=rng, backend=be),
                           "value_mover": ridge_probe_r2(h, mover_value, rng=rng, backend=be),
                           "decidedness_abs": ridge_probe_r2(h, decided, rng=rng, backend=be),
                           "game_length": ridge_probe_r2(h, length.astype(float), rng=rng, backend=be),
                           "ply": ridge_probe_r2(h, ply.astype(float), rng=rng, backend=be)},
        "knn10_corr_in_map": {"value_white": knn_smoothness(y, value, backend=be), "value_mover": knn_smoothness(y, mover_value, backend=be),
                              "decidedness_abs": knn_smoothness(y, decided, backend=be),
                              "turn_white": knn_smoothness(y, turn.astype(float), backend=be),
                              "game_length": knn_smoothness(y, length.astype(float), backend=be),
                              "ply": knn_smoothness(y, ply.astype(float), backend=be)},
        "corr_game_length_vs_decidedness": float(np.corrcoef(length, decided)[0, 1]),
    }
    # control: the same architecture, randomly initialised (is the structure learned?)
    from chess_exp.model.gpt import GPT

    torch.manual_seed(cfg.seed)
    control = GPT(model.config).to(cfg.device).eval()
    h0 = hidden_for(control, tokenizer, positions)
    targets = {"turn_white": turn.astype(float), "value_white": value, "value_mover": mover_value, "decidedness_abs": decided,
               "game_length": length.astype(float), "ply": ply.astype(float)}
    results["ridge_probe_r2_random_init_control"] = {
        k: ridge_probe_r2(h0, v, rng=np.random.default_rng(cfg.seed), backend=be) for k, v in targets.items()}
    np.savez_compressed(run_dir / "embedding.npz", y=y, value_white=value, game_length=length, ply=ply,
                        turn_white=turn)
    _cli.write_json(run_dir / "results.json", results)
    return results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _cli.add_config_arguments(parser, TsneConfig(), "runs/tsne")


def main(args: argparse.Namespace) -> int:
    cfg = _cli.resolve_config(TsneConfig(), args)
    res = _cli.run_or_report(run_tsne, cfg, args.out)
    if res is None:
        return 2
    print(f"{res['n_positions']} positions from {res['n_games']} held-out games")
    print(f"ridge probe R² (held-out 30%): {res['ridge_probe_r2']}")
    print(f"ridge probe R², random-init control: {res['ridge_probe_r2_random_init_control']}")
    print(f"10-NN correlation in the map: {res['knn10_corr_in_map']}")
    print(f"wrote {args.out}/embedding.npz, results.json")
    return 0
