"""Marginal cost of an allocator event, end to end, as a user runs ptpair -- against C.

The stream (issue #21): kalloc/kfree events on 262,144 frames (1 GiB), orders 0-4 and 9
(80/10/4/3/1/2 %), each kfree of a live handle picked at random, live memory climbing to
about 85 % of the frames (tests/streams.py: pressure_allocator_events). Written at two
lengths (4M and 16M events) in three ways a user's trace may come:

* `ptpair`: ptpair's own Parquet (`ptpair convert`, traces/canonical.write_trace);
* `pyarrow`: Parquet as `pq.write_table` writes a table with its defaults -- snappy,
  dictionary pages falling back to plain, `op` as plain strings, `pid` all 0, `va` and
  `length` null, `order` null on kfree rows;
* `csv`: ptpair's CSV.

Each file is timed as `ptpair replay FILE --json` in a process of its own -- start-up,
reading and replay included -- best of `--repeats` rounds, the files interleaved in each
round so that a slow spell of this shared machine hits them alike. The marginal cost per
event, (time(16M) - time(4M)) / 12M, cancels start-up. The yardstick: a plain C buddy
allocator (benchmarks/buddy_ref.c, compiled here with `cc -O2`) replaying the same op
stream from a binary file, timed the same way in the same rounds. The bar: ptpair within
1.5x of C at the margin whatever the Parquet writer; and every run ends with the free
blocks (buddyinfo) and failures C ends with.

In the same run, to show where the time goes, the large pyarrow file is also timed in
this process stage by stage: the reader alone (decode, one-pass check, encode -- on its
own thread in a replay) and the compiled replay alone; a replay overlaps the two, so its
cost per event is near the larger. And the plain-Python reference machine
(tests/reference) replays the first `--ref-events` events, for the ratio.

    python -m benchmarks.bench_marginal [--small N --large N] [--repeats R] [--no-csv]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tests.streams import pressure_allocator_events

FRAMES = 262_144  # 1 GiB of 4-KiB frames
C_SOURCE = Path(__file__).with_name("buddy_ref.c")
C_OP_KALLOC, C_OP_KFREE = 0, 1  # buddy_ref.c's op codes
BAR_RATIO = 1.5


def write_files(n_events: int, folder: Path, csv: bool) -> dict[str, Path]:
    """The stream of n_events events in every form the benchmark times: {kind: path}."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ptpair.traces.canonical import write_trace
    from ptpair.traces.format import OP_KALLOC, OPS, Trace

    op, arg, order = pressure_allocator_events(n_events, FRAMES)
    kalloc = op == OP_KALLOC
    paths = {"ptpair": folder / f"{n_events}.ptpair.parquet", "pyarrow": folder / f"{n_events}.pyarrow.parquet",
             "csv": folder / f"{n_events}.csv", "c": folder / f"{n_events}.bin"}
    if not csv:
        del paths["csv"]
    trace = Trace(pid=np.zeros(n_events, np.int64), op=op, va=np.zeros(n_events, np.int64),
                  length=np.zeros(n_events, np.int64), arg=arg, order=order,
                  page_size=np.full(n_events, 4096, np.int64), source="<pressure>")
    write_trace(trace, paths["ptpair"])
    if csv:
        write_trace(trace, paths["csv"])
    names = np.asarray(OPS, dtype=object)[op]
    table = pa.table({"pid": pa.array(np.zeros(n_events, np.int64)), "op": pa.array(names, pa.string()),
                      "va": pa.nulls(n_events, pa.int64()), "length": pa.nulls(n_events, pa.int64()),
                      "arg": pa.array(arg), "order": pa.array(order.astype(np.int64), mask=~kalloc)})
    pq.write_table(table, paths["pyarrow"])
    with open(paths["c"], "wb") as f:
        np.array([FRAMES, n_events], np.int64).tofile(f)
        np.where(kalloc, C_OP_KALLOC, C_OP_KFREE).astype(np.int8).tofile(f)
        arg.astype(np.int64).tofile(f)
        order.astype(np.int8).tofile(f)
    return paths


