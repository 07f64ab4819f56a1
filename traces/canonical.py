"""Read and write canonical traces (CSV with a header, or Parquet with the same columns).

CSV is parsed by pyarrow with every column read as text, and the integer columns are
then parsed by a small compiled scanner over Arrow's string buffers. That keeps the
read vectorised (no Python object per row), accepts decimal or `0x` hex, and lets every
bad cell be reported as `file:line: what is wrong`.
"""

from __future__ import annotations

import os
from pathlib import Path

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
              lambda r: f"unknown op {txt[r].as_py()!r} (expected one of {', '.join(fmt.OPS)})")
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
    from ptpair.traces._rowcheck import check_rows

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
    if check_rows(n, *op, *pid, *va, *length, *arg, *order, *ps, *mt,
                  op_col, pid_out, va_out, ln_out, arg_out, order_col, ps_out, migratetype) >= 0:
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


# The columns a replay needs: reading only these keeps long traces lean (no `comm`
# strings, no `time`).
REPLAY_COLUMNS = ("pid", "op", "va", "length", "arg", "order", "page_size", "migratetype")


def _csv_options(path: Path, source: str, columns=None, lenient: bool = False):
    from pyarrow import csv

    with open(path, "rb") as f:
        head = f.readline()
    if not head.strip():
        raise TraceError(source, 1, "empty file: expected a CSV header " + ",".join(fmt.REQUIRED_COLUMNS))
    import csv as _csv

    try:
        header = [h.strip() for h in next(_csv.reader([head.decode("utf-8", "replace")]))]
    except (_csv.Error, StopIteration):
        raise TraceError(source, 1, "not a CSV header (expected " + ",".join(fmt.REQUIRED_COLUMNS) + ")") from None
    bad_row: list = []

    def on_invalid(row):
        bad_row.append(row)
        return "skip" if lenient else "error"

    include = [c for c in header if columns is None or c in columns]
    opts = dict(
        read_options=csv.ReadOptions(block_size=1 << 24),
        parse_options=csv.ParseOptions(invalid_row_handler=on_invalid, ignore_empty_lines=False),
        convert_options=csv.ConvertOptions(
            column_types={c: pa.string() for c in header},
            include_columns=include,
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    return opts, bad_row


def _csv_error(path: Path, source: str, bad_row: list, e: Exception) -> TraceError:
    if bad_row:
        row = bad_row[0]
        line = row.number if row.number is not None else _find_line(path, row.text)
        return TraceError(source, line, f"expected {row.expected_columns} fields, found "
                                        f"{row.actual_columns}: {row.text[:60]!r}")
    return TraceError(source, None, f"not a readable CSV trace: {str(e).splitlines()[0]}")


def _read_csv(path: Path, source: str, columns=None, lenient: bool = False):
    """(table, physical lines of the rows pyarrow skipped) -- the latter only when lenient."""
    from pyarrow import csv

    opts, bad_row = _csv_options(path, source, columns, lenient)
    try:
        table = csv.read_csv(path, **opts)
    except pa.ArrowInvalid as e:
        raise _earliest(path, _csv_error(path, source, bad_row, e)) from None
    skipped = sorted({row.number if row.number is not None else _find_line(path, row.text) or 0
                      for row in bad_row})
    return table, skipped


def _kind(path: Path, source: str, fmt_hint: str | None) -> str:
    if not path.exists():
        raise TraceError(source, None, "no such file")
    with open(path, "rb") as f:
        head = f.read(4096)
    kind = fmt_hint or ("parquet" if head[:4] == b"PAR1" else "csv")
    if kind not in ("csv", "parquet"):
        raise TraceError(source, None, f"unknown trace format {kind!r}")
    if kind == "csv" and b"\x00" in head:
        line = head[: head.index(b"\x00")].count(b"\n") + 1
        raise TraceError(source, line, "binary data (a NUL byte), not a CSV trace")
    return kind


def _empty_columns(pf) -> set[str]:
    """Columns that the file's statistics show empty in every row group (va and length
    of an allocator trace): not decoded, but given to the checks as all-null columns."""
    md = pf.metadata
    empty = set()
    for j in range(md.num_columns):
        name = md.schema.column(j).name
        if name == "op" or md.num_row_groups == 0:  # op is always read: it carries the rows
            continue
        for g in range(md.num_row_groups):
            st = md.row_group(g).column(j).statistics
            if st is None or not st.has_null_count or st.null_count != md.row_group(g).num_rows:
                break
        else:
            empty.add(name)
    return empty


def iter_trace(path: str | os.PathLike, batch_rows: int = 1 << 20, columns=REPLAY_COLUMNS,
               fmt_hint: str | None = None):
    """Read a canonical trace in chunks of about `batch_rows` rows (Arrow record batches).

    Yields Trace chunks, each validated with its real line numbers; only `columns` are
    read. Memory stays bounded by the chunk size, whatever the trace's length.
    """
    path = Path(path)
    source = str(path)
    kind = _kind(path, source, fmt_hint)
    line = 2
    if kind == "parquet":
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(path)
            empty = _empty_columns(pf)
            wanted = [c for c in columns if c in pf.schema_arrow.names]
            batches = pf.iter_batches(batch_size=batch_rows, columns=[c for c in wanted if c not in empty])
            for batch in batches:
                table = pa.Table.from_batches([batch])
                for c in wanted:
                    if c in empty:
                        table = table.append_column(c, pa.nulls(batch.num_rows))
                yield trace_from_table(table, source, first_line=line)
                line += batch.num_rows
        except (pa.ArrowInvalid, OSError) as e:
            raise TraceError(source, None, f"not a readable Parquet file: {e}") from None
        return
    from pyarrow import csv

    opts, bad_row = _csv_options(path, source, columns)
    opts["read_options"] = csv.ReadOptions(block_size=max(1 << 16, batch_rows * 48))
    try:
        reader = csv.open_csv(path, **opts)
        pending = []
        rows = 0
        for batch in reader:
            pending.append(batch)
            rows += batch.num_rows
            if rows >= batch_rows:
                yield trace_from_table(pa.Table.from_batches(pending), source, first_line=line)
                line += rows
                pending, rows = [], 0
        if pending or line == 2:
            table = pa.Table.from_batches(pending, schema=reader.schema)
            yield trace_from_table(table, source, first_line=line)
    except pa.ArrowInvalid as e:
        raise _earliest(path, _csv_error(path, source, bad_row, e)) from None


def _find_line(path: Path, text: str) -> int | None:
    """Line number (from 1) of the first line equal to `text` (error path only)."""
    with open(path, "rb") as f:
        for n, raw in enumerate(f, start=1):
            if n > 1 and raw.rstrip(b"\r\n").decode("utf-8", "replace") == text:
                return n
    return None


def _earliest(path: Path, err: TraceError) -> TraceError:
    """A row with the wrong number of fields stops pyarrow's parse, possibly after rows
    with bad fields: re-read leniently so that the earliest bad line is the one reported."""
    if err.line is None or err.line <= 1:
        return err
    try:
        t = read_trace(path, fmt_hint="csv", lenient=True)
    except TraceError:
        return err
    if t.first_bad and t.first_bad[0] < err.line:
        return TraceError(err.source, *t.first_bad)
    return err


def read_trace(path: str | os.PathLike, fmt_hint: str | None = None, lenient: bool = False) -> Trace:
    """Read a canonical trace, CSV or Parquet (detected from content unless `fmt_hint`).

    `lenient`: skip bad rows instead of stopping at the first (counted by reason in
    `Trace.skipped`; `Trace.lines` keeps the real line of each row kept)."""
    path = Path(path)
    source = str(path)
    kind = _kind(path, source, fmt_hint)
    if kind == "parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except (pa.ArrowInvalid, OSError) as e:
            raise TraceError(source, None, f"not a readable Parquet file: {e}") from None
        return trace_from_table(table, source, lenient=lenient)
    table, skipped = _read_csv(path, source, lenient=lenient)
    if not skipped:
        return trace_from_table(table, source, lenient=lenient)
    # rows pyarrow skipped shift every later row's line: map rows to their real lines
    n = table.num_rows
    lines = np.setdiff1d(np.arange(2, 2 + n + len(skipped)), skipped)[:n]
    trace = trace_from_table(table, source, first_line=2, lenient=True)
    kept_lines = lines if trace.lines is None else lines[trace.lines - 2]
    if trace.first_bad is not None:
        trace.first_bad = (int(lines[trace.first_bad[0] - 2]), trace.first_bad[1])
    first_skipped = (skipped[0], "wrong number of fields")
    if trace.first_bad is None or first_skipped[0] < trace.first_bad[0]:
        trace.first_bad = first_skipped
    trace.lines = kept_lines
    trace.skipped = {"wrong number of fields": len(skipped), **trace.skipped}
    return trace


def _table_for_write(trace: Trace) -> pa.Table:
    """Arrow table with empty (null) cells where an op does not use a field."""
    op = trace.op
    rng = np.isin(op, list(fmt.NEEDS_RANGE))
    argm = np.isin(op, list(fmt.NEEDS_ARG))
    ordm = np.isin(op, list(fmt.NEEDS_ORDER))
    psm = rng & (trace.page_size != fmt.PAGE_SIZE)
    cols = {
        "pid": pa.array(trace.pid, pa.int64()),
        "op": pa.DictionaryArray.from_arrays(pa.array(op.astype(np.int32)), pa.array(fmt.OPS)),
        "va": pa.array(trace.va, pa.int64(), mask=~rng),
        "length": pa.array(trace.length, pa.int64(), mask=~rng),
        "arg": pa.array(trace.arg, pa.int64(), mask=~argm),
        "order": pa.array(trace.order.astype(np.int64), pa.int64(), mask=~ordm),
        "page_size": pa.array(trace.page_size, pa.int64(), mask=~psm),
    }
    if trace.time is not None:
        cols["time"] = pa.array(trace.time, pa.float64(), mask=np.isnan(trace.time))
    if trace.comm is not None:
        cols["comm"] = pa.array(list(trace.comm), pa.string())
    if trace.migratetype is not None:
        cols["migratetype"] = pa.array(trace.migratetype.astype(np.int64), pa.int64(), mask=~ordm)
    if trace.gfp_flags is not None:
        cols["gfp_flags"] = pa.array(list(trace.gfp_flags), pa.string())
    return pa.table(cols)


# How ptpair writes Parquet. The many-valued integer columns (handles, addresses,
# lengths) are delta-encoded: handles and addresses mostly grow, so the deltas pack into
# a few bits, and decoding them is much faster than Parquet's default dictionary
# (which overflows on millions of distinct handles and falls back to plain values;
# figures in docs/performance.md).
# The few-valued columns keep the dictionary.
_DELTA = ("va", "length", "arg")
_PARQUET_ENCODINGS = dict(
    use_dictionary=[c for c in fmt.ALL_COLUMNS if c not in _DELTA],
    column_encoding={c: "DELTA_BINARY_PACKED" for c in _DELTA},
)


def write_trace(trace: Trace, path: str | os.PathLike) -> None:
    """Write CSV or Parquet by the file's suffix, atomically (temp file, then rename)."""
    from ptpair.traces.atomic import atomic_path

    path = Path(path)
    table = _table_for_write(trace)
    with atomic_path(path) as tmp:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            pq.write_table(table, tmp, compression="zstd", **_PARQUET_ENCODINGS)
        else:
            from pyarrow import csv

            table = table.set_column(1, "op", table.column("op").cast(pa.string()))
            csv.write_csv(table, tmp, csv.WriteOptions(quoting_style="needed"))


def write_parquet_chunks(chunks, path: str | os.PathLike) -> int:
    """Write an iterable of Trace chunks as one Parquet trace, a row group per chunk,
    atomically; returns the rows written. Memory holds one chunk at a time: for traces
    generated or converted piece by piece that would not fit whole. Every chunk must
    have the same optional columns."""
    import pyarrow.parquet as pq

    from ptpair.traces.atomic import atomic_path

    rows = 0
    with atomic_path(Path(path)) as tmp:
        writer = None
        try:
            for chunk in chunks:
                table = _table_for_write(chunk)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema, compression="zstd", **_PARQUET_ENCODINGS)
                writer.write_table(table)
                rows += len(chunk)
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            raise ValueError("no chunks to write")
    return rows
