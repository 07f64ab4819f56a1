"""The replay loop's compiled callees, compiled ahead of the loop on a second core.

On a cold cache the first replay compiles the event loop (sim/core.py `run_events`)
and, as numba's type inference of the loop meets a call to a kernel that is not
inlined, that kernel (`callee_kernel`s and `kernel`s: the allocators' slow paths, the
table kernels, the tree walker, the sampler). The whole is one chain on one core: the
loop's front end (inlining and typing its inlined steps) runs some 20 s before it meets
its first callee, the callees take about half of the compile, and the loop's own
lowering and LLVM the rest, while the machine's other cores wait
(docs/performance.md, "Third day").

`compile_callees` compiles those callees, for the argument types the loop passes them,
into numba's on-disk cache (ptpair/_jitcache.py). Run in a second process while the
first compiles the loop, it starts on the callees at once; the loop's compile then finds
each callee it reaches after the second process has written it in the cache and loads
it instead of compiling it. A callee the loop reaches first it compiles itself, as
without the second process (numba writes a cache entry to a temporary file and renames
it into place, so two processes writing one entry leave one whole entry). The callees
form one chain of dependencies ending at the table walker (each compiled after those it
calls); the second process goes straight down it, while the loop's own process first
compiles the few callees off it (`OFF_CHAIN`), then the loop. Once the callees are
done, the second process compiles the kernels a run compiles after the loop (`LATER`),
while the loop's own lowering keeps the first core busy. A caller with other work before
its first replay (the report reads its inputs) starts the second process sooner with
`early()`. Nothing here changes what is compiled: only when, and on which core
(docs/performance.md, "Third day" and "Fourth day").

`CALLEE_ORDER` must name the loop's callees with the types the loop passes (every
integer widened to int64: traces/_jit.py). A callee missing from it is compiled by the
loop itself, as before. One listed with other types would be compiled for nothing, and
worse: the two processes would then save two different entries of one kernel at about
the same time, which numba's cache index does not lock against (`IndexDataCacheFile.save`
reads the index, picks a free data file name and writes both back). So
tests/sim/test_precompile.py compiles the loop alone and fails on any listed type the
loop does not pass; the cache is keyed by these sources (ptpair/_jitcache.py), so a list
that drifted is caught by the test run of the very sources it belongs to.

The process ahead is a fork, started only where it can help and cannot get in the way:
a loop not yet in the cache, a second core, fork available, and not inside a
multiprocessing worker (a pool of workers on a cold cache would double its compiles). It
ignores Ctrl-C (the user's process handles it and stops this one), leaves with
`os._exit` (no inherited exit hook or output buffer runs twice), and is killed, not asked
to stop, when the loop is compiled: numba writes each cache file to a temporary name and
renames it into place, so a kill leaves whole entries (and at worst a stray temporary
file). If the fork fails, the loop compiles alone.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from contextlib import contextmanager

import numba
import numpy as np

from ptpair.sim import akaros2015, allocator, handles, mobility, occupancy, pagetable, sampling, treewalk, vmas, walk
from ptpair.traces import freemap

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

# Kernels a run compiles after the loop, on one core each time, compiled ahead once the
# callees are done -- while the loop's own lowering and LLVM keep the first core busy
# some 40 s and the second has nothing else to do: the handle table's growth (the
# parent, right after the loop), a free map's blocks and runs (phase 2's Akaros replays),
# the walk benchmark's kernels (the report's walk timing). Kinds as above, and: H a handle
# table; U64, I32, I8, I64, BOOLS 1-d arrays of those types; I32_2, I64_2 2-d ones.
LATER = (
    (handles, "_rehash", "H H"),
    (freemap, "carve_free", "BOOLS I64"),
    (akaros2015, "free_runs", "BOOLS I64"),
    (walk, "_fill", "U64 I32_2 I32 I32 I8 I"),
    (walk, "_leaves", "I32_2 I8 I I64 I I64_2"),
    (walk, "lookup", "U64 I64 I64 I64 Z I64 I64"),
    (walk, "range_protect", "U64 I I I I Z I64_2"),
)

# Callees off the chain that ends at the walker (allocators -> page_alloc_call ->
# new_table -> ... -> map_page -> ... -> walk, some 45 s, each needing the ones before it):
# no callee of the chain calls them. The loop's own process compiles these first, some
# 7 s, while the process ahead goes straight down the chain -- which ends that much
# sooner -- and meets them already compiled at its end.
OFF_CHAIN = ("pmd_none", "hugepage_blocks", "vma_reserve_block", "vma_add", "vma_remove", "ept_no_longer_waste",
             "vma_copy", "sample_row")

ENABLED = True  # False: never compile ahead (benchmarks/bench_compile.py measures without)


def _kinds() -> dict:
    """The numba type of each kind of argument the lists above name, the state's types
    taken from a small machine (they do not depend on its size, scheme or allocator)."""
    from ptpair.sim.machine import Config, Machine

    m = Machine(Config(memory_pages=1024))

    def arr(dtype, ndim=1):
        return numba.typeof(np.zeros((1,) * ndim, dtype))

    return {"B": numba.typeof(m.buddy), "T": numba.typeof(m.tables), "CTR": numba.typeof(m.ctr),
            "H": numba.typeof(handles.new_handles(1)), "I": numba.int64, "Z": numba.boolean, "P32": arr(np.int32),
            "U64": arr(np.uint64), "I32": arr(np.int32), "I8": arr(np.int8), "I64": arr(np.int64),
            "BOOLS": arr(np.bool_), "I32_2": arr(np.int32, 2), "I64_2": arr(np.int64, 2)}


def callee_signatures(listed=CALLEE_ORDER) -> list[tuple[object, tuple]]:
    """[(dispatcher, argument types)] of a list (CALLEE_ORDER or LATER)."""
    kinds = _kinds()
    return [(getattr(mod, name), tuple(kinds[k] for k in spec.split())) for mod, name, spec in listed]


def _chain_first() -> tuple:
    """CALLEE_ORDER with the callees of OFF_CHAIN moved to its end."""
    return (tuple(c for c in CALLEE_ORDER if c[1] not in OFF_CHAIN)
            + tuple(c for c in CALLEE_ORDER if c[1] in OFF_CHAIN))


def compile_callees() -> None:
    """The process ahead: compile (or load) every callee of CALLEE_ORDER, those of the
    chain first, then those of LATER, in order, into the on-disk cache."""
    for dispatcher, sig in callee_signatures(_chain_first() + LATER):
        dispatcher.compile(sig)


def compile_off_chain() -> None:
    """The loop's own process, before it compiles the loop: the callees of OFF_CHAIN.
    Best effort, like the process ahead: a failure here only means the loop compiles
    them itself."""
    try:
        for dispatcher, sig in callee_signatures(tuple(c for c in CALLEE_ORDER if c[1] in OFF_CHAIN)):
            dispatcher.compile(sig)
    except Exception:  # noqa: BLE001 -- (the loop's own compile reports any real error)
        pass


def _ahead() -> None:
    """The forked process ahead: compile_callees, then leave at once, whatever happened
    (a failure here only means the loop compiles its callees itself)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # (not the CLI's handler, inherited)
    try:
        compile_callees()
    finally:
        os._exit(0)


