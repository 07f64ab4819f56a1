"""The experiments of a report: every replay it needs, run on a sweep engine (all local
cores by default, or a Dask cluster), gathered into tidy DataFrames.

Two phases. Phase 1 finds, per trace and scheme, the smallest failure-free memory (and
with it the peak of frames in use), and runs the seed replicates of the synthetic
presets and the break-even points. Phase 2 replays each trace at its report memory --
the pair scheme's peak of used frames plus a headroom (25 % by default), so the
allocator works under pressure -- sampled over time, at a ladder of memory sizes around
that peak for the failure curves, and under the two kernel variants.

Everything is deterministic: tasks are pure functions of their parameters, results are
sorted into a fixed order whatever order workers finish in.
"""

from __future__ import annotations

import time
import tomllib
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from ptpair import registry
from ptpair.analysis.phases import NONE as NO_PHASES, Phases
from ptpair.analysis.sweep import GridError, LocalEngine, expand_grid
from ptpair.traces.sources import (
    default_freemap, load, name_traces, synth_spec, vmpte_recordings, warmup_trace, workload_of
)
from ptpair.traces.units import MIB_PAGES

SEED_MINMEM_SCHEMES = (registry.PAIR, registry.BASELINE)
LARGE_MEMORY_PAGES = 1 << 20  # 4 GiB: seed replicates and break-even run without pressure
WARMUP = "(warm-up)"  # the phase-1 name of the kmem-aged memory's warm-up trace


@dataclass(frozen=True)
class ReportParams:
    """What a report replays. Memory in 4-KiB frames; fractions of the peak of used frames."""

    schemes: tuple = registry.DEFAULT_SCHEMES
    policy: str = "address"
    headroom: float = 0.25  # report memory = pair's peak used frames x (1 + headroom)
    memory_pages: int | None = None  # a fixed report memory instead of the headroom rule
    samples: int = 100  # time-series samples per replay
    windows: int = 200  # windows of the tight-memory series (sampled after every event)
    memory_fractions: tuple = (0.9, 0.95, 1.0, 1.05, 1.1, 1.25)  # failure curves
    failure_schemes: tuple = ("pair", "separate", "separate-eager")
    workloads: tuple = registry.WORKLOADS
    seeds: int = 6  # replicates per synthetic workload (seeds 1..N)
    seed_events: int = 5000
    breakeven_workload: str = "mixed"
    breakeven_fractions: tuple = (0.0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0)
    breakeven_seeds: int = 3
    kernels: tuple = tuple(k.name for k in registry.KERNELS)
    walk: bool = True  # time the walks (analysis/walkbench.py): the report's one measured, not replayed, part
    walk_repeats: int = 11
    walk_lookups: int = 100_000
    aged: bool = True  # the aged-memory experiments (analysis/aged.py)
    ager_seeds: int = 3  # synthetic ager seeds per unusable-index level (intervals)
    freemap: str | None = None  # the free map of the aged experiments (default: the corpus's)
    warmup: str | None = None  # the warm-up trace of the kmem-aged memory (default: the corpus's)
    vmpte: bool = True  # the corpus's perf recordings replayed against their VmPTE samples (analysis/vmpte.py)
    workers: int | None = None  # local worker processes (default: all cores); not in the results

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("workers")
        return d


@dataclass
class ReportData:
    """The tidy tables behind every figure and table of a report."""

    traces: dict  # name -> path (str)
    params: ReportParams
    memory: pd.DataFrame = field(default=None)  # trace, memory_pages (the report memory)
    minmem: pd.DataFrame = field(default=None)  # trace, scheme, min_memory_pages, peak_used_pages, pressure_margin_pages, ...
    metrics: pd.DataFrame = field(default=None)  # trace, scheme, metrics_row columns
    series: pd.DataFrame = field(default=None)  # trace, scheme, series_frame columns
    tight: pd.DataFrame = field(default=None)  # the same at the tight memory, windowed (worst per window)
    compaction: pd.DataFrame = field(default=None)  # trace, scheme, memory_pages, order, failures, compaction_pages, ...
    failures: pd.DataFrame = field(default=None)  # trace, scheme, memory_pages, failures_0..10
    kernels: pd.DataFrame = field(default=None)  # trace, kernel, scheme, metrics_row columns
    seeds: pd.DataFrame = field(default=None)  # workload, seed, scheme, metrics + min memory and pressure margin
    breakeven: pd.DataFrame = field(default=None)  # breakeven.point rows
    walk: pd.DataFrame = field(default=None)  # trace, scheme, pattern, memory_pages, ns_per_lookup (+ CI), ...
    walk_info: dict = field(default=None)  # the machine the walks were timed on
    aged: pd.DataFrame = field(default=None)  # analysis/aged.py rows: trace, memory, scheme, metrics, ...
    vmpte: pd.DataFrame = field(default=None)  # recording, time, pid, comm, replayed_kb, vmpte_kb
    vmpte_inputs: list = field(default=None)  # the recordings behind `vmpte` (name, path, samples)


