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
table of calls left pending by other threads (an `IntMap`, traces/_hashtable.py).
"""

from collections import namedtuple

import numpy as np

from ptpair.traces._hashtable import map_get, map_grown, map_pop, map_put, new_map
from ptpair.traces._intparse import _is_space as _ws  # the blanks of Python's \s and str.strip()
from ptpair.traces._intparse import same_bytes
from ptpair.traces._jit import inline_scanner, scanner
from ptpair.traces.strace.model import CLONE_THREAD, CLONE_VFORK, CLONE_VM
from ptpair.traces.strace.scan_numbers import _decimal, _int_arg, _result, _timestamp
from ptpair.traces.strace.scan_words import (BRK, CLONE3, END, EXIT, EXIT_GROUP, FORK, MADVISE, MMAP, MMAP2,
                                             MREMAP, MUNMAP, OTHER, PKEY_MPROTECT, VFORK, W_CLONE_THREAD,
                                             W_CLONE_VFORK, W_CLONE_VM, W_CORE, W_DONTNEED, W_EXITED, W_FREE,
                                             W_KILLED, W_PID, W_PLUS, W_PLUS_END, W_PROT_NONE, W_REMOVE,
                                             W_RESUMED, W_RESUMED_OPEN, W_SIGNAL, W_STRACE, W_SUPERSEDED,
                                             W_UNFINISHED, WORD_LEN, _at, _digit, _find, _has_word, _name,
                                             _name_end)

OK = 0
GIVE_UP = 1
# why `feed` calls a line bad: lines.BAD_NOT_STRACE, BAD_EXIT, BAD_TRUNCATED, BAD_NO_RESULT
BAD_NOT_STRACE, BAD_EXIT, BAD_TRUNCATED, BAD_NO_RESULT = 1, 2, 3, 4
UNSURE, NO_RESULT = -1, -2  # _finish: give up; no result (a bad line)

# the flags word of a memory call's third argument
ACCESSIBLE = 1  # a prot without PROT_NONE that is not 0 (model._accessible)
UNMAP_ADVICE = 2  # MADV_DONTNEED, MADV_FREE or MADV_REMOVE (model.UNMAP_ADVICE)
DONTNEED_ADVICE = 4  # MADV_DONTNEED (or _LOCKED): a `dontneed` event, the others an `unmap`

# The scanner's output, one row per call: start line, tid, time (s; NaN without one),
# name code (scan_words), result (retnone: none, a `?`), failed, the three first arguments,
# the flags word above, the clone flags
Calls = namedtuple("Calls", "line tid time name ret retnone failed args flags clone")
# the lines `feed` calls bad, skipped under `lenient`: line number, byte offset, BAD_* reason
BadLines = namedtuple("BadLines", "line pos reason")
# a call left pending by another thread (`<unfinished ...>`), one row per slot: its line,
# name code, name bytes [na, nb), argument bytes [a, b), tid (its time kept apart, a float)
P_LINE, P_NAME, P_NA, P_NB, P_A, P_B, P_TID = range(7)
N_PENDING_COLS = 7


def new_calls(n: int) -> Calls:
    """Room for n calls."""
    return Calls(line=np.empty(n, np.int64), tid=np.empty(n, np.int64), time=np.empty(n, np.float64),
                 name=np.empty(n, np.int8), ret=np.empty(n, np.int64), retnone=np.empty(n, np.bool_),
                 failed=np.empty(n, np.bool_), args=np.empty((n, 3), np.int64), flags=np.empty(n, np.int8),
                 clone=np.empty(n, np.int64))


def new_bad_lines(n: int) -> BadLines:
    """Room for n bad lines."""
    return BadLines(line=np.empty(n, np.int64), pos=np.empty(n, np.int64), reason=np.empty(n, np.int8))


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
def _record(c, k, line, tid, t, name, ret, retnone, failed):
    """Write call k (arguments, flags and clone flags zero: the caller fills what it read)."""
    c.line[k] = line
    c.tid[k] = tid
    c.time[k] = t
    c.name[k] = name
    c.ret[k] = ret
    c.retnone[k] = retnone
    c.failed[k] = failed
    c.args[k, 0] = c.args[k, 1] = c.args[k, 2] = 0
    c.flags[k] = 0
    c.clone[k] = 0


@scanner
def _finish(buf, a, b, name, last, c, k, line, tid, t, argv, starts, ends):
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
    _record(c, k, line, tid, t, name, v, kind == 1, kind == 2)
    if kind != 2:
        if name <= PKEY_MPROTECT and name != BRK:
            if kind == 1 or not _memory_args(buf, a, p, name, argv, starts, ends):
                return UNSURE
            c.args[k, 0], c.args[k, 1], c.args[k, 2] = argv[0], argv[1], argv[2]
            c.flags[k] = argv[3]
        elif name == BRK and kind == 1:
            return UNSURE
        elif FORK <= name <= CLONE3:
            c.clone[k] = _clone_flags(buf, a, p, name)
    return k + 1


EXIT_BAD, EXIT_END, EXIT_SUPERSEDED = 0, 1, 2


@inline_scanner
def _run_end(buf, j, le, capitals):
    """The end of the run of digits (and capital letters, with `capitals`: a signal's
    name) that starts at j."""
    while j < le and (_digit(buf[j]) or (capitals and 65 <= buf[j] <= 90)):
        j += 1
    return j


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
        d = _run_end(buf, j, le, False)
    elif _at(buf, j, le, W_KILLED):
        j += WORD_LEN[W_KILLED]
        d = _run_end(buf, j, le, True)
        if d > j and _at(buf, d, le, W_CORE):
            d += WORD_LEN[W_CORE]
    elif _at(buf, j, le, W_SUPERSEDED):
        j += WORD_LEN[W_SUPERSEDED]
        d = _run_end(buf, j, le, False)
        kind = EXIT_SUPERSEDED
    else:
        return EXIT_BAD
    if d == j:  # no number (or signal name) after the words
        return EXIT_BAD
    j = d
    if not (_at(buf, j, le, W_PLUS_END) and j + WORD_LEN[W_PLUS_END] == le):
        return EXIT_BAD
    return kind


@scanner
def _bad(lenient, bad, nb, line, pos, reason):
    """A line lines.LineReader.feed calls bad: -1 (give up: Python raises its error) unless
    `lenient`, where it is recorded in `bad` (line, byte offset, reason) and skipped.
    Returns the new count of bad lines."""
    if not lenient:
        return -1
    bad.line[nb] = line
    bad.pos[nb] = pos
    bad.reason[nb] = reason
    return nb + 1


@inline_scanner
def _settle(k, kept, lenient, bad, nb, line, pos, last):
    """What `_finish` returned (k) made (next call index, count of bad lines): a bad line
    drops its call (back to `kept`) and goes to `_bad`; the count is -1 to give up (an
    unsure call, or a bad line when not lenient)."""
    if k >= 0:
        return k, nb
    if k == UNSURE:
        return kept, -1
    return kept, _bad(lenient, bad, nb, line, pos, BAD_TRUNCATED if last else BAD_NO_RESULT)


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
def scan(buf, file_tid, lenient, c, bad):
    """Read one file's bytes into the calls `c` (room for as many as the file has lines,
    plus one). `file_tid` is the pid of an `strace -ff` file, or -1. Lines `feed` calls bad
    give up, or with `lenient` are skipped and recorded in `bad`. Returns (status, calls,
    bad lines)."""
    n = len(buf)
    if not _printable(buf):  # printable ASCII, tab and newline only: Python's \s is then [ \t]
        return GIVE_UP, 0, 0
    complete = n == 0 or buf[n - 1] == 10
    argv = np.zeros(4, dtype=np.int64)
    starts = np.zeros(4, dtype=np.int64)
    ends = np.zeros(4, dtype=np.int64)
    # the calls other threads interrupted: tid -> slot in a small hash table; slots are
    # numbered in the order the tids were first left pending (the order of
    # LineReader.pending, a dict); a slot's row of `pend` (P_*) and its time
    table = new_map(64)
    n_pending = 0
    slots = 0
    pend = np.empty((16, N_PENDING_COLS), dtype=np.int64)
    pend_time = np.empty(16, dtype=np.float64)
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
                nb = _bad(lenient, bad, nb, line, start, BAD_EXIT)
                if nb < 0:
                    return GIVE_UP, 0, 0
                continue
            if kind == EXIT_SUPERSEDED:
                continue
            _record(c, k, line, tid, t, END, 0, True, False)
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
                slot = map_pop(table, tid)
                if slot >= 0:
                    n_pending -= 1
                kept = k
                if (slot >= 0 and pend[slot, P_NB] - pend[slot, P_NA] == e - a
                        and same_bytes(buf, pend[slot, P_NA], a, e - a)):
                    # the start's arguments, a blank, then this tail (as `feed` joins them)
                    pa, pb = pend[slot, P_A], pend[slot, P_B]
                    total = (pb - pa) + 1 + (le - ta)
                    if total > len(scratch):
                        scratch = np.empty(2 * total, dtype=np.uint8)
                    scratch[: pb - pa] = buf[pa:pb]
                    scratch[pb - pa] = 32
                    scratch[pb - pa + 1: total] = buf[ta:le]
                    k = _finish(scratch, 0, total, name, last, c, k, pend[slot, P_LINE], tid, pend_time[slot], argv,
                                starts, ends)
                else:
                    k = _finish(buf, ta, le, name, last, c, k, line, tid, t, argv, starts, ends)
                k, nb = _settle(k, kept, lenient, bad, nb, line, start, last)
                if nb < 0:
                    return GIVE_UP, 0, 0
                continue
        e = _name_end(buf, i, le)
        if e == i or e >= le or buf[e] != 40:
            nb = _bad(lenient, bad, nb, line, start, BAD_NOT_STRACE)
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
            slot = map_get(table, tid)
            if slot < 0:
                if slots == len(pend):
                    pend, pend_time = _grow(pend, 2 * slots), _grow(pend_time, 2 * slots)
                slot = slots
                slots += 1
                if 2 * (n_pending + 1) > len(table.key):
                    table = map_grown(table)
                map_put(table, tid, slot)
                n_pending += 1
            row = pend[slot]
            row[P_LINE], row[P_NAME], row[P_TID] = line, name, tid
            row[P_NA], row[P_NB], row[P_A], row[P_B] = i, e, ta, pb
            pend_time[slot] = t
            continue
        kept = k
        k = _finish(buf, ta, le, name, last, c, k, line, tid, t, argv, starts, ends)
        k, nb = _settle(k, kept, lenient, bad, nb, line, start, last)
        if nb < 0:
            return GIVE_UP, 0, 0
    # calls cut off by the log's end: an exit that never returned is the thread's end
    for slot in range(slots):
        if map_get(table, pend[slot, P_TID]) != slot:
            continue  # resumed, or its tid left pending again later (another slot)
        if pend[slot, P_NAME] == EXIT or pend[slot, P_NAME] == EXIT_GROUP:
            _record(c, k, pend[slot, P_LINE], pend[slot, P_TID], pend_time[slot], END, 0, True, False)
            k += 1
    return OK, k, nb


@scanner
def _grow(a, rows):
    """A copy of the array a with more rows (`rows` in all; the new ones uninitialised)."""
    out = np.empty((rows,) + a.shape[1:], dtype=a.dtype)
    out[: len(a)] = a
    return out
