"""Binary buddy allocator over N 4-KiB frames, orders 0..MAX_ORDER, in compiled code.

Semantics (docs/semantics.md, "Allocator"):

* At start the free memory is carved in address order into the largest aligned blocks
  that fit, as Linux's memblock_free_all() hands boot memory to the buddy allocator
  (sim/boot.py: all of memory, or the free runs of an initial state).
* Policy ADDRESS takes the lowest-addressed free block of the smallest order >= k that
  has one. Policy LIFO takes the block put on that order's list most recently (freed,
  merged, split off; at start the lowest-addressed, boot memory being freed to the tail
  of the lists). Both split alike: the lower half is
  kept, the upper halves go to the free lists (mm/page_alloc.c: expand()).
* A freed block merges with its buddy (frame ^ 2^k) for as long as the buddy is a free
  block of the same order (mm/page_alloc.c: __free_one_page()).

State layout. `blk[f]` is the order of the free block that starts at frame f, or -1:
the O(1) "is my buddy free at my order" test. Address-ordered free lists are two-level
bitmaps per order (a bit per aligned block, a summary bit per 64-bit word), searched with
count-trailing-zeros; `hint[k]` is a summary word below which all words are zero, so a
search never rescans the empty low part. LIFO lists are doubly linked through
`nxt`/`prv` (indexed by the block's first frame) with a head and a tail per order.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from ptpair import registry
from ptpair.sim.freelist import NIL, list_push, list_unlink
from ptpair.traces._jit import inline_kernel
from numba.cpython.unsafe.numbers import trailing_zeros

from ptpair.sim.slots import (
    META_LEN, M_BACKGROUND, M_FRAMES, M_FREE_PAGES, M_HIGH_WATER, M_HOLES, M_HW_LIVE, M_MEM_END, M_POLICY
)
from ptpair.traces.format import MAX_ORDER, N_ORDERS

POLICIES = {name: code for code, name in enumerate(registry.POLICIES)}
POLICY_ADDRESS = POLICIES["address"]
POLICY_LIFO = POLICIES["lifo"]


_ONE = np.uint64(1)
_ZERO = np.uint64(0)

# mt, pb_type, pb_alloc and nr_free_mt serve the mobility-grouping allocator
# (sim/mobility.py); the others carry them at length 1. own, am, um, pb_used, pb_unmov and
# pb_hole record who holds each frame, for every allocator (sim/occupancy.py).
BuddyState = namedtuple("BuddyState", "meta blk nr_free bm bm_off sm sm_off hint nxt prv head tail mt pb_type "
                                      "pb_alloc nr_free_mt own am um pb_used pb_unmov pb_hole")


def new_buddy(n_frames: int, policy: int, lists_for_all_frames: bool = False, boot: bool = True) -> BuddyState:
    """A buddy allocator over `n_frames` frames with every frame free (boot carve done).

    `lists_for_all_frames` sizes nxt/prv for every frame (LIFO, and allocators that keep
    per-frame lists); the address policy needs none. `boot=False` leaves every frame
    unlisted, for another allocator to boot on these arrays."""
    from ptpair.sim.occupancy import new_occupancy
    from ptpair.sim.slots import M_CC_VERSION

    if n_frames < 1 or n_frames >= 2**31 - 1:
        raise ValueError(f"memory must be 1 .. 2^31-2 frames, got {n_frames}")
    meta = np.zeros(META_LEN, np.int64)
    meta[M_FRAMES] = n_frames
    meta[M_MEM_END] = n_frames
    meta[M_POLICY] = policy
    bm_off = np.zeros(N_ORDERS + 1, np.int64)
    sm_off = np.zeros(N_ORDERS + 1, np.int64)
    if policy == POLICY_ADDRESS:
        for k in range(N_ORDERS):
            words = ((n_frames >> k) + 63) // 64
            bm_off[k + 1] = bm_off[k] + words
            sm_off[k + 1] = sm_off[k] + (words + 63) // 64
        nlist = n_frames if lists_for_all_frames else 1
    else:
        nlist = n_frames
    st = BuddyState(
        meta=meta,
        blk=np.full(n_frames, NIL, np.int8),
        nr_free=np.zeros(N_ORDERS, np.int64),
        bm=np.zeros(max(int(bm_off[-1]), 1), np.uint64),
        bm_off=bm_off,
        sm=np.zeros(max(int(sm_off[-1]), 1), np.uint64),
        sm_off=sm_off,
        hint=np.zeros(N_ORDERS, np.int64),
        nxt=np.full(nlist, NIL, np.int32),
        prv=np.full(nlist, NIL, np.int32),
        head=np.full(N_ORDERS, NIL, np.int32),
        tail=np.full(N_ORDERS, NIL, np.int32),
        mt=np.zeros(1, np.int8),
        pb_type=np.zeros(1, np.int8),
        pb_alloc=np.zeros(1, np.int32),
        nr_free_mt=np.zeros(1, np.int64),
        **new_occupancy(n_frames),
    )
    meta[M_CC_VERSION:M_CC_VERSION + N_ORDERS] = -1  # no failure cost computed yet
    if boot:
        from ptpair.sim.boot import boot as boot_runs, pristine_runs

        boot_runs(st, *pristine_runs(n_frames))
    return st


@inline_kernel
def insert_free(b, frame, k):
    """Put the free block [frame, frame + 2^k) on order k's list (no merging)."""
    b.blk[frame] = k
    b.nr_free[k] += 1
    if b.meta[M_POLICY] == POLICY_ADDRESS:
        blk = frame >> k
        w = blk >> 6
        b.bm[b.bm_off[k] + w] |= _ONE << np.uint64(blk & 63)
        s = w >> 6
        b.sm[b.sm_off[k] + s] |= _ONE << np.uint64(w & 63)
        if s < b.hint[k]:
            b.hint[k] = s
    else:
        list_push(b, k, frame)


