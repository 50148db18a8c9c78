"""Benchmark: ``chess prepare`` games/s against python-chess's ``chess.pgn.read_game`` on the same file.

Both sides read the same PGN file (by default the first ``--games`` games of the lichess sample,
decompressed to a temporary ``.pgn``). The baseline only parses (``read_game`` in a loop, which
replays every move); our side runs the whole ``prepare`` pipeline (read, validate, filter, split,
tokenise, write the memmaps):

- ``char``: the text-level parser, one process, no board;
- ``move``: replays every game to get UCI moves, ``--workers`` processes (default: all cores);
- ``move, 1 worker``: the same in one process, for reference.

Rounds are interleaved (baseline, char, move, ...) so that a machine shared with other jobs slows
all sides alike; the ratios reported are medians over rounds of (ours games/s) / (baseline games/s),
in wall-clock time (the target) and, for reference, per CPU-second summed over all processes (which
a busy machine does not distort, and which shows what each core does).

    .venv/bin/python benchmarks/prepare.py                  # 5,000 games, 3 rounds
    .venv/bin/python benchmarks/prepare.py --games 20000 --rounds 5 --json out.json

At scale (``--against COMMIT``): the whole input (default: the sample, 52,588 games, ``.pgn.xz``)
prepared at ``--cap`` (default 1000) by this checkout and by the code of an earlier commit (taken
with ``git archive`` into a temporary folder, nothing in the checkout changes), rounds interleaved,
each run in its own process; the outputs must be byte-identical. Reported: games seen per wall
second, games per CPU-second of all processes (what one core does), the ratio, and the load average.

    .venv/bin/python benchmarks/prepare.py --against cc8de9e --rounds 3 --json bench-prepare-scale.json
    .venv/bin/python benchmarks/prepare.py --against cc8de9e --recompress zst   # as the lichess database ships
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import chess
import chess.pgn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chess_exp.data.prepare import prepare  # noqa: E402
from chess_exp.data.readers import SAMPLE_PGN, default_data_dir  # noqa: E402


def first_games(src: Path, n: int, dst: Path) -> int:
    """Write the first ``n`` games of ``src`` (.pgn or .pgn.xz) to ``dst``; returns the count."""
    opener = lzma.open if src.name.endswith(".xz") else open
    count = 0
    with opener(src, "rb") as f, open(dst, "wb") as out:
        for line in f:
            if line.startswith(b"[Event ") and count == n:
                break
            if line.startswith(b"[Event "):
                count += 1
            out.write(line)
    return count


def _cpu() -> float:
    """CPU seconds of this process and of its finished children (the worker processes)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def baseline(path: Path) -> tuple[int, float, float]:
    """python-chess: read_game until the end of the file. (games, wall seconds, CPU seconds)"""
    t0, c0 = time.perf_counter(), _cpu()
    n = 0
    with open(path, encoding="utf-8") as f:
        while chess.pgn.read_game(f) is not None:
            n += 1
    return n, time.perf_counter() - t0, _cpu() - c0


def ours(path: Path, tokenizer: str, workers: int, out: Path) -> tuple[int, float, float]:
    shutil.rmtree(out, ignore_errors=True)
    t0, c0 = time.perf_counter(), _cpu()
    meta = prepare([path], out, tokenizer=tokenizer, workers=workers, progress=False)
    return meta["stats"]["seen"], time.perf_counter() - t0, _cpu() - c0


_RUN = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from chess_exp.data.prepare import prepare
from chess_exp.data.readers import Filters
t0 = time.perf_counter()
meta = prepare([sys.argv[2]], sys.argv[3], tokenizer="char", filters=Filters(cap=int(sys.argv[4])),
               workers=int(sys.argv[5]), progress=False, force=True)
wall = time.perf_counter() - t0
own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"seen": meta["stats"]["seen"], "kept": meta["stats"]["kept"], "wall": wall,
                  "cpu": own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime}))
