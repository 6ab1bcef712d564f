"""Public hypothesis strategies for `nonid`'s objects, usable from anyone's test suite.

    from hypothesis import given
    from theory.strategies import data_distributions, ar_models

    @given(data_distributions(alphabet="ab", max_len=4), ...)

Everything is built from integer weights, so examples shrink to small readable tables (few
sequences, short words, weights of 1) and languages shrink towards the first rule of the library.
Strategies for networks and HMM mixtures (which need numpy/torch, so they live above ``theory``)
are in :mod:`constructions.strategies`.
"""

from __future__ import annotations

from fractions import Fraction

from hypothesis import strategies as st

from theory.alphabet import Alphabet
from theory.data import FiniteDistribution
from theory.models import PatchedModel, SupportExtension, TabularModel
from theory.probability import NextTokenDistribution

__all__ = [
    "alphabets", "words", "rows", "data_distributions", "ar_models", "patched_models", "support_copies",
    "ood_prompt_sets", "data_with_ood_prompts", "rules", "rule_languages", "languages",
    "language_data_with_ood_prompts",
]


def _alphabet(alphabet: str | Alphabet) -> Alphabet:
    return alphabet if isinstance(alphabet, Alphabet) else Alphabet(alphabet)


def alphabets(min_size: int = 1, max_size: int = 3) -> st.SearchStrategy[Alphabet]:
    """Alphabets of the first k lowercase letters, k in [min_size, max_size]."""
    return st.integers(min_size, max_size).map(lambda k: Alphabet("abcdefghij"[:k]))


def words(alphabet: str | Alphabet = "ab", max_len: int = 4, min_len: int = 0) -> st.SearchStrategy[str]:
    """Words over the alphabet with min_len ≤ length ≤ max_len."""
    a = _alphabet(alphabet)
    return st.text(alphabet=a.symbols, min_size=min_len, max_size=max_len)


@st.composite
def rows(draw, alphabet: str | Alphabet = "ab", positive: bool = False, max_weight: int = 5) -> NextTokenDistribution:
    """An exact next-token row from integer weights (all ≥ 1 when ``positive``)."""
    a = _alphabet(alphabet)
    lo = 1 if positive else 0
    w = draw(st.lists(st.integers(lo, max_weight), min_size=len(a.outcomes), max_size=len(a.outcomes)).filter(sum))
    total = sum(w)
    return NextTokenDistribution(a, {t: Fraction(x, total) for t, x in zip(a.outcomes, w)})


@st.composite
def data_distributions(draw, alphabet: str | Alphabet = "ab", max_len: int = 4, max_sequences: int = 6,
                       max_weight: int = 9) -> FiniteDistribution:
    """Finite data distributions over 1..max_sequences distinct words of length ≤ max_len."""
    a = _alphabet(alphabet)
    table = draw(st.dictionaries(words(a, max_len), st.integers(1, max_weight), min_size=1, max_size=max_sequences))
    return FiniteDistribution.from_weights(a, table, name="generated")


@st.composite
def ar_models(draw, alphabet: str | Alphabet = "ab", depth: int = 5, positive: bool = False) -> TabularModel:
    """Tabular models with a drawn row at every prefix shorter than ``depth`` and a drawn default
    row beyond (rows may contain zeros unless ``positive``)."""
    a = _alphabet(alphabet)
    table = {u: draw(rows(a, positive)) for u in a.words_up_to(depth - 1)}
    return TabularModel(a, table, default=draw(rows(a, positive)), name="generated")


@st.composite
def patched_models(draw, base: st.SearchStrategy | None = None, alphabet: str | Alphabet = "ab", max_len: int = 4,
                   max_patches: int = 3) -> PatchedModel:
    """A model from ``base`` (default :func:`ar_models`) with 1..max_patches drawn rows patched in at
    drawn prefixes of length ≤ max_len."""
    a = _alphabet(alphabet)
    model = draw(base if base is not None else ar_models(a))
    patches = draw(st.dictionaries(words(model.alphabet, max_len), rows(model.alphabet), min_size=1, max_size=max_patches))
    return PatchedModel(model, patches, name="patched")


@st.composite
def support_copies(draw, data: FiniteDistribution, depth: int = 5) -> SupportExtension:
    """A model equal to p(·|u) on S(P) and drawn rows elsewhere (KL(P ‖ Q) = 0 by Lemma B)."""
    return SupportExtension(data, draw(ar_models(data.alphabet, depth)), name="support-copy")


