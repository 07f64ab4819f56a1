"""`ptpair synth`: a seeded synthetic workload trace."""

from __future__ import annotations

import json
import sys

from ptpair import registry
from ptpair.commands import options
from ptpair.errors import UsageError

HELP = "write a seeded synthetic workload trace"


def add_arguments(p) -> None:
    p.add_argument("--workload", default="mixed", choices=registry.WORKLOADS)
    p.add_argument("--seed", type=options.nonnegative, default=0)
    p.add_argument("--events", type=options.positive, default=10_000)
    p.add_argument("--processes", type=int, default=None, help="processes alive at once")
    p.add_argument("--vmm-fraction", dest="vmm_fraction", type=float, default=None)
    p.add_argument("--lifetime", type=float, default=None, help="mean events a process lives")
    p.add_argument("--param", action="append", metavar="NAME=VALUE",
                   help="any other workload parameter (see docs/trace-format.md), repeatable")
    p.add_argument("-o", "--output", required=True, help="output .csv or .parquet")


def run(args) -> int:
    from ptpair import api

    overrides = {}
    for item in args.param or []:
        if "=" not in item:
            raise UsageError(f"--param {item!r}: expected NAME=VALUE")
        k, v = item.split("=", 1)
        try:
            overrides[k.strip()] = json.loads(v)
        except json.JSONDecodeError:
            raise UsageError(f"--param {item!r}: VALUE must be a number or JSON") from None
    for name in ("processes", "vmm_fraction", "lifetime"):
        val = getattr(args, name)
        if val is not None:
            overrides[name] = val
    try:  # unknown parameter names are the user's error; anything synth raises later is ours
        api.workload_params(args.workload, **overrides)
    except ValueError as e:
        raise UsageError(str(e)) from None
    trace = api.synth(args.workload, seed=args.seed, events=args.events, **overrides)
    api.write_trace(trace, args.output)
    print(f"wrote {args.output}: {len(trace)} events ({args.workload}, seed {args.seed})", file=sys.stderr)
    return 0
