"""Allocator-pressure metrics (docs/analysis.md#allocator-pressure): the worked examples,
each computed by hand, checked against the compiled core and the reference machine."""

import pytest

from ptpair.sim.machine import Config, Machine
from ptpair.traces.format import Trace, encode
from tests.sim.test_differential import compare, reference_replay

PAGE, MIB2 = 4096, 2 << 20
UNMOVABLE, MOVABLE = 0, 1


def trace_of(rows) -> Trace:
    cols = {k: [r.get(k, 0) for r in rows] for k in ("pid", "op", "va", "length", "arg", "order", "migratetype")}
    return Trace.from_columns(**cols, page_size=[PAGE] * len(rows))


def replay_both(trace, scheme, memory, allocator="buddy"):
    """The core's result, checked equal to the reference machine's."""
    ev = encode(trace)
    m = Machine(Config(scheme, "address", memory, allocator), ev.n_procs)
    m.run(ev)
    res = m.result()
    compare(res, reference_replay(trace, scheme, "address", memory, allocator=allocator))
    return res


def test_compaction_cost_and_hopeless_failures_by_hand():
    # 8 frames. Frame 0 unmovable, 1-4 movable: an order-2 request fails (3 frames free, no
    # aligned 4-frame block). Window [0, 4) holds unmovable frame 0; window [4, 8) holds one
    # movable frame: compaction would migrate 1 frame. Then frame 5 goes to an unmovable
    # kalloc: both windows hold an unmovable frame, the next failure is hopeless.
    rows = [dict(op="kalloc", arg=1, migratetype=UNMOVABLE)]
    rows += [dict(op="kalloc", arg=h, migratetype=MOVABLE) for h in (2, 3, 4, 5)]
    rows += [dict(op="kalloc", arg=6, order=2, migratetype=MOVABLE),
             dict(op="kalloc", arg=7, migratetype=UNMOVABLE),
             dict(op="kalloc", arg=8, order=2, migratetype=MOVABLE)]
    res = replay_both(trace_of(rows), "pair", 8)
    assert res.alloc_failures[2] == 2
    assert res.pressure["compaction_pages_by_order"] == [0, 0, 1] + [0] * 8
    assert res.pressure["compaction_pages"] == 1
    assert res.pressure["hopeless_failures"] == [0, 0, 1] + [0] * 8


def _waste_trace(vmm=False):
    # spawn (root), map va 0 (pml3, pml2, pml1 and a data frame), 502 more pages in that
    # pml1, then one page 2 MiB up (a new pml1): 1024 frames = two 2 MiB blocks
    rows = [dict(op="spawn", pid=1), dict(op="map", pid=1, va=0, length=503 * PAGE),
            dict(op="map", pid=1, va=MIB2, length=PAGE)]
    if vmm:
        rows.append(dict(op="vmm", pid=1))
    return trace_of(rows)


def test_hugepage_blocks_by_hand():
    # separate-eager (address order, lowest frame first): root KPT 0 / EPT 1, pml3 2/3,
    # pml2 4/5, pml1 6/7, data 8..510; the new pml1's KPT takes frame 511, its EPT frame
    # 512, its data page 513. Block 1 = {EPT 512 (waste: the process is no VMM), data 513}:
    # its one unmovable frame is wasted EPT. Block 0: 9 unmovable frames, 4 of them wasted
    # EPT: page tables.
    res = replay_both(_waste_trace(), "separate-eager", 1024)
    assert res.final["hugepage_blocks"] == {"free": 0, "movable_only": 0, "blocked": {
        "wasted_ept": 1, "page_tables": 1, "kalloc": 0, "background": 0}}
    # pair: the new pml1 is an order-1 block, KPT 512 and EPT 513 (511 is the lone free
    # frame left by the split, and takes the data page): the waste shares its block with
    # its KPT page, so nothing is blocked by waste alone.
    res = replay_both(_waste_trace(), "pair", 1024)
    assert res.final["hugepage_blocks"]["blocked"] == {"wasted_ept": 0, "page_tables": 2, "kalloc": 0,
                                                        "background": 0}
    # once the process is a VMM its EPT pages are not waste: block 1 is blocked by page tables
    res = replay_both(_waste_trace(vmm=True), "separate-eager", 1024)
    assert res.final["hugepage_blocks"]["blocked"]["wasted_ept"] == 0
    assert res.final["hugepage_blocks"]["blocked"]["page_tables"] == 2
    # page tables peaked at the third event, before the vmm: the waste blocked block 1 then
    assert res.peak["hugepage_blocks"]["blocked"]["wasted_ept"] == 1


@pytest.mark.parametrize("scheme, requests, split", [("pair", 4, 2), ("separate-eager", 8, 4)])
def test_page_table_requests_and_splits_by_hand(scheme, requests, split):
    # 1024 frames: one order-10 block. pair: the root pair splits it (leaving one free block
    # of each order 1..9); the pml3 pair takes the free order-1 block; the pml2 pair finds
    # order 1 empty and splits order 2; the pml1 pair takes the order-1 half left over.
    # separate-eager: each KPT page finds order 0 empty and splits, each EPT page takes the
    # other half.
    trace = trace_of([dict(op="spawn", pid=1), dict(op="map", pid=1, va=0, length=PAGE)])
    res = replay_both(trace, scheme, 1024)
    assert (res.pressure["pt_requests"], res.pressure["pt_requests_split"]) == (requests, split)


def test_akaros_scans_every_order1_request():
    trace = trace_of([dict(op="spawn", pid=1), dict(op="map", pid=1, va=0, length=PAGE)])
    res = replay_both(trace, "pair", 1024, allocator="akaros-2015")
    assert (res.pressure["pt_requests"], res.pressure["pt_requests_split"]) == (4, 4)
