"""Proposition 2's surgery for every ε, from proven bounds on an instance with an observed property
chain (docs/theory.md §4.2).  For the instances of :func:`constructions.icl.instance.learning_instance`
and any other that meets the hypotheses of :func:`check_structure`, P's ICL accuracy at *every*
n ≥ 1 is bounded below, so the accuracy gap is known for every n, not only at the enumerated ones.

**Hypotheses** (checked exactly): two pretraining concepts, three properties (0 = delimiter, 1, 2),
examples of length k = 2, every non-delimiter token emitted by exactly one hidden state (a token shows
its entity and property), the rows into and out of the delimiter the same for both concepts, and a
sticky entity chain (E[e, e] > E[e, e'] for e' ≠ e).

**Lemma (factorisation).**  Then for an ICL-format prompt u with examples (s*, v₁), …, (s*, vₙ) and
test input s*, P_c(u) = G(u) · Πᵢ T_c[s*, vᵢ] with G(u) independent of c.  *Proof.* Every property of
u is observed (non-delimiter tokens show it; the delimiter is property 0), the kernel factorises as
E ⊗ T_c, so summing the hidden entities (those of the delimiters) gives a factor that does not involve
T_c, times the product of T_c over consecutive properties; the transitions into and out of 0 and the
uniform start do not depend on c, which leaves the within-example transitions.  ∎

So P's posterior over the two concepts depends on u only through n and j, the number of examples
that switch property, and P's answer is the label of the concept the posterior-weighted next-property
mass favours: a threshold in j (monotone, since T_A/T_B is > 1 on one property and < 1 on the other).
Under the prompt distribution j ~ Binomial(n, q_c(s*)), q_c(s*) = T_c[s*, ¬s*] / (1 − T_c[s*, 0]).
Hence:

* :func:`bayes_accuracy` — acc_P(n) exactly, for any n, by a sum over j (a test checks it against
  the enumeration of every prompt for n ≤ 3);
* :func:`accuracy_floor` — acc_P(n) ≥ L for **every** n ≥ 1: exact values for 1 ≤ n < N₀, and for
  n ≥ N₀ Hoeffding's inequality, Pr(j/n on the wrong side of the threshold) ≤ exp(−2n(q − θ − c/n)²),
  whose exponent n(q − θ − c/n)² increases in n once n(q − θ) ≥ |c| (θ, c evaluated in mpmath
  interval arithmetic, rounded outward);
* the surgery Q (mass λ > ½ on a wrong label) answers a label other than P's, so
  acc_Q(n) ≤ 1 − acc_P(n) and the gap is ≥ 2L − 1 at every n ≥ 1; with the proven geometric bound
  M̄(A(n)) ≤ K ρ^{n−1} (K = (1/C) Σ_c a_c b_c/(1 − ρ_c), ρ = max ρ_c) the closed form
  n(ε) = 1 + max(0, ⌈ln(ε/(K ln(1/(1 − λ)))) / ln ρ⌉) gives KL(P ‖ Q) ≤ ε.

**Every ε > 0, and the document length.**  The bound M̄(A(n)) ≤ K ρ^{n−1} drops the document length,
so it holds for the instance's pretraining process P_∞ (the same HMM mixture, documents of unbounded
length; KL(P_∞ ‖ Q) is the chain-rule series Σ_u P_∞(u)·KL(p(·|u) ‖ q(·|u)) over every finite prefix,
the supremum of the KLs of the length-T marginals) and the claims are for every ε > 0.  The instance
as built, P_T with documents of T tokens, has the same conditionals at every prefix shorter than T, so
every statement at an example count n with n(k + 1) + k − 1 < T holds for P_T too; for P_T that is
every ε at or above the bound at the last example count a document holds (10^−1027 for T = 1024);
for P_T, ε cannot go to 0 at all: at an admissible n the accuracy is decided by finitely many prompts of
positive mass, and changing the answer at one with a margin γ_u costs KL ≥ P(u)·γ_u²/2 (docs/theory.md
§5).

**Not a grid.**  The claims rest on the closed forms and the sympy facts each certificate requires by
statement (:data:`SURGERY_FACTS`, :data:`MIXTURE_FACTS`); the table of n(ε) at a few ε is only a table,
and a certificate whose facts do not include every required statement, proved, is ``unknown``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Mapping

from constructions.icl.hmm import MixtureHMM
from constructions.icl.prompts import max_examples
from constructions.icl.surgery import boundary_rates
from theory.errors import InvalidHMM
from theory.exact import ln_float


def check_structure(hmm: MixtureHMM, k: int) -> None:
    """Raise :class:`InvalidHMM` naming the first hypothesis of the module docstring that fails."""
    if k != 2:
        raise InvalidHMM(f"the universal bound is proved for examples of length k = 2, not {k}")
    if hmm.n_pretrain != 2 or hmm.n_properties != 3:
        raise InvalidHMM(f"the universal bound needs 2 pretraining concepts and 3 properties, not {hmm.n_pretrain} and "
                         f"{hmm.n_properties}")
    emitted = [t for t in hmm.emit.tolist() if t != hmm.delimiter]
    if len(set(emitted)) != len(emitted):
        raise InvalidHMM("a non-delimiter token is emitted by two hidden states: the property chain is not observed")
    A, B = hmm.concepts[0], hmm.concepts[1]
    if any(A[v][0] != B[v][0] for v in range(3)) or A[0] != B[0]:
        raise InvalidHMM("the rows into or out of the delimiter differ between the concepts: a boundary is evidence")
    E = hmm.entity_transition
    if any(E[e][e] <= E[e][f] for e in range(len(E)) for f in range(len(E)) if f != e):
        raise InvalidHMM("the entity chain is not sticky (E[e][e] > E[e][f] for f != e): the label's entity is not the test's")
    for s in (1, 2):
        a = [hmm.concepts[c][s][3 - s] for c in (0, 1)]
        b = [hmm.concepts[c][s][s] for c in (0, 1)]
        if not ((a[0] > b[0] and a[1] < b[1]) or (a[0] < b[0] and a[1] > b[1])):
            raise InvalidHMM(f"from property {s} the two concepts favour the same next property: examples cannot tell "
                             "them apart by their answer")
        up, down = (0, 1) if a[0] > b[0] else (1, 0)
        if not (a[up] > a[down] and b[up] < b[down]):  # the likelihood ratio is monotone in the switch count j
            raise InvalidHMM(f"from property {s} the concept that favours switching does not switch more often than the "
                             "other: the posterior is not monotone in the number of switching examples")


def _answer_is_switch(hmm: MixtureHMM, s: int, n: int, j: int) -> bool | None:
    """Whether P's answer switches property (from s to 3 − s) after n examples of which j switch,
    exactly; None on an exact tie (which :func:`bayes_accuracy` counts as wrong, as the certified
    argmax counts a tie as undecided)."""
    sw, st = 3 - s, s
    mass = {sw: Fraction(0), st: Fraction(0)}
    for c in (0, 1):
        T = hmm.concepts[c][s]
        weight = T[sw] ** j * T[st] ** (n - j)  # the uniform concept prior cancels
        mass[sw] += weight * T[sw]
        mass[st] += weight * T[st]
    if mass[sw] == mass[st]:
        return None
    return mass[sw] > mass[st]


def _label_is_switch(hmm: MixtureHMM, c: int, s: int) -> bool:
    T = hmm.concepts[c][s]
    return T[3 - s] > T[s] or (T[3 - s] == T[s] and 3 - s < s)


def _switch_probability(hmm: MixtureHMM, c: int, s: int) -> Fraction:
    T = hmm.concepts[c][s]
    return T[3 - s] / (1 - T[0])


def bayes_accuracy(hmm: MixtureHMM, n: int) -> Fraction:
    """acc_P(n) exactly, by the factorisation lemma (a sum over the number j of switching examples);
    a prompt where P's answer is an exact tie counts as wrong (so this is the lower end of the
    certified enumeration's interval, and a lower bound whatever the tie rule)."""
    total = Fraction(0)
    for c in (0, 1):
        for s in (1, 2):
            q = _switch_probability(hmm, c, s)
            label = _label_is_switch(hmm, c, s)
            right = sum((math.comb(n, j) * q ** j * (1 - q) ** (n - j) for j in range(n + 1)
                         if _answer_is_switch(hmm, s, n, j) == label), Fraction(0))
            total += right / 4
    return total


