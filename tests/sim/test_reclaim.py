"""Reclaim `linux`: free_pgtables' floor and ceiling at munmap, PT_RECLAIM at
MADV_DONTNEED (hand-built cases), traces without VMA events replay as under `empty`,
the recorded machine decides PT_RECLAIM, and a live process's VmPTE agrees."""

import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from ptpair import api
from ptpair.traces.format import OP_CODE, Trace
from ptpair.traces.machineinfo import pt_reclaim_of, read_machine, this_machine
from tests.gen import random_trace

MIB2 = 2 << 20
GIB = 1 << 30


def _trace(rows, machine=None):
    t = Trace.from_columns(pid=[1] * len(rows), op=[r[0] for r in rows], va=[r[1] for r in rows],
                           length=[r[2] for r in rows])
    t.machine = machine
    return t


def _pml1(rows, reclaim="linux", pt_reclaim=None, scheme="separate"):
    """pml1 tables after the events."""
    r = api.replay(_trace(rows), api.Config(scheme, "address", 1 << 16, reclaim=reclaim, pt_reclaim=pt_reclaim))
    return r.final["kpt_pages_by_level"]["pml1"]


def test_munmap_keeps_the_tables_a_neighbouring_vma_can_use():
    # VMAs [8 MiB, 11 MiB) and [11 MiB, 16 MiB) (merged into one: they touch), pages in both
    base = 4 * MIB2
    rows = [("spawn", 0, 0), ("reserve", base, 3 << 20), ("reserve", base + (3 << 20), 5 << 20),
            ("map", base, 8 << 20)]
    assert _pml1(rows) == 4
    # munmap of [8 MiB, 11 MiB): the table of [10, 12) MiB also maps [11, 12) MiB: kept,
    # the one of [8, 10) MiB is freed
    assert _pml1(rows + [("release", base, 3 << 20)]) == 3
    # pages only in [8, 9) MiB, the VMA going on to 16 MiB: munmap of [8, 9) MiB empties the
    # table of [8, 10) MiB; reclaim empty frees it at once, Linux keeps it (ceiling 9 MiB)
    few = rows[:3] + [("map", base, 1 << 20)]
    assert _pml1(few + [("release", base, 1 << 20)]) == 1
    assert _pml1(few + [("release", base, 1 << 20)], reclaim="empty") == 0
    # munmap of a hole's neighbour later frees what the first munmap had to keep
    assert _pml1(rows + [("release", base, 3 << 20), ("release", base + (3 << 20), 5 << 20)]) == 0


def test_munmap_floor_and_ceiling_come_from_the_neighbours_after_the_hole():
    # three 2 MiB VMAs, each a whole table; pages only in the middle one's first page
    base = 8 * MIB2
    rows = [("spawn", 0, 0), ("reserve", base, MIB2), ("reserve", base + 2 * MIB2, MIB2),
            ("reserve", base + 4 * MIB2, MIB2), ("map", base + 2 * MIB2, 4096), ("map", base, 4096),
            ("map", base + 4 * MIB2, 4096)]
    assert _pml1(rows) == 3
    # munmap of the middle one: floor = base + 2 MiB (the first VMA's end), ceiling = base + 8
    # MiB (the third's start): its table's span lies between
    assert _pml1(rows + [("release", base + 2 * MIB2, MIB2)]) == 2
    # munmap of 4 KiB inside the first VMA: the table is the VMA's own, still in use
    assert _pml1(rows + [("release", base, 4096)]) == 3
    # MADV_DONTNEED of the same 4 KiB: pages gone, the table stays (Linux), freed under empty
    assert _pml1(rows + [("dontneed", base, 4096)]) == 3
    assert _pml1(rows + [("dontneed", base, 4096)], reclaim="empty") == 2


def test_munmap_frees_upper_tables_only_when_the_hole_covers_their_span():
    rows = [("spawn", 0, 0), ("reserve", GIB, GIB), ("reserve", 2 * GIB, MIB2), ("map", GIB, 4096),
            ("map", 2 * GIB, 4096)]
    r = api.replay(_trace(rows + [("release", GIB, GIB)]), api.Config("pair", "address", 1 << 16, reclaim="linux"))
    # [1 GiB, 2 GiB) had a pml2 of its own: freed with its pml1; the pml3 serves 2 GiB still
    assert r.final["kpt_pages_by_level"] == {"pml4": 1, "pml3": 1, "pml2": 1, "pml1": 1}
    r = api.replay(_trace(rows + [("release", GIB, GIB + MIB2)]),
                   api.Config("pair", "address", 1 << 16, reclaim="linux"))
    assert r.final["kpt_pages_by_level"] == {"pml4": 1, "pml3": 0, "pml2": 0, "pml1": 0}


