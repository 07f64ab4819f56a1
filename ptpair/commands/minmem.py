"""`ptpair minmem TRACE`: the smallest memory that runs without allocation failures."""

from __future__ import annotations

import json

from ptpair.commands import options

HELP = "smallest memory (MiB steps) with no allocation failure"


def add_arguments(p) -> None:
    p.add_argument("trace")
    options.add_machine(p)
    p.add_argument("--json", action="store_true")


def run(args) -> int:
    from ptpair import api
    from ptpair.analysis.minmem import min_memory
    from ptpair.reports.text import minmem_line

    trace = api.read_any(args.trace)
    allocator, reclaim = options.kernel_options(args)
    mm = min_memory(trace, args.scheme, args.policy, allocator, reclaim)
    if args.json:
        print(json.dumps({"trace": str(args.trace), "scheme": args.scheme, "policy": args.policy,
                          "allocator": allocator, "reclaim": reclaim, **mm.to_dict()}, indent=2))
    else:
        print(minmem_line(args.trace, args.scheme, args.policy, mm))
    return 0
