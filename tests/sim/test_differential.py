"""The compiled core against the plain-Python reference, on generated traces."""

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ptpair.sim.machine import Config, Machine
from ptpair.sim.schemes import SCHEMES
from ptpair.traces.format import OPS, Trace, encode
from tests.gen import random_trace
from tests.reference.machine import Reference

SCHEME_NAMES = list(SCHEMES)


def reference_replay(trace, scheme, policy, memory_pages, check=False, allocator="buddy", reclaim="empty",
                     thp_deposit=None, pt_reclaim=True):
    ref = Reference(scheme, policy, memory_pages, allocator=allocator, reclaim=reclaim, thp_deposit=thp_deposit,
                    pt_reclaim=pt_reclaim)
    for i in range(len(trace)):
        ref.event(int(trace.pid[i]), OPS[trace.op[i]], int(trace.va[i]), int(trace.length[i]),
                  int(trace.arg[i]), int(trace.order[i]), int(trace.page_size[i]), int(trace.migratetype[i]))
        if check:
            ref.check_invariants()
    return ref


def c_events(r):
    return r["counters"]["events"]


def compare(res, ref):
    r = ref.result()
    f = res.final
    assert f["kpt_pages_by_level"] == r["kpt_pages_by_level"]
    for key in ("kpt_pages", "deposited_pte_pages", "ept_pages", "wasted_ept_pages", "data_pages", "gigantic_pages", "kalloc_pages",
                "free_pages", "buddyinfo", "processes", "vmm_processes", "vmm_kpt_pages"):
        assert f[key] == r[key], key
    peak = dict(res.peak)
    at_peak = peak.pop("buddyinfo_at_peak_used")
    assert at_peak is None or at_peak == r["peak_buddyinfo"]
    huge_at_peak = peak.pop("hugepage_blocks")
    assert peak == r["peak"]
    flat = lambda h: {"free": h["free"], "movable_only": h["movable_only"], **h["blocked"]}  # noqa: E731
    assert flat(f["hugepage_blocks"]) == r["hugepage_blocks"]
    if r["peak_hugepage_blocks"] is not None:
        assert flat(huge_at_peak) == r["peak_hugepage_blocks"]
    assert res.pressure == {"compaction_pages": sum(r["compaction_pages_by_order"]),
                            "compaction_pages_by_order": r["compaction_pages_by_order"],
                            "hopeless_failures": r["hopeless_failures"], "pt_requests": r["pt_requests"],
                            "pt_requests_split": r["pt_requests_split"]}
    assert res.mean["pt_pages"] == (round(r["pt_sum"] / c_events(r), 6) if c_events(r) else 0.0)
    assert res.allocator_stats["high_water_pages"] == r["high_water"]
    assert res.allocator_stats["live_pages_at_high_water"] == r["live_at_high_water"]
    if ref.allocator == "linux":
        assert res.final["polluted_pageblocks"] == ref.buddy.polluted()
        assert res.allocator_stats["fallbacks"] == ref.buddy.fallbacks
        assert res.allocator_stats["pageblocks_relabelled"] == ref.buddy.relabelled
        names = ("unmovable", "movable", "reclaimable")
        assert res.final["pageblocks_by_type"] == {names[t]: ref.buddy.pb_type.count(t) for t in range(3)}
        assert res.final["pagetypeinfo"] == {names[t]: [len(ref.buddy.lists[(k, t)]) for k in range(11)]
                                             for t in range(3)}
    if ref.allocator == "akaros-2015":
        assert res.allocator_stats["frames_scanned"] == ref.buddy.scanned
        assert res.allocator_stats["scan_allocations"] == ref.buddy.scans
    assert res.alloc_failures == r["alloc_failures"]
    c = r["counters"]
    assert res.failed_maps == c["failed_maps"]
    assert res.failed_spawns == c["failed_spawns"]
    assert res.skipped_events == c["skipped"]
    assert res.events == c["events"]
    w = res.walk
    assert (w["entry_writes"], w["kpt_pages_touched"], w["ept_pages_touched"], w["ept_dependent_loads"]) == (
        c["writes"], c["kpt_touch"], c["ept_touch"], c["ept_loads"])
    k = res.counts
    assert (k["pages_mapped"], k["pages_unmapped"], k["pages_already_mapped"], k["tables_mirrored"],
            k["tables_copied"], k["vmm_transitions"]) == (
        c["mapped"], c["unmapped"], c["already"], c["mirrored"], c["copies"], c["vmm_events"])


