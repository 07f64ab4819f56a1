"""The `ptpair` command: a thin layer over ptpair.api, one function per verb.

Heavy imports (numpy, numba, pandas) happen inside the verbs, so `ptpair --help` is
instant. Bad input exits with status 2 and one line `file:line: what is wrong`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time

SCHEME_CHOICES = ("pair", "separate", "separate-eager", "pair-on-vmm", "separate-lazy")
DEFAULT_SCHEMES = ("pair", "separate", "separate-eager", "pair-on-vmm")
# --kernel presets: (allocator, reclaim)
KERNELS = {"akaros-2015": ("akaros-2015", "exit"), "linux": ("linux", "empty")}
# traces/synth.py: WORKLOADS, named here so that `ptpair --help` imports no numpy (a test
# checks the two agree)
WORKLOAD_NAMES = ("fork-heavy", "kernel-churn", "mixed", "sparse", "vmm-heavy")
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mb": 1 << 20,
          "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30, "t": 1 << 40, "tb": 1 << 40,
          "tib": 1 << 40}
PAGE_SIZE = 4096


class UsageError(Exception):
    """A bad option value: reported like an input error (status 2, one line)."""


def parse_size(text: str) -> int:
    """'4GiB', '512M', '1048576' (bytes) -> bytes. Binary units: 1 GB = 2^30 bytes."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise UsageError(f"--memory: cannot read size {text!r} (examples: 4GiB, 512MiB, 1048576)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def kernel_options(args) -> tuple[str, str]:
    """(allocator, reclaim) from --kernel, overridden by --allocator/--reclaim."""
    allocator, reclaim = KERNELS.get(getattr(args, "kernel", None) or "", ("buddy", "empty"))
    return (getattr(args, "allocator", None) or allocator, getattr(args, "reclaim", None) or reclaim)


def config(args, scheme=None):
    from ptpair.sim.machine import Config

    allocator, reclaim = kernel_options(args)
    return Config(scheme or args.scheme, args.policy, memory_pages(args), allocator, reclaim)


def memory_pages(args) -> int:
    if args.memory_pages is not None:
        return args.memory_pages
    size = parse_size(args.memory)
    if size % PAGE_SIZE or size <= 0:
        raise UsageError(f"--memory {args.memory}: must be a positive multiple of 4 KiB")
    return size // PAGE_SIZE


def _schemes(text: str) -> list[str]:
    out = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in out if s not in SCHEME_CHOICES]
    if bad or not out:
        raise UsageError(f"--schemes: unknown scheme(s) {', '.join(bad) or '(none)'}; "
                         f"choose from {', '.join(SCHEME_CHOICES)}")
    return out


def _add_machine_options(p, multi=False):
    if multi:
        p.add_argument("--schemes", default=",".join(DEFAULT_SCHEMES), type=str,
                       help=f"comma-separated schemes (default: {','.join(DEFAULT_SCHEMES)}; "
                            f"also separate-lazy)")
    else:
        p.add_argument("--scheme", default="pair", choices=SCHEME_CHOICES, help="(default: pair)")
    mem = p.add_mutually_exclusive_group()
    mem.add_argument("--memory", default="4GiB", help="simulated memory size (default: 4GiB)")
    mem.add_argument("--memory-pages", type=int, default=None, metavar="N",
                     help="simulated memory in 4-KiB frames (instead of --memory)")
    p.add_argument("--policy", default="address", choices=("address", "lifo"),
                   help="buddy free-list policy (default: address)")
    p.add_argument("--allocator", choices=("buddy", "akaros-2015", "linux"), default=None,
                   help="page allocator: buddy (default), akaros-2015, or linux (grouping by mobility)")
    p.add_argument("--reclaim", choices=("empty", "exit"), default=None,
                   help="free empty page tables at once (empty, default) or only at exit (Akaros)")
    p.add_argument("--kernel", choices=sorted(KERNELS), default=None,
                   help="preset: akaros-2015 = --allocator akaros-2015 --reclaim exit; "
                        "linux = --allocator linux --reclaim empty")


