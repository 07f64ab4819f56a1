"""strace logs of process trees -> canonical traces.

Input: what `strace -f -tt -e trace=memory,process -o FILE CMD` writes, and its variants:
`-t`, `-ttt` or no timestamps, `-T` (call durations), no `-f` (one process, no pid
column), `-ff` (one file per pid, FILE.PID; give them all, they are merged by time).
Calls split by other threads' output (`name(args <unfinished ...>` ... `<... name
resumed>rest`) are joined; failed calls (`= -1 ENOMEM ...`) change nothing; signals and
unknown calls are ignored; `+++ exited with N +++` and `+++ killed by SIG +++` end a
thread.

Semantics (docs/trace-format.md#strace-logs):

* mmap/mmap2 -> `map` of the returned range (length rounded up to pages); munmap ->
  `unmap`; brk -> map/unmap of the heap's change since the address space's first brk;
  mremap -> unmap old + map new; madvise(MADV_DONTNEED|MADV_FREE|MADV_REMOVE) ->
  `unmap`; mprotect changes no table, but see the populate model.
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

Bad input: a line that is not strace output, or a truncated last line, is `FILE:LINE:
what is wrong` (or skipped and counted with `lenient`).

Two implementations: this module's Python reader and model are the reference; a
compiled one (traces/_stracescan.py reads the bytes into call arrays, _stracemodel.py
runs the same model over them) reads the logs strace writes ~12x faster and gives up on
anything it is not sure to read exactly alike -- every error, rare line shapes -- which
this module then reads. tests/traces/test_strace_fast.py holds the two to the same
output on the corpus, generated process trees and mutated logs.
"""

from __future__ import annotations

import bisect
import gc
import math
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ptpair.traces.format import OP_CODE, Trace, TraceError

PAGE_SIZE = 4096
VA_LIMIT = 1 << 47  # user addresses of 4-level paging
CLONE_VM = 0x00000100
CLONE_VFORK = 0x00004000
CLONE_THREAD = 0x00010000
MEMORY_CALLS = {"mmap", "mmap2", "munmap", "brk", "mremap", "madvise", "mprotect", "pkey_mprotect"}
PROCESS_CALLS = {"execve", "execveat", "fork", "vfork", "clone", "clone2", "clone3", "exit", "exit_group"}
UNMAP_ADVICE = ("MADV_DONTNEED", "MADV_FREE", "MADV_REMOVE")
# why a line is refused (or, lenient, skipped and counted): Trace.skipped's keys
BAD_EXIT, BAD_NOT_STRACE = "bad exit line", "not strace output"
BAD_TRUNCATED, BAD_NO_RESULT = "truncated line", "no result"
DROPPED_HIGH = "outside the 47-bit address space"  # mappings dropped (counted, not refused)

# tid, then an optional timestamp: -t HH:MM:SS, -tt HH:MM:SS.us, -ttt epoch.us
_PREFIX = re.compile(r"(?:\[pid\s+)?(\d+)\]?\s+")
_TIME = re.compile(r"(\d\d:\d\d:\d\d(?:\.\d+)?|\d{6,}\.\d+)\s+")
_CALL = re.compile(r"([a-z_][a-z0-9_]*)\((.*)$", re.S)
_RESUMED = re.compile(r"<\.\.\. ([a-z_][a-z0-9_]*) resumed>\s?(.*)$", re.S)
_RESULT = re.compile(r"\)\s+=\s+(-?\d+|0x[0-9a-f]+|\?)(?:\s+(E[A-Z0-9]+)[^<]*)?(?:\s*<[\d.]+>)?\s*$")
_EXITED = re.compile(r"\+\+\+ (exited with -?\d+|killed by SIG[A-Z0-9]+(?: \(core dumped\))?|"
                     r"superseded by execve in pid \d+) \+\+\+$")


def _time(text: str | None) -> float:
    if text is None:
        return math.nan
    if ":" in text:
        h, m, s = text.split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)
    return float(text)


def _ret(text: str) -> int:
    """A call's value: decimal or 0x hex (leading zeros allowed, unlike int(text, 0))."""
    return int(text, 16) if text.startswith("0x") else int(text)


_NESTING = re.compile(r'["(\[{]')


def _split_args(s: str) -> list[str]:
    """Top-level comma-separated arguments (brackets, braces, parentheses and strings nest)."""
    if not _NESTING.search(s):  # the common case (mmap, munmap, brk, ...): a plain split
        return [a.strip() for a in s.split(",")] if s.strip() else []
    out, depth, cur, quote, esc = [], 0, [], False, False
    for ch in s:
        if quote:
            cur.append(ch)
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                quote = False
            continue
        if ch == '"':
            quote = True
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    if cur or out:
        out.append("".join(cur).strip())
    return out


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


