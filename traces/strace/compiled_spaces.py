"""Address spaces for the compiled strace model: each a sorted run of ranges in a pool.

The reference model (model.py) keeps an address space as a sorted list of disjoint
(start, end, accessible) tuples, changed with `bisect`. Here every space is a block of
three shared arrays S/E/A (start, end, accessible) at an offset, with a capacity and a
count: the searches and splices below are `_Space`'s, bisection for bisection, so both
give the same ranges in the same order (zero-length ranges included, which `brk` makes
within a page) -- and so the same events. Blocks come in size classes, MIN_BLOCK << c
ranges; freed blocks are kept per class for reuse.
"""


from ptpair.traces._blockpool import give_back, size_class, take_freed
from ptpair.traces._jit import scanner
from ptpair.traces.strace.scan import _grow

MIN_BLOCK = 16  # ranges per address space to start with


# --- one address space's ranges: S/E/A[off : off + n], sorted as Python sorts the tuples
@scanner
def _first_start_at_least(S, off, lo, hi, x):
    """bisect_left(vmas, (x,), lo, hi): the first range whose start is >= x."""
    while lo < hi:
        mid = (lo + hi) // 2
        if S[off + mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@scanner
def _first_start_above(S, off, n, x):
    """bisect_right(vmas, (x, inf)): the first range whose start is > x."""
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        if x < S[off + mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo


@scanner
def _insort_at(S, E, A, off, n, s, e, a):
    """bisect_right(vmas, (s, e, a)): where insort puts the range."""
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        ms, me, ma = S[off + mid], E[off + mid], A[off + mid]
        if s < ms or (s == ms and (e < me or (e == me and a < ma))):
            hi = mid
        else:
            lo = mid + 1
    return lo


@scanner
def _span(S, E, off, n, start, end):
    """_Space._span: indexes [lo, hi) of the ranges that overlap [start, end)."""
    lo = _first_start_at_least(S, off, 0, n, start)
    if lo > 0 and E[off + lo - 1] > start:
        lo -= 1
    return lo, _first_start_at_least(S, off, lo, n, end)


@scanner
def _shift(X, a, b, d):
    """X[a + d : b + d] = X[a : b], overlapping (a memmove)."""
    if d > 0:
        for j in range(b - 1, a - 1, -1):
            X[j + d] = X[j]
    else:
        for j in range(a, b):
            X[j + d] = X[j]


@scanner
def _splice(S, E, A, off, n, lo, hi, PS, PE, PA, k):
    """vmas[lo:hi] = the k pieces in PS/PE/PA; returns the new count (capacity reserved)."""
    d = k - (hi - lo)
    if d != 0:  # the ranges after the span move by d (a loop per array: each vectorises)
        _shift(S, off + hi, off + n, d)
        _shift(E, off + hi, off + n, d)
        _shift(A, off + hi, off + n, d)
    for j in range(k):
        S[off + lo + j], E[off + lo + j], A[off + lo + j] = PS[j], PE[j], PA[j]
    return n + d


@scanner
def _remove(S, E, A, off, n, start, end, PS, PE, PA):
    lo, hi = _span(S, E, off, n, start, end)
    k = 0
    for j in range(lo, hi):
        s, e, a = S[off + j], E[off + j], A[off + j]
        if s < start:
            PS[k], PE[k], PA[k] = s, start, a
            k += 1
        if e > end:
            PS[k], PE[k], PA[k] = end, e, a
            k += 1
    return _splice(S, E, A, off, n, lo, hi, PS, PE, PA, k)


@scanner
def _add(S, E, A, off, n, start, end, acc, PS, PE, PA):
    n = _remove(S, E, A, off, n, start, end, PS, PE, PA)
    at = _insort_at(S, E, A, off, n, start, end, acc)
    PS[0], PE[0], PA[0] = start, end, acc
    return _splice(S, E, A, off, n, at, at, PS, PE, PA, 1)


@scanner
def _protect(S, E, A, off, n, start, end, acc, PS, PE, PA, OL, OH):
    """_Space.protect; the ranges that became accessible go to OL/OH. Returns (count, opened)."""
    lo, hi = _span(S, E, off, n, start, end)
    k = 0
    o = 0
    for j in range(lo, hi):
        s, e, a0 = S[off + j], E[off + j], A[off + j]
        a, b = max(s, start), min(e, end)
        if s < a:
            PS[k], PE[k], PA[k] = s, a, a0
            k += 1
        if acc and not a0:
            OL[o], OH[o] = a, b
            o += 1
        PS[k], PE[k], PA[k] = a, b, acc
        k += 1
        if b < e:
            PS[k], PE[k], PA[k] = b, e, a0
            k += 1
    return _splice(S, E, A, off, n, lo, hi, PS, PE, PA, k), o


@scanner
def _accessible_of(S, E, A, off, n, start):
    i = _first_start_above(S, off, n, start) - 1
    if i >= 0 and S[off + i] <= start < E[off + i]:
        return A[off + i]
    return 1


# --- the pool: blocks of MIN_BLOCK << class ranges, freed blocks listed per class, linked
# through S (traces/_blockpool.py)
@scanner
def _alloc(S, E, A, top, free_head, size):
    """A block of at least `size` ranges: a freed one of its class, else carved at `top`
    (the pool doubling when full). Blocks of ended processes and outgrown blocks are
    reused, so the pool stays the size of the live address spaces (a log of 30,000
    processes would otherwise touch and copy hundreds of MB). Returns
    (S, E, A, top, offset, capacity)."""
    c = size_class(MIN_BLOCK, size)
    cap = MIN_BLOCK << c
    at = take_freed(S, free_head, c)
    if at >= 0:
        return S, E, A, top, at, cap
    if top + cap > len(S):
        pool = 2 * (top + cap)
        S, E, A = _grow(S, pool), _grow(E, pool), _grow(A, pool)
    return S, E, A, top + cap, top, cap


@scanner
def _free(S, free_head, at, cap):
    """Return the block at `at` to its class's free list."""
    give_back(S, free_head, MIN_BLOCK, at, cap)
