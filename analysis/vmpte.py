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


def process_pte_pages(m: Machine, p: int) -> int | None:
    """Page-table pages of process p (a dense index) as VmPTE counts them: KPT tables
    below the root and deposited PTE tables; None for a process that is not alive."""
    t = m.tables
    if p >= len(t.p_state) or t.p_state[p] != P_ALIVE:
        return None
    deposited = 0
    for s in np.flatnonzero((t.t_owner == p) & (t.t_level == 2)):
        f = int(t.t_dep_head[s])
        while f >= 0:
            deposited += 1
            f = int(t.dep_next[f])
    return int(t.p_tables[p]) - 1 + deposited


def check_vmpte(trace: Trace, samples: pd.DataFrame, config: Config | None = None) -> pd.DataFrame:
    """Each sample with `replayed_kb`: the sampled process's page-table memory after the
    trace's events up to the sample's time, and `diff_kb` = replayed - VmPTE; both empty
    where the trace has no live process of that pid then (a sample of perf's child before
    it execs the command, or of a process the recording left out). `config`:
    default `--kernel linux` under `separate` (PT_RECLAIM as the recorded machine had it);
    the scheme does not change KPT tables."""
    if trace.time is None:
        raise TraceError(trace.source, None, "the trace has no time column: its events cannot be put next to samples")
    config = config or Config("separate", allocator="linux", reclaim="linux")
    if config.reclaim == "linux" and config.pt_reclaim is None:
        known = pt_reclaim_of(trace.machine)
        config = replace(config, pt_reclaim=True if known is None else known)
    pid_map = PidMap()
    ev = encode(trace, pid_map)
    dense = {int(pid): i for i, pid in enumerate(ev.pids)}
    m = Machine(config, ev.n_procs)
    ends = np.searchsorted(trace.time, samples["time"].to_numpy(), side="right")
    done = 0
    replayed = pd.array([None] * len(samples), dtype="Int64")
    for k, (end, pid) in enumerate(zip(ends, samples["pid"].to_numpy())):
        if end > done:
            m.run(ev, done, int(end))
            done = int(end)
        p = dense.get(int(pid))
        pages = None if p is None else process_pte_pages(m, p)
        if pages is not None:
            replayed[k] = pages * PAGE_SIZE // KB
    out = samples.copy()
    out["replayed_kb"] = replayed
    out["diff_kb"] = out["replayed_kb"] - out["vmpte_kb"]
    return out


def agreement(checked: pd.DataFrame, tolerance: float = 0.02) -> dict:
    """How often the replay is within `tolerance` (relative) of VmPTE, over the samples
    the replay has a process for."""
    checked = checked[checked["replayed_kb"].notna()]
    n = len(checked)
    rel = (checked["diff_kb"].abs() / checked["vmpte_kb"].clip(lower=1)).to_numpy(float)
    return {"samples": n, "within": int((rel <= tolerance).sum()), "tolerance": tolerance,
            "share_within": round(float((rel <= tolerance).mean()), 4) if n else 0.0,
            "exact": int((checked["diff_kb"] == 0).sum()), "max_abs_diff_kb": int(checked["diff_kb"].abs().max()) if n else 0}
