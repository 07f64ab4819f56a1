"""The main job's time: `ptpair report` on a cold compile cache, phase by phase.

Runs the README's main job -- `ptpair report` with its defaults, on the bundled traces --
as a new user's first run: a fresh process with an empty compile cache (PTPAIR_CACHE_DIR
a new folder), and prints the wall time of the whole process and of each phase the
report times (`ptpair report --timings`): reading the inputs, compiling the replay loop,
the two rounds of replays, the walk timing, tables, figures, the document. `--warm` runs
it again on the cache the first run left: a second run's time. The bar (issue #21): at
most 3 minutes cold on this 2-core machine. Extra arguments go to `ptpair report`
(`--quick`, `--workloads mixed`, ...).

    python -m benchmarks.bench_report [--warm] [--json] [-- REPORT-OPTIONS...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_report(cache: Path, out: Path, extra: list[str]) -> dict:
    """One `ptpair report` process: its wall time and its phases (seconds)."""
    timings = out.with_suffix(".timings.json")
    env = {**os.environ, "PTPAIR_CACHE_DIR": str(cache)}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ptpair", "report", "-o", str(out), "--no-progress", "--timings",
                    str(timings), *extra], env=env, check=True)
    wall = time.perf_counter() - t0
    return {"process_s": round(wall, 2), "phases_s": json.loads(timings.read_text())}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--warm", action="store_true", help="then run again on the warm cache")
    ap.add_argument("--cache", type=Path, help="compile into this cache folder, not a new empty one (a cold run "
                                               "only where it is empty)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("report_args", nargs="*", help="options of `ptpair report` (after --)")
    a = ap.parse_args(argv)
    out = {"cpus": os.cpu_count(), "report_args": a.report_args}
    with tempfile.TemporaryDirectory() as d:
        cache = a.cache or Path(d) / "cache"
        cache.mkdir(parents=True, exist_ok=True)
        out["cache_was_empty"] = not any(cache.iterdir())
        out["cold"] = run_report(cache, Path(d) / "cold", a.report_args)
        if a.warm:
            out["warm"] = run_report(cache, Path(d) / "warm", a.report_args)
    out["bar_s"] = 180.0
    out["within_bar"] = out["cache_was_empty"] and out["cold"]["process_s"] <= out["bar_s"]
    if a.json:
        print(json.dumps(out, indent=2))
    else:
        for run in ("cold", "warm"):
            if run in out:
                print(f"{run}: {out[run]['process_s']:.1f} s in all")
                for k, v in out[run]["phases_s"].items():
                    print(f"  {k:20s} {v:8.1f} s")
        print(f"bar: {out['bar_s']:.0f} s cold ({'met' if out['within_bar'] else 'not met'})")
    return out


if __name__ == "__main__":
    main()
