"""The z3 back-end: Lemmas A, B, C of THEORY.md §2 proved over the finite-horizon model space, the
per-node Gibbs lemma, and synthesis of rule-(non)extrapolating models with exact rational rows.

**Model space at horizon L.**  Every prefix u with |u| ≤ L gets a next-token row over Σ ∪ {EOS} as
z3 Reals (non-negative, summing to one; EOS forced at |u| = L, so sequences have length ≤ L): for
{a, b} and L = 12 that is 3·(2¹³ − 1) = 24,573 variables per model (:func:`model_space_size`).  A
data distribution at horizon L is free too: end masses P({u}) ≥ 0, prefix masses P(u) by the flow
equations P(u) = P({u}) + Σ_a P(ua), P(ε) = 1.

**Encodings** (``encoding=``):

* ``"monolithic"`` — one query: every node's facts plus the negated claim; z3 does all the case
  analysis (is P(u) > 0 or not?) itself.  It does not scale: the per-node case splits are found one
  conflict at a time, each undoing the search so far.  Measured (z3 5.4, 2 cores): Lemma A 0.5 s at
  L = 5 and > 20 s (timeout) at L = 6; Lemma B 0.5 s at L = 8, 13 s at L = 10, > 30 s at L = 12;
  Lemma C (a single linear conflict) 2.8 s at L = 12.  For small horizons and cross-checking.
* ``"modular"`` (default) — a node lemma per node shape (internal, leaf), each a small z3 query that
  contains all the case analysis, then one *assembly* query over the whole horizon-L space in which
  every node u carries the node lemma's instance ``F_u ∧ I_children → I_u``.  ``F_u`` names the
  node's facts (asserted: ``F_u`` and ``F_u → facts_u``) and ``I_u`` the node invariant (asserted:
  ``I_u ↔ invariant_u``, e.g. "P(u) ≥ 0 and G₁(u) = G₂(u)"); the instantiation check below makes
  each such implication the node lemma renamed to u.  z3 then refutes the negated claim
  (about the root's invariant terms) by propagation — the case analysis lives in the node lemmas, z3
  checks that their instances fit together over all 2^(L+1) − 1 nodes.  The verdict is ``verified``
  only if every query is ``unsat``.

**The instantiation check** (modular encoding).  The implication ``F_u ∧ I_children → I_u`` is
trusted, so it must *be* the node lemma at u.  After the node lemmas and before the assembly is
solved, every node u whose statement is the generic one (:meth:`_Spec.instance`) is checked in
Python: the renaming σ_u (each constant of the generic node "u" and of its children "u0", "u1", …
↦ the same constant, by position, of u and of u's children in the trie) applied token by token to
the exact SMT-LIB text the node lemma's query proved must give, string for string and in order, the
facts the assembly asserts at u (its prefix mass, end mass, its children's masses, its rows, …),
the invariants ``I_c`` of u's children (as many as the node lemma has) and u's invariant ``I_u``.
Why this is sound: the node lemma is unsat for *every* value of its constants and every
interpretation of the uninterpreted functions, so its σ_u-instance is a valid formula whatever σ_u
is; the check makes its premises exactly ``facts_u`` (which ``F_u`` implies) and its hypotheses and
conclusion exactly the formulas ``I_c``, ``I_u`` are defined equal to, so ``F_u ∧ I_children → I_u``
follows from that valid formula and the assembly's own definitions.  The assembly is then the
monolithic query plus consequences of it: unsat of one is unsat of the other, and a sat assembly is
a countermodel of the global negated claim (``falsified`` never rests on a node lemma alone).  Cheap:
one ``str.format_map`` per fact per node, no extra z3 query.  A node that fails the check (a
mismatched variable, a wrong mass relation, a missing child) gives ``unknown`` with a reason naming
the node and its prefix, and no assembly is solved.  A node whose statement is *not* the generic one
(a variant at the root), and every node of a shape whose node lemma z3 did not prove, gets no
instance: its facts are asserted directly and z3 does its case analysis in the assembly — so a
false claim that differs from the lemma only at the root comes back ``falsified`` from the modular
encoding too.  ``SMTResult.instances``/``direct`` and the certificate's last assumption say which.

**Variants** (``variant=``, a keyword of the provers, not in the command line): ``"root-only"``
alters the statement at the root only — Lemma A drops the agreement hypothesis at ε (claims that the
cross-entropy does not depend on the root row either), Lemma B drops the root's condition from the
conclusion, Lemma C drops the per-node fact KL_ε ≥ 0.  Each is false and must come back
``falsified`` from both encodings (the mutants ``smt-root-only-*``).

Every query's text is SMT-LIB 2 generated here and parsed by z3 (fast); z3 is imported lazily, never
by ``import theory``.  Each result is a frozen :class:`SMTResult` listing the axiom instances the
query assumes — a certificate must copy them as assumptions.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Callable, Iterable, Mapping, Sequence

from theory.alphabet import EOS, Alphabet
from theory.certificate import Status
from theory.errors import InvalidBudget, InvalidDistribution, InvalidLanguage, InvalidPrompt
from theory.languages import DEAD, Automaton

if TYPE_CHECKING:
    from theory.data import FiniteDistribution
    from theory.exact import FractionInterval, LogCombination
    from theory.models import ARModel

DEFAULT_TIMEOUT_MS = 60_000
DEFAULT_MAX_VARIABLES = 400_000
MAX_COUNTERMODEL_ENTRIES = 24
_VARIANTS = (None, "root-only")

__all__ = [
    "SMTResult", "SynthesisResult", "Recheck", "model_space_size", "prove_lemma_a", "prove_lemma_b",
    "prove_lemma_c", "prove_lemmas", "prove_node_gibbs", "synthesize_extrapolator", "recheck_synthesis", "z3_version",
]


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
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidBudget(f"{what} {value!r} must be an int ≥ {minimum}")
    return value


def _alphabet(alphabet: str | Alphabet) -> Alphabet:
    return alphabet if isinstance(alphabet, Alphabet) else Alphabet(alphabet)


def model_space_size(alphabet: str | Alphabet, horizon: int) -> int:
    """(|Σ| + 1) · #{u : |u| ≤ L}: one model's row variables at horizon L (24,573 for {a, b}, L = 12).

    Raises:
        InvalidBudget: horizon not an int ≥ 1.
    """
    _check_int(horizon, "horizon", 1)
    return (len(_alphabet(alphabet)) + 1) * _Tree(_alphabet(alphabet), horizon).size


# ---- the complete trie of prefixes |u| ≤ L, in level order ---------------------------------------
class _Tree:
    """Node i's children are k·i + 1 + a; nodes ≥ ``first_leaf`` have |u| = L."""

    def __init__(self, alphabet: Alphabet, horizon: int) -> None:
        self.symbols = tuple(alphabet.symbols)
        self.k, self.horizon = len(alphabet), horizon
        self.K = self.k + 1
        self.size = sum(self.k**d for d in range(horizon + 1))
        self.first_leaf = self.size - self.k**horizon

    def children(self, i: int) -> list[int]:
        return [] if i >= self.first_leaf else [self.k * i + 1 + a for a in range(self.k)]

    def prefix(self, i: int) -> str:
        """Node i's prefix u as a word ("ε" for the root), for messages."""
        out = []
        while i > 0:
            out.append(self.symbols[(i - 1) % self.k])
            i = (i - 1) // self.k
        return "".join(reversed(out)) or "ε"


