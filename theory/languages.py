"""Rules and languages of docs/theory.md §4 as exact decision procedures (automata and counter machines).

Every rule and language here is a deterministic automaton over its alphabet:

* ``start()`` → the state after the empty word;
* ``step(state, token)`` → the next state (:data:`DEAD` once no continuation can ever be accepted);
* ``accepts_state(state)`` → whether the word read so far is accepted;
* ``completable_state(state)`` → whether *some* continuation z reaches acceptance, decided exactly
  by the counter/automaton argument written in each class (never by searching);
* ``shortest_completion_length(state)`` → |z| of the shortest such z (a closed form per class, a
  search of the states by default); ``shortest_completion(prefix, accept=…)`` → the shortlex-least z
  itself, into or out of the automaton; ``complement()`` → the automaton of the other words.

A rule given as a function word → bool becomes an automaton by :func:`as_automaton`.  The word
lists s₁ⁿ…s_kⁿ (aⁿbⁿ, aⁿbⁿcⁿ, aⁿbⁿaⁿ) are :func:`block_words`.

States are small hashable values (ints, tuples, :data:`DEAD`), so they can key dynamic programs.  An
``Automaton[S]`` has live states of type ``S`` (``CountParity`` ints, ``Dyck2`` tuples of symbols);
its methods on states take ``S | None``, ``None`` being :data:`DEAD`.

A language is L = R1 ∩ R2 (or, for L4, Dyck-2, a subset of R1 ∩ R2).  Its completability is decided
*jointly*: it is not the AND of the rules' completabilities (``"b"`` satisfies neither rule fully but
can be completed to each of R1 = {#a = #b} and R2 = a*b*, yet to no word of aⁿbⁿ).

Empty-word convention: ε ∈ L for L2–L6 (it is the n = 0 word: no a's, nothing unmatched) and ε ∉ L1
(L1's R2 is "starts with b").  The paper's training data never contain ε; this only matters for a
model that emits EOS at once.  Likewise L2's R2 is b*a* (the paper's text), so aᵏ (k even, no b) is in
:data:`LANGUAGES` ``["L2"]``; the companion paper's published code reads L2 otherwise (R1: the a's after
the last b are even; R2: b⁺a*), which is :data:`PUBLISHED_L2` (:mod:`theory.conventions` names the two
readings).
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Final, Generic, Hashable, Literal, TypeVar, cast

from theory.alphabet import Alphabet
from theory.errors import InvalidLanguage, UnknownToken
from theory.validation import check_int

State = Hashable
"""Any automaton state, :data:`DEAD` included."""
S = TypeVar("S", bound=Hashable)
"""The type of an automaton's live states (:class:`Automaton` is generic in it)."""
DEAD: Final = None
"""The dead state: the word read so far has no accepted continuation, whatever follows."""


class _FromStart(enum.Enum):
    """The type of :data:`_FROM_START`, the default of :meth:`Automaton.run` (``None`` is :data:`DEAD`)."""

    FROM_START = enum.auto()


_FROM_START: Final = _FromStart.FROM_START

DEFAULT_SEARCH_LIMIT = 64
"""How far :meth:`Automaton.shortest_completion` looks (in tokens) before answering ``None``."""

MAX_SEARCH_STATES = 100_000
"""The most states the default :meth:`Automaton.shortest_completion_length` search visits."""

RuleLike = Callable[[str], bool]
"""A rule given as a function word → bool (see :func:`as_automaton`)."""


