"""Numbers for the compiled strace scanner: timestamps, a call's result, integer
arguments -- each read exactly as the reference reader (lines.py, model.py) reads it, or
not at all.

Python's int() and float() take any number of digits; here a value must fit int64 with
room to add a length to an address, and a time must convert to the same double. So a
value at or beyond VALUE_LIMIT, a time with more digits than a double holds exactly, an
octal or signed argument -- shapes strace does not write for the calls the model reads
-- are reported as unreadable, and the scanner leaves the file to the reference reader.
"""

import numpy as np

from ptpair.traces._intparse import _is_space as _ws
from ptpair.traces._jit import scanner
from ptpair.traces.strace.scan_words import W_NULL, _at, _digit

VALUE_LIMIT = 1 << 60  # larger numbers are left to Python (keeps start + length in int64)
EXACT_FLOAT = 1 << 53  # a timestamp's digits beyond this would round: left to Python
POW10 = np.array([10.0 ** k for k in range(23)])  # exact: every 10^k, k <= 22, is a double


@scanner
def _decimal(buf, a, b):
    """Value of the digits buf[a:b] (leading zeros allowed), or -1 beyond VALUE_LIMIT."""
    if b - a > 18:
        return -1
    v = 0
    for i in range(a, b):
        v = v * 10 + (buf[i] - 48)
    return v if v < VALUE_LIMIT else -1


@scanner
def _duration_to_end(buf, k, b):
    """Whether buf[k:b] is `<[\\d.]+>` then blanks to the end."""
    j = k + 1
    while j < b and (_digit(buf[j]) or buf[j] == 46):
        j += 1
    if j == k + 1 or j >= b or buf[j] != 62:
        return False
    j += 1
    while j < b and _ws(buf[j]):
        j += 1
    return j == b


@scanner
def _after_value(buf, i, b):
    """What follows a result's value, as lines._RESULT reads it:
    `(?:\\s+(E[A-Z0-9]+)[^<]*)?(?:\\s*<[\\d.]+>)?\\s*$`. 0: no match, 1: match, 2: match
    with an errno (a failed call)."""
    j = i
    while j < b and _ws(buf[j]):
        j += 1
    if j > i and j + 1 < b and buf[j] == 69 and (65 <= buf[j + 1] <= 90 or _digit(buf[j + 1])):
        k = j + 2
        while k < b and buf[k] != 60:
            k += 1
        if k == b or _duration_to_end(buf, k, b):
            return 2
        return 0
    if j == b or (buf[j] == 60 and _duration_to_end(buf, j, b)):
        return 1
    return 0


@scanner
def _result(buf, a, b):
    """The result of a call's tail buf[a:b], as `lines._RESULT.search` finds it (the
    leftmost `)` from which the pattern matches to the end). Returns (position of that
    `)` or -1, kind, value): kind 0 a value, 1 `?`, 2 failed, 3 a value too large here."""
    for p in range(a, b):
        if buf[p] != 41:
            continue
        j = p + 1
        while j < b and _ws(buf[j]):
            j += 1
        if j == p + 1 or j >= b or buf[j] != 61:
            continue
        k = j + 1
        while k < b and _ws(buf[k]):
            k += 1
        if k == j + 1 or k >= b:
            continue
        # `-?\d+`, then `0x[0-9a-f]+`, then `\?`: the first that lets the rest match
        s = k + 1 if buf[k] == 45 else k
        d = s
        while d < b and _digit(buf[d]):
            d += 1
        if d > s:
            r = _after_value(buf, d, b)
            if r:
                if r == 2 or s > k:
                    return p, 2, 0
                v = _decimal(buf, s, d)
                return p, (0 if v >= 0 else 3), v
        if k + 2 < b and buf[k] == 48 and buf[k + 1] == 120:
            h = k + 2
            while h < b and (_digit(buf[h]) or 97 <= buf[h] <= 102):
                h += 1
            if h > k + 2:
                r = _after_value(buf, h, b)
                if r:
                    if r == 2:
                        return p, 2, 0
                    if h - (k + 2) > 15:
                        return p, 3, 0
                    v = 0
                    for i in range(k + 2, h):
                        c = buf[i]
                        v = v * 16 + (c - 48 if c <= 57 else c - 87)
                    return p, (0 if v < VALUE_LIMIT else 3), v
        if buf[k] == 63:
            r = _after_value(buf, k + 1, b)
            if r:
                return p, (2 if r == 2 else 1), 0
    return -1, 0, 0


