"""ptpair's error types and the command line's exit statuses, in one place.

    0    done
    1    an internal error: a bug in ptpair, reported with where to send it
    2    bad input (`file:line: what is wrong`) or a bad option value
    3    `replay --check` found a broken invariant (a simulator bug, named)
    130  interrupted (Ctrl-C or SIGTERM); outputs already written are complete

Numpy-free: the command line maps an exception to its status without loading anything.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2
EXIT_INVARIANT = 3
EXIT_INTERRUPTED = 130

REPORT_BUG = ("this is a bug in ptpair, not a problem with your input: please report it as an issue of the "
              "ptpair repository, with the command line and the traceback above")


class UsageError(Exception):
    """A bad option value or argument: reported as one line, exit status 2."""


class GridError(UsageError, ValueError):
    """A sweep grid file that cannot be run as written (unknown key, scheme, file)."""


class TraceError(Exception):
    """Bad input, located: str(err) is `file:line: what is wrong`.

    `line` counts from 1 with a CSV header as line 1 (so data row r, counted from 0,
    is line r + 2). For Parquet the line is the row number counted the same way, so a
    converted CSV reports the same line for the same event.
    """

    def __init__(self, source: str, line: int | None, message: str):
        self.source = source
        self.line = line
        self.message = message
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {message}")


class InvariantError(AssertionError):
    """The simulator's state broke an invariant (docs/semantics.md#invariants): a bug."""
