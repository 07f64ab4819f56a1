"""Every vocabulary of ptpair, declared once: schemes, kernels, allocators, policies,
reclaim rules, input formats, synthetic workloads and figure kinds.

The command line, sweep grids, the report, the simulator and the plots all derive their
lists from here, so adding a scheme means adding one `Scheme` below and teaching the
machine (sim/schemes.py) and the reference machine (tests/reference/machine.py) what it
does; tests/test_registry.py walks every registry through the CLI, sweep validation and
the report. This module imports nothing heavy: `ptpair --help` reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

# Okabe & Ito's (2008) colour-blind-safe palette: every scheme keeps one colour everywhere.
OKABE_ITO = {
    "black": "#000000", "orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73",
    "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7",
}


@dataclass(frozen=True)
class Scheme:
    """Where a process's EPT pages come from, and when (docs/semantics.md#schemes).

    The position in SCHEMES is the scheme's number in the compiled core."""

    name: str
    summary: str
    color: str
    marker: str
    default: bool  # compared by default (`compare`, `stats`, sweeps, the report)


SCHEMES = (
    Scheme("pair", "the upper page of each table's order-1 block, for every process (Akaros after the change)",
           OKABE_ITO["vermillion"], "o", True),
    Scheme("separate", "separate order-0 pages, only once a process becomes a VMM (Akaros before it)",
           OKABE_ITO["blue"], "s", True),
    Scheme("separate-eager", "separate order-0 pages, for every process (pair's waste without its contiguity)",
           OKABE_ITO["green"], "^", True),
    Scheme("pair-on-vmm", "order-0 tables moved into pairs when a process becomes a VMM (a hybrid)",
           OKABE_ITO["purple"], "D", True),
    Scheme("separate-lazy", "an EPT root at `vmm`, then EPT tables as new pages' walks need them "
                            "(Akaros before the change, as it was)", OKABE_ITO["sky"], "v", False),
)
SCHEME_NAMES = tuple(s.name for s in SCHEMES)
DEFAULT_SCHEMES = tuple(s.name for s in SCHEMES if s.default)
BY_SCHEME = {s.name: s for s in SCHEMES}

# The comparison every question of the report is about, and the one the difference is taken against.
PAIR, BASELINE = "pair", "separate"

ALLOCATORS = ("buddy", "akaros-2015", "linux")  # sim/allocator.py: the code is the position
ALLOCATOR_HELP = "page allocator: buddy (default), akaros-2015, or linux (grouping by mobility)"
POLICIES = ("address", "lifo")  # buddy free-list order (docs/semantics.md#allocator)
RECLAIMS = ("empty", "exit", "linux")  # free a table once empty, only at exit (Akaros), or as Linux does (VMAs)


@dataclass(frozen=True)
class Kernel:
    """A `--kernel` preset: an allocator and a reclaim rule, and the schemes the report
    replays under it (for Akaros, commit ddb9fa78's before and after)."""

    name: str
    allocator: str
    reclaim: str
    report_schemes: tuple | None  # None: the report's schemes


KERNELS = (
    Kernel("akaros-2015", "akaros-2015", "exit", ("separate-lazy", "pair")),
    Kernel("linux", "linux", "linux", None),
)
BY_KERNEL = {k.name: k for k in KERNELS}
DEFAULT_MACHINE = ("buddy", "empty")  # (allocator, reclaim) without --kernel

FORMATS = ("canonical", "strace", "kmem", "perf")  # input formats (traces/readers.py)
WORKLOADS = ("fork-heavy", "kernel-churn", "mixed", "sparse", "vmm-heavy")  # traces/synth.py
FIGURE_FORMATS = ("svg", "pdf", "png")
# paired statistics (analysis/inference.py): the estimator (with its interval and test) and
# the p adjustment across a table; the first of each is the default
ESTIMATORS = ("hodges-lehmann", "mean")
ADJUSTMENTS = ("holm", "bh", "none")

# Figure kinds (reports/plots.py draws one per kind). Per-trace kinds are named KIND__TRACE.
PER_TRACE_FIGURES = ("pt_memory", "buddyinfo", "frag_index", "failures_memory", "pt_processes", "compaction",
                     "hugepages")
FIGURES = PER_TRACE_FIGURES + ("minmem", "breakeven", "decomposition", "walk_cost", "akaros_2015",
                               "linux_pageblocks", "walk_ns", "aged_pressure", "vmpte")


def kernel_machine(kernel: str | None) -> tuple[str, str]:
    """(allocator, reclaim) of a --kernel preset; the default machine for None."""
    if kernel is None:
        return DEFAULT_MACHINE
    k = BY_KERNEL[kernel]
    return k.allocator, k.reclaim


def check(kind: str, value: str, known) -> str:
    """`value` if it is in `known`, else ValueError naming the choices."""
    if value not in known:
        raise ValueError(f"unknown {kind} {value!r}; choose from {', '.join(known)}")
    return value
