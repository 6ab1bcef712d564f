"""The ``nonid`` command line.

Exit status: 0 every selected check verified; 1 something falsified or unknown; 2 bad input (one
line on stderr, no traceback).

Subcommands other than ``prove`` live in their own modules (listed in :data:`SUBCOMMANDS`), each
with ``add_parser(subparsers)`` and ``run(args) -> int``; they are imported only when needed for
parsing, and raise :class:`~theory.errors.NonidError` for bad input.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn, Sequence

from theory.errors import NonidError, exit_status
from theory.validation import argparse_suggestion

SUBCOMMANDS: tuple[str, ...] = ("nonid.cmd_experiment", "nonid.cmd_counterexample", "nonid.cmd_check", "nonid.cmd_export",
                               "nonid.cmd_appendix", "nonid.cmd_icl", "nonid.cmd_audit")


class UsageError(NonidError):
    """Bad command-line usage."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2 (argparse prints usage + message)
        raise UsageError(message + argparse_suggestion(self, message))


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nonid", description="Certified checks that matched test loss does not imply matched OOD behaviour.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    from proofs.cli import add_arguments
    from proofs.cli import run as run_prove

    prove = add_arguments(sub.add_parser("prove", help="run the proof checks of docs/theory.md and print a table"))
    prove.set_defaults(handler=run_prove)
    import importlib

    for name in SUBCOMMANDS:
        mod = importlib.import_module(name)
        mod.add_parser(sub).set_defaults(handler=mod.run)
    return parser


def console() -> NoReturn:
    """The ``nonid`` executable (and ``python -m nonid``): :func:`main`, then exit with its status.

    After an interrupt (status 130, the message already printed) the process ends at once with
    ``os._exit(130)`` once stdout and stderr are flushed: a ``KeyboardInterrupt`` that crossed C code on
    its way to the handler (Python run from C, as extension modules do) leaves CPython's own memory of
    an "unhandled" interrupt, which would otherwise end the process by SIGINT (-2) at shutdown instead
    of 130.  Every folder and worker is already cleaned up by then (the interrupt unwound through them)."""
    import os

    status = main()
    if status == 130:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(130)
    raise SystemExit(status)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (typed refusals: one line on stderr and 2; an interrupt 130)."""
    parser = _build_parser()

    def body() -> int:
        args = parser.parse_args(argv)
        if args.version:
            from nonid import __version__

            print(f"nonid {__version__}")
            return 0
        if args.command is None:
            parser.print_help()
            raise UsageError("no command given (the commands are listed above)")
        args.argv = list(sys.argv[1:] if argv is None else argv)  # for messages that repeat the command
        return int(args.handler(args))

    return exit_status("nonid", body)
