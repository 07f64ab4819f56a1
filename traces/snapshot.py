"""/proc snapshots of live processes -> canonical traces.

A snapshot reads `/proc/PID/maps` for the ranges and `/proc/PID/pagemap` (8 bytes per
virtual page: bit 63 present, bit 62 swapped, bits 0-54 the frame number, zero without
CAP_SYS_ADMIN) for which pages are there, and writes a trace that spawns each process and
maps exactly its present or swapped pages. A series (`--interval S --count N`) turns
later snapshots into `map`/`unmap` deltas; processes that appear are spawned, processes
that vanish exit.

Pages of a 2 MiB transparent huge page mapped by one pml2 entry are recorded as one
2 MiB page when the frame numbers show it (readable as root: 512 present pages, 2 MiB
aligned, frames contiguous from a 512-aligned frame); otherwise pages are 4 KiB. A 2 MiB
page any of whose pages pagemap marks file-page or shared-anon (bit 61) is recorded
file-backed (the map's arg MAP_FILE): Linux deposits no PTE table with it.
Inaccessible reservations (`---p`) hold no pages and are skipped; `[vsyscall]` lies
above the 47-bit user space and is skipped.

`VmPTE` in /proc/PID/status (kB) is Linux's own count of the process's pml3, pml2 and
pml1 tables x 4; `vmpte_kb` records it beside each snapshot so that a replay under
`separate` can be checked against it (docs/trace-format.md#proc-snapshots).
"""

from __future__ import annotations

import os
import time as _time
from dataclasses import dataclass, field

import numpy as np

from ptpair.traces.format import MAP_FILE, PAGE_SIZE, PAGE_SIZES, VA_LIMIT, Trace

HUGE_PAGES = PAGE_SIZES[1] // PAGE_SIZE  # 4-KiB pages in a 2 MiB page (512)
PM_PRESENT = np.uint64(1 << 63)
PM_SWAPPED = np.uint64(1 << 62)
PM_FILE = np.uint64(1 << 61)  # file page or shared anonymous (shmem)
PM_PFN_MASK = np.uint64((1 << 55) - 1)
READ_CHUNK_PAGES = 1 << 18  # pagemap is read 2 MiB (of entries) at a time


class SnapshotError(Exception):
    pass


@dataclass
class ProcessPages:
    """One process at one moment: its present 4-KiB pages and 2 MiB pages (virtual page
    numbers, sorted) and what Linux says about its tables."""

    pid: int
    comm: str
    small: np.ndarray  # virtual page numbers of present/swapped 4-KiB pages
    huge: np.ndarray  # virtual page numbers (of 4-KiB units, 512-aligned) of 2 MiB pages
    vmpte_kb: int | None
    huge_file: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # of those, file-backed


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def vmpte_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmPTE:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _ranges(pid: int) -> list[tuple[int, int]]:
    out = []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split()
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            perms = parts[1]
            if hi > VA_LIMIT or perms.startswith("---"):
                continue
            out.append((lo, hi))
    return out


