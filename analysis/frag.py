"""Linux's fragmentation indices, computed from free lists exactly as mm/vmstat.c does.

For a requested order k and free lists n_0..n_10 (free blocks per order, as
/proc/buddyinfo shows them), `fill_contig_page_info()` gives

    free_blocks_total    = sum n_o
    free_pages           = sum n_o * 2^o
    free_blocks_suitable = sum_{o >= k} n_o * 2^(o - k)

* Unusable free space index (`unusable_free_index()`, debugfs `extfrag/unusable_index`):
  1000 when nothing is free, else (free_pages - (suitable << k)) * 1000 // free_pages.
  0: every free page could serve an order-k request; 1000: none could.
* Fragmentation index (`__fragmentation_index()`, debugfs `extfrag/extfrag_index`):
  0 when nothing is free; -1000 when a request would succeed (suitable > 0); else
  1000 - (1000 + free_pages * 1000 // 2^k) // free_blocks_total. Near 0: a failure
  would be for lack of memory; near 1000: for fragmentation.

Values are integers on the kernel's x1000 scale; debugfs prints them divided by 1000 with
three decimals (C integer division, truncating towards zero). See
docs/sources.md#fragmentation-indices-mmvmstatc.
"""

from __future__ import annotations

import numpy as np

from ptpair.traces.format import N_ORDERS


def _as_2d(buddyinfo) -> tuple[np.ndarray, bool]:
    a = np.asarray(buddyinfo, dtype=np.int64)
    return (a[None, :], True) if a.ndim == 1 else (a, False)


def _contig(nr: np.ndarray):
    """free_pages, free_blocks_total and free_blocks_suitable[k] for every order k.

    nr: (rows, orders) free blocks. Returns arrays of shape (rows,), (rows,), (rows, orders).
    """
    orders = np.arange(nr.shape[1])
    free_pages = (nr << orders).sum(axis=1)
    total = nr.sum(axis=1)
    suitable = np.zeros_like(nr)
    for k in range(nr.shape[1]):
        suitable[:, k] = (nr[:, k:] << (orders[k:] - k)).sum(axis=1)
    return free_pages, total, suitable


def indices_from_contig(free_pages: int, free_blocks_total: int, suitable) -> dict:
    """Both indices from contig_page_info-style figures given directly: for allocators
    whose free set is not a set of aligned blocks (akaros-2015's unaligned runs)."""
    suitable = np.asarray(suitable, dtype=np.int64)
    orders = np.arange(len(suitable))
    if free_pages == 0:
        unusable = np.full(len(suitable), 1000)
    else:
        unusable = ((free_pages - (suitable << orders)) * 1000) // free_pages
    if free_blocks_total == 0:
        frag = np.zeros(len(suitable), np.int64)
    else:
        val = 1000 - (1000 + (free_pages * 1000) // (1 << orders)) // free_blocks_total
        frag = np.where(suitable > 0, -1000, val)
    return {"unusable_index": [int(x) for x in unusable], "fragmentation_index": [int(x) for x in frag]}


def unusable_index(buddyinfo) -> np.ndarray:
    """Unusable free space index per order (x1000), for one buddyinfo row or many."""
    nr, one = _as_2d(buddyinfo)
    free_pages, _, suitable = _contig(nr)
    orders = np.arange(nr.shape[1])
    fp = free_pages[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        idx = np.where(fp == 0, 1000, ((fp - (suitable << orders)) * 1000) // np.maximum(fp, 1))
    return idx[0] if one else idx


def fragmentation_index(buddyinfo) -> np.ndarray:
    """Fragmentation index per order (x1000; -1000 where a request would succeed)."""
    nr, one = _as_2d(buddyinfo)
    free_pages, total, suitable = _contig(nr)
    orders = np.arange(nr.shape[1])
    requested = 1 << orders
    tot = total[:, None]
    val = 1000 - (1000 + (free_pages[:, None] * 1000) // requested) // np.maximum(tot, 1)
    idx = np.where(tot == 0, 0, np.where(suitable > 0, -1000, val))
    return idx[0] if one else idx


def largest_free_order(buddyinfo) -> np.ndarray | int:
    """Highest order with a free block, -1 when nothing is free."""
    nr, one = _as_2d(buddyinfo)
    has = nr > 0
    out = np.where(has.any(axis=1), nr.shape[1] - 1 - np.argmax(has[:, ::-1], axis=1), -1)
    return int(out[0]) if one else out


def blocks_allocatable(buddyinfo, order: int) -> int | np.ndarray:
    """How many order-`order` blocks the free lists could still supply (stress-highalloc)."""
    nr, one = _as_2d(buddyinfo)
    _, _, suitable = _contig(nr)
    out = suitable[:, order]
    return int(out[0]) if one else out


# --- /proc/buddyinfo and the debugfs layouts ---------------------------------------
def _c_fixed3(index: int, width: int) -> str:
    """printf("%Nd.%03d", index / 1000, index % 1000) with C's truncating division."""
    q = int(index / 1000)
    r = index - q * 1000
    return f"{q:{width}d}.{r:03d}" if width else f"{q}.{r:03d}"


def debugfs_lines(zones, kind: str) -> list[str]:
    """Lines in the layout of /sys/kernel/debug/extfrag/{unusable_index,extfrag_index}."""
    lines = []
    for node, zone, counts in zones:
        if kind == "unusable":
            vals, width = unusable_index(counts), 0
        else:
            vals, width = fragmentation_index(counts), 2
        lines.append(f"Node {node}, zone {zone:>8s} " + "".join(_c_fixed3(int(v), width) + " " for v in vals))
    return lines


MT_LABELS = {"unmovable": "Unmovable", "movable": "Movable", "reclaimable": "Reclaimable"}


def pagetypeinfo_lines(pagetypeinfo: dict, pageblocks: dict, node: int = 0, zone: str = "Normal") -> list[str]:
    """A simulated machine's free lists per migratetype in the layout of /proc/pagetypeinfo
    (mm/vmstat.c: pagetypeinfo_showfree_print, pagetypeinfo_showblockcount_print)."""
    lines = ["Page block order: 9", "Pages per block:  512", ""]
    lines.append(f"{'Free pages count per migrate type at order':<43s} " + "".join(f"{k:6d} " for k in range(N_ORDERS)))
    for name, counts in pagetypeinfo.items():
        lines.append(f"Node {node:4d}, zone {zone:>8s}, type {MT_LABELS[name]:>12s} "
                     + "".join(f"{c:6d} " for c in counts))
    lines += ["", f"{'Number of blocks type ':<23s}" + "".join(f"{MT_LABELS[n]:>12s} " for n in pageblocks)]
    lines.append(f"Node {node}, zone {zone:>8s} " + "".join(f"{c:12d} " for c in pageblocks.values()))
    return lines