def loop_is_cached() -> bool:
    """Whether the event loop's compiled code is in the on-disk cache already (then there
    is nothing to compile ahead). Reads numba's cache index path, not public API: where
    it is missing, says True (and nothing is compiled ahead)."""
    from ptpair.sim.core import run_events

    if run_events.overloads:  # (compiled in this process already)
        return True
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


# the CalleesAhead of an `early()` block, for the loop's compile to take over, and the
# process that started it (a process forked inside the block inherits these, and must not
# take over a process that is not its child)
_started_early = None
_early_owner = None
_takeover = threading.Lock()


class CalleesAhead:
    """`with CalleesAhead(): <compile the loop>`: compile_callees in a forked process
    while the block runs, where that can help (see the module's docstring); the process
    is killed when the block ends (a callee it was compiling then, the loop has compiled
    itself). Inside an `early()` block, takes over the process that block started."""

    def __enter__(self):
        self.proc = None
        with _takeover:
            if _started_early is not None and _early_owner == os.getpid():
                self.proc, _started_early.proc = _started_early.proc, None
        if self.proc is None:
            self._start()
        if self.proc is not None:
            try:
                compile_off_chain()
            except BaseException:  # (Ctrl-C): the with block's exit will not run
                self.__exit__()
                raise
        return self

    def _start(self) -> None:
        """Fork the process ahead, where it can help."""
        self.proc = None
        if (ENABLED and _cores() > 1 and multiprocessing.parent_process() is None and not loop_is_cached()
                and "fork" in multiprocessing.get_all_start_methods()):
            proc = multiprocessing.get_context("fork").Process(target=_ahead, daemon=True)
            try:
                proc.start()
                self.proc = proc
            except Exception:  # (no memory or process left to fork; fork warned into an error)
                pass

    def __exit__(self, *exc):
        if self.proc is not None:
            self.proc.kill()
            self.proc.join()
        return False


@contextmanager
def early():
    """`with early(): <other work, then replays>`: start the process ahead now, for a
    caller with other work to do before its first replay (the report reads and checks
    its inputs first: some 5 s in which the second core would wait). The first replay's
    compile in the block takes the process over and kills it when the loop is compiled;
    the block's end kills it at the latest (when no replay in the block took it over: an
    error before any replay, say)."""
    global _started_early, _early_owner
    if _started_early is not None and _early_owner == os.getpid():  # (inside another early() block)
        yield
        return
    ahead = CalleesAhead()
    ahead._start()
    with _takeover:
        _started_early, _early_owner = ahead, os.getpid()
    try:
        yield
    finally:
        with _takeover:
            _started_early = _early_owner = None
        ahead.__exit__(None, None, None)