@inline_kernel
def _remove(b, frame, k):
    """Take the free block at `frame` of order k off its list."""
    b.blk[frame] = NIL
    b.nr_free[k] -= 1
    if b.meta[M_POLICY] == POLICY_ADDRESS:
        blk = frame >> k
        w = blk >> 6
        i = b.bm_off[k] + w
        word = b.bm[i] & ~(_ONE << np.uint64(blk & 63))
        b.bm[i] = word
        if word == _ZERO:
            b.sm[b.sm_off[k] + (w >> 6)] &= ~(_ONE << np.uint64(w & 63))
    else:
        list_unlink(b, k, frame)


@inline_kernel
def _lowest(b, k):
    """First frame of the lowest-addressed free block of order k (nr_free[k] > 0)."""
    s = b.hint[k]
    base = b.sm_off[k]
    while b.sm[base + s] == _ZERO:
        s += 1
    b.hint[k] = s
    w = s * 64 + trailing_zeros(b.sm[base + s])
    bit = trailing_zeros(b.bm[b.bm_off[k] + w])
    return (w * 64 + bit) << k


@inline_kernel
def note_allocated(b, frame, k):
    """Bookkeeping every allocator does once it has taken [frame, frame + 2^k): free pages,
    and Johnstone & Wilson's extent at its worst with live memory at that moment."""
    b.meta[M_FREE_PAGES] -= 1 << k
    if frame + (1 << k) > b.meta[M_HIGH_WATER]:
        b.meta[M_HIGH_WATER] = frame + (1 << k)
        # the trace's own live frames: not the initial state's background or holes
        b.meta[M_HW_LIVE] = b.meta[M_FRAMES] - b.meta[M_HOLES] - b.meta[M_BACKGROUND] - b.meta[M_FREE_PAGES]


@inline_kernel
def buddy_alloc(b, k):
    """Allocate a block of order k; returns its first frame, or -1 when none is free."""
    j = k
    while j < N_ORDERS and b.nr_free[j] == 0:
        j += 1
    if j == N_ORDERS:
        return NIL
    if b.meta[M_POLICY] == POLICY_ADDRESS:
        frame = _lowest(b, j)
    else:
        frame = b.head[j]
    _remove(b, frame, j)
    # expand(): keep the lower half, give each upper half back, largest first
    while j > k:
        j -= 1
        insert_free(b, frame + (1 << j), j)
    note_allocated(b, frame, k)
    return frame


@inline_kernel
def buddy_free(b, frame, k):
    """Free the block [frame, frame + 2^k), merging with free buddies upwards."""
    b.meta[M_FREE_PAGES] += 1 << k
    n = b.meta[M_FRAMES]
    while k < MAX_ORDER:
        buddy = frame ^ (1 << k)
        if buddy >= n or b.blk[buddy] != k:
            break
        _remove(b, buddy, k)
        frame = min(frame, buddy)
        k += 1
    insert_free(b, frame, k)


def free_blocks(b: BuddyState) -> list[tuple[int, int]]:
    """Every free block as (first frame, order), in the order a list walk yields them.

    ADDRESS: ascending address per order; LIFO: head (most recent) first per order.
    Orders ascend. Used by tests and invariant checks, not in the hot path.
    """
    out = []
    if int(b.meta[M_POLICY]) == POLICY_ADDRESS:
        heads = np.flatnonzero(b.blk >= 0)
        orders = b.blk[heads]
        for k in range(N_ORDERS):
            out.extend((int(f), k) for f in heads[orders == k])
    else:
        for k in range(N_ORDERS):
            f = int(b.head[k])
            while f != NIL:
                out.append((f, k))
                f = int(b.nxt[f])
    return out
