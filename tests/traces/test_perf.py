"""`ptpair record perf`: a process started during `record perf --all` replays to its own VmPTE."""

import os
import re
import shutil
import subprocess
import sys
import time

from pathlib import Path

import pytest

from ptpair import api
from ptpair.traces.format import MAP_FILE, MAP_THP, OPS, Trace, TraceError
from ptpair.traces.perf import BEFORE, LOST, NOT_PERF, UNRECORDED_PARENT, read_perf
from ptpair.traces.readers import detect

DATA = Path(__file__).resolve().parents[1] / "data" / "perf"


def test_small_log_gives_the_hand_checked_trace():
    # small.perf.txt: records perf synthesized for a process running before (ignored), its
    # fault (counted), a child of it that execs, execve's own mappings (MMAP2 outside a
    # syscall), kernel and user faults, an mmap whose MMAP2 shows the merged VMA, a THP
    # region, lost events, a thread's madvise, a failed munmap, brk, a fork and exits
    t = read_perf(DATA / "small.perf.txt", thp_mode="madvise")
    got = list(zip(t.pid.tolist(), [OPS[o] for o in t.op], t.va.tolist(), t.length.tolist(), t.arg.tolist()))
    assert got == [
        (1000, "spawn", 0, 0, 0), (1000, "exec", 0, 0, 0),
        (1000, "reserve", 0x7FFC89ADF000, 0x21000, 0), (1000, "reserve", 0x559A6FAFD000, 0xD000, 0),
        (1000, "map", 0x7FFC89AFE000, 4096, 0), (1000, "map", 0x559A6FAFD000, 4096, MAP_FILE),
        (1000, "reserve", 0x7F0000200000, 0x400000, 0), (1000, "map", 0x7F0000200000, 4096, MAP_THP),
        (1000, "map", 0x7F0000000000, 4096, 0), (1000, "dontneed", 0x7F0000400000, 0x200000, 0),
        (1000, "release", 0x7F0000000000, 0x1000, 0), (1000, "reserve", 0x559A9C2C8000, 0x21000, 0),
        (1002, "fork", 0, 0, 1000), (1002, "exit", 0, 0, 0)]
    assert t.skipped == {UNRECORDED_PARENT: 1, BEFORE: 1, LOST: 7}
    assert t.line_of(0) == 5 and t.line_of(len(t) - 1) == 32
    assert detect(DATA / "small.perf.txt") == "perf"
    # THP `never`: no MAP_THP; `always`: every anonymous fault whose 2 MiB fits its VMA
    never = read_perf(DATA / "small.perf.txt", thp_mode="never")
    assert not (never.arg & MAP_THP).any()


def test_what_the_kernel_maps_without_a_fault_is_populated():
    # populate.perf.txt: mmap with MAP_POPULATE, with MAP_POPULATE | MAP_NONBLOCK (nothing),
    # with MAP_LOCKED but PROT_NONE (nothing), then mprotect of part of it, MADV_HUGEPAGE of
    # part, mlock2 across the two parts, mlock2 MLOCK_ONFAULT (nothing), a failed mlock,
    # mlockall(MCL_CURRENT | MCL_FUTURE) (every accessible VMA; later brk and a file mmap
    # populated), munlockall, mlockall(MCL_FUTURE) not passed on to a forked child, and
    # mlockall(MCL_FUTURE | MCL_ONFAULT) (nothing)
    t = read_perf(DATA / "populate.perf.txt", thp_mode="madvise")
    got = list(zip(t.pid.tolist(), [OPS[o] for o in t.op], t.va.tolist(), t.length.tolist(), t.arg.tolist()))
    b = 0x7F0000000000
    mcl_current = [(2000, "map", b + 0x1000, 0x3000, 0), (2000, "map", b + 0x10000, 0x1000, 0),
                   (2000, "map", b + 0x200000, 0x200000, MAP_THP), (2000, "map", b + 0x400000, 0x200000, 0)]
    assert got == [
        (2000, "spawn", 0, 0, 0), (2000, "exec", 0, 0, 0),
        (2000, "reserve", b + 0x1000, 0x3000, 0), (2000, "map", b + 0x1000, 0x3000, 0),
        (2000, "reserve", b + 0x10000, 0x1000, 0),
        (2000, "reserve", b + 0x200000, 0x600000, 0),
        (2000, "map", b + 0x200000, 0x200000, MAP_THP), (2000, "map", b + 0x400000, 0x101000, 0),
        *mcl_current,
        (2000, "reserve", 0x5600000000, 0x2000, 0), (2000, "map", 0x5600000000, 0x2000, 0),
        (2000, "reserve", b + 0x900000, 0x2000, 0), (2000, "map", b + 0x900000, 0x2000, MAP_FILE),
        (2000, "reserve", b + 0xA00000, 0x1000, 0),
        (2001, "fork", 0, 0, 2000), (2001, "reserve", b + 0xB00000, 0x1000, 0),
        (2000, "reserve", b + 0xC00000, 0x1000, 0), (2000, "map", b + 0xC00000, 0x1000, 0),
        (2000, "reserve", b + 0xD00000, 0x1000, 0)]


