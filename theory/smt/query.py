"""Running z3: the result record of a proof attempt (:class:`SMTResult`), the budgets and their checks,
SMT-LIB 2 text (:class:`_Query`, :func:`_and`, :func:`_sum`) and one solver call (:func:`_solve`).  z3 is
imported inside the functions that run it, never by importing this module."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Iterable, Mapping, Sequence

from theory.certificate import Status
from theory.errors import InvalidBudget
from theory.validation import check_int

DEFAULT_TIMEOUT_MS = 60_000
DEFAULT_MAX_VARIABLES = 400_000
MAX_COUNTERMODEL_ENTRIES = 24


# ---- results --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SMTResult:
    """One z3 proof attempt.  ``status``: verified (every query unsat), falsified (a query sat: the
    claim fails in a countermodel, listed in ``countermodel``), unknown (timeout, budget, z3 gave up;
    see ``reason``).  ``variables``/``assertions`` are those of the largest query (the assembly for
    the modular encoding); ``model_variables`` is one model's row variables; ``solver_seconds`` is the
    z3 time (parsing included) summed over ``subproofs`` and this query.  Modular encoding only:
    ``instances`` is the number of trie nodes checked to be instances of a proved node lemma (and
    given its implication in the assembly), ``direct`` the prefixes ("ε" for the root) whose facts
    were asserted directly, without a node-lemma instance."""

    lemma: str
    status: Status
    horizon: int | None
    encoding: str
    variables: int
    model_variables: int
    assertions: int
    solver_seconds: float
    z3_version: str
    reason: str = ""
    assumptions: tuple[str, ...] = ()
    countermodel: tuple[tuple[str, str], ...] = ()
    subproofs: tuple["SMTResult", ...] = ()
    instances: int = 0
    direct: tuple[str, ...] = ()

    @property
    def verified(self) -> bool:
        return self.status is Status.VERIFIED

    def quantities(self) -> dict[str, object]:
        """The numbers a certificate records (deterministic: the solver time goes in its ``timings``)."""
        q: dict[str, object] = {
            "horizon": self.horizon, "encoding": self.encoding, "variables": self.variables,
            "model_variables": self.model_variables, "assertions": self.assertions,
            "z3_version": self.z3_version,
        }
        if self.subproofs:
            q["subproofs"] = {s.lemma: {"status": s.status.value, "variables": s.variables, "assertions": s.assertions}
                              for s in self.subproofs}
        if self.encoding == "modular" and self.horizon is not None:
            q["instantiation"] = {"instances_checked": self.instances, "asserted_directly": list(self.direct)}
        if self.countermodel:
            q["countermodel"] = dict(self.countermodel)
        return q


def z3_version() -> str:
    """The installed z3's version string (``"not installed"`` without z3)."""
    try:
        import z3
    except ImportError:
        return "not installed"
    return z3.get_version_string()


# ---- input checks ---------------------------------------------------------------------------------
def _check_int(value: object, what: str, minimum: int) -> int:
    return check_int(value, what, minimum=minimum, error=InvalidBudget)


def _and(xs: Sequence[str]) -> str:
    return "true" if not xs else xs[0] if len(xs) == 1 else f"(and {' '.join(xs)})"


def _sum(xs: Sequence[str]) -> str:
    return "0" if not xs else xs[0] if len(xs) == 1 else f"(+ {' '.join(xs)})"


# ---- running z3 -----------------------------------------------------------------------------------
class _Query:
    """SMT-LIB text with counts of declared reals and top-level assertions."""

    def __init__(self, functions: str = "") -> None:
        self.parts: list[str] = [functions] if functions else []
        self.reals = 0
        self.assertions = 0

    def declare(self, reals: Iterable[str] = (), bools: Iterable[str] = ()) -> None:
        rs, bs = list(reals), list(bools)
        self.reals += len(rs)
        self.parts.append("".join(f"(declare-const {r} Real)" for r in rs) + "".join(f"(declare-const {b} Bool)" for b in bs))

    def add(self, *formulas: str) -> None:
        self.assertions += len(formulas)
        self.parts.append("".join(f"(assert {f})" for f in formulas))

    def text(self) -> str:
        return "\n".join(self.parts)


@dataclass(frozen=True)
class _Outcome:
    answer: str  # "unsat", "sat", "unknown"
    seconds: float
    reason: str = ""
    model: tuple[tuple[str, str], ...] = ()
    values: Mapping[str, Fraction] = field(default_factory=dict)


def _solve(q: _Query, timeout_ms: int, want: Sequence[str] = (), simple: bool = False) -> _Outcome:
    """Parse and check ``q``; on sat return a few constants of the model (and exact values of the
    reals named in ``want``).  ``simple`` skips z3's preprocessing tactics (the assembly queries are
    refuted by propagation, and preprocessing them costs more than it saves)."""
    import z3

    if timeout_ms <= 0:
        return _Outcome("unknown", 0.0, "timeout: no time left of the timeout_ms budget for this query")
    from theory.processes import interruptible

    holder: dict[str, z3.Context] = {}

    def solve() -> _Outcome:
        # Everything z3 owns is made, used and freed in this helper thread: a signal is delivered to
        # the main thread only, so an interrupt can never land inside z3's finalizers (where Python
        # would swallow it) — it reaches the main thread's wait and cancels the query instead.
        ctx = holder.setdefault("ctx", z3.Context())
        start = time.perf_counter()
        s = z3.SimpleSolver(ctx=ctx) if simple else z3.Solver(ctx=ctx)
        s.set("timeout", int(timeout_ms))
        # z3's own SIGINT handler would turn a Ctrl-C into an "unknown" answer; with it off the
        # interrupt reaches Python, which cancels the query through ctx.interrupt() and propagates
        s.set("ctrl_c", False)
        try:
            s.from_string(q.text())
            r = s.check()
            if r == z3.unsat:
                return _Outcome("unsat", time.perf_counter() - start)
            if r == z3.unknown:
                why = s.reason_unknown()
                if "interrupted" in why:  # a SIGINT that reached z3 all the same: an interrupt, not an answer
                    raise KeyboardInterrupt
                return _Outcome("unknown", time.perf_counter() - start,
                                f"timeout: z3 stopped at the {timeout_ms} ms budget ({why})"
                                if "timeout" in why or "canceled" in why else f"z3 returned unknown: {why}")
            m = s.model()
            shown: list[tuple[str, str]] = []
            for d in sorted(m.decls(), key=lambda d: d.name()):
                if d.arity() == 0 and len(shown) < MAX_COUNTERMODEL_ENTRIES:
                    shown.append((d.name(), str(m[d])))
            values = {name: m.eval(z3.Real(name, ctx), model_completion=True).as_fraction() for name in want}
            return _Outcome("sat", time.perf_counter() - start, model=tuple(shown), values=values)
        finally:
            holder.clear()  # the last references go here, in this thread
            del s, ctx

    def cancel() -> None:
        ctx = holder.get("ctx")
        if ctx is not None:
            ctx.interrupt()

    return interruptible(solve, cancel)


def _budget(variables: int, max_variables: int) -> str:
    return "" if variables <= max_variables else (
        f"the query needs {variables:,} variables, over the budget of {max_variables:,} (max_variables)")
