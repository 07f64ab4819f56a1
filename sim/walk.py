"""Real x86-64 page tables in a simulated physical memory, and the kernel's two walks.

`materialise` writes a replay's tables into one array of 64-bit words in which frame n
lives at words [n * 512, (n + 1) * 512) -- an anonymous mapping, so only the frames that
hold tables ever become resident. Entries are real: present (bit 0) and writable (bit 1)
for KPT entries; read, write, execute (bits 0-2) for EPT entries; the next frame in bits
12-51; PS (bit 7) for a 2 MiB or 1 GiB page. Frames are where the replay's allocator put
the tables, so their spread in memory is the trace's.

The two operations Akaros commit ddb9fa78 ("x86: EPT and KPT are contiguous") is
about, compiled:

1. `lookup`: walk the KPT for one virtual address to its leaf entry, then find the
   matching EPT entry -- pair: the KPT entry's address + 4096 (one more load); separate:
   a second walk from the EPT root (four dependent loads).
2. `range_protect`: Akaros's `pml_for_each` style range operation (as mprotect does):
   visit every present leaf over a range and flip its writable bit, in both tables. Pair
   finds each EPT table at KPT + 4096; separate descends the EPT alongside the KPT,
   following the EPT's own entries.

Both check what they find: the EPT entry must map the same frame as the KPT entry.
"""

from __future__ import annotations

import mmap

import numpy as np

from ptpair.sim.pagetable import P_ALIVE
from ptpair.traces._jit import inline_kernel, kernel

WORDS_PER_FRAME = 512  # 64-bit entries per 4-KiB table
PAGE_SHIFT = 12
IDX_BITS = 9
IDX_MASK = WORDS_PER_FRAME - 1
ROOT_LEVEL = 4
PTE_PRESENT = 1
PTE_WRITE = 2
EPT_RWX = 7
PTE_PS = 0x80
FRAME_MASK = ((1 << 52) - 1) & ~((1 << PAGE_SHIFT) - 1)  # bits 12-51


