"""`ptpair report`: traces in, one self-contained comparative report out.

    DIR/index.html      one page, opens offline (figures next to it, no scripts, no network)
    DIR/report.md       the same in Markdown
    DIR/figures/        every figure as NAME.svg, NAME.pdf and NAME.png
    DIR/data/           the CSV behind every figure and table
    DIR/manifest.json   ptpair version, git commit, inputs' sha256, parameters, seeds,
                        library versions, and which data file each figure is drawn from

The report is written into a temporary folder beside DIR and renamed into place at the
end, so an interrupted run leaves the previous report (or none), never half of one. The
same inputs and parameters give byte-identical files.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from ptpair import provenance
from ptpair.analysis.experiments import ReportData, ReportParams, collect
from ptpair.analysis.inference import level_text, min_two_sided_p, wilcoxon_rank
from ptpair.analysis.phases import NONE as NO_PHASES, Phases
from ptpair.reports import plots, style, tables
from ptpair.reports.text import SEEDS_CAVEAT, stats_rows
from ptpair.traces import sources
from ptpair.traces.sources import default_traces, load, source_sha256

LIBRARIES = ["numpy", "numba", "pandas", "pyarrow", "scipy", "matplotlib", "tqdm"]


# --- figures and their data ---------------------------------------------------------------
def figure_specs(data: ReportData) -> list[tuple[str, str, pd.DataFrame, str]]:
    """(figure name, data file stem, data, caption) for every figure of the report."""
    specs = []
    for t in data.traces:
        series = data.series[data.series["trace"] == t].drop(columns="trace").reset_index(drop=True)
        mem = int(data.memory.set_index("trace").loc[t, "memory_pages"])
        tight_mem = int(data.memory.set_index("trace").loc[t, "tight_memory_pages"])
        tight = data.tight[data.tight["trace"] == t].drop(columns="trace").reset_index(drop=True)
        at = f"`{t}` at {mem / 256:.0f} MiB"
        specs += [
            (f"pt_memory__{t}", f"series__{t}", series,
             f"Page-table memory over time, {at}: KPT pages, EPT pages of VMM processes, and EPT pages of "
             "processes that never run a VM (wasted), stacked."),
            (f"buddyinfo__{t}", f"series__{t}", series,
             f"Free blocks per order over time (buddyinfo), {at}, per scheme, and pair minus separate."),
            (f"frag_index__{t}", f"tight__{t}", tight,
             f"Under pressure -- `{t}` at {tight_mem / 256:.0f} MiB, the last 1-MiB step below pair's peak of "
             "frames in use -- Linux's unusable free space index and fragmentation index per order, and the "
             f"largest free block, over time: the worst value in each of {data.params.windows} windows of a "
             "replay sampled after every event."),
            (f"failures_memory__{t}", f"failures__{t}", tables.failures_figure_data(data, t),
             f"Failed allocation requests by order against simulated memory size, `{t}`; thin vertical lines: "
             "each scheme's smallest failure-free memory."),
            (f"pt_processes__{t}", f"series__{t}", series,
             f"Page-table memory against the number of live processes, {at}: mean over samples (line) and range "
             "(bars)."),
            (f"hugepages__{t}", f"series__{t}",
             series[series["scheme"].isin(data.params.failure_schemes)].reset_index(drop=True),
             f"Huge-page availability over time, {at}: the 2 MiB blocks blocked by wasted EPT pages alone, by page "
             "tables, kernel allocations or background frames (stacked from the bottom), then those holding only "
             "movable frames, then the free ones."),
            (f"compaction__{t}", f"compaction__{t}", tables.compaction_figure_data(data, t),
             f"At the tight memory ({tight_mem / 256:.0f} MiB): for the requests that failed, by order, the frames "
             "direct compaction would have to migrate (the cheapest aligned window free of unmovable frames) and "
             "the failures no compaction could serve."),
        ]
    specs += [
        ("minmem", "minmem", tables.minmem_figure_data(data),
         "Pressure margin -- the frames a scheme needs beyond its live data to run without failure (smallest "
         "failure-free memory, to the frame, minus the peak of frames in use) -- of each scheme minus separate's. "
         f"Filled: the trace itself, exact. Hollow: Hodges-Lehmann paired difference over seeds "
         f"1-{data.params.seeds} of the synthetic workload of the same name ({data.params.seed_events} events), "
         f"with its exact Wilcoxon interval (95 % asked, {level_text(wilcoxon_rank(data.params.seeds, 0.95)[1])} "
         f"attained with {data.params.seeds} seeds)."),
        ("decomposition", "decomposition", tables.decomposition_data(data),
         "Peak page-table memory of pair minus separate, split into waste (EPT pages of non-VMM processes: "
         "separate-eager - separate) and contiguity (pair - separate-eager)."),
        ("breakeven", "breakeven", data.breakeven, _breakeven_caption(data)),
        ("walk_cost", "walk_cost", tables.walk_cost_data(data),
         "Counted walk cost per page-table entry written: EPT dependent loads and table pages touched."),
    ]
    if data.walk is not None and len(data.walk):
        cpu = (data.walk_info or {}).get("machine", {}).get("cpu") or "this machine"
        specs.append(("walk_ns", "walk", data.walk,
                      f"Measured walk time on {cpu}: ns per lookup of a KPT entry and its EPT entry (pair: KPT + 4096; "
                      "separate: a walk of the EPT), on the replay's tables materialised in simulated memory, per "
                      "trace and memory size (the tight memory, the report memory, 4 GiB); median over "
                      f"{data.params.walk_repeats} interleaved rounds with its 95 % bootstrap interval. Timings: "
                      "the one part of the report that is measured, not replayed, and so not byte-reproducible."))
    if data.aged is not None and len(data.aged):
        specs.append(("aged_pressure", "aged_pressure", tables.aged_figure_data(data),
                      "Allocator pressure on aged memory, summed over the traces of the aged section: the share of "
                      "page-table requests that found their own free list empty, the 2 MiB blocks page tables "
                      "(wasted EPT pages included) block at their peak, and on memory from the synthetic ager the "
                      "pressure margin (smallest failure-free memory, re-aged at every size, with its free frames at "
                      "start minus the trace's own peak). Error bars: 95 % t interval over "
                      f"{data.params.ager_seeds} ager seeds."))
    if "akaros-2015" in data.params.kernels:
        specs.append(("akaros_2015", "akaros_2015", tables.kernel_data(data, "akaros-2015"),
                      "Akaros commit ddb9fa78's before (separate-lazy) and after (pair) under Akaros's 2015 allocator "
                      "(get_cont_pages scans downward; tables freed at exit), at each trace's report memory."))
    if data.vmpte is not None and len(data.vmpte):
        specs.append(("vmpte", "vmpte", data.vmpte,
                      "The replay checked against Linux: for each `ptpair record perf` recording of the corpus, each "
                      "process's page-table memory (pml3 + pml2 + pml1 + PTE tables deposited with its 2 MiB pages) "
                      "as the replay under `--kernel linux` gives it, over time (lines, by command), and the VmPTE the "
                      "kernel reported for it while it ran (circles); right: every sample against the replay at its "
                      "moment."))
    if "linux" in data.params.kernels:
        specs.append(("linux_pageblocks", "linux_pageblocks", tables.kernel_data(data, "linux"),
                      "Under a Linux-like mobility allocator: 2-MiB pageblocks polluted by unmovable pages at "
                      "the end, and migratetype fallbacks, at each trace's report memory."))
    return specs


def _breakeven_caption(data: ReportData) -> str:
    """The breakeven figure's caption, with the models' fit (analysis/breakeven.py: fit)."""
    from ptpair.analysis.breakeven import fit

    p = data.params
    head = (f"Page-table memory of pair over separate as the VMM fraction grows (`{p.breakeven_workload}`, "
            f"{p.seed_events} events, seeds 1-{p.breakeven_seeds}).")
    if data.breakeven is None or not len(data.breakeven):
        return head
    f = fit(data.breakeven)
    return (f"{head} Left: against the nominal VMM fraction f "
            "of new images (filled) and the realised share s of live VMM processes (hollow), with the naive "
            f"model 2/(1+x): R² {_fmt(f['naive_model_r2'])} against s, {_fmt(f['naive_model_r2_nominal'])} "
            "against f (R² of the pair - separate difference over K against the fixed line 1 - x, nothing "
            "fitted). Right: against φ, the VMMs' share of KPT tables in the pair replay, with the closed-form "
            "model 2/(1+φ), which predicts the separate replay from the pair replay's tables alone: largest "
            f"error {f['exact_model_max_error_pages']:g} pages.")


def _csv(df: pd.DataFrame, path: Path) -> None:
    # fixed float format: the same numbers give the same bytes on every platform
    df.to_csv(path, index=False, float_format="%.6g", lineterminator="\n")


# --- text helpers -------------------------------------------------------------------------
def _fmt(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "-"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        if float(v).is_integer() and abs(v) < 1e15:
            return f"{int(v):,}"
        return f"{float(v):,.{digits}g}" if abs(v) < 1e4 else f"{float(v):,.0f}"
    return str(v)


def _ci(lo, hi) -> str:
    if lo is None or np.isnan(lo):
        return "-"
    return f"[{_fmt(lo)}, {_fmt(hi)}]"


def _answer_rows(ans: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    head = ["trace", "question", "pair", "separate", "pair - separate", "interval over seeds", "winner", "unit"]
    rows = []
    for r in ans.itertuples():
        rel = "" if np.isnan(r.relative_difference) else f" ({r.relative_difference:+.1%})"
        ci = (_ci(r.seeds_ci_low, r.seeds_ci_high) + ("" if np.isnan(r.seeds_ci_level) else
                                                      f" {level_text(r.seeds_ci_level)}")
              + (f", n={r.seeds_n}" if r.seeds_n else ""))
        rows.append([r.trace, r.question, _fmt(r.pair), _fmt(r.separate), f"{r.difference:+,.3g}{rel}", ci,
                     r.winner, r.unit])
    return head, rows


def _seed_stats_view(stats: pd.DataFrame) -> pd.DataFrame:
    """The across-seeds table as `ptpair stats` prints it (reports.text.stats_rows), per
    workload, with the workload's adjustment named in its column."""
    parts = []
    for w, g in stats.groupby("workload", sort=False):
        rows = stats_rows(g, adjustment="holm")
        rows.insert(0, "workload", w)
        parts.append(rows)
    return pd.concat(parts, ignore_index=True)


