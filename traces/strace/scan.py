"""The compiled strace scanner: the calls of one file's bytes, as arrays.

It reads what the reference line reader (lines.py, `LineReader.feed`) reads -- pid
column or not, the three timestamp forms, `-T` durations, failed calls, `<unfinished
...>` / `<... resumed>` halves joined exactly as `feed` joins them, thread ends, signals
-- or it gives up. It gives up (status GIVE_UP) on the first thing it is not sure to read
exactly as `feed` does: a byte outside printable ASCII and tab, a line `feed` would
reject (unless lenient: then the line is skipped and recorded, as `feed` skips it), a
number it does not parse (beyond 2^60, a leading `+`, octal), arguments of a memory call
that nest (quotes, brackets). The reference reader then reads the whole file, so that
every message and every rare shape has one source, and this one only has to be right
where it answers. tests/traces/test_strace_fast.py holds the two to the same calls on
the corpus, generated process trees and mutated logs.

One pass over the bytes; per call: start line, tid, time, name code, result, failed,
the three first arguments as integers (those the process model reads), whether the
third makes pages accessible or names an unmapping advice, and the clone flags. Its
parts: byte matching and name codes (scan_words.py), numbers (scan_numbers.py), the
table of calls left pending by other threads (scan_pending.py).
"""

import numpy as np

from ptpair.traces._intparse import _is_space as _ws  # the blanks of Python's \s and str.strip()
from ptpair.traces._jit import inline_scanner, scanner
from ptpair.traces.strace.model import CLONE_THREAD, CLONE_VFORK, CLONE_VM
from ptpair.traces.strace.scan_numbers import _decimal, _int_arg, _result, _timestamp
from ptpair.traces.strace.scan_pending import EMPTY, _ht_get, _ht_grow, _ht_pop, _ht_put
from ptpair.traces.strace.scan_words import (BRK, CLONE3, END, EXIT, EXIT_GROUP, FORK, MADVISE, MMAP, MMAP2,
                                             MREMAP, MUNMAP, OTHER, PKEY_MPROTECT, VFORK, W_CLONE_THREAD,
                                             W_CLONE_VFORK, W_CLONE_VM, W_CORE, W_DONTNEED, W_EXITED, W_FREE,
                                             W_KILLED, W_PID, W_PLUS, W_PLUS_END, W_PROT_NONE, W_REMOVE,
                                             W_RESUMED, W_RESUMED_OPEN, W_SIGNAL, W_STRACE, W_SUPERSEDED,
                                             W_UNFINISHED, WORD_LEN, _at, _digit, _find, _has_word, _name,
                                             _name_end, _same)

OK = 0
GIVE_UP = 1
# why `feed` calls a line bad: lines.BAD_NOT_STRACE, BAD_EXIT, BAD_TRUNCATED, BAD_NO_RESULT
BAD_NOT_STRACE, BAD_EXIT, BAD_TRUNCATED, BAD_NO_RESULT = 1, 2, 3, 4
UNSURE, NO_RESULT = -1, -2  # _finish: give up; no result (a bad line)

# the flags word of a memory call's third argument
ACCESSIBLE = 1  # a prot without PROT_NONE that is not 0 (model._accessible)
UNMAP_ADVICE = 2  # MADV_DONTNEED, MADV_FREE or MADV_REMOVE (model.UNMAP_ADVICE)
DONTNEED_ADVICE = 4  # MADV_DONTNEED (or _LOCKED): a `dontneed` event, the others an `unmap`


