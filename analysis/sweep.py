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

Each run is identified by a hash of its parameters (`run_id`; not of the code: see
below). Finished runs are written at once, each atomically, to `OUT.parts/` as
`RUN_ID.parquet`, beside `grid.json` (the JSON list of the run ids the sweep will write to
OUT, written before any part); when all are done they are combined into OUT (atomically,
sorted in grid order, so the file does not depend on the engine or on the order runs
finished), and the parts are removed. A sweep that is interrupted and started again skips
every run already in OUT or in OUT.parts/.

OUT holds one row per run: the run's parameters (`params` as `param_NAME` columns), every
end-of-run figure, and the code that made the row -- `ptpair_version` and `git_commit`
(ptpair/provenance.py: 40 hex digits, `+dirty` for uncommitted changes to the code; null
when ptpair is not a git checkout). Its Parquet schema metadata `ptpair.grid` is the JSON
list of its rows' run ids, in row order. The same rows give the same bytes.

What OUT may be mixed with (each refusal a GridError before anything is written):
* another grid: OUT, and OUT.parts/ (by its grid.json), must hold the same set of run ids
  as the grid run now. With `merge=True` (`--merge`) both are kept: OUT's runs in OUT's
  order, then finished parts of an unfinished sweep in its order, then this grid's other
  runs in grid order -- that order is the new recorded grid (the unfinished runs of
  another grid are not run: only their parameters' hashes are known). A file of a ptpair
  without the metadata is judged by its rows (OUT is written only when every run of its
  grid is done, so its rows are its grid); parts without grid.json by the runs they hold.
* another ptpair: a finished row (in OUT or a part) whose (ptpair_version, git_commit) is
  not this process's; likewise a row a worker returns now (a Dask worker with another
  install), refused before it is written. With `allow_mixed_versions=True` (`--allow-mixed-versions`) such
  rows are kept and their runs not redone. Rows of a ptpair that recorded no version count
  as another version.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import tomllib
import weakref
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ptpair import provenance, registry
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

    def entries(key: str, none_word: str, entry) -> list[dict]:
        """One dict per value of the axis `key` ({} for `none_word`, or the axis absent);
        a value that cannot be read is a GridError."""
        if key not in g:
            return [{}]
        out = []
        for v in _list(g[key]):
            try:
                out.append({} if v == none_word else entry(v))
            except OSError as e:
                raise GridError(f"{(base / v).resolve()}: {e.strerror}") from None
            except TraceError as e:
                raise GridError(str(e)) from None
        return out

    def free_map(m: str) -> dict:
        p = (base / m).resolve()
        return {"initial": str(p), "initial_sha256": file_sha256(p), "initial_frames": map_frames(p)}

    def ager(a: str) -> dict:
        if is_ager(a):
            try:
                return {"age": parse_ager(a).spec()}
            except ValueError as e:
                raise GridError(str(e)) from None
        p = (base / a).resolve()
        return {"age": str(p), "age_sha256": file_sha256(p)}

    maps = entries("initial", "pristine", free_map)
    ages = entries("age", "none", ager)
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
    # the code that made the row (where the run ran: a Dask worker may be another install)
    row["ptpair_version"], row["git_commit"] = provenance.version(), provenance.git_commit()
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
        if not isinstance(scheduler, Client):  # ours: closed when the engine goes (a report maps twice)
            weakref.finalize(self, self.client.close)

    def map_unordered(self, fn, tasks):
        from distributed import as_completed

        futs = {}
        for t in tasks:
            futs[self.client.submit(fn, t, key=f"ptpair-run-{task_key(t)}", pure=False)] = t
        for f in as_completed(list(futs)):
            yield futs[f], f.result()


# --- the sweep -------------------------------------------------------------------------
GRID_KEY = b"ptpair.grid"  # OUT's Parquet schema metadata: the JSON list of its rows' run ids
PARTS_GRID = "grid.json"   # in OUT.parts/: the run ids the unfinished sweep will write to OUT
PROVENANCE = ("ptpair_version", "git_commit")  # per row: the code that made it (ptpair/provenance.py)


@dataclass
class SweepStatus:
    total: int
    skipped: int  # already done before this call
    ran: int
    kept: int = 0  # rows of other grids kept in OUT (merge=True)


def _parts_dir(out: Path) -> Path:
    return out.with_name(out.name + ".parts")


