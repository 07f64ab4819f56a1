"""Research plots: each function turns a tidy DataFrame into a matplotlib Figure.

Notebook use::

    from ptpair.reports import plots, style
    with style.use("paper"):
        fig = plots.pt_memory(df)          # df: the CSV the report wrote, or your own
        style.save(fig, "pt_memory")       # pt_memory.svg / .pdf / .png

The columns each function needs are in its docstring; the report writes exactly these
CSVs to DIR/data/, and `ptpair plot KIND --data FILE.csv` rebuilds a figure from one.
Page counts are 4-KiB frames; axes show MiB where memory is meant.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ptpair import registry
from ptpair.reports import style
from ptpair.reports.plot_pressure import aged_pressure, compaction, hugepages  # noqa: F401  (in FIGURES)
from ptpair.reports.plot_vmpte import vmpte  # noqa: F401  (in FIGURES)
from ptpair.reports.plotkit import (
    bar_pair, events_axis, grouped_bars, load_pyplot, mib, need, scheme_legend, stacked_over_time,
)
from ptpair.reports.style import PART_COLORS, scheme_color, sort_schemes
from ptpair.traces.format import N_ORDERS



# --- per-trace figures --------------------------------------------------------------------
def pt_memory(df: pd.DataFrame):
    """Page-table memory over time per scheme: KPT, EPT of VMMs and wasted EPT, stacked.

    Columns: scheme, events, kpt_pages, ept_pages, wasted_ept_pages (pages).
    """
    need(df, ["scheme", "events", "kpt_pages", "ept_pages", "wasted_ept_pages"], "pt_memory")
    kpt, vmm_ept, waste = PART_COLORS  # labels, bottom to top
    return stacked_over_time(df, [(kpt, PART_COLORS[kpt], lambda d: mib(d["kpt_pages"])),
                                  (vmm_ept, PART_COLORS[vmm_ept], lambda d: mib(d["ept_pages"] - d["wasted_ept_pages"])),
                                  (waste, PART_COLORS[waste], lambda d: mib(d["wasted_ept_pages"]))],
                             "page-table memory (MiB)")


def _heat(ax, x, values, cmap, vmin=None, vmax=None, norm=None):
    """Order x time heatmap (orders on the y axis, 0 at the bottom)."""
    x = np.asarray(x, dtype=float)
    if len(x) > 1:
        edges = np.concatenate([[x[0] - (x[1] - x[0])], x])
    else:
        edges = np.array([0.0, max(x[0], 1.0)])
    ax.grid(False)
    return ax.pcolormesh(edges, np.arange(values.shape[1] + 1) - 0.5, values.T, cmap=cmap, vmin=vmin, vmax=vmax,
                         norm=norm, shading="flat", rasterized=True)


def _order_axis(ax, label=True):
    ax.set_yticks([0, 2, 4, 6, 8, 10])
    if label:
        ax.set_ylabel("order")


def buddyinfo(df: pd.DataFrame, baseline: str = "separate", other: str = "pair"):
    """Free blocks per order over time (the buddyinfo), a heatmap per scheme, and the
    difference other - baseline (in blocks, signed log scale).

    Columns: scheme, events, free_blocks_0 .. free_blocks_10.
    """
    cols = [f"free_blocks_{k}" for k in range(N_ORDERS)]
    need(df, ["scheme", "events", *cols], "buddyinfo")
    plt = load_pyplot()
    from matplotlib.colors import LogNorm, SymLogNorm

    schemes = sort_schemes(df["scheme"].unique())
    diff = other in schemes and baseline in schemes
    n = len(schemes) + diff
    fig, axes = plt.subplots(1, n, figsize=style.size(wide=True), sharey=True, squeeze=False)
    top = max(float(df[cols].to_numpy().max()), 1.0)
    mesh = None
    frames = {}
    for ax, s in zip(axes[0], schemes):
        d = df[df["scheme"] == s].sort_values("events")
        frames[s] = d
        v = d[cols].to_numpy(dtype=float)
        mesh = _heat(ax, d["events"], np.ma.masked_less_equal(v, 0), "viridis", norm=LogNorm(1, top))
        ax.set_title(s, color=scheme_color(s))
        events_axis(ax)
        ax.set_facecolor("#dddddd")
    _order_axis(axes[0][0])
    fig.colorbar(mesh, ax=axes[0][:len(schemes)].tolist(), label="free blocks (grey: none)", pad=0.01)
    if diff:
        ax = axes[0][-1]
        a, b = frames[other], frames[baseline]
        m = min(len(a), len(b))
        dv = a[cols].to_numpy(dtype=float)[:m] - b[cols].to_numpy(dtype=float)[:m]
        lim = max(float(np.abs(dv).max()), 1.0)
        dm = _heat(ax, a["events"].to_numpy()[:m], dv, "PuOr_r", norm=SymLogNorm(1, vmin=-lim, vmax=lim))
        ax.set_title(f"{other} - {baseline}")
        events_axis(ax)
        fig.colorbar(dm, ax=ax, label="difference (blocks)", pad=0.02)
    return fig


def frag_index(df: pd.DataFrame):
    """Linux's unusable free space index and fragmentation index per order over time, and
    the largest free block, per scheme. Meant for a replay under pressure, windowed to the
    worst value per window (see analysis.metrics.windowed). Indices run 0 to 1; grey
    where the kernel's index is undefined (a free block of that order or larger exists,
    so an allocation of the order would succeed).

    Columns: scheme, events, unusable_index_0..10, fragmentation_index_0..10 (x1000, as
    the kernel computes them), largest_free_order (-1: no free page).
    """
    ucols = [f"unusable_index_{k}" for k in range(N_ORDERS)]
    fcols = [f"fragmentation_index_{k}" for k in range(N_ORDERS)]
    need(df, ["scheme", "events", "largest_free_order", *ucols, *fcols], "frag_index")
    plt = load_pyplot()
    schemes = sort_schemes(df["scheme"].unique())
    st = style.STYLES[style._current["name"]]
    fig, axes = plt.subplots(3, len(schemes), figsize=style.size(wide=True, height=st["panel_height"] * 2.6),
                             sharex=True, squeeze=False, gridspec_kw={"height_ratios": [1, 1, 0.6]})
    mesh = None
    for j, s in enumerate(schemes):
        d = df[df["scheme"] == s].sort_values("events")
        for i, (cols, name) in enumerate([(ucols, "unusable"), (fcols, "fragmentation")]):
            ax = axes[i][j]
            v = np.ma.masked_less(d[cols].to_numpy(dtype=float) / 1000.0, 0)
            mesh = _heat(ax, d["events"], v, "magma_r", vmin=0, vmax=1)
            ax.set_facecolor("#dddddd")
            _order_axis(ax, label=False)
            if v.mask.all():
                ax.text(0.5, 0.5, "undefined throughout:\nevery order\ncould be allocated", transform=ax.transAxes,
                        ha="center", va="center", fontsize=st["font"] - 1, color="#333333")
            if i == 0:
                ax.set_title(s, color=scheme_color(s))
            if j == 0:
                ax.set_ylabel(f"{name} index\norder")
            else:
                ax.tick_params(labelleft=False)
        ax = axes[2][j]
        ax.step(d["events"], d["largest_free_order"], where="post", color=scheme_color(s))
        ax.set_ylim(-1.5, N_ORDERS - 0.5)
        ax.set_yticks([0, 5, 10])
        if j == 0:
            ax.set_ylabel("largest free\norder")
        else:
            ax.tick_params(labelleft=False)
        events_axis(ax)
    fig.colorbar(mesh, ax=axes.ravel().tolist(), label="index (0 to 1)", pad=0.01, shrink=0.75, anchor=(0.0, 0.85))
    return fig


def failures_memory(df: pd.DataFrame):
    """Failed allocation requests by order against simulated memory size, per scheme.

    Columns: scheme, memory_pages, failures_0 .. failures_10 (requests); optional
    min_memory_pages (per scheme), marked as a thin vertical line. Orders 0 and 1 are
    drawn apart (solid, dashed); orders 2 and up together (dotted).
    """
    fcols = [f"failures_{k}" for k in range(N_ORDERS)]
    need(df, ["scheme", "memory_pages", *fcols], "failures_memory")
    plt = load_pyplot()
    from matplotlib.lines import Line2D

    fig, ax = plt.subplots(figsize=style.size())
    schemes = sort_schemes(df["scheme"].unique())
    for s in schemes:
        d = df[df["scheme"] == s].sort_values("memory_pages")
        x = mib(d["memory_pages"])
        series = {0: d["failures_0"], 1: d["failures_1"], 2: d[fcols[2:]].sum(axis=1)}
        for k, y in series.items():
            if (y > 0).any():
                ax.plot(x, y, linestyle=style.ORDER_LINESTYLES[k], color=scheme_color(s),
                        marker=style.SCHEME_MARKERS.get(s, "o"), markersize=3)
        if "min_memory_pages" in d and d["min_memory_pages"].notna().any():
            ax.axvline(mib(d["min_memory_pages"].dropna().iloc[0]), color=scheme_color(s), linewidth=0.8,
                       alpha=0.6)
    ax.set_yscale("symlog", linthresh=1)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("simulated memory (MiB)")
    ax.set_ylabel("failed requests")
    extra = [Line2D([], [], color="grey", linestyle=style.ORDER_LINESTYLES[k], label=lab)
             for k, lab in [(0, "order 0"), (1, "order 1"), (2, "order ≥ 2")]]
    scheme_legend(fig, schemes, extra)
    fig.tight_layout()
    return fig


def pt_processes(df: pd.DataFrame):
    """Page-table memory against the number of live processes: mean over the samples with
    that many processes, the range as a band, per scheme (points dodged apart).

    Columns: scheme, processes, pt_pages.
    """
    need(df, ["scheme", "processes", "pt_pages"], "pt_processes")
    plt = load_pyplot()
    fig, ax = plt.subplots(figsize=style.size())
    schemes = sort_schemes(df["scheme"].unique())
    dodge = 0.5 / max(len(schemes), 1)
    for i, s in enumerate(schemes):
        g = df[df["scheme"] == s].groupby("processes")["pt_pages"]
        x = g.mean().index.to_numpy(dtype=float) + (i - (len(schemes) - 1) / 2) * dodge
        c = scheme_color(s)
        ax.errorbar(x, mib(g.mean()), yerr=[mib(g.mean() - g.min()), mib(g.max() - g.mean())], color=c,
                    marker=style.SCHEME_MARKERS.get(s, "o"), markersize=3, linewidth=0.8, elinewidth=0.6)
    ax.set_xlabel("live processes")
    ax.set_ylabel("page-table memory (MiB)")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    scheme_legend(fig, schemes)
    fig.tight_layout()
    return fig


# --- figures across traces ---------------------------------------------------------------
def minmem(df: pd.DataFrame):
    """The pressure margin -- frames a scheme needs beyond its live data to run without
    failure -- of each scheme minus separate's, per trace: the exact value for each trace
    (filled), and for each synthetic workload the Hodges-Lehmann paired difference over
    seeds with its exact Wilcoxon interval (hollow, with error bar).

    Columns: trace, scheme, kind ('trace' or 'seeds'), difference_pages, ci_low_pages,
    ci_high_pages (NaN for one run).
    """
    need(df, ["trace", "scheme", "kind", "difference_pages", "ci_low_pages", "ci_high_pages"], "minmem")
    plt = load_pyplot()
    fig, ax = plt.subplots(figsize=style.size(wide=True))
    traces = list(dict.fromkeys(df["trace"]))
    schemes = [s for s in sort_schemes(df["scheme"].unique())]
    n = len(schemes) * 2
    step = 0.8 / max(n, 1)
    for i, s in enumerate(schemes):
        for j, kind in enumerate(["trace", "seeds"]):
            d = df[(df["scheme"] == s) & (df["kind"] == kind)].set_index("trace").reindex(traces)
            if d["difference_pages"].isna().all():
                continue
            x = np.arange(len(traces)) + (2 * i + j - (n - 1) / 2) * step
            y = d["difference_pages"].to_numpy(dtype=float)
            lo, hi = d["ci_low_pages"].to_numpy(dtype=float), d["ci_high_pages"].to_numpy(dtype=float)
            yerr = np.vstack([np.nan_to_num(y - lo), np.nan_to_num(hi - y)]) if kind == "seeds" else None
            c = scheme_color(s)
            ax.errorbar(x, y, yerr=yerr, fmt=style.SCHEME_MARKERS.get(s, "o"), color=c, capsize=2,
                        markerfacecolor=c if kind == "trace" else "white", markersize=4, linewidth=0.8)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xticks(np.arange(len(traces)))
    ax.set_xticklabels(traces, rotation=30, ha="right")
    ax.set_ylabel("pressure margin minus\nseparate's (frames)")
    from matplotlib.lines import Line2D

    extra = [Line2D([], [], color="grey", marker="o", linestyle="", label="this trace"),
             Line2D([], [], color="grey", marker="o", markerfacecolor="white", linestyle="",
                    label="Hodges-Lehmann over seeds, Wilcoxon interval")]
    scheme_legend(fig, schemes, extra)
    fig.tight_layout()
    return fig


def breakeven(df: pd.DataFrame):
    """Pair's page-table memory over separate's against the VMM share of processes (left):
    the nominal fraction f the trace was synthesised with (filled) and the realised share s
    of live VMM processes at the end of the replay (hollow), with the naive model
    2 / (1 + x); and against phi, the VMMs' share of KPT tables in the pair replay (right),
    with the closed-form model 2 / (1 + phi).

    Columns: vmm_fraction, vmm_process_share, phi (0..1), ratio.
    """
    need(df, ["vmm_fraction", "vmm_process_share", "phi", "ratio"], "breakeven")
    plt = load_pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=style.size(wide=True), sharey=True)
    dark = style.OKABE_ITO["black"]
    c = scheme_color("pair")
    x = np.linspace(0, 1, 101)
    a.scatter(df["vmm_fraction"], df["ratio"], s=10, color=c, zorder=3, label="against nominal f")
    a.scatter(df["vmm_process_share"], df["ratio"], s=12, marker="s", facecolors="white", edgecolors=c,
              linewidths=0.8, zorder=3, label="against realised s")
    a.plot(x, 2 / (1 + x), color=dark, linestyle="--", label="naive model 2/(1+x)")
    a.set_xlabel("VMM share of processes: nominal f, realised s")
    a.set_ylabel("page-table memory, pair / separate")
    b.scatter(df["phi"], df["ratio"], s=10, color=c, zorder=3, label="simulated")
    b.plot(x, 2 / (1 + x), color=dark, label="model 2/(1+φ)")
    b.set_xlabel("VMM share of KPT tables φ (pair replay)")
    for ax in (a, b):
        ax.axhline(1, color="grey", linewidth=0.6)
        ax.legend(loc="upper right")
    fig.tight_layout()
    return fig


def decomposition(df: pd.DataFrame):
    """pair - separate page-table pages split into waste (EPT pages of non-VMMs:
    separate-eager - separate) and contiguity (pair - separate-eager), per trace.

    Columns: trace, waste, contiguity (pages).
    """
    need(df, ["trace", "waste", "contiguity"], "decomposition")
    plt = load_pyplot()
    fig, ax = plt.subplots(figsize=style.size())
    cats = list(df["trace"])
    x = np.arange(len(cats))
    w = 0.38
    ax.bar(x - w / 2, mib(df["waste"]), w, color=PART_COLORS["EPT wasted"], label="waste (EPT of non-VMMs)")
    ax.bar(x + w / 2, mib(df["contiguity"]), w, color=scheme_color("pair"), label="contiguity (order-1 blocks)")
    for xi, (wv, cv) in enumerate(zip(df["waste"], df["contiguity"])):
        for off, v, c in ((-w / 2, wv, PART_COLORS["EPT wasted"]), (w / 2, cv, scheme_color("pair"))):
            if v == 0:  # a zero bar is invisible: say it
                ax.annotate("0", (xi + off, 0), xytext=(0, 1), textcoords="offset points", ha="center",
                            va="bottom", color=c, fontsize="x-small")
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xticks(x)
    ax.set_xticklabels(cats, rotation=30, ha="right")
    ax.set_ylabel("pair - separate (MiB)")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=1)
    fig.tight_layout()
    return fig


def walk_cost(df: pd.DataFrame):
    """Counted walk cost per page-table entry written, per trace and scheme: EPT
    dependent loads (left; pair finds the EPT entry at KPT + 4096 without one) and
    table pages touched, KPT and EPT together (right).

    Columns: trace, scheme, ept_loads_per_write, walk_pages_per_write.
    """
    need(df, ["trace", "scheme", "ept_loads_per_write", "walk_pages_per_write"], "walk_cost")
    return bar_pair(df, "ept_loads_per_write", "walk_pages_per_write",
                     ("EPT dependent loads per entry write", "table pages touched per entry write"))


def akaros_2015(df: pd.DataFrame):
    """The seed's before/after under Akaros's own 2015 allocator (tables freed at exit):
    frames the downward get_cont_pages scan tests per order>=1 request (left, log scale)
    and peak page-table memory (right), per trace and scheme.

    Columns: trace, scheme, frames_scanned_per_allocation, pt_pages_peak.
    """
    need(df, ["trace", "scheme", "frames_scanned_per_allocation", "pt_pages_peak"], "akaros_2015")
    return bar_pair(df.assign(pt_mib=mib(df["pt_pages_peak"])), "frames_scanned_per_allocation", "pt_mib",
                     ("frames scanned per order ≥ 1 request", "peak page-table memory (MiB)"), ("log", "linear"))


def linux_pageblocks(df: pd.DataFrame):
    """Under the Linux mobility allocator: 2-MiB pageblocks holding unmovable
    (page-table, kernel) pages but not labelled unmovable -- polluted -- at the end,
    and migratetype fallbacks, per trace and scheme.

    Columns: trace, scheme, polluted_pageblocks_final, fallbacks.
    """
    need(df, ["trace", "scheme", "polluted_pageblocks_final", "fallbacks"], "linux_pageblocks")
    return bar_pair(df, "polluted_pageblocks_final", "fallbacks",
                     ("polluted pageblocks (end)", "migratetype fallbacks"), ("symlog", "symlog"))


def walk_ns(df: pd.DataFrame):
    """Measured walk time: nanoseconds per lookup (KPT entry, then its EPT entry) by
    scheme, per pattern (panels), for each trace and simulated memory size, with the 95 %
    bootstrap interval of the median over rounds.

    Columns: trace, scheme, pattern, memory_pages, ns_per_lookup, ci_low, ci_high.
    """
    need(df, ["trace", "scheme", "pattern", "memory_pages", "ns_per_lookup", "ci_low", "ci_high"], "walk_ns")
    plt = load_pyplot()
    patterns = list(dict.fromkeys(df["pattern"]))
    fig, axes = plt.subplots(1, len(patterns), figsize=style.size(wide=True), sharey=True, squeeze=False)
    d = df.assign(where=df["trace"] + "\n" + (df["memory_pages"] // 256).astype(int).astype(str) + " MiB")
    schemes = None
    for ax, pat in zip(axes[0], patterns):
        schemes = grouped_bars(ax, d[d["pattern"] == pat], "where", "ns_per_lookup", "ci_low", "ci_high")
        ax.set_title(f"{pat} addresses")
        ax.tick_params(axis="x", labelsize="x-small")
    axes[0][0].set_ylabel("ns per lookup (median)")
    scheme_legend(fig, schemes)
    fig.tight_layout()
    return fig


# name -> function; `ptpair plot NAME` and the report use this table
# kind -> the function drawing it: each kind of the registry is drawn by the function of its name
FIGURES = {kind: globals()[kind] for kind in registry.FIGURES}


def kind_of(name: str) -> str:
    """The plot kind of a figure name: 'buddyinfo__mixed' -> 'buddyinfo'."""
    kind = name.split("__", 1)[0]
    if kind not in FIGURES:
        raise ValueError(f"unknown figure {name!r}; known: {', '.join(FIGURES)}")
    return kind