def ood_prompt_sets(alphabet: str | Alphabet = "ab", max_len: int = 6, max_size: int = 5) -> st.SearchStrategy[frozenset[str]]:
    """Non-empty sets of words.  Which are OOD depends on the data: filter with
    ``not P.in_support(u)``, or draw a matched pair with :func:`data_with_ood_prompts`."""
    return st.frozensets(words(alphabet, max_len, min_len=1), min_size=1, max_size=max_size)


@st.composite
def data_with_ood_prompts(draw, alphabet: str | Alphabet = "ab", max_len: int = 4, max_prompt_len: int = 5,
                          max_prompts: int = 4) -> tuple[FiniteDistribution, frozenset[str]]:
    """(P, U): a data distribution and a non-empty set of prompts with P(u) = 0 for every u ∈ U."""
    P = draw(data_distributions(alphabet, max_len))
    prompts = draw(st.frozensets(words(alphabet, max_prompt_len, min_len=1).filter(lambda u: not P.in_support(u)),
                                 min_size=1, max_size=max_prompts))
    return P, prompts


def rules(alphabet: str | Alphabet = "ab") -> st.SearchStrategy:
    """A finite-state rule over the alphabet: #s even, starts with s, ends with s, a block order
    (s₁*s₂*…), or avoids a two-symbol factor."""
    from theory.languages import Avoids, BlockOrder, CountParity, EndsWith, StartsWith

    a = _alphabet(alphabet)
    sym = st.sampled_from(a.symbols)
    return st.one_of(
        sym.map(lambda s: CountParity(f"#{s} even", a, s)),
        sym.map(lambda s: StartsWith(f"starts with {s}", a, s)),
        sym.map(lambda s: EndsWith(f"ends with {s}", a, s)),
        st.permutations(a.symbols).map(lambda o: BlockOrder("".join(f"{s}*" for s in o), a, "".join(o))),
        st.tuples(sym, sym).map(lambda f: Avoids(f"avoids {f[0]}{f[1]}", a, f[0] + f[1])),
    )


@st.composite
def rule_languages(draw, alphabet: str | Alphabet = "ab"):
    """L = R1 ∩ R2 for two drawn :func:`rules` (a :class:`~theory.languages.RuleIntersection`, with
    exact completability).  The language may be empty or finite; pair it with data through
    :func:`language_data_with_ood_prompts`, which keeps only languages with words and OOD prompts."""
    from theory.languages import RuleIntersection

    a = _alphabet(alphabet)
    r1, r2 = draw(rules(a)), draw(rules(a))
    name = f"({r1.name}) & ({r2.name})"
    return RuleIntersection(name, "rule-intersection", a, r1, r2, name)


def languages(names: tuple[str, ...] = ("L1", "L2", "L3", "L4", "L5", "L6")) -> st.SearchStrategy:
    """One of the named languages of docs/theory.md §4 (shrinks towards L1)."""
    from theory.languages import get_language

    return st.sampled_from([get_language(n) for n in names])


_WORDS_BY_LANGUAGE: dict[tuple[str, int], tuple[tuple[str, ...], tuple[str, ...]]] = {}


def _split_words(language, max_len: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(words of the language of length ≤ max_len, OOD words of length 1..max_len), cached."""
    key = (language, max_len)
    if key not in _WORDS_BY_LANGUAGE:
        members, ood = [], []
        for n in range(max_len + 1):
            for w in language.alphabet.words(n):
                if language.contains(w):
                    members.append(w)
                if n and language.is_ood(w):
                    ood.append(w)
        _WORDS_BY_LANGUAGE[key] = (tuple(members), tuple(ood))
    return _WORDS_BY_LANGUAGE[key]


@st.composite
def language_data_with_ood_prompts(draw, names: tuple[str, ...] = ("L1", "L2", "L3", "L4", "L5", "L6"),
                                   max_len: int = 6, max_sequences: int = 6, max_prompts: int = 5, max_weight: int = 9,
                                   language: st.SearchStrategy | None = None):
    """(language, P, U): a language, a finite P supported in it (words of length ≤ max_len with integer
    weights) and a non-empty set U of OOD prompts (no completion in the language, so P(u) = 0).

    The language is one of the named ones, or drawn from ``language`` (e.g. :func:`rule_languages`);
    languages with no word or no OOD prompt up to ``max_len`` are rejected (``assume``)."""
    from hypothesis import assume

    lang = draw(language if language is not None else languages(names))
    members, ood = _split_words(lang, max_len)
    assume(members and ood)
    table = draw(st.dictionaries(st.sampled_from(members), st.integers(1, max_weight), min_size=1, max_size=max_sequences))
    P = FiniteDistribution.from_weights(lang.alphabet, table, name=f"generated on {lang.name}")
    prompts = draw(st.frozensets(st.sampled_from(ood), min_size=1, max_size=max_prompts))
    return lang, P, prompts
