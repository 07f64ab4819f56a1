"""The one hash table of ptpair's compiled code: open addressing over int64 keys.

A table is an int64 array of keys and an int8 array `used` (1 where a bucket holds a
key), both of a power-of-two length; the values are arrays indexed by bucket. Three
tables use it: the simulator's kalloc handles (sim/handles.py: handle -> block, values
of its own), and through `IntMap` (one int64 value per key) the strace scanner's pending
calls (traces/strace/scan.py: tid -> slot) and the kmem scanner's interned strings
(traces/_kmemscan.py: string hash -> id).

Linear probing with Fibonacci hashing; deletion by backward shift (Knuth, TAOCP vol. 3,
6.4, Algorithm R), so there are no tombstones and a lookup never slows down as keys come
and go. The invariant every function keeps: a key lies in the probe run that starts at
its home bucket, with no empty bucket between its home and itself. The caller keeps the
table at most half full (it grows it, with `insert` into a larger table), so runs stay
short and a probe always ends at an empty bucket.

Everything here is inlined into its callers; what the simulator's kernels (compiled
without numba's runtime) call never allocates.
"""

from collections import namedtuple

import numpy as np

from ptpair.traces._jit import inline_kernel, inline_scanner

GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # 2^64 / the golden ratio: Fibonacci hashing
HASH_SHIFT = np.uint64(20)  # the bits taken above the low ones, which a multiply mixes least


@inline_kernel
def home(key, mask):
    """The bucket where `key`'s probe run starts (mask: the table's length - 1)."""
    return np.int64((np.uint64(key) * GOLDEN) >> HASH_SHIFT) & mask


@inline_kernel
def probe(keys, used, key, i):
    """From bucket i on (cyclically): the first bucket that holds `key` or is empty."""
    mask = len(keys) - 1
    while used[i] and keys[i] != key:
        i = (i + 1) & mask
    return i


@inline_kernel
def find(keys, used, key):
    """The bucket holding `key`, or -1."""
    i = probe(keys, used, key, home(key, len(keys) - 1))
    return i if used[i] else -1


@inline_kernel
def insert(keys, used, key):
    """A bucket for a new `key` (not yet present, or present under another meaning, as
    the kmem table's colliding hashes): taken and returned; the table has room."""
    mask = len(keys) - 1
    i = home(key, mask)
    while used[i]:
        i = (i + 1) & mask
    used[i] = 1
    keys[i] = key
    return i


@inline_kernel
def refill_from(keys, used, hole):
    """Bucket `hole` has just been emptied of its key: the bucket of the next entry of the
    probe run that must move into it (its key moved already; the caller moves its values
    and calls again with that bucket as the new hole), or -1 once the run has ended
    (the caller then marks the hole unused)."""
    mask = len(keys) - 1
    j = hole
    while True:
        j = (j + 1) & mask
        if not used[j]:
            return -1
        h = home(keys[j], mask)
        # j stays unless its home lies cyclically outside (hole, j]
        if (hole < j and hole < h <= j) or (hole > j and (h > hole or h <= j)):
            continue
        keys[hole] = keys[j]
        return j


# --- a map from int64 keys to int64 values, for the scanners ----------------------------
IntMap = namedtuple("IntMap", "key used val")


@inline_scanner
def new_map(cap):
    """An empty map of `cap` buckets (a power of two)."""
    return IntMap(np.zeros(cap, dtype=np.int64), np.zeros(cap, dtype=np.int8), np.empty(cap, dtype=np.int64))


@inline_kernel
def map_get(m, key):
    """The value of `key`, or -1."""
    i = find(m.key, m.used, key)
    return m.val[i] if i >= 0 else -1


@inline_kernel
def map_put(m, key, val):
    """Set key -> val (the map has room)."""
    i = find(m.key, m.used, key)
    if i < 0:
        i = insert(m.key, m.used, key)
    m.val[i] = val


@inline_kernel
def map_pop(m, key):
    """Remove `key`; returns its value, or -1 if it was not there."""
    i = find(m.key, m.used, key)
    if i < 0:
        return -1
    val = m.val[i]
    while True:
        j = refill_from(m.key, m.used, i)
        if j < 0:
            break
        m.val[i] = m.val[j]
        i = j
    m.used[i] = 0
    return val


@inline_scanner
def map_grown(m):
    """A map twice as large holding m's entries (each bucket's, equal keys included)."""
    new = new_map(2 * len(m.key))
    for i in range(len(m.key)):
        if m.used[i]:
            new.val[insert(new.key, new.used, m.key[i])] = m.val[i]
    return new
