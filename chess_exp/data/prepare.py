"""``transcendence chess prepare``: lichess PGN/CSV -> filtered, tokenised, memory-mapped arrays.

Writes a prepared folder (the format, its checks and its reader are in ``chess_exp.data.prepared``)
into ``--out``: ``train.bin``/``val.bin`` (uint16 token ids of the games concatenated),
``train_offsets.npy``/``val_offsets.npy`` (each game's first token) and ``meta.json`` (tokenizer,
counts, filters, split, source files with sha256, and what was dropped and why). The folder is
written beside ``--out`` and swapped in whole at the end, so an interrupted run changes nothing.

How the work is spread: the main process reads, decompresses and cuts the input into chunks of
whole games (1 MiB); ``--workers`` processes parse the chunks (headers first: games that the rating cap, time
control or result filters reject are never parsed further), replay boards where asked, and
tokenise; the main process de-duplicates, splits and writes in input order, so the output does not
depend on the number of workers. The ``char`` path replays no board unless ``--check-legal``
(which then writes the canonical SAN of each replayed move); the ``move`` path always replays.

Example::

    transcendence chess prepare --input ../shared/data/lichess_rapid_2014-2022_ahmed-ghaf-404.pgn.xz \\
        --cap 1300 --tokenizer move --out runs/data/move-1300
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import multiprocessing as mp
import os
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import chess
import numpy as np

from chess_exp.data import _pgn
from chess_exp.data import readers as data
from chess_exp.data._pgn_replay import push_light, replay_ids, san_to_move
from chess_exp.data.prepared import SCHEMA, DatasetWriter, check_out_dir
from chess_exp.data.readers import Filters, ReadStats, split_of
from chess_exp.data.tokenizers import get_tokenizer
from transcendence.config import add_config_arguments, config_from_args

__all__ = ["PrepareConfig", "add_arguments", "main", "prepare"]

_CHUNK = 1 << 20  # bytes of input text per unit of work
_SPEEDS = ("ultrabullet", "bullet", "blitz", "rapid", "classical", "correspondence")
_TC_RE = re.compile(r"[0-9]+(\+[0-9]+)?|-")


@dataclass(frozen=True, kw_only=True)
class PrepareConfig:
    """What ``transcendence chess prepare`` does; each field is the option of the same name."""

    # PGN (.pgn, .pgn.zst/.xz/.bz2/.gz), CSV (the sample's transcripts CSV, a CSV with a 'transcript' column,
    # Karvonen's block CSV), the paper's shards (*.pgn.NN[.zst], headerless site,WhiteElo,BlackElo,Result,
    # transcript lines), or a folder of them; a folder of rating-bin subfolders (1000/, 1100/, ...) is read up
    # to --cap as the paper's code does
    input: tuple[str, ...] = field(metadata={"nargs": "+"})  # PGN/CSV files (.pgn[.zst|.xz|.bz2|.gz], .csv, *.pgn.NN shards) or folders, in order
    out: Path  # output directory
    tokenizer: Literal["char", "move"] = "char"  # char: the paper's 32 characters; move: one UCI token per move
    cap: int | None = None  # rating cap: keep games whose players are both rated <= CAP (default: all)
    min_plies: int = 1  # drop games shorter than this
    time_control: tuple[str, ...] = ()  # comma list of TimeControl tags (600+0) and/or speeds (blitz, ...) (default: all)
    finished_only: bool = False  # keep only games that ended on the board (Termination Normal)
    val_fraction: float = 0.05  # fraction of games (by a hash of the game id) in val (the paper's 95/5)
    dedupe: bool = True  # drop repeated game ids (--no-dedupe keeps them)
    check_legal: bool = False  # char path: also replay every game, drop illegal ones, write canonical SAN
    workers: int = 0  # processes that parse and replay (0 = all cores; 1 = in-process)
    max_games: int | None = None  # stop after keeping this many games (>= 1)
    progress: bool = True  # progress bar (--no-progress: none)
    force: bool = False  # replace the prepared dataset in a non-empty --out (swapped in whole at the end)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, PrepareConfig)


def main(args: argparse.Namespace) -> int:
    cfg = config_from_args(PrepareConfig, args)
    try:
        filters = Filters(cap=cfg.cap, min_plies=cfg.min_plies, time_controls=cfg.time_control,
                          finished_only=cfg.finished_only)
        meta = prepare(list(cfg.input), cfg.out, tokenizer=cfg.tokenizer, filters=filters,
                       val_fraction=cfg.val_fraction, dedupe=cfg.dedupe,
                       check_legal=cfg.check_legal, workers=cfg.workers, max_games=cfg.max_games,
                       progress=cfg.progress, force=cfg.force)
    except (ValueError, OSError) as exc:
        print(f"transcendence chess prepare: error: {exc}", file=sys.stderr)
        return 2
    stats = ReadStats(seen=meta["stats"]["seen"], kept=meta["stats"]["kept"])
    stats.malformed.update(meta["stats"]["malformed"])
    stats.filtered.update(meta["stats"]["filtered"])
    stats.cuts.extend(meta["stats"].get("cuts", []))
    print(stats.summary(), file=sys.stderr)
    if meta.get("san_rewritten"):
        print(f"  --check-legal wrote the canonical SAN in {meta['san_rewritten']:,} games", file=sys.stderr)
    c = meta["counts"]
    print(f"wrote {cfg.out}: train {c['train']['games']:,} games / {c['train']['tokens']:,} tokens, "
          f"val {c['val']['games']:,} games / {c['val']['tokens']:,} tokens "
          f"({meta['seconds']:.1f} s, {meta['games_per_second']:,.0f} games/s)", file=sys.stderr)
    return 0


# --- per chunk work (in the worker processes, or in-process with --workers 1) ------------

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


def canonical_transcript(t: bytes) -> bytes | str:
    """Replay a transcript on a board: the transcript with every move in its canonical SAN (the
    same bytes when it already is), or "illegal_move". python-chess's reading of a SAN decides the
    move (it accepts ``Nd2`` for the capture ``Nxd2``, ``Ree3``, or ``a5#`` that is not mate); the
    output is what ``Board.san`` writes for that move."""
    sans = _pgn.transcript_to_sans(t)
    board = chess.Board()
    out = []
    for san in sans:
        try:
            move = san_to_move(board, san)
        except ValueError:
            try:
                move = board.parse_san(san)
            except ValueError:
                return "illegal_move"
        out.append(board.san(move))
        push_light(board, move)
    return t if out == sans else _pgn.sans_to_transcript(out).encode()


@dataclass(frozen=True)
class _Job:
    """What a worker does with a chunk (picklable)."""

    filters: Filters
    tokenizer: str
    check_legal: bool
    val_fraction: float


@dataclass
class _ChunkResult:
    """One chunk's games in input order: ``outcomes[i]`` is "" for a game to keep (if not a
    duplicate) or "m:<reason>" / "f:<reason>"; the other lists hold the games to keep, in order."""

    outcomes: list[str] = field(default_factory=list)
    keys: list[int] = field(default_factory=list)  # dedupe key: 64 bits of a hash of the game id
    splits: bytearray = field(default_factory=bytearray)  # 0 train, 1 val
    plies: list[int] = field(default_factory=list)
    texts: list[bytes] = field(default_factory=list)  # char: b";" + transcript
    ids: list[np.ndarray] = field(default_factory=list)  # move: token ids of each game
    rewritten: int = 0  # --check-legal: games whose SAN was made canonical


_REPLAYERS: dict[str, _Replayer] = {}


def _work(fmt: str, layout, job: _Job, chunk: bytes) -> _ChunkResult:  # noqa: ANN001
    res = _ChunkResult()
    replayer = None
    if job.tokenizer == "move":
        replayer = _REPLAYERS.get("move") or _REPLAYERS.setdefault("move", _Replayer("move"))
    for item in data.parse_chunk(fmt, layout, chunk, job.filters):
        if not isinstance(item, data._Record):  # ("m" or "f", reason)
            res.outcomes.append(f"{item[0]}:{item[1]}")
            continue
        reason = job.filters.record_reason(item)
        if reason is not None:
            res.outcomes.append(f"f:{reason}")
            continue
        t = item.transcript
        if replayer is not None:
            ids = replayer(t)
            if isinstance(ids, str):
                res.outcomes.append(f"m:{ids}")
                continue
            res.ids.append(np.asarray(ids, dtype=np.uint16))
        elif job.check_legal:
            canon = canonical_transcript(t)
            if isinstance(canon, str):
                res.outcomes.append(f"m:{canon}")
                continue
            if canon != t:
                res.rewritten += 1
            t = canon
        if job.tokenizer == "char":
            res.texts.append(b";" + t)
        res.outcomes.append("")
        res.keys.append(int.from_bytes(hashlib.blake2b(item.game_id.encode(), digest_size=8).digest(), "big"))
        res.splits.append(1 if split_of(item.game_id, job.val_fraction) == "val" else 0)
        res.plies.append(item.n_plies)
    return res


def _in_order(pool, fn, items: Iterator, depth: int) -> Iterator:  # noqa: ANN001
    """``map(fn, items)`` on ``pool`` with at most ``depth`` items in flight, results in input order."""
    window: list = []
    for item in items:
        window.append(pool.apply_async(fn, (item,)))
        if len(window) >= depth:
            yield window.pop(0).get()
    while window:
        yield window.pop(0).get()


# --- the pipeline ----------------------------------------------------------------------------

def prepare(inputs: list[str | os.PathLike], out: str | os.PathLike, *, tokenizer: str = "char",
            filters: Filters | None = None, val_fraction: float = 0.05, dedupe: bool = True,
            check_legal: bool = False, workers: int = 0, max_games: int | None = None,
            progress: bool = True, force: bool = False) -> dict:
    """Read ``inputs`` in order, filter, split, tokenise and write ``out``; returns the meta dict.

    Raises ValueError for bad arguments (unknown tokenizer, missing input, ``max_games`` < 1, a
    non-empty ``out`` without ``force``, ...), before anything is written. Malformed games never
    raise: they are counted in ``meta["stats"]``. ``out`` is replaced whole at the end, or not at all.
    """
    filters = filters if filters is not None else Filters()
    tok = get_tokenizer(tokenizer)
    if not inputs:
        raise ValueError("--input: give at least one file")
    if max_games is not None and max_games < 1:
        raise ValueError(f"--max-games must be at least 1, got {max_games}; leave it out to keep every game")
    if not 0.0 <= val_fraction <= 1.0:
        raise ValueError(f"--val-fraction must be in [0, 1], got {val_fraction}")
    if workers < 0:
        raise ValueError(f"--workers must be >= 0 (0 = all cores), got {workers}")
    if filters.cap is not None and filters.cap < 0:
        raise ValueError(f"--cap is a rating and must be >= 0, got {filters.cap}; leave it out to keep every rating")
    if filters.min_plies < 0:
        raise ValueError(f"--min-plies must be >= 0, got {filters.min_plies}")
    for tc in filters.time_controls:
        if tc not in _SPEEDS and not _TC_RE.fullmatch(tc):
            raise ValueError(f"--time-control: {tc!r} is neither a lichess speed ({', '.join(_SPEEDS)}) nor a "
                             "TimeControl tag such as 600+0")
    paths = data.expand_inputs(inputs, filters.cap)
    for p in paths:
        data.input_format(p)
    out = Path(out)
    check_out_dir(out, force)

    n_workers = (os.cpu_count() or 1) if workers <= 0 else workers
    job = _Job(filters, tokenizer, check_legal, val_fraction)
    stats = ReadStats()
    sources = []
    seen_keys: set[int] = set()
    rewritten = 0
    t0 = time.perf_counter()
    total_bytes = sum(p.stat().st_size for p in paths)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=total_bytes, unit="B", unit_scale=True, desc=f"prepare {tokenizer}",
                   file=sys.stderr, dynamic_ncols=True)
    pool = None
    if n_workers > 1:
        pool = mp.get_context("fork" if sys.platform == "linux" else "spawn").Pool(n_workers)
    char_table = tok._table if tokenizer == "char" else b""
    done_bytes = 0
    kept = 0
    with DatasetWriter(out) as writer:
        try:
            for path in paths:
                reader = _HashingReader(path)
                source = data._Source(path, raw=reader, stats=stats)  # type: ignore[arg-type]
                fmt, layout, chunks = data.source_chunks(path, source, _CHUNK)
                fn = functools.partial(_work, fmt, layout, job)
                results = _in_order(pool, fn, chunks, 2 * n_workers) if pool is not None else map(fn, chunks)
                for res in results:
                    kept, full = _consume(res, writer, stats, seen_keys, dedupe, kept, max_games, tokenizer,
                                          char_table)
                    rewritten += res.rewritten
                    if bar is not None:
                        bar.update(done_bytes + reader.tell() - bar.n)
                        bar.set_postfix(kept=f"{kept:,}", refresh=False)
                    if full:
                        break
                done_bytes += path.stat().st_size
                sources.append({"path": str(path.resolve()), "bytes": path.stat().st_size,
                                "sha256": reader.finish(), "format": data.input_format(path)})
                if max_games is not None and kept >= max_games:
                    break
            stats.kept = kept
        finally:
            if pool is not None:
                pool.terminate()
                pool.join()
            if bar is not None:
                bar.update(total_bytes - bar.n)
                bar.close()
        counts = writer.close_splits()
        seconds = time.perf_counter() - t0
        meta = {
            "format": SCHEMA,
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
            "check_legal": tokenizer == "move" or check_legal,
            "san_rewritten": rewritten,
            "sources": sources,
            "stats": stats.to_dict(),
            "seconds": round(seconds, 3),
            "games_per_second": round(stats.seen / seconds, 1) if seconds > 0 else None,
            "workers": n_workers,
            "argv": sys.argv,
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        writer.commit(meta)
    return meta


def _consume(res: _ChunkResult, writer: DatasetWriter, stats: ReadStats, seen_keys: set[int], dedupe: bool,
             kept: int, max_games: int | None, tokenizer: str, char_table: bytes) -> tuple[int, bool]:
    """Count a chunk's games in order, de-duplicate, and write the kept ones; (kept, limit reached)."""
    chosen: dict[int, list[int]] = {0: [], 1: []}
    j = 0
    full = False
    for outcome in res.outcomes:
        stats.seen += 1
        if outcome:
            kind, reason = outcome.split(":", 1)
            (stats.malformed if kind == "m" else stats.filtered)[reason] += 1
            continue
        if dedupe:
            key = res.keys[j]
            if key in seen_keys:
                stats.filtered["duplicate"] += 1
                j += 1
                continue
            seen_keys.add(key)
        chosen[res.splits[j]].append(j)
        j += 1
        kept += 1
        if max_games is not None and kept >= max_games:
            full = True
            break
    for split_id, split in ((0, "train"), (1, "val")):
        idx = chosen[split_id]
        if not idx:
            continue
        plies = sum(res.plies[i] for i in idx)
        if tokenizer == "char":
            writer.splits[split].add_text([res.texts[i] for i in idx], plies, char_table)
        else:
            games = [res.ids[i] for i in idx]
            writer.splits[split].add_many(np.concatenate(games), [len(g) for g in games], plies)
    return kept, full
