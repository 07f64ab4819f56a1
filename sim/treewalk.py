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
loops may run on over it. The walk recurses down the levels (depth 4: one call per
table visited, not per entry).
"""

from ptpair.sim.pagetable import ENTRIES, IDX_BITS, ROOT_LEVEL, free_table, map_page, mirror_table, unmap_entry
from ptpair.traces._jit import inline_kernel, kernel

# An entry of a level-l table spans 2^(IDX_BITS * (l - 1)) 4-KiB pages: 1, 2^9 (2 MiB),
# 2^18 (1 GiB), 2^27 (512 GiB); a leaf in it is a page of size class l - 1 (map_page's `size`).
SPAN_PML1 = ENTRIES  # 4-KiB pages a whole pml1 table spans (2 MiB)

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


@kernel
def _walk_table(b, t, ctr, p, s, level, base, lo, hi, action, x, y):
    """The entries of table s (of `level`, spanning 4-KiB pages from `base`) that overlap
    [lo, hi), ascending; recursive down the levels below."""
    shift = IDX_BITS * (level - 1)  # an entry spans 2^shift 4-KiB pages
    for i in range(_first(lo, base, shift), _end(hi, base, ENTRIES << shift, shift)):
        e = t.ent[s, i]
        if e == 0:
            continue
        vpn = base + (i << shift)
        if e < 0 or level == 1:  # a leaf
            if action == W_COPY or action == W_UNMAP:
                _leaf(b, t, ctr, p, action, s, i, level - 1, vpn, e, x)
            continue
        child = e - 1
        if action == W_MIRROR:
            mirror_table(b, t, ctr, p, child, x)
        if level > 2 or action == W_COPY or action == W_UNMAP:
            _walk_table(b, t, ctr, p, child, level - 1, vpn, lo, hi, action, x, y)
        if action >= W_FREE_ALL:
            _post(b, t, ctr, p, action, child, vpn, 1 << shift, lo, hi, x, y)


@kernel
def walk(b, t, ctr, p, lo, hi, action, x, y):
    """Visit process p's tree over 4-KiB page numbers [lo, hi) for `action` (see the
    module docstring; `x`, `y`: the action's arguments)."""
    _walk_table(b, t, ctr, p, t.p_root[p], ROOT_LEVEL, 0, lo, hi, action, x, y)


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