class Automaton(ABC, Generic[S]):
    """The deterministic-automaton interface shared by :class:`Rule` and :class:`Language`; ``S`` is the
    type of its live states (a state argument is ``S | None``, ``None`` being :data:`DEAD`)."""

    name: str
    alphabet: Alphabet

    @abstractmethod
    def start(self) -> S:
        """The state after the empty word."""

    @abstractmethod
    def _step(self, state: S, token: str) -> S | None:
        """Transition from a live state on a token known to be in the alphabet."""

    @abstractmethod
    def accepts_state(self, state: S | None) -> bool:
        """Whether the word that led to ``state`` is accepted."""

    @abstractmethod
    def completable_state(self, state: S | None) -> bool:
        """Whether some continuation z (possibly empty) leads from ``state`` to acceptance."""

    def step(self, state: S | None, token: str) -> S | None:
        """The state after reading ``token``; :data:`DEAD` stays dead.

        Raises:
            UnknownToken: ``token`` is not a symbol of the alphabet (EOS included).
        """
        if token not in self.alphabet.symbols:
            raise UnknownToken(f"token {token!r} is not in alphabet {str(self.alphabet)!r} of {self.name!r}")
        return DEAD if state is DEAD else self._step(state, token)

    def run(self, word: str, state: S | None | Literal[_FromStart.FROM_START] = _FROM_START) -> S | None:
        """The state after reading ``word`` (from ``state``, default :meth:`start`).

        Raises:
            UnknownToken: ``word`` has a token outside the alphabet (named with its position).
        """
        self.alphabet.check_sequence(word, f"word for {self.name!r}")
        s = self.start() if state is _FROM_START else state
        for t in word:
            if s is DEAD:
                break
            s = self._step(s, t)
        return s

    def accepts(self, word: str) -> bool:
        """``word`` is accepted.  Raises :class:`UnknownToken` for a token outside the alphabet."""
        return self.accepts_state(self.run(word))

    def completable(self, prefix: str) -> bool:
        """Some z makes ``prefix + z`` accepted.  Raises :class:`UnknownToken` as :meth:`accepts`."""
        return self.completable_state(self.run(prefix))

    def shortest_completion_length(self, state: S | None) -> int | None:
        """|z| for the shortest z that takes ``state`` to acceptance; ``None`` when there is none.

        The default is a breadth-first search over the states, guarded by :meth:`completable_state`
        (so it ends whenever that is exact); the rules and languages below override it with the
        closed form their state gives.

        Raises:
            InvalidLanguage: the search passed :data:`MAX_SEARCH_STATES` states.
        """
        if state is DEAD or not self.completable_state(state):
            return None
        if self.accepts_state(state):
            return 0
        seen, frontier, n = {state}, [state], 0
        while frontier:
            n += 1
            nxt: list[S] = []
            for s in frontier:
                for t in self.alphabet.symbols:
                    s2 = self._step(s, t)
                    if s2 is DEAD or s2 in seen:
                        continue
                    if self.accepts_state(s2):
                        return n
                    seen.add(s2)
                    nxt.append(s2)
            if len(seen) > MAX_SEARCH_STATES:
                raise InvalidLanguage(f"{self.name!r}: the shortest-completion search passed {MAX_SEARCH_STATES} states")
            frontier = nxt
        return None

    def shortest_completion(self, prefix: str, *, accept: bool = True, limit: int = DEFAULT_SEARCH_LIMIT) -> str | None:
        """The shortest z (shortlex-least: ties by alphabet order) with ``prefix + z`` accepted
        (``accept=False``: rejected); ``None`` if no z of length ≤ ``limit`` does it.

        Raises:
            InvalidBudget: ``limit`` is not an int ≥ 0.  UnknownToken: ``prefix`` is not over the alphabet.
        """
        if accept:
            return shortest_continuation(self, prefix, lambda s: s is not DEAD and self.accepts_state(s), limit)
        return shortest_continuation(self, prefix, lambda s: s is DEAD or not self.accepts_state(s), limit)

    def complement(self) -> "Complement[S]":
        """The automaton of Σ* minus this one's words (:class:`Complement`)."""
        return Complement(self)


def shortest_continuation(automaton: Automaton[S], prefix: str, goal: Callable[[S | None], bool],
                          limit: int = DEFAULT_SEARCH_LIMIT) -> str | None:
    """The shortest z (ties: earliest in alphabet order, i.e. shortlex-least) with ``goal(state(prefix·z))``,
    by breadth-first search over the automaton's states; ``None`` if no z of length ≤ ``limit`` works.

    Exact: two prefixes in the same state have the same continuations, so each state is expanded once.

    Raises:
        InvalidBudget: ``limit`` is not an int ≥ 0.  UnknownToken: ``prefix`` is not over the alphabet.
    """
    check_int(limit, "search limit", minimum=0)
    start = automaton.run(prefix)
    if goal(start):
        return ""
    seen = {start}
    queue: deque[tuple[S | None, str]] = deque([(start, "")])
    while queue:
        state, z = queue.popleft()
        if len(z) >= limit:
            continue
        for a in automaton.alphabet.symbols:
            s2 = automaton.step(state, a)
            if s2 in seen:
                continue
            if goal(s2):
                return z + a
            seen.add(s2)
            queue.append((s2, z + a))
    return None


