"""Wall time of a long run's phases (the report's replays, figures, document), in seconds.

`ptpair report --timings FILE` writes them, and benchmarks/bench_report.py reads them: a
researcher whose report takes long sees where the time goes without a profiler.
"""

from __future__ import annotations

import time
from contextlib import contextmanager, nullcontext


class Phases:
    """Seconds per phase, in the order the phases first ran (a phase entered twice adds up)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0

    def add(self, name: str, seconds: float) -> None:
        """Count `seconds` under `name` (time measured elsewhere: a worker's task)."""
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def rounded(self, digits: int = 2) -> dict[str, float]:
        return {k: round(v, digits) for k, v in self.seconds.items()}


class _NoPhases(Phases):
    """Where the caller asked for no timings: nothing is timed or kept."""

    def __call__(self, name: str):
        return nullcontext()

    def add(self, name: str, seconds: float) -> None:
        pass


NONE = _NoPhases()
