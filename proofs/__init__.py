"""Proof-check scripts: one module per lemma or proposition of docs/theory.md, each listing its checks in
``CHECKS``.  ``python -m proofs`` (or ``nonid prove``) runs them all.

A check is a :class:`ProofCheck`: a name (``lemma-a``), a title, and a function returning a
:class:`~theory.certificate.Certificate`.
"""

from __future__ import annotations

import fnmatch
import importlib
import time
import traceback
from dataclasses import dataclass
from typing import Callable, Iterable

from theory.certificate import Certificate, Status
from theory.errors import UnknownCheck

# The order of the table: lemmas first, then propositions.
MODULES: tuple[str, ...] = (
    "proofs.lemma_a",
    "proofs.lemma_b",
    "proofs.lemma_c",
    "proofs.coq_core",
    "proofs.closed_forms",
    "proofs.smt_lemmas",
    "proofs.rule_extrapolation",
    "proofs.icl",
    "proofs.finetuning",
    "proofs.prop3_blocks",
    "proofs.compiled",
)


@dataclass(frozen=True)
class ProofCheck:
    name: str
    title: str
    run: Callable[[], Certificate]


def discover() -> list[ProofCheck]:
    """Every registered check, in table order."""
    checks: list[ProofCheck] = []
    for mod in MODULES:
        checks.extend(importlib.import_module(mod).CHECKS)
    return checks


def select(checks: list[ProofCheck], patterns: Iterable[str]) -> list[ProofCheck]:
    """Checks whose name equals, starts with, or glob-matches any pattern.

    Raises:
        UnknownCheck: a pattern that matches nothing (naming it and the known names).
    """
    patterns = list(patterns)
    if not patterns:
        return checks
    chosen: list[ProofCheck] = []
    for pat in patterns:
        hits = [c for c in checks if c.name == pat or c.name.startswith(pat + "-") or fnmatch.fnmatchcase(c.name, pat)]
        if not hits:
            from theory.validation import did_you_mean

            known = ", ".join(c.name for c in checks)
            hint = did_you_mean(pat, [c.name for c in checks])
            raise UnknownCheck(f"--only {pat!r} matches no check{hint} (known: {known})")
        chosen.extend(h for h in hits if h not in chosen)
    return [c for c in checks if c in chosen]


def groups(checks: list[ProofCheck]) -> list[list[ProofCheck]]:
    """``checks`` cut into runs of consecutive checks from the same module, in table order: the unit of
    work of a parallel ``nonid prove`` (a module's checks share their caches — a pretrained model, an
    ICL instance — so they run in one process, one after another)."""
    out: list[list[ProofCheck]] = []
    for c in checks:
        if out and out[-1][0].run.__module__ == c.run.__module__:
            out[-1].append(c)
        else:
            out.append([c])
    return out


def run_named(names: tuple[str, ...]) -> list[Certificate]:
    """Run the checks with these exact names, in this order (what one worker process of a parallel
    ``nonid prove`` is given: names, so nothing but strings crosses the process boundary)."""
    by_name = {c.name: c for c in discover()}
    return [run(by_name[n]) for n in names]


def run(check: ProofCheck) -> Certificate:
    """Run one check and time it.  A check that crashes yields an ``unknown`` certificate carrying
    the exception: a crash is never reported as a verdict."""
    from theory.processes import raise_if_interrupted

    start = time.perf_counter()
    try:
        cert = check.run()
        raise_if_interrupted()  # a check cut short by Ctrl-C has no verdict, even if it returned one
    except Exception as exc:  # noqa: BLE001 - reported, not swallowed
        last = traceback.extract_tb(exc.__traceback__)[-1]
        cert = Certificate(
            check=check.name, claim=check.title, status=Status.UNKNOWN, method="exact",
            detail="crashed", reason=f"{type(exc).__name__}: {exc} (at {last.filename}:{last.lineno})",
        )
    return cert.with_elapsed(time.perf_counter() - start)