KERNELS = st.sampled_from([("buddy", "empty"), ("buddy", "exit"), ("akaros-2015", "exit"),
                           ("akaros-2015", "empty"), ("linux", "empty"), ("linux", "exit"), ("buddy", "linux"),
                           ("linux", "linux")])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example])
@given(rnd=st.randoms(use_true_random=False), scheme=st.sampled_from(SCHEME_NAMES),
       policy=st.sampled_from(["address", "lifo"]), memory=st.sampled_from([48, 256, 1000, 4096, 1 << 14]),
       n=st.integers(1, 120), kernel=KERNELS)
def test_core_matches_reference(rnd, scheme, policy, memory, n, kernel):
    allocator, reclaim = kernel
    trace = random_trace(rnd, n)
    ev = encode(trace)
    m = Machine(Config(scheme, policy, memory, allocator, reclaim), ev.n_procs)
    m.run(ev)
    ref = reference_replay(trace, scheme, policy, memory, allocator=allocator, reclaim=reclaim)
    compare(m.result(), ref)
    assert m.free_blocks() == ref.buddy.blocks()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example])
@given(rnd=st.randoms(use_true_random=False), scheme=st.sampled_from(SCHEME_NAMES),
       policy=st.sampled_from(["address", "lifo"]), memory=st.sampled_from([64, 700, 2048, 1 << 14]),
       kernel=KERNELS)
def test_invariants_after_every_event(rnd, scheme, policy, memory, kernel):
    """Invariants hold in the reference after each event, and the core's free lists
    equal the reference's after each event (the core replayed one event at a time)."""
    allocator, reclaim = kernel
    trace = random_trace(rnd, 80)
    ev = encode(trace)
    m = Machine(Config(scheme, policy, memory, allocator, reclaim), ev.n_procs)
    ref = Reference(scheme, policy, memory, allocator=allocator, reclaim=reclaim)
    for i in range(len(trace)):
        m.run(ev, i, i + 1)
        ref.event(int(trace.pid[i]), OPS[trace.op[i]], int(trace.va[i]), int(trace.length[i]),
                  int(trace.arg[i]), int(trace.order[i]), int(trace.page_size[i]), int(trace.migratetype[i]))
        ref.check_invariants()
        assert m.free_blocks() == ref.buddy.blocks(), f"free lists differ after event {i}"
        r = m.result()
        used = r.final["pt_pages"] + r.final["data_pages"] + r.final["kalloc_pages"]
        assert used + r.final["free_pages"] == memory


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example])
@given(rnd=st.randoms(use_true_random=False), scheme=st.sampled_from(SCHEME_NAMES),
       memory=st.sampled_from([1100, 2048, 4096, 1 << 14]), kernel=KERNELS, deposit=st.booleans(),
       per_event=st.booleans())
def test_thp_deposits_match_reference(rnd, scheme, memory, kernel, deposit, per_event):
    """Traces rich in 2 MiB pages (anonymous and file-backed, and faults where transparent
    huge pages apply: MAP_THP), with and without deposits: the same deposited tables,
    freed in the same order (free lists equal), invariants kept."""
    allocator, reclaim = kernel
    trace = random_trace(rnd, 70, huge2m=0.5, thp=0.3)
    ev = encode(trace)
    m = Machine(Config(scheme, "address", memory, allocator, reclaim, thp_deposit=deposit), ev.n_procs)
    _replay_both(m, ev, trace, per_event, Reference(scheme, "address", memory, allocator=allocator, reclaim=reclaim,
                                                    thp_deposit=deposit))
    if not deposit:
        assert m.result().final["deposited_pte_pages"] == 0


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example])
@given(rnd=st.randoms(use_true_random=False), scheme=st.sampled_from(SCHEME_NAMES),
       memory=st.sampled_from([300, 2048, 1 << 14]), kernel=KERNELS, pt_reclaim=st.booleans(),
       per_event=st.booleans())
