"""`ptpair validate TRACE`: check a trace without writing anything."""

from __future__ import annotations

from ptpair.commands.messages import report_skipped

HELP = "check a trace (fields and process life cycle) without writing anything"


def add_arguments(p) -> None:
    p.add_argument("trace")
    p.add_argument("--lenient", action="store_true", help="count bad lines by reason instead of stopping")


def run(args) -> int:
    """Read the trace and replay its life cycle; change nothing, write nothing."""
    from ptpair import api

    res = api.replay(args.trace, api.Config(memory_pages=1 << 18), lenient=args.lenient)
    report_skipped(res, args.lenient)
    print(f"{args.trace}: valid, {res.events} events"
          + (f" ({sum(res.skipped_lines.values())} bad lines skipped)" if res.skipped_lines and args.lenient
             else ""))
    return 0
