"""The compiled replay loop: dense event arrays in, machine state updated in place.

`run_events` replays events [start, stop), sampling the state on the way when asked
(sim/sampling.py), and returns early in three cases, each with the index of the event it
stopped *before*, so no event is ever half-done when Python sees the state:

* STATUS_GROW: the next event's worst case needs more table slots (or gigantic-page
  ids) than the pool has free. Python grows the pool and calls again from that event.
* STATUS_ERROR: the event is impossible (an event of a process that is not alive, a
  kfree of an unknown handle, ...). `code` says which; Python reports `file:line`.
* STATUS_FULL: the sample array is full; Python grows it and calls again.

Everything else -- allocation failures included -- is a result, counted, not an error."""

from ptpair.sim import counters as C
from ptpair.sim.allocator import ALLOC_AKAROS, page_alloc, page_free
from ptpair.sim.buddy import N_ORDERS
from ptpair.sim.handles import h_delete, h_find, h_insert
from ptpair.sim.mobility import MT_MOVABLE
from ptpair.sim.occupancy import OWN_KALLOC, OWN_KALLOC_MOVABLE, count_failures, hugepage_blocks
from ptpair.sim.pagetable import (
    H_FAILED, H_LIVE, IDX_BITS, IDX_MASK, KIND_PAIR, MAP_ALREADY, MAP_SLOW, MODE_LAZY, P_ALIVE, P_FAILED, P_NONE,
    LEAF_SLOW, RECLAIM_LINUX, ROOT_LEVEL, USER_VPN_LIMIT, free_table, keeps_tables, leaf_of, log_reset, map_page,
    map_small, new_table, pmd_none, rollback
)
from ptpair.sim.sampling import R_EVENTS, STATUS_FULL, sample_row
from ptpair.sim.schemes import SPAWN_KIND, become_vmm
from ptpair.sim.slots import (
    M_ALLOCATOR, M_FRAMES, M_FREE_PAGES, M_HOLES, T_G_FREE, T_H_COUNT, T_PT_RECLAIM, T_RECLAIM, T_SLOTS_FREE, T_V_TOP
)
from ptpair.sim.treewalk import (
    SPAN_PML1, copy_pages, free_pgd_range, free_tables_postorder, reclaim_pte_tables, unmap_range
)
from ptpair.sim.vmas import (
    vma_add, vma_copy, vma_first_end_after, vma_free_block, vma_remove, vma_reserve_block, vma_room
)
from ptpair.traces._jit import inline_kernel, kernel
from ptpair.traces.format import (
    MAP_FILE, MAP_THP, OP_DONTNEED, OP_EXEC, OP_EXIT, OP_FORK, OP_KALLOC, OP_KFREE, OP_MAP, OP_RELEASE, OP_RESERVE,
    OP_SPAWN, OP_UNMAP, OP_VMM, PAGE_SHIFT
)

STATUS_DONE = 0
STATUS_GROW = 1
STATUS_ERROR = 2
GROW_HANDLES = 1  # code of a STATUS_GROW for the handle table
GROW_VMAS = 2  # code of a STATUS_GROW for the VMA pool (need: its ranges to carve)

ERR_NOT_ALIVE = 1
ERR_ALREADY_ALIVE = 2
ERR_PARENT_NOT_ALIVE = 3
ERR_HANDLE_LIVE = 4
ERR_HANDLE_UNKNOWN = 5
ERROR_REASONS = {  # short names, for counts of skipped events (--lenient)
    ERR_NOT_ALIVE: "event of a pid not alive",
    ERR_ALREADY_ALIVE: "spawn or fork of a live pid",
    ERR_PARENT_NOT_ALIVE: "fork from a pid not alive",
    ERR_HANDLE_LIVE: "kalloc of a live handle",
    ERR_HANDLE_UNKNOWN: "kfree of an unknown handle",
}
ERROR_MESSAGES = {
    ERR_NOT_ALIVE: "{op} of pid {pid}, which is not alive (never spawned, or exited)",
    ERR_ALREADY_ALIVE: "{op} of pid {pid}, which is already alive",
    ERR_PARENT_NOT_ALIVE: "fork of pid {pid} from pid {arg}, which is not alive",
    ERR_HANDLE_LIVE: "kalloc of handle {arg}, which is still allocated",
    ERR_HANDLE_UNKNOWN: "kfree of handle {arg}, which is not allocated",
}


