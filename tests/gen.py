"""Random valid traces for differential and property tests.

Small memories and clustered addresses make tables share, allocations fail, buddies
merge and split, and processes fork and exec: every branch of the semantics is hit.
"""

from __future__ import annotations

import random

from ptpair.traces.format import VA_LIMIT, Trace

# bases near table boundaries: a 512 GiB (pml3) edge, a 1 GiB (pml2) edge, text, stack
BASES = [0x400000, 0x7F0000000000 - 0x3000, (1 << 39) - 0x2000, (1 << 30) - 0x1000, 0x7FFFFFFDE000,
         0x200000 * 7, 0x40000000 * 3]
HUGE2M_BASES = [0x200000 * 5, 0x40000000 * 2, 0x7E0000000000]
HUGE1G_BASES = [0x40000000 * 9, 0x7C0000000000]


def random_trace(rnd: random.Random, n_events: int = 60, max_pid: int = 6, huge: bool = True) -> Trace:
    rows = []
    alive: set[int] = set()
    handles: set[int] = set()
    next_handle = 0

    def row(pid, op, va=0, length=0, arg=0, order=0, page_size=4096, migratetype=0):
        rows.append((pid, op, va, length, arg, order, page_size, migratetype))

    for _ in range(n_events):
        r = rnd.random()
        dead = [p for p in range(1, max_pid + 1) if p not in alive]
        if not alive or (r < 0.08 and dead):
            p = rnd.choice(dead)
            row(p, "spawn")
            alive.add(p)
            continue
        p = rnd.choice(sorted(alive))
        r = rnd.random()
        if r < 0.45:
            size = 4096
            base = rnd.choice(BASES)
            if huge and rnd.random() < 0.05:
                size, base = 2 << 20, rnd.choice(HUGE2M_BASES)
            elif huge and rnd.random() < 0.03:
                size, base = 1 << 30, rnd.choice(HUGE1G_BASES)
            va = base + rnd.randrange(0, 64) * 4096 + rnd.choice([0, 0, 123])
            length = rnd.choice([1, 4096, 3 * 4096 + 5, rnd.randrange(1, 40) * 4096,
                                 rnd.randrange(1, 40) * 4096, rnd.randrange(1, 600) * 4096])
            if size > 4096:
                length = rnd.choice([1, size, 2 * size])
            va = min(va, VA_LIMIT - size)
            row(p, "map", va, min(length, VA_LIMIT - va), page_size=size)
        elif r < 0.62:
            va = rnd.choice(BASES + HUGE2M_BASES) + rnd.randrange(0, 64) * 4096
            length = rnd.choice([4096, 10 * 4096, rnd.randrange(1, 40) * 4096 + 7, 1 << 30])
            ps = 2 << 20 if rnd.random() < 0.1 else 4096
            va = min(max(va - rnd.randrange(0, 3) * 4096, 0), VA_LIMIT - 4096)
            row(p, "unmap", va, min(length, VA_LIMIT - va), page_size=ps)
        elif r < 0.68:
            row(p, "vmm")
        elif r < 0.74 and dead:
            c = rnd.choice(dead)
            row(c, "fork", arg=p)
            alive.add(c)
        elif r < 0.78:
            row(p, "exec")
        elif r < 0.84:
            row(p, "exit")
            alive.discard(p)
        elif r < 0.93 or not handles:
            row(0, "kalloc", arg=next_handle, order=rnd.choice([0, 0, 1, 2, 3, 4, 5, 9, 10]),
                migratetype=rnd.choice([0, 0, 1, 1, 2]))
            handles.add(next_handle)
            next_handle += 1
        else:
            h = rnd.choice(sorted(handles))
            row(0, "kfree", arg=h)
            handles.discard(h)
    cols = list(zip(*rows))
    names = ("pid", "op", "va", "length", "arg", "order", "page_size", "migratetype")
    return Trace.from_columns(source="<generated>", **{n: list(c) for n, c in zip(names, cols)})
