"""The smallest memory with which a trace runs without any allocation failure, to the frame.

The allocator-pressure number: a scheme that needs order-1 blocks may need more memory
than one that needs single pages for the same live data, because a fragmented free list
can hold enough frames but no free pair.

While no allocation fails, the number of frames in use after each event does not depend
on where the allocator put anything, so every clean run has the same peak of used frames
P, and no memory below P can run clean: P is the lower bound, and `pressure_margin_pages`
= min - P is what the scheme needs beyond its live data because free memory is broken up.

The search (sizes are multiples of `step` frames, 1 by default):

1. double from 256 frames until a run is clean; its peak of used frames gives P, and the
   lower bound L is P rounded up to a multiple of `step` (a caller that already has a
   clean replay -- the report replays at 4 GiB first -- passes its size, peak and high
   water as `known_clean`, or asks for it with `clean_first`: nothing is doubled);
2. bracket the answer from above. On pristine memory under the buddy allocator
   (either free-list policy), replays at sizes that are multiples of 1024 frames (the
   largest block, 4 MiB) are identical until the smaller one runs out: the boot carves
   both into the same 4-MiB blocks, and the larger one's extra blocks, at the top, stay
   untouched until a request finds no other free block -- which in the smaller memory
   fails. So one clean replay at such a size decides them all: a multiple of 1024 frames
   runs clean exactly when it holds the replay's high water (the end of the highest
   frame it ever allocated). C, the smallest such size that is also a multiple of
   `step`, is clean, and C - lcm(step, 1024) fails (tests/analysis/test_minmem.py checks
   this on generated traces). Other allocators and aged memory (whose choices depend on
   what lies above) keep the doubling's first clean size as C, with no known failure
   below it;
3. within the bracket: bisect from C - lcm(step, 1024) when that size is at or above L
   (a known failure); else gallop up from L (L, L + step, L + 2 step, L + 4 step, ...,
   below C) to the first clean size, then bisect the last gap. The bisection keeps a
   failing size below a clean one, so it ends at a clean M whose M - step failed;
4. failures need not be monotonic in memory size (a larger memory changes every address
   and so every later decision), so the answer is *checked*, not assumed: `verified` is
   true when the replay at M ran clean and the replay at M - step failed (or M = L),
   false only when the probe budget (`max_probes`) stopped steps 2-3 -- M is then the
   smallest clean size found. A budget spent before any clean run (step 1) is an error
   (NoCleanSize), as is a trace that fails at the largest memory. The answer depends
   only on the trace and the machine (L, C and the steps above), not on which clean
   replay the caller knew.

On memory aged by the synthetic ager (`age=`), every probed size is aged anew with the
same spec, so a fraction F of it starts free and the rest is background. P is then the
peak of the trace's own frames (used minus background), L the smallest size whose free
frames at start, round(F * L), hold P, and the margin is the free frames at start of M
minus P -- pristine memory being the case F = 1. A free map or a warm-up trace fixes the
memory size: there is nothing to search (ValueError).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ptpair.errors import TraceError
from ptpair.sim import counters as C
from ptpair.sim.buddy import N_ORDERS
from ptpair.sim.machine import Config, Machine, ReplayError
from ptpair.sim.slots import M_BACKGROUND, M_HIGH_WATER
from ptpair.traces.format import MAX_ORDER, Trace, encode
from ptpair.traces.units import PAGE_SIZE

STEP_PAGES = 1  # the default resolution: one frame
START_PAGES = 256  # the first size of the doubling search
MAX_PAGES = 2**31 - 2
MAX_PROBES = 200  # generous: a frame-exact search takes about 2 log2(margin) + 10 probes
CHUNK_EVENTS = 2048  # a failing probe stops at the end of the chunk of its first failure
# Sizes that are multiples of the largest buddy block boot alike (step 2 of the search).
BLOCK_PAGES = 1 << MAX_ORDER


@dataclass
class MinMem:
    """Result of `min_memory`. Pages are 4-KiB frames."""

    min_memory_pages: int
    probes: int  # replays run
    verified: bool  # clean at min and min - step failed (or min is the lower bound)
    peak_used_pages: int  # the trace's frames in use at the peak of a clean run
    step_pages: int = STEP_PAGES
    start_free_pages: int | None = None  # frames free at the start of min (aged); None: all of them

    @property
    def pressure_margin_pages(self) -> int:
        """Frames needed beyond the live data: free frames at the start of min - the peak
        of the trace's used frames."""
        free = self.min_memory_pages if self.start_free_pages is None else self.start_free_pages
        return free - self.peak_used_pages

    def to_dict(self) -> dict:
        return {"min_memory_pages": self.min_memory_pages, "min_memory_bytes": self.min_memory_pages * PAGE_SIZE,
                "peak_used_pages": self.peak_used_pages, "pressure_margin_pages": self.pressure_margin_pages,
                "step_pages": self.step_pages, "probes": self.probes, "verified": self.verified}