@inline_kernel
def spawn(b, t, ctr, scheme, p):
    """A new empty address space: the root (KPT, then EPT where it has one at spawn)."""
    t.procs.mode[p] = SPAWN_KIND[scheme]
    t.procs.vmm[p] = 0
    log_reset(t)
    root = new_table(b, t, ctr, p, ROOT_LEVEL, -1, 0)
    if root < 0:
        rollback(b, t, ctr, p)
        ctr[C.FAILED_SPAWNS] += 1
        t.procs.state[p] = P_FAILED
        t.procs.root[p] = -1
        return False
    t.procs.root[p] = root
    t.procs.state[p] = P_ALIVE
    return True


@inline_kernel
def teardown(b, t, ctr, p):
    """exit: unmap everything in ascending order, then free the root (with VMAs under
    reclaim linux: exit_mmap zaps every page, then free_pgtables frees every table)."""
    keep = keeps_tables(t, p)
    unmap_range(b, t, ctr, p, 0, USER_VPN_LIMIT, keep)
    if keep:
        free_tables_postorder(b, t, ctr, p, 0, USER_VPN_LIMIT)  # unmap left them, even empty
    free_table(b, t, ctr, p, t.procs.root[p])
    t.procs.root[p] = -1
    t.procs.state[p] = P_NONE
    t.procs.vma[p] = 0
    vma_free_block(t, p)


@inline_kernel
def release(b, t, ctr, p, lo, hi):
    """munmap of 4-KiB pages [lo, hi) under reclaim linux (process with VMAs): zap the
    pages, free the tables free_pgtables frees, forget the range.

    free_pgtables (mm/memory.c) takes the removed VMAs in order, gathering each with the
    next while that starts within PMD_SIZE of its end, and frees each group's tables
    between floor = the end of the VMA before the hole and ceiling = the start of the
    next removed VMA, or of the VMA after the hole."""
    unmap_range(b, t, ctr, p, lo, hi, True)
    off, n = t.vmas.off[p], t.vmas.cnt[p]
    a = vma_first_end_after(t, p, lo)
    z = a
    while z < n and t.vmas.s[off + z] < hi:
        z += 1
    if a < z:
        floor = lo if t.vmas.s[off + a] < lo else (t.vmas.e[off + a - 1] if a > 0 else 0)
        ceiling = hi if t.vmas.e[off + z - 1] > hi else (t.vmas.s[off + z] if z < n else USER_VPN_LIMIT)
        j = a
        while j < z:
            start = max(t.vmas.s[off + j], lo)
            end = min(t.vmas.e[off + j], hi)
            while j + 1 < z and t.vmas.s[off + j + 1] <= end + SPAN_PML1:
                j += 1
                end = min(t.vmas.e[off + j], hi)
            top = max(t.vmas.s[off + j + 1], lo) if j + 1 < z else ceiling
            free_pgd_range(b, t, ctr, p, start, end, floor, top)
            j += 1
    vma_remove(t, p, lo, hi)


@inline_kernel
def dontneed(b, t, ctr, p, lo, hi):
    """MADV_DONTNEED of 4-KiB pages [lo, hi) under reclaim linux (process with VMAs):
    zap the pages, tables kept; with PT_RECLAIM, madvise zaps VMA by VMA
    (madvise_walk_vmas) and frees the PTE tables each zap empties whole."""
    unmap_range(b, t, ctr, p, lo, hi, True)
    if t.meta[T_PT_RECLAIM] == 0:
        return
    off, n = t.vmas.off[p], t.vmas.cnt[p]
    j = vma_first_end_after(t, p, lo)
    while j < n and t.vmas.s[off + j] < hi:
        reclaim_pte_tables(b, t, ctr, p, max(t.vmas.s[off + j], lo), min(t.vmas.e[off + j], hi))
        j += 1


