"""`perf script` output of page faults, memory syscalls and process events -> canonical traces.

    perf record -d -e exceptions:page_fault_user -e exceptions:page_fault_kernel \\
        -e syscalls:sys_{enter,exit}_{mmap,munmap,mremap,brk,madvise,mprotect,mlock,mlock2,mlockall,munlockall} \\
        -e sched:sched_process_exit ...
    perf script -F comm,pid,tid,time,event,trace --show-mmap-events --show-task-events

      python3  6001/6001  58617.696035: PERF_RECORD_MMAP2 6001/6001: [0x7ffc89adf000(0x21000) @ ...]: rw-p [stack]
      python3  6001/6001  58617.696132:   exceptions:page_fault_user: address=0x7f413cbc6b70 ip=... error_code=0x14

strace sees mmap, not which pages a process touches; the kernel's fault tracepoints do.
Lines are read by a compiled scanner (traces/_perfscan.py) on perf script's line grammar,
which the kmem reader shares (traces/_perfline.py); what they mean is given here.
Semantics (docs/trace-format.md#perf-logs), address spaces keyed by thread-group id (the
`pid` of `pid/tid`: threads share tables):

* records perf synthesizes at the start from /proc (time 0) describe processes that were
  running before the recording: their mappings hold pages the recording never saw, so
  they and their events are left out (counted in `Trace.skipped`);
* `PERF_RECORD_FORK(c:ct):(p:pt)` with c != p -> `fork` of c from p (a thread when c == p:
  nothing); a parent the recording never saw begin (running before it started) has
  unknown mappings, so its child is a `spawn` (empty) instead, marked in `Trace.skipped`
  (`children of unrecorded processes`) -- exact again from its `exec`;
* `PERF_RECORD_COMM exec` -> `exec` (a process first seen at its exec: `spawn`);
  `sched:sched_process_exit` with `group_dead=true` -> `exit`; processes alive at the
  end stay alive (the trace ends with them, as the machine did);
* VMAs: `mmap` -> `reserve` of the range it returned, after a `release` of it where a
  MAP_FIXED mapping replaces others; `PERF_RECORD_MMAP2` outside a syscall (the
  mappings `execve` makes: stack, program, loader, vdso) -> `reserve` (inside one it
  gives the VMA after merging, and whether it is file-backed); `munmap` -> `release`; `brk` growth -> `reserve`, shrinking -> `release`;
  `mremap` -> `release` old, `reserve` new where it moved the mapping (the moved pages:
  see below), the growth or shrinking alone where it resized in place, the VMA keeping
  its MADV_(NO)HUGEPAGE mark and PROT_NONE either way;
  `madvise(MADV_DONTNEED)` -> `dontneed`, `MADV_FREE`/`MADV_REMOVE` -> `unmap`,
  `MADV_HUGEPAGE`/`MADV_NOHUGEPAGE` mark the range for transparent huge pages;
  `mprotect` marks PROT_NONE ranges;
* what the kernel maps without a fault: `mmap` with MAP_POPULATE (not MAP_NONBLOCK) or
  MAP_LOCKED, `mlock`/`mlock2` (not MLOCK_ONFAULT), `mlockall(MCL_CURRENT)`, and every
  later mmap or brk growth after `mlockall(MCL_FUTURE)` -> `map` of the range's pages in
  accessible VMAs, with the flags a fault there would get;
* a fault (user, or kernel on a user address: the ELF loader, `read()` into a fresh
  buffer) at address A -> `map` of A's page; in an anonymous VMA where transparent huge
  pages apply (THP `always` unless MADV_NOHUGEPAGE, or `madvise` and MADV_HUGEPAGE) the map carries `MAP_THP`:
  a 2 MiB page where the aligned 2 MiB around A lies in the VMA and has no PTE table yet
  (the machine decides, docs/semantics.md#transparent-huge-page-faults), as
  `do_huge_pmd_anonymous_page` does; a page of a file-backed or shared VMA carries
  `MAP_FILE`.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ptpair.traces.format import MAP_FILE, MAP_THP, OP_CODE, Trace, TraceError
from ptpair.traces.units import PAGE_SIZE, VA_LIMIT

MAP_SHARED, MAP_FIXED, NO_FD = 0x01, 0x10, 0xFFFFFFFF
MAP_LOCKED, MAP_POPULATE, MAP_NONBLOCK = 0x2000, 0x8000, 0x10000
PROT_ACCESS = 0x7  # PROT_READ | PROT_WRITE | PROT_EXEC: a mapping without any is PROT_NONE
MLOCK_ONFAULT = 0x1  # mlock2
MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT = 0x1, 0x2, 0x4  # mlockall
MADV_DONTNEED, MADV_FREE, MADV_REMOVE, MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_DONTNEED_LOCKED = 4, 8, 9, 14, 15, 24
HUGE = 2 << 20
UNRECORDED_PARENT = "children of unrecorded processes"
BEFORE = "events of processes that began before the recording"
LOST = "events perf lost (its buffer was full)"
NOT_PERF = "not a perf script line"
THP, NOACCESS = 3, 4  # flag indices of a VMA tuple
HUGEPAGE, NOHUGEPAGE = 1, -1  # a VMA's THP flag after madvise (0: neither)


@dataclass
class _Space:
    """VMAs of one address space: sorted disjoint [start, end) with their flags."""

    vmas: list = field(default_factory=list)  # (start, end, file, thp: HUGEPAGE/NOHUGEPAGE/0, noaccess)
    brk: int | None = None
    # mlockall(MCL_FUTURE): later mappings are populated (mm->def_flags gains VM_LOCKED);
    # neither fork nor exec passes it on (mm_init keeps only VM_NOHUGEPAGE)
    lock_future: bool = False

    def copy(self) -> "_Space":
        return _Space(list(self.vmas), self.brk)

    def span(self, start, end):
        lo = bisect.bisect_left(self.vmas, (start,))
        if lo > 0 and self.vmas[lo - 1][1] > start:
            lo -= 1
        hi = bisect.bisect_left(self.vmas, (end,), lo)
        return lo, hi

    def remove(self, start, end):
        lo, hi = self.span(start, end)
        keep = []
        for v in self.vmas[lo:hi]:
            if v[0] < start:
                keep.append((v[0], start, *v[2:]))
            if v[1] > end:
                keep.append((end, v[1], *v[2:]))
        self.vmas[lo:hi] = keep

    def add(self, start, end, file, noaccess=False, thp=0):
        self.remove(start, end)
        bisect.insort(self.vmas, (start, end, file, thp, noaccess))

    def set_flag(self, start, end, index, value):
        """Set flag `index` (THP or NOACCESS) of [start, end)'s pieces of VMAs, as
        madvise and mprotect split a VMA they cover in part."""
        lo, hi = self.span(start, end)
        out = []
        for v in self.vmas[lo:hi]:
            a, b = max(v[0], start), min(v[1], end)
            if v[0] < a:
                out.append((v[0], a, *v[2:]))
            changed = list(v)
            changed[0], changed[1], changed[index] = a, b, value
            out.append(tuple(changed))
            if b < v[1]:
                out.append((b, v[1], *v[2:]))
        self.vmas[lo:hi] = out

    def pieces(self, start, end):
        """The VMAs' parts inside [start, end), in address order."""
        lo, hi = self.span(start, end)
        for v in self.vmas[lo:hi]:
            yield (max(v[0], start), min(v[1], end), *v[2:])

    def find(self, addr):
        i = self._index(addr)
        return self.vmas[i] if i >= 0 else None

    def _index(self, addr) -> int:
        i = bisect.bisect_right(self.vmas, (addr, math.inf)) - 1
        return i if i >= 0 and self.vmas[i][0] <= addr < self.vmas[i][1] else -1

    def merged(self, addr):
        """The VMA holding addr as Linux keeps it: pieces that touch with the same flags
        are one VMA (mm/vma.c merges touching anonymous mappings of the same flags), so
        a 2 MiB page may span two mmaps. None where addr is in no VMA."""
        i = self._index(addr)
        if i < 0:
            return None
        lo = hi = i
        v = self.vmas
        while lo > 0 and v[lo - 1][1] == v[lo][0] and v[lo - 1][2:] == v[i][2:]:
            lo -= 1
        while hi + 1 < len(v) and v[hi][1] == v[hi + 1][0] and v[hi + 1][2:] == v[i][2:]:
            hi += 1
        return (v[lo][0], v[hi][1], *v[i][2:])


