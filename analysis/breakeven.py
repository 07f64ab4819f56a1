"""Break-even of `pair` against `separate` as a function of the VMM fraction.

Closed-form model, from the `pair` replay alone. Let K be the KPT table pages of live
processes (roots included) and K_v those of them owned by live VMM processes, both
measured at the end of the `pair` replay (`final.kpt_pages` less `final.deposited_pte_pages`,
`final.vmm_kpt_pages`), and phi = K_v / K in [0, 1] the VMMs' share of KPT tables. Every
KPT table has one EPT twin under `pair`; under `separate` only VMMs' tables have one (a
process gets its twins when it becomes a VMM and loses them at exec; a fork's child starts
without). The D PTE tables deposited with anonymous 2 MiB pages have no twin under any
scheme (docs/semantics.md#thp-deposits), so

    PT_pair = 2 K + D,   PT_separate = K + K_v + D,
    PT_pair - PT_separate = K - K_v = K (1 - phi),   PT_pair / PT_separate = 2 / (1 + phi) when D = 0.

The model predicts the `separate` replay's page-table pages from figures that replay
never sees, so the check can fail: it holds exactly, to the page, as long as no
allocation fails, because both replays see the same trace and so build the same KPT
trees for the same live processes (a table exists where an address is mapped, wherever
its frame is: contiguity changes where pages are, not how many). A failed allocation
(a table, a mirror page, a root) breaks this, and so would a scheme whose EPT pages are
not exactly the twins of VMMs' tables: `point(..., against="separate-eager")` gives
every process twins and misses the model by K - K_v pages.

The naive model phi = f: if VMM processes had as many tables as the others, phi would
equal their share of processes. `fit` measures how well it explains the simulation
against the share s of live VMM processes the replay ends with and against the nominal
`--vmm-fraction` f that synthesised the trace. s is lower than f: f is the share of new
images (spawns and execs) that become VMMs, and a forked child is not a VMM until it
execs (traces/synth.py).

Pair costs no more page-table memory than separate only at phi = 1, and its overhead is
below x (as a fraction of separate's page-table memory) once phi > (1 - x) / (1 + x).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ptpair.sim.machine import Config, Result
from ptpair.sim.replay import replay
from ptpair.traces.synth import synth

BASELINE = "separate"  # the scheme the model describes; `against` may swap in another to test the check
OVERHEAD_OF_INTEREST = 0.10  # the overhead `fit` reports the phi threshold for (10 % of separate's pages)


def phi_threshold(x: float) -> float:
    """VMM table share (0..1) above which pair's overhead over separate is below x (e.g. 0.1)."""
    return (1 - x) / (1 + x)


def model(kpt_pages: int, vmm_kpt_pages: int, deposited: int = 0) -> dict:
    """The closed form from K and K_v (pages of KPT tables, the ones with an EPT twin under
    pair) and D (PTE tables deposited with huge pages, which no scheme twins): phi (0..1, NaN
    if K = 0), PT_pair = 2K + D and PT_separate = K + K_v + D (pages), their difference
    (pages) and ratio (1..2; 2 / (1 + phi) when D = 0)."""
    k, kv, d = kpt_pages, vmm_kpt_pages, deposited
    phi = kv / k if k else np.nan
    sep = k + kv + d
    return {"phi": phi, "model_pt_pair": 2 * k + d, "model_pt_separate": sep, "model_difference": k - kv,
            "model_ratio": (2 * k + d) / sep if sep else np.nan}


def _share(r: Result) -> float:
    """Live VMM processes / live processes at the end of the replay (0..1, NaN if none live)."""
    procs = r.final["processes"]
    return r.final["vmm_processes"] / procs if procs else np.nan


