"""Figures of allocator pressure (docs/analysis.md#allocator-pressure): per trace, what
compaction would have to migrate for the requests that failed and the 2 MiB blocks over
time with what blocks them; over the traces, the pressure on aged memory. Pages are 4-KiB
frames."""

from __future__ import annotations

import pandas as pd

from ptpair.registry import OKABE_ITO
from ptpair.reports import style
from ptpair.reports.plotkit import grouped_bars, load_pyplot, need, scheme_legend, stacked_over_time

# bottom to top: blocked by class, then available
HUGE_PARTS = {
    "hugepage_wasted_ept": ("blocked: wasted EPT", OKABE_ITO["orange"]),
    "hugepage_page_tables": ("blocked: page tables", OKABE_ITO["blue"]),
    "hugepage_kalloc": ("blocked: kalloc", OKABE_ITO["purple"]),
    "hugepage_background": ("blocked: background", OKABE_ITO["black"]),
    "hugepage_movable_only": ("movable only", OKABE_ITO["sky"]),
    "hugepage_free": ("free", "#DDDDDD"),
}


def compaction(df: pd.DataFrame):
    """For the requests that failed, by order: the frames direct compaction would have to
    migrate (left) and the failures no compaction could serve (right), per scheme.

    Columns: scheme, order, compaction_pages, hopeless_failures.
    """
    need(df, ["scheme", "order", "compaction_pages", "hopeless_failures"], "compaction")
    plt = load_pyplot()
    d = df.assign(order=df["order"].map(lambda k: f"order {k}"))
    fig, axes = plt.subplots(1, 2, figsize=style.size(wide=True))
    schemes = grouped_bars(axes[0], d, "order", "compaction_pages")
    grouped_bars(axes[1], d, "order", "hopeless_failures")
    axes[0].set_ylabel("frames to migrate")
    axes[1].set_ylabel("hopeless failed requests")
    for ax, col in zip(axes, ("compaction_pages", "hopeless_failures")):
        top = float(d[col].max()) if len(d) else 0.0
        ax.set_yscale("symlog", linthresh=1)
        ax.set_ylim(0, max(1.0, top) * 2)  # headroom above the tallest bar on the log part
    scheme_legend(fig, schemes)
    fig.tight_layout()
    return fig


def hugepages(df: pd.DataFrame):
    """The 2 MiB blocks of memory over time, one panel per scheme: blocked by wasted EPT
    pages alone, by page tables, kernel allocations or background frames (stacked, from the
    bottom), then holding only movable frames, then free.

    Columns: scheme, events, hugepage_wasted_ept, hugepage_page_tables, hugepage_kalloc,
    hugepage_background, hugepage_movable_only, hugepage_free (blocks).
    """
    need(df, ["scheme", "events", *HUGE_PARTS], "hugepages")
    return stacked_over_time(df, [(label, color, lambda d, c=col: d[c]) for col, (label, color) in HUGE_PARTS.items()],
                             "2 MiB blocks")


AGED_PANELS = (("split_share_pct", "page-table requests\nfinding their list empty (%)"),
               ("tables_blocked_peak", "2 MiB blocks blocked\nby page tables at their peak"),
               ("pressure_margin_pages", "pressure margin (frames)"))


def aged_pressure(df: pd.DataFrame):
    """Allocator pressure on aged memory, one panel per figure (AGED_PANELS), memories on
    x, schemes as bars, error bars the 95 % t interval over ager seeds where there are
    several. The pressure margin exists on synthetic memory only (the others fix the size).

    Columns: memory, scheme, and for each panel its value, value_low and value_high.
    """
    need(df, ["memory", "scheme", *(c for c, _ in AGED_PANELS)], "aged_pressure")
    plt = load_pyplot()
    fig, axes = plt.subplots(1, len(AGED_PANELS), figsize=style.size(wide=True))
    schemes = None
    for ax, (col, label) in zip(axes, AGED_PANELS):
        d = df[df[col].notna()]
        low, high = (f"{col}_low", f"{col}_high") if f"{col}_low" in d else (None, None)
        schemes = grouped_bars(ax, d, "memory", col, low, high) if len(d) else schemes
        ax.set_ylabel(label)
        top = float(d[[c for c in (col, high) if c]].max().max()) if len(d) else 0.0
        ax.set_ylim(0, max(1.0, top * 1.1))  # all-zero panels keep 0 at the bottom
    scheme_legend(fig, schemes or [])
    fig.tight_layout()
    return fig