@scanner
def _int_arg(buf, a, b):
    """model._int of the argument buf[a:b]: NULL or empty 0, decimal, 0x hex; -1 for
    anything else (negative, octal, beyond VALUE_LIMIT: left to Python)."""
    while a < b and _ws(buf[a]):
        a += 1
    while b > a and _ws(buf[b - 1]):
        b -= 1
    if a == b or (b - a == 4 and _at(buf, a, b, W_NULL)):
        return 0
    if b - a > 2 and buf[a] == 48 and (buf[a + 1] == 120 or buf[a + 1] == 88):
        if b - a - 2 > 15:
            return -1
        v = 0
        for i in range(a + 2, b):
            c = buf[i]
            if _digit(c):
                v = v * 16 + (c - 48)
            elif 97 <= c <= 102:
                v = v * 16 + (c - 87)
            elif 65 <= c <= 70:
                v = v * 16 + (c - 55)
            else:
                return -1
        return v if v < VALUE_LIMIT else -1
    zeros = True
    for i in range(a, b):
        if not _digit(buf[i]):
            return -1
        if buf[i] != 48:
            zeros = False
    if buf[a] == 48 and not zeros:  # int("012", 0) is an error in Python
        return -1
    return _decimal(buf, a, b)


@scanner
def _timestamp(buf, i, le):
    """The timestamp at buf[i:le], as lines._TIME reads it: HH:MM:SS[.frac] (-t, -tt) or
    epoch.frac (-ttt), then blanks. Returns (seconds, where the rest of the line starts):
    (nan, i) where there is none, (nan, -1) where it has more digits than convert to the
    same double here (left to Python)."""
    if i + 8 <= le and _digit(buf[i]) and _digit(buf[i + 1]) and buf[i + 2] == 58 and _digit(buf[i + 3]) \
            and _digit(buf[i + 4]) and buf[i + 5] == 58 and _digit(buf[i + 6]) and _digit(buf[i + 7]):
        j = i + 8
        f = j
        if j < le and buf[j] == 46:
            f = j + 1
            while f < le and _digit(buf[f]):
                f += 1
            if f == j + 1:
                f = j  # a bare '.': no fraction
        w = f
        while w < le and _ws(buf[w]):
            w += 1
        if w == f and f > j:  # not blank after the fraction: try without it
            f = j
            w = j
            while w < le and _ws(buf[w]):
                w += 1
        if w > f:
            digits = 2 + (f - j - 1 if f > j else 0)
            if digits > 15:
                return np.nan, -1
            m = (buf[i + 6] - 48) * 10 + (buf[i + 7] - 48)
            for q in range(j + 1, f):
                m = m * 10 + (buf[q] - 48)
            sec = m / POW10[digits - 2]
            return ((buf[i] - 48) * 10 + (buf[i + 1] - 48)) * 3600 + ((buf[i + 3] - 48) * 10 + (buf[i + 4] - 48)) * 60 \
                + sec, w
    else:
        d = i
        while d < le and _digit(buf[d]):
            d += 1
        if d - i >= 6 and d < le and buf[d] == 46:
            f = d + 1
            while f < le and _digit(buf[f]):
                f += 1
            w = f
            while w < le and _ws(buf[w]):
                w += 1
            if f > d + 1 and w > f:
                if f - i - 1 > 18:
                    return np.nan, -1
                m = 0
                for q in range(i, f):
                    if q != d:
                        m = m * 10 + (buf[q] - 48)
                if m > EXACT_FLOAT or f - d - 1 > 22:
                    return np.nan, -1
                return m / POW10[f - d - 1], w
    return np.nan, i
