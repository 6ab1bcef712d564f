"""The per-node Gibbs lemma: KL(p ‖ q) ≥ 0 and KL = 0 iff p = q for two rows, proved by z3
(:func:`prove_node_gibbs`; Lemmas B and C assume its instances at every node)."""

from __future__ import annotations

from theory.errors import InvalidBudget
from theory.smt.encodings import _result, _Spec
from theory.smt.query import DEFAULT_TIMEOUT_MS, SMTResult, _and, _check_int, _Query, _solve, _sum

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
