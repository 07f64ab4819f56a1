"""A compiled scanner for `perf script` page-fault logs (see traces/perf.py for the
format and its meaning).

One pass over the file's bytes. Per line that is not blank: the line number, what it is
(KIND_*), the syscall it names, pid, tid, time (the columns before the event, read by
perf script's line grammar in traces/_perfline.py, shared with the kmem scanner), up to
MAX_VALUES numbers from its fields, and the byte offsets of the line and of its event
(for messages). Status per line: OK, NOT_PERF (no perf script head), BAD_EVENT (a known
event whose fields cannot be read).
"""

import numpy as np

from ptpair.traces._jit import scanner
from ptpair.traces._perfline import find, is_space, line_end, line_head, number, starts

OK, NOT_PERF, BAD_EVENT = 0, 1, 2
# what a line is; values: what `values` holds for it
KIND_FAULT = 0  # exceptions:page_fault_user|kernel; address
KIND_ENTER = 1  # syscalls:sys_enter_NAME; its fields in the order perf prints them
KIND_EXIT = 2  # syscalls:sys_exit_NAME; the return value (negative: an error)
KIND_PROCESS_EXIT = 3  # sched:sched_process_exit; group_dead (1 true, 0 false or absent)
KIND_MMAP2 = 4  # PERF_RECORD_MMAP2; start, length, file-backed or shared (0/1), the record's pid
KIND_FORK = 5  # PERF_RECORD_FORK(child:ctid):(parent:ptid); child, parent
KIND_EXEC = 6  # PERF_RECORD_COMM exec; the pid it names (-1 where it names none)
KIND_LOST = 7  # PERF_RECORD_LOST*; events lost
KIND_RECORD = 8  # another perf record: nothing to do
KIND_OTHER = 9  # another event: nothing to do
MAX_VALUES = 6

_RECORD = np.frombuffer(b"PERF_RECORD_", dtype=np.uint8)
_FAULT = np.frombuffer(b"exceptions:page_fault_", dtype=np.uint8)
_SYSCALL = np.frombuffer(b"syscalls:sys_", dtype=np.uint8)
_PROCESS_EXIT = np.frombuffer(b"sched:sched_process_exit:", dtype=np.uint8)
_USER, _KERNEL = np.frombuffer(b"user:", dtype=np.uint8), np.frombuffer(b"kernel:", dtype=np.uint8)
_ENTER, _EXIT_CALL = np.frombuffer(b"enter_", dtype=np.uint8), np.frombuffer(b"exit_", dtype=np.uint8)
_ADDRESS = np.frombuffer(b"address=", dtype=np.uint8)
_GROUP_DEAD = np.frombuffer(b"group_dead=true", dtype=np.uint8)


def syscall_table(names) -> tuple[np.ndarray, np.ndarray]:
    """(names padded into a uint8 matrix, their lengths): the syscalls a scan numbers."""
    width = max(len(n) for n in names)
    table = np.zeros((len(names), width), np.uint8)
    for i, n in enumerate(names):
        table[i, :len(n)] = np.frombuffer(n.encode(), np.uint8)
    return table, np.array([len(n) for n in names], np.int64)


@scanner
def _syscall(buf, i, end, names, lengths):
    """(index of the syscall name at buf[i:], the index after its ':') or (-1, i)."""
    colon = i
    while colon < end and buf[colon] != 58:
        colon += 1
    for s in range(len(lengths)):
        if lengths[s] == colon - i and starts(buf, i, end, names[s, :lengths[s]]):
            return s, colon + 1
    return -1, i


@scanner
def _skip(buf, i, end):
    while i < end and is_space(buf[i]):
        i += 1
    return i


@scanner
def _value_after(buf, i, end, word):
    """(value, ok) of the number following the first `word` in buf[i:end] (ok False where
    the word is absent or its number unreadable)."""
    w = find(buf, i, end, word)
    if w < 0:
        return 0, False
    v, _, ok = number(buf, _skip(buf, w + len(word), end), end)
    return v, ok


