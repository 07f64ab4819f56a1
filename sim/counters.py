"""Indices of the machine's int64 counter array (one array, so the core stays flat),
taken in turn from a `Layout` (sim/slots.py) so that no two overlap.

Units: pages are 4-KiB frames unless named otherwise; GIGANTIC counts 1-GiB pages of
the separate gigantic-page pool, which lies outside the simulated buddy memory.
"""

from ptpair.sim.slots import N_HUGE, Layout
from ptpair.traces.format import N_ORDERS

COUNTERS = Layout("counters")
KPT = COUNTERS.take("KPT + level - 1: KPT table pages of live processes at level 1..4 (pml1..pml4)", 4)
EPT = COUNTERS.take("EPT table pages of live processes, roots included")
DATA = COUNTERS.take("data frames held (a 2 MiB page counts 512)")
GIGANTIC = COUNTERS.take("1 GiB pages in use from the gigantic pool")
KALLOC = COUNTERS.take("frames held by kernel allocations")
FAILED_MAPS = COUNTERS.take("pages not mapped because a table or frame could not be allocated")
FAILED_SPAWNS = COUNTERS.take("spawns (and exec/fork re-spawns) whose root could not be allocated")
SKIPPED = COUNTERS.take("events of processes whose spawn failed")
ALREADY = COUNTERS.take("pages a map left as they were (already mapped)")
MAPPED = COUNTERS.take("leaf entries written by map and fork")
UNMAPPED = COUNTERS.take("leaf entries removed by unmap, exec and exit")
WRITES = COUNTERS.take("leaf entry writes (MAPPED + UNMAPPED)")
KPT_TOUCH = COUNTERS.take("KPT table pages on the paths of those writes")
EPT_TOUCH = COUNTERS.take("EPT table pages written to mirror them")
EPT_LOADS = COUNTERS.take("dependent loads to reach the EPT entry (0 for a pair)")
COPIES = COUNTERS.take("tables copied into a new pair (pair-on-vmm)")
EPT_WASTE = COUNTERS.take("EPT pages held by processes that are not VMMs")
EVENTS = COUNTERS.take("events replayed")
PEAK_PT = COUNTERS.take("peak of page-table pages")
PEAK_KPT = COUNTERS.take("peak of KPT pages")
PEAK_EPT = COUNTERS.take("peak of EPT pages")
PEAK_DATA = COUNTERS.take("peak of data frames")
PEAK_USED = COUNTERS.take("peak of frames in use")
PEAK_WASTE = COUNTERS.take("peak of wasted EPT pages")
MIRRORED = COUNTERS.take("EPT tables created to mirror existing KPT tables at vmm")
VMM_EVENTS = COUNTERS.take("vmm events that made a process a VMM")
PT_SUM = COUNTERS.take("sum over events of page-table pages after the event (for the mean)")
FAIL = COUNTERS.take("FAIL + k: failed allocation requests of order k", N_ORDERS)
PEAK_BUDDY = COUNTERS.take("PEAK_BUDDY + k: free blocks of order k when used pages first peaked", N_ORDERS)
COMPACT = COUNTERS.take("+ k: frames compaction would migrate for the failed requests of order k (sim/occupancy.py)",
                        N_ORDERS)
HOPELESS = COUNTERS.take("+ k: failed requests of order k for which no window without unmovable frames exists",
                         N_ORDERS)
PT_REQUESTS = COUNTERS.take("successful page-table allocations (a pair is one)")
PT_SPLIT = COUNTERS.take("of those, the ones whose own free list of their order was empty")
PEAK_HUGE = COUNTERS.take("+ i: hugepage_blocks after the first event at which PEAK_PT was reached", N_HUGE)
DEPOSITED = COUNTERS.take("PTE tables deposited with anonymous 2 MiB pages (KPT pages at no level)")
PEAK_DEPOSITED = COUNTERS.take("peak of deposited PTE tables")
LEN = COUNTERS.size
COUNTERS.check()
