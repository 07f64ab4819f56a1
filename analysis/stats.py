"""Paired comparisons of schemes, across traces and across seeds of synthetic workloads.

Every scheme replays the *same* trace, so comparisons are paired: per trace (or seed) the
difference between a scheme and the baseline. Across seeds the table reports the mean
difference with a bootstrap confidence interval (scipy.stats.bootstrap, BCa, on the
paired differences), a paired Wilcoxon signed-rank test (scipy.stats.wilcoxon), and two
effect sizes: Cohen's d_z (mean difference over its standard deviation) and the
matched-pairs rank-biserial correlation (in [-1, 1]).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ptpair.analysis.catalogue import metrics_row
from ptpair.sim.machine import Config
from ptpair.sim.replay import replay
from ptpair.traces.synth import synth

DEFAULT_METRICS = ("pt_pages_final", "pt_pages_peak", "wasted_ept_pages_final", "alloc_failures",
                   "ept_loads_per_write")


def run_grid(traces: dict, schemes, policy: str = "address", memory_pages: int | None = 1 << 20,
             allocator: str = "buddy", reclaim: str = "empty", pressure: bool = False,
             initial: str | None = None, age: str | None = None) -> pd.DataFrame:
    """Replay every trace under every scheme: one row per (trace, scheme), numeric metrics.
    With `pressure`, also each run's frame-exact minimum memory and pressure margin
    (analysis/minmem.py: a search of several replays per run; pristine or synthetic-aged
    memory only). `initial`, `age`: the memory to start from (sim/machine.Config)."""
    from ptpair.analysis.minmem import min_memory
    from ptpair.sim.initial import fixed_memory

    rows = []
    for name, trace in traces.items():
        for s in schemes:
            r = replay(trace, Config(s, policy, memory_pages, allocator, reclaim, initial, age))
            row = {"trace": name, "scheme": s, **metrics_row(r)}
            if pressure:
                if fixed_memory(initial, age):
                    raise ValueError(f"the pressure margin searches the memory size: {fixed_memory(initial, age)}")
                mm = min_memory(trace, s, policy, allocator, reclaim, age=age)
                row.update(min_memory_pages=mm.min_memory_pages, pressure_margin_pages=mm.pressure_margin_pages)
            rows.append(row)
    return pd.DataFrame(rows)


def seed_runs(workload: str, seeds, schemes, events: int, policy: str = "address",
              memory_pages: int | None = 1 << 20, allocator: str = "buddy", reclaim: str = "empty",
              pressure: bool = False, initial: str | None = None, age: str | None = None,
              **params) -> pd.DataFrame:
    """`run_grid` over seeds of a synthetic workload; the trace column is the seed."""
    traces = {int(s): synth(workload, seed=int(s), events=events, **params) for s in seeds}
    df = run_grid(traces, schemes, policy, memory_pages, allocator, reclaim, pressure, initial, age)
    return df.rename(columns={"trace": "seed"})


def paired_differences(df: pd.DataFrame, baseline: str = "separate", by: str = "trace",
                       metrics=DEFAULT_METRICS) -> pd.DataFrame:
    """Per unit (`by`) and scheme: metric, its baseline value, difference and ratio."""
    base = df[df["scheme"] == baseline].set_index(by)
    rows = []
    for _, r in df[df["scheme"] != baseline].iterrows():
        b = base.loc[r[by]]
        for m in metrics:
            rows.append({by: r[by], "scheme": r["scheme"], "metric": m, "value": r[m],
                         "baseline": b[m], "difference": r[m] - b[m],
                         "ratio": (r[m] / b[m]) if b[m] else np.nan})
    return pd.DataFrame(rows)


def decompose(df: pd.DataFrame, metric: str = "pt_pages_final", by: str = "trace") -> pd.DataFrame:
    """pair - separate = waste (separate-eager - separate) + contiguity (pair - separate-eager).

    Waste is the cost of giving every process an EPT; contiguity the extra cost of making
    each KPT/EPT twin one order-1 block. The identity is exact per unit.
    """
    w = df.pivot(index=by, columns="scheme", values=metric)
    need = {"pair", "separate", "separate-eager"}
    if not need <= set(w.columns):
        raise ValueError(f"decomposition needs schemes {', '.join(sorted(need))}")
    out = pd.DataFrame({
        "pair_minus_separate": w["pair"] - w["separate"],
        "waste": w["separate-eager"] - w["separate"],
        "contiguity": w["pair"] - w["separate-eager"],
    })
    out.insert(0, "metric", metric)
    return out.reset_index()


def paired_stats(df: pd.DataFrame, metric: str, scheme: str, baseline: str = "separate",
                 by: str = "seed", confidence: float = 0.95, n_resamples: int = 9999,
                 random_state: int = 0) -> dict:
    """Mean paired difference (scheme - baseline) with CI, Wilcoxon test and effect sizes."""
    from scipy import stats

    w = df.pivot(index=by, columns="scheme", values=metric)
    d = (w[scheme] - w[baseline]).to_numpy(dtype=float)
    n = len(d)
    out = {"metric": metric, "scheme": scheme, "baseline": baseline, "n": n,
           "mean_difference": float(np.mean(d)) if n else np.nan,
           "median_difference": float(np.median(d)) if n else np.nan,
           "mean_ratio": float(np.mean(w[scheme] / w[baseline].replace(0, np.nan))) if n else np.nan,
           "ci_level": confidence, "ci_low": np.nan, "ci_high": np.nan, "ci_method": "bootstrap BCa",
           "test": "Wilcoxon signed-rank (paired, two-sided)", "statistic": np.nan, "p_value": np.nan,
           "cohens_dz": np.nan, "rank_biserial": np.nan}
    if n >= 2 and np.ptp(d) > 0:
        res = stats.bootstrap((d,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
                              method="BCa", random_state=random_state)
        out["ci_low"], out["ci_high"] = float(res.confidence_interval.low), float(res.confidence_interval.high)
        out["cohens_dz"] = float(np.mean(d) / np.std(d, ddof=1))
    elif n >= 1:  # every difference equal: the interval is that value
        out["ci_low"] = out["ci_high"] = float(d[0])
    nz = d[d != 0]
    if len(nz) >= 1:
        t = stats.wilcoxon(d, zero_method="wilcox", alternative="two-sided")
        out["statistic"], out["p_value"] = float(t.statistic), float(t.pvalue)
        ranks = stats.rankdata(np.abs(nz))
        r_plus, r_minus = ranks[nz > 0].sum(), ranks[nz < 0].sum()
        out["rank_biserial"] = float((r_plus - r_minus) / ranks.sum())
    else:
        out["p_value"] = 1.0
        out["rank_biserial"] = 0.0
        if n >= 1:
            out["cohens_dz"] = 0.0
    return out


def stats_table(df: pd.DataFrame, baseline: str = "separate", metrics=DEFAULT_METRICS, by: str = "seed",
                confidence: float = 0.95) -> pd.DataFrame:
    """paired_stats for every scheme other than the baseline and every metric."""
    rows = [paired_stats(df, m, s, baseline, by, confidence)
            for s in df["scheme"].unique() if s != baseline for m in metrics]
    return pd.DataFrame(rows)


def mean_ci(values, confidence: float = 0.95, n_resamples: int = 9999, random_state: int = 0) -> tuple:
    """(mean, CI low, CI high) of independent values: bootstrap BCa, as paired_stats.
    One value, or all equal: the interval is that value; no values: NaNs."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    if len(v) == 0:
        return np.nan, np.nan, np.nan
    m = float(v.mean())
    if len(v) < 2 or np.ptp(v) == 0:
        return m, m, m
    res = stats.bootstrap((v,), np.mean, confidence_level=confidence, n_resamples=n_resamples, method="BCa",
                          random_state=random_state)
    return m, float(res.confidence_interval.low), float(res.confidence_interval.high)


__all__ = ["DEFAULT_METRICS", "mean_ci", "decompose", "paired_differences", "paired_stats", "run_grid",
           "seed_runs", "stats_table"]
