"""The state sampled during a replay, in compiled code: one row of SAMPLE_COLUMNS per sample.

A series sampled after every event (the report's tight-memory series) would otherwise
return to Python once per event, and a call of the compiled loop from Python checks the
types of every array of the machine state -- far more than the event itself costs. The
event loop (sim/core.py `run_events`) runs segment by segment and writes each sample, by
`sample_row`, into a preallocated array, handing back to Python only when it must (a pool
to grow, an impossible event) or the array is full (STATUS_FULL).

The row (sim/machine.py SAMPLE_COLUMNS): events; KPT pages per level (pml1 .. pml4); EPT,
wasted EPT, data, gigantic and kalloc pages; free pages; free blocks per order; failures
per order; live and VMM processes; compaction pages; the 2 MiB blocks by availability
(sim/occupancy.py HUGE_NAMES); page-table requests, those that split, deposited tables.
Free blocks per order are the buddy's lists; the Akaros allocator keeps no such lists
(they are computed from its free set, sim/akaros2015.py), so its machines sample in Python.
"""

from __future__ import annotations

from ptpair.sim import counters as C
from ptpair.sim.occupancy import N_HUGE, hugepage_blocks
from ptpair.sim.pagetable import P_ALIVE
from ptpair.sim.slots import M_FREE_PAGES
from ptpair.traces._jit import kernel
from ptpair.traces.format import N_ORDERS

STATUS_FULL = 3  # run_events: the sample array is full (grow it, resume at the returned event)

# column offsets of a sample row
R_EVENTS = 0
R_KPT = 1  # 4 levels
R_EPT = R_KPT + 4
R_WASTE = R_EPT + 1
R_DATA = R_WASTE + 1
R_GIGANTIC = R_DATA + 1
R_KALLOC = R_GIGANTIC + 1
R_FREE = R_KALLOC + 1
R_BUDDY = R_FREE + 1  # N_ORDERS
R_FAIL = R_BUDDY + N_ORDERS  # N_ORDERS
R_PROCS = R_FAIL + N_ORDERS
R_VMM = R_PROCS + 1
R_COMPACT = R_VMM + 1
R_HUGE = R_COMPACT + 1  # N_HUGE
R_PT_REQUESTS = R_HUGE + N_HUGE
R_PT_SPLIT = R_PT_REQUESTS + 1
R_DEPOSITED = R_PT_SPLIT + 1
ROW_LEN = R_DEPOSITED + 1


@kernel
def sample_row(b, t, ctr, row):
    """Write the machine's state now into `row` (ROW_LEN int64)."""
    row[R_EVENTS] = ctr[C.EVENTS]
    for lv in range(4):
        row[R_KPT + lv] = ctr[C.KPT + lv]
    row[R_EPT] = ctr[C.EPT]
    row[R_WASTE] = ctr[C.EPT_WASTE]
    row[R_DATA] = ctr[C.DATA]
    row[R_GIGANTIC] = ctr[C.GIGANTIC]
    row[R_KALLOC] = ctr[C.KALLOC]
    row[R_FREE] = b.meta[M_FREE_PAGES]
    compact = 0
    for k in range(N_ORDERS):
        row[R_BUDDY + k] = b.nr_free[k]
        row[R_FAIL + k] = ctr[C.FAIL + k]
        compact += ctr[C.COMPACT + k]
    alive = 0
    vmm = 0
    for p in range(len(t.procs.state)):
        if t.procs.state[p] == P_ALIVE:
            alive += 1
            if t.procs.vmm[p] != 0:
                vmm += 1
    row[R_PROCS] = alive
    row[R_VMM] = vmm
    row[R_COMPACT] = compact
    hugepage_blocks(b, t.pb_wasted, row, R_HUGE)
    row[R_PT_REQUESTS] = ctr[C.PT_REQUESTS]
    row[R_PT_SPLIT] = ctr[C.PT_SPLIT]
    row[R_DEPOSITED] = ctr[C.DEPOSITED]