# ---- adapters: a callable rule, a complement ---------------------------------------------------------
class CallableRule(Automaton[str]):
    """A callable word → bool as an automaton whose state is the word read so far (so every state is
    completable as far as this automaton knows: the function is a black box)."""

    def __init__(self, fn: RuleLike, alphabet: Alphabet) -> None:
        self.fn, self.alphabet, self.name = fn, alphabet, getattr(fn, "__name__", "rule")

    def start(self) -> str:
        return ""

    def _step(self, state: str, token: str) -> str:
        return state + token

    def accepts_state(self, state: str | None) -> bool:
        # never DEAD: the states are the words read (``_step`` never returns DEAD)
        return bool(self.fn(cast(str, state)))

    def completable_state(self, state: str | None) -> bool:
        return True


class Complement(Automaton[tuple[S | None]]):
    """Accepts exactly the words the wrapped automaton rejects.  Every state counts as completable (an
    over-approximation: it only costs pruning, never exactness, to the dynamic programs that ask)."""

    def __init__(self, rule: Automaton[S]) -> None:
        self.rule, self.alphabet, self.name = rule, rule.alphabet, f"not {rule.name}"

    def start(self) -> tuple[S | None]:
        return (self.rule.start(),)

    def _step(self, state: tuple[S | None], token: str) -> tuple[S | None]:
        return (self.rule.step(state[0], token),)

    def accepts_state(self, state: tuple[S | None] | None) -> bool:
        # never DEAD: a state is the 1-tuple of the wrapped state (``_step`` never returns DEAD)
        live = cast("tuple[S | None]", state)
        return live[0] is DEAD or not self.rule.accepts_state(live[0])

    def completable_state(self, state: tuple[S | None] | None) -> bool:
        return True


def as_automaton(rule: object, alphabet: Alphabet) -> Automaton[Any]:
    """``rule`` as an automaton over ``alphabet``: an :class:`Automaton` as is, a callable word → bool
    as a :class:`CallableRule`.

    Raises:
        InvalidLanguage: an automaton over another alphabet, or neither an automaton nor a callable.
    """
    if isinstance(rule, Automaton):
        if rule.alphabet != alphabet:
            raise InvalidLanguage(f"rule {rule.name!r} is over {str(rule.alphabet)!r}, the data over {str(alphabet)!r}")
        return rule
    if callable(rule):
        return CallableRule(rule, alphabet)
    raise InvalidLanguage(f"rule {rule!r} is neither a theory.languages Rule nor a callable word -> bool")


def rule_event(rule: object, alphabet: Alphabet, *, satisfy: bool) -> Automaton[Any]:
    """The automaton of the event 'the word satisfies ``rule``' (``satisfy=False``: violates it), with
    ``rule`` as :func:`as_automaton` takes it.  Raises as :func:`as_automaton`."""
    base = as_automaton(rule, alphabet)
    return base if satisfy else base.complement()


# ---- rules ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rule(Automaton[S]):
    """A rule R ⊆ Σ*: a named deterministic automaton.  Subclasses add their parameters."""

    name: str
    alphabet: Alphabet

    def _need(self, symbols: str) -> None:
        for s in symbols:
            if s not in self.alphabet.symbols:
                raise InvalidLanguage(f"rule {self.name!r} uses {s!r}, not in alphabet {str(self.alphabet)!r}")


@dataclass(frozen=True)
class CountParity(Rule[int]):
    """#symbol is even.  State: #symbol mod 2.  Always completable (append one more ``symbol``)."""

    symbol: str

    def __post_init__(self) -> None:
        self._need(self.symbol)

    def start(self) -> int:
        return 0

    def _step(self, state: int, token: str) -> int:
        return state ^ 1 if token == self.symbol else state

    def accepts_state(self, state: int | None) -> bool:
        return state == 0

    def completable_state(self, state: int | None) -> bool:
        return state is not DEAD

    def shortest_completion_length(self, state: int | None) -> int | None:
        return None if state is DEAD else state  # one more ``symbol`` when #symbol is odd