def _iv_fraction(x: Fraction):  # an mpmath interval enclosing x
    from mpmath import iv

    return iv.mpf(x.numerator) / iv.mpf(x.denominator)


def _upper(x) -> Fraction:
    from mpmath.libmp import to_rational

    return Fraction(*to_rational(x._mpi_[1]))


def _lower(x) -> Fraction:
    from mpmath.libmp import to_rational

    return Fraction(*to_rational(x._mpi_[0]))


@dataclass(frozen=True)
class AccuracyFloor:
    """acc_P(n) ≥ ``floor`` for every n ≥ 1: ``exact`` values for 1 ≤ n < ``n0``, and the Hoeffding
    bound ``tail_floor`` for every n ≥ ``n0``."""

    floor: Fraction
    n0: int
    exact: Mapping[int, Fraction]
    tail_floor: Fraction


def accuracy_floor(hmm: MixtureHMM, k: int, target: Fraction = Fraction(9, 10), n_cap: int = 400) -> AccuracyFloor | None:
    """A floor on acc_P(n) for every n ≥ 1 (module docstring), with N₀ the smallest n at which the
    Hoeffding bound is ≥ ``target`` and increasing from there; None if no N₀ ≤ ``n_cap`` exists.

    Raises:
        InvalidHMM: the hypotheses of :func:`check_structure` fail.
    """
    check_structure(hmm, k)
    return _accuracy_floor(hmm, k, Fraction(target), n_cap)


