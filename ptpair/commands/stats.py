"""`ptpair stats`: paired statistics of schemes across seeds of a synthetic workload."""

from __future__ import annotations

import json
import sys

from ptpair import registry
from ptpair.commands import options

HELP = "paired statistics of schemes across seeds of a synthetic workload"


def add_arguments(p) -> None:
    p.add_argument("--workload", default="mixed", choices=registry.WORKLOADS)
    p.add_argument("--seeds", type=options.seeds, default="1-10", help="A-B or A,B,C (default 1-10)")
    p.add_argument("--events", type=options.positive, default=5000)
    p.add_argument("--baseline", default=registry.BASELINE, choices=registry.SCHEME_NAMES)
    p.add_argument("--confidence", type=float, default=0.95)
    p.add_argument("--pressure", action="store_true",
                   help="also the pressure margin (frames needed beyond the live data; a minimum-memory "
                        "search per seed and scheme)")
    options.add_machine(p, multi=True)
    options.add_output_format(p)


def run(args) -> int:
    from ptpair.analysis.stats import DEFAULT_METRICS, seed_runs, stats_table
    from ptpair.reports.text import frame_text, stats_title

    schemes = args.schemes if args.baseline in args.schemes else [args.baseline, *args.schemes]
    cfg = options.config(args, scheme=schemes[0])
    if args.pressure:
        options.resizable_memory(cfg, "--pressure")
    df = seed_runs(args.workload, args.seeds, schemes, args.events, args.policy, cfg.memory_pages,
                   allocator=cfg.allocator, reclaim=cfg.reclaim, pressure=args.pressure, initial=cfg.initial,
                   age=cfg.age)
    metrics = (*DEFAULT_METRICS, "pressure_margin_pages") if args.pressure else DEFAULT_METRICS
    table = stats_table(df, args.baseline, metrics, confidence=args.confidence)
    if args.json:
        print(json.dumps({"runs": df.to_dict(orient="records"), "stats": table.to_dict(orient="records")},
                         indent=2, default=float))
        return 0
    cols = ["metric", "scheme", "n", "mean_difference", "ci_low", "ci_high", "p_value", "cohens_dz",
            "rank_biserial"]
    if args.csv:
        sys.stdout.write(table[cols].to_csv(index=False))
    else:
        print(frame_text(table[cols], stats_title(args.workload, args.seeds, args.events, args.baseline,
                                                  args.confidence)))
    return 0