@dataclass(frozen=True)
class StartsWith(Rule[int]):
    """The word starts with ``symbol`` (so ε is rejected).  States: 0 (empty), 1 (good start), DEAD."""

    symbol: str

    def __post_init__(self) -> None:
        self._need(self.symbol)

    def start(self) -> int:
        return 0

    def _step(self, state: int, token: str) -> int | None:
        if state == 0:
            return 1 if token == self.symbol else DEAD
        return 1

    def accepts_state(self, state: int | None) -> bool:
        return state == 1

    def completable_state(self, state: int | None) -> bool:
        return state is not DEAD  # ε takes ``symbol`` first; a good start stays good

    def shortest_completion_length(self, state: int | None) -> int | None:
        return None if state is DEAD else (1 if state == 0 else 0)


def _check_two(rule: Rule[Any], first: tuple[str, str], second: tuple[str, str]) -> None:
    """Two (name, symbol) parameters of a rule: both in its alphabet, and not the same symbol."""
    rule._need(first[1] + second[1])
    if first[1] == second[1]:
        raise InvalidLanguage(f"rule {rule.name!r}: {first[0]} and {second[0]} are both {first[1]!r}")


def _check_order(rule: Rule[Any], order: str) -> None:
    """``order`` lists the rule's alphabet once each (a block order's parameter)."""
    rule._need(order)
    if sorted(order) != sorted(rule.alphabet.symbols):
        raise InvalidLanguage(f"rule {rule.name!r}: order {order!r} must list alphabet {str(rule.alphabet)!r} once each")


@dataclass(frozen=True)
class BlockOrder(Rule[int]):
    """The word is order[0]* order[1]* … (e.g. ``order="ab"``: a*b*).  State: the index of the block
    of the last symbol read (0 at the start), DEAD after a step backwards.  Every live state accepts,
    so it is completable (by z = ε)."""

    order: str

    def __post_init__(self) -> None:
        _check_order(self, self.order)

    def start(self) -> int:
        return 0

    def _step(self, state: int, token: str) -> int | None:
        k = self.order.index(token)
        return k if k >= state else DEAD

    def accepts_state(self, state: int | None) -> bool:
        return state is not DEAD

    def completable_state(self, state: int | None) -> bool:
        return state is not DEAD

    def shortest_completion_length(self, state: int | None) -> int | None:
        return None if state is DEAD else 0


@dataclass(frozen=True)
class CountParityAfterLast(Rule[int]):
    """#symbol after the last ``reset`` is even (all of them when no ``reset`` occurs): the companion
    code's L2 rule 1 (``check_even_number_of_as_end``).  State: that count mod 2; ``reset`` sets it to 0.
    Always completable (append one more ``symbol``)."""

    symbol: str
    reset: str

    def __post_init__(self) -> None:
        _check_two(self, ("symbol", self.symbol), ("reset", self.reset))

    def start(self) -> int:
        return 0

    def _step(self, state: int, token: str) -> int:
        if token == self.reset:
            return 0
        return state ^ 1 if token == self.symbol else state

    def accepts_state(self, state: int | None) -> bool:
        return state == 0

    def completable_state(self, state: int | None) -> bool:
        return state is not DEAD

    def shortest_completion_length(self, state: int | None) -> int | None:
        return None if state is DEAD else state


@dataclass(frozen=True)
class LedBlockOrder(Rule[int]):
    """The word is order[0]⁺ order[1]* … — :class:`BlockOrder` with a non-empty first block, so ε is
    rejected: the companion code's L2 rule 2 (``check_bs_before_as``: b⁺a*, a word without b fails).
    States: 0 (nothing read), k + 1 (the last symbol read is of block k), DEAD after a step backwards or
    a first symbol outside block 0.  Completable while live (append order[0] when nothing is read)."""

    order: str

    def __post_init__(self) -> None:
        _check_order(self, self.order)

    def start(self) -> int:
        return 0

    def _step(self, state: int, token: str) -> int | None:
        k = self.order.index(token)
        if state == 0:
            return 1 if k == 0 else DEAD
        return k + 1 if k + 1 >= state else DEAD

    def accepts_state(self, state: int | None) -> bool:
        return state is not DEAD and state >= 1

    def completable_state(self, state: int | None) -> bool:
        return state is not DEAD

    def shortest_completion_length(self, state: int | None) -> int | None:
        return None if state is DEAD else (1 if state == 0 else 0)


