"""Shared fixtures and the hypothesis profiles.

`make test` sets HYPOTHESIS_PROFILE=ci: derandomized, no deadline, so CI is repeatable.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", derandomize=True, deadline=None, max_examples=100,
                          suppress_health_check=[HealthCheck.too_slow], print_blob=True)
settings.register_profile("dev", deadline=None, max_examples=50)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

REPO = Path(__file__).resolve().parents[1]


def _stockfish_or_none() -> str | None:
    """The library's own search (chess_exp.play.engines.find_stockfish), None when it finds nothing."""
    try:
        from chess_exp.play.engines import StockfishNotFound, find_stockfish
    except ImportError:  # python-chess missing: no engine tests
        return None
    try:
        return find_stockfish()
    except StockfishNotFound:
        return None


@pytest.fixture(scope="session")
def stockfish_path() -> str:
    """The real Stockfish binary. Missing in CI is a failure, not a skip."""
    path = _stockfish_or_none()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("Stockfish is required in CI: `make test` installs it (apt-get install stockfish)")
        pytest.skip("Stockfish not installed (apt-get install -y stockfish)")
    return path


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The real lichess sample: $TRANSCENDENCE_DATA or ../shared/data next to the repo.

    Missing in CI is a failure, not a skip.
    """
    path = Path(os.environ.get("TRANSCENDENCE_DATA", REPO.parent / "shared" / "data"))
    if not (path / "lichess_rapid_2014-2022_ahmed-ghaf-404.pgn.xz").exists():
        if os.environ.get("CI"):
            pytest.fail(f"the lichess sample is required in CI and was not found at {path}")
        pytest.skip(f"lichess sample not found at {path} (set TRANSCENDENCE_DATA)")
    return path
