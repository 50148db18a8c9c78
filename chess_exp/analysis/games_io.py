"""Reading the lichess sample for the data-only analyses (majority vote, diversity, t-SNE).

Uses DATA's ``chess_exp.data.readers.read_games(keep_evals=True)`` when it is available; otherwise a small
built-in PGN reader for the sample's format (headers, SAN moves, ``{ [%eval ...] }`` comments). Both
yield objects with ``game_id, white_elo, black_elo, result, sans, evals``.
"""

from __future__ import annotations

import lzma
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

__all__ = ["SAMPLE_PGN", "default_data_dir", "sample_pgn", "iter_games", "in_cap", "SimpleGame"]

SAMPLE_PGN = "lichess_rapid_2014-2022_ahmed-ghaf-404.pgn.xz"


def default_data_dir() -> Path:
    try:
        from chess_exp.data.readers import default_data_dir as dd
        return Path(dd())
    except ImportError:
        env = os.environ.get("TRANSCENDENCE_DATA")
        return Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "data"


def sample_pgn(data: str | Path | None = None) -> Path:
    """The PGN of the sample (it carries the ``[%eval]`` comments) given a file or a directory."""
    p = Path(data) if data is not None else default_data_dir()
    if p.is_dir():
        p = p / SAMPLE_PGN
    if not p.exists():
        raise FileNotFoundError(f"{p} not found: pass --data <dir or .pgn[.xz]> or set TRANSCENDENCE_DATA")
    return p


@dataclass(frozen=True)
class SimpleGame:
    game_id: str
    white_elo: int | None
    black_elo: int | None
    result: str
    sans: tuple[str, ...]
    headers: dict[str, str] = field(default_factory=dict)
    evals: tuple[str | None, ...] | None = None


_HEADER = re.compile(r'^\[(\w+)\s+"(.*)"\]\s*$')
_TOKEN = re.compile(r"\{[^}]*\}|\S+")
_EVAL = re.compile(r"\[%eval\s+([^\]\s]+)\s*\]")
_MOVE_NO = re.compile(r"^\d+\.(\.\.)?$")
_RESULTS = {"1-0", "0-1", "1/2-1/2", "*"}


def _int(s: str | None) -> int | None:
    try:
        return int(s) if s not in (None, "", "?") else None
    except ValueError:
        return None


def _parse(headers: dict[str, str], movetext: str, keep_evals: bool) -> SimpleGame:
    sans: list[str] = []
    evals: list[str | None] = []
    for tok in _TOKEN.findall(movetext):
        if tok.startswith("{"):
            m = _EVAL.search(tok)
            if m and sans and evals[-1] is None:
                evals[-1] = m.group(1)
            continue
        if _MOVE_NO.match(tok) or tok in _RESULTS:
            continue
        m = re.match(r"^\d+\.+(.+)$", tok)  # "1.e4" written without a space
        if m:
            tok = m.group(1)
        sans.append(tok)
        evals.append(None)
    site = headers.get("Site", "")
    gid = site.rsplit("/", 1)[-1] if site else headers.get("GameId", "")
    return SimpleGame(game_id=gid, white_elo=_int(headers.get("WhiteElo")),
                      black_elo=_int(headers.get("BlackElo")), result=headers.get("Result", "*"),
                      sans=tuple(sans), headers=headers, evals=tuple(evals) if keep_evals else None)


def _fallback_read(path: Path, keep_evals: bool) -> Iterator[SimpleGame]:
    opener = lzma.open if path.suffix == ".xz" else open
    headers: dict[str, str] = {}
    moves: list[str] = []
    with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            s = line.strip()
            if s.startswith("[") and not moves:
                m = _HEADER.match(s)
                if m:
                    headers[m.group(1)] = m.group(2)
                continue
            if s.startswith("[Event ") and moves:
                yield _parse(headers, " ".join(moves), keep_evals)
                headers, moves = {}, []
                m = _HEADER.match(s)
                headers[m.group(1)] = m.group(2)
                continue
            if s:
                moves.append(s)
        if headers and moves:
            yield _parse(headers, " ".join(moves), keep_evals)


def iter_games(data: str | Path | None = None, *, keep_evals: bool = True,
               max_games: int | None = None) -> Iterator:
    """Games of the sample PGN (``data`` = directory or file), in file order."""
    path = sample_pgn(data)
    try:
        from chess_exp.data.readers import read_games
        it = read_games(path, keep_evals=keep_evals)
    except ImportError:
        it = _fallback_read(path, keep_evals)
    for i, game in enumerate(it):
        if max_games is not None and i >= max_games:
            break
        yield game


def in_cap(game, cap: int | None) -> bool:
    """The paper's rating filter: both players rated <= cap (``None`` = no cap)."""
    if cap is None:
        return True
    w, b = game.white_elo, game.black_elo
    return w is not None and b is not None and max(w, b) <= cap
