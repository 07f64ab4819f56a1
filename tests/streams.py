"""Synthetic allocator event streams: for the speed and memory benchmarks (benchmarks/
import them from here; tests never import benchmarks, they run them as commands) and for
a long trace to interrupt (tests/test_interrupt.py). Needs numpy (and numba for the pressure stream's
loop).
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


# The allocator-pressure stream of issue #21: orders 0-4 and 9 in these shares, each
# kfree of a live handle picked at random, and live memory climbing to about 85 % of the
# frames and hovering there (where order-9 requests start to fail).
PRESSURE_ORDERS = np.array([0, 1, 2, 3, 4, 9], np.int8)
PRESSURE_SHARES = np.array([0.80, 0.10, 0.04, 0.03, 0.01, 0.02])
PRESSURE_LIVE = 0.85
PRESSURE_FREE_SHARE = 0.45  # below the live target, a step frees with this chance


def pressure_allocator_events(n_events: int, n_frames: int, seed: int = 1):
    """Arrays (op int8, arg int64 handle, order int8) of n_events kalloc/kfree events over
    `n_frames` frames: live pages (as the stream counts them, failed kallocs included) climb
    to PRESSURE_LIVE of the frames and hover there; a kfree names a live handle picked
    uniformly at random. Order is 0 on kfree rows. Deterministic for a seed."""
    from numba import njit

    rng = np.random.default_rng(seed)
    orders = rng.choice(PRESSURE_ORDERS, size=n_events, p=PRESSURE_SHARES)
    coins = rng.random(n_events)
    picks = rng.random(n_events)
    op = np.empty(n_events, np.int8)
    arg = np.empty(n_events, np.int64)
    order = np.zeros(n_events, np.int8)
    _pressure_loop(njit)(orders, coins, picks, int(PRESSURE_LIVE * n_frames), PRESSURE_FREE_SHARE,
                         OP_KALLOC, OP_KFREE, op, arg, order)
    return op, arg, order


def _pressure_loop(njit):
    # compiled here, not cached: a few 100 ms, paid by benchmarks only
    @njit
    def loop(orders, coins, picks, target, free_share, kalloc, kfree, op, arg, order):
        n = len(orders)
        live = np.empty(n, np.int64)      # live handles, in no order
        size = np.empty(n, np.int64)      # their pages
        n_live = 0
        pages = 0
        for i in range(n):
            if n_live > 0 and (pages >= target or coins[i] < free_share):
                j = int(picks[i] * n_live)
                op[i] = kfree
                arg[i] = live[j]
                pages -= size[j]
                n_live -= 1
                live[j] = live[n_live]
                size[j] = size[n_live]
            else:
                op[i] = kalloc
                arg[i] = i  # a new handle: the event's index
                order[i] = orders[i]
                live[n_live] = i
                size[n_live] = 1 << orders[i]
                n_live += 1
                pages += 1 << orders[i]
    return loop
