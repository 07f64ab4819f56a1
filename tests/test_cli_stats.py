"""End-to-end: `ptpair stats` as a user runs it -- text, JSON and CSV; recordings as
replicates; `ptpair record strace --repeat`."""

import io
import json
import shutil
import sys

import pandas as pd
import pytest

from tests.test_cli import ptpair

SMALL = ("--events", "800")


def test_stats_json_has_every_field_a_row_needs():
    p = ptpair("stats", "--seeds", "1-5", *SMALL, "--schemes", "pair,separate-eager", "--json")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert (d["n"], d["adjustment"], d["estimator"], d["ci_level"]) == (5, "holm", "hodges-lehmann", 0.95)
    keys = {"metric", "scheme", "identity", "estimate", "ci_low", "ci_high", "ci_level_attained", "p_value",
            "p_adjusted", "ratio", "ratio_ci_low", "ratio_ci_high"}
    assert all(keys <= set(r) for r in d["rows"])
    rows = {(r["metric"], r["scheme"]): r for r in d["rows"]}
    assert rows[("alloc_failures", "pair")]["identity"] == "zero" and rows[("alloc_failures", "pair")]["p_value"] is None
    assert rows[("pt_pages_final", "separate-eager")]["identity"] == "same as pt_pages_final/pair"
    tested = rows[("pt_pages_final", "pair")]
    assert tested["identity"] is None and tested["ci_level_attained"] == 0.9375 and tested["p_value"] == 0.0625
    assert len(tested["per_seed"]) == 5 and "variance of real workloads" in d["note"]
    assert any("0.0625 > 0.05" in w for w in d["warnings"]) and "warning" in p.stderr


def test_stats_text_names_its_methods_and_csv_has_the_per_seed_values():
    p = ptpair("stats", "--seeds", "1,5,9", *SMALL, "--schemes", "pair", "--confidence", "0.975",
               "--adjust", "bh")
    assert p.returncode == 0, p.stderr
    head = p.stdout.split("\n metric")[0]
    assert "seeds 1, 5, 9 (n = 3)" in head and "97.5%" in head and "Benjamini-Hochberg" in head
    assert "Hodges-Lehmann" in head and "exact Wilcoxon" in head and "n/a (all differences 0)" in p.stdout
    p = ptpair("stats", "--seeds", "1-3", *SMALL, "--schemes", "pair", "--estimator", "mean", "--csv")
    df = pd.read_csv(io.StringIO(p.stdout))
    assert {"difference_seed1", "value_seed2", "baseline_seed3", "sd_difference", "ratio"} <= set(df.columns)
    assert (df["estimator"] == "mean").all()


def test_stats_over_recordings_as_replicates(tmp_path):
    files = []
    for s in (1, 2, 3):  # stand-ins for three recordings of one command
        f = tmp_path / f"run-{s}.parquet"
        assert ptpair("synth", "--workload", "mixed", "--seed", s, "--events", 600, "-o", f).returncode == 0
        files.append(f)
    p = ptpair("stats", "--traces", *files, "--schemes", "pair", "--memory", "256MiB", "--json")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["unit"] == "recording" and d["units"] == ["run-1.parquet", "run-2.parquet", "run-3.parquet"]
    assert d["note"] is None and len(d["rows"][0]["per_recording"]) == 3
    p = ptpair("stats", "--traces", *files, "--seeds", "1-3")
    assert p.returncode == 2 and "--traces" in p.stderr and "Traceback" not in p.stderr
    p = ptpair("stats", "--traces", files[0])  # one recording shows no variation
    assert p.returncode == 2 and "at least two" in p.stderr
    p = ptpair("stats", "--traces", files[0], files[1], files[0])
    assert p.returncode == 2 and "given twice" in p.stderr and "Traceback" not in p.stderr


@pytest.mark.parametrize("bad", [("--confidence", "1.5"), ("--confidence", "0"), ("--confidence", "high"),
                                 ("--seeds", "1,1,5")])
def test_a_bad_level_or_a_repeated_seed_is_refused(bad):
    p = ptpair("stats", *bad)
    assert p.returncode == 2 and bad[0] in p.stderr and "Traceback" not in p.stderr


def test_record_strace_repeat_writes_one_recording_per_run(tmp_path):
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed")
    out = tmp_path / "t.parquet"
    p = ptpair("record", "strace", "--repeat", 2, "-o", out, "--", sys.executable, "-c",
               "import mmap; m = mmap.mmap(-1, 1 << 20); m[0] = 1")
    if p.returncode != 0 and "ptrace" in p.stderr:
        pytest.skip(f"strace cannot trace here: {p.stderr.strip()[-200:]}")
    assert p.returncode == 0, p.stderr
    names = sorted(x.name for x in tmp_path.iterdir())
    assert names == ["t-1.parquet", "t-1.strace.log", "t-2.parquet", "t-2.strace.log"]
    p = ptpair("stats", "--traces", tmp_path / "t-1.parquet", tmp_path / "t-2.parquet", "--schemes", "pair")
    assert p.returncode == 0 and "recordings of one command" in p.stdout, p.stderr
