"""A GINC-family instance on which the Bayes predictor really learns in context (docs/theory.md §4.2).

GINC's random draw (:func:`constructions.icl.hmm.build_ginc`) need not give an instance with an ICL
effect: with long examples the test input alone can reveal the concept, and the draw may make the
concepts hard to tell apart from a few examples.  This module builds one instance *by design*, inside
the same family (a mixture of HMMs over (entity, property) states, deterministic emissions, property 0
emitting the delimiter and nothing else, every transition strictly positive):

* two entities, three properties (0 = delimiter, 1, 2), vocabulary 5: entity e emits ``1 + 2e`` from
  property 1 and ``2 + 2e`` from property 2, so a token shows its (entity, property);
* a sticky entity chain (stay with probability ``stickiness``);
* two concepts that differ **only** in what follows properties 1 and 2: concept 0 *switches*
  (1 → 2, 2 → 1 with probability 1 − ρ − η), concept 1 *stays* (1 → 1, 2 → 2 with probability
  1 − ρ − η − ``tilt``); the rows into and out of the delimiter are the same for both concepts
  (into: ρ; out: η to the delimiter, the rest split evenly), so an example boundary is evidence of
  nothing;
* ``tilt`` > 0 breaks the symmetry between the concepts so that P's zero-shot answer is certain (the
  switching concept's), not a tie.

With k = 2 an example is (start token, next token): the test input — one token at the prompt's start
property — carries no evidence of the concept, and one example reveals it (switch or stay).  So
P's zero-shot accuracy is about ½ (it answers with one concept's label) and rises to about
1 − η/(1 − ρ − η) with one example: a population-level ICL effect that
:mod:`constructions.icl.population` computes exactly.  A small ρ makes ICL-format prefixes rare under
P (each boundary costs ρ), which is what both constructions of Proposition 2 need.
"""

from __future__ import annotations

from fractions import Fraction

from constructions.icl.hmm import MixtureHMM
from theory.errors import InvalidHMM
from theory.probability import as_probability

DEFAULT_RHO = Fraction(1, 1000)
DEFAULT_ETA = Fraction(1, 20)
DEFAULT_TILT = Fraction(1, 100)
DEFAULT_STICKINESS = Fraction(9, 10)


def learning_instance(rho: Fraction | str = DEFAULT_RHO, eta: Fraction | str = DEFAULT_ETA,
                      tilt: Fraction | str = DEFAULT_TILT, stickiness: Fraction | str = DEFAULT_STICKINESS,
                      doc_length: int = 1024, same_concepts: bool = False) -> MixtureHMM:
    """The designed instance (module docstring).  ``same_concepts=True`` gives both concepts the
    switching matrix: the family's instance *without* an ICL effect (a control that must be refused).

    Raises:
        InvalidDistribution: a probability outside [0, 1].
        InvalidHMM: a zero transition (ρ, η and 1 − ρ − η − tilt must all be > 0), or a bad doc_length.
    """
    rho, eta, tilt = as_probability(rho, "rho"), as_probability(eta, "eta"), as_probability(tilt, "tilt")
    stick = as_probability(stickiness, "stickiness")
    for name, value in (("rho", rho), ("eta", eta), ("1 - rho - eta - tilt", 1 - rho - eta - tilt),
                        ("1 - stickiness", 1 - stick), ("stickiness", stick)):
        if value <= 0:
            raise InvalidHMM(f"{name} = {value}: every transition of the instance must be strictly positive")
    out_of_delimiter = (eta, (1 - eta) / 2, (1 - eta) / 2)
    switch = (out_of_delimiter, (rho, eta, 1 - rho - eta), (rho, 1 - rho - eta, eta))
    stay = (out_of_delimiter, (rho, 1 - rho - eta - tilt, eta + tilt), (rho, eta + tilt, 1 - rho - eta - tilt))
    entity = ((stick, 1 - stick), (1 - stick, stick))
    emission = ((0, 1, 2), (0, 3, 4))
    concepts = (switch, switch if same_concepts else stay)
    return MixtureHMM.from_matrices(emission, entity, concepts, n_pretrain=2, vocab_size=5, delimiter=0,
                                    doc_length=doc_length)
