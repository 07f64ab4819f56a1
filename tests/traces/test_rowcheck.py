"""The compiled one-pass row check (traces/_rowcheck.py) against the numpy checks.

The fast pass must accept exactly the tables the numpy checks accept, and build the
same Trace; on any bad row it declines and the numpy checks report it. Compared here
on generated Arrow tables: typed Parquet-like columns (with nulls, absent columns,
bad values), text columns as a CSV read gives them, dictionary and plain op columns.
"""

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ptpair.traces import format as fmt
from ptpair.traces.columns import _checked_trace, _fast_trace, trace_from_table
from ptpair.traces.format import TraceError

OPS = list(fmt.OPS) + [" map ", "mapp", "KALLOC"]
# values near every boundary a rule draws
INTS = [0, 1, -1, 2, 3, 10, 11, 4096, 2097152, 1073741824, 4095, 1 << 46, (1 << 47) - 4096, 1 << 47, 1 << 62,
        -(1 << 63), 12345]
COLUMNS = ("pid", "va", "length", "arg", "order", "page_size", "migratetype")
N_EXAMPLES = 400


def _good_row(draw):
    op = draw(st.sampled_from(fmt.OPS))
    code = fmt.OP_CODE[op]
    row = {"op": op}
    if code not in (fmt.OP_KALLOC, fmt.OP_KFREE) or draw(st.booleans()):  # a kernel row's pid may be empty
        row["pid"] = draw(st.integers(0, 5))
    if code in fmt.NEEDS_RANGE:
        row["va"] = draw(st.sampled_from([0, 4096, 1 << 30, (1 << 47) - 8192]))
        row["length"] = draw(st.sampled_from([4096, 8192, 1 << 21]))
    if code in fmt.NEEDS_ARG:
        row["arg"] = draw(st.integers(0, 1 << 40))
    if code in fmt.NEEDS_ORDER:
        row["order"] = draw(st.integers(0, fmt.MAX_ORDER))
        row["migratetype"] = draw(st.integers(0, 2))
    if draw(st.booleans()):
        row["page_size"] = draw(st.sampled_from(fmt.PAGE_SIZES))
    return row


@st.composite
def tables(draw):
    n = draw(st.integers(0, 40))
    rows = [_good_row(draw) for _ in range(n)]
    for _ in range(draw(st.integers(0, 3)) if n else 0):  # spoil a few cells
        r = rows[draw(st.integers(0, n - 1))]
        col = draw(st.sampled_from(("op",) + COLUMNS))
        if col == "op":
            r["op"] = draw(st.sampled_from(OPS))
        elif draw(st.booleans()):
            r.pop(col, None)  # an empty cell
        else:
            r[col] = draw(st.sampled_from(INTS))
    present = [c for c in COLUMNS if c in fmt.REQUIRED_COLUMNS or draw(st.booleans())]
    text = draw(st.booleans())  # as a CSV read gives it: every column text
    cols = {}
    for c in present:
        vals = [r.get(c) for r in rows]
        if text:
            cols[c] = pa.array(["" if v is None else draw(st.sampled_from([str(v), hex(v) if v >= 0 else str(v)]))
                                for v in vals], pa.string())
        else:
            cols[c] = pa.array(vals, draw(st.sampled_from([pa.int64(), pa.int64(), pa.int32()]))
                               if all(v is None or -(1 << 31) <= v < (1 << 31) for v in vals) else pa.int64())
    ops = pa.array([r["op"] for r in rows], pa.string())
    cols["op"] = ops.dictionary_encode() if draw(st.booleans()) else ops
    return pa.table(cols)


