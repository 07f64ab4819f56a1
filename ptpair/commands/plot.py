"""`ptpair plot FIGURE --data FILE.csv`: rebuild one report figure from its data."""

from __future__ import annotations

import sys
from pathlib import Path

from ptpair import registry
from ptpair.errors import UsageError

HELP = "rebuild one report figure from its CSV (report DIR/data/)"


def add_arguments(p) -> None:
    p.add_argument("figure", help=f"figure name or kind ({', '.join(registry.FIGURES)}), e.g. pt_memory__mixed")
    p.add_argument("--data", required=True, help="the figure's CSV (see the report's manifest.json)")
    p.add_argument("-o", "--output", default=None, help="output stem or file (.svg/.pdf/.png)")
    p.add_argument("--style", choices=("paper", "slides"), default="paper")
    p.add_argument("--formats", default=",".join(registry.FIGURE_FORMATS))


def run(args) -> int:
    import pandas as pd

    from ptpair.reports import plots, style
    from ptpair.reports.plotkit import PlotDataError

    try:
        kind = plots.kind_of(args.figure)
    except ValueError as e:
        raise UsageError(str(e)) from None
    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    try:
        df = pd.read_csv(args.data)
    except (OSError, ValueError) as e:
        raise UsageError(f"{args.data}: {e}") from None
    out = Path(args.output or args.figure)
    stem = out.with_suffix("") if out.suffix in (".svg", ".pdf", ".png") else out
    if out.suffix in (".svg", ".pdf", ".png"):
        formats = (out.suffix[1:],)
    with style.use(args.style):
        try:
            fig = plots.FIGURES[kind](df)
        except PlotDataError as e:  # the data's fault; any other error is ours
            raise UsageError(f"{args.data}: {e}") from None
        paths = style.save(fig, stem, formats)
    print("wrote " + ", ".join(str(p) for p in paths), file=sys.stderr)
    return 0
