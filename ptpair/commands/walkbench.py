"""`ptpair walkbench TRACE`: the walks timed on real page tables."""

from __future__ import annotations

import json

from ptpair.commands import options
from ptpair.errors import UsageError

HELP = "time the walks on real page tables: lookups and range operations"


def add_arguments(p) -> None:
    p.add_argument("trace")
    p.add_argument("--schemes", type=options.schemes, default="pair,separate",
                   help="pair and one other (default: pair,separate)")
    p.add_argument("--pattern", choices=("sequential", "random", "both"), default="both")
    p.add_argument("--memory", type=options.memories, default="4GiB",
                   help="simulated memory, or several: 256MiB,4GiB")
    p.add_argument("--policy", type=options.policies, default="address", help="address, lifo, or address,lifo")
    p.add_argument("--cache", choices=("warm", "cold", "both"), default="warm")
    p.add_argument("--repeats", type=int, default=21, help="timed rounds (default 21)")
    p.add_argument("--lookups", type=int, default=200_000, help="lookups per round and pattern")
    p.add_argument("--json", action="store_true")
    options.add_format(p)


def run(args) -> int:
    from ptpair import api
    from ptpair.analysis.walkbench import NothingToWalk, walkbench_sweep
    from ptpair.reports.text import walkbench_lines

    if len(args.schemes) != 2 or "pair" not in args.schemes:
        raise UsageError("--schemes: pair and one scheme to compare it with, e.g. pair,separate")
    patterns = ("sequential", "random") if args.pattern == "both" else (args.pattern,)
    caches = ("warm", "cold") if args.cache == "both" else (args.cache,)
    if args.repeats < 3 or args.lookups < 1:
        raise UsageError("--repeats must be >= 3 and --lookups >= 1")
    trace = api.read_any(args.trace, args.format, populate=args.populate)
    try:
        res = walkbench_sweep(trace, args.schemes, patterns, args.memory, tuple(args.policy), caches,
                              repeats=args.repeats, lookups=args.lookups)
    except NothingToWalk as e:  # a property of the trace, said as such; any other error is ours
        raise UsageError(f"{args.trace}: {e}") from None
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print("\n".join(walkbench_lines(res, args.trace, patterns)))
    return 0
