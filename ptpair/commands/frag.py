"""`ptpair frag [FILE]`: Linux's fragmentation indices of a buddyinfo file."""

from __future__ import annotations

HELP = "Linux's fragmentation indices of a buddyinfo file, as debugfs shows them"


def add_arguments(p) -> None:
    p.add_argument("file", nargs="?", default="/proc/buddyinfo")


def run(args) -> int:
    from ptpair.analysis.frag import debugfs_lines
    from ptpair.traces.record import read_buddyinfo

    zones = read_buddyinfo(args.file)
    print("\n".join(debugfs_lines(zones, "unusable") + debugfs_lines(zones, "extfrag")))
    return 0
