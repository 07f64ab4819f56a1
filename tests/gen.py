"""Generators the tests share (allocator event streams, shared with the benchmarks, are in
tests/streams.py).

* `random_trace`: random valid traces for differential and property tests. Small
  memories and clustered addresses make tables share, allocations fail, buddies merge
  and split, and processes fork and exec: every branch of the semantics is hit.
* `mutated_lines`: hypothesis strategies of recorded logs (strace, perf kmem) with
  lines truncated, cells flipped to nasty values, lines swapped, duplicated, corrupted
  or deleted, for the fuzz tests of the readers.
"""

from __future__ import annotations

import random
from pathlib import Path

from hypothesis import strategies as st

from ptpair.traces.format import MAP_FILE, MAP_THP, VA_LIMIT, Trace

DATA = Path(__file__).resolve().parent / "data"

# bases near table boundaries: a 512 GiB (pml3) edge, a 1 GiB (pml2) edge, text, stack
BASES = [0x400000, 0x7F0000000000 - 0x3000, (1 << 39) - 0x2000, (1 << 30) - 0x1000, 0x7FFFFFFDE000,
         0x200000 * 7, 0x40000000 * 3]
HUGE2M_BASES = [0x200000 * 5, 0x40000000 * 2, 0x7E0000000000]
HUGE1G_BASES = [0x40000000 * 9, 0x7C0000000000]


# 2 MiB-aligned bases of VMA events, so that releases and MADV_DONTNEEDs cover whole PTE tables
VMA_BASES = [0x400000, 0x200000 * 7, 0x40000000 * 3, 0x40000000 * 3 - 0x200000, (1 << 39) - 0x400000]


def random_trace(rnd: random.Random, n_events: int = 60, max_pid: int = 6, huge: bool = True,
                 huge2m: float = 0.05, vmas: float = 0.0, thp: float = 0.0) -> Trace:
    """`vmas`: the share of a process's events that are VMA events (reserve, release,
    dontneed), over ranges that meet the mapped ones; `thp`: the share of 4-KiB maps that
    are faults where transparent huge pages apply (MAP_THP)."""
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
        if rnd.random() < vmas:
            op = rnd.choice(["reserve", "reserve", "release", "dontneed"])
            va = rnd.choice(VMA_BASES + BASES) + rnd.choice([0, 0, rnd.randrange(0, 1024) * 4096])
            length = rnd.choice([4096, 4 * 4096, 2 << 20, 4 << 20, rnd.randrange(1, 2048) * 4096, 1 << 30])
            va = min(va, VA_LIMIT - 4096)
            row(p, op, va, min(length, VA_LIMIT - va))
            continue
        r = rnd.random()
        if r < 0.45:
            size = 4096
            base = rnd.choice(BASES)
            flags = 0
            if huge and rnd.random() < huge2m:
                size, base = 2 << 20, rnd.choice(HUGE2M_BASES)
                flags = MAP_FILE if rnd.random() < 0.3 else 0  # file-backed: no deposited table
            elif huge and rnd.random() < 0.03:
                size, base = 1 << 30, rnd.choice(HUGE1G_BASES)
            va = base + rnd.randrange(0, 64) * 4096 + rnd.choice([0, 0, 123])
            length = rnd.choice([1, 4096, 3 * 4096 + 5, rnd.randrange(1, 40) * 4096,
                                 rnd.randrange(1, 40) * 4096, rnd.randrange(1, 600) * 4096])
            if size > 4096:
                length = rnd.choice([1, size, 2 * size])
            va = min(va, VA_LIMIT - size)
            if size == 4096 and rnd.random() < thp:
                flags = MAP_THP | (MAP_FILE if rnd.random() < 0.2 else 0)
            row(p, "map", va, min(length, VA_LIMIT - va), arg=flags, page_size=size)
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


# --- mutated recorded logs ---------------------------------------------------------
STRACE_LINES = (DATA / "strace" / "tree.log").read_text().splitlines()
KMEM_LINES = (DATA / "kmem" / "small.txt").read_text().splitlines()
LINE_NASTY = ["= -1 ENOMEM (x)", "<unfinished ...>", "<... mmap resumed>", "+++ exited with 0 +++", "0x", "(", ")",
              "PROT_NONE", "CLONE_VM", "pfn=", "order=99", "page=(nil)", "kmem:mm_page_free:", "\x00", "9" * 25]
MUTATIONS = ["truncate", "flip", "swap", "duplicate", "inject", "delete"]


def mutate_rows(draw, rows, kind, sep, nasty, text_size):
    """Apply one mutation of `kind` to a random row of `rows` (in place); a flip replaces
    one `sep`-separated cell by one of `nasty` or by text of at most `text_size` chars."""
    i = draw(st.integers(0, len(rows) - 1))
    if kind == "truncate":
        rows[i] = rows[i][: draw(st.integers(0, len(rows[i])))]
    elif kind == "flip":
        cells = rows[i].split(sep)
        j = draw(st.integers(0, len(cells) - 1))
        cells[j] = draw(st.sampled_from(nasty) | st.text(max_size=text_size))
        rows[i] = sep.join(cells)
    elif kind == "swap":
        j = draw(st.integers(0, len(rows) - 1))
        rows[i], rows[j] = rows[j], rows[i]
    elif kind == "duplicate":
        rows.insert(i, rows[i])
    elif kind == "inject":
        pos = draw(st.integers(0, len(rows[i])))
        rows[i] = rows[i][:pos] + draw(st.binary(min_size=1, max_size=4)).decode("latin-1") + rows[i][pos:]
    else:
        rows.pop(i)


@st.composite
def mutated_lines(draw, lines):
    """A log (bytes) made of `lines`, sampled or whole, with up to five mutations."""
    rows = list(draw(st.lists(st.sampled_from(lines), min_size=0, max_size=30)))
    if draw(st.booleans()):  # keep the log's own order, as strace wrote it
        rows = list(lines)
    for _ in range(draw(st.integers(0, 5))):
        if rows:
            mutate_rows(draw, rows, draw(st.sampled_from(MUTATIONS)), " ", LINE_NASTY, 8)
    return ("\n".join(rows) + ("\n" if draw(st.booleans()) else "")).encode("utf-8", "replace")