@scanner
def _memory_args(buf, a, b, name, out, starts, ends):
    """The arguments the model reads of a memory call (model._apply), into out[0:3] and
    out[3] (flags); `starts`/`ends` (4 each) are scratch. Returns False where Python's
    reading is not certain to agree."""
    # the first top-level comma-separated pieces (lines._split_args): as many as the call
    # reads. A nesting character before their end would send Python's split down its
    # careful path: left to Python (one after them cannot change them).
    need = 2 if name == MUNMAP else 3
    n = 0
    s = a
    for i in range(a, b + 1):
        if i < b:
            c = buf[i]
            if c == 34 or c == 40 or c == 91 or c == 123:
                return False
            if c != 44:
                continue
        starts[n] = s
        ends[n] = i
        n += 1
        s = i + 1
        if n == need:
            break
    if n < need:
        return False
    out[0] = out[1] = out[2] = out[3] = 0
    if name == MUNMAP:
        need_int = 0b011
    elif name == MREMAP:
        need_int = 0b111
    else:
        pa, pb = starts[2], ends[2]
        while pa < pb and _ws(buf[pa]):
            pa += 1
        while pb > pa and _ws(buf[pb - 1]):
            pb -= 1
        if name == MADVISE:
            need_int = 0
            if _find(buf, pa, pb, W_DONTNEED) >= 0:
                out[3] = UNMAP_ADVICE | DONTNEED_ADVICE
                need_int = 0b011
            elif _find(buf, pa, pb, W_FREE) >= 0 or _find(buf, pa, pb, W_REMOVE) >= 0:
                out[3] = UNMAP_ADVICE
                need_int = 0b011
        else:  # mmap, mmap2 (length), mprotect, pkey_mprotect (start, length)
            need_int = 0b010 if name == MMAP or name == MMAP2 else 0b011
            if pb > pa and not (pb - pa == 1 and buf[pa] == 48) and _find(buf, pa, pb, W_PROT_NONE) < 0:
                out[3] = ACCESSIBLE
    for k in range(3):
        if need_int & (1 << k):
            v = _int_arg(buf, starts[k], ends[k])
            if v < 0:
                return False
            out[k] = v
    return True


@scanner
def _clone_flags(buf, a, b, name):
    """model._clone_flags from the raw argument text buf[a:b]."""
    if name == VFORK:
        return CLONE_VM | CLONE_VFORK
    if name == FORK:
        return 0
    f = 0
    if _has_word(buf, a, b, W_CLONE_VM):
        f |= CLONE_VM
    if _has_word(buf, a, b, W_CLONE_VFORK):
        f |= CLONE_VFORK
    if _has_word(buf, a, b, W_CLONE_THREAD):
        f |= CLONE_THREAD
    return f


@inline_scanner
def _record(k, line, tid, t, name, ret, retnone, failed, c_line, c_tid, c_time, c_name, c_ret, c_retnone, c_failed,
            c_args, c_flags, c_clone):
    """Write call k (arguments, flags and clone flags zero: the caller fills what it read)."""
    c_line[k] = line
    c_tid[k] = tid
    c_time[k] = t
    c_name[k] = name
    c_ret[k] = ret
    c_retnone[k] = retnone
    c_failed[k] = failed
    c_args[k, 0] = c_args[k, 1] = c_args[k, 2] = 0
    c_flags[k] = 0
    c_clone[k] = 0


@scanner
def _finish(buf, a, b, name, last, k, line, tid, t, c_line, c_tid, c_time, c_name, c_ret, c_retnone,
            c_failed, c_args, c_flags, c_clone, argv, starts, ends):
    """lines.LineReader._finish for the call tail buf[a:b]: writes call k. Returns the next
    call index, NO_RESULT (a line `feed` calls bad), or UNSURE (give up)."""
    if name == OTHER and not last:
        return k
    p, kind, v = _result(buf, a, b)
    if p < 0:
        return NO_RESULT  # a bad line for `feed` (truncated, if it is the last)
    if name == OTHER:
        return k
    if kind == 3:
        return UNSURE
    _record(k, line, tid, t, name, v, kind == 1, kind == 2, c_line, c_tid, c_time, c_name, c_ret, c_retnone,
            c_failed, c_args, c_flags, c_clone)
    if kind != 2:
        if name <= PKEY_MPROTECT and name != BRK:
            if kind == 1 or not _memory_args(buf, a, p, name, argv, starts, ends):
                return UNSURE
            c_args[k, 0], c_args[k, 1], c_args[k, 2] = argv[0], argv[1], argv[2]
            c_flags[k] = argv[3]
        elif name == BRK and kind == 1:
            return UNSURE
        elif FORK <= name <= CLONE3:
            c_clone[k] = _clone_flags(buf, a, p, name)
    return k + 1


