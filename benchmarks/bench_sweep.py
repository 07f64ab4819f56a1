"""A sweep on a Dask LocalCluster with 2 workers against 1 worker, same grid, same run.

    python -m benchmarks.bench_sweep [--runs-per-worker N] [--events N]

Prints the wall time of each and their ratio (the bar: 2 workers take at most 0.65 of
the time of 1). Workers are warmed up (compiled core loaded from the cache) before
timing; results are discarded.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from ptpair.analysis.sweep import DaskEngine, expand_grid, sweep


def _warm(x):
    from ptpair.sim.replay import replay
    from ptpair.traces.synth import synth

    replay(synth("mixed", seed=0, events=50), memory_pages=4096)
    return x


def time_cluster(n_workers: int, runs: list[dict]) -> float:
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        client.gather(client.map(_warm, range(4 * n_workers), pure=False))
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            sweep(runs, Path(d) / "r.parquet", DaskEngine(client), progress=False)
            return time.perf_counter() - t0


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=8000)
    ap.add_argument("--seeds", type=int, default=8)
    args = ap.parse_args(argv)
    runs = expand_grid({"schemes": ["pair", "separate"], "memory": ["1GiB"],
                        "synth": {"workload": ["mixed"], "events": [args.events],
                                  "seeds": list(range(1, args.seeds + 1))}})
    t1 = time_cluster(1, runs)
    t2 = time_cluster(2, runs)
    out = {"runs": len(runs), "one_worker_s": round(t1, 3), "two_workers_s": round(t2, 3),
           "ratio": round(t2 / t1, 3)}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