@inline_kernel
def fork(b, t, ctr, scheme, child, parent):
    """Root as at spawn, then the parent's pages mapped ascending, sharing frames."""
    if not spawn(b, t, ctr, scheme, child):
        return
    if t.procs.state[parent] != P_ALIVE:
        return  # a parent whose spawn failed has no pages: the child starts empty
    if t.procs.vma[parent] != 0:  # dup_mmap: the VMAs first (the core made room for them)
        vma_reserve_block(t, t.meta, T_V_TOP, child, t.vmas.cnt[parent] + 2)
        vma_copy(t, child, parent)
        t.procs.vma[child] = 1
    copy_pages(b, t, ctr, child, parent, 0, USER_VPN_LIMIT)


@inline_kernel
def _slots_needed(b, t, o, p, va, length, arg, size):
    """Upper bound on new tables (and gigantic ids) one event can create."""
    free = b.meta[M_FREE_PAGES]
    if o == OP_MAP:
        shift = PAGE_SHIFT + IDX_BITS * size
        first = (va >> shift) << (IDX_BITS * size)
        last = ((va + length - 1) >> shift) << (IDX_BITS * size)
        n = ((last >> 27) - (first >> 27) + 1) + ((last >> 18) - (first >> 18) + 1)
        if size == 0:
            n += (last >> 9) - (first >> 9) + 1
        if size == 2:
            n = (last >> 27) - (first >> 27) + 1
        return min(n, free + 1), ((last - first) >> 18) + 1 if size == 2 else 0
    if o == OP_FORK:
        return min(t.procs.tables[arg] + 1, free + 1), 0
    if o == OP_SPAWN or o == OP_EXEC:
        return 1, 0
    return 0, 0


@inline_kernel
def _exhausted_span(t, p, v, end):
    """With no free frame at all, every allocation fails, so the 4-KiB pages from `v`
    that lie under a missing (or huge) entry above the leaf tables all end alike: each
    fails at its first table allocation (order 1 for a pair, else 0), or is already
    covered by a huge page. Returns (pages from v that end alike, the failing order or
    -1 for covered); (0, 0) when v's leaf table exists (each page is then decided alone).

    Counting them at once gives exactly the per-page counts (nothing is allocated or
    freed, no walk is counted for a failed page) without a walk per page: a map of a
    terabyte at exhausted memory costs its missing tables, not its pages."""
    cur = t.procs.root[p]
    level = ROOT_LEVEL
    while level > 1:
        sh = IDX_BITS * (level - 1)
        e = t.ent[cur, (v >> sh) & IDX_MASK]
        if e <= 0:
            n = min(end, ((v >> sh) + 1) << sh) - v
            if e < 0:
                return n, -1
            return n, 1 if t.procs.mode[p] == KIND_PAIR else 0
        cur = e - 1
        level -= 1
    return 0, 0


@inline_kernel
def _kpt_pages(ctr):
    """KPT pages now: the tables of every level and the deposited PTE tables (in VmPTE,
    at no level)."""
    return ctr[C.KPT] + ctr[C.KPT + 1] + ctr[C.KPT + 2] + ctr[C.KPT + 3] + ctr[C.DEPOSITED]


@inline_kernel
def _pt_pages(ctr):
    """Page-table pages now, KPT and EPT."""
    return _kpt_pages(ctr) + ctr[C.EPT]


@inline_kernel
def _new_used_peak(b, ctr, used):
    """Used memory (frames, background included) has reached a new peak: note it, and the
    free lists at the (first) peak."""
    ctr[C.PEAK_USED] = used
    for k in range(N_ORDERS):
        ctr[C.PEAK_BUDDY + k] = b.nr_free[k]


