"""The bracket of the minimum-memory search (analysis/minmem.py, step 2): on pristine
memory under the buddy allocator, replays at multiples of the largest block (1024 frames)
agree until the smaller memory runs out, so one clean replay's high water decides which
of those sizes run clean."""

import random

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ptpair.analysis.minmem import BLOCK_PAGES, clean_point, min_memory
from ptpair.sim.machine import Config
from ptpair.sim.replay import replay
from ptpair.sim.schemes import SCHEMES
from ptpair.traces.synth import synth
from tests.gen import random_trace

BIG_PAGES = 64 * BLOCK_PAGES  # 256 MiB: far above what a generated trace touches


def _same_run(a, b) -> bool:
    """The two replays made the same allocations: same counts, peaks and high water (the
    free lists differ by the larger memory's untouched blocks)."""
    keys = ("kpt_pages", "ept_pages", "wasted_ept_pages", "data_pages", "kalloc_pages", "deposited_pte_pages")
    return (all(a.final[k] == b.final[k] for k in keys) and a.peak["used_pages"] == b.peak["used_pages"]
            and a.allocator_stats == b.allocator_stats and a.pressure == b.pressure)


@settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 2**32 - 1), scheme=st.sampled_from(list(SCHEMES)),
       policy=st.sampled_from(["address", "lifo"]), reclaim=st.sampled_from(["empty", "linux"]),
       thp=st.sampled_from([0.0, 0.3]))
def test_a_multiple_of_the_largest_block_runs_clean_exactly_when_it_holds_the_high_water(seed, scheme, policy,
                                                                                        reclaim, thp):
    rnd = random.Random(seed)
    trace = random_trace(rnd, n_events=rnd.choice([40, 120]), vmas=0.15 if reclaim == "linux" else 0.0, thp=thp)
    big = replay(trace, Config(scheme, policy, BIG_PAGES, reclaim=reclaim))
    assume(not any(big.alloc_failures))
    high = big.allocator_stats["high_water_pages"]
    c = -(-high // BLOCK_PAGES) * BLOCK_PAGES
    at_c = replay(trace, Config(scheme, policy, c, reclaim=reclaim))
    assert not any(at_c.alloc_failures) and _same_run(at_c, big)
    if c > BLOCK_PAGES:  # the next multiple down runs out
        assert any(replay(trace, Config(scheme, policy, c - BLOCK_PAGES, reclaim=reclaim)).alloc_failures)


def test_the_answer_does_not_depend_on_the_clean_replay_the_caller_knew():
    """The full search (doubling from 256 frames), a known clean replay with or without its
    high water, and the report's replay at 4 GiB first find the same verified minimum;
    knowing more costs fewer replays."""
    trace = synth("vmm-heavy", seed=4, events=1500)
    full = min_memory(trace, "pair")
    r = replay(trace, Config("pair", "address", 1 << 20))
    with_hw = min_memory(trace, "pair", known_clean=clean_point(r))
    without = min_memory(trace, "pair", known_clean=clean_point(r)[:2])
    first = min_memory(trace, "pair", clean_first=1 << 20)
    answers = {(m.min_memory_pages, m.peak_used_pages, m.verified) for m in (full, with_hw, without, first)}
    assert answers == {(full.min_memory_pages, full.peak_used_pages, True)}
    assert with_hw.probes < without.probes < full.probes and first.probes == with_hw.probes + 1
    # the bracket: the answer lies within the last 1024 frames below the first clean multiple
    c = -(-r.allocator_stats["high_water_pages"] // BLOCK_PAGES) * BLOCK_PAGES
    assert max(c - BLOCK_PAGES, full.peak_used_pages - 1) < full.min_memory_pages <= c
