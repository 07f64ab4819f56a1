"""Reading and writing canonical traces: golden file, round trips, located errors."""

import json
from pathlib import Path

import numpy as np
import pytest

from ptpair.traces.canonical import read_trace, write_trace
from ptpair.traces.format import Trace, TraceError

DATA = Path(__file__).resolve().parent.parent / "data"
HEADER = "pid,op,va,length,arg,order\n"


def test_golden_csv_reads_as_expected():
    t = read_trace(DATA / "golden.csv")
    want = json.loads((DATA / "golden.expected.json").read_text())
    for col, values in want.items():
        assert getattr(t, col).tolist() == values, col
    assert t.comm.tolist()[:2] == ["init", "init"]
    assert t.time[-1] == pytest.approx(0.010)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_round_trip_keeps_every_column(tmp_path, suffix):
    t = read_trace(DATA / "golden.csv")
    out = tmp_path / f"t{suffix}"
    write_trace(t, out)
    u = read_trace(out)
    for col in ("pid", "op", "va", "length", "arg", "order", "page_size"):
        assert np.array_equal(getattr(t, col), getattr(u, col)), col
    assert np.allclose(t.time, u.time)
    assert [c or None for c in t.comm] == [c or None for c in u.comm]


def test_written_csv_leaves_unused_cells_empty(tmp_path):
    write_trace(read_trace(DATA / "golden.csv"), tmp_path / "t.csv")
    lines = (tmp_path / "t.csv").read_text().splitlines()
    assert lines[1].startswith('1,"spawn",,,,,') or lines[1].startswith("1,spawn,,,,,")


def test_writes_are_atomic_and_leave_no_temporary(tmp_path):
    out = tmp_path / "t.parquet"
    write_trace(read_trace(DATA / "golden.csv"), out)
    assert [p.name for p in tmp_path.iterdir()] == ["t.parquet"]


@pytest.mark.parametrize("body, line, message", [
    ("1,spawn,,,,\n1,mapp,0,1,,\n", 3, "unknown op 'mapp'"),
    ("1,spawn,,,,\n1,map,0x4g,1,,\n", 3, "va is not an integer: '0x4g'"),
    ("1,spawn,,,,\n1,map,0,,,\n", 3, "map needs a length"),
    ("1,spawn,,,,\n1,map,0,0,,\n", 3, "length > 0"),
    ("1,spawn,,,,\n1,map,-4096,1,,\n", 3, "outside the user half"),
    ("1,spawn,,,,\n1,map,0x800000000000,1,,\n", 3, "outside the user half"),
    ("0,kalloc,,,1,11\n", 2, "order 11 is outside 0..10"),
    ("0,kalloc,,,1,\n", 2, "kalloc needs an order"),
    ("2,fork,,,,\n", 2, "fork needs an arg"),
    ("1,spawn,,,,\n1,map,0,1\n", 3, "expected 6 fields, found 4"),
    (",spawn,,,,\n", 2, "pid is empty"),
])
def test_bad_rows_are_reported_with_file_and_line(tmp_path, body, line, message):
    p = tmp_path / "bad.csv"
    p.write_text(HEADER + body)
    with pytest.raises(TraceError) as e:
        read_trace(p)
    assert str(e.value).startswith(f"{p}:{line}: "), str(e.value)
    assert message in str(e.value)


KERNEL_ROWS = "1,spawn,,,,\n,kalloc,,,17,3\n,kfree,,,17,\n1,exit,,,,\n"


def test_kernel_rows_may_leave_the_pid_empty(tmp_path):
    """kalloc and kfree belong to no process: an empty pid reads as 0, on the one-pass
    path (all rows good) and on the careful one (lenient, with a bad row beside them)."""
    p = tmp_path / "k.csv"
    p.write_text(HEADER + KERNEL_ROWS)
    t = read_trace(p)
    assert t.pid.tolist() == [1, 0, 0, 1] and t.arg.tolist() == [0, 17, 17, 0]
    p.write_text(HEADER + KERNEL_ROWS + "1,mapp,0,1,,\n")
    t = read_trace(p, lenient=True)
    assert t.pid.tolist() == [1, 0, 0, 1] and t.skipped == {"unknown op": 1}


