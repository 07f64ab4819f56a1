"""The compiled strace reader (traces/strace/scan*.py + compiled_model.py) against the
Python reference reader it must equal: the same events, times, lines and counts wherever
it answers, and it must answer on the logs strace really writes."""

import lzma
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ptpair.traces.format import TraceError
from ptpair.traces.strace import compiled_read, read_strace, reference_read

ROOT = Path(__file__).resolve().parents[2]
RAW = ROOT / "traces" / "corpus" / "raw"
TREE = ROOT / "tests" / "data" / "strace" / "tree.log"
POPULATES = ("all", "none", 0.3)


def _columns(t):
    return (t.pid.tolist(), t.op.tolist(), t.va.tolist(), t.length.tolist(), t.arg.tolist(),
            [None if np.isnan(x) else float(x) for x in t.time], t.lines.tolist(), t.skipped, t.first_bad)


def _python(paths, populate, lenient=False):
    try:
        return _columns(reference_read(paths, populate, lenient))
    except TraceError as e:
        return str(e)


def _agree(paths, populate, lenient=False) -> bool:
    """Whether the compiled path answered; where it did, it must equal Python."""
    fast = compiled_read(paths, populate, lenient)
    if fast is None:
        return False
    assert _columns(fast) == _python(paths, populate, lenient)
    return True


@pytest.mark.parametrize("populate", POPULATES)
def test_corpus_logs_are_read_compiled_and_equal_python(tmp_path, populate):
    logs = sorted(RAW.glob("*.strace.log.xz"))
    assert len(logs) >= 4
    for log in logs:
        p = tmp_path / log.name[:-3]
        p.write_bytes(lzma.decompress(log.read_bytes()))
        assert _agree([p], populate), log.name


def test_read_strace_takes_the_compiled_path_and_falls_back_for_errors(tmp_path):
    assert compiled_read([TREE], "all") is not None
    bad = tmp_path / "bad.log"
    bad.write_text(TREE.read_text() + "this is not strace\n")
    assert compiled_read([bad], "all") is None
    with pytest.raises(TraceError, match=r"bad\.log:\d+: not an strace line"):
        read_strace(bad)
    # lenient: the compiled path skips the line and counts it, and says which it was
    assert _agree([bad], "all", lenient=True)
    t = read_strace(bad, lenient=True)
    assert t.skipped == {"not strace output": 1}
    assert t.first_bad == (len(TREE.read_text().splitlines()) + 1, "not an strace line: 'this is not strace'")
    # a log cut in its last line, and a thread end strace never writes
    lines = TREE.read_text().splitlines(keepends=True)
    cut = tmp_path / "cut.log"
    cut.write_text("".join(lines[:6]) + "100 10:00:00.000099 +++ exited wiht 0 +++\n" + lines[6][:40])
    assert _agree([cut], "all", lenient=True)
    assert read_strace(cut, lenient=True).skipped == {"bad exit line": 1, "truncated line": 1}


def test_ff_files_merge_by_time_as_python_does(tmp_path):
    lines = TREE.read_text().splitlines()
    by_pid = {}
    for line in lines:
        pid, rest = line.split(" ", 1)
        by_pid.setdefault(pid, []).append(rest)
    paths = []
    for pid, rows in by_pid.items():
        p = tmp_path / f"t.{pid}"
        p.write_text("\n".join(rows) + "\n")
        paths.append(p)
    assert _agree(sorted(paths), "all")
    assert _columns(read_strace(sorted(paths)))[:6] == _columns(read_strace(TREE))[:6]


# --- generated logs: random process trees, every call shape strace writes ------------------
PAGE = 4096
BASE = 0x7F0000000000
NEAR_LIMIT = (1 << 47) - 3 * PAGE