class Memory:
    """Simulated physical memory of `frames` 4-KiB frames, lazily resident."""

    def __init__(self, frames: int):
        self._map = mmap.mmap(-1, frames * 4096, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self.words = np.frombuffer(self._map, dtype=np.uint64)
        self.frames = frames

    def close(self):
        self.words = None
        self._map.close()


@kernel
def _fill(words, ent, t_kpt, t_ept, t_level, n_slots):
    """Write every live table's entries; returns the number of entries written."""
    n = 0
    for s in range(n_slots):
        kf = t_kpt[s]
        if kf < 0:
            continue
        ef = t_ept[s]
        leaf_table = t_level[s] == 1
        for i in range(WORDS_PER_FRAME):
            e = ent[s, i]
            if e == 0:
                continue
            if e < 0:  # a huge page: its frame (or gigantic-page id), PS set
                frame = np.int64(-e - 1)
                k = (frame << PAGE_SHIFT) | PTE_PRESENT | PTE_WRITE | PTE_PS
                x = (frame << PAGE_SHIFT) | EPT_RWX | PTE_PS
            elif leaf_table:
                frame = np.int64(e - 1)
                k = (frame << PAGE_SHIFT) | PTE_PRESENT | PTE_WRITE
                x = (frame << PAGE_SHIFT) | EPT_RWX
            else:
                child = e - 1
                k = (np.int64(t_kpt[child]) << PAGE_SHIFT) | PTE_PRESENT | PTE_WRITE
                x = (np.int64(t_ept[child]) << PAGE_SHIFT) | EPT_RWX if t_ept[child] >= 0 else np.int64(0)
            words[np.int64(kf) * WORDS_PER_FRAME + i] = np.uint64(k)
            if ef >= 0 and x != 0:
                words[np.int64(ef) * WORDS_PER_FRAME + i] = np.uint64(x)
            n += 1
    return n


@kernel
def _leaves(ent, t_level, root, out_vpn, start, st):
    """Virtual page numbers of the 4-KiB leaves under root slot `root` (depth first,
    ascending), written from out_vpn[start]; returns the new end. `st`: int64[3, 8]
    scratch (kernels do not allocate)."""
    stack_s = st[0]
    stack_i = st[1]
    stack_base = st[2]
    depth = 0
    stack_s[0] = root
    stack_i[0] = 0
    stack_base[0] = 0
    n = start
    while depth >= 0:
        s = stack_s[depth]
        i = stack_i[depth]
        if i == WORDS_PER_FRAME:
            depth -= 1
            continue
        stack_i[depth] = i + 1
        e = ent[s, i]
        if e == 0:
            continue
        level = t_level[s]
        vpn = stack_base[depth] | (np.int64(i) << (IDX_BITS * (level - 1)))
        if level == 1:
            if e > 0 and n < len(out_vpn):
                out_vpn[n] = vpn
                n += 1
        elif e > 0:
            depth += 1
            stack_s[depth] = e - 1
            stack_i[depth] = 0
            stack_base[depth] = vpn
    return n


def materialise(tables, frames: int):
    """(Memory, {process index: (KPT root frame, EPT root frame or -1)}) for a replay's
    Tables (sim.pagetable)."""
    mem = Memory(frames)
    _fill(mem.words, tables.ent, tables.t_kpt, tables.t_ept, tables.t_level, len(tables.t_kpt))
    roots = {}
    for p, r in enumerate(tables.procs.root):
        if r >= 0 and tables.procs.state[p] == P_ALIVE:
            roots[p] = (int(tables.t_kpt[r]), int(tables.t_ept[r]))
    return mem, roots


def leaf_addresses(tables, process: int, limit: int = 1 << 22) -> np.ndarray:
    """Virtual addresses (bytes) of the process's mapped 4-KiB pages, ascending."""
    out = np.empty(limit, np.int64)
    n = _leaves(tables.ent, tables.t_level, int(tables.procs.root[process]), out, 0, np.zeros((3, 8), np.int64))
    return out[:n] << PAGE_SHIFT


@inline_kernel
def _leaf_entry(words, root, v):
    """Word index of the entry that maps address v, walking down from table frame `root`
    (four dependent loads, fewer for a huge page)."""
    f = np.int64(root)
    a = np.int64(0)
    for level in range(ROOT_LEVEL, 0, -1):
        a = f * WORDS_PER_FRAME + ((v >> (PAGE_SHIFT + IDX_BITS * (level - 1))) & IDX_MASK)
        e = np.int64(words[a])
        if level == 1 or (e & PTE_PS) != 0:
            break
        f = (e & FRAME_MASK) >> PAGE_SHIFT
    return a


@kernel
def lookup(words, kroot, eroot, va, pair, out_k, out_e):
    """For each address: its KPT leaf entry and the matching EPT entry (pair: at the
    KPT entry + 4096; else a walk of the EPT from its root). Returns how many EPT entries
    did not map the KPT entry's frame (0 when the tables are right)."""
    bad = 0
    for j in range(len(va)):
        a = _leaf_entry(words, kroot[j], va[j])
        k = np.int64(words[a])
        if pair:
            x = np.int64(words[a + WORDS_PER_FRAME])  # the EPT twin: one frame (4096 bytes) up
        else:
            x = np.int64(words[_leaf_entry(words, eroot[j], va[j])])
        out_k[j] = k
        out_e[j] = x
        if (k & FRAME_MASK) != (x & FRAME_MASK) or (k & PTE_PRESENT) == 0 or (x & EPT_RWX) == 0:
            bad += 1
    return bad


@kernel
def range_protect(words, kroot, eroot, lo, hi, pair, st):
    """Flip the writable bit of every present leaf in [lo, hi) (bytes), in the KPT and
    the EPT, walking both trees as Akaros's pml_for_each does. Returns (leaves visited,
    EPT entries that did not match their KPT entry). `st`: int64[4, 8] scratch.
    Pair: pass eroot = kroot (each EPT table is its KPT table's next frame)."""
    sk = st[0]  # KPT table frame per depth
    se = st[1]  # EPT table frame per depth (pair: the KPT frame)
    si = st[2]  # next index per depth
    sb = st[3]  # base address per depth
    depth = 0
    sk[0] = kroot
    se[0] = eroot
    sb[0] = 0
    si[0] = (lo >> (PAGE_SHIFT + IDX_BITS * (ROOT_LEVEL - 1))) & IDX_MASK
    visited = 0
    bad = 0
    while depth >= 0:
        level = ROOT_LEVEL - depth
        shift = PAGE_SHIFT + IDX_BITS * (level - 1)
        i = si[depth]
        base = sb[depth] | (i << shift)
        if i == WORDS_PER_FRAME or base >= hi:
            depth -= 1
            continue
        si[depth] = i + 1
        a = sk[depth] * WORDS_PER_FRAME + i
        k = np.int64(words[a])
        if (k & PTE_PRESENT) == 0 or base + (np.int64(1) << shift) <= lo:
            continue
        eframe = se[depth] + 1 if pair else se[depth]  # pair: the EPT table is the next frame
        b = eframe * WORDS_PER_FRAME + i
        if level == 1 or (k & PTE_PS) != 0:
            words[a] = np.uint64(k ^ PTE_WRITE)
            x = np.int64(words[b])
            words[b] = np.uint64(x ^ PTE_WRITE)
            if (x & FRAME_MASK) != (k & FRAME_MASK):
                bad += 1
            visited += 1
            continue
        depth += 1
        sk[depth] = (k & FRAME_MASK) >> PAGE_SHIFT
        # pair: the EPT twin of a KPT table is found by address; separate: by the EPT's entry
        se[depth] = sk[depth] if pair else (np.int64(words[b]) & FRAME_MASK) >> PAGE_SHIFT
        sb[depth] = base
        child_shift = PAGE_SHIFT + IDX_BITS * (level - 2)
        si[depth] = ((lo >> child_shift) & IDX_MASK) if base < lo else 0
    return visited, bad
