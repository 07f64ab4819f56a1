"""A compiled scanner for `perf script` kmem lines (see traces/kmem.py for the format).

One pass over the file's bytes; per line that names `kmem:mm_page_`, the event, pid,
time, pfn, order, migratetype, whether page=(nil), and the byte ranges of the command
name and the gfp flags. Status per line: OK, or why it cannot be read. The columns
before the event name are perf script's line grammar (traces/_perfline.py), shared with
the page-fault scanner.
"""

import numpy as np

from ptpair.traces import _hashtable as ht
from ptpair.traces._intparse import _is_space, parse_int, same_bytes
from ptpair.traces._jit import scanner
from ptpair.traces._perfline import find, line_end, line_head, starts as _starts

OK = 0
BAD_LINE = 1  # a kmem event line whose layout is not perf script's
BAD_PFN = 2  # no readable pfn
BAD_NUMBER = 3  # order or migratetype not a number
EV_ALLOC, EV_FREE, EV_FREE_BATCHED = 0, 1, 2

_NEEDLE = np.frombuffer(b"kmem:mm_page_", dtype=np.uint8)


@scanner
def _int(buf, i, end):
    """(value, next index, ok) of the integer token (decimal or 0x hex) at buf[i:end]."""
    j = i
    while j < end and not _is_space(buf[j]):
        j += 1
    v, st = parse_int(buf, i, j)
    return v, j, st == 0


@scanner  # nogil: kmem.read_kmem scans the two halves of a large log at once
def scan(buf, needle, line_no, event, status, pid, time, pfn, order, mt, nil, comm_a, comm_b, gfp_a, gfp_b):
    """Fill the output arrays for every kmem line; returns (rows, lines in the file)."""
    n = len(buf)
    row = 0
    line = 0
    a = 0
    w_alloc = np.frombuffer(b"alloc:", dtype=np.uint8)
    w_batched = np.frombuffer(b"free_batched:", dtype=np.uint8)
    w_free = np.frombuffer(b"free:", dtype=np.uint8)
    w_page = np.frombuffer(b"page=", dtype=np.uint8)
    w_nil = np.frombuffer(b"(nil)", dtype=np.uint8)
    w_pfn = np.frombuffer(b"pfn=", dtype=np.uint8)
    w_order = np.frombuffer(b"order=", dtype=np.uint8)
    w_mt = np.frombuffer(b"migratetype=", dtype=np.uint8)
    w_gfp = np.frombuffer(b"gfp_flags=", dtype=np.uint8)
    while a < n:
        b = line_end(buf, a, n)
        line += 1
        k = find(buf, a, b, needle)  # the event name
        if k >= 0:
            line_no[row] = line
            st = OK
            e = k + len(needle)
            ev = -1
            if _starts(buf, e, b, w_alloc):
                ev, e = EV_ALLOC, e + len(w_alloc)
            elif _starts(buf, e, b, w_batched):
                ev, e = EV_FREE_BATCHED, e + len(w_batched)
            elif _starts(buf, e, b, w_free):
                ev, e = EV_FREE, e + len(w_free)
            else:
                st = BAD_LINE
            event[row] = ev
            ok, pid[row], _, time[row], comm_a[row], comm_b[row] = line_head(buf, a, k)
            if not ok:
                st = BAD_LINE
            # the fields after the event name
            pfn[row] = -1
            order[row] = 0
            mt[row] = -1
            nil[row] = False
            gfp_a[row] = 0
            gfp_b[row] = 0
            has_page = False
            q = e
            while st == OK and q < b:
                while q < b and _is_space(buf[q]):
                    q += 1
                if q >= b:
                    break
                if _starts(buf, q, b, w_page):
                    has_page = True
                    if _starts(buf, q + len(w_page), b, w_nil):
                        nil[row] = True
                elif _starts(buf, q, b, w_pfn):
                    v, _, ok = _int(buf, q + len(w_pfn), b)
                    if ok:
                        pfn[row] = v
                    else:
                        st = BAD_PFN
                elif _starts(buf, q, b, w_order):
                    v, _, ok = _int(buf, q + len(w_order), b)
                    order[row] = v
                    if not ok:
                        st = BAD_NUMBER
                elif _starts(buf, q, b, w_mt):
                    v, _, ok = _int(buf, q + len(w_mt), b)
                    mt[row] = v
                    if not ok:
                        st = BAD_NUMBER
                elif _starts(buf, q, b, w_gfp):
                    gfp_a[row] = q + len(w_gfp)
                    r = gfp_a[row]
                    while r < b and not _is_space(buf[r]):
                        r += 1
                    gfp_b[row] = r
                while q < b and not _is_space(buf[q]):
                    q += 1
            if st == OK and pfn[row] < 0 and not (ev == EV_ALLOC and (nil[row] or not has_page)):
                st = BAD_PFN
            if st == OK and pfn[row] < 0:
                pfn[row] = 0
            status[row] = st
            row += 1
        a = b + 1
    return row, line


@scanner
def intern_ranges(buf, starts, ends):
    """Number the distinct byte strings buf[starts[r]:ends[r]]: (id per row, a row holding
    each id's string). Commands and gfp flags repeat across millions of rows; only the
    distinct ones need decoding. The one open-addressing table (traces/_hashtable.py)
    keyed by each string's FNV-1a hash, with the id as the value; a hit is confirmed by
    comparing the bytes (strings whose hashes collide each get a bucket of their own)."""
    n = len(starts)
    tab = ht.new_map(1024)  # hash -> id
    ids = np.empty(n, dtype=np.int64)
    reps = np.empty(n, dtype=np.int64)
    count = 0
    for r in range(n):
        a, b = starts[r], ends[r]
        if b < a:
            b = a
        h = -3750763034362895579  # FNV offset basis 14695981039346656037 as int64
        for i in range(a, b):
            h = (h ^ buf[i]) * 1099511628211
        mask = len(tab.key) - 1
        s = ht.probe(tab.key, tab.used, h, ht.home(h, mask))
        while tab.used[s]:  # a string with this hash: the same one, or a collision
            q = reps[tab.val[s]]
            qa, qb = starts[q], max(starts[q], ends[q])
            if qb - qa == b - a and same_bytes(buf, qa, a, b - a):
                break
            s = ht.probe(tab.key, tab.used, h, (s + 1) & mask)
        if tab.used[s]:
            ids[r] = tab.val[s]
            continue
        tab.used[s] = 1
        tab.key[s] = h
        tab.val[s] = count
        reps[count] = r
        ids[r] = count
        count += 1
        if 2 * count > len(tab.key):  # keep the table at most half full
            tab = ht.map_grown(tab)
    return ids, reps[:count]

