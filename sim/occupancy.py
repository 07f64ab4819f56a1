"""Who holds each frame, whatever the allocator: the pressure metrics of docs/analysis.md.

Every allocation and free of the machine passes through sim/allocator.py's `page_alloc`
and `page_free`, which record here, for the block they hand out or take back:

* `own[head]`: the owner class of the block (OWN_*), so that a free knows what it frees;
* `am`, `um`: a bit per frame, allocated and unmovable (bits past the end of memory are
  set in `um`, so no window reaches outside memory);
* `pb_used`, `pb_unmov`: per 2 MiB block (512 frames), the frames allocated and the
  unmovable ones by class (page tables, unmovable kallocs, background); `pb_hole`, its
  frames that are not memory (an initial state's holes).

Background and hole frames (sim/boot.py) are marked in the bitmaps a word at a time and
get no `own` of their own (they are never freed, and `own` is read only by a free; a warm-up's
frames forgotten into background keep their stale heads; writing a byte per frame would cost the boot of
a large map more than its replay): background frames are set in `am` and `um` and are
the allocated frames nothing else holds; holes are set in `um` only -- no window reaches
them, and they cost nothing. sim/check.py finds both so.

From these, at a failed request of order k, `compaction_cost` finds the cheapest aligned
2^k-frame window holding no unmovable frame -- the allocated frames direct compaction
would have to migrate to make the request succeed -- or -1 where no such window exists
(the failure is hopeless). Failures come in storms against an unchanged memory (every
page of a map that cannot be served), so the answer is cached per order until the next
allocation or free. `hugepage_blocks` classifies the 2 MiB blocks for huge-page
availability. Frames are 4 KiB; the accounting costs a few bit operations per request.
"""

import numpy as np

from ptpair.sim import counters as C
from ptpair.sim.slots import (
    M_BACKGROUND, M_CC_COST, M_CC_VERSION, M_FRAMES, M_HOLES, M_MEM_END, M_VERSION, N_HUGE
)
from ptpair.traces._jit import callee_kernel, inline_kernel, kernel

# owner classes; the unmovable ones are those >= OWN_TABLE, in the order of HUGE_CLASSES
OWN_DATA = 0  # a data frame of a process (movable)
OWN_KALLOC_MOVABLE = 1  # a kernel allocation whose migratetype is movable
OWN_TABLE = 2  # a page-table frame: KPT or EPT, root or not
OWN_KALLOC = 3  # any other kernel allocation (unmovable or reclaimable)
OWN_BACKGROUND = 4  # frames held by the initial state for the whole replay (sim/boot.py)
N_UNMOVABLE = 3  # table, kalloc, background: pb_unmov[pb * N_UNMOVABLE + own - OWN_TABLE]

PB_SHIFT = 9  # a 2 MiB block: 512 frames (x86-64 pageblock_order)
WORD_SHIFT = 6  # 64 frames per bitmap word


# hugepage_blocks: the order of its 6 outputs
HUGE_FREE = 0
HUGE_MOVABLE_ONLY = 1
HUGE_WASTED_EPT = 2
HUGE_CLASS0 = 3  # + own - OWN_TABLE: page_tables, kalloc, background
HUGE_NAMES = ("free", "movable_only", "wasted_ept", "page_tables", "kalloc", "background")
assert len(HUGE_NAMES) == N_HUGE

_ONE = np.uint64(1)
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)
_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)


def new_occupancy(n_frames: int) -> dict:
    """The occupancy arrays of a memory of `n_frames` frames, all free."""
    words = (n_frames + 63) >> WORD_SHIFT
    um = np.zeros(words, np.uint64)
    if n_frames & 63:  # past the end: never part of a window
        um[-1] = _ALL << np.uint64(n_frames & 63)
    n_pb = (n_frames + (1 << PB_SHIFT) - 1) >> PB_SHIFT
    return dict(own=np.zeros(n_frames, np.int8), am=np.zeros(words, np.uint64), um=um,
                pb_used=np.zeros(n_pb, np.int32), pb_unmov=np.zeros(n_pb * N_UNMOVABLE, np.int32),
                pb_hole=np.zeros(n_pb, np.int32))


@inline_kernel
def popcount(x):
    """Set bits of a uint64 (the SWAR count; numba has no popcount intrinsic)."""
    x = x - ((x >> _ONE) & _M1)
    x = (x & _M2) + ((x >> np.uint64(2)) & _M2)
    x = (x + (x >> np.uint64(4))) & _M4
    return np.int64((x * _H01) >> np.uint64(56))