def test_vma_events_match_reference(rnd, scheme, memory, kernel, pt_reclaim, per_event):
    """Traces with VMA events (reserve, release, dontneed) under every reclaim rule, with
    and without PT_RECLAIM: Linux's free_pgtables floors and ceilings and PT_RECLAIM free
    the same tables in the same order (free lists equal), invariants kept."""
    allocator, reclaim = kernel
    trace = random_trace(rnd, 90, huge2m=0.1, vmas=0.3)
    ev = encode(trace)
    pr = pt_reclaim if reclaim == "linux" else None
    m = Machine(Config(scheme, "address", memory, allocator, reclaim, pt_reclaim=pr), ev.n_procs)
    _replay_both(m, ev, trace, per_event, Reference(scheme, "address", memory, allocator=allocator, reclaim=reclaim,
                                                    pt_reclaim=pt_reclaim))


def _replay_both(m, ev, trace, per_event, ref):
    """Replay `trace` on the core machine `m` and the reference `ref`: whole, or event by
    event with every invariant and the free lists checked after each; then compare."""
    if per_event:
        from ptpair.sim.check import check_state

        for i in range(len(trace)):
            m.run(ev, i, i + 1)
            check_state(m)
            _ref_event(ref, trace, i)
            ref.check_invariants()
            assert m.free_blocks() == ref.buddy.blocks(), f"free lists differ after event {i}"
    else:
        m.run(ev)
        for i in range(len(trace)):
            _ref_event(ref, trace, i)
    compare(m.result(), ref)


def _ref_event(ref, trace, i):
    ref.event(int(trace.pid[i]), OPS[trace.op[i]], int(trace.va[i]), int(trace.length[i]), int(trace.arg[i]),
              int(trace.order[i]), int(trace.page_size[i]), int(trace.migratetype[i]))


def test_pool_growth_matches_reference():
    """Tiny initial pools force many grow-and-resume cycles mid-trace."""
    rnd = random.Random(7)
    trace = random_trace(rnd, 400, max_pid=10)
    ev = encode(trace)
    from ptpair.sim.pagetable import new_tables

    m = Machine(Config("separate", "lifo", 1 << 14), ev.n_procs)
    m.tables = new_tables(1 << 14, ev.n_procs, handle_cap=2, slot_cap=2, g_cap=1, deposit=True)
    m.run(ev)
    ref = reference_replay(trace, "separate", "lifo", 1 << 14)
    compare(m.result(), ref)
    assert len(m.tables.t_kpt) > 2


@pytest.mark.parametrize("scheme", ["pair", "separate", "separate-eager", "pair-on-vmm"])
@pytest.mark.parametrize("allocator", ["buddy", "linux"])
def test_exhausted_memory_counts_a_huge_map_exactly(scheme, allocator):
    """At exhausted memory the core counts pages under missing tables in bulk; the
    reference walks every page. A range across a 1-GiB boundary, over a huge page and
    over a leaf table that exists, with a process that is a VMM."""
    gib, mib2 = 1 << 30, 1 << 21
    trace = Trace.from_columns(
        op=["spawn", "vmm", "map", "map", "map", "map", "spawn", "map"],
        pid=[1, 1, 1, 1, 1, 1, 2, 2],
        va=[0, 0, gib - mib2, gib - 3 * mib2, gib + 5 * 4096, gib - 4 * mib2 + 8192, 0, 0x400000],
        length=[0, 0, mib2, 40 * 4096, 4096, gib + 3 * mib2 + 12345, 0, 70 * mib2],
        page_size=[4096, 4096, mib2, 4096, 4096, 4096, 4096, 4096], migratetype=[0] * 8)
    memory = 1100  # the 2 MiB page (512), a few tables and ~500 pages: then nothing is left
    ev = encode(trace)
    m = Machine(Config(scheme, "address", memory, allocator, "empty"), ev.n_procs)
    m.run(ev)
    ref = reference_replay(trace, scheme, "address", memory, allocator=allocator)
    res = m.result()
    compare(res, ref)
    assert m.free_blocks() == ref.buddy.blocks()
    assert res.failed_maps > 250_000 and res.counts["pages_already_mapped"] >= 512
