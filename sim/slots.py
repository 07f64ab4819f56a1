"""Every slot of the machine's small index-addressed arrays, declared in one place.

The compiled state keeps its scalars in int64 arrays (a kernel reads `b.meta[M_FREE_PAGES]`,
not an attribute): `BuddyState.meta` (allocator scalars, shared by the three allocators
and the occupancy cache), `Tables.meta` (table-store scalars) and `Tables.log` (the
rollback log of one page). The counter array (`ctr`) has its own module,
sim/counters.py, built with the same `Layout`. Each slot, or run of slots, is taken in
turn from its array's layout, so two can never overlap; `Layout.check` asserts it anyway
and every layout is checked at import. Kernels read the names as compile-time constants.
"""

from __future__ import annotations

from ptpair.traces.format import MIGRATETYPES, N_ORDERS


class Layout:
    """The slots of one index-addressed array, handed out in declaration order."""

    def __init__(self, array: str):
        self.array = array
        self.size = 0
        self.runs: list[tuple[str, int, int]] = []  # (name, first slot, slots)

    def take(self, name: str, n: int = 1) -> int:
        """The first of `n` new slots named `name`."""
        assert n >= 1 and name not in {r[0] for r in self.runs}, (self.array, name)
        start = self.size
        self.runs.append((name, start, n))
        self.size += n
        return start

    def check(self) -> None:
        """No two runs share a slot, and every run lies inside the array."""
        end = 0
        for name, start, n in sorted(self.runs, key=lambda r: r[1]):
            assert start >= end, f"{self.array}: {name} overlaps the slots before it"
            end = start + n
        assert end <= self.size, f"{self.array}: a run ends past the array"


N_MT = len(MIGRATETYPES)  # migratetypes the mobility allocator keeps lists for
N_HUGE = 6  # what hugepage_blocks counts (sim/occupancy.py HUGE_NAMES)

# --- BuddyState.meta ----------------------------------------------------------------------
BUDDY_META = Layout("BuddyState.meta")
# every allocator (sim/buddy.py)
M_FRAMES = BUDDY_META.take("frames managed (N)")
M_POLICY = BUDDY_META.take("free-list policy")
M_FREE_PAGES = BUDDY_META.take("frames currently free")
M_HIGH_WATER = BUDDY_META.take("one past the highest frame ever allocated (the heap extent)")
M_HW_LIVE = BUDDY_META.take("frames allocated when the high water mark last rose")
M_ALLOCATOR = BUDDY_META.take("which allocator runs on this state (sim/allocator.py)")
M_BACKGROUND = BUDDY_META.take("frames the initial state's background owner holds (sim/boot.py)")
M_HOLES = BUDDY_META.take("frames of the initial state that are not memory (sim/boot.py)")
M_MEM_END = BUDDY_META.take("one past the last frame that is memory: the frames after it are all holes")
# Akaros 2015 (sim/akaros2015.py)
M_SCANNED = BUDDY_META.take("frames tested by order >= 1 scans")
M_SCAN_ALLOCS = BUDDY_META.take("order >= 1 requests (successful or not)")
# mobility grouping (sim/mobility.py)
M_FALLBACKS = BUDDY_META.take("mm_page_alloc_extfrag events")
M_FALLBACK_BY = BUDDY_META.take("+ start_mt * N_MT + fallback_mt: fallbacks by pair", N_MT * N_MT)
M_POLLUTED = BUDDY_META.take("pageblocks holding at least one unmovable frame")
M_STEALS = BUDDY_META.take("pageblocks relabelled by steal_suitable_fallback")
# the failure-cost cache (sim/occupancy.py)
M_VERSION = BUDDY_META.take("allocations + frees so far: a cached cost is valid while this is unchanged")
M_CC_VERSION = BUDDY_META.take("+ k: M_VERSION when the cost of order k was computed (-1: never)", N_ORDERS)
M_CC_COST = BUDDY_META.take("+ k: that cost (-1: hopeless)", N_ORDERS)
META_LEN = BUDDY_META.size

# --- Tables.meta --------------------------------------------------------------------------
TABLES_META = Layout("Tables.meta")
T_SLOTS_FREE = TABLES_META.take("free table slots: the top of the free-slot stack")
T_G_FREE = TABLES_META.take("free gigantic-page ids: the top of their stack")
T_RECLAIM = TABLES_META.take("the reclaim rule (registry.RECLAIMS)")
T_H_COUNT = TABLES_META.take("entries in the handle table (sim/handles.py)")
T_DEPOSIT = TABLES_META.take("1: a PTE table is deposited with every anonymous 2 MiB page (Linux's THP)")
T_PT_RECLAIM = TABLES_META.take("1: MADV_DONTNEED frees the PTE tables it empties whole (CONFIG_PT_RECLAIM)")
T_V_TOP = TABLES_META.take("the top of the VMA pool (sim/vmas.py)")
T_META_LEN = TABLES_META.size

# --- Tables.log: the allocation log for rolling back a page that cannot be mapped -----
MAX_LOG = 7  # allocations one page can make: up to three tables (each with an EPT twin) and its frame
MAX_TABLES = 3  # tables one page can create, or give an EPT twin
SCRATCH = Layout("Tables.log")
S_LOG_N = SCRATCH.take("entries in the allocation log")
S_LOG = SCRATCH.take("pairs (frame, order) of the page's allocations", 2 * MAX_LOG)
S_CREATED_N = SCRATCH.take("tables created for the page")
S_CREATED = SCRATCH.take("slots of the tables created", MAX_TABLES)
S_TWIN_N = SCRATCH.take("existing tables that gained an EPT twin for the page")
S_TWIN = SCRATCH.take("slots of the tables twinned", MAX_TABLES)
SCRATCH_LEN = SCRATCH.size

for _layout in (BUDDY_META, TABLES_META, SCRATCH):
    _layout.check()
