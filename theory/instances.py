"""Seeded random instances (finite data distributions and tabular models) for proof checks and
benchmarks.  Deterministic from the seed; every probability is an exact rational.  For hypothesis
strategies with shrinking see :mod:`theory.strategies`."""

from __future__ import annotations

import random
from fractions import Fraction

from theory.alphabet import Alphabet
from theory.data import FiniteDistribution
from theory.models import TabularModel
from theory.probability import NextTokenDistribution


def random_row(rng: random.Random, alphabet: Alphabet, *, positive: bool = True, scale: int = 6) -> NextTokenDistribution:
    """A random exact row over Σ ∪ {EOS}: integer weights in [1, scale] (or [0, scale], not all 0)."""
    lo = 1 if positive else 0
    while True:
        w = [rng.randint(lo, scale) for _ in alphabet.outcomes]
        if sum(w):
            break
    total = sum(w)
    return NextTokenDistribution(alphabet, {t: Fraction(x, total) for t, x in zip(alphabet.outcomes, w)})


def random_distribution(rng: random.Random, alphabet: Alphabet, max_length: int, n_sequences: int, name: str = "random") -> FiniteDistribution:
    """P over ``n_sequences`` distinct random words of length ≤ ``max_length`` with random weights."""
    words: dict[str, int] = {}
    while len(words) < n_sequences:
        n = rng.randint(0, max_length)
        words["".join(rng.choice(alphabet.symbols) for _ in range(n))] = rng.randint(1, 9)
    return FiniteDistribution.from_weights(alphabet, words, name=name)


def random_model(rng: random.Random, alphabet: Alphabet, depth: int, *, positive: bool = True, name: str = "random-model") -> TabularModel:
    """A tabular model with a random row at every prefix of length < depth and a uniform row beyond."""
    table = {u: random_row(rng, alphabet, positive=positive) for u in alphabet.words_up_to(depth - 1)}
    return TabularModel(alphabet, table, default=NextTokenDistribution.uniform(alphabet), name=name)
