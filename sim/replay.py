"""Replay a trace through a machine: the simulator's Python entry point."""

from __future__ import annotations

import os

from ptpair.sim.machine import Config, Machine, ReplayError, Result
from ptpair.traces.format import Trace, TraceError, encode

FIRST_LINE = 2  # row 0 of a trace is line 2 of its CSV (line 1 is the header)


def replay(trace: Trace | str | os.PathLike, config: Config | None = None, sample_every: int | None = None,
           **options) -> Result:
    """Replay `trace` (a Trace or a path) on a machine built from `config` or `options`
    (scheme=, policy=, memory_pages=). Returns a Result; bad events raise TraceError.

    With `sample_every` = K the result holds the state after every K-th event and after
    the last one (`Result.series()`)."""
    if not isinstance(trace, Trace):
        from ptpair.traces.canonical import read_trace

        trace = read_trace(trace)
    config = config or Config(**options)
    ev = encode(trace)
    m = Machine(config, ev.n_procs, ev.n_handles)
    try:
        m.run(ev, sample_every=sample_every)
        if sample_every:
            m.sample()  # the end state (skipped if the last event was already sampled)
    except ReplayError as e:
        raise TraceError(trace.source, FIRST_LINE + e.index, e.message) from None
    return m.result()
