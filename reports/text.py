"""Plain-text renderings of results for the terminal: what `ptpair replay`, `compare`,
`stats`, `breakeven` and `walkbench` print when not asked for JSON or CSV.

Each function takes the JSON-ready dicts or DataFrames the API returns and gives lines;
no replay or statistic is computed here.
"""

from __future__ import annotations

from ptpair.traces.units import MIB_PAGES, PAGE_SIZE


def memory_text(start: dict) -> str:
    """What memory a replay started from, from sim/initial.describe's dict ('' if pristine)."""
    parts = []
    if start.get("initial"):
        i = start["initial"]
        parts.append(f"the free map {i['file']} (zone {i['zone']}, node {i['node']})")
    if start.get("age"):
        a = start["age"]
        parts.append(f"aged by {a['trace']}" if "trace" in a else
                     f"aged by {a['synthetic']} (unusable index at order 9: {a['unusable_index']:.3f})")
    return (" from " + ", ".join(parts)) if parts else ""


def replay_lines(d: dict, trace: str, timing: bool = False) -> list[str]:
    """`ptpair replay`'s summary of one enriched result dict (analysis.metrics.enriched_dict)."""
    f, pk = d["final"], d["peak"]
    lv = f["kpt_pages_by_level"]
    per_write = d["walk"]["per_write"]
    lines = [
        f"trace            {trace} ({d['events']} events)",
        f"machine          scheme={d['scheme']} policy={d['policy']} memory={d['memory_pages']} pages "
        f"allocator={d['allocator']} reclaim={d['reclaim']}",
        *([f"memory at start  {memory_text(d).removeprefix(' from ')}: {f['background_pages']} background "
           f"pages, {f['hole_pages']} hole pages"] if d.get("initial") or d.get("age") else []),
        f"KPT pages        {f['kpt_pages']}  (pml4 {lv['pml4']}, pml3 {lv['pml3']}, pml2 {lv['pml2']}, pml1 "
        f"{lv['pml1']})",
        f"EPT pages        {f['ept_pages']}  (of non-VMM processes: {f['wasted_ept_pages']})",
        f"data pages       {f['data_pages']}   kalloc pages {f['kalloc_pages']}   free pages {f['free_pages']}",
        f"buddyinfo        {' '.join(str(x) for x in f['buddyinfo'])}",
        f"peak PT pages    {pk['pt_pages']}   peak used pages {pk['used_pages']}",
        f"alloc failures   {' '.join(str(x) for x in d['alloc_failures'])}   failed maps "
        f"{d['failed_maps']}   failed spawns {d['failed_spawns']}",
        f"walk             {per_write['ept_dependent_loads']} EPT loads and "
        f"{per_write['kpt_pages_touched'] + per_write['ept_pages_touched']:.3f} table pages per entry write",
    ]
    if sum(d["alloc_failures"]):
        lines.append(f"memory exhausted {sum(d['alloc_failures'])} allocation requests failed: the trace asks for "
                     f"more than {d['memory_pages']} pages can hold (a result, not an error; "
                     f"`ptpair minmem` finds the size that suffices)")
    if timing:
        lines.append(f"timing           read and replay {d['timing']['replay_s']:.3f} s "
                     f"({d['timing']['events_per_s']:.0f} events/s)")
    a = d["allocator_stats"]
    if "pagetypeinfo" in f:
        from ptpair.analysis.frag import pagetypeinfo_lines

        lines += ["", *pagetypeinfo_lines(f["pagetypeinfo"], f["pageblocks_by_type"]), "",
                  f"pageblocks polluted by unmovable pages: {f['polluted_pageblocks']}; fallbacks "
                  f"(mm_page_alloc_extfrag): {a['fallbacks']}; pageblocks relabelled: {a['pageblocks_relabelled']}"]
    if "frames_scanned" in a:
        lines.append(f"akaros scan       {a['frames_scanned']} frames tested by {a['scan_allocations']} order>=1 "
                     f"requests ({a['frames_scanned_per_allocation']:.1f} per request)")
    return lines


