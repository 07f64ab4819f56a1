"""End-to-end: the real `ptpair` command, as a user runs it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent / "data"
BUNDLED = Path(__file__).resolve().parent.parent / "traces" / "data"


def ptpair(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "ptpair", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd)


def test_replay_json_has_the_documented_fields():
    p = ptpair("replay", DATA / "golden.csv", "--scheme", "separate", "--json")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["scheme"] == "separate" and d["policy"] == "address" and d["memory_pages"] == 1 << 20
    assert d["events"] == 11
    f = d["final"]
    assert list(f["kpt_pages_by_level"]) == ["pml4", "pml3", "pml2", "pml1"]
    assert f["kpt_pages_by_level"]["pml4"] == 1  # pid 1 is alive, pid 2 exited
    for key in ("ept_pages", "data_pages", "free_pages"):
        assert isinstance(f[key], int)
    assert len(f["buddyinfo"]) == 11 and len(d["alloc_failures"]) == 11
    assert {"pt_pages"} <= set(d["peak"]) and {"failed_maps", "failed_spawns", "walk"} <= set(d)
    # pid 1 is a VMM; text (0x400000) and stack (0x7fff...) need a root, 2 pml3, 2 pml2, 2 pml1
    assert f["ept_pages"] == 7 and f["data_pages"] == 5 + 33
    assert f["vmm_kpt_pages"] == f["kpt_pages"] == 7  # the one live process is the VMM
    assert "timing" not in d
    assert "timing" in json.loads(ptpair("replay", DATA / "golden.csv", "--json", "--timing").stdout)


def test_replay_json_is_deterministic_and_memory_options_agree(tmp_path):
    trace = BUNDLED / "fork-heavy.csv"
    a = ptpair("replay", trace, "--json", "--memory", "64MiB", "--policy", "lifo")
    b = ptpair("replay", trace, "--json", "--memory-pages", "16384", "--policy", "lifo")
    assert a.returncode == 0 and a.stdout == b.stdout
    assert json.loads(a.stdout)["memory_pages"] == 16384


def test_compare_prints_every_scheme_side_by_side():
    p = ptpair("compare", BUNDLED / "mixed.csv", "--memory", "1GiB")
    assert p.returncode == 0, p.stderr
    header = [line for line in p.stdout.splitlines() if "unit" in line][0]
    for s in ("pair", "separate", "separate-eager", "pair-on-vmm"):
        assert s in header
    assert "EPT pages (final)" in p.stdout
    p = ptpair("compare", BUNDLED / "mixed.csv", "--schemes", "pair,separate", "--csv")
    assert p.stdout.splitlines()[0] == "metric,trace,unit,pair,separate"


def test_compare_without_traces_runs_the_bundled_corpus(tmp_path):
    p = ptpair("compare", "--schemes", "pair,separate", "--memory", "1GiB", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    for name in ("mixed", "vmm-heavy", "sparse", "fork-heavy", "kernel-churn"):
        assert f"{name}.csv: 20000 events" in p.stdout


def test_synth_is_byte_identical_for_the_same_seed(tmp_path):
    for suffix in (".csv", ".parquet"):
        outs = []
        for name in ("a", "b"):
            out = tmp_path / f"{name}{suffix}"
            p = ptpair("synth", "--workload", "vmm-heavy", "--seed", 5, "--events", 2000, "-o", out)
            assert p.returncode == 0, p.stderr
            outs.append(out.read_bytes())
        assert outs[0] == outs[1]
    p = ptpair("replay", tmp_path / "a.parquet", "--json")
    assert json.loads(p.stdout)["events"] == 2000


def test_synth_parameters_reach_the_generator(tmp_path):
    out = tmp_path / "t.csv"
    p = ptpair("synth", "--workload", "mixed", "--vmm-fraction", "1", "--param", "processes=3",
               "--events", 500, "-o", out)
    assert p.returncode == 0, p.stderr
    from ptpair.traces.canonical import read_trace
    from ptpair.traces.format import OP_CODE

    t = read_trace(out)
    n = lambda op: int((t.op == OP_CODE[op]).sum())
    assert n("vmm") == n("spawn") + n("exec")  # every new image became a VMM
    out2 = tmp_path / "t2.csv"
    ptpair("synth", "--workload", "mixed", "--param", "processes=20", "--events", 500, "-o", out2)
    assert n("spawn") < int((read_trace(out2).op == OP_CODE["spawn"]).sum())


def test_convert_round_trip_replays_identically(tmp_path):
    out = tmp_path / "g.parquet"
    assert ptpair("convert", DATA / "golden.csv", "-o", out).returncode == 0
    a = ptpair("replay", DATA / "golden.csv", "--json").stdout
    b = ptpair("replay", out, "--json").stdout
    assert a == b
    # canonical -> Parquet is streamed: a bad row fails the whole conversion, nothing is written
    bad = tmp_path / "bad.csv"
    bad.write_text("pid,op,va,length,arg,order\n1,spawn,,,,\n1,map,0x1000,-5,,\n")
    r = ptpair("convert", bad, "-o", tmp_path / "bad.parquet")
    assert r.returncode == 2 and r.stderr.strip().endswith("bad.csv:3: map needs a length > 0 bytes, got -5")
    assert "Traceback" not in r.stderr and list(tmp_path.glob("*bad.parquet*")) == []


@pytest.mark.parametrize("content, where", [
    ("pid,op,va,length,arg,order\n1,spawn,,,,\n1,jump,,,,\n", ":3: unknown op 'jump'"),
    ("pid,op,va,length,arg,order\n1,map,0,4096,,\n", ":2: map of pid 1, which is not alive"),
    ("\x00\x01binary", ":1: binary data"),
])
def test_bad_input_is_one_located_line_and_status_2(tmp_path, content, where):
    p = tmp_path / "bad.csv"
    p.write_text(content)
    r = ptpair("replay", p)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [f"{p}{where}" + r.stderr.strip().split(where, 1)[1]]


def test_bad_options_exit_2_without_traceback():
    for args in (["replay", DATA / "golden.csv", "--memory", "lots"],
                 ["replay", DATA / "golden.csv", "--memory", "16TiB"],
                 ["replay", DATA / "golden.csv", "--memory-pages", 3_000_000_000],
                 ["compare", DATA / "golden.csv", "--schemes", "pair,bogus"],
                 ["synth", "--seed", -1, "-o", "/tmp/never.csv"],
                 ["synth", "--lifetime", -5, "-o", "/tmp/never.csv"],
                 ["synth", "--processes", 0, "-o", "/tmp/never.csv"],
                 ["minmem", DATA / "golden.csv", "--max-probes", 1],
                 ["replay", "/nonexistent.csv"]):
        r = ptpair(*args)
        assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.strip(), (args, r.stderr)


def test_help_lists_the_verbs():
    r = ptpair("--help")
    assert r.returncode == 0
    for verb in ("replay", "compare", "synth", "convert"):
        assert verb in r.stdout


def test_compare_shows_differences_and_decomposition():
    p = ptpair("compare", BUNDLED / "mixed.csv", "--memory", "1GiB")
    assert "against separate:" in p.stdout
    assert "= waste (separate-eager - separate)" in p.stdout


def test_stats_and_breakeven_commands():
    p = ptpair("stats", "--seeds", "1-4", "--events", 800, "--schemes", "pair", "--memory", "256MiB")
    assert p.returncode == 0, p.stderr
    assert "n = 4" in p.stdout and "Wilcoxon" in p.stdout and "paired bootstrap" in p.stdout
    p = ptpair("breakeven", "--fractions", "0,1", "--seeds", "1", "--events", 800, "--json")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["runs"][0]["ratio"] == 2.0 and {"naive_model_r2", "naive_model_r2_nominal"} <= set(d["fit"])
    assert d["fit"]["exact_model_max_error_pages"] == 0
    p = ptpair("breakeven", "--fractions", "0,1", "--seeds", "1", "--events", 800)
    assert "largest error against the separate replay 0 pages" in p.stdout and "nominal fraction): R^2" in p.stdout


def test_minmem_and_frag_commands(tmp_path):
    trace = tmp_path / "k.csv"
    ptpair("synth", "--workload", "kernel-churn", "--events", 800, "-o", trace)
    p = ptpair("minmem", trace, "--json")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["verified"] and d["step_pages"] == 1
    assert d["pressure_margin_pages"] == d["min_memory_pages"] - d["peak_used_pages"] >= 0
    if d["pressure_margin_pages"]:  # frame-exact: one frame less fails
        r = json.loads(ptpair("replay", trace, "--memory-pages", d["min_memory_pages"] - 1, "--json").stdout)
        assert sum(r["alloc_failures"]) > 0
    bi = tmp_path / "buddyinfo"
    bi.write_text("Node 0, zone      DMA      0      0      0      0      0      0      0      0      1      1      3 \n")
    p = ptpair("frag", bi)
    assert p.stdout.splitlines()[0].endswith("0.066 0.200 ")
    out = tmp_path / "series.csv"
    p = ptpair("record", "buddyinfo", "--interval", 0, "--count", 2, "--source", bi, "-o", out)
    assert p.returncode == 0 and len(out.read_text().splitlines()) == 3


def test_sweep_command_and_bad_grid(tmp_path):
    grid = tmp_path / "g.toml"
    grid.write_text('schemes = ["pair"]\nmemory = ["64MiB"]\n[synth]\nworkload = ["mixed"]\nevents = [300]\n'
                    'seeds = [1, 2]\n')
    out = tmp_path / "r.parquet"
    p = ptpair("sweep", grid, "-o", out, "--workers", 1, "--no-progress")
    assert p.returncode == 0, p.stderr
    import pandas as pd

    assert len(pd.read_parquet(out)) == 2
    grid.write_text("schemes = [\n")
    p = ptpair("sweep", grid, "-o", out)
    assert p.returncode == 2 and "Traceback" not in p.stderr and str(grid) in p.stderr


def test_sweep_refuses_another_grid_into_its_output_unless_merged(tmp_path):
    grid = tmp_path / "g.toml"
    body = 'schemes = ["pair"]\nmemory = ["64MiB"]\n[synth]\nworkload = ["mixed"]\nevents = [300]\n'
    grid.write_text(body + "seeds = [1]\n")
    out = tmp_path / "r.parquet"
    assert ptpair("sweep", grid, "-o", out, "--workers", 1, "--no-progress").returncode == 0
    before = out.read_bytes()
    grid.write_text(body + "seeds = [1, 2]\n")
    p = ptpair("sweep", grid, "-o", out, "--workers", 1, "--no-progress")
    assert p.returncode == 2 and "Traceback" not in p.stderr and len(p.stderr.splitlines()) == 1
    assert f"{out} holds 1 run of another grid" in p.stderr and "--merge" in p.stderr
    assert out.read_bytes() == before and sorted(f.name for f in tmp_path.iterdir()) == ["g.toml", "r.parquet"]
    p = ptpair("sweep", grid, "-o", out, "--workers", 1, "--no-progress", "--merge")
    assert p.returncode == 0, p.stderr
    assert "(1 already done, 1 run now)" in p.stderr
    import pandas as pd

    assert len(pd.read_parquet(out)) == 2


def test_kernel_presets_reach_the_replay():
    p = ptpair("replay", BUNDLED / "kernel-churn.csv", "--kernel", "akaros-2015", "--json", "--memory", "1GiB")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert (d["allocator"], d["reclaim"]) == ("akaros-2015", "exit")
    assert d["allocator_stats"]["frames_scanned"] > 0
    assert len(d["final"]["unusable_index_unaligned"]) == 11
    p = ptpair("replay", BUNDLED / "kernel-churn.csv", "--kernel", "akaros-2015", "--reclaim", "empty", "--json")
    assert json.loads(p.stdout)["reclaim"] == "empty"
    p = ptpair("compare", BUNDLED / "mixed.csv", "--kernel", "akaros-2015", "--schemes", "separate-lazy,pair",
               "--baseline", "separate-lazy", "--memory", "1GiB")
    assert p.returncode == 0 and "against separate-lazy" in p.stdout and "allocator akaros-2015" in p.stdout


def test_linux_kernel_preset_prints_pagetypeinfo():
    p = ptpair("replay", BUNDLED / "kernel-churn.csv", "--kernel", "linux", "--memory", "256MiB")
    assert p.returncode == 0, p.stderr
    assert "allocator=linux" in p.stdout
    assert "Free pages count per migrate type at order" in p.stdout
    assert "pageblocks polluted by unmovable pages:" in p.stdout


def test_help_is_light():
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "ptpair", "--help"], capture_output=True, text=True)
    imported = {line.split("|")[-1].strip() for line in r.stderr.splitlines() if "|" in line}
    assert r.returncode == 0 and not {"numpy", "numba", "pandas", "pyarrow"} & imported


def test_an_internal_error_says_it_is_one(capsys):
    """A bug is not reworded as a usage error: status 1, the traceback, and where to report it."""
    from types import SimpleNamespace

    from ptpair.commands import run

    def broken(args):
        return [][0]

    assert run(SimpleNamespace(func=broken, cmd="walkbench")) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "internal error (IndexError" in err and "report it" in err


def test_walkbench_of_a_trace_without_vmms_is_a_clear_error(tmp_path):
    trace = tmp_path / "novmm.csv"
    trace.write_text("pid,op,va,length,arg,order\n1,spawn,,,,\n1,map,0x400000,65536,,\n")
    p = ptpair("walkbench", trace, "--repeats", 3, "--lookups", 10, "--memory", "1GiB")
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "no process has an EPT" in p.stderr


def test_minmem_of_an_impossible_trace_is_located(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("pid,op,va,length,arg,order\n1,spawn,,,,\n2,map,0,4096,,\n")
    p = ptpair("minmem", bad)
    assert p.returncode == 2 and p.stderr.strip() == f"{bad}:3: map of pid 2, which is not alive (never spawned, or exited)"
