"""`ptpair check-vmpte TRACE`: the replay's page tables next to Linux's VmPTE samples."""

from __future__ import annotations

import sys

HELP = "replay a perf recording and put its page tables next to the VmPTE sampled while it was recorded"


def add_arguments(p) -> None:
    p.add_argument("trace", help="a trace written by ptpair record perf")
    p.add_argument("--vmpte", default=None, help="VmPTE samples (default: the trace's stem + .vmpte.csv)")
    p.add_argument("-o", "--output", default=None, help="write every sample with its replayed value (CSV)")
    p.add_argument("--tolerance", type=float, default=0.02, help="relative difference counted as agreeing "
                                                                  "(default 0.02)")


def run(args) -> int:
    from ptpair import api
    from ptpair.analysis.vmpte import agreement, check_vmpte, read_samples
    from ptpair.traces.atomic import write_text_atomic
    from ptpair.traces.record import vmpte_path

    samples = read_samples(args.vmpte or vmpte_path(args.trace))
    checked = check_vmpte(api.read_any(args.trace), samples)
    a = agreement(checked, args.tolerance)
    print(f"{args.trace}: {a['samples']} VmPTE samples, {a['within']} within {a['tolerance']:.0%} of the replay "
          f"({a['share_within']:.1%}), {a['exact']} exact; largest difference {a['max_abs_diff_kb']} kB")
    last = checked[checked["replayed_kb"].notna()].groupby("pid", sort=True).tail(1)
    for row in last.itertuples():
        print(f"  pid {row.pid} ({row.comm}) at {row.time:.3f}: VmPTE {row.vmpte_kb} kB, replayed {row.replayed_kb} kB")
    if args.output:
        write_text_atomic(args.output, checked.to_csv(index=False))
        print(f"wrote {args.output}", file=sys.stderr)
    return 0