def paired_lines(frame, baseline: str) -> list[str]:
    """Differences of each scheme against `baseline` on one trace, and pair - separate
    split into waste and contiguity (analysis.stats.decompose). `frame`: one row per
    scheme (analysis.compare.results_frame)."""
    from ptpair.analysis.stats import decompose

    def v(scheme, column):  # `at` keeps the column's type: counts stay integers
        return frame.at[scheme, column]

    out = [f"against {baseline}:"]
    for s in frame.index:
        if s == baseline:
            continue
        d = v(s, "pt_pages_final") - v(baseline, "pt_pages_final")
        base = v(baseline, "pt_pages_final")
        ratio = f"{v(s, 'pt_pages_final') / base:.3f}x" if base else "no pages at the end"
        out.append(f"  {s:15s} page-table pages {d:+d} ({ratio}), peak "
                   f"{v(s, 'pt_pages_peak') - v(baseline, 'pt_pages_peak'):+d}, allocation failures "
                   f"{v(s, 'alloc_failures') - v(baseline, 'alloc_failures'):+d}")
    if {"pair", "separate", "separate-eager"} <= set(frame.index):
        long = frame.reset_index().assign(trace=0)
        for m in ("pt_pages_final", "alloc_failures"):
            w = decompose(long, m, "trace").iloc[0]
            out.append(f"  pair - separate in {m}: {int(w['pair_minus_separate']):+d} = waste (separate-eager - "
                       f"separate) {int(w['waste']):+d} + contiguity (pair - separate-eager) {int(w['contiguity']):+d}")
    return out


def frame_text(df, title: str | None = None) -> str:
    """A DataFrame as an aligned table, every column and up to 500 rows, under `title`."""
    import pandas as pd

    with pd.option_context("display.max_columns", None, "display.width", 250, "display.max_rows", 500):
        body = df.to_string(index=False)
    return f"{title}\n{body}" if title else body


def units_text(units: list) -> str:
    """Seeds as written: runs of consecutive integers as A-B, others listed:
    [1, 5, 9] -> '1, 5, 9'; [1, 2, 3, 7] -> '1-3, 7'."""
    parts, i = [], 0
    while i < len(units):
        j = i
        while j + 1 < len(units) and isinstance(units[j], int) and units[j + 1] == units[j] + 1:
            j += 1
        parts.append(f"{units[i]}-{units[j]}" if j > i + 1 else
                     ", ".join(str(u) for u in units[i:j + 1]))
        i = j + 1
    return ", ".join(parts)


SEEDS_CAVEAT = ("Seeds measure the synthetic generator's variance at fixed settings, not the variance of real "
                "workloads; for that, record the same command N times (ptpair record strace --repeat N) and pass "
                "the recordings (ptpair stats --traces FILE...).")


def stats_title(what: str, by: str, units: list, baseline: str, table) -> str:
    """The header of `ptpair stats`: what was compared over which units, and which
    estimate, interval, test and adjustment the table shows (table.attrs, see
    analysis.stats.stats_table)."""
    from ptpair.analysis.inference import ADJUSTMENT_NAMES, level_text

    at = table.attrs
    level = level_text(at["ci_level"])
    tests = int(table["p_value"].notna().sum()) if len(table) else 0
    if at["estimator"] == "hodges-lehmann":
        how = (f"estimate: Hodges-Lehmann (median of the Walsh averages of the differences); interval: exact "
               f"Wilcoxon signed-rank, {level} asked, the level attained per row; test: Wilcoxon signed-rank "
               f"(two-sided); effect size: rank-biserial r")
    else:
        how = (f"estimate: mean difference; interval: Student t, {level}; test: paired t (two-sided); "
               f"effect size: Cohen's d_z")
    lines = [f"{what}; {by}s {units_text(units)} (n = {len(units)});",
             f"difference = scheme - {baseline}, paired by {by}; {how};",
             f"p adjusted across the {tests} tests of this table: {ADJUSTMENT_NAMES[at['adjustment']]}; identities "
             f"(every difference 0, all equal, or the same as a row above) are not tested;",
             f"ratio: mean(scheme) / mean({baseline}), {level} paired bootstrap interval (BCa; percentile where BCa is "
             "undefined); * after p: interval and test disagree about 0 (tied or zero differences)."]
    if by == "seed":
        lines.append(SEEDS_CAVEAT)
    return "\n".join(lines)


def _num(v: float) -> str:
    import math

    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.6g}"


def _p(v: float) -> str:
    import math

    return "-" if v is None or math.isnan(v) else f"{v:.4g}"