@dataclass(frozen=True)
class _Node:
    """A node as the encodings see it: a label (names its variables), its children's labels, leaf?,
    root? (the generic node of a node lemma is never the root)."""

    label: str
    children: tuple[str, ...]
    leaf: bool
    root: bool = False


def _and(xs: Sequence[str]) -> str:
    return "true" if not xs else xs[0] if len(xs) == 1 else f"(and {' '.join(xs)})"


def _sum(xs: Sequence[str]) -> str:
    return "0" if not xs else xs[0] if len(xs) == 1 else f"(+ {' '.join(xs)})"


def _row_facts(row: Sequence[str], leaf: bool) -> list[str]:
    """A valid next-token row; at a leaf (|u| = L) every symbol gets 0, so EOS gets 1."""
    facts = [f"(= {_sum(row)} 1)"]
    facts += [f"(= {v} 0)" if leaf and o < len(row) - 1 else f"(>= {v} 0)" for o, v in enumerate(row)]
    return facts


def _flow_facts(n: _Node) -> list[str]:
    """P(u) = P({u}) + Σ_a P(ua) and P({u}) ≥ 0."""
    return [f"(= m{n.label} {_sum([f'e{n.label}'] + [f'm{c}' for c in n.children])})", f"(>= e{n.label} 0)"]


# ---- the three lemmas as node-local specifications ----------------------------------------------
class _Spec:
    """A lemma: per-node variables and facts, the node invariant I_u (what the node lemma concludes and
    a parent relies on), and the negated global claim (about the root's invariant terms)."""

    name = ""
    functions = ""
    assumptions: tuple[str, ...] = ()
    variant: str | None = None

    def __init__(self, K: int, variant: str | None = None) -> None:
        if variant not in _VARIANTS:
            raise InvalidLanguage(f"variant {variant!r} is not None or 'root-only'")
        self.K, self.variant = K, variant

    def altered(self, n: _Node) -> bool:
        """Whether the statement at node n is altered by the variant (the root, for "root-only")."""
        return self.variant == "root-only" and n.root

    def instance(self, n: _Node) -> bool:
        """Whether node n's statement is the generic one, so that the modular assembly may (and, after
        the instantiation check, does) use the node lemma's instance there.  False only at nodes the
        variant alters; a spec that answers True wrongly is caught by the check (verdict unknown)."""
        return not self.altered(n)

    def variant_assumption(self, what: str) -> tuple[str, ...]:
        return (f"false variant (root-only): {what}",) if self.variant == "root-only" else ()

    def reals(self, label: str) -> list[str]:
        raise NotImplementedError

    def facts(self, n: _Node) -> list[str]:
        raise NotImplementedError

    def bools(self, label: str) -> list[str]:
        return []

    def invariant(self, label: str) -> str:
        raise NotImplementedError

    def negated_claim(self, nodes: int) -> str:
        raise NotImplementedError


_COMMON = (
    "data: end masses P({u}) >= 0 for |u| <= L, prefix masses P(u) = P({u}) + sum_a P(ua), P(eps) = 1",
    "models: a row over Sigma+EOS at every |u| <= L, entries >= 0 summing to 1, EOS forced at |u| = L",
)


class _LemmaA(_Spec):
    """CE(Q) = −G_Q(ε), G_Q(u) = Σ_o times(P(uo), lnq(q(o|u))) + Σ_a G_Q(ua); two models x, y that
    agree wherever P(u) > 0 (``hypothesis``: "support"; the false variants "none" and
    "off-support" — agreement only where P(u) = 0 — must come back falsified; ``variant="root-only"``
    drops the hypothesis at the root, i.e. claims independence from the root row too: false)."""

    name = "lemma-a"
    functions = "(declare-fun lnq (Real) Real)(declare-fun times (Real Real) Real)"

    def __init__(self, K: int, hypothesis: str = "support", variant: str | None = None) -> None:
        super().__init__(K, variant)
        if hypothesis not in ("support", "none", "off-support"):
            raise InvalidLanguage(f"Lemma A hypothesis {hypothesis!r} is not 'support', 'none' or 'off-support'")
        self.hypothesis = hypothesis
        self.assumptions = _COMMON + (
            "ln and the product are uninterpreted functions lnq, times (only congruence is used)",
            "instances of 0*y = 0: P(uo) = 0 => times(P(uo), lnq(q(o|u))) = 0, for each term and each model",
            "ln 0 = -inf (q = 0 at an outcome of positive mass) is represented by the real lnq(0): both models then "
            "have that same term, so 'equal cross-entropy' covers CE = +inf for both",
            "CE(Q) = -sum_u sum_o P(uo) ln q(o|u), summed along the trie (G_Q(u) = local terms + sum_a G_Q(ua))",
            {"support": "hypothesis: P(u) > 0 => q1(.|u) = q2(.|u)", "none": "no hypothesis (false variant)",
             "off-support": "hypothesis only off the support: P(u) = 0 => q1(.|u) = q2(.|u) (false variant)"}[hypothesis],
        ) + self.variant_assumption("no hypothesis at the root: the claim is that the cross-entropy does not "
                                    "depend on the root row q(.|eps) either")

    def reals(self, label: str) -> list[str]:
        return [f"m{label}", f"e{label}", f"g{label}", f"h{label}"] + [f"{r}{label}_{o}" for r in "xy" for o in range(self.K)]

    def facts(self, n: _Node) -> list[str]:
        u, K = n.label, self.K
        xs, ys = [f"x{u}_{o}" for o in range(K)], [f"y{u}_{o}" for o in range(K)]
        facts = _flow_facts(n) + _row_facts(xs, n.leaf) + _row_facts(ys, n.leaf)
        agree = _and([f"(= {x} {y})" for x, y in zip(xs, ys)])
        if self.altered(n):
            pass  # root-only variant: no agreement assumed at the root
        elif self.hypothesis == "support":
            facts.append(f"(=> (> m{u} 0) {agree})")
        elif self.hypothesis == "off-support":
            facts.append(f"(=> (<= m{u} 0) {agree})")
        weights = [(f"m{c}", o) for o, c in enumerate(n.children)] + [(f"e{u}", K - 1)]
        t1, t2 = [], []
        for w, o in weights:
            for row, terms in ((xs, t1), (ys, t2)):
                t = f"(times {w} (lnq {row[o]}))"
                facts.append(f"(=> (and (>= {w} 0) (<= {w} 0)) (= {t} 0))")  # w = 0, as two bounds
                terms.append(t)
        facts.append(f"(= g{u} {_sum(t1 + [f'g{c}' for c in n.children])})")
        facts.append(f"(= h{u} {_sum(t2 + [f'h{c}' for c in n.children])})")
        return facts

    def invariant(self, label: str) -> str:
        return f"(and (>= m{label} 0) (= g{label} h{label}))"

    def negated_claim(self, nodes: int) -> str:
        return "(not (= g0 h0))"  # CE(Q1) ≠ CE(Q2), as CE = −G(ε)


