"""`ptpair record SOURCE`: record from the running machine (traces/record.py does the work)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ptpair.commands import options
from ptpair.commands.messages import report_counts
from ptpair.errors import UsageError

HELP = "record from the running machine"


def add_arguments(p) -> None:
    rsub = p.add_subparsers(dest="what", metavar="SOURCE", required=True)
    r = rsub.add_parser("buddyinfo", help="sample /proc/buddyinfo over time into a CSV")
    r.add_argument("--interval", type=float, default=1.0, help="seconds between samples")
    r.add_argument("--count", type=int, default=10, help="number of samples")
    r.add_argument("--source", default="/proc/buddyinfo", help=argparse.SUPPRESS)
    r.add_argument("-o", "--output", required=True)
    r = rsub.add_parser("strace", help="run a command under strace; write its canonical trace and the raw log")
    r.add_argument("-o", "--output", required=True, help="canonical trace (.csv or .parquet)")
    r.add_argument("--raw", default=None, help="raw strace log (default: OUTPUT's stem + .strace.log)")
    r.add_argument("--populate", type=options.populate, default="all", help="all (default), none, or a fraction")
    r.add_argument("--repeat", type=options.positive, default=1, metavar="N",
                   help="run the command N times, one recording each (OUTPUT's stem + -1, -2, ...): replicates "
                        "for ptpair stats --traces")
    r.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ARGS...")
    r = rsub.add_parser("kmem", help="record the kernel's page allocations (perf kmem tracepoints, all CPUs)")
    r.add_argument("-o", "--output", required=True, help="canonical trace (.csv or .parquet)")
    r.add_argument("--raw", default=None, help="raw perf script output (default: OUTPUT's stem + .kmem.txt)")
    r.add_argument("--seconds", type=float, default=5.0, help="how long, when no command is given (default 5)")
    r.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ARGS... (recorded while it runs)")
    r = rsub.add_parser("perf", help="record the pages processes touch (page faults), their mappings and life "
                                     "cycle with perf; VmPTE of each process sampled beside")
    r.add_argument("-o", "--output", required=True, help="canonical trace (.csv or .parquet)")
    r.add_argument("--raw", default=None, help="raw perf script output (default: OUTPUT's stem + .perf.txt)")
    r.add_argument("--all", action="store_true",
                   help="every process started during the recording (machine-wide), not only the command's")
    r.add_argument("--duration", type=float, default=None, metavar="S",
                   help="with --all and no command: stop after S seconds (default: at SIGINT/SIGTERM)")
    r.add_argument("--vmpte-interval", type=float, default=0.1, metavar="S",
                   help="seconds between VmPTE samples of the recorded processes (default 0.1)")
    r.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ARGS... (recorded with its process tree)")
    r = rsub.add_parser("freemap", help="the free frames of one zone now (/proc/kpageflags; needs root), for "
                                        "replays that start from this machine's memory")
    r.add_argument("-o", "--output", required=True, help="free map (.parquet)")
    r.add_argument("--zone", default="Normal", help="zone name as /proc/zoneinfo gives it (default: Normal)")
    r.add_argument("--node", type=int, default=None, help="NUMA node (needed where the zone is on several)")
    r = rsub.add_parser("snapshot", help="the present pages of live processes (/proc/PID/maps and pagemap)")
    r.add_argument("--pid", type=int, action="append", help="a process to snapshot (repeatable)")
    r.add_argument("--all", action="store_true", help="every process")
    r.add_argument("--interval", type=float, default=1.0, help="seconds between snapshots (default 1)")
    r.add_argument("--count", type=int, default=1, help="snapshots: later ones become map/unmap deltas")
    r.add_argument("-o", "--output", required=True, help="canonical trace (.csv or .parquet)")


def run(args) -> int:
    return {"buddyinfo": run_buddyinfo, "strace": run_strace, "kmem": run_kmem, "snapshot": run_snapshot,
            "freemap": run_freemap, "perf": run_perf}[args.what](args)


def _write(trace, output, raw=None, **recording) -> None:
    from ptpair.traces.canonical import write_trace
    from ptpair.traces.machineinfo import this_machine

    report_counts(trace)
    trace.machine = {**this_machine(), **recording}  # what the replay under --reclaim linux follows
    write_trace(trace, output)
    print(f"wrote {output}: {len(trace)} events" + (f" (raw log: {raw})" if raw else ""), file=sys.stderr)


def replicate_paths(output, n: int) -> list[Path]:
    """Where N recordings of one command go: OUTPUT itself for one; else OUTPUT's stem +
    -1 .. -N (zero-padded to one width, so they sort in order), same suffixes."""
    out = Path(output)
    if n == 1:
        return [out]
    stem, dot, suffix = out.name.partition(".")
    width = len(str(n))
    return [out.with_name(f"{stem}-{i:0{width}d}{dot}{suffix}") for i in range(1, n + 1)]


def run_strace(args) -> int:
    from ptpair.traces.record import raw_path, record_strace

    command = options.command_after_dashes(args.command)
    if args.repeat > 1 and args.raw:
        raise UsageError("--raw names one log: with --repeat each recording keeps its own next to it")
    outputs = replicate_paths(args.output, args.repeat)
    for i, output in enumerate(outputs, 1):
        raw = raw_path(output, args.raw, ".strace.log")
        trace, status = record_strace(command, raw, args.populate)
        if status:
            print(f"ptpair record strace: the command exited with status {status}"
                  + (f" (run {i} of {args.repeat})" if args.repeat > 1 else ""), file=sys.stderr)
        _write(trace, output, raw)
    if args.repeat > 1:
        print(f"{args.repeat} recordings of the same command: ptpair stats --traces "
              f"{' '.join(str(o) for o in outputs)}", file=sys.stderr)
    return 0


def run_kmem(args) -> int:
    from ptpair.traces.record import raw_path, record_kmem

    command = options.command_after_dashes(args.command) or ["sleep", str(args.seconds)]
    raw = raw_path(args.output, args.raw, ".kmem.txt")
    _write(record_kmem(command, raw), args.output, raw)
    return 0


def run_perf(args) -> int:
    from ptpair.traces.perf import LOST
    from ptpair.traces.record import raw_path, record_perf, vmpte_path, write_vmpte_samples

    command = options.command_after_dashes(args.command)
    if args.duration is not None and (not args.all or command):
        raise UsageError("--duration is for --all without a command (a command's recording ends with it)")
    if not args.vmpte_interval > 0:
        raise UsageError(f"--vmpte-interval must be positive seconds, not {args.vmpte_interval}")
    raw = raw_path(args.output, args.raw, ".perf.txt")
    trace, samples, status = record_perf(command, raw, args.all, args.duration,
                                         on_recording=lambda: print("recording", file=sys.stderr, flush=True),
                                         vmpte_interval=args.vmpte_interval)
    if status:
        print(f"ptpair record perf: the command exited with status {status}", file=sys.stderr)
    lost = trace.skipped.get(LOST, 0)
    if lost:
        print(f"ptpair record perf: perf lost {lost} events (its buffer was full): the trace misses them",
              file=sys.stderr)
    _write(trace, args.output, raw, lost_events=lost)
    side = vmpte_path(args.output)
    write_vmpte_samples(samples, side)
    print(f"VmPTE of the recorded processes over time: {side} ({len(samples)} samples)", file=sys.stderr)
    return 0


def run_snapshot(args) -> int:
    from ptpair.traces.canonical import write_trace
    from ptpair.traces.machineinfo import this_machine
    from ptpair.traces.record import vmpte_path, write_vmpte
    from ptpair.traces.snapshot import snapshot

    if not args.all and not args.pid:
        raise UsageError("give --pid PID (repeatable) or --all")
    if args.count < 1 or args.interval < 0:
        raise UsageError("--count must be >= 1 and --interval >= 0")
    skipped = []
    series = snapshot(None if args.all else args.pid, args.interval, args.count,
                      on_skip=lambda pid, why: skipped.append((pid, why)))
    if not args.all and skipped and not series.last and not series.rows:
        raise UsageError("; ".join(why for _, why in skipped))
    if not args.all:
        for _, why in skipped:
            print(f"ptpair record snapshot: skipped {why}", file=sys.stderr)
    trace = series.trace(str(args.output))
    trace.machine = this_machine()
    write_trace(trace, args.output)
    side = vmpte_path(args.output)
    write_vmpte(series, side)
    print(f"wrote {args.output}: {len(trace)} events, {series.count} snapshot(s) of "
          f"{len({r[2] for r in series.vmpte})} process(es); VmPTE per process in {side}", file=sys.stderr)
    return 0


def run_buddyinfo(args) -> int:
    """Sample a real machine's free lists: CSV rows time, node, zone, free_blocks_0..N."""
    from ptpair.traces.record import sample_buddyinfo, write_buddyinfo_csv

    if args.interval < 0 or args.count < 1:
        raise UsageError("--interval must be >= 0 and --count >= 1")

    def interrupted(rows):
        print(f"ptpair record buddyinfo: interrupted; keeping {len(rows)} rows", file=sys.stderr)

    rows = sample_buddyinfo(args.source, args.interval, args.count, on_interrupt=interrupted)
    write_buddyinfo_csv(rows, args.output)
    print(f"wrote {args.output}: {len(rows)} rows", file=sys.stderr)
    return 0


def run_freemap(args) -> int:
    from ptpair.traces.freemap import aligned_blocks, capture, write_freemap

    if not str(args.output).endswith(".parquet"):
        raise UsageError("-o: a free map is written as .parquet")
    fm = capture(args.zone, args.node)
    write_freemap(fm, args.output)
    c = fm.counts()
    print(f"wrote {args.output}: node {fm.node} zone {fm.zone}, pfns {fm.base_pfn}..{fm.base_pfn + fm.frames - 1}: "
          f"{c['free']} free, {c['used']} used, {c['hole']} hole frames; free blocks by order "
          f"{' '.join(map(str, aligned_blocks(fm.state)))} (buddyinfo just before: "
          f"{' '.join(map(str, fm.meta.get('buddyinfo') or []))})", file=sys.stderr)
    return 0