def cmd_replay(args) -> int:
    from ptpair import api

    if args.series and not args.sample_every:
        raise UsageError("--series needs --sample-every K")
    t1 = time.perf_counter()
    res = api.replay(args.trace, config(args), sample_every=args.sample_every,  # streamed in chunks
                     lenient=args.lenient, check=args.check, fmt=args.format, populate=_populate(args))
    _report_skipped(res, args.lenient)
    t2 = time.perf_counter()
    d = api.enriched_dict(res)
    if args.series:
        from ptpair.traces.atomic import atomic_path

        with atomic_path(args.series) as tmp:
            api.series_frame(res).to_csv(tmp, index=False)
    if args.timing:
        d["timing"] = {"replay_s": round(t2 - t1, 6),  # reading included: the trace is streamed
                       "events_per_s": round(res.events / (t2 - t1), 1) if t2 > t1 else None}
    if args.json:
        print(json.dumps(d, indent=2))
    else:
        f, pk = d["final"], d["peak"]
        lines = [
            f"trace            {args.trace} ({d['events']} events)",
            f"machine          scheme={d['scheme']} policy={d['policy']} memory={d['memory_pages']} pages "
            f"allocator={d['allocator']} reclaim={d['reclaim']}",
            f"KPT pages        {f['kpt_pages']}  (pml4 {f['kpt_pages_by_level']['pml4']}, pml3 "
            f"{f['kpt_pages_by_level']['pml3']}, pml2 {f['kpt_pages_by_level']['pml2']}, pml1 "
            f"{f['kpt_pages_by_level']['pml1']})",
            f"EPT pages        {f['ept_pages']}  (of non-VMM processes: {f['wasted_ept_pages']})",
            f"data pages       {f['data_pages']}   kalloc pages {f['kalloc_pages']}   free pages {f['free_pages']}",
            f"buddyinfo        {' '.join(str(x) for x in f['buddyinfo'])}",
            f"peak PT pages    {pk['pt_pages']}   peak used pages {pk['used_pages']}",
            f"alloc failures   {' '.join(str(x) for x in d['alloc_failures'])}   failed maps "
            f"{d['failed_maps']}   failed spawns {d['failed_spawns']}",
            f"walk             {d['walk']['per_write']['ept_dependent_loads']} EPT loads and "
            f"{d['walk']['per_write']['kpt_pages_touched'] + d['walk']['per_write']['ept_pages_touched']:.3f}"
            f" table pages per entry write",
        ]
        if sum(d["alloc_failures"]):
            lines.append(f"memory exhausted {sum(d['alloc_failures'])} allocation requests failed: the trace asks for "
                         f"more than {d['memory_pages']} pages can hold (a result, not an error; "
                         f"`ptpair minmem` finds the size that suffices)")
        if args.timing:
            lines.append(f"timing           read and replay {d['timing']['replay_s']:.3f} s "
                         f"({d['timing']['events_per_s']:.0f} events/s)")
        if "pagetypeinfo" in f:
            from ptpair.analysis.frag import pagetypeinfo_lines

            a = d["allocator_stats"]
            lines += ["", *pagetypeinfo_lines(f["pagetypeinfo"], f["pageblocks_by_type"]), "",
                      f"pageblocks polluted by unmovable pages: {f['polluted_pageblocks']}; fallbacks "
                      f"(mm_page_alloc_extfrag): {a['fallbacks']}; pageblocks relabelled: {a['pageblocks_relabelled']}"]
        if "frames_scanned" in d["allocator_stats"]:
            a = d["allocator_stats"]
            lines.append(f"akaros scan       {a['frames_scanned']} frames tested by {a['scan_allocations']} order>=1 "
                         f"requests ({a['frames_scanned_per_allocation']:.1f} per request)")
        print("\n".join(lines))
    return 0


def _report_skipped(res, lenient: bool = True) -> None:
    if res.skipped_lines:
        total = sum(res.skipped_lines.values())
        why = ", ".join(f"{n} {reason}" for reason, n in sorted(res.skipped_lines.items()))
        if lenient:
            print(f"ptpair: --lenient skipped {total} bad line(s): {why}", file=sys.stderr)
        else:  # a recorded format's own counts (docs/trace-format.md), not errors
            print(f"ptpair: counted while reading: {why}", file=sys.stderr)


def cmd_validate(args) -> int:
    """Read the trace and replay its life cycle; change nothing, write nothing."""
    from ptpair import api

    res = api.replay(args.trace, api.Config(memory_pages=1 << 18), lenient=args.lenient)
    _report_skipped(res, args.lenient)
    print(f"{args.trace}: valid, {res.events} events"
          + (f" ({sum(res.skipped_lines.values())} bad lines skipped)" if res.skipped_lines and args.lenient
             else ""))
    return 0


def cmd_compare(args) -> int:
    from ptpair import api

    schemes = _schemes(args.schemes)
    paths = args.traces or api.bundled_traces()
    pages = memory_pages(args)
    out_json = {}
    for n, path in enumerate(paths):
        trace = api.read_any(path, args.format, populate=_populate(args))
        allocator, reclaim = kernel_options(args)
        table, results = api.compare(trace, schemes, args.policy, pages, allocator, reclaim)
        if args.baseline in results and not args.json and not args.csv:
            extra = _paired_lines(results, args.baseline)
        else:
            extra = []
        if args.json:
            out_json[str(path)] = {s: r.to_dict() for s, r in results.items()}
        elif args.csv:
            table.insert(0, "trace", str(path))
            sys.stdout.write(table.to_csv(header=n == 0))
        else:
            import pandas as pd

            with pd.option_context("display.max_columns", None, "display.width", 200):
                print(("\n" if n else "") + f"{path}: {len(trace)} events, {pages} pages of memory, "
                      f"policy {args.policy}, allocator {allocator}, reclaim {reclaim}")
                print(table.to_string())
                for line in extra:
                    print(line)
    if args.json:
        # one trace: {scheme: result}; several: {trace: {scheme: result}}
        print(json.dumps(next(iter(out_json.values())) if len(out_json) == 1 else out_json, indent=2))
    return 0


def _paired_lines(results, baseline) -> list[str]:
    """Differences against the baseline, and pair - separate split into waste and contiguity."""
    from ptpair.analysis.compare import metrics_row

    rows = {s: metrics_row(r) for s, r in results.items()}
    b = rows[baseline]
    out = [f"against {baseline}:"]
    for s, r in rows.items():
        if s == baseline:
            continue
        d = r["pt_pages_final"] - b["pt_pages_final"]
        ratio = r["pt_pages_final"] / b["pt_pages_final"] if b["pt_pages_final"] else float("nan")
        out.append(f"  {s:15s} page-table pages {d:+d} ({ratio:.3f}x), peak "
                   f"{r['pt_pages_peak'] - b['pt_pages_peak']:+d}, allocation failures "
                   f"{r['alloc_failures'] - b['alloc_failures']:+d}")
    if {"pair", "separate", "separate-eager"} <= set(rows):
        for m in ("pt_pages_final", "alloc_failures"):
            p_, s_, e_ = rows["pair"][m], rows["separate"][m], rows["separate-eager"][m]
            out.append(f"  pair - separate in {m}: {p_ - s_:+d} = waste (separate-eager - separate) "
                       f"{e_ - s_:+d} + contiguity (pair - separate-eager) {p_ - e_:+d}")
    return out


