"""x86-64 four-level page tables of every simulated process, in compiled code.

Each table (root/pml4, pml3, pml2, pml1) occupies one slot of a pool: `ent[slot]` holds
its 512 entries, and per-slot arrays hold where its pages sit in simulated memory
(`t_kpt`, `t_ept`), its kind (how it was allocated, see `KIND_*`), how many entries are
in use (`t_cnt`: the table is freed the moment this drops to 0), its level and its
parent. An entry is 0 when empty, `child_slot + 1` when it points to a lower table,
`frame + 1` for a 4-KiB leaf in a pml1, and `-(frame + 1)` for a huge leaf (a 2 MiB page
in a pml2, whose frame is an order-9 buddy block; a 1 GiB page in a pml3, whose
"frame" is an id in the separate gigantic-page pool).

The EPT is not a second tree: Akaros keeps the EPT identical to the KPT over the user
half (the KPT-EPT invariant stated above `arch_pgdir_setup` in its
`kern/arch/x86/pmap64.c`; docs/sources.md), so each KPT table records the frame of its
EPT twin. Whether a table has a twin, and whether the twin is the adjacent frame, is
the table's kind:

* KIND_KPT  -- a single order-0 KPT page, no EPT twin;
* KIND_SEP  -- an order-0 KPT page and a separately allocated order-0 EPT page;
* KIND_PAIR -- one order-1 block: KPT page at the lower frame, EPT page at frame + 1.

A pml2 table also holds the PTE tables Linux deposits with its anonymous 2 MiB pages
(`t_dep_head`, `t_dep_tail`, `dep_next`; see `deposit` below): spare order-0 KPT pages
that no entry points to, counted as KPT pages but at no level.

Slots come from a stack of free slot numbers, so freed slots are reused first and the
pool's resident size follows the peak number of live tables. The pool never grows in
the middle of an event: the event loop checks that the event's worst case fits and
otherwise hands control back to Python, which grows the arrays and resumes.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from ptpair import registry
from ptpair.sim import counters as C
from ptpair.sim.allocator import needs_split, page_alloc, page_alloc_call, page_free, page_free_call
from ptpair.sim.handles import grown, new_handles
from ptpair.sim.mobility import MT_MOVABLE, MT_UNMOVABLE
from ptpair.sim.occupancy import OWN_DATA, OWN_TABLE, PB_SHIFT, count_failures
from ptpair.sim.slots import (
    SCRATCH_LEN, S_CREATED, S_CREATED_N, S_LOG, S_LOG_N, S_TWIN, S_TWIN_N, T_DEPOSIT, T_G_FREE, T_META_LEN,
    T_PT_RECLAIM, T_RECLAIM, T_SLOTS_FREE
)
from ptpair.sim.vmas import new_vmas
from ptpair.traces._jit import callee_kernel, inline_kernel
from ptpair.traces.format import MAP_FILE

# --- geometry (x86-64, 4 levels, 4-KiB base pages) --------------------------------
# An entry of a level-l table (pml1 = 1 .. pml4 = 4) spans 2^(PML1_SHIFT + IDX_BITS * (l - 1))
# bytes: 4 KiB, 2 MiB, 1 GiB, 512 GiB (the kernel's PML1_SHIFT .. PML4_SHIFT: 12, 21, 30, 39).
PML1_SHIFT = 12
ENTRIES = 512
IDX_BITS = 9  # log2(ENTRIES)
IDX_MASK = ENTRIES - 1
ROOT_LEVEL = 4
USER_VPN_LIMIT = 1 << (47 - PML1_SHIFT)  # 4-KiB pages in [0, 2^47)

# --- table kinds (how a table's pages were allocated) -------------------------------
KIND_KPT = 0
KIND_SEP = 1
KIND_PAIR = 2
# A process mode, never a table's kind: new tables are KPT-only and each table a new
# page's walk passes through gains its EPT twin then (separate-lazy, sim/schemes.py)
MODE_LAZY = 3

# --- reclaim policies (when empty tables are freed) ---------------------------------
# empty: as soon as they are empty; exit: only at exit/exec (Akaros in 2015: unmap frees
# data frames only); linux: as Linux frees them, from the processes' VMAs (free_pgtables
# at munmap, PT_RECLAIM at MADV_DONTNEED, everything at exit; `free_pgd_range` in sim/treewalk.py) --
# for a process whose trace has no VMA events, as `empty`
RECLAIMS = {name: code for code, name in enumerate(registry.RECLAIMS)}
RECLAIM_EMPTY = RECLAIMS["empty"]
RECLAIM_EXIT = RECLAIMS["exit"]
RECLAIM_LINUX = RECLAIMS["linux"]

# --- process states ----------------------------------------------------------------
P_NONE = 0  # never spawned, or exited
P_ALIVE = 1
P_FAILED = 2  # its root could not be allocated: later events are skipped

# --- kalloc handle states (0: an empty slot of the handle table, sim/handles.py) ----
H_LIVE = 1
H_FAILED = 2  # its kalloc failed: a kfree does nothing


# Per process: the root table's slot (-1 none), P_* state, scheme mode and VMM flag (sim/schemes.py),
# EPT frames and tables held (in pages), and whether its trace gave it VMAs (a `reserve`:
# under reclaim linux its tables are freed by VMA rules, else as under `empty`). `Tables.procs`.
Procs = namedtuple("Procs", "root state mode vmm ept tables vma")
# The gigantic (1 GiB) pages: a reference count per id and a stack of free ids. `Tables.gig`.
Gigantic = namedtuple("Gigantic", "ref stack")

# The page-table state. Its own arrays are the table store, one element per table slot
# (ent: the 512 entries; t_kpt/t_ept: the frames of the KPT page and its EPT twin, -1 none;
# kind, count of present entries, level, parent slot and index in it, owner process; the
# deposit list heads and tails) or per frame (refcnt; dep_next; pb_wasted per 2 MiB
# block, huge_file per 2 MiB of frames), `slots` the stack of free slots and `meta` the
# scalars (sim/slots.py). The other state the kernels reach through `t` is kept in
# records of its own: the processes (procs), the gigantic pages (gig), the kalloc handles
# (handles, sim/handles.py), the VMAs (vmas, sim/vmas.py) and the rollback log of the
# page being mapped (log, sim/slots.py S_*).
Tables = namedtuple(
    "Tables",
    "ent t_kpt t_ept t_kind t_cnt t_level t_parent t_pidx slots refcnt meta t_owner pb_wasted "
    "t_dep_head t_dep_tail dep_next huge_file procs gig handles vmas log",
)


def _new_procs(n: int) -> Procs:
    return Procs(root=np.full(n, -1, np.int32), state=np.zeros(n, np.int8), mode=np.zeros(n, np.int8),
                 vmm=np.zeros(n, np.int8), ept=np.zeros(n, np.int64), tables=np.zeros(n, np.int64),
                 vma=np.zeros(n, np.int8))


def new_tables(n_frames: int, n_procs: int, handle_cap: int = 1024, slot_cap: int = 4096,
               g_cap: int = 64, reclaim: int = RECLAIM_EMPTY, deposit: bool = False,
               pt_reclaim: bool = False) -> Tables:
    t = Tables(
        ent=np.zeros((slot_cap, ENTRIES), np.int32),
        t_kpt=np.full(slot_cap, -1, np.int32),
        t_ept=np.full(slot_cap, -1, np.int32),
        t_kind=np.zeros(slot_cap, np.int8),
        t_cnt=np.zeros(slot_cap, np.int32),
        t_level=np.zeros(slot_cap, np.int8),
        t_parent=np.full(slot_cap, -1, np.int32),
        t_pidx=np.zeros(slot_cap, np.int32),
        slots=np.arange(slot_cap - 1, -1, -1, dtype=np.int32),  # stack: slot 0 on top
        refcnt=np.zeros(n_frames, np.int32),
        meta=np.zeros(T_META_LEN, np.int64),
        t_owner=np.full(slot_cap, -1, np.int32),  # the process of a live table; -1: a free slot
        # EPT frames of processes that are not VMMs, per 2 MiB block (sim/occupancy.py)
        pb_wasted=np.zeros((n_frames + (1 << PB_SHIFT) - 1) >> PB_SHIFT, np.int32),
        # the PTE tables deposited with a pml2's anonymous 2 MiB pages, as a list through
        # dep_next (indexed by frame) from the slot's head to its tail; -1 ends it
        t_dep_head=np.full(slot_cap, -1, np.int32),
        t_dep_tail=np.full(slot_cap, -1, np.int32),
        dep_next=np.full(n_frames if deposit else 0, -1, np.int32),
        # 1 for a 2 MiB data block holding a file-backed page (indexed by frame >> IDX_BITS)
        huge_file=np.zeros(((n_frames >> IDX_BITS) + 1) if deposit else 0, np.int8),
        procs=_new_procs(n_procs),
        gig=Gigantic(ref=np.zeros(g_cap, np.int32), stack=np.arange(g_cap - 1, -1, -1, dtype=np.int32)),
        handles=new_handles(handle_cap),
        vmas=new_vmas(n_procs, 1024 if reclaim == RECLAIM_LINUX else 0),
        log=np.zeros(SCRATCH_LEN, np.int64),
    )
    t.meta[T_SLOTS_FREE] = slot_cap
    t.meta[T_G_FREE] = g_cap
    t.meta[T_RECLAIM] = reclaim
    t.meta[T_DEPOSIT] = int(deposit)
    t.meta[T_PT_RECLAIM] = int(pt_reclaim)
    return t


def _grow1(a: np.ndarray, n: int, fill) -> np.ndarray:
    out = np.full((n,) + a.shape[1:], fill, a.dtype)
    out[: len(a)] = a
    return out


def grow_tables(t: Tables, slot_cap: int | None = None, g_cap: int | None = None,
                n_procs: int | None = None, handle_cap: int | None = None, vma_pool: int | None = None) -> Tables:
    """A copy of `t` with larger pools; live content and free stacks carried over."""
    d = t._asdict()
    if slot_cap is not None and slot_cap > len(t.t_kpt):
        free = int(t.meta[T_SLOTS_FREE])
        d["ent"] = _grow1(t.ent, slot_cap, 0)
        for name, fill in (("t_kpt", -1), ("t_ept", -1), ("t_kind", 0), ("t_cnt", 0), ("t_level", 0),
                           ("t_parent", -1), ("t_pidx", 0), ("t_owner", -1), ("t_dep_head", -1),
                           ("t_dep_tail", -1)):
            d[name] = _grow1(d[name], slot_cap, fill)
        d["slots"] = _grown_stack(t.slots, free, slot_cap)
        d["meta"] = t.meta.copy()
        d["meta"][T_SLOTS_FREE] = free + slot_cap - len(t.t_kpt)
    if g_cap is not None and g_cap > len(t.gig.ref):
        free = int(t.meta[T_G_FREE])
        d["gig"] = Gigantic(ref=_grow1(t.gig.ref, g_cap, 0), stack=_grown_stack(t.gig.stack, free, g_cap))
        meta = d["meta"] if d["meta"] is not t.meta else t.meta.copy()
        meta[T_G_FREE] = free + g_cap - len(t.gig.ref)
        d["meta"] = meta
    if n_procs is not None and n_procs > len(t.procs.root):
        fills = {"root": -1}
        d["procs"] = Procs(**{k: _grow1(a, n_procs, fills.get(k, 0)) for k, a in t.procs._asdict().items()})
        v = t.vmas
        d["vmas"] = v._replace(off=_grow1(v.off, n_procs, 0), cap=_grow1(v.cap, n_procs, 0),
                               cnt=_grow1(v.cnt, n_procs, 0))
    if vma_pool is not None and vma_pool > len(t.vmas.s):
        v = d["vmas"]
        d["vmas"] = v._replace(s=_grow1(v.s, vma_pool, 0), e=_grow1(v.e, vma_pool, 0))
    if handle_cap is not None and handle_cap > len(t.handles.key):
        d["handles"] = grown(t.handles, handle_cap)
    return Tables(**d)


def _grown_stack(stack: np.ndarray, free: int, cap: int) -> np.ndarray:
    """A free-id stack of `cap` ids from one holding `free` free ids of len(stack): the
    new ids go below the existing free ones, so low ids stay preferred."""
    out = np.empty(cap, np.int32)
    added = cap - len(stack)
    out[:added] = np.arange(cap - 1, len(stack) - 1, -1, dtype=np.int32)
    out[added: added + free] = stack[:free]
    return out


# --- allocation log (rollback of a page that cannot be mapped) ---------------------
@inline_kernel
def log_reset(t):
    t.log[S_LOG_N] = 0
    t.log[S_CREATED_N] = 0
    t.log[S_TWIN_N] = 0


@inline_kernel
def _log_alloc(t, frame, order):
    n = t.log[S_LOG_N]
    t.log[S_LOG + 2 * n] = frame
    t.log[S_LOG + 2 * n + 1] = order
    t.log[S_LOG_N] = n + 1


@inline_kernel
def alloc_table_pages(b, ctr, order):
    """Frames for page tables (an order-1 block for a pair): a page-table request, counted
    with whether its free list was empty (C.PT_REQUESTS, C.PT_SPLIT), or a failure counted
    with its compaction cost. Returns the first frame or -1."""
    split = needs_split(b, order, MT_UNMOVABLE)
    f = page_alloc_call(b, order, MT_UNMOVABLE, OWN_TABLE)
    if f < 0:
        count_failures(b, ctr, order, 1)
    else:
        ctr[C.PT_REQUESTS] += 1
        if split:
            ctr[C.PT_SPLIT] += 1
    return f


@inline_kernel
def _alloc(b, t, ctr, order, own):
    """An allocation for a page being mapped -- table frames (own = OWN_TABLE) or its data
    frame (OWN_DATA) -- logged for rollback; failures counted by order."""
    if own == OWN_TABLE:
        f = alloc_table_pages(b, ctr, order)
    else:
        f = page_alloc_call(b, order, MT_MOVABLE, own)
        if f < 0:
            count_failures(b, ctr, order, 1)
    if f >= 0:
        _log_alloc(t, f, order)
    return f


@inline_kernel
def count_ept(t, ctr, p, delta, frame):
    """EPT frame `frame` joins (delta 1) or leaves (-1) process p's EPT; it is waste while
    p is not a VMM."""
    ctr[C.EPT] += delta
    t.procs.ept[p] += delta
    if t.procs.vmm[p] == 0:
        ctr[C.EPT_WASTE] += delta
        t.pb_wasted[frame >> PB_SHIFT] += delta


@callee_kernel
def ept_no_longer_waste(t, p):
    """Process p became a VMM: its EPT frames stop counting as wasted in their blocks."""
    for s in range(len(t.t_owner)):
        if t.t_owner[s] == p and t.t_ept[s] >= 0:
            t.pb_wasted[t.t_ept[s] >> PB_SHIFT] -= 1


@inline_kernel
def _register(t, ctr, p, level, kind, kpt, ept, parent, pidx):
    """Take a slot for a new table whose pages are allocated and link it to `parent`."""
    top = t.meta[T_SLOTS_FREE] - 1
    t.meta[T_SLOTS_FREE] = top
    s = t.slots[top]
    t.t_kpt[s] = kpt
    t.t_ept[s] = ept
    t.t_kind[s] = kind
    t.t_cnt[s] = 0
    t.t_level[s] = level
    t.t_parent[s] = parent
    t.t_pidx[s] = pidx
    if parent >= 0:
        t.ent[parent, pidx] = s + 1
        t.t_cnt[parent] += 1
    t.t_owner[s] = p
    t.t_dep_head[s] = -1
    t.t_dep_tail[s] = -1
    ctr[C.KPT + level - 1] += 1
    if ept >= 0:
        count_ept(t, ctr, p, 1, ept)
    t.procs.tables[p] += 1
    return s


@inline_kernel
def _unregister(t, ctr, p, s):
    """Unlink table `s` from its parent and give its slot back (pages not freed here)."""
    parent = t.t_parent[s]
    if parent >= 0:
        t.ent[parent, t.t_pidx[s]] = 0
        t.t_cnt[parent] -= 1
    ctr[C.KPT + t.t_level[s] - 1] -= 1
    if t.t_ept[s] >= 0:
        count_ept(t, ctr, p, -1, t.t_ept[s])
    t.t_owner[s] = -1
    t.procs.tables[p] -= 1
    top = t.meta[T_SLOTS_FREE]
    t.slots[top] = s
    t.meta[T_SLOTS_FREE] = top + 1


@callee_kernel
def new_table(b, t, ctr, p, level, parent, pidx):
    """Allocate a table of `level` for process p in the process's current mode.

    KPT page first, then (KIND_SEP) its EPT page; a pair is a single order-1 block.
    Returns the slot, or -1 if an allocation failed (what this call allocated is in the
    log; the caller rolls the whole page back).
    """
    mode = t.procs.mode[p]
    if mode == MODE_LAZY:
        mode = KIND_KPT  # its twin comes from the walk (lazy_twin)
    if mode == KIND_PAIR:
        f = _alloc(b, t, ctr, 1, OWN_TABLE)
        if f < 0:
            return -1
        kpt = f
        ept = f + 1
    else:
        kpt = _alloc(b, t, ctr, 0, OWN_TABLE)
        if kpt < 0:
            return -1
        ept = -1
        if mode == KIND_SEP:
            ept = _alloc(b, t, ctr, 0, OWN_TABLE)
            if ept < 0:
                return -1
    s = _register(t, ctr, p, level, mode, kpt, ept, parent, pidx)
    n = t.log[S_CREATED_N]
    t.log[S_CREATED + n] = s
    t.log[S_CREATED_N] = n + 1
    return s


@callee_kernel
def lazy_twin(b, t, ctr, p, s):
    """separate-lazy: give table s its EPT twin if it has none (as an EPT fault would).
    Returns False if the EPT page cannot be allocated (the caller rolls back)."""
    if t.t_ept[s] >= 0:
        return True
    e = _alloc(b, t, ctr, 0, OWN_TABLE)
    if e < 0:
        return False
    t.t_ept[s] = e
    t.t_kind[s] = KIND_SEP
    count_ept(t, ctr, p, 1, e)
    n = t.log[S_TWIN_N]
    t.log[S_TWIN + n] = s
    t.log[S_TWIN_N] = n + 1
    return True


@callee_kernel
def rollback(b, t, ctr, p):
    """Undo a page's partial work: unlink created tables, free its frames in reverse."""
    for j in range(t.log[S_TWIN_N] - 1, -1, -1):
        s = t.log[S_TWIN + j]
        count_ept(t, ctr, p, -1, t.t_ept[s])
        t.t_ept[s] = -1
        t.t_kind[s] = KIND_KPT
    for j in range(t.log[S_CREATED_N] - 1, -1, -1):
        _unregister(t, ctr, p, t.log[S_CREATED + j])
    for j in range(t.log[S_LOG_N] - 1, -1, -1):
        page_free_call(b, t.log[S_LOG + 2 * j], t.log[S_LOG + 2 * j + 1])
    log_reset(t)


