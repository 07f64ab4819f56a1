"""The replay loop's compiled callees, compiled ahead of the loop on a second core.

On a cold cache the first replay compiles the event loop (sim/core.py `run_events`)
and, as numba's type inference of the loop meets a call to a kernel that is not
inlined, that kernel (`callee_kernel`s and `kernel`s: the allocators' slow paths, the
table kernels, the tree walker, the sampler). The whole is one chain on one core: the
loop's front end (inlining and typing its inlined steps) runs some 20 s before it meets
its first callee, the callees take about half of the compile, and the loop's own
lowering and LLVM the rest, while the machine's other cores wait
(docs/performance.md, "The cold compile").

`compile_callees` compiles those callees, for the argument types the loop passes them,
in the order the loop meets them, into numba's on-disk cache (ptpair/_jitcache.py). Run
in a second process while the first compiles the loop, it starts on the callees at
once; the loop's compile then finds each callee it reaches after the second process
has written it in the cache and loads it instead of compiling it. A callee the loop
reaches first it compiles itself, as without the second process (numba writes a cache
entry to a temporary file and renames it into place, so two processes writing one
entry leave one whole entry). Nothing here changes what is compiled: only when, and on
which core.

`CALLEE_ORDER` must name the loop's callees with the types the loop passes (every
integer widened to int64: traces/_jit.py); a callee missing from it, or listed with
other types, is only compiled by the loop itself, as before -- slower, never wrong.
tests/sim/test_precompile.py checks the list against the compiled loop.
"""

from __future__ import annotations

import multiprocessing
import os

import numba
import numpy as np

from ptpair.sim import akaros2015, allocator, mobility, occupancy, pagetable, sampling, treewalk, vmas

# (module, kernel name, argument kinds), in the order run_events' type inference meets
# them (a kernel's own callees come with it). Kinds: B, T the machine state's allocator and
# table tuples; CTR an int64 array (the counters, a tuples' meta, a sample row); I int64;
# Z bool; P32 an int32 array (per 2 MiB block).
CALLEE_ORDER = (
    (akaros2015, "akaros_alloc", "B I"),
    (mobility, "mobility_alloc", "B I I"),
    (occupancy, "_occupy_slow", "B I I I Z"),
    (occupancy, "count_failures", "B CTR I I"),
    (akaros2015, "akaros_free", "B I I"),
    (mobility, "mobility_free", "B I I"),
    (occupancy, "hugepage_blocks", "B P32 CTR I"),
    (pagetable, "pmd_none", "T I I"),
    (pagetable, "is_mapped", "T I I I"),
    (allocator, "page_alloc_call", "B I I I"),
    (pagetable, "new_table", "B T CTR I I I I"),
    (allocator, "page_free_call", "B I I"),
    (pagetable, "rollback", "B T CTR I"),
    (pagetable, "lazy_twin", "B T CTR I I"),
    (pagetable, "map_page", "B T CTR I I I I I"),
    (pagetable, "mirror_table", "B T CTR I I I"),
    (pagetable, "free_table", "B T CTR I I"),
    (pagetable, "unmap_entry", "B T CTR I I I I Z"),
    (treewalk, "walk", "B T CTR I I I I I I"),
    (vmas, "vma_reserve_block", "T CTR I I I"),
    (vmas, "vma_add", "T I I I"),
    (vmas, "vma_remove", "T I I I"),
    (pagetable, "ept_no_longer_waste", "T I"),
    (vmas, "vma_copy", "T I I"),
    (sampling, "sample_row", "B T CTR CTR"),
)


def callee_signatures() -> list[tuple[object, tuple]]:
    """[(dispatcher, argument types)] of CALLEE_ORDER, the state's types taken from a
    small machine (they do not depend on its size, scheme or allocator)."""
    from ptpair.sim.machine import Config, Machine

    m = Machine(Config(memory_pages=1024))
    kinds = {"B": numba.typeof(m.buddy), "T": numba.typeof(m.tables), "CTR": numba.typeof(m.ctr),
             "I": numba.int64, "Z": numba.boolean, "P32": numba.typeof(np.zeros(1, np.int32))}
    return [(getattr(mod, name), tuple(kinds[k] for k in spec.split())) for mod, name, spec in CALLEE_ORDER]


def compile_callees() -> None:
    """Compile (or load) every callee of CALLEE_ORDER, in order, into the on-disk cache."""
    for dispatcher, sig in callee_signatures():
        dispatcher.compile(sig)


def loop_is_cached() -> bool:
    """Whether the event loop's compiled code is in the on-disk cache already (then there
    is nothing to compile ahead). Reads numba's cache index path, not public API: where
    it is missing, says True (and nothing is compiled ahead)."""
    from ptpair.sim.core import run_events

    try:
        return os.path.exists(run_events._cache._cache_file._index_path)
    except AttributeError:
        return True


def _cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # (not on every platform)
        return os.cpu_count() or 1


class CalleesAhead:
    """`with CalleesAhead(): <compile the loop>`: compile_callees in a forked process
    while the block runs, if the loop is not cached and this machine has a core to spare;
    the process is stopped when the block ends (a callee it was compiling then, the loop
    has compiled itself)."""

    def __enter__(self):
        self.proc = None
        # (a daemonic process -- a multiprocessing.Pool's worker -- may not start one)
        if (_cores() > 1 and not multiprocessing.current_process().daemon and not loop_is_cached()
                and "fork" in multiprocessing.get_all_start_methods()):
            self.proc = multiprocessing.get_context("fork").Process(target=compile_callees, daemon=True)
            self.proc.start()
        return self

    def __exit__(self, *exc):
        if self.proc is not None:
            self.proc.terminate()
            self.proc.join()
        return False
