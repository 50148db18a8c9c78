"""The prepared dataset format: the one place that writes it, reads it, checks it and finds the games.

A prepared folder (``transcendence chess prepare --out DIR``) holds, nanoGPT-style:

- ``train.bin``, ``val.bin``: np.uint16 token ids of all games concatenated, each game starting with
  the tokenizer's start id (char: ``;1.e4 e5 2.Nf3``; move: ``<start> e2e4 e7e5 g1f3 <end>``);
- ``train_offsets.npy``, ``val_offsets.npy``: int64 index of the first token of each game;
- ``meta.json``: ``format`` (the schema version, :data:`SCHEMA`), the tokenizer (name, vocabulary,
  ``vocab_size``, ``start_id``), ``counts`` per split (games, tokens, plies), and how it was made.

Writing goes to a hidden temporary folder beside the target, which replaces the target whole only
once everything is written (:class:`DatasetWriter`): an interrupted run leaves the old dataset as it
was. Reading (:func:`load_prepared`) checks the files against ``meta.json`` (sizes, counts, offsets,
token range, tokenizer) and names what is inconsistent and how to rebuild it.

>>> import numpy as np
>>> starts, ends = game_spans(np.array([0, 3, 7]), 9)
>>> list(zip(starts.tolist(), ends.tolist()))
[(0, 3), (3, 7), (7, 9)]
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from transcendence.cli import check_output_dir
from transcendence.io import atomic_write_json

__all__ = ["SCHEMA", "SCHEMAS", "FILES", "PreparedSplit", "SplitWriter", "DatasetWriter", "game_spans",
           "iter_game_tokens", "load_prepared", "check_out_dir"]

#: the schema version written into ``meta.json["format"]``
SCHEMA = "transcendence-chess-prepared/2"
#: schema versions this code reads (1: the same files, written in place)
SCHEMAS = ("transcendence-chess-prepared/1", SCHEMA)
#: the files of a prepared folder
FILES = ("train.bin", "val.bin", "train_offsets.npy", "val_offsets.npy", "meta.json")
_FLUSH_TOKENS = 1 << 20  # tokens buffered per split before a write
_SCAN = 1 << 26  # tokens per step of the token-range check (128 MiB)


def game_spans(offsets: np.ndarray, n_tokens: int) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) of each game: game ``i`` is ``tokens[starts[i]:ends[i]]``."""
    starts = np.asarray(offsets, dtype=np.int64)
    ends = np.empty_like(starts)
    if len(starts):
        ends[:-1] = starts[1:]
        ends[-1] = n_tokens
    return starts, ends


@dataclass(frozen=True)
class PreparedSplit:
    """One split of a prepared folder, checked against its ``meta.json``."""

    tokens: np.ndarray  # (n_tokens,) uint16, a read-only memmap (an empty array for an empty split)
    offsets: np.ndarray  # (n_games,) int64, the first token of each game
    meta: dict[str, Any]
    max_token: int  # the largest token id (-1 for an empty split)

    @property
    def n_games(self) -> int:
        return len(self.offsets)

    def spans(self) -> tuple[np.ndarray, np.ndarray]:
        """(starts, ends) of each game (see :func:`game_spans`)."""
        return game_spans(self.offsets, len(self.tokens))

    def game(self, i: int) -> np.ndarray:
        starts, ends = self.spans()
        return np.asarray(self.tokens[starts[i]:ends[i]])

    def __iter__(self) -> Iterator[np.ndarray]:
        starts, ends = self.spans()
        for a, b in zip(starts, ends):
            yield np.asarray(self.tokens[a:b])


def iter_game_tokens(directory: str | os.PathLike, split: str = "train") -> Iterator[np.ndarray]:
    """The token ids of each game of a prepared split, in order."""
    yield from load_prepared(directory, split)


class PreparedError(ValueError):
    """A prepared folder that is missing, inconsistent or of an unknown version."""


def _rebuild_hint(d: Path, meta: dict | None) -> str:
    argv = (meta or {}).get("argv")
    if isinstance(argv, list) and argv and any("prepare" in str(a) for a in argv):
        cmd = " ".join(str(a) for a in argv)
        if "--force" not in argv:
            cmd += " --force"
        return f"rebuild it with: {cmd}"
    return f"rebuild it with `transcendence chess prepare --input ... --out {d} --force`"