@inline_kernel
def _set_bits(bm, f, k, on):
    """Set (on) or clear the bits of frames [f, f + 2^k); the block is aligned."""
    if k >= WORD_SHIFT:
        w = f >> WORD_SHIFT
        for i in range(w, w + (1 << (k - WORD_SHIFT))):
            bm[i] = _ALL if on else np.uint64(0)
    else:
        mask = ((_ONE << np.uint64(1 << k)) - _ONE) << np.uint64(f & 63)
        if on:
            bm[f >> WORD_SHIFT] |= mask
        else:
            bm[f >> WORD_SHIFT] &= ~mask


@inline_kernel
def occupy(b, f, k, own):
    """Frames [f, f + 2^k) were allocated to an owner of class `own`."""
    b.meta[M_VERSION] += 1
    b.own[f] = own
    if k <= PB_SHIFT and f & ((1 << k) - 1) == 0:
        # the hot case: an aligned block inside one 2 MiB block (every buddy allocation
        # but an order-10 one)
        _set_bits(b.am, f, k, True)
        pb = f >> PB_SHIFT
        b.pb_used[pb] += 1 << k
        if own >= OWN_TABLE:
            _set_bits(b.um, f, k, True)
            b.pb_unmov[pb * N_UNMOVABLE + own - OWN_TABLE] += 1 << k
    else:
        _occupy_slow(b, f, k, own, True)


@inline_kernel
def release(b, f, k):
    """Frames [f, f + 2^k), allocated by `occupy`, are free again."""
    b.meta[M_VERSION] += 1
    own = b.own[f]
    if k <= PB_SHIFT and f & ((1 << k) - 1) == 0:
        _set_bits(b.am, f, k, False)
        pb = f >> PB_SHIFT
        b.pb_used[pb] -= 1 << k
        if own >= OWN_TABLE:
            _set_bits(b.um, f, k, False)
            b.pb_unmov[pb * N_UNMOVABLE + own - OWN_TABLE] -= 1 << k
    else:
        _occupy_slow(b, f, k, own, False)


@callee_kernel
def _occupy_slow(b, f, k, own, on):
    """occupy (on) or release a block that is unaligned (the Akaros allocator) or spans
    2 MiB blocks (order 10): frame by frame."""
    sign = 1 if on else -1
    for x in range(f, f + (1 << k)):
        bit = _ONE << np.uint64(x & 63)
        if on:
            b.am[x >> WORD_SHIFT] |= bit
            if own >= OWN_TABLE:
                b.um[x >> WORD_SHIFT] |= bit
        else:
            b.am[x >> WORD_SHIFT] &= ~bit
            if own >= OWN_TABLE:
                b.um[x >> WORD_SHIFT] &= ~bit
        pb = x >> PB_SHIFT
        b.pb_used[pb] += sign
        if own >= OWN_TABLE:
            b.pb_unmov[pb * N_UNMOVABLE + own - OWN_TABLE] += sign


@callee_kernel
def _set_range(bm, f, n):
    """Set the bits of frames [f, f + n): bit by bit at the ragged ends, whole words
    between (boot marks millions of frames; the word loop compiles to a memset)."""
    end = f + n
    w0 = (f + 63) >> WORD_SHIFT  # the first whole word
    w1 = end >> WORD_SHIFT  # one past the last whole word
    if w0 >= w1:  # no whole word: bit by bit
        for x in range(f, end):
            bm[x >> WORD_SHIFT] |= _ONE << np.uint64(x & 63)
        return
    for x in range(f, w0 << WORD_SHIFT):
        bm[x >> WORD_SHIFT] |= _ONE << np.uint64(x & 63)
    for w in range(w0, w1):
        bm[w] = _ALL
    for x in range(w1 << WORD_SHIFT, end):
        bm[x >> WORD_SHIFT] |= _ONE << np.uint64(x & 63)


@callee_kernel
def _per_block(counts, stride, offset, f, n):
    """Add to counts[pb * stride + offset] the frames of [f, f + n) in each 2 MiB block pb."""
    x = f
    while x < f + n:
        pb = x >> PB_SHIFT
        span = min(((pb + 1) << PB_SHIFT), f + n) - x
        counts[pb * stride + offset] += span
        x += span


