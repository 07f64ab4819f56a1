"""`ptpair report`: the full comparative report (HTML, Markdown, figures, data, manifest)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
import sys

from ptpair import registry
from ptpair.commands import options
from ptpair.errors import UsageError

HELP = "the full comparative report: HTML, Markdown, figures, data, manifest"

# --quick: a fast look -- fewer seeds, shorter replicates, a shorter memory ladder, no timing
QUICK = dict(seeds=3, seed_events=1500, breakeven_fractions=(0.0, 0.5, 1.0), breakeven_seeds=2,
             memory_fractions=(0.95, 1.0, 1.1), samples=50, windows=100, walk=False, ager_seeds=2)


def add_arguments(p) -> None:
    p.add_argument("traces", nargs="*", metavar="TRACE",
                   help="traces (default: the bundled traces and the recorded corpus)")
    p.add_argument("--grid", metavar="GRID.toml", help="take traces, schemes, policy and memory from a sweep grid")
    p.add_argument("-o", "--output", default="ptpair-report", help="report folder (default: ptpair-report)")
    p.add_argument("--style", choices=("paper", "slides"), default="paper")
    p.add_argument("--formats", default=",".join(registry.FIGURE_FORMATS),
                   help="figure formats (default: svg,pdf,png)")
    p.add_argument("--schemes", type=options.schemes, default=None,
                   help=f"comma-separated schemes (default: {','.join(registry.DEFAULT_SCHEMES)})")
    options.add_policy(p)
    p.add_argument("--memory", type=options.memory, default=None,
                   help="fixed report memory (default: pair's peak use + headroom)")
    p.add_argument("--headroom", type=float, default=0.25,
                   help="report memory above pair's peak of frames in use (default: 0.25)")
    p.add_argument("--workloads", default=None,
                   help="synthetic workloads replicated over seeds, comma-separated, or none (default: all five)")
    p.add_argument("--seeds", type=options.positive, default=None, help="seeds per synthetic workload (default: 6)")
    p.add_argument("--seed-events", type=options.positive, default=None,
                   help="events per seed replicate (default: 5000)")
    p.add_argument("--initial", metavar="FILE|live",
                   help="the free map of the aged-memory section (default: the corpus's; live: this machine's now, "
                        "needs root)")
    p.add_argument("--ager-seeds", type=options.positive, default=None,
                   help="synthetic ager seeds per unusable-index level (default: 3, 2 with --quick)")
    p.add_argument("--no-aged", dest="aged", action="store_false", help="leave out the aged-memory section")
    p.add_argument("--no-vmpte", dest="vmpte", action="store_false",
                   help="leave out the check of the replay against Linux's VmPTE (the corpus's perf recordings)")
    p.add_argument("--quick", action="store_true",
                   help="fewer seeds and shorter ladders, no walk timing: a fast first look")
    p.add_argument("--walk", dest="walk", action="store_true", default=None,
                   help="time the walks on real tables (default: on, off with --quick); timings are not "
                        "byte-reproducible")
    p.add_argument("--no-walk", dest="walk", action="store_false")
    options.add_engine(p)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--timings", metavar="FILE",
                   help="write the wall time of each phase (replays, walk timing, figures, ...) to FILE as JSON")


def _workloads(text: str) -> tuple:
    names = tuple(w.strip() for w in text.split(",") if w.strip() and w.strip() != "none")
    bad = [w for w in names if w not in registry.WORKLOADS]
    if bad:
        raise UsageError(f"--workloads: unknown {', '.join(bad)}; choose from {', '.join(registry.WORKLOADS)}")
    return names


def params(args):
    """The ReportParams of the parsed options."""
    from ptpair.analysis.experiments import ReportParams

    kw = {"policy": args.policy, "headroom": args.headroom, "workers": args.workers}
    if args.schemes:
        kw["schemes"] = tuple(args.schemes)
    if args.memory:
        kw["memory_pages"] = args.memory
    if args.quick:
        kw.update(QUICK)
    if args.workloads is not None:
        kw["workloads"] = _workloads(args.workloads)
    # options that override the default (or --quick) only where given
    kw.update({k: getattr(args, k) for k in ("walk", "seeds", "seed_events", "ager_seeds")
               if getattr(args, k) is not None})
    kw["aged"] = args.aged
    kw["vmpte"] = args.vmpte
    if args.initial:
        args.initial = options.resolve_live(args.initial)
        from ptpair.sim.initial import map_frames

        map_frames(args.initial)  # a bad map is an error now, not in a worker
        kw["freemap"] = str(Path(args.initial).resolve())
    return ReportParams(**kw)


def run(args) -> int:
    from ptpair.analysis.experiments import grid_inputs
    from ptpair.reports import build
    from ptpair.traces.sources import default_traces, name_traces

    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    bad = [f for f in formats if f not in registry.FIGURE_FORMATS]
    if bad or not ({"svg", "png"} & set(formats)):
        raise UsageError(f"--formats: choose from svg,pdf,png, with svg or png among them (got {args.formats!r})")
    p = params(args)
    if args.grid:
        if args.traces:
            raise UsageError("give traces or --grid, not both")
        traces, overrides = grid_inputs(args.grid)
        p = dataclasses.replace(p, **overrides)
    elif args.traces:
        traces = name_traces(args.traces)
    else:
        traces = default_traces()
    from ptpair.analysis.phases import Phases

    phases = Phases()
    with phases("total"):
        out = build.report(traces, args.output, p, args.style, formats, progress=not args.no_progress,
                           engine=options.engine(args), phases=phases)
    if args.timings:
        from ptpair.traces.atomic import write_text_atomic

        write_text_atomic(args.timings, json.dumps(phases.rounded(), indent=2) + "\n")
    print(f"wrote {out}/index.html (and report.md, figures/, data/, manifest.json)", file=sys.stderr)
    return 0