def cmd_synth(args) -> int:
    from ptpair import api

    overrides = {}
    for item in args.param or []:
        if "=" not in item:
            raise UsageError(f"--param {item!r}: expected NAME=VALUE")
        k, v = item.split("=", 1)
        try:
            overrides[k.strip()] = json.loads(v)
        except json.JSONDecodeError:
            raise UsageError(f"--param {item!r}: VALUE must be a number or JSON") from None
    for name in ("processes", "vmm_fraction", "lifetime"):
        val = getattr(args, name)
        if val is not None:
            overrides[name] = val
    try:
        trace = api.synth(args.workload, seed=args.seed, events=args.events, **overrides)
    except (ValueError, TypeError) as e:
        raise UsageError(str(e)) from None
    api.write_trace(trace, args.output)
    print(f"wrote {args.output}: {len(trace)} events ({args.workload}, seed {args.seed})", file=sys.stderr)
    return 0


def _populate(args):
    v = getattr(args, "populate", "all")
    if v in ("all", "none"):
        return v
    try:
        f = float(v)
    except ValueError:
        raise UsageError(f"--populate {v!r}: all, none or a fraction in (0, 1]") from None
    if not 0 < f <= 1:
        raise UsageError(f"--populate {v}: a fraction must be in (0, 1]")
    return f


def _add_format_options(p):
    p.add_argument("--format", choices=("canonical", "strace", "kmem"), default=None,
                   help="input format (default: detected from the content)")
    p.add_argument("--populate", default="all",
                   help="strace logs: pages a mapping populates -- all (default, an upper bound), none, "
                        "or a fraction")


def _print_counts(trace, what="notes") -> None:
    if trace.skipped:
        items = ", ".join(f"{k}: {v}" for k, v in sorted(trace.skipped.items()))
        print(f"{trace.source}: {what}: {items}", file=sys.stderr)


def cmd_convert(args) -> int:
    from ptpair import api

    src = args.input[0]
    if (len(args.input) == 1 and not args.lenient and str(args.output).endswith(".parquet")
            and (args.format or api.detect(src)) == "canonical"):
        # canonical to Parquet: streamed a chunk at a time, memory bounded whatever the length
        from ptpair.traces.canonical import iter_trace, write_parquet_chunks
        from ptpair.traces.format import ALL_COLUMNS

        rows = write_parquet_chunks(iter_trace(src, columns=ALL_COLUMNS), args.output)
        print(f"wrote {args.output}: {rows} events", file=sys.stderr)
        return 0
    trace = api.read_any(args.input if len(args.input) > 1 else args.input[0], args.format, lenient=args.lenient,
                         populate=_populate(args))
    _print_counts(trace, "counted")
    api.write_trace(trace, args.output)
    print(f"wrote {args.output}: {len(trace)} events", file=sys.stderr)
    return 0


def cmd_merge(args) -> int:
    from ptpair.traces.merge import merge
    from ptpair import api

    traces = [api.read_any(p) for p in args.inputs]
    out, note = merge(traces, align=args.align)
    if note:
        print(f"ptpair merge: {note}", file=sys.stderr)
    api.write_trace(out, args.output)
    print(f"wrote {args.output}: {len(out)} events from {len(traces)} traces", file=sys.stderr)
    return 0


def _record_output(args, suffix: str):
    from pathlib import Path

    out = Path(args.output)
    raw = Path(args.raw) if getattr(args, "raw", None) else out.with_name(out.name.split(".")[0] + suffix)
    return out, raw


def cmd_record_strace(args) -> int:
    import shutil
    import subprocess

    from ptpair import api
    from ptpair.traces.atomic import atomic_path

    if not args.command:
        raise UsageError("give the command to trace after --, e.g. ptpair record strace -o t.parquet -- make -j4")
    strace = shutil.which("strace")
    if strace is None:
        raise UsageError("strace is not installed (Debian: apt-get install strace)")
    out, raw = _record_output(args, ".strace.log")
    cmd = args.command[1:] if args.command[0] == "--" else args.command
    with atomic_path(raw) as tmp:
        p = subprocess.run([strace, "-f", "-ttt", "-e", "trace=memory,process", "-o", str(tmp), *cmd])
    if p.returncode:
        print(f"ptpair record strace: the command exited with status {p.returncode}", file=sys.stderr)
    trace = api.read_any(raw, "strace", populate=_populate(args))
    _print_counts(trace, "counted")
    api.write_trace(trace, out)
    print(f"wrote {out}: {len(trace)} events (raw log: {raw})", file=sys.stderr)
    return 0


KMEM_EVENTS = ("kmem:mm_page_alloc", "kmem:mm_page_free", "kmem:mm_page_free_batched")


