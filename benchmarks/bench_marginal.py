"""Marginal cost of an allocator event, end to end, as a user runs ptpair.

Writes allocator-only canonical traces of 4M and 16M kalloc/kfree events (Parquet), then
times `ptpair replay TRACE.parquet --json` as a whole process -- start-up, reading and
replay included -- best of `--repeats`. The marginal cost per event is
(time(16M) - time(4M)) / 12M, which cancels start-up. The bar (issue #8): within 3x of a
plain C buddy allocator doing the same work, about 15 ns per event here, i.e. <= 45 ns.

    python -m benchmarks.bench_marginal [--small N --large N] [--repeats R]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.gen import allocator_trace
from ptpair.traces.canonical import write_trace


def time_replay(path: Path, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "ptpair", "replay", str(path), "--json", "--memory", "4GiB"],
                       check=True, stdout=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", type=int, default=4_000_000)
    ap.add_argument("--large", type=int, default=16_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        small, large = Path(d) / "small.parquet", Path(d) / "large.parquet"
        write_trace(allocator_trace(args.small, seed=1), small)
        write_trace(allocator_trace(args.large, seed=1), large)
        time_replay(small, 1)  # warm the compiled-code cache and the page cache
        t_small = time_replay(small, args.repeats)
        t_large = time_replay(large, args.repeats)
    marginal_ns = (t_large - t_small) / (args.large - args.small) * 1e9
    out = {"small_events": args.small, "large_events": args.large, "small_s": round(t_small, 3),
           "large_s": round(t_large, 3), "marginal_ns_per_event": round(marginal_ns, 2),
           "bar_ns": 45.0, "within_bar": marginal_ns <= 45.0}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
