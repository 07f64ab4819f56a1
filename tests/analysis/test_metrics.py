"""Time series and end-of-run figures of one replay; minimum memory."""

import pytest

from ptpair.analysis.metrics import enriched_dict, series_frame, summary
from ptpair.analysis.minmem import clean_point, min_memory
from ptpair.sim.machine import Config
from ptpair.sim.replay import replay
from ptpair.traces.synth import synth

TRACE = synth("mixed", seed=2, events=3000)


def test_series_is_sampled_every_k_events_and_at_the_end():
    r = replay(TRACE, Config("pair", "address", 1 << 16), sample_every=700)
    df = series_frame(r)
    assert df["events"].tolist() == [700, 1400, 2100, 2800, 3000]
    last = df.iloc[-1]
    assert last["ept_pages"] == r.final["ept_pages"] and last["free_pages"] == r.final["free_pages"]
    assert [last[f"free_blocks_{k}"] for k in range(11)] == r.final["buddyinfo"]
    assert last["failures"] == sum(r.alloc_failures)
    assert (df["pt_pages"] == df["kpt_pages"] + df["ept_pages"]).all()
    # conservation in every sample
    used = df["pt_pages"] + df["data_pages"] + df["kalloc_pages"]
    assert (used + df["free_pages"] == 1 << 16).all()
    assert df["failures"].is_monotonic_increasing


def test_sampling_does_not_change_the_result():
    a = replay(TRACE, Config("separate", "lifo", 1 << 15))
    b = replay(TRACE, Config("separate", "lifo", 1 << 15), sample_every=333)
    assert a.to_dict() == b.to_dict()


def test_summary_figures_are_consistent():
    r = replay(TRACE, Config("pair", "address", 1 << 20))
    s = summary(r)
    assert s["pt_pages_peak"] >= s["pt_pages_mean"] > 0
    assert s["overhead_final"] == pytest.approx(r.final["pt_pages"] / r.final["data_pages"], rel=1e-5)
    assert s["wasted_ept_pages_final"] == r.final["wasted_ept_pages"]
    assert s["ept_loads_per_mapped_page"] == 0.0  # pair: the EPT entry is at +4096
    assert s["highalloc_order9_final"] >= 1 and s["jw_high_water_pages"] >= s["jw_live_pages"] > 0
    d = enriched_dict(r)
    assert len(d["final"]["unusable_index"]) == 11 and len(d["final"]["fragmentation_index"]) == 11


@pytest.mark.parametrize("scheme", ["pair", "separate"])
def test_min_memory_is_frame_exact_and_verified_by_direct_replays(scheme):
    small = synth("kernel-churn", seed=1, events=1500)
    mm = min_memory(small, scheme)
    assert mm.step_pages == 1 and mm.verified
    clean = replay(small, Config(scheme, "address", mm.min_memory_pages))
    assert sum(clean.alloc_failures) == 0
    assert mm.peak_used_pages == clean.peak["used_pages"] <= mm.min_memory_pages
    assert mm.pressure_margin_pages == mm.min_memory_pages - mm.peak_used_pages >= 0
    if mm.min_memory_pages > mm.peak_used_pages:  # not the lower bound: one frame less fails
        tight = replay(small, Config(scheme, "address", mm.min_memory_pages - 1))
        assert sum(tight.alloc_failures) > 0


def test_min_memory_with_coarse_steps_and_a_small_probe_budget():
    small = synth("mixed", seed=2, events=1500)
    exact = min_memory(small, "pair")
    coarse = min_memory(small, "pair", step=256)
    assert coarse.verified and coarse.min_memory_pages % 256 == 0
    assert coarse.peak_used_pages == exact.peak_used_pages  # the lower bound does not depend on the step
    assert sum(replay(small, Config("pair", "address", coarse.min_memory_pages)).alloc_failures) == 0
    if coarse.min_memory_pages - 256 >= coarse.peak_used_pages:
        assert sum(replay(small, Config("pair", "address", coarse.min_memory_pages - 256)).alloc_failures) > 0
    # the budget stops the search: the answer is a clean size, but unverified
    cut = min_memory(small, "pair", max_probes=exact.probes - 1)
    assert not cut.verified and cut.probes == exact.probes - 1
    assert sum(replay(small, Config("pair", "address", cut.min_memory_pages)).alloc_failures) == 0


@pytest.mark.parametrize("workload,scheme,step", [("kernel-churn", "pair", 1), ("mixed", "separate", 1),
                                                  ("fork-heavy", "pair", 64)])
def test_a_known_clean_replay_saves_probes_not_the_answer(workload, scheme, step):
    trace = synth(workload, seed=3, events=1200)
    full = min_memory(trace, scheme, step=step)
    for pages in (1 << 20, full.min_memory_pages):  # a doubling size, and one the search probes
        r = replay(trace, Config(scheme, "address", pages))
        assert sum(r.alloc_failures) == 0
        assert clean_point(r) == (pages, r.peak["used_pages"], r.allocator_stats["high_water_pages"])
        quick = min_memory(trace, scheme, step=step, known_clean=clean_point(r))
        assert (quick.min_memory_pages, quick.peak_used_pages, quick.verified) == \
            (full.min_memory_pages, full.peak_used_pages, full.verified)
        assert quick.probes < full.probes


def test_a_known_clean_replay_gives_the_full_search_answer_when_the_gallop_passes_the_doubling():
    """Singles, every other one freed, then pairs: the pairs need frames past the peak
    (1,000 frames live at most, about 1,500 needed), so the gallop from the peak passes 1,024 --
    the doubling size the full search probed first -- and must find the doubling's clean
    size (2,048) to cap itself exactly as the full search did."""
    from tests.sim.test_pressure import trace_of

    rows = [dict(op="kalloc", arg=h) for h in range(1000)]
    rows += [dict(op="kfree", arg=h) for h in range(1, 1000, 2)]
    rows += [dict(op="kalloc", arg=1000 + h, order=1) for h in range(250)]
    trace = trace_of(rows)
    full = min_memory(trace, "pair")
    assert full.peak_used_pages == 1000 and full.min_memory_pages > 1024 and full.verified
    quick = min_memory(trace, "pair", known_clean=(1 << 20, 1000))
    assert (quick.min_memory_pages, quick.verified) == (full.min_memory_pages, True)
    assert quick.probes < full.probes
    first = min_memory(trace, "pair", clean_first=1 << 20)  # the report's way: that replay counted
    assert (first.min_memory_pages, first.verified) == (full.min_memory_pages, True) and first.probes < full.probes
