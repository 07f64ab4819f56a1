"""End-to-end: replays from a free map or aged memory, with the real `ptpair` command."""

import json
import os
import tomllib
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ptpair.analysis.sweep import GridError, expand_grid, run_one
from ptpair.traces.freemap import read_freemap
from tests.test_cli import DATA, ptpair

CORPUS = Path(__file__).resolve().parent.parent / "traces" / "corpus"
MAP = CORPUS / "freemap-normal.parquet"
TRACE = CORPUS / "make-j4.parquet"


def replay_json(*args):
    p = ptpair("replay", *args, "--json")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_replay_on_the_corpus_free_map():
    d = replay_json(TRACE, "--initial", MAP)
    manifest = tomllib.loads((CORPUS / "MANIFEST").read_text())["freemap"][0]
    assert d["initial"]["sha256"] == manifest["sha256"] and d["initial"]["zone"] == "Normal"
    assert d["memory_pages"] == manifest["frames"] and d["age"] is None
    counts = read_freemap(MAP).counts()
    f = d["final"]
    assert (f["background_pages"], f["hole_pages"]) == (counts["used"], counts["hole"])
    # conservation with the initial state's owners; the trace's own pages are all gone at the end
    assert f["free_pages"] + f["pt_pages"] + f["data_pages"] + f["kalloc_pages"] + f["background_pages"] == (
        d["memory_pages"] - f["hole_pages"])
    assert f["free_pages"] == counts["free"]
    assert f["hugepage_blocks"]["blocked"]["background"] > 0
    text = ptpair("compare", TRACE, "--initial", MAP, "--schemes", "pair,separate")
    assert text.returncode == 0 and f"from the free map {MAP}" in text.stdout


def test_bad_initial_states_are_usage_errors(tmp_path):
    cases = [(["--initial", MAP, "--memory", "1GiB"], "the memory is the free map's"),
             (["--initial", MAP, "--age", "synthetic:free=0.5,unusable=0.5,seed=1"], "give one"),
             (["--age", "synthetic:free=1.5,unusable=0.5,seed=1"], "free must be a fraction"),
             (["--age", "synthetic:free=0.5,unusable=0.5"], "seed"),
             (["--initial", tmp_path / "none.parquet"], "none.parquet: no such file"),
             (["--initial", TRACE], "not a free map")]
    # a Parquet file written by pandas with its defaults is not a free map either
    pd.DataFrame({"start": [0], "frames": [10], "state": ["free"]}).to_parquet(tmp_path / "pandas.parquet")
    cases.append((["--initial", tmp_path / "pandas.parquet"], "pandas.parquet: not a free map"))
    for args, message in cases:
        p = ptpair("replay", DATA / "golden.csv", *args)
        assert p.returncode == 2 and message in p.stderr and "Traceback" not in p.stderr, (args, p.stderr)
    for args in (["--initial", MAP], ["--age", TRACE]):
        p = ptpair("minmem", DATA / "golden.csv", *args)
        assert p.returncode == 2 and "fixes the memory size" in p.stderr


def test_a_map_written_by_pyarrow_by_hand_is_read(tmp_path):
    """A map a user writes (pyarrow defaults, our metadata): holes, background and free runs."""
    table = pa.table({"start": [0, 512, 1024, 1536], "frames": [512, 512, 512, 512],
                      "state": ["used", "free", "hole", "free"]})
    meta = {"format": "ptpair-freemap", "version": 1, "zone": "Normal", "node": 0, "base_pfn": 0}
    pq.write_table(table.replace_schema_metadata({b"ptpair": json.dumps(meta).encode()}), tmp_path / "m.parquet")
    d = replay_json(DATA / "golden.csv", "--initial", tmp_path / "m.parquet", "--scheme", "pair")
    f = d["final"]
    assert (d["memory_pages"], f["background_pages"], f["hole_pages"]) == (2048, 512, 512)
    assert f["hugepage_blocks"]["blocked"]["background"] == 1  # the used block; the hole's is not counted


