"""Seeded synthetic workloads with Linux-like address-space layouts.

Each process gets the layout of a real x86-64 Linux process (see `Layout`): a PIE text
segment near 0x555555554000 followed by its data and a brk heap growing up, an mmap area
growing down from below the stack (0x7f..), and a stack at the top of the user half.
Processes spawn, map, unmap, grow and shrink their heaps, fork (and often exec), become
VMMs, and exit when their lifetime runs out; the kernel allocates and frees blocks of
several orders. Workload presets set the mix; every parameter can be overridden.

The same (workload, parameters, seed, events) always gives the same trace.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

import numpy as np

from ptpair import registry
from ptpair.traces.format import OP_CODE, PAGE_SIZE, Trace, VA_LIMIT

HUGE_2M = 2 << 20
TEXT_BASE = 0x555555554000  # where Linux places a PIE executable (ELF_ET_DYN_BASE)
MMAP_TOP = 0x7F0000000000  # top of the mmap area, below the stack gap
STACK_TOP = 0x7FFFFFFFF000
STACK_PAGES = 33  # 132 KiB: a typical initial stack VMA


@dataclass(frozen=True)
class Params:
    """Knobs of a synthetic workload. Sizes in 4-KiB pages; probabilities in [0, 1]."""

    processes: int = 24  # processes alive at once (target)
    vmm_fraction: float = 0.2  # share of new images (spawn or exec) that become VMMs
    map_pages_median: float = 16.0  # mmap size: lognormal with this median ...
    map_pages_sigma: float = 1.5  # ... and this log-space standard deviation
    map_pages_max: int = 1 << 16  # cap on one mmap (256 MiB)
    text_pages: int = 400  # text + data of an executable (median)
    guest_pages: int = 8192  # memory a VMM maps for its guest (32 MiB, median)
    huge_fraction: float = 0.0  # share of mmaps backed by 2 MiB pages
    lifetime: float = 400.0  # mean events a process lives (exponential)
    sparse: float = 0.0  # share of mmaps placed at random addresses anywhere
    weights: dict = field(default_factory=lambda: dict(
        mmap=0.40, munmap=0.25, brk=0.10, fork=0.05, exec=0.02, vmm=0.0, kalloc=0.10, kfree=0.08))
    fork_then_exec: float = 0.6  # share of forks whose child execs soon after
    kalloc_orders: tuple = (0, 0, 0, 0, 1, 1, 2, 3)  # drawn uniformly
    kalloc_live_max: int = 2000  # kernel allocations alive at once (at most)


WORKLOADS: dict[str, Params] = {
    "mixed": Params(),
    "vmm-heavy": Params(vmm_fraction=0.8, guest_pages=16384, processes=12, huge_fraction=0.05),
    "sparse": Params(sparse=0.7, map_pages_median=2.0, map_pages_sigma=0.8),
    "fork-heavy": Params(
        lifetime=120.0, fork_then_exec=0.8,
        weights=dict(mmap=0.30, munmap=0.15, brk=0.05, fork=0.25, exec=0.10, vmm=0.0, kalloc=0.08, kfree=0.07)),
    "kernel-churn": Params(
        processes=8, kalloc_orders=(0, 0, 1, 1, 2, 2, 3, 4, 5, 9), kalloc_live_max=6000,
        weights=dict(mmap=0.12, munmap=0.08, brk=0.02, fork=0.01, exec=0.0, vmm=0.0, kalloc=0.42, kfree=0.35)),
}
# the names are the registry's (ptpair/registry.py); the parameters are declared here
assert set(WORKLOADS) == set(registry.WORKLOADS), "registry.WORKLOADS and synth.WORKLOADS disagree"


@dataclass
class _Proc:
    pid: int
    brk_base: int
    brk: int
    mmap_next: int
    deadline: int
    maps: list  # (va, length, page_size) of live mmaps
    vmm: bool = False


class _Builder:
    def __init__(self):
        self.cols = {k: [] for k in ("pid", "op", "va", "length", "arg", "order", "page_size", "comm")}

    def add(self, pid, op, va=0, length=0, arg=0, order=0, page_size=PAGE_SIZE, comm=None):
        c = self.cols
        c["pid"].append(pid)
        c["op"].append(OP_CODE[op])
        c["va"].append(va)
        c["length"].append(length)
        c["arg"].append(arg)
        c["order"].append(order)
        c["page_size"].append(page_size)
        c["comm"].append(comm)

    def __len__(self):
        return len(self.cols["op"])


def workload_params(name: str, **overrides) -> Params:
    """The preset `name` with `overrides` (field=value) applied."""
    if name not in WORKLOADS:
        raise ValueError(f"unknown workload {name!r}; choose from {', '.join(WORKLOADS)}")
    known = {f.name for f in fields(Params)}
    bad = set(overrides) - known
    if bad:
        raise ValueError(f"unknown workload parameter(s) {', '.join(sorted(bad))}; known: {', '.join(sorted(known))}")
    p = replace(WORKLOADS[name], **overrides)
    for field_name, ok, what in (("processes", p.processes >= 1, "at least 1"),
                                 ("lifetime", p.lifetime > 0, "positive"),
                                 ("vmm_fraction", 0 <= p.vmm_fraction <= 1, "in [0, 1]"),
                                 ("huge_fraction", 0 <= p.huge_fraction <= 1, "in [0, 1]"),
                                 ("sparse", 0 <= p.sparse <= 1, "in [0, 1]"),
                                 ("map_pages_median", p.map_pages_median > 0, "positive")):
        if not ok:
            raise ValueError(f"workload parameter {field_name} = {getattr(p, field_name)}: must be {what}")
    return p


def synth(workload: str = "mixed", seed: int = 0, events: int = 10_000, **overrides) -> Trace:
    """A synthetic trace of exactly `events` events."""
    p = workload_params(workload, **overrides)
    rng = np.random.default_rng(seed)
    out = _Builder()
    procs: dict[int, _Proc] = {}
    next_pid = 100
    handles: list[int] = []
    next_handle = 0
    wnames = list(p.weights)
    wvals = np.array([p.weights[k] for k in wnames], float)
    wvals /= wvals.sum()
    pending_exec: list[int] = []

    def pages(median, sigma, cap):
        return int(min(cap, max(1, round(rng.lognormal(np.log(median), sigma)))))

    def new_layout(pid, now):
        text = pages(p.text_pages, 0.7, 1 << 15)
        # ASLR-like jitter, page granular
        text_base = TEXT_BASE + int(rng.integers(0, 1 << 20)) * PAGE_SIZE
        brk_base = text_base + (text + int(rng.integers(1, 64))) * PAGE_SIZE
        mmap_top = MMAP_TOP - int(rng.integers(0, 1 << 20)) * PAGE_SIZE
        life = now + 1 + int(rng.exponential(p.lifetime))
        pr = _Proc(pid, brk_base, brk_base, mmap_top, life, [])
        return pr, text_base, text

    def start_image(pr, text_base, text, comm):
        out.add(pr.pid, "map", text_base, text * PAGE_SIZE, comm=comm)
        out.add(pr.pid, "map", STACK_TOP - STACK_PAGES * PAGE_SIZE, STACK_PAGES * PAGE_SIZE, comm=comm)
        lib = pages(512, 0.5, 1 << 14)  # shared libraries, mapped from the top of the mmap area
        pr.mmap_next -= lib * PAGE_SIZE
        out.add(pr.pid, "map", pr.mmap_next, lib * PAGE_SIZE, comm=comm)

    def spawn(now):
        nonlocal next_pid
        pid = next_pid
        next_pid += 1
        pr, text_base, text = new_layout(pid, now)
        comm = f"proc{pid}"
        out.add(pid, "spawn", comm=comm)
        start_image(pr, text_base, text, comm)
        procs[pid] = pr
        if rng.random() < p.vmm_fraction:
            become_vmm(pr)

    def become_vmm(pr):
        out.add(pr.pid, "vmm")
        pr.vmm = True
        g = pages(p.guest_pages, 0.5, 1 << 20)
        do_mmap(pr, g, huge=rng.random() < max(p.huge_fraction, 0.5 if p.huge_fraction else 0))

    def do_mmap(pr, n, huge=False, at=None):
        ps = HUGE_2M if huge else PAGE_SIZE
        length = n * PAGE_SIZE
        if huge:
            length = max(HUGE_2M, (length + HUGE_2M - 1) // HUGE_2M * HUGE_2M)
        if at is None:
            va = (pr.mmap_next - length) // ps * ps
            if va <= pr.brk + (1 << 30):
                return  # the mmap area met the heap: skip this mapping
            pr.mmap_next = va
        else:
            va = at
        out.add(pr.pid, "map", va, length, page_size=ps)
        pr.maps.append((va, length, ps))

    now = 0
    while len(out) < events:
        now += 1
        # exits whose time has come, and execs that forks promised
        if pending_exec and rng.random() < 0.5:
            pid = pending_exec.pop(0)
            if pid in procs:
                pr, text_base, text = new_layout(pid, now)
                out.add(pid, "exec", comm=f"proc{pid}")
                start_image(pr, text_base, text, f"proc{pid}")
                procs[pid] = pr
                if rng.random() < p.vmm_fraction:  # a new image may be a VMM
                    become_vmm(pr)
                continue
        expired = [pid for pid, pr in procs.items() if pr.deadline <= now]
        if expired:
            pid = expired[0]
            out.add(pid, "exit")
            del procs[pid]
            continue
        if len(procs) < p.processes and (not procs or rng.random() < 0.3):
            spawn(now)
            continue
        action = wnames[int(rng.choice(len(wnames), p=wvals))]
        pid = list(procs)[int(rng.integers(len(procs)))]
        pr = procs[pid]
        if action == "mmap":
            n = pages(p.map_pages_median, p.map_pages_sigma, p.map_pages_max)
            if rng.random() < p.sparse:
                span = VA_LIMIT // PAGE_SIZE - n - 1
                at = int(rng.integers(1 << 20, span)) * PAGE_SIZE
                out.add(pid, "map", at, n * PAGE_SIZE)
                pr.maps.append((at, n * PAGE_SIZE, PAGE_SIZE))
            else:
                do_mmap(pr, n, huge=rng.random() < p.huge_fraction)
        elif action == "munmap" and pr.maps:
            k = int(rng.integers(len(pr.maps)))
            va, length, ps = pr.maps[k]
            if ps == PAGE_SIZE and length > 4 * PAGE_SIZE and rng.random() < 0.3:
                # partial unmap from the front, as free() of a large chunk would do
                cut = int(rng.integers(1, length // PAGE_SIZE)) * PAGE_SIZE
                out.add(pid, "unmap", va, cut)
                pr.maps[k] = (va + cut, length - cut, ps)
            else:
                out.add(pid, "unmap", va, length, page_size=ps)
                pr.maps.pop(k)
        elif action == "brk":
            if pr.brk > pr.brk_base and rng.random() < 0.3:
                shrink = min(pr.brk - pr.brk_base, pages(8, 1.0, 1 << 12) * PAGE_SIZE)
                out.add(pid, "unmap", pr.brk - shrink, shrink)
                pr.brk -= shrink
            else:
                grow = pages(8, 1.0, 1 << 12) * PAGE_SIZE
                out.add(pid, "map", pr.brk, grow)
                pr.brk += grow
        elif action == "fork" and len(procs) < 4 * p.processes:
            child = next_pid
            next_pid += 1
            out.add(child, "fork", arg=pid, comm=f"proc{pid}")
            cp = _Proc(child, pr.brk_base, pr.brk, pr.mmap_next, now + 1 + int(rng.exponential(p.lifetime)),
                       list(pr.maps))
            procs[child] = cp
            if rng.random() < p.fork_then_exec:
                pending_exec.append(child)
        elif action == "exec":
            pending_exec.append(pid)
        elif action == "vmm" and not pr.vmm:
            become_vmm(pr)
        elif action == "kalloc" and len(handles) < p.kalloc_live_max:
            order = int(p.kalloc_orders[int(rng.integers(len(p.kalloc_orders)))])
            out.add(0, "kalloc", arg=next_handle, order=order)
            handles.append(next_handle)
            next_handle += 1
        elif action == "kfree" and handles:
            k = int(rng.integers(len(handles)))
            handles[k], handles[-1] = handles[-1], handles[k]
            out.add(0, "kfree", arg=handles.pop())
    cols = {k: v[:events] for k, v in out.cols.items()}
    trace = Trace.from_columns(source=f"synth:{workload}:seed={seed}", **{k: v for k, v in cols.items() if k != "comm"})
    trace.comm = np.asarray(cols["comm"], dtype=object)
    return trace