def load_prepared(directory: str | os.PathLike, split: str = "train", *, what: str = "prepared folder"
                  ) -> PreparedSplit:
    """Open one split of a prepared folder and check it against ``meta.json``.

    Checked: the schema version; the tokenizer (a known name whose vocabulary, size and start id
    match the ones recorded); the ``.bin`` size against ``counts[split]["tokens"]``; the number of
    offsets against ``counts[split]["games"]``; offsets start at 0, increase and stay inside the
    tokens; every game starts with the start id; every token id is below ``vocab_size``. A folder
    whose ``meta.json`` has no ``format`` key (hand-made test data) is checked on what it has.
    Raises :class:`PreparedError` (a ValueError) naming ``what`` (e.g. ``--data DIR``), what is
    inconsistent, and how to rebuild it.
    """
    d = Path(directory)
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    meta_path = d / "meta.json"
    if not meta_path.is_file():
        raise PreparedError(f"{what} {d}: no meta.json (not a prepared folder, or its writing was "
                            f"interrupted); {_rebuild_hint(d, None)}")
    try:
        meta = json.loads(meta_path.read_text())
        if not isinstance(meta, dict):
            raise ValueError("not an object")
    except (ValueError, UnicodeDecodeError) as exc:
        raise PreparedError(f"{what} {d}: meta.json is not valid JSON ({exc}); {_rebuild_hint(d, None)}") from None

    def bad(problem: str) -> PreparedError:
        return PreparedError(f"{what} {d}: {problem}; {_rebuild_hint(d, meta)}")

    fmt = meta.get("format")
    full = fmt is not None
    if full and fmt not in SCHEMAS:
        raise bad(f"meta.json format {fmt!r} is not one this version reads ({', '.join(SCHEMAS)})")
    tok_name = meta.get("tokenizer")
    if isinstance(tok_name, dict):
        tok_name = tok_name.get("name")
    start_id = meta.get("start_id")
    vocab_size = meta.get("vocab_size")
    if full:
        from chess_exp.data.tokenizers import TOKENIZERS, get_tokenizer
        if tok_name not in TOKENIZERS:
            raise bad(f"meta.json names tokenizer {tok_name!r}, not one of {sorted(TOKENIZERS)}")
        tok = get_tokenizer(tok_name)
        recorded = {"vocab_size": vocab_size, "start_id": start_id, "vocab": meta.get("vocab")}
        expected = {"vocab_size": tok.vocab_size, "start_id": tok.start_id, "vocab": list(tok.vocab)}
        for key in ("vocab_size", "start_id", "vocab"):
            if recorded[key] != expected[key]:
                shown = recorded[key] if key != "vocab" else "a different vocabulary"
                raise bad(f"meta.json's {key} ({shown}) does not match the {tok_name} tokenizer's")
    if not isinstance(vocab_size, int) or vocab_size < 1:
        raise bad(f"meta.json has no valid vocab_size ({vocab_size!r})")
    counts = (meta.get("counts") or {}).get(split) if full else None
    if full and not isinstance(counts, dict):
        raise bad(f"meta.json has no counts for the {split} split")

    bin_path, off_path = d / f"{split}.bin", d / f"{split}_offsets.npy"
    if not off_path.is_file():
        raise bad(f"{off_path.name} is missing")
    try:
        offsets = np.load(off_path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise bad(f"{off_path.name} cannot be read ({exc})") from None
    if offsets.ndim != 1 or offsets.dtype.kind not in "iu":
        raise bad(f"{off_path.name} is not a 1-D integer array")
    offsets = offsets.astype(np.int64, copy=False)
    size = bin_path.stat().st_size if bin_path.is_file() else None
    if size is None and (len(offsets) or (counts and counts.get("tokens"))):
        raise bad(f"{bin_path.name} is missing")
    size = size or 0
    if size % 2:
        raise bad(f"{bin_path.name} has an odd number of bytes ({size:,}): not uint16 tokens")
    n_tokens = size // 2
    if counts is not None:
        if counts.get("tokens") != n_tokens:
            raise bad(f"{bin_path.name} holds {n_tokens:,} tokens, meta.json says {counts.get('tokens')!r} "
                      "(a partial or foreign file)")
        if counts.get("games") != len(offsets):
            raise bad(f"{off_path.name} holds {len(offsets):,} games, meta.json says {counts.get('games')!r}")
    tokens: np.ndarray = (np.memmap(bin_path, dtype=np.uint16, mode="r") if n_tokens
                          else np.zeros(0, dtype=np.uint16))
    if len(offsets) and not n_tokens:
        raise bad(f"the {split} split is empty: {bin_path.name} holds no tokens but {off_path.name} lists "
                  f"{len(offsets):,} games")
    if len(offsets):
        if offsets[0] != 0 or offsets[-1] >= n_tokens or np.any(np.diff(offsets) <= 0):
            raise bad(f"{off_path.name} is not an increasing list of game starts inside {bin_path.name}")
        if isinstance(start_id, int) and np.any(tokens[offsets] != start_id):
            raise bad(f"a game in {bin_path.name} does not start with the start id {start_id}")
    elif n_tokens:
        raise bad(f"{bin_path.name} holds tokens but {off_path.name} no game")
    max_token = -1
    for a in range(0, n_tokens, _SCAN):
        max_token = max(max_token, int(tokens[a:a + _SCAN].max()))
    if max_token >= vocab_size:
        raise bad(f"{bin_path.name} holds token id {max_token}, outside the vocabulary of {vocab_size}")
    return PreparedSplit(tokens=tokens, offsets=offsets, meta=meta, max_token=max_token)


class SplitWriter:
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
        for f in (self.bin, self.offsets_tmp):
            f.flush()
            os.fsync(f.fileno())
            f.close()
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

    def abort(self) -> None:
        for f in (self.bin, self.offsets_tmp):
            if not f.closed:
                f.close()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_out_dir(out: Path, force: bool, what: str = "--out") -> None:
    """Refuse an ``out`` that would lose someone's files: a non-empty folder without ``force``, or,
    with ``force``, a folder holding anything but a prepared dataset's files."""
    check_output_dir(out, what)  # a file, under a file, or not writable: one line naming ``what``
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not force:
        raise ValueError(f"{what} {out} is not empty (use --force to replace the prepared dataset in it)")
    foreign = sorted(p.name for p in out.iterdir() if p.name not in FILES and not p.name.startswith("."))
    if foreign:
        raise ValueError(f"{what} {out} holds files that are not a prepared dataset's ({', '.join(foreign[:5])}); "
                         "--force only replaces a prepared dataset: choose an empty or new --out")


class DatasetWriter:
    """Writes a prepared folder into a hidden temporary folder beside ``out`` and, on :meth:`commit`,
    swaps it in whole (the old folder is renamed aside, the new one renamed into place, the old one
    removed). On :meth:`abort` (or an exception inside ``with``) the temporary folder is removed and
    ``out`` is left as it was. Temporary folders of runs that were killed are removed on the next run.
    """

    def __init__(self, out: str | os.PathLike, what: str = "--out"):
        self.out = Path(out)
        self.tmp = self.out.parent / f".{self.out.name}.preparing-{os.getpid()}"
        try:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self._clean_stale()
            if self.tmp.exists():
                shutil.rmtree(self.tmp)
            self.tmp.mkdir()
        except OSError as exc:
            raise ValueError(f"{what} {self.out}: cannot write there ({exc.strerror or exc}); "
                             f"choose a writable --out") from None
        self.splits = {s: SplitWriter(self.tmp, s) for s in ("train", "val")}
        self.done = False

    def _clean_stale(self) -> None:
        prefix = f".{self.out.name}."
        for p in self.out.parent.glob(f"{prefix}*-*"):
            kind, _, pid = p.name[len(prefix):].rpartition("-")
            if kind in ("preparing", "old") and pid.isdigit() and not _pid_alive(int(pid)) and p.is_dir():
                shutil.rmtree(p, ignore_errors=True)

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:  # noqa: ANN001
        if not self.done:
            self.abort()

    def close_splits(self) -> dict:
        """Finish the ``.bin`` and offsets files; the counts per split."""
        return {s: w.close() for s, w in self.splits.items()}

    def commit(self, meta: dict) -> None:
        """Write ``meta.json`` and swap the folder in."""
        atomic_write_json(self.tmp / "meta.json", meta, indent=1)
        old = None
        if self.out.exists():
            old = self.out.parent / f".{self.out.name}.old-{os.getpid()}"
            if old.exists():
                shutil.rmtree(old)
            self.out.rename(old)
        self.tmp.rename(self.out)
        self.done = True
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        try:  # make the renames durable
            fd = os.open(self.out.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:  # pragma: no cover - some filesystems refuse fsync on a folder
            pass

    def abort(self) -> None:
        for w in self.splits.values():
            w.abort()
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.done = True