@dataclass(slots=True)
class Call:
    """One completed system call (or a thread's end) of the log."""

    line: int  # where the call started (1-based, in its file)
    source: str
    tid: int
    time: float
    name: str  # syscall name, or "+++" for a thread's end
    args: list = field(default_factory=list)
    ret: int | None = None  # None: '?' or failed
    failed: bool = False


class _Lines:
    """Parses the lines of one file into calls, joining unfinished/resumed halves."""

    def __init__(self, source: str, file_tid: int | None, lenient: bool):
        self.source, self.file_tid, self.lenient = source, file_tid, lenient
        self.pending: dict[int, tuple[int, float, str, str]] = {}
        self.calls: list[Call] = []
        self.skipped: dict[str, int] = {}
        self.first_bad: tuple[int, str] | None = None

    def bad(self, line: int, reason: str, message: str):
        if not self.lenient:
            raise TraceError(self.source, line, message)
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        if self.first_bad is None:
            self.first_bad = (line, message)

    def feed(self, n: int, text: str, last: bool):
        rest = text.rstrip("\n")
        if not rest.strip():
            return
        tid = self.file_tid
        m = _PREFIX.match(rest)
        if m and (tid is None or rest.startswith("[pid")):
            tid = int(m.group(1))
            rest = rest[m.end():]
        elif tid is None:
            tid = 0  # a log without -f: one process
        m = _TIME.match(rest)
        t = math.nan
        if m:
            t = _time(m.group(1))
            rest = rest[m.end():]
        if rest.startswith(("---", "strace: ")):  # a signal, or strace's own message
            return
        if rest.startswith("+++"):
            if not _EXITED.match(rest):
                return self.bad(n, BAD_EXIT, f"cannot read {rest[:60]!r}")
            if "superseded" in rest:
                return
            self.calls.append(Call(n, self.source, tid, t, "+++"))
            return
        m = _RESUMED.match(rest)
        if m:
            name, tail = m.group(1), m.group(2)
            start = self.pending.pop(tid, None)
            if start is None or start[2] != name:
                # the start is before the log (strace -p) or lost: use what we have
                start = (n, t, name, "")
            return self._finish(start[0], tid, start[1], name, start[3] + tail, n, last)
        m = _CALL.match(rest)
        if not m:
            return self.bad(n, BAD_NOT_STRACE, f"not an strace line: {rest[:60]!r}")
        name, tail = m.group(1), m.group(2)
        if tail.endswith("<unfinished ...>"):
            self.pending[tid] = (n, t, name, tail[: -len("<unfinished ...>")].rstrip() + " ")
            return
        self._finish(n, tid, t, name, tail, n, last)

    def _finish(self, start_line: int, tid: int, t: float, name: str, tail: str, n: int, last: bool):
        wanted = name in MEMORY_CALLS or name in PROCESS_CALLS
        if not wanted and not last:
            return
        m = _RESULT.search(tail)
        if not m:
            if last:
                return self.bad(n, BAD_TRUNCATED, "truncated last line (no result)")
            return self.bad(n, BAD_NO_RESULT, f"{name}: cannot read the call's result")
        if not wanted:
            return
        args = _split_args(tail[: m.start()])
        r = m.group(1)
        failed = m.group(2) is not None or (r.startswith("-") and r != "?")
        ret = None if r == "?" or failed else _ret(r)
        self.calls.append(Call(start_line, self.source, tid, t, name, args, ret, failed))


def parse_files(paths, lenient: bool = False):
    """Calls of one or more strace files, in log order (several files: merged by time)."""
    paths = [Path(p) for p in paths]
    per_file, skipped, first_bad, file_tids = [], {}, None, []
    for p in paths:
        source = str(p)
        if not p.exists():
            raise TraceError(source, None, "no such file")
        m = re.search(r"\.(\d+)$", p.name)
        file_tid = int(m.group(1)) if (m and len(paths) > 1) else None
        lp = _Lines(source, file_tid, lenient)
        with open(p, "rb") as f:
            data = f.read()
        if b"\x00" in data[:65536]:
            raise TraceError(source, data[: data.index(b"\x00")].count(b"\n") + 1, "binary data, not an strace log")
        text = data.decode("utf-8", errors="replace")
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
            complete = True
        else:
            complete = False
        last = len(lines) - 1 if not complete else -1
        for i, line in enumerate(lines):
            lp.feed(i + 1, line, last=i == last)
        for tid, (line, t, name, _) in lp.pending.items():  # cut off by the log's end
            if name in ("exit", "exit_group"):
                lp.calls.append(Call(line, source, tid, t, "+++"))
        per_file.append(lp.calls)
        file_tids.append(file_tid)
        for k, v in lp.skipped.items():
            skipped[k] = skipped.get(k, 0) + v
        if lp.first_bad and first_bad is None:
            first_bad = (source, *lp.first_bad)
    if len(per_file) == 1:
        return per_file[0], skipped, first_bad
    if any(math.isnan(c.time) for calls in per_file for c in calls):
        raise TraceError(str(paths[0]), None, "several strace files need timestamps (-t, -tt or -ttt) to merge")
    merged = [c for calls in per_file for c in calls]
    merged.sort(key=lambda c: c.time)  # stable: each file keeps its order for equal times
    return merged, skipped, first_bad


