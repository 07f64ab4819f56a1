"""Sweeps: grid expansion, resumption, and identical results on the local and Dask engines;
what an existing output may be mixed with (another grid, another ptpair)."""

import json
import re

import pandas as pd
import pyarrow.parquet as pq
import pytest

from ptpair import provenance
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
    st = sweep(runs, out, LocalEngine(2), progress=False, merge=True)  # a larger grid: merged, not mixed silently
    assert (st.ran, st.skipped, st.kept) == (len(runs) - 5, 5, 0)
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
    import subprocess
    import sys
    from pathlib import Path

    res = subprocess.run([sys.executable, "-m", "benchmarks.bench_sweep", "--events", "600", "--seeds", "2",
                          "--repeats", "2", "--json"],
                         capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[2])
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["runs"] == 4 and out["repeats"] == 2 and len(out["ratios"]) == 2
    assert {"one_worker_s", "two_workers_s", "ratio", "ratio_low", "ratio_high", "ratio_coverage",
            "cores_one_worker", "cores_two_workers", "scaling_shown", "verdict"} <= out.keys()
    assert out["ratio_low"] <= out["ratio"] <= out["ratio_high"] and out["cores_two_workers"] > 0
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


# --- what an output may be mixed with ------------------------------------------------------
SMALL = {"schemes": ["pair"], "memory": ["64MiB"], "synth": {"workload": ["mixed"], "events": [300], "seeds": [1, 2]}}
OTHER = {**SMALL, "synth": {**SMALL["synth"], "seeds": [2, 3]}}  # shares one run with SMALL


def _grid_of(path) -> list[str]:
    return json.loads(pq.read_schema(path).metadata[b"ptpair.grid"])


def _snapshot(folder) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_file_records_its_grid_and_the_code_that_made_each_row(tmp_path):
    runs = expand_grid(SMALL)
    out = tmp_path / "r.parquet"
    sweep(runs, out, LocalEngine(1), progress=False)
    df = pd.read_parquet(out)
    assert _grid_of(out) == list(df["run_id"]) == [r["run_id"] for r in runs]
    assert (df["ptpair_version"] == provenance.version()).all()
    commit = provenance.git_commit()
    assert (df["git_commit"].isna().all() if commit is None else (df["git_commit"] == commit).all())


def test_provenance_names_the_code():
    commit = provenance.git_commit()
    assert commit is None or re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", commit)
    assert provenance.git_commit() is commit  # looked up once per process
    assert provenance.short("0123456789abcdef" * 2 + "01234567+dirty") == "0123456789ab+dirty"
    assert provenance.describe("0.1.0", None) == "ptpair 0.1.0 (not a git checkout)"
    assert "did not record" in provenance.describe(None, None)


def test_another_grid_into_an_existing_output_is_refused_unless_merged(tmp_path):
    out = tmp_path / "r.parquet"
    sweep(expand_grid(SMALL), out, LocalEngine(1), progress=False)
    before = _snapshot(tmp_path)
    other = expand_grid(OTHER)
    with pytest.raises(GridError, match=r"r.parquet holds 2 runs of another grid \(1 not in this grid, 1 of this "
                                        r"grid's 2 not in it\); pass --merge"):
        sweep(other, out, LocalEngine(1), progress=False)
    with pytest.raises(GridError, match="another grid"):  # a part of it is another grid too
        sweep(expand_grid(SMALL)[:1], out, LocalEngine(1), progress=False)
    assert _snapshot(tmp_path) == before  # nothing written, no parts folder
    st = sweep(other, out, LocalEngine(1), progress=False, merge=True)
    assert (st.total, st.skipped, st.ran, st.kept) == (2, 1, 1, 1)
    union = [r["run_id"] for r in expand_grid(SMALL)] + [other[1]["run_id"]]  # the file's runs, then the new
    assert list(pd.read_parquet(out)["run_id"]) == _grid_of(out) == union
    # the union is now the file's grid: rerunning it is a resume, not a merge
    assert sweep(expand_grid({**SMALL, "synth": {**SMALL["synth"], "seeds": [1, 2, 3]}}), out, LocalEngine(1),
                 progress=False).ran == 0


