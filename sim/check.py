"""Invariants of the simulated machine, checked on the compiled core's own state.

`replay --check` calls `check_state` after every event (slow: for debugging) and names the
first event after which one breaks. The invariants (docs/semantics.md#invariants):

* pages are conserved: every frame is free, held exactly once, or a hole of the initial
  state, and the counters agree (free + tables + data + kalloc + background = frames - holes);
* no frame is handed out twice (free blocks, table pages, data frames, kernel blocks);
* buddies always coalesce (buddy allocators): no free block has a free buddy of its order;
* each pair's EPT page is its KPT page + 1 (order-1 aligned under a buddy allocator);
* the EPT mirrors the KPT wherever a process has one: every table of a process whose mode
  has an EPT has its twin (unless an allocation failure left one out);
* every table's entry count is its number of used entries, and under reclaim `empty` (and
  `linux`, for a process without VMAs) no table below a root is empty;
* each process's VMAs (reclaim `linux`) are sorted, disjoint and not touching, in a block
  of the pool of its own; a process that is not alive has none;
* on a machine that deposits (docs/semantics.md#thp-deposits), each pml2 holds exactly one
  deposited PTE table per anonymous 2 MiB page it maps, and no other table holds any.
"""

from __future__ import annotations

import numpy as np

from ptpair.errors import InvariantError
from ptpair.sim import counters as C
from ptpair.sim.allocator import ALLOC_AKAROS
from ptpair.sim.buddy import N_ORDERS
from ptpair.sim.pagetable import (
    H_LIVE, IDX_BITS, KIND_PAIR, KIND_SEP, MODE_LAZY, P_ALIVE, RECLAIM_EMPTY, RECLAIM_LINUX, ROOT_LEVEL
)
from ptpair.sim.slots import (
    M_ALLOCATOR, M_BACKGROUND, M_FRAMES, M_FREE_PAGES, M_HOLES, M_MEM_END, T_DEPOSIT, T_RECLAIM, T_SLOTS_FREE, T_V_TOP
)


def check_state(m) -> None:
    """Raise InvariantError naming the first invariant the machine's state breaks."""
    b, t, c = m.buddy, m.tables, m.ctr
    n = int(b.meta[M_FRAMES])
    owner = np.zeros(n + 1, np.int64)  # difference array of claims per frame
    akaros = int(b.meta[M_ALLOCATOR]) == ALLOC_AKAROS

    def claim(frames, orders):
        frames = np.asarray(frames, np.int64)
        ends = frames + (np.int64(1) << np.asarray(orders, np.int64))
        if len(frames) and (frames.min() < 0 or ends.max() > n):
            raise InvariantError("a block lies outside memory")
        np.add.at(owner, frames, 1)
        np.add.at(owner, ends, -1)

    heads = np.flatnonzero(b.blk >= 0)
    orders = b.blk[heads].astype(np.int64)
    claim(heads, orders)
    if not akaros:
        if np.any(heads & ((np.int64(1) << orders) - 1)):
            raise InvariantError("a free block is not aligned to its order")
        small = orders < N_ORDERS - 1
        buddies = heads[small] ^ (np.int64(1) << orders[small])
        ok = buddies < n
        if np.any(b.blk[buddies[ok]] == orders[small][ok]):
            raise InvariantError("two free buddies of the same order were not merged")

    free_slots = set(t.slots[: int(t.meta[T_SLOTS_FREE])].tolist())
    live = np.array([s for s in range(len(t.t_kpt)) if s not in free_slots], np.int64)
    kinds = t.t_kind[live]
    pair = kinds == KIND_PAIR
    if np.any(t.t_ept[live[pair]] != t.t_kpt[live[pair]] + 1):
        raise InvariantError("a pair's EPT page is not its KPT page + 1")
    if not akaros and np.any(t.t_kpt[live[pair]] & 1):
        raise InvariantError("a pair is not an order-1 aligned block")
    claim(t.t_kpt[live[pair]], np.ones(pair.sum(), np.int64))
    single = ~pair
    claim(t.t_kpt[live[single]], np.zeros(single.sum(), np.int64))
    sep = live[single & (t.t_ept[live] >= 0)]
    claim(t.t_ept[sep], np.zeros(len(sep), np.int64))

    # entry counts, empty tables, data frames
    rows = t.ent[live]
    used = (rows != 0).sum(axis=1)
    if np.any(used != t.t_cnt[live]):
        raise InvariantError("a table's entry count differs from its used entries")
    levels = t.t_level[live]
    reclaim = int(t.meta[T_RECLAIM])
    # under linux, a process without VMAs frees its tables as under empty
    frees_empty = (np.full(len(live), reclaim == RECLAIM_EMPTY) if reclaim != RECLAIM_LINUX
                   else t.procs.vma[t.t_owner[live]] == 0)
    if np.any(frees_empty & (levels < ROOT_LEVEL) & (used == 0)):
        raise InvariantError("an empty table was not freed")
    _check_vmas(t)
    leaf4k = rows[levels == 1]
    frames4k = np.unique(leaf4k[leaf4k > 0] - 1)
    leaf2m = rows[levels == 2]
    frames2m = np.unique(-leaf2m[leaf2m < 0] - 1)
    claim(frames4k, np.zeros(len(frames4k), np.int64))
    claim(frames2m, np.full(len(frames2m), IDX_BITS, np.int64))
    deposited = _check_deposits(t, live, levels, leaf2m)
    claim(deposited, np.zeros(len(deposited), np.int64))
    hl = (t.handles.used != 0) & (t.handles.state == H_LIVE)
    claim(t.handles.frame[hl], t.handles.order[hl].astype(np.int64))
    # holes: unmovable but not allocated; background: allocated frames nothing above holds
    am = np.unpackbits(b.am.view(np.uint8), bitorder="little")[:n].astype(bool)
    um = np.unpackbits(b.um.view(np.uint8), bitorder="little")[:n].astype(bool)
    um[int(b.meta[M_MEM_END]):] = True  # the holes that end memory are not marked
    holes = np.flatnonzero(um & ~am)
    background = np.flatnonzero(am & (np.cumsum(owner)[:n] == 0))
    claim(background, np.zeros(len(background), np.int64))
    claim(holes, np.zeros(len(holes), np.int64))
    if len(background) != int(b.meta[M_BACKGROUND]) or len(holes) != int(b.meta[M_HOLES]):
        raise InvariantError(f"{len(background)} allocated frames are held by no table, data page or kalloc, "
                             f"but {int(b.meta[M_BACKGROUND])} are background (or the holes differ from "
                             f"{int(b.meta[M_HOLES])})")

    held = np.cumsum(owner)[:n]
    if np.any(held > 1):
        raise InvariantError(f"frame {int(np.flatnonzero(held > 1)[0])} is handed out twice")
    if np.any(held == 0):
        raise InvariantError(f"frame {int(np.flatnonzero(held == 0)[0])} is neither free nor held (lost)")
    if len(deposited) != int(c[C.DEPOSITED]):
        raise InvariantError(f"{len(deposited)} PTE tables are deposited, the counter says {int(c[C.DEPOSITED])}")
    kpt = int(c[C.KPT:C.KPT + 4].sum())
    if (int(b.meta[M_FREE_PAGES]) + kpt + len(deposited) + int(c[C.EPT]) + int(c[C.DATA]) + int(c[C.KALLOC])
            + len(background) != n - len(holes)):
        raise InvariantError("page counters do not add up to memory")
    if kpt != len(live) or int(c[C.EPT]) != int(pair.sum()) + len(sep):
        raise InvariantError("table counters differ from the live tables")

    # the EPT mirrors the KPT: follow each table up to its root, then its process
    if not c[C.FAIL:C.FAIL + N_ORDERS].any():
        root_of = live.copy()
        for _ in range(ROOT_LEVEL - 1):
            up = t.t_level[root_of] < ROOT_LEVEL
            root_of[up] = t.t_parent[root_of[up]]
        proc_by_root = {int(r): p for p, r in enumerate(t.procs.root) if t.procs.state[p] == P_ALIVE and r >= 0}
        for s, r in zip(live.tolist(), root_of.tolist()):
            p = proc_by_root.get(r)
            if p is None:
                raise InvariantError("a live table belongs to no live process")
            mode = int(t.procs.mode[p])
            if mode in (KIND_SEP, KIND_PAIR) and t.t_ept[s] < 0:
                raise InvariantError("a process with an EPT has a KPT table without its EPT twin")
            if mode == MODE_LAZY and t.t_level[s] == ROOT_LEVEL and t.t_ept[s] < 0:
                raise InvariantError("a separate-lazy VMM has no EPT root")