class _Builder:
    def __init__(self, thp_mode: str):
        self.thp_mode = thp_mode
        self.rows: list[tuple] = []  # (pid, op, va, length, arg, page_size, time, line)
        self.spaces: dict[int, _Space] = {}
        self.pending: dict[int, tuple] = {}  # tid -> (syscall, args, line) awaiting its exit
        self.skipped = {UNRECORDED_PARENT: 0, BEFORE: 0, LOST: 0}

    def emit(self, pid, op, va=0, length=0, arg=0, t=math.nan, line=0):
        self.rows.append((pid, OP_CODE[op], va, length, arg, t, line))

    def space(self, pid) -> _Space | None:
        """The address space of a process whose beginning the recording saw, else None
        (counted: it was running before, its mappings are unknown)."""
        sp = self.spaces.get(pid)
        if sp is None:
            self.skipped[BEFORE] += 1
        return sp

    def reserve(self, pid, sp, start, end, file, t, line, noaccess=False, populate=False, thp=0):
        if end <= start or end > VA_LIMIT:
            return
        sp.add(start, end, file, noaccess, thp)
        self.emit(pid, "reserve", start, end - start, t=t, line=line)
        if populate or sp.lock_future:
            self.populate(pid, sp, start, end, t, line)

    def thp_applies(self, vma) -> bool:
        """Whether a fault in this VMA can get a transparent huge page: anonymous, and THP
        `always` unless MADV_NOHUGEPAGE, or `madvise` and MADV_HUGEPAGE
        (mm/huge_memory.c `__thp_vma_allowable_orders`)."""
        if vma[2]:
            return False
        if self.thp_mode == "always":
            return vma[THP] != NOHUGEPAGE
        return self.thp_mode == "madvise" and vma[THP] == HUGEPAGE

    def populate(self, pid, sp, start, end, t, line):
        """Map every page of [start, end) that lies in an accessible VMA, as the kernel's
        populate does without a fault (mm/gup.c `populate_vma_page_range`, which skips
        PROT_NONE VMAs): the flags are those a fault there would get. One `map` per run
        of pages with the same flags; an aligned 2 MiB run where THP applies carries
        MAP_THP (the machine maps the huge page where no PTE table is there yet)."""
        for a, e, file, thp, noaccess in sp.pieces(start, end):
            if noaccess:
                continue
            vma = sp.merged(a)
            run_start, run_flags = a, None
            v = a
            while v < e:
                base = v & ~(HUGE - 1)
                stop = min(e, base + HUGE)
                if file:
                    flags = MAP_FILE
                elif self.thp_applies(vma) and vma[0] <= base and base + HUGE <= vma[1]:
                    flags = MAP_THP
                else:
                    flags = 0
                if run_flags is not None and flags != run_flags:
                    self.emit(pid, "map", run_start, v - run_start, run_flags, t=t, line=line)
                    run_start = v
                run_flags = flags
                v = stop
            if run_flags is not None:
                self.emit(pid, "map", run_start, e - run_start, run_flags, t=t, line=line)

    def release(self, pid, sp, start, end, t, line, op="release"):
        end = min(end, VA_LIMIT)
        if end <= start:
            return
        if op == "release":
            sp.remove(start, end)
        self.emit(pid, op, start, end - start, t=t, line=line)

    def fault(self, pid, addr, t, line):
        if addr >= VA_LIMIT or addr < 0:
            return
        sp = self.space(pid)
        if sp is None:
            return
        v = sp.merged(addr)
        page = addr & ~(PAGE_SIZE - 1)
        flags = 0
        if v is not None:
            if v[2]:
                flags = MAP_FILE
            elif self.thp_applies(v):
                base = addr & ~(HUGE - 1)
                if v[0] <= base and base + HUGE <= v[1]:
                    flags = MAP_THP
        self.emit(pid, "map", page, PAGE_SIZE, flags, t=t, line=line)