class _KLSpec(_Spec):
    """Shared by Lemmas B and C: KL(P ‖ Q) = S(ε), S(u) = times(P(u), klnode(p(·|u), q(·|u))) + Σ_a S(ua)."""

    def __init__(self, K: int, variant: str | None = None) -> None:
        super().__init__(K, variant)
        args = " ".join(["Real"] * (2 * K))
        self.functions = f"(declare-fun klnode ({args}) Real)(declare-fun times (Real Real) Real)"

    def reals(self, label: str) -> list[str]:
        return [f"m{label}", f"e{label}", f"s{label}", f"k{label}", f"t{label}"] + [
            f"{r}{label}_{o}" for r in "pq" for o in range(self.K)]

    def _equal_rows(self, u: str) -> str:
        return _and([f"(= p{u}_{o} q{u}_{o})" for o in range(self.K)])

    def _base_facts(self, n: _Node) -> list[str]:
        """Flows, rows, k_u = klnode(p(.|u), q(.|u)), t_u = times(P(u), k_u), S(u) = t_u + Σ_a S(ua)."""
        u, K = n.label, self.K
        p, q = [f"p{u}_{o}" for o in range(K)], [f"q{u}_{o}" for o in range(K)]
        return (_flow_facts(n) + _row_facts(p, n.leaf) + _row_facts(q, n.leaf)
                + [f"(= k{u} (klnode {' '.join(p + q)}))", f"(= t{u} (times m{u} k{u}))",
                   f"(= s{u} {_sum([f't{u}'] + [f's{c}' for c in n.children])})"])


_KL_COMMON = _COMMON + (
    "chain rule taken as the definition: KL(P||Q) = sum_u P(u)*KL(p(.|u)||q(.|u)), summed along the trie "
    "(checked exactly by the `chain-rule` check)",
    "node KL is an uninterpreted function klnode(p(.|u), q(.|u)); the data conditionals p(.|u) are free "
    "rows (the claim holds for every choice, in particular P(ua)/P(u))",
    "the product P(u)*KL_u is an uninterpreted function times",
)


class _LemmaB(_KLSpec):
    """KL = 0 ⟺ every support node's rows agree.  ``scope="all"`` claims agreement at *every*
    prefix — false (nothing off the support is identified) and must come back falsified;
    ``variant="root-only"`` drops the root's condition (d_ε := false): false too."""

    name = "lemma-b"

    def __init__(self, K: int, scope: str = "support", variant: str | None = None) -> None:
        super().__init__(K, variant)
        if scope not in ("support", "all"):
            raise InvalidLanguage(f"Lemma B scope {scope!r} is not 'support' or 'all'")
        self.scope = scope
        self.assumptions = _KL_COMMON + (
            "per-node fact instances (the per-node lemma, proved by z3-node-gibbs): klnode_u >= 0, and "
            "klnode_u = 0 <=> p(.|u) = q(.|u)",
            "sign-rule instances at each node: x >= 0 & y >= 0 => x*y >= 0; x > 0 & y > 0 => x*y > 0; "
            "x = 0 => x*y = 0; y = 0 => x*y = 0 (x = P(u), y = klnode_u)",
            "the conclusion 'q = p at every support prefix' is w(eps), defined by recursion on the trie: "
            "w(u) = not d(u) and w(ua) for all a, with d(u) = (P(u) > 0 and q(.|u) != p(.|u))",
        ) + (("false variant: claims p = q at every prefix, support or not",) if scope == "all" else ()) + (
            self.variant_assumption("the root's condition is dropped from the conclusion (d(eps) := false): the "
                                    "claim is KL = 0 iff q = p at every support prefix other than eps"))

    def bools(self, label: str) -> list[str]:
        return [f"d{label}", f"w{label}"]

    def facts(self, n: _Node) -> list[str]:
        """Base facts, the per-node fact and sign-rule instances, d_u := D_u (u is a support prefix —
        any prefix, in the false variant — whose rows differ) and w_u := ¬d_u ∧ ∧_a w_ua (no node of
        u's subtree has d), so w_ε says "q = p at every support prefix"."""
        u = n.label
        neq = f"(not {self._equal_rows(u)})"
        return self._base_facts(n) + [
            f"(>= k{u} 0)", f"(= (= k{u} 0) {self._equal_rows(u)})",
            f"(=> (and (>= m{u} 0) (>= k{u} 0)) (>= t{u} 0))",
            f"(=> (and (> m{u} 0) (> k{u} 0)) (> t{u} 0))",
            f"(=> (= m{u} 0) (= t{u} 0))", f"(=> (= k{u} 0) (= t{u} 0))",
            f"(= d{u} false)" if self.altered(n) else f"(= d{u} {neq if self.scope == 'all' else f'(and (> m{u} 0) {neq})'})",
            f"(= w{u} {_and([f'(not d{u})'] + [f'w{c}' for c in n.children])})",
        ]

    def invariant(self, label: str) -> str:
        return f"(and (>= m{label} 0) (>= s{label} 0) (= (= s{label} 0) w{label}))"

    def negated_claim(self, nodes: int) -> str:
        return "(not (= (= s0 0) w0))"


class _LemmaC(_KLSpec):
    """KL ≥ 0 (Gibbs) from the flow facts and the per-node fact klnode ≥ 0; ``node_fact=False`` drops
    that fact — false, must come back falsified; so must ``variant="root-only"``, which drops it at
    the root only."""

    name = "lemma-c"

    def __init__(self, K: int, node_fact: bool = True, variant: str | None = None) -> None:
        super().__init__(K, variant)
        self.node_fact = node_fact
        self.assumptions = _KL_COMMON + (
            ("per-node fact instances (the per-node lemma, proved by z3-node-gibbs): klnode_u >= 0"
             if node_fact else "no per-node fact (false variant)"),
            "sign-rule instances at each node: x >= 0 & y >= 0 => x*y >= 0 (x = P(u), y = klnode_u)",
        ) + self.variant_assumption("no per-node fact at the root (klnode_eps is unconstrained)")

    def invariant(self, label: str) -> str:
        return f"(and (>= m{label} 0) (>= s{label} 0))"

    def facts(self, n: _Node) -> list[str]:
        u = n.label
        f = self._base_facts(n) + [f"(=> (and (>= m{u} 0) (>= k{u} 0)) (>= t{u} 0))"]
        return f + ([f"(>= k{u} 0)"] if self.node_fact and not self.altered(n) else [])

    def negated_claim(self, nodes: int) -> str:
        return "(< s0 0)"


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
    ctx = z3.Context()
    start = time.perf_counter()
    s = z3.SimpleSolver(ctx=ctx) if simple else z3.Solver(ctx=ctx)
    s.set("timeout", int(timeout_ms))
    s.from_string(q.text())
    r = s.check()
    if r == z3.unsat:
        return _Outcome("unsat", time.perf_counter() - start)
    if r == z3.unknown:
        why = s.reason_unknown()
        return _Outcome("unknown", time.perf_counter() - start,
                        f"timeout: z3 stopped at the {timeout_ms} ms budget ({why})" if "timeout" in why or "canceled" in why
                        else f"z3 returned unknown: {why}")
    m = s.model()
    shown = []
    for d in sorted(m.decls(), key=lambda d: d.name()):
        if d.arity() == 0 and len(shown) < MAX_COUNTERMODEL_ENTRIES:
            shown.append((d.name(), str(m[d])))
    values = {}
    for name in want:
        v = m.eval(z3.Real(name, ctx), model_completion=True)
        values[name] = v.as_fraction()
    return _Outcome("sat", time.perf_counter() - start, model=tuple(shown), values=values)


