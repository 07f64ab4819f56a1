"""The reference process model for strace logs: completed calls -> canonical events.

Semantics (docs/trace-format.md#strace-logs):

* VMAs: mmap/mmap2 -> `reserve` of the returned range (length rounded up to pages),
  after a `release` of it if it replaces mappings (MAP_FIXED), then `map` of it;
  munmap -> `release`; brk -> reserve + map of the heap's growth since the address
  space's first brk, release of its shrinking; mremap -> release old, reserve + map new;
  madvise(MADV_DONTNEED) -> `dontneed`, madvise(MADV_FREE|MADV_REMOVE) -> `unmap` (the
  pages go, the tables stay: docs/semantics.md#page-table-reclaim); mprotect changes no
  table, but see the populate model. Failed calls change nothing.
* execve/execveat success -> `exec`; fork/vfork/clone/clone3 without CLONE_VM -> `fork`;
  a vfork child (CLONE_VM|CLONE_VFORK) borrows its parent's address space, creating no
  tables, until its execve gives it its own (`spawn`); threads (CLONE_THREAD, or CLONE_VM
  without CLONE_VFORK) share their process's address space; the exit of the last thread
  -> `exit`; processes alive at the end of the log get an `exit` at the end. A process is
  named by the pid of its first thread.
* A child's lines may come before its parent's clone returns its pid: the child is
  created where the parent's clone call started (or at the child's first line, if that is
  earlier), which is known once the whole log is read.
* Populate model (strace cannot see page faults): `all` (default) maps every accessible
  page of a mapping -- an upper bound; PROT_NONE reservations hold no pages until an
  mprotect makes them accessible; `none` maps nothing (processes only); a fraction f in
  (0, 1) maps the first ceil(f x pages) pages of each accessible range.

This model is the reference: the compiled one (compiled_model.py) is a port of it, line
for line, and is held to the same rows on every log it answers for.
"""

from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass, field

from ptpair.traces.format import OP_CODE, TraceError
from ptpair.traces.strace.lines import PROCESS_CALLS, Call
from ptpair.traces.units import PAGE_SIZE, VA_LIMIT  # noqa: F401  (the compiled model reads them here)

CLONE_VM = 0x00000100
CLONE_VFORK = 0x00004000
CLONE_THREAD = 0x00010000
UNMAP_ADVICE = ("MADV_DONTNEED", "MADV_FREE", "MADV_REMOVE")  # the first: `dontneed`, the others `unmap`
DROPPED_HIGH = "outside the 47-bit address space"  # mappings dropped (counted, not refused): a Trace.skipped key


def _int(text: str) -> int:
    text = text.strip()
    if text in ("NULL", ""):
        return 0
    return int(text, 0)


_FLAG_BITS = {"CLONE_VM": CLONE_VM, "CLONE_VFORK": CLONE_VFORK, "CLONE_THREAD": CLONE_THREAD}


def _clone_flags(name: str, args: list[str]) -> int:
    if name == "vfork":
        return CLONE_VM | CLONE_VFORK
    if name == "fork":
        return 0
    text = " ".join(args)
    return sum(bit for flag, bit in _FLAG_BITS.items() if re.search(rf"\b{flag}\b", text))


@dataclass
class _Space:
    """An address space: accessible ranges (for the populate model) and the heap.

    `vmas` is a sorted list of disjoint (start, end, accessible) tuples; each change
    touches only the ranges it overlaps (found by bisection), so long-lived processes
    with thousands of mappings stay cheap."""

    owner: int  # canonical pid
    vmas: list = field(default_factory=list)
    brk_start: int | None = None
    brk_cur: int | None = None

    def copy(self, owner: int) -> "_Space":
        return _Space(owner, list(self.vmas), self.brk_start, self.brk_cur)

    def _span(self, start: int, end: int) -> tuple[int, int]:
        """Indexes [lo, hi) of the ranges that overlap [start, end)."""
        lo = bisect.bisect_left(self.vmas, (start,))
        if lo > 0 and self.vmas[lo - 1][1] > start:
            lo -= 1
        return lo, bisect.bisect_left(self.vmas, (end,), lo)

    def remove(self, start: int, end: int) -> None:
        lo, hi = self._span(start, end)
        keep = []
        for s, e, acc in self.vmas[lo:hi]:
            if s < start:
                keep.append((s, start, acc))
            if e > end:
                keep.append((end, e, acc))
        self.vmas[lo:hi] = keep

    def add(self, start: int, end: int, accessible: bool) -> None:
        self.remove(start, end)
        bisect.insort(self.vmas, (start, end, accessible))

    def protect(self, start: int, end: int, accessible: bool) -> list[tuple[int, int]]:
        """Set accessibility over [start, end); returns the parts that became accessible."""
        lo, hi = self._span(start, end)
        opened, out = [], []
        for s, e, acc in self.vmas[lo:hi]:
            a, b = max(s, start), min(e, end)
            if s < a:
                out.append((s, a, acc))
            if accessible and not acc:
                opened.append((a, b))
            out.append((a, b, accessible))
            if b < e:
                out.append((b, e, acc))
        self.vmas[lo:hi] = out
        return opened

    def accessible_of(self, start: int) -> bool:
        i = bisect.bisect_right(self.vmas, (start, float("inf"))) - 1
        if i >= 0 and self.vmas[i][0] <= start < self.vmas[i][1]:
            return self.vmas[i][2]
        return True