@dataclass(frozen=True)
class EndsWith(Rule[int]):
    """The word ends with ``symbol`` (so ε is rejected).  State: 1 if the last symbol read is
    ``symbol``, else 0.  Always completable (append ``symbol``)."""

    symbol: str

    def __post_init__(self) -> None:
        self._need(self.symbol)

    def start(self) -> int:
        return 0

    def _step(self, state: int, token: str) -> int:
        return 1 if token == self.symbol else 0

    def accepts_state(self, state: int | None) -> bool:
        return state == 1

    def completable_state(self, state: int | None) -> bool:
        return state is not DEAD

    def shortest_completion_length(self, state: int | None) -> int | None:
        return None if state is DEAD else 1 - state


@dataclass(frozen=True)
class Avoids(Rule[str]):
    """The word does not contain the two-symbol factor ``factor``.  State: the last symbol read
    ('' at the start), DEAD once the factor has appeared.  Every live state accepts."""

    factor: str

    def __post_init__(self) -> None:
        self._need(self.factor)
        if len(self.factor) != 2:
            raise InvalidLanguage(f"rule {self.name!r}: factor {self.factor!r} must have exactly two symbols")

    def start(self) -> str:
        return ""

    def _step(self, state: str, token: str) -> str | None:
        return DEAD if state + token == self.factor else token

    def accepts_state(self, state: str | None) -> bool:
        return state is not DEAD

    def completable_state(self, state: str | None) -> bool:
        return state is not DEAD

    def shortest_completion_length(self, state: str | None) -> int | None:
        return None if state is DEAD else 0


@dataclass(frozen=True)
class EqualCounts(Rule[tuple[int, ...]]):
    """#s is the same for every s in ``symbols``.  State: the counts minus their minimum (a finite
    tuple per word, aligned with ``symbols``).  Always completable: append each symbol up to the max."""

    symbols: str

    def __post_init__(self) -> None:
        self._need(self.symbols)
        if len(set(self.symbols)) != len(self.symbols) or len(self.symbols) < 2:
            raise InvalidLanguage(f"rule {self.name!r}: needs at least two distinct symbols, got {self.symbols!r}")

    def start(self) -> tuple[int, ...]:
        return (0,) * len(self.symbols)

    def _step(self, state: tuple[int, ...], token: str) -> tuple[int, ...]:
        i = self.symbols.find(token)
        if i < 0:
            return state
        c = list(state)
        c[i] += 1
        m = min(c)
        return tuple(x - m for x in c)

    def accepts_state(self, state: tuple[int, ...] | None) -> bool:
        return state is not DEAD and not any(state)

    def completable_state(self, state: tuple[int, ...] | None) -> bool:
        return state is not DEAD

    def shortest_completion_length(self, state: tuple[int, ...] | None) -> int | None:
        return None if state is DEAD else sum(max(state) - c for c in state)  # raise every count to the max


@dataclass(frozen=True)
class Matched(Rule[int]):
    """The projection onto {open, close} is a balanced Dyck-1 word; other symbols are ignored.
    State: the depth (#open − #close so far), DEAD once it goes negative.  A live depth d is completed
    by d closers."""

    open: str
    close: str

    def __post_init__(self) -> None:
        _check_two(self, ("open", self.open), ("close", self.close))

    def start(self) -> int:
        return 0

    def _step(self, state: int, token: str) -> int | None:
        if token == self.open:
            return state + 1
        if token == self.close:
            return state - 1 if state > 0 else DEAD
        return state

    def accepts_state(self, state: int | None) -> bool:
        return state == 0

    def completable_state(self, state: int | None) -> bool:
        return state is not DEAD

    def shortest_completion_length(self, state: int | None) -> int | None:
        return None if state is DEAD else state  # one closer per open bracket


# ---- languages ------------------------------------------------------------------------------------
_Pair = tuple[Hashable, Hashable]
"""A product state: (R1 state, R2 state), both live."""
_CountsBlock = tuple[tuple[int, ...], int]
"""An :class:`OrderedEqualCounts` state: (normalised counts, block index)."""


