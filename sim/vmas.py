"""The virtual memory areas (VMAs) of every simulated process, in compiled code.

Only `--reclaim linux` needs them: Linux frees page tables at munmap only where no
neighbouring VMA can still use them (free_pgtables' floor and ceiling, sim/pagetable.py
`free_pgd_range`), and MADV_DONTNEED reclaims a PTE table only inside one VMA. A
process's VMAs are a sorted run of disjoint, non-touching ranges of 4-KiB page numbers
[start, end) in one block of the pool `v_s`/`v_e`: touching ranges are merged, as Linux
merges adjacent anonymous mappings with equal flags (vma_merge_new_range; a trace
carries no flags, so ptpair merges every touching pair).

Blocks come in size classes of VMA_MIN_BLOCK << c ranges, carved from the top of the
pool (`meta[T_V_TOP]`) or reused from a free list per class linked through `v_s`. The
pool never grows inside an event: the event loop asks `vma_room` first and hands
control back to Python (STATUS_GROW) when a block must come from a full pool.
"""

from __future__ import annotations

import numpy as np

from ptpair.traces._jit import inline_kernel, kernel

VMA_MIN_BLOCK = 16  # ranges in a process's first block
VMA_CLASSES = 40  # size classes: blocks of up to VMA_MIN_BLOCK << 39 ranges


def new_vma_arrays(n_procs: int, pool: int = 1024) -> dict:
    """The VMA fields of the page-table state (sim/pagetable.Tables)."""
    return dict(
        v_s=np.zeros(pool, np.int64), v_e=np.zeros(pool, np.int64),
        v_free=np.full(VMA_CLASSES, -1, np.int64),  # per class: first free block, -1 none
        p_voff=np.zeros(n_procs, np.int64), p_vcap=np.zeros(n_procs, np.int64),
        p_vcnt=np.zeros(n_procs, np.int64),
    )


@inline_kernel
def _class(size):
    c = 0
    while (VMA_MIN_BLOCK << c) < size:
        c += 1
    return c


@inline_kernel
def vma_room(t, p, n):
    """Pool ranges that must be carved at `top` to give process p a block of at least
    `n` ranges (0: p's block, or a free block of the class, will do)."""
    if t.p_vcap[p] >= n:
        return 0
    c = _class(n)
    if t.v_free[c] >= 0:
        return 0
    return VMA_MIN_BLOCK << c


@kernel
def vma_reserve_block(t, meta, top_slot, p, n):
    """Give process p a block of at least n ranges, keeping its ranges (vma_room said
    there is room). `meta[top_slot]` is the pool's top."""
    if t.p_vcap[p] >= n:
        return
    c = _class(n)
    cap = VMA_MIN_BLOCK << c
    at = t.v_free[c]
    if at >= 0:
        t.v_free[c] = t.v_s[at]
    else:
        at = meta[top_slot]
        meta[top_slot] = at + cap
    old, cnt = t.p_voff[p], t.p_vcnt[p]
    for j in range(cnt):
        t.v_s[at + j] = t.v_s[old + j]
        t.v_e[at + j] = t.v_e[old + j]
    vma_free_block(t, p)
    t.p_voff[p] = at
    t.p_vcap[p] = cap
    t.p_vcnt[p] = cnt


@inline_kernel
def vma_free_block(t, p):
    """Return p's block (if any) to its class's free list; p has no VMAs after."""
    cap = t.p_vcap[p]
    if cap > 0:
        c = _class(cap)
        at = t.p_voff[p]
        t.v_s[at] = t.v_free[c]
        t.v_free[c] = at
    t.p_vcap[p] = 0
    t.p_vcnt[p] = 0


@inline_kernel
def vma_first_end_after(t, p, x):
    """Index of p's first range whose end is > x (the first that overlaps or follows x)."""
    off = t.p_voff[p]
    lo, hi = 0, t.p_vcnt[p]
    while lo < hi:
        mid = (lo + hi) // 2
        if t.v_e[off + mid] <= x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@inline_kernel
def _shift(t, off, a, n, d):
    """Move ranges [a, n) of the block at off by d places (a memmove)."""
    if d > 0:
        for j in range(n - 1, a - 1, -1):
            t.v_s[off + j + d] = t.v_s[off + j]
            t.v_e[off + j + d] = t.v_e[off + j]
    elif d < 0:
        for j in range(a, n):
            t.v_s[off + j + d] = t.v_s[off + j]
            t.v_e[off + j + d] = t.v_e[off + j]


@kernel
def vma_remove(t, p, lo, hi):
    """Remove [lo, hi) from p's VMAs (a range covering it in part is cut; one strictly
    inside it is split in two: the block needs one spare place)."""
    off, n = t.p_voff[p], t.p_vcnt[p]
    a = vma_first_end_after(t, p, lo)
    b = a
    while b < n and t.v_s[off + b] < hi:
        b += 1
    if a == b:
        return
    s0, e1 = t.v_s[off + a], t.v_e[off + b - 1]
    k = 0  # pieces kept: [s0, lo) and [hi, e1)
    if s0 < lo:
        k += 1
    if e1 > hi:
        k += 1
    _shift(t, off, b, n, k - (b - a))
    j = off + a
    if s0 < lo:
        t.v_s[j], t.v_e[j] = s0, lo
        j += 1
    if e1 > hi:
        t.v_s[j], t.v_e[j] = hi, e1
    t.p_vcnt[p] = n + k - (b - a)


@kernel
def vma_add(t, p, lo, hi):
    """Add [lo, hi) to p's VMAs, merged with every range it overlaps or touches (the
    block needs one spare place)."""
    off, n = t.p_voff[p], t.p_vcnt[p]
    a = vma_first_end_after(t, p, lo - 1)  # the first range ending at or after lo
    b = a
    while b < n and t.v_s[off + b] <= hi:
        b += 1
    if b > a:
        lo = min(lo, t.v_s[off + a])
        hi = max(hi, t.v_e[off + b - 1])
    _shift(t, off, b, n, 1 - (b - a))
    t.v_s[off + a], t.v_e[off + a] = lo, hi
    t.p_vcnt[p] = n + 1 - (b - a)


@kernel
def vma_copy(t, child, parent):
    """The child's VMAs become a copy of the parent's (fork; the child's block holds them)."""
    src, dst = t.p_voff[parent], t.p_voff[child]
    for j in range(t.p_vcnt[parent]):
        t.v_s[dst + j] = t.v_s[src + j]
        t.v_e[dst + j] = t.v_e[src + j]
    t.p_vcnt[child] = t.p_vcnt[parent]
