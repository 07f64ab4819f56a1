"""The `ptpair` command's entry point (pyproject's console script); the verbs are in
ptpair/commands/."""

from __future__ import annotations

import sys

from ptpair.commands import build_parser, main, run  # noqa: F401  (the entry point and its parts)

if __name__ == "__main__":
    sys.exit(main())
