"""Blocks of a shared pool in power-of-two size classes, for per-owner runs of ranges.

Two parts of ptpair keep, per process, a sorted run of address ranges in one block of a
shared pool: the simulator's VMAs (sim/vmas.py) and the strace model's address spaces
(traces/strace/compiled_spaces.py). A block holds `min_block << c` ranges for its class
c; a freed block goes on its class's free list, linked through the pool's first array
(the `link` element at a free block's offset names the next free block of the class, -1
ends the list), and is reused before the pool's top is carved further. So the pool stays
the size of the live runs, however many owners come and go.
"""

from ptpair.traces._jit import inline_kernel


@inline_kernel
def size_class(min_block, size):
    """The class of the smallest block of at least `size` ranges: min_block << class."""
    c = 0
    while (min_block << c) < size:
        c += 1
    return c


@inline_kernel
def take_freed(link, free_head, c):
    """A freed block of class c, unlinked from its list; -1 if there is none."""
    at = free_head[c]
    if at >= 0:
        free_head[c] = link[at]
    return at


@inline_kernel
def give_back(link, free_head, min_block, at, cap):
    """Put the block at offset `at` (of `cap` ranges) on its class's free list."""
    c = size_class(min_block, cap)
    link[at] = free_head[c]
    free_head[c] = at
