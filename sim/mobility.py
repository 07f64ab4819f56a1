"""A buddy allocator that groups pages by mobility, as Linux's mm/page_alloc.c (v6.6) does.

Memory is divided into pageblocks of 2^PAGEBLOCK_ORDER = 512 frames, each labelled with a
migratetype (unmovable, movable, reclaimable; all movable at boot, as memmap_init()
sets them, unless an initial state says otherwise: sim/boot.py). Free lists are kept per order *and* migratetype; page-table pages are
requested as unmovable, data frames as movable, kernel allocations as the trace says.

* `__rmqueue_smallest`: the smallest sufficient free block on the request's own
  migratetype lists, taken from the list head; split by `expand()`, the upper halves
  going to the head of the request's migratetype lists.
* `__rmqueue_fallback`, when that fails: the *largest* free block of a fallback type, the
  types tried in the kernel's order (unmovable -> reclaimable, movable; reclaimable ->
  unmovable, movable; movable -> reclaimable, unmovable) at each order from 10 down; a
  movable request that may not steal the whole pageblock takes the *smallest* such block
  instead (`find_smallest`). `can_steal_fallback(order)`: order >= pageblock_order, or
  order >= pageblock_order / 2 (= 4 in C's integer division), or an unmovable or
  reclaimable request. Each fallback is an `mm_page_alloc_extfrag` event.
* `steal_suitable_fallback`: a fallback block of order >= 9 relabels all its pageblocks;
  otherwise, if stealing is allowed and the pageblock lies wholly inside the zone
  (`move_freepages_block` refuses one that reaches past its end), every free block of the
  pageblock moves to the request's lists and the pageblock is relabelled when its free
  frames plus its frames "alike" the request number at least half a pageblock (alike: for
  a movable request, the movable frames allocated there; for the others, if the block
  was movable, every allocated frame that is not movable, else none); otherwise the found
  block alone moves. Every move puts the block at the *tail* of its new list
  (`move_to_free_list`: list_move_tail). Then `__rmqueue_smallest` runs again.
* `__free_one_page`: a freed block goes to the lists of its pageblock's migratetype *at
  free time*, merging with free buddies as the plain buddy allocator does (all three
  types are mergeable); the merged block goes to the tail when `buddy_merge_likely`
  holds (below order 9, its parent's buddy is free), else to the head.

Not modelled: per-CPU page lists, watermarks and reserves, highatomic and CMA types,
several zones, `ALLOC_NOFRAGMENT`, shuffling. Movable frames in a pageblock are counted
exactly (the kernel counts PageLRU / __PageMovable pages). docs/semantics.md states each
rule with the v6.6 function it follows.
"""

from __future__ import annotations

import numpy as np

from ptpair.sim.buddy import M_FRAMES, M_FREE_PAGES, N_ORDERS, note_allocated
from ptpair.sim.freelist import NIL, list_push, list_push_tail, list_unlink
from ptpair.sim.slots import M_FALLBACKS, M_FALLBACK_BY, M_POLLUTED, M_STEALS, N_MT
from ptpair.traces._jit import callee_kernel, inline_kernel

PAGEBLOCK_ORDER = 9
PAGEBLOCK_FRAMES = 1 << PAGEBLOCK_ORDER
MT_UNMOVABLE = 0  # Linux's enum migratetype order
MT_MOVABLE = 1
MT_RECLAIMABLE = 2
MT_NAMES = ("unmovable", "movable", "reclaimable")
# fallbacks[mt] (mm/page_alloc.c)
FALLBACKS = np.array([[MT_RECLAIMABLE, MT_MOVABLE], [MT_RECLAIMABLE, MT_UNMOVABLE],
                      [MT_UNMOVABLE, MT_MOVABLE]], np.int64)

# buddy_merge_likely() applies below order MAX_ORDER - 1 (v6.6: MAX_ORDER = 10, inclusive)
MERGE_LIKELY_MAX_ORDER = N_ORDERS - 2


@inline_kernel
def _count_free(b, f, k, mt):
    b.blk[f] = k
    b.mt[f] = mt
    b.nr_free[k] += 1
    b.nr_free_mt[k * N_MT + mt] += 1


@inline_kernel
def add_free(b, f, k, mt):
    """Put the free block at f (order k) at the head of list (k, mt): add_to_free_list()."""
    _count_free(b, f, k, mt)
    list_push(b, k * N_MT + mt, f)


@inline_kernel
def add_free_tail(b, f, k, mt):
    """Put the free block at f (order k) at the tail of list (k, mt): add_to_free_list_tail()."""
    _count_free(b, f, k, mt)
    list_push_tail(b, k * N_MT + mt, f)


@inline_kernel
def _move_tail(b, f, k, mt):
    """move_to_free_list(): the free block at f (order k) to the tail of list (k, mt)
    (list_move_tail), so that the blocks a steal moves are the last of their new list."""
    _del(b, f)
    add_free_tail(b, f, k, mt)


@inline_kernel
def _del(b, f):
    k = b.blk[f]
    li = k * N_MT + b.mt[f]
    b.blk[f] = NIL
    b.nr_free[k] -= 1
    b.nr_free_mt[li] -= 1
    list_unlink(b, li, f)


