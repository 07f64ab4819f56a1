"""Peak memory of a 100-million-event replay, the trace generated on the fly.

Chunks of kalloc/kfree events (benchmarks/gen.py) are generated and fed to one machine
one after another, as `replay` feeds Parquet record batches; nothing holds the whole
trace. Prints peak RSS (resource.getrusage) against the bar of 1.5 GB.

    python -m benchmarks.bench_memory [--events N] [--chunk N]
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np

from benchmarks.gen import allocator_events
from ptpair.sim.machine import Config, Machine
from ptpair.traces.format import PidMap, Trace, encode


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=100_000_000)
    ap.add_argument("--chunk", type=int, default=1_000_000)
    args = ap.parse_args(argv)
    m = Machine(Config("pair", "address", 1 << 20))
    pid_map = PidMap()
    done = 0
    t0 = time.perf_counter()
    c = 0
    while done < args.events:
        n = min(args.chunk, args.events - done)
        op, arg, order = allocator_events(n, seed=c, handle_base=c * args.chunk)
        k = len(op)
        tr = Trace(pid=np.zeros(k, np.int64), op=op, va=np.zeros(k, np.int64), length=np.zeros(k, np.int64),
                   arg=arg, order=order, page_size=np.full(k, 4096, np.int64), source="<generated>")
        m.run(encode(tr, pid_map))
        done += n
        c += 1
    elapsed = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {"events": int(m.result().events), "seconds": round(elapsed, 1), "peak_rss_mb": round(peak_mb, 1),
           "bar_mb": 1536, "within_bar": peak_mb < 1536}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