def test_pt_reclaim_frees_only_pte_tables_that_one_madvise_empties_whole():
    base = 16 * MIB2
    rows = [("spawn", 0, 0), ("reserve", base, 8 * MIB2), ("map", base, 8 * MIB2)]
    assert _pml1(rows) == 8
    # 3 MiB from a 2 MiB boundary: one whole table, half of the next
    assert _pml1(rows + [("dontneed", base, 3 << 20)]) == 7
    assert _pml1(rows + [("dontneed", base, 3 << 20)], pt_reclaim=False) == 8
    # two madvises of 1 MiB each empty a table, but neither covers it whole: it stays
    assert _pml1(rows + [("dontneed", base, 1 << 20), ("dontneed", base + (1 << 20), 1 << 20)]) == 8
    # MADV_FREE (an unmap in a process with VMAs): tables stay
    assert _pml1(rows + [("unmap", base, 4 * MIB2)]) == 8
    # madvise works VMA by VMA: a table across two VMAs is in neither's whole zap
    rows2 = [("spawn", 0, 0), ("reserve", base, 3 << 20), ("reserve", base + (3 << 20) + 4096, 5 << 20),
             ("map", base, 3 << 20), ("map", base + (3 << 20) + 4096, 5 << 20)]
    # the tables of [34, 36) MiB (across the gap between the VMAs) and [40, 42) MiB (the
    # second VMA ends at 40 MiB + 4 KiB) are in no zap whole: they stay
    assert _pml1(rows2 + [("dontneed", base, 8 * MIB2)]) == 2


def test_fork_copies_the_vmas_and_exec_drops_them():
    base = 4 * MIB2
    t = Trace.from_columns(pid=[1, 1, 1, 2, 2, 1, 1, 1], op=["spawn", "reserve", "map", "fork", "dontneed",
                                                             "exec", "map", "unmap"],
                           va=[0, base, base, 0, base, 0, base, base], length=[0, MIB2, 4096, 0, 4096, 0, 4096, 4096],
                           arg=[0, 0, 0, 1, 0, 0, 0, 0])
    r = api.replay(t, api.Config("separate", "address", 1 << 16, reclaim="linux"))
    # the child's MADV_DONTNEED of 4 KiB keeps its table (it has the parent's VMAs); after
    # exec the parent has none, so its unmap frees as under empty
    assert r.final["kpt_pages_by_level"] == {"pml4": 2, "pml3": 1, "pml2": 1, "pml1": 1}


@pytest.mark.parametrize("seed", range(12))
def test_a_trace_without_vma_events_replays_under_linux_as_under_empty(seed):
    import random

    trace = random_trace(random.Random(seed), 300, huge2m=0.1)
    for scheme in ("pair", "separate"):
        a = api.replay(trace, api.Config(scheme, "address", 4096, "linux", "linux")).to_dict()
        b = api.replay(trace, api.Config(scheme, "address", 4096, "linux", "empty")).to_dict()
        for d in (a, b):
            d.pop("reclaim"), d.pop("pt_reclaim")
        assert a == b


def test_the_recorded_machine_decides_pt_reclaim(tmp_path):
    rows = [("spawn", 0, 0), ("reserve", 0, MIB2), ("map", 0, MIB2), ("dontneed", 0, MIB2)]
    cfg = api.Config("separate", "address", 1 << 16, reclaim="linux")
    old = {"kernel": "6.6.58", "pt_reclaim": None}
    cases = [(None, True), (old, False), ({"kernel": "6.14.0", "pt_reclaim": None}, True),
             ({"kernel": "6.18.0", "pt_reclaim": False}, False)]
    for machine, on in cases:
        for suffix in (".csv", ".parquet"):
            path = tmp_path / f"t{suffix}"
            api.write_trace(_trace(rows, machine), path)
            assert read_machine(path) == machine
            r = api.replay(path, cfg)
            assert r.config.pt_reclaim is on
            assert r.final["kpt_pages_by_level"]["pml1"] == (0 if on else 1)
    # --pt-reclaim overrides the recording
    api.write_trace(_trace(rows, old), tmp_path / "t.parquet")
    r = api.replay(tmp_path / "t.parquet", api.Config("separate", "address", 1 << 16, reclaim="linux", pt_reclaim=True))
    assert r.final["kpt_pages_by_level"]["pml1"] == 0
    # a CSV written without a machine loses a stale sidecar
    api.write_trace(_trace(rows), tmp_path / "t.csv")
    assert read_machine(tmp_path / "t.csv") is None
    with pytest.raises(ValueError, match="reclaim linux"):
        api.Config("separate", reclaim="empty", pt_reclaim=True)


def test_kernel_linux_is_linux_reclaim():
    from ptpair import registry

    assert registry.kernel_machine("linux") == ("linux", "linux")


