"""Replayed page tables next to Linux's own VmPTE samples (`ptpair check-vmpte`).

`ptpair record perf` samples each recorded process's VmPTE (/proc/PID/status) while it
records, on the trace's clock. Replaying the trace up to each sample's time and counting
that process's page-table pages the way VmPTE counts them -- the KPT tables below the
root (pml3, pml2, pml1) and the PTE tables deposited with its 2 MiB pages, 4 KiB each
(mm_inc_nr_ptes / nr_pmds / nr_puds; the pgd is not counted) -- shows where the replay
and the kernel agree.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from ptpair.sim.machine import Config, Machine
from ptpair.sim.pagetable import P_ALIVE
from ptpair.traces.format import PAGE_SIZE, PidMap, Trace, TraceError, encode
from ptpair.traces.machineinfo import pt_reclaim_of

SAMPLE_COLUMNS = ("time", "pid", "comm", "vmpte_kb")
KB = 1024
TOLERANCE = 0.02  # relative: the agreement `agreement` counts by default and the report shows


def read_samples(path) -> pd.DataFrame:
    """A VmPTE sample file (`time,pid,comm,vmpte_kb`), sorted by time."""
    try:
        df = pd.read_csv(path)
    except (OSError, ValueError) as e:
        raise TraceError(str(path), None, f"not a readable VmPTE sample file: {e}") from None
    missing = [c for c in SAMPLE_COLUMNS if c not in df.columns]
    if missing:
        raise TraceError(str(path), 1, f"missing column(s) {', '.join(missing)} (expected {','.join(SAMPLE_COLUMNS)})")
    return df.sort_values("time", kind="stable").reset_index(drop=True)


def pte_pages_by_process(m: Machine) -> np.ndarray:
    """Page-table pages of every process (dense index) as VmPTE counts them: KPT tables
    below the root and the PTE tables deposited with its 2 MiB pages; -1 for a process
    that is not alive."""
    t = m.tables
    pages = t.procs.tables.astype(np.int64) - 1
    for s in np.flatnonzero((t.t_owner >= 0) & (t.t_level == 2) & (t.t_dep_head >= 0)):
        f = int(t.t_dep_head[s])
        while f >= 0:  # the deposit list of this pml2 (one per 2 MiB page it maps)
            pages[t.t_owner[s]] += 1
            f = int(t.dep_next[f])
    pages[t.procs.state[:len(pages)] != P_ALIVE] = -1
    return pages


def process_pte_pages(m: Machine, p: int) -> int | None:
    """Page-table pages of process p (a dense index) as VmPTE counts them; None for a
    process that is not alive."""
    t = m.tables
    if p >= len(t.procs.state) or t.procs.state[p] != P_ALIVE:
        return None
    return int(pte_pages_by_process(m)[p])


def _default_config(trace: Trace, config: Config | None) -> Config:
    config = config or Config("separate", allocator="linux", reclaim="linux")
    if config.reclaim == "linux" and config.pt_reclaim is None:
        known = pt_reclaim_of(trace.machine)
        config = replace(config, pt_reclaim=True if known is None else known)
    return config


def _need_time(trace: Trace) -> None:
    if trace.time is None:
        raise TraceError(trace.source, None, "the trace has no time column: its events cannot be put next to samples")


def replayed_over_time(trace: Trace, times, pids=None, config: Config | None = None) -> pd.DataFrame:
    """The replayed page-table memory of each live process at each of `times` (the
    trace's clock, seconds): rows (time, pid, replayed_kb), in time order, then pid order;
    the state after every event stamped at or before the moment. `pids`: only these
    processes (default: all). `config` as for check_vmpte."""
    _need_time(trace)
    config = _default_config(trace, config)
    ev = encode(trace, PidMap())
    pid_of = np.asarray(ev.pids, np.int64)
    keep = np.ones(len(pid_of), bool) if pids is None else np.isin(pid_of, np.asarray(list(pids), np.int64))
    m = Machine(config, ev.n_procs)
    times = np.unique(np.asarray(times, float))
    ends = np.searchsorted(trace.time, times, side="right")
    done = 0
    cols = {"time": [], "pid": [], "replayed_kb": []}
    for moment, end in zip(times, ends):
        if end > done:
            m.run(ev, done, int(end))
            done = int(end)
        pages = pte_pages_by_process(m)
        live = np.flatnonzero((pages >= 0) & keep[:len(pages)])
        order = live[np.argsort(pid_of[live], kind="stable")]
        cols["time"].append(np.full(len(order), moment))
        cols["pid"].append(pid_of[order])
        cols["replayed_kb"].append(pages[order] * (PAGE_SIZE // KB))
    return pd.DataFrame({k: np.concatenate(v) if v else np.zeros(0) for k, v in cols.items()}).astype(
        {"time": float, "pid": np.int64, "replayed_kb": np.int64})


def check_vmpte(trace: Trace, samples: pd.DataFrame, config: Config | None = None) -> pd.DataFrame:
    """Each sample with `replayed_kb`: the sampled process's page-table memory after the
    trace's events up to the sample's time, and `diff_kb` = replayed - VmPTE; both empty
    where the trace has no live process of that pid then (a sample of perf's child before
    it execs the command, or of a process the recording left out). `config`:
    default `--kernel linux` under `separate` (PT_RECLAIM as the recorded machine had it);
    the scheme does not change KPT tables."""
    replayed = replayed_over_time(trace, samples["time"], set(samples["pid"].tolist()), config)
    out = samples.merge(replayed, on=["time", "pid"], how="left", validate="many_to_one")
    out["replayed_kb"] = out["replayed_kb"].astype("Int64")
    out["diff_kb"] = out["replayed_kb"] - out["vmpte_kb"]
    return out


def over_time(trace: Trace, samples: pd.DataFrame, config: Config | None = None,
              grid_points: int = 400) -> pd.DataFrame:
    """The data of the report's VmPTE figure: for each sampled process, its replayed
    page-table memory while it lives, at every sample moment (of any process) and at
    `grid_points` moments evenly spread over the recording, and its VmPTE where it was
    sampled then. Columns: time (seconds since the trace's first
    event), pid, comm, replayed_kb, vmpte_kb (empty where that process was not sampled
    then)."""
    _need_time(trace)
    t0 = float(trace.time[0])
    grid = np.linspace(t0, max(float(trace.time[-1]), float(samples["time"].max())), grid_points)
    moments = np.concatenate([samples["time"].to_numpy(float), grid])
    replayed = replayed_over_time(trace, moments, set(samples["pid"].tolist()), config)
    out = replayed.merge(samples[["time", "pid", "vmpte_kb"]], on=["time", "pid"], how="left", validate="one_to_one")
    comm = samples.groupby("pid")["comm"].last()
    out.insert(2, "comm", out["pid"].map(comm))
    out["vmpte_kb"] = out["vmpte_kb"].astype("Int64")
    out["time"] = (out["time"] - t0).round(6)
    return out[["time", "pid", "comm", "replayed_kb", "vmpte_kb"]]


def agreement(checked: pd.DataFrame, tolerance: float = TOLERANCE) -> dict:
    """How often the replay is within `tolerance` (relative) of VmPTE, over the samples
    the replay has a process for."""
    checked = checked[checked["replayed_kb"].notna()]
    n = len(checked)
    rel = (checked["diff_kb"].abs() / checked["vmpte_kb"].clip(lower=1)).to_numpy(float)
    return {"samples": n, "within": int((rel <= tolerance).sum()), "tolerance": tolerance,
            "share_within": round(float((rel <= tolerance).mean()), 4) if n else 0.0,
            "exact": int((checked["diff_kb"] == 0).sum()), "max_abs_diff_kb": int(checked["diff_kb"].abs().max()) if n else 0}
