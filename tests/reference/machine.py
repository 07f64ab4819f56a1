"""A plain-Python reference machine with ptpair's exact semantics (docs/semantics.md).

Written for reading, not speed: every rule appears once, in the order the semantics
state it. The compiled core (ptpair.sim) must agree with it exactly -- counters, peaks,
failures and the free lists themselves, block by block and in list order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_ORDER = 10
PAIR, SEP, KPT, LAZY = "pair", "sep", "kpt", "lazy"  # LAZY is a process mode only
SPAWN_KIND = {"pair": PAIR, "separate": KPT, "separate-eager": SEP, "pair-on-vmm": KPT, "separate-lazy": KPT}
VMM_KIND = {"pair": PAIR, "separate": SEP, "separate-eager": SEP, "pair-on-vmm": PAIR, "separate-lazy": LAZY}
USER_PAGES = 1 << 35  # 4-KiB pages in [0, 2^47)
# owner classes of allocated blocks; the unmovable ones (>= TABLE) in hugepage-class order
DATA, KALLOC_MOVABLE, TABLE, KALLOC, BACKGROUND = range(5)
HUGE_CLASSES = ("page_tables", "kalloc", "background")  # of TABLE, KALLOC, BACKGROUND
PB_FRAMES = 512  # a 2 MiB block
FREE, USED, HOLE = 0, 1, 2  # frame states of an initial state (a free map)


def boot_blocks(state):
    """The free frames of an initial state (a state per frame) carved from each free run's
    low end into maximal aligned blocks of order <= 10: [(frame, order)] ascending."""
    out, f, n = [], 0, len(state)
    while f < n:
        if state[f] != FREE:
            f += 1
            continue
        end = f
        while end < n and state[end] == FREE:
            end += 1
        while f < end:
            k = MAX_ORDER
            while f % (1 << k) or f + (1 << k) > end:
                k -= 1
            out.append((f, k))
            f += 1 << k
    return out


class Buddy:
    """Free lists per order. A list's last element is its most recently added block."""

    def __init__(self, n: int, policy: str, state):
        self.n, self.policy = n, policy
        self.lists = [[] for _ in range(MAX_ORDER + 1)]
        self.order_at = {}  # first frame of a free block -> its order
        self.high_water = 0  # one past the highest frame ever allocated
        self.live_at_high_water = 0
        self.reserved = state.count(HOLE) + state.count(USED)  # neither free nor the trace's
        for f, k in reversed(boot_blocks(state)):  # freed to the tail: the lowest at the head
            self._put(f, k)

    def _put(self, f, k):
        self.lists[k].append(f)
        self.order_at[f] = k

    def _take(self, f, k):
        self.lists[k].remove(f)
        del self.order_at[f]

    def alloc(self, k):
        for j in range(k, MAX_ORDER + 1):
            if self.lists[j]:
                f = min(self.lists[j]) if self.policy == "address" else self.lists[j][-1]
                self._take(f, j)
                while j > k:
                    j -= 1
                    self._put(f + (1 << j), j)
                if f + (1 << k) > self.high_water:
                    self.high_water = f + (1 << k)
                    self.live_at_high_water = self.n - self.reserved - self.free_pages()
                return f
        return None

    def buddyinfo(self):
        return [len(lst) for lst in self.lists]

    def free_block(self, f, k):
        self.free(f, k)

    def free(self, f, k):
        while k < MAX_ORDER and self.order_at.get(f ^ (1 << k)) == k:
            self._take(f ^ (1 << k), k)
            f = min(f, f ^ (1 << k))
            k += 1
        self._put(f, k)

    def free_pages(self):
        return sum(len(lst) << k for k, lst in enumerate(self.lists))

    def blocks(self):
        """(frame, order) in list-walk order: ascending address, or most recent first."""
        out = []
        for k, lst in enumerate(self.lists):
            out += [(f, k) for f in (sorted(lst) if self.policy == "address" else reversed(lst))]
        return out


class Akaros2015:
    """Akaros's 2015 allocator: a LIFO list of single frames (last element = head), a
    downward get_cont_pages scan for order >= 1, frees pushed one by one ascending."""

    def __init__(self, n: int, state):
        self.n = n
        self.reserved = state.count(HOLE) + state.count(USED)  # neither free nor the trace's
        self.lst = [f for f in range(n) if state[f] == FREE]  # inserted ascending: the highest is the head
        # the scan starts at the last frame that is memory (holes ending memory are not scanned)
        self.top = max((f for f in range(n) if state[f] != HOLE), default=-1)
        self.free = set(self.lst)
        self.high_water = 0
        self.live_at_high_water = 0
        self.scanned = 0
        self.scans = 0

    def alloc(self, k):
        size = 1 << k
        if k == 0:
            if not self.lst:
                return None
            start = self.lst[-1]
        else:
            self.scans += 1
            start = None
            i = self.top  # top frame of the window: the last frame that is memory
            while i - size + 1 >= 0:
                j = i
                busy = None
                while j > i - size:
                    self.scanned += 1
                    if j not in self.free:
                        busy = j
                        break
                    j -= 1
                if busy is None:
                    start = i - size + 1
                    break
                i = busy - 2  # the original loop's skip
            if start is None:
                return None
        for f in range(start, start + size):
            self.lst.remove(f)
            self.free.discard(f)
        if start + size > self.high_water:
            self.high_water = start + size
            self.live_at_high_water = self.n - self.reserved - len(self.free)
        return start

    def free_block(self, f, k):
        for x in range(f, f + (1 << k)):
            self.lst.append(x)
            self.free.add(x)

    def free_pages(self):
        return len(self.free)

    def blocks(self):
        return [(f, 0) for f in reversed(self.lst)]

    def buddyinfo(self):
        out = [0] * (MAX_ORDER + 1)
        x = 0
        while x < self.n:
            if x not in self.free:
                x += 1
                continue
            end = x
            while end < self.n and end in self.free:
                end += 1
            while x < end:
                k = MAX_ORDER
                while x % (1 << k) or x + (1 << k) > end:
                    k -= 1
                out[k] += 1
                x += 1 << k
        return out