@callee_kernel
def account(b, f, n, mt, sign):
    """Allocated frames per pageblock and migratetype, and the polluted-block count, for
    the n frames from f taken (sign 1) or given back (-1) as migratetype mt."""
    x = f
    while x < f + n:
        pb = x >> PAGEBLOCK_ORDER
        span = min(PAGEBLOCK_FRAMES - (x & (PAGEBLOCK_FRAMES - 1)), f + n - x)
        i = pb * N_MT + mt
        before = b.pb_alloc[i]
        b.pb_alloc[i] = before + sign * span
        if mt == MT_UNMOVABLE:
            if before == 0 and b.pb_alloc[i] > 0:
                b.meta[M_POLLUTED] += 1
            elif before > 0 and b.pb_alloc[i] == 0:
                b.meta[M_POLLUTED] -= 1
        x += span


@callee_kernel
def _smallest(b, k, mt):
    for j in range(k, N_ORDERS):
        f = b.head[j * N_MT + mt]
        if f != NIL:
            _del(b, f)
            while j > k:  # expand(): upper halves to the request's lists
                j -= 1
                add_free(b, f + (1 << j), j, mt)
            return f
    return NIL


@inline_kernel
def _can_steal(order, mt):
    return order >= PAGEBLOCK_ORDER or order >= PAGEBLOCK_ORDER // 2 or mt != MT_MOVABLE


@callee_kernel
def _find_fallback(b, first, stop, step, mt):
    """(order, fallback type) of the first free fallback block over orders
    range(first, stop, step), types in the kernel's fallback order; (-1, -1) if none."""
    for cur in range(first, stop, step):
        for i in range(2):
            t = FALLBACKS[mt, i]
            if b.head[cur * N_MT + t] != NIL:
                return cur, t
    return -1, -1


@callee_kernel
def _fallback(b, k, mt):
    """__rmqueue_fallback: move a fallback block (and maybe its pageblock) to mt's lists."""
    found, fb = _find_fallback(b, N_ORDERS - 1, k - 1, -1, mt)  # the largest
    if found < 0:
        return False
    can_steal = _can_steal(found, mt)
    if not can_steal and mt == MT_MOVABLE and found > k:
        found, fb = _find_fallback(b, k, N_ORDERS, 1, mt)  # find_smallest
        can_steal = _can_steal(found, mt)
    page = b.head[found * N_MT + fb]
    b.meta[M_FALLBACKS] += 1
    b.meta[M_FALLBACK_BY + mt * N_MT + fb] += 1
    pb = page >> PAGEBLOCK_ORDER
    old = b.pb_type[pb]
    if found >= PAGEBLOCK_ORDER:  # take ownership of every pageblock of the block
        for q in range(pb, pb + (1 << (found - PAGEBLOCK_ORDER))):
            if b.pb_type[q] != mt:
                b.pb_type[q] = mt
                b.meta[M_STEALS] += 1
        _move_tail(b, page, found, mt)
        return True
    start = pb << PAGEBLOCK_ORDER
    # move_freepages_block() refuses a pageblock that reaches past the end of the zone
    # (!zone_spans_pfn(zone, end_pfn)): then only the block moves, the label stays
    if not can_steal or start + PAGEBLOCK_FRAMES > b.meta[M_FRAMES]:
        _move_tail(b, page, found, mt)
        return True
    # move_freepages_block: every free block of the pageblock, ascending, each to the tail
    free_pages = 0
    x = start
    while x < start + PAGEBLOCK_FRAMES:
        o = b.blk[x]
        if o >= 0:
            _move_tail(b, x, o, mt)
            free_pages += 1 << o
            x += 1 << o
        else:
            x += 1
    movable = b.pb_alloc[pb * N_MT + MT_MOVABLE]
    if mt == MT_MOVABLE:
        alike = movable
    elif old == MT_MOVABLE:
        alike = PAGEBLOCK_FRAMES - (free_pages + movable)
    else:
        alike = 0
    if free_pages + alike >= PAGEBLOCK_FRAMES // 2 and old != mt:
        b.pb_type[pb] = mt
        b.meta[M_STEALS] += 1
    return True


@callee_kernel
def mobility_alloc(b, k, mt):
    f = _smallest(b, k, mt)
    if f == NIL:
        if not _fallback(b, k, mt):
            return NIL
        f = _smallest(b, k, mt)
    b.mt[f] = mt  # the block head remembers how it was allocated
    account(b, f, 1 << k, mt, 1)
    note_allocated(b, f, k)
    return f


@callee_kernel
def mobility_free(b, frame, k):
    account(b, frame, 1 << k, b.mt[frame], -1)
    b.meta[M_FREE_PAGES] += 1 << k
    mt = b.pb_type[frame >> PAGEBLOCK_ORDER]  # the pageblock's type at free time
    n = b.meta[M_FRAMES]
    while k < N_ORDERS - 1:
        buddy = frame ^ (1 << k)
        if buddy >= n or b.blk[buddy] != k:
            break
        _del(b, buddy)
        frame = min(frame, buddy)
        k += 1
    if _buddy_merge_likely(b, frame, k, n):
        add_free_tail(b, frame, k, mt)
    else:
        add_free(b, frame, k, mt)


@inline_kernel
def _buddy_merge_likely(b, frame, k, n):
    """buddy_merge_likely(): a block of order k below MERGE_LIKELY_MAX_ORDER whose
    order-(k+1) parent has a free order-(k+1) buddy goes to the tail of its list -- its own
    buddy may be freed soon, and the four would then merge into an order-(k+2) block, so
    it is better left unallocated for a while."""
    if k >= MERGE_LIKELY_MAX_ORDER:
        return False
    parent = frame & ~(1 << k)  # buddy_pfn & pfn: the order-(k+1) block holding this one
    parent_buddy = parent ^ (1 << (k + 1))
    return parent_buddy < n and b.blk[parent_buddy] == k + 1
