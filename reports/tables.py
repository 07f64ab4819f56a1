"""The tables of a report, derived from the collected replays (no replay happens here).

`answers` is the report's opening: per trace, the three questions the design raises --
memory waste, allocator pressure, walk cost -- with pair's and separate's figures, their
difference, an interval across seeds of the same synthetic workload where there is one,
and the scheme that wins.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ptpair.analysis.stats import decompose, paired_stats, stats_table
from ptpair.analysis.experiments import ReportData
from ptpair.registry import BASELINE as BASE, PAIR
from ptpair.traces import sources
from ptpair.traces.units import MIB_PAGES

CONFIDENCE = 0.95

# (question, metric column in metrics/seeds, unit, how to show a value, figure)
QUESTIONS = [
    ("memory waste", "pt_pages_peak", "MiB of page tables at peak", lambda v: v / MIB_PAGES, "pt_memory"),
    ("allocator pressure", "pressure_margin_pages",
     "frames beyond the live data (smallest failure-free memory - peak of frames in use), on pristine memory",
     lambda v: v, "minmem"),
    ("walk cost", "ept_loads_per_write", "EPT dependent loads per entry write", lambda v: v, "walk_cost"),
]


def _value(data: ReportData, trace: str, scheme: str, metric: str) -> float:
    if metric in ("min_memory_pages", "pressure_margin_pages"):
        d = data.minmem
    else:
        d = data.metrics
    r = d[(d["trace"] == trace) & (d["scheme"] == scheme)]
    return float(r[metric].iloc[0]) if len(r) else np.nan


def _winner(diff: float, lo: float, hi: float, question: str = "", no_vmm: bool = False) -> str:
    if np.isnan(diff):
        return "-"
    if diff == 0:
        if question == "walk cost" and no_vmm:
            return "tie (no VMM: separate has no EPT to walk)"
        return "tie"
    w = BASE if diff > 0 else PAIR
    if not np.isnan(lo) and lo <= 0 <= hi and lo != hi:
        return f"{w} (not significant across seeds)"
    return w


def answers(data: ReportData) -> pd.DataFrame:
    """One row per (trace, question): pair, separate, pair - separate, the exact Wilcoxon
    interval of the Hodges-Lehmann difference over seeds of the trace's synthetic workload
    (95 % asked, the level it attains beside it; NaN for a recorded trace), n seeds, and
    the winner (lower is better)."""
    rows = []
    for trace in data.traces:
        w = sources.workload_of(data.traces[trace])
        seeds = data.seeds[data.seeds["workload"] == w] if len(data.seeds) and w else pd.DataFrame()
        for q, metric, unit, show, fig in QUESTIONS:
            a, b = _value(data, trace, PAIR, metric), _value(data, trace, BASE, metric)
            lo = hi = attained = np.nan
            n = 0
            if len(seeds) and {PAIR, BASE} <= set(seeds["scheme"]) and seeds[metric].notna().any():
                st = paired_stats(seeds[seeds["scheme"].isin([PAIR, BASE])], metric, PAIR, BASE, "seed",
                                  CONFIDENCE)
                lo, hi, n, attained = show(st["ci_low"]), show(st["ci_high"]), st["n"], st["ci_level_attained"]
            diff = show(a) - show(b)
            no_vmm = _value(data, trace, BASE, "ept_loads_per_write") == 0  # separate wrote no EPT entry
            rows.append({"trace": trace, "question": q, "unit": unit, "pair": show(a), "separate": show(b),
                         "difference": diff, "relative_difference": (a - b) / b if b else np.nan,
                         "seeds_ci_low": lo, "seeds_ci_high": hi, "seeds_ci_level": attained, "seeds_n": n,
                         "winner": _winner(diff, lo, hi, q, no_vmm), "figure": fig})
    rows += _aged_answers(data)
    return pd.DataFrame(rows)


AGED_ANSWER_MEMORY = "synthetic U=0.9"  # the most broken-up memory of the aged section


def _aged_answers(data: ReportData) -> list[dict]:
    """The allocator-pressure row again on aged memory (AGED_ANSWER_MEMORY): the pressure
    margin, mean over ager seeds, with a t interval of the mean paired difference."""
    a = data.aged
    if a is None or not len(a) or "pressure_margin_pages" not in a:
        return []
    rows = []
    for trace in data.traces:
        d = a[(a["trace"] == trace) & (a["memory"] == AGED_ANSWER_MEMORY)]
        if not {PAIR, BASE} <= set(d["scheme"]):
            continue
        w = d.pivot(index="ager_seed", columns="scheme", values="pressure_margin_pages")
        diff = (w[PAIR] - w[BASE]).to_numpy(float)
        lo, hi = _t_interval(diff)
        pa, se = float(w[PAIR].mean()), float(w[BASE].mean())
        rows.append({"trace": trace, "question": "allocator pressure (aged)",
                     "unit": f"frames beyond the live data, on memory aged by the synthetic ager ({AGED_ANSWER_MEMORY}, "
                             "mean over ager seeds; interval over ager seeds)",
                     "pair": pa, "separate": se, "difference": pa - se,
                     "relative_difference": (pa - se) / se if se else np.nan, "seeds_ci_low": lo,
                     "seeds_ci_high": hi, "seeds_ci_level": CONFIDENCE if lo < hi else np.nan,
                     "seeds_n": len(diff), "winner": _winner(pa - se, lo, hi),
                     "figure": "aged_pressure"})
    return rows


def _t_interval(x: np.ndarray) -> tuple[float, float]:
    """The 95 % Student t interval of the mean of x (NaN for fewer than two values); a
    point when every value is equal."""
    from scipy import stats

    x = x[~np.isnan(x)]
    if len(x) < 2:
        return np.nan, np.nan
    m, se = float(x.mean()), float(x.std(ddof=1) / np.sqrt(len(x)))
    if se == 0:
        return m, m
    h = float(stats.t.ppf(0.5 + CONFIDENCE / 2, len(x) - 1)) * se
    return m - h, m + h


def aged_table(data: ReportData) -> pd.DataFrame:
    """Per trace, memory and scheme (report order): allocator pressure on aged memory, the
    mean over ager seeds where there are several -- page-table requests and the share
    that found their free list empty, failed requests and the frames compaction would
    migrate for them, 2 MiB blocks blocked by page tables (wasted EPT included) at the
    page-table peak, and on synthetic memory the pressure margin."""
    a = data.aged
    cols = ["pt_requests", "pt_requests_split", "alloc_failures", "compaction_pages", "tables_blocked_peak",
            "pressure_margin_pages"]
    d = a.assign(tables_blocked_peak=a["huge_page_tables_peak"] + a["huge_wasted_ept_peak"])
    if "pressure_margin_pages" not in d:
        d["pressure_margin_pages"] = np.nan
    g = d.groupby(["trace", "memory", "scheme"], sort=False)[cols].mean().reset_index()
    g["split_share"] = g["pt_requests_split"] / g["pt_requests"].where(g["pt_requests"] > 0)
    return g[["trace", "memory", "scheme", "pt_requests", "pt_requests_split", "split_share", "alloc_failures",
              "compaction_pages", "tables_blocked_peak", "pressure_margin_pages"]]


def aged_figure_data(data: ReportData) -> pd.DataFrame:
    """Per memory and scheme, over all aged traces: the share of page-table requests that
    found their free list empty (%), the 2 MiB blocks page tables block at their peak,
    and the pressure margin (synthetic memory) -- each summed over traces per ager seed,
    then the mean over seeds with its 95 % t interval (no interval for one seed)."""
    a = data.aged.assign(tables_blocked_peak=data.aged["huge_page_tables_peak"] + data.aged["huge_wasted_ept_peak"],
                         ager_seed=data.aged["ager_seed"].fillna(0))
    if "pressure_margin_pages" not in a:
        a["pressure_margin_pages"] = np.nan
    per_seed = a.groupby(["memory", "scheme", "ager_seed"], sort=False).agg(
        pt_requests=("pt_requests", "sum"), pt_requests_split=("pt_requests_split", "sum"),
        tables_blocked_peak=("tables_blocked_peak", "sum"),
        pressure_margin_pages=("pressure_margin_pages", lambda x: x.sum(min_count=1))).reset_index()
    per_seed["split_share_pct"] = 100 * per_seed["pt_requests_split"] / per_seed["pt_requests"].where(
        per_seed["pt_requests"] > 0)
    rows = []
    for (memory, scheme), d in per_seed.groupby(["memory", "scheme"], sort=False):
        row = {"memory": memory, "scheme": scheme, "ager_seeds": len(d)}
        for col in ("split_share_pct", "tables_blocked_peak", "pressure_margin_pages"):
            x = d[col].to_numpy(float)
            row[col] = float(np.nanmean(x)) if np.isfinite(x).any() else np.nan
            row[f"{col}_low"], row[f"{col}_high"] = _t_interval(x)
        rows.append(row)
    return pd.DataFrame(rows)


def minmem_figure_data(data: ReportData, metric: str = "pressure_margin_pages") -> pd.DataFrame:
    """The pressure margin (frames needed beyond the live data) of each scheme minus
    separate's: exact per trace (kind 'trace'), and per synthetic workload the
    Hodges-Lehmann paired difference over seeds with its exact Wilcoxon interval (kind
    'seeds'; only the schemes the seeds were searched for)."""
    rows = []
    mm = data.minmem.set_index(["trace", "scheme"])[metric]
    for (trace, scheme), v in mm.items():
        if scheme == BASE or (trace, BASE) not in mm:
            continue
        rows.append({"trace": trace, "scheme": scheme, "kind": "trace", "difference_pages": v - mm[(trace, BASE)],
                     "ci_low_pages": np.nan, "ci_high_pages": np.nan, "n": 1})
    s = data.seeds
    for w in dict.fromkeys(s["workload"]) if len(s) else []:
        d = s[s["workload"] == w]
        for scheme in dict.fromkeys(d["scheme"]):
            dd = d[d["scheme"].isin([scheme, BASE])]
            if scheme == BASE or dd[metric].isna().any():
                continue
            st = paired_stats(dd, metric, scheme, BASE, "seed", CONFIDENCE)
            rows.append({"trace": w, "scheme": scheme, "kind": "seeds", "difference_pages": st["estimate"],
                         "ci_low_pages": st["ci_low"], "ci_high_pages": st["ci_high"],
                         "ci_level": st["ci_level_attained"], "n": st["n"]})
    return pd.DataFrame(rows)


def minmem_exact(data: ReportData) -> pd.DataFrame:
    """Per trace (report order) and scheme: the smallest failure-free memory, the peak of
    frames in use, the pressure margin between them (frames), and whether the search
    verified the answer."""
    order = {t: i for i, t in enumerate(data.traces)}
    cols = ["trace", "scheme", "min_memory_pages", "peak_used_pages", "pressure_margin_pages", "verified"]
    d = data.minmem[cols].copy()
    d["_o"] = d["trace"].map(order)
    return d.sort_values(["_o"], kind="stable").drop(columns="_o").reset_index(drop=True)


def compaction_figure_data(data: ReportData, trace: str) -> pd.DataFrame:
    """Failed requests at the tight memory by order, with their compaction cost, for the
    orders where some scheme failed (every order if none did)."""
    d = data.compaction[(data.compaction["trace"] == trace)
                        & data.compaction["scheme"].isin(data.params.failure_schemes)].drop(columns="trace")
    failing = sorted(d.loc[d["failures"] > 0, "order"].unique())
    return (d[d["order"].isin(failing)] if failing else d).reset_index(drop=True)


def pressure_table(data: ReportData) -> pd.DataFrame:
    """Per trace and scheme, the allocator-pressure figures: page-table requests and the
    share that found their free list empty (report memory), and at the tight memory the
    failed requests, the frames compaction would migrate for them and the hopeless ones."""
    m = data.metrics[["trace", "scheme", "pt_requests", "pt_requests_split", "hugepage_blocks_blocked_final"]].copy()
    m["split_share"] = np.where(m["pt_requests"] > 0, m["pt_requests_split"] / m["pt_requests"].where(
        m["pt_requests"] > 0, 1), np.nan)
    c = data.compaction.groupby(["trace", "scheme"], sort=False)[["failures", "compaction_pages",
                                                                  "hopeless_failures"]].sum().reset_index()
    out = m.merge(c.rename(columns=lambda x: x if x in ("trace", "scheme") else f"tight_{x}"), on=["trace", "scheme"],
                  how="left")
    return out[["trace", "scheme", "pt_requests", "pt_requests_split", "split_share", "hugepage_blocks_blocked_final",
                "tight_failures", "tight_compaction_pages", "tight_hopeless_failures"]]


def failures_figure_data(data: ReportData, trace: str) -> pd.DataFrame:
    d = data.failures[data.failures["trace"] == trace].drop(columns="trace")
    mm = data.minmem[data.minmem["trace"] == trace].set_index("scheme")["min_memory_pages"]
    return d.assign(min_memory_pages=d["scheme"].map(mm))


def decomposition_data(data: ReportData) -> pd.DataFrame:
    """pair - separate peak page-table pages = waste + contiguity, per trace."""
    need = {"pair", "separate", "separate-eager"}
    if not need <= set(data.metrics["scheme"]):
        return pd.DataFrame(columns=["trace", "metric", "pair_minus_separate", "waste", "contiguity"])
    return decompose(data.metrics[data.metrics["scheme"].isin(need)], "pt_pages_peak", "trace")


def walk_cost_data(data: ReportData) -> pd.DataFrame:
    return data.metrics[["trace", "scheme", "ept_loads_per_write", "walk_pages_per_write"]].copy()


def kernel_data(data: ReportData, kernel: str) -> pd.DataFrame:
    cols = {"akaros-2015": ["frames_scanned_per_allocation", "frames_scanned", "pt_pages_peak", "alloc_failures",
                            "alloc_failures_order1", "jw_fragmentation"],
            "linux": ["polluted_pageblocks_final", "fallbacks", "pt_pages_peak", "alloc_failures",
                      "highalloc_order9_final"]}[kernel]
    d = data.kernels[data.kernels["kernel"] == kernel]
    return d[["trace", "scheme", "memory_pages", *cols]].reset_index(drop=True)


def seed_stats(data: ReportData, metrics=("pt_pages_peak", "wasted_ept_pages_peak", "pressure_margin_pages",
                                           "alloc_failures", "pt_requests_split",
                                           "ept_loads_per_write")) -> pd.DataFrame:
    """Every scheme against separate, per synthetic workload, over seeds (paired):
    analysis.stats.stats_table per workload -- Hodges-Lehmann with the exact Wilcoxon
    interval and test, identities not tested, p adjusted by Holm's method within the
    workload's table. A metric is compared for the schemes that have it (the pressure
    margin is searched for pair and separate only)."""
    frames = []
    s = data.seeds
    for w in dict.fromkeys(s["workload"]):
        d = s[s["workload"] == w]
        have = [m for m in metrics if m in d]
        t = stats_table(d, BASE, have, "seed", CONFIDENCE)
        frames.append(t.assign(tests=int(t["p_value"].notna().sum())).assign(workload=w))
    if not frames:
        return pd.DataFrame()
    out = pd.concat(frames, ignore_index=True)
    return out[["workload", *[c for c in out.columns if c != "workload"]]]


def vmpte_agreement(data: ReportData) -> pd.DataFrame:
    """Per recording: VmPTE samples, those the replay gives exactly and within 2 %, the
    largest difference (kB)."""
    from ptpair.analysis.vmpte import agreement

    rows = []
    for name, d in data.vmpte.groupby("recording", sort=False):
        s = d[d["vmpte_kb"].notna()]
        a = agreement(s.assign(diff_kb=s["replayed_kb"] - s["vmpte_kb"]))
        rows.append({"recording": name, "processes": int(s["pid"].nunique()), "samples": a["samples"],
                     "exact": a["exact"], "within_2pct": a["within"], "max_abs_diff_kb": a["max_abs_diff_kb"]})
    return pd.DataFrame(rows)
