"""Read and write canonical trace files (CSV with a header, or Parquet with the same columns).

CSV is parsed by pyarrow with every column read as text; Parquet is read in record
batches. Either way the Arrow table becomes a checked `Trace` in traces/columns.py, which
reports every bad cell as `file:line: what is wrong`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa

from ptpair.traces import format as fmt
from ptpair.traces.format import TraceError, Trace
from ptpair.traces.columns import trace_from_table

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


def _parquet_file(path: Path):
    """The file opened for reading; a text `op` column (pyarrow's default for strings) is
    read as the dictionary Parquet stores it in, not as a string per row: 4x faster to
    decode, and the op check then looks each distinct name up once."""
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    schema = pf.schema_arrow
    if "op" in schema.names and (pa.types.is_string(schema.field("op").type)
                                 or pa.types.is_large_string(schema.field("op").type)):
        pf = pq.ParquetFile(path, read_dictionary=["op"])
    return pf


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
        try:
            pf = _parquet_file(path)
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
    trace = _read_trace(path, fmt_hint, lenient)
    from ptpair.traces.machineinfo import read_machine

    trace.machine = read_machine(path)
    return trace


def _read_trace(path, fmt_hint, lenient) -> Trace:
    path = Path(path)
    source = str(path)
    kind = _kind(path, source, fmt_hint)
    if kind == "parquet":
        try:
            table = _parquet_file(path).read()
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
    # a map's arg is its flags: written where set (an empty cell reads as 0)
    argm = np.isin(op, list(fmt.NEEDS_ARG)) | ((op == fmt.OP_MAP) & (trace.arg != 0))
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

    from ptpair.traces.machineinfo import metadata, sidecar

    path = Path(path)
    table = _table_for_write(trace)
    machine = getattr(trace, "machine", None)
    with atomic_path(path) as tmp:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            if machine:
                table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata(machine)})
            pq.write_table(table, tmp, compression="zstd", **_PARQUET_ENCODINGS)
        else:
            from pyarrow import csv

            table = table.set_column(1, "op", table.column("op").cast(pa.string()))
            csv.write_csv(table, tmp, csv.WriteOptions(quoting_style="needed"))
    if path.suffix != ".parquet":  # a CSV's recorded machine is beside it (never a stale one)
        side = sidecar(path)
        if machine:
            with atomic_path(side) as tmp:
                Path(tmp).write_text(json.dumps(machine, sort_keys=True, indent=1) + "\n")
        elif side.exists():
            side.unlink()


def write_parquet_chunks(chunks, path: str | os.PathLike, machine: dict | None = None) -> int:
    """Write an iterable of Trace chunks as one Parquet trace, a row group per chunk,
    atomically; returns the rows written. Memory holds one chunk at a time: for traces
    generated or converted piece by piece that would not fit whole. Every chunk must
    have the same optional columns. `machine`: the recorded machine to store."""
    import pyarrow.parquet as pq

    from ptpair.traces.atomic import atomic_path
    from ptpair.traces.machineinfo import metadata

    rows = 0
    with atomic_path(Path(path)) as tmp:
        writer = None
        try:
            for chunk in chunks:
                table = _table_for_write(chunk)
                if machine:
                    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata(machine)})
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
