"""One walker over a process's page-table tree, for every walk the machine makes.

`walk` visits the present entries of process p's tree that overlap 4-KiB page numbers
[lo, hi), in ascending address order: each table below the root before its entries
(pre-order), each leaf (a 4-KiB, 2-MiB or 1-GiB page), and each table again after its
entries (post-order). What a visit does is the walk's `action`:

| action           | visits                  | does                                                        |
|------------------|-------------------------|-------------------------------------------------------------|
| `W_COPY`         | leaves                  | maps the page into process `x`, sharing its frame (fork)    |
| `W_UNMAP`        | leaves                  | unmap_entry (`x`: keep tables left empty)                   |
| `W_MIRROR`       | tables, pre-order       | gives each an EPT twin of kind `x` (become_vmm)             |
| `W_FREE_ALL`     | tables, post-order      | frees each (reclaim at exit; they hold no leaf)             |
| `W_FREE_PGD`     | tables, post-order      | frees each empty one whose span lies in [x, y) (free_pgd_range) |
| `W_RECLAIM_PTE`  | pml1 tables, post-order | frees each empty one whose span lies in [lo, hi) (PT_RECLAIM) |

Walks only present entries, so a walk of the whole address space costs what is mapped,
not 2^35 steps. A table freed during a walk (an unmap emptied it) has all-zero entries
and no slot is reused before the walk ends (a walk that frees allocates nothing), so the
loops may run on over it. The table pages of each level span PML2_SPAN, PML3_SPAN,
PML4_SPAN 4-KiB pages per entry (2 MiB, 1 GiB, 512 GiB of address space).
"""

from ptpair.sim.pagetable import (
    ENTRIES, IDX_BITS, MAP_SLOW, free_table, leaf_of, map_page, mirror_table, share_small, unmap_entry, unmap_small,
)
from ptpair.traces._jit import callee_kernel, inline_kernel

# 4-KiB pages an entry of each level spans, as shifts (an entry of a pml4 table spans
# 2^PML4_ENTRY_SHIFT pages); and the pages a whole table of each level spans
PML2_ENTRY_SHIFT = IDX_BITS  # 2 MiB
PML3_ENTRY_SHIFT = 2 * IDX_BITS  # 1 GiB
PML4_ENTRY_SHIFT = 3 * IDX_BITS  # 512 GiB
SPAN_PML1 = ENTRIES  # a pml1 table: 2 MiB
SPAN_PML2 = ENTRIES << PML2_ENTRY_SHIFT  # 1 GiB
SPAN_PML3 = ENTRIES << PML3_ENTRY_SHIFT  # 512 GiB
LEAF_UNKNOWN = -3  # walk: the child's leaf_of not looked up yet (sim/pagetable.py LEAF_*)
SIZE_4K, SIZE_2M, SIZE_1G = 0, 1, 2  # page-size classes of the leaves (map_page's `size`)

W_COPY, W_UNMAP, W_MIRROR, W_FREE_ALL, W_FREE_PGD, W_RECLAIM_PTE = range(6)


@inline_kernel
def _first(lo, base, shift):
    """The first index of a table at `base` whose entry (2^shift pages) overlaps [lo, ...)."""
    return (max(lo, base) - base) >> shift


@inline_kernel
def _end(hi, base, span, shift):
    """One past the last index of a table at `base` (spanning `span` pages) whose entry
    overlaps [..., hi)."""
    return ((min(hi, base + span) - 1 - base) >> shift) + 1


@inline_kernel
def _within(base, span, floor, ceiling):
    return base >= floor and base + span <= ceiling


@inline_kernel
def _leaf(b, t, ctr, p, action, s, i, size, vpn, e, x):
    """A present leaf: entry i of table s, of page-size class `size`, at page `vpn`."""
    if action == W_COPY:
        map_page(b, t, ctr, x, vpn, size, (e - 1) if e > 0 else (-e - 1), 0)
    else:  # W_UNMAP
        unmap_entry(b, t, ctr, p, s, i, size, x != 0)


@inline_kernel
def _leaf_4k(b, t, ctr, p, action, s, i, vpn, e, x, leaf):
    """_leaf for a 4-KiB page (e > 0), by the inlined common case where it applies.
    `leaf`: under W_COPY, the child's leaf_of for this page (looked up once per table).
    Returns whether map_page ran (the child's tables may have changed)."""
    if action == W_COPY:
        if share_small(t, ctr, leaf, i, e - 1) == MAP_SLOW:
            map_page(b, t, ctr, x, vpn, SIZE_4K, e - 1, 0)
            return True
    elif not unmap_small(b, t, ctr, s, i, x != 0):  # W_UNMAP
        unmap_entry(b, t, ctr, p, s, i, SIZE_4K, x != 0)
    return False


@inline_kernel
def _post(b, t, ctr, p, action, s, base, span, lo, hi, x, y):
    """Table s (its span: [base, base + span)), after its entries."""
    if action == W_FREE_ALL:
        free_table(b, t, ctr, p, s)
    elif action == W_FREE_PGD:
        if t.t_cnt[s] == 0 and _within(base, span, x, y):
            free_table(b, t, ctr, p, s)
    elif action == W_RECLAIM_PTE:
        if span == SPAN_PML1 and t.t_cnt[s] == 0 and _within(base, span, lo, hi):
            free_table(b, t, ctr, p, s)