@lru_cache(maxsize=16)
def _accuracy_floor(hmm: MixtureHMM, k: int, target: Fraction, n_cap: int) -> AccuracyFloor | None:
    """:func:`accuracy_floor` (hypotheses already checked), computed once per instance: both
    every-epsilon certificates rest on it."""
    from mpmath import iv

    old_prec = iv.prec
    iv.dps = 40  # restored below: the interval context is shared with the rest of the process
    try:
        return _floor_at_precision(hmm, target, n_cap)
    finally:
        iv.prec = old_prec


def _floor_at_precision(hmm: MixtureHMM, target: Fraction, n_cap: int) -> AccuracyFloor | None:
    from mpmath import iv

    per: list[tuple[Any, Any, Any, bool]] = []  # (q, theta, c, label is switch) per (concept, s): mpmath intervals
    for s in (1, 2):
        sw, st = 3 - s, s
        A, B = hmm.concepts[0][s], hmm.concepts[1][s]
        # the concept whose label switches plays "A": its likelihood ratio against the other rises with j
        up, down = (A, B) if A[sw] > A[st] else (B, A)
        la = iv.log(_iv_fraction(up[sw] / down[sw]))
        lb = iv.log(_iv_fraction(down[st] / up[st]))
        theta = lb / (la + lb)
        c = -iv.log(_iv_fraction((up[sw] - up[st]) / (down[st] - down[sw]))) / (la + lb)
        for concept in (0, 1):
            q = _iv_fraction(_switch_probability(hmm, concept, s))
            per.append((q, theta, c, _label_is_switch(hmm, concept, s)))

    def tail_bound(n: int) -> Fraction | None:
        """An upper bound on Pr(P wrong) averaged over (concept, s*), valid at n and every larger n."""
        total = Fraction(0)
        for q, theta, c, switch in per:
            margin = (q - theta) if switch else (theta - q)
            cc = c if switch else -c  # wrong iff j/n <= theta + c/n (switch label) or >= theta + c/n (stay label)
            m = margin - cc / n
            if _lower(m) <= 0 or _lower(margin * n) < _upper(abs(c)):
                return None
            total += _upper(iv.exp(-2 * n * m * m)) / 4
        return total

    exact: dict[int, Fraction] = {}
    for n in range(1, n_cap + 1):
        t = tail_bound(n)
        if t is not None and 1 - t >= target:
            low = min(exact.values(), default=Fraction(1))
            return AccuracyFloor(min(low, 1 - t), n, MappingProxyType(exact), 1 - t)  # read-only: cached
        exact[n] = bayes_accuracy(hmm, n)
    return None


def geometric_constants(hmm: MixtureHMM, k: int) -> tuple[Fraction, Fraction]:
    """(K, ρ) with M̄(A(n)) ≤ K ρ^{n−1}: K = (1/C) Σ_c a_c b_c/(1 − ρ_c), ρ = max_c ρ_c (exact)."""
    rates = boundary_rates(hmm, k)
    K = sum((r.a * r.b / (1 - r.rho) for r in rates), Fraction(0)) / len(rates)
    return K, max(r.rho for r in rates)


def surgery_n(hmm: MixtureHMM, k: int, lam: Fraction, epsilon: Fraction) -> tuple[int, Fraction, Fraction]:
    """(n(ε), K, ρ) of the closed form in the module docstring: the geometric bound
    M̄(A(n)) ≤ K ρ^{n−1} gives KL(P ‖ Q_n) ≤ ε for every n ≥ n(ε)."""
    K, rho = geometric_constants(hmm, k)
    ell = math.log(1 / (1 - float(lam)))
    need = (ln_float(Fraction(epsilon)) - ln_float(K) - math.log(ell)) / ln_float(rho)
    n = 1 + max(0, math.ceil(need))
    # the float closed form is only a proposal: the bound is re-checked exactly, and n moved to the
    # smallest n >= 1 at which it holds exactly
    from theory.exact import LogCombination

    def holds(m: int) -> bool:
        return (LogCombination.log(1 / (1 - lam)) * (K * rho ** (m - 1))).compare(epsilon) in (-1, 0)

    while not holds(n):
        n += 1
    while n > 1 and holds(n - 1):
        n -= 1
    return n, K, rho


