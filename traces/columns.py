"""Arrow columns to a checked canonical `Trace`: the one place where a table read from CSV or
Parquet becomes ptpair's event columns.

Two paths give the same answer (tests/traces/test_rowcheck.py): a compiled one-pass check
that builds the columns from Arrow's buffers as they are (`_fast_trace`), and a careful
numpy path (`_checked_trace`) that runs when the fast one finds a bad row, names it as
`file:line: what is wrong`, or skips and counts bad rows (lenient). CSV integer cells
arrive as text and are parsed by a compiled scanner over Arrow's string buffers (decimal
or `0x` hex), so no Python object is made per row.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ptpair.traces import format as fmt
from ptpair.traces.format import RowChecker, TraceError, Trace
from ptpair.traces._intparse import parse_int_column

_INT_COLS = ("pid", "va", "length", "arg", "order", "page_size")


def _array(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    """One Arrow array (a column of one chunk as it is: combining would copy it)."""
    if not isinstance(col, pa.ChunkedArray):
        return col
    return col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()


def _strings(col: pa.ChunkedArray | pa.Array) -> pa.StringArray:
    arr = _array(col)
    if pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.string())
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    return arr


_NO_INTS = np.zeros(0, np.int64)
_NO_BITS = np.zeros(0, np.uint8)


def _validity(arr: pa.Array) -> np.ndarray:
    """bool per cell: not null (from Arrow's bitmap; no pandas-backed conversion)."""
    n = len(arr)
    if arr.null_count == 0:
        return np.ones(n, np.bool_)
    bits = np.frombuffer(arr.buffers()[0], dtype=np.uint8)
    return np.unpackbits(bits, bitorder="little", count=arr.offset + n)[arr.offset:].astype(np.bool_)


def _int64_buffers(arr: pa.Array):
    """(values, validity bitmap, bit offset) of an int64 Arrow array: its own buffers, no
    copy; an empty bitmap when no cell is null. Values under nulls are undefined."""
    n = len(arr)
    vals = np.frombuffer(arr.buffers()[1], dtype=np.int64, count=n + arr.offset)[arr.offset:]
    if arr.null_count == 0:
        return vals, _NO_BITS, 0
    return vals, np.frombuffer(arr.buffers()[0], dtype=np.uint8), arr.offset


def _text_ints(arr: pa.StringArray):
    """(int64 values, status per cell: 0 parsed, 1 empty or null, 2 not an integer) of a
    string column in the CSV syntax (decimal or 0x hex), by the compiled scanner."""
    n = len(arr)
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int32, count=n + 1 + arr.offset)[arr.offset:]
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    return parse_int_column(offsets, data, _validity(arr))


def _cast_int64(arr: pa.Array, name: str, chk: RowChecker) -> pa.Array:
    """An integer column as int64; cells beyond int64 (a uint64 column) reported to `chk`."""
    try:
        return arr.cast(pa.int64())
    except pa.ArrowInvalid:
        import pyarrow.compute as pc

        big = pc.fill_null(pc.greater(arr, pa.scalar((1 << 63) - 1, arr.type)), False)
        mask = np.asarray(big.to_numpy(zero_copy_only=False), dtype=bool)
        chk.check(mask, "non-numeric field", lambda r: f"{name} {arr[r].as_py()} is beyond 2^63 - 1")
        return pc.if_else(big, pa.scalar(0, arr.type), arr).cast(pa.int64())


def _parse_ints(col, name: str, chk: RowChecker):
    """int64 values and a 'present' mask from a string or integer Arrow column; cells
    that are not integers are reported to `chk` (and read as 0)."""
    arr = _array(col)
    n = len(arr)
    if pa.types.is_null(arr.type):  # an all-empty column
        return np.zeros(n, np.int64), np.zeros(n, bool)
    if pa.types.is_integer(arr.type):
        if arr.null_count == n:
            return np.zeros(n, np.int64), np.zeros(n, bool)
        if arr.type != pa.int64():
            arr = _cast_int64(arr, name, chk)
        vals, bits, _ = _int64_buffers(arr)
        if len(bits) == 0:
            return vals, np.ones(n, bool)
        present = _validity(arr)
        return np.where(present, vals, 0), present  # cells under nulls are undefined: zeroed
    if pa.types.is_floating(arr.type):
        f = np.asarray(arr.fill_null(np.nan).to_numpy(zero_copy_only=False), dtype=np.float64)
        present = ~np.isnan(f)
        bad = present & ((f != np.floor(f)) | (np.abs(f) >= 2.0**62))
        chk.check(bad, "non-numeric field", lambda r: f"{name} is not an integer: {f[r]!r}")
        return np.where(present & ~bad, f, 0).astype(np.int64), present & ~bad
    arr = _strings(arr)
    if not pa.types.is_string(arr.type):
        raise TraceError(chk.source, None, f"column {name} has type {arr.type}, expected integers")
    vals, status = _text_ints(arr)
    chk.check(status == 2, "non-numeric field", lambda r: f"{name} is not an integer: {arr[r].as_py()!r}")
    return vals, status == 0


