"""`ptpair minmem TRACE`: the smallest memory that runs without allocation failures."""

from __future__ import annotations

import json

from ptpair.commands import options
from ptpair.errors import UsageError

HELP = "smallest memory (to the frame) with no allocation failure, and the pressure margin"


def add_arguments(p) -> None:
    p.add_argument("trace")
    options.add_machine(p)
    p.add_argument("--step", type=options.frames, default=1, metavar="N",
                   help="search in steps of N frames (default: 1, frame-exact; 256 = MiB steps)")
    p.add_argument("--max-probes", type=options.positive, default=None, metavar="N",
                   help="replays the search may run before it stops unverified (default: 200)")
    p.add_argument("--json", action="store_true")


def run(args) -> int:
    from ptpair import api
    from ptpair.analysis.minmem import MAX_PROBES, NoCleanSize, min_memory
    from ptpair.reports.text import minmem_line

    if args.memory is not None or args.memory_pages is not None:
        raise UsageError("minmem searches the memory size: --memory does not apply")
    options.resizable_memory(args, "minmem")  # before a live map is captured for nothing
    cfg = options.config(args)
    options.resizable_memory(cfg, "minmem")
    allocator, reclaim = cfg.allocator, cfg.reclaim
    trace = api.read_any(args.trace)
    try:
        mm = min_memory(trace, args.scheme, args.policy, allocator, reclaim, step=args.step,
                        max_probes=args.max_probes or MAX_PROBES, age=cfg.age)
    except NoCleanSize as e:  # the trace's or the budget's limit, not a bug
        raise UsageError(f"{args.trace}: {e}") from None
    if args.json:
        print(json.dumps({"trace": str(args.trace), "scheme": args.scheme, "policy": args.policy,
                          "allocator": allocator, "reclaim": reclaim, "age": cfg.age, **mm.to_dict()}, indent=2))
    else:
        print(minmem_line(args.trace, args.scheme, args.policy, mm))
    return 0
