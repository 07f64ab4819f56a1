"""The benchmarks run (small sizes): the numbers quoted in docs/performance.md come from
commands that must keep working. These tests check that they run and report every
figure, never how fast anything is: speed is measured at full size by hand (a CI
machine is too noisy to hold a speed bar). The figures are printed (pytest -s or -rP
shows them)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def bench(name: str, *args) -> subprocess.CompletedProcess:
    """Run `python -m benchmarks.NAME ARGS` as a user does (tests never import benchmarks)."""
    return subprocess.run([sys.executable, "-m", f"benchmarks.{name}", *map(str, args)], capture_output=True,
                          text=True, check=True, cwd=ROOT)


def last_json(res: subprocess.CompletedProcess) -> dict:
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_bench_marginal_reports_every_figure():
    out = last_json(bench("bench_marginal", "--small", 20000, "--large", 60000, "--repeats", 1, "--ref-events", 2000))
    for kind in ("ptpair", "pyarrow", "csv"):
        print(f"bench_marginal (small sizes): {kind} {out[kind]}")
        assert "marginal_ns_per_event" in out[kind]
    for key in ("reader_ns_per_event", "replay_ns_per_event"):
        assert key in out["pyarrow_stages"]
    assert out["reference_ns_per_event"] > 0
    if out["c"] is not None:  # where a C compiler is: every file ends as the C allocator does
        assert out["same_answers_as_c"], out
        assert "over_c" in out["pyarrow"]
    assert sum(out["final_buddyinfo"]) > 0


def test_bench_memory_stays_bounded():
    # its own process: peak RSS counts this process (and its children) since they began
    out = last_json(bench("bench_memory", "--events", 2000000, "--chunk", 500000, "--file"))
    assert out["events"] >= 1_900_000 and out["within_bar"], out
    assert 0 < out["file"]["peak_rss_mb"] < 1536  # ptpair replay of the same events, from a file


def test_bench_convert_runs():
    text = bench("bench_convert", "--kmem-mb", 1, "--strace-mb", 0.5, "--reference-mb", 0.5).stdout
    assert "perf kmem:" in text and "strace:" in text and "MB/s" in text
    assert "same events: True" in text  # the compiled strace reader against the Python one


def test_bench_initial_reports_every_ratio():
    out = last_json(bench("bench_initial", "--repeats", 1, "--trace", ROOT / "traces" / "corpus" / "make-j4.parquet",
                          "--json"))
    assert out["frames"] == 5505024 and out["events"] == 2945
    for key in ("ratio_boot", "ratio_replay", "ratio_total", "ratio_start_to_scratch_replay"):
        assert out[key] > 0
        print(f"bench_initial (one repeat): {key} = {out[key]}")


def test_bench_report_times_every_phase(tmp_path):
    """bench_report runs `ptpair report` as a user does and reports each phase (here on
    the suite's warm compile cache and a small report: the cold full run is by hand)."""
    from ptpair._jitcache import cache_base

    small = tmp_path / "small.csv"
    subprocess.run([sys.executable, "-m", "ptpair", "synth", "--workload", "mixed", "--seed", "3", "--events", "800",
                    "-o", small], check=True, capture_output=True)
    out = json.loads(bench("bench_report", "--json", "--cache", cache_base(), "--", small, "--quick", "--workloads",
                           "mixed", "--seeds", "2", "--seed-events", "400", "--no-aged", "--no-walk", "--no-vmpte",
                           "--formats", "svg").stdout)
    phases = out["cold"]["phases_s"]
    for key in ("total", "read inputs", "compile", "replays, phase 1", "replays, phase 2", "tables", "figures",
                "document"):
        assert phases[key] >= 0, key
    assert out["cold"]["process_s"] >= phases["total"] > 0
    print(f"bench_report (small, warm cache): {phases}")


def test_bench_startup_times_every_command():
    from ptpair.commands import VERBS

    out = last_json(bench("bench_startup", "--repeats", 1, "--json"))
    assert set(out["commands_s"]) == {"(none)", *VERBS}
    print(f"bench_startup: slowest {out['slowest_s']} s, python alone {out['python_s']} s")


def test_bench_compile_times_both_kinds():
    out = last_json(bench("bench_compile", "--rounds", 1, "--json"))
    print(f"bench_compile: {out}")
    assert set(out["compile_s"]) == {"with", "without"} and all(len(v) == 1 for v in out["compile_s"].values())
    assert out["with_over_without"] > 0