def test_parts_of_another_grid_are_refused_unless_merged(tmp_path):
    out = tmp_path / "r.parquet"

    class Interrupting(LocalEngine):
        def map_unordered(self, fn, tasks):
            for i, t in enumerate(tasks):
                if i == 1:
                    raise KeyboardInterrupt
                yield t, fn(t)

    with pytest.raises(KeyboardInterrupt):
        sweep(expand_grid(SMALL), out, Interrupting(1), progress=False)
    before = _snapshot(tmp_path)
    # the part done (seed 1) is not in OTHER; a grid holding it is refused as well: the parts' grid is recorded
    for grid in (OTHER, {**SMALL, "synth": {**SMALL["synth"], "seeds": [1, 2, 3]}}):
        with pytest.raises(GridError, match=r"r.parquet.parts/ holds an unfinished sweep of another grid \(1 of its "
                                            r"2 runs done"):
            sweep(expand_grid(grid), out, LocalEngine(1), progress=False)
    assert _snapshot(tmp_path) == before
    (tmp_path / "r.parquet.parts" / "grid.json").unlink()  # parts of an older ptpair: judged by what they hold
    with pytest.raises(GridError, match="holds 1 run finished, 1 of them not in this grid"):
        sweep(expand_grid(OTHER), out, LocalEngine(1), progress=False)
    st = sweep(expand_grid(OTHER), out, LocalEngine(1), progress=False, merge=True)
    assert (st.skipped, st.ran, st.kept) == (0, 2, 1)  # the finished part is kept, the unfinished run is not run
    seed1, (seed2, seed3) = expand_grid(SMALL)[0]["run_id"], [r["run_id"] for r in expand_grid(OTHER)]
    assert _grid_of(out) == [seed1, seed2, seed3] and not (tmp_path / "r.parquet.parts").exists()


def test_rows_of_another_ptpair_are_refused_unless_allowed(tmp_path, monkeypatch):
    runs = expand_grid(SMALL)
    out = tmp_path / "r.parquet"
    with monkeypatch.context() as m:
        m.setattr(provenance, "version", lambda: "0.0.9")
        sweep(runs[:1], out.with_name("p.parquet"), LocalEngine(1), progress=False)  # for a part, below
        sweep(runs, out, LocalEngine(1), progress=False)
    before = _snapshot(tmp_path)
    with pytest.raises(GridError, match=r"r.parquet holds 2 runs finished, 2 by ptpair 0.0.9 .*; this is ptpair "
                                        rf"{re.escape(provenance.version())} .*pass --allow-mixed-versions"):
        sweep(runs, out, LocalEngine(1), progress=False)
    assert _snapshot(tmp_path) == before
    st = sweep(runs, out, LocalEngine(1), progress=False, allow_mixed_versions=True)
    assert (st.skipped, st.ran) == (2, 0) and (pd.read_parquet(out)["ptpair_version"] == "0.0.9").all()

    # a finished part of another version: refused the same way
    out2 = tmp_path / "s.parquet"
    (tmp_path / "s.parquet.parts").mkdir()
    (tmp_path / "p.parquet").rename(tmp_path / "s.parquet.parts" / f"{runs[0]['run_id']}.parquet")
    with pytest.raises(GridError, match=r"s.parquet.parts/ holds 1 run finished, 1 by ptpair 0.0.9"):
        sweep(runs, out2, LocalEngine(1), progress=False)
    st = sweep(runs, out2, LocalEngine(1), progress=False, allow_mixed_versions=True)
    assert (st.skipped, st.ran) == (1, 1)
    assert list(pd.read_parquet(out2)["ptpair_version"]) == ["0.0.9", provenance.version()]


def test_a_file_of_an_older_ptpair_is_judged_by_its_rows(tmp_path):
    """No grid metadata, no provenance columns: the rows are its grid; their version is unknown."""
    runs = expand_grid(SMALL)
    out = tmp_path / "r.parquet"
    sweep(runs, out, LocalEngine(1), progress=False)
    pd.read_parquet(out).drop(columns=["ptpair_version", "git_commit"]).to_parquet(out, index=False)
    with pytest.raises(GridError, match="another grid"):
        sweep(expand_grid(OTHER), out, LocalEngine(1), progress=False, allow_mixed_versions=True)
    with pytest.raises(GridError, match="did not record its version.*--allow-mixed-versions"):
        sweep(runs, out, LocalEngine(1), progress=False)
    assert sweep(runs, out, LocalEngine(1), progress=False, allow_mixed_versions=True).ran == 0
    assert _grid_of(out) == [r["run_id"] for r in runs]  # recorded from now on


def test_a_worker_with_another_ptpair_is_refused_as_its_row_arrives(tmp_path):
    """A Dask worker may run another install: its row is refused before it is written."""
    runs = expand_grid(SMALL)
    out = tmp_path / "r.parquet"

    class OtherInstall(LocalEngine):
        def map_unordered(self, fn, tasks):
            for t in tasks:
                yield t, {**fn(t), "ptpair_version": "0.0.9"}

    with pytest.raises(GridError, match=r"made by ptpair 0.0.9 .* on a worker.*--allow-mixed-versions"):
        sweep(runs, out, OtherInstall(1), progress=False)
    assert not out.exists() and not list((tmp_path / "r.parquet.parts").glob("*.parquet"))
    st = sweep(runs, out, OtherInstall(1), progress=False, allow_mixed_versions=True)
    assert st.ran == len(runs) and (pd.read_parquet(out)["ptpair_version"] == "0.0.9").all()
