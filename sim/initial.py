"""The memory a replay starts from: pristine, a recorded free map, or memory aged first.

A Config names its initial state with two fields (docs/semantics.md, "Initial state"):

* `initial`: a free map file (traces/freemap.py). The memory is the map's: its free runs
  are free, its used frames background, its holes not memory (sim/boot.py).
* `age`: either a warm-up trace, replayed first on the same machine (scheme, allocator,
  policy, reclaim, memory or map) and then *forgotten*: every frame it leaves allocated
  -- its live processes' pages and tables, its unfreed kallocs -- becomes background, its
  processes, handles and counters are dropped, so the measured trace starts with fresh
  pids and handles and counts only its own events; or a synthetic ager spec
  (`synthetic:free=F,unusable=U,seed=S`, traces/ager.py) that builds the memory's map
  from its size.

Both are computed once per process and configuration (cached) and copied into each
Machine, so a sweep over traces on one aged state ages it once.
"""

from __future__ import annotations

import functools
from dataclasses import replace

import numpy as np

from ptpair.sim.buddy import BuddyState
from ptpair.sim.occupancy import N_UNMOVABLE, OWN_BACKGROUND, OWN_TABLE
from ptpair.sim.slots import M_BACKGROUND, M_FRAMES, M_HIGH_WATER, M_HW_LIVE, M_VERSION
from ptpair.traces.format import TraceError


def is_synthetic(age: str | None) -> bool:
    """Whether an `age` names the synthetic ager (else a warm-up trace)."""
    if age is None:
        return False
    from ptpair.traces.ager import is_ager

    return is_ager(age)


def fixed_memory(initial: str | None, age: str | None) -> str | None:
    """Why a search or sweep may not change the memory size (a free map, a warm-up trace:
    their memory is what it is), or None (pristine memory, the synthetic ager)."""
    if initial is not None:
        return "a free map fixes the memory size"
    if age is not None and not is_synthetic(age):
        return "a warm-up trace fixes the memory size"
    return None


@functools.lru_cache(maxsize=8)
def _freemap(path: str):
    from ptpair.traces.freemap import read_freemap, runs
    from ptpair.traces.sources import file_sha256

    fm = read_freemap(path)
    if fm.frames < 1 or fm.frames >= 2**31 - 1:
        raise TraceError(path, None, f"a free map of {fm.frames} frames; the simulator holds 1 .. 2^31-2")
    return fm, runs(fm.state), file_sha256(path)


def map_frames(path: str) -> int:
    """Frames (4 KiB) of the free map at `path`, holes included."""
    return _freemap(str(path))[0].frames


@functools.lru_cache(maxsize=8)
def _synthetic(spec: str, n_frames: int):
    from ptpair.traces.ager import age, parse_ager, unusable_index
    from ptpair.traces.freemap import runs

    state = age(n_frames, parse_ager(spec))
    return runs(state), unusable_index(state)


def initial_runs(config):
    """(first frames, lengths, states) of the memory before any aging trace, or None for
    pristine memory."""
    if config.initial is not None:
        return _freemap(config.initial)[1]
    if is_synthetic(config.age):
        return _synthetic(config.age, int(config.memory_pages))[0]
    return None


def describe(config) -> dict:
    """What `replay --json` says of the initial state: {"initial": ..., "age": ...}."""
    out = {"initial": None, "age": None}
    if config.initial is not None:
        fm, _, sha = _freemap(config.initial)
        out["initial"] = {"file": config.initial, "zone": fm.zone, "node": fm.node, "base_pfn": fm.base_pfn,
                          "sha256": sha, "frames": fm.frames, "time": fm.meta.get("time"),
                          "kernel": fm.meta.get("kernel")}
    if is_synthetic(config.age):
        from ptpair.traces.ager import parse_ager

        a = parse_ager(config.age)
        out["age"] = {"synthetic": a.spec(), "free": a.free, "unusable_target": a.unusable, "seed": a.seed,
                      "unusable_index": round(_synthetic(config.age, int(config.memory_pages))[1], 6)}
    elif config.age is not None:
        from ptpair.traces.sources import source_sha256

        out["age"] = {"trace": config.age, "sha256": source_sha256(config.age)}
    return out


def copy_state(b: BuddyState) -> BuddyState:
    return BuddyState(*(a.copy() for a in b))


@functools.lru_cache(maxsize=4)
def aged_allocator(config) -> BuddyState:
    """The allocator after `config.age`'s warm-up trace, forgotten into background (the
    cached original: copy it)."""
    from ptpair.sim.machine import Machine, ReplayError
    from ptpair.sim.replay import FIRST_LINE
    from ptpair.traces.format import PidMap, encode
    from ptpair.traces.sources import load

    trace = load(config.age)
    ev = encode(trace, PidMap())
    m = Machine(replace(config, age=None), ev.n_procs)
    try:
        m.run(ev)
    except ReplayError as e:
        raise TraceError(trace.source, trace.line_of(e.index, FIRST_LINE), f"(warm-up trace) {e.message}") from None
    return forget(m.buddy)


def forget(b: BuddyState) -> BuddyState:
    """Every allocated frame of `b` becomes background (unmovable, never freed); the
    allocator's statistics restart. Free lists and pageblock labels stay as they are."""
    from ptpair.sim.slots import M_SCANNED, M_SCAN_ALLOCS
    from ptpair.sim.mobility import MT_UNMOVABLE
    from ptpair.sim.slots import M_FALLBACKS, M_FALLBACK_BY, M_POLLUTED, M_STEALS, N_MT

    b = copy_state(b)
    n = int(b.meta[M_FRAMES])
    allocated = np.unpackbits(b.am.view(np.uint8), bitorder="little")[:n]
    b.um[:] |= b.am  # every allocated frame is now unmovable
    pb_unmov = b.pb_unmov.reshape(-1, N_UNMOVABLE)
    pb_unmov[:] = 0
    pb_unmov[:, OWN_BACKGROUND - OWN_TABLE] = b.pb_used
    b.meta[M_BACKGROUND] = int(allocated.sum(dtype=np.int64))
    b.meta[M_VERSION] += 1
    if len(b.pb_alloc) > 1:  # linux: every allocated frame counts as unmovable in its pageblock
        per = b.pb_alloc.reshape(-1, N_MT)
        total = per.sum(axis=1)
        per[:] = 0
        per[:, MT_UNMOVABLE] = total
        b.meta[M_POLLUTED] = int((total > 0).sum())
    for slot in (M_HIGH_WATER, M_HW_LIVE, M_SCANNED, M_SCAN_ALLOCS, M_FALLBACKS, M_STEALS):
        b.meta[slot] = 0
    b.meta[M_FALLBACK_BY:M_FALLBACK_BY + N_MT * N_MT] = 0
    return b