@st.composite
def strace_logs(draw):
    """A well-formed `strace -f` log of a random process tree: mmap (PROT_NONE too), munmap,
    brk (within a page too), mremap, madvise, mprotect, clone/clone3/fork/vfork (processes,
    threads, vfork children), execve (failed too), exits, signals, calls the model does not
    read, calls split by other threads (`<unfinished ...>`), children seen before their
    parent's clone returns, addresses at the 47-bit limit; each timestamp form."""
    tform = draw(st.sampled_from(["", "t", "tt", "ttt"]))
    dur = draw(st.booleans())
    bracket = draw(st.booleans())
    clock = [draw(st.integers(0, 80000)) * 1_000_000]

    def head(tid):
        clock[0] += draw(st.integers(0, 3000))
        us = clock[0]
        t = ""
        if tform == "t":
            t = f"{us // 3_600_000_000 % 24:02d}:{us // 60_000_000 % 60:02d}:{us // 1_000_000 % 60:02d} "
        elif tform == "tt":
            t = f"{us // 3_600_000_000 % 24:02d}:{us // 60_000_000 % 60:02d}:{us // 1_000_000 % 60:02d}." \
                f"{us % 1_000_000:06d} "
        elif tform == "ttt":
            t = f"{1_700_000_000 + us // 1_000_000}.{us % 1_000_000:06d} "
        pid = f"[pid {tid:5d}] " if bracket else f"{tid} "
        return pid + t

    def result(value):
        return f" = {value}" + (f" <0.{draw(st.integers(0, 99999)):06d}>" if dur else "")

    addr = st.one_of(st.integers(0, 40).map(lambda i: BASE + i * PAGE), st.just(NEAR_LIMIT))
    length = st.one_of(st.integers(0, 6).map(lambda n: n * PAGE), st.integers(1, 5 * PAGE))
    prot = st.sampled_from(["PROT_READ|PROT_WRITE", "PROT_NONE", "PROT_READ", "PROT_READ|PROT_EXEC", "0"])
    out = []
    live = {100: 100}  # tid -> its process's pid (for plausible trees; the model decides)
    brk = {100: 0x55550000000}
    next_pid = [101]
    pending_clone = []  # (tid, text) of clones whose result comes after the child's first line
    for _ in range(draw(st.integers(0, 40))):
        if not live:
            break
        tid = draw(st.sampled_from(sorted(live)))
        kind = draw(st.sampled_from(["mmap", "mmap", "munmap", "brk", "mremap", "madvise", "mprotect", "clone",
                                     "execve", "exit", "signal", "other", "failed"]))
        call = None
        if kind == "mmap":
            a, n = draw(addr), draw(length)
            call = (f"mmap(NULL, {n}, {draw(prot)}, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0", f"{a:#x}")
        elif kind == "munmap":
            call = (f"munmap({draw(addr):#x}, {draw(length)}", "0")
        elif kind == "brk":
            pid = live[tid]
            cur = brk.setdefault(pid, 0x55550000000)
            new = max(0x55550000000, cur + draw(st.integers(-3 * PAGE, 3 * PAGE)))
            brk[pid] = new
            call = (draw(st.sampled_from(["NULL", f"{new:#x}"])).join(["brk(", ""]), f"{new:#x}")
        elif kind == "mremap":
            call = (f"mremap({draw(addr):#x}, {draw(length)}, {draw(length)}, MREMAP_MAYMOVE", f"{draw(addr):#x}")
        elif kind == "madvise":
            adv = draw(st.sampled_from(["MADV_DONTNEED", "MADV_FREE", "MADV_WILLNEED", "MADV_REMOVE"]))
            call = (f"madvise({draw(addr):#x}, {draw(length)}, {adv}", "0")
        elif kind == "mprotect":
            call = (f"mprotect({draw(addr):#x}, {draw(length)}, {draw(prot)}", "0")
        elif kind == "clone":
            child = next_pid[0]
            next_pid[0] += 1
            how = draw(st.sampled_from(["fork", "thread", "vfork", "clone3", "clone3vfork"]))
            text = {"fork": "clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, "
                            "child_tidptr=0x7f00000a10",
                    "thread": "clone(child_stack=0x7f0000001000, flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|"
                              "CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS, tls=0x7f0000002000",
                    "vfork": "vfork(",
                    "clone3": "clone3({flags=CLONE_VM|CLONE_FS|CLONE_THREAD, exit_signal=0, stack=0x7f0000003000, "
                              "stack_size=0x7fff00}, 88",
                    "clone3vfork": "clone3({flags=CLONE_VM|CLONE_VFORK, exit_signal=SIGCHLD, "
                                   "stack=0x7f0000004000, stack_size=0x9000}, 88"}[how]
            live[child] = live[tid] if how in ("thread", "clone3") else child
            if draw(st.booleans()):  # the child's first line comes before the clone returns
                pending_clone.append((tid, text, child))
                out.append(head(tid) + text.replace("vfork(", "vfork(") + " <unfinished ...>")
                continue
            call = (text, str(child))
        elif kind == "execve":
            ok = draw(st.booleans())
            call = ('execve("/usr/bin/true", ["true"], 0x7ffd2b8 /* 3 vars */',
                    "0" if ok else "-1 ENOENT (No such file or directory)")
        elif kind == "exit":
            # a thread's own exit, or the whole process's (exit_group: its threads end, the
            # leader last); clones still waiting for their result return first
            pid = live[tid]
            group = tid == pid or draw(st.booleans())
            gone = sorted((t for t in live if live[t] == pid), key=lambda t: t == pid) if group else [tid]
            for ptid, text, child in [c for c in pending_clone if c[0] in gone]:
                pending_clone.remove((ptid, text, child))
                out.append(head(ptid) + f"<... {text[: text.index('(')]} resumed>)" + result(str(child)))
            if group:
                out.append(head(tid) + "exit_group(0) = ?")
            for t in gone:
                out.append(head(t) + f"+++ {draw(st.sampled_from(['exited with 0', 'killed by SIGKILL']))} +++")
                del live[t]
            continue
        elif kind == "signal":
            out.append(head(tid) + "--- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=1} ---")
            continue
        elif kind == "other":
            call = ('openat(AT_FDCWD, "/etc/ld.so.cache", O_RDONLY|O_CLOEXEC', "3")
        else:
            call = (f"mmap(NULL, {draw(length)}, PROT_READ, MAP_PRIVATE, 3, 0", "-1 ENOMEM (Cannot allocate memory)")
        args, value = call
        name = args[: args.index("(")]
        if draw(st.integers(0, 4)) == 0 and len(live) > 1:  # split by another thread's line
            # strace prints what it knows at entry: the cut is at an argument's boundary
            cuts = [len(name) + 1] + [i + 2 for i in range(len(args)) if args.startswith(", ", i)] + [len(args)]
            cut = draw(st.sampled_from(cuts))
            other = draw(st.sampled_from(sorted(t for t in live if t != tid)))
            out.append(head(tid) + args[:cut] + " <unfinished ...>")
            out.append(head(other) + 'getpid()' + result("7"))
            out.append(head(tid) + f"<... {name} resumed>" + args[cut:] + ")" + result(value))
        else:
            out.append(head(tid) + args + ")" + result(value))
        while pending_clone and draw(st.booleans()):
            ptid, text, child = pending_clone.pop()
            name = text[: text.index("(")]
            out.append(head(ptid) + f"<... {name} resumed>)" + result(str(child)))
    for ptid, text, child in pending_clone:
        name = text[: text.index("(")]
        out.append(head(ptid) + f"<... {name} resumed>)" + result(str(child)))
    text = "\n".join(out) + ("\n" if draw(st.booleans()) or not out else "")
    if not bracket and draw(st.integers(0, 5)) == 0:  # a log without -f: no pid column
        text = "\n".join(line.split(" ", 1)[1] if " " in line else line for line in text.split("\n"))
    return text.encode()


