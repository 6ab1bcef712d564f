"""The concrete instances the §2 lemmas are checked on: seeded, exact, small enough to also
enumerate.  Seven (P, Q) pairs: random distributions over 2- and 3-letter alphabets, a model with
zero probabilities, and the paper's aⁿbⁿ (n = 1..8, uniform)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from theory.alphabet import Alphabet
from theory.data import FiniteDistribution
from theory.instances import random_distribution, random_model
from theory.languages import block_words
from theory.models import ARModel


@dataclass(frozen=True)
class Instance:
    name: str
    data: FiniteDistribution
    model: ARModel
    depth: int  # the model is random on every prefix shorter than this; off-support edits go there


def lemma_instances(seed: int = 2024) -> list[Instance]:
    rng = random.Random(seed)
    ab, abc = Alphabet("ab"), Alphabet("abc")
    out = []
    for i, (alpha, max_len, n) in enumerate([(ab, 3, 4), (ab, 4, 7), (abc, 3, 6), (abc, 4, 10), (ab, 6, 12)]):
        P = random_distribution(rng, alpha, max_len, n, name=f"random-{i}")
        out.append(Instance(f"random-{i}", P, random_model(rng, alpha, max_len + 2), max_len + 2))
    P = random_distribution(rng, ab, 4, 6, name="random-zeros")
    out.append(Instance("random-zeros", P, random_model(rng, ab, 6, positive=False), 6))
    anbn = FiniteDistribution.uniform(ab, block_words("ab", 8), name="anbn-8")
    out.append(Instance("anbn-8", anbn, random_model(rng, ab, 8), 8))
    return out


def off_support_prefixes(inst: Instance) -> list[str]:
    """Every prefix shorter than the instance depth with P(u) = 0."""
    return [u for u in inst.data.alphabet.words_up_to(inst.depth - 1) if not inst.data.in_support(u)]