# --- the process model ---------------------------------------------------------------------
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

    def unmap(self, sp: _Space, start: int, end: int, t, line):
        if end <= start or start >= VA_LIMIT:
            return
        if self.populate == "none":
            return
        self.emit(sp.owner, OP_CODE["unmap"], start, min(end, VA_LIMIT) - start, t=t, line=line)

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
            sp.add(start, start + length, acc)
            if acc:
                b.map(sp, start, start + length, t, line)
        elif name == "munmap":
            start, length = _int(a[0]), _page_up(_int(a[1]))
            sp.remove(start, start + length)
            b.unmap(sp, start, start + length, t, line)
        elif name == "brk":
            new = c.ret
            if sp.brk_start is None:
                sp.brk_start = sp.brk_cur = new
                return
            old = sp.brk_cur
            if new > old:
                b.map(sp, _page_up(old), _page_up(new), t, line)
                sp.add(_page_up(old), _page_up(new), True)
            elif new < old:
                b.unmap(sp, _page_up(new), _page_up(old), t, line)
                sp.remove(_page_up(new), _page_up(old))
            sp.brk_cur = new
        elif name == "mremap":
            old, old_len, new_len = _int(a[0]), _page_up(_int(a[1])), _page_up(_int(a[2]))
            acc = sp.accessible_of(old)
            sp.remove(old, old + old_len)
            b.unmap(sp, old, old + old_len, t, line)
            sp.add(c.ret, c.ret + new_len, acc)
            if acc:
                b.map(sp, c.ret, c.ret + new_len, t, line)
        elif name == "madvise":
            if any(adv in a[2] for adv in UNMAP_ADVICE):
                start, length = _int(a[0]), _page_up(_int(a[1]))
                b.unmap(sp, start, start + length, t, line)
        elif name in ("mprotect", "pkey_mprotect"):
            start, length = _int(a[0]), _page_up(_int(a[1]))
            for lo, hi in sp.protect(start, start + length, _accessible(a[2])):
                b.map(sp, lo, hi, t, line)
    except (IndexError, ValueError):
        raise TraceError(c.source, c.line, f"{name}: cannot read its arguments") from None


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