# --- tasks (run in worker processes) -----------------------------------------------------
def run_task(task: tuple):
    """One unit of work; `task` is a tuple whose first item names the kind."""
    from ptpair.analysis.catalogue import metrics_row
    from ptpair.analysis.minmem import clean_point, min_memory
    from ptpair.sim.machine import Config
    from ptpair.sim.replay import replay

    kind = task[0]
    if kind == "aged":
        from ptpair.analysis import aged

        return aged.run(task)
    if kind == "vmpte":
        _, name, path, samples = task
        from ptpair.analysis.vmpte import over_time, read_samples

        return over_time(load(path), read_samples(samples)).assign(recording=name)
    if kind == "minmem":
        _, name, path, scheme, policy = task
        # one replay at 4 GiB gives the peak, and saves the search its doubling (analysis/minmem.py)
        return min_memory(load(path), scheme, policy, clean_first=LARGE_MEMORY_PAGES).to_dict()
    if kind == "sampled":
        _, name, path, scheme, policy, pages, every = task
        from ptpair.analysis.metrics import series_frame

        r = replay(load(path), Config(scheme, policy, pages), sample_every=every)
        return {"metrics": metrics_row(r), "series": series_frame(r), "failures": _failures(r)}
    if kind == "tight":
        _, name, path, scheme, policy, pages, windows = task
        from ptpair.analysis.metrics import series_frame, windowed

        r = replay(load(path), Config(scheme, policy, pages), sample_every=1)
        by_order = [{"order": k, "failures": r.alloc_failures[k],
                     "compaction_pages": r.pressure["compaction_pages_by_order"][k],
                     "hopeless_failures": r.pressure["hopeless_failures"][k]} for k in range(len(r.alloc_failures))]
        return {"series": windowed(series_frame(r), windows), "compaction": by_order}
    if kind == "failures":
        _, name, path, scheme, policy, pages = task
        return _failures(replay(load(path), Config(scheme, policy, pages)))
    if kind == "kernel":
        _, name, path, kernel, scheme, policy, pages = task
        allocator, reclaim = registry.kernel_machine(kernel)
        r = replay(load(path), Config(scheme, policy, pages, allocator, reclaim))
        return metrics_row(r)
    if kind == "seed":
        _, workload, seed, events, schemes, policy = task
        trace = load(synth_spec(workload, seed, events))
        rows = []
        for s in schemes:
            r = replay(trace, Config(s, policy, LARGE_MEMORY_PAGES))
            row = metrics_row(r)
            # the replay above, when clean, saves the search its first probes
            mm = min_memory(trace, s, policy, known_clean=clean_point(r)) if s in SEED_MINMEM_SCHEMES else None
            row["min_memory_pages"] = mm.min_memory_pages if mm else None
            row["pressure_margin_pages"] = mm.pressure_margin_pages if mm else None
            rows.append({"workload": workload, "seed": seed, "scheme": s, **row})
        return rows
    if kind == "breakeven":
        _, workload, fraction, seed, events, policy = task
        from ptpair.analysis.breakeven import point

        return point(workload, fraction, seed, events, LARGE_MEMORY_PAGES, policy)
    raise ValueError(f"unknown task {kind!r}")


def _failures(r) -> dict:
    """The failed allocations of a replay, by order (the failure curves' points)."""
    return {f"failures_{k}": int(v) for k, v in enumerate(r.alloc_failures)}


# --- running ------------------------------------------------------------------------------
def timed_task(task: tuple) -> tuple:
    """(result, seconds) of `run_task(task)` in the worker that runs it."""
    t0 = time.perf_counter()
    r = run_task(task)
    return r, time.perf_counter() - t0


