"""A seeded synthetic ager: the free memory of a machine that has run for a long time.

`age(n_frames, spec)` returns the state (FREE or USED, one per 4-KiB frame) of a memory
of which a fraction `free` of the frames is free and the rest is background (used, never
freed), with the free frames fragmented so that Linux's unusable free space index at
order 9 (2 MiB) is near `unusable`. Text form: `synthetic:free=F,unusable=U,seed=S`.

The index. The free frames are cut into maximal aligned buddy blocks of orders 0..10, as
a buddy allocator lists them (`freemap.carve_free`: runs of free frames carved from low
address, each block the largest aligned power of two that fits). With b_k blocks of order
k, Linux's `fill_contig_page_info()` (mm/vmstat.c) gives free_pages = sum b_k 2^k and
suitable_j = sum_{k >= j} b_k 2^(k - j), and `unusable_free_index()` gives

    unusable_j = (free_pages - suitable_j * 2^j) / free_pages,

the share of free memory that cannot serve an order-j request (Gorman and Whitcroft, "The
what, the why and the where to of anti-fragmentation", OLS 2006). Linux counts in
thousandths (debugfs extfrag/unusable_index) and returns 1000 when nothing is free ("no
free memory is interpreted as all free memory is unusable"); here it is a fraction in
[0, 1], exact, and 1.0 when nothing is free (as analysis/frag.py).

The construction (units: frames). Memory is cut into 2 MiB pageblocks of 512 frames; a
trailing partial pageblock (n_frames not a multiple of 512) can never hold an order-9
block. An aligned block of order >= 9 is one or two whole pageblocks, so suitable_9 is
exactly the number W of wholly free pageblocks, and unusable_9 = 1 - 512 W / free_pages:
1. free_pages = round(free * n_frames). W = round((1 - unusable) free_pages / 512),
   clamped to what fits: at most free_pages // 512 and the number of whole pageblocks;
   at least enough that the other free frames fit in the other pageblocks while each
   keeps one used frame. Where the target cannot be met the nearest W is taken: the
   caller reports the index reached (`unusable_index`). The W pageblocks are drawn at
   random.
2. Every other whole pageblock gets one used "keeper" frame at a random offset, so it
   never becomes a free 2 MiB block.
3. The remaining frames of those pageblocks and the trailing one, in address order, are
   laid out as alternating used and free runs. The free runs' lengths are a uniformly
   random composition of the free frames into K = free / RUN_MEAN_FRAMES parts (the parts
   of such a composition are geometric with mean RUN_MEAN_FRAMES as the memory grows);
   the used runs between them are a composition of the used frames, so their mean
   follows the density. With too few used frames to separate K runs, fewer and longer
   free runs are laid. Exact counts, no rejection or repair.
RUN_MEAN_FRAMES = 8 carves into blocks of orders 0..4, about 1 : 0.8 : 0.55 : 0.25 : 0.06.
Order 0 is the most common whatever the mean, since runs start and end at random
alignments; a real aged machine's buddyinfo (2155 6869 10380 8406 5032 2391 1314 622 287
70 397) peaks at order 2 and reaches order 8. Only the order-9 index is matched.

Deterministic: the same (n_frames, spec) gives the same bytes on every platform, drawn
only from `np.random.default_rng(seed)` (for one numpy release; NEP 19 lets Generator
streams change between releases). Vectorised: no Python loop per frame or pageblock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ptpair.traces.format import MAX_ORDER
from ptpair.traces.freemap import FREE, HOLE, USED, carve_free  # noqa: F401  (HOLE: never produced here)

PREFIX = "synthetic:"
KEYS = ("free", "unusable", "seed")
PAGEBLOCK_ORDER = 9  # a 2 MiB pageblock: the order whose index the ager targets
PAGEBLOCK_FRAMES = 1 << PAGEBLOCK_ORDER
RUN_MEAN_FRAMES = 8  # mean length of a free run outside the wholly free pageblocks
_SEED = re.compile(r"[0-9]+")


def _err(what: str) -> ValueError:
    return ValueError(f"synthetic ager: {what} (write {PREFIX}free=F,unusable=U,seed=S)")


def _fraction(x) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


@dataclass(frozen=True)
class AgerSpec:
    """free: fraction of frames free, in (0, 1); unusable: target unusable free space index
    at order 9, a fraction in [0, 1]; seed: integer >= 0."""

    free: float
    unusable: float
    seed: int

    def __post_init__(self):
        if not (_fraction(self.free) and 0 < self.free < 1):
            raise _err(f"free must be a fraction in (0, 1), got {self.free!r}")
        if not (_fraction(self.unusable) and 0 <= self.unusable <= 1):
            raise _err(f"unusable must be a fraction in [0, 1], got {self.unusable!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise _err(f"seed must be an integer >= 0, got {self.seed!r}")

    def spec(self) -> str:
        """The canonical text, parse_ager's inverse: synthetic:free=F,unusable=U,seed=S."""
        return f"{PREFIX}free={float(self.free)!r},unusable={float(self.unusable)!r},seed={int(self.seed)}"


