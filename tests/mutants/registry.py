"""The mutation catalogue's registry: named broken inputs, each with the verdict it must get.

A mutant is a function ``run(mutate: bool) -> str`` registered with :func:`mutant`.  With
``mutate=False`` it feeds the checker the *correct* object and must return ``"verified"`` (the
control: a mutant that a broken pipeline would also reject proves nothing); with ``mutate=True`` it
feeds the broken one and must return the registered ``expected`` verdict:

* ``"falsified"`` / ``"unknown"`` — the status of the certificate the checker returned;
* ``"refused:TypeName"`` — the checker raised the typed error ``TypeName`` (a NonidError subclass);
* ``"exit 2"`` / ``"exit 1"`` — the command line's exit status.

For a constructor that validates its input, :func:`constructed` gives ``"verified"`` when it accepts.

:func:`verdict` turns "call this checker" into such a string.  A mutant is *killed* when its mutated
run gives exactly the expected verdict, *survives* when it gives ``"verified"`` (the checker accepted
something wrong) and is *misjudged* when it gives another rejection than the one expected.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

ACCEPTED = "verified"


@dataclass(frozen=True)
class Mutant:
    name: str
    target: str  # what is broken: witness, model, certificate, file, smt, compiled, finetuning, prompt, ...
    description: str
    expected: str
    run: Callable[[bool], str]


MUTANTS: dict[str, Mutant] = {}


def mutant(name: str, target: str, expected: str) -> Callable[[Callable[[bool], str]], Callable[[bool], str]]:
    """Register ``fn(mutate) -> verdict`` under ``name``; its docstring is the description."""

    def register(fn: Callable[[bool], str]) -> Callable[[bool], str]:
        if name in MUTANTS:
            raise ValueError(f"mutant {name!r} is registered twice")
        doc = " ".join((fn.__doc__ or "").split())
        MUTANTS[name] = Mutant(name, target, doc, expected, fn)
        return fn

    return register


def verdict(call: Callable[[], object]) -> str:
    """Run a checker: a returned certificate gives its status, an int an ``exit N``, a raised typed
    error ``refused:TypeName``.  Anything else propagates (a crash is a failure, not a verdict)."""
    from theory.errors import NonidError

    try:
        out = call()
    except NonidError as e:
        return f"refused:{type(e).__name__}"
    if isinstance(out, int) and not isinstance(out, bool):
        return f"exit {out}"
    status = getattr(out, "status", None)
    if status is None:
        raise TypeError(f"checker returned {type(out).__name__}, not a certificate or an exit status")
    return str(getattr(status, "value", status))


def constructed(call: Callable[[], object]) -> str:
    """For a constructor that validates its input: ``"verified"`` when it accepts (returns), else the
    typed refusal as in :func:`verdict`."""
    from theory.errors import NonidError

    try:
        call()
    except NonidError as e:
        return f"refused:{type(e).__name__}"
    return ACCEPTED


def load_all() -> dict[str, Mutant]:
    """Import every catalogue module (they register on import) and return the registry."""
    import importlib

    for module in ("tests.mutants.theory_mutants", "tests.mutants.torch_mutants", "tests.mutants.api_mutants",
                   "tests.mutants.file_mutants", "tests.mutants.smt_mutants", "tests.mutants.enclosure_mutants",
                   "tests.mutants.block_mutants", "tests.mutants.finetuning_mutants", "tests.mutants.saturation_mutants",
                   "tests.mutants.exact_mutants", "tests.mutants.icl_mutants", "tests.mutants.hf_mutants",
                   "tests.mutants.audit_mutants", "tests.mutants.compact_mutants"):
        importlib.import_module(module)
    return MUTANTS


@dataclass(frozen=True)
class Outcome:
    mutant: Mutant
    control: str
    observed: str
    seconds: float

    @property
    def killed(self) -> bool:
        return self.control == ACCEPTED and self.observed == self.mutant.expected

    @property
    def survived(self) -> bool:
        return self.observed == ACCEPTED


def run_mutant(m: Mutant) -> Outcome:
    start = time.perf_counter()
    control = m.run(False)
    observed = m.run(True)
    return Outcome(m, control, observed, time.perf_counter() - start)
