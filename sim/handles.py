"""Kernel-allocation handles: an open-addressing hash table in compiled code.

A trace names each `kalloc` by a handle (any integer; a pfn in real kernel traces). The
table maps live handles -- and handles whose kalloc failed, until their kfree -- to the
block they hold. Its size follows the number of live handles, not the number of distinct
handles a long trace uses, so replay memory does not grow with the trace. Linear probing
with backward-shift deletion (no tombstones); the capacity is a power of two and is kept
at least twice the number of entries: the event loop hands back to Python to grow it.
"""

from __future__ import annotations

import numpy as np

from ptpair.traces._jit import inline_kernel, kernel

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing


def new_handle_arrays(cap: int) -> dict:
    assert cap & (cap - 1) == 0, "capacity must be a power of two"
    return dict(h_key=np.zeros(cap, np.int64), h_used=np.zeros(cap, np.int8), h_frame=np.full(cap, -1, np.int32),
                h_order=np.zeros(cap, np.int8), h_state=np.zeros(cap, np.int8))


@inline_kernel
def _home(key, mask):
    return np.int64((np.uint64(key) * _GOLDEN) >> np.uint64(20)) & mask


@inline_kernel
def h_find(t, key):
    """Bucket of `key`, or -1."""
    mask = len(t.h_key) - 1
    i = _home(key, mask)
    while t.h_used[i]:
        if t.h_key[i] == key:
            return i
        i = (i + 1) & mask
    return -1


@inline_kernel
def h_insert(t, key):
    """Bucket for a new `key` (not present; the table has room)."""
    mask = len(t.h_key) - 1
    i = _home(key, mask)
    while t.h_used[i]:
        i = (i + 1) & mask
    t.h_used[i] = 1
    t.h_key[i] = key
    return i


@kernel
def h_delete(t, i):
    """Empty bucket i, shifting later entries of its probe run back (no tombstones)."""
    mask = len(t.h_key) - 1
    j = i
    while True:
        j = (j + 1) & mask
        if not t.h_used[j]:
            break
        home = _home(t.h_key[j], mask)
        # move j into the hole i if j's home is not cyclically within (i, j]
        if (j > i and (home <= i or home > j)) or (j < i and (home <= i and home > j)):
            t.h_key[i] = t.h_key[j]
            t.h_frame[i] = t.h_frame[j]
            t.h_order[i] = t.h_order[j]
            t.h_state[i] = t.h_state[j]
            i = j
    t.h_used[i] = 0
    t.h_state[i] = 0


@kernel
def h_rehash(old_key, old_used, old_frame, old_order, old_state, t):
    for j in range(len(old_key)):
        if old_used[j]:
            i = h_insert(t, old_key[j])
            t.h_frame[i] = old_frame[j]
            t.h_order[i] = old_order[j]
            t.h_state[i] = old_state[j]
