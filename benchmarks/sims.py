"""Benchmark the sweeps: wall time of each preset on N workers, and the parallel runner's speed-up
over one process, measured in the same run (same machine, same moment, same numbers checked).

    .venv/bin/python benchmarks/sims.py                      # full presets, 2 workers vs 1
    .venv/bin/python benchmarks/sims.py --preset quick --sweeps linear_toy,finite_sample

The N-worker run of each sweep writes its real results to ``<out>/<sweep>/`` (default
``runs/<sweep>``, what the figure scripts read); the one-process run goes to a temporary directory
and must give byte-identical ``results.csv`` (the runner's determinism, checked at full size).
It also times the linear toy's softmax-regression fit with SciPy L-BFGS (what ``sims.linear_toy``
uses) against ``torch.optim.LBFGS`` on the same problem, and the cost of importing torch in a
fresh process (paid once per worker if the fit used torch).

Results: a Markdown table on stdout and ``<out>/bench_sims.json``. Besides wall time it records the
CPU seconds of all processes (``getrusage``) and so the cores each run actually obtained
(CPU / wall), and the load average: on a shared machine wall times are inflated by other users'
work and a pool may not get its cores. ``speed-up if cores were free`` = workers x serial CPU /
pool CPU is derived from those CPU times (the pool's overhead included), not measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# This file is named like the package it measures: drop its own folder from the import path so
# that `import sims` finds the package, not this script.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from sims import SWEEPS, get_sweep, run_sweep  # noqa: E402


def _core_fingerprint() -> str:
    """Hash of the transcendence/ and sims/ sources. Workers are spawned fresh and import the files
    on disk, the parent imported them at start: an edit in between (shared working tree) makes
    the one-process and the pool runs use different code."""
    import hashlib

    import transcendence

    digest = hashlib.sha256()
    for pkg in (Path(transcendence.__file__).parent, Path(__file__).resolve().parents[1] / "sims"):
        for path in sorted(pkg.glob("*.py")):
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _cpu_seconds() -> float:
    """User + system CPU of this process and its reaped children (the pool's workers)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _time_sweep(name: str, preset: str, out_dir: Path, workers: int) -> tuple[float, float, bytes]:
    """Wall seconds, CPU seconds (all processes) and the results file of one run."""
    cfg = get_sweep(name).PRESETS[preset]
    cpu0, start = _cpu_seconds(), time.perf_counter()
    run_sweep(name, cfg, out_dir=out_dir, workers=workers, progress=False)
    wall, cpu = time.perf_counter() - start, _cpu_seconds() - cpu0
    return wall, cpu, (out_dir / "results.csv").read_bytes()


def _fit_problem(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The linear toy's training set at sigma = 0.2 (10,000 x 100, 10 classes, 5 experts)."""
    rng = np.random.default_rng(seed)
    w_star = rng.standard_normal((10, 100))
    w_experts = w_star[None] + 0.2 * rng.standard_normal((5, 10, 100))
    x = rng.standard_normal((10_000, 100))
    who = rng.integers(5, size=10_000)
    y = np.argmax(np.einsum("nd,ncd->nc", x, w_experts[who]), axis=1)
    return x, y


def _compare_fits(repeats: int) -> dict[str, float]:
    from sims.linear_toy import fit_softmax_regression

    x, y = _fit_problem()
    scipy_times = []
    for _ in range(repeats):
        start = time.perf_counter()
        w_scipy, _, info = fit_softmax_regression(x, y, 10)
        scipy_times.append(time.perf_counter() - start)
    out = {"scipy_lbfgs_s": float(np.median(scipy_times)), "scipy_iterations": info["n_iter"],
           "scipy_loss": info["loss"]}
    code = "import time; t = time.perf_counter(); import torch; print(time.perf_counter() - t)"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    out["torch_import_s"] = float(res.stdout.strip()) if res.returncode == 0 else float("nan")
    try:
        import torch
    except ImportError:  # pragma: no cover
        return out
    torch.set_num_threads(1)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    torch_times = []
    for _ in range(repeats):
        w = torch.zeros(10, 100, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS([w], lr=1, max_iter=1000, tolerance_grad=1e-7,
                                tolerance_change=1e-12, history_size=10, line_search_fn="strong_wolfe")

        def closure(opt: torch.optim.Optimizer = opt, w: torch.Tensor = w) -> torch.Tensor:
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(xt @ w.T, yt)
            loss.backward()
            return loss

        start = time.perf_counter()
        opt.step(closure)
        torch_times.append(time.perf_counter() - start)
    with torch.no_grad():
        out["torch_loss"] = float(torch.nn.functional.cross_entropy(xt @ w.T, yt))
    out["torch_lbfgs_s"] = float(np.median(torch_times))
    out["torch_iterations"] = int(opt.state[w]["n_iter"])
    out["max_abs_weight_difference"] = float(np.abs(w.detach().numpy() - w_scipy).max())
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", choices=("quick", "full"), default="full")
    p.add_argument("--sweeps", default=",".join(SWEEPS), help="comma-separated (default: all six)")
    p.add_argument("--workers", type=int, default=2, help="parallel workers to time (default 2)")
    p.add_argument("--out", default="runs", help="root for <sweep>/ results and bench_sims.json")
    p.add_argument("--no-serial", action="store_true", help="skip the one-process runs")
    p.add_argument("--fit-repeats", type=int, default=3, help="repeats of each fit (0: skip)")
    args = p.parse_args(argv)
    names = [n for n in args.sweeps.split(",") if n]
    for name in names:
        get_sweep(name)  # unknown names fail before any work
    out_root = Path(args.out)
    record: dict = {"preset": args.preset, "workers": args.workers, "cpus": os.cpu_count(),
                    "python": platform.python_version(), "load_before": os.getloadavg(),
                    "sweeps": {}}
    w = args.workers
    print(f"| sweep | preset | wall, {w} workers (s) | wall, 1 process (s) | wall speed-up | "
          f"CPU, {w} workers (s) | CPU, 1 process (s) | cores obtained ({w} w / 1 p) | "
          f"speed-up if {w} cores were free | load at start | identical |")
    print("|---|---|---:|---:|---:|---:|---:|---|---:|---|---|")
    nan = float("nan")
    fingerprint = record["code_fingerprint"] = _core_fingerprint()
    for name in names:
        load = os.getloadavg()[0]
        par, par_cpu, par_csv = _time_sweep(name, args.preset, out_root / name, w)
        entry = {"parallel_s": par, "parallel_cpu_s": par_cpu, "load_1min_at_start": load}
        if not args.no_serial:
            load_serial = os.getloadavg()[0]
            with tempfile.TemporaryDirectory() as tmp:
                ser, ser_cpu, ser_csv = _time_sweep(name, args.preset, Path(tmp), 1)
            entry.update(serial_s=ser, serial_cpu_s=ser_cpu, speedup=ser / par,
                         # Derived, not measured: the pool's CPU spread evenly over w free cores.
                         speedup_if_cores_free=w * ser_cpu / par_cpu,
                         identical=ser_csv == par_csv, load_1min_at_serial_start=load_serial)
        now = _core_fingerprint()
        if now != fingerprint:
            entry["code_changed_during_run"] = True
            print(f"WARNING: transcendence/ or sims/ changed on disk during {name}: the pool and the "
                  "one-process run may have used different code", file=sys.stderr, flush=True)
            fingerprint = now
        record["sweeps"][name] = entry
        g = entry.get
        print(f"| {name} | {args.preset} | {par:.1f} | {g('serial_s', nan):.1f} | {g('speedup', nan):.2f} | "
              f"{par_cpu:.1f} | {g('serial_cpu_s', nan):.1f} | {par_cpu / par:.2f} / "
              f"{g('serial_cpu_s', nan) / g('serial_s', nan):.2f} | {g('speedup_if_cores_free', nan):.2f} | "
              f"{load:.1f} / {g('load_1min_at_serial_start', nan):.1f} | {g('identical', '-')} |",
              flush=True)
    if args.fit_repeats > 0:
        record["linear_toy_fit"] = fits = _compare_fits(args.fit_repeats)
        print(f"\nlinear_toy fit (10,000 x 100, 10 classes, 1 thread): SciPy L-BFGS "
              f"{fits['scipy_lbfgs_s']:.3f} s ({fits['scipy_iterations']} it), torch LBFGS "
              f"{fits.get('torch_lbfgs_s', float('nan')):.3f} s ({fits.get('torch_iterations')} it), "
              f"import torch {fits['torch_import_s']:.2f} s; max |W diff| "
              f"{fits.get('max_abs_weight_difference', float('nan')):.1e}")
    record["load_after"] = os.getloadavg()
    print(f"\nload average before {record['load_before']}, after {record['load_after']} "
          f"on {record['cpus']} CPUs")
    out_root.mkdir(parents=True, exist_ok=True)
    (out_root / "bench_sims.json").write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
