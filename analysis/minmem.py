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
   clean replay -- the report replays at 4 GiB first -- passes its size and peak as
   `known_clean`: the doubled sizes below that peak would fail, so they are not
   replayed, and the doubling above the peak only when step 2 reaches it; the answer
   does not change);
2. gallop up from L (L, L + step, L + 2 step, L + 4 step, ...) to the first clean size,
   then bisect the last gap; the bisection keeps a probed failing size below a probed
   clean one, so it ends at a clean M whose M - step failed;
3. failures need not be monotonic in memory size (a larger memory changes every address
   and so every later decision), so the answer is *checked*, not assumed: `verified` is
   true when the replay at M ran clean and the replay at M - step failed (or M = L),
   false only when the probe budget (`max_probes`) stopped steps 2-3 -- M is then the
   smallest clean size found. A budget spent before any clean run (step 1) is an error
   (NoCleanSize), as is a trace that fails at the largest memory.

On memory aged by the synthetic ager (`age=`), every probed size is aged anew with the
same spec, so a fraction F of it starts free and the rest is background. P is then the
peak of the trace's own frames (used minus background), L the smallest size whose free
frames at start, round(F * L), hold P, and the margin is the free frames at start of M
minus P -- pristine memory being the case F = 1. A free map or a warm-up trace fixes the
memory size: there is nothing to search (ValueError).
"""

from __future__ import annotations

from dataclasses import dataclass

from ptpair.errors import TraceError
from ptpair.sim import counters as C
from ptpair.sim.buddy import N_ORDERS
from ptpair.sim.machine import Config, Machine, ReplayError
from ptpair.sim.slots import M_BACKGROUND
from ptpair.traces.format import Trace, encode
from ptpair.traces.units import PAGE_SIZE

STEP_PAGES = 1  # the default resolution: one frame
START_PAGES = 256  # the first size of the doubling search
MAX_PAGES = 2**31 - 2
MAX_PROBES = 200  # generous: a frame-exact search takes about 2 log2(margin) + 10 probes
CHUNK_EVENTS = 2048  # a failing probe stops at the end of the chunk of its first failure


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


def probe(ev, config: Config) -> tuple[bool, int]:
    """Replay the encoded trace `ev` under `config`: (ran clean, peak of the trace's used
    frames, background excluded). A
    probe stops soon after its first failed allocation (the answer is then known), so
    failing probes are cheap."""
    m = Machine(config, ev.n_procs)
    background = int(m.buddy.meta[M_BACKGROUND])
    n = len(ev)
    for i in range(0, max(n, 1), CHUNK_EVENTS):
        m.run(ev, i, min(n, i + CHUNK_EVENTS))
        if m.ctr[C.FAIL:C.FAIL + N_ORDERS].any():
            return False, int(m.ctr[C.PEAK_USED]) - background
    return True, int(m.ctr[C.PEAK_USED]) - background


def clean_point(result) -> tuple[int, int] | None:
    """The `known_clean` of min_memory from a replay's Result: (memory, peak of used frames)
    when it ran on pristine memory without a failure, else None."""
    c = result.config
    if any(result.alloc_failures) or c.initial is not None or c.age is not None:
        return None
    return int(c.memory_pages), int(result.peak["used_pages"])


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

    `known_clean`: (memory, peak of used frames) of a replay of this trace on this machine
    (pristine memory) that ran clean -- a caller that has one saves the doubling's probes:
    sizes below that peak cannot run clean, so they are not replayed, nor is the known
    size, and the doubling above the peak runs only when the gallop reaches it. The
    answer is the one the full search gives (unless `max_probes` runs out: the answer is
    then the smallest clean size found, the known one at worst -- not necessarily a
    multiple of `step` --, not verified).

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

    def clean(pages: int) -> tuple[bool, int]:
        nonlocal probes
        if probes >= max_probes:
            raise ProbeBudget
        probes += 1
        try:
            return probe(ev, Config(scheme, policy, pages, allocator, reclaim, age=age))
        except ReplayError as e:  # an impossible event: the trace's error, located
            raise TraceError(trace.source, trace.line_of(e.index), e.message) from None

    def up(pages: int) -> int:
        return -(-pages // step) * step

    # 1. a clean run, for the lower bound (failing probes stop early)
    cap = MAX_PAGES // step * step  # the largest size of the search
    hi = min(up(START_PAGES), cap)
    if age is not None:
        known_clean = clean_first = None  # (a peak of an aged run excludes the background: not used here)
    if clean_first is not None and known_clean is None:
        ok, peak = clean(clean_first)
        known_clean = (clean_first, peak) if ok else None
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
        # only the cap of the gallop below: it is found (doubling from `doubled`, the first
        # doubled size at or above the peak) when the gallop reaches `doubled` -- the same
        # probes, the same answer -- and a trace whose answer lies below is spared them.
        doubled, peak_used = hi, known_clean[1]
        hi = known_clean[0]  # clean: the answer, should the budget run out first
    floor = max(up(_least_holding(start_free, peak_used)), step)
    try:
        # 2. gallop up from the lower bound, then bisect: lo is a probed failure (or below
        # the bound), hi a probed clean size
        lo, gap = floor - step, 1
        while doubled is not None or lo + step < hi:
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
        # 3. lo = hi - step failed when probed, or lies below the lower bound
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