EXIT_BAD, EXIT_END, EXIT_SUPERSEDED = 0, 1, 2


@scanner
def _exit_line(buf, i, le):
    """A `+++ ... +++` line as lines._EXITED reads it: EXIT_END (`exited with N`, `killed
    by SIGX [(core dumped)]`), EXIT_SUPERSEDED (`superseded by execve in pid N`: no end),
    or EXIT_BAD."""
    if not _at(buf, i, le, W_PLUS):
        return EXIT_BAD
    j = i + 4
    kind = EXIT_END
    if _at(buf, j, le, W_EXITED):
        j += WORD_LEN[W_EXITED]
        if j < le and buf[j] == 45:
            j += 1
        d = j
        while d < le and _digit(buf[d]):
            d += 1
        if d == j:
            return EXIT_BAD
        j = d
    elif _at(buf, j, le, W_KILLED):
        j += WORD_LEN[W_KILLED]
        d = j
        while d < le and (65 <= buf[d] <= 90 or _digit(buf[d])):
            d += 1
        if d == j:
            return EXIT_BAD
        j = d
        if _at(buf, j, le, W_CORE):
            j += WORD_LEN[W_CORE]
    elif _at(buf, j, le, W_SUPERSEDED):
        j += WORD_LEN[W_SUPERSEDED]
        d = j
        while d < le and _digit(buf[d]):
            d += 1
        if d == j:
            return EXIT_BAD
        j = d
        kind = EXIT_SUPERSEDED
    else:
        return EXIT_BAD
    if not (_at(buf, j, le, W_PLUS_END) and j + WORD_LEN[W_PLUS_END] == le):
        return EXIT_BAD
    return kind


@scanner
def _bad(lenient, b_line, b_pos, b_reason, nb, line, pos, reason):
    """A line lines.LineReader.feed calls bad: -1 (give up: Python raises its error) unless
    `lenient`, where it is recorded (line, byte offset, reason) and skipped. Returns the
    new count of bad lines."""
    if not lenient:
        return -1
    b_line[nb] = line
    b_pos[nb] = pos
    b_reason[nb] = reason
    return nb + 1


@scanner
def _printable(buf):
    """Whether every byte is printable ASCII, a tab or a newline (no early exit: the loop
    vectorises)."""
    bad = False
    for i in range(len(buf)):
        c = buf[i]
        bad |= (c >= 127) | ((c < 32) & (c != 9) & (c != 10))
    return not bad


