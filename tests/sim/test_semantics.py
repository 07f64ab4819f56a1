"""Hand-computed cases of docs/semantics.md: each answer worked out on paper."""

import pytest

from ptpair.sim.buddy import POLICY_ADDRESS, POLICY_LIFO, buddy_alloc, buddy_free, free_blocks, new_buddy
from ptpair.sim.machine import Config, Machine
from ptpair.sim.replay import replay
from ptpair.traces.format import Trace, TraceError, encode

PAGE = 4096


def run(rows, scheme="pair", policy="address", memory=16):
    cols = {k: [r.get(k, 0) for r in rows] for k in ("pid", "op", "va", "length", "arg", "order", "page_size")}
    cols["page_size"] = [r.get("page_size", PAGE) for r in rows]
    trace = Trace.from_columns(**cols)
    ev = encode(trace)
    m = Machine(Config(scheme, policy, memory), ev.n_procs)
    m.run(ev)
    return m


def test_boot_carve_is_maximal_aligned_blocks_in_address_order():
    b = new_buddy(1000, POLICY_ADDRESS)
    # 1000 = 512 + 256 + 128 + 64 + 32 + 8
    assert sorted(free_blocks(b)) == [(0, 9), (512, 8), (768, 7), (896, 6), (960, 5), (992, 3)]
    assert list(b.nr_free) == [0, 0, 0, 1, 0, 1, 1, 1, 1, 1, 0]


def test_address_policy_splits_keeping_the_lower_half():
    b = new_buddy(16, POLICY_ADDRESS)
    assert buddy_alloc(b, 0) == 0
    assert free_blocks(b) == [(1, 0), (2, 1), (4, 2), (8, 3)]
    buddy_free(b, 0, 0)  # merges all the way back
    assert free_blocks(b) == [(0, 4)]


def test_lifo_takes_the_most_recent_block():
    # four order-10 blocks, freed at boot to the lists' tail (FPI_TO_TAIL): the lowest at the head
    b = new_buddy(4096, POLICY_LIFO)
    assert buddy_alloc(b, 10) == 0
    assert buddy_alloc(b, 0) == 1024  # splits the order-10 list's head
    # the upper halves went on their lists; the order-0 list's head is frame 1025
    assert buddy_alloc(b, 0) == 1025
    buddy_free(b, 3072, 10)
    assert buddy_alloc(b, 10) == 3072  # the block just freed comes back first
    buddy_free(b, 1024, 0)
    assert buddy_alloc(b, 0) == 1024


def test_lifo_and_address_differ():
    b1, b2 = new_buddy(64, POLICY_ADDRESS), new_buddy(64, POLICY_LIFO)
    for b in (b1, b2):
        fs = [buddy_alloc(b, 0) for _ in range(6)]
        for f in fs[::2]:
            buddy_free(b, f, 0)
    assert buddy_alloc(b1, 0) == 0 and buddy_alloc(b2, 0) == 4


def test_pair_lays_out_kpt_and_ept_adjacent():
    # root pair 0-1, pml3 2-3, pml2 4-5, pml1 6-7, data 8
    m = run([dict(pid=1, op="spawn"), dict(pid=1, op="map", va=0x1234, length=1)])
    r = m.result()
    assert r.final["kpt_pages_by_level"] == {"pml4": 1, "pml3": 1, "pml2": 1, "pml1": 1}
    assert r.final["ept_pages"] == 4 and r.final["wasted_ept_pages"] == 4
    assert r.final["data_pages"] == 1
    assert m.free_blocks() == [(9, 0), (10, 1), (12, 2)]
    t = m.tables
    live = [s for s in range(len(t.t_kpt)) if t.t_kpt[s] >= 0 and t.t_level[s] > 0][:4]
    assert sorted((int(t.t_kpt[s]), int(t.t_ept[s])) for s in live) == [(0, 1), (2, 3), (4, 5), (6, 7)]


def test_separate_mirrors_at_vmm_in_preorder():
    # KPT: root 0, pml3 1, pml2 2, pml1 3, data 4; second pml1 (va 2 MiB) 5, data 6.
    # vmm: EPT root 7, then pml3 8, pml2 9, pml1(0) 10, pml1(2M) 11.
    m = run([dict(pid=1, op="spawn"), dict(pid=1, op="map", va=0, length=PAGE),
             dict(pid=1, op="map", va=2 << 20, length=PAGE), dict(pid=1, op="vmm")],
            scheme="separate", memory=16)
    t = m.tables
    pairs = {}
    for s in range(8):
        if t.t_level[s]:
            pairs[(int(t.t_level[s]), int(t.t_kpt[s]))] = int(t.t_ept[s])
    assert pairs == {(4, 0): 7, (3, 1): 8, (2, 2): 9, (1, 3): 10, (1, 5): 11}
    r = m.result()
    assert r.counts["tables_mirrored"] == 4 and r.final["wasted_ept_pages"] == 0


def test_failed_map_rolls_back_in_reverse_and_counts():
    # 4 frames, pair: root 0-1, pml3 2-3, then the pml2 pair cannot be had
    m = run([dict(pid=1, op="spawn"), dict(pid=1, op="map", va=0, length=PAGE)], memory=4)
    r = m.result()
    assert r.failed_maps == 1
    assert r.alloc_failures[1] == 1 and sum(r.alloc_failures) == 1
    assert m.free_blocks() == [(2, 1)]  # the pml3 pair came back
    assert r.final["kpt_pages"] == 1