def _page_up(x: int) -> int:
    return -(-x // PAGE_SIZE) * PAGE_SIZE


class _Builder:
    """Turns calls into canonical events."""

    def __init__(self, populate):
        self.populate = populate
        self.rows: list[tuple] = []  # (pid, op code, va, length, arg, time, line)
        self.proc_of: dict[int, int] = {}  # tid -> canonical pid of its process
        self.space_of: dict[int, _Space] = {}  # canonical pid -> its own address space
        self.threads: dict[int, set] = {}  # canonical pid -> live tids
        self.borrowed: dict[int, int] = {}  # vfork child tid -> the pid whose space it borrows
        self.dropped = {DROPPED_HIGH: 0}

    def emit(self, pid, op, va=0, length=0, arg=0, t=math.nan, line=0):
        self.rows.append((pid, op, va, length, arg, t, line))

    def map(self, sp: _Space, start: int, end: int, t, line):
        if end <= start:
            return
        if end > VA_LIMIT:
            self.dropped[DROPPED_HIGH] += 1
            return
        if self.populate == "none":
            return
        if self.populate != "all":
            n = (end - start) // PAGE_SIZE
            end = start + max(1, math.ceil(n * self.populate)) * PAGE_SIZE
        self.emit(sp.owner, OP_CODE["map"], start, end - start, t=t, line=line)

    def unmap(self, sp: _Space, start: int, end: int, t, line, op="unmap"):
        """An unmap, release or dontneed of [start, end) (clipped to the address space)."""
        if end <= start or start >= VA_LIMIT:
            return
        if self.populate == "none":
            return
        self.emit(sp.owner, OP_CODE[op], start, min(end, VA_LIMIT) - start, t=t, line=line)

    def reserve(self, sp: _Space, start: int, end: int, t, line):
        if end <= start or end > VA_LIMIT or self.populate == "none":
            return  # (a range beyond the address space is counted as dropped by `map`)
        self.emit(sp.owner, OP_CODE["reserve"], start, end - start, t=t, line=line)

    # -- processes
    def new_process(self, tid: int, t, line, parent_pid: int | None = None):
        if parent_pid is None:
            self.emit(tid, OP_CODE["spawn"], t=t, line=line)
            self.space_of[tid] = _Space(tid)
        else:
            self.emit(tid, OP_CODE["fork"], arg=parent_pid, t=t, line=line)
            self.space_of[tid] = self.space_of[parent_pid].copy(tid)
        self.proc_of[tid] = tid
        self.threads[tid] = {tid}

    def new_thread(self, tid: int, parent_tid: int):
        pid = self.proc_of[parent_tid]
        if pid not in self.threads:  # its process has ended (an inconsistent log): no thread of it
            return
        self.proc_of[tid] = pid
        self.threads[pid].add(tid)

    def space(self, tid: int) -> _Space | None:
        if tid in self.borrowed:
            return self.space_of.get(self.borrowed[tid])
        pid = self.proc_of.get(tid)
        return None if pid is None else self.space_of.get(pid)

    def end_thread(self, tid: int, t, line):
        if tid in self.borrowed:  # a vfork child that never exec'd: it had no tables
            del self.borrowed[tid]
            return
        pid = self.proc_of.pop(tid, None)
        if pid is None:
            return
        live = self.threads.get(pid)
        if live is None:  # its process has already ended
            return
        live.discard(tid)
        if not live:
            self.emit(pid, OP_CODE["exit"], t=t, line=line)
            del self.threads[pid]
            del self.space_of[pid]


def convert_calls(calls: list[Call], populate="all") -> tuple[list[tuple], dict]:
    """Canonical rows (pid, op code, va, length, arg, time, line) from parsed calls."""
    b = _Builder(populate)
    # where each child appears: at its parent's clone start (the call's line), or at its
    # own first line if that comes earlier (creations are emitted before that call)
    first_index: dict[int, int] = {}
    for i, c in enumerate(calls):
        first_index.setdefault(c.tid, i)
    creations: dict[int, list] = {}  # index -> [(child, parent tid, flags)]
    created = set()
    for i, c in enumerate(calls):
        if c.name in ("fork", "vfork", "clone", "clone2", "clone3") and c.ret and c.ret > 0 and c.ret not in created:
            child = c.ret
            at = min(i, first_index.get(child, i))
            creations.setdefault(at, []).append((child, c.tid, _clone_flags(c.name, c.args), c.line, c.time))
            created.add(child)
    for i, c in enumerate(calls):
        for child, parent, flags, cline, ctime in creations.get(i, ()):
            if parent not in b.proc_of and parent not in b.borrowed:
                b.new_process(parent, ctime, cline)
            if flags & CLONE_VM and flags & CLONE_VFORK:
                b.borrowed[child] = b.borrowed.get(parent, b.proc_of.get(parent))
            elif flags & CLONE_VM or flags & CLONE_THREAD:
                if parent in b.borrowed:  # a thread of a vfork child: shares the borrowed space
                    b.borrowed[child] = b.borrowed[parent]
                else:
                    b.new_thread(child, parent)
            else:
                src = b.borrowed.get(parent, b.proc_of.get(parent))
                if src not in b.space_of:  # the space it would copy has ended (an inconsistent log)
                    src = None
                b.new_process(child, ctime, cline, parent_pid=src)
        tid = c.tid
        if tid not in b.proc_of and tid not in b.borrowed:
            if c.name == "+++":
                continue
            b.new_process(tid, c.time, c.line)  # a root of the tree (or attached with -p)
        if c.name == "+++":
            b.end_thread(tid, c.time, c.line)
            continue
        if c.failed:
            continue
        _apply(b, c)
    t_end = max((c.time for c in calls if not math.isnan(c.time)), default=math.nan)
    line_end = calls[-1].line if calls else 0
    for pid in list(b.threads):  # alive at the end of the log
        b.emit(pid, OP_CODE["exit"], t=t_end, line=line_end)
    return b.rows, {k: v for k, v in b.dropped.items() if v}


def _accessible(prot: str) -> bool:
    return "PROT_NONE" not in prot and prot.strip() not in ("0", "")


def _apply(b: _Builder, c: Call) -> None:
    name, a, t, line = c.name, c.args, c.time, c.line
    if name in ("execve", "execveat"):
        if c.tid in b.borrowed:  # the vfork child gets its own address space
            del b.borrowed[c.tid]
            b.new_process(c.tid, t, line)
            return
        pid = b.proc_of[c.tid]
        if pid not in b.threads:  # its process has ended (an inconsistent log): a new one
            del b.proc_of[c.tid]
            b.new_process(c.tid, t, line)
            return
        b.emit(pid, OP_CODE["exec"], t=t, line=line)
        b.space_of[pid] = _Space(pid)
        for other in b.threads[pid] - {c.tid}:  # exec leaves only the calling thread
            b.proc_of.pop(other, None)
        b.threads[pid] = {c.tid}
        return
    sp = b.space(c.tid)
    if sp is None or name in PROCESS_CALLS:
        return
    try:
        if name in ("mmap", "mmap2"):
            length = _page_up(_int(a[1]))
            acc = _accessible(a[2])
            start = c.ret
            lo, hi = sp._span(start, start + length)
            if hi > lo:  # MAP_FIXED over mappings: Linux unmaps them first
                b.unmap(sp, start, start + length, t, line, "release")
            sp.add(start, start + length, acc)
            b.reserve(sp, start, start + length, t, line)
            if acc:
                b.map(sp, start, start + length, t, line)
        elif name == "munmap":
            start, length = _int(a[0]), _page_up(_int(a[1]))
            sp.remove(start, start + length)
            b.unmap(sp, start, start + length, t, line, "release")
        elif name == "brk":
            new = c.ret
            if sp.brk_start is None:
                sp.brk_start = sp.brk_cur = new
                return
            old = sp.brk_cur
            if new > old:
                b.reserve(sp, _page_up(old), _page_up(new), t, line)
                b.map(sp, _page_up(old), _page_up(new), t, line)
                sp.add(_page_up(old), _page_up(new), True)
            elif new < old:
                b.unmap(sp, _page_up(new), _page_up(old), t, line, "release")
                sp.remove(_page_up(new), _page_up(old))
            sp.brk_cur = new
        elif name == "mremap":
            old, old_len, new_len = _int(a[0]), _page_up(_int(a[1])), _page_up(_int(a[2]))
            acc = sp.accessible_of(old)
            sp.remove(old, old + old_len)
            b.unmap(sp, old, old + old_len, t, line, "release")
            sp.add(c.ret, c.ret + new_len, acc)
            b.reserve(sp, c.ret, c.ret + new_len, t, line)
            if acc:
                b.map(sp, c.ret, c.ret + new_len, t, line)
        elif name == "madvise":
            advice = next((adv for adv in UNMAP_ADVICE if adv in a[2]), None)
            if advice is not None:
                start, length = _int(a[0]), _page_up(_int(a[1]))
                b.unmap(sp, start, start + length, t, line, "dontneed" if advice == UNMAP_ADVICE[0] else "unmap")
        elif name in ("mprotect", "pkey_mprotect"):
            start, length = _int(a[0]), _page_up(_int(a[1]))
            for lo, hi in sp.protect(start, start + length, _accessible(a[2])):
                b.map(sp, lo, hi, t, line)
    except (IndexError, ValueError):
        raise TraceError(c.source, c.line, f"{name}: cannot read its arguments") from None
