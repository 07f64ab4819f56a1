"""A real machine's free memory, frame by frame: one zone's map of free, used and missing
frames, read from /proc/kpageflags and /proc/zoneinfo, written to and read from Parquet.

Every frame of the map is one of
* FREE: on the buddy allocator's free lists. Since Linux 4.6 `/proc/kpageflags` sets
  KPF_BUDDY (bit 10) on every page of a free buddy block, not only its head
  (fs/proc/page.c: `stable_page_flags`, `is_free_buddy_page`);
* HOLE: not memory -- below the zone's first pfn, flagged KPF_NOPAGE (bit 20: no struct
  page), or in a 128 MiB memory section (x86-64 SECTION_SIZE_BITS = 27) none of whose
  frames carries any flag, where the memory map was never initialised (memory not yet
  onlined or deferred). A hole is never allocated and counts nowhere;
* USED: every other frame. Pages on the per-CPU free lists are free but carry neither
  BUDDY nor any other flag; outside an all-zero section they count as used.

Frame 0 of the map is the zone's start pfn rounded down to 1024 (a maximal buddy block),
so a block aligned in the map is aligned on the machine. One zone of one node: on a
machine with several nodes, name the node (`node=`); a zone name alone is refused there.

The file (FORMAT_NAME, docs/trace-format.md#free-maps): Parquet, one row per run of frames
in one state, columns `start` (first frame of the run, counted from frame 0 of the map),
`frames` (its length) and `state` (`free`, `used` or `hole`), runs in address order
covering the map exactly; the key-value metadata names the format and version, the
zone, node, base pfn (frame 0), the zone's start pfn, span, present and managed pages,
the kernel, the time, and /proc/buddyinfo's line for the zone read just before.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass, field

import numpy as np

from ptpair.errors import TraceError
from ptpair.traces._jit import scanner

FREE, USED, HOLE = 0, 1, 2
STATES = ("free", "used", "hole")
KPF_BUDDY = 10
KPF_NOPAGE = 20
SECTION_FRAMES = 1 << (27 - 12)  # a 128 MiB memory section of x86-64 sparsemem
MAP_ALIGN = 1024  # frame 0 of the map: the zone start rounded down to a maximal block (order 10)
FORMAT_NAME = "ptpair-freemap"
FORMAT_VERSION = 1
READ_FRAMES = 1 << 20  # kpageflags is read 8 MiB at a time


class FreeMapError(TraceError):
    """The machine's files cannot give a free map (not readable, zone not found)."""


@dataclass
class FreeMap:
    """A zone's frames: `state[i]` (FREE, USED, HOLE) of frame i = pfn base_pfn + i."""

    state: np.ndarray  # uint8, one per frame
    base_pfn: int
    zone: str
    node: int
    meta: dict = field(default_factory=dict)  # start_pfn, spanned, present, managed, kernel, time, buddyinfo
    source: str = "<freemap>"

    @property
    def frames(self) -> int:
        return len(self.state)

    def counts(self) -> dict:
        """Frames by state."""
        return {name: int((self.state == k).sum()) for k, name in enumerate(STATES)}


# --- reading the machine -------------------------------------------------------------
def read_zoneinfo(text: str) -> list[dict]:
    """[{node, zone, start_pfn, spanned, present, managed}] from /proc/zoneinfo text."""
    zones, cur = [], None
    for line in text.splitlines():
        parts = line.split()
        if line.startswith("Node ") and len(parts) >= 4 and parts[2] == "zone":
            cur = {"node": int(parts[1].rstrip(",")), "zone": parts[3]}
            zones.append(cur)
        elif cur is not None and len(parts) == 2 and parts[0] in ("spanned", "present", "managed"):
            cur[parts[0]] = int(parts[1])
        elif cur is not None and parts[:1] == ["start_pfn:"]:
            cur["start_pfn"] = int(parts[1])
    return [z for z in zones if "start_pfn" in z and "spanned" in z]


def _pick_zone(zones: list[dict], zone: str, node: int | None) -> dict:
    found = [z for z in zones if z["zone"] == zone and (node is None or z["node"] == node)]
    if not found:
        known = ", ".join(f"node {z['node']} {z['zone']}" for z in zones)
        raise FreeMapError("/proc/zoneinfo", None, f"no zone {zone!r}" + (f" on node {node}" if node is not None
                                                                             else "") + f" (zones: {known})")
    if len(found) > 1:
        raise FreeMapError("/proc/zoneinfo", None, f"zone {zone!r} is on {len(found)} nodes: name one with --node "
                                                   f"({', '.join(str(z['node']) for z in found)})")
    return found[0]


