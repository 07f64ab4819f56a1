"""Metrics of one replay: the sampled time series and the end-of-run figures.

All page counts are 4-KiB frames; byte figures say so in their names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ptpair.analysis.catalogue import summary
from ptpair.analysis.frag import N_ORDERS, fragmentation_index, indices_from_contig, largest_free_order, unusable_index
from ptpair.sim.machine import Result

if TYPE_CHECKING:  # pandas is imported where it is used: `ptpair replay` needs none
    import pandas as pd

def series_frame(result: Result) -> pd.DataFrame:
    """The sampled state with derived columns, one row per sample (needs sample_every).

    Columns: events, kpt_pages (+ per level, + deposited_pte_pages), ept_pages, wasted_ept_pages, pt_pages,
    data_pages, kalloc_pages, free_pages, free_blocks_0..10, unusable_index_0..10,
    fragmentation_index_0..10 (x1000, as the kernel), largest_free_order, failures_0..10
    (cumulative), failures (all orders).
    """
    import pandas as pd

    df = result.series()
    if df is None:
        raise ValueError("the replay was not sampled: pass sample_every=K to replay()")
    nr = df[[f"free_blocks_{k}" for k in range(N_ORDERS)]].to_numpy()
    df.insert(5, "kpt_pages", df[["kpt_pml1", "kpt_pml2", "kpt_pml3", "kpt_pml4", "deposited_pte_pages"]].sum(axis=1))
    df.insert(8, "pt_pages", df["kpt_pages"] + df["ept_pages"])
    ui = pd.DataFrame(unusable_index(nr), columns=[f"unusable_index_{k}" for k in range(N_ORDERS)])
    fi = pd.DataFrame(fragmentation_index(nr), columns=[f"fragmentation_index_{k}" for k in range(N_ORDERS)])
    df = pd.concat([df, ui, fi], axis=1)
    df["largest_free_order"] = largest_free_order(nr)
    df["failures"] = df[[f"failures_{k}" for k in range(N_ORDERS)]].sum(axis=1)
    return df


def windowed(series: pd.DataFrame, n_windows: int = 200) -> pd.DataFrame:
    """A fine-grained series (e.g. sampled after every event) cut into `n_windows` runs of
    consecutive samples, keeping each window's worst state: the largest unusable and
    fragmentation indices (undefined, -1000, only if undefined throughout), the smallest
    free page count and largest free order, and the last cumulative counts. `events` is
    the window's last event. Transient pressure that a coarse sample would step over
    stays visible."""
    n = len(series)
    if n == 0:
        return series.copy()
    win = np.minimum(np.arange(n) * n_windows // n, n_windows - 1)
    g = series.groupby(win, sort=True)
    worst_max = [c for c in series.columns if c.startswith(("unusable_index_", "fragmentation_index_"))]
    worst_min = [c for c in ("free_pages", "largest_free_order") if c in series.columns]
    out = g.last()
    if worst_max:
        out[worst_max] = g[worst_max].max()
    if worst_min:
        out[worst_min] = g[worst_min].min()
    return out.reset_index(drop=True)


def frag_indices(buddyinfo) -> dict:
    return {"unusable_index": [int(x) for x in unusable_index(buddyinfo)],
            "fragmentation_index": [int(x) for x in fragmentation_index(buddyinfo)]}


def enriched_dict(result: Result) -> dict:
    """Result.to_dict() with the kernel indices in `final` and the end-of-run summary."""
    d = result.to_dict()
    d["final"].update(frag_indices(result.final["buddyinfo"]))
    if "unaligned_blocks_suitable" in result.allocator_stats:
        a = result.allocator_stats
        un = indices_from_contig(result.final["free_pages"], a["free_runs"], a["unaligned_blocks_suitable"])
        d["final"]["unusable_index_unaligned"] = un["unusable_index"]
        d["final"]["fragmentation_index_unaligned"] = un["fragmentation_index"]
    d["summary"] = summary(result)
    return d


__all__ = ["enriched_dict", "frag_indices", "series_frame", "summary"]
