"""The cold compile of the replay loop, with and without its callees compiled ahead.

A first replay on an empty compile cache compiles the event loop; sim/precompile.py
compiles the loop's callees in a second process meanwhile. This times that compile --
the report's `compile_core`: one small replay in a new process whose PTPAIR_CACHE_DIR
is an empty folder -- with the process ahead and without it (the same sources, the
process ahead switched off), the two alternating (with, without; then without, with;
...) so that a slow spell of this shared machine falls on both. Printed: every time,
the best of each, and their ratio (with / without).

    python -m benchmarks.bench_compile [--rounds N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import sys
import ptpair.sim.precompile as P
if sys.argv[1] == "without":
    P.ENABLED = False
from ptpair.analysis.experiments import compile_core
compile_core("address")
"""


def cold_compile(ahead: bool) -> float:
    """Seconds of a new process compiling the loop on an empty cache (start-up included)."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "PTPAIR_CACHE_DIR": cache}
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", CHILD, "with" if ahead else "without"], env=env, check=True)
        return time.perf_counter() - t0


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2, help="compiles of each kind")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    times = {"with": [], "without": []}
    for r in range(a.rounds):
        for kind in (("with", "without") if r % 2 == 0 else ("without", "with")):
            times[kind].append(round(cold_compile(kind == "with"), 1))
            if not a.json:
                print(f"round {r + 1}: {kind} the process ahead {times[kind][-1]} s", file=sys.stderr)
    best = {k: min(v) for k, v in times.items()}
    out = {"cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
           "compile_s": times, "best_s": best, "with_over_without": round(best["with"] / best["without"], 3)}
    print(json.dumps(out) if a.json else json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
