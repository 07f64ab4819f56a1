"""Where a process's EPT pages come from, and when: the four schemes of ptpair.

A scheme is two choices, both expressed as a table kind (sim/pagetable.py):
the kind a process's tables get at spawn, and the kind after the process becomes a VMM.

| scheme           | at spawn  | at vmm                                   | anchor                    |
|------------------|-----------|------------------------------------------|---------------------------|
| pair             | PAIR      | nothing to do                            | Akaros after ddb9fa78     |
| separate         | KPT       | EPT root, then mirror every table (SEP)  | Akaros before it          |
| separate-eager   | SEP       | nothing to do                            | waste without contiguity  |
| pair-on-vmm      | KPT       | move every table into a fresh pair       | hybrid                    |
| separate-lazy    | KPT       | EPT root only; later walks add twins     | Akaros before, as it was  |
"""

import numpy as np

from ptpair.registry import SCHEME_NAMES
from ptpair.sim import counters as C
from ptpair.sim.allocator import page_free
from ptpair.sim.pagetable import (
    KIND_KPT, KIND_PAIR, KIND_SEP, MODE_LAZY, ROOT_LEVEL, alloc_table_pages, count_ept, ept_no_longer_waste
)
from ptpair.traces._jit import kernel

# scheme -> (table kind at spawn, kind once the process is a VMM); the names and their
# numbers (positions) come from ptpair/registry.py
_KINDS = {
    "pair": (KIND_PAIR, KIND_PAIR),
    "separate": (KIND_KPT, KIND_SEP),
    "separate-eager": (KIND_SEP, KIND_SEP),
    "pair-on-vmm": (KIND_KPT, KIND_PAIR),
    "separate-lazy": (KIND_KPT, MODE_LAZY),
}
assert set(_KINDS) == set(SCHEME_NAMES), "every scheme of the registry needs its table kinds here"
SCHEMES = {name: code for code, name in enumerate(SCHEME_NAMES)}

# indexed by scheme code
SPAWN_KIND = np.array([_KINDS[n][0] for n in SCHEME_NAMES], np.int8)
VMM_KIND = np.array([_KINDS[n][1] for n in SCHEME_NAMES], np.int8)


@kernel
def _mirror_one(b, t, ctr, p, s, kind):
    """Give table s an EPT twin of `kind`; a failed allocation leaves it out."""
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
        page_free(b, old, 0)
        count_ept(t, ctr, p, 1, f + 1)
        ctr[C.COPIES] += 1


@kernel
def become_vmm(b, t, ctr, scheme, p):
    """The `vmm` event: process p becomes a VMM (no-op if it already is one)."""
    if t.p_vmm[p] != 0:
        return
    t.p_vmm[p] = 1
    ctr[C.VMM_EVENTS] += 1
    ctr[C.EPT_WASTE] -= t.p_ept[p]  # its EPT pages are no longer waste
    ept_no_longer_waste(t, p)
    kind = VMM_KIND[scheme]
    if t.p_mode[p] == kind:
        return
    root = t.p_root[p]
    if kind == MODE_LAZY:
        # only the EPT root now; each newly mapped page's walk adds the twins it passes
        # through (sim/pagetable.py: lazy_twin), as EPT faults filled the EPT in
        _mirror_one(b, t, ctr, p, root, KIND_SEP)
        if t.t_kind[root] == KIND_SEP:
            t.p_mode[p] = MODE_LAZY
        return
    _mirror_one(b, t, ctr, p, root, kind)
    if t.t_kind[root] != kind:
        # No EPT root (separate): the process has no EPT to mirror into.
        # A pair-on-vmm root that could not move stays; its tables still move.
        if kind == KIND_SEP:
            return
    t.p_mode[p] = kind
    # the other tables in ascending order of the first address each covers, the
    # higher level first at equal addresses: a pre-order walk of the tree
    for i4 in range(512):
        e4 = t.ent[root, i4]
        if e4 <= 0:
            continue
        s3 = e4 - 1
        _mirror_one(b, t, ctr, p, s3, kind)
        for i3 in range(512):
            e3 = t.ent[s3, i3]
            if e3 <= 0:
                continue
            s2 = e3 - 1
            _mirror_one(b, t, ctr, p, s2, kind)
            for i2 in range(512):
                e2 = t.ent[s2, i2]
                if e2 <= 0:
                    continue
                _mirror_one(b, t, ctr, p, e2 - 1, kind)