"""


def _run_prepare(code_root: Path, src: Path, out: Path, cap: int, workers: int) -> dict:
    """One prepare in a fresh process with ``code_root`` first on sys.path; wall and CPU seconds
    (the process and its worker processes; the pool's workers are waited for)."""
    shutil.rmtree(out, ignore_errors=True)
    proc = subprocess.run([sys.executable, "-c", _RUN, str(code_root), str(src), str(out), str(cap), str(workers)],
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def scale(args: argparse.Namespace) -> int:
    """This checkout's prepare against commit ``args.against`` on the whole input at ``args.cap``."""
    src = args.input or default_data_dir() / SAMPLE_PGN
    repo = Path(__file__).resolve().parents[1]
    tmp = Path(tempfile.mkdtemp(prefix="bench-prepare-scale-"))
    try:
        old_root = tmp / "old"
        old_root.mkdir()
        archive = subprocess.run(["git", "-C", str(repo), "archive", args.against, "chess_exp", "transcendence"],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(old_root)], input=archive, check=True)
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
        if args.recompress != "as-is":  # the lichess database ships .pgn.zst: measure that layout too
            text = lzma.decompress(src.read_bytes()) if src.name.endswith(".xz") else src.read_bytes()
            stem = src.name[: -len(".xz")] if src.name.endswith(".xz") else src.name
            if args.recompress == "zst":
                import zstandard
                src = tmp / (stem + ".zst")
                src.write_bytes(zstandard.ZstdCompressor(level=3).compress(text))
            else:
                src = tmp / stem
                src.write_bytes(text)
            del text
        workers = args.workers or os.cpu_count() or 1
        print(f"input: {src.name} ({src.stat().st_size / 1e6:.1f} MB), cap {args.cap}, {os.cpu_count()} cores, "
              f"workers {workers}, load average {os.getloadavg()[0]:.1f}; baseline: commit {args.against}; "
              f"new: {commit} (+ working tree)", flush=True)
        rows: dict[str, list[dict]] = {"baseline": [], "new": []}
        loads = []
        for r in range(args.rounds):
            loads.append(os.getloadavg()[0])
            rows["baseline"].append(_run_prepare(old_root, src, tmp / "out-old", args.cap, workers))
            rows["new"].append(_run_prepare(repo, src, tmp / "out-new", args.cap, workers))
            for name in ("train.bin", "val.bin", "train_offsets.npy", "val_offsets.npy"):
                same = (tmp / "out-old" / name).read_bytes() == (tmp / "out-new" / name).read_bytes()
                assert same, f"{name} differs between the baseline and the new prepare"
            b, n = rows["baseline"][-1], rows["new"][-1]
            print(f"round {r + 1}: baseline {b['wall']:.1f} s ({b['cpu']:.1f} CPU-s), new {n['wall']:.1f} s "
                  f"({n['cpu']:.1f} CPU-s), {b['wall'] / n['wall']:.2f}x; outputs identical", flush=True)
        loads.append(os.getloadavg()[0])
        seen = rows["new"][0]["seen"]
        ratio = statistics.median(b["wall"] / n["wall"] for b, n in zip(rows["baseline"], rows["new"]))
        cpu_ratio = statistics.median(b["cpu"] / n["cpu"] for b, n in zip(rows["baseline"], rows["new"]))
        print(f"\n| prepare --cap {args.cap} (char) | wall s (median) | games/s | games per CPU-second |\n|---|---|---|---|")
        result = {"input": str(src), "recompress": args.recompress, "cap": args.cap, "cores": os.cpu_count(), "workers": workers,
                  "baseline_commit": args.against, "commit": commit, "rounds": args.rounds, "games_seen": seen,
                  "kept": rows["new"][0]["kept"], "load_average": loads, "runs": rows,
                  "wall_ratio": round(ratio, 2), "cpu_ratio": round(cpu_ratio, 2)}
        for name in ("baseline", "new"):
            wall = statistics.median(x["wall"] for x in rows[name])
            cpu = statistics.median(x["cpu"] for x in rows[name])
            print(f"| {name} | {wall:.2f} | {seen / wall:,.0f} | {seen / cpu:,.0f} |")
        print(f"speed-up (median of rounds): {ratio:.2f}x wall, {cpu_ratio:.2f}x per CPU-second; "
              f"load average during the rounds: {', '.join(f'{x:.1f}' for x in loads)}")
        if args.json:
            args.json.write_text(json.dumps(result, indent=1) + "\n")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", type=Path, default=None,
                        help="a .pgn or .pgn.xz (default: the lichess sample in $TRANSCENDENCE_DATA)")
    parser.add_argument("--games", type=int, default=5000, help="games taken from the start of --input")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=0, help="move path processes (0 = all cores)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--against", metavar="COMMIT", default=None,
                        help="at scale: the whole --input at --cap, this checkout against COMMIT's prepare")
    parser.add_argument("--cap", type=int, default=1000, help="rating cap of the --against comparison")
    parser.add_argument("--recompress", choices=("as-is", "zst", "none"), default="as-is",
                        help="--against: read --input as it is, or recompressed with zstd (the lichess "
                             "database's format), or decompressed")
    args = parser.parse_args()
    if args.against:
        return scale(args)

    src = args.input or default_data_dir() / SAMPLE_PGN
    tmp = Path(tempfile.mkdtemp(prefix="bench-prepare-"))
    try:
        pgn = tmp / "games.pgn"
        n_games = first_games(src, args.games, pgn)
        workers = args.workers or os.cpu_count() or 1
        print(f"file: first {n_games:,} games of {src.name} ({pgn.stat().st_size / 1e6:.1f} MB), "
              f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}, python {platform.python_version()}, "
              f"python-chess {chess.__version__}", flush=True)
        names = ["read_game", "char", f"move ({workers} workers)", "move (1 worker)"]
        rows: dict[str, list[float]] = {k: [] for k in names}  # games per wall second
        cpu_rows: dict[str, list[float]] = {k: [] for k in names}  # games per CPU second (all processes)
        for r in range(args.rounds):
            runs = [baseline(pgn), ours(pgn, "char", 1, tmp / "char"), ours(pgn, "move", workers, tmp / "move"),
                    ours(pgn, "move", 1, tmp / "move1")]
            for name, (n, wall, cpu) in zip(names, runs):
                assert n == n_games, (name, n, n_games)
                rows[name].append(n / wall)
                cpu_rows[name].append(n / cpu)
            print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}" for k, v in rows.items()) + " games/s",
                  flush=True)
        base, cpu_base = rows["read_game"], cpu_rows["read_game"]
        result = {"input": str(src), "games": n_games, "cores": os.cpu_count(), "workers": workers,
                  "rounds": args.rounds, "load_average_start": os.getloadavg(),
                  "games_per_second": {k: [round(x, 1) for x in v] for k, v in rows.items()},
                  "games_per_cpu_second": {k: [round(x, 1) for x in v] for k, v in cpu_rows.items()},
                  "ratio_vs_read_game": {}, "cpu_ratio_vs_read_game": {}}
        print("\n| path | games/s (median) | ratio vs read_game | games per CPU-second | CPU ratio |\n"
              "|---|---|---|---|---|")
        for name in names:
            ratio = statistics.median(v / b for v, b in zip(rows[name], base))
            cpu_ratio = statistics.median(v / b for v, b in zip(cpu_rows[name], cpu_base))
            result["ratio_vs_read_game"][name] = round(ratio, 2)
            result["cpu_ratio_vs_read_game"][name] = round(cpu_ratio, 2)
            print(f"| {name} | {statistics.median(rows[name]):,.0f} | {ratio:.1f}x | "
                  f"{statistics.median(cpu_rows[name]):,.0f} | {cpu_ratio:.1f}x |")
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")
        if args.json:
            args.json.write_text(json.dumps(result, indent=1) + "\n")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
