"""The decorators of ptpair's compiled code, for sim/ and traces/ alike.

* `kernel`, `inline_kernel` -- the simulator's kernels. They take the machine state as
  namedtuples of numpy arrays and never allocate, so they are compiled without numba's
  reference-counting runtime (`_nrt=False`): with it, every call would pay an atomic
  incref/decref per array in the tuples, many times the cost of the work itself (figures
  in docs/performance.md). `inline_kernel` is for the small, hot steps: inlined into
  their callers at numba's IR level, so that the wide state tuples are not passed by
  value on every call.
* `callee_kernel` -- a kernel that only compiled code calls. It is compiled without the
  wrappers that let Python (and C) call it: a CPython wrapper unboxes every array of the
  state tuples, and numba builds, optimises and compiles it for every kernel -- a sixth of
  the cold compile, for entry points nothing used (docs/performance.md). Calling one from
  Python fails; use `kernel` for those.
* `scanner`, `inline_scanner` -- the readers' byte scanners and models. They allocate
  (their output and growing arrays), so they keep the runtime.

All are cached on disk (ptpair/_jitcache.py keys the cache on these packages' sources)
and release the GIL (`nogil`): a reader thread decodes the next chunk of a trace while
the replay runs on another core (sim/replay.py), and a large kmem log is scanned as two
halves on two threads (traces/kmem.py).
"""

from numba import njit, types


def _widened(t):
    """The type a compiled callee is compiled for, given an argument of type t: a
    constant's type without its value, and every signed integer as int64."""
    t = types.unliteral(t)
    return types.int64 if isinstance(t, types.Integer) and t.signed else t


def _one_compile_per_shape(dispatcher):
    """Compile `dispatcher` once per shape of its arguments, not once per call site.

    A call from compiled code passes its arguments' exact types, and numba compiles the
    callee anew for each: a constant (`walk(..., W_UNMAP, 0, 0)`) is a type of its own,
    Literal[int](3), and an int8 read from an array differs from an int64 -- map_page
    was compiled 17 times and the table walker 9 times for one replay, each a whole
    compile of a large function, which tripled the cold compile. The callee is compiled
    for the widened types instead (`_widened`); the call site converts its arguments,
    as for any call. What the literal values would have pruned costs a predictable
    branch at run time (measured: benchmarks/ab.py, docs/performance.md)."""
    get_call_template = dispatcher.get_call_template

    def widened(args, kws):
        return get_call_template(tuple(map(_widened, args)), {k: _widened(v) for k, v in kws.items()})

    dispatcher.get_call_template = widened
    return dispatcher


def kernel(fn):
    return _one_compile_per_shape(njit(cache=True, _nrt=False, nogil=True)(fn))


def callee_kernel(fn):
    return _one_compile_per_shape(njit(cache=True, _nrt=False, nogil=True, no_cpython_wrapper=True,
                                       no_cfunc_wrapper=True)(fn))


def scanner(fn):
    return _one_compile_per_shape(njit(cache=True, nogil=True)(fn))


inline_kernel = njit(cache=True, _nrt=False, nogil=True, inline="always")
inline_scanner = njit(cache=True, nogil=True, inline="always")