@callee_kernel
def free_table(b, t, ctr, p, s):
    """Free table `s` (it must be empty): its KPT page, then its EPT page."""
    kind = t.t_kind[s]
    kpt = t.t_kpt[s]
    ept = t.t_ept[s]
    _unregister(t, ctr, p, s)
    if kind == KIND_PAIR:
        page_free_call(b, kpt, 1)
    else:
        page_free_call(b, kpt, 0)
        if ept >= 0:
            page_free_call(b, ept, 0)


@inline_kernel
def _count_write(t, ctr, leaf_slot, leaf_level):
    """Walk cost of writing one leaf entry and its EPT mirror (docs/semantics.md)."""
    levels = ROOT_LEVEL + 1 - leaf_level  # tables on the path, root included
    ctr[C.WRITES] += 1
    ctr[C.KPT_TOUCH] += levels
    kind = t.t_kind[leaf_slot]
    if kind != KIND_KPT:
        ctr[C.EPT_TOUCH] += levels
        if kind == KIND_SEP:
            ctr[C.EPT_LOADS] += levels


# --- THP deposits ------------------------------------------------------------------
# Linux allocates a PTE table with every anonymous 2 MiB page it maps
# (mm/huge_memory.c: __do_huge_pmd_anonymous_page, and copy_huge_pmd at fork) and
# deposits it with the pml2 (pgtable_trans_huge_deposit), so that splitting the huge page
# later never has to allocate; the table is counted in VmPTE (mm_inc_nr_ptes) and freed
# when the huge page is unmapped (zap_huge_pmd: zap_deposited_table). The deposits of a
# pml2 form a list whose order decides which frame each unmap frees. From its head, the
# list [h, x1 .. xn] becomes [new, x1 .. xn, h] on a deposit (list_add after the head,
# then the new table is the head) and [x1 .. xn] on a withdraw, which returns h
# (mm/pgtable-generic.c: pgtable_trans_huge_deposit / pgtable_trans_huge_withdraw).
@inline_kernel
def deposit(t, s, f):
    """Deposit PTE table frame f with pml2 table s."""
    h = t.t_dep_head[s]
    if h < 0:
        t.dep_next[f] = -1
        t.t_dep_tail[s] = f
    else:
        rest = t.dep_next[h]
        if rest < 0:
            t.dep_next[f] = h
        else:
            t.dep_next[t.t_dep_tail[s]] = h
            t.dep_next[f] = rest
        t.dep_next[h] = -1
        t.t_dep_tail[s] = h
    t.t_dep_head[s] = f


