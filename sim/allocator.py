"""Which page allocator the machine runs: one entry point for the rest of the machine.

Page tables and schemes ask for frames with `page_alloc(b, order, migratetype, owner)` and give
them back with `page_free(b, frame, order)`; both record who holds which frame
(sim/occupancy.py), and this module sends each call to the allocator the
machine was built with (the `--allocator` option):

* `buddy` (default): the binary buddy allocator of sim/buddy.py (policy address or lifo);
* `akaros-2015`: Akaros's allocator at commit ddb9fa78 (sim/akaros2015.py);
* `linux`: a buddy allocator grouping pages by mobility, as Linux does (sim/mobility.py).

Every request names a migratetype (page tables unmovable, data frames movable, kernel
allocations as the trace says); only `linux` uses it.
"""

from __future__ import annotations

import numpy as np

from ptpair import registry
from ptpair.sim.akaros2015 import akaros_alloc, akaros_free, buddyinfo_of_free_set
from ptpair.sim.boot import boot, pristine_runs
from ptpair.sim.buddy import BuddyState, N_ORDERS, buddy_alloc, buddy_free, new_buddy
from ptpair.sim.mobility import PAGEBLOCK_FRAMES, mobility_alloc, mobility_free
from ptpair.sim.occupancy import occupy, release
from ptpair.sim.slots import M_ALLOCATOR, N_MT
from ptpair.traces._jit import callee_kernel, inline_kernel

ALLOCATORS = {name: code for code, name in enumerate(registry.ALLOCATORS)}
ALLOC_BUDDY = ALLOCATORS["buddy"]
ALLOC_AKAROS = ALLOCATORS["akaros-2015"]
ALLOC_LINUX = ALLOCATORS["linux"]


def new_allocator(n_frames: int, allocator: int, policy: int, runs=None) -> BuddyState:
    """An allocator over `n_frames` frames, booted from `runs` (first frames, lengths,
    states: an initial state, sim/boot.py), or with every frame free."""
    b = new_buddy(n_frames, policy, lists_for_all_frames=allocator != ALLOC_BUDDY, boot=False)
    if allocator == ALLOC_LINUX:
        n_pb = (n_frames + PAGEBLOCK_FRAMES - 1) // PAGEBLOCK_FRAMES
        b = b._replace(head=np.full(N_ORDERS * N_MT, -1, np.int32), tail=np.full(N_ORDERS * N_MT, -1, np.int32),
                       mt=np.zeros(n_frames, np.int8),
                       pb_type=np.zeros(n_pb, np.int8), pb_alloc=np.zeros(n_pb * N_MT, np.int32),
                       nr_free_mt=np.zeros(N_ORDERS * N_MT, np.int64))
    b.meta[M_ALLOCATOR] = allocator
    boot(b, *(pristine_runs(n_frames) if runs is None else runs))
    return b


@inline_kernel
def page_alloc(b, k, mt, own):
    """First frame of a block of 2^k frames of migratetype mt for an owner of class `own`
    (sim/occupancy.py), or -1 when the allocator cannot supply one."""
    a = b.meta[M_ALLOCATOR]
    if a == ALLOC_AKAROS:
        f = akaros_alloc(b, k)
    elif a == ALLOC_LINUX:
        f = mobility_alloc(b, k, mt)
    else:
        f = buddy_alloc(b, k)
    if f >= 0:
        occupy(b, f, k, own)
    return f


@inline_kernel
def page_free(b, frame, k):
    release(b, frame, k)
    a = b.meta[M_ALLOCATOR]
    if a == ALLOC_AKAROS:
        akaros_free(b, frame, k)
    elif a == ALLOC_LINUX:
        mobility_free(b, frame, k)
    else:
        buddy_free(b, frame, k)


@callee_kernel
def page_alloc_call(b, k, mt, own):
    """page_alloc, called rather than inlined: for the rare requests (page tables, huge
    pages, the slow path of a map), so that the allocators' code is compiled into the few
    hot places only -- every inlined copy is compiled anew (docs/performance.md)."""
    return page_alloc(b, k, mt, own)


@callee_kernel
def page_free_call(b, frame, k):
    """page_free, called rather than inlined (see page_alloc_call)."""
    page_free(b, frame, k)


@inline_kernel
def needs_split(b, k, mt):
    """Whether a request of order k (migratetype mt) finds its own free list empty, so that
    a larger block must be split or, under `linux`, another migratetype's list used: the
    "harder to find" of an order-1 block. The Akaros 2015 allocator keeps no list above
    single frames: every request of order >= 1 scans."""
    a = b.meta[M_ALLOCATOR]
    if a == ALLOC_AKAROS:
        return k >= 1
    if a == ALLOC_LINUX:
        return b.nr_free_mt[k * N_MT + mt] == 0
    return b.nr_free[k] == 0


def buddyinfo(b: BuddyState) -> np.ndarray:
    """Free blocks per order 0..10. For allocators that are not buddies, the free set
    decomposed into maximal aligned blocks (what a buddy allocator would list), so every
    allocator compares on one scale."""
    if int(b.meta[M_ALLOCATOR]) != ALLOC_AKAROS:
        return b.nr_free.copy()
    return buddyinfo_of_free_set(b.blk >= 0)