@scanner
def _fields(buf, i, end, out, row):
    """`name: value, name: value` (or `name=value`) after a syscall's name into out[row]:
    (how many, ok)."""
    n = 0
    while True:
        i = _skip(buf, i, end)
        if i >= end:
            return n, True
        while i < end and buf[i] != 58 and buf[i] != 61 and not is_space(buf[i]):  # the name
            i += 1
        if i >= end or is_space(buf[i]):
            return n, False
        v, i, ok = number(buf, _skip(buf, i + 1, end), end)
        if not ok:
            return n, False
        if n < out.shape[1]:
            out[row, n] = v
        n += 1
        if i < end and buf[i] == 44:  # ','
            i += 1


@scanner
def _mmap2(buf, e, end, out, row):
    """PERF_RECORD_MMAP2 PID/TID: [0xSTART(0xLEN) @ ...]: PERMS NAME -> out[row]: start,
    length, file-backed or shared, pid. False where it does not read."""
    i = _skip(buf, e, end)
    pid, i, ok = number(buf, i, end)
    if not ok:
        return False
    i = find(buf, i, end, np.frombuffer(b"[", dtype=np.uint8))
    if i < 0:
        return False
    start, i, ok = number(buf, i + 1, end)
    if not ok or i >= end or buf[i] != 40:  # '('
        return False
    length, i, ok = number(buf, i + 1, end)
    if not ok:
        return False
    i = find(buf, i, end, np.frombuffer(b"]: ", dtype=np.uint8))
    if i < 0 or i + 7 > end:
        return False
    p = i + 3  # perms: r/-, w/-, x/-, s/p
    if not (buf[p + 3] == 115 or buf[p + 3] == 112):
        return False
    shared = buf[p + 3] == 115
    na = _skip(buf, p + 4, end)
    nb = end
    while nb > na and is_space(buf[nb - 1]):
        nb -= 1
    # anonymous: no name, //anon, [stack], [heap]
    w_anon = np.frombuffer(b"//anon", dtype=np.uint8)
    w_stack = np.frombuffer(b"[stack]", dtype=np.uint8)
    w_heap = np.frombuffer(b"[heap]", dtype=np.uint8)
    anon = (nb == na or (nb - na == len(w_anon) and starts(buf, na, nb, w_anon))
            or (nb - na == len(w_stack) and starts(buf, na, nb, w_stack))
            or (nb - na == len(w_heap) and starts(buf, na, nb, w_heap)))
    out[row, 0] = start
    out[row, 1] = length
    out[row, 2] = 1 if shared or not anon else 0
    out[row, 3] = pid
    return True


@scanner
def _record(buf, k, end, out, row):
    """(kind, ok) of the perf record at buf[k:end] (after PERF_RECORD_), its values in out[row]."""
    e = k + len(_RECORD)
    if starts(buf, e, end, np.frombuffer(b"MMAP2 ", dtype=np.uint8)):
        return KIND_MMAP2, _mmap2(buf, e + 6, end, out, row)
    if starts(buf, e, end, np.frombuffer(b"FORK(", dtype=np.uint8)):
        child, i, ok = number(buf, e + 5, end)
        i = find(buf, i, end, np.frombuffer(b"):(", dtype=np.uint8))
        if not ok or i < 0:
            return KIND_FORK, False
        parent, i, ok = number(buf, i + 3, end)
        out[row, 0] = child
        out[row, 1] = parent
        return KIND_FORK, ok
    if starts(buf, e, end, np.frombuffer(b"COMM exec:", dtype=np.uint8)):
        # ...: NAME:PID/TID at the end of the line
        out[row, 0] = -1
        b = end
        while b > e and is_space(buf[b - 1]):
            b -= 1
        c = b - 1
        while c > e and buf[c] != 58:
            c -= 1
        if c > e:
            pid, i, ok = number(buf, c + 1, b)
            if ok and i < b and buf[i] == 47:
                tid, i, ok = number(buf, i + 1, b)
                if ok and i == b:
                    out[row, 0] = pid
        return KIND_EXEC, True
    if starts(buf, e, end, np.frombuffer(b"LOST", dtype=np.uint8)):
        w = find(buf, e, end, np.frombuffer(b"lost", dtype=np.uint8))
        out[row, 0] = 1
        if w >= 0:
            i = w + 4
            if i < end and buf[i] == 58:
                i += 1
            v, _, ok = number(buf, _skip(buf, i, end), end)
            if ok:
                out[row, 0] = v
        return KIND_LOST, True
    return KIND_RECORD, True


