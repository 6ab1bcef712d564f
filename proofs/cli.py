"""The proof checks' command line: the options of ``nonid prove`` and ``python -m proofs`` (the same
options, the same table, the same exit status), so that the proofs package needs nothing from the
``nonid`` command-line package above it.

Exit status: 0 when every selected check is verified, 1 when any is falsified or unknown, 2 on bad
input (one line on stderr), 130 on an interrupt.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import NoReturn, Sequence

from theory.certificate import Certificate, status_counts
from theory.errors import NonidError, exit_status


def format_header(width: int, first: str = "check", last: str = "detail") -> str:
    """The header of the table of certificates (``nonid prove``'s, the appendix's): ``first`` padded to
    ``width``, then status, method, time and ``last``."""
    return f"{first:<{width}}  {'status':<9}  {'method':<10}  {'time':>6}  {last}"


def format_row(name: str, cert: Certificate, width: int, *, seconds: float | None = None,
               detail: str | None = None) -> str:
    """One row of that table: ``name`` padded to ``width``, ``cert``'s status and method, ``seconds``
    (default ``cert.elapsed_s``, 0 when unset) and ``detail`` (default ``cert.detail``)."""
    s = (cert.elapsed_s or 0.0) if seconds is None else seconds
    d = cert.detail if detail is None else detail
    return f"{name:<{width}}  {cert.status.value:<9}  {cert.method:<10}  {s:>5.1f}s  {d}"


def format_reason(reason: str, width: int) -> str:
    """The line under a row that is not verified: its reason, indented past the name column."""
    return f"{'':<{width}}  reason: {reason}"


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``prove`` options to ``parser`` and return it."""
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="run only checks named NAME (exact, NAME-*, or a glob); repeatable")
    parser.add_argument("--list", action="store_true", help="list the checks and exit")
    parser.add_argument("--json", action="store_true", help="print the certificates as a JSON list instead of a table")
    parser.add_argument("--timings", action="store_true", help="include wall times in --json output")
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the selected checks, print the table (or the JSON list), return the exit status.

    Raises:
        UnknownCheck: an ``--only`` pattern that matches nothing (before any check runs).
    """
    import proofs
    from theory.errors import InapplicableOption

    if args.timings and not args.json:
        raise InapplicableOption("--timings applies to --json output only (the table always shows times)")
    checks = proofs.select(proofs.discover(), args.only)
    if args.list:
        if args.json:
            print(json.dumps([{"name": c.name, "title": c.title} for c in checks], indent=2, ensure_ascii=False))
            return 0
        for c in checks:
            print(f"{c.name:<28} {c.title}")
        return 0
    certs = []
    start = time.perf_counter()
    nw = max([len(c.name) for c in checks] + [5])
    if not args.json:
        print(format_header(nw), flush=True)
    for c in checks:
        cert = proofs.run(c)
        certs.append(cert)
        if not args.json:
            print(format_row(c.name, cert, nw), flush=True)
            if not cert.verified:
                print(format_reason(cert.reason, nw), flush=True)
    total = time.perf_counter() - start
    counts = status_counts(certs)
    if args.json:
        print(json.dumps([c.to_dict(args.timings) for c in certs], sort_keys=True, indent=2, ensure_ascii=False))
    else:
        print(f"{counts['verified']} verified, {counts['falsified']} falsified, {counts['unknown']} unknown  "
              f"({total:.1f}s; `nonid prove --list` gives each check's title)")
    return 0 if counts["verified"] == len(certs) else 1


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2, like `nonid`
        raise _Usage(message)


class _Usage(NonidError):
    """Bad usage of ``python -m proofs``."""


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m proofs [--only NAME] [--list] [--json] [--timings]``: the same as ``nonid prove``."""
    parser = add_arguments(_Parser(prog="python -m proofs", description="Run the proof checks (the same as `nonid prove`)."))
    return exit_status("proofs", lambda: run(parser.parse_args(argv)))
