"""`perf script` output of the kernel's page-allocator tracepoints -> canonical traces.

    perf record -e kmem:mm_page_alloc -e kmem:mm_page_free -e kmem:mm_page_free_batched -a
    perf script
      gcc  3324 [000]  8054.731632: kmem:mm_page_alloc: page=0x117bfc pfn=0x117bfc order=0 migratetype=1 gfp_flags=...
      gcc  3324 [000]  8054.731700: kmem:mm_page_free: page=0x117bfc pfn=0x117bfc order=0

Semantics (docs/trace-format.md#perf-kmem-logs):

* every `mm_page_alloc` becomes a `kalloc` of its order; its handle is its own row number,
  so every allocation has a handle of its own;
* a free (`mm_page_free`, or `mm_page_free_batched`, order 0) of a pfn that starts a live
  allocation frees it (`kfree` of that handle);
* other frees -- of pages allocated before the recording began -- are counted
  (`unmatched_frees`) and dropped; a free right after a free of the same pfn is the
  kernel tracing one free twice (mm_page_free_batched and mm_page_free), counted as
  `repeated_frees` and dropped;
* an allocation of a pfn that is still live means the recording lost its free: the
  earlier allocation stays allocated (it is never freed), the new one gets its own
  handle, and such cases are counted (`lost_frees`);
* an allocation that failed (`page=(nil)` or pfn 0 with no page) is counted and dropped;
* `migratetype` is kept (Linux's numbering; 3 highatomic -> 0 unmovable, 4 CMA -> 1
  movable, anything else -> 0) and `gfp_flags` is kept as a string column; the event's
  task pid is the row's pid and its command the `comm`.

Parsing is one compiled pass over the file's bytes (traces/_kmemscan.py; a log over
PARALLEL_BYTES is scanned as two halves on two threads). Strings (commands, gfp flags)
repeat across millions of lines: they are numbered in compiled code
(`_kmemscan.intern_ranges`, a hash table whose hits are confirmed byte by byte) and each
distinct one is decoded once, into one shared Python str. The pairing of allocations
with frees is a stable sort by pfn and a shift: no Python step per line.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ptpair.traces.format import MAX_ORDER, OP_CODE, Trace, TraceError

_MT_MAP = {0: 0, 1: 1, 2: 2, 3: 0, 4: 1}


def _mark(mask, reason: str, message: str, source: str, lines, lenient: bool, bad: np.ndarray, counts: dict,
          first_bad: list):
    mask = np.asarray(mask, bool) & ~bad
    if not mask.any():
        return
    r = int(np.flatnonzero(mask)[0])
    if not lenient:
        raise TraceError(source, int(lines[r]), message)
    counts[reason] = counts.get(reason, 0) + int(mask.sum())
    if not first_bad or lines[r] < first_bad[0][0]:
        first_bad[:] = [(int(lines[r]), message)]
    bad |= mask


def _strings(data: bytes, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Object array of the byte ranges [starts, ends) of data, decoded and stripped (empty:
    None); each distinct string is decoded once and is one Python object (commands and
    gfp flags repeat), numbered in compiled code (_kmemscan.intern_ranges)."""
    from ptpair.traces._kmemscan import intern_ranges

    if len(starts) == 0:
        return np.zeros(0, object)
    ids, reps = intern_ranges(np.frombuffer(data, dtype=np.uint8), starts, ends)
    words = np.array([data[a:max(a, b)].decode("utf-8", "replace").strip() or None
                      for a, b in zip(starts[reps].tolist(), ends[reps].tolist())] + [None], dtype=object)
    return words[ids]


PARALLEL_BYTES = 64 << 20  # logs larger than this are scanned as two halves, one per thread


def _scan_part(data: bytes, a: int, b: int):
    """Scan the whole lines data[a:b]: (rows, lines, columns), byte ranges relative to a."""
    from ptpair.traces import _kmemscan as ks

    cap = data.count(b"\n", a, b) + 1  # (bytes.count: np.count_nonzero(buf == 10) makes a file-sized mask)
    i64 = lambda: np.zeros(cap, np.int64)  # noqa: E731
    cols = [i64(), np.zeros(cap, np.int8), np.zeros(cap, np.int8), i64(), np.zeros(cap, np.float64), i64(), i64(),
            i64(), np.zeros(cap, np.bool_), i64(), i64(), i64(), i64()]
    k, n_lines = ks.scan(np.frombuffer(data, dtype=np.uint8)[a:b], ks._NEEDLE, *cols)
    return k, n_lines, [c[:k] for c in cols]


