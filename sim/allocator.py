"""Which page allocator the machine runs: one entry point for the rest of the machine.

Page tables and schemes ask for frames with `page_alloc(b, order, migratetype)` and give them back
with `page_free(b, frame, order)`; this module sends each call to the allocator the
machine was built with (the `--allocator` option):

* `buddy` (default): the binary buddy allocator of sim/buddy.py (policy address or lifo);
* `akaros-2015`: Akaros's allocator at commit ddb9fa78 (sim/akaros2015.py);
* `linux`: a buddy allocator grouping pages by mobility, as Linux does (sim/mobility.py).

Every request names a migratetype (page tables unmovable, data frames movable, kernel
allocations as the trace says); only `linux` uses it.
"""

from __future__ import annotations

import numpy as np

from ptpair.sim._jit import inline_kernel
from ptpair.sim.akaros2015 import akaros_alloc, akaros_boot, akaros_free, buddyinfo_of_free_set
from ptpair.sim.buddy import M_ALLOCATOR, N_ORDERS, BuddyState, buddy_alloc, buddy_free, new_buddy
from ptpair.sim.mobility import (
    N_MT, PAGEBLOCK_FRAMES, mobility_alloc, mobility_boot, mobility_free,
)

ALLOC_BUDDY = 0
ALLOC_AKAROS = 1
ALLOC_LINUX = 2
ALLOCATORS = {"buddy": ALLOC_BUDDY, "akaros-2015": ALLOC_AKAROS, "linux": ALLOC_LINUX}


def new_allocator(n_frames: int, allocator: int, policy: int) -> BuddyState:
    """An allocator over `n_frames` frames, all free (boot done)."""
    b = new_buddy(n_frames, policy, lists_for_all_frames=allocator != ALLOC_BUDDY,
                  boot=allocator == ALLOC_BUDDY)
    if allocator == ALLOC_LINUX:
        n_pb = (n_frames + PAGEBLOCK_FRAMES - 1) // PAGEBLOCK_FRAMES
        b = b._replace(head=np.full(N_ORDERS * N_MT, -1, np.int32), mt=np.zeros(n_frames, np.int8),
                       pb_type=np.zeros(n_pb, np.int8), pb_alloc=np.zeros(n_pb * N_MT, np.int32),
                       nr_free_mt=np.zeros(N_ORDERS * N_MT, np.int64))
    b.meta[M_ALLOCATOR] = allocator
    if allocator == ALLOC_AKAROS:
        akaros_boot(b)
    elif allocator == ALLOC_LINUX:
        mobility_boot(b)
    return b


@inline_kernel
def page_alloc(b, k, mt):
    """First frame of a block of 2^k frames of migratetype mt, or -1 when the allocator
    cannot supply one."""
    a = b.meta[M_ALLOCATOR]
    if a == ALLOC_AKAROS:
        return akaros_alloc(b, k)
    if a == ALLOC_LINUX:
        return mobility_alloc(b, k, mt)
    return buddy_alloc(b, k)


@inline_kernel
def page_free(b, frame, k):
    a = b.meta[M_ALLOCATOR]
    if a == ALLOC_AKAROS:
        akaros_free(b, frame, k)
    elif a == ALLOC_LINUX:
        mobility_free(b, frame, k)
    else:
        buddy_free(b, frame, k)


def buddyinfo(b: BuddyState) -> np.ndarray:
    """Free blocks per order 0..10. For allocators that are not buddies, the free set
    decomposed into maximal aligned blocks (what a buddy allocator would list), so every
    allocator compares on one scale."""
    if int(b.meta[M_ALLOCATOR]) != ALLOC_AKAROS:
        return b.nr_free.copy()
    return buddyinfo_of_free_set(b.blk >= 0)
