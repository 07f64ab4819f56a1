"""Option groups and argument types shared by the verbs.

Argument types turn text into values at parse time, so a bad value is reported by
argparse as `ptpair VERB: error: argument --memory: ...` with exit status 2, before any
work starts. Every list of choices comes from ptpair/registry.py.
"""

from __future__ import annotations

import argparse
import sys

from ptpair import registry
from ptpair.errors import UsageError
from ptpair.traces.units import size_pages


MAX_FRAMES = 2**31 - 2  # the simulator's largest memory (sim/machine.py Config)


def _integer(text, low: int, high: int | None, bounds: str) -> int:
    """An integer in [low, high] (no upper bound for None); `bounds` words the range."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected an integer") from None
    if n < low or (high is not None and n > high):
        raise argparse.ArgumentTypeError(f"{text}: must be {bounds}")
    return n


def frames(text) -> int:
    """A count of 4-KiB frames, 1 .. MAX_FRAMES."""
    return _integer(text, 1, MAX_FRAMES, f"1 .. {MAX_FRAMES} frames (4-KiB pages)")


def memory(text: str) -> int:
    """A memory size ('4GiB', '512MiB', bytes) -> 4-KiB frames, at most MAX_FRAMES."""
    try:
        n = size_pages(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if n > MAX_FRAMES:
        raise argparse.ArgumentTypeError(f"{text}: at most {MAX_FRAMES} frames (8 TiB) can be simulated")
    return n


def memories(text: str) -> list[int]:
    """Comma-separated memory sizes -> frames each."""
    return [memory(m) for m in text.split(",")]


def choices_list(kind: str, known) -> callable:
    """An argument type for a comma-separated list of names from `known` (at least one)."""
    def parse(text: str) -> list[str]:
        out = [s.strip() for s in text.split(",") if s.strip()]
        bad = [s for s in out if s not in known]
        if bad or not out:
            raise argparse.ArgumentTypeError(f"unknown {kind}(s) {', '.join(bad) or '(none)'}; "
                                             f"choose from {', '.join(known)}")
        return out
    parse.__name__ = kind  # argparse names the type in its messages
    return parse


schemes = choices_list("scheme", registry.SCHEME_NAMES)
policies = choices_list("policy", registry.POLICIES)


def seeds(text: str) -> list[int]:
    """'1-10' or '1,2,5' -> seeds."""
    try:
        if "-" in text and "," not in text:
            a, b = text.split("-", 1)
            out = list(range(int(a), int(b) + 1))
        else:
            out = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a range A-B or a list A,B,C") from None
    if not out:
        raise argparse.ArgumentTypeError(f"{text!r}: no seeds")
    if len(set(out)) < len(out):  # a seed twice would be one replicate counted twice
        raise argparse.ArgumentTypeError(f"{text!r}: a seed is given twice")
    return out


def fractions(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected numbers separated by commas") from None


def populate(text: str):
    """strace logs: 'all', 'none', or a fraction in (0, 1]."""
    if text in ("all", "none"):
        return text
    try:
        f = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: all, none or a fraction in (0, 1]") from None
    if not 0 < f <= 1:
        raise argparse.ArgumentTypeError(f"{text}: a fraction must be in (0, 1]")
    return f


def nonnegative(text: str) -> int:
    return _integer(text, 0, None, "0 or more")


def positive(text: str) -> int:
    return _integer(text, 1, None, "at least 1")


def level(text: str) -> float:
    """A confidence level, strictly between 0 and 1 (0.95, 0.975)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number such as 0.95") from None
    if not 0 < v < 1:
        raise argparse.ArgumentTypeError(f"{text}: a confidence level is between 0 and 1 (e.g. 0.95)")
    return v


# --- option groups ---------------------------------------------------------------------
DEFAULT_MEMORY = "4GiB"


def add_memory(p, default: str | None = DEFAULT_MEMORY) -> None:
    """--memory SIZE or --memory-pages N (one of them)."""
    mem = p.add_mutually_exclusive_group()
    mem.add_argument("--memory", type=memory, default=None, metavar="SIZE",
                     help=f"simulated memory size (default: {default})" if default else "simulated memory size")
    mem.add_argument("--memory-pages", type=frames, default=None, metavar="N",
                     help="simulated memory in 4-KiB frames (instead of --memory)")
    p.set_defaults(memory_default=None if default is None else memory(default))


def memory_pages(args) -> int | None:
    """Frames of simulated memory from the memory group (None: not given, no default);
    with --initial, the map's (giving a memory size too is a usage error)."""
    given = args.memory_pages if args.memory_pages is not None else args.memory
    if getattr(args, "initial", None) is not None:
        if given is not None:
            raise UsageError("--memory/--memory-pages with --initial: the memory is the free map's")
        args.initial = resolve_live(args.initial)
        from ptpair.sim.initial import map_frames

        return map_frames(args.initial)
    return given if given is not None else args.memory_default


def resolve_live(initial: str) -> str:
    """--initial: `live` is this machine's free map, captured now and saved (its path is
    returned and printed, so the run can be repeated); a file is itself."""
    if initial != "live":
        return initial
    from ptpair.traces.freemap import capture_to_cache

    path = capture_to_cache()
    print(f"ptpair: this machine's free map saved to {path} (rerun with --initial {path})", file=sys.stderr)
    return path


def add_initial(p) -> None:
    """--initial and --age: the memory a replay starts from (sim/initial.py)."""
    p.add_argument("--initial", metavar="FILE|live",
                   help="start from a free map (`ptpair record freemap`; the corpus ships one), or `live`: "
                        "this machine's now (needs root; saved under the cache directory). The memory size is "
                        "the map's")
    p.add_argument("--age", metavar="TRACE|synthetic:free=F,unusable=U,seed=S", type=age,
                   help="age memory first: replay a warm-up trace and keep what it leaves allocated as "
                        "background, or let a seeded ager leave a fraction F free with unusable free space "
                        "index U at order 9")