def _budget(variables: int, max_variables: int) -> str:
    return "" if variables <= max_variables else (
        f"the query needs {variables:,} variables, over the budget of {max_variables:,} (max_variables)")


def _result(spec: _Spec, horizon: int | None, encoding: str, q: _Query | None, out: _Outcome | None,
            model_variables: int, subproofs: tuple[SMTResult, ...] = (), reason: str = "",
            variables: int | None = None, extra: tuple[str, ...] = (), instances: int = 0,
            direct: tuple[str, ...] = ()) -> SMTResult:
    status = Status.UNKNOWN if out is None else {"unsat": Status.VERIFIED, "sat": Status.FALSIFIED}.get(out.answer, Status.UNKNOWN)
    if out is not None and out.answer == "sat" and not reason:
        reason = "z3 found a countermodel to the claim (negation is sat)"
    reason = reason or ("" if out is None else out.reason)
    return SMTResult(
        lemma=spec.name, status=status, horizon=horizon, encoding=encoding,
        variables=q.reals if q is not None else (variables or 0), model_variables=model_variables,
        assertions=q.assertions if q is not None else 0,
        solver_seconds=sum(s.solver_seconds for s in subproofs) + (out.seconds if out else 0),
        z3_version=z3_version(), reason=reason, assumptions=spec.assumptions + extra,
        countermodel=out.model if out is not None else (), subproofs=subproofs, instances=instances, direct=direct,
    )


# ---- the modular encoding: node lemmas and the instantiation check -------------------------------
_TOKEN = re.compile(r"[^\s()]+")
_SEP = "\x00"


@dataclass(frozen=True)
class _NodeLemma:
    """A node lemma for one shape ("internal" or "leaf"): z3's verdict (``result``) on
    ``premises ∧ hypotheses → conclusion`` for the generic node "u" with children "u0", "u1", …
    (``labels``), and the exact formulas of that query as ``str.format`` templates whose fields are the
    generic constants (``{mu}``, ``{xu_0}``, ``{mu0}``, …): the instance at a node is the template
    filled with that node's constants.  ``generic`` lists those constants label by label (the keys of
    every renaming); ``whole`` is every template joined by NUL, for a one-call comparison."""

    shape: str
    result: SMTResult
    labels: tuple[str, ...]
    generic: tuple[str, ...]
    premises: tuple[str, ...]
    hypotheses: tuple[str, ...]
    conclusion: str
    whole: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "whole", _SEP.join(self.premises + self.hypotheses + (self.conclusion,)))


def _constants(spec: _Spec, label: str) -> list[str]:
    """The constants a node contributes to a query, in a fixed order (reals, then bools)."""
    return spec.reals(label) + spec.bools(label)


def _template(formula: str, names: frozenset[str]) -> str:
    """``formula`` with every token that is one of ``names`` turned into the field ``{token}``."""
    escaped = formula.replace("{", "{{").replace("}", "}}")
    return _TOKEN.sub(lambda m: "{" + m.group(0) + "}" if m.group(0) in names else m.group(0), escaped)


def _node_lemma(spec: _Spec, k: int, leaf: bool, timeout_ms: int) -> _NodeLemma:
    """F_u ∧ I_children → I_u for a generic non-root node ("u", children "u0"…), proved as unsat of
    its negation; returns the verdict with the query's formulas as instantiation templates.

    Raises:
        InvalidLanguage: the spec names two generic constants alike or a constant that is not an
            identifier (the renaming would be ill-defined).
    """
    n = _Node("u", () if leaf else tuple(f"u{a}" for a in range(k)), leaf)
    labels = (n.label,) + n.children
    names = [c for lab in labels for c in _constants(spec, lab)]
    if len(set(names)) != len(names) or not all(c.isidentifier() for c in names):
        raise InvalidLanguage(f"{spec.name}: the generic node's constants are not distinct identifiers: {names}")
    premises, hypotheses = spec.facts(n), [spec.invariant(c) for c in n.children]
    conclusion = spec.invariant(n.label)
    q = _Query(spec.functions)
    q.declare([r for lab in labels for r in spec.reals(lab)], [b for lab in labels for b in spec.bools(lab)])
    q.add(*premises)
    q.add(*hypotheses)
    q.add(f"(not {conclusion})")
    out = _solve(q, timeout_ms)
    shape = "leaf" if leaf else "internal"
    sub = _result(spec, None, "node", q, out, 0)
    res = SMTResult(**{**sub.__dict__, "lemma": f"{spec.name}-node-{shape}", "assumptions": ()})
    nameset = frozenset(names)
    return _NodeLemma(shape, res, labels, tuple(names), tuple(_template(f, nameset) for f in premises),
                      tuple(_template(f, nameset) for f in hypotheses), _template(conclusion, nameset))


def _renaming(spec: _Spec, lemma: _NodeLemma, n: _Node, constants: Mapping[str, Sequence[str]] | None = None) -> dict[str, str]:
    """σ_n: each constant of the generic node and of its children ↦ the same constant of n and of
    n's children (by position), as the trie gives them (``constants``: label → the spec's constants
    for that label, a cache)."""
    actual = [c for lab in (n.label,) + n.children
              for c in (constants[lab] if constants is not None else _constants(spec, lab))]
    return dict(zip(lemma.generic, actual))


def _instance_error(lemma: _NodeLemma, sigma: Mapping[str, str], facts: Sequence[str], hypotheses: Sequence[str],
                    conclusion: str) -> str:
    """"" when the node lemma under ``sigma`` is, string for string, ``facts`` ∧ ``hypotheses`` →
    ``conclusion`` (what the assembly asserts at the node: its facts, its children's invariants, its
    own invariant); otherwise what differs first."""
    if len(hypotheses) != len(lemma.hypotheses):
        return (f"it has {len(hypotheses)} children, the {lemma.shape} node lemma {len(lemma.hypotheses)}")
    if len(facts) == len(lemma.premises):
        # fast path: one substitution of the joined templates.  Equal joined strings mean equal items
        # when the assembly's side has exactly one NUL per seam (then no renamed constant brought one)
        expected = _SEP.join([*facts, *hypotheses, conclusion])
        try:
            if lemma.whole.format_map(sigma) == expected and expected.count(_SEP) == len(facts) + len(hypotheses):
                return ""
        except KeyError:
            pass  # reported below
    try:
        premises = [t.format_map(sigma) for t in lemma.premises]
        hyps = [t.format_map(sigma) for t in lemma.hypotheses]
        concl = lemma.conclusion.format_map(sigma)
    except KeyError as e:
        return f"the node lemma's constant {e.args[0]} has no counterpart at the node"
    if len(premises) != len(facts):
        return f"the node lemma has {len(premises)} premises, the assembly asserts {len(facts)} facts at the node"
    for j, (p, f) in enumerate(zip(premises, facts)):
        if p != f:
            return f"premise {j} instantiates to {p} but the assembly asserts {f} there"
    for j, (h, f) in enumerate(zip(hyps, hypotheses)):
        if h != f:
            return f"hypothesis I_child{j} instantiates to {h} but child {j}'s invariant is {f}"
    if concl != conclusion:
        return f"the conclusion instantiates to {concl} but the node's invariant is {conclusion}"
    return ""


