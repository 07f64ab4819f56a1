"""The metric catalogue: every end-of-run figure of a replay, declared once -- its name,
unit, label and how to get it from a `Result`.

Everything that shows or tabulates a replay's figures takes them from here: the numeric
row of `metrics_row` (compare, stats, sweeps, the report's data), the display table of
`compare`, and the `summary` block of `replay --json`. Page counts are 4-KiB frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ptpair.analysis.frag import blocks_allocatable, largest_free_order
from ptpair.sim.machine import Result
from ptpair.traces.units import PAGE_SIZE

HIGHALLOC_ORDER = 9  # 2 MiB: the order mmtests' stress-highalloc asks for on x86-64


@dataclass(frozen=True)
class Metric:
    """One figure of a replay. `get` returns None where the figure does not apply to the
    run (an allocator's own statistic under another allocator): the numeric row then holds
    `missing`, the display table a dash."""

    name: str
    unit: str
    label: str
    get: Callable[[Result], Any]
    missing: Any = 0


def _ratio(a, b) -> float:
    return round(float(a) / float(b), 6) if b else 0.0


def _pct(a, b) -> float:
    return round(100.0 * a / b, 3) if b else 0.0


def _walk_pages(r: Result) -> int:
    return r.walk["kpt_pages_touched"] + r.walk["ept_pages_touched"]


def _highalloc_at_peak(r: Result):
    bi = r.peak["buddyinfo_at_peak_used"]
    return None if bi is None else int(blocks_allocatable(bi, HIGHALLOC_ORDER))


def _jw(r: Result) -> float:
    hw, live = r.allocator_stats["high_water_pages"], r.allocator_stats["live_pages_at_high_water"]
    return _ratio(hw - live, live)


_M = Metric
METRICS = (
    _M("events", "events", "events replayed", lambda r: r.events),
    _M("kpt_pages_final", "pages", "KPT pages (final)", lambda r: r.final["kpt_pages"]),
    _M("ept_pages_final", "pages", "EPT pages (final)", lambda r: r.final["ept_pages"]),
    _M("wasted_ept_pages_final", "pages", "  of non-VMM processes (waste)", lambda r: r.final["wasted_ept_pages"]),
    _M("wasted_ept_pages_peak", "pages", "wasted EPT pages (peak)", lambda r: r.peak["wasted_ept_pages"]),
    _M("pt_pages_final", "pages", "page-table pages (final)", lambda r: r.final["pt_pages"]),
    _M("pt_pages_peak", "pages", "page-table pages (peak)", lambda r: r.peak["pt_pages"]),
    _M("pt_pages_mean", "pages", "page-table pages (mean over events)", lambda r: r.mean["pt_pages"]),
    _M("pt_bytes_peak", "bytes", "page-table bytes (peak)", lambda r: r.peak["pt_pages"] * PAGE_SIZE),
    _M("data_pages_final", "pages", "data pages (final)", lambda r: r.final["data_pages"]),
    _M("overhead_final", "ratio", "page-table pages per data page (final)",
       lambda r: _ratio(r.final["pt_pages"], r.final["data_pages"])),
    _M("overhead_peak", "ratio", "page-table pages per data page (at the peaks)",
       lambda r: _ratio(r.peak["pt_pages"], r.peak["data_pages"])),
    _M("overhead_pct_final", "% of data", "page-table overhead (final)",
       lambda r: _pct(r.final["pt_pages"], r.final["data_pages"])),
    _M("free_pages_final", "pages", "free pages (final)", lambda r: r.final["free_pages"]),
    _M("largest_free_order_final", "order", "largest free order (final)",
       lambda r: int(largest_free_order(r.final["buddyinfo"]))),
    _M("alloc_failures", "requests", "all allocation failures", lambda r: int(sum(r.alloc_failures))),
    _M("alloc_failures_by_order", "requests", "allocation failures by order", lambda r: list(r.alloc_failures)),
    _M("alloc_failures_order0", "requests", "order-0 allocation failures", lambda r: r.alloc_failures[0]),
    _M("alloc_failures_order1", "requests", "order-1 allocation failures", lambda r: r.alloc_failures[1]),
    _M("failed_maps", "pages", "failed maps", lambda r: r.failed_maps),
    _M("failed_spawns", "processes", "failed spawns", lambda r: r.failed_spawns),
    _M("ept_loads_per_write", "loads", "EPT dependent loads per entry write",
       lambda r: _ratio(r.walk["ept_dependent_loads"], r.walk["entry_writes"])),
    _M("walk_pages_per_write", "pages", "table pages touched per entry write",
       lambda r: _ratio(_walk_pages(r), r.walk["entry_writes"])),
    _M("pages_mapped", "pages", "pages mapped", lambda r: r.counts["pages_mapped"]),
    _M("tables_copied", "tables", "tables copied (pair-on-vmm)", lambda r: r.counts["tables_copied"]),
    _M("highalloc_order9_final", "blocks", "order-9 blocks allocatable (final)",
       lambda r: int(blocks_allocatable(r.final["buddyinfo"], HIGHALLOC_ORDER))),
    _M("highalloc_order9_at_peak", "blocks", "order-9 blocks allocatable (at peak use)", _highalloc_at_peak,
       missing=None),
    _M("jw_fragmentation", "ratio", "Johnstone-Wilson fragmentation", _jw),
    _M("jw_high_water_pages", "pages", "heap extent at its highest", lambda r: r.allocator_stats["high_water_pages"]),
    _M("jw_live_pages", "pages", "live frames then", lambda r: r.allocator_stats["live_pages_at_high_water"]),
    _M("processes_final", "processes", "live processes (final)", lambda r: r.final["processes"]),
    _M("vmm_processes_final", "processes", "live VMM processes (final)", lambda r: r.final["vmm_processes"]),
    _M("polluted_pageblocks_final", "blocks", "pageblocks polluted by unmovable pages",
       lambda r: r.final.get("polluted_pageblocks")),
    _M("fallbacks", "requests", "migratetype fallbacks", lambda r: r.allocator_stats.get("fallbacks")),
    _M("frames_scanned", "frames", "frames scanned by order>=1 allocations",
       lambda r: r.allocator_stats.get("frames_scanned")),
    _M("frames_scanned_per_allocation", "frames", "frames scanned per order>=1 allocation",
       lambda r: r.allocator_stats.get("frames_scanned_per_allocation"), missing=0.0),
)
# allocator pressure (docs/analysis.md#allocator-pressure)
_HUGE = ("free", "movable_only", "wasted_ept", "page_tables", "kalloc", "background")


def _huge(r: Result, name: str) -> int:
    h = r.final["hugepage_blocks"]
    if name == "blocked":
        return sum(h["blocked"].values())
    return h[name] if name in h else h["blocked"][name]


METRICS += (
    _M("compaction_pages", "frames", "frames compaction would migrate for the failed requests",
       lambda r: r.pressure["compaction_pages"]),
    _M("hopeless_failures", "requests", "failed requests no compaction could serve",
       lambda r: sum(r.pressure["hopeless_failures"])),
    _M("pt_requests", "requests", "page-table allocations (a pair is one)", lambda r: r.pressure["pt_requests"]),
    _M("pt_requests_split", "requests", "page-table allocations that found their free list empty",
       lambda r: r.pressure["pt_requests_split"]),
    _M("hugepage_blocks_free_final", "blocks", "2 MiB blocks free (final)", lambda r: _huge(r, "free")),
    _M("hugepage_blocks_movable_only_final", "blocks", "2 MiB blocks holding only movable frames (final)",
       lambda r: _huge(r, "movable_only")),
    _M("hugepage_blocks_blocked_final", "blocks", "2 MiB blocks holding unmovable frames (final)",
       lambda r: _huge(r, "blocked")),
    *(_M(f"hugepage_blocks_{c}_final", "blocks", f"2 MiB blocks blocked by {what} (final)",
         lambda r, c=c: _huge(r, c))
      for c, what in zip(_HUGE[2:], ("wasted EPT pages alone", "page tables", "kernel allocations",
                                     "background frames"))),
)
BY_NAME = {m.name: m for m in METRICS}

# The numeric row of one replay (metrics_row), in column order.
ROW = ("events", "kpt_pages_final", "ept_pages_final", "wasted_ept_pages_final", "wasted_ept_pages_peak",
       "pt_pages_final", "pt_pages_peak", "pt_pages_mean", "data_pages_final", "overhead_final", "free_pages_final",
       "largest_free_order_final", "alloc_failures", "alloc_failures_order0", "alloc_failures_order1", "failed_maps",
       "failed_spawns", "ept_loads_per_write", "walk_pages_per_write", "tables_copied", "highalloc_order9_final",
       "highalloc_order9_at_peak", "jw_fragmentation", "processes_final", "vmm_processes_final",
       "polluted_pageblocks_final", "fallbacks", "frames_scanned", "frames_scanned_per_allocation",
       "compaction_pages", "hopeless_failures", "pt_requests", "pt_requests_split", "hugepage_blocks_free_final",
       "hugepage_blocks_movable_only_final", "hugepage_blocks_blocked_final", "hugepage_blocks_wasted_ept_final",
       "hugepage_blocks_page_tables_final", "hugepage_blocks_kalloc_final", "hugepage_blocks_background_final")

# `compare`'s display table, in row order.
TABLE = ("kpt_pages_final", "ept_pages_final", "wasted_ept_pages_final", "pt_pages_final", "pt_pages_peak",
         "wasted_ept_pages_peak", "data_pages_final", "overhead_pct_final", "free_pages_final",
         "largest_free_order_final", "alloc_failures_order0", "alloc_failures_order1", "alloc_failures",
         "failed_maps", "failed_spawns", "ept_loads_per_write", "walk_pages_per_write", "tables_copied",
         "polluted_pageblocks_final", "frames_scanned_per_allocation", "compaction_pages", "hopeless_failures",
         "pt_requests", "pt_requests_split", "hugepage_blocks_blocked_final", "hugepage_blocks_wasted_ept_final")

# `replay --json`'s summary block: (key in the JSON, metric). The keys predate the catalogue
# and are kept so that scripts reading the JSON keep working.
SUMMARY = (("pt_pages_peak", "pt_pages_peak"), ("pt_pages_mean", "pt_pages_mean"),
           ("pt_bytes_peak", "pt_bytes_peak"), ("overhead_final", "overhead_final"),
           ("overhead_peak", "overhead_peak"), ("wasted_ept_pages_final", "wasted_ept_pages_final"),
           ("wasted_ept_pages_peak", "wasted_ept_pages_peak"), ("alloc_failures", "alloc_failures_by_order"),
           ("alloc_failures_total", "alloc_failures"), ("walk_pages_per_mapped_page", "walk_pages_per_write"),
           ("ept_loads_per_mapped_page", "ept_loads_per_write"), ("pages_mapped", "pages_mapped"),
           ("highalloc_order9_final", "highalloc_order9_final"),
           ("highalloc_order9_at_peak", "highalloc_order9_at_peak"),
           ("largest_free_order_final", "largest_free_order_final"), ("jw_fragmentation", "jw_fragmentation"),
           ("jw_high_water_pages", "jw_high_water_pages"), ("jw_live_pages", "jw_live_pages"))


def value(r: Result, name: str, missing=None):
    """Metric `name` of replay `r`; where it does not apply, `missing` (default: the
    metric's own `missing`)."""
    m = BY_NAME[name]
    v = m.get(r)
    if v is None:
        return m.missing if missing is None else missing
    return v


def metrics_row(r: Result) -> dict:
    """Every end-of-run figure of one replay as a flat dict of numbers (ROW order)."""
    return {name: value(r, name) for name in ROW}


def summary(r: Result) -> dict:
    """The summary block of `replay --json` (SUMMARY; JSON-ready)."""
    return {key: value(r, name) for key, name in SUMMARY}


def label(name: str) -> str:
    return BY_NAME[name].label


def unit(name: str) -> str:
    return BY_NAME[name].unit