def cmd_record_kmem(args) -> int:
    import shutil
    import subprocess
    import tempfile

    from ptpair import api
    from ptpair.traces.atomic import atomic_path

    perf = shutil.which("perf")
    if perf is None:
        raise UsageError("perf is not installed (Debian: apt-get install linux-perf)")
    cmd = args.command[1:] if args.command and args.command[0] == "--" else list(args.command or [])
    if not cmd:
        cmd = ["sleep", str(args.seconds)]
    out, raw = _record_output(args, ".kmem.txt")
    events = [x for e in KMEM_EVENTS for x in ("-e", e)]
    with tempfile.TemporaryDirectory() as d:
        data = f"{d}/perf.data"
        # perf stamps events with CLOCK_MONOTONIC (-k mono; perf accepts no real-time clock);
        # shifted by real time - monotonic time below, they share strace -ttt's clock, so a
        # kmem trace merges by time with a mapping trace recorded at the same time
        offset = time.time() - time.monotonic()
        p = subprocess.run([perf, "record", "-q", "-k", "mono", *events, "-a", "-o", data, "--", *cmd],
                           stderr=subprocess.PIPE, text=True)
        if p.returncode and not os.path.exists(data):
            why = p.stderr.strip().splitlines()[-1] if p.stderr.strip() else f"status {p.returncode}"
            raise UsageError(f"perf record cannot trace {', '.join(KMEM_EVENTS)}: {why} (needs root or "
                             "kernel.perf_event_paranoid <= -1, and tracefs/debugfs mounted)")
        with atomic_path(raw) as tmp:
            with open(tmp, "w") as f:
                q = subprocess.run([perf, "script", "-i", data], stdout=f, stderr=subprocess.PIPE, text=True)
            if q.returncode:
                raise UsageError(f"perf script failed: {q.stderr.strip()[-300:]}")
    trace = api.read_any(raw, "kmem")
    trace.time = trace.time + offset  # real time, seconds since the epoch
    _print_counts(trace, "counted")
    api.write_trace(trace, out)
    print(f"wrote {out}: {len(trace)} events (raw log: {raw})", file=sys.stderr)
    return 0


def cmd_record_snapshot(args) -> int:
    from pathlib import Path

    from ptpair import api
    from ptpair.traces.atomic import write_text_atomic
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
    for pid, why in skipped:
        if not args.all:
            print(f"ptpair record snapshot: skipped {why}", file=sys.stderr)
    trace = series.trace(str(args.output))
    api.write_trace(trace, args.output)
    # beside the trace: what Linux says about each process's tables (VmPTE, kB)
    side = Path(args.output).with_name(Path(args.output).name.split(".")[0] + ".vmpte.csv")
    lines = ["snapshot,time,pid,comm,vmpte_kb,pages_4k,pages_2m"]
    lines += [f"{i},{t:.6f},{pid},{comm.replace(',', ' ')},{'' if v is None else v},{n},{h}"
              for i, t, pid, comm, v, n, h in series.vmpte]
    write_text_atomic(side, "\n".join(lines) + "\n")
    print(f"wrote {args.output}: {len(trace)} events, {series.count} snapshot(s) of "
          f"{len({r[2] for r in series.vmpte})} process(es); VmPTE per process in {side}", file=sys.stderr)
    return 0



def _seeds(text: str) -> list[int]:
    """'1-10' or '1,2,5' -> seeds."""
    try:
        if "-" in text and "," not in text:
            a, b = text.split("-", 1)
            out = list(range(int(a), int(b) + 1))
        else:
            out = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"--seeds {text!r}: expected a range A-B or a list A,B,C") from None
    if not out:
        raise UsageError(f"--seeds {text!r}: no seeds")
    return out


def _print_frame(df, args, title=None):
    import pandas as pd

    if getattr(args, "csv", False):
        sys.stdout.write(df.to_csv(index=False))
        return
    if title:
        print(title)
    with pd.option_context("display.max_columns", None, "display.width", 250, "display.max_rows", 500):
        print(df.to_string(index=False))


def cmd_stats(args) -> int:
    from ptpair.analysis.stats import DEFAULT_METRICS, seed_runs, stats_table

    schemes = _schemes(args.schemes)
    if args.baseline not in schemes:
        schemes = [args.baseline] + schemes
    seeds = _seeds(args.seeds)
    allocator, reclaim = kernel_options(args)
    df = seed_runs(args.workload, seeds, schemes, args.events, args.policy, memory_pages(args),
                   allocator=allocator, reclaim=reclaim)
    table = stats_table(df, args.baseline, DEFAULT_METRICS, confidence=args.confidence)
    if args.json:
        print(json.dumps({"runs": df.to_dict(orient="records"), "stats": table.to_dict(orient="records")},
                         indent=2, default=float))
        return 0
    cols = ["metric", "scheme", "n", "mean_difference", "ci_low", "ci_high", "p_value", "cohens_dz",
            "rank_biserial"]
    _print_frame(table[cols], args,
                 f"{args.workload}, seeds {seeds[0]}..{seeds[-1]} (n = {len(seeds)}), {args.events} events each; "
                 f"difference = scheme - {args.baseline}, paired by seed;\n"
                 f"{int(args.confidence * 100)}% bootstrap (BCa) confidence interval of the mean difference; "
                 f"Wilcoxon signed-rank test (two-sided); effect sizes Cohen's d_z and rank-biserial r")
    return 0


def cmd_breakeven(args) -> int:
    from ptpair.analysis.breakeven import fit, simulate

    fractions = [float(x) for x in args.fractions.split(",")]
    df = simulate(args.workload, fractions, _seeds(args.seeds), args.events, memory_pages(args), args.policy)
    f = fit(df)
    if args.json:
        print(json.dumps({"runs": df.to_dict(orient="records"), "fit": f}, indent=2, default=float))
        return 0
    g = df.groupby("vmm_fraction")[["phi", "vmm_process_share", "pt_pair", "pt_separate", "difference",
                                    "ratio", "model_ratio"]].mean().reset_index()
    _print_frame(g.round(4), args, "pair against separate by VMM fraction (means over seeds); "
                 "model: PT_pair / PT_separate = 2 / (1 + phi), phi = VMMs' share of KPT tables")
    if not args.csv:
        print(f"naive model phi = f: R^2 {f['naive_model_r2']:.3f}, fitted slope {f['fitted_slope']:.3f}; "
              f"pair's overhead is below 10% once phi > {f['phi_for_10pct_overhead']:.3f}")
    return 0