def _scan(data: bytes):
    """_kmemscan.scan over the whole log: (rows, lines, columns). A large log is cut at a
    line boundary near its middle and the halves scanned on two threads (the scan holds
    no GIL and lines are independent); the second half's line numbers and byte ranges
    are moved to the whole file's."""
    mid = data.find(b"\n", len(data) // 2) + 1 if len(data) >= PARALLEL_BYTES else 0
    if mid <= 0 or mid >= len(data):
        return _scan_part(data, 0, len(data))
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(lambda ab: _scan_part(data, *ab), ((0, mid), (mid, len(data))))
    k1, lines1, c1 = first
    k2, lines2, c2 = second
    c2[0] += lines1  # line numbers
    for j in (9, 10, 11, 12):  # comm and gfp byte ranges
        c2[j] += mid
    return k1 + k2, lines1 + lines2, [np.concatenate([x, y]) for x, y in zip(c1, c2)]


def read_kmem(path: str | os.PathLike, lenient: bool = False) -> Trace:
    """A canonical trace of kalloc/kfree events from a perf script kmem log."""
    path = Path(path)
    source = str(path)
    if not path.exists():
        raise TraceError(source, None, "no such file")
    data = path.read_bytes()
    if b"\x00" in data:
        raise TraceError(source, data[: data.index(b"\x00")].count(b"\n") + 1, "binary data, not perf script output")
    from ptpair.traces import _kmemscan as ks

    k, n_lines, cols = _scan(data)
    numbers, event, status, pid, tm, pfn, order, mt, nil, comm_a, comm_b, gfp_a, gfp_b = cols
    bad = np.zeros(k, bool)
    counts: dict[str, int] = {}
    first_bad: list = []
    if len(data) and data[-1:] != b"\n":  # perf script ends every line: the last one was cut
        if not lenient:
            raise TraceError(source, n_lines, "truncated last line")
        counts["truncated line"] = 1
        first_bad.append((n_lines, "truncated last line"))
        if k and numbers[-1] == n_lines:
            bad[-1] = True
    _mark(status == ks.BAD_LINE, "not perf script kmem output", "cannot read this kmem event line", source,
          numbers, lenient, bad, counts, first_bad)
    _mark(status == ks.BAD_PFN, "missing or unreadable pfn", "pfn: not an integer", source, numbers, lenient, bad,
          counts, first_bad)
    _mark(status == ks.BAD_NUMBER, "unreadable number", "order or migratetype: not an integer", source, numbers,
          lenient, bad, counts, first_bad)
    _mark((order < 0) | (order > MAX_ORDER), "order outside 0..10", "order outside 0..10", source, numbers, lenient,
          bad, counts, first_bad)
    failed = (event == ks.EV_ALLOC) & nil
    event = event == ks.EV_ALLOC  # from here on: allocation or free
    mt = np.where(mt < 0, 0, mt)
    comm = _strings(data, comm_a, comm_b)
    gfp = _strings(data, gfp_a, gfp_b)

    keep = ~bad & ~failed
    if failed.any():
        counts["failed allocations"] = int(failed.sum())
    # pair allocations with frees: per pfn, in log order, a free matches when the
    # event before it (same pfn) is an allocation; an allocation after an allocation
    # means the first one's free was lost
    rows = np.flatnonzero(keep)
    order_by_pfn = rows[np.argsort(pfn[rows], kind="stable")]  # rows ascend: stable = by (pfn, row)
    p = pfn[order_by_pfn]
    is_alloc = event[order_by_pfn]
    same_prev = np.concatenate([[False], p[1:] == p[:-1]])
    prev_alloc = same_prev & np.concatenate([[False], is_alloc[:-1]])
    matched_free = ~is_alloc & prev_alloc
    unmatched = ~is_alloc & ~prev_alloc
    # the kernel traces a page freed through free_unref_folios twice (mm_page_free_batched
    # and mm_page_free): a free right after a free of the same pfn is that, not a free of
    # a page allocated before the recording
    repeated = unmatched & same_prev & np.concatenate([[False], ~is_alloc[:-1]])
    lost = is_alloc & prev_alloc
    handle = np.zeros(k, np.int64)
    handle[order_by_pfn[is_alloc]] = order_by_pfn[is_alloc]  # an allocation's handle: its row
    prev_row = np.concatenate([[0], order_by_pfn[:-1]])
    handle[order_by_pfn[matched_free]] = prev_row[matched_free]
    keep[order_by_pfn[unmatched]] = False
    counts_out = {}
    if (unmatched & ~repeated).any():
        counts_out["unmatched_frees"] = int((unmatched & ~repeated).sum())
    if repeated.any():
        counts_out["repeated_frees"] = int(repeated.sum())
    if lost.any():
        counts_out["lost_frees"] = int(lost.sum())

    r = np.flatnonzero(keep)
    ops = np.where(event[r], OP_CODE["kalloc"], OP_CODE["kfree"]).astype(np.int8)
    lut = np.array([_MT_MAP[i] for i in range(len(_MT_MAP))], np.int8)
    mt_r = np.where((mt[r] >= 0) & (mt[r] < len(lut)), lut[np.clip(mt[r], 0, len(lut) - 1)], 0)
    trace = Trace.from_columns(
        source=source, pid=pid[r], op=ops, arg=handle[r], order=np.where(event[r], order[r], 0),
        migratetype=np.where(event[r], mt_r, 0),
        time=tm[r], comm=comm[r], gfp_flags=gfp[r])
    trace.lines = numbers[r]
    trace.skipped = {**counts, **counts_out}
    trace.first_bad = first_bad[0] if first_bad else None
    return trace


__all__ = ["read_kmem"]
