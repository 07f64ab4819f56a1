"""Side-by-side comparison of schemes on one trace, as pandas objects."""

from __future__ import annotations

import pandas as pd

from ptpair.sim.machine import Config, Result
from ptpair.sim.replay import replay
from ptpair.traces.format import Trace

# (row label, unit, how to read it from a Result), in the order the table shows them
METRICS = [
    ("KPT pages (final)", "pages", lambda r: r.final["kpt_pages"]),
    ("EPT pages (final)", "pages", lambda r: r.final["ept_pages"]),
    ("  of non-VMM processes (waste)", "pages", lambda r: r.final["wasted_ept_pages"]),
    ("page-table pages (final)", "pages", lambda r: r.final["pt_pages"]),
    ("page-table pages (peak)", "pages", lambda r: r.peak["pt_pages"]),
    ("wasted EPT pages (peak)", "pages", lambda r: r.peak["wasted_ept_pages"]),
    ("data pages (final)", "pages", lambda r: r.final["data_pages"]),
    ("page-table overhead (final)", "% of data", lambda r: _pct(r.final["pt_pages"], r.final["data_pages"])),
    ("free pages (final)", "pages", lambda r: r.final["free_pages"]),
    ("largest free order (final)", "order", lambda r: _largest(r.final["buddyinfo"])),
    ("order-0 allocation failures", "requests", lambda r: r.alloc_failures[0]),
    ("order-1 allocation failures", "requests", lambda r: r.alloc_failures[1]),
    ("all allocation failures", "requests", lambda r: sum(r.alloc_failures)),
    ("failed maps", "pages", lambda r: r.failed_maps),
    ("failed spawns", "processes", lambda r: r.failed_spawns),
    ("EPT dependent loads per entry write", "loads", lambda r: r.walk["per_write"]["ept_dependent_loads"]),
    ("table pages touched per entry write", "pages", lambda r: r.walk["per_write"]["kpt_pages_touched"]
     + r.walk["per_write"]["ept_pages_touched"]),
    ("tables copied (pair-on-vmm)", "tables", lambda r: r.counts["tables_copied"]),
    ("pageblocks polluted by unmovable pages", "blocks", lambda r: r.final.get("polluted_pageblocks", "-")),
    ("frames scanned per order>=1 allocation", "frames",
     lambda r: r.allocator_stats.get("frames_scanned_per_allocation", "-")),
]


def _pct(a, b) -> float:
    return round(100.0 * a / b, 3) if b else 0.0


def _largest(buddyinfo) -> int:
    orders = [k for k, n in enumerate(buddyinfo) if n]
    return max(orders) if orders else -1


def compare_results(results: dict[str, Result]) -> pd.DataFrame:
    """Metrics (rows, with a unit column) by scheme (columns), for display: each cell
    keeps its own type (counts stay integers)."""
    data = {"unit": [u for _, u, _ in METRICS]}
    for scheme, r in results.items():
        data[scheme] = pd.Series([f(r) for _, _, f in METRICS], dtype=object).values
    return pd.DataFrame(data, index=pd.Index([m for m, _, _ in METRICS], name="metric"))


def metrics_row(r: Result) -> dict:
    """Every end-of-run figure of one replay as a flat dict of numbers (see METRIC_KEYS)."""
    from ptpair.analysis.metrics import summary

    s = summary(r)
    f, pk = r.final, r.peak
    return {
        "events": r.events,
        "kpt_pages_final": f["kpt_pages"],
        "ept_pages_final": f["ept_pages"],
        "wasted_ept_pages_final": f["wasted_ept_pages"],
        "wasted_ept_pages_peak": pk["wasted_ept_pages"],
        "pt_pages_final": f["pt_pages"],
        "pt_pages_peak": pk["pt_pages"],
        "pt_pages_mean": s["pt_pages_mean"],
        "data_pages_final": f["data_pages"],
        "overhead_final": s["overhead_final"],
        "free_pages_final": f["free_pages"],
        "largest_free_order_final": s["largest_free_order_final"],
        "alloc_failures": s["alloc_failures_total"],
        "alloc_failures_order0": r.alloc_failures[0],
        "alloc_failures_order1": r.alloc_failures[1],
        "failed_maps": r.failed_maps,
        "failed_spawns": r.failed_spawns,
        "ept_loads_per_write": s["ept_loads_per_mapped_page"],
        "walk_pages_per_write": s["walk_pages_per_mapped_page"],
        "tables_copied": r.counts["tables_copied"],
        "highalloc_order9_final": s["highalloc_order9_final"],
        "highalloc_order9_at_peak": s["highalloc_order9_at_peak"],
        "jw_fragmentation": s["jw_fragmentation"],
        "processes_final": f["processes"],
        "vmm_processes_final": f["vmm_processes"],
        "polluted_pageblocks_final": r.final.get("polluted_pageblocks", 0),
        "fallbacks": r.allocator_stats.get("fallbacks", 0),
        "frames_scanned": r.allocator_stats.get("frames_scanned", 0),
        "frames_scanned_per_allocation": r.allocator_stats.get("frames_scanned_per_allocation", 0.0),
    }


def results_frame(results: dict[str, Result]) -> pd.DataFrame:
    """One numeric row per scheme, one column per metric (metrics_row): for analysis."""
    rows = {scheme: metrics_row(r) for scheme, r in results.items()}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("scheme")


def compare(trace: Trace, schemes=("pair", "separate", "separate-eager", "pair-on-vmm"),
            policy: str = "address", memory_pages: int | None = None, allocator: str = "buddy",
            reclaim: str = "empty") -> tuple[pd.DataFrame, dict]:
    """Replay `trace` under each scheme; returns (table, {scheme: Result})."""
    results = {}
    for s in schemes:
        cfg = Config(scheme=s, policy=policy, allocator=allocator, reclaim=reclaim)
        if memory_pages is not None:
            cfg = Config(s, policy, memory_pages, allocator, reclaim)
        results[s] = replay(trace, cfg)
    return compare_results(results), results
