"""What recording costs the recorded command: bare, under `ptpair record perf` and under
`ptpair record strace`, same run.

Each round runs the command three ways, in a rotating order (so that none always runs
first, on a cold page cache): bare, under `record perf` (perf's page-fault, syscall and
task records, VmPTE sampling, and the conversion to a trace) and under `record strace`;
wall time of each, from start to the trace written. Medians over `--repeats` rounds and
their ratios to the bare command. The default command is the corpus's `make -j2` build
of raw/make-j4-project (cleaned before every run, in a private copy). The machine is
shared and noisy: quote the ratios.

    python -m benchmarks.bench_record [--repeats N] [--json] [-- CMD ARGS...]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1] / "traces" / "corpus" / "raw" / "make-j4-project"
WAYS = ("bare", "perf", "strace")


def _run(way: str, command: list[str], out: Path, before) -> float:
    before()
    full = command if way == "bare" else [sys.executable, "-m", "ptpair", "record", way, "-o", str(out), "--",
                                          *command]
    t0 = time.perf_counter()
    p = subprocess.run(full, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - t0
    if p.returncode:
        raise SystemExit(f"{way}: {' '.join(full)} failed: {p.stderr.strip()[-300:]}")
    return elapsed


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ARGS... (default: make -j2 of the corpus "
                                                              "project)")
    args = ap.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    times = {w: [] for w in WAYS}
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        if command:
            before = lambda: None  # noqa: E731
        else:
            shutil.copytree(PROJECT, d / "project")
            command = ["make", "-s", "-C", str(d / "project"), "-j2"]

            def before():
                subprocess.run(["make", "-s", "-C", str(d / "project"), "clean"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        for r in range(args.repeats):
            for k in range(len(WAYS)):
                way = WAYS[(r + k) % len(WAYS)]
                times[way].append(_run(way, command, d / f"{way}.parquet", before))
    med = {w: statistics.median(v) for w, v in times.items()}
    out = {"command": " ".join(command), "repeats": args.repeats,
           **{f"{w}_s": round(med[w], 4) for w in WAYS},
           "perf_over_bare": round(med["perf"] / med["bare"], 3),
           "strace_over_bare": round(med["strace"] / med["bare"], 3),
           "perf_over_strace": round(med["perf"] / med["strace"], 3)}
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k:>18}: {v}")
    return out


if __name__ == "__main__":
    main()
