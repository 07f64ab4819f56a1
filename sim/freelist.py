"""Doubly linked free lists threaded through per-frame arrays: the one list mechanism the
LIFO buddy policy, Akaros's single-frame list and the per-migratetype Linux lists share.

A list is named by its index `li` into `head` and `tail`; `nxt[f]`/`prv[f]` link the block
(or frame) starting at frame f, from the head towards the tail. Allocators take from the
head. `list_push` puts f at the head (the most recently added comes out first, Linux's
list_add); `list_push_tail` at the tail (it comes out last, list_add_tail), which is where
Linux puts blocks it wants left alone for a while (boot memory, blocks whose buddy is
likely to be freed soon, blocks moved between migratetypes).
"""

from ptpair.traces._jit import inline_kernel

NIL = -1


@inline_kernel
def _push_end(near, far, away, toward, li, f):
    """Put f at the `near` end of list li (`far`: the other end; `away[f]` links away from
    the near end, `toward[f]` towards it). The same steps serve both ends, the head and
    tail arrays and the two link arrays swapping places."""
    h = near[li]
    away[f] = h
    toward[f] = NIL
    if h != NIL:
        toward[h] = f
    else:
        far[li] = f
    near[li] = f


@inline_kernel
def list_push(b, li, f):
    _push_end(b.head, b.tail, b.nxt, b.prv, li, f)


@inline_kernel
def list_push_tail(b, li, f):
    _push_end(b.tail, b.head, b.prv, b.nxt, li, f)


@inline_kernel
def list_unlink(b, li, f):
    n = b.nxt[f]
    p = b.prv[f]
    if p != NIL:
        b.nxt[p] = n
    else:
        b.head[li] = n
    if n != NIL:
        b.prv[n] = p
    else:
        b.tail[li] = p
