"""Sweeps: a grid of replays -> one Parquet row per run, resumable, on local or Dask engines.

A grid file (TOML) names the axes; every combination is one run:

    schemes = ["pair", "separate"]          # default: the four main schemes
    allocators = ["buddy", "linux"]         # or "akaros-2015"; default: ["buddy"]
    reclaims = ["empty", "exit"]            # default: ["empty"]
    policies = ["address"]                  # default: ["address"]
    memory = ["256MiB", "1GiB"]             # or memory_pages = [65536]; default 4GiB
    minmem = true                           # also each run's minimum memory and pressure margin
    initial = ["pristine", "map.parquet"]   # free maps to start from (relative paths); default pristine
    age = ["none", "synthetic:free=0.3,unusable=0.5,seed=1", "warm.parquet"]  # default none
    traces = ["a.csv", "b.parquet"]         # paths relative to the grid file, and/or
    [synth]
    workload = ["mixed", "vmm-heavy"]
    events = [5000]
    seeds = [1, 2, 3]
    [synth.params]                          # any traces/synth.py Params field, as a list
    vmm_fraction = [0.0, 0.5, 1.0]

A run on a free map has the map's memory (the memory axis does not apply to it); `minmem`
applies to pristine memory and to the synthetic ager only (the others fix the memory size).

Each run is identified by a hash of its parameters (`run_id`). Finished runs are written
at once, each atomically, to `OUT.parts/`; when all are done they are combined into OUT
(atomically, sorted in grid order, so the file does not depend on the engine or on the
order runs finished), and the parts are removed. A sweep that is interrupted and started
again skips every run already in OUT or in OUT.parts/.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ptpair import registry
from ptpair.errors import GridError  # noqa: F401  (re-exported)
from ptpair.traces.sources import file_sha256
from ptpair.traces.units import size_pages


def _memory_pages(text) -> int:
    """A grid's memory size: text as `--memory` reads it (256MiB, 4GiB), or an int of frames."""
    if isinstance(text, int):
        return text
    try:
        return size_pages(text)
    except ValueError as e:
        raise GridError(f"memory size {e}") from None


def _list(v):
    return v if isinstance(v, list) else [v]


def load_grid(path: str | os.PathLike) -> list[dict]:
    """The runs of a grid file, in grid order (each a JSON-ready dict of parameters)."""
    path = Path(path)
    try:
        g = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise GridError(f"{path}: {e}") from None
    return expand_grid(g, base=path.parent)


def expand_grid(g: dict, base: Path = Path(".")) -> list[dict]:
    known = {"schemes", "policies", "memory", "memory_pages", "traces", "synth", "allocators", "reclaims", "minmem",
             "initial", "age"}
    bad = set(g) - known
    if bad:
        raise GridError(f"unknown grid keys {', '.join(sorted(bad))}; known: {', '.join(sorted(known))}")
    axes = {}
    for key, kind, choices, default in (("schemes", "scheme", registry.SCHEME_NAMES, registry.DEFAULT_SCHEMES),
                                        ("policies", "policy", registry.POLICIES, registry.POLICIES[:1]),
                                        ("allocators", "allocator", registry.ALLOCATORS, registry.DEFAULT_MACHINE[:1]),
                                        ("reclaims", "reclaim policy", registry.RECLAIMS, registry.DEFAULT_MACHINE[1:])):
        axes[key] = _list(g.get(key, list(default)))
        for v in axes[key]:
            if v not in choices:
                raise GridError(f"unknown {kind} {v!r}; choose from {', '.join(choices)}")
    if "memory_pages" in g:
        memories = [int(x) for x in _list(g["memory_pages"])]
    else:
        memories = [_memory_pages(x) for x in _list(g.get("memory", ["4GiB"]))]
    minmem = g.get("minmem", False)
    if not isinstance(minmem, bool):
        raise GridError(f"minmem = {minmem!r}: true or false")
    sources = []
    for t in _list(g.get("traces", [])):
        p = (base / t).resolve()
        try:
            sources.append({"trace": str(p), "trace_sha256": file_sha256(p)})
        except OSError as e:
            raise GridError(f"{p}: {e.strerror}") from None
    if "synth" in g:
        sy = dict(g["synth"])
        params = sy.pop("params", {})
        workloads = _list(sy.pop("workload", ["mixed"]))
        events = _list(sy.pop("events", [10_000]))
        seeds = _list(sy.pop("seeds", [1]))
        if sy:
            raise GridError(f"unknown [synth] keys {', '.join(sorted(sy))}")
        for w in workloads:
            if w not in registry.WORKLOADS:
                raise GridError(f"unknown workload {w!r}; choose from {', '.join(registry.WORKLOADS)}")
        names = sorted(params)
        for w, e, combo, s in itertools.product(workloads, events, itertools.product(
                *[_list(params[n]) for n in names]), seeds):
            sources.append({"workload": w, "events": int(e), "seed": int(s), "params": dict(zip(names, combo))})
    if not sources:
        raise GridError("the grid names no traces and no [synth] workloads")
    starts = _starts(g, base, minmem)
    runs, seen = [], set()
    for src, scheme, policy, mem, alloc, rec, start in itertools.product(
            sources, axes["schemes"], axes["policies"], memories, axes["allocators"], axes["reclaims"], starts):
        run = {**src, "scheme": scheme, "policy": policy, "memory_pages": mem, "allocator": alloc, "reclaim": rec}
        run.update(start)  # pristine memory adds nothing: run ids of grids without these axes are unchanged
        if "initial" in start:
            run["memory_pages"] = start["initial_frames"]
            del run["initial_frames"]
        if minmem:
            run["minmem"] = True
        run["run_id"] = run_id(run)
        if run["run_id"] not in seen:  # a map's runs are one whatever the memory axis says
            seen.add(run["run_id"])
            runs.append(run)
    return runs