@scanner
def _time_colon(buf, a, b):
    """The first event start of a line whose event this scanner does not know: the
    first non-blank after `TIME: `, or -1."""
    for c in range(a + 1, b):
        if buf[c] == 58 and (c + 1 == b or is_space(buf[c + 1])) and 48 <= buf[c - 1] <= 57:
            return _skip(buf, c + 1, b)
    return -1


@scanner
def scan(buf, names, lengths, line_no, kind, status, syscall, pid, tid, time, values, count, line_a, event_a,
         line_b):
    """Fill the output arrays for every non-blank line; returns (rows, lines in the file)."""
    n = len(buf)
    row = line = a = 0
    while a < n:
        b = line_end(buf, a, n)
        line += 1
        end = b
        while end > a and is_space(buf[end - 1]):
            end -= 1
        if end == _skip(buf, a, end):  # blank
            a = b + 1
            continue
        line_no[row] = line
        line_a[row] = a
        line_b[row] = end
        syscall[row] = -1
        count[row] = 0
        for v in range(values.shape[1]):
            values[row, v] = 0
        st = OK
        kd = KIND_OTHER
        k = find(buf, a, end, _RECORD)
        if k >= 0:
            kd, ok = _record(buf, k, end, values, row)
            if not ok:
                st = BAD_EVENT
        else:
            k = find(buf, a, end, _FAULT)
            if k >= 0:
                e = k + len(_FAULT)
                if starts(buf, e, end, _USER) or starts(buf, e, end, _KERNEL):
                    kd = KIND_FAULT
                    values[row, 0], ok = _value_after(buf, e, end, _ADDRESS)
                    if not ok:
                        st = BAD_EVENT
        if k < 0:
            k = find(buf, a, end, _SYSCALL)
            if k >= 0:
                e = k + len(_SYSCALL)
                if starts(buf, e, end, _ENTER):
                    s, e = _syscall(buf, e + len(_ENTER), end, names, lengths)
                    if s >= 0:
                        kd = KIND_ENTER
                        syscall[row] = s
                        count[row], ok = _fields(buf, e, end, values, row)
                        if not ok:
                            st = BAD_EVENT
                elif starts(buf, e, end, _EXIT_CALL):
                    s, e = _syscall(buf, e + len(_EXIT_CALL), end, names, lengths)
                    if s >= 0:
                        kd = KIND_EXIT
                        syscall[row] = s
                        values[row, 0], _, ok = number(buf, _skip(buf, e, end), end)
                        if not ok:
                            st = BAD_EVENT
        if k < 0:
            k = find(buf, a, end, _PROCESS_EXIT)
            if k >= 0:
                kd = KIND_PROCESS_EXIT
                values[row, 0] = 1 if find(buf, k, end, _GROUP_DEAD) >= 0 else 0
        if k < 0:
            k = _time_colon(buf, a, end)
        kind[row] = kd
        ok = False
        if k >= 0:
            ok, pid[row], tid[row], time[row], _, _ = line_head(buf, a, k)
        if not ok:
            st = NOT_PERF
        event_a[row] = k if k >= 0 else a
        status[row] = st
        row += 1
        a = b + 1
    return row, line
