"""Replayed page tables next to VmPTE samples (analysis/vmpte.py), on a hand-checked trace."""

import numpy as np
import pandas as pd

from ptpair.analysis.vmpte import agreement, check_vmpte, over_time, replayed_over_time
from ptpair.traces.format import Trace

GIB = 1 << 30


def _trace():
    # p1: a page (pml3 + pml2 + pml1 below the root), then a page 512 GiB away (three more);
    # p2 forks from p1 (copies them) and exits
    return Trace.from_columns(pid=[1, 1, 1, 2, 2], op=["spawn", "map", "map", "fork", "exit"],
                              va=[0, 0x1000, 512 * GIB, 0, 0], length=[0, 4096, 4096, 0, 0], arg=[0, 0, 0, 1, 0],
                              time=[1.0, 2.0, 3.0, 3.5, 4.0])


def test_replayed_page_tables_at_each_moment():
    r = replayed_over_time(_trace(), [0.5, 1.5, 2.5, 3.7, 4.5])
    assert list(r.itertuples(index=False, name=None)) == [
        (1.5, 1, 0), (2.5, 1, 12), (3.7, 1, 24), (3.7, 2, 24), (4.5, 1, 24)]  # nothing lives at 0.5


def test_samples_get_the_replay_at_their_moment():
    samples = pd.DataFrame({"time": [2.5, 3.7, 3.7, 4.5], "pid": [1, 1, 2, 2], "comm": ["a", "a", "b", "b"],
                            "vmpte_kb": [12, 20, 24, 8]})
    c = check_vmpte(_trace(), samples)
    assert c["replayed_kb"].tolist() == [12, 24, 24, pd.NA] and c["diff_kb"].tolist() == [0, 4, 0, pd.NA]
    a = agreement(c)
    assert (a["samples"], a["exact"], a["within"], a["max_abs_diff_kb"]) == (3, 2, 2, 4)
    # the report's data: every sampled process between samples too, time from the first event
    o = over_time(_trace(), samples, grid_points=7)
    assert set(o["pid"]) == {1, 2} and o["time"].min() == 0.0 and o["vmpte_kb"].notna().sum() == 3
    at = o[o["vmpte_kb"].notna()]
    assert (at["replayed_kb"].to_numpy() == np.array([12, 24, 24])).all()
    assert o.loc[o["pid"] == 2, "comm"].eq("b").all()
