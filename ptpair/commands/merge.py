"""`ptpair merge TRACE... -o OUT`: traces merged by time."""

from __future__ import annotations

import sys

HELP = "merge traces by time (e.g. a kmem trace as background churn of a mapping trace)"


def add_arguments(p) -> None:
    p.add_argument("inputs", nargs="+", metavar="TRACE")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--align", choices=("none", "start"), default="none",
                   help="none: the traces share a clock (ptpair's recorders use the real-time clock); "
                        "start: shift each trace to start at the first one's start")


def run(args) -> int:
    from ptpair import api
    from ptpair.traces.merge import merge

    traces = [api.read_any(p) for p in args.inputs]
    out, note = merge(traces, align=args.align)
    if note:
        print(f"ptpair merge: {note}", file=sys.stderr)
    api.write_trace(out, args.output)
    print(f"wrote {args.output}: {len(out)} events from {len(traces)} traces", file=sys.stderr)
    return 0
