"""Streaming readers for lichess games, the paper's rating filter, de-duplication and the split.

Inputs (all streamed in constant memory, compressed or not):

- PGN: ``.pgn``, ``.pgn.zst``, ``.pgn.xz``, ``.pgn.bz2``, ``.pgn.gz`` (the lichess database);
- the paper's CSV shards ``url,WhiteElo,BlackElo,result,transcript`` (``.csv``, compressed too);
- the sample's transcripts CSV (``game_id, ..., white_elo, black_elo, result, ..., moves_san``).

Every game comes out as a :class:`Game` with its moves as SAN. Malformed games are skipped and
counted by reason in a :class:`ReadStats`; a reader never raises on a bad game.

>>> from chess_exp.data.readers import transcript, in_cap, split_of
>>> transcript(["e4", "e5", "Nf3"])
'1.e4 e5 2.Nf3'
"""

from __future__ import annotations

import bz2
import csv
import gzip
import hashlib
import lzma
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator, NamedTuple

import chess

from chess_exp.data import _pgn
from chess_exp.data._pgn import Malformed
from chess_exp.data._pgn_replay import push_light, replay_ids, san_to_move

__all__ = ["Game", "ReadStats", "Filters", "default_data_dir", "read_games", "in_cap", "split_of",
           "transcript", "open_binary", "input_format", "check_legal_sans", "time_control_speed",
           "MALFORMED_REASONS", "SAMPLE_PGN", "SAMPLE_CSV"]

SAMPLE_PGN = "lichess_rapid_2014-2022_ahmed-ghaf-404.pgn.xz"
SAMPLE_CSV = "lichess_rapid_2014-2022_ahmed-ghaf-404.transcripts.csv.xz"

#: reasons a game is counted as malformed (the reader skips it); filters have their own reasons
MALFORMED_REASONS = ("truncated", "no_moves", "illegal_move", "bad_movetext", "unknown_characters",
                     "bad_header", "non_utf8", "result_mismatch", "nonstandard", "corrupt_stream")


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
    result: str  # "1-0", "0-1", "1/2-1/2" or "*"
    sans: tuple[str, ...]
    headers: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    evals: tuple[str | None, ...] | None = field(default=None, compare=False, hash=False)

    @property
    def n_plies(self) -> int:
        return len(self.sans)


@dataclass
class ReadStats:
    """What a reader (and the preparation filters) saw: games seen, kept, and dropped by reason."""

    seen: int = 0  # games (or CSV rows) encountered
    kept: int = 0  # games passed on
    malformed: Counter = field(default_factory=Counter)  # reason -> count (skipped bad input)
    filtered: Counter = field(default_factory=Counter)  # reason -> count (good games filtered out)

    def drop(self, reason: str) -> None:
        self.malformed[reason] += 1

    def to_dict(self) -> dict:
        return {"seen": self.seen, "kept": self.kept, "malformed": dict(sorted(self.malformed.items())),
                "filtered": dict(sorted(self.filtered.items()))}

    def summary(self) -> str:
        """A few human-readable lines: kept, malformed by reason, filtered by reason."""
        lines = [f"games seen: {self.seen:,}  kept: {self.kept:,}  "
                 f"malformed: {sum(self.malformed.values()):,}  filtered: {sum(self.filtered.values()):,}"]
        for title, counter in (("malformed (skipped)", self.malformed), ("filtered out", self.filtered)):
            if counter:
                lines.append(f"  {title}: " + ", ".join(f"{k}={v:,}" for k, v in counter.most_common()))
        return "\n".join(lines)


# --- input formats and decompression ----------------------------------------------------------

_COMPRESSIONS = (".zst", ".zstd", ".xz", ".bz2", ".gz")


def input_format(path: str | os.PathLike) -> str:
    """"pgn" or "csv" from the file name (compression suffixes ignored)."""
    name = Path(path).name.lower()
    for suffix in _COMPRESSIONS:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    if name.endswith(".pgn"):
        return "pgn"
    if name.endswith(".csv"):
        return "csv"
    raise ValueError(f"input {str(path)!r}: unknown format; expected .pgn or .csv, optionally "
                     f"compressed with {', '.join(_COMPRESSIONS)}")


