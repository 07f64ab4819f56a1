"""Break-even of `pair` against `separate` as a function of the VMM fraction.

Closed-form model. Let K be the KPT table pages of live processes (roots included) and
phi the share of them that belong to VMM processes. Every KPT table has one EPT twin
under `pair`, and only VMMs' tables have one under `separate`, so

    PT_pair = 2 K,   PT_separate = K (1 + phi),
    PT_pair - PT_separate = K (1 - phi),   PT_pair / PT_separate = 2 / (1 + phi).

If VMM processes had as many tables as the others, phi would equal the VMM fraction f of
processes; VMMs that map large guest memories hold more tables, so phi > f in practice.
The model is exact in page counts (contiguity changes where pages are, not how many),
as long as no allocation fails; the simulation checks it. Pair costs no more page-table
memory than separate only at phi = 1, and its overhead is below x (as a fraction of
separate's page-table memory) once phi > (1 - x) / (1 + x).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ptpair.sim.machine import Config
from ptpair.sim.replay import replay
from ptpair.traces.synth import synth


def phi_threshold(x: float) -> float:
    """VMM table share above which pair's overhead over separate is below x (e.g. 0.1)."""
    return (1 - x) / (1 + x)


def point(workload: str, fraction: float, seed: int, events: int = 5000, memory_pages: int = 1 << 20,
          policy: str = "address") -> dict:
    """One (VMM fraction, seed) point: K, phi, both schemes' page-table pages and the model."""
    trace = synth(workload, seed=int(seed), events=events, vmm_fraction=float(fraction))
    pair = replay(trace, Config("pair", policy, memory_pages))
    sep = replay(trace, Config("separate", policy, memory_pages))
    k = sep.final["kpt_pages"]
    phi = sep.final["ept_pages"] / k if k else np.nan
    procs = sep.final["processes"]
    return {
        "vmm_fraction": float(fraction), "seed": int(seed), "kpt_pages": k, "phi": phi,
        "vmm_process_share": sep.final["vmm_processes"] / procs if procs else np.nan,
        "pt_pair": pair.final["pt_pages"], "pt_separate": sep.final["pt_pages"],
        "difference": pair.final["pt_pages"] - sep.final["pt_pages"],
        "model_difference": k * (1 - phi),
        "ratio": pair.final["pt_pages"] / sep.final["pt_pages"],
        "model_ratio": 2 / (1 + phi),
        "failures": sum(pair.alloc_failures) + sum(sep.alloc_failures),
    }


def simulate(workload: str = "mixed", fractions=(0.0, 0.25, 0.5, 0.75, 1.0), seeds=(1, 2, 3),
             events: int = 5000, memory_pages: int = 1 << 20, policy: str = "address") -> pd.DataFrame:
    """One row per (VMM fraction, seed), see `point`."""
    return pd.DataFrame([point(workload, f, s, events, memory_pages, policy) for f in fractions for s in seeds])


def fit(df: pd.DataFrame) -> dict:
    """How well the closed form and the naive phi = f model explain the simulation.

    Returns the largest absolute error of the exact model (pages), and for the naive model
    difference/K = 1 - f the R^2 of the simulated difference/K against it, plus a fitted
    slope b in difference/K = b (1 - f) (b = 1 means VMMs hold their share of tables).
    """
    y = (df["difference"] / df["kpt_pages"]).to_numpy(float)
    x = (1 - df["vmm_fraction"]).to_numpy(float)
    b = float(np.dot(x, y) / np.dot(x, x)) if np.dot(x, x) else np.nan
    ss_res = float(np.sum((y - x) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    return {
        "exact_model_max_error_pages": float(np.max(np.abs(df["difference"] - df["model_difference"]))),
        "naive_model_r2": 1 - ss_res / ss_tot if ss_tot else np.nan,
        "fitted_slope": b,
        "phi_for_10pct_overhead": phi_threshold(0.10),
    }
