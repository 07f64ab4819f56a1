"""Fuzzing the readers: mutated real trace lines give a result or a clean TraceError.

Inputs tried per CI run: FUZZ_CSV + FUZZ_PARQUET examples (hypothesis, derandomized so
CI is reproducible)."""

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ptpair.sim.machine import Config
from ptpair.sim.replay import replay
from ptpair.traces.canonical import read_trace, write_trace
from ptpair.traces.format import TraceError

# (tests/traces/test_strace*.py still import STRACE_LINES and mutated_lines from this
# module; they live in tests/gen.py, which tests may share)
from tests.gen import KMEM_LINES, MUTATIONS, STRACE_LINES, mutate_rows, mutated_lines  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent.parent
CORPUS = ((ROOT / "tests" / "data" / "golden.csv").read_text().splitlines()
          + (ROOT / "traces" / "data" / "mixed.csv").read_text().splitlines()[1:40]
          + (ROOT / "traces" / "data" / "kernel-churn.csv").read_text().splitlines()[1:20])
HEADER, ROWS = CORPUS[0], [line for line in CORPUS[1:] if not line.startswith("pid,")]
FUZZ_CSV = 300
FUZZ_PARQUET = 100
NASTY = ["", "-1", "0x", "0xZZ", "1e9", "9" * 30, "nan", " ", "\"", "spawn", "exit", "\x00", "é", "-0x10",
         "0x800000000000", "4096", "11", "kfree"]


@st.composite
def mutated_csv(draw):
    rows = list(draw(st.lists(st.sampled_from(ROWS), min_size=0, max_size=25)))
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(MUTATIONS + ["header"]))
        if kind == "header":
            rows.insert(0, draw(st.sampled_from([HEADER, "pid,op", "", "op,pid,va,length,arg,order"])))
        elif rows:
            mutate_rows(draw, rows, kind, ",", NASTY, 6)
    return (HEADER + "\n" + "\n".join(rows) + ("\n" if draw(st.booleans()) else "")).encode("utf-8", "replace")


def _must_be_clean(path):
    try:
        read_trace(path)
        replay(path, Config(memory_pages=4096))
    except TraceError as e:
        assert str(e).startswith(str(path))
    try:
        r = replay(path, Config(memory_pages=4096), lenient=True)
        assert r.skipped_lines is not None
    except TraceError as e:  # a file-level problem (no header, binary) stays an error
        assert str(e).startswith(str(path))


@settings(max_examples=FUZZ_CSV, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=mutated_csv())
def test_mutated_csv_gives_a_result_or_a_clean_error(tmp_path, data):
    path = tmp_path / "fuzz.csv"
    path.write_bytes(data)
    _must_be_clean(path)


@pytest.fixture(scope="module")
def parquet_bytes(tmp_path_factory):
    path = tmp_path_factory.mktemp("pq") / "g.parquet"
    write_trace(read_trace(ROOT / "tests" / "data" / "golden.csv"), path)
    return path.read_bytes()


@settings(max_examples=FUZZ_PARQUET, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(cut=st.integers(0, 2000), flips=st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 255)), max_size=6))
def test_mutated_parquet_gives_a_result_or_a_clean_error(tmp_path, parquet_bytes, cut, flips):
    data = bytearray(parquet_bytes)
    for pos, val in flips:
        data[pos % len(data)] = val
    if cut:
        data = data[: max(len(data) - cut, 0)]
    path = tmp_path / "fuzz.parquet"
    path.write_bytes(bytes(data))
    try:
        read_trace(path)
        replay(path, Config(memory_pages=4096))
    except TraceError as e:
        assert str(e).startswith(str(path))


# --- the recorded formats: strace logs and perf kmem logs ---------------------------------
FUZZ_STRACE = 200
FUZZ_KMEM = 200


def _recorded_must_be_clean(path, fmt):
    from ptpair.traces.readers import read_any

    for lenient in (False, True):
        try:
            t = read_any(path, fmt, lenient=lenient)
            replay(t, Config(memory_pages=4096), lenient=lenient)
        except TraceError as e:
            assert str(e).startswith(str(path)), str(e)


@settings(max_examples=FUZZ_STRACE, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=mutated_lines(STRACE_LINES))
def test_mutated_strace_log_gives_a_result_or_a_clean_error(tmp_path, data):
    path = tmp_path / "fuzz.log"
    path.write_bytes(data)
    _recorded_must_be_clean(path, "strace")


@settings(max_examples=FUZZ_KMEM, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=mutated_lines(KMEM_LINES))
def test_mutated_kmem_log_gives_a_result_or_a_clean_error(tmp_path, data):
    path = tmp_path / "fuzz.txt"
    path.write_bytes(data)
    _recorded_must_be_clean(path, "kmem")


@settings(max_examples=100, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.one_of(mutated_lines(STRACE_LINES), mutated_lines(KMEM_LINES), mutated_csv()))
def test_format_detection_gives_a_result_or_a_clean_error(tmp_path, data):
    path = tmp_path / "unknown.input"
    path.write_bytes(data)
    _recorded_must_be_clean(path, None)