def read_strace(paths, populate="all", lenient: bool = False) -> Trace:
    """A canonical Trace from one strace log (or the files of `strace -ff`)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if populate not in ("all", "none"):
        try:
            populate = float(populate)
        except (TypeError, ValueError):
            raise TraceError(str(paths[0]), None, f"--populate {populate!r}: all, none or a fraction") from None
        if not 0 < populate <= 1:
            raise TraceError(str(paths[0]), None, f"--populate {populate}: a fraction must be in (0, 1]")
        if populate == 1:
            populate = "all"
    compiled = _read_compiled(paths, populate, lenient)
    if compiled is not None:
        return compiled
    return _read_python(paths, populate, lenient)


def _read_python(paths: list, populate, lenient: bool) -> Trace:
    """read_strace in Python: the reference, and the reader of every log the compiled path
    leaves to it (any error, any line shape it is not sure of)."""
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


# --- the compiled path ----------------------------------------------------------------------
def _scan_file(data: bytes, source: str, file_tid: int | None, lenient: bool):
    """The calls of one file's bytes as arrays (traces/_stracescan.py), with the lines
    skipped by `lenient` counted by reason and the first of them as `_Lines` reports it
    ((line, message) or None). None where the compiled reader leaves the file to Python."""
    from ptpair.traces import _stracescan as sc

    size = data.count(b"\n") + 2  # a call per line at most, plus the last line unended
    cols = {"line": np.empty(size, np.int64), "tid": np.empty(size, np.int64), "time": np.empty(size, np.float64),
            "name": np.empty(size, np.int8), "ret": np.empty(size, np.int64), "retnone": np.empty(size, np.bool_),
            "failed": np.empty(size, np.bool_), "args": np.empty((size, 3), np.int64),
            "flags": np.empty(size, np.int8), "clone": np.empty(size, np.int64)}
    nbad = size if lenient else 1  # (strict: the first bad line gives up, nothing is recorded)
    bad = (np.empty(nbad, np.int64), np.empty(nbad, np.int64), np.empty(nbad, np.int8))  # line, offset, reason
    status, k, nb = sc.scan(np.frombuffer(data, dtype=np.uint8), -1 if file_tid is None else file_tid, lenient,
                            *cols.values(), *bad)
    if status != sc.OK:
        return None
    skipped, first_bad = {}, None
    if nb:
        reasons = {sc.BAD_NOT_STRACE: BAD_NOT_STRACE, sc.BAD_EXIT: BAD_EXIT, sc.BAD_TRUNCATED: BAD_TRUNCATED,
                   sc.BAD_NO_RESULT: BAD_NO_RESULT}
        codes, counts = np.unique(bad[2][:nb], return_counts=True)
        skipped = {reasons[int(c)]: int(n) for c, n in zip(codes, counts)}
        # the first skipped line's message, as `feed` words it: the line alone says it all
        # (a resumed call without a result has none without its start either)
        line, pos = int(bad[0][0]), int(bad[1][0])
        end = data.find(b"\n", pos)
        lp = _Lines(source, file_tid, True)
        lp.feed(line, data[pos: len(data) if end < 0 else end].decode(), last=end < 0)
        if lp.first_bad is None or lp.first_bad[0] != line:
            return None
        first_bad = lp.first_bad
    return {key: v[:k] for key, v in cols.items()}, skipped, first_bad


def _read_compiled(paths: list, populate, lenient: bool = False) -> Trace | None:
    """read_strace in compiled code: the files scanned into call arrays, merged by time,
    the process model run over them. None where either part leaves the log to the Python
    reader (which is the reference: it reads everything and names every error)."""
    from ptpair.traces import _stracemodel as sm
    from ptpair.traces._stracescan import CLONE3, FORK

    paths = [Path(p) for p in paths]
    parts, skipped, first_bad = [], {}, None
    for p in paths:
        m = re.search(r"\.(\d+)$", p.name)
        file_tid = int(m.group(1)) if (m and len(paths) > 1) else None
        try:
            data = p.read_bytes()
        except OSError:
            return None
        scanned = _scan_file(data, str(p), file_tid, lenient)
        if scanned is None:
            return None
        part, part_skipped, part_first_bad = scanned
        parts.append(part)
        for reason, n in part_skipped.items():
            skipped[reason] = skipped.get(reason, 0) + n
        first_bad = first_bad or part_first_bad
    calls = parts[0]
    if len(parts) > 1:
        calls = {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
        if np.isnan(calls["time"]).any():
            return None  # Python names the error
        order = np.argsort(calls["time"], kind="stable")
        calls = {key: v[order] for key, v in calls.items()}
    forks = ((calls["name"] >= FORK) & (calls["name"] <= CLONE3) & ~calls["failed"] & ~calls["retnone"]
             & (calls["ret"] > 0))
    ids = np.unique(np.concatenate([calls["tid"], calls["ret"][forks]]))
    child = np.full(len(forks), -1, dtype=np.int64)
    child[forks] = np.searchsorted(ids, calls["ret"][forks])
    if populate == "all":
        mode, frac = sm.POPULATE_ALL, 1.0
    elif populate == "none":
        mode, frac = sm.POPULATE_NONE, 1.0
    else:
        mode, frac = sm.POPULATE_FRACTION, float(populate)
    status, rows, times, dropped = sm.model(
        np.searchsorted(ids, calls["tid"]), calls["name"].astype(np.int64), calls["time"], calls["line"],
        calls["ret"], calls["retnone"], calls["failed"], calls["args"], calls["flags"], calls["clone"], child,
        ids, mode, frac)
    if status != sm.OK:
        return None
    trace = Trace.from_columns(source=str(paths[0]), pid=rows[:, sm.R_PID].copy(),
                               op=rows[:, sm.R_OP].astype(np.int8), va=rows[:, sm.R_VA].copy(),
                               length=rows[:, sm.R_LEN].copy(), arg=rows[:, sm.R_ARG].copy(), time=times)
    trace.lines = rows[:, sm.R_LINE].copy()
    trace.skipped = {**skipped, **({DROPPED_HIGH: int(dropped)} if dropped else {})}
    trace.first_bad = first_bad
    return trace


def looks_like_strace(head: str) -> bool:
    """Whether the first lines of a file look like strace output. A last line without its
    newline may be cut (by the read of the head, or a log strace was stopped in): it is
    not judged when lines before it are, so that a short cut log reaches the strace
    reader and its `truncated last line` message."""
    lines = head.splitlines()
    if not head.endswith("\n") and len(lines) > 1:
        lines.pop()
    for line in lines[:20]:
        line = line.strip()
        if not line:
            continue
        m = _PREFIX.match(line)
        rest = line[m.end():] if m else line
        m = _TIME.match(rest)
        rest = rest[m.end():] if m else rest
        if _CALL.match(rest) or _RESUMED.match(rest) or rest.startswith(("+++", "---")):
            continue
        return False
    return bool(head.strip())