def cmd_sweep(args) -> int:
    from ptpair.analysis.sweep import DaskEngine, GridError, LocalEngine, load_grid, sweep

    try:
        runs = load_grid(args.grid)
    except GridError as e:
        raise UsageError(str(e)) from None
    if args.engine == "dask":
        if not args.scheduler:
            raise UsageError("--engine dask needs --scheduler tcp://HOST:PORT")
        engine = DaskEngine(args.scheduler)
    else:
        engine = LocalEngine(args.workers)
    st = sweep(runs, args.output, engine, progress=not args.no_progress)
    print(f"wrote {args.output}: {st.total} runs ({st.skipped} already done, {st.ran} run now)", file=sys.stderr)
    return 0


def cmd_minmem(args) -> int:
    from ptpair import api
    from ptpair.analysis.minmem import min_memory

    trace = api.read_any(args.trace)
    allocator, reclaim = kernel_options(args)
    mm = min_memory(trace, args.scheme, args.policy, allocator, reclaim)
    d = {"trace": str(args.trace), "scheme": args.scheme, "policy": args.policy, "allocator": allocator,
         "reclaim": reclaim, **mm.to_dict()}
    if args.json:
        print(json.dumps(d, indent=2))
    else:
        print(f"{args.trace}: scheme {args.scheme}, policy {args.policy}: runs without allocation failure "
              f"from {mm.min_memory_pages} pages ({mm.min_memory_pages * 4096 / 2**20:.0f} MiB); "
              f"{mm.probes} replays")
    return 0


def cmd_frag(args) -> int:
    from pathlib import Path

    from ptpair.analysis.frag import debugfs_lines, parse_buddyinfo
    from ptpair.traces.format import TraceError

    try:
        text = Path(args.file).read_text()
    except OSError as e:
        raise TraceError(args.file, None, e.strerror or str(e)) from None
    zones = parse_buddyinfo(text, args.file)
    print("\n".join(debugfs_lines(zones, "unusable") + debugfs_lines(zones, "extfrag")))
    return 0


def cmd_record_buddyinfo(args) -> int:
    """Sample a real machine's free lists: CSV rows time, node, zone, free_blocks_0..N."""
    from pathlib import Path

    from ptpair.analysis.frag import parse_buddyinfo
    from ptpair.traces.atomic import write_text_atomic

    if args.interval < 0 or args.count < 1:
        raise UsageError("--interval must be >= 0 and --count >= 1")
    rows = []
    width = 0
    try:
        for i in range(args.count):
            if i:
                time.sleep(args.interval)
            now = time.time()
            for node, zone, counts in parse_buddyinfo(Path(args.source).read_text(), args.source):
                width = max(width, len(counts))
                rows.append((now, node, zone, counts))
    except KeyboardInterrupt:
        print(f"ptpair record buddyinfo: interrupted; keeping {len(rows)} rows", file=sys.stderr)
    header = "time,node,zone," + ",".join(f"free_blocks_{k}" for k in range(width))
    lines = [header] + [f"{t:.6f},{n},{z}," + ",".join(str(c) for c in counts) for t, n, z, counts in rows]
    write_text_atomic(args.output, "\n".join(lines) + "\n")
    print(f"wrote {args.output}: {len(rows)} rows", file=sys.stderr)
    return 0


def _report_params(args):
    from ptpair.reports.collect import ReportParams

    kw = {"policy": args.policy, "headroom": args.headroom}
    if args.schemes:
        kw["schemes"] = tuple(_schemes(args.schemes))
    if args.memory:
        size = parse_size(args.memory)
        if size % PAGE_SIZE or size <= 0:
            raise UsageError(f"--memory {args.memory}: must be a positive multiple of 4 KiB")
        kw["memory_pages"] = size // PAGE_SIZE
    if args.quick:  # a fast look: fewer seeds, shorter replicates, a shorter memory ladder
        kw.update(seeds=3, seed_events=1500, breakeven_fractions=(0.0, 0.5, 1.0), breakeven_seeds=2,
                  memory_fractions=(0.95, 1.0, 1.1), samples=50, windows=100, walk=False)
    if args.walk is not None:
        kw["walk"] = args.walk
    if args.workloads is not None:
        names = tuple(w.strip() for w in args.workloads.split(",") if w.strip() and w.strip() != "none")
        bad = [w for w in names if w not in WORKLOAD_NAMES]
        if bad:
            raise UsageError(f"--workloads: unknown {', '.join(bad)}; choose from {', '.join(WORKLOAD_NAMES)}")
        kw["workloads"] = names
    if args.seeds is not None:
        kw["seeds"] = args.seeds
    if args.seed_events is not None:
        kw["seed_events"] = args.seed_events
    kw["workers"] = args.workers
    for k in ("seeds", "seed_events"):
        if k in kw and kw[k] < 1:
            raise UsageError(f"--{k.replace('_', '-')} must be at least 1")
    return ReportParams(**kw)


