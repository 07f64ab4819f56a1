"""Indices of the machine's int64 counter array (one array, so the core stays flat).

Units: pages are 4-KiB frames unless named otherwise; GIGANTIC counts 1-GiB pages of
the separate gigantic-page pool, which lies outside the simulated buddy memory.
"""

KPT = 0  # KPT + level - 1: KPT table pages of live processes at level 1..4 (pml1..pml4)
EPT = 4  # EPT table pages of live processes, roots included
DATA = 5  # data frames held (a 2 MiB page counts 512)
GIGANTIC = 6  # 1 GiB pages in use from the gigantic pool
KALLOC = 7  # frames held by kernel allocations
FAILED_MAPS = 8  # pages not mapped because a table or frame could not be allocated
FAILED_SPAWNS = 9  # spawns (and exec/fork re-spawns) whose root could not be allocated
SKIPPED = 10  # events of processes whose spawn failed
ALREADY = 11  # pages a map left as they were (already mapped)
MAPPED = 12  # leaf entries written by map and fork
UNMAPPED = 13  # leaf entries removed by unmap, exec and exit
WRITES = 14  # leaf entry writes (MAPPED + UNMAPPED)
KPT_TOUCH = 15  # KPT table pages on the paths of those writes
EPT_TOUCH = 16  # EPT table pages written to mirror them
EPT_LOADS = 17  # dependent loads to reach the EPT entry (0 for a pair)
COPIES = 18  # tables copied into a new pair (pair-on-vmm)
EPT_WASTE = 19  # EPT pages held by processes that are not VMMs
EVENTS = 20
PEAK_PT = 21
PEAK_KPT = 22
PEAK_EPT = 23
PEAK_DATA = 24
PEAK_USED = 25
PEAK_WASTE = 26
MIRRORED = 27  # EPT tables created to mirror existing KPT tables at vmm
VMM_EVENTS = 28  # vmm events that made a process a VMM
PT_SUM = 29  # sum over events of page-table pages after the event (for the mean)
FAIL = 32  # FAIL + k: failed allocation requests of order k (11 slots)
PEAK_BUDDY = 43  # PEAK_BUDDY + k: free blocks of order k when used pages first peaked
COMPACT = 54  # + k: frames compaction would migrate for the failed requests of order k (sim/occupancy.py)
HOPELESS = 65  # + k: failed requests of order k for which no window without unmovable frames exists
PT_REQUESTS = 76  # successful page-table allocations (a pair is one)
PT_SPLIT = 77  # of those, the ones whose own free list of their order was empty
PEAK_HUGE = 78  # + i: hugepage_blocks after the first event at which PEAK_PT was reached (6 slots)
DEPOSITED = PEAK_HUGE + 6  # PTE tables deposited with anonymous 2 MiB pages (KPT pages at no level)
PEAK_DEPOSITED = DEPOSITED + 1
LEN = PEAK_DEPOSITED + 1
