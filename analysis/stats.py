"""Paired comparisons of schemes, across traces and across seeds of synthetic workloads.

Every scheme replays the *same* trace, so comparisons are paired: per trace, seed or
recording, the difference between a scheme and the baseline. Across the units the table
gives, per scheme and metric, an estimate with its matched interval and test
(analysis/inference.py: Hodges-Lehmann with the exact Wilcoxon interval and test, or the
mean with the t interval and paired t test), the level the interval attains, p adjusted
across the table, the ratio of means with a paired bootstrap interval, the SD of the
differences and two effect sizes: Cohen's d_z (mean difference over its standard
deviation) and the matched-pairs rank-biserial correlation (in [-1, 1]). Rows that are
identities of the simulation (every difference 0, all equal, or the same as an earlier
row's) are named as such and not tested.

Seeds of a synthetic workload measure the generator's variance at fixed settings, not the
variance of real workloads; recordings of the same command (`ptpair record strace
--repeat N`) are the real counterpart (`recording_runs`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ptpair.analysis.catalogue import metrics_row
from ptpair.analysis.inference import (
    BOOTSTRAP_RESAMPLES, ESTIMATORS, adjust, agrees, hodges_lehmann, level_text, max_wilcoxon_level, min_two_sided_p,
    ratio_of_means, t_interval, t_test, wilcoxon
)
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
    from ptpair.analysis.minmem import clean_point, min_memory
    from ptpair.sim.initial import fixed_memory

    rows = []
    for name, trace in traces.items():
        for s in schemes:
            r = replay(trace, Config(s, policy, memory_pages, allocator, reclaim, initial, age))
            row = {"trace": name, "scheme": s, **metrics_row(r)}
            if pressure:
                if fixed_memory(initial, age):
                    raise ValueError(f"the pressure margin searches the memory size: {fixed_memory(initial, age)}")
                # the replay above, when clean on pristine memory, saves the search probes
                mm = min_memory(trace, s, policy, allocator, reclaim, age=age, known_clean=clean_point(r))
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


def recording_runs(paths, schemes, policy: str = "address", memory_pages: int | None = 1 << 20,
                   allocator: str = "buddy", reclaim: str = "empty", pressure: bool = False,
                   initial: str | None = None, age: str | None = None) -> pd.DataFrame:
    """`run_grid` over recordings of the same command taken as replicates (e.g. `ptpair
    record strace --repeat N`); the unit column is `recording`, each file's name (its
    path where two names are alike)."""
    from pathlib import Path

    from ptpair.traces.readers import read_any

    paths = [Path(p) for p in paths]
    names = [p.name for p in paths]
    if len(set(names)) < len(names):
        names = [str(p) for p in paths]
    if len(set(names)) < len(names):
        raise ValueError(f"a recording is given twice: {', '.join(sorted(n for n in names if names.count(n) > 1))}")
    traces = {n: read_any(p) for n, p in zip(names, paths)}
    df = run_grid(traces, schemes, policy, memory_pages, allocator, reclaim, pressure, initial, age)
    return df.rename(columns={"trace": "recording"})


def per_unit_columns(df: pd.DataFrame, table: pd.DataFrame, by: str = "seed") -> pd.DataFrame:
    """`table` with, per row, the scheme's value, the baseline's and their difference for
    every unit: columns value_{by}{u}, baseline_{by}{u}, difference_{by}{u} (NaN where a
    unit has no value)."""
    units = list(dict.fromkeys(df[by]))
    cols = {f"{k}_{by}{u}": [] for u in units for k in ("value", "baseline", "difference")}
    for _, r in table.iterrows():
        w = df.pivot(index=by, columns="scheme", values=r["metric"])
        for u in units:
            v, b = float(w.at[u, r["scheme"]]), float(w.at[u, r["baseline"]])
            cols[f"value_{by}{u}"].append(v)
            cols[f"baseline_{by}{u}"].append(b)
            cols[f"difference_{by}{u}"].append(v - b)
    return pd.concat([table.reset_index(drop=True), pd.DataFrame(cols)], axis=1)


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


def _differences(df: pd.DataFrame, metric: str, scheme: str, baseline: str, by: str):
    """(units, scheme values, baseline values) of `metric`, paired by `by`, in unit order;
    units where either value is missing (NaN) are left out."""
    w = df.pivot(index=by, columns="scheme", values=metric)
    w = w[[scheme, baseline]].astype(float).dropna()
    return list(w.index), w[scheme].to_numpy(), w[baseline].to_numpy()


def identity_of(d: np.ndarray) -> str | None:
    """'zero' when every difference is 0, 'constant' when all are equal and not 0: such a
    row is an identity of the simulation, not a sample to test. None otherwise."""
    if len(d) == 0:
        return None
    if np.all(d == 0):
        return "zero"
    if np.ptp(d) == 0:
        return "constant"
    return None


def paired_stats(df: pd.DataFrame, metric: str, scheme: str, baseline: str = "separate",
                 by: str = "seed", confidence: float = 0.95, estimator: str = "hodges-lehmann",
                 n_resamples: int = BOOTSTRAP_RESAMPLES, random_state: int = 0) -> dict:
    """The paired comparison of `scheme` against `baseline` on `metric` over the units
    `by` (seeds, recordings): the difference scheme - baseline per unit, its estimate,
    interval and test as `estimator` pairs them (analysis/inference.py), the ratio of
    means with a paired bootstrap interval, SD of the differences and two effect sizes.
    Rows whose differences are all 0 or all equal get `identity` and no test (p NaN).
    p is not adjusted here: see `stats_table`."""
    _, x, y = _differences(df, metric, scheme, baseline, by)
    return _compare(metric, scheme, baseline, x, y, confidence, estimator, n_resamples, random_state)


def _compare(metric: str, scheme: str, baseline: str, x: np.ndarray, y: np.ndarray, confidence: float,
             estimator: str, n_resamples: int = BOOTSTRAP_RESAMPLES, random_state: int = 0) -> dict:
    """`paired_stats` of the paired values x (scheme) and y (baseline), units already aligned."""
    from scipy import stats

    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; choose from {', '.join(ESTIMATORS)}")
    d = x - y
    n = len(d)
    ident = identity_of(d)
    hl = estimator == "hodges-lehmann"
    out = {"metric": metric, "scheme": scheme, "baseline": baseline, "n": n, "identity": ident,
           "estimator": "Hodges-Lehmann" if hl else "mean",
           "test": "Wilcoxon signed-rank (two-sided)" if hl else "paired t (two-sided)",
           "estimate": np.nan, "ci_low": np.nan, "ci_high": np.nan, "ci_level": confidence,
           "ci_level_attained": np.nan, "statistic": np.nan, "p_value": np.nan, "p_method": None,
           "nonzero": int(np.count_nonzero(d)), "agrees": None,
           "mean_difference": float(d.mean()) if n else np.nan,
           "median_difference": float(np.median(d)) if n else np.nan,
           "sd_difference": float(d.std(ddof=1)) if n >= 2 else np.nan,
           "cohens_dz": np.nan, "rank_biserial": np.nan}
    r = ratio_of_means(x, y, confidence, n_resamples, random_state)
    out.update(ratio=r.estimate, ratio_ci_low=r.low, ratio_ci_high=r.high, ratio_ci_method=r.method)
    if ident is not None:  # an identity: the value is exact, nothing to estimate or test
        out.update(estimate=float(d[0]), ci_low=float(d[0]), ci_high=float(d[0]))
        return out
    if n == 0:
        return out
    iv = hodges_lehmann(d, confidence) if hl else t_interval(d, confidence)
    t = wilcoxon(d) if hl else t_test(d)
    out.update(estimate=iv.estimate, ci_low=iv.low, ci_high=iv.high, ci_level_attained=iv.attained,
               statistic=t.statistic, p_value=t.p_value, p_method=t.method, agrees=agrees(iv, t.p_value),
               cohens_dz=float(d.mean() / d.std(ddof=1)))
    nz = d[d != 0]
    ranks = stats.rankdata(np.abs(nz))
    out["rank_biserial"] = float((ranks[nz > 0].sum() - ranks[nz < 0].sum()) / ranks.sum())
    return out


def stats_table(df: pd.DataFrame, baseline: str = "separate", metrics=DEFAULT_METRICS, by: str = "seed",
                confidence: float = 0.95, estimator: str = "hodges-lehmann", adjustment: str = "holm") -> pd.DataFrame:
    """`paired_stats` for every scheme other than the baseline (in the order they appear)
    and every metric, with the p values adjusted across the table.

    A row whose per-unit differences are exactly those of a row listed before it (pair's
    wasted EPT pages are its page-table pages; separate-eager's page counts are pair's)
    gets identity "same as METRIC/SCHEME" and no p. Identities -- zero, constant, same as
    -- are not tests and stay out of the multiple-comparison family. Columns: those of
    `paired_stats` plus `p_adjusted`; `attrs` holds the adjustment, estimator and level.
    A scheme without any value of a metric (NaN for every unit) has no row for it."""
    rows, seen = [], {}
    for s in dict.fromkeys(df["scheme"]):
        if s == baseline:
            continue
        for m in metrics:
            units, x, y = _differences(df, m, s, baseline, by)
            if not units:  # the metric was not measured for this scheme (e.g. a margin not searched)
                continue
            row = _compare(m, s, baseline, x, y, confidence, estimator)
            key = (tuple(units), (x - y).tobytes())
            if row["identity"] is None and key in seen:
                row.update(identity=f"same as {seen[key]}", statistic=np.nan, p_value=np.nan, p_method=None,
                           agrees=None)
            seen.setdefault(key, f"{m}/{s}")
            rows.append(row)
    table = pd.DataFrame(rows)
    if len(table):
        table["p_adjusted"] = adjust(table["p_value"].to_numpy(float), adjustment)
    table.attrs.update(adjustment=adjustment, estimator=estimator, ci_level=confidence, by=by, baseline=baseline)
    return table


def level_warnings(table: pd.DataFrame, confidence: float) -> list[str]:
    """What the sample cannot show, per tested row of a Hodges-Lehmann table, at
    significance level 1 - confidence: with m non-zero differences the Wilcoxon test gives
    p >= 2 / 2^m; with n differences the exact interval reaches at most 1 - 2 / 2^n; and
    rows whose interval and test disagree about 0 (possible with tied or zero
    differences). One line per case, naming the rows."""
    if not len(table) or table.attrs.get("estimator") != "hodges-lehmann":
        return []
    alpha = 1 - confidence
    tested = table[table["p_value"].notna()]
    out = []
    for m, rows in tested.groupby("nonzero", sort=True):
        if min_two_sided_p(int(m)) > alpha:
            need = next(k for k in range(1, 64) if min_two_sided_p(k) <= alpha)
            out.append(f"with {m} non-zero differences the smallest two-sided Wilcoxon p is "
                       f"{min_two_sided_p(int(m)):.4g} > {alpha:.4g}: no such row can be significant at that level "
                       f"({_names(rows)}; {need} non-zero differences can, or --estimator mean)")
    low = tested[tested["ci_level_attained"] < confidence - 1e-12]
    for n, rows in low.groupby("n", sort=True):
        out.append(f"with n = {n} the exact Wilcoxon interval reaches at most {level_text(max_wilcoxon_level(int(n)))}"
                   f", not the {level_text(confidence)} asked for: the interval shown is the widest, [min, max] of the "
                   f"differences ({_names(rows)})")
    split = tested[tested["agrees"] == False]  # noqa: E712  (None: not compared)
    if len(split):
        out.append(f"interval and test disagree about 0 for {_names(split)}: the differences tie or include 0, "
                   "where the test (exact over sign flips of mid-ranks) and the interval (order statistics of Walsh "
                   "averages) part near the boundary; read p for the test")
    return out


def _names(rows: pd.DataFrame, most: int = 4) -> str:
    """'metric/scheme' of up to `most` rows, then how many more."""
    names = [f"{m}/{s}" for m, s in zip(rows["metric"], rows["scheme"])]
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


__all__ = ["DEFAULT_METRICS", "decompose", "identity_of", "level_warnings", "paired_differences",
           "paired_stats", "per_unit_columns", "recording_runs", "run_grid", "seed_runs", "stats_table"]