def probe(ev, config: Config) -> tuple[bool, int, int]:
    """Replay the encoded trace `ev` under `config`: (ran clean, peak of the trace's used
    frames (background excluded), high water: the end of the highest frame allocated, in
    frames). A probe stops soon after its first failed allocation (the answer is then
    known), so failing probes are cheap."""
    m = Machine(config, ev.n_procs)
    background = int(m.buddy.meta[M_BACKGROUND])
    n = len(ev)
    for i in range(0, max(n, 1), CHUNK_EVENTS):
        m.run(ev, i, min(n, i + CHUNK_EVENTS))
        if m.ctr[C.FAIL:C.FAIL + N_ORDERS].any():
            return False, int(m.ctr[C.PEAK_USED]) - background, int(m.buddy.meta[M_HIGH_WATER])
    return True, int(m.ctr[C.PEAK_USED]) - background, int(m.buddy.meta[M_HIGH_WATER])


def clean_point(result) -> tuple[int, int, int] | None:
    """The `known_clean` of min_memory from a replay's Result: (memory, peak of used
    frames, high water) when it ran on pristine memory without a failure, else None."""
    c = result.config
    if any(result.alloc_failures) or c.initial is not None or c.age is not None:
        return None
    return int(c.memory_pages), int(result.peak["used_pages"]), int(result.allocator_stats["high_water_pages"])


def blocks_boot_alike(allocator: str, age: str | None) -> bool:
    """Whether replays at multiples of BLOCK_PAGES frames agree until the smaller memory
    runs out (step 2 of the search): the buddy allocator on pristine memory. The other
    allocators look above what they have used (the Akaros allocator scans down from the
    top, Linux's falls back to the largest block of another mobility type), and aged
    memory differs with its size."""
    return allocator == "buddy" and age is None


class ProbeBudget(Exception):
    """The search ran out of probes."""


class NoCleanSize(ValueError):
    """No memory size ran clean: the trace fails at the largest simulated memory, or the
    probe budget ran out before any clean run gave the lower bound."""


