"""Training data, encodings and regime targets for the rule-extrapolation experiments (THEORY.md §4).

Vocabulary (the same as :class:`constructions.transformer.DecoderTransformer`): input ids are the
alphabet's symbols ``0 … k−1``, then EOS (``k``), SOS (``k+1``) and PAD (``k+2``); every architecture
outputs ``k + 1`` logits over Σ ∪ {EOS}.  A word x is fed as ``[SOS, x₁ … xₙ, PAD …]``; the target at
position t is x_{t+1}, EOS at position n, and :data:`IGNORE` after it.

Data distributions P (exact, from ``theory.data``):

* L3 = aⁿbⁿ, L5 = aⁿbⁿcⁿ: uniform over n = 1..N (the papers' data: 2n ≤ 256, resp. 3n ≤ 255);
  a :class:`~theory.data.FiniteDistribution`; the training set is the whole support.
* L1, L2, L4, L6 (random words): a :class:`~theory.data.ConditionalDistribution` with ``max_length``
  M — at every prefix, uniform over the continuations that can still end in the language within M
  symbols (EOS counts as one when the prefix is a non-empty word of L).  The papers' exact
  generators are not reproduced (their lengths go to 256); ours has exact conditionals, so the
  saturation gap is computable.  Training and test sets are seeded samples.

Regime targets (aⁿbⁿ and aⁿbⁿcⁿ, whose R1 is "equal counts"): for an OOD prompt u the *oracle*
completion appends, in alphabet order, each symbol up to the largest count (R1 then holds); the
*adversarial* completion appends one more of the most frequent symbol (first in order on ties) — R1
then fails, as for THEORY.md's R1-violator.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Sequence

import torch

from empirical.errors import InvalidExperimentConfig, UnknownRegime
from theory.alphabet import EOS, Alphabet
from theory.data import ConditionalDistribution, DataDistribution, FiniteDistribution
from theory.languages import EqualCounts, Language, get_language

IGNORE = -100
"""Target id of positions that carry no loss (prompt positions of regime examples, padding)."""

REGIMES = ("ml", "adversarial", "oracle")


@dataclass(frozen=True)
class Vocab:
    """Token ids of one alphabet (see the module docstring)."""

    alphabet: Alphabet

    @property
    def k(self) -> int:
        return len(self.alphabet)

    @property
    def eos(self) -> int:
        return self.k

    @property
    def sos(self) -> int:
        return self.k + 1

    @property
    def pad(self) -> int:
        return self.k + 2

    @property
    def n_inputs(self) -> int:
        return self.k + 3

    @property
    def n_outputs(self) -> int:
        return self.k + 1

    def ids(self, word: str) -> list[int]:
        index = {s: i for i, s in enumerate(self.alphabet.symbols)}
        return [index[c] for c in word]

    def encode(self, words: Sequence[str], length: int | None = None) -> torch.Tensor:
        """``[SOS, x…, PAD…]`` per word: a (len(words), T) long tensor, T = ``length`` or 1 + longest."""
        t = length if length is not None else 1 + max((len(w) for w in words), default=0)
        out = torch.full((len(words), t), self.pad, dtype=torch.long)
        out[:, 0] = self.sos
        for row, w in enumerate(words):
            if w:
                out[row, 1:len(w) + 1] = torch.tensor(self.ids(w), dtype=torch.long)
        return out

    def examples(self, pairs: Sequence[tuple[str, str]], length: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets for (prompt, completion) pairs: the model reads ``SOS prompt completion``
        and is trained on the completion and EOS only (prompt positions are :data:`IGNORE`).  A word
        of the data is the pair ("", word)."""
        words = [u + z for u, z in pairs]
        t = length if length is not None else 1 + max((len(w) for w in words), default=0)
        inputs = self.encode(words, t)
        targets = torch.full((len(words), t), IGNORE, dtype=torch.long)
        for row, (u, z) in enumerate(pairs):
            n = len(u) + len(z)
            if z:
                targets[row, len(u):n] = torch.tensor(self.ids(z), dtype=torch.long)
            targets[row, n] = self.eos
        return inputs, targets