def test_age_by_a_warm_up_trace_keeps_its_leftovers_as_background(tmp_path):
    """A warm-up whose process stays alive: its pages and tables become background, and
    the measured trace may spawn the same pid again."""
    warm = tmp_path / "warm.csv"
    warm.write_text("pid,op,va,length,arg,order\n1,spawn,,,,\n1,map,0,40960,,\n7,kalloc,,,99,2\n")
    d = replay_json(DATA / "golden.csv", "--age", warm, "--memory-pages", 4096, "--scheme", "separate")
    # root + pml3 + pml2 + pml1 KPT pages, 10 data pages, a 4-frame kalloc
    assert d["final"]["background_pages"] == 4 + 10 + 4
    assert d["age"]["trace"] == str(warm) and len(d["age"]["sha256"]) == 64
    alone = replay_json(DATA / "golden.csv", "--memory-pages", 4096, "--scheme", "separate")
    assert d["events"] == alone["events"]  # only the measured trace's events are counted
    assert d["final"]["pt_pages"] == alone["final"]["pt_pages"]
    bad = tmp_path / "bad.csv"
    bad.write_text("pid,op,va,length,arg,order\n1,exit,,,,\n")
    p = ptpair("replay", DATA / "golden.csv", "--age", bad)
    assert p.returncode == 2 and f"{bad}:2: (warm-up trace)" in p.stderr


def test_minmem_reages_the_synthetic_ager_at_every_size():
    args = ("--age", "synthetic:free=0.25,unusable=0.9,seed=1", "--json")
    a = json.loads(ptpair("minmem", TRACE, *args).stdout)
    pristine = json.loads(ptpair("minmem", TRACE, "--json").stdout)
    assert a["peak_used_pages"] == pristine["peak_used_pages"]  # the trace's own peak
    assert a["min_memory_pages"] >= 4 * a["peak_used_pages"] - 4  # a quarter of memory free at start
    assert a["pressure_margin_pages"] >= 0 and a["verified"]
    d = replay_json(TRACE, "--age", "synthetic:free=0.25,unusable=0.9,seed=1", "--memory-pages", a["min_memory_pages"])
    assert sum(d["alloc_failures"]) == 0 and abs(d["age"]["unusable_index"] - 0.9) < 0.05


def test_a_sweep_grid_takes_initial_and_age_axes(tmp_path):
    (tmp_path / "w.csv").write_text("pid,op,va,length,arg,order\n9,kalloc,,,1,0\n")
    grid = {"schemes": ["pair"], "memory": ["64MiB", "128MiB"], "traces": [str(TRACE)],
            "initial": ["pristine", str(MAP)], "age": ["none", "synthetic:free=0.5,unusable=0.5,seed=2", "w.csv"]}
    runs = expand_grid(grid, base=tmp_path)
    on_map = [r for r in runs if "initial" in r]
    # pristine: 2 memories x 3 ages; the map: its own memory, no synthetic ager, 2 ages
    assert len(runs) == 6 + 2 and len(on_map) == 2
    assert {r["memory_pages"] for r in on_map} == {read_freemap(MAP).frames}
    row = run_one(next(r for r in runs if r.get("age", "").endswith("w.csv") and "initial" not in r))
    assert row["age"].endswith("w.csv") and row["alloc_failures"] == 0
    with pytest.raises(GridError, match="minmem"):
        expand_grid({**grid, "minmem": True}, base=tmp_path)


@pytest.mark.skipif(not os.access("/proc/kpageflags", os.R_OK), reason="/proc/kpageflags is not readable (not root)")
def test_initial_live_captures_and_saves_the_map():
    p = ptpair("replay", DATA / "golden.csv", "--initial", "live", "--json")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    saved = Path(d["initial"]["file"])
    try:
        assert f"saved to {saved}" in p.stderr and saved.parent.name == "freemaps"
        assert d["memory_pages"] == read_freemap(saved).frames and d["final"]["background_pages"] > 0
    finally:
        saved.unlink(missing_ok=True)