def age(text: str) -> str:
    """--age: a warm-up trace, or a synthetic ager spec (checked here)."""
    from ptpair.traces.ager import is_ager, parse_ager

    if is_ager(text):
        try:
            return parse_ager(text).spec()
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    return text


def add_machine(p, multi: bool = False) -> None:
    """The options that make a machine: scheme(s), memory, policy, allocator, reclaim, kernel."""
    if multi:
        p.add_argument("--schemes", type=schemes, default=list(registry.DEFAULT_SCHEMES),
                       help=f"comma-separated schemes (default: {','.join(registry.DEFAULT_SCHEMES)}; "
                            f"also {', '.join(s for s in registry.SCHEME_NAMES if s not in registry.DEFAULT_SCHEMES)})")
    else:
        p.add_argument("--scheme", default="pair", choices=registry.SCHEME_NAMES, help="(default: pair)")
    add_memory(p)
    add_initial(p)
    add_policy(p)
    p.add_argument("--allocator", choices=registry.ALLOCATORS, default=None, help=registry.ALLOCATOR_HELP)
    p.add_argument("--reclaim", choices=registry.RECLAIMS, default=None,
                   help="when page tables are freed: once empty (empty, default), only at exit (exit, Akaros), "
                        "or as Linux does from the trace's VMA events (linux; docs/semantics.md#page-table-reclaim)")
    presets = "; ".join(f"{k.name} = --allocator {k.allocator} --reclaim {k.reclaim}" for k in registry.KERNELS)
    p.add_argument("--kernel", choices=sorted(registry.BY_KERNEL), default=None, help=f"preset: {presets}")


def add_thp_deposit(p) -> None:
    p.add_argument("--thp-deposit", choices=("on", "off"), default=None,
                   help="deposit a PTE table with every anonymous 2 MiB page, as Linux does (default: on, off under "
                        "the akaros-2015 allocator; docs/semantics.md#thp-deposits)")


def add_pt_reclaim(p) -> None:
    p.add_argument("--pt-reclaim", choices=("on", "off"), default=None,
                   help="under --reclaim linux: MADV_DONTNEED frees the PTE tables it empties whole (Linux 6.14+, "
                        "CONFIG_PT_RECLAIM; default: as the trace's recorded machine says, else on)")


def add_policy(p) -> None:
    p.add_argument("--policy", default="address", choices=registry.POLICIES,
                   help="buddy free-list policy (default: address)")


def kernel_options(args) -> tuple[str, str]:
    """(allocator, reclaim) from --kernel, overridden by --allocator/--reclaim."""
    allocator, reclaim = registry.kernel_machine(getattr(args, "kernel", None))
    return (getattr(args, "allocator", None) or allocator, getattr(args, "reclaim", None) or reclaim)


def config(args, scheme: str | None = None):
    """The machine Config of the parsed machine options."""
    from ptpair.sim.machine import Config

    allocator, reclaim = kernel_options(args)
    try:
        deposit = getattr(args, "thp_deposit", None)
        pt_reclaim = getattr(args, "pt_reclaim", None)
        return Config(scheme or args.scheme, args.policy, memory_pages(args), allocator, reclaim,
                      initial=getattr(args, "initial", None), age=getattr(args, "age", None),
                      thp_deposit=None if deposit is None else deposit == "on",
                      pt_reclaim=None if pt_reclaim is None else pt_reclaim == "on")
    except ValueError as e:  # a combination the options cannot make (a map and a synthetic ager)
        raise UsageError(str(e)) from None


def resizable_memory(cfg, what: str) -> None:
    """A usage error unless the memory size of `cfg` (a Config, or the parsed options) may
    change -- pristine or the synthetic ager: `what` searches or varies it."""
    from ptpair.sim.initial import fixed_memory

    why = fixed_memory(getattr(cfg, "initial", None), getattr(cfg, "age", None))
    if why:
        raise UsageError(f"{what} with --initial or --age TRACE: {why} (use --age synthetic:...)")


def add_format(p) -> None:
    """--format and --populate: how an input file is read."""
    p.add_argument("--format", choices=registry.FORMATS, default=None,
                   help="input format (default: detected from the content)")
    p.add_argument("--populate", type=populate, default="all", metavar="all|none|F",
                   help="strace logs: pages a mapping populates -- all (default, an upper bound), none, "
                        "or a fraction")


def add_output_format(p, csv: bool = True) -> None:
    """--json, or --csv: one of them."""
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON")
    if csv:
        out.add_argument("--csv", action="store_true", help="print CSV")


def add_engine(p) -> None:
    """Where many replays run: local processes (default) or a Dask cluster."""
    p.add_argument("--engine", choices=("local", "dask"), default="local")
    p.add_argument("--scheduler", help="Dask scheduler address, tcp://HOST:PORT (with --engine dask)")
    p.add_argument("--workers", type=positive, default=None, help="local worker processes (default: all cores)")


def engine(args):
    from ptpair.analysis.sweep import DaskEngine, LocalEngine

    if args.engine == "dask":
        if not args.scheduler:
            raise UsageError("--engine dask needs --scheduler tcp://HOST:PORT")
        return DaskEngine(args.scheduler)
    return LocalEngine(args.workers)


def command_after_dashes(command: list[str]) -> list[str]:
    """The command given after `--` (argparse.REMAINDER keeps the `--`)."""
    return command[1:] if command and command[0] == "--" else list(command or [])
