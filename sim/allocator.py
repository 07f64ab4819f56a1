"""Which page allocator the machine runs: one entry point for the rest of the machine.

Page tables and schemes ask for frames with `page_alloc(b, order)` and give them back
with `page_free(b, frame, order)`; this module sends each call to the allocator the
machine was built with (the `--allocator` option):

* `buddy` (default): the binary buddy allocator of sim/buddy.py (policy address or lifo);
* `akaros-2015`: Akaros's allocator at the seed commit (sim/akaros2015.py).
"""

from __future__ import annotations

import numpy as np

from ptpair.sim._jit import kernel
from ptpair.sim.akaros2015 import akaros_alloc, akaros_boot, akaros_free, buddyinfo_of_free_set
from ptpair.sim.buddy import M_ALLOCATOR, BuddyState, buddy_alloc, buddy_free, new_buddy

ALLOC_BUDDY = 0
ALLOC_AKAROS = 1
ALLOCATORS = {"buddy": ALLOC_BUDDY, "akaros-2015": ALLOC_AKAROS}


def new_allocator(n_frames: int, allocator: int, policy: int) -> BuddyState:
    """An allocator over `n_frames` frames, all free (boot done)."""
    b = new_buddy(n_frames, policy, lists_for_all_frames=allocator != ALLOC_BUDDY,
                  boot=allocator == ALLOC_BUDDY)
    b.meta[M_ALLOCATOR] = allocator
    if allocator == ALLOC_AKAROS:
        akaros_boot(b)
    return b


@kernel
def page_alloc(b, k):
    """First frame of a block of 2^k frames, or -1 when the allocator cannot supply one."""
    if b.meta[M_ALLOCATOR] == ALLOC_AKAROS:
        return akaros_alloc(b, k)
    return buddy_alloc(b, k)


@kernel
def page_free(b, frame, k):
    if b.meta[M_ALLOCATOR] == ALLOC_AKAROS:
        akaros_free(b, frame, k)
    else:
        buddy_free(b, frame, k)


def buddyinfo(b: BuddyState) -> np.ndarray:
    """Free blocks per order 0..10. For allocators that are not buddies, the free set
    decomposed into maximal aligned blocks (what a buddy allocator would list), so every
    allocator compares on one scale."""
    if int(b.meta[M_ALLOCATOR]) == ALLOC_BUDDY:
        return b.nr_free.copy()
    return buddyinfo_of_free_set(b.blk >= 0)
