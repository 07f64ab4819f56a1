"""The compiled strace process model (model.convert_calls), over the call arrays of
the compiled scanner (scan.py).

A line-for-line port of the reference model (model.py), which stays the reference: the
same creation pass (a child appears at its parent's clone, or at its own first line if
earlier), the same vfork borrowing, threads, exec and exit rules, and the same
address-space ranges (compiled_spaces.py). The per-process thread sets become an owner
per tid and a count per pid; the one thing that cannot be held that way -- a tid in two
sets at once, which the reference model makes when a child's own child is seen before
the child's clone returns and the child then turns out to be a thread -- gives up
(status GIVE_UP) and the reference model runs.
"""

from collections import namedtuple

import numpy as np

from ptpair.traces._jit import inline_scanner, scanner
from ptpair.traces.format import OP_CODE
from ptpair.traces.strace.compiled_spaces import (MIN_BLOCK, _accessible_of, _add, _alloc, _free, _protect,
                                                  _remove, _span)
from ptpair.traces.strace.model import CLONE_THREAD, CLONE_VFORK, CLONE_VM, PAGE_SIZE, VA_LIMIT
from ptpair.traces.strace.scan import ACCESSIBLE, DONTNEED_ADVICE, UNMAP_ADVICE, _grow
from ptpair.traces.strace.scan_words import (BRK, CLONE3, END, EXECVE, EXECVEAT, FORK, MADVISE, MMAP, MMAP2,
                                             MREMAP, MUNMAP, PKEY_MPROTECT)

OK, GIVE_UP = 0, 1
POPULATE_ALL, POPULATE_NONE, POPULATE_FRACTION = 0, 1, 2
OP_MAP, OP_UNMAP = OP_CODE["map"], OP_CODE["unmap"]
OP_RESERVE, OP_RELEASE, OP_DONTNEED = OP_CODE["reserve"], OP_CODE["release"], OP_CODE["dontneed"]
OP_SPAWN, OP_FORK, OP_EXEC, OP_EXIT = OP_CODE["spawn"], OP_CODE["fork"], OP_CODE["exec"], OP_CODE["exit"]
# rows: pid, op, va, length (bytes), arg, line; times apart (float)
R_PID, R_OP, R_VA, R_LEN, R_ARG, R_LINE = range(6)


@inline_scanner
def _page_up(x):
    return -(-x // PAGE_SIZE) * PAGE_SIZE


# The model's state, one element per tid index (a pid's where it names a process):
# proc      tid -> pid of its process (model's proc_of), -1 none
# borrowed  vfork child -> the pid whose space it borrows, -1 none
# alive     pid -> has threads and a space
# member    tid -> the pid whose thread set holds it, -1 none
# nthreads  pid -> size of its thread set
# seq       the order pids entered `threads` (the exits at the log's end follow it)
# off, cap, cnt   pid -> its address space: block offset, capacity and ranges in the pool
# brk_set, brk_cur  pid -> whether a brk was seen, and the current break
Procs = namedtuple("Procs", "proc borrowed alive member nthreads seq off cap cnt brk_set brk_cur")


@inline_scanner
def _new_procs(n):
    return Procs(np.full(n, -1, dtype=np.int64), np.full(n, -1, dtype=np.int64), np.zeros(n, dtype=np.bool_),
                 np.full(n, -1, dtype=np.int64), np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64),
                 np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64),
                 np.zeros(n, dtype=np.bool_), np.zeros(n, dtype=np.int64))


@scanner
def _begin(p, src, S, E, A, top, free_head, ps, nseq):
    """model._Builder.new_process: pid p begins, with a fresh address space (src < 0) or
    a copy of src's, in a block of the pool. Returns (S, E, A, top, next insertion
    number); the number is -1 where p would be in two thread sets at once (the Python
    model's sets are then no longer one owner per tid)."""
    proc, _, alive, member, nthreads, seq, off, cap, cnt, brk_set, brk_cur = ps
    if member[p] >= 0 and member[p] != p:
        return S, E, A, top, -1
    size = MIN_BLOCK if src < 0 else max(MIN_BLOCK, 3 * cnt[src] + 8)
    S, E, A, top, at, size = _alloc(S, E, A, top, free_head, size)
    if alive[p]:  # threads[p] = {p} replaces the set: its other members leave it
        for q in range(len(member)):
            if member[q] == p:
                member[q] = -1
        _free(S, free_head, off[p], cap[p])  # and space_of[p] is replaced
    else:  # a new key of the `threads` dict: it goes last in its order
        seq[p] = nseq
        nseq += 1
    off[p], cap[p] = at, size
    if src < 0:
        cnt[p] = 0
        brk_set[p] = False
    else:
        for j in range(cnt[src]):
            S[at + j], E[at + j], A[at + j] = S[off[src] + j], E[off[src] + j], A[off[src] + j]
        cnt[p] = cnt[src]
        brk_set[p], brk_cur[p] = brk_set[src], brk_cur[src]
    proc[p] = p
    alive[p] = True
    member[p] = p
    nthreads[p] = 1
    return S, E, A, top, nseq