def _same(a, b):
    for name in ("pid", "op", "va", "length", "arg", "order", "page_size", "migratetype"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            assert x.dtype == y.dtype, name
            np.testing.assert_array_equal(x, y, err_msg=name)


def _as_the_checks(fast, table, which="fast"):
    """`fast` (a compiled pass's Trace of `table`, or None) is what the numpy checks make
    of the table: None where they reject it, the same columns where they accept it."""
    try:
        slow = _checked_trace(table, "t.parquet", 2, False)
    except TraceError:
        assert fast is None, f"the {which} pass accepted a table the checks reject"
        return
    assert fast is not None, f"the {which} pass declined a good table"
    _same(fast, slow)


@settings(max_examples=N_EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(tables())
def test_fast_pass_accepts_exactly_what_the_checks_accept(table):
    _as_the_checks(_fast_trace(table, "t.parquet"), table)


def test_bad_rows_still_named_by_line():
    table = pa.table({"pid": pa.array([1, 1, 1]), "op": pa.array(["spawn", "kalloc", "kalloc"]),
                      "va": pa.array([None, None, None], pa.int64()), "length": pa.array([None, None, None], pa.int64()),
                      "arg": pa.array([None, 7, 8]), "order": pa.array([None, 0, 11])})
    with pytest.raises(TraceError, match=r"t.parquet:4: order 11 is outside 0..10"):
        trace_from_table(table, "t.parquet")
    lenient = trace_from_table(table, "t.parquet", lenient=True)
    assert len(lenient) == 2 and lenient.skipped == {"order outside 0..10": 1}


def test_good_chunk_shares_arrow_buffers():
    """No copy of a column without empty cells (the point of the fast pass)."""
    arg = pa.array(np.arange(5, dtype=np.int64))
    table = pa.table({"pid": pa.array(np.zeros(5, np.int64)), "op": pa.array(["kalloc"] * 5).dictionary_encode(),
                      "va": pa.nulls(5, pa.int64()), "length": pa.nulls(5, pa.int64()), "arg": arg,
                      "order": pa.array(np.zeros(5, np.int64))})
    t = trace_from_table(table, "t.parquet")
    assert np.shares_memory(t.arg, np.frombuffer(arg.buffers()[1], np.int64))
    assert list(t.page_size) == [fmt.PAGE_SIZE] * 5


@pytest.mark.parametrize("text", [False, True])
def test_both_paths_read_an_empty_kernel_pid_as_0(text):
    """kalloc/kfree belong to no process: an empty pid is pid 0 on both paths; any other
    op still needs its pid."""
    pid = [1, None, None, 1]
    if text:  # as a CSV read gives it
        cols = {"pid": pa.array(["1", "", "", "1"]), "arg": pa.array(["", "9", "9", ""]),
                "order": pa.array(["", "4", "", ""])}
    else:
        cols = {"pid": pa.array(pid, pa.int64()), "arg": pa.array([None, 9, 9, None], pa.int64()),
                "order": pa.array([None, 4, None, None], pa.int64())}
    table = pa.table({"op": pa.array(["spawn", "kalloc", "kfree", "exit"]), "va": pa.nulls(4, pa.int64()),
                      "length": pa.nulls(4, pa.int64()), **cols})
    fast = _fast_trace(table, "t.parquet")
    assert fast is not None and fast.pid.tolist() == [1, 0, 0, 1]
    _same(fast, _checked_trace(table, "t.parquet", 2, False))
    spawn = table.set_column(table.column_names.index("op"), "op", pa.array(["spawn", "spawn", "kfree", "exit"]))
    assert _fast_trace(spawn, "t.parquet") is None
    with pytest.raises(TraceError, match=r"t.parquet:3: spawn needs a pid \(pid is empty\)"):
        _checked_trace(spawn, "t.parquet", 2, False)


# Chunks of SPECIALISE_ROWS rows or more are checked by a pass compiled for their shape
# (absent columns, columns without nulls and outputs not written passed as None). A few
# shapes, as writers produce them (each is a compile of its own), with rows drawn freely:
# the specialised pass must agree with the all-arrays one and with the numpy checks.
SHAPES = {
    "pyarrow defaults": dict(pid="full", va="absent", length="absent", arg="full", order="nulls"),
    "ptpair's Parquet": dict(pid="full", va="full", length="full", arg="full", order="full", page_size="full",
                             migratetype="full"),
    "every cell may be empty": {c: "nulls" for c in COLUMNS},
    "required columns only": dict(pid="nulls", va="nulls", length="nulls", arg="nulls", order="nulls"),
    "CSV text": dict(pid="text", va="text", length="text", arg="text", order="text", page_size="text"),
}
FILL = dict(pid=0, va=0, length=4096, arg=0, order=0, page_size=fmt.PAGE_SIZE, migratetype=0)


def _kernel_row(draw):
    """A kalloc or kfree (an allocator-only trace's rows: no pid, va or length needed)."""
    if draw(st.booleans()):
        return {"op": "kalloc", "arg": draw(st.integers(0, 99)), "order": draw(st.integers(0, fmt.MAX_ORDER))}
    return {"op": "kfree", "arg": draw(st.integers(0, 99))}


@st.composite
def shaped_tables(draw, shape):
    """A table of exactly this shape (so that each shape is one compile): a "nulls" or
    "text" column has a value in row 1 and none in the last row."""
    n = draw(st.integers(3, 30))
    kernel_only = shape.get("va") == "absent"  # (a map or unmap needs its range)
    rows = [(_kernel_row if kernel_only else _good_row)(draw) for _ in range(n)]
    for _ in range(draw(st.integers(0, 2))):  # spoil a cell or two
        rows[draw(st.integers(0, n - 1))][draw(st.sampled_from(COLUMNS))] = draw(st.sampled_from(INTS))
    cols = {"op": pa.array([r["op"] for r in rows], pa.string()).dictionary_encode()}
    for c, how in shape.items():
        vals = [r.get(c, FILL[c] if how == "full" else None) for r in rows]
        if how in ("nulls", "text"):
            vals[1] = FILL[c] if vals[1] is None else vals[1]
            vals[-1] = None
        if how == "absent":
            cols[c] = pa.nulls(n, pa.int64())
        elif how == "text":
            cols[c] = pa.array(["" if v is None else str(v) for v in vals], pa.string())
        else:
            cols[c] = pa.array(vals, pa.int64())
    return pa.table(cols)


@pytest.mark.parametrize("shape", list(SHAPES))
def test_the_pass_compiled_for_a_shape_agrees(shape, monkeypatch):
    from numba import types

    import ptpair.traces._rowcheck as rc

    @settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(shaped_tables(SHAPES[shape]), st.booleans())
    def check(table, sliced):
        if sliced:  # (Arrow buffers that start at a bit offset)
            table = table.slice(1)
        monkeypatch.setattr(rc, "SPECIALISE_ROWS", 1 << 30)
        generic = _fast_trace(table, "t.parquet")
        monkeypatch.setattr(rc, "SPECIALISE_ROWS", 0)
        special = _fast_trace(table, "t.parquet")
        assert (generic is None) == (special is None)
        _as_the_checks(special, table, "specialised")
        if special is not None:
            _same(special, generic)

    check()
    assert any(types.none in sig for sig in rc.check_rows.signatures)  # (the specialised pass ran)
