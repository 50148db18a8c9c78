"""Benchmark: expected reward of the tempered mixture at 64 temperatures (k=16, n_x=4096, n_y=256).

Compares, in the same run:
  ours (composed): expected_reward(temper(mixture(experts), taus), reward, test)
  ours (fused):    tempered_reward(mixture(experts), taus, reward, test)
  baseline (a):    a per-temperature loop with scipy.special.softmax
  floor (b):       one numpy.exp over n_t * n_x * n_y values
Reports best-of-N wall times, the ratios, and peak memory (tracemalloc, which sees NumPy's buffers)
against the size of the experts array.

    .venv/bin/python benchmarks/core.py [--repeats 3] [--small]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
from scipy.special import softmax

import transcendence as tr


def baseline_loop(experts, taus, reward, test):
    f_hat = experts.mean(axis=0)
    with np.errstate(divide="ignore"):
        logf = np.log(f_hat)
    out = np.empty(len(taus))
    for j, tau in enumerate(taus):
        pol = softmax(logf / tau, axis=-1)
        out[j] = test @ (pol * reward).sum(axis=-1)
    return out


def composed(experts, taus, reward, test):
    return tr.expected_reward(tr.temper(tr.mixture(experts), taus), reward, test)


def fused(experts, taus, reward, test):
    return tr.tempered_reward(tr.mixture(experts), taus, reward, test)


def floor(values):
    return np.exp(values)


def measure(fn, *args, repeats):
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn(*args)
        best = min(best, time.perf_counter() - t0)
    tracemalloc.start()
    fn(*args)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return best, peak, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--small", action="store_true", help="k=4, n_x=512: a quick smoke run")
    args = ap.parse_args()
    k, n_x, n_y, n_t = (4, 512, 256, 64) if args.small else (16, 4096, 256, 64)
    rng = np.random.default_rng(0)
    experts = rng.dirichlet(np.ones(n_y), size=(k, n_x))
    reward = rng.random((n_x, n_y))
    test = np.full(n_x, 1.0 / n_x)
    taus = np.logspace(-3, 1, n_t)
    values = rng.standard_normal((n_t, n_x, n_y))

    t_base, m_base, r_base = measure(baseline_loop, experts, taus, reward, test, repeats=args.repeats)
    t_comp, m_comp, r_comp = measure(composed, experts, taus, reward, test, repeats=args.repeats)
    t_fused, m_fused, r_fused = measure(fused, experts, taus, reward, test, repeats=args.repeats)
    t_floor, m_floor, _ = measure(floor, values, repeats=args.repeats)
    assert np.allclose(r_comp, r_base, atol=1e-10) and np.allclose(r_fused, r_base, atol=1e-10)

    mb = 1 / 2**20
    e_size = experts.nbytes
    print(f"k={k} n_x={n_x} n_y={n_y} n_t={n_t}; experts array {e_size * mb:.0f} MiB; best of {args.repeats}")
    print(f"{'method':<44}{'time (s)':>10}{'peak MiB':>10}{'peak/experts':>14}")
    for name, t, m in (("baseline (a): loop + scipy.special.softmax", t_base, m_base),
                       ("floor (b): one numpy.exp over n_t*n_x*n_y", t_floor, m_floor),
                       ("ours, composed: expected_reward(temper(...))", t_comp, m_comp),
                       ("ours, fused: tempered_reward(...)", t_fused, m_fused)):
        print(f"{name:<44}{t:>10.3f}{m * mb:>10.0f}{m / e_size:>14.2f}")
    print(f"composed: {t_base / t_comp:.2f}x faster than (a) [target >= 3], {t_comp / t_floor:.2f}x the floor (b) [target <= 2]")
    print(f"fused:    {t_base / t_fused:.2f}x faster than (a) [target >= 3], {t_fused / t_floor:.2f}x the floor (b) [target <= 2]")


if __name__ == "__main__":
    main()