def smallest_epsilon(hmm: MixtureHMM, k: int, lam: Fraction) -> tuple[int, float]:
    """The last example count a document holds and log₁₀ of the surgery bound there: the claim is
    for every ε at or above it."""
    n_max = max_examples(hmm, k)
    K, rho = geometric_constants(hmm, k)
    ell = math.log(1 / (1 - float(lam)))
    return n_max, math.log10(float(K) * ell) + (n_max - 1) * math.log10(float(rho))


TABLE_EPSILONS = (Fraction(1, 10), Fraction(1, 10**6), Fraction(1, 10**30), Fraction(1, 10**2000))
"""The ε at which the certificates tabulate n(ε) (the last below the 1,024-token documents' bound)."""


def facts_problem(facts, required: tuple[str, ...]) -> str | None:
    """Why ``facts`` do not carry a universal claim (a required statement missing or not proved by
    sympy), or None.  A table of checked ε values is no substitute: the statements are required by
    name."""
    shown = {f.statement for f in facts if f.proved}
    missing = [r for r in required if r not in shown]
    if missing:
        return "sympy did not show the closed form (" + "; ".join(missing) + ")"
    return None


SURGERY_FACTS = ("rho**(ln(eps/(K*ell))/ln(rho)) == eps/(K*ell) for positive rho, K, ell, eps",
                 "d/dx (1/(1+t))**x < 0 for t > 0 (rho**x decreases in x for 0 < rho < 1)")
"""The statements the surgery's every-ε claim rests on (:func:`closed_form_facts`)."""

MIXTURE_FACTS = ("B**(ln(gamma*eps/((1-eps)*K0))/ln(B)) == gamma*eps/((1-eps)*K0) for positive B, gamma, K0 and 0 < eps < 1",
                 "d/dx (1/(1+t))**x < 0 for t > 0 (rho**x decreases in x for 0 < rho < 1)",
                 "(1-w)/w == (1-eps)*P/(eps*R) for w = eps*R/(eps*R + (1-eps)*P), P, R > 0, 0 < eps < 1",
                 "q_a - q_b - (w*gamma - (1-w)) == w*((r_a - r_b) - gamma) + (1-w)*((p_a - p_b) + 1) "
                 "for q = w*r + (1-w)*p",
                 "w*gamma - (1-w) == w*(gamma - (1-w)/w) for w > 0")
"""The statements the mixture's every-ε claim rests on (:func:`mixture_closed_form_facts`): the
closed form of n(ε), the mixture's conditionals as weights, and the margin step q(a) − q(b) ≥ wγ − (1 − w)
(with r(a) − r(b) ≥ γ and p(a) − p(b) ≥ −1 the two brackets are ≥ 0), which is > 0 once (1 − w)/w < γ."""


@lru_cache(maxsize=1)
def mixture_closed_form_facts() -> tuple:
    """sympy's checks of the statements of :data:`MIXTURE_FACTS`, in that order."""
    import sympy as sp

    from theory.symbolic import SymbolicFact

    B, gamma, K0, x, t, P, R = sp.symbols("B gamma K0 x t P R", positive=True)
    eps = sp.Symbol("epsilon", positive=True)
    w, ra, rb, pa, pb = sp.symbols("w r_a r_b p_a p_b", real=True)
    c = gamma * eps / ((1 - eps) * K0)
    identity = sp.simplify(B ** (sp.log(c) / sp.log(B)) - c)
    derivative = sp.simplify(sp.diff((1 / (1 + t)) ** x, x))
    weight = eps * R / (eps * R + (1 - eps) * P)
    ratio = sp.simplify((1 - weight) / weight - (1 - eps) * P / (eps * R))
    q_gap = (w * ra + (1 - w) * pa) - (w * rb + (1 - w) * pb)
    margin = sp.expand(q_gap - (w * gamma - (1 - w)) - (w * ((ra - rb) - gamma) + (1 - w) * ((pa - pb) + 1)))
    wpos = sp.Symbol("w", positive=True)
    factor = sp.simplify(wpos * gamma - (1 - wpos) - wpos * (gamma - (1 - wpos) / wpos))
    return (SymbolicFact(MIXTURE_FACTS[0], identity == 0, str(identity)),
            SymbolicFact(MIXTURE_FACTS[1], True if derivative.is_negative else None, str(derivative)),
            SymbolicFact(MIXTURE_FACTS[2], ratio == 0, str(ratio)),
            SymbolicFact(MIXTURE_FACTS[3], margin == 0, str(margin)),
            SymbolicFact(MIXTURE_FACTS[4], factor == 0, str(factor)))