@dataclass
class _Prior:
    """What an earlier sweep left at OUT: its grid, the finished parts' grid, the done runs."""
    file_grid: list[str] | None   # OUT's run ids in row order (None: no OUT)
    parts_grid: list[str] | None  # the unfinished sweep's run ids (None: no parts, or parts of an older ptpair)
    part_ids: list[str]           # finished parts (run ids, sorted)

    @property
    def done(self) -> set[str]:
        return set(self.file_grid or ()) | set(self.part_ids)


def _file_grid(out: Path) -> list[str] | None:
    """OUT's recorded grid; a file of an older ptpair (no metadata) is judged by its rows,
    which are exactly the runs of the grid(s) that made it (OUT is written only when all are done)."""
    if not out.exists():
        return None
    import pyarrow.parquet as pq

    meta = pq.read_schema(out).metadata or {}
    if GRID_KEY in meta:
        return json.loads(meta[GRID_KEY])
    return list(pd.read_parquet(out, columns=["run_id"])["run_id"])


def _prior(out: Path) -> _Prior:
    parts = _parts_dir(out)
    part_ids = sorted(p.stem for p in parts.glob("*.parquet")) if parts.is_dir() else []
    grid_file = parts / PARTS_GRID
    # a recorded grid with no finished part holds no work: any grid may take its place
    parts_grid = json.loads(grid_file.read_text()) if part_ids and grid_file.exists() else None
    return _Prior(_file_grid(out), parts_grid, part_ids)


def _runs(n: int) -> str:
    return f"{n} run" + ("" if n == 1 else "s")


def _check_grid(out: Path, prior: _Prior, ids: list[str]) -> None:
    """A GridError unless OUT and OUT.parts/ hold runs of this grid (the same set of run ids)."""
    ours = set(ids)
    hint = "pass --merge to keep both (merge=True), or write to another file"
    if prior.file_grid is not None and set(prior.file_grid) != ours:
        theirs = set(prior.file_grid)
        raise GridError(f"{out} holds {_runs(len(theirs))} of another grid ({len(theirs - ours)} not in this grid, "
                        f"{len(ours - theirs)} of this grid's {len(ours)} not in it); {hint}")
    parts = _parts_dir(out)
    if prior.parts_grid is not None and set(prior.parts_grid) != ours:
        theirs = set(prior.parts_grid)
        raise GridError(f"{parts}/ holds an unfinished sweep of another grid ({len(prior.part_ids)} of its "
                        f"{len(theirs)} runs done; {len(theirs - ours)} not in this grid, {len(ours - theirs)} of "
                        f"this grid's {len(ours)} not in it); {hint}")
    stray = set(prior.part_ids) - ours  # parts of an older ptpair, which did not record their grid
    if prior.parts_grid is None and stray:
        raise GridError(f"{parts}/ holds {_runs(len(prior.part_ids))} finished, {len(stray)} of them not in this "
                        f"grid; {hint}")


def _provenance_counts(path: Path) -> Counter:
    """(ptpair_version, git_commit) -> rows of one Parquet file; (None, None) for rows of a
    ptpair that did not record them, None for a missing commit (not a git checkout)."""
    import pyarrow.parquet as pq

    if not set(PROVENANCE) <= set(pq.read_schema(path).names):
        return Counter({(None, None): pq.read_metadata(path).num_rows})
    df = pd.read_parquet(path, columns=list(PROVENANCE))
    return Counter(tuple(None if pd.isna(x) else x for x in pair)
                   for pair in zip(df["ptpair_version"], df["git_commit"]))


def _check_versions(out: Path, prior: _Prior, here: tuple[str, str | None]) -> None:
    """A GridError if a finished row was made by another ptpair version or commit than
    `here` (this process's (version, commit))."""
    parts = _parts_dir(out)
    sources = ([(str(out), [out])] if prior.file_grid is not None else []) + (
        [(f"{parts}/", [parts / f"{i}.parquet" for i in prior.part_ids])] if prior.part_ids else [])
    for where, files in sources:
        counts = sum((_provenance_counts(f) for f in files), Counter())
        other = sorted(((n, k) for k, n in counts.items() if k != here), key=lambda nk: (-nk[0], str(nk[1])))
        if other:
            made = "; ".join(f"{n} by {provenance.describe(*k)}" for n, k in other)
            raise GridError(f"{where} holds {_runs(counts.total())} finished, {made}; this is "
                            f"{provenance.describe(*here)}: resuming would mix their results with this version's; "
                            "pass --allow-mixed-versions to keep them (allow_mixed_versions=True), or write to "
                            "another file")