_counts = {"compiled": 0, "python": 0}


@settings(max_examples=1000, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(log=strace_logs(), populate=st.sampled_from(POPULATES))
def _generated(tmp_path, log, populate):
    p = tmp_path / "gen.log"
    p.write_bytes(log)
    if not _agree([p], populate):
        _counts["python"] += 1
        _python([p], populate)  # the reference reads it (a crash fails the test)
    else:
        _counts["compiled"] += 1


def test_generated_logs_read_compiled_as_python(tmp_path):
    _generated(tmp_path)
    # the generated logs are strace's own shapes: the compiled path must answer nearly all
    assert _counts["compiled"] >= 0.9 * (_counts["compiled"] + _counts["python"]), _counts


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def _mutated(tmp_path, data):
    from tests.gen import STRACE_LINES, mutated_lines

    log = data.draw(st.one_of(mutated_lines(STRACE_LINES), strace_logs().flatmap(
        lambda b: mutated_lines(b.decode().splitlines() or [""]))))
    p = tmp_path / "mut.log"
    p.write_bytes(log)
    for populate in POPULATES:
        for lenient in (False, True):
            if _agree([p], populate, lenient):
                _mutated_counts["lenient" if lenient else "strict"] += 1


_mutated_counts = {"strict": 0, "lenient": 0}


def test_mutated_logs_read_compiled_as_python_or_not_at_all(tmp_path):
    _mutated(tmp_path)
    # lenient reading skips bad lines in compiled code too: it answers more often
    assert _mutated_counts["lenient"] > _mutated_counts["strict"] > 0, _mutated_counts


