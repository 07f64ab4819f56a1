"""Runs of allocator events (kalloc, kfree) replay with part of their bookkeeping kept in
locals (sim/core.py `_kernel_events`): a replay must end with every counter, free block
and handle a replay run one event per call ends with."""

import random
from dataclasses import replace

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ptpair import registry
from ptpair.sim.handles import new_handles
from ptpair.sim.machine import Config, Machine
from ptpair.traces.format import OPS, Trace, encode
from tests.gen import random_trace

HANDLE_BASE = 1 << 40  # the spliced runs' handles: apart from random_trace's
SMALL_TABLE = 4  # buckets of the handle table a replay starts with (grows at 2 live handles)


def with_allocator_runs(rnd: random.Random, trace: Trace, impossible: bool) -> Trace:
    """`trace` with runs of 1-60 kalloc/kfree events spliced in between its events, orders
    up to 10 (so that small memories fail some). `impossible`: some kfrees of unknown
    handles and kallocs of live ones too."""
    cols = {n: list(getattr(trace, n)) for n in ("pid", "va", "length", "arg", "order", "page_size", "migratetype")}
    cols["op"] = [OPS[o] for o in trace.op]
    out = {n: [] for n in cols}
    live: list[int] = []
    nxt = HANDLE_BASE

    def add(op, arg=0, order=0):
        for n, v in (("pid", 0), ("op", op), ("va", 0), ("length", 0), ("arg", arg), ("order", order),
                     ("page_size", 4096), ("migratetype", rnd.choice([0, 0, 1, 2]))):
            out[n].append(v)

    for i in range(len(trace) + 1):
        if rnd.random() < 0.4:
            for _ in range(rnd.randint(1, 60)):
                r = rnd.random()
                if impossible and r < 0.03:
                    add("kfree", arg=nxt + 10**6)  # never allocated
                elif impossible and r < 0.06 and live:
                    add("kalloc", arg=rnd.choice(live), order=0)  # still allocated
                elif r < 0.7 or not live:
                    add("kalloc", arg=nxt, order=rnd.choice([0, 0, 0, 1, 1, 2, 3, 4, 9, 10]))
                    live.append(nxt)
                    nxt += 1
                else:
                    add("kfree", arg=live.pop(rnd.randrange(len(live))))
        if i < len(trace):
            for n in cols:
                out[n].append(cols[n][i])
    return Trace.from_columns(source="<generated>", **out)


@settings(max_examples=120, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example])
@given(rnd=st.randoms(use_true_random=False), scheme=st.sampled_from(registry.SCHEME_NAMES),
       allocator=st.sampled_from(registry.ALLOCATORS), memory=st.sampled_from([64, 700, 4096, 1 << 14]),
       impossible=st.booleans(), every=st.sampled_from([0, 1, 5, 37]))
def test_runs_of_allocator_events_end_as_event_by_event(rnd, scheme, allocator, memory, impossible, every):
    trace = with_allocator_runs(rnd, random_trace(rnd, 40), impossible)
    ev = encode(trace)
    config = Config(scheme, "address", memory, allocator)
    whole, stepped = Machine(config, ev.n_procs), Machine(config, ev.n_procs)
    for m in (whole, stepped):  # a small handle table, so that it grows inside runs
        m.tables = m.tables._replace(handles=new_handles(SMALL_TABLE))
    whole.run(ev, sample_every=every or None, lenient=impossible)
    for i in range(len(ev)):
        stepped.run(ev, i, i + 1, lenient=impossible)
    if (trace.op == OPS.index("kalloc")).sum() > SMALL_TABLE:
        assert len(whole.tables.handles.key) > SMALL_TABLE  # (it grew: the test covers growth)
    np.testing.assert_array_equal(whole.ctr, stepped.ctr)  # events, peaks, the mean's sum, failures
    assert whole.free_blocks() == stepped.free_blocks()
    assert whole.skipped_bad == stepped.skipped_bad
    for name in whole.tables.handles._fields:
        np.testing.assert_array_equal(getattr(whole.tables.handles, name), getattr(stepped.tables.handles, name))
    assert replace(whole.result(), samples=None) == stepped.result()
