"""Replay a trace through a machine: the simulator's Python entry point."""

from __future__ import annotations

import os
from dataclasses import replace

from ptpair.sim.machine import Config, Machine, ReplayError, Result
from ptpair.traces.format import PidMap, Trace, TraceError, encode
from ptpair.traces.readahead import readahead

FIRST_LINE = 2  # row 0 of a trace is line 2 of its CSV (line 1 is the header)


def _run_checked(m: Machine, ev, chunk: Trace, line: int, sample_every, lenient) -> None:
    from ptpair.sim.check import InvariantError, check_state

    check_state(m)  # the state before the chunk (boot, or the previous chunk's end)
    for i in range(len(ev)):
        m.run(ev, i, i + 1, sample_every=sample_every, lenient=lenient)
        try:
            check_state(m)
        except InvariantError as e:
            raise InvariantError(f"{chunk.source}:{chunk.line_of(i, line)}: invariant broken after this "
                                 f"event: {e}") from None


def _recorded_pt_reclaim(trace) -> bool:
    """PT_RECLAIM as the trace's recorded machine had it; on where nothing is recorded
    (the default of x86-64 Linux since 6.14)."""
    from ptpair.traces.machineinfo import pt_reclaim_of, read_machine

    machine = trace.machine if isinstance(trace, Trace) else read_machine(trace)
    known = pt_reclaim_of(machine)
    return True if known is None else known


def replay(trace: Trace | str | os.PathLike, config: Config | None = None, sample_every: int | None = None,
           batch_rows: int = 1 << 20, lenient: bool = False, check: bool = False, fmt: str | None = None,
           populate="all", **options) -> Result:
    """Replay `trace` (a Trace, or a path read in chunks of `batch_rows` events) on a
    machine built from `config` or `options` (scheme=, policy=, memory_pages=, ...).
    Returns a Result; bad input raises TraceError (`file:line: ...`).

    With `sample_every` = K the result holds the state after every K-th event and after
    the last one (`Result.series()`). The machine's state carries across chunks, so a
    path replays in memory bounded by the chunk size and the simulated state.

    `lenient`: bad lines and impossible events are skipped and counted by reason
    (`Result.skipped_lines`) instead of stopping the replay (the file is read whole).

    `check`: verify every invariant (sim/check.py) after every event -- slow, for
    debugging; the first event after which one breaks raises InvariantError naming
    its `file:line`.

    A path in another format (strace log, perf kmem log; detected from the content, or
    `fmt`) is read whole through traces.readers.read_any (`populate`: strace's model)."""
    config = config or Config(**options)
    if not isinstance(trace, Trace):
        from ptpair.traces.readers import detect, read_any

        if (fmt or detect(trace)) != "canonical":
            trace = read_any(trace, fmt, lenient=lenient, populate=populate)
    if isinstance(trace, Trace):
        chunks = [trace]
    elif lenient:
        from ptpair.traces.canonical import read_trace

        chunks = [read_trace(trace, lenient=True)]
    else:
        from ptpair.traces.canonical import iter_trace

        chunks = iter_trace(trace, batch_rows)
    if config.reclaim == "linux" and config.pt_reclaim is None:
        config = replace(config, pt_reclaim=_recorded_pt_reclaim(trace))
    m = Machine(config)
    pid_map = PidMap()

    def encoded():
        for chunk in chunks:
            yield chunk, encode(chunk, pid_map)

    # a file read in chunks: decode and check the next chunk while this one replays
    pairs = encoded() if isinstance(chunks, list) else readahead(encoded())
    line = FIRST_LINE
    skipped: dict[str, int] = {}
    for chunk, ev in pairs:
        try:
            if check:
                _run_checked(m, ev, chunk, line, sample_every, lenient)
            else:
                m.run(ev, sample_every=sample_every, lenient=lenient)
        except ReplayError as e:
            raise TraceError(chunk.source, chunk.line_of(e.index, line), e.message) from None
        for k, v in chunk.skipped.items():
            skipped[k] = skipped.get(k, 0) + v
        line += len(ev)
    if sample_every:
        m.sample()  # the end state (skipped if the last event was already sampled)
    result = m.result()
    if lenient:
        for k, v in m.skipped_bad.items():
            skipped[k] = skipped.get(k, 0) + v
    if lenient or skipped:  # a reader's own counts (e.g. unmatched kmem frees) are always reported
        result.skipped_lines = skipped
    return result