def stats_rows(table, adjustment: str | None = None):
    """`ptpair stats`'s table as text columns: identities spelled out in place of an
    estimate, the interval with the level it attains, raw and adjusted p (`adjustment`,
    default the table's), the ratio."""
    import pandas as pd

    from ptpair.analysis.inference import level_text

    adj = adjustment or table.attrs.get("adjustment", "none")
    rows = []
    for _, r in table.iterrows():
        ident = r["identity"] if isinstance(r["identity"], str) else None
        est = interval = p = padj = effect = "-"
        if ident == "zero":
            est = "n/a (all differences 0)"
        elif ident == "constant":
            est = f"all {r['n']} differences = {_num(r['estimate'])}"
        else:
            est = _num(r["estimate"])
            attained = r["ci_level_attained"]
            interval = (f"[{_num(r['ci_low'])}, {_num(r['ci_high'])}]"
                        + ("" if attained != attained else f" {level_text(attained)}"))
            effect = _num(r["rank_biserial"] if r["estimator"] == "Hodges-Lehmann" else r["cohens_dz"])
            if ident:
                p = ident
            else:
                split = r.get("agrees") is not None and r.get("agrees") == False  # noqa: E712  (None/NaN: not compared)
                p, padj = _p(r["p_value"]) + ("*" if split else ""), _p(r["p_adjusted"])
        ratio = "-" if r["ratio"] != r["ratio"] else (
            f"{r['ratio']:.4g} [{r['ratio_ci_low']:.4g}, {r['ratio_ci_high']:.4g}]" if r["ratio_ci_low"] == r["ratio_ci_low"]
            else f"{r['ratio']:.4g} [no finite interval]")
        rows.append({"metric": r["metric"], "scheme": r["scheme"], "n": r["n"], "difference": est,
                     "interval (attained level)": interval, "p": p, f"p ({adj})": padj, "ratio [interval]": ratio,
                     "sd": _num(r["sd_difference"]), "effect": effect})
    return pd.DataFrame(rows)


def breakeven_fit_line(f: dict) -> str:
    """`ptpair breakeven`'s summary of analysis.breakeven.fit: the exact model's largest
    error (pages), the naive model against the realised and the nominal VMM share."""
    return (f"model from the pair replay (K, K_v): largest error against the separate replay "
            f"{f['exact_model_max_error_pages']:g} pages\n"
            f"naive model phi = s (realised VMM share of processes): R^2 {f['naive_model_r2']:.3f}, "
            f"fitted slope {f['fitted_slope']:.3f}; phi = f (nominal fraction): R^2 "
            f"{f['naive_model_r2_nominal']:.3f}, fitted slope {f['fitted_slope_nominal']:.3f}\n"
            f"pair's overhead is below 10% once phi > {f['phi_for_10pct_overhead']:.3f}")


def minmem_line(trace: str, scheme: str, policy: str, mm) -> str:
    """`ptpair minmem`'s answer (analysis.minmem.MinMem)."""
    check = ("verified: one step less fails" if mm.verified and mm.pressure_margin_pages
             else "verified: it is the lower bound" if mm.verified
             else "NOT verified: the probe budget ran out (--max-probes)")
    return (f"{trace}: scheme {scheme}, policy {policy}: runs without allocation failure from "
            f"{mm.min_memory_pages} frames ({mm.min_memory_pages * PAGE_SIZE / 2**20:.2f} MiB, steps of "
            f"{mm.step_pages}); peak of frames in use {mm.peak_used_pages}, pressure margin "
            f"{mm.pressure_margin_pages} frames; {check}; {mm.probes} replays")


def walkbench_lines(res: dict, trace: str, patterns) -> list[str]:
    """`ptpair walkbench`'s report of analysis.walkbench.walkbench_sweep's result."""
    m = res["machine"]
    out = [f"{trace}: {m['cpu']}; caches "
           + ", ".join(f"L{c['level']} {c['type'].lower()} {c['size']}" for c in m["caches"]),
           f"hardware counters: {res['hardware_counters']['note']}"]
    for run in res["runs"]:
        out.append(f"\nmemory {run['memory_pages'] // MIB_PAGES} MiB, policy {run['policy']}, {run['cache']} cache: "
                   f"{run['addresses']} pages of {run['processes']} processes, {run['rounds']} rounds, "
                   "medians [95% CI]")
        for s, d in run["schemes"].items():
            for pat in patterns:
                x = d[pat]
                out.append(f"  {s:15s} {pat:10s} lookup {x['ns_per_lookup']:7.2f} ns [{x['ns_per_lookup_ci'][0]:.2f}, "
                           f"{x['ns_per_lookup_ci'][1]:.2f}]   range {x['ns_per_range_page']:6.2f} ns/page "
                           f"[{x['ns_per_range_page_ci'][0]:.2f}, {x['ns_per_range_page_ci'][1]:.2f}]   counted "
                           f"EPT loads per write {d['counted']['ept_dependent_loads_per_write']:.2f}")
        for pat, sp in run["speedup"].items():
            out.append(f"  speedup of pair over {sp['over']} ({pat} lookups): {sp['median']:.3f}x "
                       f"[{sp['ci'][0]:.3f}, {sp['ci'][1]:.3f}]")
    return out
