"""The compiled strace scanner's table of pending calls: tid -> slot.

A call other threads interrupt (`name(args <unfinished ...>`) waits for its `<... name
resumed>` half under its tid. A numba typed Dict cost 100+ ns per operation; this table
-- open addressing with linear probing, Fibonacci hashing, deletion by backward shift
(no tombstones, so lookups never slow down as calls come and go) -- costs a few ns. The
caller keeps it at most half full, growing it with `_ht_grow`.
"""

import numpy as np

from ptpair.traces._jit import inline_scanner, scanner

EMPTY = -1  # no tid is negative
_FIB = 0x9E3779B97F4A7C15 - (1 << 64)  # 2^64 / golden ratio, as an int64


@inline_scanner
def _ht_home(key, mask):
    return ((key * _FIB) >> 17) & mask  # Fibonacci hashing (wraps in int64)


@scanner
def _ht_get(keys, vals, key):
    mask = len(keys) - 1
    i = _ht_home(key, mask)
    while keys[i] != EMPTY:
        if keys[i] == key:
            return vals[i]
        i = (i + 1) & mask
    return -1


@scanner
def _ht_put(keys, vals, key, val):
    """Set key -> val (the table has room)."""
    mask = len(keys) - 1
    i = _ht_home(key, mask)
    while keys[i] != EMPTY and keys[i] != key:
        i = (i + 1) & mask
    keys[i] = key
    vals[i] = val


@scanner
def _ht_pop(keys, vals, key):
    """Remove key; returns its value or -1. The entries after it in its probe run move back
    so that every lookup still finds its key before an empty cell."""
    mask = len(keys) - 1
    i = _ht_home(key, mask)
    while keys[i] != key:
        if keys[i] == EMPTY:
            return -1
        i = (i + 1) & mask
    val = vals[i]
    j = i
    while True:
        j = (j + 1) & mask
        if keys[j] == EMPTY:
            break
        h = _ht_home(keys[j], mask)
        # the entry at j may move to the hole at i unless its home lies cyclically in (i, j]
        if (i < j and i < h <= j) or (i > j and (h > i or h <= j)):
            continue
        keys[i] = keys[j]
        vals[i] = vals[j]
        i = j
    keys[i] = EMPTY
    return val


@scanner
def _ht_grow(keys, vals):
    new_keys = np.full(2 * len(keys), EMPTY, dtype=np.int64)
    new_vals = np.empty(2 * len(keys), dtype=np.int64)
    for i in range(len(keys)):
        if keys[i] != EMPTY:
            _ht_put(new_keys, new_vals, keys[i], vals[i])
    return new_keys, new_vals