@dataclass(frozen=True)
class Language(Automaton[S]):
    """A language with its two rules (R1 survives on OOD prompts; R2 is the one broken).

    ``grammar`` is the companion paper's grammar name.  Membership and completability are those of
    the language itself, decided jointly by the subclass."""

    name: str
    grammar: str
    alphabet: Alphabet
    r1: Rule[Any]
    r2: Rule[Any]
    description: str

    def __post_init__(self) -> None:
        for r in (self.r1, self.r2):
            if r.alphabet != self.alphabet:
                raise InvalidLanguage(f"language {self.name!r}: rule {r.name!r} is over {str(r.alphabet)!r}, not {str(self.alphabet)!r}")

    def contains(self, word: str) -> bool:
        """``word`` ∈ L.  Raises :class:`UnknownToken` for a token outside the alphabet."""
        return self.accepts(word)

    def is_id(self, prompt: str) -> bool:
        """The prompt is in-distribution: some completion z gives prompt + z ∈ L."""
        return self.completable(prompt)

    def is_ood(self, prompt: str) -> bool:
        """The prompt is out-of-distribution: no completion lands in L."""
        return not self.completable(prompt)


@dataclass(frozen=True)
class _Product(Language[_Pair]):
    """L = R1 ∩ R2 run as the product automaton: state (R1 state, R2 state), or :data:`DEAD` when
    either is dead.  Subclasses decide completability."""

    def start(self) -> _Pair:
        return (self.r1.start(), self.r2.start())

    def _step(self, state: _Pair, token: str) -> _Pair | None:
        s1, s2 = self.r1._step(state[0], token), self.r2._step(state[1], token)
        return DEAD if s1 is DEAD or s2 is DEAD else (s1, s2)

    def accepts_state(self, state: _Pair | None) -> bool:
        return state is not DEAD and self.r1.accepts_state(state[0]) and self.r2.accepts_state(state[1])


@dataclass(frozen=True)
class IndependentIntersection(_Product):
    """L = R1 ∩ R2 where completing one rule never hinders the other, so
    completable(L) = completable(R1) AND completable(R2).  That holds for (each argued here, and
    checked against brute force in the tests):

    * L1 (#a even, starts with b): a live R2 state either is empty (append ``b``) or has its ``b``;
      R1 is then fixed by appending at most one ``a``, which keeps R2.
    * L2 (#a even, b*a*): a live b*a* prefix stays in b*a* after appending ``a``s; likewise for the
      published reading (:data:`PUBLISHED_L2`: #a after the last b even, b⁺a*), where an empty prefix
      takes a ``b`` first.
    * L6 ([] matched, () matched): the rules read disjoint symbols, so appending ``]``s then ``)``s
      completes both.
    """

    def completable_state(self, state: _Pair | None) -> bool:
        return state is not DEAD and self.r1.completable_state(state[0]) and self.r2.completable_state(state[1])

    def shortest_completion_length(self, state: _Pair | None) -> int | None:
        """The rules' shortest fixes added up: exact when each fix leaves the other rule's state alone
        and no symbol serves both fixes, as for L1 (an ``a`` for parity, a ``b`` for an empty start),
        L2 (b*a* never needs a fix) and L6 (``]``s and ``)``s).  (It is not for, say, #a even ∩ ends
        with a, where one ``a`` fixes both: use :class:`RuleIntersection` there.)"""
        if state is DEAD:
            return None
        n1, n2 = self.r1.shortest_completion_length(state[0]), self.r2.shortest_completion_length(state[1])
        return None if n1 is None or n2 is None else n1 + n2


