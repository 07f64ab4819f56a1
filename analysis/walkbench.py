"""Walk cost, measured: nanoseconds per lookup and per range page on real page tables.

A trace is replayed under each scheme; the end state is materialised as real x86-64
tables in a simulated physical memory (sim/walk.py), and the kernel's two walks are
timed on the same addresses for every scheme: a lookup of one address (KPT entry, then
its EPT entry: pair at KPT + 4096, separate by walking the EPT), and a range operation
that flips permission bits over each process's mapped extent in both tables.

Harness: warm-up runs, then `repeats` rounds; in each round every scheme runs once (so
slow drift of a shared machine hits all schemes alike). Reported per scheme and pattern:
the median over rounds and a 95 % bootstrap interval of the median; the speedup of pair
(separate's time over pair's, per round) with its interval. With `cold`, a buffer four
times the last-level cache is written between rounds, so tables start out of cache.

Only processes that have an EPT under every compared scheme, and at least one 4-KiB
page mapped at the end of the trace, are walked: under `separate` that is the VMM
processes (use `separate-eager` for a trace without VMMs). A process with only huge pages
left, or none, has no address to look up and is skipped.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from time import perf_counter_ns

import numpy as np

from ptpair.sim.machine import Config, Machine
from ptpair.sim.walk import leaf_addresses, lookup, materialise, range_protect
from ptpair.traces.format import Trace, encode

CONFIDENCE = 0.95


def machine_info() -> dict:
    """CPU model and cache sizes, recorded next to the figures."""
    info = {"cpu": None, "caches": [], "cores": os.cpu_count()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    for d in sorted(base.glob("index*")):
        try:
            info["caches"].append({"level": int((d / "level").read_text()), "type": (d / "type").read_text().strip(),
                                   "size": (d / "size").read_text().strip()})
        except OSError:
            continue
    return info


def llc_bytes(info: dict) -> int:
    """The largest data or unified cache, bytes (32 MiB if unknown)."""
    best = 0
    for c in info["caches"]:
        size = c["size"]
        num, mult = size.rstrip("KMG"), {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(size[-1:], 1)
        if c["type"] in ("Unified", "Data") and num.isdigit():
            best = max(best, int(num) * mult)
    return best or (32 << 20)


def hardware_counters() -> dict:
    """Whether `perf stat` can count cache and dTLB misses here (an optional column)."""
    try:
        p = subprocess.run(["perf", "stat", "-x,", "-e", "cache-misses,dTLB-load-misses", "true"],
                           capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return {"available": False, "note": "perf is not installed"}
    if "not supported" in p.stderr or p.returncode != 0:
        return {"available": False, "note": "perf stat: cache-misses and dTLB-load-misses are not supported on "
                                            "this machine (virtualised PMU); no hardware counts reported"}
    return {"available": True, "note": "perf stat counts available (not yet collected per walk)"}


def _median_ci(x: np.ndarray) -> tuple[float, float, float]:
    from scipy import stats

    x = np.asarray(x, float)
    m = float(np.median(x))
    if len(x) < 3 or np.ptp(x) == 0:
        return m, m, m
    r = stats.bootstrap((x,), np.median, confidence_level=CONFIDENCE, n_resamples=4999, method="percentile",
                        random_state=0)
    return m, float(r.confidence_interval.low), float(r.confidence_interval.high)


def replayed(trace: Trace, scheme: str, policy: str, memory_pages: int) -> tuple:
    """(page tables, Result) of the trace replayed under `scheme` on `memory_pages` frames:
    what a walk benchmark's machine is built from. Picklable, so that the replays of
    several benchmarks can run in worker processes before the timing (the report)."""
    ev = encode(trace)
    m = Machine(Config(scheme, policy, memory_pages), ev.n_procs)
    m.run(ev)
    return m.tables, m.result()


class _State:
    """One scheme's replayed, materialised machine."""

    def __init__(self, tables, result, scheme: str, memory_pages: int):
        self.tables = tables
        self.result = result
        self.mem, self.roots = materialise(tables, memory_pages)
        self.pair = scheme in ("pair",)

    def close(self):
        self.mem.close()


def walkbench(trace: Trace, schemes=("pair", "separate"), patterns=("sequential", "random"),
              memory_pages: int = 1 << 20, policy: str = "address", repeats: int = 21, warmup: int = 3,
              lookups: int = 200_000, cold: bool = False, seed: int = 0, replays: dict | None = None) -> dict:
    """Timings of both walks for each scheme and pattern; see the module docstring.
    `replays`: scheme -> `replayed(trace, scheme, policy, memory_pages)`, when already run."""
    replays = replays or {}
    states = {s: _State(*(replays.get(s) or replayed(trace, s, policy, memory_pages)), s, memory_pages)
              for s in schemes}
    try:
        return _bench(states, schemes, patterns, memory_pages, policy, repeats, warmup, lookups, cold, seed)
    finally:
        for st in states.values():
            st.close()


class NothingToWalk(ValueError):
    """The trace leaves no process whose EPT entries every compared scheme can look up."""