@inline_kernel
def _update_peaks(b, t, ctr):
    kpt = _kpt_pages(ctr)
    pt = kpt + ctr[C.EPT]
    used = b.meta[M_FRAMES] - b.meta[M_HOLES] - b.meta[M_FREE_PAGES]  # background included
    if pt > ctr[C.PEAK_PT] or ctr[C.EVENTS] == 1:
        # the 2 MiB blocks after the first event at which page tables reach their peak
        ctr[C.PEAK_PT] = max(pt, ctr[C.PEAK_PT])
        hugepage_blocks(b, t.pb_wasted, ctr, C.PEAK_HUGE)
    if kpt > ctr[C.PEAK_KPT]:
        ctr[C.PEAK_KPT] = kpt
    if ctr[C.EPT] > ctr[C.PEAK_EPT]:
        ctr[C.PEAK_EPT] = ctr[C.EPT]
    if ctr[C.DEPOSITED] > ctr[C.PEAK_DEPOSITED]:
        ctr[C.PEAK_DEPOSITED] = ctr[C.DEPOSITED]
    if ctr[C.DATA] > ctr[C.PEAK_DATA]:
        ctr[C.PEAK_DATA] = ctr[C.DATA]
    ctr[C.PT_SUM] += pt
    if used > ctr[C.PEAK_USED]:
        _new_used_peak(b, ctr, used)
    if ctr[C.EPT_WASTE] > ctr[C.PEAK_WASTE]:
        ctr[C.PEAK_WASTE] = ctr[C.EPT_WASTE]


_RUN_GROW = -1  # _kernel_events stopped before a kalloc: the handle table must grow


@inline_kernel
def _kernel_events(b, t, ctr, op, arg, order, mt, i, stop):
    """Replay the allocator events (kalloc, kfree) from event i on, until another event or
    `stop`. Returns (the event it stopped before, code): code 0, `_RUN_GROW` (the handle
    table must grow before the kalloc at that event) or an ERR_* of an impossible event.

    Kernel allocations belong to no process and touch no page table, so of the per-event
    bookkeeping of `_update_peaks` only two things move in such a run: page-table pages
    enter the mean once more each event (the same count every time), and used memory may
    reach a new peak. After the run's first event has had the full `_update_peaks`, every
    other peak is up to date and stays so; the rest of the run keeps the event count, the
    mean's sum and the used peak in locals and stores them when it stops -- the same
    counters, event for event, as `_update_peaks` after each (docs/performance.md, "Runs
    of allocator events")."""
    pt = _pt_pages(ctr)
    in_use = b.meta[M_FRAMES] - b.meta[M_HOLES]  # minus the free frames: used, background included
    events = pt_sum = peak = 0
    first = True
    code = 0
    while i < stop:
        o = op[i]
        if o == OP_KALLOC:
            if 2 * (t.meta[T_H_COUNT] + 1) > len(t.handles.key):
                code = _RUN_GROW
                break
            h = h_find(t.handles, arg[i])
            if h >= 0 and t.handles.state[h] == H_LIVE:
                code = ERR_HANDLE_LIVE
                break
            if h < 0:  # (a handle whose kalloc failed and was never freed is reused)
                h = h_insert(t.handles, arg[i])
                t.meta[T_H_COUNT] += 1
            k = order[i]
            f = page_alloc(b, k, mt[i], OWN_KALLOC_MOVABLE if mt[i] == MT_MOVABLE else OWN_KALLOC)
            if f < 0:
                count_failures(b, ctr, k, 1)
                t.handles.state[h] = H_FAILED
            else:
                t.handles.state[h] = H_LIVE
                t.handles.frame[h] = f
                t.handles.order[h] = k
                ctr[C.KALLOC] += 1 << k
        elif o == OP_KFREE:
            h = h_find(t.handles, arg[i])
            if h < 0:
                code = ERR_HANDLE_UNKNOWN
                break
            if t.handles.state[h] == H_LIVE:
                k = t.handles.order[h]
                page_free(b, t.handles.frame[h], k)
                ctr[C.KALLOC] -= 1 << k
            h_delete(t.handles, h)
            t.meta[T_H_COUNT] -= 1
        else:
            break
        i += 1
        if first:
            ctr[C.EVENTS] += 1
            _update_peaks(b, t, ctr)
            events, pt_sum, peak = ctr[C.EVENTS], ctr[C.PT_SUM], ctr[C.PEAK_USED]
            first = False
            continue
        events += 1
        pt_sum += pt
        used = in_use - b.meta[M_FREE_PAGES]
        if used > peak:  # (only a kalloc raises it)
            peak = used
            _new_used_peak(b, ctr, used)
    if not first:
        ctr[C.EVENTS] = events
        ctr[C.PT_SUM] = pt_sum
    return i, code