@dataclass(frozen=True)
class RuleIntersection(_Product):
    """L = R1 ∩ R2 for any two rules with finitely many reachable states (CountParity, StartsWith,
    EndsWith, BlockOrder, Avoids…).  Unlike :class:`IndependentIntersection` nothing is assumed about
    how the rules interact: a state is completable iff a search of the product automaton from it
    reaches a state both rules accept, which decides it exactly.  The search visits at most
    ``max_states`` states and raises :class:`InvalidLanguage` beyond (a rule with unboundedly many
    states, such as EqualCounts, whose intersection cannot be completed)."""

    max_states: int = 10_000
    _completable: dict[_Pair, bool] = field(default_factory=dict, compare=False, repr=False, hash=False)

    def completable_state(self, state: _Pair | None) -> bool:
        if state is DEAD:
            return False
        known = self._completable.get(state)
        if known is not None:
            return known
        seen, frontier, found = {state}, [state], False
        while frontier and not found:
            nxt = []
            for s in frontier:
                if self.accepts_state(s) or self._completable.get(s):
                    found = True
                    break
                for t in self.alphabet.symbols:
                    n = self._step(s, t)
                    if n is not DEAD and n not in seen:
                        seen.add(n)
                        nxt.append(n)
                if len(seen) > self.max_states:
                    raise InvalidLanguage(f"language {self.name!r}: completability search passed {self.max_states} "
                                          "states; are both rules finite-state?")
            frontier = nxt
        if found:
            self._completable[state] = True
        else:  # every state reachable from here is non-completable too
            self._completable.update(dict.fromkeys(seen, False))
        return found


@dataclass(frozen=True)
class OrderedEqualCounts(Language[_CountsBlock]):
    """L = {s₁ⁿ s₂ⁿ … s_kⁿ}: R1 = :class:`EqualCounts`, R2 = :class:`BlockOrder` (L3 = aⁿbⁿ, L5 = aⁿbⁿcⁿ).

    State: (R1 counts, R2 block index k), or :data:`DEAD`.  Completability (exact): a continuation
    may only append symbols of blocks ≥ k, in order.  So the blocks before k are frozen: their
    counts must all equal one value N, and block k's count must be ≤ N (then append the rest of block
    k and N of every later block).  With k = 0 nothing is frozen: append the other blocks.  Both
    conditions are invariant under the counts' shift, so the normalised counts decide them.
    """

    if TYPE_CHECKING:  # the rules' types, as __post_init__ enforces (not re-declared fields at run time)
        r1: EqualCounts
        r2: BlockOrder

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.r1, EqualCounts) or not isinstance(self.r2, BlockOrder) or self.r1.symbols != self.r2.order:
            raise InvalidLanguage(f"language {self.name!r}: needs EqualCounts and BlockOrder over the same symbol order")

    def start(self) -> _CountsBlock:
        return (self.r1.start(), self.r2.start())

    def _step(self, state: _CountsBlock, token: str) -> _CountsBlock | None:
        s2 = self.r2._step(state[1], token)
        return DEAD if s2 is DEAD else (self.r1._step(state[0], token), s2)

    def accepts_state(self, state: _CountsBlock | None) -> bool:
        return state is not DEAD and self.r1.accepts_state(state[0])

    def completable_state(self, state: _CountsBlock | None) -> bool:
        if state is DEAD:
            return False
        counts, k = state
        if k == 0:
            return True
        frozen = counts[:k]
        return all(c == frozen[0] for c in frozen) and counts[k] <= frozen[0]

    def shortest_completion_length(self, state: _CountsBlock | None) -> int | None:
        """With N = block 0's count (the frozen value for k > 0; the target for k = 0), append N − count
        of block k and of every later block.  The differences are shift-invariant, and before the last
        block the later counts are 0, so the normalised counts give the exact length."""
        if not self.completable_state(state):
            return None
        counts, k = cast(_CountsBlock, state)  # live: completable_state is False at DEAD
        return sum(counts[0] - c for c in counts[k:])


@dataclass(frozen=True)
class Dyck2(Language[tuple[str, ...]]):
    """Dyck-2 over ``()[]``: both kinds properly nested together (``([)]`` is out, though it is in
    R1 ∩ R2).  State: the stack of open symbols as a tuple, or :data:`DEAD` after a closer that does
    not match the top.  A live stack is completed by closing it, so every live state is completable."""

    def start(self) -> tuple[str, ...]:
        return ()

    def _step(self, state: tuple[str, ...], token: str) -> tuple[str, ...] | None:
        if token in "([":
            return state + (token,)
        want = "(" if token == ")" else "["
        return state[:-1] if state and state[-1] == want else DEAD

    def accepts_state(self, state: tuple[str, ...] | None) -> bool:
        return state == ()

    def completable_state(self, state: tuple[str, ...] | None) -> bool:
        return state is not DEAD

    def shortest_completion_length(self, state: tuple[str, ...] | None) -> int | None:
        return None if state is DEAD else len(state)  # close the stack