def _op_codes(col, chk: RowChecker) -> np.ndarray:
    """int8 op codes (unknown ones reported to `chk`, read as 0). A dictionary column (as
    ptpair writes Parquet) is decoded through its small dictionary only."""
    import pyarrow.compute as pc

    arr = _array(col)
    if pa.types.is_dictionary(arr.type) and arr.null_count == 0:
        names = pc.utf8_trim_whitespace(arr.dictionary.cast(pa.string()))
        lut = pc.index_in(names, value_set=pa.array(fmt.OPS)).to_numpy(zero_copy_only=False)
        idx = arr.indices.to_numpy(zero_copy_only=False)
        if not np.isnan(lut.astype(float)).any():
            return lut.astype(np.int8)[idx]
        arr = arr.dictionary_decode()
    txt = pc.utf8_trim_whitespace(_strings(arr))
    codes = pc.index_in(txt, value_set=pa.array(fmt.OPS))
    chk.check(codes.is_null().to_numpy(zero_copy_only=False), "unknown op",
              lambda r: "op is empty" if txt[r].as_py() is None
              else f"unknown op {txt[r].as_py()!r} (expected one of {', '.join(fmt.OPS)})")
    return np.asarray(codes.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int8)


def _int_view(table: pa.Table, name: str):
    """(values, validity bitmap, bit offset) of an integer column for the compiled check
    (`_rowcheck.check_rows`): Arrow's own buffers where it holds int64, an empty bitmap
    when no cell is null, empty values when every cell is (or the column is absent).
    None when a cell is not an integer: the numpy checks then name it."""
    if name not in table.column_names:
        return _NO_INTS, _NO_BITS, 0
    col = table.column(name)
    arr = _array(col)
    n = len(arr)
    if pa.types.is_null(arr.type) or arr.null_count == n:
        return _NO_INTS, _NO_BITS, 0
    if pa.types.is_integer(arr.type):
        if arr.type != pa.int64():
            try:
                arr = arr.cast(pa.int64())
            except pa.ArrowInvalid:  # a uint64 beyond int64
                return None
        return _int64_buffers(arr)
    arr = _strings(arr)
    if not pa.types.is_string(arr.type):
        return None
    vals, status = _text_ints(arr)
    if (status == 2).any():
        return None
    present = status == 0
    if present.all():
        return vals, _NO_BITS, 0
    return vals, np.packbits(present, bitorder="little"), 0


def _op_view(table: pa.Table):
    """(indices, lookup table of op codes with -1 for unknown names) of the op column,
    for the compiled check; None when a cell is null. Names are looked up once per
    distinct name, through the column's dictionary (made here for a text column).

    (No pa.array() here: pyarrow's first conversion of Python or numpy data imports
    pandas, which a small `ptpair replay` would wait for; docs/performance.md.)"""
    import pyarrow.compute as pc

    arr = _array(table.column("op"))
    if arr.null_count:
        return None
    if not pa.types.is_dictionary(arr.type):
        arr = _strings(arr)
        if not pa.types.is_string(arr.type):
            return None
        arr = pc.dictionary_encode(arr)
    names = pc.utf8_trim_whitespace(arr.dictionary.cast(pa.string())).to_pylist()
    lut = np.array([fmt.OP_CODE.get(name, -1) for name in names], dtype=np.int8)
    idx = arr.indices  # no nulls (checked above): the values buffer as it is
    dtype = f"{'i' if pa.types.is_signed_integer(idx.type) else 'u'}{idx.type.bit_width // 8}"
    codes = np.frombuffer(idx.buffers()[1], dtype=dtype, count=len(idx) + idx.offset)[idx.offset:]
    return codes, lut