def _starts(g: dict, base: Path, minmem: bool) -> list[dict]:
    """The grid's initial-state axis: initial (free maps) x age (none, synthetic, traces)."""
    from ptpair.errors import TraceError
    from ptpair.sim.initial import fixed_memory, map_frames
    from ptpair.traces.ager import is_ager, parse_ager

    maps = [{}]
    if "initial" in g:
        maps = []
        for m in _list(g["initial"]):
            if m == "pristine":
                maps.append({})
                continue
            p = (base / m).resolve()
            try:
                maps.append({"initial": str(p), "initial_sha256": file_sha256(p), "initial_frames": map_frames(p)})
            except OSError as e:
                raise GridError(f"{p}: {e.strerror}") from None
            except TraceError as e:
                raise GridError(str(e)) from None
    ages = [{}]
    if "age" in g:
        ages = []
        for a in _list(g["age"]):
            if a == "none":
                ages.append({})
            elif is_ager(a):
                try:
                    ages.append({"age": parse_ager(a).spec()})
                except ValueError as e:
                    raise GridError(str(e)) from None
            else:
                p = (base / a).resolve()
                try:
                    ages.append({"age": str(p), "age_sha256": file_sha256(p)})
                except OSError as e:
                    raise GridError(f"{p}: {e.strerror}") from None
    out = []
    for m, a in itertools.product(maps, ages):
        if m and a and is_ager(a["age"]):
            continue  # the map says what memory holds: no synthetic ager on it
        why = fixed_memory(m.get("initial"), a.get("age"))
        if minmem and why:
            raise GridError(f"minmem = true searches the memory size: {why} (use pristine memory or a synthetic ager)")
        out.append({**m, **a})
    if not out:
        raise GridError("every initial x age combination is a free map with a synthetic ager: a map says what "
                        "memory holds, so it takes no ager")
    return out


def run_id(run: dict) -> str:
    spec = {k: v for k, v in run.items() if k != "run_id"}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def run_one(run: dict) -> dict:
    """Replay one run of a grid; returns its parameters and every end-of-run figure."""
    from ptpair.analysis.catalogue import metrics_row
    from ptpair.sim.machine import Config
    from ptpair.sim.replay import replay

    if "trace" in run:
        from ptpair.traces.readers import read_any

        trace = read_any(run["trace"])
    else:
        from ptpair.traces.synth import synth

        trace = synth(run["workload"], seed=run["seed"], events=run["events"], **run["params"])
    r = replay(trace, Config(run["scheme"], run["policy"], run["memory_pages"], run["allocator"], run["reclaim"],
                             run.get("initial"), run.get("age")))
    row = {k: v for k, v in run.items() if k != "params"}
    for k, v in run.get("params", {}).items():
        row[f"param_{k}"] = v
    row.update(metrics_row(r))
    row["buddyinfo_final"] = json.dumps(r.final["buddyinfo"])
    row["alloc_failures_by_order"] = json.dumps(r.alloc_failures)
    row["compaction_pages_by_order"] = json.dumps(r.pressure["compaction_pages_by_order"])
    if run.get("minmem"):  # the run's frame-exact minimum memory and pressure margin
        from ptpair.analysis.minmem import min_memory

        mm = min_memory(trace, run["scheme"], run["policy"], run["allocator"], run["reclaim"], age=run.get("age"))
        row.update(min_memory_pages=mm.min_memory_pages, peak_used_pages=mm.peak_used_pages,
                   pressure_margin_pages=mm.pressure_margin_pages, minmem_verified=mm.verified)
    row["hopeless_failures_by_order"] = json.dumps(r.pressure["hopeless_failures"])
    return row