def _modular_assumption(lemmas: Mapping[str, _NodeLemma], counts: Mapping[str, int], direct: Sequence[str],
                        unproved: Sequence[str]) -> str:
    """The certificate's statement of what the modular proof checked."""
    total = sum(counts.values())
    text = (f"modular proof: node lemmas {lemmas['internal'].result.lemma} and {lemmas['leaf'].result.lemma}, each an "
            f"unsat z3 query over a generic node u (F_u & I_children & not I_u); the premises of the node lemma were "
            f"checked at each of the {total:,} nodes used as its instance ({counts['internal']:,} internal, "
            f"{counts['leaf']:,} leaves), in Python, string for string: the node lemma's query text with each generic "
            f"constant renamed to the node's (prefix mass, end mass, children's masses, rows, ...) is exactly the facts "
            f"the assembly asserts at that node, its children's invariants I_c and its invariant I_u; the assembly query "
            f"uses F_u & I_children => I_u at exactly those nodes")
    if direct:
        shown = ", ".join(direct[:8]) + (f", ... ({len(direct):,} in all)" if len(direct) > 8 else "")
        text += f"; asserted directly with no node-lemma instance (z3 does their case analysis in the assembly): {shown}"
    if unproved:
        text += f"; not used because z3 did not prove them: {', '.join(unproved)}"
    return text


def _prove(spec: _Spec, alphabet: str | Alphabet, horizon: int, encoding: str, timeout_ms: int,
           max_variables: int, *, rewire: Mapping[int, Mapping[str, str]] | None = None) -> SMTResult:
    """One lemma at one horizon in one encoding (see the module docstring).  ``rewire`` is a test
    hook of the modular encoding: {node index: {generic constant: constant}} overrides the renaming
    σ_u at that node, as a wrongly wired instance would; the instantiation check must then refuse.

    Returns: verified (every query unsat), falsified (the assembly or monolithic query sat: a
    countermodel of the negated claim), unknown (budget, timeout, or a node that fails the
    instantiation check, named in the reason).

    Raises:
        InvalidBudget: horizon/timeout/budget not a positive int, or an unknown encoding.
    """
    sigma_ab = _alphabet(alphabet)
    _check_int(horizon, "horizon", 1)
    _check_int(timeout_ms, "timeout_ms", 1)
    _check_int(max_variables, "max_variables", 1)
    if encoding not in ("modular", "monolithic"):
        raise InvalidBudget(f"encoding {encoding!r} is not 'modular' or 'monolithic'")
    tree = _Tree(sigma_ab, horizon)
    mvars = tree.K * tree.size
    total = len(spec.reals("0")) * tree.size
    over = _budget(total, max_variables)
    if over:
        return _result(spec, horizon, encoding, None, None, mvars, reason=over, variables=total)
    deadline = time.perf_counter() + timeout_ms / 1000
    nodes = [_Node(str(i), tuple(str(c) for c in tree.children(i)), i >= tree.first_leaf, i == 0) for i in range(tree.size)]
    q = _Query(spec.functions)
    bools = [b for i in range(tree.size) for b in spec.bools(str(i))]
    if encoding == "monolithic":
        q.declare([r for i in range(tree.size) for r in spec.reals(str(i))], bools)
        q.add("(= m0 1)")
        for n in nodes:
            q.add(*spec.facts(n))
        q.add(spec.negated_claim(tree.size))
        left = int((deadline - time.perf_counter()) * 1000)
        return _result(spec, horizon, encoding, q, _solve(q, left), mvars)

    lemmas = {lem.shape: lem for lem in (_node_lemma(spec, tree.k, leaf, int((deadline - time.perf_counter()) * 1000))
                                         for leaf in (False, True))}
    subs = (lemmas["internal"].result, lemmas["leaf"].result)
    unproved = [f"{s.lemma} ({s.status.value}{': ' + s.reason if s.reason else ''})" for s in subs if not s.verified]
    body: list[str] = []
    instance_labels: list[str] = []
    direct: list[str] = []
    counts = {"internal": 0, "leaf": 0}
    asserted = 0
    constants = {n.label: _constants(spec, n.label) for n in nodes}
    invariants = [spec.invariant(n.label) for n in nodes]
    for i, n in enumerate(nodes):
        lemma = lemmas["leaf" if n.leaf else "internal"]
        facts, inv = spec.facts(n), invariants[i]
        if spec.instance(n):
            sigma = _renaming(spec, lemma, n, constants)
            if rewire and i in rewire:
                sigma.update(rewire[i])
            err = _instance_error(lemma, sigma, facts, [invariants[int(c)] for c in n.children], inv)
            if err:
                why = (f"instantiation check failed: node {i} (prefix {tree.prefix(i)}) is not an instance of the node "
                       f"lemma {lemma.result.lemma}: {err}")
                return _result(spec, horizon, encoding, None, None, mvars, subs, reason=why, variables=total)
        if spec.instance(n) and lemma.result.verified:
            counts[lemma.shape] += 1
            instance_labels.append(n.label)
            body.append("".join(f"(assert {f})" for f in (
                f"F{i}", f"(=> F{i} {_and(facts)})", f"(= I{i} {inv})",
                f"(=> {_and([f'F{i}'] + [f'I{c}' for c in n.children])} I{i})")))
            asserted += 4
        else:
            direct.append(tree.prefix(i))
            body.append("".join(f"(assert {f})" for f in facts + [f"(= I{i} {inv})"]))
            asserted += len(facts) + 1
    bools += [f"F{lab}" for lab in instance_labels] + [f"I{i}" for i in range(tree.size)]
    q.declare([r for i in range(tree.size) for r in spec.reals(str(i))], bools)
    q.add("(= m0 1)")
    q.parts.append("".join(body))
    q.assertions += asserted
    q.add(spec.negated_claim(tree.size))
    left = int((deadline - time.perf_counter()) * 1000)
    out = _solve(q, left, simple=True)
    extra = (_modular_assumption(lemmas, counts, direct, unproved),)
    reason = ""
    if unproved and out.answer != "unsat":
        base = "z3 found a countermodel to the claim (negation is sat)" if out.answer == "sat" else out.reason
        reason = f"{base} (node lemma not proved, its nodes asserted directly: {'; '.join(unproved)})"
    return _result(spec, horizon, encoding, q, out, mvars, subs, reason=reason, extra=extra,
                   instances=sum(counts.values()), direct=tuple(direct))


