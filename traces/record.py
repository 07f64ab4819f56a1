"""Recording from the running machine: a command under strace, the kernel's page
allocations with perf, the pages processes touch (page faults) with perf, /proc snapshots
with Linux's own VmPTE beside them, and the free lists of /proc/buddyinfo over time.

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


# --- perf: page faults, memory syscalls and process events (traces/perf.py) ----------
PERF_EVENTS = ("exceptions:page_fault_user", "exceptions:page_fault_kernel",
               *(f"syscalls:sys_{d}_{c}" for c in ("mmap", "munmap", "mremap", "brk", "madvise", "mprotect",
                                                   "mlock", "mlock2", "mlockall", "munlockall")
                 for d in ("enter", "exit")),
               "sched:sched_process_exit")
PERF_SCRIPT = ("-F", "comm,pid,tid,time,event,trace", "--show-mmap-events", "--show-task-events",
               "--show-lost-events")
PERF_BUFFER_PAGES = 4096  # per CPU (16 MiB): faults come in bursts of thousands


def _pids() -> set[int]:
    return {int(d) for d in os.listdir("/proc") if d.isdigit()}


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid in _pids():
        try:
            ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(pid)
    out, todo = set(), [root]
    while todo:
        for c in children.get(todo.pop(), ()):
            out.add(c)
            todo.append(c)
    return out


def _enable(ctl: str, ack: str, rec) -> None:
    """Tell a perf started disabled (`-D -1 --control fifo:CTL,ACK`) to enable its events,
    and wait for its acknowledgement -- without hanging if perf has exited instead."""
    import errno
    import select

    def alive():
        if rec.poll() is not None:
            raise RecordError(f"perf record exited (status {rec.returncode}) before recording (needs root or "
                              "kernel.perf_event_paranoid <= -1, and tracefs/debugfs mounted)")

    a = os.open(ack, os.O_RDONLY | os.O_NONBLOCK)
    try:
        while True:  # a FIFO opens for writing only once perf has opened it for reading
            try:
                c = os.open(ctl, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError as e:
                if e.errno != errno.ENXIO:
                    raise
                alive()
                time.sleep(0.01)
        try:
            os.write(c, b"enable\n")
        finally:
            os.close(c)
        reply = b""
        while b"\n" not in reply:
            alive()
            if select.select([a], [], [], 0.1)[0]:
                chunk = os.read(a, 64)
                if not chunk:  # no writer yet (perf has not opened it): EOF at once
                    time.sleep(0.01)
                reply += chunk
    finally:
        os.close(a)


def _vmpte_sampler(which, interval: float, stop, samples: list) -> None:
    """Append (monotonic time, pid, comm, VmPTE kB) for each process `which()` names, every
    `interval` seconds until `stop` is set, and once more at the end."""
    from ptpair.traces.snapshot import vmpte_kb

    while True:
        last = stop.is_set()
        for pid in sorted(which()):
            t = time.monotonic()  # each process's own moment: the replay is taken up to it
            kb = vmpte_kb(pid)
            if kb is None:
                continue
            try:
                comm = Path(f"/proc/{pid}/comm").read_text().strip()
            except OSError:
                continue
            samples.append((t, pid, comm, kb))
        if last:
            return
        stop.wait(interval)


def record_perf(command: list[str], raw, all_processes: bool = False, duration: float | None = None,
                on_recording=None, vmpte_interval: float = 0.1):
    """Record page faults, the memory syscalls and process exits (PERF_EVENTS) with perf's
    mapping and task records, while `command` runs (its process tree; with
    `all_processes`, every process that starts meanwhile, and the command is optional),
    or for `duration` seconds, or until SIGINT/SIGTERM. Keeps `perf script`'s text at
    `raw`. Returns (Trace, VmPTE samples [(time, pid, comm, kB)], the command's exit
    status); the samples' times are the trace's (CLOCK_MONOTONIC). `on_recording()` is
    called once events are being recorded."""
    import signal
    import threading

    if not command and not all_processes:
        raise RecordError("give the command to record after --, or --all")
    perf = _tool("perf", "linux-perf")
    events = [x for e in PERF_EVENTS for x in ("-e", e)]
    samples: list = []
    stop = threading.Event()
    before = _pids()
    with tempfile.TemporaryDirectory() as d:
        data = f"{d}/perf.data"
        base = [perf, "record", "-q", "-d", "-k", "mono", "-m", str(PERF_BUFFER_PAGES), *events, "-o", data]
        interrupted = []
        # perf's stderr (and the command's, which inherits it) goes to a file: a pipe read
        # only at the end would fill and block a chatty command
        log = open(f"{d}/perf.stderr", "w+")
        rec = sampler = None

        def on_signal(signum, frame):
            interrupted.append(signum)
            stop.set()

        old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            if all_processes:
                ctl, ack = f"{d}/ctl", f"{d}/ack"
                os.mkfifo(ctl)
                os.mkfifo(ack)
                rec = subprocess.Popen([*base, "-a", "-D", "-1", f"--control=fifo:{ctl},{ack}"],
                                       stderr=log, start_new_session=True)
                _enable(ctl, ack, rec)
                which = lambda: _pids() - before - {rec.pid}  # noqa: E731
            else:
                rec = subprocess.Popen([*base, "--", *command], stderr=log, start_new_session=True)
                which = lambda: _descendants(rec.pid)  # noqa: E731
            sampler = threading.Thread(target=_vmpte_sampler, args=(which, vmpte_interval, stop, samples),
                                       daemon=True)
            sampler.start()
            if on_recording:
                on_recording()
            status = 0
            if all_processes:
                if command:
                    status = subprocess.run(command).returncode
                elif duration is not None:
                    stop.wait(duration)
                else:
                    stop.wait()
                stop.set()
                sampler.join()  # the last sample, before perf stops
                rec.send_signal(signal.SIGINT)
            else:
                while rec.poll() is None and not stop.wait(0.05):
                    pass
                if rec.poll() is None:  # interrupted: stop the command, then perf
                    rec.send_signal(signal.SIGINT)
                stop.set()
                sampler.join()
            rec.wait()
            if not all_processes:
                status = rec.returncode
        finally:
            # whatever happened (a command that cannot start, an interrupt), perf stops
            stop.set()
            if sampler is not None:
                sampler.join()
            if rec is not None and rec.poll() is None:
                rec.send_signal(signal.SIGINT)
                try:
                    rec.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    rec.kill()
                    rec.wait()
            for s, h in old.items():
                signal.signal(s, h)
        log.seek(0)
        err = log.read()
        log.close()
        if not os.path.exists(data):
            why = err.strip().splitlines()[-1] if err.strip() else f"status {rec.returncode}"
            raise RecordError(f"perf record cannot trace page faults: {why} (needs root or "
                              "kernel.perf_event_paranoid <= -1, and tracefs/debugfs mounted)")
        with atomic_path(raw) as tmp:
            with open(tmp, "w") as f:
                q = subprocess.run([perf, "script", "-i", data, *PERF_SCRIPT], stdout=f, stderr=subprocess.PIPE,
                                   text=True)
            if q.returncode:
                raise RecordError(f"perf script failed: {q.stderr.strip()[-300:]}")
    from ptpair.traces.machineinfo import this_machine
    from ptpair.traces.perf import DEFAULT_THP_MODE, read_perf

    trace = read_perf(raw, this_machine().get("thp_enabled") or DEFAULT_THP_MODE)
    return trace, samples, status


def write_vmpte_samples(samples, path) -> None:
    """VmPTE of the recorded processes over time: time (s, the trace's clock), pid, comm, kB."""
    lines = ["time,pid,comm,vmpte_kb"]
    lines += [f"{t:.6f},{pid},{comm.replace(',', ' ')},{kb}" for t, pid, comm, kb in samples]
    write_text_atomic(path, "\n".join(lines) + "\n")