class _Source:
    """A decompressed byte stream plus the position in the underlying (compressed) file."""

    def __init__(self, path: str | os.PathLike, raw: BinaryIO | None = None):
        """``raw``: an already open binary file of ``path`` to read from (e.g. one that hashes)."""
        self.path = Path(path)
        if raw is None and not self.path.exists():
            raise ValueError(f"input {str(path)!r} does not exist")
        self.raw = raw if raw is not None else open(self.path, "rb")
        name = self.path.name.lower()
        if name.endswith(".xz"):
            self.stream: BinaryIO = lzma.LZMAFile(self.raw)
        elif name.endswith(".bz2"):
            self.stream = bz2.BZ2File(self.raw)
        elif name.endswith(".gz"):
            self.stream = gzip.GzipFile(fileobj=self.raw)
        elif name.endswith((".zst", ".zstd")):
            try:
                import zstandard
            except ImportError as exc:  # pragma: no cover - depends on the environment
                raise ValueError(f"reading {path}: .zst needs the 'zstandard' package "
                                 "(pip install zstandard)") from exc
            self.stream = zstandard.ZstdDecompressor().stream_reader(self.raw, read_size=1 << 20)
        else:
            self.stream = self.raw

    def position(self) -> int:
        try:
            return self.raw.tell()
        except (ValueError, OSError):
            return 0

    def close(self) -> None:
        if self.stream is not self.raw:
            self.stream.close()
        self.raw.close()


class _SafeStream:
    """Turns a decompression error (corrupt or cut-off file) into end-of-stream plus a counted drop."""

    def __init__(self, stream: BinaryIO, stats: ReadStats):
        self.inner, self.stats, self.failed = stream, stats, False

    _PIECE = 1 << 16  # read in small pieces so that a corrupt tail loses at most this much

    def read(self, n: int = -1) -> bytes:
        parts = []
        want = n if n >= 0 else 1 << 62
        while want > 0 and not self.failed:
            try:
                b = self.inner.read(min(want, self._PIECE))
            except Exception:  # noqa: BLE001 - lzma/bz2/gzip/zstd each raise their own error type
                self.failed = True
                self.stats.drop("corrupt_stream")
                break
            if not b:
                break
            parts.append(b)
            want -= len(b)
        return b"".join(parts)


def open_binary(path: str | os.PathLike) -> BinaryIO:
    """Open a (possibly compressed) file for streaming binary reads."""
    return _Source(path).stream


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
    if v in (b"?", b"", b"-", "?", "", "-"):
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


def _pgn_records(source: _Source, stats: ReadStats) -> Iterator[_Record]:
    for raw in _pgn.iter_raw_pgn_games(_SafeStream(source.stream, stats)):  # type: ignore[arg-type]
        stats.seen += 1
        try:
            yield _pgn_record(raw)
        except Malformed as exc:
            stats.drop(exc.reason)


def _pgn_record(raw: bytes) -> _Record:
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
    head = head.rstrip()
    if not head.startswith(b"["):
        raise Malformed("bad_header", "a game does not start with a header line")
    if not sep or not movetext.strip():  # e.g. a file cut inside the last game's headers
        raise Malformed("truncated", "headers without movetext")
    headers: bytes | dict[bytes, bytes]
    if _pgn.header_block_ok(head):
        headers, get = head, lambda key: _pgn.header_value(head, key)
    else:
        headers = _pgn.parse_headers(head)  # raises bad_header
        get = headers.get
    variant = get(b"Variant")
    if (variant and variant.lower() not in (b"standard", b"chess")) or get(b"FEN") is not None:
        raise Malformed("nonstandard", "variant or custom start position")
    header_result = get(b"Result")
    if header_result not in _STR_RESULTS:
        raise Malformed("bad_header", "missing or unknown Result")
    t, result, n_plies = _pgn.movetext_to_transcript(movetext)
    if result != header_result:
        raise Malformed("result_mismatch", f"Result header {header_result!r}, movetext {result!r}")
    _check_mate_result(t, n_plies, result)
    gid = _game_id_from_site(get(b"Site") or b"") or _content_id(head, t)
    return _Record(gid, _elo(get(b"WhiteElo")), _elo(get(b"BlackElo")),
                   _STR_RESULTS[result], t, n_plies, headers, movetext)


