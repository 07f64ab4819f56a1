"""Starting from a recorded free map against starting from scratch, same memory, same run.

A replay of a corpus trace on the corpus free map (`Config(initial=MAP)`) against a replay
of the same trace on pristine memory of the map's size (`memory_pages` = its frames, holes
included): machine construction (boot: carving the free runs, marking background and
holes) and the replay, each timed alone, the two interleaved `--repeats` times (each first
every other round: the first machine of a process pays the fresh pages' faults); medians
and their ratios (map / scratch), and what starting from the map costs against the whole
replay from scratch (map boot / scratch boot + replay). The map file is read once before the timing (its read,
cached per process, is reported apart as `map_read_s`). The machine is shared and noisy:
quote the ratios.

    python -m benchmarks.bench_initial [--trace PATH] [--repeats N] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from ptpair.sim.machine import Config, Machine
from ptpair.traces.format import encode
from ptpair.traces.sources import default_freemap, default_traces, load


def _timed(config: Config, ev) -> tuple[float, float]:
    t0 = time.perf_counter()
    m = Machine(config, ev.n_procs)
    t1 = time.perf_counter()
    m.run(ev)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trace", default=None, help="a trace (default: the corpus's make-j4+kmem)")
    ap.add_argument("--map", default=None, help="a free map (default: the corpus's)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    path = a.trace or default_traces()["make-j4+kmem"]
    fmap = a.map or default_freemap()
    ev = encode(load(path))
    t0 = time.perf_counter()
    from_map = Config("pair", initial=fmap)
    read_s = time.perf_counter() - t0
    scratch = Config("pair", memory_pages=from_map.memory_pages)
    for cfg in (from_map, scratch):  # compile (or load the cache) outside the timing
        Machine(cfg, ev.n_procs).run(ev, 0, min(len(ev), 100))
    times = {"map": [], "scratch": []}
    order = [("map", from_map), ("scratch", scratch)]
    for i in range(a.repeats):  # interleaved, each going first every other round
        for name, cfg in (order if i % 2 == 0 else order[::-1]):
            times[name].append(_timed(cfg, ev))
    med = {name: (statistics.median(b for b, _ in t), statistics.median(r for _, r in t))
           for name, t in times.items()}
    out = {
        "trace": str(path), "events": len(ev), "map": str(fmap), "frames": from_map.memory_pages,
        "repeats": a.repeats, "map_read_s": round(read_s, 4),
        "boot_s": {k: round(v[0], 4) for k, v in med.items()},
        "replay_s": {k: round(v[1], 4) for k, v in med.items()},
        "total_s": {k: round(sum(v), 4) for k, v in med.items()},
        "ratio_boot": round(med["map"][0] / med["scratch"][0], 3),
        "ratio_replay": round(med["map"][1] / med["scratch"][1], 3),
        "ratio_total": round(sum(med["map"]) / sum(med["scratch"]), 3),
        # what starting from the map costs (its boot) against the whole replay from scratch
        "ratio_start_to_scratch_replay": round(med["map"][0] / sum(med["scratch"]), 3),
    }
    if a.json:
        print(json.dumps(out))
    else:
        print(f"{out['trace']} ({out['events']} events) on {out['frames']} frames, median of {a.repeats}:")
        for k in ("boot_s", "replay_s", "total_s"):
            print(f"  {k[:-2]:7s} map {out[k]['map']:.4f} s   scratch {out[k]['scratch']:.4f} s   "
                  f"ratio {out['ratio_' + k[:-2]]}")
        print(f"  starting from the map (its boot) / the whole replay from scratch: "
              f"{out['ratio_start_to_scratch_replay']}")
        print(f"  (the map file read once: {out['map_read_s']} s)")
    return out


if __name__ == "__main__":
    main()
