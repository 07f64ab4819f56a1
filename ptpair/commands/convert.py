"""`ptpair convert IN... -o OUT`: any input to a canonical CSV or Parquet trace."""

from __future__ import annotations

import sys

from ptpair.commands import options
from ptpair.commands.messages import report_counts

HELP = "any input (canonical, strace log, perf kmem log) to a canonical CSV or Parquet trace"


def add_arguments(p) -> None:
    p.add_argument("input", nargs="+", help="input file (several: the per-pid files of strace -ff)")
    p.add_argument("-o", "--output", required=True, help="output .csv or .parquet")
    p.add_argument("--lenient", action="store_true", help="skip bad lines and count them by reason")
    options.add_format(p)


def run(args) -> int:
    from ptpair import api

    src = args.input[0]
    if (len(args.input) == 1 and not args.lenient and str(args.output).endswith(".parquet")
            and (args.format or api.detect(src)) == "canonical"):
        # canonical to Parquet: streamed a chunk at a time, memory bounded whatever the length
        from ptpair.traces.format import ALL_COLUMNS

        from ptpair.traces.machineinfo import read_machine

        rows = api.write_parquet_chunks(api.iter_trace(src, columns=ALL_COLUMNS), args.output, read_machine(src))
        print(f"wrote {args.output}: {rows} events", file=sys.stderr)
        return 0
    trace = api.read_any(args.input if len(args.input) > 1 else src, args.format, lenient=args.lenient,
                         populate=args.populate)
    report_counts(trace)
    api.write_trace(trace, args.output)
    print(f"wrote {args.output}: {len(trace)} events", file=sys.stderr)
    return 0
