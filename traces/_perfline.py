"""The line grammar of `perf script` text, compiled, shared by the kmem scanner
(traces/_kmemscan.py) and the page-fault scanner (traces/_perfscan.py).

A line is ``COMM PID[/TID] [CPU] TIME: [PERIOD] EVENT: FIELDS``. The command may hold
spaces and digits, so the columns before the event are read backwards from the event's
first byte, which each scanner finds by its own event names.
"""

import numpy as np

from ptpair.traces._intparse import _is_space as is_space
from ptpair.traces._jit import scanner

COLON, SLASH, DOT, MINUS, LBRACKET, RBRACKET = 58, 47, 46, 45, 91, 93
MAX_EXACT_DIGITS = 15  # a time with at most this many digits is read exactly (< 2**53), then rounded once


@scanner
def starts(buf, i, end, word):
    """Whether buf[i:end] begins with `word` (a uint8 array)."""
    if i + len(word) > end:
        return False
    for j in range(len(word)):
        if buf[i + j] != word[j]:
            return False
    return True


@scanner
def line_end(buf, a, n):
    """The index of the newline that ends the line starting at buf[a] (n at the end)."""
    b = a
    while b < n and buf[b] != 10:
        b += 1
    return b


@scanner
def find(buf, i, end, word):
    """The first index >= i where buf[i:end] holds `word`, or -1."""
    first = word[0]
    while i + len(word) <= end:
        if buf[i] == first and starts(buf, i, end, word):
            return i
        i += 1
    return -1


_U64_MAX = np.uint64(0xFFFFFFFFFFFFFFFF)
_I64_MAX = np.uint64(0x7FFFFFFFFFFFFFFF)


@scanner
def number(buf, i, end):
    """(value, next index, ok) of the number at buf[i:end]: decimal with an optional minus,
    or 0x hex read as 64 bits (0xffffffffffffffea is -22, as a syscall returns it). The
    number ends at a blank, a comma, a slash, a colon or a bracket. Not ok when it does
    not fit: a hex number beyond 64 bits, a decimal beyond int64 (rather than a value
    wrapped around, which would pass for a real pid or address)."""
    j = i
    neg = j < end and buf[j] == MINUS
    if neg:
        j += 1
    v = np.uint64(0)
    digits = 0
    fits = True
    hexa = j + 1 < end and buf[j] == 48 and (buf[j + 1] == 120 or buf[j + 1] == 88)
    base = np.uint64(16 if hexa else 10)
    if hexa:
        j += 2
    while j < end:
        c = buf[j]
        if 48 <= c <= 57:
            d = np.uint64(c - 48)
        elif hexa and 97 <= c <= 102:
            d = np.uint64(c - 87)
        elif hexa and 65 <= c <= 70:
            d = np.uint64(c - 55)
        else:
            break
        fits &= v <= (_U64_MAX - d) // base  # v * base + d stays within 64 bits
        v = v * base + d
        digits += 1
        j += 1
    if not hexa:  # a decimal is signed: up to 2^63 - 1, or 2^63 with its minus
        fits &= v <= _I64_MAX + np.uint64(neg)
    ok = fits and digits > 0 and (j == end or is_space(buf[j]) or buf[j] == 44 or buf[j] == SLASH
                                  or buf[j] == COLON or buf[j] == RBRACKET or buf[j] == 40 or buf[j] == 41)
    out = np.int64(v)
    return (-out if neg else out), j, ok


@scanner
def seconds(buf, i, end):
    """(value, ok) of a time in seconds, `digits[.digits]`, correctly rounded as Python's
    float() rounds it where it has at most MAX_EXACT_DIGITS digits."""
    mant = np.int64(0)
    scale = 1.0
    whole = 0.0
    frac = 0.0
    step = 1.0
    dot = False
    digits = 0
    for q in range(i, end):
        c = buf[q]
        if c == DOT and not dot:
            dot = True
        elif 48 <= c <= 57:
            digits += 1
            if digits <= MAX_EXACT_DIGITS:
                mant = mant * 10 + (c - 48)
                if dot:
                    scale *= 10.0
            if dot:
                step /= 10.0
                frac += (c - 48) * step
            else:
                whole = whole * 10.0 + (c - 48)
        else:
            return 0.0, False
    if digits == 0:
        return 0.0, False
    if digits <= MAX_EXACT_DIGITS:
        return mant / scale, True
    return whole + frac, True


@scanner
def line_head(buf, a, k):
    """The columns before the event name that starts at buf[k], on the line starting at
    buf[a]: ``COMM PID[/TID] [CPU] TIME: [PERIOD]``, read backwards. Returns (ok, pid,
    tid, time in seconds, comm_a, comm_b): the command is buf[comm_a:comm_b], trimmed;
    tid is the pid where the line has no tid column."""
    j = k - 1
    while j >= a and is_space(buf[j]):
        j -= 1
    if j >= a and buf[j] != COLON:  # a period column before the event name
        while j >= a and not is_space(buf[j]):
            j -= 1
        while j >= a and is_space(buf[j]):
            j -= 1
    if j < a or buf[j] != COLON:
        return False, 0, 0, 0.0, a, a
    tstart = j
    while tstart > a and not is_space(buf[tstart - 1]):
        tstart -= 1
    t, ok = seconds(buf, tstart, j)
    if not ok:
        return False, 0, 0, 0.0, a, a
    j = tstart - 1
    while j >= a and is_space(buf[j]):
        j -= 1
    if j >= a and buf[j] == RBRACKET:  # the cpu column
        while j >= a and buf[j] != LBRACKET:
            j -= 1
        j -= 1
        while j >= a and is_space(buf[j]):
            j -= 1
    pend = j + 1
    while j >= a and not is_space(buf[j]):
        j -= 1
    pstart = j + 1
    pid, q, ok = number(buf, pstart, pend)
    tid = pid
    if ok and q < pend and buf[q] == SLASH:
        tid, q, ok = number(buf, q + 1, pend)
    if not ok or q != pend:
        return False, 0, 0, 0.0, a, a
    while j >= a and is_space(buf[j]):
        j -= 1
    ca = a
    while ca <= j and is_space(buf[ca]):
        ca += 1
    return True, pid, tid, t, ca, max(j + 1, ca)
