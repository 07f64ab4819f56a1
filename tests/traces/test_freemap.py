"""Free maps of a real machine (traces/freemap.py): the rule that names each frame, the file
round trip, and the live machine's map against its own /proc/buddyinfo."""

import os

import numpy as np
import pytest

from ptpair.errors import TraceError
from ptpair.traces import freemap as F

BUDDY, NOPAGE, LRU = 1 << F.KPF_BUDDY, 1 << F.KPF_NOPAGE, 1 << 5
SEC = F.SECTION_FRAMES


def _machine(tmp_path, start_pfn, flags_by_pfn: dict, span: int):
    """Fake /proc files: kpageflags with the given words, a zoneinfo naming one zone."""
    n = start_pfn + span
    words = np.zeros(n, np.uint64)
    for pfn, w in flags_by_pfn.items():
        words[pfn] = w
    (tmp_path / "kpageflags").write_bytes(words.tobytes())
    (tmp_path / "zoneinfo").write_text(
        f"Node 0, zone   Normal\n  pages free     1\n        spanned  {span}\n        present  {span}\n"
        f"        managed  {span}\n  start_pfn:           {start_pfn}\n")
    (tmp_path / "buddyinfo").write_text("Node 0, zone   Normal      1      0\n")
    return dict(kpageflags=str(tmp_path / "kpageflags"), zoneinfo=str(tmp_path / "zoneinfo"),
                buddyinfo=str(tmp_path / "buddyinfo"))


def test_each_frame_is_named_by_the_rule(tmp_path):
    # zone from pfn 2*SEC + 100 (frame 0 of the map: rounded down to 1024), three sections:
    # the first holds buddy pages, a NOPAGE frame, a flagged used frame and flagless frames
    # (counted used: per-CPU free pages carry no flag); the second section has no flag at
    # all (no memory map: holes); the third is all in use.
    start = 2 * SEC + 100
    flags = {start + i: BUDDY for i in range(8)}
    flags[start + 8] = NOPAGE
    flags[start + 9] = LRU
    flags.update({3 * SEC + SEC + i: LRU for i in range(SEC)})
    files = _machine(tmp_path, start, flags, span=3 * SEC - 100)
    fm = F.capture(**files)
    assert fm.base_pfn == start // 1024 * 1024 and fm.frames == 5 * SEC - fm.base_pfn
    s = fm.state
    off = start - fm.base_pfn
    assert (s[:off] == F.HOLE).all()  # below the zone
    assert (s[off:off + 8] == F.FREE).all() and s[off + 8] == F.HOLE and s[off + 9] == F.USED
    assert (s[off + 10:3 * SEC - fm.base_pfn] == F.USED).all()  # flagless, in a section with flags
    assert (s[3 * SEC - fm.base_pfn:4 * SEC - fm.base_pfn] == F.HOLE).all()  # a section without any flag
    assert (s[4 * SEC - fm.base_pfn:] == F.USED).all()
    assert fm.meta["buddyinfo"] == [1, 0] and fm.zone == "Normal" and fm.node == 0
    # 8 free frames at map offset 100..107 (pfn alignment is the map's): 100-103 is an
    # aligned order-2 block, 104-107 another
    assert F.aligned_blocks(fm.state)[:3] == [0, 0, 2]


def test_the_file_round_trips_and_bad_files_say_why(tmp_path):
    state = np.array([F.HOLE] * 5 + [F.FREE] * 7 + [F.USED] * 3 + [F.FREE], np.uint8)
    fm = F.FreeMap(state, 4096, "Normal", 1, {"start_pfn": 4101, "kernel": "test"})
    path = tmp_path / "m.parquet"
    F.write_freemap(fm, path)
    back = F.read_freemap(path)
    assert (back.state == state).all() and (back.base_pfn, back.zone, back.node) == (4096, "Normal", 1)
    assert back.meta["start_pfn"] == 4101 and F.is_freemap(path)
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"op": ["spawn"]}), tmp_path / "trace.parquet")
    assert not F.is_freemap(tmp_path / "trace.parquet")
    with pytest.raises(TraceError, match="not a free map"):
        F.read_freemap(tmp_path / "trace.parquet")
    t = pq.read_table(path)
    gap = t.set_column(0, "start", pa.array([0, 6, 12, 15]))
    pq.write_table(gap.replace_schema_metadata(t.schema.metadata), tmp_path / "gap.parquet")
    with pytest.raises(TraceError, match="gap.parquet:2: run 1"):
        F.read_freemap(tmp_path / "gap.parquet")


def test_a_zone_on_no_node_or_on_several_is_a_clear_error(tmp_path):
    files = _machine(tmp_path, 1024, {}, span=1024)
    with pytest.raises(TraceError, match="no zone 'Movable'"):
        F.capture("Movable", **files)
    text = (tmp_path / "zoneinfo").read_text()
    (tmp_path / "zoneinfo").write_text(text + text.replace("Node 0", "Node 1"))
    with pytest.raises(TraceError, match="on 2 nodes: name one with --node"):
        F.capture(**files)
    assert F.capture(node=1, **files).node == 1


LIVE = os.access("/proc/kpageflags", os.R_OK) and os.access("/proc/zoneinfo", os.R_OK)


@pytest.mark.skipif(not LIVE, reason="/proc/kpageflags is not readable here (needs root)")
def test_the_live_map_agrees_with_buddyinfo():
    """The map's free frames, cut into maximal aligned blocks, against /proc/buddyinfo read
    just before and just after: per order, the map lies between the two reads, give or take
    the pages that move while the flags are read (at most 2 % of free memory in all)."""
    zones = F.read_zoneinfo(open("/proc/zoneinfo").read())
    zone = "Normal" if any(z["zone"] == "Normal" for z in zones) else zones[-1]["zone"]
    fm = F.capture(zone, zones[[z["zone"] for z in zones].index(zone)]["node"])
    before = fm.meta["buddyinfo"]
    after = F._buddyinfo_line("/proc/buddyinfo", {"node": fm.node, "zone": fm.zone})
    ours = F.aligned_blocks(fm.state, len(before) - 1)

    def pages(counts):
        return np.array(counts) * (1 << np.arange(len(counts)))

    lo, hi = np.minimum(pages(before), pages(after)), np.maximum(pages(before), pages(after))
    outside = np.maximum(0, np.maximum(pages(ours) - hi, lo - pages(ours))).sum()  # beyond the two reads
    assert outside <= 0.02 * pages(before).sum(), (ours, before, after)
    assert fm.counts()["free"] == pages(ours).sum()