@inline_kernel
def withdraw(t, s):
    """Take the head of pml2 table s's deposits (there is one); returns its frame."""
    h = t.t_dep_head[s]
    nxt = t.dep_next[h]
    t.t_dep_head[s] = nxt
    if nxt < 0:
        t.t_dep_tail[s] = -1
    t.dep_next[h] = -1
    return h


@inline_kernel
def _deposits(t, frame):
    """True if mapping the 2 MiB data block at `frame` deposits a PTE table: the machine
    deposits and the page is anonymous."""
    return t.meta[T_DEPOSIT] != 0 and t.huge_file[frame >> IDX_BITS] == 0


MAP_OK = 0
MAP_ALREADY = 1
MAP_FAILED = 2
MAP_SLOW = 3  # map_small: not the common case, map_page must map this page


@callee_kernel
def is_mapped(t, p, vpn, size):
    """True if the page's slot is in use: a huge page above it, or its entry set."""
    cur = t.procs.root[p]
    level = ROOT_LEVEL
    while level > size + 1:
        e = t.ent[cur, (vpn >> (IDX_BITS * (level - 1))) & IDX_MASK]
        if e < 0:
            return True
        if e == 0:
            return False
        cur = e - 1
        level -= 1
    return t.ent[cur, (vpn >> (IDX_BITS * size)) & IDX_MASK] != 0