# --- engines -------------------------------------------------------------------------
# An engine runs `fn(task)` for every task and yields (task, result) as each finishes, in
# any order; callers put results back in a fixed order, so outputs do not depend on the
# engine. Tasks are picklable: a grid run's dict, or an experiment's tuple.
def task_key(task) -> str:
    """A stable name for a task (Dask keys): a run's run_id, else a hash of the task."""
    if isinstance(task, dict) and "run_id" in task:
        return task["run_id"]
    return hashlib.sha256(repr(task).encode()).hexdigest()[:16]


class LocalEngine:
    """Local worker processes (all cores by default); nothing to start. One worker runs the
    tasks in this process."""

    def __init__(self, workers: int | None = None):
        self.workers = workers or os.cpu_count() or 1

    def map_unordered(self, fn, tasks):
        tasks = list(tasks)
        if self.workers <= 1 or len(tasks) <= 1:
            for t in tasks:
                yield t, fn(t)
            return
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        # fork: workers inherit the loaded, compiled core instead of importing it again
        ctx = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx) as ex:
            futs = {ex.submit(fn, t): t for t in tasks}
            try:
                for f in as_completed(futs):
                    yield futs[f], f.result()
            except BaseException:
                for f in futs:
                    f.cancel()
                raise


class DaskEngine:
    """A Dask distributed cluster: `scheduler` is its address (tcp://HOST:PORT) or a Client."""

    def __init__(self, scheduler):
        from distributed import Client

        self.client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
        self._own = not isinstance(scheduler, Client)

    def map_unordered(self, fn, tasks):
        from distributed import as_completed

        futs = {}
        for t in tasks:
            futs[self.client.submit(fn, t, key=f"ptpair-run-{task_key(t)}", pure=False)] = t
        try:
            for f in as_completed(list(futs)):
                yield futs[f], f.result()
        finally:
            if self._own:
                self.client.close()


# --- the sweep -------------------------------------------------------------------------
@dataclass
class SweepStatus:
    total: int
    skipped: int  # already done before this call
    ran: int


def _parts_dir(out: Path) -> Path:
    return out.with_name(out.name + ".parts")


def _done_ids(out: Path) -> set[str]:
    done = set()
    if out.exists():
        done |= set(pd.read_parquet(out, columns=["run_id"])["run_id"])
    parts = _parts_dir(out)
    if parts.is_dir():
        done |= {p.stem for p in parts.glob("*.parquet")}
    return done


def sweep(runs: list[dict], out: str | os.PathLike, engine=None, progress: bool = True) -> SweepStatus:
    """Run every run not already done, writing each as it finishes; then combine."""
    from ptpair.traces.atomic import atomic_path

    out = Path(out)
    engine = engine or LocalEngine()
    done = _done_ids(out)
    todo = [r for r in runs if r["run_id"] not in done]
    parts = _parts_dir(out)
    parts.mkdir(parents=True, exist_ok=True)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(runs), initial=len(runs) - len(todo), unit="run", desc="sweep")
    ran = 0
    try:
        for run, row in engine.map_unordered(run_one, todo):
            with atomic_path(parts / f"{run['run_id']}.parquet") as tmp:
                pd.DataFrame([row]).to_parquet(tmp, index=False)
            ran += 1
            if bar:
                bar.update(1)
    finally:
        if bar:
            bar.close()
    _combine(runs, out)
    return SweepStatus(len(runs), len(runs) - len(todo), ran)


def _combine(runs: list[dict], out: Path) -> None:
    """Merge OUT and OUT.parts/ into OUT, rows in grid order, atomically."""
    from ptpair.traces.atomic import atomic_path

    parts = _parts_dir(out)
    frames = []
    if out.exists():
        frames.append(pd.read_parquet(out))
    files = sorted(parts.glob("*.parquet")) if parts.is_dir() else []
    frames += [pd.read_parquet(p) for p in files]
    df = pd.concat(frames, ignore_index=True).drop_duplicates("run_id", keep="last")
    order = {r["run_id"]: i for i, r in enumerate(runs)}
    df["_order"] = df["run_id"].map(order).fillna(len(order)).astype(int)
    df = df.sort_values(["_order", "run_id"]).drop(columns="_order").reset_index(drop=True)
    with atomic_path(out) as tmp:
        df.to_parquet(tmp, index=False)
    for p in files:
        p.unlink()
    if parts.is_dir() and not any(parts.iterdir()):
        parts.rmdir()
