"""`ptpair breakeven`: pair against separate as the VMM fraction grows."""

from __future__ import annotations

import json
import sys

from ptpair import registry
from ptpair.commands import options

HELP = "pair against separate as a function of the VMM fraction"


def add_arguments(p) -> None:
    p.add_argument("--workload", default="mixed", choices=registry.WORKLOADS)
    p.add_argument("--fractions", type=options.fractions, default="0,0.25,0.5,0.75,1")
    p.add_argument("--seeds", type=options.seeds, default="1-3")
    p.add_argument("--events", type=options.positive, default=5000)
    options.add_memory(p)
    options.add_policy(p)
    options.add_output_format(p)


def run(args) -> int:
    from ptpair.analysis.breakeven import fit, simulate
    from ptpair.reports.text import breakeven_fit_line, frame_text

    df = simulate(args.workload, args.fractions, args.seeds, args.events, options.memory_pages(args), args.policy)
    f = fit(df)
    if args.json:
        print(json.dumps({"runs": df.to_dict(orient="records"), "fit": f}, indent=2, default=float))
        return 0
    g = df.groupby("vmm_fraction")[["vmm_process_share", "phi", "pt_pair", "pt_separate", "difference",
                                    "model_difference", "ratio", "model_ratio"]].mean().reset_index().round(4)
    if args.csv:
        sys.stdout.write(g.to_csv(index=False))
        return 0
    print(frame_text(g, "pair against separate by VMM fraction (means over seeds); "
                        "vmm_process_share = realised share s of VMM processes;\n"
                        "model: PT_pair / PT_separate = 2 / (1 + phi), phi = VMMs' share of KPT tables "
                        "in the pair replay"))
    print(breakeven_fit_line(f))
    return 0