@callee_kernel
def pmd_none(t, p, vpn):
    """True if the pml2 entry over 4-KiB page `vpn` of p is empty (no pml1 table, no 2 MiB
    page; the tables above may be missing too): where Linux's fault maps a transparent
    huge page (`pmd_none(*vmf->pmd)` in __handle_mm_fault)."""
    cur = t.procs.root[p]
    level = ROOT_LEVEL
    while level > 2:
        e = t.ent[cur, (vpn >> (IDX_BITS * (level - 1))) & IDX_MASK]
        if e < 0:
            return False  # a 1 GiB page covers it
        if e == 0:
            return True
        cur = e - 1
        level -= 1
    return t.ent[cur, (vpn >> IDX_BITS) & IDX_MASK] == 0


@callee_kernel
def map_page(b, t, ctr, p, vpn, size, share, flags):
    """Map the page of size class `size` (0: 4 KiB, 1: 2 MiB, 2: 1 GiB) at 4-KiB page
    number `vpn` (aligned to the page size) into process p.

    Missing tables are created top down; then a data frame is allocated, or, when
    `share` >= 0 (fork), frame `share` gains a reference; then, for an anonymous 2 MiB
    page on a machine that deposits, the PTE table deposited with it. A page whose slot
    is in use (mapped at any size, or for a huge page holding a lower table) is left as
    it is. `flags`: the map event's arg (MAP_FILE), for a new 2 MiB page.
    """
    leaf_level = size + 1
    lazy = t.procs.mode[p] == MODE_LAZY
    if lazy and is_mapped(t, p, vpn, size):
        return MAP_ALREADY  # checked first: a mapped page's walk creates no twin
    cur = t.procs.root[p]
    log_reset(t)
    level = ROOT_LEVEL
    while level > leaf_level:
        i = (vpn >> (IDX_BITS * (level - 1))) & IDX_MASK
        e = t.ent[cur, i]
        if e < 0:
            return MAP_ALREADY  # a huge page above covers this one
        if e == 0:
            nxt = new_table(b, t, ctr, p, level - 1, cur, i)
            if nxt < 0:
                rollback(b, t, ctr, p)
                ctr[C.FAILED_MAPS] += 1
                return MAP_FAILED
            cur = nxt
        else:
            cur = e - 1
        if lazy and not lazy_twin(b, t, ctr, p, cur):
            rollback(b, t, ctr, p)
            ctr[C.FAILED_MAPS] += 1
            return MAP_FAILED
        level -= 1
    i = (vpn >> (IDX_BITS * (leaf_level - 1))) & IDX_MASK
    if t.ent[cur, i] != 0:
        return MAP_ALREADY
    if size == 1 and t.meta[T_DEPOSIT] != 0:
        # the data block first (a fork shares the parent's), then the table
        if share >= 0:
            frame = share
        else:
            frame = _alloc(b, t, ctr, IDX_BITS, OWN_DATA)
            if frame < 0:
                rollback(b, t, ctr, p)
                ctr[C.FAILED_MAPS] += 1
                return MAP_FAILED
            t.huge_file[frame >> IDX_BITS] = flags & MAP_FILE
        if _deposits(t, frame):
            d = _alloc(b, t, ctr, 0, OWN_TABLE)
            if d < 0:
                rollback(b, t, ctr, p)
                ctr[C.FAILED_MAPS] += 1
                return MAP_FAILED
            deposit(t, cur, d)
            ctr[C.DEPOSITED] += 1
        if share >= 0:
            t.refcnt[frame] += 1
        else:
            t.refcnt[frame] = 1
            ctr[C.DATA] += 1 << IDX_BITS
    elif share >= 0:
        frame = share
        if size == 2:
            t.gig.ref[frame] += 1
        else:
            t.refcnt[frame] += 1
    elif size == 2:
        top = t.meta[T_G_FREE] - 1
        t.meta[T_G_FREE] = top
        frame = t.gig.stack[top]
        t.gig.ref[frame] = 1
        ctr[C.GIGANTIC] += 1
    else:
        order = IDX_BITS * size
        frame = _alloc(b, t, ctr, order, OWN_DATA)
        if frame < 0:
            rollback(b, t, ctr, p)
            ctr[C.FAILED_MAPS] += 1
            return MAP_FAILED
        t.refcnt[frame] = 1
        ctr[C.DATA] += 1 << order
    t.ent[cur, i] = frame + 1 if size == 0 else -(frame + 1)
    t.t_cnt[cur] += 1
    ctr[C.MAPPED] += 1
    _count_write(t, ctr, cur, leaf_level)
    return MAP_OK