def _syscall_exit(b: _Builder, pid, tid, name, ret, t, line):
    call = b.pending.pop(tid, None)
    if call is None or call[0] != name:
        return
    args = call[1]
    sp = b.space(pid)
    if sp is None:
        return
    if name == "brk":
        if sp.brk is None:
            sp.brk = ret
            return
        old, new = _page_up(sp.brk), _page_up(ret)
        if new > old:  # populated too under mlockall(MCL_FUTURE) (do_brk_flags, mm_populate)
            b.reserve(pid, sp, old, new, False, t, line)
        elif new < old:
            b.release(pid, sp, new, old, t, line)
        sp.brk = ret
        return
    if ret < 0:  # a failed call (-errno) changes nothing
        return
    if name == "mmap":
        start, length, flags = ret, _page_up(args["len"]), args["flags"]
        file = args.get("file", flags & MAP_SHARED != 0 or args["fd"] != NO_FD)
        if flags & MAP_FIXED and sp.span(start, start + length)[1] > sp.span(start, start + length)[0]:
            b.release(pid, sp, start, start + length, t, line)  # MAP_FIXED over mappings: unmapped first
        # mm/mmap.c do_mmap: a VM_LOCKED mapping, or MAP_POPULATE without MAP_NONBLOCK,
        # is populated before the call returns
        populate = flags & MAP_LOCKED != 0 or flags & (MAP_POPULATE | MAP_NONBLOCK) == MAP_POPULATE
        b.reserve(pid, sp, start, start + length, file, t, line, args.get("prot", PROT_ACCESS) & PROT_ACCESS == 0,
                  populate)
    elif name == "munmap":
        start, length = args["addr"], _page_up(args["len"])
        b.release(pid, sp, start, start + length, t, line)
    elif name == "mremap":
        old, old_len, new_len = args["addr"], _page_up(args["old_len"]), _page_up(args["new_len"])
        v = sp.find(old)
        # the VMA keeps its flags, grown in place or moved (mm/mremap.c: vma_expand, copy_vma):
        # its MADV_(NO)HUGEPAGE mark and its PROT_NONE go with it
        file, thp, noaccess = (bool(v[2]), v[THP], bool(v[NOACCESS])) if v else (False, 0, False)
        if ret == old:  # resized in place: the pages stay
            if new_len > old_len:
                b.reserve(pid, sp, old + old_len, old + new_len, file, t, line, noaccess, thp=thp)
            elif new_len < old_len:
                b.release(pid, sp, old + new_len, old + old_len, t, line)
        else:
            b.release(pid, sp, old, old + old_len, t, line)
            b.reserve(pid, sp, ret, ret + new_len, file, t, line, noaccess, thp=thp)
    elif name == "madvise":
        start, length, advice = args["start"], _page_up(args["len_in"]), args["behavior"]
        if advice in (MADV_DONTNEED, MADV_DONTNEED_LOCKED):
            b.release(pid, sp, start, start + length, t, line, "dontneed")
        elif advice in (MADV_FREE, MADV_REMOVE):
            b.release(pid, sp, start, start + length, t, line, "unmap")
        elif advice in (MADV_HUGEPAGE, MADV_NOHUGEPAGE):
            sp.set_flag(start, start + length, THP, HUGEPAGE if advice == MADV_HUGEPAGE else NOHUGEPAGE)
    elif name == "mprotect":
        start = args["start"] & ~(PAGE_SIZE - 1)
        sp.set_flag(start, _page_up(args["start"] + args["len"]), NOACCESS, args["prot"] & PROT_ACCESS == 0)
    elif name in ("mlock", "mlock2"):
        # mm/mlock.c do_mlock: the range's pages are populated unless MLOCK_ONFAULT
        if not args.get("flags", 0) & MLOCK_ONFAULT:
            b.populate(pid, sp, args["start"] & ~(PAGE_SIZE - 1), _page_up(args["start"] + args["len"]), t, line)
    elif name == "mlockall":
        flags = args["flags"]
        if not flags & MCL_ONFAULT:
            if flags & MCL_CURRENT:
                b.populate(pid, sp, 0, VA_LIMIT, t, line)
            sp.lock_future = bool(flags & MCL_FUTURE)
        else:
            sp.lock_future = False  # MCL_ONFAULT: locked on fault only, nothing populated
    elif name == "munlockall":
        sp.lock_future = False


