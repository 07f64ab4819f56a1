"""Akaros's page allocator as it was at commit ddb9fa78 (April 2015), in compiled code.

Not a buddy allocator (Akaros's `kern/src/page_alloc.c`: `get_cont_pages`,
`free_cont_pages`, `page_release`; docs/sources.md):

* Single frames live on one LIFO free list (`LIST_INSERT_HEAD` on free). At boot the
  frames are inserted in ascending order, so the highest frame is at the head.
* `get_cont_pages(order)` for order >= 1 scans *downward* for 2^order consecutive free
  frames, with no alignment: windows of 2^k frames, the first ending at the highest
  frame. Each window is tested from its top frame down; at the first busy frame j the
  original loop sets i = j - 1 and then its own i-- runs, so the next window tried ends
  at j - 2 (the window ending at j - 1 is never tried). The first window found all free
  is taken and its frames leave the list.
* `free_cont_pages` frees the frames one by one in ascending order (each pushed on the
  head); there is no merging.

The scan cost is the allocator pressure Akaros really had: `frames_scanned` counts every
frame tested by order >= 1 scans.

State: the allocator reuses the BuddyState arrays -- `blk[f]` is 0 for a free frame and
-1 for a busy one, `nxt`/`prv`/`head[0]` the LIFO list -- so the machine's other parts
need not know which allocator they use.
"""

from __future__ import annotations

import numpy as np

from ptpair.sim.buddy import N_ORDERS, note_allocated
from ptpair.sim.freelist import NIL, list_push, list_unlink
from ptpair.sim.slots import M_FREE_PAGES, M_MEM_END, M_SCANNED, M_SCAN_ALLOCS
from ptpair.traces._jit import inline_kernel, kernel
from ptpair.traces.freemap import carve_free



@inline_kernel
def akaros_push(b, f):
    list_push(b, 0, f)
    b.blk[f] = 0


@inline_kernel
def _unlink(b, f):
    list_unlink(b, 0, f)
    b.blk[f] = -1


@kernel
def akaros_alloc(b, k):
    """First frame of 2^k frames taken, or -1."""
    n = 1 << k
    if k == 0:
        f = b.head[0]
        if f == NIL:
            return NIL
        _unlink(b, f)
        start = f
    else:
        b.meta[M_SCAN_ALLOCS] += 1
        i = b.meta[M_MEM_END] - 1  # top frame of the window tried (holes ending memory: not scanned)
        start = NIL
        while i - n + 1 >= 0:
            j = i
            while j > i - n:
                b.meta[M_SCANNED] += 1
                if b.blk[j] < 0:
                    break
                j -= 1
            if j == i - n:  # all 2^k frames free
                start = i - n + 1
                break
            i = j - 2  # the original loop's skip: the window ending at j - 1 is never tried
        if start == NIL:
            return NIL
        for f in range(start, start + n):
            _unlink(b, f)
    note_allocated(b, start, k)
    return start


@kernel
def akaros_free(b, frame, k):
    """Free 2^k frames one by one, ascending, each pushed on the head."""
    for f in range(frame, frame + (1 << k)):
        akaros_push(b, f)
    b.meta[M_FREE_PAGES] += 1 << k


@kernel
def free_runs(free_mask, out):
    """Lengths of the maximal runs of free frames, written to out; returns their count."""
    n = len(free_mask)
    m = 0
    x = 0
    while x < n:
        if free_mask[x]:
            end = x
            while end < n and free_mask[end]:
                end += 1
            out[m] = end - x
            m += 1
            x = end
        else:
            x += 1
    return m


def buddyinfo_of_free_set(free_mask: np.ndarray) -> np.ndarray:
    """Free blocks per order 0..10 of a free set (traces/freemap.py: carve_free)."""
    out = np.zeros(N_ORDERS, np.int64)
    carve_free(free_mask, out)
    return out


def run_lengths(free_mask: np.ndarray) -> np.ndarray:
    out = np.zeros(max(len(free_mask) // 2 + 1, 1), np.int64)
    m = free_runs(free_mask, out)
    return out[:m]
