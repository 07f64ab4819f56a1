import numpy as np
import pytest

from ptpair.traces.format import OPS, Trace, TraceError
from ptpair.traces.merge import merge


def _t(source, **cols):
    return Trace.from_columns(source=source, **cols)


def test_merge_orders_by_time_and_makes_handles_unique():
    a = _t("a", op=["spawn", "map", "exit"], pid=[1, 1, 1], va=[0, 4096, 0], length=[0, 4096, 0],
           time=[0.0, 2.0, 4.0])
    k = _t("k", op=["kalloc", "kfree", "kalloc"], pid=[9, 9, 9], arg=[0, 0, 1], order=[0, 0, 3],
           time=[1.0, 2.0, 3.0])
    k2 = _t("k2", op=["kalloc"], pid=[9], arg=[0], order=[1], time=[2.0])
    m, note = merge([a, k, k2])
    assert note is None
    assert [OPS[o] for o in m.op] == ["spawn", "kalloc", "map", "kfree", "kalloc", "kalloc", "exit"]
    assert m.time.tolist() == [0, 1, 2, 2, 2, 3, 4]
    assert m.arg[[1, 3, 4, 5]].tolist() == [0, 0, 2, 1]  # k2's handle 0 shifted past k's
    from ptpair import api

    r = api.replay(m, api.Config("pair", "address", 1 << 10))
    assert r.final["kalloc_pages"] == 2 + 8


def test_merge_refuses_two_processes_with_one_pid_and_needs_times():
    a = _t("a", op=["spawn"], pid=[1], time=[0.0])
    b = _t("b", op=["spawn"], pid=[1], time=[1.0])
    with pytest.raises(TraceError, match="pid 1"):
        merge([a, b])
    with pytest.raises(TraceError, match="time"):
        merge([a, _t("c", op=["spawn"], pid=[2])])


def test_align_start_and_the_note_on_disjoint_clocks():
    a = _t("a", op=["spawn"], pid=[1], time=[100.0])
    b = _t("b", op=["kalloc"], pid=[0], arg=[0], order=[0], time=[5.0])
    m, note = merge([a, b])
    assert "do not overlap" in note
    m, note = merge([a, b], align="start")
    assert note is None and np.all(m.time == 100.0)