def _check_deposits(t, live, levels, leaf2m) -> np.ndarray:
    """The frames of every deposited PTE table, after checking that each pml2 holds one per
    anonymous 2 MiB page it maps and that no other slot holds any."""
    holders = np.flatnonzero(t.t_dep_head >= 0)
    if int(t.meta[T_DEPOSIT]) == 0:
        if len(holders):
            raise InvariantError("a machine that deposits no PTE tables holds one")
        return np.zeros(0, np.int64)
    pml2 = live[levels == 2]
    if not set(holders.tolist()) <= set(pml2.tolist()):
        raise InvariantError("a PTE table is deposited with a table that is not a live pml2")
    out = []
    for s, row in zip(pml2.tolist(), leaf2m):
        frames = -row[row < 0].astype(np.int64) - 1
        want = int((t.huge_file[frames >> IDX_BITS] == 0).sum())
        chain, f = [], int(t.t_dep_head[s])
        while f >= 0 and len(chain) <= want:
            chain.append(f)
            f = int(t.dep_next[f])
        if len(chain) != want or (chain and int(t.t_dep_tail[s]) != chain[-1]):
            raise InvariantError(f"a pml2 maps {want} anonymous 2 MiB pages but holds {len(chain)} deposited "
                                 f"PTE tables (or its list is broken)")
        out.extend(chain)
    return np.array(out, np.int64)


def _check_vmas(t) -> None:
    alive = t.procs.state == P_ALIVE
    if np.any((t.procs.vma != 0) & ~alive) or np.any((t.vmas.cnt > 0) & ~alive):
        raise InvariantError("a process that is not alive has VMAs")
    if np.any(t.vmas.cnt > t.vmas.cap):
        raise InvariantError("a process has more VMAs than its block holds")
    top = int(t.meta[T_V_TOP])
    blocks = sorted((int(o), int(c)) for o, c in zip(t.vmas.off[t.vmas.cap > 0], t.vmas.cap[t.vmas.cap > 0]))
    for (o1, c1), (o2, _) in zip(blocks, blocks[1:]):
        if o1 + c1 > o2:
            raise InvariantError("two processes' VMA blocks overlap")
    if blocks and blocks[-1][0] + blocks[-1][1] > top:
        raise InvariantError("a VMA block lies beyond the pool's top")
    for p in np.flatnonzero(t.vmas.cnt > 0):
        o, n = int(t.vmas.off[p]), int(t.vmas.cnt[p])
        s, e = t.vmas.s[o:o + n], t.vmas.e[o:o + n]
        if np.any(e <= s) or np.any(s[1:] <= e[:-1]):
            raise InvariantError(f"the VMAs of process {p} are not sorted, disjoint and apart")