def cmd_report(args) -> int:

    from ptpair.reports import build

    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    bad = [f for f in formats if f not in ("svg", "pdf", "png")]
    if bad or not ({"svg", "png"} & set(formats)):
        raise UsageError(f"--formats: choose from svg,pdf,png, with svg or png among them (got {args.formats!r})")
    params = _report_params(args)
    if args.grid:
        if args.traces:
            raise UsageError("give traces or --grid, not both")
        from ptpair.analysis.sweep import GridError

        try:
            traces, overrides = build.grid_inputs(args.grid)
        except GridError as e:
            raise UsageError(str(e)) from None
        import dataclasses

        params = dataclasses.replace(params, **overrides)
    elif args.traces:
        traces = build.name_traces(args.traces)
    else:
        traces = build.default_traces()
    out = build.report(traces, args.output, params, args.style, formats, progress=not args.no_progress)
    print(f"wrote {out}/index.html (and report.md, figures/, data/, manifest.json)", file=sys.stderr)
    return 0


def cmd_plot(args) -> int:
    from pathlib import Path

    import pandas as pd

    from ptpair.reports import plots, style

    try:
        kind = plots.kind_of(args.figure)
    except ValueError as e:
        raise UsageError(str(e)) from None
    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    try:
        df = pd.read_csv(args.data)
    except (OSError, ValueError) as e:
        raise UsageError(f"{args.data}: {e}") from None
    out = Path(args.output or args.figure)
    stem = out.with_suffix("") if out.suffix in (".svg", ".pdf", ".png") else out
    if out.suffix in (".svg", ".pdf", ".png"):
        formats = (out.suffix[1:],)
    with style.use(args.style):
        try:
            fig = plots.FIGURES[kind](df)
        except ValueError as e:
            raise UsageError(f"{args.data}: {e}") from None
        paths = style.save(fig, stem, formats)
    print("wrote " + ", ".join(str(p) for p in paths), file=sys.stderr)
    return 0