def _bench(states, schemes, patterns, memory_pages, policy, repeats, warmup, lookups, cold, seed) -> dict:
    # processes with an EPT under every scheme, and their mapped 4-KiB pages
    procs = sorted(set.intersection(*[{p for p, (_, e) in st.roots.items() if e >= 0} for st in states.values()]))
    if not procs:
        raise NothingToWalk("no process has an EPT under every scheme compared (under `separate` only VMM "
                         "processes do); compare with separate-eager, or use a trace with VMMs")
    first = states[schemes[0]]
    # A process with no 4-KiB page left (it unmapped them all, or maps only huge pages)
    # has nothing to look up and no extent for the range operation: it is not walked.
    extent = {}  # process -> [lo, hi) bytes, from its first to past its last 4-KiB page
    addr, owner = [], []
    for p in procs:
        a = leaf_addresses(first.tables, p)  # ascending
        if len(a) == 0:
            continue
        extent[p] = (int(a[0]), int(a[-1]) + 4096)
        addr.append(a)
        owner.append(np.full(len(a), p))
    if not extent:
        raise NothingToWalk("the processes with an EPT under every scheme compared have no 4-KiB pages mapped at "
                         "the end of the trace: there is nothing to walk")
    procs = sorted(extent)
    va_all = np.concatenate(addr)
    pr_all = np.concatenate(owner)
    rng = np.random.default_rng(seed)
    orders = {"sequential": np.resize(np.arange(len(va_all)), lookups),
              "random": rng.integers(0, len(va_all), lookups)}
    info = machine_info()
    cold_buf = np.zeros(4 * llc_bytes(info) // 8, np.int64) if cold else None
    per = {s: {} for s in schemes}
    for s in schemes:
        st = states[s]
        kr = np.array([st.roots[p][0] for p in pr_all], np.int64)
        er = np.array([st.roots[p][1] for p in pr_all], np.int64)
        for pat in patterns:
            o = orders[pat]
            per[s][pat] = (va_all[o].copy(), kr[o].copy(), er[o].copy())
    out_k = np.zeros(lookups, np.int64)
    out_e = np.zeros(lookups, np.int64)
    scratch = np.zeros((4, 8), np.int64)
    times = {s: {pat: [] for pat in patterns} for s in schemes}
    rtimes = {s: [] for s in schemes}
    range_pages = {}
    mismatches = 0
    for r in range(warmup + repeats):
        for s in schemes:
            st = states[s]
            for pat in patterns:
                va, kr, er = per[s][pat]
                if cold_buf is not None:
                    cold_buf += 1
                t0 = perf_counter_ns()
                bad = lookup(st.mem.words, kr, er, va, st.pair, out_k, out_e)
                t1 = perf_counter_ns()
                mismatches += bad
                if r >= warmup:
                    times[s][pat].append((t1 - t0) / lookups)
            # the range operation over each walked process's mapped extent, twice (the bits
            # flip back, so every round sees the same tables)
            if cold_buf is not None:
                cold_buf += 1
            visited = 0
            t0 = perf_counter_ns()
            for p in procs:
                k, e = st.roots[p]
                lo, hi = extent[p]
                for _ in range(2):
                    v, bad = range_protect(st.mem.words, k, k if st.pair else e, lo, hi, st.pair, scratch)
                    visited += v
                    mismatches += bad
            t1 = perf_counter_ns()
            range_pages[s] = visited // 2
            if r >= warmup:
                rtimes[s].append((t1 - t0) / max(visited, 1))
    if mismatches:
        raise AssertionError(f"{mismatches} EPT entries did not match their KPT entries")
    res = {"memory_pages": memory_pages, "policy": policy, "cache": "cold" if cold else "warm",
           "addresses": int(len(va_all)), "processes": len(procs), "lookups_per_round": lookups,
           "rounds": repeats, "warmup_rounds": warmup, "ept_mismatches": 0, "schemes": {}, "speedup": {}}
    for s in schemes:
        w = states[s].result.walk["per_write"]
        rm, rlo, rhi = _median_ci(rtimes[s])
        res["schemes"][s] = {"range_pages": range_pages[s],
                             "counted": {"ept_dependent_loads_per_write": w["ept_dependent_loads"],
                                         "table_pages_touched_per_write": w["kpt_pages_touched"]
                                         + w["ept_pages_touched"]}}
        for pat in patterns:
            m, lo, hi = _median_ci(times[s][pat])
            res["schemes"][s][pat] = {"ns_per_lookup": m, "ns_per_lookup_ci": [lo, hi],
                                      "ns_per_range_page": rm, "ns_per_range_page_ci": [rlo, rhi]}
    if "pair" in schemes and len(schemes) > 1:
        other = [s for s in schemes if s != "pair"][0]
        for pat in patterns:
            ratio = np.array(times[other][pat]) / np.array(times["pair"][pat])
            m, lo, hi = _median_ci(ratio)
            res["speedup"][pat] = {"of": "pair", "over": other, "median": m, "ci": [lo, hi]}
    return res


def walkbench_sweep(trace: Trace, schemes=("pair", "separate"), patterns=("sequential", "random"),
                    memories=(1 << 20,), policies=("address",), caches=("warm",), **kw) -> dict:
    """walkbench over memory sizes, policies and warm/cold caches; JSON-ready."""
    runs = []
    for mem in memories:
        for pol in policies:
            for c in caches:
                runs.append(walkbench(trace, schemes, patterns, mem, pol, cold=(c == "cold"), **kw))
    out = {"machine": machine_info(), "hardware_counters": hardware_counters(), "confidence": CONFIDENCE,
           "runs": runs}
    out["schemes"], out["speedup"] = runs[0]["schemes"], runs[0]["speedup"]
    return out
