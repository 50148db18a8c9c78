"""The paper's linear toy model (v4 Fig. 7; docs/paper-notes.md).

Inputs ``x ~ N(0, I_d)`` (d = 100), 10 classes, ground truth ``y*(x) = argmax_c (W* x)_c`` with
``W*`` entries ``N(0, w_scale**2)``. Expert ``j`` (k = 5) is ``W_j = W* + xi_j`` with ``xi_j`` entries
``N(0, sigma**2)`` and answers ``argmax_c (W_j x)_c``. Each of the 10,000 training examples is
labelled by a uniformly random expert. A linear softmax classifier ``softmax(W x)`` (no bias by
default, like the ground truth) is fitted by minimising the mean cross-entropy with SciPy's L-BFGS
(exact gradients; see docs/sweeps.md, linear_toy, for why not torch). Test accuracy is the exact expected
accuracy of temperature sampling on a fresh test set: ``transcendence.temper`` applied to the fitted
class probabilities, in ``logit`` mode (``softmax(W x / tau)``, column ``model_accuracy``, what
models do) and in the paper's ``prob`` mode (``softmax(f / tau)`` on the probabilities, column
``model_accuracy_prob``), against each expert's accuracy.

The learner cannot represent the experts' mixture exactly (a mixture of 5 argmax-linear rules is not
a softmax-linear rule), so unlike the other sweeps the ideal-learner theory does not apply
verbatim; the sweep measures whether the fitted model's argmax still beats the best expert.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp

from sims._common import check_positive, check_temperatures, t_interval
from sims._runner import Task, substreams
from transcendence import expected_reward, mixture, tempered_reward

NAME = "linear_toy"

_TEMPS = (0.0, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0)


@dataclass(frozen=True, kw_only=True)
class LinearToyConfig:
    sigmas: tuple[float, ...] = (0.1, 0.2, 0.4, 0.6)  # std of the experts' weight noise xi (grid axis)
    n_experts: int = 5  # k
    n_features: int = 100  # input dimension d
    n_classes: int = 10  # number of classes
    n_train: int = 10_000  # training examples, each labelled by a uniformly random expert
    n_test: int = 10_000  # fresh test inputs, labelled by the ground truth W*
    w_scale: float = 1.0  # std of the entries of W* (not given in the paper)
    l2: float = 0.0  # L2 penalty (l2 / 2) * ||W||^2 added to the mean cross-entropy
    fit_bias: bool = False  # fit a per-class bias (the ground truth has none)
    max_iter: int = 1000  # L-BFGS iterations at most
    temperatures: tuple[float, ...] = _TEMPS  # sampling temperatures (0 = argmax)
    n_seeds: int = 5  # replicates (W*, experts, data) per sigma
    seed: int = 0  # root seed; replicate s uses SeedSequence(seed).spawn(n_seeds)[s]


CONFIG = LinearToyConfig
PRESETS = {
    "quick": LinearToyConfig(n_seeds=5),
    "full": LinearToyConfig(sigmas=(0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.6, 0.8), n_seeds=10,
                            n_test=20_000),
}


def validate(cfg: LinearToyConfig) -> None:
    if not cfg.sigmas or min(cfg.sigmas) < 0:
        raise ValueError(f"sigmas must be a non-empty list of numbers >= 0, got {cfg.sigmas}")
    for name in ("n_experts", "n_features", "n_train", "n_test", "max_iter"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(cfg, name)}")
    if cfg.n_classes < 2:
        raise ValueError(f"n_classes must be >= 2, got {cfg.n_classes}")
    check_positive("w_scale", cfg.w_scale)
    if cfg.l2 < 0:
        raise ValueError(f"l2 must be >= 0, got {cfg.l2}")
    check_temperatures(cfg.temperatures)


def grid(cfg: LinearToyConfig) -> dict[str, tuple[Any, ...]]:
    return {"sigma": cfg.sigmas}


def fit_softmax_regression(x: np.ndarray, y: np.ndarray, n_classes: int, *, l2: float = 0.0,
                           fit_bias: bool = False, max_iter: int = 1000
                           ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Multinomial logistic regression by L-BFGS on the mean cross-entropy.

    ``x``: ``(n, d)``, ``y``: ``(n,)`` ints. Returns ``(W (C, d), b (C,), info)``; ``b`` is zeros
    unless ``fit_bias``. The loss is ``mean_n [logsumexp(z_n) - z_n[y_n]] + (l2/2) ||W||^2`` with
    ``z = x W^T + b``; its gradient ``x^T (softmax(z) - onehot(y)) / n + l2 W`` is exact.
    """
    n, d = x.shape
    xb = np.hstack([x, np.ones((n, 1))]) if fit_bias else x
    p = xb.shape[1]
    onehot = np.zeros((n, n_classes))
    onehot[np.arange(n), y] = 1.0

    def loss_grad(flat: np.ndarray) -> tuple[float, np.ndarray]:
        w = flat.reshape(n_classes, p)
        z = xb @ w.T  # (n, C)
        lse = logsumexp(z, axis=1)
        loss = float(np.mean(lse - z[np.arange(n), y]))
        probs = np.exp(z - lse[:, None])
        grad = (probs - onehot).T @ xb / n  # (C, p)
        if l2 > 0:
            w_only = w[:, :d]
            loss += 0.5 * l2 * float(np.sum(w_only * w_only))
            grad[:, :d] += l2 * w_only
        return loss, grad.ravel()

    res = minimize(loss_grad, np.zeros(n_classes * p), jac=True, method="L-BFGS-B",
                   options={"maxiter": max_iter, "gtol": 1e-7, "ftol": 1e-12})
    w = res.x.reshape(n_classes, p)
    bias = w[:, d] if fit_bias else np.zeros(n_classes)
    return w[:, :d], bias, {"loss": float(res.fun), "n_iter": int(res.nit),
                            "converged": bool(res.success)}