# ---- data distributions ---------------------------------------------------------------------------
@dataclass(frozen=True)
class LanguageData:
    """The data side of one experiment.

    Attributes:
        language: the language L.
        distribution: P, exact (finite support).
        train: the training words (the whole support for L3/L5, a sample otherwise).
        test: (word, weight) pairs whose weighted mean NLL is the test loss: the exact support with
            P(x) when it is enumerable, otherwise a held-out sample with equal weights.
        test_exact: whether ``test`` is the exact P.
        max_length: the longest word P can produce.
        description: one line for reports.
    """

    language: Language
    distribution: DataDistribution
    train: tuple[str, ...]
    test: tuple[tuple[str, float], ...]
    test_exact: bool
    max_length: int
    description: str

    @property
    def padded_length(self) -> int:
        """T of the padded convention: SOS + longest word + EOS."""
        return self.max_length + 2


def counted_words(language: Language, n_max: int) -> tuple[str, ...]:
    """s₁ⁿ…s_kⁿ for n = 1..n_max (L3, L5)."""
    syms = language.r2.order  # BlockOrder: the block order a, b(, c)
    return tuple("".join(s * n for s in syms) for n in range(1, n_max + 1))


def _shortest_completion(language: Language):
    """state ↦ the length of the shortest z that takes the state into L, exactly and in O(1) for the
    random-word languages: Dyck-2 closes its stack; for the independent intersections (L1, L2, L6) the
    rules' shortest fixes add up (each rule's fix leaves the other's state alone, see
    :class:`theory.languages.IndependentIntersection`)."""
    from theory.languages import BlockOrder, CountParity, Dyck2, IndependentIntersection, Matched, StartsWith

    def rule_cost(rule, st) -> int:
        if isinstance(rule, CountParity):
            return st
        if isinstance(rule, StartsWith):
            return 1 if st == 0 else 0
        if isinstance(rule, BlockOrder):
            return 0
        if isinstance(rule, Matched):
            return st
        raise InvalidExperimentConfig(f"no shortest-completion rule for {rule.name!r}")

    if isinstance(language, Dyck2):
        return len
    if isinstance(language, IndependentIntersection):
        return lambda st: rule_cost(language.r1, st[0]) + rule_cost(language.r2, st[1])
    raise InvalidExperimentConfig(f"{language.name} is not a random-word language (L1, L2, L4, L6)")


class _Walk:
    """The uniform walk of a random-word language (module docstring): at a prefix in automaton state
    s with ``left`` symbols to go, uniform over the symbols after which L can still be reached within
    the budget, plus EOS when the (non-empty) prefix is in L.  :meth:`row` gives the exact
    conditionals; :meth:`sample` walks the same options with floats, carrying the automaton state."""

    def __init__(self, language: Language, max_length: int) -> None:
        self.language, self.max_length = language, max_length

        shortest = _shortest_completion(language)

        def finishable(state, left: int) -> bool:
            return state is not None and shortest(state) <= left

        self._finishable = finishable

    def options(self, state, length: int) -> list[str]:
        left = self.max_length - length
        lang = self.language
        opts = [a for a in lang.alphabet.symbols if left > 0 and self._finishable(lang.step(state, a), left - 1)]
        if length and lang.accepts_state(state):
            opts.append(EOS)
        return opts

    def count(self) -> int:
        """The number of words in the support (a dynamic program over (state, length))."""
        lang = self.language

        @lru_cache(maxsize=None)
        def words_from(state, length: int) -> int:
            return sum(1 if o == EOS else words_from(lang.step(state, o), length + 1) for o in self.options(state, length))

        return words_from(lang.start(), 0)

    def row(self, u: str) -> dict[str, Fraction]:
        opts = self.options(self.language.run(u), len(u))
        return {o: Fraction(1, len(opts)) for o in opts}

    def sample(self, rng: random.Random) -> str:
        lang, state, word = self.language, self.language.start(), ""
        while True:
            pick = rng.choice(self.options(state, len(word)))
            if pick == EOS:
                return word
            word += pick
            state = lang.step(state, pick)


def _walk_distribution(language: Language, max_length: int) -> ConditionalDistribution:
    """P for a random-word language as an exact :class:`ConditionalDistribution` (ε excluded)."""
    walk = _Walk(language, max_length)
    return ConditionalDistribution(language.alphabet, walk.row, f"{language.name} uniform walk, |x| ≤ {max_length}",
                                   max_length=max_length)


