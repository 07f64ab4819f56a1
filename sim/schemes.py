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
from ptpair.sim.pagetable import (
    KIND_KPT, KIND_PAIR, KIND_SEP, MODE_LAZY, USER_VPN_LIMIT, ept_no_longer_waste, mirror_table
)
from ptpair.sim.treewalk import mirror_tables
from ptpair.traces._jit import inline_kernel

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


@inline_kernel
def become_vmm(b, t, ctr, scheme, p):
    """The `vmm` event: process p becomes a VMM (no-op if it already is one)."""
    if t.procs.vmm[p] != 0:
        return
    t.procs.vmm[p] = 1
    ctr[C.VMM_EVENTS] += 1
    ctr[C.EPT_WASTE] -= t.procs.ept[p]  # its EPT pages are no longer waste
    ept_no_longer_waste(t, p)
    kind = VMM_KIND[scheme]
    if t.procs.mode[p] == kind:
        return
    root = t.procs.root[p]
    if kind == MODE_LAZY:
        # only the EPT root now; each newly mapped page's walk adds the twins it passes
        # through (sim/pagetable.py: lazy_twin), as EPT faults filled the EPT in
        mirror_table(b, t, ctr, p, root, KIND_SEP)
        if t.t_kind[root] == KIND_SEP:
            t.procs.mode[p] = MODE_LAZY
        return
    mirror_table(b, t, ctr, p, root, kind)
    if t.t_kind[root] != kind:
        # No EPT root (separate): the process has no EPT to mirror into.
        # A pair-on-vmm root that could not move stays; its tables still move.
        if kind == KIND_SEP:
            return
    t.procs.mode[p] = kind
    mirror_tables(b, t, ctr, p, kind, 0, USER_VPN_LIMIT)