def prove_lemma_a(horizon: int, alphabet: str | Alphabet = "ab", *, hypothesis: str = "support",
                  variant: str | None = None, encoding: str = "modular", timeout_ms: int = DEFAULT_TIMEOUT_MS,
                  max_variables: int = DEFAULT_MAX_VARIABLES) -> SMTResult:
    """Lemma A at horizon L for an arbitrary data distribution: two models that agree at every prefix
    with P(u) > 0 have equal cross-entropy.  Returns an :class:`SMTResult` (verified = unsat of the
    negation; the false ``hypothesis`` variants "none"/"off-support" and ``variant="root-only"`` —
    no hypothesis at the root — give falsified).

    Raises:
        InvalidBudget: horizon/timeout/budget not a positive int, or an unknown encoding.
        InvalidLanguage: an unknown hypothesis or variant.
    """
    spec = _LemmaA(len(_alphabet(alphabet)) + 1, hypothesis, variant)
    return _prove(spec, alphabet, horizon, encoding, timeout_ms, max_variables)


def prove_lemma_b(horizon: int, alphabet: str | Alphabet = "ab", *, scope: str = "support",
                  variant: str | None = None, encoding: str = "modular", timeout_ms: int = DEFAULT_TIMEOUT_MS,
                  max_variables: int = DEFAULT_MAX_VARIABLES) -> SMTResult:
    """Lemma B at horizon L: KL(P ‖ Q) = 0 iff q(·|u) = p(·|u) at every u with P(u) > 0, given the
    per-node fact as instantiated axioms.  ``scope="all"`` and ``variant="root-only"`` (the root's
    condition dropped from the conclusion), both false claims, give falsified.

    Raises: as :func:`prove_lemma_a` (InvalidLanguage for an unknown scope or variant).
    """
    spec = _LemmaB(len(_alphabet(alphabet)) + 1, scope, variant)
    return _prove(spec, alphabet, horizon, encoding, timeout_ms, max_variables)


def prove_lemma_c(horizon: int, alphabet: str | Alphabet = "ab", *, node_fact: bool = True,
                  variant: str | None = None, encoding: str = "modular", timeout_ms: int = DEFAULT_TIMEOUT_MS,
                  max_variables: int = DEFAULT_MAX_VARIABLES) -> SMTResult:
    """Lemma C (Gibbs) at horizon L: KL(P ‖ Q) ≥ 0 from the linear flow facts and the per-node fact
    KL_u ≥ 0.  ``node_fact=False`` (dropping that fact) and ``variant="root-only"`` (dropping it at
    the root) give falsified.

    Raises: as :func:`prove_lemma_a` (InvalidLanguage for an unknown variant).
    """
    spec = _LemmaC(len(_alphabet(alphabet)) + 1, node_fact, variant)
    return _prove(spec, alphabet, horizon, encoding, timeout_ms, max_variables)


def _prove_one(args: tuple[str, int, str, int, int]) -> "SMTResult":
    letter, horizon, alphabet, timeout_ms, max_variables = args
    prove = {"a": prove_lemma_a, "b": prove_lemma_b, "c": prove_lemma_c}[letter]
    return prove(horizon, alphabet, timeout_ms=timeout_ms, max_variables=max_variables)


def prove_lemmas(horizon: int, lemmas: str = "abc", alphabet: str | Alphabet = "ab", *, jobs: int | None = None,
                 timeout_ms: int = DEFAULT_TIMEOUT_MS, max_variables: int = DEFAULT_MAX_VARIABLES) -> dict[str, "SMTResult"]:
    """Several of Lemmas A, B, C at one horizon (modular encoding), each in its own process when
    ``jobs`` > 1 (default: one per lemma, at most the number of CPUs): {letter: result}.  The proofs
    are independent queries, so this changes only the wall time, never a verdict.

    Raises: as :func:`prove_lemma_a`, plus InvalidBudget for an unknown lemma letter or bad ``jobs``.
    """
    import os

    letters = tuple(dict.fromkeys(lemmas))
    bad = [x for x in letters if x not in "abc"]
    if bad or not letters:
        raise InvalidBudget(f"lemmas {lemmas!r} must be letters among 'abc'")
    _check_int(horizon, "horizon", 1)
    _check_int(timeout_ms, "timeout_ms", 1)
    _check_int(max_variables, "max_variables", 1)
    sigma = str(_alphabet(alphabet))
    n = min(len(letters), os.cpu_count() or 1) if jobs is None else _check_int(jobs, "jobs", 1)
    work = [(x, horizon, sigma, timeout_ms, max_variables) for x in letters]
    if n == 1:
        return {x: _prove_one(w) for x, w in zip(letters, work)}
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
    with ProcessPoolExecutor(max_workers=n, mp_context=ctx) as pool:
        return dict(zip(letters, pool.map(_prove_one, work)))


# ---- the per-node lemma ---------------------------------------------------------------------------
_GIBBS_ASSUMPTIONS = {
    "ratio": (
        "rows p, q over the node's outcomes: entries >= 0 summing to 1",
        "r_o = q_o/p_o defined by p_o*r_o = q_o where p_o > 0 (nonlinear real arithmetic)",
        "ln is an uninterpreted function with the instances ln(1) = 0 and ln(r_o) < r_o - 1 for r_o != 1 "
        "(from ln x <= x - 1, equality only at x = 1), at each r_o",
        "KL = -sum_{p_o > 0} p_o ln(q_o/p_o) (0 ln 0 = 0); q_o = 0 < p_o (KL = +inf) is represented by a "
        "real ln(0) < -1, and +inf satisfies the claim anyway",
    ),
    "scaled": (
        "rows p, q over the node's outcomes: entries >= 0 summing to 1",
        "t_o stands for p_o ln(q_o/p_o), with the instances of ln x <= x - 1 multiplied by p_o > 0: "
        "t_o <= q_o - p_o, strict when q_o != p_o, and t_o = 0 when q_o = p_o (ln 1 = 0) or p_o = 0 (0 ln 0 = 0)",
        "KL = -sum_o t_o; q_o = 0 < p_o (KL = +inf) is represented by a real t_o < -p_o",
    ),
}


