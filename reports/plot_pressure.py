"""Figures of allocator pressure (docs/analysis.md#allocator-pressure), one trace each:
what compaction would have to migrate for the requests that failed, and the 2 MiB blocks
over time with what blocks them. Pages are 4-KiB frames."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ptpair.registry import OKABE_ITO
from ptpair.reports import style
from ptpair.reports.plotkit import events_axis, grouped_bars, load_pyplot, need, scheme_legend
from ptpair.reports.style import scheme_color, sort_schemes

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
    for ax in axes:
        ax.set_yscale("symlog", linthresh=1)
        ax.set_ylim(bottom=0)
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
    plt = load_pyplot()
    schemes = sort_schemes(df["scheme"].unique())
    fig, axes = plt.subplots(1, len(schemes), figsize=style.size(wide=True), sharey=True, squeeze=False)
    for ax, s in zip(axes[0], schemes):
        d = df[df["scheme"] == s].sort_values("events")
        ax.stackplot(d["events"], *(d[c].to_numpy(dtype=float) for c in HUGE_PARTS),
                     colors=[c for _, c in HUGE_PARTS.values()], labels=[lab for lab, _ in HUGE_PARTS.values()],
                     linewidth=0)
        ax.set_title(s, color=scheme_color(s))
        ax.set_ylim(0, max(1, float(np.nanmax(d[list(HUGE_PARTS)].sum(axis=1)))) if len(d) else 1)
        events_axis(ax)
    axes[0][0].set_ylabel("2 MiB blocks")
    h, lab = axes[0][0].get_legend_handles_labels()
    fig.legend(h, lab, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3)
    fig.tight_layout()
    return fig
