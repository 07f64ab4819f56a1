"""The decorators of ptpair's compiled code, for sim/ and traces/ alike.

* `kernel`, `inline_kernel` -- the simulator's kernels. They take the machine state as
  namedtuples of numpy arrays and never allocate, so they are compiled without numba's
  reference-counting runtime (`_nrt=False`): with it, every call would pay an atomic
  incref/decref per array in the tuples, many times the cost of the work itself (figures
  in docs/performance.md). `inline_kernel` is for the small, hot steps: inlined into
  their callers at numba's IR level, so that the wide state tuples are not passed by
  value on every call.
* `scanner`, `inline_scanner` -- the readers' byte scanners and models. They allocate
  (their output and growing arrays), so they keep the runtime.

All are cached on disk (ptpair/_jitcache.py keys the cache on these packages' sources)
and release the GIL (`nogil`): a reader thread decodes the next chunk of a trace while
the replay runs on another core (sim/replay.py), and a large kmem log is scanned as two
halves on two threads (traces/kmem.py).
"""

from numba import njit

kernel = njit(cache=True, _nrt=False, nogil=True)
inline_kernel = njit(cache=True, _nrt=False, nogil=True, inline="always")
scanner = njit(cache=True, nogil=True)
inline_scanner = njit(cache=True, nogil=True, inline="always")