def _fast_trace(table: pa.Table, source: str) -> Trace | None:
    """The Trace of a table whose every row is good, checked and built in one compiled
    pass; None when any row or column needs the numpy checks (which then report it)."""
    from ptpair.traces._rowcheck import SPECIALISE_ROWS, check_rows

    names = table.column_names
    if any(c not in names for c in fmt.REQUIRED_COLUMNS):
        return None
    if "time" in names and not (pa.types.is_floating(table.schema.field("time").type)
                                or pa.types.is_integer(table.schema.field("time").type)
                                or pa.types.is_null(table.schema.field("time").type)):
        return None
    op = _op_view(table)
    # (migratetype names -- movable, ... -- are not integers: the numpy path reads them)
    cols = [_int_view(table, c) for c in ("pid", "va", "length", "arg", "order", "page_size", "migratetype")]
    if op is None or any(c is None for c in cols):
        return None
    n = table.num_rows

    def out(view, empty=0):
        """(the column as Trace holds it, the array the pass writes): the view itself when
        no cell is empty and `empty` everywhere when every cell is (nothing to write),
        else a new array (an empty out array tells the pass not to write)."""
        vals, bits, _ = view
        if len(vals) == 0:  # zeros are mapped lazily; a constant is one read-only cell
            return (np.zeros(n, np.int64) if empty == 0 else np.broadcast_to(np.int64(empty), (n,))), _NO_INTS
        if len(bits) == 0:
            return vals, _NO_INTS
        new = np.empty(n, np.int64)
        return new, new

    pid, va, length, arg, order, ps, mt = cols
    (pid_col, pid_out), (va_col, va_out), (ln_col, ln_out) = out(pid), out(va), out(length)
    arg_col, arg_out = out(arg)
    ps_col, ps_out = out(ps, empty=fmt.PAGE_SIZE)
    op_col, order_col = np.empty(n, np.int8), np.empty(n, np.int8)
    migratetype = np.zeros(n, np.int8)  # stays 0 where the column is absent or all empty
    # a large chunk gets the pass compiled for its shape (traces/_rowcheck.py): None for an
    # absent column's values, the bitmap of a column without empty cells, an output not written
    special = n >= SPECIALISE_ROWS

    def written(o):
        return None if special and len(o) == 0 else o

    def shaped(view):
        vals, bits, off = view
        return written(vals), written(bits), off

    if check_rows(n, *op, *shaped(pid), *shaped(va), *shaped(length), *shaped(arg), *shaped(order), *shaped(ps),
                  *shaped(mt), op_col, written(pid_out), written(va_out), written(ln_out), written(arg_out),
                  order_col, written(ps_out), migratetype) >= 0:
        return None
    time, comm, gfp = _extras(table, RowChecker(source, 2, n))
    return Trace(pid=pid_col, op=op_col, va=va_col, length=ln_col, arg=arg_col, order=order_col, page_size=ps_col,
                 time=time, comm=comm,
                 migratetype=migratetype if "migratetype" in names else None, gfp_flags=gfp, source=source)


def _extras(table: pa.Table, chk: RowChecker):
    """The columns the replay does not use: time (float64 s, NaN where empty), comm and
    gfp_flags (object arrays of str)."""
    names = table.column_names
    n = table.num_rows
    time = None
    if "time" in names:
        tcol = table.column("time")
        try:
            time = np.asarray(tcol.cast(pa.float64()).fill_null(np.nan).to_numpy(), dtype=np.float64)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            t = _strings(tcol).to_pylist()
            time = np.full(n, np.nan)
            bad = np.zeros(n, bool)
            for r, v in enumerate(t):
                try:
                    time[r] = float(v) if v not in (None, "") else np.nan
                except ValueError:
                    bad[r] = True
            chk.check(bad, "non-numeric field", lambda r: f"time is not a number: {t[r]!r}")
    comm = None
    if "comm" in names:
        comm = np.asarray(_strings(table.column("comm")).to_pylist(), dtype=object)
    gfp = None
    if "gfp_flags" in names:
        gfp = np.asarray(_strings(table.column("gfp_flags")).to_pylist(), dtype=object)
    return time, comm, gfp