PB_ORDER = 9  # pageblock_order
UNMOVABLE, MOVABLE, RECLAIMABLE = 0, 1, 2
FALLBACKS = {UNMOVABLE: (RECLAIMABLE, MOVABLE), MOVABLE: (RECLAIMABLE, UNMOVABLE),
             RECLAIMABLE: (UNMOVABLE, MOVABLE)}


class LinuxMobility:
    """Buddy allocator grouping by mobility (Linux v6.6 mm/page_alloc.c, simplified as
    docs/semantics.md states). Lists per (order, migratetype); last element = head."""

    def __init__(self, n: int, state):
        self.n = n
        self.reserved = state.count(HOLE) + state.count(USED)  # neither free nor the trace's
        self.lists = {(k, t): [] for k in range(MAX_ORDER + 1) for t in range(3)}
        self.order_at, self.list_mt, self.alloc_mt = {}, {}, {}
        self.pb_alloc = {}  # (pageblock, mt) -> allocated frames
        for x in range(n):  # background frames: unmovable allocations
            if state[x] == USED:
                self.pb_alloc[(x >> PB_ORDER, UNMOVABLE)] = self.pb_alloc.get((x >> PB_ORDER, UNMOVABLE), 0) + 1
        # a pageblock at least half background is unmovable, the others movable
        self.pb_type = [UNMOVABLE if 2 * self.pb_alloc.get((pb, UNMOVABLE), 0) >= 1 << PB_ORDER else MOVABLE
                        for pb in range((n + (1 << PB_ORDER) - 1) >> PB_ORDER)]
        self.high_water = self.live_at_high_water = 0
        self.fallbacks = 0
        self.fallback_by = {}
        self.relabelled = 0
        for f, k in reversed(boot_blocks(state)):  # freed to the tail: the lowest at the head
            self._put(f, k, self.pb_type[f >> PB_ORDER])

    def _put(self, f, k, t):
        self.lists[(k, t)].append(f)
        self.order_at[f], self.list_mt[f] = k, t

    def _put_tail(self, f, k, t):
        self.lists[(k, t)].insert(0, f)
        self.order_at[f], self.list_mt[f] = k, t

    def _move_tail(self, f, t):
        """move_to_free_list(): to the tail of its order's list of type t."""
        self._put_tail(f, self._take(f), t)

    def _take(self, f):
        k, t = self.order_at.pop(f), self.list_mt.pop(f)
        self.lists[(k, t)].remove(f)
        return k

    def free_pages(self):
        return sum(len(v) << k for (k, _), v in self.lists.items())

    def _smallest(self, k, t):
        for j in range(k, MAX_ORDER + 1):
            if self.lists[(j, t)]:
                f = self.lists[(j, t)][-1]
                self._take(f)
                while j > k:
                    j -= 1
                    self._put(f + (1 << j), j, t)
                return f
        return None

    @staticmethod
    def _can_steal(order, t):
        return order >= PB_ORDER or order >= PB_ORDER // 2 or t != MOVABLE

    def _find(self, orders, t):
        for cur in orders:
            for fb in FALLBACKS[t]:
                if self.lists[(cur, fb)]:
                    return cur, fb
        return None

    def _fallback(self, k, t):
        hit = self._find(range(MAX_ORDER, k - 1, -1), t)
        if hit is None:
            return False
        cur, fb = hit
        can = self._can_steal(cur, t)
        if not can and t == MOVABLE and cur > k:  # find_smallest
            cur, fb = self._find(range(k, MAX_ORDER + 1), t)
            can = self._can_steal(cur, t)
        page = self.lists[(cur, fb)][-1]
        self.fallbacks += 1
        self.fallback_by[(t, fb)] = self.fallback_by.get((t, fb), 0) + 1
        pb = page >> PB_ORDER
        old = self.pb_type[pb]
        start = pb << PB_ORDER
        # v6.6: whole blocks >= pageblock_order relabel their pageblocks; a block that may not
        # steal, or whose pageblock reaches past the zone's end, moves alone
        if cur >= PB_ORDER or not can or start + (1 << PB_ORDER) > self.n:
            if cur >= PB_ORDER:
                for q in range(pb, pb + (1 << (cur - PB_ORDER))):
                    if self.pb_type[q] != t:
                        self.pb_type[q] = t
                        self.relabelled += 1
            self._move_tail(page, t)
            return True
        free_pages = 0
        x = start
        while x < start + (1 << PB_ORDER):
            if x in self.order_at:
                o = self.order_at[x]
                self._move_tail(x, t)
                free_pages += 1 << o
                x += 1 << o
            else:
                x += 1
        movable = self.pb_alloc.get((pb, MOVABLE), 0)
        alike = movable if t == MOVABLE else ((1 << PB_ORDER) - free_pages - movable if old == MOVABLE else 0)
        if free_pages + alike >= (1 << (PB_ORDER - 1)) and old != t:
            self.pb_type[pb] = t
            self.relabelled += 1
        return True

    def _account(self, f, k, t, sign):
        for x in range(f, f + (1 << k)):
            key = (x >> PB_ORDER, t)
            self.pb_alloc[key] = self.pb_alloc.get(key, 0) + sign

    def alloc(self, k, t=UNMOVABLE):
        f = self._smallest(k, t)
        if f is None:
            if not self._fallback(k, t):
                return None
            f = self._smallest(k, t)
        self.alloc_mt[f] = t
        self._account(f, k, t, 1)
        if f + (1 << k) > self.high_water:
            self.high_water = f + (1 << k)
            self.live_at_high_water = self.n - self.reserved - self.free_pages()
        return f

    def free_block(self, f, k):
        self._account(f, k, self.alloc_mt.pop(f), -1)
        t = self.pb_type[f >> PB_ORDER]
        while k < MAX_ORDER and self.order_at.get(f ^ (1 << k)) == k:
            self._take(f ^ (1 << k))
            f = min(f, f ^ (1 << k))
            k += 1
        # buddy_merge_likely(): below order MAX_ORDER - 1, a block whose parent's buddy is free
        # goes to the tail
        parent = f & ~(1 << k)
        if k < MAX_ORDER - 1 and self.order_at.get(parent ^ (1 << (k + 1))) == k + 1:
            self._put_tail(f, k, t)
        else:
            self._put(f, k, t)

    def polluted(self):
        return sum(1 for (pb, t), v in self.pb_alloc.items() if t == UNMOVABLE and v > 0)

    def blocks(self):
        """Free blocks in the order the core lists them: by order, then migratetype, head first."""
        out = []
        for k in range(MAX_ORDER + 1):
            for t in range(3):
                out += [(f, k) for f in reversed(self.lists[(k, t)])]
        return out

    def buddyinfo(self):
        return [sum(len(self.lists[(k, t)]) for t in range(3)) for k in range(MAX_ORDER + 1)]


