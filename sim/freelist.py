"""Doubly linked free lists threaded through per-frame arrays: the one list mechanism the
LIFO buddy policy, Akaros's single-frame list and the per-migratetype Linux lists share.

A list is named by its index `li` into `head`; `nxt[f]`/`prv[f]` link the block (or frame)
starting at frame f. Pushing puts f at the head: the most recently added comes out first.
"""

from ptpair.sim._jit import inline_kernel

NIL = -1


@inline_kernel
def list_push(b, li, f):
    h = b.head[li]
    b.nxt[f] = h
    b.prv[f] = NIL
    if h != NIL:
        b.prv[h] = f
    b.head[li] = f


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