def cmd_walkbench(args) -> int:
    from ptpair import api
    from ptpair.analysis.walkbench import walkbench_sweep

    schemes = _schemes(args.schemes)
    if len(schemes) != 2 or "pair" not in schemes:
        raise UsageError("--schemes: pair and one scheme to compare it with, e.g. pair,separate")
    patterns = ("sequential", "random") if args.pattern == "both" else (args.pattern,)
    caches = ("warm", "cold") if args.cache == "both" else (args.cache,)
    memories = []
    for m in args.memory.split(","):
        size = parse_size(m)
        if size % PAGE_SIZE or size <= 0:
            raise UsageError(f"--memory {m}: must be a positive multiple of 4 KiB")
        memories.append(size // PAGE_SIZE)
    policies = tuple(x.strip() for x in args.policy.split(","))
    if any(p not in ("address", "lifo") for p in policies):
        raise UsageError("--policy: address, lifo or both separated by a comma")
    if args.repeats < 3 or args.lookups < 1:
        raise UsageError("--repeats must be >= 3 and --lookups >= 1")
    trace = api.read_any(args.trace, args.format, populate=_populate(args))
    try:
        res = walkbench_sweep(trace, schemes, patterns, memories, policies, caches, repeats=args.repeats,
                              lookups=args.lookups)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    m = res["machine"]
    print(f"{args.trace}: {m['cpu']}; caches "
          + ", ".join(f"L{c['level']} {c['type'].lower()} {c['size']}" for c in m["caches"]))
    print(f"hardware counters: {res['hardware_counters']['note']}")
    for run in res["runs"]:
        print(f"\nmemory {run['memory_pages'] // 256} MiB, policy {run['policy']}, {run['cache']} cache: "
              f"{run['addresses']} pages of {run['processes']} processes, {run['rounds']} rounds, medians [95% CI]")
        for s, d in run["schemes"].items():
            for pat in patterns:
                x = d[pat]
                print(f"  {s:15s} {pat:10s} lookup {x['ns_per_lookup']:7.2f} ns [{x['ns_per_lookup_ci'][0]:.2f}, "
                      f"{x['ns_per_lookup_ci'][1]:.2f}]   range {x['ns_per_range_page']:6.2f} ns/page "
                      f"[{x['ns_per_range_page_ci'][0]:.2f}, {x['ns_per_range_page_ci'][1]:.2f}]   counted EPT loads "
                      f"per write {d['counted']['ept_dependent_loads_per_write']:.2f}")
        for pat, sp in run["speedup"].items():
            print(f"  speedup of pair over {sp['over']} ({pat} lookups): {sp['median']:.3f}x "
                  f"[{sp['ci'][0]:.3f}, {sp['ci'][1]:.3f}]")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from ptpair import __version__

    parser = argparse.ArgumentParser(
        prog="ptpair",
        description="Replay page-mapping traces through a buddy allocator and KPT/EPT page tables, "
                    "and compare Akaros's contiguous KPT/EPT pair with separately allocated EPTs.")
    parser.add_argument("--version", action="version", version=f"ptpair {__version__}")
    sub = parser.add_subparsers(dest="cmd", metavar="COMMAND", required=True)

    p = sub.add_parser("replay", help="replay a trace under one scheme")
    p.add_argument("trace", help="canonical trace (CSV or Parquet)")
    _add_machine_options(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--timing", action="store_true", help="include read and replay times")
    p.add_argument("--lenient", action="store_true",
                   help="skip bad lines and impossible events, and report how many by reason")
    p.add_argument("--check", action="store_true",
                   help="verify every invariant after every event (slow; names the first event that breaks one)")
    p.add_argument("--sample-every", type=int, default=None, metavar="K",
                   help="sample the state every K events (and at the end)")
    p.add_argument("--series", metavar="FILE.csv", help="write the sampled time series (with --sample-every)")
    _add_format_options(p)
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("validate", help="check a trace (fields and process life cycle) without writing anything")
    p.add_argument("trace")
    p.add_argument("--lenient", action="store_true", help="count bad lines by reason instead of stopping")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("compare", help="replay traces under several schemes, side by side")
    p.add_argument("traces", nargs="*", metavar="TRACE",
                   help="canonical traces (default: the bundled corpus)")
    p.add_argument("--baseline", default="separate", choices=SCHEME_CHOICES,
                   help="scheme the differences are taken against (default: separate)")
    _add_machine_options(p, multi=True)
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="every scheme's full result as JSON")
    out.add_argument("--csv", action="store_true", help="the table as CSV")
    _add_format_options(p)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("synth", help="write a seeded synthetic workload trace")
    p.add_argument("--workload", default="mixed", choices=WORKLOAD_NAMES)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--events", type=int, default=10_000)
    p.add_argument("--processes", type=int, default=None, help="processes alive at once")
    p.add_argument("--vmm-fraction", dest="vmm_fraction", type=float, default=None)
    p.add_argument("--lifetime", type=float, default=None, help="mean events a process lives")
    p.add_argument("--param", action="append", metavar="NAME=VALUE",
                   help="any other workload parameter (see docs/trace-format.md), repeatable")
    p.add_argument("-o", "--output", required=True, help="output .csv or .parquet")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("stats", help="paired statistics of schemes across seeds of a synthetic workload")
    p.add_argument("--workload", default="mixed", choices=WORKLOAD_NAMES)
    p.add_argument("--seeds", default="1-10", help="A-B or A,B,C (default 1-10)")
    p.add_argument("--events", type=int, default=5000)
    p.add_argument("--baseline", default="separate", choices=SCHEME_CHOICES)
    p.add_argument("--confidence", type=float, default=0.95)
    _add_machine_options(p, multi=True)
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true")
    out.add_argument("--csv", action="store_true")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("breakeven", help="pair against separate as a function of the VMM fraction")
    p.add_argument("--workload", default="mixed", choices=WORKLOAD_NAMES)
    p.add_argument("--fractions", default="0,0.25,0.5,0.75,1")
    p.add_argument("--seeds", default="1-3")
    p.add_argument("--events", type=int, default=5000)
    mem = p.add_mutually_exclusive_group()
    mem.add_argument("--memory", default="4GiB")
    mem.add_argument("--memory-pages", type=int, default=None)
    p.add_argument("--policy", default="address", choices=("address", "lifo"))
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true")
    out.add_argument("--csv", action="store_true")
    p.set_defaults(func=cmd_breakeven)

    p = sub.add_parser("sweep", help="run a grid of replays into one Parquet file (resumable)")
    p.add_argument("grid", help="grid file (TOML; see analysis/sweep.py)")
    p.add_argument("-o", "--output", required=True, help="results .parquet")
    p.add_argument("--engine", choices=("local", "dask"), default="local")
    p.add_argument("--scheduler", help="Dask scheduler address, tcp://HOST:PORT")
    p.add_argument("--workers", type=int, default=None, help="local worker processes (default: all cores)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("minmem", help="smallest memory (MiB steps) with no allocation failure")
    p.add_argument("trace")
    _add_machine_options(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_minmem)

    p = sub.add_parser("frag", help="Linux's fragmentation indices of a buddyinfo file, as debugfs shows them")
    p.add_argument("file", nargs="?", default="/proc/buddyinfo")
    p.set_defaults(func=cmd_frag)

    p = sub.add_parser("record", help="record from the running machine")
    rsub = p.add_subparsers(dest="what", metavar="SOURCE", required=True)
    r = rsub.add_parser("buddyinfo", help="sample /proc/buddyinfo over time into a CSV")
    r.add_argument("--interval", type=float, default=1.0, help="seconds between samples")
    r.add_argument("--count", type=int, default=10, help="number of samples")
    r.add_argument("--source", default="/proc/buddyinfo", help=argparse.SUPPRESS)
    r.add_argument("-o", "--output", required=True)
    r.set_defaults(func=cmd_record_buddyinfo)
    r = rsub.add_parser("strace", help="run a command under strace; write its canonical trace and the raw log")
    r.add_argument("-o", "--output", required=True, help="canonical trace (.csv or .parquet)")
    r.add_argument("--raw", default=None, help="raw strace log (default: OUTPUT's stem + .strace.log)")
    r.add_argument("--populate", default="all", help="all (default), none, or a fraction")
    r.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ARGS...")
    r.set_defaults(func=cmd_record_strace)
    r = rsub.add_parser("kmem", help="record the kernel's page allocations (perf kmem tracepoints, all CPUs)")
    r.add_argument("-o", "--output", required=True, help="canonical trace (.csv or .parquet)")
    r.add_argument("--raw", default=None, help="raw perf script output (default: OUTPUT's stem + .kmem.txt)")
    r.add_argument("--seconds", type=float, default=5.0, help="how long, when no command is given (default 5)")
    r.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ARGS... (recorded while it runs)")
    r.set_defaults(func=cmd_record_kmem)
    r = rsub.add_parser("snapshot", help="the present pages of live processes (/proc/PID/maps and pagemap)")
    r.add_argument("--pid", type=int, action="append", help="a process to snapshot (repeatable)")
    r.add_argument("--all", action="store_true", help="every process")
    r.add_argument("--interval", type=float, default=1.0, help="seconds between snapshots (default 1)")
    r.add_argument("--count", type=int, default=1, help="snapshots: later ones become map/unmap deltas")
    r.add_argument("-o", "--output", required=True, help="canonical trace (.csv or .parquet)")
    r.set_defaults(func=cmd_record_snapshot)

    p = sub.add_parser("walkbench", help="time the walks on real page tables: lookups and range operations")
    p.add_argument("trace")
    p.add_argument("--schemes", default="pair,separate", help="pair and one other (default: pair,separate)")
    p.add_argument("--pattern", choices=("sequential", "random", "both"), default="both")
    p.add_argument("--memory", default="4GiB", help="simulated memory, or several: 256MiB,4GiB")
    p.add_argument("--policy", default="address", help="address, lifo, or address,lifo")
    p.add_argument("--cache", choices=("warm", "cold", "both"), default="warm")
    p.add_argument("--repeats", type=int, default=21, help="timed rounds (default 21)")
    p.add_argument("--lookups", type=int, default=200_000, help="lookups per round and pattern")
    p.add_argument("--json", action="store_true")
    _add_format_options(p)
    p.set_defaults(func=cmd_walkbench)

    p = sub.add_parser("report", help="the full comparative report: HTML, Markdown, figures, data, manifest")
    p.add_argument("traces", nargs="*", metavar="TRACE",
                   help="canonical traces (default: the bundled corpus and synthetic presets)")
    p.add_argument("--grid", metavar="GRID.toml", help="take traces, schemes, policy and memory from a sweep grid")
    p.add_argument("-o", "--output", default="ptpair-report", help="report folder (default: ptpair-report)")
    p.add_argument("--style", choices=("paper", "slides"), default="paper")
    p.add_argument("--formats", default="svg,pdf,png", help="figure formats (default: svg,pdf,png)")
    p.add_argument("--schemes", default=None, help="comma-separated schemes (default: pair,separate,"
                                                   "separate-eager,pair-on-vmm)")
    p.add_argument("--policy", default="address", choices=("address", "lifo"))
    p.add_argument("--memory", default=None, help="fixed report memory (default: pair's peak use + headroom)")
    p.add_argument("--headroom", type=float, default=0.25,
                   help="report memory above pair's peak of frames in use (default: 0.25)")
    p.add_argument("--workloads", default=None,
                   help="synthetic workloads replicated over seeds, comma-separated, or none (default: all five)")
    p.add_argument("--seeds", type=int, default=None, help="seeds per synthetic workload (default: 6)")
    p.add_argument("--seed-events", type=int, default=None, help="events per seed replicate (default: 5000)")
    p.add_argument("--quick", action="store_true",
                   help="fewer seeds and shorter ladders, no walk timing: a fast first look")
    p.add_argument("--walk", dest="walk", action="store_true", default=None,
                   help="time the walks on real tables (default: on, off with --quick); timings are not "
                        "byte-reproducible")
    p.add_argument("--no-walk", dest="walk", action="store_false")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("plot", help="rebuild one report figure from its CSV (report DIR/data/)")
    p.add_argument("figure", help="figure name or kind, e.g. pt_memory__mixed or buddyinfo")
    p.add_argument("--data", required=True, help="the figure's CSV (see the report's manifest.json)")
    p.add_argument("-o", "--output", default=None, help="output stem or file (.svg/.pdf/.png)")
    p.add_argument("--style", choices=("paper", "slides"), default="paper")
    p.add_argument("--formats", default="svg,pdf,png")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("convert", help="any input (canonical, strace log, perf kmem log) to a canonical "
                                       "CSV or Parquet trace")
    p.add_argument("input", nargs="+", help="input file (several: the per-pid files of strace -ff)")
    p.add_argument("-o", "--output", required=True, help="output .csv or .parquet")
    p.add_argument("--lenient", action="store_true", help="skip bad lines and count them by reason")
    _add_format_options(p)
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("merge", help="merge traces by time (e.g. a kmem trace as background churn of a "
                                     "mapping trace)")
    p.add_argument("inputs", nargs="+", metavar="TRACE")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--align", choices=("none", "start"), default="none",
                   help="none: the traces share a clock (ptpair's recorders use the real-time clock); "
                        "start: shift each trace to start at the first one's start")
    p.set_defaults(func=cmd_merge)
    return parser


def _terminate(signum, frame):
    # SIGTERM unwinds like Ctrl-C, so that every atomic write removes its temporary
    # file and leaves the old output in place (traces/atomic.py)
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    import signal

    parser = build_parser()
    args = parser.parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return _run(args)
    finally:
        # the command is over and its outputs complete: a SIGTERM that arrives during the
        # interpreter's shutdown must not raise from our handler (a traceback, seen in CI)
        signal.signal(signal.SIGTERM, previous)


def _interrupted() -> int:
    print("ptpair: interrupted; outputs already written are complete, unfinished ones were not written",
          file=sys.stderr)
    return 130


def _caused_by_interrupt(e: BaseException) -> bool:
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, KeyboardInterrupt):
            return True
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return False


def _run(args) -> int:
    try:
        return args.func(args)
    except UsageError as e:
        print(f"ptpair {args.cmd}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return _interrupted()
    except BrokenPipeError:
        return 0
    except Exception as e:  # TraceError is the expected one; keep the import lazy
        from ptpair.traces.format import TraceError

        if _caused_by_interrupt(e):
            # a Ctrl-C or SIGTERM that lands while numba loads or compiles a kernel comes
            # out of it as a SystemError caused by the KeyboardInterrupt
            return _interrupted()

        if isinstance(e, TraceError):
            print(str(e), file=sys.stderr)
            return 2
        if type(e).__name__ == "InvariantError":  # a simulator bug found by --check
            print(f"ptpair: {e}", file=sys.stderr)
            return 3
        raise


if __name__ == "__main__":
    sys.exit(main())
