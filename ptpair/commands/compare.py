"""`ptpair compare [TRACE...]`: every scheme side by side."""

from __future__ import annotations

import json
import sys

from ptpair import registry
from ptpair.commands import options

HELP = "replay traces under several schemes, side by side"


def add_arguments(p) -> None:
    p.add_argument("traces", nargs="*", metavar="TRACE", help="traces (default: the bundled traces)")
    p.add_argument("--baseline", default=registry.BASELINE, choices=registry.SCHEME_NAMES,
                   help=f"scheme the differences are taken against (default: {registry.BASELINE})")
    options.add_machine(p, multi=True)
    options.add_thp_deposit(p)
    options.add_pt_reclaim(p)
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="every scheme's full result as JSON")
    out.add_argument("--csv", action="store_true", help="the table as CSV")
    options.add_format(p)


def run(args) -> int:
    from ptpair import api
    from ptpair.reports.text import memory_text, paired_lines
    from ptpair.sim.initial import describe

    paths = args.traces or api.bundled_traces()
    cfg = options.config(args, scheme=args.schemes[0])  # checks the machine options once
    pages, allocator, reclaim = cfg.memory_pages, cfg.allocator, cfg.reclaim
    out_json = {}
    for n, path in enumerate(paths):
        trace = api.read_any(path, args.format, populate=args.populate)
        table, results = api.compare(trace, args.schemes, args.policy, pages, allocator, reclaim, cfg.initial,
                                     cfg.age, cfg.thp_deposit, cfg.pt_reclaim)
        if args.json:
            out_json[str(path)] = {s: r.to_dict() for s, r in results.items()}
        elif args.csv:
            table.insert(0, "trace", str(path))
            sys.stdout.write(table.to_csv(header=n == 0))
        else:
            import pandas as pd

            with pd.option_context("display.max_columns", None, "display.width", 200):
                print(("\n" if n else "") + f"{path}: {len(trace)} events, {pages} pages of memory"
                      f"{memory_text(describe(cfg))}, policy {args.policy}, allocator {allocator}, reclaim {reclaim}")
                print(table.to_string())
            if args.baseline in results:
                print("\n".join(paired_lines(api.results_frame(results), args.baseline)))
    if args.json:
        # one trace: {scheme: result}; several: {trace: {scheme: result}}
        print(json.dumps(next(iter(out_json.values())) if len(out_json) == 1 else out_json, indent=2))
    return 0
