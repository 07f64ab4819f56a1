"""Shared pieces of the report's figures: loading pyplot, units, column checks, the scheme
legend, the events axis and grouped bars. The figures themselves are in plots.py (and
plot_pressure.py); each takes a DataFrame and returns a matplotlib Figure."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ptpair.reports import style
from ptpair.reports.style import scheme_color, sort_schemes
from ptpair.traces.units import PAGE_SIZE as PAGE_BYTES

MIB = 1 << 20


class PlotDataError(ValueError):
    """A figure's data lacks a column it needs, or has no rows."""


def load_pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def mib(pages):
    return np.asarray(pages, dtype=float) * PAGE_BYTES / MIB


def need(df: pd.DataFrame, cols, what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise PlotDataError(f"{what} needs columns {', '.join(missing)}")
    if df.empty:
        raise PlotDataError(f"{what}: no rows to plot")


def scheme_legend(fig, schemes, extra=()):
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=scheme_color(s), marker=style.SCHEME_MARKERS.get(s, "o"), label=s)
               for s in schemes] + list(extra)
    wide = fig.get_figwidth() > 5
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0),
               ncol=min(len(handles), 7 if wide else (2 if len(handles) == 4 else 3)),
               handlelength=1.6, columnspacing=1.0)


def events_axis(ax):
    from matplotlib.ticker import EngFormatter, MaxNLocator

    ax.set_xlabel("trace events")
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))  # 20k, 1.5M: no offset text to collide
    ax.xaxis.set_major_locator(MaxNLocator(4))


def grouped_bars(ax, df, category, value, err_low=None, err_high=None):
    cats = list(dict.fromkeys(df[category]))
    schemes = sort_schemes(df["scheme"].unique())
    width = 0.8 / max(len(schemes), 1)
    for i, s in enumerate(schemes):
        d = df[df["scheme"] == s].set_index(category).reindex(cats)
        x = np.arange(len(cats)) + (i - (len(schemes) - 1) / 2) * width
        yerr = None
        if err_low is not None and d[err_low].notna().any():
            yerr = np.vstack([(d[value] - d[err_low]).fillna(0).clip(lower=0),
                              (d[err_high] - d[value]).fillna(0).clip(lower=0)])
        ax.bar(x, d[value], width, color=scheme_color(s), yerr=yerr, ecolor="black", error_kw={"linewidth": 0.8},
               label=s)
        for xi, v in zip(x, d[value]):
            if v == 0:  # a zero bar is invisible: say it
                ax.annotate("0", (xi, 0), xytext=(0, 1), textcoords="offset points", ha="center", va="bottom",
                            color=scheme_color(s), fontsize="x-small")
    ax.set_xticks(np.arange(len(cats)))
    ax.set_xticklabels(cats, rotation=30, ha="right")
    return schemes


def bar_pair(df: pd.DataFrame, left: str, right: str, ylabels: tuple, scales: tuple = ("linear", "linear")):
    """Two panels of bars per trace (x) and scheme (colour): columns `left` and `right`."""
    plt = load_pyplot()
    fig, axes = plt.subplots(1, 2, figsize=style.size(wide=True))
    schemes = None
    for ax, col, label, scale in zip(axes, (left, right), ylabels, scales):
        schemes = grouped_bars(ax, df, "trace", col)
        if scale == "symlog":
            ax.set_yscale("symlog", linthresh=10)
            ax.set_ylim(bottom=0)
        elif scale == "log":
            ax.set_yscale("log")
        ax.set_ylabel(label)
    scheme_legend(fig, schemes)
    fig.tight_layout()
    return fig


def stacked_over_time(df: pd.DataFrame, parts, ylabel: str, ncol: int = 3):
    """One panel per scheme (shared y), each an area plot over `events` of `parts` stacked
    from the bottom: (label, colour, function of the scheme's rows -> values)."""
    plt = load_pyplot()
    schemes = sort_schemes(df["scheme"].unique())
    fig, axes = plt.subplots(1, len(schemes), figsize=style.size(wide=True), sharey=True, squeeze=False)
    for ax, s in zip(axes[0], schemes):
        d = df[df["scheme"] == s].sort_values("events")
        ax.stackplot(d["events"], *(np.asarray(get(d), dtype=float) for _, _, get in parts),
                     colors=[c for _, c, _ in parts], labels=[lab for lab, _, _ in parts], linewidth=0)
        ax.set_title(s, color=scheme_color(s))
        events_axis(ax)
    axes[0][0].set_ylabel(ylabel)
    h, lab = axes[0][0].get_legend_handles_labels()
    fig.legend(h, lab, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=ncol)
    fig.tight_layout()
    return fig
