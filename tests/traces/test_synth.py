"""Synthetic workloads: deterministic, valid, and shaped like their names say."""

import numpy as np
import pytest

from ptpair.sim.replay import replay
from ptpair.traces.format import OP_CODE
from ptpair.traces.synth import WORKLOADS, synth, workload_params


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_same_seed_same_trace_and_replays_cleanly(name):
    a, b = synth(name, seed=3, events=3000), synth(name, seed=3, events=3000)
    assert len(a) == 3000
    for col in ("pid", "op", "va", "length", "arg", "order", "page_size"):
        assert np.array_equal(getattr(a, col), getattr(b, col))
    assert not np.array_equal(synth(name, seed=4, events=3000).va, a.va)
    r = replay(a, scheme="separate")  # valid life cycle: no TraceError
    assert r.events == 3000 and r.final["processes"] > 0


def test_workloads_differ_as_named():
    n = 8000
    vmm = synth("vmm-heavy", seed=1, events=n)
    mixed = synth("mixed", seed=1, events=n)
    fork = synth("fork-heavy", seed=1, events=n)
    churn = synth("kernel-churn", seed=1, events=n)
    count = lambda t, op: int((t.op == OP_CODE[op]).sum())
    assert count(vmm, "vmm") > count(mixed, "vmm")
    assert count(fork, "fork") > 2 * count(mixed, "fork")
    assert count(churn, "kalloc") > 2 * count(mixed, "kalloc")
    # sparse mappings need more tables per mapped page than dense ones
    sp = replay(synth("sparse", seed=1, events=n), scheme="separate").final
    mx = replay(mixed, scheme="separate").final
    assert sp["kpt_pages"] / sp["data_pages"] > mx["kpt_pages"] / mx["data_pages"]


def test_layout_looks_like_linux():
    t = synth("mixed", seed=2, events=2000)
    maps = t.va[t.op == OP_CODE["map"]]
    assert (maps >= 0x555555554000).any() and (maps >= 0x7F0000000000 - (1 << 40)).any()
    assert (maps < (1 << 47)).all()


def test_overrides_and_unknown_parameters():
    assert workload_params("mixed", vmm_fraction=1.0).vmm_fraction == 1.0
    with pytest.raises(ValueError, match="unknown workload parameter"):
        workload_params("mixed", nonsense=1)
    with pytest.raises(ValueError, match="unknown workload"):
        synth("nope")