def states_from_flags(flags: np.ndarray, base_pfn: int, first_valid: int) -> np.ndarray:
    """The FREE / USED / HOLE state of frames base_pfn, base_pfn + 1, ... from their
    kpageflags words; frames before `first_valid` (below the zone) are holes. See the
    module docstring for the rule."""
    f = flags.astype(np.uint64, copy=False)
    state = np.full(len(f), USED, np.uint8)
    state[(f >> np.uint64(KPF_BUDDY)) & np.uint64(1) == 1] = FREE
    state[(f >> np.uint64(KPF_NOPAGE)) & np.uint64(1) == 1] = HOLE
    state[:first_valid] = HOLE
    if len(f):
        # memory sections (by absolute pfn) of the map in which no frame carries a flag
        sec = (base_pfn + np.arange(len(f), dtype=np.int64)) // SECTION_FRAMES
        starts = np.flatnonzero(np.concatenate([[True], sec[1:] != sec[:-1]]))
        flagged = np.logical_or.reduceat(f != 0, starts)
        lengths = np.diff(np.concatenate([starts, [len(f)]]))
        state[np.repeat(~flagged, lengths)] = HOLE
    return state


def capture(zone: str = "Normal", node: int | None = None, kpageflags: str = "/proc/kpageflags",
            zoneinfo: str = "/proc/zoneinfo", buddyinfo: str = "/proc/buddyinfo") -> FreeMap:
    """The free map of one zone of the running machine now (needs root for kpageflags)."""
    try:
        with open(zoneinfo) as f:
            z = _pick_zone(read_zoneinfo(f.read()), zone, node)
    except OSError as e:
        raise FreeMapError(zoneinfo, None, e.strerror or str(e)) from None
    before = _buddyinfo_line(buddyinfo, z)
    base = z["start_pfn"] // MAP_ALIGN * MAP_ALIGN
    end = z["start_pfn"] + z["spanned"]
    try:
        fd = os.open(kpageflags, os.O_RDONLY)
    except OSError as e:
        why = "needs root (CAP_SYS_ADMIN)" if e.errno in (1, 13) else e.strerror
        raise FreeMapError(kpageflags, None, f"cannot read: {why}") from None
    try:
        parts = []
        for pfn in range(base, end, READ_FRAMES):
            n = min(READ_FRAMES, end - pfn)
            buf = os.pread(fd, n * 8, pfn * 8)
            if len(buf) != n * 8:
                raise FreeMapError(kpageflags, None, f"short read at pfn {pfn}: the zone is beyond the file")
            parts.append(np.frombuffer(buf, np.uint64))
    except OSError as e:
        raise FreeMapError(kpageflags, None, e.strerror or str(e)) from None
    finally:
        os.close(fd)
    flags = np.concatenate(parts) if parts else np.zeros(0, np.uint64)
    meta = {k: z.get(k) for k in ("start_pfn", "spanned", "present", "managed")}
    meta.update(kernel=f"{platform.system()} {platform.release()} ({platform.machine()})", time=time.time(),
                buddyinfo=before)
    return FreeMap(states_from_flags(flags, base, z["start_pfn"] - base), base, z["zone"], z["node"], meta,
                   f"{kpageflags} ({z['zone']})")


def capture_to_cache(zone: str = "Normal", node: int | None = None) -> str:
    """Capture this machine's free map now and save it under ptpair's cache folder
    (freemaps/live-NODE-ZONE-TIME.parquet), so a replay on it can be rerun: its path."""
    from ptpair._jitcache import cache_base

    fm = capture(zone, node)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(fm.meta["time"]))
    path = os.path.join(cache_base(), "freemaps", f"live-{fm.node}-{fm.zone}-{stamp}.parquet")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_freemap(fm, path)
    return path


def _buddyinfo_line(path: str, z: dict) -> list[int] | None:
    try:
        with open(path) as f:
            for line in f:
                p = line.split()
                if len(p) > 4 and p[1].rstrip(",") == str(z["node"]) and p[3] == z["zone"]:
                    return [int(x) for x in p[4:]]
    except (OSError, ValueError):
        pass
    return None


