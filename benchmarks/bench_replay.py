"""Events per second of the compiled core against the plain-Python reference, same run.

Two traces, each replayed by both on the same machine in the same process:

* allocator-only: kalloc/kfree of orders 0..3 (mostly 0) keeping about half of memory
  allocated -- the buddy allocator's hot path;
* mapping: the `mixed` synthetic workload (spawn, map, unmap, fork, exec, vmm, kalloc),
  reported as 4-KiB pages mapped + unmapped per second, page-table walks included.

The reference runs without its per-event peak scan (it would dominate), so the ratio is
conservative. Times are medians of `--repeats` runs; the machine is shared and noisy,
so quote the ratio, not the absolute rate.

    python -m benchmarks.bench_replay [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from tests.streams import half_full_allocator_trace
from ptpair.sim.machine import Config, Machine
from ptpair.traces.format import OPS, Trace, encode
from ptpair.traces.synth import synth


def time_core(trace: Trace, config: Config, repeats: int) -> tuple[float, Machine]:
    ev = encode(trace)
    warm = Machine(config, ev.n_procs)
    warm.run(ev, 0, min(len(ev), 100))  # compile (or load the cache) outside the timing
    times = []
    for _ in range(repeats):
        m = Machine(config, ev.n_procs)
        t0 = time.perf_counter()
        m.run(ev)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), m


def time_reference(trace: Trace, config: Config, repeats: int) -> float:
    sys.path.insert(0, ".")
    from tests.reference.machine import Reference

    rows = list(zip(trace.pid.tolist(), trace.op.tolist(), trace.va.tolist(), trace.length.tolist(),
                    trace.arg.tolist(), trace.order.tolist(), trace.page_size.tolist()))
    times = []
    for _ in range(repeats):
        ref = Reference(config.scheme, config.policy, config.memory_pages, track_peaks=False)
        t0 = time.perf_counter()
        for pid, op, va, length, arg, order, ps in rows:
            ref.event(pid, OPS[op], va, length, arg, order, ps)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small traces (for CI)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    n_alloc, n_map = (20_000, 600) if args.quick else (200_000, 3_000)
    memory = 1 << 18  # 1 GiB
    out = {}

    tr = half_full_allocator_trace(n_alloc, memory)
    cfg = Config("pair", "address", memory)
    t_core, _ = time_core(tr, cfg, args.repeats)
    t_ref = time_reference(tr, cfg, args.repeats)
    out["allocator"] = dict(events=len(tr), core_events_per_s=len(tr) / t_core,
                            reference_events_per_s=len(tr) / t_ref, ratio=t_ref / t_core)

    tr = synth("mixed", seed=1, events=n_map)
    cfg = Config("separate", "address", memory)
    t_core, m = time_core(tr, cfg, args.repeats)
    t_ref = time_reference(tr, cfg, max(1, args.repeats - 2))
    pages = m.result().counts["pages_mapped"] + m.result().counts["pages_unmapped"]
    out["mapping"] = dict(events=len(tr), pages=pages, core_pages_per_s=pages / t_core,
                          reference_pages_per_s=pages / t_ref, ratio=t_ref / t_core)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        a, mp = out["allocator"], out["mapping"]
        print(f"allocator-only ({a['events']} events): core {a['core_events_per_s'] / 1e6:.2f} M events/s, "
              f"reference {a['reference_events_per_s'] / 1e6:.3f} M events/s, ratio {a['ratio']:.0f}x")
        print(f"mapping ({mp['events']} events, {mp['pages']} pages): core "
              f"{mp['core_pages_per_s'] / 1e6:.2f} M pages/s, reference "
              f"{mp['reference_pages_per_s'] / 1e6:.3f} M pages/s, ratio {mp['ratio']:.0f}x")
    return out


if __name__ == "__main__":
    main()
