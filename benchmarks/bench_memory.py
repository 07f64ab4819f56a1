"""Peak memory of a 100-million-event replay, the trace generated on the fly.

Chunks of kalloc/kfree events (tests/streams.py) are generated and fed to one machine
one after another, as `replay` feeds Parquet record batches; nothing holds the whole
trace. Prints peak RSS (VmHWM) against the bar of 1.5 GB.

With `--file`, the same events are first written chunk by chunk to a Parquet trace
(traces.canonical.write_parquet_chunks), then replayed as a user does, by
`ptpair replay FILE --json` in a child process (reader thread and read-ahead included),
and the child's peak RSS is reported too.

    python -m benchmarks.bench_memory [--events N] [--chunk N] [--file]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tests.streams import allocator_events
from ptpair.sim.machine import Config, Machine
from ptpair.traces.format import PidMap, Trace, encode


def _chunks(n_events: int, chunk: int):
    done, c = 0, 0
    while done < n_events:
        n = min(chunk, n_events - done)
        op, arg, order = allocator_events(n, seed=c, handle_base=c * chunk)
        k = len(op)
        yield Trace(pid=np.zeros(k, np.int64), op=op, va=np.zeros(k, np.int64), length=np.zeros(k, np.int64),
                    arg=arg, order=order, page_size=np.full(k, 4096, np.int64), source="<generated>")
        done += n
        c += 1


def _from_file(n_events: int, chunk: int, expect_events: int) -> dict:
    """Peak RSS of `ptpair replay FILE --json` (a child process) on the events written out."""
    from ptpair.traces.canonical import write_parquet_chunks

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "long.parquet"
        write_parquet_chunks(_chunks(n_events, chunk), path)
        size_mb = path.stat().st_size / (1 << 20)
        t0 = time.perf_counter()
        res = subprocess.run([sys.executable, "-c", _CHILD, str(path)], check=True, capture_output=True, text=True)
        elapsed = time.perf_counter() - t0
    events = json.loads(res.stdout)["events"]
    assert events == expect_events, (events, expect_events)
    peak_mb = int(res.stderr.strip().splitlines()[-1]) / 1024
    return {"file_mb": round(size_mb, 1), "seconds": round(elapsed, 1), "peak_rss_mb": round(peak_mb, 1)}


# `ptpair replay FILE --json`, printing its own peak RSS (kB) last on stderr
_CHILD = """
import atexit, sys
from benchmarks.bench_memory import peak_rss_kb
atexit.register(lambda: print(peak_rss_kb(), file=sys.stderr))
from ptpair.cli import main
sys.exit(main(["replay", sys.argv[1], "--json"]))
"""


def peak_rss_kb() -> int:
    """This process's peak resident set (VmHWM, kB). Not getrusage's ru_maxrss: Linux keeps
    that across execve, so a process started from a large one (a test runner) reports the
    parent's size."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # not Linux


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=100_000_000)
    ap.add_argument("--chunk", type=int, default=1_000_000)
    ap.add_argument("--file", action="store_true", help="also replay the events from a Parquet file, as a user does")
    args = ap.parse_args(argv)
    m = Machine(Config("pair", "address", 1 << 20))
    pid_map = PidMap()
    t0 = time.perf_counter()
    for tr in _chunks(args.events, args.chunk):
        m.run(encode(tr, pid_map))
    elapsed = time.perf_counter() - t0
    peak_mb = peak_rss_kb() / 1024
    out = {"events": int(m.result().events), "seconds": round(elapsed, 1), "peak_rss_mb": round(peak_mb, 1),
           "bar_mb": 1536, "within_bar": peak_mb < 1536}
    if args.file:
        out["file"] = _from_file(args.events, args.chunk, int(m.result().events))
        out["within_bar"] = out["within_bar"] and out["file"]["peak_rss_mb"] < 1536
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
