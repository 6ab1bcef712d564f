"""Proposition 2 (in-context learning is ε-non-identifiable).  For the GINC-style pretraining
distribution P — a mixture of HMMs over (entity, property) states with deterministic emissions,
property 0 emitting the delimiter — and every ε > 0 there are models Q₁ = P and Q₂ with
KL(P ‖ Q₂) ≤ ε whose ICL accuracies differ by ≥ ½.  Two constructions, both checked here on a
small-but-real instance (4 entities × 5 properties, vocabulary 12, 2 + 2 concepts, k = 5, up to 64
examples; the GINC size is ``benchmarks/bench_icl.py``'s):

* ``prop-2-icl-surgery`` — Q₂ = P except at ICL-format answer prefixes with ≥ n examples, where
  q = (1 − λ) p + λ δ_delimiter (λ = 3/5); KL ≤ M(A)·ln(1/(1 − λ)) with M(A) exact from the property
  chain; n is the smallest with that bound ≤ ε = 10⁻⁶; Q₂'s accuracy is exactly 0, P's certified.
* ``prop-2-icl-mixture`` — Q₂ = (1 − ε)P + εR with R a no-ICL model of ICL-format sequences
  (independent examples, certain delimiters, weight 3/5 on the delimiter at the answer offset);
  KL ≤ −ln(1 − ε); w(u) bracketed on every prompt; the smallest n with a certified gap ≥ ½.
* ``prop-2-kl-bound-symbolic`` — the lemma behind both bounds, ln(p/((1 − t)p + t r)) ≤ −ln(1 − t),
  its two uses and the strict argmax for λ > ½, each step proved by sympy.
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

from proofs import ProofCheck
from theory.certificate import Certificate, Status, library_versions

EPSILON = Fraction(1, 10**6)
LAMBDA = Fraction(3, 5)
WRONG_WEIGHT = Fraction(3, 5)
K = 5
NS = tuple(range(0, 9)) + (12, 16, 24, 32, 48, 64)
PROMPTS_PER_CONCEPT = 100


@lru_cache(maxsize=1)
def _evaluation():
    from constructions.icl import GINCConfig, build_ginc, evaluate_icl, sample_prompts

    hmm = build_ginc(GINCConfig.small(seed=0))
    prompts = sample_prompts(hmm, hmm.pretrain_concepts, NS, K, PROMPTS_PER_CONCEPT, seed=1)
    return evaluate_icl(hmm, prompts, WRONG_WEIGHT)


def check_surgery() -> Certificate:
    from constructions.icl import surgery_certificate

    return surgery_certificate(_evaluation(), LAMBDA, EPSILON)


def check_mixture() -> Certificate:
    from constructions.icl import mixture_certificate

    return mixture_certificate(_evaluation(), EPSILON)


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
    ProofCheck("prop-2-icl-surgery", "Prop. 2: ICL, local surgery", check_surgery),
    ProofCheck("prop-2-icl-mixture", "Prop. 2: ICL, mixture with a no-ICL R", check_mixture),
]
