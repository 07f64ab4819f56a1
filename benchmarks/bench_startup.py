"""Start-up of every command: `ptpair VERB --help` as a whole process, best of N.

`--help` parses the command line as any run does -- every command's options are built,
so every command module is imported -- and stops before reading any input: what a user
waits for before ptpair starts working. The bar (issue #21): under 0.3 s for every
command. Printed beside it: `python -c pass`, the interpreter's own start-up on this
machine, for scale.

    python -m benchmarks.bench_startup [--repeats N] [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

BAR_S = 0.3


def best_time(cmd: list[str], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    from ptpair.commands import VERBS

    out = {"python_s": round(best_time([sys.executable, "-c", "pass"], a.repeats), 3), "commands_s": {}}
    for verb in ("", *VERBS):
        cmd = [sys.executable, "-m", "ptpair", *([verb] if verb else []), "--help"]
        out["commands_s"][verb or "(none)"] = round(best_time(cmd, a.repeats), 3)
    out["slowest_s"] = max(out["commands_s"].values())
    out["bar_s"] = BAR_S
    out["within_bar"] = out["slowest_s"] <= BAR_S
    if a.json:
        print(json.dumps(out))
    else:
        print(f"python -c pass: {out['python_s']:.3f} s")
        for verb, s in out["commands_s"].items():
            print(f"  ptpair {verb:12s} --help {s:.3f} s")
        print(f"slowest {out['slowest_s']:.3f} s; bar {BAR_S} s ({'met' if out['within_bar'] else 'not met'})")
    return out


if __name__ == "__main__":
    main()