def test_thp_follows_the_mode_and_the_madvise_marks(tmp_path):
    # two 4 MiB mappings, one marked MADV_HUGEPAGE, one MADV_NOHUGEPAGE, a fault in each
    head = "prog  3000/3000  10.{:06d}: "
    lines = ["bash  900/900  10.000000: PERF_RECORD_COMM exec: prog:3000/3000"]
    for i, (addr, advice) in enumerate([(0x7F0000000000, 0xE), (0x7F0000400000, 0xF)]):
        lines += [f"syscalls:sys_enter_mmap: addr: 0x0, len: 0x400000, prot: 0x3, flags: 0x22, fd: 0xffffffff, off: 0x0",
                  f"syscalls:sys_exit_mmap: {addr:#x}",
                  f"syscalls:sys_enter_madvise: start: {addr:#x}, len_in: 0x400000, behavior: {advice:#x}",
                  "syscalls:sys_exit_madvise: 0x0", f"exceptions:page_fault_user: address={addr + 0x10:#x} error_code=0x6"]
    log = tmp_path / "thp.perf.txt"
    log.write_text(lines[0] + "\n" + "\n".join(head.format(i + 1) + x for i, x in enumerate(lines[1:])) + "\n")
    for mode, want in [("always", [MAP_THP, 0]), ("madvise", [MAP_THP, 0]), ("never", [0, 0])]:
        t = read_perf(log, thp_mode=mode)
        assert t.arg[t.op == OPS.index("map")].tolist() == want, mode
    # unmarked, `always` alone gives huge pages
    plain = [x for x in log.read_text().splitlines() if "madvise" not in x]
    log.write_text("\n".join(plain) + "\n")
    for mode, want in [("always", [MAP_THP, MAP_THP]), ("madvise", [0, 0])]:
        t = read_perf(log, thp_mode=mode)
        assert t.arg[t.op == OPS.index("map")].tolist() == want, mode


