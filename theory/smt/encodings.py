"""Lemmas A, B, C as node-local specifications (:class:`_Spec`: per-node variables and facts, the node
invariant I_u, the negated global claim), and :func:`_result`, a lemma's :class:`SMTResult` from its query.

**Variants** (``variant=``, a keyword of the provers, not in the command line): ``"root-only"``
alters the statement at the root only — Lemma A drops the agreement hypothesis at ε (claims that the
cross-entropy does not depend on the root row either), Lemma B drops the root's condition from the
conclusion, Lemma C drops the per-node fact KL_ε ≥ 0.  Each is false and must come back
``falsified`` from both encodings (the mutants ``smt-root-only-*``)."""

from __future__ import annotations

from theory.certificate import Status
from theory.errors import InvalidSolverOption
from theory.smt.query import SMTResult, _and, _Outcome, _Query, _sum, z3_version
from theory.smt.space import _flow_facts, _Node, _row_facts

_VARIANTS = (None, "root-only")


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
            raise InvalidSolverOption(f"variant {variant!r} is not None or 'root-only'")
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
            raise InvalidSolverOption(f"Lemma A hypothesis {hypothesis!r} is not 'support', 'none' or 'off-support'")
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
        t1: list[str] = []
        t2: list[str] = []
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
            raise InvalidSolverOption(f"Lemma B scope {scope!r} is not 'support' or 'all'")
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
