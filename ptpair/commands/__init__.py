"""The `ptpair` command: one module per verb, each a thin layer over the Python API.

Every verb module declares `HELP`, `add_arguments(parser)` and `run(args) -> status`;
option groups shared by several verbs are in options.py. Verb modules import nothing
heavy at module level, so `ptpair --help` is instant; numpy, numba and pandas load inside
`run`. Errors become exit statuses here (ptpair/errors.py): bad input or options print
one line and exit 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ptpair.errors import (
    EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_INVARIANT, EXIT_OK, REPORT_BUG, InvariantError,
    TraceError, UsageError,
)

# In the order `ptpair --help` lists them.
VERBS = ("replay", "validate", "compare", "synth", "stats", "breakeven", "sweep", "minmem", "frag", "record",
         "walkbench", "report", "plot", "convert", "merge", "check-vmpte")


def build_parser() -> argparse.ArgumentParser:
    from ptpair import __version__

    parser = argparse.ArgumentParser(
        prog="ptpair",
        description="Replay page-mapping traces through a buddy allocator and KPT/EPT page tables, "
                    "and compare Akaros's contiguous KPT/EPT pair with separately allocated EPTs.")
    parser.add_argument("--version", action="version", version=f"ptpair {__version__}")
    sub = parser.add_subparsers(dest="cmd", metavar="COMMAND", required=True)
    for verb in VERBS:
        mod = importlib.import_module(f"ptpair.commands.{verb.replace('-', '_')}")
        p = sub.add_parser(verb, help=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(func=mod.run)
    return parser


def _terminate(signum, frame):
    # SIGTERM unwinds like Ctrl-C, so that every atomic write removes its temporary
    # file and leaves the old output in place (traces/atomic.py)
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    import signal

    args = build_parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return run(args)
    finally:
        # the command is over and its outputs complete: a SIGTERM that arrives during the
        # interpreter's shutdown must not raise from our handler (a traceback, seen in CI)
        signal.signal(signal.SIGTERM, previous)


def _interrupted() -> int:
    print("ptpair: interrupted; outputs already written are complete, unfinished ones were not written",
          file=sys.stderr)
    return EXIT_INTERRUPTED


def _caused_by_interrupt(e: BaseException) -> bool:
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, KeyboardInterrupt):
            return True
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return False


def run(args) -> int:
    """Run the parsed command; map what it raises to an exit status (ptpair/errors.py)."""
    try:
        return args.func(args) or EXIT_OK
    except UsageError as e:
        print(f"ptpair {args.cmd}: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except TraceError as e:
        print(str(e), file=sys.stderr)
        return EXIT_BAD_INPUT
    except InvariantError as e:  # a simulator bug found by --check
        print(f"ptpair: {e}", file=sys.stderr)
        return EXIT_INVARIANT
    except KeyboardInterrupt:
        return _interrupted()
    except BrokenPipeError:
        return EXIT_OK
    except Exception as e:
        if _caused_by_interrupt(e):
            # a Ctrl-C or SIGTERM that lands while numba loads or compiles a kernel comes
            # out of it as a SystemError caused by the KeyboardInterrupt
            return _interrupted()
        import traceback

        traceback.print_exc()
        print(f"ptpair {args.cmd}: internal error ({type(e).__name__}: {e}); {REPORT_BUG}", file=sys.stderr)
        return EXIT_INTERNAL