@scanner
def carve_free(free_mask, out):
    """Cut the free frames (free_mask: a bool per frame) into maximal aligned blocks of
    order <= len(out) - 1, as a buddy allocator would list them: out[k] += blocks of order k."""
    top = len(out) - 1
    n = len(free_mask)
    x = 0
    while x < n:
        if not free_mask[x]:
            x += 1
            continue
        end = x
        while end < n and free_mask[end]:
            end += 1
        while x < end:  # carve the run [x, end) like boot memory
            k = top
            while (x & ((1 << k) - 1)) != 0 or x + (1 << k) > end:
                k -= 1
            out[k] += 1
            x += 1 << k


def aligned_blocks(state: np.ndarray, max_order: int = 10) -> list[int]:
    """FREE frames cut into maximal aligned blocks (what a buddy allocator would list):
    blocks per order 0..max_order."""
    out = np.zeros(max_order + 1, np.int64)
    carve_free(state == FREE, out)
    return [int(x) for x in out]


# --- the file -------------------------------------------------------------------------
def runs(state: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start, frames, state) of the maximal runs of one state, in address order."""
    if len(state) == 0:
        return (np.zeros(0, np.int64),) * 2 + (np.zeros(0, np.uint8),)
    cut = np.flatnonzero(state[1:] != state[:-1]) + 1
    start = np.concatenate([[0], cut]).astype(np.int64)
    length = np.diff(np.concatenate([start, [len(state)]])).astype(np.int64)
    return start, length, state[start]


def write_freemap(fm: FreeMap, path) -> None:
    """The map as Parquet (atomically): one row per run, metadata as described above."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ptpair.traces.atomic import atomic_path

    start, length, st = runs(fm.state)
    table = pa.table({"start": start, "frames": length,
                      "state": pa.array([STATES[s] for s in st.tolist()], pa.string())})
    meta = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "zone": fm.zone, "node": fm.node,
            "base_pfn": fm.base_pfn, **fm.meta}
    table = table.replace_schema_metadata({b"ptpair": json.dumps(meta, sort_keys=True).encode()})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def is_freemap(path) -> bool:
    """Whether `path` is a Parquet file written by write_freemap."""
    try:
        import pyarrow.parquet as pq

        md = pq.read_schema(path).metadata or {}
        return json.loads(md.get(b"ptpair", b"{}")).get("format") == FORMAT_NAME
    except Exception:  # not Parquet, not readable: not a free map
        return False


def read_freemap(path) -> FreeMap:
    """A free map written by write_freemap; bad files are located TraceErrors."""
    import pyarrow.parquet as pq

    source = str(path)
    if not os.path.isfile(source):
        raise TraceError(source, None, "no such file")
    try:
        table = pq.read_table(path)
        meta = json.loads((table.schema.metadata or {}).get(b"ptpair", b"{}"))
    except (OSError, ValueError) as e:
        raise TraceError(source, None, f"not a free map: {e}") from None
    if meta.get("format") != FORMAT_NAME:
        raise TraceError(source, None, "not a free map (no ptpair-freemap metadata; `ptpair record freemap` "
                                       "writes one)")
    if meta.get("version") != FORMAT_VERSION:
        raise TraceError(source, None, f"free map version {meta.get('version')}; this ptpair reads "
                                       f"{FORMAT_VERSION}")
    start = table.column("start").to_numpy()
    length = table.column("frames").to_numpy()
    names = table.column("state").to_pylist()
    for i, (s, n, name) in enumerate(zip(start.tolist(), length.tolist(), names)):
        expect = int(start[i - 1] + length[i - 1]) if i else 0
        if s != expect or n <= 0 or name not in STATES:
            raise TraceError(source, i + 1, f"run {i}: start {s}, frames {n}, state {name!r}: runs must cover "
                                            f"the map in order (this one should start at {expect}) with a state "
                                            f"among {', '.join(STATES)}")
    state = np.repeat(np.array([STATES.index(x) for x in names], np.uint8), length)
    base = int(meta.get("base_pfn", 0))
    keep = {k: v for k, v in meta.items() if k not in ("format", "version", "zone", "node", "base_pfn")}
    return FreeMap(state, base, meta.get("zone", "?"), int(meta.get("node", 0)), keep, source)