def test_failed_spawn_skips_later_events_until_exit():
    m = run([dict(pid=1, op="spawn"), dict(pid=2, op="spawn"), dict(pid=2, op="map", va=0, length=PAGE),
             dict(pid=2, op="exit"), dict(pid=2, op="spawn")], memory=2)
    r = m.result()
    assert r.failed_spawns == 2 and r.skipped_events == 2


def test_fork_shares_frames_until_the_last_mapping_goes():
    rows = [dict(pid=1, op="spawn"), dict(pid=1, op="map", va=0x400000, length=10 * PAGE),
            dict(pid=2, op="fork", arg=1)]
    r = run(rows, memory=1024).result()
    assert r.final["data_pages"] == 10 and r.final["processes"] == 2
    assert r.final["kpt_pages"] == 8  # two processes, four tables each
    r = run(rows + [dict(pid=1, op="exit")], memory=1024).result()
    assert r.final["data_pages"] == 10  # still mapped by the child
    r = run(rows + [dict(pid=1, op="exit"), dict(pid=2, op="exit")], memory=1024).result()
    assert r.final["data_pages"] == 0 and r.final["free_pages"] == 1024


def test_unmap_frees_empty_tables_bottom_up_and_exit_frees_everything():
    rows = [dict(pid=1, op="spawn"), dict(pid=1, op="map", va=0, length=3 * PAGE),
            dict(pid=1, op="unmap", va=PAGE, length=1)]
    r = run(rows, scheme="separate-eager").result()
    assert r.final["data_pages"] == 2 and r.final["kpt_pages"] == 4
    r = run(rows + [dict(pid=1, op="unmap", va=0, length=3 * PAGE)], scheme="separate-eager").result()
    assert r.final["kpt_pages"] == 1 and r.final["ept_pages"] == 1  # only the roots are left
    r = run(rows + [dict(pid=1, op="exit")], scheme="separate-eager").result()
    assert r.final["free_pages"] == 16 and r.final["buddyinfo"][4] == 1


def test_huge_pages_use_order9_frames_and_no_pml1():
    r = run([dict(pid=1, op="spawn"), dict(pid=1, op="map", va=2 << 20, length=1, page_size=2 << 20),
             dict(pid=1, op="map", va=(2 << 20) + 5 * PAGE, length=PAGE)],  # covered: left as it is
            scheme="separate", memory=2048).result()
    assert r.final["data_pages"] == 512 and r.final["kpt_pages_by_level"]["pml1"] == 0
    assert r.counts["pages_already_mapped"] == 1
    r = run([dict(pid=1, op="spawn"), dict(pid=1, op="map", va=0, length=1 << 30, page_size=1 << 30)],
            scheme="separate", memory=64).result()
    assert r.final["gigantic_pages"] == 1 and r.final["data_pages"] == 0
    assert r.final["kpt_pages_by_level"] == {"pml4": 1, "pml3": 1, "pml2": 0, "pml1": 0}


def test_pair_on_vmm_moves_every_table_into_a_pair():
    rows = [dict(pid=1, op="spawn"), dict(pid=1, op="map", va=0, length=PAGE), dict(pid=1, op="vmm")]
    r = run(rows, scheme="pair-on-vmm", memory=64).result()
    assert r.counts["tables_copied"] == 4 and r.final["ept_pages"] == 4 and r.final["kpt_pages"] == 4
    r2 = run(rows + [dict(pid=1, op="vmm")], scheme="pair-on-vmm", memory=64).result()
    assert r2.counts["tables_copied"] == 4  # a second vmm does nothing


def test_walk_cost_counts_dependent_loads_only_for_separate_epts():
    rows = [dict(pid=1, op="spawn"), dict(pid=1, op="vmm"), dict(pid=1, op="map", va=0, length=2 * PAGE)]
    pair = run(rows, scheme="pair", memory=64).result().walk
    sep = run(rows, scheme="separate", memory=64).result().walk
    assert pair["entry_writes"] == sep["entry_writes"] == 2
    assert pair["ept_dependent_loads"] == 0 and sep["ept_dependent_loads"] == 8
    assert pair["kpt_pages_touched"] == pair["ept_pages_touched"] == 8


def test_kalloc_kfree_and_failed_kalloc():
    m = run([dict(pid=0, op="kalloc", arg=7, order=3), dict(pid=0, op="kalloc", arg=8, order=4),
             dict(pid=0, op="kfree", arg=8), dict(pid=0, op="kfree", arg=7)], memory=16)
    r = m.result()
    assert r.alloc_failures[4] == 1 and r.final["kalloc_pages"] == 0 and m.free_blocks() == [(0, 4)]


@pytest.mark.parametrize("rows, message", [
    ([dict(pid=1, op="map", va=0, length=1)], "pid 1, which is not alive"),
    ([dict(pid=1, op="spawn"), dict(pid=1, op="spawn")], "already alive"),
    ([dict(pid=2, op="fork", arg=1)], "from pid 1, which is not alive"),
    ([dict(pid=0, op="kfree", arg=5)], "handle 5, which is not allocated"),
    ([dict(pid=0, op="kalloc", arg=5), dict(pid=0, op="kalloc", arg=5)], "still allocated"),
])
def test_impossible_events_are_located(rows, message):
    cols = {k: [r.get(k, 0) for r in rows] for k in ("pid", "op", "va", "length", "arg", "order")}
    with pytest.raises(TraceError) as e:
        replay(Trace.from_columns(source="t.csv", **cols), memory_pages=64)
    assert message in str(e.value)
    assert str(e.value).startswith(f"t.csv:{len(rows) + 1}: ")
