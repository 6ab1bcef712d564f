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
from typing import Iterator, NoReturn, Sequence

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
    parser.add_argument("--jobs", type=_jobs, default=None, metavar="N",
                        help="run the checks in N worker processes, a module's checks in one process (default: "
                             "one per usable CPU, at most 4; 1 runs them in this process); the certificates "
                             "do not depend on N")
    return parser


def _jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, not {text!r}")
    return value


def default_jobs() -> int:
    """One worker per CPU this process may use, at most 4 (the checks' largest groups take a few
    seconds each; more workers only add start-up)."""
    import os

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count() or 1
    return max(1, min(4, usable))


def _certificates(checks: list, jobs: int) -> Iterator[Certificate]:
    """Every check's certificate, in table order, as each becomes known: in this process (``jobs`` 1),
    or from worker processes, each given a module's checks (:func:`proofs.groups`)."""
    import proofs

    parts = proofs.groups(checks)
    if jobs == 1 or len(parts) == 1:
        for c in checks:
            yield proofs.run(c)
        return
    from theory.processes import parallel_imap

    work = [tuple(c.name for c in part) for part in parts]
    # spawn: a fresh interpreter per worker (a fork of a process with threads can deadlock)
    for certs in parallel_imap(proofs.run_named, work, min(jobs, len(work)), start_method="spawn"):
        yield from certs


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
    for c, cert in zip(checks, _certificates(checks, args.jobs or default_jobs())):
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
    def error(self, message: str) -> NoReturn:  # one line, exit 2, like `nonid` (and its "did you mean")
        from theory.validation import argparse_suggestion

        raise _Usage(message + argparse_suggestion(self, message))


class _Usage(NonidError):
    """Bad usage of ``python -m proofs``."""


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m proofs [--only NAME] [--list] [--json] [--timings]``: the same as ``nonid prove``."""
    parser = add_arguments(_Parser(prog="python -m proofs", description="Run the proof checks (the same as `nonid prove`)."))
    return exit_status("proofs", lambda: run(parser.parse_args(argv)))
