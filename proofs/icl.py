"""Proposition 2 (in-context learning is ε-non-identifiable), checked on an instance where the Bayes
predictor really learns in context (:func:`constructions.icl.instance.learning_instance`: the GINC
family with 2 entities × 3 properties, vocabulary 5, two concepts — "switch" and "stay" — that one
example tells apart and the test input does not; k = 2), at the **population** level: every prompt
with n ≤ 3 examples is enumerated with its exact probability, and every model answers with its
argmax over the labels.  Δ = 3/10 is fixed before ε = 10⁻⁶.

* ``prop-2-icl-effect`` — the instance is fit for Proposition 2: acc_P(n) − acc_P(0) ≥ Δ_ICL = 3/10.
* ``prop-2-icl-surgery`` — Q = P except at ICL-format answer prefixes with ≥ n examples, where
  q = (1 − λ)p + λδ_w (λ = 3/5, w a wrong label); KL ≤ M̄(A(n))·ln(1/(1 − λ)) ≤ ε with n the smallest
  such; the exact accuracy gap ≥ Δ.
* ``prop-2-icl-surgery-every-epsilon`` — the surgery for every ε ≥ 10^−1027 (the bound at the last
  example count a 1,024-token document holds), from proven bounds: the factorisation lemma and
  Hoeffding give acc_P(n) ≥ L at every n ≥ 1, the surgery's answer is never P's, and the geometric
  bound on M(A(n)) gives n(ε) in closed form (sympy checks it).
* ``prop-2-icl-mixture`` — Q_ε = (1 − ε)P + εR with the literal no-ICL R; KL ≤ −ln(1 − ε); the exact
  accuracy gap ≥ Δ at the smallest evaluated n with one; R's own ICL gain ≤ 1/100.
* ``prop-2-icl-mixture-every-epsilon`` — the mixture for every ε ≥ 10^−850: the lemma bounds
  P(u)/R(u) ≤ K₀Bⁿ, so from n(ε) on Q_ε answers as R at every prompt (R's label margin γ), and
  acc_P(n) ≥ L at every n ≥ 1 gives the gap.
* ``prop-2-kl-bound-symbolic`` — the lemma behind both bounds, ln(p/((1 − t)p + t r)) ≤ −ln(1 − t),
  its two uses and the strict argmax for λ > ½, each step proved by sympy.

The GINC-size instance (10 × 10 states, sampled prompts) is ``benchmarks/bench_icl.py``'s.
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

from proofs import ProofCheck
from theory.certificate import Certificate, Status, library_versions

EPSILON = Fraction(1, 10**6)
LAMBDA = Fraction(3, 5)
DELTA = Fraction(3, 10)
DELTA_ICL = Fraction(3, 10)
R_GAIN_BOUND = Fraction(1, 100)
K = 2
NS = (0, 1, 2, 3)


@lru_cache(maxsize=1)
def _instance():
    """The one instance every prop-2 population and every-epsilon check uses (built once, so the
    accuracy floor both every-epsilon checks rest on is computed once)."""
    from constructions.icl.instance import learning_instance

    return learning_instance()


@lru_cache(maxsize=1)
def _report():
    from constructions.icl.certify import evaluate_instance

    return evaluate_instance(_instance(), K, NS, (EPSILON,), name="learning_instance()")


def check_effect() -> Certificate:
    from constructions.icl.certify import icl_effect_certificate

    return icl_effect_certificate(_report(), DELTA_ICL)


def check_surgery() -> Certificate:
    from constructions.icl.certify import surgery_population_certificate

    return surgery_population_certificate(_report(), LAMBDA, EPSILON, DELTA, DELTA_ICL)


def check_surgery_every_epsilon() -> Certificate:
    from constructions.icl.universal import surgery_every_epsilon_certificate

    return surgery_every_epsilon_certificate(_instance(), K, LAMBDA, DELTA, name="learning_instance()")


def check_mixture_every_epsilon() -> Certificate:
    from constructions.icl.universal import mixture_every_epsilon_certificate

    return mixture_every_epsilon_certificate(_instance(), K, DELTA, name="learning_instance()")


def check_mixture() -> Certificate:
    from constructions.icl.certify import mixture_population_certificate

    return mixture_population_certificate(_report(), EPSILON, DELTA, DELTA_ICL, R_GAIN_BOUND)


def check_symbolic() -> Certificate:
    from constructions.icl import prove_kl_bounds

    facts = prove_kl_bounds()
    failed = [f.statement for f in facts if not f.proved]
    return Certificate(
        check="prop-2-kl-bound-symbolic",
        claim="For p > 0, r >= 0, 0 < t < 1: ln(p / ((1 - t) p + t r)) <= -ln(1 - t); hence KL(P || (1 - eps) P + eps R) "
              "<= -ln(1 - eps) for every R, KL(p(.|u) || (1 - lam) p(.|u) + lam delta) <= -ln(1 - lam) per prefix, and "
              "for lam > 1/2 the delta token is the strict argmax.",
        status=Status.VERIFIED if not failed else Status.UNKNOWN,
        method="symbolic",
        detail=f"{len(facts) - len(failed)}/{len(facts)} sympy steps proved; KL <= -ln(1 - t)",
        reason="" if not failed else f"sympy did not prove: {failed}",
        quantities={"facts": facts},
        assumptions=("ln is increasing; the chain rule KL = sum_u P(u) KL(p(.|u) || q(.|u)) (check chain-rule) turns "
                     "the per-prefix bound into M(A) (-ln(1 - lam))",),
        versions=library_versions("sympy"),
    )


CHECKS = [
    ProofCheck("prop-2-kl-bound-symbolic", "Prop. 2: KL <= -ln(1 - t), by sympy", check_symbolic),
    ProofCheck("prop-2-icl-effect", "Prop. 2: the instance learns in context (exact)", check_effect),
    ProofCheck("prop-2-icl-surgery", "Prop. 2: ICL, local surgery", check_surgery),
    ProofCheck("prop-2-icl-surgery-every-epsilon", "Prop. 2: ICL, local surgery for every epsilon (proven bounds)",
               check_surgery_every_epsilon),
    ProofCheck("prop-2-icl-mixture", "Prop. 2: ICL, mixture with a no-ICL R", check_mixture),
    ProofCheck("prop-2-icl-mixture-every-epsilon", "Prop. 2: ICL, mixture for every epsilon (proven bounds)",
               check_mixture_every_epsilon),
]
