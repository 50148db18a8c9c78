"""Streaming readers for lichess games, the paper's rating filter, de-duplication and the split.

Inputs (all streamed in constant memory, compressed or not):

- PGN: ``.pgn``, ``.pgn.zst``, ``.pgn.xz``, ``.pgn.bz2``, ``.pgn.gz`` (the lichess database), split into
  games the way python-chess reads them (``chess_exp.data._pgn.split_pgn_games``);
- the paper's released shards: headerless ``site,WhiteElo,BlackElo,Result,transcript`` lines in
  ``<bin>/lichess_db_standard_rated_YYYY-MM.pgn.NN.zst`` (:func:`expand_inputs` selects the bins by cap);
- CSV with a header: a ``transcript`` column (with ``url``/``WhiteElo``/``BlackElo``/``result``), the
  sample's transcripts CSV (``moves_san``), or Karvonen's blocks (``transcript`` alone: 1,024-character
  blocks of ``;``-separated games).

Every game comes out as a :class:`Game` with its moves as SAN. Malformed games are skipped and
counted by reason in a :class:`ReadStats` (``seen == kept + malformed + filtered``); a reader never
raises on a bad game, and a damaged compressed stream ends at the damage, which ``ReadStats.cuts``
reports.

>>> from chess_exp.data.readers import transcript, in_cap, split_of
>>> transcript(["e4", "e5", "Nf3"])
'1.e4 e5 2.Nf3'
"""

from __future__ import annotations

import bz2
import csv
import hashlib
import lzma
import math
import os
import re
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, NamedTuple

import chess

from chess_exp.data import _pgn
from chess_exp.data._pgn import Malformed
from chess_exp.data._pgn_replay import push_light, replay_ids, san_to_move

__all__ = ["Game", "ReadStats", "Filters", "default_data_dir", "read_games", "in_cap", "split_of",
           "transcript", "open_binary", "input_format", "check_legal_sans", "time_control_speed",
           "expand_inputs", "source_chunks", "parse_chunk", "CsvLayout", "SHARD_LAYOUT",
           "MALFORMED_REASONS", "SAMPLE_PGN", "SAMPLE_CSV"]

SAMPLE_PGN = "lichess_rapid_2014-2022_ahmed-ghaf-404.pgn.xz"
SAMPLE_CSV = "lichess_rapid_2014-2022_ahmed-ghaf-404.transcripts.csv.xz"

#: reasons a game is counted as malformed (the reader skips it); filters have their own reasons
MALFORMED_REASONS = ("truncated", "no_moves", "illegal_move", "bad_movetext", "unknown_characters",
                     "bad_header", "non_utf8", "result_mismatch", "nonstandard", "bad_csv_row", "block_cut")


