"""Every input format ptpair reads, detected from the file's content.

    canonical   ptpair's own CSV or Parquet (docs/trace-format.md)
    strace      `strace -f -tt -e trace=memory,process` logs (traces/strace/)
    kmem        `perf script` of the kmem page-allocator tracepoints (traces/kmem.py)
    perf        `perf script` of page faults, memory syscalls and perf's mapping and task
                records (`ptpair record perf`, traces/perf.py)

A snapshot series (`ptpair record snapshot`) is written as a canonical trace, so it
needs no reader of its own. `read_any` turns any of them into one canonical Trace; the
simulator only ever sees that.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ptpair.registry import FORMATS
from ptpair.traces.format import Trace, TraceError

_KMEM = re.compile(r"kmem:mm_page_(alloc|free|free_batched):")
_PERF = re.compile(r"exceptions:page_fault_(user|kernel):|PERF_RECORD_MMAP2 ")


def detect(path: str | os.PathLike) -> str:
    """The format of a file from its first 64 KiB (see FORMATS)."""
    path = Path(path)
    source = str(path)
    if not path.exists():
        raise TraceError(source, None, "no such file")
    if path.is_dir():
        raise TraceError(source, None, "a folder, not a trace file")
    with open(path, "rb") as f:
        head = f.read(65536)
    if head[:4] == b"PAR1" or b"\x00" in head:
        return "canonical"  # Parquet, or binary data the canonical reader reports
    text = head.decode("utf-8", errors="replace")
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    cells = [c.strip().strip('"').strip() for c in first.lstrip("\ufeff").split(",")]
    if len(cells) > 1 and "op" in cells:
        return "canonical"
    if _KMEM.search(text):
        return "kmem"
    if _PERF.search(text):
        return "perf"
    from ptpair.traces.strace import looks_like_strace

    if looks_like_strace(text):
        return "strace"
    if not text.strip():
        raise TraceError(source, None, "empty file")
    raise TraceError(source, 1, "unknown format: not a canonical trace (CSV with a header naming 'op', or "
                                "Parquet), an strace log, or perf script output of kmem or of page faults; --format overrides")


def read_any(paths, fmt: str | None = None, lenient: bool = False, populate="all") -> Trace:
    """One canonical Trace from a file of any format (several files: strace -ff only)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [Path(p) for p in paths]
    if fmt is not None and fmt not in FORMATS:
        raise TraceError(str(paths[0]), None, f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    kind = fmt or detect(paths[0])
    if len(paths) > 1 and kind != "strace":
        raise TraceError(str(paths[1]), None, "several input files are only read for strace -ff logs")
    if kind == "strace":
        from ptpair.traces.strace import read_strace

        return read_strace(paths, populate=populate, lenient=lenient)
    if kind == "kmem":
        from ptpair.traces.kmem import read_kmem

        return read_kmem(paths[0], lenient=lenient)
    if kind == "perf":
        from ptpair.traces.perf import read_perf

        return read_perf(paths[0], lenient=lenient)
    from ptpair.traces.canonical import read_trace

    return read_trace(paths[0], lenient=lenient)