def is_ager(text: str) -> bool:
    """Whether `text` names the synthetic ager (rather than a free map file)."""
    return text.startswith(PREFIX)


def parse_ager(text: str) -> AgerSpec:
    """`synthetic:free=F,unusable=U,seed=S` (keys in any order, each once) as an AgerSpec."""
    if not is_ager(text):
        raise _err(f"expected text starting with {PREFIX!r}, got {text!r}")
    got: dict[str, str] = {}
    for item in text[len(PREFIX):].split(","):
        key, eq, value = item.partition("=")
        if not eq or not value:
            raise _err(f"{item!r} is not key=value")
        if key not in KEYS:
            raise _err(f"unknown key {key!r}; known keys: {', '.join(KEYS)}")
        if key in got:
            raise _err(f"{key} given twice")
        got[key] = value
    missing = [k for k in KEYS if k not in got]
    if missing:
        raise _err(f"missing {', '.join(missing)}")
    num = {}
    for key in ("free", "unusable"):
        try:
            num[key] = float(got[key])
        except ValueError:
            raise _err(f"{key} must be a number, got {got[key]!r}") from None
    if not _SEED.fullmatch(got["seed"]):
        raise _err(f"seed must be an integer >= 0, got {got['seed']!r}")
    return AgerSpec(num["free"], num["unusable"], int(got["seed"]))


def _composition(rng: np.random.Generator, total: int, parts: int) -> np.ndarray:
    """`parts` positive integers summing to `total` (>= parts >= 1), uniformly among all such
    compositions: cut [0, total) at parts - 1 distinct random points."""
    cuts = np.sort(rng.choice(total - 1, size=parts - 1, replace=False, shuffle=False) + 1)
    return np.diff(np.concatenate(([0], cuts, [total]))).astype(np.int64)


def free_frames(n_frames: int, spec: AgerSpec) -> int:
    """Frames the ager leaves free in a memory of `n_frames` frames: round(free * n_frames)."""
    return int(round(float(spec.free) * int(n_frames)))


