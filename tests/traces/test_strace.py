"""The strace reader: a hand-checked golden log, every output variant of strace, errors,
and a real strace of a real process tree."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ptpair.traces.canonical import read_trace
from ptpair.traces.format import TraceError
from ptpair.traces.strace import read_strace

DATA = Path(__file__).resolve().parents[1] / "data" / "strace"
TREE = DATA / "tree.log"
EVENT_COLUMNS = ("pid", "op", "va", "length", "arg")


def events(trace):
    from ptpair.traces.format import OPS

    cols = [getattr(trace, c).tolist() for c in EVENT_COLUMNS]
    cols[1] = [OPS[o] for o in cols[1]]
    return list(zip(*cols))


def test_golden_log_gives_the_hand_checked_trace():
    # tree.log: unfinished/resumed calls, a child's line before its clone returns, a
    # failed mmap, brk growth and shrink, PROT_NONE + mprotect, a vfork child that execs,
    # a clone3 thread, madvise(DONTNEED), mremap, signals, a kill, a process alive at the end
    got = read_strace(TREE)
    want = read_trace(DATA / "tree.expected.csv")
    assert events(got) == events(want)
    np.testing.assert_allclose(got.time, want.time)
    ops = [o for _, o, *_ in events(got)]
    assert ops.count("exit") == 3 and ops.count("fork") == 1 and ops.count("spawn") == 2


def _variant(tmp_path, name, fn):
    out = tmp_path / name
    out.write_text("".join(fn(line) for line in TREE.read_text().splitlines(keepends=True)))
    return out


def _seconds(hms):
    h, m, s = hms.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def test_timestamp_and_duration_variants_give_the_same_events(tmp_path):
    want = events(read_strace(TREE))
    ttt = _variant(tmp_path, "ttt.log", lambda ln: re.sub(
        r"^(\d+) (\d\d:\d\d:\d\d\.\d+)", lambda m: f"{m.group(1)} {1700000000 + _seconds(m.group(2)):.6f}", ln))
    notime = _variant(tmp_path, "notime.log", lambda ln: re.sub(r"^(\d+) \d\d:\d\d:\d\d\.\d+ ", r"\1 ", ln))
    with_t = _variant(tmp_path, "T.log", lambda ln: re.sub(r"(= (?:0x[0-9a-f]+|-?\d+)(?: E[A-Z]+ \([^)]*\))?)\n$",
                                                           r"\1 <0.000012>\n", ln))
    assert "<0.000012>" in with_t.read_text()
    for f in (ttt, notime, with_t):
        assert events(read_strace(f)) == want, f.name
    assert np.isnan(read_strace(notime).time).all()


def test_strace_ff_files_merge_by_time(tmp_path):
    want = events(read_strace(TREE))
    files = {}
    for line in TREE.read_text().splitlines(keepends=True):
        pid, rest = line.split(" ", 1)
        files.setdefault(pid, []).append(rest)
    paths = []
    for pid, lines in files.items():
        p = tmp_path / f"log.{pid}"
        p.write_text("".join(lines))
        paths.append(p)
    assert events(read_strace(sorted(paths))) == want


def test_a_log_without_f_is_one_process(tmp_path):
    p = tmp_path / "single.log"
    p.write_text('execve("/bin/true", ["true"], 0x7ffd /* 3 vars */) = 0\n'
                 "brk(NULL)                               = 0x5000000\n"
                 "mmap(NULL, 12288, PROT_READ, MAP_PRIVATE, 3, 0) = 0x7f0000000000\n"
                 "exit_group(0)                           = ?\n"
                 "+++ exited with 0 +++\n")
    got = events(read_strace(p))
    assert [o for _, o, *_ in got] == ["spawn", "exec", "reserve", "map", "exit"]
    assert got[2][2:4] == got[3][2:4] == (0x7F0000000000, 12288)


@pytest.mark.parametrize("populate", ["none", 0.5, "all"])
def test_populate_model(populate):
    from ptpair.traces.format import OP_CODE

    t = read_strace(TREE, populate=populate)
    full = read_strace(TREE)
    mp = OP_CODE["map"]
    if populate == "none":
        assert not (t.op == mp).any()
    elif populate == 0.5:
        assert 0 < t.length[t.op == mp].sum() < full.length[full.op == mp].sum()
    else:
        assert t.length[t.op == mp].sum() == full.length[full.op == mp].sum()


def test_bad_lines_are_located(tmp_path):
    lines = TREE.read_text().splitlines(keepends=True)
    cut = tmp_path / "cut.log"
    cut.write_text("".join(lines[:5]) + lines[5][:40])  # a truncated last line
    with pytest.raises(TraceError, match=r"cut\.log:6: truncated last line"):
        read_strace(cut)
    # a short log cut in its last line is still detected as strace, and says so
    from ptpair.traces.readers import read_any

    for n in (1, 5):
        short = tmp_path / f"short{n}.log"
        short.write_text("".join(lines[:n]) + lines[n][:30])
        with pytest.raises(TraceError, match=rf"short{n}\.log:{n + 1}: truncated last line"):
            read_any(short)
    junk = tmp_path / "junk.log"
    junk.write_text("".join(lines[:3]) + "this is not strace\n" + "".join(lines[3:]))
    with pytest.raises(TraceError, match=r"junk\.log:4: not an strace line"):
        read_strace(junk)
    t = read_strace(junk, lenient=True)
    assert t.skipped == {"not strace output": 1}
    assert events(t) == events(read_strace(TREE))


def test_cli_detects_strace_and_converts(tmp_path):
    out = tmp_path / "t.parquet"
    p = subprocess.run([sys.executable, "-m", "ptpair", "convert", TREE, "-o", out], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert events(read_trace(out)) == events(read_strace(TREE))
    p = subprocess.run([sys.executable, "-m", "ptpair", "replay", TREE, "--json"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


CHILD = """
import os, threading, mmap
m = mmap.mmap(-1, 1 << 20); m[0] = 1
t = threading.Thread(target=lambda: mmap.mmap(-1, 8192)); t.start(); t.join()
pid = os.fork()
if pid == 0:
    os._exit(0)
os.waitpid(pid, 0)
"""


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed")
    d = tmp_path_factory.mktemp("rec")
    out = d / "real.parquet"
    p = subprocess.run([sys.executable, "-m", "ptpair", "record", "strace", "-o", out, "--",
                        sys.executable, "-c", CHILD], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert (d / "real.strace.log").stat().st_size > 0
    return read_trace(out)


@pytest.mark.parametrize("scheme", ["pair", "separate", "separate-eager", "pair-on-vmm", "separate-lazy"])
def test_real_strace_of_a_process_tree_replays(recorded, scheme):
    from ptpair import api
    from ptpair.traces.format import OP_CODE

    t = recorded
    # python itself and its forked child; the thread is no process of its own
    assert (t.op == OP_CODE["fork"]).sum() >= 1
    assert (t.op == OP_CODE["exit"]).sum() == (t.op == OP_CODE["spawn"]).sum() + (t.op == OP_CODE["fork"]).sum()
    r = api.replay(t, api.Config(scheme, "address", 1 << 18))
    assert r.final["processes"] == 0 and r.final["pt_pages"] == 0  # every process exited, tables freed
    assert r.counts["pages_mapped"] > 256
