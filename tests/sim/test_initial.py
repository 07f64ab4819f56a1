"""Replays from an initial state (sim/boot.py, sim/initial.py): a free map's runs, and
memory aged by a warm-up trace, against the reference machine and by hand."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ptpair.sim.allocator import ALLOCATORS, new_allocator
from ptpair.sim.buddy import POLICIES
from ptpair.sim.check import check_state
from ptpair.sim.initial import forget
from ptpair.sim.machine import Config, Machine
from ptpair.sim.schemes import SCHEMES
from ptpair.traces.format import OPS, encode
from ptpair.traces.freemap import FREE, HOLE, USED, runs
from tests.gen import random_trace
from tests.reference.machine import Reference
from tests.sim.test_differential import KERNELS, compare

CFG = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example])


def machine_on(state, scheme="pair", policy="address", allocator="buddy", reclaim="empty", n_procs=1):
    """A Machine whose memory starts as `state` (a FREE / USED / HOLE per frame)."""
    state = np.asarray(state, np.uint8)
    m = Machine(Config(scheme, policy, len(state), allocator, reclaim), n_procs)
    m.buddy = new_allocator(len(state), ALLOCATORS[allocator], POLICIES[policy], runs(state))
    return m


def feed(m, ref, trace, ev, check=False):
    for i in range(len(trace)):
        m.run(ev, i, i + 1)
        ref.event(int(trace.pid[i]), OPS[trace.op[i]], int(trace.va[i]), int(trace.length[i]),
                  int(trace.arg[i]), int(trace.order[i]), int(trace.page_size[i]), int(trace.migratetype[i]))
        if check:
            ref.check_invariants()
            check_state(m)


@st.composite
def maps(draw, max_frames=3000):
    """A state per frame built from runs of random states and lengths (holes included)."""
    out = []
    n = draw(st.integers(1, max_frames))
    while len(out) < n:
        state = draw(st.sampled_from([FREE, FREE, USED, HOLE]))
        out += [state] * draw(st.integers(1, 700))
    return out[:n]


@settings(max_examples=150, **CFG)
@given(state=maps(), rnd=st.randoms(use_true_random=False), scheme=st.sampled_from(list(SCHEMES)),
       policy=st.sampled_from(["address", "lifo"]), kernel=KERNELS, n=st.integers(1, 80))
def test_replay_from_a_map_matches_reference(state, rnd, scheme, policy, kernel, n):
    allocator, reclaim = kernel
    trace = random_trace(rnd, n)
    ev = encode(trace)
    m = machine_on(state, scheme, policy, allocator, reclaim, ev.n_procs)
    ref = Reference(scheme, policy, len(state), allocator=allocator, reclaim=reclaim, initial=state)
    assert m.free_blocks() == ref.buddy.blocks()  # the boot itself, list order included
    feed(m, ref, trace, ev, check=n < 30)
    compare(m.result(), ref)
    assert m.free_blocks() == ref.buddy.blocks()
    f = m.result().final
    assert f["background_pages"] == state.count(USED) and f["hole_pages"] == state.count(HOLE)


@settings(max_examples=100, **CFG)
@given(state=maps(), rnd=st.randoms(use_true_random=False), scheme=st.sampled_from(list(SCHEMES)),
       policy=st.sampled_from(["address", "lifo"]), kernel=KERNELS)
def test_aged_memory_matches_reference(state, rnd, scheme, policy, kernel):
    """A warm-up trace, forgotten into background, then a measured trace."""
    allocator, reclaim = kernel
    warm, measured = random_trace(rnd, 60), random_trace(rnd, 60)
    wev, mev = encode(warm), encode(measured)
    m = machine_on(state, scheme, policy, allocator, reclaim, wev.n_procs)
    ref = Reference(scheme, policy, len(state), allocator=allocator, reclaim=reclaim, initial=state)
    feed(m, ref, warm, wev)
    aged = Machine(Config(scheme, policy, len(state), allocator, reclaim), mev.n_procs)
    aged.buddy = forget(m.buddy)
    ref = ref.aged()
    check_state(aged)
    ref.check_invariants()
    feed(aged, ref, measured, mev, check=True)
    compare(aged.result(), ref)
    assert aged.free_blocks() == ref.buddy.blocks()
    assert aged.result().final["background_pages"] == len(ref.background)


@pytest.mark.parametrize("allocator,policy", [("buddy", "address"), ("buddy", "lifo"), ("linux", "address"),
                                              ("akaros-2015", "address")])
def test_an_all_free_map_is_pristine_memory(allocator, policy):
    trace = random_trace(__import__("random").Random(3), 300)
    ev = encode(trace)
    a = Machine(Config("pair", policy, 5000, allocator), ev.n_procs)
    b = machine_on([FREE] * 5000, "pair", policy, allocator, n_procs=ev.n_procs)
    a.run(ev)
    b.run(ev)
    assert a.result().to_dict() == b.result().to_dict()
    assert a.free_blocks() == b.free_blocks()


def test_boot_by_hand():
    """3 background frames, 13 free, 16 holes, 32 free: the free runs carved from their
    low ends; the lists ascending from the head; holes neither free nor background."""
    state = [USED] * 3 + [FREE] * 13 + [HOLE] * 16 + [FREE] * 32
    m = machine_on(state, policy="lifo")
    # [3, 16): 3 (order 0), 4-7 (order 2), 8-15 (order 3); [32, 64): one order-5 block
    assert m.free_blocks() == [(3, 0), (4, 2), (8, 3), (32, 5)]
    f = m.result().final
    assert (f["free_pages"], f["background_pages"], f["hole_pages"]) == (45, 3, 16)
    check_state(m)


def test_lists_are_ascending_from_the_head():
    """Free runs give several blocks of one order: the lowest comes out first (FPI_TO_TAIL),
    under lifo and linux as under address."""
    state = ([FREE] * 2 + [USED] * 2) * 8  # eight order-1 blocks at 0, 4, 8, ...
    for allocator, policy in (("buddy", "lifo"), ("linux", "address"), ("buddy", "address")):
        m = machine_on(state, "pair", policy, allocator)
        assert [f for f, k in m.free_blocks()] == list(range(0, 32, 4))


def test_linux_pageblocks_half_background_are_unmovable():
    state = [USED] * 256 + [FREE] * 256 + [USED] * 255 + [FREE] * 257 + [FREE] * 512
    m = machine_on(state, allocator="linux")
    f = m.result().final
    assert f["pageblocks_by_type"] == {"unmovable": 1, "movable": 2, "reclaimable": 0}
    assert f["polluted_pageblocks"] == 2
    # the free blocks of the unmovable pageblock are on the unmovable lists
    assert f["pagetypeinfo"]["unmovable"][8] == 1 and f["pagetypeinfo"]["movable"][9] == 1


def test_holes_and_background_in_the_pressure_metrics():
    """A 2 MiB block with a hole is not counted; background blocks a hugepage and makes a
    window containing it useless to compaction."""
    state = [HOLE] + [FREE] * 511 + [USED] + [FREE] * 511 + [FREE] * 512
    m = machine_on(state)
    h = m.result().final["hugepage_blocks"]
    assert h["free"] == 1 and h["blocked"]["background"] == 1 and h["movable_only"] == 0
    from ptpair.sim.occupancy import compaction_cost

    assert compaction_cost(m.buddy, 9) == 0  # the free third block
    assert compaction_cost(m.buddy, 10) == -1  # every order-10 window holds a hole or background