def test_parquet_kernel_rows_with_a_null_pid(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ptpair.traces.canonical import iter_trace

    p = tmp_path / "k.parquet"
    ops = ["spawn", "kalloc", "kalloc", "kfree", "kfree", "exit"]
    null = pa.nulls(len(ops), pa.int64())
    pq.write_table(pa.table({"pid": pa.array([3, None, None, None, None, 3], pa.int64()), "op": pa.array(ops),
                             "va": null, "length": null, "arg": pa.array([None, 5, 6, 5, 6, None], pa.int64()),
                             "order": pa.array([None, 0, 2, None, None, None], pa.int64())}), p)
    assert read_trace(p).pid.tolist() == [3, 0, 0, 0, 0, 3]
    # a kernel-only trace: the pid column is null in every row (and, by the file's
    # statistics, not even decoded by the chunked reader)
    pq.write_table(pa.table({"pid": pa.nulls(4, pa.int64()), "op": pa.array(ops[1:5]), "va": null[:4],
                             "length": null[:4], "arg": pa.array([5, 6, 5, 6], pa.int64()),
                             "order": pa.array([0, 2, None, None], pa.int64())}), p)
    assert read_trace(p).pid.tolist() == [0, 0, 0, 0]
    assert np.concatenate([c.pid for c in iter_trace(p, batch_rows=3)]).tolist() == [0, 0, 0, 0]
    pq.write_table(pa.table({"pid": pa.array([None], pa.int64()), "op": pa.array(["spawn"]), "va": null[:1],
                             "length": null[:1], "arg": null[:1], "order": null[:1]}), p)
    with pytest.raises(TraceError, match=r"k.parquet:2: .*pid is empty"):
        read_trace(p)


def test_missing_column_and_empty_file(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text("pid,op\n1,spawn\n")
    with pytest.raises(TraceError, match=r"a.csv:1: missing column\(s\) va, length, arg, order"):
        read_trace(p)
    p.write_text("")
    with pytest.raises(TraceError, match="a.csv:1: empty file"):
        read_trace(p)


def test_hex_and_decimal_agree(tmp_path):
    p = tmp_path / "h.csv"
    p.write_text(HEADER + "1,spawn,,,,\n1,map, 0x7FFFFFFDE000 ,0X1000,,\n1,map,140737488216064,4096,,\n")
    t = read_trace(p)
    assert t.va[1] == t.va[2] == 0x7FFFFFFDE000 and t.length[1] == 4096


def test_from_columns_validates():
    with pytest.raises(TraceError, match="page_size 8192"):
        Trace.from_columns(pid=[1], op=["map"], va=[0], length=[1], page_size=[8192])


def test_chunked_parquet_read_skips_empty_columns_and_reads_the_same(tmp_path):
    """Columns empty in every row group (va, length of an allocator trace) are not
    decoded, yet the chunks hold the same trace, and an empty required column is
    still reported where it is first needed."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ptpair.traces.canonical import _empty_columns, iter_trace

    t = Trace.from_columns(pid=[1] * 6, op=["kalloc", "kalloc", "kfree", "kalloc", "kfree", "kfree"],
                           arg=[5, 6, 5, 7, 6, 7], order=[0, 1, 0, 2, 0, 0])
    p = tmp_path / "a.parquet"
    write_trace(t, p)
    assert _empty_columns(pq.ParquetFile(p)) >= {"va", "length", "page_size"}
    chunks = list(iter_trace(p, batch_rows=4))
    assert [len(c) for c in chunks] == [4, 2]
    whole = read_trace(p)
    for name in ("pid", "op", "va", "length", "arg", "order", "page_size"):
        assert np.array_equal(np.concatenate([getattr(c, name) for c in chunks]), getattr(whole, name)), name
    bad = Trace.from_columns(pid=[1, 1], op=["spawn", "map"], va=[0, 0], length=[4096, 4096])
    write_trace(bad, p)
    table = pq.read_table(p)
    pq.write_table(table.set_column(2, "va", pa.nulls(2, pa.int64())), p)  # the map's address lost
    with pytest.raises(TraceError, match=r"a.parquet:3: map needs an address"):
        list(iter_trace(p))


def test_parquet_written_in_chunks_reads_as_one_trace(tmp_path):
    from ptpair.traces.canonical import write_parquet_chunks

    a = Trace.from_columns(pid=[1, 1], op=["spawn", "map"], va=[0, 0x1000], length=[0, 8192])
    b = Trace.from_columns(pid=[1, 1], op=["kalloc", "exit"], arg=[7, 0], order=[2, 0])
    p = tmp_path / "c.parquet"
    assert write_parquet_chunks(iter([a, b]), p) == 4
    t = read_trace(p)
    assert list(t.op) == [0, 1, 7, 6] and list(t.length) == [0, 8192, 0, 0] and list(t.order) == [0, 0, 2, 0]
    with pytest.raises(ValueError):
        write_parquet_chunks(iter([]), tmp_path / "none.parquet")
    assert not (tmp_path / "none.parquet").exists()


def test_uint64_beyond_int64_is_a_located_error(tmp_path):
    """A Parquet written by another tool with an unsigned column too large for int64."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = tmp_path / "u.parquet"
    pq.write_table(pa.table({"pid": pa.array([1, 1, 1], pa.uint64()), "op": ["spawn", "kalloc", "kalloc"],
                             "va": pa.nulls(3, pa.uint64()), "length": pa.nulls(3, pa.uint64()),
                             "arg": pa.array([None, 5, 1 << 63], pa.uint64()),
                             "order": pa.array([None, 0, 0], pa.uint64())}), p)
    with pytest.raises(TraceError, match=r"u.parquet:4: arg 9223372036854775808 is beyond 2\^63 - 1"):
        read_trace(p)
    t = read_trace(p, lenient=True)
    assert len(t) == 2 and t.skipped == {"non-numeric field": 1}


def test_parquet_with_text_ops_as_pyarrow_writes_them(tmp_path):
    """pyarrow writes a string column as text (dictionary pages in the file): read through
    the dictionary, it gives the trace ptpair's own file gives; a null op is named."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ptpair.traces.canonical import iter_trace

    trace = Trace.from_columns(pid=[1, 1, 0, 0, 1], op=["spawn", "map", "kalloc", "kfree", "exit"],
                               va=[0, 0x1000, 0, 0, 0], length=[0, 8192, 0, 0, 0], arg=[0, 0, 9, 9, 0],
                               order=[0, 0, 3, 0, 0])
    own = tmp_path / "own.parquet"
    write_trace(trace, own)
    table = pq.read_table(own)
    for string_type in (pa.string(), pa.large_string()):
        p = tmp_path / "text.parquet"
        pq.write_table(table.set_column(1, "op", table.column("op").cast(string_type)), p)
        chunks = list(iter_trace(p, batch_rows=2))
        for op, order in ((read_trace(p).op, read_trace(p).order),
                          (np.concatenate([c.op for c in chunks]), np.concatenate([c.order for c in chunks]))):
            assert op.tolist() == trace.op.tolist() and order.tolist() == trace.order.tolist()
    ops = pa.array(["spawn", None, "exit"])
    null = pa.nulls(3, pa.int64())
    pq.write_table(pa.table({"pid": pa.array([1, 1, 1]), "op": ops, "va": null, "length": null, "arg": null,
                             "order": null}), p)
    with pytest.raises(TraceError, match=r"text.parquet:3: op is empty"):
        list(iter_trace(p))
