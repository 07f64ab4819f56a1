"""Sweeps: grid expansion, resumption, and identical results on the local and Dask engines."""

import pandas as pd
import pytest

from ptpair.analysis.sweep import GridError, LocalEngine, expand_grid, load_grid, sweep

GRID = {"schemes": ["pair", "separate"], "memory": ["64MiB"],
        "synth": {"workload": ["mixed", "sparse"], "events": [600], "seeds": [1, 2],
                  "params": {"vmm_fraction": [0.0, 1.0]}}}


def test_grid_expands_every_combination_in_order():
    runs = expand_grid(GRID)
    assert len(runs) == 2 * 2 * 2 * 2
    assert runs[0]["scheme"] == "pair" and runs[1]["scheme"] == "separate"
    assert len({r["run_id"] for r in runs}) == len(runs)
    assert runs[0]["memory_pages"] == 64 * 256


def test_grid_file_with_traces_and_errors(tmp_path):
    (tmp_path / "g.toml").write_text('schemes = ["pair"]\ntraces = ["t.csv"]\n')
    with pytest.raises(GridError, match="t.csv"):
        load_grid(tmp_path / "g.toml")
    (tmp_path / "t.csv").write_text("pid,op,va,length,arg,order\n1,spawn,,,,\n1,map,0,4096,,\n")
    runs = load_grid(tmp_path / "g.toml")
    assert len(runs) == 1 and len(runs[0]["trace_sha256"]) == 64
    for bad in ('schemes = ["bogus"]\n[synth]\n', 'colour = 1\n', 'memory = ["lots"]\n[synth]\n',
                '[synth]\nworkload = ["mixed"]\nfoo = 1\n'):
        with pytest.raises(GridError):
            expand_grid(__import__("tomllib").loads(bad))


def test_sweep_resumes_without_redoing_or_duplicating(tmp_path):
    runs = expand_grid(GRID)
    out = tmp_path / "r.parquet"
    st = sweep(runs[:5], out, LocalEngine(1), progress=False)
    assert (st.ran, st.skipped) == (5, 0)
    st = sweep(runs, out, LocalEngine(2), progress=False)
    assert (st.ran, st.skipped) == (len(runs) - 5, 5)
    df = pd.read_parquet(out)
    assert list(df["run_id"]) == [r["run_id"] for r in runs]  # grid order, no duplicates
    first = out.read_bytes()
    st = sweep(runs, out, LocalEngine(2), progress=False)
    assert st.ran == 0 and out.read_bytes() == first
    assert not (tmp_path / "r.parquet.parts").exists()


def test_finished_parts_survive_an_interrupted_sweep(tmp_path):
    """Runs that finished before an interruption are kept (as parts) and not redone."""
    runs = expand_grid(GRID)
    out = tmp_path / "r.parquet"

    class Interrupting(LocalEngine):
        def map_unordered(self, fn, tasks):
            for i, t in enumerate(tasks):
                if i == 3:
                    raise KeyboardInterrupt
                yield t, fn(t)

    with pytest.raises(KeyboardInterrupt):
        sweep(runs, out, Interrupting(1), progress=False)
    assert not out.exists() and len(list((tmp_path / "r.parquet.parts").glob("*.parquet"))) == 3
    st = sweep(runs, out, LocalEngine(1), progress=False)
    assert (st.skipped, st.ran) == (3, len(runs) - 3)
    assert len(pd.read_parquet(out)) == len(runs)


def test_dask_engine_on_a_local_cluster_gives_identical_results(tmp_path):
    distributed = pytest.importorskip("distributed")
    from ptpair.analysis.sweep import DaskEngine

    runs = expand_grid(GRID)
    local = tmp_path / "local.parquet"
    sweep(runs, local, LocalEngine(1), progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        dask_out = tmp_path / "dask.parquet"
        sweep(runs, dask_out, DaskEngine(client), progress=False)
        # also through the scheduler's tcp address, as `--scheduler` does
        addr_out = tmp_path / "addr.parquet"
        sweep(runs[:4], addr_out, DaskEngine(cluster.scheduler_address), progress=False)
    assert dask_out.read_bytes() == local.read_bytes()
    assert len(pd.read_parquet(addr_out)) == 4


def test_bench_sweep_runs_and_reports_its_figures():
    """The benchmark behind docs/analysis.md's 1-against-2-workers figure keeps working.
    Its times are printed, not judged: the identical results of the engines are checked
    above, and speed is measured by hand."""
    pytest.importorskip("distributed")
    import json
    import subprocess
    import sys
    from pathlib import Path

    res = subprocess.run([sys.executable, "-m", "benchmarks.bench_sweep", "--events", "600", "--seeds", "2"],
                         capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[2])
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["runs"] == 4
    assert {"one_worker_s", "two_workers_s", "ratio"} <= out.keys()
    print(f"bench_sweep (small grid): {out}")


def test_a_grid_can_ask_for_the_pressure_margin(tmp_path):
    runs = expand_grid({"schemes": ["pair", "separate"], "memory": ["64MiB"], "minmem": True,
                        "synth": {"workload": ["kernel-churn"], "events": [300]}})
    out = tmp_path / "r.parquet"
    sweep(runs, out, LocalEngine(1), progress=False)
    df = pd.read_parquet(out)
    assert (df["pressure_margin_pages"] == df["min_memory_pages"] - df["peak_used_pages"]).all()
    assert df["minmem_verified"].all()
    with pytest.raises(GridError, match="true or false"):
        expand_grid({"minmem": "yes", "synth": {"workload": ["mixed"]}})
