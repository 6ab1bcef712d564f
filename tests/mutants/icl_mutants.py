"""Mutants: an ε grid is not a claim for every ε.

Each every-ε certificate of Proposition 2 rests on named sympy facts (the closed form of n(ε), the
monotonicity of ρ^x and, for the mixture, the weight identities and the margin step).  A certificate
handed only a table of checked ε values — each n(ε) re-checked exactly at its grid point, every entry
true — must still not say ``verified``: a grid does not show the statement for the ε between and below
its points.  The control is the same certificate with sympy's facts.
"""

from __future__ import annotations

from fractions import Fraction

from tests.mutants.registry import mutant, verdict


def _grid_facts(check: str) -> tuple:
    """True statements about grid points only: n(ε) checked exactly at ε = 10⁻¹, …, 10⁻³⁰."""
    from theory.symbolic import SymbolicFact

    return tuple(SymbolicFact(f"{check}: the bound at n(1e-{d}) is <= 1e-{d}, checked exactly", True)
                 for d in (1, 6, 30))


@mutant("icl-surgery-every-epsilon-from-a-grid", "certificate", "unknown")
def _surgery_grid(mutate: bool) -> str:
    """The every-ε surgery given a grid of checked ε values in place of the closed-form facts."""
    from constructions.icl.instance import learning_instance
    from constructions.icl.universal import surgery_every_epsilon_certificate

    facts = _grid_facts("surgery") if mutate else None
    return verdict(lambda: surgery_every_epsilon_certificate(learning_instance(), 2, Fraction(3, 5), Fraction(3, 10),
                                                             name="mutant", facts=facts))


@mutant("icl-mixture-every-epsilon-from-a-grid", "certificate", "unknown")
def _mixture_grid(mutate: bool) -> str:
    """The every-ε mixture given the surgery's facts and a grid: the mixture's own statements (its
    closed form, the weight identity, the margin step) are missing."""
    from constructions.icl.instance import learning_instance
    from constructions.icl.universal import closed_form_facts, mixture_every_epsilon_certificate

    facts = closed_form_facts() + _grid_facts("mixture") if mutate else None
    return verdict(lambda: mixture_every_epsilon_certificate(learning_instance(), 2, Fraction(3, 10), name="mutant",
                                                             facts=facts))
