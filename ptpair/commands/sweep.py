"""`ptpair sweep GRID.toml`: a grid of replays into one Parquet file, resumable."""

from __future__ import annotations

import sys

from ptpair.commands import options

HELP = "run a grid of replays into one Parquet file (resumable)"


def add_arguments(p) -> None:
    p.add_argument("grid", help="grid file (TOML; see docs/analysis.md#sweeps)")
    p.add_argument("-o", "--output", required=True, help="results .parquet")
    p.add_argument("--merge", action="store_true",
                   help="the output may hold runs of another grid: keep them, and add this grid's (without it, "
                        "another grid's output is refused)")
    p.add_argument("--allow-mixed-versions", action="store_true",
                   help="keep (and do not redo) finished runs made by another ptpair version or git commit")
    options.add_engine(p)
    p.add_argument("--no-progress", action="store_true")


def run(args) -> int:
    from ptpair.analysis.sweep import load_grid, sweep

    runs = load_grid(args.grid)
    st = sweep(runs, args.output, options.engine(args), progress=not args.no_progress, merge=args.merge,
               allow_mixed_versions=args.allow_mixed_versions)
    kept = f", {st.kept} runs of other grids kept" if st.kept else ""
    print(f"wrote {args.output}: {st.total} runs ({st.skipped} already done, {st.ran} run now){kept}",
          file=sys.stderr)
    return 0