def one_hot(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """``(..., n)`` int labels -> ``(..., n, n_classes)`` deterministic policies."""
    return (labels[..., None] == np.arange(n_classes)).astype(float)


def run_point(cfg: LinearToyConfig, task: Task) -> list[dict[str, Any]]:
    point, s, seed = task
    sigma = float(point["sigma"])
    # W* and the test set depend only on the replicate, the expert noise is drawn after them
    # (common random numbers across sigma).
    truth_seed, noise_seed, data_seed = substreams(seed, 3)
    rng = np.random.default_rng(truth_seed)
    k, d, c = cfg.n_experts, cfg.n_features, cfg.n_classes
    w_star = cfg.w_scale * rng.standard_normal((c, d))
    x_test = rng.standard_normal((cfg.n_test, d))
    w_experts = w_star[None] + sigma * np.random.default_rng(noise_seed).standard_normal((k, c, d))
    rng = np.random.default_rng(data_seed)
    x_train = rng.standard_normal((cfg.n_train, d))
    who = rng.integers(k, size=cfg.n_train)
    y_train = np.argmax(np.einsum("nd,ncd->nc", x_train, w_experts[who]), axis=1)

    w, b, info = fit_softmax_regression(x_train, y_train, c, l2=cfg.l2, fit_bias=cfg.fit_bias,
                                        max_iter=cfg.max_iter)

    # Evaluation as a transcendence instance: inputs = test points, reward = 1[y = y*(x)].
    y_test = np.argmax(x_test @ w_star.T, axis=1)
    reward = one_hot(y_test, c)  # (n_test, C)
    test_dist = np.full(cfg.n_test, 1.0 / cfg.n_test)
    experts = one_hot(np.argmax(np.einsum("nd,kcd->knc", x_test, w_experts), axis=2), c)
    expert_acc = expected_reward(experts, reward, test_dist)  # (k,)
    vote_acc = float(tempered_reward(mixture(experts), 0.0, reward, test_dist))
    z = x_test @ w.T + b
    probs = np.exp(z - logsumexp(z, axis=1, keepdims=True))  # (n_test, C)
    temps = np.asarray(cfg.temperatures)
    acc = tempered_reward(probs, temps, reward, test_dist, mode="logit")  # (n_t,)
    acc_prob = tempered_reward(probs, temps, reward, test_dist, mode="prob")  # (n_t,)
    train_acc = float(np.mean(np.argmax(x_train @ w.T + b, axis=1) == y_train))
    base = {"sigma": sigma, "seed": s, "best_expert_accuracy": float(expert_acc.max()),
            "mean_expert_accuracy": float(expert_acc.mean()), "vote_accuracy": vote_acc,
            "train_loss": info["loss"], "train_accuracy": train_acc, "n_iter": info["n_iter"],
            "converged": info["converged"]}
    return [{**base, "temperature": float(t), "model_accuracy": float(a),
             "margin": float(a) - float(expert_acc.max()), "model_accuracy_prob": float(a_prob)}
            for t, a, a_prob in zip(cfg.temperatures, acc, acc_prob)]


def summarize(rows: list[dict[str, Any]], cfg: LinearToyConfig) -> dict[str, Any]:
    """Per sigma: mean and 95% t-interval over seeds of the best expert's accuracy, the model's
    accuracy at the lowest temperature and at tau = 0.5 and 1, and the paired margin."""
    out: dict[str, Any] = {}
    t_low = min(cfg.temperatures)
    for sigma in cfg.sigmas:
        sel = [r for r in rows if r["sigma"] == sigma]
        entry: dict[str, Any] = {}
        low = [r for r in sel if r["temperature"] == t_low]
        for name, values in (("best_expert_accuracy", [r["best_expert_accuracy"] for r in low]),
                             ("vote_accuracy", [r["vote_accuracy"] for r in low]),
                             (f"model_accuracy_tau={t_low}", [r["model_accuracy"] for r in low]),
                             (f"margin_tau={t_low}", [r["margin"] for r in low])):
            mean, half = t_interval(np.array(values))
            entry[name] = {"mean": float(mean), "ci95": float(half)}
        for t in cfg.temperatures:
            if t in (0.5, 1.0):
                for col in ("model_accuracy", "model_accuracy_prob"):
                    mean, half = t_interval(np.array([r[col] for r in sel if r["temperature"] == t]))
                    entry[f"{col}_tau={t}"] = {"mean": float(mean), "ci95": float(half)}
        margins = np.array([r["margin"] for r in low])
        mean, half = t_interval(margins)
        entry["transcends"] = bool(mean - half > 0) if np.isfinite(half) else bool(mean > 0)
        entry["fraction_seeds_transcending"] = float(np.mean(margins > 0))
        out[f"sigma={sigma}"] = entry
    return out