def build_c(folder: Path) -> Path | None:
    """buddy_ref.c compiled with the system's C compiler, or None when there is none."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        return None
    exe = folder / "buddy_ref"
    subprocess.run([cc, "-O2", "-o", str(exe), str(C_SOURCE)], check=True)
    return exe


def run(kind: str, path: Path, c_exe: Path | None) -> tuple[float, dict]:
    """(wall seconds, the run's answer: buddyinfo and failures) of one process."""
    if kind == "c":
        cmd = [str(c_exe), str(path)]
    else:
        cmd = [sys.executable, "-m", "ptpair", "replay", str(path), "--json", "--memory", str(FRAMES * 4096)]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    out = json.loads(res.stdout)
    if kind == "c":
        return wall, {"buddyinfo": out["buddyinfo"], "failures": out["failures"],
                      "loop_ns_per_event": out["replay_ns_per_event"]}
    return wall, {"buddyinfo": out["final"]["buddyinfo"], "failures": out["alloc_failures"]}


def stages(path: Path) -> dict:
    """ns/event of the reader alone and of the compiled replay alone, in this process."""
    from ptpair.sim.machine import Config, Machine
    from ptpair.traces.canonical import iter_trace
    from ptpair.traces.format import PidMap, encode

    encode(next(iter(iter_trace(path))))  # load the compiled check outside the timing
    pid_map, n = PidMap(), 0
    t0 = time.perf_counter()
    for chunk in iter_trace(path):  # streaming, as a replay reads
        encode(chunk, pid_map)
        n += len(chunk)
    t_read = time.perf_counter() - t0
    pid_map = PidMap()
    evs = [encode(chunk, pid_map) for chunk in iter_trace(path)]
    Machine(Config(memory_pages=FRAMES)).run(evs[0], 0, 1)  # load the compiled replay
    m = Machine(Config(memory_pages=FRAMES))
    t0 = time.perf_counter()
    for ev in evs:
        m.run(ev)
    t_run = time.perf_counter() - t0
    return {"reader_ns_per_event": round(t_read / n * 1e9, 2), "replay_ns_per_event": round(t_run / n * 1e9, 2)}


def reference_ns(path: Path, n_events: int) -> float:
    """ns/event of the plain-Python reference machine on the first n_events events."""
    from benchmarks.bench_replay import time_reference
    from ptpair.sim.machine import Config
    from ptpair.traces.canonical import iter_trace

    head = next(iter(iter_trace(path, batch_rows=n_events)))
    t = time_reference(head, Config(memory_pages=FRAMES), 1)
    return t / len(head) * 1e9


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", type=int, default=4_000_000)
    ap.add_argument("--large", type=int, default=16_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--ref-events", type=int, default=200_000)
    ap.add_argument("--no-csv", action="store_true", help="leave the CSV files out (the slowest to write and read)")
    args = ap.parse_args(argv)
    n_small, n_large = args.small, args.large
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        c_exe = build_c(folder)
        small, large = write_files(n_small, folder, not args.no_csv), write_files(n_large, folder, not args.no_csv)
        kinds = [k for k in small if k != "c" or c_exe is not None]
        run("ptpair", small["ptpair"], c_exe)  # warm the compiled-code cache and the page cache
        best = {(k, n): float("inf") for k in kinds for n in (n_small, n_large)}
        answers = {}
        for _ in range(args.repeats):
            for n, files in ((n_small, small), (n_large, large)):
                for k in kinds:
                    wall, answers[k, n] = run(k, files[k], c_exe)
                    best[k, n] = min(best[k, n], wall)
        split = stages(large["pyarrow"])
        ref = reference_ns(large["ptpair"], args.ref_events)
    out = {"frames": FRAMES, "small_events": n_small, "large_events": n_large, "repeats": args.repeats}
    for k in kinds:
        marginal = (best[k, n_large] - best[k, n_small]) / (n_large - n_small) * 1e9
        out[k] = {"small_s": round(best[k, n_small], 3), "large_s": round(best[k, n_large], 3),
                  "marginal_ns_per_event": round(marginal, 2)}
    if c_exe is None:
        out["c"] = None
        out["c_missing"] = "no C compiler (cc, gcc or clang) on PATH"
    else:
        c_ns = out["c"]["marginal_ns_per_event"]
        out["c"]["loop_ns_per_event"] = answers["c", n_large]["loop_ns_per_event"]
        for k in kinds:
            if k != "c":
                out[k]["over_c"] = round(out[k]["marginal_ns_per_event"] / c_ns, 2)
        parquet = [out[k]["over_c"] for k in ("ptpair", "pyarrow")]
        out["bar_over_c"] = BAR_RATIO
        out["within_bar"] = max(parquet) <= BAR_RATIO
        out["same_answers_as_c"] = all(
            answers[k, n][f] == answers["c", n][f] for k in kinds for n in (n_small, n_large)
            for f in ("buddyinfo", "failures"))
    out["final_buddyinfo"] = answers["ptpair", n_large]["buddyinfo"]
    out["failures"] = answers["ptpair", n_large]["failures"]
    out["pyarrow_stages"] = split
    out["reference_ns_per_event"] = round(ref, 1)
    out["reference_over_pyarrow"] = round(ref / out["pyarrow"]["marginal_ns_per_event"], 1)
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
