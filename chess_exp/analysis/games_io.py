"""Reading the lichess sample for the data-only analyses (majority vote, diversity, t-SNE).

A thin layer over the data stage: ``chess_exp.data.readers.read_games(keep_evals=True)`` reads the
sample's PGN (headers, SAN moves and the ``{ [%eval ...] }`` comments) into ``readers.Game`` records;
this module only resolves where the sample is and caps the number of games.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from chess_exp.data.readers import SAMPLE_PGN, Game, default_data_dir, in_cap, read_games

__all__ = ["SAMPLE_PGN", "default_data_dir", "sample_pgn", "iter_games", "in_cap", "Game"]



def sample_pgn(data: str | Path | None = None) -> Path:
    """The PGN of the sample (it carries the ``[%eval]`` comments) given a file or a directory."""
    p = Path(data) if data is not None else default_data_dir()
    if p.is_dir():
        p = p / SAMPLE_PGN
    if not p.exists():
        raise FileNotFoundError(f"{p} not found: pass --data <dir or .pgn[.xz]> or set TRANSCENDENCE_DATA")
    return p


def iter_games(data: str | Path | None = None, *, keep_evals: bool = True,
               max_games: int | None = None) -> Iterator[Game]:
    """Games of the sample PGN (``data`` = directory or file), in file order."""
    for i, game in enumerate(read_games(sample_pgn(data), keep_evals=keep_evals)):
        if max_games is not None and i >= max_games:
            break
        yield game
