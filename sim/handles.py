"""Kernel-allocation handles: the table from a trace's kalloc handle to the block it holds.

A trace names each `kalloc` by a handle (any integer; a pfn in real kernel traces). The
table maps live handles -- and handles whose kalloc failed, until their kfree -- to the
block they hold. Its size follows the number of live handles, not the number of distinct
handles a long trace uses, so replay memory does not grow with the trace. It is the one
open-addressing table of ptpair's compiled code (traces/_hashtable.py), with the block
(first frame, order) and the handle's state as values; the event loop keeps it at most
half full and hands back to Python to grow it (`grown`).
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from ptpair.traces import _hashtable as ht
from ptpair.traces._jit import inline_kernel, kernel

# key, used: the hash table; per bucket, the block (frame: its first frame, order) and the
# handle's state (pagetable.H_LIVE, H_FAILED; 0 in an empty bucket)
Handles = namedtuple("Handles", "key used frame order state")


def new_handles(cap: int) -> Handles:
    """An empty table of `cap` buckets (a power of two)."""
    assert cap & (cap - 1) == 0, "capacity must be a power of two"
    return Handles(key=np.zeros(cap, np.int64), used=np.zeros(cap, np.int8), frame=np.full(cap, -1, np.int32),
                   order=np.zeros(cap, np.int8), state=np.zeros(cap, np.int8))


@inline_kernel
def h_find(hs, key):
    """Bucket of `key`, or -1."""
    return ht.find(hs.key, hs.used, key)


@inline_kernel
def h_insert(hs, key):
    """Bucket for a new `key` (not present; the table has room)."""
    return ht.insert(hs.key, hs.used, key)


@inline_kernel
def _copy(dst, i, src, j):
    """The values of bucket j of table src into bucket i of dst."""
    dst.frame[i] = src.frame[j]
    dst.order[i] = src.order[j]
    dst.state[i] = src.state[j]


@inline_kernel
def h_delete(hs, i):
    """Empty bucket i (the later entries of its probe run move back: no tombstones).
    Inlined: a kfree is as hot as a kalloc in an allocator trace."""
    while True:
        j = ht.refill_from(hs.key, hs.used, i)
        if j < 0:
            break
        _copy(hs, i, hs, j)
        i = j
    hs.used[i] = 0
    hs.state[i] = 0


@kernel
def _rehash(old, hs):
    for j in range(len(old.key)):
        if old.used[j]:
            i = h_insert(hs, old.key[j])
            _copy(hs, i, old, j)


def grown(hs: Handles, cap: int) -> Handles:
    """A table of `cap` buckets holding the entries of `hs`."""
    new = new_handles(cap)
    _rehash(hs, new)
    return new