# --- live: Linux's own VmPTE on this machine -------------------------------------------
CHILD = r"""
import ctypes, mmap, re, sys
ctypes.CDLL(None).prctl(41, 1, 0, 0, 0)  # PR_SET_THP_DISABLE: 4-KiB pages, PTE tables
M = 2 << 20
def vmpte():
    return int(re.search(r"VmPTE:\s+(\d+)", open("/proc/self/status").read()).group(1))
def region():
    m = mmap.mmap(-1, 8 * M, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
    return m, addr, ((addr + M - 1) & ~(M - 1)) - addr   # the first aligned 2 MiB span inside
for _ in range(20): vmpte()  # reading it allocates: done before, so that it adds no table between reads
a, a_addr, a_off = region()
b, b_addr, b_off = region()
for i in range(4): a[a_off + i * 4096] = 1
v1 = vmpte(); a.madvise(mmap.MADV_DONTNEED, a_off, 4 * 4096); v2 = vmpte()
for i in range(4): b[b_off + i * 4096] = 1
v3 = vmpte(); b.madvise(mmap.MADV_DONTNEED, b_off, M); v4 = vmpte()
print(a_addr, a_off, b_addr, b_off, v1, v2, v3, v4, flush=True)
"""


def _vmpte_available():
    try:
        return "VmPTE" in open("/proc/self/status").read()
    except OSError:
        return False


@pytest.mark.skipif(not _vmpte_available(), reason="no VmPTE in /proc/self/status")
def test_madvise_dontneed_frees_tables_as_linux_does_here():
    """Touch 4 pages of a fresh 2 MiB span and MADV_DONTNEED them: the table stays; touch a
    whole aligned 2 MiB span elsewhere and MADV_DONTNEED it: the table goes with PT_RECLAIM.
    The replay under --reclaim linux (PT_RECLAIM as this machine has it) changes its PTE
    tables exactly as this kernel's VmPTE changed."""
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True).stdout
    a_addr, a_off, b_addr, b_off, v1, v2, v3, v4 = map(int, out.split())
    s1, s2, size = a_addr + a_off, b_addr + b_off, 8 * MIB2
    rows = [("spawn", 0, 0), ("reserve", a_addr, size), ("reserve", b_addr, size), ("map", s1, 4 * 4096),
            ("dontneed", s1, 4 * 4096), ("map", s2, 4 * 4096), ("dontneed", s2, MIB2)]
    machine = this_machine()
    on = pt_reclaim_of(machine)
    tables = [_pml1(rows[:n], pt_reclaim=on) for n in (4, 5, 6, 7)]
    assert (tables[1] - tables[0]) * 4 == v2 - v1 == 0  # 4 pages: the table stays
    assert (tables[3] - tables[2]) * 4 == v4 - v3 == (-4 if on else 0)  # the whole span: freed with PT_RECLAIM
    # reclaim empty frees the first table too, which Linux does not
    assert _pml1(rows[:5], reclaim="empty") == tables[0] - 1


@pytest.mark.skipif(shutil.which("strace") is None or not _vmpte_available(), reason="needs strace and VmPTE")
def test_recorded_strace_has_vma_events_and_its_machine(tmp_path):
    out = tmp_path / "child.parquet"
    subprocess.run([sys.executable, "-m", "ptpair", "record", "strace", "-o", str(out), "--", sys.executable, "-c",
                    CHILD], check=True, capture_output=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    machine = read_machine(out)
    assert machine["kernel"] == os.uname().release
    trace = api.read_trace(out)
    ops = trace.op
    dn = np.flatnonzero(ops == OP_CODE["dontneed"])
    assert len(dn) >= 2 and (ops == OP_CODE["reserve"]).sum() > 0 and (ops == OP_CODE["release"]).sum() > 0
    # the child's two MADV_DONTNEEDs: 4 pages, then a whole 2 MiB span
    pairs = [(i, j) for i, j in zip(dn, dn[1:]) if trace.length[i] == 4 * 4096 and trace.length[j] == MIB2]
    assert len(pairs) == 1
    first, second = pairs[0]
    on = pt_reclaim_of(machine)

    def pml1(n):
        later = np.zeros(len(trace), bool)
        later[n:] = True
        prefix = trace.drop(later, 2)
        r = api.replay(prefix, api.Config("separate", "address", 1 << 20, reclaim="linux"))
        assert r.config.pt_reclaim is on  # from the recorded machine
        return r.final["kpt_pages_by_level"]["pml1"]

    # strace sees no page faults: every page of the 8 MiB regions is mapped (populate
    # all), so 4 pages out of a full table leave it, and the whole span goes with PT_RECLAIM
    assert pml1(first + 1) == pml1(first)
    assert pml1(second + 1) - pml1(second) == (-1 if on else 0)
    assert re.match(r"\d+\.\d+", machine["kernel"])