def prove_node_gibbs(outcomes: int = 3, *, form: str | None = None, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> SMTResult:
    """The per-node lemma: for rows p, q over ``outcomes`` outcomes, KL(p ‖ q) ≥ 0 and KL = 0 iff
    p = q.  ``form="ratio"`` (default up to 3 outcomes) lets z3 multiply ln(q/p) ≤ q/p − 1 by p
    itself (nonlinear); ``"scaled"`` (default above 3, where the nonlinear query stops scaling)
    instantiates the already-multiplied inequality, so the query is linear.

    Raises:
        InvalidBudget: outcomes < 2, timeout not a positive int, or an unknown form.
    """
    _check_int(outcomes, "outcomes", 2)
    _check_int(timeout_ms, "timeout_ms", 1)
    form = form or ("ratio" if outcomes <= 3 else "scaled")
    if form not in _GIBBS_ASSUMPTIONS:
        raise InvalidBudget(f"form {form!r} is not 'ratio' or 'scaled'")
    K = range(outcomes)
    q = _Query("(declare-fun lnr (Real) Real)" if form == "ratio" else "")
    q.declare([f"{v}{o}" for o in K for v in ("pqr" if form == "ratio" else "pqt")])
    q.add(f"(= {_sum([f'p{o}' for o in K])} 1)", f"(= {_sum([f'q{o}' for o in K])} 1)")
    terms = []
    for o in K:
        q.add(f"(>= p{o} 0)", f"(>= q{o} 0)")
        if form == "ratio":
            q.add(f"(=> (> p{o} 0) (= (* p{o} r{o}) q{o}))", f"(=> (not (= r{o} 1)) (< (lnr r{o}) (- r{o} 1)))")
            terms.append(f"(ite (> p{o} 0) (* p{o} (lnr r{o})) 0)")
        else:
            q.add(f"(=> (= p{o} 0) (= t{o} 0))", f"(=> (= q{o} p{o}) (= t{o} 0))",
                  f"(=> (> p{o} 0) (<= t{o} (- q{o} p{o})))", f"(=> (and (> p{o} 0) (not (= q{o} p{o}))) (< t{o} (- q{o} p{o})))")
            terms.append(f"t{o}")
    if form == "ratio":
        q.add("(= (lnr 1) 0)")
    kl = f"(- {_sum(terms)})"
    q.add(f"(not (and (>= {kl} 0) (= (= {kl} 0) {_and([f'(= p{o} q{o})' for o in K])})))")
    out = _solve(q, timeout_ms)
    return _result(_Named("node-gibbs", _GIBBS_ASSUMPTIONS[form]), None, f"node-{form}", q, out, 0)


class _Named(_Spec):
    """A bare name and assumption list, for queries that are not trie lemmas."""

    def __init__(self, name: str, assumptions: tuple[str, ...]) -> None:
        super().__init__(0)
        self.name, self.assumptions = name, assumptions


# ---- synthesis ------------------------------------------------------------------------------------
RuleLike = Callable[[str], bool]


def _event(rule: object, alphabet: Alphabet, satisfy: bool):
    """An automaton for 'prompt + completion satisfies (or, with satisfy=False, violates) R1', for
    theory.properties.sampled_rule_probability; ``rule`` is a theory.languages Automaton or a callable."""
    if isinstance(rule, Automaton):
        if rule.alphabet != alphabet:
            raise InvalidLanguage(f"rule {rule.name!r} is over {str(rule.alphabet)!r}, the data over {str(alphabet)!r}")
        base = rule
    elif callable(rule):
        base = _CallableRule(rule, alphabet)
    else:
        raise InvalidLanguage(f"rule {rule!r} is neither a theory.languages Rule nor a callable word -> bool")
    return base if satisfy else _Complement(base)


class _CallableRule(Automaton):
    """A callable word -> bool as an automaton whose state is the word read so far."""

    def __init__(self, fn: RuleLike, alphabet: Alphabet) -> None:
        self.fn, self.alphabet, self.name = fn, alphabet, getattr(fn, "__name__", "rule")

    def start(self) -> str:
        return ""

    def _step(self, state: str, token: str) -> str:
        return state + token

    def accepts_state(self, state: str) -> bool:
        return bool(self.fn(state))

    def completable_state(self, state: str) -> bool:
        return True


class _Complement(Automaton):
    """Accepts exactly the words the wrapped automaton rejects; every state is completable."""

    def __init__(self, rule: Automaton) -> None:
        self.rule, self.alphabet, self.name = rule, rule.alphabet, f"not {rule.name}"

    def start(self) -> tuple:
        return (self.rule.start(),)

    def _step(self, state: tuple, token: str) -> tuple:
        return (self.rule.step(state[0], token),)

    def accepts_state(self, state: tuple) -> bool:
        return state[0] is DEAD or not self.rule.accepts_state(state[0])

    def completable_state(self, state: tuple) -> bool:
        return True


@dataclass(frozen=True)
class Recheck:
    """The exact re-check of a synthesised model: ``kl`` = KL(P ‖ Q) (exact; ``kl_zero`` its exact
    zero test), ``probabilities`` = per prompt the exact bracket of P(completion finishes within the
    horizon and satisfies/violates R1), ``target`` = 1 − δ; ``passed`` iff KL = 0 and every
    bracket's lower end ≥ target.  ``failures`` says what failed."""

    kl: "LogCombination"
    kl_zero: bool
    probabilities: tuple[tuple[str, "FractionInterval"], ...]
    target: Fraction
    satisfy: bool
    passed: bool
    failures: tuple[str, ...] = ()


@dataclass(frozen=True)
class SynthesisResult:
    """Synthesis outcome: ``status`` verified only when z3 found a model *and* the exact re-check
    passed; falsified when z3 proved no model exists in the horizon-L space (exact unless prompts
    nest, where the encoding is conservative and unsat gives unknown); unknown otherwise (timeout,
    budget, or a re-check failure), with ``reason``.  ``model`` is a PatchedModel over a
    SupportExtension of P (rows exact Fractions), or None; ``rows`` the synthesised off-support rows."""

    status: Status
    model: "ARModel | None"
    rows: Mapping[str, Mapping[str, Fraction]]
    recheck: Recheck | None
    horizon: int
    variables: int
    assertions: int
    solver_seconds: float
    z3_version: str
    reason: str = ""

    @property
    def verified(self) -> bool:
        return self.status is Status.VERIFIED


def _check_synthesis_input(P: "FiniteDistribution", prompts: Iterable[str], delta: object, horizon: int) -> tuple[tuple[str, ...], Fraction]:
    from theory.probability import as_probability

    _check_int(horizon, "horizon", 1)
    d = as_probability(delta, "delta")
    if d >= 1:
        raise InvalidDistribution(f"delta {d} must lie in [0, 1)")
    if isinstance(prompts, str):
        raise InvalidPrompt(f"expected an iterable of prompts, got the single string {prompts!r}")
    ps = tuple(dict.fromkeys(prompts))
    if not ps:
        raise InvalidPrompt("the prompt set is empty")
    for u in ps:
        P.alphabet.check_sequence(u, "prompt")
        if len(u) > horizon:
            raise InvalidPrompt(f"prompt {u!r} has length {len(u)}, longer than the horizon {horizon}")
        if P.prefix_mass(u) > 0:
            raise InvalidPrompt(f"prompt {u!r} is in the support (P(u) = {P.prefix_mass(u)}), not OOD")
    return ps, d


def _regions(prompts: tuple[str, ...], alphabet: Alphabet, horizon: int) -> list[tuple[str, list[str], list[str]]]:
    """Per prompt u: (u, region nodes v ⊒ u not inside a longer prompt, boundary prompts w ⊐ u)."""
    pset = set(prompts)
    out = []
    for u in prompts:
        nodes, boundary, stack = [], [], [u]
        while stack:
            v = stack.pop()
            nodes.append(v)
            if len(v) < horizon:
                for a in alphabet.symbols:
                    (boundary if v + a in pset else stack).append(v + a)
        out.append((u, nodes, boundary))
    return out


def synthesize_extrapolator(P: "FiniteDistribution", prompts: Iterable[str], rule: object, delta: object,
                            horizon: int, *, satisfy: bool = False, timeout_ms: int = DEFAULT_TIMEOUT_MS,
                            max_variables: int = DEFAULT_MAX_VARIABLES) -> SynthesisResult:
    """Find a model equal to p(·|u) on S(P) whose sampled completion from every OOD prompt ends
    within the horizon and violates R1 (``satisfy=True``: satisfies it) with probability ≥ 1 − δ.

    Linear encoding per prompt u: f(v) = P(reach v | u), g(v) = P(end at v | u), f(u) = 1,
    f(v) = g(v) + Σ_a f(va) (= g(v) at |v| = L), all ≥ 0, and Σ_{v target} g(v) ≥ 1 − δ; a longer
    prompt w inside u's subtree is its own region and counts (1 − δ)·f(w) for u (conservative).
    Rows are read off as q(a|v) = f(va)/f(v), q(EOS|v) = g(v)/f(v) (EOS where f(v) = 0), then
    re-checked exactly by :func:`recheck_synthesis`.

    Raises:
        InvalidBudget: horizon < 1 (or not an int), bad timeout/budget.  InvalidDistribution: δ not
        an exact number in [0, 1).  InvalidPrompt: no prompts, a prompt in the support or longer than
        the horizon.  UnknownToken: a prompt token outside Σ.  InvalidLanguage: a bad rule.
    """
    ps, d = _check_synthesis_input(P, prompts, delta, horizon)
    _check_int(timeout_ms, "timeout_ms", 1)
    _check_int(max_variables, "max_variables", 1)
    event = _event(rule, P.alphabet, satisfy)
    regions = _regions(ps, P.alphabet, horizon)
    nvars = sum(2 * len(nodes) + len(bd) for _u, nodes, bd in regions)
    over = _budget(nvars, max_variables)
    if over:
        return SynthesisResult(Status.UNKNOWN, None, {}, None, horizon, nvars, 0, 0.0, z3_version(), over)
    q = _Query()
    names: dict[tuple[int, str], str] = {}
    for r, (u, nodes, bd) in enumerate(regions):
        ids = {v: j for j, v in enumerate(nodes + bd)}
        for v in nodes + bd:
            names[(r, v)] = f"f{r}_{ids[v]}"
        for v in nodes:
            names[(r, "#" + v)] = f"g{r}_{ids[v]}"
        q.declare([names[(r, v)] for v in nodes + bd] + [names[(r, "#" + v)] for v in nodes])
        q.add(f"(= {names[(r, u)]} 1)")
        target = []
        for v in nodes:
            f, g = names[(r, v)], names[(r, "#" + v)]
            kids = [names[(r, v + a)] for a in P.alphabet.symbols] if len(v) < horizon else []
            q.add(f"(>= {g} 0)", f"(= {f} {_sum([g] + kids)})", *[f"(>= {c} 0)" for c in kids])
            if event.accepts(v):
                target.append(g)
        target += [f"(* {_smt_frac(1 - d)} {names[(r, w)]})" for w in bd]
        q.add(f"(>= {_sum(target)} {_smt_frac(1 - d)})")
    out = _solve(q, timeout_ms, want=list(names.values()))
    nested = any(bd for _u, _n, bd in regions)
    if out.answer != "sat":
        if out.answer == "unsat" and not nested:
            status, why = Status.FALSIFIED, (f"no model in the horizon-{horizon} space reaches {'R1' if satisfy else 'not R1'} "
                                             f"with probability >= {1 - d} from every prompt (unsat)")
        else:
            status = Status.UNKNOWN
            why = out.reason or "unsat under the conservative encoding for nested prompts (a longer prompt inside another's subtree)"
        return SynthesisResult(status, None, {}, None, horizon, q.reals, q.assertions, out.seconds, z3_version(), why)
    rows = _read_rows(regions, names, out.values, P.alphabet, horizon)
    model = _assemble_model(P, rows)
    check = recheck_synthesis(P, ps, rule, d, horizon, model, satisfy=satisfy)
    status = Status.VERIFIED if check.passed else Status.UNKNOWN
    why = "" if check.passed else "the solver's model failed the exact re-check: " + "; ".join(check.failures)
    return SynthesisResult(status, model, rows, check, horizon, q.reals, q.assertions, out.seconds, z3_version(), why)


def _smt_frac(x: Fraction) -> str:
    return f"(/ {x.numerator}.0 {x.denominator}.0)"


def _read_rows(regions, names, values: Mapping[str, Fraction], alphabet: Alphabet, horizon: int) -> dict[str, dict[str, Fraction]]:
    rows: dict[str, dict[str, Fraction]] = {}
    for r, (_u, nodes, _bd) in enumerate(regions):
        for v in nodes:
            f = values[names[(r, v)]]
            if f <= 0:
                continue
            row = {EOS: values[names[(r, "#" + v)]] / f}
            if len(v) < horizon:
                for a in alphabet.symbols:
                    row[a] = values[names[(r, v + a)]] / f
            rows[v] = {t: p for t, p in row.items() if p != 0}
    return rows


def _assemble_model(P: "FiniteDistribution", rows: Mapping[str, Mapping[str, Fraction]]) -> "ARModel":
    from theory.models import PatchedModel, SupportExtension, TabularModel

    eos = TabularModel(P.alphabet, {}, default={EOS: 1}, name="eos-everywhere")
    return PatchedModel(SupportExtension(P, eos, name=f"{P.name}-copy"), rows, name="smt-synthesised")


def recheck_synthesis(P: "FiniteDistribution", prompts: Iterable[str], rule: object, delta: object, horizon: int,
                      model: "ARModel", *, satisfy: bool = False) -> Recheck:
    """Re-check a model with the exact theory code: KL(P ‖ Q) by the chain rule (exact zero test) and,
    per prompt, theory.properties.sampled_rule_probability of the target event within the horizon.

    Raises: the input errors of :func:`synthesize_extrapolator`.
    """
    from theory.losses import kl_divergence
    from theory.properties import sampled_rule_probability

    ps, d = _check_synthesis_input(P, prompts, delta, horizon)
    event = _event(rule, P.alphabet, satisfy)
    kl = kl_divergence(P, model)
    failures = [] if kl.is_zero else [f"KL(P || Q) = {kl}, not 0"]
    probs = []
    for u in ps:
        iv = sampled_rule_probability(model, u, event, horizon - len(u) + 1)
        probs.append((u, iv))
        if iv.lo < 1 - d:
            failures.append(f"prompt {u!r}: P({'R1' if satisfy else 'not R1'}) >= {iv.lo} < {1 - d}")
    return Recheck(kl, kl.is_zero, tuple(probs), 1 - d, satisfy, not failures, tuple(failures))