@callee_kernel
def occupy_background(b, f, n):
    """Frames [f, f + n) belong to the background owner (boot, never freed)."""
    b.meta[M_VERSION] += 1
    b.meta[M_BACKGROUND] += n
    _set_range(b.am, f, n)
    _set_range(b.um, f, n)
    _per_block(b.pb_used, 1, 0, f, n)
    _per_block(b.pb_unmov, N_UNMOVABLE, OWN_BACKGROUND - OWN_TABLE, f, n)


@callee_kernel
def mark_hole(b, f, n):
    """Frames [f, f + n) are not memory: in no window, in no 2 MiB block counted. Holes
    that end memory only move its end (M_MEM_END): the window and 2 MiB block scans stop
    there, so a map's unpopulated tail costs nothing (only its first word is marked, for
    the windows that would reach into it)."""
    b.meta[M_VERSION] += 1
    b.meta[M_HOLES] += n
    if f + n == b.meta[M_FRAMES]:
        b.meta[M_MEM_END] = f
        n = min(n, 64 - (f & 63)) if f & 63 else 0
    _set_range(b.um, f, n)
    _per_block(b.pb_hole, 1, 0, f, n)


@callee_kernel
def _window_cost(b, k):
    """The fewest allocated frames in an aligned 2^k-frame window without an unmovable
    frame, or -1 if every window holds one."""
    best = -1
    words = (b.meta[M_MEM_END] + 63) >> WORD_SHIFT
    if k >= WORD_SHIFT:
        span = 1 << (k - WORD_SHIFT)
        for w0 in range(0, words - span + 1, span):
            cost = 0
            for w in range(w0, w0 + span):
                if b.um[w] != 0:
                    cost = -1
                    break
                cost += popcount(b.am[w])
            if cost >= 0 and (best < 0 or cost < best):
                best = cost
                if best == 0:
                    return 0
        return best
    size = 1 << k
    base = (_ONE << np.uint64(size)) - _ONE
    for w in range(words):
        u = b.um[w]
        if u == _ALL:
            continue
        a = b.am[w]
        for i in range(0, 64, size):
            mask = base << np.uint64(i)
            if u & mask:
                continue
            cost = popcount(a & mask)
            if best < 0 or cost < best:
                best = cost
                if best == 0:
                    return 0
    return best


@kernel
def compaction_cost(b, k):
    """`_window_cost(b, k)`, cached until the next allocation or free."""
    if b.meta[M_CC_VERSION + k] != b.meta[M_VERSION]:
        b.meta[M_CC_COST + k] = _window_cost(b, k)
        b.meta[M_CC_VERSION + k] = b.meta[M_VERSION]
    return b.meta[M_CC_COST + k]


@callee_kernel
def count_failures(b, ctr, k, n):
    """`n` requests of order k failed against the present memory: count them, with what
    compaction would have had to migrate for each (or as hopeless)."""
    ctr[C.FAIL + k] += n
    cost = compaction_cost(b, k)
    if cost < 0:
        ctr[C.HOPELESS + k] += n
    else:
        ctr[C.COMPACT + k] += n * cost


@kernel
def hugepage_blocks(b, pb_wasted, out, off):
    """Classify every 2 MiB block lying wholly inside memory (no hole, not cut by the end)
    into out[off:off + N_HUGE]
    (HUGE_*): free, holding only movable frames, or blocked -- by wasted EPT frames alone,
    else by the class (page tables other than wasted EPT, kalloc, background) holding most
    of its unmovable frames, a tie going to the class listed later. `pb_wasted`: wasted
    EPT frames per block (sim/pagetable.py)."""
    for i in range(N_HUGE):
        out[off + i] = 0
    for pb in range(b.meta[M_MEM_END] >> PB_SHIFT):
        if b.pb_hole[pb] != 0:
            continue
        if b.pb_used[pb] == 0:
            out[off + HUGE_FREE] += 1
            continue
        tables = b.pb_unmov[pb * N_UNMOVABLE]
        total = tables + b.pb_unmov[pb * N_UNMOVABLE + 1] + b.pb_unmov[pb * N_UNMOVABLE + 2]
        if total == 0:
            out[off + HUGE_MOVABLE_ONLY] += 1
            continue
        wasted = pb_wasted[pb]
        if wasted == total:
            out[off + HUGE_WASTED_EPT] += 1
            continue
        cls = 0
        most = tables - wasted
        for c in range(1, N_UNMOVABLE):
            if b.pb_unmov[pb * N_UNMOVABLE + c] >= most:
                cls = c
                most = b.pb_unmov[pb * N_UNMOVABLE + c]
        out[off + HUGE_CLASS0 + cls] += 1