def _check_mate_result(t: bytes, n_plies: int, result: bytes) -> None:
    if t.endswith(b"#") and result != (b"1-0" if n_plies % 2 == 1 else b"0-1"):
        raise Malformed("result_mismatch", "checkmate by one side, the result says otherwise")


def _decoded_lines(stream: BinaryIO, stats: ReadStats) -> Iterator[str]:
    safe = _SafeStream(stream, stats)
    carry = b""
    while True:
        block = safe.read(1 << 20)
        if not block:
            break
        lines = (carry + block).split(b"\n")
        carry = lines.pop()
        for line in lines:
            try:
                yield line.decode("utf-8")
            except UnicodeDecodeError:
                stats.seen += 1
                stats.drop("non_utf8")
    if carry.strip():
        try:
            yield carry.decode("utf-8")
        except UnicodeDecodeError:
            stats.seen += 1
            stats.drop("non_utf8")


def _csv_records(source: _Source, stats: ReadStats) -> Iterator[_Record]:
    reader = csv.reader(_decoded_lines(source.stream, stats))
    header = next(reader, None)
    if header is None:
        return
    cols = {name.strip(): i for i, name in enumerate(header)}
    if "moves_san" in cols:  # the sample's transcripts CSV
        get_id, get_we, get_be = cols["game_id"], cols["white_elo"], cols["black_elo"]
        get_res, get_moves, sample = cols["result"], cols["moves_san"], True
    elif "transcript" in cols:  # the paper's shards: url,WhiteElo,BlackElo,result,transcript
        get_id, get_we, get_be = cols["url"], cols["WhiteElo"], cols["BlackElo"]
        get_res, get_moves, sample = cols["result"], cols["transcript"], False
    else:
        raise ValueError(f"{source.path}: CSV header {header[:12]} has neither 'moves_san' (the sample's "
                         "transcripts CSV) nor 'transcript' (the paper's shards)")
    width = len(header)
    extra = {name: i for name, i in cols.items()
             if name in ("time_control", "termination", "lichess_status", "utc_date", "eco")}
    for row in reader:
        stats.seen += 1
        try:
            if len(row) != width:
                raise Malformed("truncated" if len(row) < width else "bad_movetext", "wrong number of columns")
            result = row[get_res].strip()
            if result not in ("1-0", "0-1", "1/2-1/2", "*"):
                raise Malformed("bad_header", f"unknown result {result[:20]!r}")
            moves = row[get_moves].encode("utf-8")
            if sample:
                t = _pgn.normalise_transcript(_pgn.sans_to_transcript(moves.decode().split()).encode())
            else:
                t = _pgn.normalise_transcript(moves)
            n_plies = t.count(b" ") + 1
            _check_mate_result(t, n_plies, result.encode())
            gid = row[get_id].strip()
            if not sample:
                gid = _game_id_from_site(gid) or gid or _content_id(moves)
            if not gid:
                raise Malformed("bad_header", "empty game id")
            headers = {name: row[i] for name, i in extra.items()}
            yield _Record(gid, _elo(row[get_we]), _elo(row[get_be]), result, t, n_plies, headers, None)
        except Malformed as exc:
            stats.drop(exc.reason)


def _records(path: str | os.PathLike, stats: ReadStats, source: _Source | None = None) -> Iterator[_Record]:
    fmt = input_format(path)
    source = source or _Source(path)
    try:
        yield from (_pgn_records(source, stats) if fmt == "pgn" else _csv_records(source, stats))
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

    def reason(self, white_elo: int | None, black_elo: int | None, result: str, n_plies: int,
               header: Callable[[str, str], str | None]) -> str | None:
        """None if the game passes, else the filter reason it is counted under.

        ``header(pgn_tag, csv_column)`` returns a header value or None.
        """
        if self.drop_unfinished_result and result == "*":
            return "no_result"
        if self.cap is not None:
            if white_elo is None or black_elo is None:
                return "unrated"
            if max(white_elo, black_elo) > self.cap:
                return "above_cap"
        if n_plies < self.min_plies:
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

    def record_reason(self, rec: "_Record") -> str | None:
        return self.reason(rec.white_elo, rec.black_elo, rec.result, rec.n_plies,
                           lambda tag, col: _record_header(rec, tag, col))
