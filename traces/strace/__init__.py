"""strace logs of process trees -> canonical traces.

Input: what `strace -f -tt -e trace=memory,process -o FILE CMD` writes, and its variants
(lines.py says which); the events each call makes are the process model's (model.py,
docs/trace-format.md#strace-logs). Bad input: a line that is not strace output, or a
truncated last line, is `FILE:LINE: what is wrong` (or skipped and counted with
`lenient`, under the BAD_* keys of Trace.skipped).

Two readers give the same trace:

* `reference_read`, in Python: the line reader (lines.py) and the process model
  (model.py). It is the reference: it reads every log and words every error.
* `compiled_read`: the compiled scanner (scan.py and its scan_* parts) reads the bytes
  into call arrays and the compiled model (compiled_model.py) runs the same model over
  them, ~12x faster on the logs strace writes. It gives up (None) on anything it is not
  sure to read exactly alike -- every error, rare line shapes.

`read_strace` tries the compiled reader, then the reference one, so that every message
and every rare shape has one source and the compiled code only has to be right where it
answers. tests/traces/test_strace_fast.py holds the two to the same output on the corpus,
generated process trees and mutated logs.

Importing this package does not import numba (format detection imports it to call
`looks_like_strace`): the compiled modules load on the first read.
"""

from __future__ import annotations

import gc
import os
from contextlib import contextmanager

import numpy as np

from ptpair.traces.format import Trace, TraceError
from ptpair.traces.strace.lines import (BAD_EXIT, BAD_NO_RESULT, BAD_NOT_STRACE, BAD_TRUNCATED, MEMORY_CALLS,
                                        PROCESS_CALLS, looks_like_strace, parse_files)
from ptpair.traces.strace.model import DROPPED_HIGH, convert_calls

__all__ = ["read_strace", "reference_read", "compiled_read", "looks_like_strace", "BAD_EXIT", "BAD_NOT_STRACE",
           "BAD_TRUNCATED", "BAD_NO_RESULT", "DROPPED_HIGH", "MEMORY_CALLS", "PROCESS_CALLS"]


def _arguments(paths, populate) -> tuple[list, str | float]:
    """The paths as a list (one path alone: a list of one), and the populate model checked:
    "all", "none", or a fraction in (0, 1) (1 is "all")."""
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if populate not in ("all", "none"):
        try:
            populate = float(populate)
        except (TypeError, ValueError):
            raise TraceError(str(paths[0]), None, f"--populate {populate!r}: all, none or a fraction") from None
        if not 0 < populate <= 1:
            raise TraceError(str(paths[0]), None, f"--populate {populate}: a fraction must be in (0, 1]")
        if populate == 1:
            populate = "all"
    return paths, populate


def read_strace(paths, populate="all", lenient: bool = False) -> Trace:
    """A canonical Trace from one strace log (or the files of `strace -ff`): the compiled
    reader where it answers, else the reference reader."""
    paths, populate = _arguments(paths, populate)
    compiled = compiled_read(paths, populate, lenient)
    if compiled is not None:
        return compiled
    return reference_read(paths, populate, lenient)


def compiled_read(paths, populate="all", lenient: bool = False) -> Trace | None:
    """read_strace in compiled code, or None where it leaves the log to `reference_read`
    (any error, any line shape or model state it is not sure of)."""
    from ptpair.traces.strace import compiled  # numba loads here, not at import

    paths, populate = _arguments(paths, populate)
    return compiled.read(paths, populate, lenient)


@contextmanager
def _no_gc():
    """Pause the cyclic garbage collector. A log makes a million small objects (calls,
    argument lists, rows) and no cycles; each full collection would rescan all of them
    (measured: a fifth of the conversion time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def reference_read(paths, populate="all", lenient: bool = False) -> Trace:
    """read_strace in Python: the reference, and the reader of every log the compiled
    reader leaves to it. Raises TraceError on bad input unless `lenient`."""
    paths, populate = _arguments(paths, populate)
    with _no_gc():
        calls, skipped, first_bad = parse_files(paths, lenient)
        rows, dropped = convert_calls(calls, populate)
    # one C pass over the row tuples: float64 holds every field exactly (pids, lines and
    # op codes are small; addresses and lengths are below 2^47, far under 2^53)
    cols = np.array(rows, dtype=np.float64).reshape(len(rows), 7).T
    ints = cols[[0, 1, 2, 3, 4, 6]].astype(np.int64)
    trace = Trace.from_columns(source=str(paths[0]), pid=ints[0], op=ints[1].astype(np.int8), va=ints[2],
                               length=ints[3], arg=ints[4], time=cols[5])
    trace.lines = ints[5]
    trace.skipped = {**skipped, **dropped}
    trace.first_bad = first_bad[1:] if first_bad else None
    return trace
