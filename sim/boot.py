"""How memory enters the allocator at the start of a replay: pristine, or an initial state.

An initial state is a map of the frames as runs (first frame, length, state), each run
FREE, USED or HOLE (traces/freemap.py): a real machine's free map, a synthetic ager's
(traces/ager.py), or all of memory FREE -- the pristine boot, which is the same code with
one run. The rules (docs/semantics.md, "Initial state"):

* A FREE run is carved from its low end into maximal aligned blocks of order <= 10, as
  Linux's memblock_free_all() hands boot memory to the buddy allocator. Blocks carved from
  one run never merge with each other, and two runs are never adjacent, so no free block
  has a free buddy: the coalescing invariant holds from the start.
* The blocks enter the free lists in ascending address order *as the kernel's FPI_TO_TAIL
  frees leave them* (mm/page_alloc.c: __free_pages_core() frees boot memory with
  FPI_TO_TAIL since v5.10): walked from its head, every list is in ascending address
  order, so the first block taken from a list head is its lowest. The address policy
  ignores list order. The Akaros 2015 allocator keeps its own boot (kern/src/page_alloc.c:
  every free frame pushed on its single list's head in ascending order, the highest frame
  at the head).
* A USED run belongs to the `background` owner for the whole replay: allocated, never
  freed, unmovable (sim/occupancy.py OWN_BACKGROUND). Under `linux` its pageblocks are
  labelled as below.
* A HOLE run is not memory: never free, never allocated, in no window compaction could
  use, in no 2 MiB block counted for huge pages.

Pageblock migratetypes (`linux`): the kernel exports no per-pageblock migratetype outside
debugfs, so a map does not record it. A pageblock is labelled unmovable when background
frames fill at least half of it -- what steal_suitable_fallback() would have done as its
unmovable allocations claimed it -- and movable otherwise (memmap_init()'s default).
"""

from __future__ import annotations

import numpy as np

from ptpair import registry
from ptpair.sim.akaros2015 import akaros_push
from ptpair.sim.buddy import POLICY_ADDRESS, insert_free
from ptpair.sim.mobility import MT_MOVABLE, MT_UNMOVABLE, PAGEBLOCK_FRAMES, PAGEBLOCK_ORDER, account, add_free
from ptpair.sim.occupancy import mark_hole, occupy_background
from ptpair.sim.slots import M_ALLOCATOR, M_FRAMES, M_FREE_PAGES, M_POLICY, N_MT
from ptpair.traces._jit import kernel
from ptpair.traces.format import MAX_ORDER
from ptpair.traces.freemap import FREE, HOLE, USED

# the allocator codes of sim/allocator.py (which imports this module)
_AKAROS = registry.ALLOCATORS.index("akaros-2015")
_LINUX = registry.ALLOCATORS.index("linux")


def pristine_runs(n_frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All of memory one FREE run: the initial state of a replay from scratch."""
    return np.zeros(1, np.int64), np.full(1, n_frames, np.int64), np.full(1, FREE, np.uint8)


@kernel
def _carve(start, length, state, out_f, out_k):
    """The free blocks of the FREE runs, ascending, into out_f/out_k; returns their count
    (call with empty outputs first to count)."""
    m = 0
    for r in range(len(start)):
        if state[r] != FREE:
            continue
        x = start[r]
        end = x + length[r]
        while x < end:
            k = MAX_ORDER
            while (x & ((1 << k) - 1)) != 0 or x + (1 << k) > end:
                k -= 1
            if m < len(out_f):
                out_f[m] = x
                out_k[m] = k
            m += 1
            x += 1 << k
    return m


@kernel
def _boot(b, allocator, start, length, state, blk_f, blk_k):
    """Put the runs' frames where they belong (see the module docstring)."""
    free = 0
    for r in range(len(start)):
        if state[r] == USED:
            occupy_background(b, start[r], length[r])
            if allocator == _LINUX:
                account(b, start[r], length[r], MT_UNMOVABLE, 1)
        elif state[r] == HOLE:
            mark_hole(b, start[r], length[r])
        else:
            free += length[r]
    if allocator == _LINUX:
        # pageblock labels first: a free block goes to its pageblock's lists
        for pb in range(len(b.pb_type)):
            bg = b.pb_alloc[pb * N_MT + MT_UNMOVABLE]
            b.pb_type[pb] = MT_UNMOVABLE if 2 * bg >= PAGEBLOCK_FRAMES else MT_MOVABLE
    if allocator == _AKAROS:
        for r in range(len(start)):
            if state[r] == FREE:
                for f in range(start[r], start[r] + length[r]):
                    akaros_push(b, f)
    elif allocator == _LINUX:
        for i in range(len(blk_f) - 1, -1, -1):  # pushed highest first: lowest at the head
            add_free(b, blk_f[i], blk_k[i], b.pb_type[blk_f[i] >> PAGEBLOCK_ORDER])
    elif b.meta[M_POLICY] == POLICY_ADDRESS:
        for i in range(len(blk_f)):
            insert_free(b, blk_f[i], blk_k[i])
    else:
        for i in range(len(blk_f) - 1, -1, -1):
            insert_free(b, blk_f[i], blk_k[i])
    b.meta[M_FREE_PAGES] = free


def boot(b, start: np.ndarray, length: np.ndarray, state: np.ndarray) -> None:
    """Boot allocator `b` (all frames unlisted) from runs covering [0, frames) exactly, in
    address order, no two adjacent runs in one state. Raises ValueError otherwise."""
    start = np.ascontiguousarray(start, np.int64)
    length = np.ascontiguousarray(length, np.int64)
    state = np.ascontiguousarray(state, np.uint8)
    n = int(b.meta[M_FRAMES])
    ends = start + length
    if (len(start) == 0 or start[0] != 0 or ends[-1] != n or np.any(length <= 0)
            or np.any(start[1:] != ends[:-1]) or np.any(state > HOLE) or np.any(state[1:] == state[:-1])):
        raise ValueError(f"an initial state must cover frames 0 .. {n - 1} with maximal runs in address order")
    count = _carve(start, length, state, np.zeros(0, np.int64), np.zeros(0, np.int8))
    blk_f, blk_k = np.zeros(count, np.int64), np.zeros(count, np.int8)
    _carve(start, length, state, blk_f, blk_k)
    _boot(b, int(b.meta[M_ALLOCATOR]), start, length, state, blk_f, blk_k)


__all__ = ["boot", "pristine_runs"]
