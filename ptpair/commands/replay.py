"""`ptpair replay TRACE`: one replay under one scheme."""

from __future__ import annotations

import json
import time

from ptpair.commands import options
from ptpair.commands.messages import report_skipped
from ptpair.errors import UsageError

HELP = "replay a trace under one scheme"


def add_arguments(p) -> None:
    p.add_argument("trace", help="a trace in any supported format (canonical CSV or Parquet, strace, kmem)")
    options.add_machine(p)
    options.add_thp_deposit(p)
    options.add_pt_reclaim(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--timing", action="store_true", help="include read and replay times")
    p.add_argument("--lenient", action="store_true",
                   help="skip bad lines and impossible events, and report how many by reason")
    p.add_argument("--check", action="store_true",
                   help="verify every invariant after every event (slow; names the first event that breaks one)")
    p.add_argument("--sample-every", type=options.positive, default=None, metavar="K",
                   help="sample the state every K events (and at the end)")
    p.add_argument("--series", metavar="FILE.csv", help="write the sampled time series (with --sample-every)")
    options.add_format(p)


def run(args) -> int:
    from ptpair import api
    from ptpair.reports.text import replay_lines

    if args.series and not args.sample_every:
        raise UsageError("--series needs --sample-every K")
    t1 = time.perf_counter()
    res = api.replay(args.trace, options.config(args), sample_every=args.sample_every,  # streamed in chunks
                     lenient=args.lenient, check=args.check, fmt=args.format, populate=args.populate)
    report_skipped(res, args.lenient)
    t2 = time.perf_counter()
    d = api.enriched_dict(res)
    if args.series:
        from ptpair.traces.atomic import atomic_path

        with atomic_path(args.series) as tmp:
            api.series_frame(res).to_csv(tmp, index=False)
    if args.timing:
        d["timing"] = {"replay_s": round(t2 - t1, 6),  # reading included: the trace is streamed
                       "events_per_s": round(res.events / (t2 - t1), 1) if t2 > t1 else None}
    if args.json:
        print(json.dumps(d, indent=2))
    else:
        print("\n".join(replay_lines(d, args.trace, args.timing)))
    return 0
