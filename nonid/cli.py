"""The ``nonid`` command line.

Exit status: 0 every selected check verified; 1 something falsified or unknown; 2 bad input (one
line on stderr, no traceback).

Subcommands other than ``prove`` live in their own modules (listed in :data:`SUBCOMMANDS`), each
with ``add_parser(subparsers)`` and ``run(args) -> int``; they are imported only when needed for
parsing, and raise :class:`~theory.errors.NonidError` for bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Sequence

from theory.errors import NonidError


SUBCOMMANDS: tuple[str, ...] = ("nonid.cmd_experiment", "nonid.cmd_counterexample", "nonid.cmd_check", "nonid.cmd_appendix")


class UsageError(NonidError):
    """Bad command-line usage."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage + message)
        raise UsageError(message)


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nonid", description="Certified checks that matched test loss does not imply matched OOD behaviour.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    prove = sub.add_parser("prove", help="run the proof checks of THEORY.md and print a table")
    prove.add_argument("--only", action="append", default=[], metavar="NAME",
                       help="run only checks named NAME (exact, NAME-*, or a glob); repeatable")
    prove.add_argument("--list", action="store_true", help="list the checks and exit")
    prove.add_argument("--json", action="store_true", help="print the certificates as a JSON list instead of a table")
    prove.add_argument("--timings", action="store_true", help="include wall times in --json output")
    prove.set_defaults(handler=_cmd_prove)
    import importlib

    for name in SUBCOMMANDS:
        mod = importlib.import_module(name)
        mod.add_parser(sub).set_defaults(handler=mod.run)
    return parser


def _cmd_prove(args: argparse.Namespace) -> int:
    import proofs

    checks = proofs.select(proofs.discover(), args.only)
    if args.list:
        for c in checks:
            print(f"{c.name:<28} {c.title}")
        return 0
    certs = []
    start = time.perf_counter()
    nw = max([len(c.name) for c in checks] + [5])
    if not args.json:
        print(f"{'check':<{nw}}  {'status':<9}  {'method':<10}  {'time':>6}  detail", flush=True)
    for c in checks:
        cert = proofs.run(c)
        certs.append(cert)
        if not args.json:
            print(f"{c.name:<{nw}}  {cert.status.value:<9}  {cert.method:<10}  {cert.elapsed_s:>5.1f}s  {cert.detail}", flush=True)
            if not cert.verified:
                print(f"{'':<{nw}}  reason: {cert.reason}", flush=True)
    total = time.perf_counter() - start
    counts = {s: sum(1 for c in certs if c.status.value == s) for s in ("verified", "falsified", "unknown")}
    if args.json:
        print(json.dumps([c.to_dict(args.timings) for c in certs], sort_keys=True, indent=2, ensure_ascii=False))
    else:
        print(f"{counts['verified']} verified, {counts['falsified']} falsified, {counts['unknown']} unknown  "
              f"({total:.1f}s; `nonid prove --list` gives each check's title)")
    return 0 if counts["verified"] == len(certs) else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
        if args.version:
            from nonid import __version__

            print(f"nonid {__version__}")
            return 0
        if args.command is None:
            parser.print_help()
            raise UsageError("no command given (the commands are listed above)")
        return args.handler(args)
    except NonidError as e:  # one line: a newline or other control character inside a value (a path, a name) is escaped
        print("nonid: " + "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(e)), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nonid: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
