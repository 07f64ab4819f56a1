"""The decorator for the simulator's compiled kernels.

Kernels take the machine state as namedtuples of numpy arrays and never allocate, so
they are compiled without numba's reference-counting runtime (`_nrt=False`): with it,
every call would pay an atomic incref/decref per array in the tuples, many times the
cost of the work itself (figures in docs/performance.md). Cached on disk (see
ptpair/_jitcache.py).
They release the GIL (`nogil`), so that a reader thread can decode and check the next
chunk of a trace while the replay runs on another core (sim/replay.py).
"""

from numba import njit

kernel = njit(cache=True, _nrt=False, nogil=True)
# For the small, hot allocator steps: inlined into their callers at numba's IR level, so
# that the wide state tuples are not passed by value on every call.
inline_kernel = njit(cache=True, _nrt=False, nogil=True, inline="always")
