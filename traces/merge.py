"""Merge canonical traces by time into one (`ptpair merge`).

The typical use: a mapping trace (strace, snapshots, synthetic) and a kernel allocation
trace (perf kmem) recorded at the same time become one trace in which page-table blocks
compete with the kernel's real allocation stream.

* Every input needs a `time` column (all recorders write one). Events with equal times
  keep the inputs' order (first input first), and each input keeps its own order.
* kalloc handles are made unique: each later input's handles are shifted past the
  largest handle of the inputs before it.
* Processes: pids are kept. Two inputs that use the same pid for different processes
  would collide; the merge refuses such inputs (a pid with a life-cycle event in more
  than one input) rather than guess.
* `align="start"` shifts every input so that it starts when the first one starts
  (for traces recorded with different clocks); "none" (default) trusts the clocks.
"""

from __future__ import annotations

import numpy as np

from ptpair.traces.format import OP_CODE, Trace, TraceError

LIFE_OPS = ("spawn", "fork", "exec", "exit", "map", "unmap", "vmm", "reserve", "release", "dontneed")
_OPTIONAL = ("time", "comm", "migratetype", "gfp_flags")


def merge(traces: list[Trace], align: str = "none") -> tuple[Trace, str | None]:
    """The merged trace, and a note for the user (or None)."""
    if not traces:
        raise ValueError("nothing to merge")
    for t in traces:
        if t.time is None or (len(t) and np.isnan(t.time).any()):
            raise TraceError(t.source, None, "merging by time needs a time on every event")
    life = [OP_CODE[o] for o in LIFE_OPS]
    owner: dict[int, str] = {}
    for t in traces:
        for pid in np.unique(t.pid[np.isin(t.op, life)]):
            if int(pid) in owner and owner[int(pid)] != t.source:
                raise TraceError(t.source, None, f"pid {int(pid)} has processes in both {owner[int(pid)]} and "
                                                 f"{t.source}; merging them would mix two processes")
            owner[int(pid)] = t.source
    times, note = [], None
    t0 = traces[0].time[0] if len(traces[0]) else 0.0
    for t in traces:
        tm = t.time.astype(np.float64)
        if align == "start" and len(t):
            tm = tm - tm[0] + t0
        times.append(tm)
    if align == "none" and len(traces) > 1:
        spans = [(tm.min(), tm.max()) for tm in times if len(tm)]
        if spans and max(a for a, _ in spans) > min(b for _, b in spans):
            note = ("the traces' time ranges do not overlap: recorded at different times, or with different "
                    "clocks? (--align start shifts them to a common start)")
    kalloc, kfree = OP_CODE["kalloc"], OP_CODE["kfree"]
    args, shift = [], 0
    for t in traces:
        h = np.isin(t.op, [kalloc, kfree])
        a = t.arg.copy()
        a[h] += shift
        args.append(a)
        if h.any():
            shift = int(a[h].max()) + 1
    cat = np.concatenate
    src = cat([np.full(len(t), i) for i, t in enumerate(traces)])
    row = cat([np.arange(len(t)) for t in traces])
    order = np.lexsort((row, src, cat(times)))
    cols = {name: cat([getattr(t, name) for t in traces])[order]
            for name in ("pid", "op", "va", "length", "order", "page_size")}
    cols["arg"] = cat(args)[order]
    cols["time"] = cat(times)[order]
    for name in ("comm", "migratetype", "gfp_flags"):
        if any(getattr(t, name) is not None for t in traces):
            fill = {"comm": None, "gfp_flags": None, "migratetype": 0}[name]
            parts = [getattr(t, name) if getattr(t, name) is not None
                     else np.full(len(t), fill, dtype=object if fill is None else np.int8) for t in traces]
            cols[name] = cat([np.asarray(p, dtype=object if fill is None else np.int8) for p in parts])[order]
    out = Trace.from_columns(source="+".join(t.source for t in traces), **cols)
    machines = [t.machine for t in traces if t.machine]
    # recorded on one machine: the merge keeps it (recordings of two machines keep neither)
    if machines and all(m == machines[0] for m in machines):
        out.machine = machines[0]
    return out, note