@kernel
def run_events(b, t, ctr, scheme, op, pid, va, length, arg, order, psz, mt, start, stop, every, seg_end, rows,
               n_rows):
    """Replay events [start, stop), sampling the state after every event whose number
    (ctr EVENTS, counted from 1 over the whole replay) is a multiple of `every` into
    rows[n_rows:] (sim/sampling.py), once per event number; `every` = 0 samples nothing
    (`rows` may then have no row). The one entry point of the loop from Python.

    Events run in segments that end at such an event (or at `stop`); `seg_end` is the
    end of a segment begun in an earlier call (-1: none), so that a replay resumed after
    a pool grew or an impossible event was skipped samples where an unbroken one would.
    Returns (next event, status, code, need_slots, need_g, segment end, rows written in
    all): STATUS_GROW or STATUS_ERROR at the event it stopped before, STATUS_FULL when
    `rows` is full, else STATUS_DONE. (The sampling is here rather than in a caller of
    this loop: numba compiles a callee's code again into every caller, docs/performance.md.)"""
    i = start
    j = seg_end
    while True:
        if j < 0:
            if i >= stop:
                break
            j = stop if every == 0 else min(stop, i + every - ctr[C.EVENTS] % every)
        while i < j:  # the segment's events (i: where the segment starts)
            o = op[i]
            if o == OP_KALLOC or o == OP_KFREE:  # a run of allocator events, at once
                i, code = _kernel_events(b, t, ctr, op, arg, order, mt, i, j)
                if code == _RUN_GROW:
                    return i, STATUS_GROW, GROW_HANDLES, 0, 0, j, n_rows
                if code != 0:
                    return i, STATUS_ERROR, code, 0, 0, j, n_rows
                continue
            p = pid[i]
            size = psz[i]
            need, need_g = _slots_needed(b, t, o, p, va[i], length[i], arg[i], size)
            if need > t.meta[T_SLOTS_FREE] or need_g > t.meta[T_G_FREE]:
                return i, STATUS_GROW, 0, need, need_g, j, n_rows
            if t.meta[T_RECLAIM] == RECLAIM_LINUX:  # a VMA event may need a bigger block
                carve = 0
                if o == OP_RESERVE or o == OP_RELEASE:
                    carve = vma_room(t, p, t.vmas.cnt[p] + 1)
                elif o == OP_FORK and t.procs.vma[arg[i]] != 0:
                    carve = vma_room(t, p, t.vmas.cnt[arg[i]] + 2)
                if t.meta[T_V_TOP] + carve > len(t.vmas.s):
                    return i, STATUS_GROW, GROW_VMAS, carve, 0, j, n_rows

            # --- life-cycle checks ---------------------------------------------------
            state = t.procs.state[p]
            if o == OP_SPAWN or o == OP_FORK:
                if state != P_NONE:
                    return i, STATUS_ERROR, ERR_ALREADY_ALIVE, 0, 0, j, n_rows
                if o == OP_FORK and t.procs.state[arg[i]] == P_NONE:
                    return i, STATUS_ERROR, ERR_PARENT_NOT_ALIVE, 0, 0, j, n_rows
            elif state == P_NONE:
                return i, STATUS_ERROR, ERR_NOT_ALIVE, 0, 0, j, n_rows
            elif state == P_FAILED:
                ctr[C.SKIPPED] += 1
                if o == OP_EXIT:
                    t.procs.state[p] = P_NONE
                ctr[C.EVENTS] += 1
                _update_peaks(b, t, ctr)  # nothing changed, but the mean counts this event
                i += 1
                continue

            # --- the event -------------------------------------------------------------
            if o == OP_MAP or o == OP_UNMAP or o == OP_RESERVE or o == OP_RELEASE or o == OP_DONTNEED:
                shift = PAGE_SHIFT + IDX_BITS * size
                step = 1 << (IDX_BITS * size)  # 4-KiB pages per page of this size
                first = (va[i] >> shift) * step
                end = (((va[i] + length[i] - 1) >> shift) + 1) * step
                if o == OP_MAP:
                    # the Akaros allocator counts failed scans, and a lazy walk allocates EPT
                    # twins of existing tables: those keep the page-by-page path
                    bulk = size == 0 and b.meta[M_ALLOCATOR] != ALLOC_AKAROS and t.procs.mode[p] != MODE_LAZY
                    thp = size == 0 and (arg[i] & MAP_THP) != 0
                    v = first
                    region = -1  # the 2 MiB whose PTE table `leaf` is (leaf_of)
                    leaf = LEAF_SLOW
                    while v < end:
                        if thp and pmd_none(t, p, v):
                            # the fault maps the aligned 2 MiB page around v (anonymous)
                            huge = (v >> IDX_BITS) << IDX_BITS
                            if map_page(b, t, ctr, p, huge, 1, -1, arg[i] & MAP_FILE) == MAP_ALREADY:
                                ctr[C.ALREADY] += 1
                            v = ((v >> IDX_BITS) + 1) << IDX_BITS
                            region = -1
                            continue
                        if bulk and b.meta[M_FREE_PAGES] == 0:
                            n, k = _exhausted_span(t, p, v, end)
                            if n > 0:
                                if k < 0:
                                    ctr[C.ALREADY] += n
                                else:
                                    count_failures(b, ctr, k, n)
                                    ctr[C.FAILED_MAPS] += n
                                v += n
                                continue
                        r = MAP_SLOW
                        if size == 0:
                            if v >> IDX_BITS != region:
                                region = v >> IDX_BITS
                                leaf = leaf_of(t, p, v)
                            r = map_small(b, t, ctr, leaf, v & IDX_MASK)
                        if r == MAP_SLOW:
                            r = map_page(b, t, ctr, p, v, size, -1, arg[i])
                            region = -1  # tables created (or rolled back): look again
                        if r == MAP_ALREADY:
                            ctr[C.ALREADY] += 1
                        v += step
                elif o == OP_UNMAP:
                    unmap_range(b, t, ctr, p, first, end, keeps_tables(t, p))
                elif t.meta[T_RECLAIM] != RECLAIM_LINUX:
                    if o != OP_RESERVE:  # a VMA's pages go as an unmap's; reserve changes nothing
                        unmap_range(b, t, ctr, p, first, end, keeps_tables(t, p))
                elif o == OP_RESERVE:
                    vma_reserve_block(t, t.meta, T_V_TOP, p, t.vmas.cnt[p] + 1)
                    vma_add(t, p, first, end)
                    t.procs.vma[p] = 1
                elif t.procs.vma[p] == 0:  # no VMAs known: as under reclaim empty
                    unmap_range(b, t, ctr, p, first, end, False)
                elif o == OP_RELEASE:
                    vma_reserve_block(t, t.meta, T_V_TOP, p, t.vmas.cnt[p] + 1)
                    release(b, t, ctr, p, first, end)
                else:
                    dontneed(b, t, ctr, p, first, end)
            elif o == OP_SPAWN:
                spawn(b, t, ctr, scheme, p)
            elif o == OP_VMM:
                become_vmm(b, t, ctr, scheme, p)
            elif o == OP_FORK:
                fork(b, t, ctr, scheme, p, arg[i])
            elif o == OP_EXEC:
                teardown(b, t, ctr, p)
                spawn(b, t, ctr, scheme, p)
            elif o == OP_EXIT:
                teardown(b, t, ctr, p)
            ctr[C.EVENTS] += 1
            _update_peaks(b, t, ctr)
            i += 1
        events = ctr[C.EVENTS]
        if every != 0 and events % every == 0 and (n_rows == 0 or rows[n_rows - 1, R_EVENTS] != events):
            if n_rows == rows.shape[0]:
                return j, STATUS_FULL, 0, 0, 0, j, n_rows
            sample_row(b, t, ctr, rows[n_rows])
            n_rows += 1
        j = -1
    return stop, STATUS_DONE, 0, 0, 0, -1, n_rows