def age(n_frames: int, spec: AgerSpec) -> np.ndarray:
    """The aged state of a memory of `n_frames` frames: uint8 FREE or USED per frame, with
    exactly round(spec.free * n_frames) frames free (see the module docstring)."""
    if isinstance(n_frames, bool) or not isinstance(n_frames, (int, np.integer)) or n_frames < 0:
        raise ValueError(f"synthetic ager: n_frames must be an integer >= 0, got {n_frames!r}")
    n = int(n_frames)
    rng = np.random.default_rng(int(spec.seed))
    n_free = free_frames(n, spec)
    whole, tail = divmod(n, PAGEBLOCK_FRAMES)
    # W wholly free pageblocks; at least w_lo so that the rest, n_free - 512 W, fits in the
    # other pageblocks (511 each: one keeper) and the tail
    w_lo = max(0, n_free - (PAGEBLOCK_FRAMES - 1) * whole - tail)
    w_hi = min(whole, n_free // PAGEBLOCK_FRAMES)
    w = min(max(round((1 - float(spec.unusable)) * n_free / PAGEBLOCK_FRAMES), w_lo), w_hi)
    is_free_block = np.zeros(whole, bool)
    is_free_block[rng.choice(whole, size=w, replace=False, shuffle=False)] = True
    partial = np.flatnonzero(~is_free_block)  # pageblocks that keep a used frame, in address order

    # the other pageblocks then the tail, concatenated ("virtual" frames): a keeper per
    # pageblock, and runs over the rest
    p = len(partial)
    rest_free = n_free - w * PAGEBLOCK_FRAMES
    slots = p * (PAGEBLOCK_FRAMES - 1) + tail  # frames that are not keepers
    rest_used = slots - rest_free  # >= 0 by w >= w_lo
    if rest_free == 0:
        runs = np.array([USED], np.uint8), np.array([slots], np.int64)
    else:
        # K free runs need K - 1 used runs between them (ends may be empty)
        k = max(1, min(round(rest_free / RUN_MEAN_FRAMES), rest_free, rest_used + 1))
        free_len = _composition(rng, rest_free, k)
        used_len = _composition(rng, rest_used + 2, k + 1)
        used_len[[0, -1]] -= 1  # leading and trailing used runs may be empty
        lengths = np.empty(2 * k + 1, np.int64)
        lengths[0::2], lengths[1::2] = used_len, free_len
        values = np.full(2 * k + 1, USED, np.uint8)
        values[1::2] = FREE
        runs = values, lengths
    virtual = np.full(p * PAGEBLOCK_FRAMES + tail, USED, np.uint8)
    keeper = np.zeros(len(virtual), bool)
    keeper[np.arange(p) * PAGEBLOCK_FRAMES + rng.integers(0, PAGEBLOCK_FRAMES, size=p)] = True
    virtual[~keeper] = np.repeat(*runs)

    state = np.empty(n, np.uint8)
    blocks = state[: whole * PAGEBLOCK_FRAMES].reshape(whole, PAGEBLOCK_FRAMES)
    blocks[is_free_block] = FREE
    blocks[partial] = virtual[: p * PAGEBLOCK_FRAMES].reshape(p, PAGEBLOCK_FRAMES)
    state[whole * PAGEBLOCK_FRAMES:] = virtual[p * PAGEBLOCK_FRAMES:]
    return state


def unusable_index_of_blocks(blocks_per_order, order: int = PAGEBLOCK_ORDER) -> float:
    """Linux's unusable free space index at `order` (a fraction in [0, 1]; 1.0 when nothing
    is free) from free blocks per order (blocks_per_order[k]: blocks of 2^k frames)."""
    b = np.asarray(blocks_per_order, dtype=np.int64)
    if not 0 <= order < len(b):
        raise ValueError(f"order {order} is outside 0..{len(b) - 1}")
    orders = np.arange(len(b))
    free_pages = int((b << orders).sum())
    if free_pages == 0:
        return 1.0
    suitable = int((b[order:] << (orders[order:] - order)).sum())
    return (free_pages - (suitable << order)) / free_pages


def unusable_index(state: np.ndarray, order: int = PAGEBLOCK_ORDER) -> float:
    """The unusable free space index at `order` (a fraction) of the FREE frames of a state
    array, cut into maximal aligned blocks of orders 0..MAX_ORDER."""
    out = np.zeros(MAX_ORDER + 1, np.int64)
    carve_free(np.asarray(state) == FREE, out)
    return unusable_index_of_blocks(out, order)
