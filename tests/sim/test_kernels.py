"""Hand-computed cases of the kernel variants: Akaros's 2015 allocator, reclaim at exit,
and the separate-lazy scheme (docs/semantics.md, "Kernel variants")."""

from ptpair.sim.akaros2015 import akaros_alloc, akaros_free
from ptpair.sim.slots import M_SCANNED
from ptpair.sim.allocator import ALLOC_AKAROS, buddyinfo, new_allocator
from ptpair.sim.machine import Config, Machine
from ptpair.traces.format import Trace, encode

PAGE = 4096


def akaros(n):
    return new_allocator(n, ALLOC_AKAROS, 0)


def lst(b):
    out, f = [], int(b.head[0])
    while f != -1:
        out.append(f)
        f = int(b.nxt[f])
    return out


def test_akaros_single_frames_are_lifo_from_the_highest():
    b = akaros(8)
    assert lst(b) == [7, 6, 5, 4, 3, 2, 1, 0]
    assert akaros_alloc(b, 0) == 7 and akaros_alloc(b, 0) == 6
    akaros_free(b, 7, 0)
    assert akaros_alloc(b, 0) == 7  # the frame freed last comes back first


def test_akaros_scan_skips_the_window_ending_below_a_busy_frame():
    b = akaros(8)
    assert akaros_alloc(b, 0) == 7
    # window [6,7]: frame 7 busy (1 frame scanned); the loop's skip tries [4,5] next,
    # never [5,6], though it is free; [4,5]: 5 and 4 free (2 more frames scanned)
    assert akaros_alloc(b, 1) == 4
    assert int(b.meta[M_SCANNED]) == 3
    assert lst(b) == [6, 3, 2, 1, 0]
    # no alignment: with only 6 and 3..0 free, an order-2 block is [0,3]
    assert akaros_alloc(b, 2) == 0
    akaros_free(b, 4, 1)  # frees 4 then 5: 5 ends up at the head
    assert lst(b)[:3] == [5, 4, 6]


def test_akaros_buddyinfo_is_the_aligned_decomposition():
    b = akaros(16)
    akaros_alloc(b, 0)  # frame 15 busy: free 0..14 = 8 + 4 + 2 + 1
    assert buddyinfo(b).tolist()[:4] == [1, 1, 1, 1]


def run(rows, scheme, memory=64, allocator="buddy", reclaim="empty"):
    cols = {k: [r.get(k, 0) for r in rows] for k in ("pid", "op", "va", "length", "arg", "order")}
    ev = encode(Trace.from_columns(**cols))
    m = Machine(Config(scheme, "address", memory, allocator, reclaim), ev.n_procs)
    m.run(ev)
    return m.result()


def test_reclaim_exit_keeps_empty_tables_and_reuses_them():
    rows = [dict(pid=1, op="spawn"), dict(pid=1, op="map", va=0, length=PAGE),
            dict(pid=1, op="unmap", va=0, length=PAGE)]
    r = run(rows, "separate", reclaim="exit")
    assert r.final["kpt_pages"] == 4 and r.final["data_pages"] == 0  # tables stay
    r = run(rows, "separate", reclaim="empty")
    assert r.final["kpt_pages"] == 1  # only the root
    r = run(rows + [dict(pid=1, op="map", va=PAGE, length=PAGE)], "separate", reclaim="exit")
    assert r.final["kpt_pages"] == 4  # the kept tables were reused
    r = run(rows + [dict(pid=1, op="exit")], "pair", reclaim="exit")
    assert r.final["free_pages"] == 64 and r.final["pt_pages"] == 0


def test_separate_lazy_mirrors_only_what_new_pages_walk_through():
    rows = [dict(pid=1, op="spawn"), dict(pid=1, op="map", va=0, length=PAGE), dict(pid=1, op="vmm")]
    r = run(rows, "separate-lazy")
    assert r.final["ept_pages"] == 1 and r.counts["tables_mirrored"] == 0  # the EPT root only
    r = run(rows + [dict(pid=1, op="map", va=0, length=PAGE)], "separate-lazy")
    assert r.final["ept_pages"] == 1  # an already mapped page's walk creates nothing
    r = run(rows + [dict(pid=1, op="map", va=PAGE, length=PAGE)], "separate-lazy")
    assert r.final["ept_pages"] == 4  # its walk gave pml3, pml2 and pml1 their twins
    r = run(rows + [dict(pid=1, op="map", va=1 << 30, length=PAGE)], "separate-lazy")
    assert r.final["ept_pages"] == 4  # shares the pml3; new pml2 and pml1 come with twins
    assert r.final["kpt_pages"] == 6
    r = run(rows + [dict(pid=1, op="map", va=PAGE, length=PAGE)], "separate")
    assert r.final["ept_pages"] == 4 and r.counts["tables_mirrored"] == 3


