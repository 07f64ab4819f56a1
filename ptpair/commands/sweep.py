"""`ptpair sweep GRID.toml`: a grid of replays into one Parquet file, resumable."""

from __future__ import annotations

import sys

from ptpair.commands import options

HELP = "run a grid of replays into one Parquet file (resumable)"


def add_arguments(p) -> None:
    p.add_argument("grid", help="grid file (TOML; see docs/analysis.md#sweeps)")
    p.add_argument("-o", "--output", required=True, help="results .parquet")
    options.add_engine(p)
    p.add_argument("--no-progress", action="store_true")


def run(args) -> int:
    from ptpair.analysis.sweep import load_grid, sweep

    runs = load_grid(args.grid)
    st = sweep(runs, args.output, options.engine(args), progress=not args.no_progress)
    print(f"wrote {args.output}: {st.total} runs ({st.skipped} already done, {st.ran} run now)", file=sys.stderr)
    return 0