@callee_kernel
def unmap_entry(b, t, ctr, p, slot, i, size, keep):
    """Remove leaf entry i of table `slot` (page size class `size`), release its frame when
    this was its last mapping, then, unless `keep`, free every table left empty, bottom up."""
    e = t.ent[slot, i]
    frame = e - 1 if e > 0 else -e - 1
    t.ent[slot, i] = 0
    t.t_cnt[slot] -= 1
    ctr[C.UNMAPPED] += 1
    _count_write(t, ctr, slot, size + 1)
    if size == 2:
        t.gig.ref[frame] -= 1
        if t.gig.ref[frame] == 0:
            top = t.meta[T_G_FREE]
            t.gig.stack[top] = frame
            t.meta[T_G_FREE] = top + 1
            ctr[C.GIGANTIC] -= 1
    else:
        if size == 1 and _deposits(t, frame):
            # zap_huge_pmd frees the deposited table (zap_deposited_table), then the page
            page_free_call(b, withdraw(t, slot), 0)
            ctr[C.DEPOSITED] -= 1
        t.refcnt[frame] -= 1
        if t.refcnt[frame] == 0:
            order = IDX_BITS * size
            page_free_call(b, frame, order)
            ctr[C.DATA] -= 1 << order
    if keep:
        return  # tables stay, even empty (reclaim exit, or linux: see free_pgd_range)
    cur = slot
    while t.t_level[cur] < ROOT_LEVEL and t.t_cnt[cur] == 0:
        parent = t.t_parent[cur]
        free_table(b, t, ctr, p, cur)
        cur = parent


