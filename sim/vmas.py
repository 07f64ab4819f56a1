"""The virtual memory areas (VMAs) of every simulated process, in compiled code.

Only `--reclaim linux` needs them: Linux frees page tables at munmap only where no
neighbouring VMA can still use them (free_pgtables' floor and ceiling, sim/pagetable.py
`free_pgd_range`), and MADV_DONTNEED reclaims a PTE table only inside one VMA. A
process's VMAs are a sorted run of disjoint, non-touching ranges of 4-KiB page numbers
[start, end) in one block of the pool `Tables.vmas` (`s`/`e`): touching ranges are merged, as Linux
merges adjacent anonymous mappings with equal flags (vma_merge_new_range; a trace
carries no flags, so ptpair merges every touching pair).

Blocks come in size classes of VMA_MIN_BLOCK << c ranges, carved from the top of the
pool (`meta[T_V_TOP]`) or reused from a free list per class linked through `s`. The
pool never grows inside an event: the event loop asks `vma_room` first and hands
control back to Python (STATUS_GROW) when a block must come from a full pool.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from ptpair.traces._blockpool import give_back, size_class, take_freed
from ptpair.traces._jit import callee_kernel, inline_kernel

VMA_MIN_BLOCK = 16  # ranges in a process's first block
VMA_CLASSES = 40  # size classes: blocks of up to VMA_MIN_BLOCK << 39 ranges


# The pool of ranges (s, e: start and end page numbers; free: per class, the first free
# block, -1 none) and, per process, its block (off, cap: offset and capacity in ranges)
# and the ranges it holds (cnt). `Tables.vmas`.
Vmas = namedtuple("Vmas", "s e free off cap cnt")


def new_vmas(n_procs: int, pool: int = 1024) -> Vmas:
    """No process has VMAs; a pool of `pool` ranges (0 where no rule reads VMAs)."""
    return Vmas(s=np.zeros(pool, np.int64), e=np.zeros(pool, np.int64), free=np.full(VMA_CLASSES, -1, np.int64),
                off=np.zeros(n_procs, np.int64), cap=np.zeros(n_procs, np.int64), cnt=np.zeros(n_procs, np.int64))


@inline_kernel
def vma_room(t, p, n):
    """Pool ranges that must be carved at `top` to give process p a block of at least
    `n` ranges (0: p's block, or a free block of the class, will do)."""
    if t.vmas.cap[p] >= n:
        return 0
    c = size_class(VMA_MIN_BLOCK, n)
    if t.vmas.free[c] >= 0:
        return 0
    return VMA_MIN_BLOCK << c


@callee_kernel
def vma_reserve_block(t, meta, top_slot, p, n):
    """Give process p a block of at least n ranges, keeping its ranges (vma_room said
    there is room). `meta[top_slot]` is the pool's top."""
    if t.vmas.cap[p] >= n:
        return
    c = size_class(VMA_MIN_BLOCK, n)
    cap = VMA_MIN_BLOCK << c
    at = take_freed(t.vmas.s, t.vmas.free, c)
    if at < 0:
        at = meta[top_slot]
        meta[top_slot] = at + cap
    old, cnt = t.vmas.off[p], t.vmas.cnt[p]
    for j in range(cnt):
        t.vmas.s[at + j] = t.vmas.s[old + j]
        t.vmas.e[at + j] = t.vmas.e[old + j]
    vma_free_block(t, p)
    t.vmas.off[p] = at
    t.vmas.cap[p] = cap
    t.vmas.cnt[p] = cnt


@inline_kernel
def vma_free_block(t, p):
    """Return p's block (if any) to its class's free list; p has no VMAs after."""
    if t.vmas.cap[p] > 0:
        give_back(t.vmas.s, t.vmas.free, VMA_MIN_BLOCK, t.vmas.off[p], t.vmas.cap[p])
    t.vmas.cap[p] = 0
    t.vmas.cnt[p] = 0


@inline_kernel
def vma_first_end_after(t, p, x):
    """Index of p's first range whose end is > x (the first that overlaps or follows x)."""
    off = t.vmas.off[p]
    lo, hi = 0, t.vmas.cnt[p]
    while lo < hi:
        mid = (lo + hi) // 2
        if t.vmas.e[off + mid] <= x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@inline_kernel
def _shift(t, off, a, n, d):
    """Move ranges [a, n) of the block at off by d places (a memmove)."""
    if d > 0:
        for j in range(n - 1, a - 1, -1):
            t.vmas.s[off + j + d] = t.vmas.s[off + j]
            t.vmas.e[off + j + d] = t.vmas.e[off + j]
    elif d < 0:
        for j in range(a, n):
            t.vmas.s[off + j + d] = t.vmas.s[off + j]
            t.vmas.e[off + j + d] = t.vmas.e[off + j]


@callee_kernel
def vma_remove(t, p, lo, hi):
    """Remove [lo, hi) from p's VMAs (a range covering it in part is cut; one strictly
    inside it is split in two: the block needs one spare place)."""
    off, n = t.vmas.off[p], t.vmas.cnt[p]
    a = vma_first_end_after(t, p, lo)
    b = a
    while b < n and t.vmas.s[off + b] < hi:
        b += 1
    if a == b:
        return
    s0, e1 = t.vmas.s[off + a], t.vmas.e[off + b - 1]
    k = 0  # pieces kept: [s0, lo) and [hi, e1)
    if s0 < lo:
        k += 1
    if e1 > hi:
        k += 1
    _shift(t, off, b, n, k - (b - a))
    j = off + a
    if s0 < lo:
        t.vmas.s[j], t.vmas.e[j] = s0, lo
        j += 1
    if e1 > hi:
        t.vmas.s[j], t.vmas.e[j] = hi, e1
    t.vmas.cnt[p] = n + k - (b - a)


@callee_kernel
def vma_add(t, p, lo, hi):
    """Add [lo, hi) to p's VMAs, merged with every range it overlaps or touches (the
    block needs one spare place)."""
    off, n = t.vmas.off[p], t.vmas.cnt[p]
    a = vma_first_end_after(t, p, lo - 1)  # the first range ending at or after lo
    b = a
    while b < n and t.vmas.s[off + b] <= hi:
        b += 1
    if b > a:
        lo = min(lo, t.vmas.s[off + a])
        hi = max(hi, t.vmas.e[off + b - 1])
    _shift(t, off, b, n, 1 - (b - a))
    t.vmas.s[off + a], t.vmas.e[off + a] = lo, hi
    t.vmas.cnt[p] = n + 1 - (b - a)


@callee_kernel
def vma_copy(t, child, parent):
    """The child's VMAs become a copy of the parent's (fork; the child's block holds them)."""
    src, dst = t.vmas.off[parent], t.vmas.off[child]
    for j in range(t.vmas.cnt[parent]):
        t.vmas.s[dst + j] = t.vmas.s[src + j]
        t.vmas.e[dst + j] = t.vmas.e[src + j]
    t.vmas.cnt[child] = t.vmas.cnt[parent]
