"""Budget-uniform data over a language: the words of L up to a length budget, generated left to right.

At a prefix u (automaton state s, ``left`` = budget − |u| symbols to go) every outcome after which the
word can still end in L within the budget is equally likely: each symbol t with
``shortest_completion_length(step(s, t)) ≤ left − 1``, and EOS when u is a non-empty word of L (the
empty word is never data, as in the companion paper).  The support is therefore (L minus ε) ∩ Σ^≤budget.

This is the one generator of that data: :func:`budget_uniform` gives it as an exact
:class:`~theory.data.ConditionalDistribution` (Proposition 1's witnesses in
:mod:`constructions.rule_extrapolation`), and :class:`BudgetWalk` also samples and counts it (the
training sets of :mod:`empirical.data`).  Feasibility is decided by
:meth:`theory.languages.Automaton.shortest_completion_length`, a closed form for L1–L6, so a step costs
O(|Σ|) whatever the budget.
"""

from __future__ import annotations

import random
from fractions import Fraction
from functools import lru_cache

from theory.alphabet import EOS
from theory.data import ConditionalDistribution
from theory.errors import InvalidLanguage
from theory.languages import Language, State, get_language
from theory.validation import check_int


class BudgetWalk:
    """The budget-uniform walk of ``language`` with words of at most ``max_length`` symbols.

    :meth:`row` gives the exact conditionals, :meth:`sample` walks the same options with a seeded
    :class:`random.Random`, :meth:`count` is the size of the support.

    Raises:
        InvalidBudget: ``max_length`` is not an int ≥ 0.
        InvalidLanguage: an unknown language name, or no non-empty word of L has length ≤ ``max_length``
            (its rules contradict, or the budget is too small).
    """

    def __init__(self, language: Language | str, max_length: int) -> None:
        self.language: Language = get_language(language)
        self.max_length: int = check_int(max_length, "max_length", minimum=0)
        if not self.options(self.language.start(), 0):
            raise InvalidLanguage(f"language {self.language.name!r} has no non-empty word of length <= {max_length}: "
                                  "its rules contradict or the budget is too small")

    def _finishable(self, state: State, left: int) -> bool:
        # Not memoised: the closed forms are O(1), and the states of a long walk (Dyck-2 stacks) are many.
        n = self.language.shortest_completion_length(state)
        return n is not None and n <= left

    def options(self, state: State, length: int) -> list[str]:
        """The outcomes allowed after a prefix of ``length`` symbols in ``state``, in outcome order."""
        left = self.max_length - length
        lang = self.language
        opts = [t for t in lang.alphabet.symbols if left > 0 and self._finishable(lang.step(state, t), left - 1)]
        if length and lang.accepts_state(state):
            opts.append(EOS)
        return opts

    def row(self, prefix: str) -> dict[str, Fraction]:
        """p(· | prefix), exactly: uniform over :meth:`options` (asked only on the support)."""
        opts = self.options(self.language.run(prefix), len(prefix))
        return {t: Fraction(1, len(opts)) for t in opts}

    def count(self) -> int:
        """The number of words in the support (a dynamic program over (state, length))."""
        lang = self.language

        @lru_cache(maxsize=None)
        def words_from(state: State, length: int) -> int:
            return sum(1 if t == EOS else words_from(lang.step(state, t), length + 1) for t in self.options(state, length))

        return words_from(lang.start(), 0)

    def sample(self, rng: random.Random) -> str:
        """One word, drawn step by step with ``rng`` (carrying the automaton state)."""
        lang, state, word = self.language, self.language.start(), ""
        while True:
            pick = rng.choice(self.options(state, len(word)))
            if pick == EOS:
                return word
            word += pick
            state = lang.step(state, pick)

    def distribution(self) -> ConditionalDistribution:
        """The walk as an exact distribution (finite support, ``max_length`` set)."""
        return ConditionalDistribution(
            self.language.alphabet, self.row,
            name=f"{self.language.name} words of length <= {self.max_length}, uniform steps", max_length=self.max_length)


def budget_uniform(language: Language | str, max_length: int) -> ConditionalDistribution:
    """The non-empty words of ``language`` of length ≤ ``max_length``, each step uniform over the
    feasible outcomes (module docstring), as exact Fraction conditionals.

    Raises:
        InvalidBudget: ``max_length`` not an int ≥ 0.
        InvalidLanguage: an unknown language, or no non-empty word of L has length ≤ ``max_length``.
    """
    return BudgetWalk(language, max_length).distribution()
