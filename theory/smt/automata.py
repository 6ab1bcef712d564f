"""Rules as automata for the synthesis' target event: a theory.languages :class:`~theory.languages.Automaton`
or a callable word → bool (:class:`_CallableRule`), and its complement (:class:`_Complement`)."""

from __future__ import annotations

from typing import Callable

from theory.alphabet import Alphabet
from theory.errors import InvalidLanguage
from theory.languages import DEAD, Automaton

RuleLike = Callable[[str], bool]


def _event(rule: object, alphabet: Alphabet, satisfy: bool):
    """An automaton for 'prompt + completion satisfies (or, with satisfy=False, violates) R1', for
    theory.properties.sampled_rule_probability; ``rule`` is a theory.languages Automaton or a callable."""
    if isinstance(rule, Automaton):
        if rule.alphabet != alphabet:
            raise InvalidLanguage(f"rule {rule.name!r} is over {str(rule.alphabet)!r}, the data over {str(alphabet)!r}")
        base = rule
    elif callable(rule):
        base = _CallableRule(rule, alphabet)
    else:
        raise InvalidLanguage(f"rule {rule!r} is neither a theory.languages Rule nor a callable word -> bool")
    return base if satisfy else _Complement(base)


class _CallableRule(Automaton):
    """A callable word -> bool as an automaton whose state is the word read so far."""

    def __init__(self, fn: RuleLike, alphabet: Alphabet) -> None:
        self.fn, self.alphabet, self.name = fn, alphabet, getattr(fn, "__name__", "rule")

    def start(self) -> str:
        return ""

    def _step(self, state: str, token: str) -> str:
        return state + token

    def accepts_state(self, state: str) -> bool:
        return bool(self.fn(state))

    def completable_state(self, state: str) -> bool:
        return True


class _Complement(Automaton):
    """Accepts exactly the words the wrapped automaton rejects; every state is completable."""

    def __init__(self, rule: Automaton) -> None:
        self.rule, self.alphabet, self.name = rule, rule.alphabet, f"not {rule.name}"

    def start(self) -> tuple:
        return (self.rule.start(),)

    def _step(self, state: tuple, token: str) -> tuple:
        return (self.rule.step(state[0], token),)

    def accepts_state(self, state: tuple) -> bool:
        return state[0] is DEAD or not self.rule.accepts_state(state[0])

    def completable_state(self, state: tuple) -> bool:
        return True