def _merged(prior: _Prior, ids: list[str]) -> list[str]:
    """The run ids OUT holds after merge=True: OUT's runs in its order, then the finished
    parts in their grid's order, then this grid's runs not among them, in grid order. Runs
    of an unfinished other grid that never finished are not in it (there is nothing to keep)."""
    have = prior.done | set(ids)
    seen, out = set(), []
    for i in (prior.file_grid or []) + (prior.parts_grid or prior.part_ids) + ids:
        if i in have and i not in seen:
            seen.add(i)
            out.append(i)
    return out


def sweep(runs: list[dict], out: str | os.PathLike, engine=None, progress: bool = True, merge: bool = False,
          allow_mixed_versions: bool = False) -> SweepStatus:
    """Run every run not already done, writing each as it finishes; then combine.

    Refused (GridError, nothing written) when OUT or OUT.parts/ hold runs of another grid
    (unless `merge`: OUT then holds both) or rows made by another ptpair version or commit
    (unless `allow_mixed_versions`: those rows are kept and their runs not redone)."""
    from ptpair.traces.atomic import atomic_path, write_text_atomic

    out = Path(out)
    engine = engine or LocalEngine()
    ids = [r["run_id"] for r in runs]
    # looked up here, before any worker is forked: local workers inherit the cached commit
    here = (provenance.version(), provenance.git_commit())
    prior = _prior(out)
    if not merge:
        _check_grid(out, prior, ids)
    if not allow_mixed_versions:
        _check_versions(out, prior, here)
    grid = _merged(prior, ids) if merge else ids
    done = prior.done
    todo = [r for r in runs if r["run_id"] not in done]
    parts = _parts_dir(out)
    parts.mkdir(parents=True, exist_ok=True)
    write_text_atomic(parts / PARTS_GRID, json.dumps(grid))  # before any part: a part always has its grid
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(runs), initial=len(runs) - len(todo), unit="run", desc="sweep")
    ran = 0
    try:
        for run, row in engine.map_unordered(run_one, todo):
            made = (row["ptpair_version"], row["git_commit"])
            if made != here and not allow_mixed_versions:  # a Dask worker with another install
                raise GridError(f"run {run['run_id']} was made by {provenance.describe(*made)} on a worker; this is "
                                f"{provenance.describe(*here)}: its rows would mix with this version's; give every "
                                "worker this ptpair, or pass --allow-mixed-versions (allow_mixed_versions=True)")
            with atomic_path(parts / f"{run['run_id']}.parquet") as tmp:
                pd.DataFrame([row]).to_parquet(tmp, index=False)
            ran += 1
            if bar:
                bar.update(1)
    finally:
        if bar:
            bar.close()
    _combine(grid, out)
    return SweepStatus(len(runs), len(runs) - len(todo), ran, len(set(grid) - set(ids)))


def _combine(grid: list[str], out: Path) -> None:
    """Merge OUT and OUT.parts/ into OUT, rows in `grid` order (run ids), atomically; the
    row order is recorded as the file's grid (GRID_KEY). Deterministic: the same rows give
    the same bytes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ptpair.traces.atomic import atomic_path

    parts = _parts_dir(out)
    frames = []
    if out.exists():
        frames.append(pd.read_parquet(out))
    files = sorted(parts.glob("*.parquet")) if parts.is_dir() else []
    frames += [pd.read_parquet(p) for p in files]
    df = pd.concat(frames, ignore_index=True).drop_duplicates("run_id", keep="last")
    order = {run: i for i, run in enumerate(grid)}
    df["_order"] = df["run_id"].map(order).fillna(len(order)).astype(int)
    df = df.sort_values(["_order", "run_id"]).drop(columns="_order").reset_index(drop=True)
    table = pa.Table.from_pandas(df, preserve_index=False)
    meta = {**(table.schema.metadata or {}), GRID_KEY: json.dumps(list(df["run_id"])).encode()}
    with atomic_path(out) as tmp:
        pq.write_table(table.replace_schema_metadata(meta), tmp)
    for p in files:
        p.unlink()
    (parts / PARTS_GRID).unlink(missing_ok=True)  # last: until the parts are gone, they keep their grid
    if parts.is_dir() and not any(parts.iterdir()):
        parts.rmdir()