def read_process(pid: int) -> ProcessPages:
    """The present (or swapped) pages of a live process. Raises SnapshotError if it is gone
    or its pagemap cannot be read."""
    small, huge, huge_file = [], [], []
    try:
        ranges = _ranges(pid)
        fd = os.open(f"/proc/{pid}/pagemap", os.O_RDONLY)
    except OSError as e:
        raise SnapshotError(f"pid {pid}: {e.strerror}") from None
    try:
        for lo, hi in ranges:
            for a in range(lo // PAGE_SIZE, hi // PAGE_SIZE, READ_CHUNK_PAGES):
                b = min(hi // PAGE_SIZE, a + READ_CHUNK_PAGES)
                try:
                    data = os.pread(fd, (b - a) * 8, a * 8)
                except OSError:
                    break  # the range went away while we read
                e = np.frombuffer(data, dtype=np.uint64)
                there = (e & (PM_PRESENT | PM_SWAPPED)) != 0
                if not there.any():
                    continue
                vpn = a + np.flatnonzero(there)
                pfn = (e[there] & PM_PFN_MASK).astype(np.int64)
                present = (e[there] & PM_PRESENT) != 0
                is_huge = _huge_runs(vpn, pfn, present)
                if is_huge.any():
                    heads = vpn[is_huge][::HUGE_PAGES]
                    huge.append(heads)
                    file_page = (e[there][is_huge] & PM_FILE) != 0
                    huge_file.append(heads[file_page.reshape(-1, HUGE_PAGES).any(axis=1)])
                small.append(vpn[~is_huge])
    finally:
        os.close(fd)
    cat = (lambda xs: np.unique(np.concatenate(xs)) if xs else np.zeros(0, np.int64))
    return ProcessPages(pid, _comm(pid), cat(small), cat(huge), vmpte_kb(pid), cat(huge_file))


def _huge_runs(vpn: np.ndarray, pfn: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Mask of pages that belong to a PMD-mapped 2 MiB page: 512 present pages from a
    512-aligned virtual page, frames contiguous from a 512-aligned, non-zero frame."""
    out = np.zeros(len(vpn), bool)
    starts = np.flatnonzero((vpn % HUGE_PAGES == 0) & (pfn != 0) & (pfn % HUGE_PAGES == 0) & present)
    for s in starts:
        e = s + HUGE_PAGES
        if e > len(vpn):
            continue
        if (vpn[e - 1] - vpn[s] == HUGE_PAGES - 1 and pfn[e - 1] - pfn[s] == HUGE_PAGES - 1
                and np.all(np.diff(pfn[s:e]) == 1) and present[s:e].all()):
            out[s:e] = True
    return out


def _runs(pages: np.ndarray, step: int = 1) -> list[tuple[int, int]]:
    """Sorted page numbers -> (first, count) runs of consecutive pages (`step` apart)."""
    if len(pages) == 0:
        return []
    brk = np.flatnonzero(np.diff(pages) != step) + 1
    starts = np.concatenate([[0], brk])
    ends = np.concatenate([brk, [len(pages)]])
    return [(int(pages[s]), int(e - s)) for s, e in zip(starts, ends)]


@dataclass
class SnapshotSeries:
    """Rows of a canonical trace built from successive snapshots."""

    rows: list = field(default_factory=list)  # (pid, op, va, length, page_size, time, comm, arg)
    last: dict = field(default_factory=dict)  # pid -> ProcessPages
    vmpte: list = field(default_factory=list)  # (snapshot, time, pid, comm, vmpte_kb, pages, huge)
    count: int = 0

    def add(self, procs: list[ProcessPages], t: float) -> None:
        seen = set()
        for p in procs:
            seen.add(p.pid)
            prev = self.last.get(p.pid)
            if prev is None:
                self.rows.append((p.pid, "spawn", 0, 0, PAGE_SIZE, t, p.comm, 0))
                old_s = old_h = np.zeros(0, np.int64)
            else:
                old_s, old_h = prev.small, prev.huge
            for pages, size, step in ((np.setdiff1d(old_s, p.small), PAGE_SIZE, 1),
                                      (np.setdiff1d(old_h, p.huge), PAGE_SIZE * HUGE_PAGES, HUGE_PAGES)):
                for first, n in _runs(pages, step):
                    self.rows.append((p.pid, "unmap", first * PAGE_SIZE, n * size, size, t, p.comm, 0))
            new_h = np.setdiff1d(p.huge, old_h)
            is_file = np.isin(new_h, p.huge_file)
            for pages, size, step, flags in ((new_h[~is_file], PAGE_SIZE * HUGE_PAGES, HUGE_PAGES, 0),
                                             (new_h[is_file], PAGE_SIZE * HUGE_PAGES, HUGE_PAGES, MAP_FILE),
                                             (np.setdiff1d(p.small, old_s), PAGE_SIZE, 1, 0)):
                for first, n in _runs(pages, step):
                    self.rows.append((p.pid, "map", first * PAGE_SIZE, n * size, size, t, p.comm, flags))
            self.last[p.pid] = p
            self.vmpte.append((self.count, t, p.pid, p.comm, p.vmpte_kb, len(p.small), len(p.huge)))
        for pid in sorted(set(self.last) - seen):  # gone since the last snapshot
            self.rows.append((pid, "exit", 0, 0, PAGE_SIZE, t, self.last[pid].comm, 0))
            del self.last[pid]
        self.count += 1

    def trace(self, source: str = "<snapshot>"):
        cols = list(zip(*self.rows)) if self.rows else [[] for _ in range(8)]
        return Trace.from_columns(source=source, pid=np.array(cols[0], np.int64),
                                  op=list(cols[1]) if self.rows else np.zeros(0, np.int8),
                                  va=np.array(cols[2], np.int64), length=np.array(cols[3], np.int64),
                                  arg=np.array(cols[7], np.int64),
                                  page_size=np.array(cols[4], np.int64), time=np.array(cols[5], np.float64),
                                  comm=np.array(cols[6], object))


def all_pids() -> list[int]:
    return sorted(int(d) for d in os.listdir("/proc") if d.isdigit())


def snapshot(pids: list[int] | None, interval: float = 0.0, count: int = 1, on_skip=None) -> SnapshotSeries:
    """Take `count` snapshots `interval` seconds apart of `pids` (None: every process).
    Processes that cannot be read (gone, or kernel threads with no pages) are skipped;
    `on_skip(pid, why)` hears about it."""
    series = SnapshotSeries()
    for i in range(count):
        if i:
            _time.sleep(interval)
        t = _time.time()
        procs = []
        for pid in (pids if pids is not None else all_pids()):
            try:
                p = read_process(pid)
            except SnapshotError as e:
                if on_skip:
                    on_skip(pid, str(e))
                continue
            if pids is None and len(p.small) == 0 and len(p.huge) == 0:
                continue  # kernel threads
            procs.append(p)
        series.add(procs, t)
    return series
