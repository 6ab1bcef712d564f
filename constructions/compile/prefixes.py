"""The finite prefix sets a compiled or distilled model is built for and checked on.

A :class:`PrefixSet` is prefix-closed: with every word it holds all of the word's prefixes (the empty
one included).  That is what makes the exhaustive check cheap: a causal transformer fed a *maximal*
word of the set gives, at its positions, the next-token distribution of every prefix of that word,
so one forward pass over the maximal words covers the whole set.

:func:`prefix_set` gathers, for a construction Q:

* every word of length ≤ ``horizon`` (exhaustive over Σ^≤L; |Σ|^(L+1) − 1 / (|Σ| − 1) words);
* every support prefix of a finite data distribution P (where the test loss is decided);
* for each prompt, the prompt and the greedy path of Q (and of any ``follow`` model) from it, up to
  ``max_new_tokens`` generated tokens — every prefix the greedy OOD property reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from theory.data import DataDistribution
from theory.errors import InvalidBudget, InvalidDistribution
from theory.models import ARModel
from theory.properties import greedy_completion
from theory.validation import check_int


@dataclass(frozen=True)
class PrefixSet:
    """A prefix-closed finite set of words over ``alphabet``.

    Attributes:
        alphabet: the symbols as a string (``"ab"``).
        prefixes: every word of the set, sorted by (length, word).
        maximal: the words that are a prefix of no other word of the set (evaluating these evaluates all).
    """

    alphabet: str
    prefixes: tuple[str, ...]
    maximal: tuple[str, ...]

    @classmethod
    def closure(cls, alphabet: str, words: Iterable[str]) -> "PrefixSet":
        """The smallest prefix-closed set containing ``words`` (and the empty word)."""
        seen: set[str] = {""}
        for w in words:
            while w not in seen:
                seen.add(w)
                w = w[:-1]
        prefixes = tuple(sorted(seen, key=lambda u: (len(u), u)))
        has_child = {u[:-1] for u in seen if u}
        maximal = tuple(u for u in prefixes if u not in has_child)
        return cls(alphabet, prefixes, maximal)

    @property
    def max_length(self) -> int:
        return len(self.prefixes[-1])

    def __len__(self) -> int:
        return len(self.prefixes)

    def __contains__(self, word: object) -> bool:
        return word in self._index

    @property
    def _index(self) -> frozenset[str]:
        cached = self.__dict__.get("_index_cache")
        if cached is None:
            cached = frozenset(self.prefixes)
            object.__setattr__(self, "_index_cache", cached)
        return cached


def greedy_path(model: ARModel, prompt: str, max_new_tokens: int) -> str:
    """prompt + the greedy completion of ``model`` (without EOS; at most ``max_new_tokens`` tokens):
    :func:`theory.properties.greedy_completion`'s text, ties broken by outcome order.

    Raises: what :func:`~theory.properties.greedy_completion` raises.
    """
    return prompt + greedy_completion(model, prompt, max_new_tokens).text


def prefix_set(model: ARModel, *, data: DataDistribution | None = None, horizon: int | None = None,
               prompts: Sequence[str] = (), max_new_tokens: int = 0,
               follow: Sequence[ARModel] = ()) -> PrefixSet:
    """The prefix-closed set a compiled model of ``model`` must reproduce (module docstring).

    Raises:
        InvalidDistribution: ``data`` with infinite support (its support prefixes are not a finite set).
        InvalidBudget: a negative ``horizon`` or ``max_new_tokens``.
    """
    for name, v in (("horizon", horizon), ("max_new_tokens", max_new_tokens)):
        if v is not None:
            check_int(v, name, minimum=0, error=InvalidBudget)
    ab = model.alphabet
    words: list[str] = []
    if horizon is not None:
        words.extend(ab.words(horizon))
    if data is not None:
        if not data.is_finite:
            raise InvalidDistribution(f"data {data.name!r} may have infinite support: its support prefixes are not a finite set")
        words.extend(data.support_prefixes())
    for u in prompts:
        ab.check_sequence(u, "prompt")
        words.append(u)
        for m in (model, *follow):
            words.append(greedy_path(m, u, max_new_tokens))
    return PrefixSet.closure(str(ab), words)
