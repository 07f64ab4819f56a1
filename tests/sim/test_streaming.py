"""Replaying a file in chunks gives exactly the in-memory result, errors keep their lines."""

import pytest

from ptpair.sim.machine import Config
from ptpair.sim.replay import replay
from ptpair.traces.canonical import iter_trace, read_trace, write_trace
from ptpair.traces.format import TraceError
from ptpair.traces.synth import synth


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_chunked_replay_equals_in_memory(tmp_path, suffix):
    trace = synth("fork-heavy", seed=4, events=5000)
    path = tmp_path / f"t{suffix}"
    write_trace(trace, path)
    cfg = Config("separate", "lifo", 1 << 15, "linux", "exit")
    whole = replay(trace, cfg, sample_every=1000).to_dict()
    for rows in (1, 333, 4096, 1 << 20):
        assert replay(path, cfg, sample_every=1000, batch_rows=rows).to_dict() == whole
    assert sum(len(c) for c in iter_trace(path, batch_rows=700)) == 5000


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_errors_in_later_chunks_name_the_right_line(tmp_path, suffix):
    rows = ["pid,op,va,length,arg,order", "1,spawn,,,,"] + ["1,map,0,4096,,"] * 50 + ["7,exit,,,,"]
    src = tmp_path / "bad.csv"
    src.write_text("\n".join(rows) + "\n")
    path = src if suffix == ".csv" else tmp_path / "bad.parquet"
    if suffix == ".parquet":
        write_trace(read_trace(src), path)
    with pytest.raises(TraceError, match=rf"{path.name}:53: exit of pid 7"):
        replay(path, Config(memory_pages=64), batch_rows=8)
    rows[30] = "1,map,zz,4096,,"
    src.write_text("\n".join(rows) + "\n")
    if suffix == ".csv":
        with pytest.raises(TraceError, match=r"bad.csv:31: va is not an integer"):
            replay(src, Config(memory_pages=64), batch_rows=8)
