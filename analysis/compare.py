"""Side-by-side comparison of schemes on one trace, as pandas objects (figures from
analysis/catalogue.py)."""

from __future__ import annotations

import pandas as pd

from ptpair.analysis import catalogue
from ptpair.analysis.catalogue import metrics_row
from ptpair.registry import DEFAULT_SCHEMES
from ptpair.sim.machine import Config, Result
from ptpair.sim.replay import replay
from ptpair.traces.format import Trace


def compare_results(results: dict[str, Result]) -> pd.DataFrame:
    """Metrics (rows, labelled, with a unit column; catalogue.TABLE) by scheme (columns),
    for display: each cell keeps its own type (counts stay integers), a dash where a
    figure does not apply (an allocator's own statistic)."""
    data = {"unit": [catalogue.unit(n) for n in catalogue.TABLE]}
    for scheme, r in results.items():
        data[scheme] = pd.Series([catalogue.value(r, n, missing="-") for n in catalogue.TABLE], dtype=object).values
    return pd.DataFrame(data, index=pd.Index([catalogue.label(n) for n in catalogue.TABLE], name="metric"))


def results_frame(results: dict[str, Result]) -> pd.DataFrame:
    """One numeric row per scheme, one column per metric (metrics_row): for analysis."""
    rows = {scheme: metrics_row(r) for scheme, r in results.items()}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("scheme")


def compare(trace: Trace, schemes=DEFAULT_SCHEMES,
            policy: str = "address", memory_pages: int | None = None, allocator: str = "buddy",
            reclaim: str = "empty", initial: str | None = None, age: str | None = None,
            thp_deposit: bool | None = None, pt_reclaim: bool | None = None) -> tuple[pd.DataFrame, dict]:
    """Replay `trace` under each scheme; returns (table, {scheme: Result}). `initial` (a
    free map), `age` (a warm-up trace or synthetic ager spec), `thp_deposit` and `pt_reclaim`: see
    sim/machine.Config."""
    results = {s: replay(trace, Config(s, policy, memory_pages, allocator, reclaim, initial, age, thp_deposit,
                                         pt_reclaim))
               for s in schemes}
    return compare_results(results), results