@lru_cache(maxsize=1)
def closed_form_facts() -> tuple:
    """sympy's checks of the closed form: for 0 < ρ < 1 and K, ℓ, ε > 0,
    ρ^(ln(ε/(Kℓ))/ln ρ) = ε/(Kℓ), and ρ^x is decreasing in x — so n − 1 ≥ ln(ε/(Kℓ))/ln ρ gives
    Kℓρ^(n−1) ≤ ε."""
    import sympy as sp

    from theory.symbolic import SymbolicFact

    rho, K, ell, eps, x, t = sp.symbols("rho K ell epsilon x t", positive=True)
    bound = sp.log(eps / (K * ell)) / sp.log(rho)
    identity = sp.simplify(rho ** bound - eps / (K * ell))
    # 0 < rho < 1 written as rho = 1/(1 + t) with t > 0, so that sympy can decide the sign
    derivative = sp.simplify(sp.diff((1 / (1 + t)) ** x, x))
    return (SymbolicFact(SURGERY_FACTS[0], identity == 0, str(identity)),
            SymbolicFact(SURGERY_FACTS[1], True if derivative.is_negative else None, str(derivative)))


def surgery_every_epsilon_certificate(hmm: MixtureHMM, k: int, lam: Fraction | str, delta: Fraction | str,
                                      *, name: str, epsilons: tuple[Fraction, ...] = TABLE_EPSILONS,
                                      check: str = "prop-2-icl-surgery-every-epsilon", facts: tuple | None = None):
    """The surgery for every ε > 0 on the instance's process, and every ε at or above the document
    bound on the instance as built (module docstring): verified when the structure holds, the floor L
    on acc_P(n) for every n ≥ 1 gives 2L − 1 ≥ Δ, and ``facts`` (sympy's, by default) show every
    statement of :data:`SURGERY_FACTS`.  ``epsilons`` only tabulates n(ε); the claim does not rest on
    them."""
    from constructions.icl.certify import check_delta, places
    from constructions.icl.models import check_surgery_weight
    from theory.certificate import Certificate, Status, library_versions
    from theory.exact import LogCombination

    lam = check_surgery_weight(lam)
    d = check_delta(delta, "delta")
    n_max, log10_min = smallest_epsilon(hmm, k, lam)
    exponent = math.ceil(log10_min + 1e-6)  # rounded up: the claim is for every epsilon >= 10^exponent
    claim = (f"On the instance {name} (k = {k}) with Delta = {d} fixed first, for its pretraining process P "
             f"(documents of unbounded length): for every epsilon > 0, the surgery Q_n (q = (1 - lambda) p + lambda "
             f"delta_w at ICL-format answer prefixes with >= n examples, lambda = {lam}, w a label other than P's answer) "
             f"with n = n(epsilon) = 1 + max(0, ceil(ln(epsilon/(K ln(1/(1 - lambda)))) / ln rho)) has KL(P || Q_n) <= "
             f"epsilon, and at every n >= 1 its ICL accuracy is below P's by >= Delta (acc_Q(n) <= 1 - acc_P(n) and "
             f"acc_P(n) >= L for every n >= 1). With documents of {hmm.doc_length} tokens (the instance as built, whose "
             f"conditionals are the process's at every shorter prefix) the same holds for every epsilon in "
             f"[10^{exponent}, 1), where n(epsilon) <= {n_max} fits in a document.")
    quantities: dict[str, object] = {"instance": name, "k": k, "lambda": lam, "delta": d, "hmm": hmm.describe(),
                                     "largest_n_in_a_document": n_max, "epsilon_min_log10_upper": exponent,
                                     "epsilon_range": "every epsilon > 0 (process); [10^%d, 1) (documents of %d tokens)"
                                                      % (exponent, hmm.doc_length)}
    reasons: list[str] = []
    try:
        check_structure(hmm, k)
    except InvalidHMM as e:
        reasons.append(f"the factorisation lemma's hypotheses fail: {e}")
        return Certificate(check=check, claim=claim, status=Status.UNKNOWN, method="bound", detail="hypotheses fail",
                           reason="; ".join(reasons), quantities=quantities, versions=library_versions("sympy", "mpmath"))
    floor = accuracy_floor(hmm, k)
    facts = closed_form_facts() if facts is None else tuple(facts)
    quantities["closed_form_facts"] = facts
    if floor is None:
        reasons.append("no N0 <= 400 where Hoeffding's bound reaches 9/10: no floor on acc_P(n) for every n")
    else:
        quantities.update({"accuracy_floor": floor.floor, "hoeffding_from_n": floor.n0, "hoeffding_floor": floor.tail_floor,
                           "exact_accuracy_below_n0": {str(n): v for n, v in floor.exact.items()},
                           "gap_floor": max(Fraction(0), 2 * floor.floor - 1)})
        if 2 * floor.floor - 1 < d:
            reasons.append(f"the gap floor 2L - 1 >= {places(max(Fraction(0), 2 * floor.floor - 1), 'down')} is below "
                           f"Delta = {d}")
    problem = facts_problem(facts, SURGERY_FACTS)
    if problem:
        reasons.append(problem)
    table = {}
    for eps in epsilons:
        n, K, rho = surgery_n(hmm, k, lam, eps)
        kl = LogCombination.log(1 / (1 - lam)) * (K * rho ** (n - 1))  # <= eps, checked exactly by surgery_n
        table[_eps_text(Fraction(eps))] = {"n": n, "kl_upper_bound": scientific_up(kl.interval()[1]),
                                           "fits_in_a_document": n <= n_max}
        quantities["K"], quantities["rho"] = K, rho
    quantities["n_of_epsilon_table"] = table
    status = Status.VERIFIED if not reasons else Status.UNKNOWN
    shown = ", ".join(f"n({e})={v['n']}" + ("" if v["fits_in_a_document"] else " (process only)")
                      for e, v in table.items())
    detail = (f"for every eps > 0 (T = {hmm.doc_length}: eps >= 1e{exponent}): acc_P >= {places(floor.floor, 'down')} "
              f"at every n >= 1, gap >= "
              f"{places(max(Fraction(0), 2 * floor.floor - 1), 'down')}; {shown}" if floor is not None else "no floor")
    return Certificate(check=check, claim=claim, status=status, method="bound", detail=detail, reason="; ".join(reasons),
                       quantities=quantities, assumptions=(
                           "the factorisation lemma of constructions.icl.universal (hypotheses checked exactly: observed "
                           "property chain, concept-independent delimiter rows, sticky entities, k = 2, two concepts)",
                           "Hoeffding's inequality for j ~ Binomial(n, q) under the prompt distribution; theta and c in "
                           "mpmath interval arithmetic, rounded outward",
                           "M(A(n)) <= (1/C) sum_c a_c b_c rho_c^(n-1)/(1 - rho_c) (constructions.icl.surgery), a bound "
                           "that drops the document length; per prefix KL <= ln(1/(1 - lambda)) (prop-2-kl-bound-symbolic)",
                           "KL(P || Q) for the process is the chain-rule series over every finite prefix (the supremum "
                           "of the KLs of the length-T marginals)"),
                       versions=library_versions("sympy", "mpmath"))