@callee_kernel
def walk(b, t, ctr, p, lo, hi, action, x, y):
    """Visit process p's tree over 4-KiB page numbers [lo, hi) for `action` (see the
    module docstring; `x`, `y`: the action's arguments)."""
    leaves = action == W_COPY or action == W_UNMAP
    pre = action == W_MIRROR
    post = action >= W_FREE_ALL
    root = t.procs.root[p]
    for i4 in range(lo >> PML4_ENTRY_SHIFT, ((hi - 1) >> PML4_ENTRY_SHIFT) + 1):
        e4 = t.ent[root, i4]
        if e4 <= 0:
            continue
        s3 = e4 - 1
        b3 = i4 << PML4_ENTRY_SHIFT
        if pre:
            mirror_table(b, t, ctr, p, s3, x)
        for i3 in range(_first(lo, b3, PML3_ENTRY_SHIFT), _end(hi, b3, SPAN_PML3, PML3_ENTRY_SHIFT)):
            e3 = t.ent[s3, i3]
            if e3 == 0:
                continue
            b2 = b3 + (i3 << PML3_ENTRY_SHIFT)
            if e3 < 0:
                if leaves:
                    _leaf(b, t, ctr, p, action, s3, i3, SIZE_1G, b2, e3, x)
                continue
            s2 = e3 - 1
            if pre:
                mirror_table(b, t, ctr, p, s2, x)
            for i2 in range(_first(lo, b2, PML2_ENTRY_SHIFT), _end(hi, b2, SPAN_PML2, PML2_ENTRY_SHIFT)):
                e2 = t.ent[s2, i2]
                if e2 == 0:
                    continue
                b1 = b2 + (i2 << PML2_ENTRY_SHIFT)
                if e2 < 0:
                    if leaves:
                        _leaf(b, t, ctr, p, action, s2, i2, SIZE_2M, b1, e2, x)
                    continue
                s1 = e2 - 1
                if pre:
                    mirror_table(b, t, ctr, p, s1, x)
                if leaves:
                    leaf = LEAF_UNKNOWN  # the child's PTE table for [b1, b1 + SPAN_PML1) (W_COPY)
                    for i1 in range(max(lo, b1) - b1, min(hi, b1 + SPAN_PML1) - b1):
                        e1 = t.ent[s1, i1]
                        if e1 != 0:
                            if action == W_COPY and leaf == LEAF_UNKNOWN:
                                leaf = leaf_of(t, x, b1)
                            if _leaf_4k(b, t, ctr, p, action, s1, i1, b1 + i1, e1, x, leaf):
                                leaf = LEAF_UNKNOWN
                if post:
                    _post(b, t, ctr, p, action, s1, b1, SPAN_PML1, lo, hi, x, y)
            if post:
                _post(b, t, ctr, p, action, s2, b2, SPAN_PML2, lo, hi, x, y)
        if post:
            _post(b, t, ctr, p, action, s3, b3, SPAN_PML3, lo, hi, x, y)


# --- the walks, by the names of what they do --------------------------------------------
@inline_kernel
def unmap_range(b, t, ctr, p, lo, hi, keep):
    """Unmap every leaf overlapping 4-KiB page numbers [lo, hi), ascending (`keep`:
    tables left empty stay, see unmap_entry)."""
    walk(b, t, ctr, p, lo, hi, W_UNMAP, 1 if keep else 0, 0)


@inline_kernel
def copy_pages(b, t, ctr, child, parent, lo, hi):
    """Map the parent's pages in [lo, hi) into the child, ascending, sharing frames (fork)."""
    walk(b, t, ctr, parent, lo, hi, W_COPY, child, 0)


@inline_kernel
def mirror_tables(b, t, ctr, p, kind, lo, hi):
    """Give every table below the root an EPT twin of `kind`, in ascending order of the
    first address each covers, the higher level first at equal addresses (pre-order)."""
    walk(b, t, ctr, p, lo, hi, W_MIRROR, kind, 0)


@inline_kernel
def free_tables_postorder(b, t, ctr, p, lo, hi):
    """Free every table below the root depth-first (reclaim at exit): for each pml3 in
    ascending order, each of its pml2s ascending, that pml2's pml1s ascending and then the
    pml2 itself, the pml3 last. The tables must hold no leaf."""
    walk(b, t, ctr, p, lo, hi, W_FREE_ALL, 0, 0)


@inline_kernel
def free_pgd_range(b, t, ctr, p, lo, hi, floor, ceiling):
    """Free the tables of p that overlap 4-KiB page numbers [lo, hi) and whose whole span
    lies in [floor, ceiling): Linux's free_pgd_range (mm/memory.c), which free_pgtables
    calls after a munmap has zapped the pages, with floor = the previous VMA's end and
    ceiling = the next one's start, so that no table a remaining VMA can use is freed.

    In Linux's order: a pml2's pml1s ascending, then the pml2, and a pml3 after its
    pml2s (free_pte_range, free_pmd_range, free_pud_range). A table that still holds an
    entry is kept -- possible only in a trace that maps pages outside every VMA, which
    Linux cannot have."""
    walk(b, t, ctr, p, lo, hi, W_FREE_PGD, floor, ceiling)


@inline_kernel
def reclaim_pte_tables(b, t, ctr, p, lo, hi):
    """PT_RECLAIM (Linux 6.14+, mm/pt_reclaim.c): after MADV_DONTNEED zapped [lo, hi)
    (4-KiB page numbers, within one VMA), free each PTE table whose whole 2 MiB span the
    range covers (reclaim_pt_is_enabled: the zap covers PMD_SIZE of it) and that is
    empty; pml2 and pml3 tables stay."""
    walk(b, t, ctr, p, lo, hi, W_RECLAIM_PTE, 0, 0)