def point(workload: str, fraction: float, seed: int, events: int = 5000, memory_pages: int = 1 << 20,
          policy: str = "address", against: str = BASELINE) -> dict:
    """One (VMM fraction, seed) point: the model from the pair replay, and both replays' pages.

    K (`kpt_pages`), K_v (`vmm_kpt_pages`), phi and the realised share of VMM processes
    (`vmm_process_share`) come from the `pair` replay only; `pt_separate` is the measured
    page-table pages of the `against` replay (`separate` unless a test swaps the scheme).
    `model_error_pages` = measured difference - model difference (pages, signed): 0 when
    the model holds.
    """
    trace = synth(workload, seed=int(seed), events=events, vmm_fraction=float(fraction))
    pair = replay(trace, Config("pair", policy, memory_pages))
    sep = replay(trace, Config(against, policy, memory_pages))
    # K counts tables: the deposited PTE tables are KPT pages without an EPT twin
    deposited = pair.final["deposited_pte_pages"]
    k = pair.final["kpt_pages"] - deposited
    m = model(k, pair.final["vmm_kpt_pages"], deposited)
    difference = pair.final["pt_pages"] - sep.final["pt_pages"]
    return {
        "vmm_fraction": float(fraction), "seed": int(seed), "against": against,
        "kpt_pages": k, "deposited_pte_pages": deposited, "vmm_kpt_pages": pair.final["vmm_kpt_pages"],
        "phi": m["phi"],
        "vmm_process_share": _share(pair),
        "pt_pair": pair.final["pt_pages"], "pt_separate": sep.final["pt_pages"],
        "model_pt_separate": m["model_pt_separate"],
        "difference": difference, "model_difference": m["model_difference"],
        "model_error_pages": difference - m["model_difference"],
        "ratio": pair.final["pt_pages"] / sep.final["pt_pages"], "model_ratio": m["model_ratio"],
        "failures": sum(pair.alloc_failures) + sum(sep.alloc_failures),
    }


def simulate(workload: str = "mixed", fractions=(0.0, 0.25, 0.5, 0.75, 1.0), seeds=(1, 2, 3),
             events: int = 5000, memory_pages: int = 1 << 20, policy: str = "address",
             against: str = BASELINE) -> pd.DataFrame:
    """One row per (VMM fraction, seed), see `point`."""
    return pd.DataFrame([point(workload, f, s, events, memory_pages, policy, against)
                         for f in fractions for s in seeds])


def line_fit(y, x) -> tuple[float, float]:
    """How well y = 1 - x explains y: (R^2 against that fixed line, least-squares slope b).

    R^2 = 1 - SS_res / SS_tot with SS_res = sum (y - (1 - x))^2 and SS_tot = sum (y - mean y)^2:
    no parameter is fitted, so it is at most 1 and can be negative (the line does worse
    than y's mean); NaN if y is constant. b minimises sum (y - b (1 - x))^2 (a line through
    (1, 0)); b = 1 is the fixed line, NaN if x = 1 everywhere.
    """
    y, u = np.asarray(y, float), 1 - np.asarray(x, float)
    ss_res = float(np.sum((y - u) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    uu = float(np.dot(u, u))
    return (1 - ss_res / ss_tot if ss_tot else np.nan), (float(np.dot(u, y)) / uu if uu else np.nan)


def fit(df: pd.DataFrame) -> dict:
    """How well the closed form and the naive phi = f model explain the simulation.

    `exact_model_max_error_pages`: the largest |measured - model| difference (pages, >= 0;
    0 when the model holds on every row). The naive model difference / K = 1 - x, with x
    the VMM processes' share: `naive_model_r2` and `fitted_slope` (see `line_fit`) take x
    = the realised share s at the end of the pair replay (`vmm_process_share`), the
    `_nominal` ones x = the nominal `vmm_fraction` f. A slope b < 1 means VMMs hold more
    than their share of tables (phi > x).
    """
    y = (df["difference"] / df["kpt_pages"]).to_numpy(float)
    r2, b = line_fit(y, df["vmm_process_share"])
    r2_nominal, b_nominal = line_fit(y, df["vmm_fraction"])
    return {
        "exact_model_max_error_pages": float(np.max(np.abs(df["difference"] - df["model_difference"]))),
        "naive_model_r2": r2, "fitted_slope": b,
        "naive_model_r2_nominal": r2_nominal, "fitted_slope_nominal": b_nominal,
        "phi_for_10pct_overhead": phi_threshold(OVERHEAD_OF_INTEREST),
    }