# ---- the mixture for every epsilon ---------------------------------------------------------------------
@dataclass(frozen=True)
class RatioBound:
    """P(u)/R(u) ≤ ``k0`` · ``b``ⁿ for every ICL-format prompt u with n examples (see
    :func:`ratio_bound`), R's label margin ``gamma`` at every test input, and R's exact accuracy."""

    k0: Fraction
    b: Fraction
    gamma: Fraction
    acc_r: Fraction


def ratio_bound(hmm: MixtureHMM, k: int) -> RatioBound:
    """The geometric bound on P(u)/R(u), by the factorisation lemma.

    With the lemma, P(u) = (1/H) Πᵢ [E[eᵢ, eᵢ′] T[vᵢ, 0] T[0, s*] E²[eᵢ′, eᵢ₊₁]] · Σ_c π_c Πᵢ T_c[s*, vᵢ]
    (eₙ₊₁ the test input's entity; the delimiter rows are the concepts' common ones), while the
    no-ICL R scores each example from a fresh start, R(u) = Πᵢ m(xᵢ) · m(x_test) with
    m(x) = (1/(E(V − 1))) E[eᵢ, eᵢ′] Σ_c π_c T_c[s*, vᵢ] and m(x_test) = 1/(E(V − 1)).  Since
    Σ_c π_c Πᵢ T_c[s*, vᵢ] ≤ Πᵢ max_c T_c[s*, vᵢ] ≤ Πᵢ (1/π_min) Σ_c π_c T_c[s*, vᵢ],
    P(u)/R(u) ≤ (E(V − 1)/H) · Bⁿ with B = max_v T[v, 0] · max_s T[0, s] · max E² · E(V − 1) / π_min.

    R's answer is a function of the test input alone: r(e′, v′ | e, s*) = E[e, e′] Σ_c π_c T_c[s*, v′];
    ``gamma`` is the least gap, over test inputs, between its best label and its second.

    Raises:
        InvalidHMM: the hypotheses of :func:`check_structure` fail.
    """
    check_structure(hmm, k)
    E = hmm.entity_transition
    n_e, V, H = hmm.n_entities, hmm.n_properties, hmm.n_hidden
    T = hmm.concepts[0]  # the delimiter rows are the same for both concepts
    pi = Fraction(1, hmm.n_pretrain)
    e2 = max(sum((E[a][x] * E[x][b] for x in range(n_e)), Fraction(0)) for a in range(n_e) for b in range(n_e))
    b = max(T[v][0] for v in (1, 2)) * max(T[0][s] for s in (1, 2)) * e2 * n_e * (V - 1) / pi
    k0 = Fraction(n_e * (V - 1), H)
    gamma, right = None, Fraction(0)
    for s in (1, 2):
        tau = {v: sum((pi * hmm.concepts[c][s][v] for c in (0, 1)), Fraction(0)) for v in (1, 2)}
        top = max((1, 2), key=lambda v: (tau[v], -v))  # ties to the smaller property (the smaller token)
        other = 3 - top
        for e in range(n_e):
            second = max([E[e][e] * tau[other]] + [E[e][f] * tau[top] for f in range(n_e) if f != e])
            g = E[e][e] * tau[top] - second
            gamma = g if gamma is None else min(gamma, g)
        for c in (0, 1):
            right += Fraction(1, 4) * (_label_is_switch(hmm, c, s) == (top == 3 - s))
    assert gamma is not None
    return RatioBound(k0, b, gamma, right)


