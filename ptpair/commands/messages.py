"""What the verbs tell stderr about the input besides errors: skipped and counted lines."""

from __future__ import annotations

import sys


def report_skipped(res, lenient: bool = True) -> None:
    """Lines a replay's reader skipped (--lenient) or counted (a recorded format's notes)."""
    if res.skipped_lines:
        total = sum(res.skipped_lines.values())
        why = ", ".join(f"{n} {reason}" for reason, n in sorted(res.skipped_lines.items()))
        if lenient:
            print(f"ptpair: --lenient skipped {total} bad line(s): {why}", file=sys.stderr)
        else:  # a recorded format's own counts (docs/trace-format.md), not errors
            print(f"ptpair: counted while reading: {why}", file=sys.stderr)


def report_counts(trace) -> None:
    """What a reader counted while converting (dropped mappings, skipped lines), by reason."""
    if trace.skipped:
        items = ", ".join(f"{k}: {v}" for k, v in sorted(trace.skipped.items()))
        print(f"{trace.source}: counted: {items}", file=sys.stderr)
