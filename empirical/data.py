"""Training data, encodings and regime targets for the rule-extrapolation experiments (docs/theory.md §4).

Vocabulary (the same as :class:`constructions.transformer.DecoderTransformer`; both read the one
layout of :class:`theory.alphabet.Alphabet`): input ids are the alphabet's symbols ``0 … k−1``, then
EOS (``k``), SOS (``k+1``) and PAD (``k+2``); every architecture outputs ``k + 1`` logits over Σ ∪ {EOS}.  A word x is fed as ``[SOS, x₁ … xₙ, PAD …]``; the target at
position t is x_{t+1}, EOS at position n, and :data:`IGNORE` after it.

Data distributions P (exact, from ``theory.data``):

* L3 = aⁿbⁿ, L5 = aⁿbⁿcⁿ: uniform over n = 1..N (the papers' data: 2n ≤ 256, resp. 3n ≤ 255);
  a :class:`~theory.data.FiniteDistribution`; the training set is the whole support.
* L1, L2, L4, L6 (random words): a :class:`~theory.data.ConditionalDistribution` with ``max_length``
  M — at every prefix, uniform over the continuations that can still end in the language within M
  symbols (EOS counts as one when the prefix is a non-empty word of L): the budget-uniform walk of
  :mod:`theory.budget_data`, the same P as Proposition 1's witnesses.  The papers' exact
  generators are not reproduced (their lengths go to 256); ours has exact conditionals, so the
  saturation gap is computable.  Training and test sets are seeded samples.

Regime targets (aⁿbⁿ and aⁿbⁿcⁿ, whose R1 is "equal counts"): for an OOD prompt u the *oracle*
completion appends, in alphabet order, each symbol up to the largest count (R1 then holds); the
*adversarial* completion appends one more of the most frequent symbol (first in order on ties) — R1
then fails, as for docs/theory.md's R1-violator.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

import torch

from empirical.errors import InvalidExperimentConfig, UnknownRegime
from empirical.names import check_regime, counts_rule
from theory.alphabet import Alphabet
from theory.budget_data import BudgetWalk
from theory.data import DataDistribution, FiniteDistribution
from theory.languages import Language, block_words, get_language
from theory.validation import check_int

IGNORE = -100
"""Target id of positions that carry no loss (prompt positions of regime examples, padding)."""



@dataclass(frozen=True)
class Vocab:
    """Token ids of one alphabet: the alphabet's own layout (:attr:`theory.alphabet.Alphabet.eos_id`
    …), which these properties only delegate to, plus the encodings the experiments train on."""

    alphabet: Alphabet

    @property
    def k(self) -> int:
        return len(self.alphabet)

    @property
    def eos(self) -> int:
        return self.alphabet.eos_id

    @property
    def sos(self) -> int:
        return self.alphabet.sos_id

    @property
    def pad(self) -> int:
        return self.alphabet.pad_id

    @property
    def n_inputs(self) -> int:
        return self.alphabet.n_input_ids

    @property
    def n_outputs(self) -> int:
        return self.alphabet.n_output_ids

    def ids(self, word: str) -> list[int]:
        """:meth:`theory.alphabet.Alphabet.token_ids` (raises UnknownToken for a token outside Σ)."""
        return self.alphabet.token_ids(word)

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


def language_data(language: Language | str, *, n_max: int = 16, max_length: int = 16, n_train: int = 2048,
                  n_test: int = 1024, seed: int = 0, enumerate_limit: int = 20_000) -> LanguageData:
    """The training/test data of one language (module docstring).

    ``n_max`` applies to L3/L5 (n = 1..n_max); ``max_length``, ``n_train``, ``n_test`` and ``seed`` to
    the random-word languages, whose test set is the exact support when it has at most
    ``enumerate_limit`` words.

    Raises:
        InvalidLanguage: unknown language, or no non-empty word within ``max_length`` (L4 with 1).
        InvalidExperimentConfig: a size below 1.
    """
    lang = get_language(language)
    for name, v in (("n_max", n_max), ("max_length", max_length), ("n_train", n_train), ("n_test", n_test)):
        check_int(v, f"{name} =", minimum=1, error=InvalidExperimentConfig)
    if lang.name in ("L3", "L5"):
        words = block_words(lang.r2.order, n_max)  # type: ignore[attr-defined]  # BlockOrder: the block order a, b(, c)
        P: DataDistribution = FiniteDistribution.uniform(lang.alphabet, words, name=f"{lang.name} n=1..{n_max}")
        k = len(lang.alphabet)
        return LanguageData(lang, P, words, tuple((w, 1.0 / len(words)) for w in words), True, k * n_max,
                            f"{lang.name} ({lang.grammar}): all {len(words)} words, n = 1..{n_max} (uniform)")
    walk = BudgetWalk(lang, max_length)
    P = walk.distribution()
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
def oracle_completion(language: Language, prompt: str) -> str:
    """A completion after which R1 (equal counts) holds: each symbol, in order, up to the largest count."""
    syms = counts_rule(language).symbols
    counts = [prompt.count(s) for s in syms]
    top = max(counts)
    return "".join(s * (top - c) for s, c in zip(syms, counts))


def violating_completion(language: Language, prompt: str) -> str:
    """A completion after which R1 fails: one more of the most frequent symbol (first on ties)."""
    syms = counts_rule(language).symbols
    counts = [prompt.count(s) for s in syms]
    return syms[counts.index(max(counts))]


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