def language_data(language: Language | str, *, n_max: int = 16, max_length: int = 16, n_train: int = 2048,
                  n_test: int = 1024, seed: int = 0, enumerate_limit: int = 20_000) -> LanguageData:
    """The training/test data of one language (module docstring).

    ``n_max`` applies to L3/L5 (n = 1..n_max); ``max_length``, ``n_train``, ``n_test`` and ``seed`` to
    the random-word languages, whose test set is the exact support when it has at most
    ``enumerate_limit`` words.

    Raises:
        InvalidLanguage: unknown language.  InvalidExperimentConfig: a size below 1.
    """
    lang = get_language(language)
    for name, v in (("n_max", n_max), ("max_length", max_length), ("n_train", n_train), ("n_test", n_test)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise InvalidExperimentConfig(f"{name} = {v!r} must be a positive integer")
    if lang.name in ("L3", "L5"):
        words = counted_words(lang, n_max)
        P = FiniteDistribution.uniform(lang.alphabet, words, name=f"{lang.name} n=1..{n_max}")
        k = len(lang.alphabet)
        return LanguageData(lang, P, words, tuple((w, 1.0 / len(words)) for w in words), True, k * n_max,
                            f"{lang.name} ({lang.grammar}): all {len(words)} words, n = 1..{n_max} (uniform)")
    P = _walk_distribution(lang, max_length)
    walk = _Walk(lang, max_length)
    rng = random.Random(f"{lang.name}-{seed}")
    train = tuple(walk.sample(rng) for _ in range(n_train))
    if max_length <= 16 and walk.count() <= enumerate_limit:  # larger supports are never enumerable
        test = tuple((x, float(p)) for x, p in P.sequences())
        exact = True
    else:
        test_rng = random.Random(f"{lang.name}-{seed}-test")
        test = tuple((walk.sample(test_rng), 1.0 / n_test) for _ in range(n_test))
        exact = False
    desc = (f"{lang.name} ({lang.grammar}): uniform-walk words, |x| ≤ {max_length}; {n_train} training samples; "
            f"test {'= exact support' if exact else f'= {n_test} held-out samples'}")
    return LanguageData(lang, P, train, test, exact, max_length, desc)


# ---- regime targets -------------------------------------------------------------------------------
def _counts_rule(language: Language) -> EqualCounts:
    if not isinstance(language.r1, EqualCounts):
        raise UnknownRegime(f"the adversarial and oracle regimes need R1 = equal counts (L3, L5), not {language.name}'s "
                            f"R1 {language.r1.name!r}; use --regime ml")
    return language.r1


def oracle_completion(language: Language, prompt: str) -> str:
    """A completion after which R1 (equal counts) holds: each symbol, in order, up to the largest count."""
    syms = _counts_rule(language).symbols
    counts = [prompt.count(s) for s in syms]
    top = max(counts)
    return "".join(s * (top - c) for s, c in zip(syms, counts))


def violating_completion(language: Language, prompt: str) -> str:
    """A completion after which R1 fails: one more of the most frequent symbol (first on ties)."""
    syms = _counts_rule(language).symbols
    counts = [prompt.count(s) for s in syms]
    return syms[counts.index(max(counts))]


def check_regime(language: Language, regime: str) -> str:
    """Return ``regime`` if it applies to ``language``; raise :class:`UnknownRegime` otherwise."""
    if regime not in REGIMES:
        raise UnknownRegime(f"unknown regime {regime!r}; known: {', '.join(REGIMES)}")
    if regime != "ml":
        _counts_rule(language)
    return regime


def regime_pairs(language: Language, regime: str, prompts: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """(OOD prompt, target completion) pairs of the extra loss term; empty for ``ml``.

    Raises:
        UnknownRegime: an unknown regime, or adversarial/oracle for a language without a counting R1.
    """
    if check_regime(language, regime) == "ml":
        return ()
    make = oracle_completion if regime == "oracle" else violating_completion
    pairs = []
    for u in prompts:
        if language.is_id(u):
            raise UnknownRegime(f"regime prompt {u!r} is ID for {language.name}; the extra loss term is for OOD prompts only")
        pairs.append((u, make(language, u)))
    return tuple(pairs)


def ood_words(language: Language, lengths: Sequence[int]) -> tuple[str, ...]:
    """Every OOD word of the given lengths, in alphabet order (the regime prompt pool)."""
    return tuple(w for n in lengths for w in language.alphabet.words(n) if not language.is_id(w))
