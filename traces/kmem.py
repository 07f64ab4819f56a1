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

Parsing is vectorised: the file's lines become one Arrow string array (no copy) matched
by one regular expression in Arrow's compute kernels, and the pairing of allocations
with frees is a sort by pfn and a shift, so a large log converts at close to disk speed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ptpair.traces.format import OP_CODE, Trace, TraceError

MAX_ORDER = 10
_LINE = (r"^\s*(?P<comm>.*?)\s+(?P<pid>-?\d+)(?:/\d+)?\s+(?:\[(?P<cpu>\d+)\]\s+)?(?P<time>\d+\.\d+):\s+"
         r"(?:\d+\s+)?kmem:mm_page_(?P<event>alloc|free_batched|free):\s+(?P<fields>.*?)\s*$")
EV_ALLOC, EV_FREE = 0, 1
_MT_MAP = {0: 0, 1: 1, 2: 2, 3: 0, 4: 1}


def _field(fields, name: str):
    """The value of `name=` in each fields string (null where absent)."""
    import pyarrow.compute as pc

    m = pc.extract_regex(fields, rf"(?:^|\s){name}=(?P<v>\S*)")
    return pc.struct_field(m, [0])


def _ints(arr, what: str, source: str, lines: np.ndarray, lenient: bool, bad: np.ndarray, counts: dict,
          first_bad: list):
    """Parse decimal or 0x-hex integers of a string array; marks unreadable cells bad."""
    import pyarrow as pa

    from ptpair.traces._intparse import parse_int_column

    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    arr = arr.cast(pa.string())
    n = len(arr)
    bufs = arr.buffers()
    valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=np.bool_)
    offsets = np.frombuffer(bufs[1], dtype=np.int32, count=n + 1 + arr.offset)[arr.offset:]
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    vals, status = parse_int_column(offsets, data, valid)
    _mark(status != 0, f"missing or unreadable {what}", f"{what}: not an integer", source, lines, lenient, bad,
          counts, first_bad)
    return vals


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


def _line_array(data: bytes):
    """All lines of `data` as one Arrow string array (no copy) and their 1-based numbers,
    without empty lines. Returns (array, line numbers, whether the last line is cut)."""
    import pyarrow as pa

    buf = np.frombuffer(data, dtype=np.uint8)
    nl = np.flatnonzero(buf == 10)
    complete = len(buf) == 0 or buf[-1] == 10
    ends = nl if complete else np.concatenate([nl, [len(buf)]])
    starts = np.concatenate([[0], nl + 1])[: len(ends)]
    keep = ends > starts
    starts, ends = starts[keep], ends[keep]
    numbers = np.flatnonzero(keep) + 1
    if len(data) >= 2**31:
        raise ValueError("chunk too large")
    offsets = np.empty(2 * len(starts), np.int32)
    # a string array needs contiguous offsets: view [start_i, end_i) as alternating
    # string / separator entries, then take the even ones
    offsets[0::2] = starts
    offsets[1::2] = ends
    offsets = np.concatenate([offsets, [len(buf)]]).astype(np.int32)
    arr = pa.StringArray.from_buffers(len(offsets) - 1, pa.py_buffer(offsets), pa.py_buffer(data))
    return arr.take(pa.array(np.arange(0, len(offsets) - 1, 2))), numbers, not complete


def read_kmem(path: str | os.PathLike, lenient: bool = False) -> Trace:
    """A canonical trace of kalloc/kfree events from a perf script kmem log."""
    import pyarrow as pa
    import pyarrow.compute as pc

    path = Path(path)
    source = str(path)
    if not path.exists():
        raise TraceError(source, None, "no such file")
    data = path.read_bytes()
    if b"\x00" in data:
        raise TraceError(source, data[: data.index(b"\x00")].count(b"\n") + 1, "binary data, not perf script output")
    lines, numbers, cut = _line_array(data)
    n = len(lines)
    bad = np.zeros(n, bool)
    counts: dict[str, int] = {}
    first_bad: list = []
    m = pc.extract_regex(lines, _LINE)
    matched = np.asarray(m.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    # lines of other events (perf can record more than kmem) and perf's own headers are
    # not ours: only a line that names a kmem page event but does not parse is bad
    is_kmem = np.asarray(pc.match_substring(lines, "kmem:mm_page_").to_numpy(zero_copy_only=False), dtype=bool)
    if cut and n:
        _mark(np.arange(n) == n - 1, "truncated line", "truncated last line", source, numbers, lenient, bad, counts,
              first_bad)
    _mark(is_kmem & ~matched, "not perf script kmem output", "cannot read this kmem event line", source, numbers,
          lenient, bad, counts, first_bad)
    sel = matched & ~bad
    idx = np.flatnonzero(sel)
    m = m.filter(pa.array(sel))
    numbers = numbers[idx]
    k = len(idx)
    bad = np.zeros(k, bool)
    event = np.asarray(pc.equal(pc.struct_field(m, [4]), "alloc").to_numpy(zero_copy_only=False), bool)
    fields = pc.struct_field(m, [5])
    pfn = _ints(_field(fields, "pfn"), "pfn", source, numbers, lenient, bad, counts, first_bad)
    order_txt = _field(fields, "order")
    has_order = np.asarray(order_txt.is_valid().to_numpy(zero_copy_only=False), bool)
    order = np.where(has_order, _ints(pc.fill_null(order_txt, "0"), "order", source, numbers, lenient, bad,
                                      counts, first_bad), 0)
    _mark((order < 0) | (order > MAX_ORDER), "order outside 0..10", "order outside 0..10", source, numbers, lenient,
          bad, counts, first_bad)
    page = _field(fields, "page")
    failed = event & np.asarray(pc.fill_null(pc.equal(page, "(nil)"), False).to_numpy(zero_copy_only=False), bool)
    failed |= event & (pfn == 0) & ~np.asarray(page.is_valid().to_numpy(zero_copy_only=False), bool)
    mt_txt = _field(fields, "migratetype")
    mt = np.where(np.asarray(mt_txt.is_valid().to_numpy(zero_copy_only=False), bool),
                  _ints(pc.fill_null(mt_txt, "0"), "migratetype", source, numbers, lenient, bad, counts, first_bad),
                  0)
    pid = _ints(pc.struct_field(m, [1]), "pid", source, numbers, lenient, bad, counts, first_bad)
    tm = np.asarray(pc.cast(pc.struct_field(m, [3]), pa.float64()).to_numpy(zero_copy_only=False), np.float64)
    comm = pc.utf8_trim_whitespace(pc.struct_field(m, [0]))
    gfp = _field(fields, "gfp_flags")

    keep = ~bad & ~failed
    if failed.any():
        counts["failed allocations"] = int(failed.sum())
    # pair allocations with frees: per pfn, in log order, a free matches when the
    # event before it (same pfn) is an allocation; an allocation after an allocation
    # means the first one's free was lost
    rows = np.flatnonzero(keep)
    order_by_pfn = rows[np.lexsort((rows, pfn[rows]))]
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
        time=tm[r], comm=np.asarray(comm.take(pa.array(r)).to_pylist(), object),
        gfp_flags=np.asarray(gfp.take(pa.array(r)).to_pylist(), object))
    trace.lines = numbers[r]
    trace.skipped = {**counts, **counts_out}
    trace.first_bad = first_bad[0] if first_bad else None
    return trace


__all__ = ["read_kmem"]
