"""Synthetic allocator event streams: for the speed and memory benchmarks (benchmarks/
import them from here; tests never import benchmarks, they run them as commands) and for
a long trace to interrupt (tests/test_interrupt.py). Needs numpy only.
"""

from __future__ import annotations

import numpy as np

from ptpair.traces.format import OP_KALLOC, OP_KFREE, Trace


def allocator_events(n_events: int, seed: int = 1, mean_life: float = 2000.0, handle_base: int = 0):
    """Arrays (op, arg, order) of n_events kalloc/kfree events, every kfree after its kalloc.

    Handle j is allocated at step j and freed at step j + L_j, L_j exponential with mean
    `mean_life` kalloc steps, so about `mean_life` allocations are live at once. Handles
    that would be freed after the end are dropped (their kalloc too)."""
    rng = np.random.default_rng(seed)
    n_alloc = n_events // 2
    life = 1.0 + rng.exponential(mean_life, n_alloc)
    t_alloc = np.arange(n_alloc, dtype=np.float64)
    t_free = t_alloc + life
    times = np.concatenate([t_alloc, t_free])
    kind = np.concatenate([np.full(n_alloc, OP_KALLOC, np.int8), np.full(n_alloc, OP_KFREE, np.int8)])
    handle = np.concatenate([np.arange(n_alloc), np.arange(n_alloc)]) + handle_base
    order = np.concatenate([rng.choice(np.array([0, 0, 0, 0, 1, 1, 2, 3], np.int8), n_alloc),
                            np.zeros(n_alloc, np.int8)])
    idx = np.argsort(times, kind="stable")[:n_events]
    op, arg, order = kind[idx], handle[idx], order[idx]
    # drop the kallocs whose kfree fell beyond the end: they would still be valid, but a
    # stream without them keeps the live set steady
    return op, arg.astype(np.int64), order


def allocator_trace(n_events: int, seed: int = 1) -> Trace:
    op, arg, order = allocator_events(n_events, seed)
    n = len(op)
    return Trace(pid=np.zeros(n, np.int64), op=op, va=np.zeros(n, np.int64), length=np.zeros(n, np.int64),
                 arg=arg, order=order, page_size=np.full(n, 4096, np.int64), source="<allocator>")


def half_full_allocator_trace(n_events: int, memory_pages: int, seed: int = 1) -> Trace:
    """kalloc/kfree only (orders 0..3, mostly 0); live allocations hover around half of
    `memory_pages`, freed in random order. A Python loop: for traces of a few 100,000
    events (bench_replay), where the reference machine must replay them too."""
    rng = np.random.default_rng(seed)
    orders = rng.choice([0, 0, 0, 0, 1, 1, 2, 3], size=n_events)
    coins = rng.random(n_events)
    picks = rng.random(n_events)
    op, arg, order = [], [], []
    live: list[int] = []
    live_pages = 0
    sizes = {}
    next_h = 0
    for i in range(n_events):
        if live and (live_pages > memory_pages // 2 or coins[i] < 0.45):
            k = int(picks[i] * len(live))
            live[k], live[-1] = live[-1], live[k]
            h = live.pop()
            live_pages -= sizes.pop(h)
            op.append("kfree"), arg.append(h), order.append(0)
        else:
            o = int(orders[i])
            op.append("kalloc"), arg.append(next_h), order.append(o)
            live.append(next_h)
            sizes[next_h] = 1 << o
            live_pages += 1 << o
            next_h += 1
    return Trace.from_columns(source="<allocator>", pid=[0] * n_events, op=op, arg=arg, order=order)
