"""A sweep on a Dask LocalCluster with 2 workers against 1 worker, same grid, repeated.

    python -m benchmarks.bench_sweep [--events N] [--seeds N] [--repeats R] [--json]

One cluster of each size is started (and its workers warmed up: the compiled core loaded
from the cache) before any timing and kept for every repeat; start-up is never timed.
The two are timed in turn, alternating which goes first (1,2 then 2,1, ...), so that a
drift in the machine's load falls on both. Reported: the median wall time of each, the
median of the per-repeat ratios (2 workers / 1 worker) with a distribution-free
order-statistic interval for that median (its coverage printed: with 5 repeats the interval
is the range, 93.75 %), and the cores available during each configuration's runs: idle CPU
time of the whole machine (/proc/stat: idle + iowait) plus the CPU time of this process
tree (this process, the schedulers, the workers), over the wall time. Two workers can only
beat one by half if two cores were free: the verdict says the scaling is not shown when
fewer than MIN_CORES_FOR_TWO were. The bar: 2 workers take at most 0.65 of the time of 1.
Results of the sweeps are discarded. The machine is shared and noisy: quote the ratios.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import tempfile
import time
from pathlib import Path

from ptpair.analysis.sweep import DaskEngine, expand_grid, sweep

SIZES = (1, 2)             # Dask workers of the two configurations compared
BAR = 0.65                 # the scaling bar: 2 workers' time / 1 worker's time
MIN_CORES_FOR_TWO = 1.8    # cores that must be free for 2 workers to show their scaling (0.2: scheduler, OS)
COVERAGE = 0.90            # the order-statistic interval's least coverage (the range when repeats are too few)
WARM_TASKS_PER_WORKER = 4  # enough tasks that every worker loads the compiled core


def _warm(x):
    from ptpair.sim.replay import replay
    from ptpair.traces.synth import synth

    replay(synth("mixed", seed=0, events=50), memory_pages=4096)
    return x


# --- CPU available ------------------------------------------------------------------------
def _idle_ticks() -> int:
    """Idle + iowait time of every CPU since boot, in clock ticks (/proc/stat's `cpu` line)."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    return int(fields[4]) + int(fields[5])  # cpu user nice system idle iowait ...


def _tree_ticks(root: int | None = None) -> int:
    """utime + stime of `root` (this process) and every live descendant, in clock ticks."""
    root = root or os.getpid()
    children, ticks = {}, {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:  # gone meanwhile
            continue
        rest = stat[stat.rindex(")") + 2:].split()  # the command name may hold spaces
        pid, ppid = int(d), int(rest[1])
        children.setdefault(ppid, []).append(pid)
        ticks[pid] = int(rest[11]) + int(rest[12])  # fields 14 and 15: utime, stime
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += ticks.get(pid, 0)
        stack += children.get(pid, [])
    return total


def _cpu_ticks() -> int:
    """CPU time this run could have used so far: the machine's idle time plus our own."""
    return _idle_ticks() + _tree_ticks()


# --- timing -------------------------------------------------------------------------------
def _timed(client, runs: list[dict]) -> tuple[float, float]:
    """(wall seconds, CPU seconds available) of one sweep of `runs` on `client`'s cluster."""
    with tempfile.TemporaryDirectory() as d:
        c0, t0 = _cpu_ticks(), time.perf_counter()
        sweep(runs, Path(d) / "r.parquet", DaskEngine(client), progress=False)
        wall, cpu = time.perf_counter() - t0, _cpu_ticks() - c0
    return wall, cpu / os.sysconf("SC_CLK_TCK")


def _order(i: int) -> tuple[int, ...]:
    """Repeat i's order of the configurations: 1,2 then 2,1, alternating."""
    return SIZES if i % 2 == 0 else SIZES[::-1]


def measure(runs: list[dict], repeats: int) -> dict[int, list[tuple[float, float]]]:
    """workers -> [(wall s, CPU s available)] per repeat, both clusters kept up throughout."""
    from contextlib import ExitStack

    from distributed import Client, LocalCluster

    with ExitStack() as stack:
        clients = {}
        for n in SIZES:
            cluster = stack.enter_context(LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                                       host="127.0.0.1", dashboard_address=None))
            clients[n] = stack.enter_context(Client(cluster))
            clients[n].gather(clients[n].map(_warm, range(WARM_TASKS_PER_WORKER * n), pure=False))
        times = {n: [] for n in SIZES}
        for i in range(repeats):
            for n in _order(i):
                times[n].append(_timed(clients[n], runs))
    return times


# --- statistics ---------------------------------------------------------------------------
def median_interval(xs: list[float], coverage: float = COVERAGE) -> tuple[float, float, float]:
    """(low, high, coverage) of the distribution-free interval [x_(k), x_(n+1-k)] for the
    median of xs: the narrowest with at least `coverage` (the binomial(n, 1/2) tails), or
    the range, with its own coverage, when n is too small for that."""
    xs, n = sorted(xs), len(xs)

    def cov(k):  # P(x_(k) <= median <= x_(n+1-k))
        return 1 - 2 * sum(math.comb(n, i) for i in range(k)) / 2 ** n

    k = 1
    while k + 1 <= (n + 1) // 2 and cov(k + 1) >= coverage:
        k += 1
    return xs[k - 1], xs[n - k], cov(k)


def _against_bar(median: float, high: float) -> str:
    """The ratio against BAR, in words: the whole interval, the median alone, or neither."""
    if high <= BAR:
        return f"the bar ({BAR}) is met by the whole interval"
    if median <= BAR:
        return f"the median meets the bar ({BAR}), the interval's high end does not"
    return f"the bar ({BAR}) is not met"


def summary(times: dict[int, list[tuple[float, float]]]) -> dict:
    """Medians, the ratio and its interval, cores available, the verdict."""
    one, two = times[1], times[2]
    ratios = [b[0] / a[0] for a, b in zip(one, two)]
    lo, hi, cov = median_interval(ratios)
    cores = {n: sum(c for _, c in t) / sum(w for w, _ in t) for n, t in times.items()}
    ratio = statistics.median(ratios)
    if cores[2] < MIN_CORES_FOR_TWO:
        verdict = (f"not shown: only {cores[2]:.1f} cores were available during the 2-worker runs "
                   f"(median ratio {ratio:.2f} [{lo:.2f}, {hi:.2f}])")
    else:
        verdict = (f"2 workers: median ratio {ratio:.2f} [{lo:.2f}, {hi:.2f}] with {cores[2]:.1f} cores "
                   f"available; {_against_bar(ratio, hi)}")
    return {"repeats": len(ratios),
            "one_worker_s": round(statistics.median(w for w, _ in one), 3),
            "two_workers_s": round(statistics.median(w for w, _ in two), 3),
            "ratio": round(ratio, 3), "ratio_low": round(lo, 3), "ratio_high": round(hi, 3),
            "ratio_coverage": round(cov, 3), "ratios": [round(r, 3) for r in ratios],
            "cores_one_worker": round(cores[1], 2), "cores_two_workers": round(cores[2], 2),
            "scaling_shown": cores[2] >= MIN_CORES_FOR_TWO, "verdict": verdict}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=8000)
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", action="store_true", help="print one compact JSON line")
    args = ap.parse_args(argv)
    runs = expand_grid({"schemes": ["pair", "separate"], "memory": ["1GiB"],
                        "synth": {"workload": ["mixed"], "events": [args.events],
                                  "seeds": list(range(1, args.seeds + 1))}})
    out = {"runs": len(runs), **summary(measure(runs, args.repeats))}
    if args.json:
        print(json.dumps(out, separators=(",", ":")))
    else:
        print(f"{out['runs']} runs ({args.events} events each), 1 against 2 Dask workers, {out['repeats']} "
              f"repeats interleaved:")
        print(f"  median time      1 worker {out['one_worker_s']:.3f} s   2 workers {out['two_workers_s']:.3f} s")
        print(f"  ratio 2/1        median {out['ratio']}  [{out['ratio_low']}, {out['ratio_high']}] "
              f"(order-statistic interval for the median, {out['ratio_coverage']:.0%} coverage); "
              f"per repeat {out['ratios']}")
        print(f"  cores available  1 worker {out['cores_one_worker']}   2 workers {out['cores_two_workers']}")
        print(out["verdict"])
    return out


if __name__ == "__main__":
    main()
