"""The two KL bounds of Proposition 2, proved symbolically by sympy — one lemma serves both.

**Lemma (mixing-in bound).**  For p > 0, r ≥ 0 and 0 < t < 1, with q = (1 − t) p + t r:
ln(p / q) ≤ −ln(1 − t).  (Because −ln(1 − t) − ln(p/q) = ln(1 + t r / ((1 − t) p)) and the argument is ≥ 1.)

* *Mixture:* with t = ε, p = P(x), r = R(x) for a whole sequence x, Q_ε(x) = (1 − ε)P(x) + εR(x), so
  KL(P ‖ Q_ε) = E_P[ln P(x)/Q_ε(x)] ≤ −ln(1 − ε), for every R.
* *Surgery, per prefix:* with t = λ, p = p(y | u), r = δ_wrong(y), q(y | u) = (1 − λ) p + λ δ, so
  KL(p(·|u) ‖ q(·|u)) = Σ_y p(y|u) ln(p/q) ≤ −ln(1 − λ) (weights p(y|u) ≥ 0 summing to 1); by the chain
  rule (checked by ``chain-rule``) KL(P ‖ Q) ≤ Σ_{u∈A} P(u)·(−ln(1 − λ)) = M(A)·(−ln(1 − λ)).
* *Strict argmax:* for λ > ½, q(wrong | u) − q(y | u) ≥ 2λ − 1 > 0 for every other y.

sympy checks each step below with t = a/(a + b), a, b > 0 (so 0 < t < 1 by construction), p > 0, r ≥ 0;
a step counts as proved only if sympy returns True (``None`` — "cannot tell" — is a failure).
"""

from __future__ import annotations

from theory.symbolic import SymbolicFact

__all__ = ["SymbolicFact", "prove_kl_bounds"]


def prove_kl_bounds() -> list[SymbolicFact]:
    """The lemma and its two uses, each step decided by sympy."""
    import sympy as sp

    a, b, p = sp.symbols("a b p", positive=True)
    r = sp.Symbol("r", nonnegative=True)
    t = a / (a + b)
    q = (1 - t) * p + t * r
    facts: list[SymbolicFact] = []

    def fact(statement: str, expr: sp.Expr, value: object) -> None:  # sympy's None ("cannot tell") stays None
        facts.append(SymbolicFact(statement, True if value is True else False if value is False else None, sp.sstr(expr)))

    fact("0 < t < 1 for t = a/(a + b), a, b > 0", sp.Tuple(t, 1 - t), bool(sp.simplify(t).is_positive and sp.simplify(1 - t).is_positive))
    gap = sp.simplify(-sp.log(1 - t) - (sp.log(p) - sp.log(q)))
    closed = sp.log(1 + t * r / ((1 - t) * p))
    fact("-ln(1 - t) - ln(p/q) = ln(1 + t r / ((1 - t) p)) with q = (1 - t) p + t r",
         sp.Eq(gap, closed), sp.simplify(sp.expand_log(gap - closed, force=True)) == 0)
    fact("t r / ((1 - t) p) >= 0", sp.simplify(t * r / ((1 - t) * p)), sp.simplify(t * r / ((1 - t) * p)).is_nonnegative)
    fact("hence ln(p/q) <= -ln(1 - t)  (the mixing-in lemma)", gap, gap.is_nonnegative)
    # Uses: weights summing to one carry the pointwise bound to the expectation.
    ps = sp.symbols("p1:4", positive=True)
    rs = sp.symbols("r1:4", nonnegative=True)
    w = sp.symbols("w1:4", nonnegative=True)
    gaps = [sp.simplify(-sp.log(1 - t) - (sp.log(pi) - sp.log((1 - t) * pi + t * ri))) for pi, ri in zip(ps, rs)]
    slack = sp.Add(*[wi * gi for wi, gi in zip(w, gaps)])  # = (Σ w_i)(−ln(1 − t)) − Σ w_i ln(p_i/q_i)
    fact("sum_i w_i (-ln(1 - t) - ln(p_i/q_i)) >= 0 for any p_i > 0, r_i >= 0, w_i >= 0; with sum_i w_i = 1 "
         "this is -ln(1 - t) - KL >= 0", slack, slack.is_nonnegative)
    P, R = sp.Symbol("P_x", positive=True), sp.Symbol("R_x", nonnegative=True)
    mix = sp.simplify(gap.subs({r: R, p: P}))
    fact("mixture: -ln(1 - eps) - ln(P(x)/((1 - eps) P(x) + eps R(x))) >= 0 (t = eps, p = P(x), r = R(x)); "
         "weights P(x) give KL(P || (1 - eps) P + eps R) <= -ln(1 - eps) for every R", mix, mix.is_nonnegative)
    for delta in (0, 1):
        sur = sp.simplify(gap.subs(r, delta))
        fact(f"surgery: -ln(1 - lam) - ln(p/q) >= 0 at delta(y) = {delta} (t = lam, q = (1 - lam) p + lam delta); weights "
             "p(y|u) give KL(p(.|u) || q(.|u)) <= -ln(1 - lam), and the chain rule M(A) (-ln(1 - lam))", sur, sur.is_nonnegative)
    # Strict argmax for 1/2 < λ < 1: λ = 1/2 + s, s = c/(2(c + e)) with c, e > 0 (so 0 < s < 1/2);
    # p_wrong = p_d >= 0 and p_y = 1 - m with m >= 0 (p_y <= 1).
    c, e = sp.symbols("c e", positive=True)
    pd, m = sp.symbols("p_d m", nonnegative=True)
    lam = sp.Rational(1, 2) + c / (2 * (c + e))
    excess = sp.factor(sp.simplify(((1 - lam) * pd + lam) - (1 - lam) * (1 - m) - (2 * lam - 1)))
    fact("q(wrong) - q(y) - (2 lam - 1) >= 0 for 1/2 < lam < 1 (equals (1 - lam)(p_wrong + 1 - p_y))",
         excess, excess.is_nonnegative)
    fact("2 lam - 1 > 0 for lam > 1/2, so the wrong token is the strict argmax of q",
         sp.simplify(2 * lam - 1), sp.simplify(2 * lam - 1).is_positive)
    return facts