def _page_up(x: int) -> int:
    return -(-x // PAGE_SIZE) * PAGE_SIZE


SYSCALLS = ("mmap", "munmap", "mremap", "brk", "madvise", "mprotect", "mlock", "mlock2", "mlockall", "munlockall")
# each syscall's fields in the order its sys_enter tracepoint prints them (the syscall's arguments)
FIELDS = {"mmap": ("addr", "len", "prot", "flags", "fd", "off"), "munmap": ("addr", "len"),
          "mremap": ("addr", "old_len", "new_len", "flags", "new_addr"), "brk": ("brk",),
          "madvise": ("start", "len_in", "behavior"), "mprotect": ("start", "len", "prot"),
          "mlock": ("start", "len"), "mlock2": ("start", "len", "flags"), "mlockall": ("flags",), "munlockall": ()}


def convert_bytes(data: bytes, source: str, thp_mode: str = "madvise", lenient: bool = False) -> Trace:
    """The canonical trace of `perf script` text (see the module docstring). Lines are
    read by the compiled scanner (traces/_perfscan.py: perf script's line grammar, shared
    with the kmem reader); their meaning is given here, in log order."""
    from ptpair.traces import _perfscan as ps

    buf = np.frombuffer(data, dtype=np.uint8)
    cap = data.count(b"\n") + 1
    i64 = lambda: np.zeros(cap, np.int64)  # noqa: E731
    line_no, kind, status = i64(), np.zeros(cap, np.int8), np.zeros(cap, np.int8)
    syscall, pid, tid, time = np.zeros(cap, np.int8), i64(), i64(), np.zeros(cap, np.float64)
    values, count = np.zeros((cap, ps.MAX_VALUES), np.int64), i64()
    line_a, event_a, line_b = i64(), i64(), i64()
    names, lengths = ps.syscall_table(SYSCALLS)
    rows, _ = ps.scan(buf, names, lengths, line_no, kind, status, syscall, pid, tid, time, values, count, line_a,
                      event_a, line_b)
    b = _Builder(thp_mode)
    first_bad = None
    bad = 0
    for r, (no, kd, st, sc, p, td, t, n) in enumerate(zip(
            line_no[:rows].tolist(), kind[:rows].tolist(), status[:rows].tolist(), syscall[:rows].tolist(),
            pid[:rows].tolist(), tid[:rows].tolist(), time[:rows].tolist(), count[:rows].tolist())):
        if st != ps.OK:
            if st == ps.NOT_PERF:
                text = data[line_a[r]:line_b[r]].decode("utf-8", "replace").strip()
                why = f"not a perf script line (perf script -F comm,pid,tid,time,event,trace): {text[:60]!r}"
            else:
                text = data[event_a[r]:line_b[r]].decode("utf-8", "replace").strip()
                why = f"cannot read this event: {text[:60]!r}"
            if not lenient:
                raise TraceError(source, no, why)
            bad += 1
            first_bad = first_bad or (no, why)
            continue
        v = values[r].tolist()
        try:
            _event(b, kd, p, td, t, no, SYSCALLS[sc] if sc >= 0 else None, v, n)
        except KeyError as e:  # a syscall's field missing
            why = f"cannot read this event: {data[event_a[r]:line_b[r]].decode('utf-8', 'replace')[:60]!r}"
            if not lenient:
                raise TraceError(source, no, why) from e
            bad += 1
            first_bad = first_bad or (no, why)
    rows_out = b.rows
    cols = list(zip(*rows_out)) if rows_out else [[]] * 7
    trace = Trace.from_columns(source=source, pid=list(cols[0]), op=np.asarray(cols[1], np.int8), va=list(cols[2]),
                               length=list(cols[3]), arg=list(cols[4]), time=list(cols[5]))
    trace.lines = np.asarray(cols[6], np.int64) if rows_out else None
    trace.skipped = {k: v for k, v in b.skipped.items() if v}
    if bad:
        trace.skipped[NOT_PERF] = bad
        trace.first_bad = first_bad
    return trace


def _event(b: _Builder, kind, pid, tid, t, no, syscall, v, n):
    from ptpair.traces import _perfscan as ps

    if kind >= ps.KIND_MMAP2:  # perf's own records
        if t == 0.0 and kind != ps.KIND_LOST:
            return  # synthesized by perf from /proc for what ran before the recording began
        if kind == ps.KIND_MMAP2:
            start, length, file, p = v[0], v[1], bool(v[2]), v[3]
            call = b.pending.get(tid)
            if call is not None:
                # made by a syscall (mmap, brk, mremap): the record gives the VMA after
                # merging with its neighbours, the syscall's exit the range it mapped
                call[1]["file"] = file
                return
            sp = b.space(p)
            if sp is not None:  # made by execve: the stack, the program, its loader, the vdso
                b.reserve(p, sp, start, start + _page_up(length), file, t, no)
        elif kind == ps.KIND_FORK:
            child, parent = v[0], v[1]
            if child == parent or child in b.spaces:
                return  # a thread; or a process already seen (its fork came late)
            if parent in b.spaces:
                b.emit(child, "fork", arg=parent, t=t, line=no)
                b.spaces[child] = b.spaces[parent].copy()
            else:
                b.skipped[UNRECORDED_PARENT] += 1
                b.emit(child, "spawn", t=t, line=no)
                b.spaces[child] = _Space()
        elif kind == ps.KIND_EXEC:
            p = v[0] if v[0] >= 0 else pid
            b.emit(p, "exec" if p in b.spaces else "spawn", t=t, line=no)
            b.spaces[p] = _Space()
        elif kind == ps.KIND_LOST:
            b.skipped[LOST] += v[0]
        return  # other records (COMM, EXIT, MMAP of the kernel ...) change no table
    if kind == ps.KIND_FAULT:
        b.fault(pid, v[0], t, no)
    elif kind == ps.KIND_ENTER:
        names = FIELDS[syscall]
        if n < len(names):
            raise KeyError(names[n])
        b.pending[tid] = (syscall, dict(zip(names, v)), no)
    elif kind == ps.KIND_EXIT:
        _syscall_exit(b, pid, tid, syscall, v[0], t, no)
    elif kind == ps.KIND_PROCESS_EXIT:
        if v[0] and pid in b.spaces:
            b.emit(pid, "exit", t=t, line=no)
            del b.spaces[pid]


THP_MODES = ("always", "madvise", "never")
DEFAULT_THP_MODE = "madvise"  # Linux's default (CONFIG_TRANSPARENT_HUGEPAGE_MADVISE) and most distributions'


def read_perf(path, thp_mode: str = DEFAULT_THP_MODE, lenient: bool = False) -> Trace:
    """The canonical trace of a `perf script` text file (see the module docstring).
    `thp_mode`: the recorded machine's transparent-huge-page mode (THP_MODES; `ptpair
    record perf` passes the recording machine's). A default that does not depend on the
    machine converting keeps a conversion the same everywhere."""
    path = Path(path)
    if thp_mode not in THP_MODES:
        raise ValueError(f"unknown THP mode {thp_mode!r}; choose from {', '.join(THP_MODES)}")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise TraceError(str(path), None, f"cannot read: {e.strerror or e}") from None
    return convert_bytes(data, str(path), thp_mode, lenient)
