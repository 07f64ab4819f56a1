"""Which ptpair made a result: its version and, in a git checkout, its commit.

Sweeps record both in every row (analysis/sweep.py) and refuse to mix rows of different
code; the report writes them into its manifest (reports/build.py). Here, in the ptpair
package, so that both stages reach it without analysis depending on reports.

The commit is `git rev-parse HEAD` of the checkout ptpair is imported from, with `+dirty`
appended when tracked files of the code (CODE_PATHS: the package, its four stages and
pyproject.toml; not docs, tests or benchmarks) differ from that commit. Two different
uncommitted states of one commit both read `SHA+dirty`: the suffix warns that the commit
does not tell the whole story, it does not tell them apart. None when ptpair is not
imported from a git checkout (installed from a wheel or an sdist) or git is missing.

Numpy-free; the git lookup runs once per process (cached): a sweep asks once per row.
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

# The checkout's root: the four stages (traces/, sim/, analysis/, reports/) sit beside ptpair/.
SOURCE = Path(__file__).resolve().parent.parent
# What ptpair computes depends on these; an edit elsewhere (docs, tests) does not mark the tree dirty.
CODE_PATHS = ("ptpair", "traces", "sim", "analysis", "reports", "pyproject.toml")
DIRTY = "+dirty"
# A git that hangs (a stale network mount, a lock) must not hang a sweep: give up, record None.
GIT_TIMEOUT_S = 5
SHORT_COMMIT = 12  # hex digits of a commit shown in messages and the report (the full one is recorded)


def version() -> str:
    """ptpair's version (`ptpair.__version__`)."""
    from ptpair import __version__

    return __version__


def _git(*args: str) -> str | None:
    """stdout of `git -C SOURCE ARGS`, or None if git is missing, fails or hangs."""
    try:
        out = subprocess.run(["git", "-C", str(SOURCE), *args], capture_output=True, text=True,
                             timeout=GIT_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


@functools.cache
def git_commit() -> str | None:
    """The commit ptpair's code comes from (40 hex digits, `+dirty` if the code has
    uncommitted changes), or None when ptpair is not imported from a git checkout."""
    top = _git("rev-parse", "--show-toplevel")
    # installed under site-packages, perhaps inside someone else's repository: not ours
    if top is None or Path(top.strip()).resolve() != SOURCE:
        return None
    head = _git("rev-parse", "HEAD")
    if head is None:
        return None
    status = _git("status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS)
    # a status that cannot be read cannot vouch for a clean tree
    return head.strip() + (DIRTY if status is None or status.strip() else "")


def short(commit: str | None) -> str | None:
    """A commit as messages show it: 12 hex digits, keeping a `+dirty` suffix."""
    if commit is None:
        return None
    dirty = commit.endswith(DIRTY)
    return commit.removesuffix(DIRTY)[:SHORT_COMMIT] + (DIRTY if dirty else "")


def describe(ptpair_version: str | None, commit: str | None) -> str:
    """'ptpair 0.1.0 (git 0123456789ab)' -- or what is unknown about it, in words."""
    if ptpair_version is None:
        return "a ptpair that did not record its version (before sweeps recorded it)"
    where = f"git {short(commit)}" if commit else "not a git checkout"
    return f"ptpair {ptpair_version} ({where})"
