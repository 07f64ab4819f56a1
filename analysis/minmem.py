"""The smallest memory with which a trace runs without any allocation failure.

The headline "allocator pressure" number: a scheme that needs order-1 blocks may need
more memory than one that needs single pages, even for the same page count, because a
fragmented free list can hold enough pages but no pair.

Memory sizes are multiples of `STEP_PAGES` (256 frames = 1 MiB). Bisection needs
failures to be monotonic in memory size, which they need not be (a larger memory changes
every address and so every later decision), so the answer is verified: it runs clean and
256 frames less does not; if verification fails, the search walks down (or up) one step
at a time from the bisection's answer until both hold.
"""

from __future__ import annotations

from dataclasses import dataclass

from ptpair.sim import counters as C
from ptpair.sim.buddy import N_ORDERS
from ptpair.sim.machine import Config, Machine
from ptpair.traces.format import Trace, encode

STEP_PAGES = 256
MAX_PAGES = (2**31 - 2) // STEP_PAGES * STEP_PAGES


@dataclass
class MinMem:
    min_memory_pages: int
    probes: int  # full replays run
    verified: bool  # min runs clean and min - STEP fails (or min is one step)
    monotonic_violations: int  # verification steps beyond the bisection's answer
    peak_used_pages: int = 0  # frames in use at the peak of a clean run: a lower bound

    def to_dict(self) -> dict:
        return {"min_memory_pages": self.min_memory_pages, "min_memory_bytes": self.min_memory_pages * 4096,
                "probes": self.probes, "verified": self.verified,
                "monotonic_violations": self.monotonic_violations, "peak_used_pages": self.peak_used_pages}


CHUNK_EVENTS = 2048  # a failing probe stops at the end of the chunk of its first failure


def _probe(ev, scheme: str, policy: str, pages: int, allocator: str = "buddy", reclaim: str = "empty"):
    """Replay at `pages` frames; returns (clean, peak used pages). A probe stops soon after
    its first failed allocation (the answer is then known), so failing probes are cheap."""
    m = Machine(Config(scheme, policy, pages, allocator, reclaim), ev.n_procs)
    n = len(ev)
    for i in range(0, max(n, 1), CHUNK_EVENTS):
        m.run(ev, i, min(n, i + CHUNK_EVENTS))
        if m.ctr[C.FAIL:C.FAIL + N_ORDERS].any():
            return False, int(m.ctr[C.PEAK_USED])
    return True, int(m.ctr[C.PEAK_USED])


def _clean(ev, scheme: str, policy: str, pages: int, allocator: str = "buddy", reclaim: str = "empty") -> bool:
    return _probe(ev, scheme, policy, pages, allocator, reclaim)[0]


def min_memory(trace: Trace, scheme: str = "pair", policy: str = "address", allocator: str = "buddy",
               reclaim: str = "empty") -> MinMem:
    """Smallest memory (a multiple of 256 frames) with no allocation failure.

    While no allocation fails, the number of frames in use after each event does not depend
    on where the allocator put anything, so every clean run has the same peak of used
    frames P; no memory smaller than P can run clean. The first clean probe gives P, and
    the search starts from the last step below it.
    """
    ev = encode(trace)
    probes = 0

    def clean(pages):
        nonlocal probes
        probes += 1
        ok, peak_used = _probe(ev, scheme, policy, pages, allocator, reclaim)
        return ok, peak_used

    # exponential search for a clean upper bound (failing probes stop early)
    hi = STEP_PAGES
    while True:
        ok, peak_used = clean(hi)
        if ok:
            break
        if hi >= MAX_PAGES:
            raise ValueError("the trace fails even with the largest simulated memory (2^31 frames)")
        hi = min(hi * 2, MAX_PAGES)
    # Below the clean runs' peak of used frames P nothing runs clean, and the answer is
    # usually within a few percent above P: gallop up from P (1, 2, 4, ... steps), then
    # bisect the last gap.
    floor = -(-peak_used // STEP_PAGES) * STEP_PAGES  # smallest candidate: P rounded up
    lo = max(hi // 2 if hi > STEP_PAGES else 0, floor - STEP_PAGES)  # known to fail (or 0)
    gap = 1
    while lo + STEP_PAGES < hi:
        cand = min(lo + gap * STEP_PAGES, hi - STEP_PAGES)
        if clean(cand)[0]:
            hi = cand
            break
        lo = cand
        gap *= 2
    while hi - lo > STEP_PAGES:
        mid = (lo + hi) // 2 // STEP_PAGES * STEP_PAGES
        if clean(mid)[0]:
            hi = mid
        else:
            lo = mid
    # verify: hi clean, hi - STEP not (below P it cannot be); walk while verification fails
    violations = 0
    while hi - STEP_PAGES >= max(floor, STEP_PAGES) and clean(hi - STEP_PAGES)[0]:
        hi -= STEP_PAGES
        violations += 1
    return MinMem(hi, probes, True, violations, peak_used)
