"""Allocator pressure on aged memory: the report's experiments on memory that is not pristine.

Three kinds of starting memory (sim/initial.py), each replayed under the schemes of
AGED_SCHEMES:

* `free map`: the corpus's recorded free map of a real machine (the memory is the map's);
* `kmem-aged`: the corpus's perf kmem trace replayed first as a warm-up, what it leaves
  allocated kept as background. The memory is the warm-up's report memory plus the
  measured trace's, so the measured trace finds about its usual headroom, in a free
  memory the warm-up has broken up;
* `synthetic U=u`: the seeded ager at each unusable free space index level u of
  AGER_LEVELS, with a fraction AGER_FREE of memory free. The memory is the trace's report
  memory / AGER_FREE, so the free frames at start are about the report memory. Each level
  runs over several ager seeds (intervals) and searches the pressure margin (a minimum-
  memory search, re-aging every size probed: analysis/minmem.py).

Every task returns plain rows; `frame` gathers them in a fixed order.
"""

from __future__ import annotations

import pandas as pd

from ptpair import registry

AGED_SCHEMES = (registry.PAIR, registry.BASELINE, "separate-eager")
AGER_FREE = 0.25  # the fraction of memory the synthetic ager leaves free
AGER_LEVELS = (0.1, 0.5, 0.9)  # unusable free space index targets at order 9
MAP, KMEM, SYNTHETIC = "free map", "kmem-aged", "synthetic"
HUGE_COLUMNS = ("free", "movable_only", "wasted_ept", "page_tables", "kalloc", "background")


def memory_label(kind: str, level: float | None = None) -> str:
    return f"{SYNTHETIC} U={level:g}" if kind == SYNTHETIC else kind


def tasks(traces: dict, mem: dict, warmup: tuple | None, freemap: str | None, policy: str, ager_seeds: int,
          schemes=AGED_SCHEMES) -> list:
    """The aged tasks of a report. traces: name -> source; mem: name -> report memory
    (frames); warmup: (source, report memory) of the kmem warm-up, or None; freemap: a
    free map file, or None."""
    from ptpair.traces.ager import AgerSpec

    out = []
    for name, path in traces.items():
        for s in schemes:
            if freemap:
                out.append(("aged", name, path, s, policy, MAP, None, 0, None, freemap, None))
            if warmup and warmup[0] != path:
                out.append(("aged", name, path, s, policy, KMEM, None, 0, mem[name] + warmup[1], None, warmup[0]))
            pages = int(mem[name] / AGER_FREE)
            for level in AGER_LEVELS:
                for seed in range(1, ager_seeds + 1):
                    spec = AgerSpec(AGER_FREE, level, seed).spec()
                    out.append(("aged", name, path, s, policy, SYNTHETIC, level, seed, pages, None, spec))
    return out


def run(task: tuple) -> dict:
    """One aged replay: its figures (and, on synthetic memory, its pressure margin)."""
    from ptpair.analysis.catalogue import metrics_row
    from ptpair.analysis.minmem import min_memory
    from ptpair.sim.machine import Config
    from ptpair.sim.replay import replay
    from ptpair.traces.sources import load

    _, name, path, scheme, policy, kind, level, seed, pages, initial, age = task
    trace = load(path)
    r = replay(trace, Config(scheme, policy, pages, initial=initial, age=age))
    row = {"trace": name, "memory": memory_label(kind, level), "kind": kind, "unusable_target": level,
           "ager_seed": seed or None, "scheme": scheme, "memory_pages": r.config.memory_pages,
           "background_pages": r.final["background_pages"], **metrics_row(r)}
    for when, h in (("final", r.final["hugepage_blocks"]), ("peak", r.peak["hugepage_blocks"])):
        flat = {"free": h["free"], "movable_only": h["movable_only"], **h["blocked"]}
        row.update({f"huge_{c}_{when}": flat[c] for c in HUGE_COLUMNS})
    if kind == SYNTHETIC:
        from ptpair.sim.initial import describe

        row["unusable_index"] = describe(r.config)["age"]["unusable_index"]
        mm = min_memory(trace, scheme, policy, age=age)
        row.update(min_memory_pages=mm.min_memory_pages, pressure_margin_pages=mm.pressure_margin_pages)
    return row


def frame(rows: list[dict], trace_order: list) -> pd.DataFrame:
    """The rows in report order: trace (as `trace_order`), memory kind, level, seed, scheme."""
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    order = {s: i for i, s in enumerate(AGED_SCHEMES)}
    kinds = {MAP: 0, KMEM: 1, SYNTHETIC: 2}
    key = df.assign(_t=df["trace"].map({t: i for i, t in enumerate(trace_order)}), _k=df["kind"].map(kinds),
                    _s=df["scheme"].map(order).fillna(len(order)), _l=df["unusable_target"].fillna(-1),
                    _d=df["ager_seed"].fillna(0))
    key = key.sort_values(["_t", "_k", "_l", "_d", "_s"], kind="stable")
    return key.drop(columns=["_t", "_k", "_s", "_l", "_d"]).reset_index(drop=True)
