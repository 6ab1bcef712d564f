"""M(A) = Σ_{u ∈ A(n)} P(u): the pretraining mass of ICL-format answer prefixes with ≥ n examples,
exactly, from the property chain alone.

The format event ("delimiter exactly at the n boundary positions and nowhere else before the answer")
is an event about tokens; since property 0 is the only emitter of the delimiter, it is the event "the
property chain visits 0 exactly at those positions", and the entity chain drops out (E is
row-stochastic and K = E ⊗ T_c).  With σ the uniform start over properties and N the projection onto
properties ≠ 0, for each concept c (exact Fractions):

    a_c = P(first k tokens delimiter-free, then d)        = σN (T_cN)^{k−1} T_c e₀
    ρ_c = P(k delimiter-free tokens, then d | at d)       = e₀ᵀ (T_cN)^k T_c e₀
    b_c = P(k − 1 delimiter-free tokens | at d)           = e₀ᵀ (T_cN)^{k−1} 1
    P(A_n) = (1/C) Σ_c a_c ρ_c^{n−1} b_c   (n ≥ 1),   P(A_0) = (1/C) Σ_c σN (T_cN)^{k−2} 1.

So M(A(n)) = Σ_{n ≤ n' ≤ n_max} P(A_{n'}) falls geometrically, at rate max_c ρ_c per example.  Two
values are offered: the exact finite sum up to the last n' inside a document, and the upper bound
(1/C) Σ_c a_c b_c ρ_c^{n−1} / (1 − ρ_c) that drops the document length (cheaper for long
documents; what the certificates use).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from constructions.icl.hmm import MixtureHMM
from constructions.icl.prompts import check_prompt_shape, max_examples


@dataclass(frozen=True)
class BoundaryRates:
    """The per-concept quantities above: a, ρ, b and the n = 0 mass (all exact)."""

    concept: int
    a: Fraction
    rho: Fraction
    b: Fraction
    zero: Fraction


def _step(x: list[Fraction], T: tuple[tuple[Fraction, ...], ...], keep_zero: bool) -> list[Fraction]:
    V = len(T)
    out = [sum((x[v] * T[v][w] for v in range(V) if x[v]), Fraction(0)) for w in range(V)]
    if not keep_zero:
        out[0] = Fraction(0)
    return out


def boundary_rates(hmm: MixtureHMM, k: int) -> list[BoundaryRates]:
    """a_c, ρ_c, b_c and P(A_0 | c) for every pretraining concept, exactly."""
    check_prompt_shape(hmm, 0, k)
    V = hmm.n_properties
    out = []
    for c in hmm.pretrain_concepts:
        T = hmm.concepts[c]
        x = [Fraction(0)] + [Fraction(1, V)] * (V - 1)  # σN: the first token is not the delimiter
        for _ in range(k - 2):
            x = _step(x, T, keep_zero=False)
        zero = sum(x, Fraction(0))
        x = _step(x, T, keep_zero=False)  # the k-th token of example 1
        a = _step(x, T, keep_zero=True)[0]
        y = [Fraction(1)] + [Fraction(0)] * (V - 1)
        for _ in range(k - 1):
            y = _step(y, T, keep_zero=False)
        b = sum(y, Fraction(0))
        y = _step(y, T, keep_zero=False)
        rho = _step(y, T, keep_zero=True)[0]
        out.append(BoundaryRates(c, a, rho, b, zero))
    return out


def format_mass(hmm: MixtureHMM, k: int, n: int, rates: list[BoundaryRates] | None = None) -> Fraction:
    """P(A_n): the pretraining mass of ICL-format answer prefixes with exactly n examples."""
    check_prompt_shape(hmm, n, k)
    rates = rates or boundary_rates(hmm, k)
    if n == 0:
        total = sum((r.zero for r in rates), Fraction(0))
    else:
        total = sum((r.a * r.rho ** (n - 1) * r.b for r in rates), Fraction(0))
    return total / len(rates)


def surgery_mass(hmm: MixtureHMM, k: int, n: int, rates: list[BoundaryRates] | None = None) -> Fraction:
    """M(A(n)) exactly: Σ_{n ≤ n' ≤ n_max} P(A_{n'}) with n_max the last count inside a document."""
    check_prompt_shape(hmm, n, k)
    rates = rates or boundary_rates(hmm, k)
    top = max_examples(hmm, k)
    total = Fraction(0)
    if n == 0:
        total += sum((r.zero for r in rates), Fraction(0))
        n = 1
    if n <= top:
        for r in rates:
            if r.rho == 1:
                total += r.a * r.b * (top - n + 1)
            else:
                total += r.a * r.b * (r.rho ** (n - 1) - r.rho ** top) / (1 - r.rho)
    return total / len(rates)


def surgery_mass_bound(hmm: MixtureHMM, k: int, n: int, rates: list[BoundaryRates] | None = None) -> Fraction | None:
    """An upper bound on M(A(n)) that ignores the document length: (1/C) Σ_c a_c b_c ρ_c^{n−1}/(1 − ρ_c)
    (plus the n = 0 mass when n = 0).  None when some ρ_c = 1 (no geometric decay)."""
    check_prompt_shape(hmm, n, k)
    rates = rates or boundary_rates(hmm, k)
    if any(r.rho >= 1 for r in rates):
        return None
    total = sum((r.a * r.b * r.rho ** max(n - 1, 0) / (1 - r.rho) for r in rates), Fraction(0))
    if n == 0:
        total += sum((r.zero for r in rates), Fraction(0))
    return total / len(rates)