# --- the common cases, inlined ----------------------------------------------------------
# A call of a kernel passes the whole machine state -- every array of `b` and `t`, some
# 400 machine words -- by value, which cost several times what mapping the page itself
# costs (docs/performance.md). The walk and the event loop map, copy and unmap 4-KiB
# pages one at a time, millions per replay, so their common case is done inline here
# and the full kernels (map_page, unmap_entry) run only for what it does not cover.
# Each does exactly what the full kernel would do for such a page, in the same order.
LEAF_COVERED = -1  # leaf_of: a huge page above covers the page (and its whole 2 MiB)
LEAF_SLOW = -2  # leaf_of: a table to create, or a lazy table without its twin: map_page's work


@inline_kernel
def leaf_of(t, p, vpn):
    """The PTE table (slot) holding 4-KiB page `vpn` of process p when every table on the
    path exists (and, for a lazy process, has its EPT twin); else LEAF_COVERED or
    LEAF_SLOW. Every page of the same 2 MiB has the same answer until a table is created,
    freed or given its EPT twin -- only map_page does that while pages are mapped: the
    map loops look it up once per 2 MiB and again after map_page."""
    lazy = t.procs.mode[p] == MODE_LAZY
    cur = t.procs.root[p]
    for level in range(ROOT_LEVEL, 1, -1):
        e = t.ent[cur, (vpn >> (IDX_BITS * (level - 1))) & IDX_MASK]
        if e < 0:
            return LEAF_COVERED
        if e == 0:
            return LEAF_SLOW
        cur = e - 1
        if lazy and t.t_ept[cur] < 0:
            return LEAF_SLOW  # a twin to give (lazy_twin), unless the page is mapped
    return cur


