"""The simulated machine: a config, its compiled state, and the replay driver.

`Machine` composes the three separable parts -- the allocator (sim/buddy.py), the page
tables (sim/pagetable.py) and the scheme (sim/schemes.py) -- and drives dense event
arrays through the compiled loop (sim/core.py) chunk by chunk, growing table pools
between events when an event's worst case needs it. State carries across calls, so a
trace can be fed in pieces (e.g. Parquet record batches).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ptpair.sim import counters as C
from ptpair.sim.akaros2015 import run_lengths
from ptpair.sim.allocator import ALLOCATORS, buddyinfo as allocator_buddyinfo, new_allocator
from ptpair.sim.buddy import N_ORDERS, POLICIES, free_blocks
from ptpair.sim.core import (
    ERROR_MESSAGES, ERROR_REASONS, GROW_HANDLES, GROW_VMAS, STATUS_DONE, STATUS_ERROR, STATUS_GROW, run_events
)
from ptpair.sim.initial import aged_allocator, copy_state, describe, initial_runs, is_synthetic
from ptpair.sim.mobility import MT_NAMES
from ptpair.sim.occupancy import HUGE_NAMES, N_HUGE, hugepage_blocks
from ptpair.sim.pagetable import KIND_KPT, KIND_PAIR, KIND_SEP, P_ALIVE, RECLAIMS, grow_tables, new_tables
from ptpair.sim.precompile import CalleesAhead
from ptpair.sim.sampling import R_BUDDY, ROW_LEN, STATUS_FULL, sample_row
from ptpair.sim.schemes import SCHEMES
from ptpair.sim.slots import (
    M_BACKGROUND, M_FALLBACKS, M_FALLBACK_BY, M_FREE_PAGES, M_HIGH_WATER, M_HOLES, M_HW_LIVE, M_MEM_END, M_POLLUTED,
    M_SCANNED, M_SCAN_ALLOCS, M_STEALS, N_MT, T_G_FREE, T_SLOTS_FREE
)
from ptpair.traces.format import EventArrays, OPS, PAGE_SIZE

DEFAULT_MEMORY_PAGES = (4 << 30) // PAGE_SIZE  # 4 GiB
# walk cost counters, as Result.walk names them (docs/semantics.md#walk-cost)
WALK_COUNTERS = (("kpt_pages_touched", C.KPT_TOUCH), ("ept_pages_touched", C.EPT_TOUCH),
                 ("ept_dependent_loads", C.EPT_LOADS))
# Result.peak and Result.counts, as named there
PEAK_COUNTERS = (("pt_pages", C.PEAK_PT), ("kpt_pages", C.PEAK_KPT), ("deposited_pte_pages", C.PEAK_DEPOSITED),
                 ("ept_pages", C.PEAK_EPT),
                 ("wasted_ept_pages", C.PEAK_WASTE), ("data_pages", C.PEAK_DATA), ("used_pages", C.PEAK_USED))
COUNT_COUNTERS = (("pages_mapped", C.MAPPED), ("pages_unmapped", C.UNMAPPED), ("pages_already_mapped", C.ALREADY),
                  ("tables_mirrored", C.MIRRORED), ("tables_copied", C.COPIES), ("vmm_transitions", C.VMM_EVENTS))
LEVEL_NAMES = ("pml1", "pml2", "pml3", "pml4")
SAMPLE_COLUMNS = (
    ["events", "kpt_pml1", "kpt_pml2", "kpt_pml3", "kpt_pml4", "ept_pages", "wasted_ept_pages",
     "data_pages", "gigantic_pages", "kalloc_pages", "free_pages"]
    + [f"free_blocks_{k}" for k in range(N_ORDERS)]
    + [f"failures_{k}" for k in range(N_ORDERS)]
    + ["processes", "vmm_processes", "compaction_pages"]
    + [f"hugepage_{name}" for name in HUGE_NAMES]
    + ["pt_requests", "pt_requests_split", "deposited_pte_pages"]
)
assert len(SAMPLE_COLUMNS) == ROW_LEN  # sim/sampling.py writes the rows


@dataclass(frozen=True)
class Config:
    """Everything that changes the semantics of a replay; recorded in every result.

    scheme: one of SCHEMES; policy: 'address' or 'lifo'; memory_pages: 4-KiB frames of
    simulated memory, 1 .. 2^31 - 2 (default 4 GiB; with `initial`, the map's, which it
    may only repeat). initial: a free map file to start from; age: a warm-up trace, or a
    synthetic ager spec 'synthetic:free=F,unusable=U,seed=S' (sim/initial.py).
    thp_deposit: a PTE table is deposited with every anonymous 2 MiB page, as Linux does
    (docs/semantics.md#thp-deposits); None: yes, except under the akaros-2015 allocator
    (Akaros has no transparent huge pages).
    pt_reclaim: under reclaim `linux`, MADV_DONTNEED (a `dontneed` event) frees the PTE
    tables it empties whole, as Linux 6.14+ with CONFIG_PT_RECLAIM does
    (docs/semantics.md#page-table-reclaim); None: as the trace's recorded machine says
    (`replay` reads it), on where it says nothing. Only for reclaim `linux`.
    """

    scheme: str = "pair"
    policy: str = "address"
    memory_pages: int | None = None
    allocator: str = "buddy"
    reclaim: str = "empty"
    initial: str | None = None
    age: str | None = None
    thp_deposit: bool | None = None
    pt_reclaim: bool | None = None

    def __post_init__(self):
        from ptpair.sim.initial import is_synthetic, map_frames

        if self.initial is not None:
            object.__setattr__(self, "initial", str(self.initial))
            frames = map_frames(self.initial)
            if self.memory_pages is not None and int(self.memory_pages) != frames:
                raise ValueError(f"the memory is the free map's ({frames} pages): do not give memory_pages "
                                 f"({self.memory_pages}) with initial")
            object.__setattr__(self, "memory_pages", frames)
            if is_synthetic(self.age):
                raise ValueError("initial (a free map) and a synthetic ager both say what memory holds: "
                                 "give one")
        elif self.memory_pages is None:
            object.__setattr__(self, "memory_pages", DEFAULT_MEMORY_PAGES)
        if self.age is not None:
            object.__setattr__(self, "age", str(self.age))
            if is_synthetic(self.age):
                from ptpair.traces.ager import parse_ager

                parse_ager(self.age)  # a bad spec is a ValueError now, not inside a replay
        if self.allocator not in ALLOCATORS:
            raise ValueError(f"unknown allocator {self.allocator!r}; choose from {', '.join(ALLOCATORS)}")
        if self.reclaim not in RECLAIMS:
            raise ValueError(f"unknown reclaim policy {self.reclaim!r}; choose from {', '.join(RECLAIMS)}")
        if self.thp_deposit is None:
            object.__setattr__(self, "thp_deposit", self.allocator != "akaros-2015")
        object.__setattr__(self, "thp_deposit", bool(self.thp_deposit))
        if self.pt_reclaim is not None:
            if self.reclaim != "linux":
                raise ValueError(f"pt_reclaim is a rule of reclaim linux, not of reclaim {self.reclaim}")
            object.__setattr__(self, "pt_reclaim", bool(self.pt_reclaim))
        if self.scheme not in SCHEMES:
            raise ValueError(f"unknown scheme {self.scheme!r}; choose from {', '.join(SCHEMES)}")
        if self.policy not in POLICIES:
            raise ValueError(f"unknown policy {self.policy!r}; choose from {', '.join(POLICIES)}")
        if not 1 <= int(self.memory_pages) < 2**31 - 1:
            raise ValueError(f"memory must be 1 .. 2^31-2 pages, got {self.memory_pages}")


def _sample_array(n_events: int, every: int) -> np.ndarray:
    """Room for the samples of n_events events, one every `every`, and the last one."""
    return np.zeros((n_events // every + 2, ROW_LEN), np.int64)


_NO_ROWS = np.zeros((0, ROW_LEN), np.int64)  # the sample array of a replay that samples nothing


class ReplayError(Exception):
    """An impossible event; `index` is its position in the event arrays."""

    def __init__(self, index: int, message: str):
        self.index = index
        self.message = message
        super().__init__(f"event {index}: {message}")


def _event_loop(*args):
    """run_events(*args); the first call in a process, which compiles the loop on a cold
    cache, with the loop's callees compiled ahead on a second core (sim/precompile.py)."""
    if run_events.overloads:
        return run_events(*args)
    with CalleesAhead():
        return run_events(*args)


class Machine:
    def __init__(self, config: Config, n_procs: int = 0):
        self.config = config
        self.scheme_code = SCHEMES[config.scheme]
        if config.age is not None and not is_synthetic(config.age):
            self.buddy = copy_state(aged_allocator(config))
        else:
            self.buddy = new_allocator(int(config.memory_pages), ALLOCATORS[config.allocator],
                                       POLICIES[config.policy], initial_runs(config))
        # per-frame table arrays cover the frames that are memory: holes ending a map cost nothing
        self.tables = new_tables(int(self.buddy.meta[M_MEM_END]), max(n_procs, 1),
                                 reclaim=RECLAIMS[config.reclaim], deposit=config.thp_deposit,
                                 pt_reclaim=config.pt_reclaim is not False)
        self.ctr = np.zeros(C.LEN, np.int64)
        self.samples: list[np.ndarray] = []
        self.skipped_bad: dict[str, int] = {}  # impossible events skipped (--lenient), by reason
        self.skipped_bad_lines: list[int] = []

    def run(self, ev: EventArrays, start: int = 0, stop: int | None = None,
            sample_every: int | None = None, lenient: bool = False) -> None:
        """Replay events [start, stop) of `ev`; raises ReplayError on an impossible event.

        With `sample_every` = K, the state is sampled (see SAMPLE_COLUMNS) after every
        event whose number (counted from 1 over the whole replay) is a multiple of K.
        """
        stop = len(ev) if stop is None else stop
        if sample_every and self.config.allocator == "akaros-2015":  # its free blocks come from Python (sim/sampling.py)
            i = start
            while i < stop:
                done = int(self.ctr[C.EVENTS])
                j = min(stop, i + sample_every - done % sample_every)
                self._run(ev, i, j, lenient)
                if int(self.ctr[C.EVENTS]) % sample_every == 0:
                    self.sample()
                i = j
        else:
            self._run(ev, start, stop, lenient, sample_every or 0)

    def _run(self, ev: EventArrays, start: int, stop: int, lenient: bool, every: int = 0) -> None:
        """run(); samples (every > 0) are taken in compiled code (sim/sampling.py)."""
        self._fit_procs(ev)
        rows = _sample_array(stop - start, every) if every else _NO_ROWS
        i, seg, n = start, -1, 0
        try:
            while True:
                i, status, code, need, need_g, seg, n = _event_loop(
                    self.buddy, self.tables, self.ctr, self.scheme_code,
                    ev.op, ev.pid, ev.va, ev.length, ev.arg, ev.order, ev.psz, ev.mt, i, stop, every, seg, rows, n)
                if status == STATUS_DONE:
                    break
                if status == STATUS_FULL:
                    rows = np.concatenate([rows, np.zeros_like(rows)])
                    continue
                i = self._resume(ev, i, status, code, need, need_g, lenient)
        finally:  # an impossible event raises: the samples before it are kept, as stepping keeps them
            new = list(rows[:n])
            if new and self.samples and self.samples[-1][0] == new[0][0]:
                new = new[1:]  # the last sample of the call before (see sample)
            self.samples.extend(new)

    def hugepage_blocks(self) -> np.ndarray:
        """The 2 MiB blocks now, by availability (sim/occupancy.py HUGE_NAMES)."""
        out = np.zeros(N_HUGE, np.int64)
        hugepage_blocks(self.buddy, self.tables.pb_wasted, out, 0)
        return out

    def sample(self) -> None:
        """Append the current state to `self.samples` (one row of SAMPLE_COLUMNS)."""
        row = np.zeros(ROW_LEN, np.int64)
        sample_row(self.buddy, self.tables, self.ctr, row)
        if self.config.allocator == "akaros-2015":  # no free lists: its free set's blocks
            row[R_BUDDY:R_BUDDY + N_ORDERS] = allocator_buddyinfo(self.buddy)
        if self.samples and self.samples[-1][0] == row[0]:
            return  # already sampled at this event
        self.samples.append(row)

    def _fit_procs(self, ev: EventArrays) -> None:
        if ev.n_procs > len(self.tables.procs.root):
            self.tables = grow_tables(self.tables, n_procs=ev.n_procs)

    def _resume(self, ev: EventArrays, i: int, status: int, code: int, need: int, need_g: int,
                lenient: bool) -> int:
        """The event loop stopped at event i: grow the pool it needs (returns i, to run it
        again), or skip the impossible event under `lenient` (returns i + 1, the reason
        counted); else raise ReplayError."""
        if status == STATUS_GROW and code == GROW_HANDLES:
            self.tables = grow_tables(self.tables, handle_cap=2 * len(self.tables.handles.key))
            return i
        if status == STATUS_GROW and code == GROW_VMAS:
            pool = len(self.tables.vmas.s)
            self.tables = grow_tables(self.tables, vma_pool=max(2 * pool, pool + need))
            return i
        if status == STATUS_GROW:
            t = self.tables
            cap, gcap = len(t.t_kpt), len(t.gig.ref)
            new_cap = max(2 * cap, cap + need - int(t.meta[T_SLOTS_FREE]) + 1024)
            new_g = max(2 * gcap, gcap + need_g - int(t.meta[T_G_FREE]) + 64)
            self.tables = grow_tables(t, slot_cap=new_cap if need > t.meta[T_SLOTS_FREE] else None,
                                      g_cap=new_g if need_g > t.meta[T_G_FREE] else None)
            return i
        assert status == STATUS_ERROR
        if lenient:  # skip the impossible event, count why
            reason = ERROR_REASONS[code]
            self.skipped_bad[reason] = self.skipped_bad.get(reason, 0) + 1
            self.skipped_bad_lines.append(i)
            return i + 1
        o = OPS[ev.op[i]]
        arg = int(ev.arg[i])
        if o == "fork":
            arg = int(ev.pids[arg])
        raise ReplayError(i, ERROR_MESSAGES[code].format(op=o, pid=int(ev.pids[ev.pid[i]]), arg=arg))

    # --- reading the state ---------------------------------------------------------
    def free_blocks(self) -> list[tuple[int, int]]:
        """Free blocks in list-walk order (for akaros-2015: its single-frame list, head first)."""
        b = self.buddy
        if self.config.allocator == "buddy":
            return free_blocks(b)
        out = []
        lists = [(0, 0)] if self.config.allocator == "akaros-2015" else [
            (k, k * N_MT + t) for k in range(N_ORDERS) for t in range(N_MT)]  # linux: per migratetype
        for k, li in lists:
            f = int(b.head[li])
            while f != -1:
                out.append((f, k))
                f = int(b.nxt[f])
        return out

    def buddyinfo(self) -> list[int]:
        return [int(x) for x in allocator_buddyinfo(self.buddy)]

    def result(self) -> "Result":
        return Result.from_machine(self)


@dataclass
class Result:
    """The outcome of a replay as plain data (JSON-ready via `to_dict`).

    Page counts are 4-KiB frames of simulated memory; `final` describes the state after
    the last event, `peak` the maxima over the states after each event.
    """

    config: Config
    events: int
    final: dict
    peak: dict
    alloc_failures: list
    failed_maps: int
    failed_spawns: int
    skipped_events: int
    walk: dict
    counts: dict
    mean: dict
    allocator_stats: dict
    pressure: dict  # compaction cost of failures, hopeless failures, page-table requests and splits
    samples: np.ndarray | None = None  # rows of SAMPLE_COLUMNS, or None
    skipped_lines: dict | None = None  # --lenient: bad lines and events skipped, by reason

    def series(self):
        """The sampled state as a DataFrame (columns SAMPLE_COLUMNS), or None."""
        if self.samples is None:
            return None
        import pandas as pd

        return pd.DataFrame(self.samples, columns=SAMPLE_COLUMNS)

    @classmethod
    def from_machine(cls, m: Machine) -> "Result":
        c = m.ctr
        t = m.tables
        alive = t.procs.state == P_ALIVE
        vmm = t.procs.vmm != 0
        kpt_by_level = {LEVEL_NAMES[lv]: int(c[C.KPT + lv]) for lv in (3, 2, 1, 0)}
        deposited = int(c[C.DEPOSITED])
        kpt = sum(kpt_by_level.values()) + deposited  # deposited tables are KPT pages at no level
        events = int(c[C.EVENTS])
        writes = int(c[C.WRITES])
        final = {
            "kpt_pages_by_level": kpt_by_level,
            "kpt_pages": kpt,
            # PTE tables deposited with anonymous 2 MiB pages (Linux's THP): in kpt_pages and
            # VmPTE, at no level (docs/semantics.md#thp-deposits)
            "deposited_pte_pages": deposited,
            "ept_pages": int(c[C.EPT]),
            "wasted_ept_pages": int(c[C.EPT_WASTE]),
            "pt_pages": kpt + int(c[C.EPT]),
            "data_pages": int(c[C.DATA]),
            "gigantic_pages": int(c[C.GIGANTIC]),
            "kalloc_pages": int(c[C.KALLOC]),
            "free_pages": int(m.buddy.meta[M_FREE_PAGES]),
            "background_pages": int(m.buddy.meta[M_BACKGROUND]),
            "hole_pages": int(m.buddy.meta[M_HOLES]),
            "buddyinfo": m.buddyinfo(),
            "processes": int(alive.sum()),
            "vmm_processes": int((alive & vmm).sum()),
            # KPT tables of live VMM processes, roots included: what a scheme that gives
            # only VMMs an EPT twin would pay in EPT pages (analysis/breakeven.py)
            "vmm_kpt_pages": int(t.procs.tables[alive & vmm].sum()),
        }
        peak = {
            **{k: int(c[i]) for k, i in PEAK_COUNTERS},
            # free blocks per order when used memory first reached its peak
            "buddyinfo_at_peak_used": [int(x) for x in c[C.PEAK_BUDDY:C.PEAK_BUDDY + N_ORDERS]],
        }
        mean = {"pt_pages": _ratio(c[C.PT_SUM], events)}
        allocator = {
            # Johnstone & Wilson: the extent the allocator needed at its worst, and live
            # memory at that moment (pages)
            "high_water_pages": int(m.buddy.meta[M_HIGH_WATER]),
            "live_pages_at_high_water": int(m.buddy.meta[M_HW_LIVE]),
        }
        if m.config.allocator == "linux":
            b = m.buddy
            final["pagetypeinfo"] = {MT_NAMES[t]: [int(b.nr_free_mt[k * N_MT + t]) for k in range(N_ORDERS)]
                                     for t in range(N_MT)}
            final["pageblocks_by_type"] = {MT_NAMES[t]: int((b.pb_type == t).sum()) for t in range(N_MT)}
            final["polluted_pageblocks"] = int(b.meta[M_POLLUTED])
            allocator["fallbacks"] = int(b.meta[M_FALLBACKS])
            allocator["fallbacks_by_type"] = {
                f"{MT_NAMES[s]}->{MT_NAMES[f]}": int(b.meta[M_FALLBACK_BY + s * N_MT + f])
                for s in range(N_MT) for f in range(N_MT) if s != f}
            allocator["pageblocks_relabelled"] = int(b.meta[M_STEALS])
        if m.config.allocator == "akaros-2015":
            scans = int(m.buddy.meta[M_SCAN_ALLOCS])
            allocator["frames_scanned"] = int(m.buddy.meta[M_SCANNED])
            allocator["scan_allocations"] = scans
            allocator["frames_scanned_per_allocation"] = _ratio(m.buddy.meta[M_SCANNED], scans)
            runs = run_lengths(m.buddy.blk >= 0)
            # its scan can use unaligned runs: a free run of r frames serves r >> k
            # requests of order k (analysis/frag.py turns this into the kernel indices)
            allocator["free_runs"] = int(len(runs))
            allocator["unaligned_blocks_suitable"] = [int((runs >> k).sum()) for k in range(N_ORDERS)]
            peak["buddyinfo_at_peak_used"] = None  # not tracked: no buddy free lists to copy
        walk_ctr = {k: c[i] for k, i in WALK_COUNTERS}
        walk = {
            "entry_writes": writes,
            **{k: int(v) for k, v in walk_ctr.items()},
            "per_write": {k: _ratio(v, writes) for k, v in walk_ctr.items()},
            "per_event": {k: _ratio(v, events) for k, v in walk_ctr.items()},
        }
        counts = {k: int(c[i]) for k, i in COUNT_COUNTERS}
        final["hugepage_blocks"] = _huge_dict(m.hugepage_blocks())
        peak["hugepage_blocks"] = _huge_dict(c[C.PEAK_HUGE:C.PEAK_HUGE + N_HUGE])
        compact = [int(x) for x in c[C.COMPACT:C.COMPACT + N_ORDERS]]
        pressure = {"compaction_pages": sum(compact), "compaction_pages_by_order": compact,
                    "hopeless_failures": [int(x) for x in c[C.HOPELESS:C.HOPELESS + N_ORDERS]],
                    "pt_requests": int(c[C.PT_REQUESTS]), "pt_requests_split": int(c[C.PT_SPLIT])}
        return cls(
            config=m.config, events=events, final=final, peak=peak, pressure=pressure,
            alloc_failures=[int(c[C.FAIL + k]) for k in range(N_ORDERS)],
            failed_maps=int(c[C.FAILED_MAPS]), failed_spawns=int(c[C.FAILED_SPAWNS]),
            skipped_events=int(c[C.SKIPPED]), walk=walk, counts=counts, mean=mean, allocator_stats=allocator,
            samples=np.vstack(m.samples) if m.samples else None,
        )

    def to_dict(self) -> dict:
        cfg = asdict(self.config)
        del cfg["initial"], cfg["age"]
        return {
            "scheme": cfg.pop("scheme"),
            "policy": cfg.pop("policy"),
            "memory_pages": cfg.pop("memory_pages"),
            **cfg,
            **describe(self.config),
            "events": self.events,
            "final": self.final,
            "peak": self.peak,
            "mean": self.mean,
            "allocator_stats": self.allocator_stats,
            "alloc_failures": self.alloc_failures,
            **self.pressure,
            "failed_maps": self.failed_maps,
            "failed_spawns": self.failed_spawns,
            "skipped_events": self.skipped_events,
            "walk": self.walk,
            "counts": self.counts,
            **({"skipped_lines": self.skipped_lines} if self.skipped_lines is not None else {}),
        }


def _ratio(a, b) -> float:
    return round(float(a) / float(b), 6) if b else 0.0


def _huge_dict(counts) -> dict:
    """hugepage_blocks' six counts as {free, movable_only, blocked: {by class}}."""
    d = dict(zip(HUGE_NAMES, (int(x) for x in counts)))
    return {"free": d.pop("free"), "movable_only": d.pop("movable_only"), "blocked": d}


__all__ = ["Config", "Machine", "ReplayError", "Result", "KIND_KPT", "KIND_SEP", "KIND_PAIR"]