@scanner
def scan(buf, file_tid, lenient, c_line, c_tid, c_time, c_name, c_ret, c_retnone, c_failed, c_args, c_flags, c_clone,
         b_line, b_pos, b_reason):
    """Read one file's bytes into the call arrays (each as long as the file has lines, plus
    one). `file_tid` is the pid of an `strace -ff` file, or -1. Lines `feed` calls bad give
    up, or with `lenient` are skipped and recorded in b_line/b_pos/b_reason (line number,
    byte offset of the line, BAD_* reason). Returns (status, calls, bad lines)."""
    n = len(buf)
    if not _printable(buf):  # printable ASCII, tab and newline only: Python's \s is then [ \t]
        return GIVE_UP, 0, 0
    complete = n == 0 or buf[n - 1] == 10
    argv = np.zeros(4, dtype=np.int64)
    starts = np.zeros(4, dtype=np.int64)
    ends = np.zeros(4, dtype=np.int64)
    # the calls other threads interrupted: tid -> slot in a small hash table; slots are
    # numbered in the order the tids were first left pending (the order of
    # LineReader.pending, a dict)
    h_keys = np.full(64, EMPTY, dtype=np.int64)
    h_vals = np.empty(64, dtype=np.int64)
    h_used = 0
    slots = 0
    cap = 16
    s_line = np.empty(cap, dtype=np.int64)
    s_time = np.empty(cap, dtype=np.float64)
    s_name = np.empty(cap, dtype=np.int64)
    s_na = np.empty(cap, dtype=np.int64)  # the name's bytes (calls not in NAMES compare by them)
    s_nb = np.empty(cap, dtype=np.int64)
    s_a = np.empty(cap, dtype=np.int64)
    s_b = np.empty(cap, dtype=np.int64)
    s_tid = np.empty(cap, dtype=np.int64)
    scratch = np.empty(256, dtype=np.uint8)
    k = 0
    nb = 0
    line = 0
    ls = 0
    while ls < n:
        le = ls
        while le < n and buf[le] != 10:
            le += 1
        line += 1
        last = le == n and not complete
        i = ls
        start = ls
        ls = le + 1
        blank = True
        for j in range(i, le):
            if not _ws(buf[j]):
                blank = False
                break
        if blank:
            continue
        # the tid: `[pid N] ` or `N ` (lines._PREFIX); an -ff file's own pid otherwise
        tid = file_tid if file_tid >= 0 else 0
        is_pid = _at(buf, i, le, W_PID)
        if file_tid < 0 or is_pid:
            j = i
            ok = True
            if is_pid:
                j = i + 4
                while j < le and _ws(buf[j]):
                    j += 1
                ok = j > i + 4
            d = j
            while ok and d < le and _digit(buf[d]):
                d += 1
            if ok and d > j:
                e = d + 1 if d < le and buf[d] == 93 else d
                w = e
                while w < le and _ws(buf[w]):
                    w += 1
                if w > e:
                    tid = _decimal(buf, j, d)
                    if tid < 0:
                        return GIVE_UP, 0, 0
                    i = w
        # the time (lines._TIME): HH:MM:SS[.frac] or epoch.frac, then blanks
        t, i = _timestamp(buf, i, le)
        if i < 0:
            return GIVE_UP, 0, 0
        if _at(buf, i, le, W_SIGNAL) or _at(buf, i, le, W_STRACE):
            continue
        if i + 3 <= le and buf[i] == 43 and buf[i + 1] == 43 and buf[i + 2] == 43:
            kind = _exit_line(buf, i, le)
            if kind == EXIT_BAD:
                nb = _bad(lenient, b_line, b_pos, b_reason, nb, line, start, BAD_EXIT)
                if nb < 0:
                    return GIVE_UP, 0, 0
                continue
            if kind == EXIT_SUPERSEDED:
                continue
            _record(k, line, tid, t, END, 0, True, False, c_line, c_tid, c_time, c_name, c_ret, c_retnone, c_failed,
                    c_args, c_flags, c_clone)
            k += 1
            continue
        if _at(buf, i, le, W_RESUMED_OPEN):
            a = i + WORD_LEN[W_RESUMED_OPEN]
            e = _name_end(buf, a, le)
            if e > a and _at(buf, e, le, W_RESUMED):
                name = _name(buf, a, e)
                ta = e + WORD_LEN[W_RESUMED]
                if ta < le and _ws(buf[ta]):
                    ta += 1
                slot = _ht_pop(h_keys, h_vals, tid)
                if slot >= 0:
                    h_used -= 1
                kept = k
                if slot >= 0 and s_nb[slot] - s_na[slot] == e - a and _same(buf, s_na[slot], a, e - a):
                    # the start's arguments, a blank, then this tail (as `feed` joins them)
                    pa, pb = s_a[slot], s_b[slot]
                    total = (pb - pa) + 1 + (le - ta)
                    if total > len(scratch):
                        scratch = np.empty(2 * total, dtype=np.uint8)
                    scratch[: pb - pa] = buf[pa:pb]
                    scratch[pb - pa] = 32
                    scratch[pb - pa + 1: total] = buf[ta:le]
                    k = _finish(scratch, 0, total, name, last, k, s_line[slot], tid, s_time[slot], c_line, c_tid,
                                c_time, c_name, c_ret, c_retnone, c_failed, c_args, c_flags, c_clone, argv, starts, ends)
                else:
                    k = _finish(buf, ta, le, name, last, k, line, tid, t, c_line, c_tid, c_time, c_name, c_ret,
                                c_retnone, c_failed, c_args, c_flags, c_clone, argv, starts, ends)
                if k < 0:
                    if k == UNSURE:
                        return GIVE_UP, 0, 0
                    nb = _bad(lenient, b_line, b_pos, b_reason, nb, line, start, BAD_TRUNCATED if last else BAD_NO_RESULT)
                    if nb < 0:
                        return GIVE_UP, 0, 0
                    k = kept
                continue
        e = _name_end(buf, i, le)
        if e == i or e >= le or buf[e] != 40:
            nb = _bad(lenient, b_line, b_pos, b_reason, nb, line, start, BAD_NOT_STRACE)
            if nb < 0:
                return GIVE_UP, 0, 0
            continue
        name = _name(buf, i, e)
        ta = e + 1
        u = WORD_LEN[W_UNFINISHED]
        if le - ta >= u and _at(buf, le - u, le, W_UNFINISHED):
            pb = le - u
            while pb > ta and _ws(buf[pb - 1]):
                pb -= 1
            slot = _ht_get(h_keys, h_vals, tid)
            if slot < 0:
                if slots == cap:
                    cap *= 2
                    s_line = _grow(s_line, cap)
                    s_time = _grow(s_time, cap)
                    s_name = _grow(s_name, cap)
                    s_na = _grow(s_na, cap)
                    s_nb = _grow(s_nb, cap)
                    s_a = _grow(s_a, cap)
                    s_b = _grow(s_b, cap)
                    s_tid = _grow(s_tid, cap)
                slot = slots
                slots += 1
                if 2 * (h_used + 1) > len(h_keys):
                    h_keys, h_vals = _ht_grow(h_keys, h_vals)
                _ht_put(h_keys, h_vals, tid, slot)
                h_used += 1
            s_line[slot] = line
            s_time[slot] = t
            s_name[slot] = name
            s_na[slot] = i
            s_nb[slot] = e
            s_a[slot] = ta
            s_b[slot] = pb
            s_tid[slot] = tid
            continue
        kept = k
        k = _finish(buf, ta, le, name, last, k, line, tid, t, c_line, c_tid, c_time, c_name, c_ret, c_retnone,
                    c_failed, c_args, c_flags, c_clone, argv, starts, ends)
        if k < 0:
            if k == UNSURE:
                return GIVE_UP, 0, 0
            nb = _bad(lenient, b_line, b_pos, b_reason, nb, line, start, BAD_TRUNCATED if last else BAD_NO_RESULT)
            if nb < 0:
                return GIVE_UP, 0, 0
            k = kept
    # calls cut off by the log's end: an exit that never returned is the thread's end
    for slot in range(slots):
        if _ht_get(h_keys, h_vals, s_tid[slot]) != slot:
            continue  # resumed, or its tid left pending again later (another slot)
        if s_name[slot] == EXIT or s_name[slot] == EXIT_GROUP:
            _record(k, s_line[slot], s_tid[slot], s_time[slot], END, 0, True, False, c_line, c_tid, c_time, c_name,
                    c_ret, c_retnone, c_failed, c_args, c_flags, c_clone)
            k += 1
    return OK, k, nb


@scanner
def _grow(a, cap):
    """A copy of the 1-d array a in a longer one (cap elements; the rest uninitialised)."""
    out = np.empty(cap, dtype=a.dtype)
    out[: len(a)] = a
    return out