@inline_kernel
def _set_small(t, ctr, leaf, i, frame):
    """Entry i of PTE table `leaf` now maps `frame` (its reference taken)."""
    t.ent[leaf, i] = frame + 1
    t.t_cnt[leaf] += 1
    ctr[C.MAPPED] += 1
    _count_write(t, ctr, leaf, 1)


@inline_kernel
def map_small(b, t, ctr, leaf, i):
    """map_page(b, t, ctr, p, vpn, 0, -1, 0) for entry i of PTE table `leaf`, the
    leaf_of(t, p, vpn) of the page (a slot, or LEAF_COVERED, LEAF_SLOW): MAP_OK,
    MAP_ALREADY or MAP_FAILED (no frame: the page is rolled back, which here is
    nothing). MAP_SLOW, nothing changed, when leaf_of found no table."""
    if leaf < 0:
        return MAP_ALREADY if leaf == LEAF_COVERED else MAP_SLOW
    if t.ent[leaf, i] != 0:
        return MAP_ALREADY
    frame = page_alloc(b, 0, MT_MOVABLE, OWN_DATA)
    if frame < 0:
        count_failures(b, ctr, 0, 1)
        ctr[C.FAILED_MAPS] += 1
        return MAP_FAILED
    t.refcnt[frame] = 1
    ctr[C.DATA] += 1
    _set_small(t, ctr, leaf, i, frame)
    return MAP_OK


