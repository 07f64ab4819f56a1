"""Samples taken in compiled code (sim/sampling.py) are the state after their event, at the
events a replay stepped one event at a time would sample."""

import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ptpair.sim import counters as C
from ptpair.sim.allocator import buddyinfo
from ptpair.sim.buddy import N_ORDERS
from ptpair.sim.machine import SAMPLE_COLUMNS, Config, Machine
from ptpair.sim.pagetable import P_ALIVE
from ptpair.sim.slots import M_FREE_PAGES
from ptpair.traces.format import Trace, encode
from tests.gen import random_trace


def state_row(m: Machine) -> np.ndarray:
    """The state now, as a row of SAMPLE_COLUMNS, from the machine's arrays (numpy)."""
    c, b, t = m.ctr, m.buddy, m.tables
    alive = t.procs.state == P_ALIVE
    return np.concatenate([
        [c[C.EVENTS]], c[C.KPT:C.KPT + 4], [c[C.EPT], c[C.EPT_WASTE], c[C.DATA], c[C.GIGANTIC], c[C.KALLOC],
                                           b.meta[M_FREE_PAGES]],
        buddyinfo(b), c[C.FAIL:C.FAIL + N_ORDERS], [alive.sum(), (alive & (t.procs.vmm != 0)).sum()],
        [c[C.COMPACT:C.COMPACT + N_ORDERS].sum()], m.hugepage_blocks(),
        [c[C.PT_REQUESTS], c[C.PT_SPLIT], c[C.DEPOSITED]]]).astype(np.int64)


def stepped(trace: Trace, config: Config, every: int, lenient: bool) -> np.ndarray:
    """The samples of a replay run one event per call, each sample built in numpy."""
    ev = encode(trace)
    m = Machine(config, ev.n_procs)
    rows = []
    for i in range(len(ev)):
        m.run(ev, i, i + 1, lenient=lenient)
        events = int(m.ctr[C.EVENTS])
        if events % every == 0 and (not rows or rows[-1][0] != events):
            rows.append(state_row(m))
    return np.array(rows).reshape(-1, len(SAMPLE_COLUMNS))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), every=st.sampled_from([1, 2, 7]),
       allocator=st.sampled_from(["buddy", "linux", "akaros-2015"]), chunk=st.sampled_from([5, 1000]))
def test_samples_are_the_state_after_their_event(seed, every, allocator, chunk):
    rnd = random.Random(seed)
    trace = random_trace(rnd, n_events=80, max_pid=4)
    # small memory: failures, compaction and the pools growing mid-replay all happen
    config = Config(rnd.choice(["pair", "separate", "separate-lazy"]), "address", rnd.choice([96, 400, 4096]),
                    allocator)
    ev = encode(trace)
    m = Machine(config, ev.n_procs)
    for start in range(0, len(ev), chunk):  # in pieces, as a file is read
        m.run(ev, start, min(len(ev), start + chunk), sample_every=every)
    got = np.array(m.samples).reshape(-1, len(SAMPLE_COLUMNS))
    np.testing.assert_array_equal(got, stepped(trace, config, every, lenient=False))


def test_skipped_impossible_events_sample_as_stepping_does():
    # lenient: impossible events (a map of a pid never spawned) are skipped, not counted
    rows = [(1, "spawn", 0, 0)] + [(1, "map", i << 12, 4096) for i in range(5)] + [(9, "map", 0, 4096)] \
        + [(1, "map", (8 + i) << 12, 4096) for i in range(5)] + [(9, "exit", 0, 0), (1, "exit", 0, 0)]
    trace = Trace.from_columns(pid=[r[0] for r in rows], op=[r[1] for r in rows], va=[r[2] for r in rows],
                               length=[r[3] for r in rows])
    config = Config(memory_pages=4096)
    for every in (1, 2, 3):
        m = Machine(config, encode(trace).n_procs)
        m.run(encode(trace), sample_every=every, lenient=True)
        assert sum(m.skipped_bad.values()) == 2
        np.testing.assert_array_equal(np.array(m.samples), stepped(trace, config, every, lenient=True))


@pytest.mark.parametrize("every", [1, 3])
def test_a_full_sample_array_grows(every, monkeypatch):
    import ptpair.sim.machine as machine

    trace = random_trace(random.Random(5), n_events=60, max_pid=3)
    config = Config(memory_pages=1 << 12)
    # the array sized for the run made too small to hold it: the run must grow it
    monkeypatch.setattr(machine, "_sample_array", lambda n, every: np.zeros((1, len(SAMPLE_COLUMNS)), np.int64))
    m = Machine(config, encode(trace).n_procs)
    m.run(encode(trace), sample_every=every)
    np.testing.assert_array_equal(np.array(m.samples), stepped(trace, config, every, lenient=False))


def test_samples_before_an_impossible_event_are_kept():
    from ptpair.sim.machine import ReplayError

    trace = Trace.from_columns(pid=[1, 1, 1, 9], op=["spawn", "map", "map", "exit"], va=[0, 0, 8192, 0],
                               length=[0, 4096, 4096, 0])
    m = Machine(Config(memory_pages=4096), encode(trace).n_procs)
    with pytest.raises(ReplayError):
        m.run(encode(trace), sample_every=1)
    assert [int(r[0]) for r in m.samples] == [1, 2, 3]