def _run_all(tasks: list, engine, bar, phases: Phases = NO_PHASES) -> dict:
    """task -> result for every task, on `engine` (analysis/sweep.py); the time each
    kind of task took in the workers goes to `phases` ("worker time: KIND")."""
    out = {}
    for t, (r, seconds) in engine.map_unordered(timed_task, tasks):
        out[t] = r
        phases.add(f"worker time: {t[0]}", seconds)
        bar.update(1)
    return out


def kernel_schemes(kernel: str, p: ReportParams) -> tuple:
    return registry.BY_KERNEL[kernel].report_schemes or p.schemes


def _round_up(pages: float) -> int:
    """Up to a whole MiB: report memories are sizes a reader recognises."""
    return int(-(-int(pages) // MIB_PAGES) * MIB_PAGES)


def collect(traces: dict, params: ReportParams = ReportParams(), progress: bool = True,
            engine=None, phases: Phases = NO_PHASES) -> ReportData:
    """Run every replay the report needs. `traces`: name -> source (a trace file or a
    traces.sources.synth_spec); `engine`: a sweep engine (default: local, params.workers);
    `phases` collects the wall time of each step (analysis/phases.py)."""
    from tqdm import tqdm

    from ptpair.sim import precompile

    p = params
    engine = engine or LocalEngine(p.workers)
    traces = {n: str(path) for n, path in traces.items()}
    local = isinstance(engine, LocalEngine)  # (remote workers compile for themselves)
    # on a cold cache, the loop's callees compile on the second core while the inputs are read
    with precompile.early() if local else nullcontext():
        with phases("read inputs"):
            for path in traces.values():  # read (and validate) every input once, before any worker starts
                load(path)
        if local:
            with phases("compile"):
                compile_core(p.policy)
    phase1 = [("minmem", n, path, s, p.policy) for n, path in traces.items() for s in p.schemes]
    warmup = (p.warmup or warmup_trace()) if p.aged else None
    if warmup:  # its peak sizes the kmem-aged memory
        load(warmup)
        phase1.append(("minmem", WARMUP, warmup, registry.PAIR, p.policy))
    recordings = vmpte_recordings() if p.vmpte else []
    phase1 += [("vmpte", r["name"], r["path"], r["samples"]) for r in recordings]
    phase1 += [("seed", w, s, p.seed_events, tuple(p.schemes), p.policy)
               for w in p.workloads for s in range(1, p.seeds + 1)]
    phase1 += [("breakeven", p.breakeven_workload, f, s, p.seed_events, p.policy)
               for f in p.breakeven_fractions for s in range(1, p.breakeven_seeds + 1)]
    n_phase2 = len(traces) * (2 * len(p.schemes) + len(p.memory_fractions) * len(p.failure_schemes)
                              + sum(len(kernel_schemes(k, p)) for k in p.kernels))
    if p.aged:
        from ptpair.analysis import aged

        aged_traces = {n: path for n, path in traces.items() if workload_of(path) is None} or traces
        freemap = p.freemap or default_freemap()
        # the counts of the task list, before the memories that size it are known
        n_phase2 += len(aged.tasks(aged_traces, dict.fromkeys(aged_traces, MIB_PAGES), (warmup, 0) if warmup
                                   else None, freemap, p.policy, p.ager_seeds))
    bar = tqdm(total=len(phase1) + n_phase2, unit="run", desc="report", disable=not progress)
    try:
        with phases("replays, phase 1"):
            r1 = _run_all(phase1, engine, bar, phases)
        data = ReportData(traces=traces, params=p)
        mm_rows = [{"trace": t[1], "scheme": t[3], **r1[t]} for t in phase1 if t[0] == "minmem" and t[1] != WARMUP]
        data.minmem = pd.DataFrame(mm_rows)
        peak = {n: int(data.minmem[(data.minmem["trace"] == n)]["peak_used_pages"].max()) for n in traces}
        mem = {n: p.memory_pages or _round_up(peak[n] * (1 + p.headroom)) for n in traces}
        # the tight memory: the largest 1-MiB multiple below the peak of used frames, so that
        # some allocation must fail and the kernel's fragmentation index gets defined
        tight = {n: max(MIB_PAGES, (peak[n] - 1) // MIB_PAGES * MIB_PAGES) for n in traces}
        data.memory = pd.DataFrame({"trace": list(mem), "memory_pages": list(mem.values()),
                                    "peak_used_pages": [peak[n] for n in mem],
                                    "tight_memory_pages": [tight[n] for n in mem]})
        data.seeds = pd.DataFrame([row for t in phase1 if t[0] == "seed" for row in r1[t]])
        data.breakeven = pd.DataFrame([r1[t] for t in phase1 if t[0] == "breakeven"])
        if recordings:
            frames = [r1[t] for t in phase1 if t[0] == "vmpte"]
            data.vmpte = pd.concat(frames, ignore_index=True)[["recording", *frames[0].columns[:-1]]]
            data.vmpte_inputs = recordings

        phase2 = []
        for n, path in traces.items():
            nev = len(load(path).op)
            every = max(1, -(-nev // p.samples))
            phase2 += [("sampled", n, path, s, p.policy, mem[n], every) for s in p.schemes]
            phase2 += [("tight", n, path, s, p.policy, tight[n], p.windows) for s in p.schemes]
            # a point of a failure curve at the report memory is the sampled replay's (the
            # same configuration: its failures are read from that result)
            phase2 += [("failures", n, path, s, p.policy, _round_up(peak[n] * f))
                       for s in p.failure_schemes for f in p.memory_fractions
                       if not (s in p.schemes and _round_up(peak[n] * f) == mem[n])]
            for k in p.kernels:
                phase2 += [("kernel", n, path, k, s, p.policy, mem[n]) for s in kernel_schemes(k, p)]
        if p.aged:
            warm = None
            if warmup:
                wpeak = next(r1[t]["peak_used_pages"] for t in phase1 if t[0] == "minmem" and t[1] == WARMUP)
                warm = (warmup, _round_up(wpeak * (1 + p.headroom)))
            phase2 += aged.tasks(aged_traces, mem, warm, freemap, p.policy, p.ager_seeds)
        phase2 = list(dict.fromkeys(phase2))  # (fractions of a small peak can round to one size)
        bar.total = len(phase1) + len(phase2)
        bar.refresh()
        with phases("replays, phase 2"):
            r2 = _run_all(phase2, engine, bar, phases)
    finally:
        bar.close()
    data.metrics = pd.DataFrame([{"trace": t[1], "scheme": t[3], "memory_pages": t[5], **r2[t]["metrics"]}
                                 for t in phase2 if t[0] == "sampled"])
    data.series = pd.concat([r2[t]["series"].assign(trace=t[1], scheme=t[3]) for t in phase2 if t[0] == "sampled"],
                            ignore_index=True)
    data.tight = pd.concat([r2[t]["series"].assign(trace=t[1], scheme=t[3]) for t in phase2 if t[0] == "tight"],
                           ignore_index=True)
    data.compaction = pd.DataFrame([{"trace": t[1], "scheme": t[3], "memory_pages": t[5], **row}
                                    for t in phase2 if t[0] == "tight" for row in r2[t]["compaction"]])
    front = ["trace", "scheme"]
    data.series = data.series[front + [c for c in data.series.columns if c not in front]]
    data.tight = data.tight[front + [c for c in data.tight.columns if c not in front]]
    sampled = {(t[1], t[3], t[5]): r2[t]["failures"] for t in phase2 if t[0] == "sampled"}
    data.failures = pd.DataFrame([{"trace": n, "scheme": s, "memory_pages": pages,
                                   **(sampled.get((n, s, pages)) or r2[("failures", n, traces[n], s, p.policy, pages)])}
                                  for n in traces for s in p.failure_schemes
                                  for pages in (_round_up(peak[n] * f) for f in p.memory_fractions)])
    data.kernels = pd.DataFrame([{"trace": t[1], "kernel": t[3], "scheme": t[4], "memory_pages": t[6], **r2[t]}
                                 for t in phase2 if t[0] == "kernel"])
    if p.aged:
        data.aged = aged.frame([r2[t] for t in phase2 if t[0] == "aged"], list(traces))
    if p.walk:
        with phases("walk timing"):
            _time_walks(data, traces, tight, mem, progress)
    return data


def compile_core(policy: str) -> None:
    """Compile (or load from the cache) the replay loop here, before any worker starts: the
    workers are forked from this process and inherit it compiled, instead of each compiling
    the same code at once on a cold cache."""
    from ptpair.sim.machine import Config
    from ptpair.sim.replay import replay

    replay(load(synth_spec("mixed", 1, 200)), Config(registry.PAIR, policy, LARGE_MEMORY_PAGES), sample_every=50)


def _walk_replay(job: tuple) -> tuple:
    """A walk benchmark's replay, in a worker: walkbench.replayed(...) of (path, scheme, policy, pages)."""
    from ptpair.analysis.walkbench import replayed

    path, scheme, policy, pages = job
    return replayed(load(path), scheme, policy, pages)


def _time_walks(data: ReportData, traces: dict, tight: dict, mem: dict, progress: bool) -> None:
    """Timed alone, after every replay: a walk benchmark shares the machine with nothing
    the report started. The replays its machines are built from run first, the schemes of
    one memory size at once, on all cores (they are not timed). Traces where no process has
    an EPT under `separate` are skipped: those without VMMs before any replay."""
    from tqdm import tqdm

    from ptpair.analysis.walkbench import NothingToWalk, hardware_counters, machine_info, walkbench
    from ptpair.traces.format import OP_VMM, encode

    p = data.params
    schemes = (registry.PAIR, registry.BASELINE)
    engine = LocalEngine(p.workers)
    rows = []
    for name in tqdm(list(traces), desc="walks", unit="trace", disable=not progress):
        trace = load(traces[name])
        if not (encode(trace).op == OP_VMM).any():  # under separate, only VMM processes have an EPT
            continue
        for pages in sorted({tight[name], mem[name], LARGE_MEMORY_PAGES}):
            # the two schemes' replays on two cores, then their timing alone
            done = dict(engine.map_unordered(_walk_replay, [(traces[name], s, p.policy, pages) for s in schemes]))
            try:
                r = walkbench(trace, schemes, ("sequential", "random"), pages, p.policy, repeats=p.walk_repeats,
                              lookups=p.walk_lookups,
                              replays={s: done[(traces[name], s, p.policy, pages)] for s in schemes})
            except NothingToWalk:  # no VMM with pages: nothing to walk under separate
                break
            for scheme, d in r["schemes"].items():
                for pat in ("sequential", "random"):
                    x = d[pat]
                    rows.append({"trace": name, "scheme": scheme, "pattern": pat, "memory_pages": pages,
                                 "ns_per_lookup": x["ns_per_lookup"], "ci_low": x["ns_per_lookup_ci"][0],
                                 "ci_high": x["ns_per_lookup_ci"][1], "ns_per_range_page": x["ns_per_range_page"],
                                 "range_ci_low": x["ns_per_range_page_ci"][0],
                                 "range_ci_high": x["ns_per_range_page_ci"][1], "addresses": r["addresses"],
                                 "counted_ept_loads_per_write": d["counted"]["ept_dependent_loads_per_write"]})
    data.walk = pd.DataFrame(rows)
    data.walk_info = {"machine": machine_info(), "hardware_counters": hardware_counters()}


def grid_inputs(path) -> tuple[dict, dict]:
    """(traces, ReportParams overrides) from a sweep grid file (analysis/sweep.py): its trace
    files and [synth] workloads become the report's traces; its schemes, first policy and,
    if it names exactly one, its memory size become the report's."""
    path = Path(path)
    try:
        g = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise GridError(f"{path}: {e}") from None
    runs = expand_grid(g, base=path.parent)  # validates the grid (unknown keys, schemes, files)
    traces = name_traces(dict.fromkeys(r["trace"] for r in runs if "trace" in r))
    for r in runs:
        if "workload" in r:
            label = "-".join([r["workload"], f"s{r['seed']}", f"{r['events']}ev"]
                             + [f"{k}{v}" for k, v in r["params"].items()])
            traces[label] = synth_spec(r["workload"], r["seed"], r["events"], r["params"])
    overrides = {"schemes": tuple(dict.fromkeys(r["scheme"] for r in runs)), "policy": runs[0]["policy"]}
    memories = set(r["memory_pages"] for r in runs)
    if "memory" in g or "memory_pages" in g:
        if len(memories) != 1:
            raise GridError(f"{path}: a report takes one memory size; the grid names {len(memories)} "
                            "(use `ptpair sweep` for a memory sweep)")
        overrides["memory_pages"] = memories.pop()
    return traces, overrides