@dataclass
class Table:
    level: int  # 4 = root (pml4) .. 1 = pml1
    kind: str
    kpt: int
    ept: int | None
    parent: "Table | None"
    index: int  # entry of the parent that points here
    entries: dict = field(default_factory=dict)  # index -> Table or Leaf
    deposits: list = field(default_factory=list)  # pml2: deposited PTE table frames, head first


@dataclass
class Leaf:
    frame: int  # buddy frame (4 KiB / 2 MiB) or gigantic-pool id (1 GiB)
    size: int  # 0: 4 KiB, 1: 2 MiB, 2: 1 GiB


@dataclass
class Proc:
    root: Table | None
    mode: str
    vmm: bool = False
    failed: bool = False
    vmas: list | None = None  # reclaim linux: sorted, merged (start, end) page ranges; None: no VMA event yet


class Reference:
    def __init__(self, scheme="pair", policy="address", memory_pages=1 << 20, track_peaks=True,
                 allocator="buddy", reclaim="empty", initial=None, thp_deposit=None, pt_reclaim=True):
        """`initial`: the initial state, a FREE / USED / HOLE per frame (len memory_pages);
        None: every frame free."""
        state = [FREE] * memory_pages if initial is None else [int(x) for x in initial]
        assert len(state) == memory_pages
        self.background = {x for x in range(memory_pages) if state[x] == USED}  # held for the whole replay
        self.holes = {x for x in range(memory_pages) if state[x] == HOLE}  # not memory
        self.scheme = scheme
        self.reclaim = reclaim
        self.pt_reclaim = pt_reclaim
        self.allocator = allocator
        # a PTE table deposited with each anonymous 2 MiB page (Linux's THP), except on Akaros
        self.thp_deposit = allocator != "akaros-2015" if thp_deposit is None else thp_deposit
        self.file_huge = set()  # first frames of 2 MiB data blocks that are file-backed
        self.track_peaks = track_peaks  # peaks cost a full state scan per event
        self.buddy = {"buddy": lambda: Buddy(memory_pages, policy, state),
                      "akaros-2015": lambda: Akaros2015(memory_pages, state),
                      "linux": lambda: LinuxMobility(memory_pages, state)}[allocator]()
        self.n = memory_pages
        self.procs: dict[int, Proc] = {}
        self.refs: dict[tuple[int, int], int] = {}  # (size class, frame) -> mappings
        self.next_gid = 0
        self.free_gids: list[int] = []
        self.handles: dict[int, tuple[int, int] | None] = {}  # None: its kalloc failed
        self.fail = [0] * (MAX_ORDER + 1)
        self.c = dict(failed_maps=0, failed_spawns=0, skipped=0, already=0, mapped=0, unmapped=0,
                      writes=0, kpt_touch=0, ept_touch=0, ept_loads=0, copies=0, mirrored=0,
                      vmm_events=0, events=0)
        self.peak = dict(pt_pages=0, kpt_pages=0, deposited_pte_pages=0, ept_pages=0, wasted_ept_pages=0,
                         data_pages=0, used_pages=0)
        self.pt_sum = 0  # page-table pages after each event, summed (for the mean)
        self.peak_buddyinfo = [0] * (MAX_ORDER + 1)
        self.owned: dict[int, tuple[int, int]] = {}  # first frame of an allocated block -> (order, owner)
        self.compaction = [0] * (MAX_ORDER + 1)  # frames to migrate, summed over failed requests
        self.hopeless = [0] * (MAX_ORDER + 1)  # failed requests with no window free of unmovable frames
        self._costs = {}  # order -> compaction_cost while no block is allocated or freed
        self.pt_requests = self.pt_split = 0
        self.peak_hugepages = None  # hugepage_blocks after the first event reaching the page-table peak
        self.log = []  # allocations for the page being mapped, for rollback
        self.created = []
        self.twinned = []  # existing tables that gained an EPT twin (separate-lazy)

    # --- allocation helpers ----------------------------------------------------------
    def _plain_alloc(self, k, mt=UNMOVABLE, own=TABLE):
        """Every allocation: a block of order k for an owner of class `own`. A page-table
        request is counted, and whether its own free list was empty; a failure is counted
        with its compaction cost (docs/analysis.md)."""
        if own == TABLE:
            split = (k >= 1 if self.allocator == "akaros-2015" else
                     not self.buddy.lists[(k, mt)] if self.allocator == "linux" else not self.buddy.lists[k])
        f = self.buddy.alloc(k, mt) if self.allocator == "linux" else self.buddy.alloc(k)
        if f is None:
            self._failed(k)
            return None
        self.owned[f] = (k, own)
        self._costs.clear()
        if own == TABLE:
            self.pt_requests += 1
            self.pt_split += split
        return f

    def _free(self, f, k):
        del self.owned[f]
        self._costs.clear()
        self.buddy.free_block(f, k)

    def _alloc(self, k, mt=UNMOVABLE, own=TABLE):
        """An allocation for the page being mapped, logged for rollback."""
        f = self._plain_alloc(k, mt, own)
        if f is not None:
            self.log.append((f, k))
        return f

    def frame_owners(self):
        """frame -> owner class of every allocated frame (the background's included)."""
        return {**{x: BACKGROUND for x in self.background},
                **{x: own for f, (k, own) in self.owned.items() for x in range(f, f + (1 << k))}}

    def compaction_cost(self, k):
        """The fewest allocated frames in an aligned 2^k-frame window inside memory holding no
        unmovable frame; None if every window holds one."""
        owners = self.frame_owners()
        best = None
        for w in range(0, self.n - (1 << k) + 1, 1 << k):
            frames = [owners.get(x) for x in range(w, w + (1 << k))]
            if any(o is not None and o >= TABLE for o in frames) or self.holes.intersection(range(w, w + (1 << k))):
                continue
            cost = sum(o is not None for o in frames)
            best = cost if best is None else min(best, cost)
        return best

    def _failed(self, k, n=1):
        self.fail[k] += n
        if k not in self._costs:  # failures come in storms against unchanged memory
            self._costs[k] = self.compaction_cost(k)
        cost = self._costs[k]
        if cost is None:
            self.hopeless[k] += n
        else:
            self.compaction[k] += n * cost

    def hugepage_blocks(self):
        """The 2 MiB blocks wholly inside memory: free, movable_only, and blocked by wasted
        EPT frames alone or else by the class holding most unmovable frames (ties: later)."""
        owners = self.frame_owners()
        wasted = {t.ept for proc, t in self.live_tables() if t.ept is not None and not proc.vmm}
        out = dict(free=0, movable_only=0, wasted_ept=0, page_tables=0, kalloc=0, background=0)
        for pb in range(self.n // PB_FRAMES):
            frames = range(pb * PB_FRAMES, (pb + 1) * PB_FRAMES)
            if self.holes.intersection(frames):
                continue  # not wholly memory
            held = [owners[x] for x in frames if x in owners]
            unmovable = [o for o in held if o >= TABLE]
            w = sum(x in wasted for x in frames)
            if not held:
                out["free"] += 1
            elif not unmovable:
                out["movable_only"] += 1
            elif w == len(unmovable):
                out["wasted_ept"] += 1
            else:
                counts = [unmovable.count(TABLE) - w, unmovable.count(KALLOC), unmovable.count(BACKGROUND)]
                cls = max(c for c in range(3) if counts[c] == max(counts))  # a tie goes to the later class
                out[HUGE_CLASSES[cls]] += 1
        return out

    def _new_table(self, proc, level, parent, index):
        """KPT page, then its EPT page where the process has one (a pair: one block)."""
        mode = KPT if proc.mode == LAZY else proc.mode
        if mode == PAIR:
            f = self._alloc(1)
            if f is None:
                return None
            kpt, ept = f, f + 1
        else:
            kpt = self._alloc(0)
            if kpt is None:
                return None
            ept = None
            if mode == SEP:
                ept = self._alloc(0)
                if ept is None:
                    return None
        t = Table(level, mode, kpt, ept, parent, index)
        if parent is not None:
            parent.entries[index] = t
        self.created.append(t)
        return t

    def _rollback(self):
        for t in reversed(self.twinned):
            t.ept, t.kind = None, KPT
        for t in reversed(self.created):
            if t.parent is not None:
                del t.parent.entries[t.index]
        for f, k in reversed(self.log):
            self._free(f, k)
        self.log, self.created, self.twinned = [], [], []

    def _free_table(self, t):
        if t.parent is not None:
            del t.parent.entries[t.index]
        if t.kind == PAIR:
            self._free(t.kpt, 1)
        else:
            self._free(t.kpt, 0)
            if t.ept is not None:
                self._free(t.ept, 0)

    def _count_write(self, table, leaf_size):
        levels = 4 - leaf_size  # tables on the path, root included
        self.c["writes"] += 1
        self.c["kpt_touch"] += levels
        if table.kind != KPT:
            self.c["ept_touch"] += levels
            if table.kind == SEP:
                self.c["ept_loads"] += levels

    # --- page operations ---------------------------------------------------------
    def is_mapped(self, proc, vpn, size):
        t = proc.root
        for level in range(4, size + 1, -1):
            e = t.entries.get((vpn >> (9 * (level - 1))) & 511)
            if e is None:
                return False
            if isinstance(e, Leaf):
                return True
            t = e
        return ((vpn >> (9 * size)) & 511) in t.entries

    def _deposits(self, frame):
        return self.thp_deposit and frame not in self.file_huge

    def map_page(self, proc, vpn, size, share=None, flags=0):
        if proc.mode == LAZY and self.is_mapped(proc, vpn, size):
            return "already"
        self.log, self.created, self.twinned = [], [], []
        t = proc.root
        for level in range(4, size + 1, -1):
            i = (vpn >> (9 * (level - 1))) & 511
            e = t.entries.get(i)
            if isinstance(e, Leaf):
                return "already"
            if e is None:
                e = self._new_table(proc, level - 1, t, i)
                if e is None:
                    self._rollback()
                    self.c["failed_maps"] += 1
                    return "failed"
            t = e
            if proc.mode == LAZY and t.ept is None:  # the walk adds the missing EPT twin
                ept = self._alloc(0)
                if ept is None:
                    self._rollback()
                    self.c["failed_maps"] += 1
                    return "failed"
                t.ept, t.kind = ept, SEP
                self.twinned.append(t)
        i = (vpn >> (9 * size)) & 511
        if i in t.entries:
            return "already"
        if size == 1 and self.thp_deposit:  # the data block (or the parent's), then the table
            frame = share
            if frame is None:
                frame = self._alloc(9, MOVABLE, DATA)
                if frame is None:
                    self._rollback()
                    self.c["failed_maps"] += 1
                    return "failed"
                (self.file_huge.add if flags & 1 else self.file_huge.discard)(frame)
            if self._deposits(frame):
                d = self._alloc(0)
                if d is None:
                    self._rollback()
                    self.c["failed_maps"] += 1
                    return "failed"
                # Linux's list: [h, x1 .. xn] becomes [d, x1 .. xn, h]
                t.deposits = [d] + t.deposits[1:] + t.deposits[:1]
            self.refs[(1, frame)] = self.refs.get((1, frame), 0) + 1
        elif share is not None:
            frame = share
            self.refs[(size, frame)] += 1
        elif size == 2:
            frame = self.free_gids.pop() if self.free_gids else self._new_gid()
            self.refs[(2, frame)] = 1
        else:
            frame = self._alloc(9 * size, MOVABLE, DATA)
            if frame is None:
                self._rollback()
                self.c["failed_maps"] += 1
                return "failed"
            self.refs[(size, frame)] = 1
        t.entries[i] = Leaf(frame, size)
        self.c["mapped"] += 1
        self._count_write(t, size)
        return "ok"

    def _new_gid(self):
        self.next_gid += 1
        return self.next_gid - 1

    @staticmethod
    def _pmd_none(proc, vpn):
        t = proc.root
        for level in (4, 3):
            e = t.entries.get((vpn >> (9 * (level - 1))) % 512)
            if e is None:
                return True
            if isinstance(e, Leaf):
                return False
            t = e
        return ((vpn >> 9) % 512) not in t.entries

    def keeps(self, proc):
        """Unmapping leaves emptied tables: reclaim exit, or linux for a process with VMAs."""
        return self.reclaim == "exit" or (self.reclaim == "linux" and proc.vmas is not None)

    def unmap_entry(self, t, i, keep):
        leaf = t.entries.pop(i)
        self.c["unmapped"] += 1
        self._count_write(t, leaf.size)
        if leaf.size == 1 and self._deposits(leaf.frame):
            self._free(t.deposits.pop(0), 0)  # the deposited table first, then the page
        key = (leaf.size, leaf.frame)
        self.refs[key] -= 1
        if self.refs[key] == 0:
            del self.refs[key]
            if leaf.size == 2:
                self.free_gids.append(leaf.frame)
            else:
                self._free(leaf.frame, 9 * leaf.size)
        if keep:
            return  # tables stay until exit (or Linux's free_pgtables)
        while t.level < 4 and not t.entries:
            parent = t.parent
            self._free_table(t)
            t = parent

    def leaves(self, proc, lo=0, hi=USER_PAGES):
        """(table, index, vpn, leaf) of every leaf overlapping [lo, hi), ascending."""
        out = []

        def walk(t, base):
            for i in sorted(t.entries):
                e = t.entries[i]
                span = 1 << (9 * (t.level - 1))
                v = base + i * span
                if v + span <= lo or v >= hi:
                    continue
                if isinstance(e, Leaf):
                    out.append((t, i, v, e))
                else:
                    walk(e, v)

        walk(proc.root, 0)
        return out

    def unmap_range(self, proc, lo, hi, keep=None):
        keep = self.keeps(proc) if keep is None else keep
        for t, i, _, _ in self.leaves(proc, lo, hi):
            self.unmap_entry(t, i, keep)

    # --- Linux's page-table freeing (reclaim linux), straight from mm/memory.c ---------
    @staticmethod
    def _pieces(vmas, lo, hi):
        return [(max(s, lo), min(e, hi)) for s, e in vmas if s < hi and e > lo]

    def _free_empty_within(self, proc, lo, hi, floor, ceiling):
        """free_pgd_range: post-order, free every empty table overlapping [lo, hi) whose span
        lies within [floor, ceiling)."""
        def walk(t, base):
            span = 1 << (9 * t.level)
            for i in sorted(t.entries):
                e = t.entries.get(i)
                if isinstance(e, Table):
                    walk(e, base + i * (span >> 9))
            if (t.level < 4 and not t.entries and base < hi and base + span > lo
                    and floor <= base and base + span <= ceiling):
                self._free_table(t)
        walk(proc.root, 0)

    def release(self, proc, lo, hi):
        self.unmap_range(proc, lo, hi, True)
        vmas = proc.vmas
        pieces = self._pieces(vmas, lo, hi)
        if pieces:
            before = [e for s, e in vmas if e <= lo] + [lo for s, e in vmas if s < lo < e]
            after = [s for s, e in vmas if s >= hi] + [hi for s, e in vmas if s < hi < e]
            floor = max(before, default=0)
            ceiling = min(after, default=USER_PAGES)
            groups = []  # free_pgtables: a VMA joins the group while it starts within 2 MiB of its end
            for s, e in pieces:
                if groups and s <= groups[-1][1] + 512:
                    groups[-1][1] = e
                else:
                    groups.append([s, e])
            for g, (s, e) in enumerate(groups):
                top = groups[g + 1][0] if g + 1 < len(groups) else ceiling
                self._free_empty_within(proc, s, e, floor, top)
        proc.vmas = [(s, min(e, lo)) for s, e in vmas if s < lo] + [(max(s, hi), e) for s, e in vmas if e > hi]
        proc.vmas = sorted(v for v in proc.vmas if v[0] < v[1])

    def reserve(self, proc, lo, hi):
        out = []
        for s, e in sorted((proc.vmas or []) + [(lo, hi)]):
            if out and s <= out[-1][1]:
                out[-1] = (out[-1][0], max(out[-1][1], e))
            else:
                out.append((s, e))
        proc.vmas = out

    def dontneed(self, proc, lo, hi):
        self.unmap_range(proc, lo, hi, True)
        if not self.pt_reclaim:
            return
        for s, e in self._pieces(proc.vmas, lo, hi):
            for t, i, v, pml1 in self._pml1_tables(proc):
                if s <= v and v + 512 <= e and not pml1.entries:
                    self._free_table(pml1)

    def _pml1_tables(self, proc):
        out = []
        for i4, t3 in sorted(proc.root.entries.items()):
            for i3, t2 in sorted(t3.entries.items()):
                if isinstance(t2, Table):
                    for i2, t1 in sorted(t2.entries.items()):
                        if isinstance(t1, Table):
                            out.append((t2, i2, (i4 << 27) | (i3 << 18) | (i2 << 9), t1))
        return out

    def tables_preorder(self, proc):
        out = []

        def walk(t):
            out.append(t)
            for i in sorted(t.entries):
                if isinstance(t.entries[i], Table):
                    walk(t.entries[i])

        walk(proc.root)
        return out

    # --- events --------------------------------------------------------------------
    def spawn(self, pid):
        proc = Proc(None, SPAWN_KIND[self.scheme])
        self.procs[pid] = proc
        self.log, self.created = [], []
        root = self._new_table(proc, 4, None, 0)
        if root is None:
            self._rollback()
            self.c["failed_spawns"] += 1
            proc.failed = True
        proc.root = root
        return proc

    def exit(self, pid):
        proc = self.procs.pop(pid)
        keep = self.keeps(proc)
        self.unmap_range(proc, 0, USER_PAGES, keep)
        if keep:  # depth-first: pml1s, then their pml2, the pml3 last
            for i4 in sorted(proc.root.entries):
                t3 = proc.root.entries[i4]
                for i3 in sorted(t3.entries):
                    t2 = t3.entries[i3]
                    for i2 in sorted(t2.entries):
                        self._free_table(t2.entries[i2])
                    self._free_table(t2)
                self._free_table(t3)
        self._free_table(proc.root)

    def vmm(self, proc):
        if proc.vmm:
            return
        proc.vmm = True
        self.c["vmm_events"] += 1
        kind = VMM_KIND[self.scheme]
        if proc.mode == kind:
            return
        if kind == LAZY:  # only the EPT root now; walks add the rest
            self._mirror(proc.root, SEP)
            if proc.root.kind == SEP:
                proc.mode = LAZY
            return
        self._mirror(proc.root, kind)
        if proc.root.kind != kind and kind == SEP:
            return  # no EPT root, nothing to mirror into
        proc.mode = kind
        for t in self.tables_preorder(proc)[1:]:
            self._mirror(t, kind)

    def _mirror(self, t, kind):
        if kind == SEP:
            e = self._plain_alloc(0)
            if e is None:
                return
            t.ept, t.kind = e, SEP
            if t.level != 4:
                self.c["mirrored"] += 1
        else:
            f = self._plain_alloc(1)
            if f is None:
                return
            old = t.kpt
            t.kpt, t.ept, t.kind = f, f + 1, PAIR
            self._free(old, 0)
            self.c["copies"] += 1

    def fork(self, child, parent):
        cp = self.spawn(child)
        if cp.failed or self.procs[parent].failed:
            return
        if self.procs[parent].vmas is not None:
            cp.vmas = list(self.procs[parent].vmas)
        for _, _, vpn, leaf in self.leaves(self.procs[parent]):
            self.map_page(cp, vpn, leaf.size, share=leaf.frame)  # (a 2 MiB page's flags are its frame's)

    def event(self, pid, op, va=0, length=0, arg=0, order=0, page_size=4096, migratetype=0):
        """One event; raises ValueError for an impossible one (like the core's errors)."""
        proc = self.procs.get(pid)
        if op in ("spawn", "fork"):
            if proc is not None:
                raise ValueError("already alive")
            if op == "fork" and arg not in self.procs:
                raise ValueError("parent not alive")
        elif op not in ("kalloc", "kfree"):
            if proc is None:
                raise ValueError("not alive")
            if proc.failed:
                self.c["skipped"] += 1
                if op == "exit":
                    del self.procs[pid]
                self.c["events"] += 1
                if self.track_peaks:
                    self._update_peaks()
                return
        if op in ("map", "unmap", "reserve", "release", "dontneed"):
            size = {4096: 0, 2 << 20: 1, 1 << 30: 2}[page_size]
            step = 1 << (9 * size)
            shift = 12 + 9 * size
            first = (va >> shift) * step
            end = (((va + length - 1) >> shift) + 1) * step
            if op == "map":
                v = first
                while v < end:
                    if size == 0 and arg & 2 and self._pmd_none(proc, v):  # MAP_THP: a 2 MiB page
                        if self.map_page(proc, v - v % 512, 1, flags=arg & 1) == "already":
                            self.c["already"] += 1
                        v = v - v % 512 + 512
                        continue
                    if self.map_page(proc, v, size, flags=arg) == "already":
                        self.c["already"] += 1
                    v += step
            elif op == "unmap":
                self.unmap_range(proc, first, end)
            elif self.reclaim != "linux":
                if op != "reserve":
                    self.unmap_range(proc, first, end)
            elif op == "reserve":
                self.reserve(proc, first, end)
            elif proc.vmas is None:
                self.unmap_range(proc, first, end, False)
            elif op == "release":
                self.release(proc, first, end)
            else:
                self.dontneed(proc, first, end)
        elif op == "spawn":
            self.spawn(pid)
        elif op == "vmm":
            self.vmm(proc)
        elif op == "fork":
            self.fork(pid, arg)
        elif op == "exec":
            self.exit(pid)
            self.spawn(pid)
        elif op == "exit":
            self.exit(pid)
        elif op == "kalloc":
            if self.handles.get(arg):
                raise ValueError("handle live")
            f = self._plain_alloc(order, migratetype, KALLOC_MOVABLE if migratetype == MOVABLE else KALLOC)
            if f is None:
                self.handles[arg] = None
            else:
                self.handles[arg] = (f, order)
        elif op == "kfree":
            if arg not in self.handles:
                raise ValueError("handle unknown")
            h = self.handles.pop(arg)
            if h is not None:
                self._free(*h)
        self.c["events"] += 1
        if self.track_peaks:
            self._update_peaks()

    def aged(self):
        """A new machine on this one's memory, everything allocated now forgotten into
        background (`--age TRACE`): same free lists and pageblock labels, fresh processes,
        handles and counters."""
        new = Reference(self.scheme, "address", 1, self.track_peaks, "buddy", self.reclaim,
                        thp_deposit=self.thp_deposit)
        new.allocator, new.n, new.buddy = self.allocator, self.n, self.buddy
        new.holes = set(self.holes)
        new.background = self.background | set(self.frame_owners())
        b = self.buddy
        b.high_water = b.live_at_high_water = 0
        b.reserved = len(new.holes) + len(new.background)
        if self.allocator == "akaros-2015":
            b.scanned = b.scans = 0
        if self.allocator == "linux":
            b.fallbacks, b.fallback_by, b.relabelled = 0, {}, 0
            b.alloc_mt = {}
            totals = {}
            for (pb, t), v in b.pb_alloc.items():
                totals[pb] = totals.get(pb, 0) + v
            b.pb_alloc = {(pb, UNMOVABLE): v for pb, v in totals.items() if v}
        return new

    # --- reading the state ----------------------------------------------------------
    def live_tables(self):
        for proc in self.procs.values():
            if not proc.failed:
                for t in self.tables_preorder(proc):
                    yield proc, t

    def state(self):
        kpt = [0, 0, 0, 0]
        ept = waste = deposited = 0
        for proc, t in self.live_tables():
            kpt[t.level - 1] += 1
            deposited += len(t.deposits)
            if t.ept is not None:
                ept += 1
                waste += not proc.vmm
        data = sum(1 << (9 * s) for (s, _) in self.refs if s < 2)
        kalloc = sum(1 << h[1] for h in self.handles.values() if h)
        return dict(kpt=kpt, deposited=deposited, ept=ept, waste=waste, data=data, kalloc=kalloc,
                    gigantic=sum(1 for (s, _) in self.refs if s == 2),
                    free=self.buddy.free_pages())

    def _update_peaks(self):
        s = self.state()
        kpt = sum(s["kpt"]) + s["deposited"]  # deposited tables are KPT pages at no level
        cur = dict(pt_pages=kpt + s["ept"], kpt_pages=kpt, deposited_pte_pages=s["deposited"], ept_pages=s["ept"],
                   wasted_ept_pages=s["waste"], data_pages=s["data"],
                   used_pages=self.n - len(self.holes) - s["free"])
        self.pt_sum += cur["pt_pages"]
        if cur["pt_pages"] > self.peak["pt_pages"] or self.c["events"] == 1:
            self.peak_hugepages = self.hugepage_blocks()
        if cur["used_pages"] > self.peak["used_pages"] and self.allocator != "akaros-2015":
            self.peak_buddyinfo = self.buddy.buddyinfo()
        for k, v in cur.items():
            self.peak[k] = max(self.peak[k], v)

    def check_invariants(self):
        """The invariants of docs/semantics.md#invariants; raises AssertionError naming the
        broken one."""
        s = self.state()
        used = sum(s["kpt"]) + s["deposited"] + s["ept"] + s["data"] + s["kalloc"] + len(self.background)
        memory = self.n - len(self.holes)
        assert used + s["free"] == memory, f"pages not conserved: {used} + {s['free']} != {memory}"
        owner = {}

        def claim(f, k, what):
            for x in range(f, f + (1 << k)):
                assert 0 <= x < self.n, f"{what} frame {x} outside memory"
                assert x not in owner, f"frame {x} handed out twice ({owner[x]}, {what})"
                owner[x] = what

        for f, k in self.buddy.blocks():
            claim(f, k, "free")
            if self.allocator == "akaros-2015":
                continue
            assert f % (1 << k) == 0, f"free block {f} not aligned to order {k}"
            if k < MAX_ORDER:
                assert self.buddy.order_at.get(f ^ (1 << k)) != k, f"free buddies {f} at order {k} not merged"
            if self.allocator == "linux":
                assert self.buddy.list_mt[f] in (0, 1, 2)
        for proc, t in self.live_tables():
            if t.kind == PAIR:
                assert t.ept == t.kpt + 1, "pair EPT page is not KPT page + 1"
                assert self.allocator == "akaros-2015" or t.kpt % 2 == 0, "a buddy pair is not order-1 aligned"
                claim(t.kpt, 1, "pair")
            else:
                claim(t.kpt, 0, "kpt")
                if t.ept is not None:
                    claim(t.ept, 0, "ept")
            if proc.mode not in (KPT, LAZY) and not any(self.fail):
                assert t.ept is not None, "a process with an EPT has a KPT table with no EPT twin"
            if self.reclaim == "empty":
                assert t.level == 4 or len(t.entries) > 0, "an empty table was not freed"
            anon = sum(1 for e in t.entries.values() if isinstance(e, Leaf) and e.size == 1 and self._deposits(e.frame))
            assert len(t.deposits) == (anon if t.level == 2 else 0), "deposited tables differ from anonymous 2 MiB pages"
            for d in t.deposits:
                claim(d, 0, "deposited")
        for (size, f) in self.refs:
            if size < 2:
                claim(f, 9 * size, "data")
        for h in self.handles.values():
            if h:
                claim(h[0], h[1], "kalloc")
        for x in self.background | self.holes:
            claim(x, 0, "background" if x in self.background else "hole")
        assert len(owner) == self.n

    def result(self):
        s = self.state()
        return dict(
            kpt_pages_by_level=dict(pml4=s["kpt"][3], pml3=s["kpt"][2], pml2=s["kpt"][1], pml1=s["kpt"][0]),
            kpt_pages=sum(s["kpt"]) + s["deposited"], deposited_pte_pages=s["deposited"],
            ept_pages=s["ept"], wasted_ept_pages=s["waste"], data_pages=s["data"],
            gigantic_pages=s["gigantic"], kalloc_pages=s["kalloc"], free_pages=s["free"],
            buddyinfo=self.buddy.buddyinfo(), peak=dict(self.peak),
            peak_buddyinfo=self.peak_buddyinfo, pt_sum=self.pt_sum, high_water=self.buddy.high_water,
            live_at_high_water=self.buddy.live_at_high_water,
            alloc_failures=list(self.fail), counters=dict(self.c),
            compaction_pages_by_order=list(self.compaction), hopeless_failures=list(self.hopeless),
            pt_requests=self.pt_requests, pt_requests_split=self.pt_split,
            hugepage_blocks=self.hugepage_blocks(), peak_hugepage_blocks=self.peak_hugepages,
            background_pages=len(self.background), hole_pages=len(self.holes),
            processes=sum(1 for p in self.procs.values() if not p.failed),
            vmm_processes=sum(1 for p in self.procs.values() if not p.failed and p.vmm),
            vmm_kpt_pages=sum(1 for proc, _ in self.live_tables() if proc.vmm),
        )