def test_mremap_keeps_the_vmas_huge_page_mark_and_prot_none(tmp_path):
    # a 4 MiB mapping marked MADV_HUGEPAGE, moved by mremap (and grown to 6 MiB), then a
    # fault in the moved part and in the grown part: both get huge pages under THP
    # `madvise`; a PROT_NONE mapping grown in place under mlockall(MCL_FUTURE) stays
    # unpopulated (populate skips PROT_NONE VMAs)
    a, moved, none = 0x7F0000000000, 0x7F1000000000, 0x7F2000000000
    calls = [("mmap", "addr: 0x0, len: 0x400000, prot: 0x3, flags: 0x22, fd: 0xffffffff, off: 0x0", a),
             ("madvise", f"start: {a:#x}, len_in: 0x400000, behavior: 0xe", 0),
             ("mremap", f"addr: {a:#x}, old_len: 0x400000, new_len: 0x600000, flags: 0x1, new_addr: 0x0", moved),
             ("mmap", "addr: 0x0, len: 0x1000, prot: 0x0, flags: 0x22, fd: 0xffffffff, off: 0x0", none),
             ("mlockall", "flags: 0x2", 0),
             ("mremap", f"addr: {none:#x}, old_len: 0x1000, new_len: 0x2000, flags: 0x0, new_addr: 0x0", none)]
    lines = ["bash  900/900  10.000000: PERF_RECORD_COMM exec: prog:3000/3000"]
    for name, args, ret in calls:
        lines += [f"syscalls:sys_enter_{name}: {args}", f"syscalls:sys_exit_{name}: {ret:#x}"]
    lines += [f"exceptions:page_fault_user: address={moved + 0x10:#x} error_code=0x6",
              f"exceptions:page_fault_user: address={moved + 0x400010:#x} error_code=0x6"]
    log = tmp_path / "mremap.perf.txt"
    log.write_text(lines[0] + "\n" + "\n".join(f"prog  3000/3000  10.{i + 1:06d}: {x}" for i, x in enumerate(lines[1:]))
                   + "\n")
    t = read_perf(log, thp_mode="madvise")
    maps = [(int(v), int(f)) for v, f in zip(t.va[t.op == OPS.index("map")], t.arg[t.op == OPS.index("map")])]
    assert maps == [(moved, MAP_THP), (moved + 0x400000, MAP_THP)]


def test_touching_anonymous_mappings_are_one_vma_for_huge_pages(tmp_path):
    # two 1 MiB mmaps that touch make one 2 MiB-aligned VMA, as Linux merges them: a fault
    # in it gets a huge page under THP `always`
    log = tmp_path / "merge.perf.txt"
    lines = ["bash  900/900  10.000000: PERF_RECORD_COMM exec: prog:3000/3000"]
    for i, addr in enumerate((0x7F0000100000, 0x7F0000000000)):
        lines += [f"prog  3000/3000  10.{2 * i + 1:06d}: syscalls:sys_enter_mmap: addr: 0x0, len: 0x100000, prot: 0x3, "
                  "flags: 0x22, fd: 0xffffffff, off: 0x0",
                  f"prog  3000/3000  10.{2 * i + 2:06d}: syscalls:sys_exit_mmap: {addr:#x}"]
    lines.append("prog  3000/3000  10.000009: exceptions:page_fault_user: address=0x7f0000000010 error_code=0x6")
    log.write_text("\n".join(lines) + "\n")
    assert read_perf(log, thp_mode="always").arg[-1] == MAP_THP


def test_map_flags_survive_csv_and_parquet(tmp_path):
    t = Trace.from_columns(pid=[1, 1, 1, 1], op=["spawn", "map", "map", "map"], va=[0, 0, 1 << 21, 1 << 22],
                           length=[0, 4096, 4096, 4096], arg=[0, MAP_FILE, MAP_THP, 0])
    for suffix in (".csv", ".parquet"):
        api.write_trace(t, tmp_path / f"t{suffix}")
        assert api.read_trace(tmp_path / f"t{suffix}").arg.tolist() == [0, MAP_FILE, MAP_THP, 0]


def test_a_bad_line_names_file_and_line(tmp_path):
    p = tmp_path / "bad.perf.txt"
    lines = (DATA / "small.perf.txt").read_text().splitlines()
    lines[9] = lines[9].replace("address=0x559a6fafd010", "address=zz")
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(TraceError, match=r"bad.perf.txt:10: "):
        read_perf(p)
    lenient = read_perf(p, lenient=True)
    assert lenient.skipped[NOT_PERF] == 1 and len(lenient) == 13


