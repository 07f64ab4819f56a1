"""A compiled scanner for integer cells held in Arrow string buffers.

Each cell is decimal or `0x`/`0X` hex, with optional surrounding blanks and an
optional leading minus sign (so that a negative value is reported by validation as
negative, not as unreadable). Status per cell: 0 parsed, 1 empty or null, 2 bad.
"""

import numpy as np

from ptpair.traces._jit import inline_scanner, scanner

_INT64_MAX_DIV_16 = (1 << 63) // 16
_INT64_MAX_DIV_10 = (1 << 63) // 10


@inline_scanner
def _is_space(c):
    return c == 32 or c == 9 or c == 13


@inline_scanner
def same_bytes(buf, a, b, n):
    """Whether the n bytes at buf[a] and at buf[b] are the same."""
    for j in range(n):
        if buf[a + j] != buf[b + j]:
            return False
    return True


@scanner
def parse_int(data, a, b):
    """(value, status) of the integer in data[a:b]: status 0 parsed, 1 empty, 2 bad."""
    while a < b and _is_space(data[a]):
        a += 1
    while b > a and _is_space(data[b - 1]):
        b -= 1
    if a == b:
        return 0, 1
    neg = False
    if data[a] == 45:  # '-'
        neg = True
        a += 1
    if a == b:
        return 0, 2
    v = 0
    if b - a > 2 and data[a] == 48 and (data[a + 1] == 120 or data[a + 1] == 88):  # 0x
        for i in range(a + 2, b):
            c = data[i]
            if 48 <= c <= 57:
                d = c - 48
            elif 97 <= c <= 102:
                d = c - 87
            elif 65 <= c <= 70:
                d = c - 55
            else:
                return 0, 2
            if v >= _INT64_MAX_DIV_16:
                return 0, 2
            v = v * 16 + d
    else:
        for i in range(a, b):
            c = data[i]
            if c < 48 or c > 57 or v >= _INT64_MAX_DIV_10:
                return 0, 2
            v = v * 10 + (c - 48)
    return (-v if neg else v), 0


@scanner
def parse_int_column(offsets, data, valid):
    n = len(offsets) - 1
    out = np.zeros(n, dtype=np.int64)
    status = np.zeros(n, dtype=np.int8)
    for r in range(n):
        if not valid[r]:
            status[r] = 1
            continue
        out[r], status[r] = parse_int(data, offsets[r], offsets[r + 1])
    return out, status
