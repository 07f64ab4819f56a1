"""Sweeps: a grid of replays -> one Parquet row per run, resumable, on local or Dask engines.

A grid file (TOML) names the axes; every combination is one run:

    schemes = ["pair", "separate"]          # default: the four main schemes
    allocators = ["buddy", "linux"]         # or "akaros-2015"; default: ["buddy"]
    reclaims = ["empty", "exit"]            # default: ["empty"]
    policies = ["address"]                  # default: ["address"]
    memory = ["256MiB", "1GiB"]             # or memory_pages = [65536]; default 4GiB
    traces = ["a.csv", "b.parquet"]         # paths relative to the grid file, and/or
    [synth]
    workload = ["mixed", "vmm-heavy"]
    events = [5000]
    seeds = [1, 2, 3]
    [synth.params]                          # any traces/synth.py Params field, as a list
    vmm_fraction = [0.0, 0.5, 1.0]

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

SCHEMES = ("pair", "separate", "separate-eager", "pair-on-vmm", "separate-lazy")
DEFAULT_SCHEMES = SCHEMES[:4]


class GridError(ValueError):
    pass


def _parse_size(text) -> int:
    if isinstance(text, int):
        return text
    import re

    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    m = re.fullmatch(r"\s*(\d+)\s*([kmgt])i?b?\s*", str(text).lower())
    if not m:
        raise GridError(f"memory size {text!r} not understood (examples: 256MiB, 4GiB)")
    return int(m.group(1)) * units[m.group(2)] // 4096


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
    known = {"schemes", "policies", "memory", "memory_pages", "traces", "synth", "allocators", "reclaims"}
    bad = set(g) - known
    if bad:
        raise GridError(f"unknown grid keys {', '.join(sorted(bad))}; known: {', '.join(sorted(known))}")
    schemes = _list(g.get("schemes", list(DEFAULT_SCHEMES)))
    for s in schemes:
        if s not in SCHEMES:
            raise GridError(f"unknown scheme {s!r}")
    policies = _list(g.get("policies", ["address"]))
    allocators = _list(g.get("allocators", ["buddy"]))
    reclaims = _list(g.get("reclaims", ["empty"]))
    for a in allocators:
        if a not in ("buddy", "akaros-2015", "linux"):
            raise GridError(f"unknown allocator {a!r}")
    for r in reclaims:
        if r not in ("empty", "exit"):
            raise GridError(f"unknown reclaim policy {r!r}")
    if "memory_pages" in g:
        memories = [int(x) for x in _list(g["memory_pages"])]
    else:
        memories = [_parse_size(x) for x in _list(g.get("memory", ["4GiB"]))]
    sources = []
    for t in _list(g.get("traces", [])):
        p = (base / t).resolve()
        sources.append({"trace": str(p), "trace_sha256": _sha256(p)})
    if "synth" in g:
        sy = dict(g["synth"])
        params = sy.pop("params", {})
        workloads = _list(sy.pop("workload", ["mixed"]))
        events = _list(sy.pop("events", [10_000]))
        seeds = _list(sy.pop("seeds", [1]))
        if sy:
            raise GridError(f"unknown [synth] keys {', '.join(sorted(sy))}")
        names = sorted(params)
        for w, e, combo, s in itertools.product(workloads, events, itertools.product(
                *[_list(params[n]) for n in names]), seeds):
            sources.append({"workload": w, "events": int(e), "seed": int(s), "params": dict(zip(names, combo))})
    if not sources:
        raise GridError("the grid names no traces and no [synth] workloads")
    runs = []
    for src, scheme, policy, mem, alloc, rec in itertools.product(sources, schemes, policies, memories,
                                                                  allocators, reclaims):
        run = {**src, "scheme": scheme, "policy": policy, "memory_pages": mem, "allocator": alloc, "reclaim": rec}
        run["run_id"] = run_id(run)
        runs.append(run)
    return runs


def _sha256(p: Path) -> str:
    try:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()
    except OSError as e:
        raise GridError(f"{p}: {e.strerror}") from None


def run_id(run: dict) -> str:
    spec = {k: v for k, v in run.items() if k != "run_id"}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def run_one(run: dict) -> dict:
    """Replay one run of a grid; returns its parameters and every end-of-run figure."""
    from ptpair.analysis.compare import metrics_row
    from ptpair.sim.machine import Config
    from ptpair.sim.replay import replay

    if "trace" in run:
        from ptpair.traces.readers import read_any

        trace = read_any(run["trace"])
    else:
        from ptpair.traces.synth import synth

        trace = synth(run["workload"], seed=run["seed"], events=run["events"], **run["params"])
    r = replay(trace, Config(run["scheme"], run["policy"], run["memory_pages"], run["allocator"], run["reclaim"]))
    row = {k: v for k, v in run.items() if k != "params"}
    for k, v in run.get("params", {}).items():
        row[f"param_{k}"] = v
    row.update(metrics_row(r))
    row["buddyinfo_final"] = json.dumps(r.final["buddyinfo"])
    row["alloc_failures_by_order"] = json.dumps(r.alloc_failures)
    return row


# --- engines -------------------------------------------------------------------------
class LocalEngine:
    """Local worker processes (all cores by default); nothing to start."""

    def __init__(self, workers: int | None = None):
        self.workers = workers or os.cpu_count() or 1

    def map_unordered(self, fn, tasks):
        if self.workers == 1:
            for t in tasks:
                yield t, fn(t)
            return
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(max_workers=self.workers) as ex:
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
            futs[self.client.submit(fn, t, key=f"ptpair-run-{t['run_id']}", pure=False)] = t
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
