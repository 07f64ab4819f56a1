"""--check: the invariants hold on the compiled core after every event, and a broken
state is caught and located."""

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ptpair.sim.check import InvariantError, check_state
from ptpair.sim.machine import Config, Machine
from ptpair.sim.replay import replay
from ptpair.traces.format import encode
from tests.gen import random_trace

CONFIGS = [("pair", "address", "buddy", "empty"), ("separate", "lifo", "buddy", "exit"),
           ("pair-on-vmm", "address", "linux", "empty"), ("separate-lazy", "address", "akaros-2015", "exit"),
           ("separate-eager", "lifo", "linux", "exit")]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example])
@given(rnd=st.randoms(use_true_random=False), cfg=st.sampled_from(CONFIGS), memory=st.sampled_from([96, 1024, 8192]))
def test_invariants_hold_after_every_event_of_the_compiled_core(rnd, cfg, memory):
    scheme, policy, allocator, reclaim = cfg
    replay(random_trace(rnd, 60), Config(scheme, policy, memory, allocator, reclaim), check=True)


def test_a_broken_state_is_caught():
    trace = random_trace(random.Random(3), 40)
    m = Machine(Config("pair", "address", 4096))
    m.run(encode(trace))
    check_state(m)
    live = int(m.tables.procs.root[m.tables.procs.state == 1][0])
    m.tables.t_ept[live] += 2  # a pair whose EPT page is not KPT + 1
    with pytest.raises(InvariantError, match="KPT page \\+ 1"):
        check_state(m)
    m.tables.t_ept[live] -= 2
    m.buddy.meta[2] += 1  # free-page counter off by one
    with pytest.raises(InvariantError, match="do not add up"):
        check_state(m)


def test_check_names_the_event(tmp_path, monkeypatch):
    from ptpair.sim import check as chk

    path = tmp_path / "t.csv"
    path.write_text("pid,op,va,length,arg,order\n1,spawn,,,,\n1,map,0,4096,,\n1,exit,,,,\n")
    calls = {"n": 0}
    real = chk.check_state

    def flaky(m):  # break on the third check: after the second event (line 3)
        calls["n"] += 1
        if calls["n"] == 3:
            raise InvariantError("test")
        real(m)

    monkeypatch.setattr(chk, "check_state", flaky)
    with pytest.raises(InvariantError, match=r"t.csv:3: invariant broken after this event: test"):
        replay(path, Config(memory_pages=64), check=True)