def _md_table(head, rows) -> str:
    esc = [[str(c).replace("|", "\\|") for c in r] for r in rows]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(r) + " |" for r in esc]
    return "\n".join(out)


def _html_table(head, rows, cls="") -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def _frame_rows(df: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    return list(df.columns), [[_fmt(v) for v in r] for r in df.itertuples(index=False)]


# --- the document -------------------------------------------------------------------------
class _Doc:
    """Builds report.md and index.html side by side from the same calls."""

    def __init__(self, formats):
        self.md: list[str] = []
        self.html: list[str] = []
        self.img = "svg" if "svg" in formats else "png"
        self.formats = formats

    def h(self, level: int, text: str, anchor: str | None = None):
        self.md.append("#" * level + " " + text + "\n")
        a = f' id="{anchor}"' if anchor else ""
        self.html.append(f"<h{level}{a}>{html.escape(text)}</h{level}>")

    def p(self, text: str):
        self.md.append(text + "\n")
        self.html.append("<p>" + _inline(text) + "</p>")

    def table(self, head, rows, cls="", data: str | None = None):
        self.md.append(_md_table(head, rows) + "\n")
        if data:
            self.md.append(f"Data: [data/{data}.csv](data/{data}.csv)\n")
        link = f'<p class="data">Data: <a href="data/{data}.csv">data/{data}.csv</a></p>' if data else ""
        self.html.append(_html_table(head, rows, cls) + link)

    def figure(self, name: str, data: str, caption: str):
        alt = caption.replace("`", "")
        files = " · ".join(f"[{f}](figures/{name}.{f})" for f in self.formats)
        self.md.append(f"![{alt}](figures/{name}.{self.img})\n\n*{caption}* {files} · [data](data/{data}.csv)\n")
        links = " · ".join(f'<a href="figures/{name}.{f}">{f}</a>' for f in self.formats)
        self.html.append(
            f'<figure id="{name}"><img src="figures/{name}.{self.img}" alt="{html.escape(alt)}">'
            f"<figcaption>{_inline(caption)} <span class=\"links\">{links} · "
            f'<a href="data/{data}.csv">data</a></span></figcaption></figure>')


_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")


def _inline(text: str) -> str:
    """Markdown's `code` spans and [text](url) links to HTML, everything else escaped."""
    parts = html.escape(text, quote=False).split("`")
    out = []
    for i, p in enumerate(parts):
        if i % 2:
            out.append(f"<code>{p}</code>")
        else:
            out.append(_LINK.sub(lambda m: f'<a href="{html.escape(m.group(2))}">{m.group(1)}</a>', p))
    return "".join(out)


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.7em;margin-bottom:.2em}h2{margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;font-size:.86em;margin:.6em 0}th,td{border:1px solid #ccc;padding:.25em .5em;
text-align:right}th{background:#f3f3f3}td:first-child,td:nth-child(2){text-align:left}
table.answers td:nth-child(7){font-weight:600;text-align:left}
figure{margin:1.2em 0}figure img{max-width:100%;height:auto;display:block}
figcaption{font-size:.9em;color:#444}.links,.data{font-size:.85em;color:#666}code{font-size:.92em}
nav{font-size:.9em}nav a{margin-right:.8em}
"""


def _aged_section(d: "_Doc", data: ReportData, fig) -> None:
    from ptpair.analysis import aged

    a = data.aged
    traces = ", ".join(f"`{t}`" for t in dict.fromkeys(a["trace"]))
    kinds = set(a["kind"])
    where = []
    if aged.MAP in kinds:
        where.append(f"(a) a real machine's free map (`{Path(data.params.freemap or sources.default_freemap()).name}`: "
                     "its free runs free, its used frames background, its holes not memory)")
    if aged.KMEM in kinds:
        where.append(f"(b) memory aged by the perf kmem trace `{Path(data.params.warmup or sources.warmup_trace()).name}` "
                     "replayed first, what it left allocated kept as background (memory: its report memory plus "
                     "the trace's)")
    where.append(f"(c) the synthetic ager, {aged.AGER_FREE:.0%} of memory free with Linux's unusable free space "
                 f"index at order 9 near {', '.join(f'{u:g}' for u in aged.AGER_LEVELS)}, ager seeds "
                 f"1-{data.params.ager_seeds} (memory: the trace's report memory / {aged.AGER_FREE:g})")
    d.h(3, "Allocator pressure on aged memory", "aged")
    d.p(f"The same questions on memory that is not pristine, for {traces}: " + "; ".join(where)
        + ". Background frames are unmovable and never freed. Definitions: docs/semantics.md#initial-state.")
    fig("aged_pressure")
    d.table(*_frame_rows(tables.aged_table(data)), data="aged")


def _vmpte_section(d: "_Doc", data: ReportData, fig) -> None:
    d.h(2, "Checked against Linux", "vmpte")
    d.p("The simulator's page tables against the kernel's own count: `ptpair record perf` traced every page fault, "
        "memory syscall and process event of a command while sampling each process's VmPTE (/proc/PID/status); "
        "the trace replayed under `--kernel linux` (Linux's allocator and table reclaim, THP deposits) gives, at "
        "each sample's moment, the process's page-table pages as VmPTE counts them. Samples taken while a process "
        "was between a fault's trace event and its table allocation can differ by a table. "
        "Semantics: docs/trace-format.md#perf-logs.")
    fig("vmpte")
    d.table(*_frame_rows(tables.vmpte_agreement(data)), data="vmpte_agreement")


def _document(data: ReportData, specs, ans, stats, formats, style_name: str, manifest: dict) -> _Doc:
    d = _Doc(formats)
    p = data.params
    d.h(1, "ptpair report: contiguous KPT/EPT page-table pairs")
    d.p("Every intermediate x86-64 page-table page allocated as an order-1 block -- the KPT page below, its EPT "
        "twin above (Akaros, commit ddb9fa78) -- against EPT pages allocated separately. Each trace was replayed "
        f"under {', '.join(f'`{s}`' for s in p.schemes)} with the `{p.policy}` free-list policy; "
        + (f"the report memory is fixed at {p.memory_pages / 256:g} MiB" if p.memory_pages else
           f"the report memory of a trace is pair's peak of frames in use plus {p.headroom:.0%}")
        + ". Page counts are 4-KiB frames; MiB = 256 frames. Semantics: docs/semantics.md; analysis: "
        "docs/analysis.md.")
    d.html.append('<nav><a href="#answers">Answers</a><a href="#waste">Memory waste</a>'
                  '<a href="#pressure">Allocator pressure</a><a href="#walk">Walk cost</a>'
                  '<a href="#kernels">Kernel variants</a><a href="#vmpte">Checked against Linux</a>'
                  '<a href="#seeds">Across seeds</a>'
                  '<a href="#inputs">Inputs</a></nav>')
    d.h(2, "The answer", "answers")
    d.p("Per trace, the three questions the design raises, pair against separate; lower is better in every row. "
        f"Intervals: the exact Wilcoxon signed-rank interval of the Hodges-Lehmann paired difference over seeds "
        f"1-{p.seeds} of the synthetic workload of the same name ({p.seed_events} events each, 4 GiB), 95 % asked, "
        f"the level it attains beside it; on aged memory a t interval over ager seeds. {SEEDS_CAVEAT} A recorded "
        "trace has one exact value and no interval. Figures: memory waste -- [page-table memory](#waste); allocator pressure -- "
        "[pressure margin](#minmem), on pristine memory, and on [aged memory](#aged); walk cost -- [walk cost](#walk_cost).")
    head, rows = _answer_rows(ans)
    d.table(head, rows, "answers", data="answers")

    byname = {s[0]: s for s in specs}

    def fig(name):
        n, stem, _, cap = byname[name]
        d.figure(n, stem, cap)

    d.h(2, "Memory waste", "waste")
    fig("decomposition")
    fig("breakeven")
    for t in data.traces:
        fig(f"pt_memory__{t}")
    d.h(2, "Allocator pressure", "pressure")
    d.p("Measured on pristine memory (every replay starts with all frames free). The pressure margin is the "
        "smallest failure-free memory, to the frame, minus the peak of frames in use; page-table requests that "
        "found their own free list empty had to split a larger block; at the tight memory (the last MiB below "
        "pair's peak of frames in use) every failed request is charged the frames compaction would migrate. "
        "Definitions: docs/analysis.md#allocator-pressure.")
    fig("minmem")
    d.table(*_frame_rows(tables.minmem_exact(data)), data="minmem_exact")
    d.table(*_frame_rows(tables.pressure_table(data)), data="pressure")
    if "aged_pressure" in byname:
        _aged_section(d, data, fig)
    for t in data.traces:
        d.h(3, f"{t}")
        for k in ("failures_memory", "compaction", "hugepages", "buddyinfo", "frag_index", "pt_processes"):
            fig(f"{k}__{t}")
    d.h(2, "Walk cost", "walk")
    d.p("Counted, not timed: table pages touched and dependent loads to find the EPT entry of each KPT entry "
        "written (pair: KPT + 4096, no load; separate schemes: a walk of the EPT).")
    fig("walk_cost")
    if "walk_ns" in byname:
        d.p("Measured (`ptpair walkbench`, docs/report.md): the traces whose processes include VMMs, so that "
            "`separate` has EPTs to walk. Range operations and the machine's caches are in data/walk.csv and "
            "manifest.json.")
        fig("walk_ns")
    d.h(2, "Kernel variants", "kernels")
    if "akaros_2015" in byname:
        fig("akaros_2015")
        d.table(*_frame_rows(byname["akaros_2015"][2]), data="akaros_2015")
    if "linux_pageblocks" in byname:
        fig("linux_pageblocks")
        d.table(*_frame_rows(byname["linux_pageblocks"][2]), data="linux_pageblocks")
    if "vmpte" in byname:
        _vmpte_section(d, data, fig)
    d.h(2, "Across seeds", "seeds")
    d.p(f"Every scheme against `separate`, paired by seed, seeds 1-{p.seeds} of each synthetic workload "
        f"({p.seed_events} events, 4 GiB), as `ptpair stats` gives them: the Hodges-Lehmann estimate of the "
        "difference with its exact Wilcoxon signed-rank interval (95 % asked, the level attained beside it), the "
        "Wilcoxon signed-rank p (two-sided, exact) and p adjusted by Holm's method across the workload's tests, "
        "the ratio of means with its paired bootstrap (BCa) interval, the SD of the differences and the "
        f"matched-pairs rank-biserial correlation. Rows that are identities -- every difference 0, all equal, or "
        f"the same as a row above -- are named and not tested. With {p.seeds} seeds the smallest two-sided "
        f"Wilcoxon p is {min_two_sided_p(p.seeds):.4g}. {SEEDS_CAVEAT} Formulas: docs/analysis.md#statistics.")
    if len(stats):
        d.table(*_frame_rows(_seed_stats_view(stats)), data="seed_stats")
    d.h(2, "Inputs and reproducibility", "inputs")
    rows = [[i["name"], i["path"], f"{i['events']:,}", i["sha256"][:16] + "..."] for i in manifest["inputs"]]
    d.table(["trace", "file", "events", "sha256"], rows)
    commit = provenance.short(manifest["git_commit"])
    d.p(f"ptpair {manifest['ptpair_version']}" + (f", git {commit}" if commit else "")
        + f"; style `{style_name}`. Every parameter, seed and "
        "library version is in manifest.json; any figure can be rebuilt with "
        "`ptpair plot FIGURE --data DIR/data/FILE.csv`.")
    return d


def _html_page(doc: _Doc) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>ptpair report</title><style>{CSS}</style></head><body>\n"
            + "\n".join(doc.html) + "\n</body></html>\n")


# --- provenance ---------------------------------------------------------------------------
def manifest(data: ReportData, specs, style_name: str, formats) -> dict:
    from importlib.metadata import PackageNotFoundError, version
    import platform

    def ver(name):
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    return {
        "ptpair_version": provenance.version(),
        "git_commit": provenance.git_commit(),
        "python": platform.python_version(),
        "libraries": {n: ver(n) for n in LIBRARIES},
        "inputs": [{"name": n, "path": p, "sha256": source_sha256(p), "events": len(load(p).op)}
                   for n, p in data.traces.items()],
        "params": data.params.to_dict(),
        "seeds": {"workloads": list(range(1, data.params.seeds + 1)),
                  "breakeven": list(range(1, data.params.breakeven_seeds + 1))},
        "report_memory_pages": {r.trace: int(r.memory_pages) for r in data.memory.itertuples()},
        "aged_memory": _aged_inputs(data),
        "walk_timing": data.walk_info,
        "vmpte_recordings": [{"name": r["name"], "path": r["path"], "sha256": source_sha256(r["path"]),
                              "samples": r["samples"], "samples_sha256": source_sha256(r["samples"])}
                             for r in data.vmpte_inputs or []],
        "style": style_name,
        "formats": list(formats),
        "figures": {name: {"kind": plots.kind_of(name), "data": f"data/{stem}.csv",
                           "files": [f"figures/{name}.{f}" for f in formats]} for name, stem, _, _ in specs},
    }


def _aged_inputs(data: ReportData) -> dict | None:
    """The free map and warm-up trace of the aged section, with their sha256."""
    if data.aged is None or not len(data.aged):
        return None
    from ptpair.analysis import aged

    out = {"ager_free": aged.AGER_FREE, "ager_levels": list(aged.AGER_LEVELS),
           "ager_seeds": list(range(1, data.params.ager_seeds + 1))}
    kinds = set(data.aged["kind"])
    fm = data.params.freemap or sources.default_freemap()
    if aged.MAP in kinds and fm:
        out["freemap"] = {"path": fm, "sha256": source_sha256(fm)}
    wu = data.params.warmup or sources.warmup_trace()
    if aged.KMEM in kinds and wu:
        out["warmup"] = {"path": wu, "sha256": source_sha256(wu)}
    return out


# --- writing ------------------------------------------------------------------------------
def write(data: ReportData, out: str | os.PathLike, style_name: str = "paper", formats=style.FORMATS,
          progress: bool = True, phases: Phases = NO_PHASES) -> Path:
    """Render figures, tables and documents of `data` into `out` (atomically replaced);
    `phases` collects the wall time of each step (analysis/phases.py)."""
    out = Path(out).resolve()
    formats = tuple(formats)
    if not ({"svg", "png"} & set(formats)):
        raise ValueError("the HTML report needs svg or png among the formats")
    specs = figure_specs(data)
    ans = tables.answers(data)
    stats = tables.seed_stats(data) if len(data.seeds) else pd.DataFrame()
    man = manifest(data, specs, style_name, formats)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        (tmp / "figures").mkdir(parents=True)
        (tmp / "data").mkdir()
        with phases("tables"):
            written = set()
            for name, stem, df, _ in specs:
                if stem not in written:
                    _csv(df, tmp / "data" / f"{stem}.csv")
                    written.add(stem)
            _csv(ans, tmp / "data" / "answers.csv")
            if len(stats):
                _csv(stats, tmp / "data" / "seed_stats.csv")
            _csv(tables.minmem_exact(data), tmp / "data" / "minmem_exact.csv")
            _csv(tables.pressure_table(data), tmp / "data" / "pressure.csv")
            if data.vmpte is not None and len(data.vmpte):
                _csv(tables.vmpte_agreement(data), tmp / "data" / "vmpte_agreement.csv")
            if data.aged is not None and len(data.aged):
                _csv(tables.aged_table(data), tmp / "data" / "aged.csv")
                _csv(data.aged, tmp / "data" / "aged_runs.csv")
            for name, frame in [("metrics", data.metrics), ("minmem_runs", data.minmem), ("seeds", data.seeds),
                                ("kernels", data.kernels), ("memory", data.memory)]:
                _csv(frame, tmp / "data" / f"{name}.csv")
        with phases("figures"):
            draw_figures(specs, tmp / "figures", formats, style_name, data.params.workers, progress)
        with phases("document"):
            doc = _document(data, specs, ans, stats, formats, style_name, man)
            (tmp / "report.md").write_text("\n".join(doc.md), encoding="utf-8")
            (tmp / "index.html").write_text(_html_page(doc), encoding="utf-8")
            (tmp / "manifest.json").write_text(json.dumps(man, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            _swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _draw(job: tuple) -> str:
    """One figure of a spec into its files (in a worker, or here)."""
    name, df, folder, formats, style_name = job
    with style.use(style_name):
        style.save(plots.FIGURES[plots.kind_of(name)](df), Path(folder) / name, formats)
    return name


def draw_figures(specs: list, folder: Path, formats: tuple, style_name: str, workers: int | None = None,
                 progress: bool = True) -> None:
    """Every figure of `specs` into `folder`, on `workers` local processes (the report's
    engine, analysis/sweep.py LocalEngine: default all cores). Each figure is drawn whole
    by one process, from the same data and style, so the files are byte for byte those
    one process writes."""
    from tqdm import tqdm

    from ptpair.analysis.sweep import LocalEngine

    jobs = [(name, df, str(folder), tuple(formats), style_name) for name, _, df, _ in specs]
    with style.use(style_name):  # matplotlib imported before the workers fork
        pass
    with tqdm(total=len(jobs), desc="figures", unit="fig", disable=not progress) as bar:
        for _ in LocalEngine(workers).map_unordered(_draw, jobs):
            bar.update(1)


def _swap_into_place(tmp: Path, out: Path) -> None:
    """Replace `out` by `tmp`: the old report stays whole until the new one is complete."""
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    if out.exists():
        os.rename(out, old)
    try:
        os.rename(tmp, out)
    except BaseException:
        if old.exists():
            os.rename(old, out)
        raise
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(old)


def report(traces: dict | None = None, out: str | os.PathLike = "ptpair-report", params: ReportParams | None = None,
           style_name: str = "paper", formats=style.FORMATS, progress: bool = True, engine=None,
           phases: Phases = NO_PHASES) -> Path:
    """Replay and write a full report. `traces`: name -> source (traces/sources.py); default:
    the bundled traces and the corpus. `engine`: where the replays run (analysis/sweep.py);
    `phases` collects the wall time of each step (analysis/phases.py)."""
    if style_name not in style.STYLES:
        raise ValueError(f"unknown style {style_name!r}; known: {', '.join(style.STYLES)}")
    if traces is None:
        traces = default_traces()
    data = collect(traces, params or ReportParams(), progress=progress, engine=engine, phases=phases)
    return write(data, out, style_name, formats, progress, phases)