def default_data_dir() -> Path:
    """$TRANSCENDENCE_DATA, else ``<repo>/../shared/data`` (the lichess sample)."""
    env = os.environ.get("TRANSCENDENCE_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "shared" / "data"


@dataclass(frozen=True)
class Game:
    """One game. ``sans`` are SAN moves with ``+``/``#``; ``evals`` only when read with ``keep_evals``."""

    game_id: str  # lichess id (e.g. "QU5UMayF"), or a content hash when the source has none
    white_elo: int | None  # None when the source has no rating ("?")
    black_elo: int | None
    result: str  # "1-0", "0-1", "1/2-1/2", "*", or "?" when the source has no results (Karvonen's blocks)
    sans: tuple[str, ...]
    headers: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    evals: tuple[str | None, ...] | None = field(default=None, compare=False, hash=False)

    @property
    def n_plies(self) -> int:
        return len(self.sans)


@dataclass
class ReadStats:
    """What a reader (and the preparation filters) saw: games seen, kept, and dropped by reason.

    Every game seen is kept or counted under exactly one reason: ``seen == kept + sum(malformed) +
    sum(filtered)``. ``cuts`` lists the compressed files whose stream broke off (truncated or corrupt):
    every complete game before the break is read, the game the break falls in is counted as
    ``truncated``, and nothing after it can be read.
    """

    seen: int = 0  # games (or CSV rows) encountered
    kept: int = 0  # games passed on
    malformed: Counter = field(default_factory=Counter)  # reason -> count (skipped bad input)
    filtered: Counter = field(default_factory=Counter)  # reason -> count (good games filtered out)
    cuts: list = field(default_factory=list)  # {"file", "compressed_byte", "decompressed_bytes", "error"}

    def drop(self, reason: str) -> None:
        self.malformed[reason] += 1

    def merge(self, other: ReadStats) -> None:
        self.seen += other.seen
        self.kept += other.kept
        self.malformed.update(other.malformed)
        self.filtered.update(other.filtered)
        self.cuts.extend(other.cuts)

    def to_dict(self) -> dict:
        return {"seen": self.seen, "kept": self.kept, "malformed": dict(sorted(self.malformed.items())),
                "filtered": dict(sorted(self.filtered.items())), "cuts": list(self.cuts)}

    def summary(self) -> str:
        """A few human-readable lines: kept, malformed by reason, filtered by reason, stream cuts."""
        lines = [f"games seen: {self.seen:,}  kept: {self.kept:,}  "
                 f"malformed: {sum(self.malformed.values()):,}  filtered: {sum(self.filtered.values()):,}"]
        for title, counter in (("malformed (skipped)", self.malformed), ("filtered out", self.filtered)):
            if counter:
                lines.append(f"  {title}: " + ", ".join(f"{k}={v:,}" for k, v in counter.most_common()))
        for cut in self.cuts:
            lines.append(f"  stream cut: {cut['file']} breaks off at compressed byte {cut['compressed_byte']:,} "
                         f"after {cut['decompressed_bytes']:,} bytes of text ({cut['error']}); the games "
                         "before it are read, nothing after it")
        return "\n".join(lines)


# --- input formats and decompression ----------------------------------------------------------

_COMPRESSIONS = (".zst", ".zstd", ".xz", ".bz2", ".gz")
_SHARD_NAME_RE = re.compile(r"\.pgn\.[0-9]+$")


def input_format(path: str | os.PathLike) -> str:
    """"pgn", "csv" or "shard" from the file name (compression suffixes ignored).

    "shard": the paper's released training files, ``lichess_db_standard_rated_YYYY-MM.pgn.NN[.zst]``
    (headerless ``site,WhiteElo,BlackElo,Result,transcript`` lines despite the ``.pgn`` in the name).
    """
    name = Path(path).name.lower()
    for suffix in _COMPRESSIONS:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    if name.endswith(".pgn"):
        return "pgn"
    if name.endswith(".csv"):
        return "csv"
    if _SHARD_NAME_RE.search(name):
        return "shard"
    raise ValueError(f"input {str(path)!r}: unknown format; expected .pgn, .csv or the paper's shards "
                     f"(.pgn.NN), optionally compressed with {', '.join(_COMPRESSIONS)}")


def _compression(path: Path) -> str | None:
    name = path.name.lower()
    for suffix, kind in ((".xz", "xz"), (".bz2", "bz2"), (".gz", "gz"), (".zst", "zst"), (".zstd", "zst")):
        if name.endswith(suffix):
            return kind
    return None


class _Decoder:
    """A decompressed byte stream that never raises on damage: a truncated or corrupt stream ends at
    the break, which is recorded in ``stats.cuts``. Output comes in small steps (4 KiB), so at most
    one step of text before the damage is lost (xz, gzip, bz2; zstd: the output of one 4 KiB input
    piece). Concatenated streams (multi-member gzip, several xz streams, zstd frames) are read whole.
    """

    _STEP = 1 << 12
    _IN = 1 << 16

    def __init__(self, raw: BinaryIO, kind: str, stats: ReadStats, name: str):
        self.raw, self.kind, self.stats, self.name = raw, kind, stats, name
        self.dec = self._new()
        self.pending = b""  # compressed input not yet given to the decompressor
        self.out = 0  # decompressed bytes so far
        self.consumed = 0  # compressed bytes read from the file
        self.done = False
        self.started = False  # the current stream has had input

    def _new(self):  # noqa: ANN202
        if self.kind == "xz":
            return lzma.LZMADecompressor()
        if self.kind == "bz2":
            return bz2.BZ2Decompressor()
        if self.kind == "gz":
            return zlib.decompressobj(31)
        try:
            import zstandard
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ValueError(f"reading {self.name}: .zst needs the 'zstandard' package "
                             "(pip install zstandard)") from exc
        return zstandard.ZstdDecompressor().decompressobj()

    def _cut(self, error: str) -> None:
        self.done = True
        self.stats.cuts.append({"file": self.name, "compressed_byte": self.consumed,
                                "decompressed_bytes": self.out, "error": error})

    def _step(self) -> bytes:
        """Some output (b"" at the end)."""
        while not self.done:
            dec = self.dec
            if dec.eof:  # the end of one stream: another may follow
                rest = dec.unused_data + self.pending
                self.dec, self.pending, self.started = self._new(), b"", False
                if rest.strip(b"\0"):  # (zero bytes: stream padding)
                    self.pending = rest
                continue
            if self.kind == "gz" and dec.unconsumed_tail:
                data, self.pending = dec.unconsumed_tail, b""
            elif self.pending:
                data, self.pending = self.pending, b""
            elif self.kind in ("xz", "bz2") and self.started and not dec.needs_input:
                data = b""
            else:
                data = self.raw.read(self._IN if self.kind != "zst" else self._STEP)
                self.consumed += len(data)
                if not data:
                    if self.started:
                        self._cut("the compressed stream ends before its end marker (file truncated?)")
                    else:
                        self.done = True
                    return b""
            self.started = True
            try:
                if self.kind == "zst":
                    if len(data) > self._STEP:
                        data, self.pending = data[: self._STEP], data[self._STEP:] + self.pending
                    chunk = dec.decompress(data)
                else:
                    chunk = dec.decompress(data, self._STEP)
            except Exception as exc:  # noqa: BLE001 - lzma/bz2/zlib/zstd each raise their own error type
                self._cut(f"{type(exc).__name__}: {str(exc)[:120]}")
                return b""
            if chunk:
                self.out += len(chunk)
                return chunk
        return b""

    def read(self, n: int = -1) -> bytes:
        parts = []
        want = n if n >= 0 else 1 << 62
        while want > 0:
            b = self._step()
            if not b:
                break
            parts.append(b)
            want -= len(b)
        return b"".join(parts)


class _Source:
    """A decompressed byte stream plus the position in the underlying (compressed) file."""

    def __init__(self, path: str | os.PathLike, raw: BinaryIO | None = None, stats: ReadStats | None = None):
        """``raw``: an already open binary file of ``path`` to read from (e.g. one that hashes);
        ``stats``: where a broken stream is reported (a private one if None)."""
        self.path = Path(path)
        if raw is None and not self.path.exists():
            raise ValueError(f"input {str(path)!r} does not exist")
        self.raw = raw if raw is not None else open(self.path, "rb")
        self.stats = stats if stats is not None else ReadStats()
        kind = _compression(self.path)
        self.stream: BinaryIO = (self.raw if kind is None  # type: ignore[assignment]
                                 else _Decoder(self.raw, kind, self.stats, str(self.path)))

    def position(self) -> int:
        try:
            return self.raw.tell()
        except (ValueError, OSError):
            return 0

    def close(self) -> None:
        self.raw.close()


def open_binary(path: str | os.PathLike) -> BinaryIO:
    """Open a (possibly compressed) file for streaming binary reads (a damaged stream just ends)."""
    return _Source(path).stream


def expand_inputs(inputs: Iterable[str | os.PathLike], cap: int | None = None) -> list[Path]:
    """Files to read, in order: files as given; a folder is read the way the paper's code reads its
    released data: its numeric subfolders are rating bins (``1000`` holds the games whose higher
    rating is in 901-1000) and those with ``int(name) <= cap`` are read (all without a cap), in
    increasing order, each folder's files sorted by name. A folder without numeric subfolders is
    read as its files (sorted) in a known format. ValueError for a missing input or an empty folder."""
    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_file():
            files.append(p)
            continue
        if not p.is_dir():
            raise ValueError(f"--input {p}: no such file or folder")
        bins = sorted((int(d.name), d) for d in p.iterdir() if d.is_dir() and d.name.isdigit())
        if bins:
            chosen = [d for b, d in bins if cap is None or b <= cap]
            found = [f for d in chosen for f in sorted(d.iterdir()) if f.is_file() and _known(f)]
            if not found:
                raise ValueError(f"--input {p}: no shard in the rating bins <= {cap} "
                                 f"(bins: {', '.join(str(b) for b, _ in bins)})")
            files.extend(found)
        else:
            found = [f for f in sorted(p.iterdir()) if f.is_file() and _known(f)]
            if not found:
                raise ValueError(f"--input {p}: the folder holds no .pgn, .csv or .pgn.NN file")
            files.extend(found)
    return files


def _known(path: Path) -> bool:
    try:
        input_format(path)
    except ValueError:
        return False
    return not path.name.startswith(".")


# --- records: the common currency of the readers ----------------------------------------------

class _Record(NamedTuple):
    game_id: str
    white_elo: int | None
    black_elo: int | None
    result: str
    transcript: bytes  # "1.e4 e5 2.Nf3", validated without a board
    n_plies: int
    headers: bytes | dict  # PGN: the raw header block (parsed lazily) or a dict; CSV: dict of str
    movetext: bytes | None  # raw PGN movetext (for evals), None for CSV


def _record_header(rec: _Record, key: str, csv_key: str | None = None) -> str | None:
    """One header of a record: PGN tag ``key``, or CSV column ``csv_key``."""
    h = rec.headers
    if isinstance(h, bytes):
        value = _pgn.header_value(h, key.encode())
        return None if value is None else value.decode("utf-8", "replace")
    if h and isinstance(next(iter(h)), bytes):
        value = h.get(key.encode())
        return None if value is None else value.decode("utf-8", "replace")
    return h.get(key) if csv_key is None else h.get(csv_key, h.get(key))


def _record_headers(rec: _Record) -> dict[str, str]:
    h = rec.headers
    if isinstance(h, bytes):
        h = _pgn.parse_headers(h)
    if h and isinstance(next(iter(h)), bytes):
        return {k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in h.items()}
    return dict(h)


_STR_RESULTS = {b"1-0": "1-0", b"0-1": "0-1", b"1/2-1/2": "1/2-1/2", b"*": "*"}


def _elo(value: bytes | str | None) -> int | None:
    if value is None:
        return None
    v = value.strip()
    if v in (b"?", b"", b"-", b"None", "?", "", "-", "None"):
        return None
    try:
        return int(v)
    except ValueError:
        pass
    try:  # CSV writers sometimes store ratings as floats ("1500.0")
        f = float(v)
    except ValueError:
        f = math.nan
    if not f.is_integer():
        raise Malformed("bad_header", f"rating {v!r} is not an integer")
    return int(f)


def _game_id_from_site(site: bytes | str) -> str | None:
    """The 8-character lichess game id of ``https://lichess.org/<id>[<player id>][/black]``."""
    s = site.decode("utf-8", "replace") if isinstance(site, bytes) else site
    if "lichess.org/" not in s:
        return None
    gid = s.split("lichess.org/", 1)[1].split("/", 1)[0].split("?", 1)[0].split("#", 1)[0].strip()
    return gid[:8] if len(gid) >= 8 and gid[:8].isalnum() else (gid or None)


def _content_id(*parts: bytes) -> str:
    h = hashlib.blake2b(digest_size=10)
    for p in parts:
        h.update(p)
        h.update(b"\x00")
    return "h" + h.hexdigest()


class _Filtered(Exception):
    """A good game that a header-level filter rejects before its moves are parsed."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


#: one game's outcome in a parsed chunk: a record, or ("m", malformed reason) / ("f", filter reason)
Outcome = "_Record | tuple[str, str]"


def _pgn_record(raw: bytes, filters: Filters | None = None) -> _Record:
    """One game of :func:`chess_exp.data._pgn.split_pgn_games`; Malformed, or ("f", reason) (or
    _Filtered) when ``filters`` rejects it by its headers (checked before the movetext is parsed)."""
    if not raw.isascii():
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            raise Malformed("non_utf8") from None
    head, sep, movetext = raw.partition(b"\n\n")
    if not sep and b"\n" in raw:  # no blank line between the headers and the moves
        lines = raw.split(b"\n")
        k = next((i for i, line in enumerate(lines) if not line.startswith(b"[")), len(lines))
        head, movetext = b"\n".join(lines[:k]), b"\n".join(lines[k:])
        sep = b"\n" if movetext.strip() else b""
    head = head.strip()
    if head and not head.startswith(b"["):
        raise Malformed("bad_header", "a game does not start with a header line")
    if not movetext.strip():  # e.g. a file cut inside the last game's headers
        raise Malformed("truncated", "headers without movetext")
    passed = False
    if filters is not None and head:
        # header-first: the few tags the filters need, read before the block is validated and the
        # moves parsed (most games of a capped run stop here)
        # (the order of Filters.reason, inlined for the common case; the hot path raises no exception)
        hr = _pgn.header_value(head, b"Result")
        if hr in _STR_RESULTS:
            if filters.drop_unfinished_result and hr == b"*":
                return ("f", "no_result")  # type: ignore[return-value]
            try:
                we, be = _elo(_pgn.header_value(head, b"WhiteElo")), _elo(_pgn.header_value(head, b"BlackElo"))
            except Malformed:
                pass  # the full check below names the problem
            else:
                cap = filters.cap
                if cap is not None and (we is None or be is None):
                    return ("f", "unrated")  # type: ignore[return-value]
                if cap is not None and max(we, be) > cap:  # type: ignore[type-var]
                    return ("f", "above_cap")  # type: ignore[return-value]
                if filters.time_controls or filters.finished_only:
                    reason = filters.reason(we, be, _STR_RESULTS[hr], None, lambda tag, col: _bytes_header(
                        lambda k: _pgn.header_value(head, k), tag))
                    if reason is not None:
                        return ("f", reason)  # type: ignore[return-value]
                passed = True
    headers: bytes | dict[bytes, bytes]
    if not head:  # a game without headers (python-chess reads these too)
        headers, get = {}, (lambda key: None)
    elif _pgn.header_block_ok(head):
        headers, get = head, lambda key: _pgn.header_value(head, key)
    else:
        headers = _pgn.parse_headers(head)  # raises bad_header
        get = headers.get
    variant = get(b"Variant")
    if (variant and variant.lower() not in (b"standard", b"chess", b"from position")) or get(b"FEN") is not None:
        raise Malformed("nonstandard", "variant or custom start position")
    header_result = get(b"Result")
    if header_result is not None and header_result not in _STR_RESULTS:
        raise Malformed("bad_header", "unknown Result")
    white_elo, black_elo = _elo(get(b"WhiteElo")), _elo(get(b"BlackElo"))
    if filters is not None and header_result is not None and not passed:
        reason = filters.reason(white_elo, black_elo, _STR_RESULTS[header_result], None,
                                lambda tag, col: _bytes_header(get, tag))
        if reason is not None:
            raise _Filtered(reason)
    t, result, n_plies = _pgn.movetext_to_transcript(movetext)
    if header_result is not None and result != header_result:
        raise Malformed("result_mismatch", f"Result header {header_result!r}, movetext {result!r}")
    _check_mate_result(t, n_plies, result)
    if filters is not None and header_result is None:
        reason = filters.reason(white_elo, black_elo, _STR_RESULTS[result], None,
                                lambda tag, col: _bytes_header(get, tag))
        if reason is not None:
            raise _Filtered(reason)
    gid = _game_id_from_site(get(b"Site") or b"") or _content_id(head, t)
    return _Record(gid, white_elo, black_elo, _STR_RESULTS[result], t, n_plies, headers, movetext)


def _bytes_header(get: Callable[[bytes], bytes | None], tag: str) -> str | None:
    value = get(tag.encode())
    return None if value is None else value.decode("utf-8", "replace")


def _check_mate_result(t: bytes, n_plies: int, result: bytes) -> None:
    if t.endswith(b"#") and result in RESULTS_DECIDED and result != (b"1-0" if n_plies % 2 == 1 else b"0-1"):
        raise Malformed("result_mismatch", "checkmate by one side, the result says otherwise")


RESULTS_DECIDED = (b"1-0", b"0-1", b"1/2-1/2")


def parse_pgn_chunk(chunk: bytes, filters: Filters | None = None) -> list:
    """The outcome of each game of a chunk of whole PGN games (see :data:`Outcome`), in order."""
    out: list = []
    for raw in _pgn.split_pgn_games(chunk):
        try:
            out.append(_pgn_record(raw, filters))
        except Malformed as exc:
            out.append(("m", exc.reason))
        except _Filtered as exc:
            out.append(("f", exc.reason))
    return out


# --- CSV: the sample's transcripts, the paper's shards (with or without a header), Karvonen's blocks

@dataclass(frozen=True)
class CsvLayout:
    """Which column holds what. ``kind``: "sample" (``moves_san``: SAN separated by spaces),
    "transcript" (a ``1.e4 e5`` transcript: the paper's shards), or "blocks" (Karvonen's
    ``transcript`` column of fixed-length blocks ``;1.e4 e5 ...;1.d4 ...``, no ratings or results)."""

    kind: str
    width: int
    game_id: int = -1
    white_elo: int = -1
    black_elo: int = -1
    result: int = -1
    moves: int = -1
    extra: tuple[tuple[str, int], ...] = ()
    block_len: int = 1024  # blocks of this length end inside a game: their last game is counted block_cut


#: the paper's released shards: ``site,WhiteElo,BlackElo,Result,transcript`` with no header line
SHARD_LAYOUT = CsvLayout("transcript", 5, 0, 1, 2, 3, 4)
_CSV_EXTRA = ("time_control", "termination", "lichess_status", "utc_date", "eco", "TimeControl", "Termination")
_RESULT_WORDS = ("1-0", "0-1", "1/2-1/2", "*", "None", "?")


def _looks_like_shard_row(row: list[str]) -> bool:
    def rating(v: str) -> bool:
        v = v.strip()
        return v in ("None", "?", "") or v.replace(".", "", 1).isdigit()
    return (len(row) == 5 and rating(row[1]) and rating(row[2]) and row[3].strip() in _RESULT_WORDS)


def csv_layout(first_line: str, fmt: str, path: str) -> tuple[CsvLayout, bool]:
    """(layout, whether ``first_line`` is a data row) from the first line of a CSV or shard file."""
    row = _csv_split(first_line) if first_line.count('"') % 2 == 0 else first_line.split(",")
    names = {name.strip().lower(): i for i, name in enumerate(row)}
    if "moves_san" in names:
        return CsvLayout("sample", len(row), names.get("game_id", -1), names.get("white_elo", -1),
                         names.get("black_elo", -1), names.get("result", -1), names["moves_san"],
                         tuple((n, i) for n, i in ((c.strip(), i) for i, c in enumerate(row)) if n in _CSV_EXTRA)), False
    if "transcript" in names:
        gid = next((names[k] for k in ("url", "site", "game_id", "id") if k in names), -1)
        we = next((names[k] for k in ("whiteelo", "white_elo") if k in names), -1)
        be = next((names[k] for k in ("blackelo", "black_elo") if k in names), -1)
        res = next((names[k] for k in ("result", "outcome") if k in names), -1)
        extra = tuple((n, i) for n, i in ((c.strip(), i) for i, c in enumerate(row)) if n in _CSV_EXTRA)
        if we < 0 and be < 0 and res < 0:
            return CsvLayout("blocks", len(row), moves=names["transcript"]), False
        return CsvLayout("transcript", len(row), gid, we, be, res, names["transcript"], extra), False
    if _looks_like_shard_row(row):
        return SHARD_LAYOUT, True
    raise ValueError(f"{path}: CSV header {row[:12]} has neither 'moves_san' (the sample's transcripts CSV) "
                     "nor 'transcript' (the paper's shards, Karvonen's blocks), and the first line is not a "
                     "headerless shard line site,WhiteElo,BlackElo,Result,transcript")


def _csv_split(line: str) -> list[str]:
    """One CSV line (games never span lines): a row, or Malformed("bad_csv_row") for broken quoting."""
    if '"' not in line:
        return line.split(",")
    if line.count('"') % 2:
        raise Malformed("bad_csv_row", "unbalanced quote")
    try:
        return next(csv.reader([line], strict=True))
    except (csv.Error, StopIteration):
        raise Malformed("bad_csv_row", "bad quoting") from None


def _csv_row_record(line: str, layout: CsvLayout, filters: Filters | None) -> _Record:
    row = _csv_split(line)
    if len(row) != layout.width:
        if len(row) < layout.width:
            raise Malformed("truncated", "too few columns")
        raise Malformed("bad_csv_row", "too many columns")
    result = row[layout.result].strip() if layout.result >= 0 else "?"
    if result == "None":
        result = "*"  # the paper's shards write a missing result as None
    if result not in ("1-0", "0-1", "1/2-1/2", "*", "?"):
        raise Malformed("bad_header", f"unknown result {result[:20]!r}")
    white_elo = _elo(row[layout.white_elo]) if layout.white_elo >= 0 else None
    black_elo = _elo(row[layout.black_elo]) if layout.black_elo >= 0 else None
    headers = {name: row[i] for name, i in layout.extra}
    if filters is not None:
        reason = filters.reason(white_elo, black_elo, result, None, lambda tag, col: headers.get(col, headers.get(tag)))
        if reason is not None:
            raise _Filtered(reason)
    moves = row[layout.moves].encode("utf-8")
    if layout.kind == "sample":
        t = _pgn.normalise_transcript(_pgn.sans_to_transcript(moves.decode().split()).encode())
    else:
        t = _pgn.normalise_transcript(moves)
    n_plies = t.count(b" ") + 1
    _check_mate_result(t, n_plies, result.encode())
    gid = row[layout.game_id].strip() if layout.game_id >= 0 else ""
    if layout.kind != "sample":
        gid = (_game_id_from_site(gid) or (gid if gid not in ("", "None") else "")) or _content_id(moves)
    if not gid:
        raise Malformed("bad_header", "empty game id")
    return _Record(gid, white_elo, black_elo, result, t, n_plies, headers, None)


def _block_outcomes(line: str, layout: CsvLayout, filters: Filters | None) -> list:
    try:
        row = _csv_split(line)
        if len(row) != layout.width:
            raise Malformed("truncated" if len(row) < layout.width else "bad_csv_row", "wrong number of columns")
    except Malformed as exc:
        return [("m", exc.reason)]
    block = row[layout.moves]
    pieces = block.split(";")
    out: list = []
    if pieces[0].strip():
        out.append(("m", "block_cut"))  # the block starts inside a game
    games = pieces[1:]
    for k, piece in enumerate(games):
        if k == len(games) - 1 and len(block) >= layout.block_len:
            out.append(("m", "block_cut"))  # a full block ends inside its last game
            continue
        try:
            t = _pgn.normalise_transcript(piece.encode("utf-8"))
            n_plies = t.count(b" ") + 1
            if filters is not None:
                reason = filters.reason(None, None, "?", n_plies, lambda tag, col: None)
                if reason is not None:
                    raise _Filtered(reason)
            out.append(_Record(_content_id(t), None, None, "?", t, n_plies, {}, None))
        except Malformed as exc:
            out.append(("m", exc.reason))
        except _Filtered as exc:
            out.append(("f", exc.reason))
    return out


def parse_csv_chunk(chunk: bytes, layout: CsvLayout, filters: Filters | None = None) -> list:
    """The outcome of each row (each game of a block row) of a chunk of whole CSV lines, in order."""
    out: list = []
    for raw in chunk.split(b"\n"):
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError:
            out.append(("m", "non_utf8"))
            continue
        if layout.kind == "blocks":
            out.extend(_block_outcomes(line, layout, filters))
            continue
        try:
            out.append(_csv_row_record(line, layout, filters))
        except Malformed as exc:
            out.append(("m", exc.reason))
        except _Filtered as exc:
            out.append(("f", exc.reason))
    return out


def parse_chunk(fmt: str, layout: CsvLayout | None, chunk: bytes, filters: Filters | None = None) -> list:
    """:func:`parse_pgn_chunk` or :func:`parse_csv_chunk` (``fmt`` from :func:`source_chunks`)."""
    if fmt == "pgn":
        return parse_pgn_chunk(chunk, filters)
    assert layout is not None
    return parse_csv_chunk(chunk, layout, filters)


def _line_chunks(stream: BinaryIO, first: bytes, chunk_size: int) -> Iterator[bytes]:
    carry = first
    while True:
        block = stream.read(chunk_size)
        if not block:
            break
        buf = carry + block if carry else block
        cut = buf.rfind(b"\n")
        if cut < 0:
            carry = buf
            continue
        yield buf[: cut + 1]
        carry = buf[cut + 1:]
    if carry.strip():
        yield carry


def source_chunks(path: str | os.PathLike, source: _Source, chunk_size: int = 1 << 20
                  ) -> tuple[str, CsvLayout | None, Iterator[bytes]]:
    """(format, CSV layout or None, chunks of whole games) of one input: what :func:`parse_chunk`
    takes, so that the chunks can be parsed in other processes. ValueError for an unknown CSV layout."""
    fmt = input_format(path)
    if fmt == "pgn":
        return "pgn", None, _pgn.pgn_chunks(source.stream, chunk_size)
    stream = source.stream
    head = b""
    while b"\n" not in head:  # the first line decides the layout
        block = stream.read(1 << 16)
        if not block:
            break
        head += block
    first_line, _, rest = head.partition(b"\n")
    first_text = first_line.decode("utf-8", "replace").lstrip("\ufeff").rstrip("\r")
    if not first_text.strip():
        return "csv", SHARD_LAYOUT, iter(())
    layout, is_data = csv_layout(first_text, fmt, str(path))
    return "csv", layout, _line_chunks(stream, (first_line + b"\n" if is_data else b"") + rest, chunk_size)


def _records(path: str | os.PathLike, stats: ReadStats, source: _Source | None = None,
             filters: Filters | None = None) -> Iterator[_Record]:
    """The records of one file in order, counting every game in ``stats`` (seen, malformed, filtered
    by ``filters``' header-level checks, applied before the moves are parsed)."""
    source = source or _Source(path, stats=stats)
    source.stats = stats
    if isinstance(source.stream, _Decoder):
        source.stream.stats = stats
    try:
        fmt, layout, chunks = source_chunks(path, source)
        for chunk in chunks:
            for item in parse_chunk(fmt, layout, chunk, filters):
                stats.seen += 1
                if isinstance(item, _Record):
                    yield item
                elif item[0] == "m":
                    stats.malformed[item[1]] += 1
                else:
                    stats.filtered[item[1]] += 1
    finally:
        source.close()


# --- public reader ---------------------------------------------------------------------------

_ANY_MOVE_ID = [0] * (64 * 64 * 7)  # replay_ids needs an id table; read_games only wants the verdict


def check_legal_sans(sans: Iterable[str]) -> list[chess.Move]:
    """Replay ``sans`` from the initial position; the moves, or Malformed("illegal_move")."""
    board = chess.Board()
    moves = []
    for i, san in enumerate(sans):
        try:
            move = san_to_move(board, san)
        except ValueError:
            raise Malformed("illegal_move", f"ply {i + 1}: {san}") from None
        push_light(board, move)
        moves.append(move)
    return moves


def read_games(path: str | os.PathLike, *, keep_evals: bool = False, stats: ReadStats | None = None,
               check_legal: bool = True) -> Iterator[Game]:
    """Stream the games of one file (PGN or CSV, compressed or not) in file order, constant memory.

    Parameters
    ----------
    path : a ``.pgn``/``.csv`` file, optionally ``.zst``/``.xz``/``.bz2``/``.gz`` compressed.
    keep_evals : attach the ``[%eval ...]`` value after each ply as ``Game.evals`` (PGN only; never
        part of any transcript).
    stats : a :class:`ReadStats` that counts games seen, kept, and malformed games by reason.
    check_legal : replay every game with python-chess and skip (as ``illegal_move``) any game with an
        illegal move. Without it only the board-free checks of ``chess_exp.data._pgn`` run (much faster).

    Malformed games (truncated, illegal moves, unknown characters, bad headers, non-UTF-8 bytes, ...)
    are skipped and counted; the reader never raises on a bad game. It raises ValueError for a
    missing file or an unknown format.
    """
    stats = stats if stats is not None else ReadStats()
    for rec in _records(path, stats):
        sans = _pgn.transcript_to_sans(rec.transcript)
        if check_legal:
            verdict = replay_ids(sans, _ANY_MOVE_ID)
            if verdict == "other":  # a SAN spelling left to python-chess
                try:
                    check_legal_sans(sans)
                except Malformed as exc:
                    verdict = exc.reason
            if isinstance(verdict, str) and verdict != "other":
                stats.drop(verdict)
                continue
        evals = None
        if keep_evals and rec.movetext is not None:
            evals = _pgn.split_evals(rec.movetext, rec.n_plies)
        try:
            headers = _record_headers(rec)
        except Malformed as exc:  # not expected (the fast header check implies the full one)
            stats.drop(exc.reason)
            continue
        stats.kept += 1
        yield Game(rec.game_id, rec.white_elo, rec.black_elo, rec.result, tuple(sans), headers, evals)


# --- filters, split, transcript ---------------------------------------------------------------

def in_cap(game: Game, cap: int | None) -> bool:
    """The paper's rating filter: both players rated <= cap (a game without ratings is in no cap).

    ``cap=None`` accepts every game.
    """
    if cap is None:
        return True
    return (game.white_elo is not None and game.black_elo is not None
            and max(game.white_elo, game.black_elo) <= cap)


def split_of(game_id: str, val_fraction: float = 0.05) -> str:
    """"val" for a deterministic ``val_fraction`` of game ids (by a BLAKE2b hash), else "train"."""
    if not 0.0 <= val_fraction <= 1.0:
        raise ValueError(f"val_fraction must be in [0, 1], got {val_fraction}")
    h = int.from_bytes(hashlib.blake2b(game_id.encode("utf-8"), digest_size=8).digest(), "big")
    return "val" if h < val_fraction * 2.0**64 else "train"


def transcript(sans: Iterable[str]) -> str:
    """The paper's transcript ``1.e4 e5 2.Nf3 Nc6`` (no leading ';', no result)."""
    return _pgn.sans_to_transcript(list(sans))


def time_control_speed(time_control: str) -> str | None:
    """lichess speed of a TimeControl tag ("600+0" -> "rapid"): estimated duration base + 40 * increment.

    ultraBullet < 30 s <= bullet < 180 s <= blitz < 480 s <= rapid < 1500 s <= classical; "-" is
    correspondence; None when unparseable.
    """
    tc = time_control.strip()
    if tc == "-":
        return "correspondence"
    base, _, inc = tc.partition("+")
    try:
        seconds = int(base) + 40 * int(inc or 0)
    except ValueError:
        return None
    if seconds < 30:
        return "ultrabullet"
    if seconds < 180:
        return "bullet"
    if seconds < 480:
        return "blitz"
    if seconds < 1500:
        return "rapid"
    return "classical"


@dataclass(frozen=True, kw_only=True)
class Filters:
    """Which games preparation keeps (besides the malformed ones, always skipped)."""

    cap: int | None = None  # the paper's rating cap: both players rated <= cap (None = no cap)
    min_plies: int = 1  # minimum number of plies (half-moves)
    time_controls: tuple[str, ...] = ()  # exact TimeControl tags ("600+0") or speeds ("rapid"); () = all
    finished_only: bool = False  # keep only games that ended on the board (Termination "Normal";
    # sources without a termination field, like the paper's shards, are not filtered by it)
    drop_unfinished_result: bool = True  # the paper drops results "*" (no result)

    def reason(self, white_elo: int | None, black_elo: int | None, result: str, n_plies: int | None,
               header: Callable[[str, str], str | None]) -> str | None:
        """None if the game passes, else the filter reason it is counted under.

        ``header(pgn_tag, csv_column)`` returns a header value or None. ``n_plies=None``: the moves
        are not parsed yet (the readers check the headers first), so ``min_plies`` is not checked.
        A result ``"?"`` (a source without results, such as Karvonen's blocks) is not ``"*"``.
        """
        if self.drop_unfinished_result and result == "*":
            return "no_result"
        if self.cap is not None:
            if white_elo is None or black_elo is None:
                return "unrated"
            if max(white_elo, black_elo) > self.cap:
                return "above_cap"
        if n_plies is not None and n_plies < self.min_plies:
            return "too_short"
        if self.time_controls:
            tc = header("TimeControl", "time_control")
            if tc is None or (tc not in self.time_controls
                              and time_control_speed(tc) not in self.time_controls):
                return "time_control"
        if self.finished_only:
            term = header("Termination", "termination")
            if term is not None and term.strip().lower() != "normal":  # unknown (paper's shards): kept
                return "not_finished"
        return None

    def game_reason(self, game: Game) -> str | None:
        """``reason`` for a :class:`Game`."""
        return self.reason(game.white_elo, game.black_elo, game.result, game.n_plies,
                           lambda tag, col: game.headers.get(tag, game.headers.get(col)))

    def record_reason(self, rec: _Record) -> str | None:
        return self.reason(rec.white_elo, rec.black_elo, rec.result, rec.n_plies,
                           lambda tag, col: _record_header(rec, tag, col))