# --- the Linux allocator (sim/mobility.py), hand-built cases -------------------------
from ptpair.sim.allocator import ALLOC_LINUX, page_alloc, page_free  # noqa: E402
from ptpair.sim.occupancy import OWN_KALLOC as OWN  # noqa: E402  (any owner: these tests watch the lists)
from ptpair.sim.mobility import MT_MOVABLE, MT_RECLAIMABLE, MT_UNMOVABLE
from ptpair.sim.slots import M_FALLBACKS, M_POLLUTED, M_STEALS  # noqa: E402


def linux(n):
    return new_allocator(n, ALLOC_LINUX, 0)


def test_linux_boot_is_all_movable():
    b = linux(1024)
    assert b.pb_type.tolist() == [MT_MOVABLE, MT_MOVABLE]
    assert int(b.nr_free_mt[10 * 3 + MT_MOVABLE]) == 1


def test_unmovable_request_steals_a_whole_max_order_block():
    b = linux(1024)
    # no unmovable block: the largest movable block (order 10) is taken over whole,
    # relabelling both its pageblocks; then split for the order-0 request
    assert page_alloc(b, 0, MT_UNMOVABLE, OWN) == 0
    assert b.pb_type.tolist() == [MT_UNMOVABLE, MT_UNMOVABLE]
    assert int(b.meta[M_FALLBACKS]) == 1 and int(b.meta[M_STEALS]) == 2 and int(b.meta[M_POLLUTED]) == 1
    # a movable request now falls back to the largest unmovable block (512, order 9 >=
    # pageblock_order): its pageblock goes back to movable
    assert page_alloc(b, 0, MT_MOVABLE, OWN) == 512
    assert b.pb_type.tolist() == [MT_UNMOVABLE, MT_MOVABLE]


def test_partial_pageblock_is_claimed_when_half_is_free_or_alike():
    b = linux(512)  # one movable pageblock
    assert page_alloc(b, 3, MT_MOVABLE, OWN) == 0  # frees 8(3) 16(4) 32(5) 64(6) 128(7) 256(8)
    # unmovable order 0: fallback to the largest movable block (256, order 8 < 9); an
    # unmovable request may steal: every free block moves, 504 free >= 256 -> relabel;
    # then the smallest unmovable block (8, order 3) is split
    assert page_alloc(b, 0, MT_UNMOVABLE, OWN) == 8
    assert b.pb_type.tolist() == [MT_UNMOVABLE]
    assert int(b.nr_free_mt[8 * 3 + MT_UNMOVABLE]) == 1 and int(b.nr_free_mt[8 * 3 + MT_MOVABLE]) == 0
    # a freed movable block goes to the lists of its pageblock's type at free time
    page_free(b, 0, 3)
    assert int(b.nr_free_mt[3 * 3 + MT_UNMOVABLE]) == 1


def test_movable_request_that_cannot_steal_takes_the_smallest_fallback_block():
    b = linux(1024)
    page_alloc(b, 0, MT_RECLAIMABLE, OWN)  # pageblocks 0 and 1 become reclaimable
    # movable: fallbacks reclaimable first; the largest is order 9 (512) >= pageblock_order,
    # so it may steal and takes it whole
    assert page_alloc(b, 0, MT_MOVABLE, OWN) == 512
    b = linux(512)
    page_alloc(b, 0, MT_RECLAIMABLE, OWN)  # pageblock 0 reclaimable; free 1(0) 2(1) ... 256(8)
    # movable: the largest reclaimable block is order 8 < 9 and >= 4 -> may steal
    f = page_alloc(b, 0, MT_MOVABLE, OWN)
    assert f == 1  # all free blocks moved to movable; the smallest (order 0 at 1) taken
    b = linux(16)  # a tiny zone: every fallback block is below order 4 and cannot be stolen
    # block 0..15 (order 4 >= 4: may steal) -- but its pageblock reaches past the zone's
    # end, so move_freepages_block refuses it: the block alone moves, the label stays
    page_alloc(b, 0, MT_UNMOVABLE, OWN)
    assert b.pb_type.tolist() == [MT_MOVABLE] and int(b.meta[M_STEALS]) == 0
    # movable: largest unmovable is order 3 (8) < 4: no steal, so find_smallest takes the
    # order-0 block at 1 and only that block moves
    assert page_alloc(b, 0, MT_MOVABLE, OWN) == 1
    assert b.pb_type.tolist() == [MT_MOVABLE]