def min_memory(trace: Trace, scheme: str = "pair", policy: str = "address", allocator: str = "buddy",
               reclaim: str = "empty", step: int = STEP_PAGES, max_probes: int = MAX_PROBES,
               age: str | None = None, known_clean: tuple[int, int] | None = None,
               clean_first: int | None = None) -> MinMem:
    """Smallest memory (a multiple of `step` frames) with no allocation failure, pristine or
    aged by a synthetic ager spec (`age`); see the module docstring for the search and
    what `verified` means.

    `known_clean`: (memory, peak of used frames[, high water]) of a replay of this trace on
    this machine (pristine memory) that ran clean (`clean_point` of its Result) -- a
    caller that has one saves the doubling's probes: sizes below that peak cannot run
    clean, so they are not replayed, nor is the known size, and the doubling above the
    peak runs only when the gallop reaches it; with the high water of a size that is a
    multiple of 1024 frames, step 2 needs no replay either. The answer is the one the
    full search gives (unless `max_probes` runs out: the answer is then the smallest
    clean size found, the known one at worst -- not necessarily a multiple of `step` --,
    not verified).

    `clean_first`: a memory size (frames, pristine) to replay first, counted as a probe;
    when it runs clean it serves as `known_clean` (the report replays at 4 GiB: most
    traces then need one or two more replays)."""
    if not 1 <= step <= MAX_PAGES or max_probes < 1:
        raise ValueError(f"step must be 1 .. {MAX_PAGES} frames and max_probes at least 1")
    from ptpair.sim.initial import fixed_memory

    if fixed_memory(None, age):
        raise ValueError(f"a minimum-memory search changes the memory size: {fixed_memory(None, age)}")
    if age is None:
        def start_free(pages: int) -> int:
            return pages
    else:
        from ptpair.traces.ager import free_frames, parse_ager

        spec = parse_ager(age)

        def start_free(pages: int) -> int:
            return free_frames(pages, spec)
    ev = encode(trace)
    probes = 0
    alike = blocks_boot_alike(allocator, age)
    grain = step * BLOCK_PAGES // math.gcd(step, BLOCK_PAGES)  # sizes of step 2: multiples of both
    high_water = None  # of a clean replay at a multiple of BLOCK_PAGES (all such agree), when alike

    def clean(pages: int) -> tuple[bool, int]:
        """(ran clean, peak of used frames) at `pages`; counts the probe, keeps its high water."""
        nonlocal probes, high_water
        if probes >= max_probes:
            raise ProbeBudget
        probes += 1
        try:
            ok, peak, hw = probe(ev, Config(scheme, policy, pages, allocator, reclaim, age=age))
        except ReplayError as e:  # an impossible event: the trace's error, located
            raise TraceError(trace.source, trace.line_of(e.index), e.message) from None
        if ok and alike and pages % BLOCK_PAGES == 0:
            high_water = hw
        return ok, peak

    def up(pages: int, unit: int = step) -> int:
        return -(-pages // unit) * unit

    # 1. a clean run, for the lower bound (failing probes stop early)
    cap = MAX_PAGES // step * step  # the largest size of the search
    hi = min(up(START_PAGES), cap)
    if age is not None:
        known_clean = clean_first = None  # (a peak of an aged run excludes the background: not used here)
    if clean_first is not None and known_clean is None:
        ok, peak = clean(clean_first)
        known_clean = (clean_first, peak) if ok else None
    elif known_clean is not None and len(known_clean) > 2 and alike and known_clean[0] % BLOCK_PAGES == 0:
        high_water = known_clean[2]
    while known_clean is not None and hi < known_clean[1] and hi < cap:
        hi = min(up(hi * 2), cap)  # below the peak: fails, whatever the layout

    def first_clean(hi: int) -> tuple[int, int]:
        """The first clean size of the doubling from hi, and the peak of used frames
        (ProbeBudget when the budget runs out first)."""
        while True:
            if known_clean is not None and hi == known_clean[0]:
                return hi, known_clean[1]
            ok, peak_used = clean(hi)
            if ok:
                return hi, peak_used
            if hi >= cap:
                raise NoCleanSize(f"the trace fails even with the largest simulated memory ({cap} frames)")
            hi = min(up(hi * 2), cap)

    doubled = None  # the doubling's first size not yet replayed (known_clean)
    if known_clean is None:
        try:
            hi, peak_used = first_clean(hi)
        except ProbeBudget:
            raise NoCleanSize(f"no clean run within {max_probes} replays: raise --max-probes") from None
    else:
        # The peak is known, and so is a clean size. The doubling's first clean size is
        # only the cap of the gallop below (when step 2 has no high water): it is found
        # (doubling from `doubled`, the first doubled size at or above the peak) when the
        # gallop reaches `doubled` -- the same probes, the same answer -- and a trace whose
        # answer lies below is spared them.
        doubled, peak_used = hi, known_clean[1]
        hi = known_clean[0]  # clean: the answer, should the budget run out first
    floor = max(up(_least_holding(start_free, peak_used)), step)
    try:
        # 2. the bracket: lo a probed or known failure (or below the bound), hi a clean size
        lo, gallop = floor - step, True
        if alike:
            doubled = None  # C caps the search, not the doubling
            size = up(floor, grain)
            while high_water is None:  # no clean replay at such a size yet: double them
                if size > cap:
                    raise NoCleanSize(f"the trace fails even with the largest simulated memory ({cap} frames)")
                clean(size)  # (a clean one sets high_water)
                size = up(2 * size, grain)
            hi = up(high_water, grain)  # C: clean, and C - grain fails (module docstring)
            if hi - grain >= floor:
                lo, gallop = hi - grain, False
        # 3. gallop up from the lower bound, then bisect
        gap = 1
        while gallop and (doubled is not None or lo + step < hi):
            cand = lo + gap * step
            if doubled is not None and cand >= doubled - step:
                hi, _ = first_clean(doubled)  # the cap the full search has
                doubled = None
                if lo + step >= hi:
                    break
            if doubled is None:
                cand = min(cand, hi - step)
            if clean(cand)[0]:
                hi = cand
                break
            lo, gap = cand, gap * 2
        while hi - lo > step:
            mid = lo + (hi - lo) // (2 * step) * step
            if clean(mid)[0]:
                hi = mid
            else:
                lo = mid
        # 4. lo = hi - step failed when probed (or is known to), or lies below the lower bound
        verified = True
    except ProbeBudget:
        verified = False
    return MinMem(hi, probes, verified, peak_used, step, None if age is None else start_free(hi))

def _least_holding(start_free, pages: int) -> int:
    """The smallest memory whose free frames at start hold `pages` (start_free is
    non-decreasing): a bisection."""
    lo, hi = 0, max(pages, 1)
    while start_free(hi) < pages:
        hi *= 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if start_free(mid) >= pages else (mid, hi)
    return hi if start_free(lo) < pages else lo
