"""Check every statement on many random instances (what ``transcendence theory`` runs).

Instance ``i`` of statement ``s`` is drawn with ``numpy.random.default_rng([seed, n, i])``, where
``n`` is the position of ``s`` in :data:`theory.STATEMENTS`, so any reported instance can be
rebuilt alone with :func:`instance`, whatever else was run.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from theory._base import Statement


@dataclass(frozen=True)
class Row:
    """The summary of one statement over many instances."""

    id: str
    source: str
    instances: int                 # instances drawn
    held: int                      # hypotheses held and the conclusion held
    sampler_failures: int          # drawn instances that did not satisfy the hypotheses
    smallest_margin: float         # smallest conclusion margin over the instances
    where: str                     # where that smallest margin sits
    counterexamples: int           # counterexamples confirmed
    counterexamples_total: int
    seconds: float
    failures: tuple[str, ...] = field(default_factory=tuple)   # first few failing instances

    @property
    def ok(self) -> bool:
        return (self.held == self.instances and self.sampler_failures == 0
                and self.counterexamples == self.counterexamples_total)


def _index(statement_id: str) -> int:
    from theory import STATEMENTS
    return list(STATEMENTS).index(statement_id)


def instance(statement_id: str, seed: int, i: int) -> Any:
    """Rebuild instance ``i`` of a run with ``seed`` (to inspect a reported failure)."""
    from theory import get
    rng = np.random.default_rng([seed, _index(statement_id), i])
    return get(statement_id).sample(rng)


def run_statement(statement: Statement, n: int, *, seed: int = 0, progress: bool = False) -> Row:
    """Draw ``n`` instances, check hypotheses ⇒ conclusion on each, and check the counterexamples."""
    from tqdm import tqdm
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n: the number of instances must be an integer >= 1, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: must be an integer >= 0, got {seed!r}")
    start = time.perf_counter()
    index = _index(statement.id)
    held = sampler_failures = 0
    smallest, where = math.inf, ""
    failures: list[str] = []
    for i in tqdm(range(n), desc=statement.id, disable=not progress, leave=False):
        inst = statement.sample(np.random.default_rng([seed, index, i]))
        if not statement.hypotheses(inst):
            sampler_failures += 1
            if len(failures) < 5:
                failures.append(f"instance {i}: sampled instance violates the hypotheses")
            continue
        c = statement.conclusion(inst)
        if c.holds:
            held += 1
        elif len(failures) < 5:
            failures.append(f"instance {i}: {c.where} (margin {c.margin:.3g})")
        if c.margin < smallest:
            smallest, where = c.margin, f"instance {i}: {c.where}"
    cexs = statement.counterexamples()
    confirmed = 0
    for cex in cexs:
        if cex.confirm(statement, cex.instance):
            confirmed += 1
        else:
            failures.append(f"counterexample {cex.name!r} not confirmed")
    return Row(statement.id, statement.source, n, held, sampler_failures, float(smallest), where,
               confirmed, len(cexs), time.perf_counter() - start, tuple(failures))


def format_table(rows: list[Row]) -> str:
    """A plain-text table, one row per statement."""
    head = ("statement", "source", "instances", "conclusion held", "smallest margin",
            "counterexamples", "time")
    body = [(r.id, r.source, str(r.instances), f"{r.held}/{r.instances}",
             f"{r.smallest_margin:.3g}", f"{r.counterexamples}/{r.counterexamples_total} confirmed",
             f"{r.seconds:.1f}s") for r in rows]
    widths = [max(len(line[j]) for line in [head, *body]) for j in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*head), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*line) for line in body]
    return "\n".join(lines)


def as_dict(row: Row) -> dict[str, Any]:
    d = asdict(row)
    d["failures"] = list(row.failures)
    d["ok"] = row.ok
    return d
