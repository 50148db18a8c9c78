"""Synthetic sweeps that map where transcendence happens.

Each sweep is a module with a frozen config dataclass, ``PRESETS = {"quick": ..., "full": ...}``,
``grid(cfg)``, ``run_point(cfg, task)`` and ``summarize(rows, cfg)``; :func:`sims.run_sweep` runs
one into ``runs/<name>/`` (``config.json``, ``results.csv``, ``summary.json``). From the shell:
``transcendence sweep <name> [--preset quick|full] [--key=value ...]``.
"""

from sims._common import SWEEPS, get_sweep, run_sweep

__all__ = ["SWEEPS", "get_sweep", "run_sweep"]
