"""The canonical trace format: columns, op codes, page sizes and validation.

A trace is one row per event, in order (see docs/trace-format.md). In memory it is a
`Trace`: one numpy array per column, never a list of Python objects. Every reader
(CSV, Parquet, and later strace, /proc snapshots, perf kmem) produces a `Trace`, and
the simulator consumes the dense `EventArrays` that `encode()` derives from it.

Nothing here knows about memory management: `traces` comes before `sim`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ptpair.errors import TraceError  # noqa: F401  (re-exported: every reader raises it)
# the x86-64 user address space, as the trace format sees it (re-exported)
from ptpair.traces.units import HUGE_1G_SHIFT, HUGE_2M_SHIFT, PAGE_SHIFT, PAGE_SIZE, VA_BITS, VA_LIMIT  # noqa: F401

MAX_ORDER = 10  # buddy orders 0..MAX_ORDER (Linux x86-64: MAX_PAGE_ORDER)
N_ORDERS = MAX_ORDER + 1  # free lists, one per order

# page_size column value -> size class (0: 4 KiB, 1: 2 MiB, 2: 1 GiB)
PAGE_SIZES = (1 << PAGE_SHIFT, 1 << HUGE_2M_SHIFT, 1 << HUGE_1G_SHIFT)

# --- operations ---------------------------------------------------------------------
# The code of an op is its index in OPS; the compiled core switches on these codes.
# VMA events (reserve, release, dontneed) come last, so that the older codes keep theirs:
# a process's mmap, munmap and madvise(MADV_DONTNEED) of an address range, for Linux's
# page-table reclaim (docs/semantics.md#page-table-reclaim)
OPS = ("spawn", "map", "unmap", "vmm", "fork", "exec", "exit", "kalloc", "kfree", "reserve", "release", "dontneed")
(OP_SPAWN, OP_MAP, OP_UNMAP, OP_VMM, OP_FORK, OP_EXEC, OP_EXIT, OP_KALLOC, OP_KFREE, OP_RESERVE, OP_RELEASE,
 OP_DONTNEED) = range(len(OPS))
OP_CODE = {name: code for code, name in enumerate(OPS)}

REQUIRED_COLUMNS = ("pid", "op", "va", "length", "arg", "order")
OPTIONAL_COLUMNS = ("page_size", "time", "comm", "migratetype", "gfp_flags")
# kalloc migratetypes, numbered as Linux's enum migratetype (perf kmem prints the number)
MIGRATETYPES = ("unmovable", "movable", "reclaimable")
ALL_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS

# Which cells an op must have (others may be empty). Kernel allocations belong to no
# process: a kalloc or kfree may leave its pid empty, which reads as pid 0.
NEEDS_PID = frozenset(range(len(OPS))) - {OP_KALLOC, OP_KFREE}
NEEDS_RANGE = frozenset((OP_MAP, OP_UNMAP, OP_RESERVE, OP_RELEASE, OP_DONTNEED))
NEEDS_ARG = frozenset((OP_FORK, OP_KALLOC, OP_KFREE))
NEEDS_ORDER = frozenset((OP_KALLOC,))
# A map's arg: flags, 0 when empty. MAP_FILE: the pages are file-backed (page cache, shmem,
# DAX or hugetlbfs), so Linux deposits no PTE table with a 2 MiB one (docs/semantics.md)
MAP_FILE = 1
# MAP_THP: a 4-KiB map in a region where transparent huge pages apply (a fault recorded by
# `perf`): the page comes as a 2 MiB anonymous page when the aligned 2 MiB around it has
# no table or page yet, as Linux's do_huge_pmd_anonymous_page maps it (docs/semantics.md)
MAP_THP = 2
MAP_FLAGS_MAX = MAP_FILE | MAP_THP


def op_mask(op: np.ndarray, ops) -> np.ndarray:
    """Boolean mask of rows whose op is in `ops` (a lookup table: one pass, no sort)."""
    table = np.zeros(256, bool)
    table[list(ops)] = True
    return table[op.view(np.uint8)]


class RowChecker:
    """Checks rows of one chunk: strict (raise `file:line` at the first bad row) or
    lenient (mark bad rows to be skipped and count them by reason)."""

    def __init__(self, source: str, first_line: int, n: int, lenient: bool = False):
        self.source, self.first_line, self.lenient = source, first_line, lenient
        self.bad = np.zeros(n, bool)
        self.counts: dict[str, int] = {}
        self.first: tuple[int, str] | None = None  # (row, message) of the earliest bad row

    def check(self, mask, reason: str, message) -> None:
        """Rows in `mask` are bad for `reason`; message(r) describes row r."""
        mask = np.asarray(mask, bool) & ~self.bad
        if not mask.any():
            return
        r = int(np.flatnonzero(mask)[0])
        if not self.lenient:
            raise TraceError(self.source, self.first_line + r, message(r))
        if self.first is None or r < self.first[0]:
            self.first = (r, message(r))
        self.counts[reason] = self.counts.get(reason, 0) + int(mask.sum())
        self.bad |= mask


@dataclass
class Trace:
    """A canonical trace held as columns.

    pid, arg: int64; op: int8 code (index into OPS); va, length: int64 bytes
    (0 where unused); order: int8 (0 where unused); page_size: int64 bytes (4096,
    2097152 or 1073741824); time: float64 seconds (NaN where absent); comm: object
    array of str or None. `source` names the file for error messages.
    """

    pid: np.ndarray
    op: np.ndarray
    va: np.ndarray
    length: np.ndarray
    arg: np.ndarray
    order: np.ndarray
    page_size: np.ndarray
    time: np.ndarray | None = None
    comm: np.ndarray | None = None
    migratetype: np.ndarray | None = None  # int8 0..2 (MIGRATETYPES), kalloc only
    gfp_flags: np.ndarray | None = None  # object array of str (kernel kalloc traces; kept, not used)
    source: str = "<trace>"
    lines: np.ndarray | None = None  # line of each row, where bad rows were skipped (--lenient)
    skipped: dict = field(default_factory=dict)  # rows skipped by reason (--lenient)
    first_bad: tuple | None = None  # (line, message) of the earliest bad row skipped
    machine: dict | None = None  # the recorded machine (traces/machineinfo.py), if known

    def line_of(self, row: int, first_line: int = 2) -> int:
        return int(self.lines[row]) if self.lines is not None else first_line + row

    def drop(self, bad: np.ndarray, first_line: int) -> "Trace":
        """The trace without the rows in `bad`; kept rows remember their lines."""
        keep = ~bad
        lines = (self.lines if self.lines is not None else first_line + np.arange(len(self)))[keep]
        cols = {}
        for name in ("pid", "op", "va", "length", "arg", "order", "page_size", "time", "comm", "migratetype",
                     "gfp_flags"):
            v = getattr(self, name)
            cols[name] = None if v is None else v[keep]
        return Trace(**cols, source=self.source, lines=lines, skipped=dict(self.skipped), first_bad=self.first_bad,
                     machine=self.machine)

    def __len__(self) -> int:
        return len(self.op)

    def to_dataframe(self):
        """The trace as a pandas DataFrame with the canonical columns (op as strings)."""
        import pandas as pd

        df = pd.DataFrame(
            {
                "pid": self.pid,
                "op": pd.Categorical.from_codes(self.op, categories=list(OPS)),
                "va": self.va,
                "length": self.length,
                "arg": self.arg,
                "order": self.order,
                "page_size": self.page_size,
            }
        )
        for name in OPTIONAL_COLUMNS[1:]:  # (page_size is always there)
            if getattr(self, name) is not None:
                df[name] = getattr(self, name)
        return df

    @classmethod
    def from_columns(cls, source: str = "<trace>", **cols) -> "Trace":
        """Build a trace from Python sequences; `op` may hold names or codes.

        Missing optional columns get their defaults; used by tests, generators and
        notebook users. The result is validated like a file.
        """
        n = len(cols["op"])
        ops = cols["op"]
        if n and isinstance(ops[0], str):
            try:
                op = np.array([OP_CODE[o] for o in ops], dtype=np.int8)
            except KeyError as e:  # pragma: no cover - programming error path
                raise TraceError(source, None, f"unknown op {e.args[0]!r}") from None
        else:
            op = np.asarray(ops, dtype=np.int8)

        def col(name, dtype, default):
            v = cols.get(name)
            if v is None:
                return np.full(n, default, dtype=dtype)
            return np.asarray(v, dtype=dtype)

        t = cls(
            pid=col("pid", np.int64, 0),
            op=op,
            va=col("va", np.int64, 0),
            length=col("length", np.int64, 0),
            arg=col("arg", np.int64, 0),
            order=col("order", np.int8, 0),
            page_size=col("page_size", np.int64, PAGE_SIZE),
            time=None if cols.get("time") is None else np.asarray(cols["time"], np.float64),
            comm=None if cols.get("comm") is None else np.asarray(cols["comm"], object),
            migratetype=None if cols.get("migratetype") is None else np.asarray(cols["migratetype"], np.int8),
            gfp_flags=None if cols.get("gfp_flags") is None else np.asarray(cols["gfp_flags"], object),
            source=source,
        )
        validate(t)
        return t


def validate(trace: Trace, first_line: int = 2, checker: RowChecker | None = None) -> None:
    """Check every row's fields (not the process life cycle, which replay checks).

    Raises TraceError naming the first bad row (or, with a lenient checker, marks bad
    rows). `first_line` is the line number of row 0 (2 for a CSV with a header).
    """
    op = trace.op
    fail = (checker or RowChecker(trace.source, first_line, len(trace))).check
    fail((op < 0) | (op >= len(OPS)), "unknown op", lambda r: f"unknown op code {int(op[r])}")
    rng = op_mask(op, NEEDS_RANGE)
    fail(rng & (trace.length <= 0), "bad length",
         lambda r: f"{OPS[op[r]]} needs a length > 0 bytes, got {int(trace.length[r])}")
    fail(rng & ((trace.va < 0) | (trace.va >= VA_LIMIT)), "address outside [0, 2^47)",
         lambda r: f"address {int(trace.va[r]):#x} is outside the user half [0, 2^47)")
    # va + length <= 2^47, written so that it cannot overflow int64
    fail(rng & (trace.length > VA_LIMIT - trace.va), "address outside [0, 2^47)",
         lambda r: f"range {int(trace.va[r]):#x}+{int(trace.length[r]):#x} ends beyond 2^47")
    ps_ok = (trace.page_size == PAGE_SIZES[0]) | (trace.page_size == PAGE_SIZES[1]) | (trace.page_size == PAGE_SIZES[2])
    fail(~ps_ok, "bad page size",
         lambda r: f"page_size {int(trace.page_size[r])} is not one of 4096, 2097152, 1073741824")
    fail((op == OP_MAP) & ((trace.arg < 0) | (trace.arg > MAP_FLAGS_MAX)), "bad map flags",
         lambda r: f"a map's arg is its flags: 0 (anonymous), {MAP_FILE} (file-backed), {MAP_THP} (transparent "
                   f"huge page where it can be) or {MAP_FILE | MAP_THP}, got {int(trace.arg[r])}")
    ka = op == OP_KALLOC
    fail(ka & ((trace.order < 0) | (trace.order > MAX_ORDER)), f"order outside 0..{MAX_ORDER}",
         lambda r: f"order {int(trace.order[r])} is outside 0..{MAX_ORDER}")
    fail(trace.pid < 0, "negative pid", lambda r: f"negative pid {int(trace.pid[r])}")
    if trace.migratetype is not None:
        mt = trace.migratetype
        fail(ka & ((mt < 0) | (mt >= len(MIGRATETYPES))), "bad migratetype",
             lambda r: f"migratetype {int(mt[r])} is not 0 (unmovable), 1 (movable) or 2 (reclaimable)")


@dataclass
class EventArrays:
    """The dense event layout the compiled core replays.

    pid and (for fork) arg are dense process indices 0..n_procs-1; for kalloc/kfree arg
    is the trace's handle itself. psz is the page-size class (0: 4 KiB,
    1: 2 MiB, 2: 1 GiB); mt the kalloc migratetype (0 unmovable when absent). `pids[i]`
    is the trace pid of dense index i.
    """

    op: np.ndarray
    pid: np.ndarray
    va: np.ndarray
    length: np.ndarray
    arg: np.ndarray
    order: np.ndarray
    psz: np.ndarray
    mt: np.ndarray
    pids: np.ndarray
    n_procs: int = field(init=False)

    def __post_init__(self):
        self.n_procs = len(self.pids)

    def __len__(self) -> int:
        return len(self.op)


class PidMap:
    """Trace pids -> dense process indices, kept across the chunks of one trace.

    Indices are handed out in order of first appearance within each chunk's sorted new
    pids; `pids[i]` is the trace pid of index i. Vectorised: one searchsorted per chunk.
    """

    def __init__(self):
        self.sorted = np.zeros(0, np.int64)  # known pids, sorted
        self.index = np.zeros(0, np.int64)  # their dense indices
        self.pids = np.zeros(0, np.int64)  # dense index -> pid

    def _add(self, uniq: np.ndarray) -> None:
        """Give the pids of `uniq` (sorted, distinct) not yet known the next indices."""
        new = np.setdiff1d(uniq, self.sorted, assume_unique=True)
        if len(new):
            start = len(self.pids)
            self.pids = np.concatenate([self.pids, new])
            allp = np.concatenate([self.sorted, new])
            alli = np.concatenate([self.index, np.arange(start, start + len(new))])
            order = np.argsort(allp, kind="stable")
            self.sorted, self.index = allp[order], alli[order]

    def map(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, np.int64)
        if len(values) == 0:
            return np.zeros(0, np.int64)
        lo, hi = int(values.min()), int(values.max())
        if lo == hi:  # one pid in the chunk (an allocator-only trace: all 0): no pass but the fill
            self._add(np.array([lo], np.int64))
            return np.full(len(values), self.index[np.searchsorted(self.sorted, lo)], np.int64)
        dense = hi - lo < (1 << 22)  # small pid range: O(n) counting instead of sorting
        uniq = (np.flatnonzero(np.bincount(values - lo, minlength=hi - lo + 1)) + lo) if dense else np.unique(values)
        self._add(uniq)
        if dense:
            lut = np.zeros(hi - lo + 1, np.int64)
            sel = (self.sorted >= lo) & (self.sorted <= hi)
            lut[self.sorted[sel] - lo] = self.index[sel]
            return lut[values - lo]
        return self.index[np.searchsorted(self.sorted, values)]


def _size_classes(page_size: np.ndarray) -> np.ndarray:
    """int8 page-size class per row (0: 4 KiB, 1: 2 MiB, 2: 1 GiB) of valid page sizes."""
    n = len(page_size)
    if n and page_size.strides == (0,) and int(page_size[0]) in PAGE_SIZES:  # a read-only broadcast
        return np.full(n, PAGE_SIZES.index(int(page_size[0])), np.int8)
    psz = np.zeros(n, dtype=np.int8)
    psz[page_size == PAGE_SIZES[1]] = 1
    psz[page_size == PAGE_SIZES[2]] = 2
    return psz


def encode(trace: Trace, pid_map: PidMap | None = None) -> EventArrays:
    """Dense, contiguous arrays for the core (vectorised; no per-row Python).

    Pass the same `pid_map` for every chunk of one trace."""
    pid_map = pid_map or PidMap()
    op = np.ascontiguousarray(trace.op, dtype=np.int8)
    is_fork = op == OP_FORK
    n = len(op)
    arg = np.ascontiguousarray(trace.arg, dtype=np.int64)
    if is_fork.any():  # a fork's arg is its parent's pid (pid is the child): dense too
        inv = pid_map.map(np.concatenate([trace.pid, trace.arg[is_fork]]))
        pid = inv[:n]
        arg = arg.copy()
        arg[is_fork] = inv[n:]
    else:
        pid = pid_map.map(trace.pid)
    return EventArrays(
        op=_writable(op, np.int8),
        pid=pid.astype(np.int32),
        va=_writable(trace.va, np.int64),
        length=_writable(trace.length, np.int64),
        arg=_writable(arg, np.int64),
        order=_writable(trace.order, np.int8),
        psz=_size_classes(trace.page_size),
        mt=(np.zeros(n, np.int8) if trace.migratetype is None else _writable(trace.migratetype, np.int8)),
        pids=pid_map.pids,
    )


def _writable(a: np.ndarray, dtype) -> np.ndarray:
    """`a` as a contiguous, writable array of `dtype` (copied only if it is not one).

    The compiled core is specialised on its arrays' types, and numba's types tell
    read-only arrays (Arrow's buffers seen through numpy) from writable ones: one kind
    keeps one compiled replay loop (each one is compiled separately, and compiling is slow)."""
    a = np.ascontiguousarray(a, dtype=dtype)
    return a if a.flags.writeable else a.copy()