@inline_scanner
def _emit(rows, times, k, pid, op, va, length, arg, t, line):
    rows[k, R_PID], rows[k, R_OP], rows[k, R_VA], rows[k, R_LEN], rows[k, R_ARG], rows[k, R_LINE] = \
        pid, op, va, length, arg, line
    times[k] = t
    return k + 1


@scanner
def model(tid, name, time, line, ret, retnone, failed, args, flags, cflags, child, ids, mode, frac):
    """Canonical rows of the calls (tid and child as indexes into `ids`, the pids).

    Returns (status, rows int64 (k, 6), times float64 (k,), dropped count)."""
    n = len(tid)
    N = len(ids)
    # -- where each child appears (model.convert_calls's first pass)
    first = np.full(N, -1, dtype=np.int64)
    for i in range(n):
        if first[tid[i]] < 0:
            first[tid[i]] = i
    cre_at = np.empty(n, dtype=np.int64)
    cre_call = np.empty(n, dtype=np.int64)
    created = np.zeros(N, dtype=np.bool_)
    m = 0
    for i in range(n):
        if FORK <= name[i] <= CLONE3 and not failed[i] and not retnone[i] and ret[i] > 0:
            ch = child[i]
            if not created[ch]:
                at = i if first[ch] < 0 else min(i, first[ch])
                cre_at[m] = at
                cre_call[m] = i
                m += 1
                created[ch] = True
    order = np.argsort(cre_at[:m], kind="mergesort")  # stable: same index keeps call order

    # -- the model's state, by tid index (Procs)
    ps = _new_procs(N)
    proc, borrowed, alive, member, nthreads, seq, off, cap, cnt, brk_set, brk_cur = ps
    nseq = 0
    pool = 1024
    S = np.empty(pool, dtype=np.int64)
    E = np.empty(pool, dtype=np.int64)
    A = np.empty(pool, dtype=np.int8)
    top = 0
    free_head = np.full(64, -1, dtype=np.int64)  # per size class: the first free block
    scratch = 64
    PS = np.empty(scratch, dtype=np.int64)
    PE = np.empty(scratch, dtype=np.int64)
    PA = np.empty(scratch, dtype=np.int8)
    OL = np.empty(scratch, dtype=np.int64)
    OH = np.empty(scratch, dtype=np.int64)
    rows = np.empty((max(16, n + n // 2), 6), dtype=np.int64)
    times = np.empty(rows.shape[0], dtype=np.float64)
    k = 0
    dropped = 0
    ci = 0
    for i in range(n + 1):
        # room for this step's rows: one per creation, and per call at most 3 per range of
        # its space (mprotect opens at most every range) plus a few
        sp_need = 0
        for p in (proc[tid[i]] if i < n else -1, borrowed[tid[i]] if i < n else -1):
            if p >= 0:
                sp_need = max(sp_need, 3 * cnt[p] + 8)
        need = k + sp_need + 8 + 2 * (m - ci)
        if need > rows.shape[0]:
            rows = _grow(rows, 2 * need)
            times = _grow(times, 2 * need)
        if i == n:
            break
        # -- the processes and threads the calls so far have created
        while ci < m and cre_at[order[ci]] == i:
            c = cre_call[order[ci]]
            ci += 1
            ch, parent, fl = child[c], tid[c], cflags[c]
            if proc[parent] < 0 and borrowed[parent] < 0:
                S, E, A, top, nseq = _begin(parent, -1, S, E, A, top, free_head, ps, nseq)
                if nseq < 0:
                    return GIVE_UP, rows[:0], times[:0], 0
                k = _emit(rows, times, k, ids[parent], OP_SPAWN, 0, 0, 0, time[c], line[c])
            if fl & CLONE_VM and fl & CLONE_VFORK:
                borrowed[ch] = borrowed[parent] if borrowed[parent] >= 0 else proc[parent]
            elif fl & CLONE_VM or fl & CLONE_THREAD:
                if borrowed[parent] >= 0:  # a thread of a vfork child shares the borrowed space
                    borrowed[ch] = borrowed[parent]
                else:
                    p = proc[parent]  # new_thread (none if the process has ended)
                    if alive[p] and member[ch] >= 0 and member[ch] != p:
                        return GIVE_UP, rows[:0], times[:0], 0
                    if not alive[p]:
                        continue
                    proc[ch] = p
                    if member[ch] < 0:
                        member[ch] = p
                        nthreads[p] += 1
            else:
                src = borrowed[parent] if borrowed[parent] >= 0 else proc[parent]
                if not alive[src]:  # the space it would copy has ended (an inconsistent log)
                    src = -1
                S, E, A, top, nseq = _begin(ch, src, S, E, A, top, free_head, ps, nseq)
                if nseq < 0:
                    return GIVE_UP, rows[:0], times[:0], 0
                if src < 0:
                    k = _emit(rows, times, k, ids[ch], OP_SPAWN, 0, 0, 0, time[c], line[c])
                else:
                    k = _emit(rows, times, k, ids[ch], OP_FORK, 0, 0, ids[src], time[c], line[c])
        t = tid[i]
        nm = name[i]
        ti, li = time[i], line[i]
        if proc[t] < 0 and borrowed[t] < 0:
            if nm == END:
                continue
            # a root of the tree (or attached with -p)
            S, E, A, top, nseq = _begin(t, -1, S, E, A, top, free_head, ps, nseq)
            if nseq < 0:
                return GIVE_UP, rows[:0], times[:0], 0
            k = _emit(rows, times, k, ids[t], OP_SPAWN, 0, 0, 0, ti, li)
        if nm == END:
            if borrowed[t] >= 0:  # a vfork child that never exec'd: it had no tables
                borrowed[t] = -1
                continue
            p = proc[t]
            if p < 0:
                continue
            proc[t] = -1
            if not alive[p]:  # its process has already ended
                continue
            if member[t] == p:
                member[t] = -1
                nthreads[p] -= 1
            if nthreads[p] == 0:
                k = _emit(rows, times, k, ids[p], OP_EXIT, 0, 0, 0, ti, li)
                alive[p] = False
                _free(S, free_head, off[p], cap[p])
            continue
        if failed[i]:
            continue
        if nm == EXECVE or nm == EXECVEAT:
            p = proc[t]
            if borrowed[t] >= 0 or not alive[p]:
                # the vfork child gets its own address space; or its process has ended
                # (an inconsistent log): a new one
                if borrowed[t] >= 0:
                    borrowed[t] = -1
                else:
                    proc[t] = -1
                S, E, A, top, nseq = _begin(t, -1, S, E, A, top, free_head, ps, nseq)
                if nseq < 0:
                    return GIVE_UP, rows[:0], times[:0], 0
                k = _emit(rows, times, k, ids[t], OP_SPAWN, 0, 0, 0, ti, li)
                continue
            if member[t] >= 0 and member[t] != p:
                return GIVE_UP, rows[:0], times[:0], 0
            k = _emit(rows, times, k, ids[p], OP_EXEC, 0, 0, 0, ti, li)
            cnt[p] = 0
            brk_set[p] = False
            if nthreads[p] > (1 if member[t] == p else 0):  # exec leaves only the calling thread
                for q in range(N):
                    if member[q] == p and q != t:
                        member[q] = -1
                        proc[q] = -1
            member[t] = p
            nthreads[p] = 1
            continue
        if borrowed[t] >= 0:
            sp = borrowed[t] if alive[borrowed[t]] else -1
        else:
            sp = proc[t] if alive[proc[t]] else -1
        if sp < 0 or nm > PKEY_MPROTECT:
            continue
        # room in this space's block and the scratch for any change to it
        room = 3 * cnt[sp] + 8
        if cap[sp] < room:
            S, E, A, top, at, size = _alloc(S, E, A, top, free_head, 2 * room)
            for j in range(cnt[sp]):
                S[at + j], E[at + j], A[at + j] = S[off[sp] + j], E[off[sp] + j], A[off[sp] + j]
            _free(S, free_head, off[sp], cap[sp])
            off[sp], cap[sp] = at, size
        if len(PS) < room:
            PS, PE, PA = _grow(PS, 2 * room), _grow(PE, 2 * room), _grow(PA, 2 * room)
            OL, OH = _grow(OL, 2 * room), _grow(OH, 2 * room)
        o = off[sp]
        a0, a1, a2 = args[i, 0], args[i, 1], args[i, 2]
        # each change: the range to unmap, release or dontneed (u0, u1; its op uop), the
        # range to reserve (r0, r1), then to map (m0, m1), as the Python model emits them
        u0 = u1 = r0 = r1 = m0 = m1 = 0
        uop = OP_RELEASE
        opened = 0
        if nm == MMAP or nm == MMAP2:
            acc = 1 if flags[i] & ACCESSIBLE else 0
            length = _page_up(a1)
            lo_, hi_ = _span(S, E, o, cnt[sp], ret[i], ret[i] + length)
            if hi_ > lo_:  # MAP_FIXED over mappings: Linux unmaps them first
                u0, u1 = ret[i], ret[i] + length
            cnt[sp] = _add(S, E, A, o, cnt[sp], ret[i], ret[i] + length, acc, PS, PE, PA)
            r0, r1 = ret[i], ret[i] + length
            if acc:
                m0, m1 = ret[i], ret[i] + length
        elif nm == MUNMAP:
            length = _page_up(a1)
            cnt[sp] = _remove(S, E, A, o, cnt[sp], a0, a0 + length, PS, PE, PA)
            u0, u1 = a0, a0 + length
        elif nm == BRK:
            new_brk = ret[i]
            if not brk_set[sp]:
                brk_set[sp] = True
                brk_cur[sp] = new_brk
                continue
            old = brk_cur[sp]
            if new_brk > old:
                m0, m1 = _page_up(old), _page_up(new_brk)
                r0, r1 = m0, m1
                cnt[sp] = _add(S, E, A, o, cnt[sp], m0, m1, 1, PS, PE, PA)
            elif new_brk < old:
                u0, u1 = _page_up(new_brk), _page_up(old)
                cnt[sp] = _remove(S, E, A, o, cnt[sp], u0, u1, PS, PE, PA)
            brk_cur[sp] = new_brk
        elif nm == MREMAP:
            old_len, new_len = _page_up(a1), _page_up(a2)
            acc = _accessible_of(S, E, A, o, cnt[sp], a0)
            cnt[sp] = _remove(S, E, A, o, cnt[sp], a0, a0 + old_len, PS, PE, PA)
            u0, u1 = a0, a0 + old_len
            cnt[sp] = _add(S, E, A, o, cnt[sp], ret[i], ret[i] + new_len, acc, PS, PE, PA)
            r0, r1 = ret[i], ret[i] + new_len
            if acc:
                m0, m1 = ret[i], ret[i] + new_len
        elif nm == MADVISE:
            if flags[i] & UNMAP_ADVICE:
                u0, u1 = a0, a0 + _page_up(a1)
                uop = OP_DONTNEED if flags[i] & DONTNEED_ADVICE else OP_UNMAP
        else:  # mprotect, pkey_mprotect
            acc = 1 if flags[i] & ACCESSIBLE else 0
            cnt[sp], opened = _protect(S, E, A, o, cnt[sp], a0, a0 + _page_up(a1), acc, PS, PE, PA, OL, OH)
        pid = ids[sp]
        # unmap (model._Builder.unmap), reserve (_Builder.reserve), then map (_Builder.map)
        if u1 > u0 and u0 < VA_LIMIT and mode != POPULATE_NONE:
            k = _emit(rows, times, k, pid, uop, u0, min(u1, VA_LIMIT) - u0, 0, ti, li)
        if r1 > r0 and r1 <= VA_LIMIT and mode != POPULATE_NONE:
            k = _emit(rows, times, k, pid, OP_RESERVE, r0, r1 - r0, 0, ti, li)
        for r in range(opened + 1):
            lo, hi = (m0, m1) if r == opened else (OL[r], OH[r])
            if hi <= lo:
                continue
            if hi > VA_LIMIT:
                dropped += 1
                continue
            if mode == POPULATE_NONE:
                continue
            if mode == POPULATE_FRACTION:
                pages = (hi - lo) // PAGE_SIZE
                hi = lo + max(1, int(np.ceil(pages * frac))) * PAGE_SIZE
            k = _emit(rows, times, k, pid, OP_MAP, lo, hi - lo, 0, ti, li)
    # -- processes alive at the end of the log exit there, in the order they began
    t_end = np.nan
    for i in range(n):
        if not np.isnan(time[i]) and (np.isnan(t_end) or time[i] > t_end):
            t_end = time[i]
    line_end = line[n - 1] if n else 0
    live = np.empty(N, dtype=np.int64)
    nl = 0
    for p in range(N):
        if alive[p]:
            live[nl] = p
            nl += 1
    live = live[:nl][np.argsort(seq[live[:nl]])]
    if k + nl > rows.shape[0]:
        rows = _grow(rows, k + nl)
        times = _grow(times, k + nl)
    for p in live:
        k = _emit(rows, times, k, ids[p], OP_EXIT, 0, 0, 0, t_end, line_end)
    return OK, rows[:k], times[:k], dropped
