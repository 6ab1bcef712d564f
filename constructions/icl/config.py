"""The named parameters of the GINC-style pretraining distribution (docs/theory.md §4, Proposition 2).

One frozen :class:`GINCConfig` holds every knob, each with its safe range; :meth:`GINCConfig.xie`
gives Xie et al.'s sizes (10 entities × 10 properties, vocabulary 50, 5 pretraining + 5 held-out
concepts, transition temperature 0.1, entity stickiness 0.9, delimiter = property 0, documents of
10,240 tokens) and :meth:`GINCConfig.small` / :meth:`GINCConfig.tiny` the sizes used by
``nonid prove`` and the tests.  Probabilities are exact :class:`~fractions.Fraction` values; the
temperature is a float because it only shapes the *random draw* of the permutation weights, which are
then rounded to exact dyadic rationals.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

from theory.errors import InvalidDistribution, InvalidHMM, UnknownToken
from theory.probability import as_probability
from theory.validation import check_int, check_number

#: Xie et al.'s example lengths (tokens per example, label included) and largest example count.
XIE_EXAMPLE_LENGTHS = (3, 5, 8, 10)
XIE_MAX_EXAMPLES = 64


@dataclass(frozen=True)
class GINCConfig:
    """Every parameter of the mixture of HMMs, named.

    Attributes:
        n_entities: entities (GINC "values"), ≥ 1.
        n_properties: properties (GINC "slots"), ≥ 2; property 0 is the delimiter property.
        vocab_size: tokens 0..vocab_size−1, ≥ 2.
        n_pretrain_concepts: concepts in the pretraining mixture (uniform prior), ≥ 1.
        n_heldout_concepts: further concepts drawn the same way but *not* in the mixture, ≥ 0.
        transition_temp: softmax temperature of the permutation weights (> 0; GINC 0.1).
        n_permutations: permutation matrices mixed per concept (GINC: n_properties); None → n_properties.
        entity_stickiness: probability that the entity is kept, in [0, 1) (GINC "vic" 0.9).
        eta: weight of the uniform matrix mixed into every property transition and every entity jump,
            in [0, 1].  η > 0 (with stickiness < 1) makes every transition strictly positive, which
            Proposition 2 needs: η = 0 is refused unless ``allow_zero_transitions`` is set, so that
            the failure can be *reported* (prompts off the support) when that is what one wants.
        allow_zero_transitions: accept η = 0 (zero transitions) on purpose; default False.
        delimiter: the token emitted by property 0 (and by nothing else), in range(vocab_size).
        doc_length: tokens per pretraining document (EOS follows with certainty), ≥ 2.
        seed: everything random is drawn from ``numpy.random.default_rng(seed)``.
        weight_bits: permutation weights are rounded to multiples of 2^−weight_bits (2..52).
    """

    n_entities: int = 10
    n_properties: int = 10
    vocab_size: int = 50
    n_pretrain_concepts: int = 5
    n_heldout_concepts: int = 5
    transition_temp: float = 0.1
    n_permutations: int | None = None
    entity_stickiness: Fraction = Fraction(9, 10)
    eta: Fraction = Fraction(1, 100)
    delimiter: int = 0
    doc_length: int = 10_240
    seed: int = 0
    weight_bits: int = 30
    allow_zero_transitions: bool = False

    def __post_init__(self) -> None:
        for name, lo in (("n_entities", 1), ("n_properties", 2), ("vocab_size", 2), ("n_pretrain_concepts", 1),
                         ("n_heldout_concepts", 0), ("doc_length", 2), ("seed", 0), ("weight_bits", 2)):
            check_int(getattr(self, name), f"GINC parameter {name} =", minimum=lo, error=InvalidHMM)
        check_int(self.weight_bits, "GINC parameter weight_bits =", maximum=52, error=InvalidHMM)
        if self.n_permutations is not None:
            check_int(self.n_permutations, "GINC parameter n_permutations =", minimum=1, error=InvalidHMM)
        check_number(self.transition_temp, "GINC parameter transition_temp =", lo=0, lo_open=True, error=InvalidHMM)
        stick = as_probability(self.entity_stickiness, "entity_stickiness")
        if stick == 1:
            raise InvalidDistribution("entity_stickiness = 1 makes every entity jump impossible; it must be < 1")
        object.__setattr__(self, "entity_stickiness", stick)
        object.__setattr__(self, "eta", as_probability(self.eta, "eta"))
        if self.eta == 0 and not self.allow_zero_transitions:
            raise InvalidHMM("GINC parameter eta = 0 gives zero transitions (ICL prompts with P(u) = 0, off the support); "
                             "Proposition 2 needs eta > 0 (pass allow_zero_transitions=True to build it anyway and see it "
                             "reported)")
        check_int(self.delimiter, "delimiter token", minimum=0, maximum=self.vocab_size - 1, error=UnknownToken,
                  note="a token of the vocabulary")

    @property
    def n_hidden(self) -> int:
        """Hidden states (entity, property): n_entities · n_properties."""
        return self.n_entities * self.n_properties

    @property
    def n_concepts(self) -> int:
        return self.n_pretrain_concepts + self.n_heldout_concepts

    @property
    def permutations(self) -> int:
        return self.n_properties if self.n_permutations is None else self.n_permutations

    def with_(self, **changes: Any) -> "GINCConfig":
        """A copy with some parameters changed (validated again)."""
        return replace(self, **changes)

    @classmethod
    def xie(cls, seed: int = 0, **changes: Any) -> "GINCConfig":
        """Xie et al.'s GINC sizes: 10 × 10 hidden states, vocabulary 50, 5 + 5 concepts, temperature
        0.1, stickiness 0.9, documents of 10,240 tokens; η = 0.01 keeps every transition positive."""
        return replace(cls(seed=seed), **changes)

    @classmethod
    def small(cls, seed: int = 0, **changes: Any) -> "GINCConfig":
        """The instance ``nonid prove`` certifies in seconds: 4 entities × 5 properties, vocabulary 12,
        2 + 2 concepts, documents of 1,024 tokens; other parameters as in GINC."""
        base = cls(n_entities=4, n_properties=5, vocab_size=12, n_pretrain_concepts=2, n_heldout_concepts=2,
                   doc_length=1024, seed=seed)
        return replace(base, **changes)

    @classmethod
    def tiny(cls, seed: int = 0, **changes: Any) -> "GINCConfig":
        """A toy instance small enough for exact Fraction paths and enumeration: 2 entities × 3
        properties, vocabulary 5, 2 + 1 concepts, documents of 8 tokens."""
        base = cls(n_entities=2, n_properties=3, vocab_size=5, n_pretrain_concepts=2, n_heldout_concepts=1,
                   doc_length=8, seed=seed, weight_bits=10)
        return replace(base, **changes)