@inline_kernel
def share_small(t, ctr, leaf, i, frame):
    """map_page(b, t, ctr, p, vpn, 0, frame, 0) -- a fork's copy of a 4-KiB page, sharing
    `frame` -- for entry i of PTE table `leaf` (as map_small): MAP_OK, MAP_ALREADY or
    MAP_SLOW. No allocation, so no allocator code in the walker that inlines it."""
    if leaf < 0:
        return MAP_ALREADY if leaf == LEAF_COVERED else MAP_SLOW
    if t.ent[leaf, i] != 0:
        return MAP_ALREADY
    t.refcnt[frame] += 1
    _set_small(t, ctr, leaf, i, frame)
    return MAP_OK


@inline_kernel
def unmap_small(b, t, ctr, slot, i, keep):
    """unmap_entry(b, t, ctr, p, slot, i, 0, keep) for a 4-KiB page whose table stays
    (`keep`, or other entries remain): True when done, False (nothing changed) when
    unmap_entry must do it (it frees the tables the unmap empties)."""
    if not keep and t.t_cnt[slot] == 1:
        return False
    frame = t.ent[slot, i] - 1
    t.ent[slot, i] = 0
    t.t_cnt[slot] -= 1
    ctr[C.UNMAPPED] += 1
    _count_write(t, ctr, slot, 1)
    t.refcnt[frame] -= 1
    if t.refcnt[frame] == 0:
        page_free(b, frame, 0)
        ctr[C.DATA] -= 1
    return True


@inline_kernel
def keeps_tables(t, p):
    """True if unmapping leaves p's emptied tables in place: reclaim `exit`, or `linux`
    for a process with VMAs (whose tables only free_pgd_range and PT_RECLAIM free)."""
    r = t.meta[T_RECLAIM]
    return r == RECLAIM_EXIT or (r == RECLAIM_LINUX and t.procs.vma[p] != 0)


@callee_kernel
def mirror_table(b, t, ctr, p, s, kind):
    """Give table s an EPT twin of `kind` (become_vmm, sim/schemes.py): a separate EPT
    page (KIND_SEP), or a move into a fresh pair block (KIND_PAIR: allocate it, copy,
    free the old page). A failed allocation leaves the table as it was."""
    if kind == KIND_SEP:
        e = alloc_table_pages(b, ctr, 0)
        if e < 0:
            return
        t.t_ept[s] = e
        t.t_kind[s] = KIND_SEP
        count_ept(t, ctr, p, 1, e)
        if t.t_level[s] != ROOT_LEVEL:
            ctr[C.MIRRORED] += 1
    else:  # move into a fresh pair: allocate the block, copy, free the old page
        f = alloc_table_pages(b, ctr, 1)
        if f < 0:
            return
        old = t.t_kpt[s]
        t.t_kpt[s] = f
        t.t_ept[s] = f + 1
        t.t_kind[s] = KIND_PAIR
        page_free_call(b, old, 0)
        count_ept(t, ctr, p, 1, f + 1)
        ctr[C.COPIES] += 1
