"""Recording from the running machine: a command under strace, the kernel's page
allocations with perf, /proc snapshots with Linux's own VmPTE beside them, and the free
lists of /proc/buddyinfo over time.

Each recorder returns a canonical `Trace` (or rows) and leaves writing the result to the
caller; raw logs are written atomically next to the output, so an interrupted recording
never leaves half a file. A tool that is missing or not permitted raises RecordError with
what to do about it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from ptpair.errors import TraceError, UsageError
from ptpair.traces.atomic import atomic_path, write_text_atomic

KMEM_EVENTS = ("kmem:mm_page_alloc", "kmem:mm_page_free", "kmem:mm_page_free_batched")


class RecordError(UsageError):
    """A recorder cannot run here (tool missing, not permitted, nothing to record)."""


def raw_path(output, raw=None, suffix: str = ".log") -> Path:
    """Where a recorder keeps its raw log: `raw`, or OUTPUT's stem + `suffix`."""
    out = Path(output)
    return Path(raw) if raw else out.with_name(out.name.split(".")[0] + suffix)


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RecordError(f"{name} is not installed (Debian: apt-get install {package})")
    return path


def record_strace(command: list[str], raw, populate="all"):
    """Run `command` under `strace -f -ttt -e trace=memory,process`, keep the log at `raw`;
    returns (Trace, the command's exit status)."""
    if not command:
        raise RecordError("give the command to trace after --, e.g. ptpair record strace -o t.parquet -- make -j4")
    strace = _tool("strace", "strace")
    with atomic_path(raw) as tmp:
        p = subprocess.run([strace, "-f", "-ttt", "-e", "trace=memory,process", "-o", str(tmp), *command])
    from ptpair.traces.readers import read_any

    return read_any(raw, "strace", populate=populate), p.returncode


def record_kmem(command: list[str], raw):
    """Record the page allocator's tracepoints (KMEM_EVENTS, all CPUs) while `command`
    runs; keep `perf script`'s output at `raw`. Returns the Trace, times in real time
    (seconds since the epoch), so that it merges by time with an strace recording."""
    perf = _tool("perf", "linux-perf")
    events = [x for e in KMEM_EVENTS for x in ("-e", e)]
    with tempfile.TemporaryDirectory() as d:
        data = f"{d}/perf.data"
        # perf stamps events with CLOCK_MONOTONIC (-k mono; perf accepts no real-time clock);
        # shifted by real time - monotonic time below, they share strace -ttt's clock
        offset = time.time() - time.monotonic()
        p = subprocess.run([perf, "record", "-q", "-k", "mono", *events, "-a", "-o", data, "--", *command],
                           stderr=subprocess.PIPE, text=True)
        if p.returncode and not os.path.exists(data):
            why = p.stderr.strip().splitlines()[-1] if p.stderr.strip() else f"status {p.returncode}"
            raise RecordError(f"perf record cannot trace {', '.join(KMEM_EVENTS)}: {why} (needs root or "
                              "kernel.perf_event_paranoid <= -1, and tracefs/debugfs mounted)")
        with atomic_path(raw) as tmp:
            with open(tmp, "w") as f:
                q = subprocess.run([perf, "script", "-i", data], stdout=f, stderr=subprocess.PIPE, text=True)
            if q.returncode:
                raise RecordError(f"perf script failed: {q.stderr.strip()[-300:]}")
    from ptpair.traces.readers import read_any

    trace = read_any(raw, "kmem")
    trace.time = trace.time + offset
    return trace


def vmpte_path(output) -> Path:
    """The CSV of Linux's VmPTE per process written beside a snapshot trace."""
    out = Path(output)
    return out.with_name(out.name.split(".")[0] + ".vmpte.csv")


def write_vmpte(series, path) -> None:
    """What Linux says about each snapshotted process's tables: VmPTE (kB), with the
    present 4-KiB and 2 MiB pages, one row per process and snapshot."""
    lines = ["snapshot,time,pid,comm,vmpte_kb,pages_4k,pages_2m"]
    lines += [f"{i},{t:.6f},{pid},{comm.replace(',', ' ')},{'' if v is None else v},{n},{h}"
              for i, t, pid, comm, v, n, h in series.vmpte]
    write_text_atomic(path, "\n".join(lines) + "\n")


# --- /proc/buddyinfo ---------------------------------------------------------------------
def parse_buddyinfo(text: str, source: str = "/proc/buddyinfo") -> list[tuple[int, str, list[int]]]:
    """[(node, zone, free blocks per order)] from /proc/buddyinfo text.

    Raises TraceError (`file:line: ...`) for a line that is not in buddyinfo's layout.
    """
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            if parts[0] != "Node" or parts[2] != "zone":
                raise ValueError
            node = int(parts[1].rstrip(","))
            counts = [int(x) for x in parts[4:]]
            if not counts:
                raise ValueError
        except (ValueError, IndexError):
            raise TraceError(source, n, "not a buddyinfo line (expected 'Node N, zone NAME n0 n1 ...')") from None
        out.append((node, parts[3], counts))
    if not out:
        raise TraceError(source, 1, "no zones found in buddyinfo")
    return out


def read_buddyinfo(path="/proc/buddyinfo") -> list[tuple[int, str, list[int]]]:
    """parse_buddyinfo of a file; an unreadable file is a located TraceError."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise TraceError(str(path), None, e.strerror or str(e)) from None
    return parse_buddyinfo(text, str(path))


def sample_buddyinfo(source, interval: float, count: int, on_interrupt=None) -> list:
    """`count` readings of buddyinfo, `interval` seconds apart: rows (time, node, zone,
    counts). Ctrl-C ends the sampling early and keeps the rows read so far
    (`on_interrupt(rows)` is told)."""
    rows = []
    try:
        for i in range(count):
            if i:
                time.sleep(interval)
            now = time.time()
            rows += [(now, node, zone, counts) for node, zone, counts in read_buddyinfo(source)]
    except KeyboardInterrupt:
        if on_interrupt:
            on_interrupt(rows)
    return rows


def write_buddyinfo_csv(rows, path) -> None:
    """CSV rows time, node, zone, free_blocks_0..N (N: the widest zone's highest order)."""
    width = max((len(r[3]) for r in rows), default=0)
    header = "time,node,zone," + ",".join(f"free_blocks_{k}" for k in range(width))
    lines = [header] + [f"{t:.6f},{n},{z}," + ",".join(str(c) for c in counts) for t, n, z, counts in rows]
    write_text_atomic(path, "\n".join(lines) + "\n")