# --- Linux v6.6 list placement (mm/page_alloc.c), one hand-built case per rule ----------
def lst_mt(b, k, mt):
    """Free list (order k, migratetype mt), head first."""
    out, f = [], int(b.head[k * 3 + mt])
    while f != -1:
        out.append(f)
        f = int(b.nxt[f])
    assert out[-1:] == ([int(b.tail[k * 3 + mt])] if out else [])
    return out


def test_v66_move_to_free_list_puts_moved_blocks_at_the_tail():
    b = linux(1024)
    assert page_alloc(b, 0, MT_MOVABLE, OWN) == 0  # pageblock 0 free: 1(0) 2(1) 4(2) .. 256(8)
    assert page_alloc(b, 0, MT_UNMOVABLE, OWN) == 512  # steals pageblock 1 (order 9): 513(0) .. 768(8)
    for k, f in zip(range(1, 9), (514, 516, 520, 528, 544, 576, 640, 768)):
        assert page_alloc(b, k, MT_UNMOVABLE, OWN) == f  # unmovable now has only 513 (order 0)
    # an unmovable order-1 request steals pageblock 0: move_freepages_block moves each free
    # block to the *tail* of its unmovable list (list_move_tail), so 1 goes behind 513
    assert page_alloc(b, 1, MT_UNMOVABLE, OWN) == 2
    assert lst_mt(b, 0, MT_UNMOVABLE) == [513, 1]
    assert page_alloc(b, 0, MT_UNMOVABLE, OWN) == 513


def test_v66_free_goes_to_the_tail_when_a_merge_is_likely():
    b = linux(1024)
    assert [page_alloc(b, 0, MT_MOVABLE, OWN) for _ in range(6)] == [0, 1, 2, 3, 4, 5]  # free: 6(1) 8(3) ..
    page_free(b, 0, 0)  # its parent 0-1's buddy 2-3 is busy: no merge likely, head
    page_free(b, 4, 0)  # its parent 4-5's buddy 6-7 is a free order-1 block: buddy_merge_likely, tail
    assert lst_mt(b, 0, MT_MOVABLE) == [0, 4]
    page_free(b, 2, 0)  # 2's parent 2-3 has buddy 0-1, not free as an order-1 block: head
    assert lst_mt(b, 0, MT_MOVABLE) == [2, 0, 4]
    assert page_alloc(b, 0, MT_MOVABLE, OWN) == 2


def test_v66_no_pageblock_move_past_the_end_of_the_zone():
    b = linux(768)  # pageblock 1 is frames 512..767 of 512..1023: it reaches past the zone's end
    assert page_alloc(b, 9, MT_MOVABLE, OWN) == 0
    # unmovable falls back to 512 (order 8 < 9, may steal); move_freepages_block refuses the
    # pageblock, so steal_suitable_fallback moves the one block and relabels nothing
    assert page_alloc(b, 0, MT_UNMOVABLE, OWN) == 512
    assert b.pb_type.tolist() == [MT_MOVABLE, MT_MOVABLE] and int(b.meta[M_STEALS]) == 0
    b = linux(1024)  # the same request where the pageblock is whole: it is claimed
    assert page_alloc(b, 9, MT_MOVABLE, OWN) == 0
    assert page_alloc(b, 8, MT_MOVABLE, OWN) == 512  # pageblock 1: 768(8) free
    assert page_alloc(b, 0, MT_UNMOVABLE, OWN) == 768
    assert b.pb_type.tolist() == [MT_MOVABLE, MT_UNMOVABLE] and int(b.meta[M_STEALS]) == 1