# ---- word lists -----------------------------------------------------------------------------------
def block_words(blocks: str, n_max: int) -> tuple[str, ...]:
    """s₁ⁿ s₂ⁿ … s_kⁿ for n = 1..``n_max``, where ``blocks`` = s₁s₂…s_k: ``block_words("ab", 3)`` is
    ("ab", "aabb", "aaabbb"); a symbol may recur (``"aba"`` gives aⁿbⁿaⁿ).  Empty for ``n_max = 0``.

    Raises:
        InvalidLanguage: ``blocks`` is not a non-empty string.  InvalidBudget: ``n_max`` is not an int ≥ 0.
    """
    if not isinstance(blocks, str) or not blocks:
        raise InvalidLanguage(f"blocks {blocks!r} must be a non-empty string of symbols")
    check_int(n_max, "n_max", minimum=0)
    return tuple("".join(s * n for s in blocks) for n in range(1, n_max + 1))


# ---- the six languages ----------------------------------------------------------------------------
_AB, _ABC, _PB = Alphabet("ab"), Alphabet("abc"), Alphabet("()[]")


def _build() -> dict[str, Language]:
    a_even = CountParity("#a even", _AB, "a")
    brackets = Matched("[] matched", _PB, "[", "]")
    parens = Matched("() matched", _PB, "(", ")")
    langs: list[Language[Any]] = [
        IndependentIntersection("L1", "baN", _AB, a_even, StartsWith("starts with b", _AB, "b"),
                                "#a even and starts with b (ε excluded)"),
        IndependentIntersection("L2", "bbaN", _AB, a_even, BlockOrder("b*a*", _AB, "ba"),
                                "#a even and all b before all a (b*a*; ε and aᵏ, k even, included)"),
        OrderedEqualCounts("L3", "aNbN", _AB, EqualCounts("#a = #b", _AB, "ab"), BlockOrder("a*b*", _AB, "ab"),
                           "aⁿbⁿ, n ≥ 0"),
        Dyck2("L4", "parentheses_and_brackets", _PB, brackets, parens,
              "Dyck-2: () and [] properly nested together (ε included)"),
        OrderedEqualCounts("L5", "aNbNcN", _ABC, EqualCounts("#a = #b = #c", _ABC, "abc"),
                           BlockOrder("a*b*c*", _ABC, "abc"), "aⁿbⁿcⁿ, n ≥ 0"),
        IndependentIntersection("L6", "not_nested_parentheses_and_brackets", _PB, brackets, parens,
                                "[] matched and () matched, crossing allowed (ε included)"),
    ]
    return {lang.name: lang for lang in langs}


LANGUAGES: dict[str, Language] = _build()
"""L1..L6 by name, in order (the paper's text: :mod:`theory.conventions` ``"paper"``)."""

PUBLISHED_L2: Language = IndependentIntersection(
    "L2", "bbaN", _AB, CountParityAfterLast("#a after the last b even", _AB, "a", "b"), LedBlockOrder("b+a*", _AB, "ba"),
    "#a after the last b even and b+a* (at least one b): b+(aa)*, the companion code's reading")
"""L2 as the companion paper's published code scores it (:mod:`theory.conventions` ``"published"``).
Completability is the rules' AND (:class:`IndependentIntersection`): a live b⁺a* state either is empty
(append ``b``) or stays live under appended ``a``s, which fix the parity after the last b."""

_ALIASES: dict[str, str] = {}
for _lang in LANGUAGES.values():
    _ALIASES[_lang.name.casefold()] = _lang.name
    _ALIASES[_lang.grammar.casefold()] = _lang.name
_ALIASES["anbn"] = "L3"
del _lang


def get_language(name: str | Language) -> Language:
    """The language called ``name``: "L1".."L6", a grammar name (e.g. "aNbN") or "anbn"
    (case-insensitive); a :class:`Language` is returned as is.

    Raises:
        InvalidLanguage: an unknown name (the message names it and lists the known ones).
    """
    if isinstance(name, Language):
        return name
    key = _ALIASES.get(name.casefold()) if isinstance(name, str) else None
    if key is None:
        known = ", ".join(f"{n} ({lang.grammar})" for n, lang in LANGUAGES.items())
        raise InvalidLanguage(f"unknown language {name!r}; known: {known}, or 'anbn'")
    return LANGUAGES[key]