def trace_from_table(table: pa.Table, source: str, first_line: int = 2, lenient: bool = False) -> Trace:
    """Validate an Arrow table with the canonical columns and return a Trace.

    Strict: the first bad row raises TraceError (`file:line: ...`). Lenient: bad rows are
    left out, counted by reason in `Trace.skipped`, and `Trace.lines` keeps the line of
    every row kept."""

    fast = _fast_trace(table, source)
    if fast is not None:
        return fast
    return _checked_trace(table, source, first_line, lenient)


def _checked_trace(table: pa.Table, source: str, first_line: int, lenient: bool) -> Trace:
    """trace_from_table with a numpy pass per rule: names every bad row (the careful path)."""
    import pyarrow.compute as pc

    names = set(table.column_names)
    missing = [c for c in fmt.REQUIRED_COLUMNS if c not in names]
    if missing:
        raise TraceError(source, 1, f"missing column(s) {', '.join(missing)}; a canonical trace has "
                                    f"{', '.join(fmt.REQUIRED_COLUMNS)}")
    n = table.num_rows
    chk = RowChecker(source, first_line, n, lenient)
    op = _op_codes(table.column("op"), chk)
    ints = {}
    for name in _INT_COLS:
        if name in names:
            ints[name] = _parse_ints(table.column(name), name, chk)
        else:
            ints[name] = (np.zeros(n, np.int64), np.zeros(n, bool))

    def need(ops, col, what):
        mask = fmt.op_mask(op, ops) & ~ints[col][1]
        chk.check(mask, "missing field", lambda r: f"{fmt.OPS[op[r]]} needs {what} ({col} is empty)")

    pid = np.where(ints["pid"][1], ints["pid"][0], 0)  # an empty kernel pid is 0
    need(fmt.NEEDS_PID, "pid", "a pid")
    need(fmt.NEEDS_RANGE, "va", "an address")
    need(fmt.NEEDS_RANGE, "length", "a length")
    need(fmt.NEEDS_ARG, "arg", "an arg (parent pid or handle)")
    need(fmt.NEEDS_ORDER, "order", "an order")
    order_vals = ints["order"][0]
    ps_vals, ps_present = ints["page_size"]
    page_size = np.where(ps_present, ps_vals, fmt.PAGE_SIZE).astype(np.int64)

    time, comm, gfp = _extras(table, chk)
    migratetype = None
    if "migratetype" in names:
        col = table.column("migratetype")
        col = _array(col)
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type) or pa.types.is_dictionary(col.type):
            # names (unmovable, movable, reclaimable) or numbers
            txt = pc.utf8_trim_whitespace(_strings(col))
            by_name = pc.index_in(pc.utf8_lower(txt), value_set=pa.array(fmt.MIGRATETYPES))
            mt = np.asarray(by_name.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)
            if by_name.null_count:
                nums, present = _parse_ints(pc.if_else(by_name.is_null(), txt, pa.scalar(None, pa.string())),
                                            "migratetype", chk)
                named = ~np.asarray(by_name.is_null().to_numpy(zero_copy_only=False), dtype=bool)
                mt = np.where(named, mt, np.where(present, nums, 0))
        else:
            mt, _ = _parse_ints(col, "migratetype", chk)
        migratetype = np.where(op == fmt.OP_KALLOC, np.clip(mt, -1, 3), 0).astype(np.int8)

    trace = Trace(pid=pid, op=op, va=ints["va"][0], length=ints["length"][0], arg=ints["arg"][0],
                  order=np.clip(order_vals, -1, 127).astype(np.int8), page_size=page_size, time=time, comm=comm,
                  migratetype=migratetype, gfp_flags=gfp, source=source)
    order_bad = (op == fmt.OP_KALLOC) & ((order_vals < 0) | (order_vals > fmt.MAX_ORDER))
    chk.check(order_bad, "order outside 0..10", lambda r: f"order {int(order_vals[r])} is outside 0..{fmt.MAX_ORDER}")
    fmt.validate(trace, first_line=first_line, checker=chk)
    if chk.bad.any():
        trace = trace.drop(chk.bad, first_line)
        trace.first_bad = (first_line + chk.first[0], chk.first[1])
    trace.skipped = chk.counts
    return trace
