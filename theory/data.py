"""Data distributions P on Σ*: prefix masses, support prefixes and the data's own conditionals.

* :class:`FiniteDistribution` — a finite table {sequence: probability}.
* :class:`ConditionalDistribution` — possibly infinite support, given by its conditionals
  p(· | u) (so P(u) = ∏ p along u, exact), with an optional certified bound on the entropy beyond
  a depth; sequences are generated in length order with their exact probabilities.

Notation (docs/theory.md §1): P(u) = Σ_{x ⊒ u} P(x) is the prefix mass, S(P) = {u : P(u) > 0} the
support prefixes, p(a | u) = P(ua)/P(u), p(EOS | u) = P({u})/P(u).  Off S(P) the conditionals are
undefined and asking for one raises :class:`~theory.errors.OffSupport`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from fractions import Fraction
from typing import Callable, Iterator, Mapping

from theory.alphabet import EOS, Alphabet
from theory.errors import EmptySupport, InvalidDistribution, OffSupport
from theory.probability import NextTokenDistribution, as_probability, as_row


class DataDistribution(ABC):
    """Common interface of data distributions; see the module docstring for the notation."""

    alphabet: Alphabet
    name: str

    @property
    @abstractmethod
    def is_finite(self) -> bool:
        """Whether the support is a finite set of sequences."""

    @abstractmethod
    def prefix_mass(self, prefix: str) -> Fraction:
        """P(u): the mass of all sequences that start with ``prefix`` (0 off the support)."""

    @abstractmethod
    def outcome_masses(self, prefix: str) -> tuple[Fraction, ...]:
        """(P(ua) for a in Σ) + (P({u}),) in outcome order; they sum to P(u)."""

    @abstractmethod
    def support_prefixes(self, max_depth: int | None = None) -> Iterator[str]:
        """Every u with P(u) > 0 (and |u| < max_depth when given), parents before children."""

    @abstractmethod
    def mean_length(self) -> Fraction:
        """E|x| exactly."""

    def in_support(self, prefix: str) -> bool:
        """P(u) > 0."""
        return self.prefix_mass(prefix) > 0

    def probability(self, seq: str) -> Fraction:
        """P({x}): the probability of the complete sequence x."""
        self.alphabet.check_sequence(seq)
        if self.prefix_mass(seq) == 0:
            return Fraction(0)
        return self.outcome_masses(seq)[-1]

    def conditional(self, prefix: str) -> NextTokenDistribution:
        """p(· | u) over Σ ∪ {EOS}.

        Raises:
            OffSupport: P(u) = 0, where the data's conditional is undefined.
        """
        mass = self.prefix_mass(prefix)
        if mass == 0:
            raise OffSupport(f"prefix {prefix!r} has P(u) = 0 under {self.name!r}: p(· | u) is undefined")
        return NextTokenDistribution._trusted(self.alphabet, tuple(m / mass for m in self.outcome_masses(prefix)))

    def support_nodes(self, max_depth: int | None = None) -> Iterator[tuple[str, Fraction, tuple[Fraction, ...]]]:
        """(u, P(u), outcome_masses(u)) for every support prefix (|u| < max_depth when given)."""
        for u in self.support_prefixes(max_depth):
            yield u, self.prefix_mass(u), self.outcome_masses(u)

    def sequences(self, max_length: int | None = None) -> Iterator[tuple[str, Fraction]]:
        """(x, P(x)) for every x with P(x) > 0 (and |x| ≤ max_length when given)."""
        depth = None if max_length is None else max_length + 1
        for u, _mass, masses in self.support_nodes(depth):
            if masses[-1] > 0:
                yield u, masses[-1]

    def integer_trie(self, max_depth: int | None = None) -> tuple[int, list[tuple[str, int, tuple[int, ...]]]]:
        """The support trie over a common denominator D: (D, [(u, D·P(u), D·outcome_masses(u)), …]).

        Integer masses let the chain rule run on machine-fast gcds instead of Fraction arithmetic."""
        nodes = list(self.support_nodes(max_depth))
        den = 1
        for _u, _mass, masses in nodes:
            for m in masses:
                den = math.lcm(den, m.denominator)
        out = [
            (u, mass.numerator * (den // mass.denominator), tuple(m.numerator * (den // m.denominator) for m in masses))
            for u, mass, masses in nodes
        ]
        return den, out

    def tail_mass(self, depth: int) -> Fraction:
        """P(|x| ≥ depth) = Σ_{|u| = depth} P(u), exactly."""
        if depth == 0:
            return Fraction(1)
        total = Fraction(0)
        for u, _mass, masses in self.support_nodes(depth):
            if len(u) == depth - 1:
                total += sum(masses[:-1])
        return total


class FiniteDistribution(DataDistribution):
    """P given by a finite table ``{sequence: probability}`` of exact probabilities.

    Zero entries are dropped.  Raises :class:`UnknownToken` for a sequence outside Σ*,
    :class:`InvalidDistribution` for inexact/negative/NaN values or a total other than 1, and
    :class:`EmptySupport` when no sequence has positive probability.
    """

    def __init__(self, alphabet: Alphabet, table: Mapping[str, object], name: str = "finite") -> None:
        self.alphabet = alphabet
        self.name = name
        probs: dict[str, Fraction] = {}
        if not isinstance(table, Mapping):
            raise InvalidDistribution(f"data table {table!r} of {name!r} is not a mapping {{sequence: probability}}")
        for x, val in table.items():
            alphabet.check_sequence(x)
            p = as_probability(val, f"P({x!r})")
            if p > 0:
                probs[x] = p
        if not probs:
            raise EmptySupport(f"data distribution {name!r} has no sequence of positive probability")
        # Masses are stored as integers over one common denominator D (exact, and fast to sum).
        den = 1
        for p in probs.values():
            den = math.lcm(den, p.denominator)
        ends = {x: p.numerator * (den // p.denominator) for x, p in probs.items()}
        total = sum(ends.values())
        if total != den:
            raise InvalidDistribution(f"data distribution {name!r} sums to {Fraction(total, den)}, not 1")
        self._den = den
        self._ends = ends
        self._masses = self._prefix_masses(ends)

    @staticmethod
    def _prefix_masses(ends: dict[str, int]) -> dict[str, int]:
        # Collect every prefix once (walk up from each sequence until a known prefix), then push
        # masses to parents deepest first: one addition per trie node, not one per (sequence, prefix).
        masses: dict[str, int] = {}
        for x in ends:
            u = x
            while u not in masses:
                masses[u] = 0
                if not u:
                    break
                u = u[:-1]
        order = sorted(masses, key=len, reverse=True)
        for u in order:
            m = masses[u] + ends.get(u, 0)
            masses[u] = m
            if u:
                masses[u[:-1]] += m
        # Parents before children, deterministic: by length, then by first-seen order.
        return {u: masses[u] for u in reversed(order)}

    @classmethod
    def from_weights(cls, alphabet: Alphabet, weights: Mapping[str, int | Fraction], name: str = "finite") -> "FiniteDistribution":
        """Normalise non-negative exact weights into a distribution."""
        ws: dict[str, Fraction] = {}
        if not isinstance(weights, Mapping):
            raise InvalidDistribution(f"weights {weights!r} of {name!r} are not a mapping {{sequence: weight}}")
        for x, w in weights.items():
            if isinstance(w, bool) or not isinstance(w, (int, Fraction)) or w < 0:
                raise InvalidDistribution(f"weight of {x!r} is {w!r}: weights must be non-negative ints or Fractions")
            ws[x] = Fraction(w)
        total = sum(ws.values())
        if total == 0:
            raise EmptySupport(f"data distribution {name!r} has zero total weight")
        return cls(alphabet, {x: w / total for x, w in ws.items()}, name=name)

    @classmethod
    def uniform(cls, alphabet: Alphabet, sequences: list[str] | tuple[str, ...], name: str = "uniform") -> "FiniteDistribution":
        """Uniform over the given distinct sequences."""
        seqs = list(dict.fromkeys(sequences))
        if not seqs:
            raise EmptySupport(f"data distribution {name!r} has no sequences")
        return cls(alphabet, {x: Fraction(1, len(seqs)) for x in seqs}, name=name)

    @property
    def is_finite(self) -> bool:
        return True

    def prefix_mass(self, prefix: str) -> Fraction:
        m = self._masses.get(prefix)
        if m is None:
            self.alphabet.check_sequence(prefix, "prefix")
            return Fraction(0)
        return Fraction(m, self._den)

    def _integer_outcomes(self, prefix: str) -> tuple[int, ...]:
        get = self._masses.get
        return tuple(get(prefix + a, 0) for a in self.alphabet.symbols) + (self._ends.get(prefix, 0),)

    def outcome_masses(self, prefix: str) -> tuple[Fraction, ...]:
        return tuple(Fraction(m, self._den) for m in self._integer_outcomes(prefix))

    def integer_trie(self, max_depth: int | None = None) -> tuple[int, list[tuple[str, int, tuple[int, ...]]]]:
        return self._den, [
            (u, m, self._integer_outcomes(u))
            for u, m in self._masses.items()
            if max_depth is None or len(u) < max_depth
        ]

    def support_prefixes(self, max_depth: int | None = None) -> Iterator[str]:
        if max_depth is None:
            return iter(self._masses)
        return (u for u in self._masses if len(u) < max_depth)

    def sequences(self, max_length: int | None = None) -> Iterator[tuple[str, Fraction]]:
        for x, m in self._ends.items():
            if max_length is None or len(x) <= max_length:
                yield x, Fraction(m, self._den)

    def mean_length(self) -> Fraction:
        return Fraction(sum(m * len(x) for x, m in self._ends.items()), self._den)

    @property
    def max_length(self) -> int:
        """The length of the longest support sequence."""
        return max(len(x) for x in self._ends)

    def __len__(self) -> int:
        return len(self._ends)

    def __repr__(self) -> str:
        return f"FiniteDistribution({self.name!r}, {len(self._ends)} sequences, {len(self._masses)} support prefixes)"


class ConditionalDistribution(DataDistribution):
    """P given by its own conditionals: ``conditional_fn(u)`` → p(· | u), asked only at u ∈ S(P).

    With ``max_length`` the support is finite (the row at any prefix of that length must be EOS with
    certainty, which is checked) and everything is exact.  Without it the support may be infinite:
    exact quantities that need the whole support (entropy, KL) are then computed to a depth D and bracketed: ``entropy_tail(D)`` must return a certified upper
    bound (a :class:`~theory.exact.LogCombination` or a rational) on Σ_{u ∈ S(P), |u| ≥ D} P(u)·H(p(·|u)).
    ``mean_length`` is E|x| exactly (needed for per-token losses).
    """

    def __init__(
        self,
        alphabet: Alphabet,
        conditional_fn: Callable[[str], Mapping[str, object] | NextTokenDistribution],
        name: str,
        *,
        mean_length: Fraction | None = None,
        entropy_tail: Callable[[int], object] | None = None,
        max_length: int | None = None,
    ) -> None:
        if max_length is not None and max_length < 0:
            raise InvalidDistribution(f"max_length {max_length} is negative")
        self.alphabet = alphabet
        self.name = name
        self.max_length = max_length
        self._fn = conditional_fn
        self._mean_length = None if mean_length is None else Fraction(mean_length)
        self.entropy_tail = entropy_tail
        self._rows: dict[str, NextTokenDistribution] = {}
        self._masses: dict[str, Fraction] = {"": Fraction(1)}

    @property
    def is_finite(self) -> bool:
        return self.max_length is not None

    def _row(self, u: str) -> NextTokenDistribution:
        row = self._rows.get(u)
        if row is None:
            row = as_row(self.alphabet, self._fn(u), u)
            if self.max_length is not None and len(u) >= self.max_length and row.probs[-1] != 1:
                raise InvalidDistribution(
                    f"{self.name!r} promises max_length {self.max_length} but continues past prefix {u!r}"
                )
            self._rows[u] = row
        return row

    def prefix_mass(self, prefix: str) -> Fraction:
        m = self._masses.get(prefix)
        if m is not None:
            return m
        self.alphabet.check_sequence(prefix, "prefix")
        parent = self.prefix_mass(prefix[:-1])
        m = parent * self._row(prefix[:-1]).prob(prefix[-1]) if parent > 0 else Fraction(0)
        self._masses[prefix] = m
        return m

    def outcome_masses(self, prefix: str) -> tuple[Fraction, ...]:
        mass = self.prefix_mass(prefix)
        if mass == 0:
            return tuple(Fraction(0) for _ in self.alphabet.outcomes)
        return tuple(mass * p for p in self._row(prefix).probs)

    def conditional(self, prefix: str) -> NextTokenDistribution:
        if self.prefix_mass(prefix) == 0:
            raise OffSupport(f"prefix {prefix!r} has P(u) = 0 under {self.name!r}: p(· | u) is undefined")
        return self._row(prefix)

    def support_prefixes(self, max_depth: int | None = None) -> Iterator[str]:
        if max_depth is None:
            if self.max_length is None:
                raise InvalidDistribution(f"{self.name!r} may have infinite support: give max_depth")
            max_depth = self.max_length + 1
        level = [""]
        for _depth in range(max_depth):
            nxt: list[str] = []
            for u in level:
                yield u
                row = self._row(u)
                for a, p in zip(self.alphabet.symbols, row.probs):
                    if p > 0:
                        nxt.append(u + a)
            if not nxt:
                return
            level = nxt

    def sequences(self, max_length: int | None = None) -> Iterator[tuple[str, Fraction]]:
        """Support sequences in order of length; without either ``max_length`` (here or at
        construction) the generator may be infinite."""
        if max_length is None:
            depth = 1 << 62 if self.max_length is None else self.max_length + 1
        else:
            depth = max_length + 1
        for u in self.support_prefixes(depth):
            end = self.outcome_masses(u)[-1]
            if end > 0:
                yield u, end

    def mean_length(self) -> Fraction:
        if self._mean_length is None:
            if self.max_length is not None:  # finite: sum it exactly
                return sum((p * len(x) for x, p in self.sequences()), Fraction(0))
            raise InvalidDistribution(f"{self.name!r} was built without its exact mean length")
        return self._mean_length

    def __repr__(self) -> str:
        return f"ConditionalDistribution({self.name!r})"


def anbn_geometric(ratio: Fraction | str = Fraction(1, 2)) -> ConditionalDistribution:
    """aⁿbⁿ (n ≥ 1) with P(n) = (1 − r)·r^(n−1): an infinite-support example with exact tails.

    Only the prefixes aᵏ (k ≥ 1) carry entropy, h(r) = −r ln r − (1 − r) ln(1 − r), at mass r^(k−1);
    so the entropy beyond depth D is exactly r^(max(D,1)−1)·h(r)/(1 − r), used as the certified tail.
    E|x| = 2/(1 − r).
    """
    from theory.exact import LogCombination

    r = as_probability(ratio, "geometric ratio")
    if not 0 < r < 1:
        raise InvalidDistribution(f"geometric ratio {r} must lie strictly between 0 and 1")
    alphabet = Alphabet("ab")

    def cond(u: str) -> dict[str, Fraction | int]:
        k = len(u) - len(u.lstrip("a"))
        j = len(u) - k
        if j == 0:
            return {"a": 1} if k == 0 else {"a": r, "b": 1 - r}
        return {"b": 1} if j < k else {EOS: 1}

    h = LogCombination.from_weighted_logs([(-r, r), (-(1 - r), 1 - r)])

    def tail(depth: int) -> LogCombination:
        return h * (r ** (max(depth, 1) - 1) / (1 - r))

    return ConditionalDistribution(
        alphabet, cond, name=f"anbn-geometric(r={r})", mean_length=2 / (1 - r), entropy_tail=tail
    )
