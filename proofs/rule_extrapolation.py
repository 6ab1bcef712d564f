"""Proposition 1 (rule extrapolation is non-identifiable, ε = 0) for aⁿbⁿ and the languages L1–L6.

For each case, :mod:`constructions.rule_extrapolation` builds the data P, the paper's OOD prompts, the
R1-completer Q₁ and the R1-violator Q₂; the certificate checks KL(P ‖ Q₁) = KL(P ‖ Q₂) = 0 exactly
(chain rule over every support prefix) and OOD R1 accuracy 1 vs 0, greedy and as the exact sampled
probability.  ``anbn`` uses a geometric prior over n (infinite support); L3 and L5 the paper's
finite data."""

from __future__ import annotations

from typing import Callable

from proofs import ProofCheck
from theory.certificate import Certificate

TITLES = {
    "anbn": "Prop. 1: a^n b^n, geometric prior (infinite support)",
    "L1": "Prop. 1: L1 (#a even, starts with b)",
    "L2": "Prop. 1: L2 (#a even, b*a*)",
    "L3": "Prop. 1: L3 a^n b^n, n = 1..128",
    "L4": "Prop. 1: L4 Dyck-2",
    "L5": "Prop. 1: L5 a^n b^n c^n, n = 1..85",
    "L6": "Prop. 1: L6 [] and () matched, crossing allowed",
}


def _check(case: str) -> Callable[[], Certificate]:
    def run() -> Certificate:
        from constructions.rule_extrapolation import build_case

        return build_case(case).certificate()

    run.__name__ = f"check_{case}"
    return run


CHECKS = [ProofCheck(f"prop-1-{case}", title, _check(case)) for case, title in TITLES.items()]
