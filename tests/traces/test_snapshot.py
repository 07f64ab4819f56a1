"""/proc snapshots: a replay under `separate` gives Linux's own VmPTE for live processes
with dense and sparse layouts; series become map/unmap deltas."""

import os
import subprocess
import sys
import time

import pytest

from ptpair import api
from ptpair.traces.format import OPS
from ptpair.traces.snapshot import snapshot

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/pagemap"), reason="no /proc/PID/pagemap")

CHILD = r"""
import ctypes, mmap, sys, time
kind = sys.argv[1]
if kind != "huge":
    ctypes.CDLL(None).prctl(41, 1, 0, 0, 0)  # PR_SET_THP_DISABLE: 4-KiB pages only
keep = []
if kind == "huge":             # 66 MiB asking for huge pages (numpy does), 4-KiB pages beside them
    m = mmap.mmap(-1, 66 << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS); keep.append(m)  # not shmem
    m.madvise(mmap.MADV_HUGEPAGE)
    for i in range(0, 66 << 20, 4096): m[i] = 1
    s = mmap.mmap(-1, 64 << 10); keep.append(s)
    for i in range(0, 64 << 10, 4096): s[i] = 1
elif kind == "dense":            # 48 MiB touched page by page
    m = mmap.mmap(-1, 48 << 20); keep.append(m)
    for i in range(0, 48 << 20, 4096): m[i] = 1
elif kind == "sparse":         # one page every 4 MiB over 2 GiB: a pml1 table per page
    m = mmap.mmap(-1, 2 << 30); keep.append(m)
    for i in range(0, 2 << 30, 4 << 20): m[i] = 1
elif kind == "grow":           # 8 MiB, then 8 MiB more and 4 MiB released after a signal on stdin
    m = mmap.mmap(-1, 32 << 20); keep.append(m)
    for i in range(0, 8 << 20, 4096): m[i] = 1
    print("ready", flush=True); sys.stdin.readline()
    for i in range(8 << 20, 16 << 20, 4096): m[i] = 1
    m.madvise(mmap.MADV_DONTNEED, 0, 4 << 20)
print("ready", flush=True)
sys.stdin.readline()
"""


def _child(kind):
    p = subprocess.Popen([sys.executable, "-c", CHILD, kind], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)
    assert p.stdout.readline().strip() == "ready"
    return p


def _tables(trace):
    """pml3 + pml2 + pml1 tables and deposited PTE tables of a replay under separate."""
    final = api.replay(trace, api.Config("separate", "address", 1 << 20)).final
    lv = final["kpt_pages_by_level"]
    return lv["pml3"] + lv["pml2"] + lv["pml1"] + final["deposited_pte_pages"]


@pytest.mark.parametrize("kind", ["dense", "sparse"])
def test_replayed_snapshot_matches_linux_vmpte(kind):
    p = _child(kind)
    try:
        s = snapshot([p.pid])
        (_, _, pid, comm, vmpte, pages, huge), = s.vmpte
        assert pid == p.pid and huge == 0
        assert pages >= (12288 if kind == "dense" else 512)
        # Linux's VmPTE (kB) = 4 x (pml3 + pml2 + pml1 tables); the root is not counted
        assert vmpte == 4 * _tables(s.trace())
    finally:
        p.kill()
        p.wait()


def _thp_mode():
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            return f.read()
    except OSError:
        return "[never]"


@pytest.mark.skipif("[never]" in _thp_mode(), reason="transparent huge pages are off")
@pytest.mark.skipif(os.geteuid() != 0, reason="frame numbers (to see 2 MiB pages) need root")
def test_replayed_snapshot_with_huge_pages_matches_linux_vmpte():
    """Linux deposits a PTE table with each anonymous 2 MiB page and counts it in VmPTE:
    the replay's deposited tables make up the difference, to the page."""
    p = _child("huge")
    try:
        s = snapshot([p.pid])
        (_, _, pid, _, vmpte, pages, huge), = s.vmpte
        if huge == 0:
            pytest.skip("the kernel gave the process no 2 MiB page")
        trace = s.trace()
        final = api.replay(trace, api.Config("separate", "address", 1 << 20)).final
        assert final["deposited_pte_pages"] == huge >= 20
        assert vmpte == 4 * _tables(trace)
        no_deposit = api.replay(trace, api.Config("separate", "address", 1 << 20, thp_deposit=False)).final
        assert vmpte == 4 * (sum(no_deposit["kpt_pages_by_level"].values()) - 1 + huge)
    finally:
        p.kill()
        p.wait()


def test_snapshot_series_records_deltas_and_vmpte_keeps_emptied_tables():
    p = _child("grow")
    try:
        s = snapshot([p.pid])
        p.stdin.write("go\n")
        p.stdin.flush()
        assert p.stdout.readline().strip() == "ready"
        s.add([__import__("ptpair.traces.snapshot", fromlist=["read_process"]).read_process(p.pid)], time.time())
    finally:
        p.kill()
        p.wait()
    t = s.trace()
    ops = [OPS[o] for o in t.op]
    assert ops[0] == "spawn" and "unmap" in ops[1:] and ops.count("spawn") == 1
    first, second = s.vmpte
    # +2048 pages touched, -1024 released (the interpreter itself may touch a few more)
    assert 1024 <= second[5] - first[5] <= 1024 + 64
    d = t.to_dataframe()
    later = d[d.time == d.time.max()]
    assert later[later.op == "unmap"]["length"].sum() >= 4 << 20
    assert later[later.op == "map"]["length"].sum() >= 8 << 20
    # Linux keeps the pml1 tables MADV_DONTNEED emptied; the replay frees empty tables, so
    # VmPTE is larger by at least the one table the released 4 MiB fully covers
    assert second[4] - 4 * _tables(t) >= 4


def test_record_snapshot_cli(tmp_path):
    p = _child("dense")
    try:
        out = tmp_path / "snap.parquet"
        r = subprocess.run([sys.executable, "-m", "ptpair", "record", "snapshot", "--pid", str(p.pid), "-o", out],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        side = (tmp_path / "snap.vmpte.csv").read_text().splitlines()
        assert side[0] == "snapshot,time,pid,comm,vmpte_kb,pages_4k,pages_2m" and len(side) == 2
        assert int(side[1].split(",")[4]) == 4 * _tables(api.read_trace(out))
    finally:
        p.kill()
        p.wait()
    r = subprocess.run([sys.executable, "-m", "ptpair", "record", "snapshot", "--pid", "999999999", "-o",
                        tmp_path / "x.csv"], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