def mixture_n(bound: RatioBound, epsilon: Fraction) -> int:
    """n(ε) = max(1, ⌊ln(γε/((1 − ε)K₀)) / ln B⌋ + 1), the smallest n ≥ 1 with ((1 − ε)/ε)·K₀·Bⁿ < γ
    (ln B < 0; :data:`MIXTURE_FACTS`): from there on Q_ε answers as R at every prompt
    (q(a) − q(b) ≥ wγ − (1 − w) > 0 because (1 − w)/w = (1 − ε)P(u)/(εR(u)) < γ).  The float
    evaluation of the closed form is only a proposal, moved to the exact smallest n."""
    if bound.gamma <= 0 or bound.b >= 1:
        raise InvalidHMM("R has no label margin or P(u)/R(u) does not decay: no n works for every epsilon")
    epsilon = Fraction(epsilon)
    need = ln_float(bound.gamma * epsilon / ((1 - epsilon) * bound.k0)) / ln_float(bound.b)
    n = max(1, math.floor(need) + 1)

    def holds(m: int) -> bool:
        return (1 - epsilon) / epsilon * bound.k0 * bound.b ** m < bound.gamma

    while not holds(n):
        n += 1
    while n > 1 and holds(n - 1):
        n -= 1
    return n


def mixture_every_epsilon_certificate(hmm: MixtureHMM, k: int, delta: Fraction | str, *, name: str,
                                      epsilons: tuple[Fraction, ...] = TABLE_EPSILONS,
                                      check: str = "prop-2-icl-mixture-every-epsilon", facts: tuple | None = None):
    """Q_ε = (1 − ε)P + εR for every ε in (0, 1) on the instance's process (and every ε at or above
    the document bound on the instance as built): at n(ε) (closed form from :func:`ratio_bound`) Q_ε
    answers as R at every prompt, so acc_Q = acc_R (R ignores its examples), and acc_P(n) ≥ L at
    every n ≥ 1 (:func:`accuracy_floor`): verified when L − acc_R ≥ Δ and ``facts`` (sympy's, by
    default) show every statement of :data:`MIXTURE_FACTS`."""
    from constructions.icl.certify import check_delta, places
    from theory.certificate import Certificate, Status, library_versions

    d = check_delta(delta, "delta")
    claim_head = f"On the instance {name} (k = {k}) with Delta = {d} fixed first: "
    quantities: dict[str, object] = {"instance": name, "k": k, "delta": d, "hmm": hmm.describe()}
    try:
        bound = ratio_bound(hmm, k)
    except InvalidHMM as e:
        return Certificate(check=check, claim=claim_head + "(hypotheses fail)", status=Status.UNKNOWN, method="bound",
                           detail="hypotheses fail", reason=f"the factorisation lemma's hypotheses fail: {e}",
                           quantities=quantities, versions=library_versions("mpmath"))
    n_max = max_examples(hmm, k)
    # the smallest epsilon a document allows: ((1 - eps)/eps) k0 b^n_max < gamma, i.e. eps > k0 b^n_max / (gamma + k0 b^n_max)
    log10_min = math.log10(float(bound.k0)) + n_max * math.log10(float(bound.b)) - math.log10(float(bound.gamma))
    exponent = math.ceil(log10_min + 1e-6)
    claim = (claim_head + f"for its pretraining process P (documents of unbounded length) and every epsilon in (0, 1) "
             f"(hence every epsilon > 0), Q = (1 - epsilon) P + epsilon R with R the no-ICL model has KL(P || Q) <= "
             f"-ln(1 - epsilon), and at n = n(epsilon) = max(1, floor(ln(gamma epsilon/((1 - epsilon) K0)) / ln B) + 1) "
             f"(the smallest n >= 1 with ((1 - epsilon)/epsilon) K0 B^n < gamma) Q answers as R at every prompt, so its "
             f"ICL accuracy is R's ({bound.acc_r}) while P's is >= L at every n >= 1, a gap >= Delta. With documents of "
             f"{hmm.doc_length} tokens (the instance as built) the same holds for every epsilon in [10^{exponent}, 1), "
             f"where n(epsilon) <= {n_max} fits in a document.")
    quantities.update({"K0": bound.k0, "B": bound.b, "gamma_R": bound.gamma, "acc_R": bound.acc_r,
                       "largest_n_in_a_document": n_max, "epsilon_min_log10_upper": exponent,
                       "epsilon_range": "every epsilon in (0, 1) (process); [10^%d, 1) (documents of %d tokens)"
                                        % (exponent, hmm.doc_length)})
    reasons = []
    floor = accuracy_floor(hmm, k)
    facts = mixture_closed_form_facts() if facts is None else tuple(facts)
    quantities["closed_form_facts"] = facts
    problem = facts_problem(facts, MIXTURE_FACTS)
    if problem:
        reasons.append(problem)
    if bound.b >= 1 or bound.gamma <= 0:
        reasons.append(f"B = {bound.b} >= 1 or R's margin gamma = {bound.gamma} <= 0: no geometric decay to use")
    if floor is None:
        reasons.append("no floor on acc_P(n) for every n (Hoeffding does not reach 9/10 by n = 400)")
    else:
        quantities.update({"accuracy_floor": floor.floor, "gap_floor": max(Fraction(0), floor.floor - bound.acc_r)})
        if floor.floor - bound.acc_r < d:
            reasons.append(f"the gap floor L - acc_R >= {places(max(Fraction(0), floor.floor - bound.acc_r), 'down')} is "
                           f"below Delta = {d}")
    table = {}
    if not reasons:
        for eps in epsilons:
            n = mixture_n(bound, eps)
            table[_eps_text(Fraction(eps))] = {"n": n, "fits_in_a_document": n <= n_max}
    quantities["n_of_epsilon_table"] = table
    status = Status.VERIFIED if not reasons else Status.UNKNOWN
    shown = ", ".join(f"n({e})={v['n']}" + ("" if v["fits_in_a_document"] else " (process only)")
                      for e, v in table.items())
    detail = (f"for every eps in (0, 1) (T = {hmm.doc_length}: eps >= 1e{exponent}): P/R <= {scientific_up(bound.k0)}*"
              f"{scientific_up(bound.b)}^n, acc_Q = acc_R = "
              f"{places(bound.acc_r, 'up')}, acc_P >= {places(floor.floor, 'down')}; {shown}"
              if floor is not None and not reasons else "not certified")
    return Certificate(check=check, claim=claim, status=status, method="bound", detail=detail, reason="; ".join(reasons),
                       quantities=quantities, assumptions=(
                           "the factorisation lemma of constructions.icl.universal (hypotheses checked exactly)",
                           "KL(P || (1-eps)P + eps R) <= -ln(1-eps) for every R: proved symbolically (prop-2-kl-bound-symbolic), "
                           "for the process as for every length-T marginal",
                           "Hoeffding's inequality for the number of switching examples; mpmath interval arithmetic"),
                       versions=library_versions("mpmath"))


def scientific_up(x: Fraction) -> str:
    from theory.exact import scientific

    return scientific(x, "up", 3)


def _eps_text(eps: Fraction) -> str:
    """``1e-6`` for 1/10⁶ (exact powers of ten), else the fraction."""
    if eps.numerator == 1 and eps.denominator > 1:
        digits = len(str(eps.denominator)) - 1
        if 10 ** digits == eps.denominator:
            return f"1e-{digits}"
    return str(eps)