CHILD = r"""
import ctypes, mmap, sys, time
M = 2 << 20
keep = []
a = mmap.mmap(-1, 16 * M, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS); keep.append(a)
for i in range(0, 16 * M, 4096): a[i] = 1                      # dense
s = mmap.mmap(-1, 1 << 30, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS); keep.append(s)
for i in range(0, 1 << 30, 8 * M): s[i] = 1                    # sparse: a table per page
h = mmap.mmap(-1, 12 * M, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS); keep.append(h)
h.madvise(mmap.MADV_HUGEPAGE)
for i in range(0, 12 * M, 4096): h[i] = 1                      # transparent huge pages
a.madvise(mmap.MADV_DONTNEED, 0, 4 * M)                        # whole tables: reclaimed
u = mmap.mmap(-1, 6 * M, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
for i in range(0, 6 * M, 4096): u[i] = 1
u.close()                                                      # munmap
f = mmap.mmap(-1, 6 * M, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | mmap.MAP_POPULATE); keep.append(f)
l = mmap.mmap(-1, 8 * M, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS); keep.append(l)
libc = ctypes.CDLL(None, use_errno=True)
base = ctypes.addressof(ctypes.c_char.from_buffer(l))
assert libc.mlock(ctypes.c_void_p(base + 3 * M), ctypes.c_size_t(3 * M)) == 0, ctypes.get_errno()
print("ready", flush=True)
time.sleep(60)
"""


def _vmpte(pid):
    m = re.search(r"VmPTE:\s+(\d+)", open(f"/proc/{pid}/status").read())
    return int(m.group(1))


def _perf_works():
    if shutil.which("perf") is None:
        return "perf is not installed"
    p = subprocess.run(["perf", "record", "-q", "-e", "exceptions:page_fault_user", "-o", "/dev/null", "--", "true"],
                       capture_output=True, text=True)
    return None if p.returncode == 0 else f"perf cannot record page faults here: {p.stderr.strip()[-200:]}"


WHY = _perf_works()


@pytest.mark.skipif(WHY is not None, reason=WHY or "")
def test_a_process_started_during_the_recording_replays_to_its_vmpte(tmp_path):
    out = tmp_path / "all.parquet"
    rec = subprocess.Popen([sys.executable, "-m", "ptpair", "record", "perf", "--all", "-o", str(out)],
                           stderr=subprocess.PIPE, text=True)
    try:
        assert rec.stderr.readline().strip() == "recording"
        child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "ready"
        time.sleep(0.5)
        want = _vmpte(child.pid)
        rec.send_signal(2)  # SIGINT: the recording ends cleanly
        _, err = rec.communicate(timeout=300)
        assert rec.returncode == 0, err
    finally:
        if rec.poll() is None:
            rec.kill()
    assert _vmpte(child.pid) == want  # (it slept: nothing changed since)
    child.kill()
    trace = api.read_trace(out)
    mine = trace.drop(trace.pid != child.pid, 2)
    assert len(mine) > 100
    r = api.replay(mine, api.Config("separate", "address", 1 << 21, "linux", "linux"))
    lv = r.final["kpt_pages_by_level"]
    tables = lv["pml3"] + lv["pml2"] + lv["pml1"] + r.final["deposited_pte_pages"]
    assert r.final["deposited_pte_pages"] >= 6  # the MADV_HUGEPAGE region came as 2 MiB pages
    assert tables * 4 == want
    # the VmPTE samples taken while it recorded, next to the replay at the same moments
    from ptpair.analysis.vmpte import check_vmpte, read_samples

    checked = check_vmpte(trace, read_samples(tmp_path / "all.vmpte.csv"))
    last = checked[checked.pid == child.pid].iloc[-1]
    assert last.vmpte_kb == want and last.replayed_kb == want
    cli = subprocess.run([sys.executable, "-m", "ptpair", "check-vmpte", str(out), "-o", str(tmp_path / "c.csv")],
                         capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr
    assert f"pid {child.pid} (python)" in cli.stdout and f"VmPTE {want} kB, replayed {want} kB" in cli.stdout
