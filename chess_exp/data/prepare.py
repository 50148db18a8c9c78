"""``transcendence chess prepare``: lichess PGN/CSV -> filtered, tokenised, memory-mapped arrays.

Writes, nanoGPT-style, into ``--out``:

- ``train.bin``, ``val.bin``: np.uint16 token ids of all games concatenated, each game starting with
  the tokenizer's start id (char: ``;1.e4 e5 2.Nf3``; move: ``<start> e2e4 e7e5 g1f3 <end>``);
- ``train_offsets.npy``, ``val_offsets.npy``: int64 index of the first token of each game;
- ``meta.json``: tokenizer, vocabulary, counts, filters, split, source files with sha256, and what
  was dropped and why.

The ``char`` path never replays a board (text-level checks only, see ``chess_exp.data._pgn``) unless
``--check-legal`` is given; the ``move`` path replays every game with python-chess, spread over
``--workers`` processes, and drops games with an illegal move.

Example::

    transcendence chess prepare --input ../shared/data/lichess_rapid_2014-2022_ahmed-ghaf-404.pgn.xz \\
        --cap 1300 --tokenizer move --out runs/data/move-1300
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import multiprocessing as mp
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Iterator

import chess
import numpy as np

from chess_exp.data import _pgn
from chess_exp.data import readers as data
from chess_exp.data._pgn_replay import push_light, replay_ids, san_to_move
from chess_exp.data.readers import Filters, ReadStats, split_of
from chess_exp.data.tokenizers import get_tokenizer

__all__ = ["add_arguments", "main", "prepare", "load_prepared", "iter_games_tokens"]

_BATCH = 512  # games per unit of work for the worker processes
_FLUSH_TOKENS = 1 << 20  # tokens buffered per split before a write


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", nargs="+", required=True, metavar="FILE",
                        help="PGN (.pgn, .pgn.zst/.xz/.bz2/.gz) or CSV (the paper's shards "
                             "url,WhiteElo,BlackElo,result,transcript, or the sample's transcripts CSV)")
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--tokenizer", choices=("char", "move"), default="char",
                        help="char: the paper's 32 characters; move: one UCI token per move (default char)")
    parser.add_argument("--cap", type=int, default=None,
                        help="rating cap: keep games whose players are both rated <= CAP (default: all)")
    parser.add_argument("--min-plies", type=int, default=1, help="drop games shorter than this (default 1)")
    parser.add_argument("--time-control", default="",
                        help="comma-separated TimeControl tags (600+0) and/or speeds (bullet, blitz, rapid, "
                             "classical) to keep (default: all, as in the paper)")
    parser.add_argument("--finished-only", action="store_true",
                        help="keep only games that ended on the board (Termination Normal)")
    parser.add_argument("--val-fraction", type=float, default=0.05,
                        help="fraction of games (by a hash of the game id) in val (default 0.05, the paper's 95/5)")
    parser.add_argument("--no-dedupe", action="store_true", help="keep repeated game ids")
    parser.add_argument("--check-legal", action="store_true",
                        help="char path: also replay every game and drop illegal ones (always on for move)")
    parser.add_argument("--workers", type=int, default=0,
                        help="processes that replay boards (0 = all cores; 1 = in-process)")
    parser.add_argument("--max-games", type=int, default=None, help="stop after keeping this many games")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--force", action="store_true", help="overwrite a non-empty --out")


def main(args: argparse.Namespace) -> int:
    try:
        filters = Filters(cap=args.cap, min_plies=args.min_plies,
                          time_controls=tuple(t.strip() for t in args.time_control.split(",") if t.strip()),
                          finished_only=args.finished_only)
        meta = prepare(args.input, args.out, tokenizer=args.tokenizer, filters=filters,
                       val_fraction=args.val_fraction, dedupe=not args.no_dedupe,
                       check_legal=args.check_legal, workers=args.workers, max_games=args.max_games,
                       progress=not args.no_progress, force=args.force)
    except ValueError as exc:
        print(f"transcendence chess prepare: error: {exc}", file=sys.stderr)
        return 2
    stats = ReadStats(seen=meta["stats"]["seen"], kept=meta["stats"]["kept"])
    stats.malformed.update(meta["stats"]["malformed"])
    stats.filtered.update(meta["stats"]["filtered"])
    print(stats.summary(), file=sys.stderr)
    c = meta["counts"]
    print(f"wrote {args.out}: train {c['train']['games']:,} games / {c['train']['tokens']:,} tokens, "
          f"val {c['val']['games']:,} games / {c['val']['tokens']:,} tokens "
          f"({meta['seconds']:.1f} s, {meta['games_per_second']:,.0f} games/s)", file=sys.stderr)
    return 0


# --- workers (move path, and --check-legal on the char path) ----------------------------------

class _Replayer:
    """Replays transcripts (fast SAN resolution, see ``chess_exp.data._pgn_replay``)."""

    def __init__(self, tokenizer: str):
        self.tok = get_tokenizer("move")
        self.want_ids = tokenizer == "move"

    def __call__(self, t: bytes) -> list[int] | str:
        """The move token ids of a legal game (start and end included), else the drop reason."""
        sans = _pgn.transcript_to_sans(t)
        table = self.tok._table
        moves = replay_ids(sans, table)  # plain-integer bitboards, about twice as fast
        if moves == "other":  # a SAN spelling replay_ids leaves to python-chess
            board = chess.Board()
            push = functools.partial(push_light, board)
            moves = []
            try:
                for san in sans:
                    move = san_to_move(board, san)
                    moves.append(table[(move.from_square * 64 + move.to_square) * 7 + (move.promotion or 0)])
                    push(move)
            except ValueError:
                return "illegal_move"
        elif isinstance(moves, str):
            return moves
        return [self.tok.start_id, *moves, self.tok.end_id]

    def batch(self, transcripts: list[bytes]) -> tuple[np.ndarray | None, list[int], dict[int, str]]:
        """(all kept games' ids concatenated (move tokenizer only), ids per game (0 = dropped),
        {index: drop reason}) - one array per batch keeps the inter-process traffic small."""
        flat: list[int] = []
        lengths: list[int] = []
        reasons: dict[int, str] = {}
        for i, t in enumerate(transcripts):
            res = self(t)
            if isinstance(res, str):
                reasons[i] = res
                lengths.append(0)
            else:
                if self.want_ids:
                    flat.extend(res)
                lengths.append(len(res))
        return (np.array(flat, dtype=np.uint16) if self.want_ids else None), lengths, reasons


_WORKER: _Replayer | None = None


def _init_worker(tokenizer: str) -> None:
    global _WORKER
    _WORKER = _Replayer(tokenizer)


def _replay_batch(train: list[bytes], val: list[bytes]) -> dict:
    assert _WORKER is not None
    return {"train": _WORKER.batch(train), "val": _WORKER.batch(val)}


# --- the pipeline ----------------------------------------------------------------------------

class _HashingReader:
    """A raw file whose bytes are hashed as they are read (sources are hashed in the same pass)."""

    def __init__(self, path: Path):
        self.f = open(path, "rb")
        self.sha = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        b = self.f.read(n)
        self.sha.update(b)
        return b

    def readinto(self, buf) -> int:  # noqa: ANN001
        n = self.f.readinto(buf)
        self.sha.update(memoryview(buf)[:n])
        return n

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.f.tell()

    def finish(self) -> str:
        """Hash whatever was not read (an early stop), close, and return the sha256."""
        while True:
            b = self.f.read(1 << 22)
            if not b:
                break
            self.sha.update(b)
        self.f.close()
        return self.sha.hexdigest()

    def close(self) -> None:  # the reader stays open until finish()
        pass


class _Writer:
    """Appends games of one split to ``<split>.bin`` and their offsets to ``<split>_offsets.npy``."""

    def __init__(self, out: Path, split: str):
        self.out, self.split = out, split
        self.bin = open(out / f"{split}.bin", "wb")
        self.offsets_tmp = open(out / f".{split}_offsets.tmp", "wb")
        self.chunks: list[np.ndarray] = []
        self.lengths: list[int] = []
        self.pending = 0
        self.tokens = 0
        self.games = 0
        self.plies = 0

    def add_many(self, ids: np.ndarray, lengths: list[int], plies: int) -> None:
        """Games whose token ids are concatenated in ``ids`` (``lengths`` tokens each)."""
        self.chunks.append(ids)
        self.lengths.extend(lengths)
        self.pending += len(ids)
        self.plies += plies
        if self.pending >= _FLUSH_TOKENS:
            self.flush()

    def add_text(self, texts: list[bytes], plies: int, table: bytes) -> None:
        """Char path: many ``;transcript`` byte strings at once (ids by bytes.translate)."""
        joined = b"".join(texts)
        self.chunks.append(np.frombuffer(joined.translate(table), dtype=np.uint8))
        self.lengths.extend(map(len, texts))
        self.pending += len(joined)
        self.plies += plies
        if self.pending >= _FLUSH_TOKENS:
            self.flush()

    def flush(self) -> None:
        if not self.chunks:
            return
        arr = np.concatenate(self.chunks).astype(np.uint16, copy=False)
        self.bin.write(arr.tobytes())
        lengths = np.asarray(self.lengths, dtype=np.int64)
        offsets = self.tokens + np.concatenate(([0], np.cumsum(lengths)[:-1]))
        self.offsets_tmp.write(offsets.astype(np.int64).tobytes())
        self.tokens += int(lengths.sum())
        self.games += len(lengths)
        self.chunks, self.lengths, self.pending = [], [], 0

    def close(self) -> dict:
        self.flush()
        self.bin.close()
        self.offsets_tmp.close()
        tmp = self.out / f".{self.split}_offsets.tmp"
        # stream the raw offsets into a .npy of known length (constant memory)
        final = np.lib.format.open_memmap(self.out / f"{self.split}_offsets.npy", mode="w+", dtype=np.int64,
                                          shape=(self.games,))
        step = 1 << 20
        with open(tmp, "rb") as f:
            for start in range(0, self.games, step):
                chunk = np.frombuffer(f.read(8 * min(step, self.games - start)), dtype=np.int64)
                final[start:start + len(chunk)] = chunk
        final.flush()
        del final
        tmp.unlink()
        return {"games": self.games, "tokens": self.tokens, "plies": self.plies}


def prepare(inputs: list[str | os.PathLike], out: str | os.PathLike, *, tokenizer: str = "char",
            filters: Filters = Filters(), val_fraction: float = 0.05, dedupe: bool = True,
            check_legal: bool = False, workers: int = 0, max_games: int | None = None,
            progress: bool = True, force: bool = False) -> dict:
    """Read ``inputs`` in order, filter, split, tokenise and write ``out``; returns the meta dict.

    Raises ValueError for bad arguments (unknown tokenizer, missing input, non-empty ``out``
    without ``force``, ...). Malformed games never raise: they are counted in ``meta["stats"]``.
    """
    tok = get_tokenizer(tokenizer)
    if not inputs:
        raise ValueError("--input: give at least one file")
    paths = [Path(p) for p in inputs]
    for p in paths:
        if not p.is_file():
            raise ValueError(f"--input {p}: no such file")
        data.input_format(p)
    if not 0.0 <= val_fraction <= 1.0:
        raise ValueError(f"--val-fraction must be in [0, 1], got {val_fraction}")
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not force:
        raise ValueError(f"--out {out} is not empty (use --force to overwrite)")
    out.mkdir(parents=True, exist_ok=True)

    replay = tokenizer == "move" or check_legal
    n_workers = (os.cpu_count() or 1) if workers <= 0 else workers
    stats = ReadStats()
    writers = {"train": _Writer(out, "train"), "val": _Writer(out, "val")}
    sources = []
    seen_ids: set[str] = set()
    t0 = time.perf_counter()
    total_bytes = sum(p.stat().st_size for p in paths)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=total_bytes, unit="B", unit_scale=True, desc=f"prepare {tokenizer}",
                   file=sys.stderr, dynamic_ncols=True)
    pool = None
    if replay and n_workers > 1:
        pool = mp.get_context("fork" if sys.platform == "linux" else "spawn").Pool(
            n_workers, initializer=_init_worker, initargs=(tokenizer,))
    local = _Replayer(tokenizer) if replay and pool is None else None
    char_table = tok._table if tokenizer == "char" else b""
    done_bytes = 0
    try:
        kept = 0
        for path in paths:
            reader = _HashingReader(path)
            source = data._Source(path, raw=reader)  # type: ignore[arg-type]
            batches = _batches(data._records(path, stats, source), filters, stats, seen_ids, dedupe,
                               val_fraction, max_games - kept if max_games is not None else None)
            if replay:
                results = _replayed(batches, pool, local, n_workers)
            else:
                results = ((b, None) for b in batches)
            for batch, replayed in results:
                if replayed is None:  # char, no replay
                    for split in ("train", "val"):
                        items = batch[split]
                        if items:
                            writers[split].add_text([b";" + t for t, _ in items], sum(n for _, n in items),
                                                    char_table)
                            kept += len(items)
                else:
                    for split in ("train", "val"):
                        items = batch[split]
                        ids, lengths, reasons = replayed[split]
                        for reason in reasons.values():
                            stats.drop(reason)
                        good = [item for i, item in enumerate(items) if i not in reasons] if reasons else items
                        if not good:
                            continue
                        plies = sum(n for _, n in good)
                        if tokenizer == "move":
                            writers[split].add_many(ids, [n for n in lengths if n], plies)
                        else:
                            writers[split].add_text([b";" + t for t, _ in good], plies, char_table)
                        kept += len(good)
                if bar is not None:
                    pos = reader.tell()
                    bar.update(done_bytes + pos - bar.n)
                    bar.set_postfix(kept=f"{kept:,}", refresh=False)
            done_bytes += path.stat().st_size
            sources.append({"path": str(path.resolve()), "bytes": path.stat().st_size,
                            "sha256": reader.finish(), "format": data.input_format(path)})
            if max_games is not None and kept >= max_games:
                break
        stats.kept = kept
    finally:
        if pool is not None:
            pool.close()
            pool.join()
        if bar is not None:
            bar.update(total_bytes - bar.n)
            bar.close()
    counts = {split: w.close() for split, w in writers.items()}
    seconds = time.perf_counter() - t0
    meta = {
        "format": "transcendence-chess-prepared/1",
        "tokenizer": tok.name,
        "vocab_size": tok.vocab_size,
        "start_id": tok.start_id,
        "end_id": tok.end_id,
        "dtype": "uint16",
        "vocab": list(tok.vocab),
        "counts": counts,
        "filters": asdict(filters),
        "val_fraction": val_fraction,
        "split": "blake2b-64 of the game id < val_fraction * 2**64 -> val (chess_exp.data.readers.split_of)",
        "dedupe": dedupe,
        "check_legal": replay,
        "sources": sources,
        "stats": stats.to_dict(),
        "seconds": round(seconds, 3),
        "games_per_second": round(stats.seen / seconds, 1) if seconds > 0 else None,
        "argv": sys.argv,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    tmp = out / "meta.json.tmp"
    tmp.write_text(json.dumps(meta, indent=1) + "\n")
    tmp.replace(out / "meta.json")
    return meta


def _batches(records: Iterator, filters: Filters, stats: ReadStats, seen_ids: set[str], dedupe: bool,
             val_fraction: float, limit: int | None) -> Iterator[dict]:
    """Filtered, de-duplicated records grouped as {"train": [(t, plies)], "val": [...]} batches."""
    batch: dict[str, list] = {"train": [], "val": []}
    n = 0
    kept = 0
    for rec in records:
        reason = filters.record_reason(rec)
        if reason is None and dedupe:
            if rec.game_id in seen_ids:
                reason = "duplicate"
            else:
                seen_ids.add(rec.game_id)
        if reason is not None:
            stats.filtered[reason] += 1
            continue
        batch[split_of(rec.game_id, val_fraction)].append((rec.transcript, rec.n_plies))
        n += 1
        kept += 1
        if n >= _BATCH:
            yield batch
            batch, n = {"train": [], "val": []}, 0
        if limit is not None and kept >= limit:
            break
    if n:
        yield batch


def _replayed(batches: Iterator[dict], pool, local: _Replayer | None,  # noqa: ANN001
              n_workers: int) -> Iterator[tuple[dict, dict]]:
    """(batch, {split: (ids, lengths, reasons)}) in input order."""
    if pool is None:
        assert local is not None
        for batch in batches:
            yield batch, {s: local.batch([t for t, _ in items]) for s, items in batch.items()}
        return
    # keep a bounded number of batches in flight; results come back in order (deterministic output)
    window: list = []
    depth = 4 * n_workers
    for batch in batches:
        args = ([t for t, _ in batch["train"]], [t for t, _ in batch["val"]])
        window.append((batch, pool.apply_async(_replay_batch, args)))
        if len(window) >= depth:
            done, result = window.pop(0)
            yield done, result.get()
    while window:
        done, result = window.pop(0)
        yield done, result.get()


# --- reading back --------------------------------------------------------------------------

def load_prepared(directory: str | os.PathLike, split: str = "train") -> tuple[np.memmap, np.ndarray, dict]:
    """(tokens memmap (N,) uint16, offsets (n_games,) int64, meta) of a prepared split."""
    d = Path(directory)
    meta_path = d / "meta.json"
    if not meta_path.exists():
        raise ValueError(f"{d} is not a prepared directory (no meta.json); run `transcendence chess prepare`")
    meta = json.loads(meta_path.read_text())
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    if meta["counts"][split]["tokens"] == 0:
        tokens = np.zeros(0, dtype=np.uint16)
    else:
        tokens = np.memmap(d / f"{split}.bin", dtype=np.uint16, mode="r")
    offsets = np.load(d / f"{split}_offsets.npy")
    return tokens, offsets, meta  # type: ignore[return-value]


def iter_games_tokens(directory: str | os.PathLike, split: str = "train") -> Iterator[np.ndarray]:
    """The token ids of each game of a prepared split, in order."""
    tokens, offsets, _ = load_prepared(directory, split)
    ends = np.append(offsets[1:], len(tokens))
    for a, b in zip(offsets, ends):
        yield np.asarray(tokens[a:b])
