"""`ptpair stats`: paired statistics of schemes across seeds of a synthetic workload, or
across recordings of one command taken as replicates."""

from __future__ import annotations

import json
import math
import os
import sys

from ptpair import registry
from ptpair.commands import options
from ptpair.errors import UsageError

HELP = "paired statistics of schemes across seeds of a synthetic workload, or across recordings"


def add_arguments(p) -> None:
    p.add_argument("--workload", default=None, choices=registry.WORKLOADS, help="synthetic workload (default mixed)")
    p.add_argument("--seeds", type=options.seeds, default=None, help="A-B or A,B,C (default 1-10)")
    p.add_argument("--events", type=options.positive, default=5000)
    p.add_argument("--traces", nargs="+", metavar="FILE", default=None,
                   help="recordings of the same command (e.g. ptpair record strace --repeat N) as the replicates, "
                        "instead of seeds of a synthetic workload")
    p.add_argument("--baseline", default=registry.BASELINE, choices=registry.SCHEME_NAMES)
    p.add_argument("--confidence", type=options.level, default=0.95, help="interval level, in (0, 1); the tests' "
                   "significance level is 1 - this (default 0.95)")
    p.add_argument("--estimator", choices=registry.ESTIMATORS, default=registry.ESTIMATORS[0],
                   help="hodges-lehmann (default: with the exact Wilcoxon interval and test) or mean (with the t "
                        "interval and the paired t test)")
    p.add_argument("--adjust", choices=registry.ADJUSTMENTS, default=registry.ADJUSTMENTS[0],
                   help="p adjustment across the table: holm (default), bh (Benjamini-Hochberg) or none")
    p.add_argument("--pressure", action="store_true",
                   help="also the pressure margin (frames needed beyond the live data; a minimum-memory "
                        "search per seed and scheme)")
    options.add_machine(p, multi=True)
    options.add_output_format(p)


def _runs(args, schemes, cfg):
    """(runs, unit column, units, what was compared)."""
    from ptpair.analysis.stats import recording_runs, seed_runs

    machine = dict(allocator=cfg.allocator, reclaim=cfg.reclaim, pressure=args.pressure, initial=cfg.initial,
                   age=cfg.age)
    if args.traces:
        if args.workload or args.seeds:
            raise UsageError("--traces takes recordings as the replicates: --workload and --seeds do not apply")
        if len(args.traces) < 2:
            raise UsageError("--traces needs at least two recordings of the command: one gives no variation")
        if len({os.path.realpath(t) for t in args.traces}) < len(args.traces):
            raise UsageError("--traces: a recording is given twice (it would count as two replicates)")
        df = recording_runs(args.traces, schemes, args.policy, cfg.memory_pages, **machine)
        return df, "recording", list(dict.fromkeys(df["recording"])), "recordings of one command as replicates"
    workload, seeds = args.workload or "mixed", args.seeds or list(range(1, 11))
    df = seed_runs(workload, seeds, schemes, args.events, args.policy, cfg.memory_pages, **machine)
    return df, "seed", seeds, f"{workload} (synthetic, {args.events} events each)"


def run(args) -> int:
    from ptpair.analysis.stats import DEFAULT_METRICS, level_warnings, per_unit_columns, stats_table
    from ptpair.reports.text import SEEDS_CAVEAT, frame_text, stats_rows, stats_title

    schemes = args.schemes if args.baseline in args.schemes else [args.baseline, *args.schemes]
    cfg = options.config(args, scheme=schemes[0])
    if args.pressure:
        options.resizable_memory(cfg, "--pressure")
    df, by, units, what = _runs(args, schemes, cfg)
    metrics = (*DEFAULT_METRICS, "pressure_margin_pages") if args.pressure else DEFAULT_METRICS
    table = stats_table(df, args.baseline, metrics, by, args.confidence, args.estimator, args.adjust)
    warnings = level_warnings(table, args.confidence)
    if args.json or args.csv:  # the output is data: warnings go to the terminal
        for w in warnings:
            print(f"ptpair stats: warning: {w}", file=sys.stderr)
    if args.json:
        print(json.dumps(_json(table, df, by, units, warnings), indent=2, allow_nan=False))
        return 0
    if args.csv:
        sys.stdout.write(per_unit_columns(df, table, by).to_csv(index=False))
        return 0
    print(frame_text(stats_rows(table), stats_title(what, by, units, args.baseline, table)))
    for w in warnings:
        print(f"warning: {w}")
    return 0


JSON_ROW = ("metric", "scheme", "identity", "estimate", "ci_low", "ci_high", "ci_level_attained", "p_value",
            "p_adjusted", "ratio", "ratio_ci_low", "ratio_ci_high", "n", "nonzero", "sd_difference", "mean_difference",
            "median_difference", "cohens_dz", "rank_biserial", "p_method", "agrees", "ratio_ci_method")


def _clean(v):
    """JSON value: NaN and infinities -> null (JSON has neither), numpy scalars -> Python."""
    if v is None or isinstance(v, str):
        return v
    v = v.item() if hasattr(v, "item") else v
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _json(table, df, by, units, warnings) -> dict:
    from ptpair.analysis.stats import paired_differences
    from ptpair.reports.text import SEEDS_CAVEAT

    at = table.attrs
    diffs = paired_differences(df, at["baseline"], by, list(dict.fromkeys(table["metric"])))
    rows = []
    for _, r in table.iterrows():
        d = diffs[(diffs["metric"] == r["metric"]) & (diffs["scheme"] == r["scheme"])]
        rows.append({**{k: _clean(r[k]) for k in JSON_ROW},
                     "per_" + by: [{by: _clean(u), "value": _clean(v), "baseline": _clean(b), "difference": _clean(x)}
                                   for u, v, b, x in zip(d[by], d["value"], d["baseline"], d["difference"])]})
    return {"n": len(units), "unit": by, "units": [_clean(u) for u in units], "baseline": at["baseline"],
            "adjustment": at["adjustment"], "estimator": at["estimator"], "ci_level": at["ci_level"],
            "warnings": warnings, "note": SEEDS_CAVEAT if by == "seed" else None, "rows": rows,
            "runs": [{k: _clean(v) for k, v in rec.items()} for rec in df.to_dict(orient="records")]}
