"""Exact next-token distributions over Σ ∪ {EOS}.

Probabilities are :class:`fractions.Fraction`.  Floats are refused: a float row almost never sums to
one exactly, and a certificate must not rest on float equality.  Write ``Fraction("0.1")`` or
``"1/10"`` instead.
"""

from __future__ import annotations

import math
import numbers
from fractions import Fraction
from typing import Iterator, Mapping, Sequence

from theory.alphabet import Alphabet
from theory.errors import InvalidDistribution, UnknownToken

Probability = Fraction


def as_probability(value: object, where: str = "probability") -> Fraction:
    """Convert an exact number (int, Fraction, any ``numbers.Rational``, or a string such as
    ``"1/3"``) to a Fraction in [0, 1].

    Raises:
        InvalidDistribution: for floats (inexact), NaN, negatives, values above one, or junk.
    """
    if isinstance(value, bool):
        raise InvalidDistribution(f"{where} {value!r} is a bool, not a probability")
    if isinstance(value, Fraction):
        p = value
    elif isinstance(value, numbers.Rational):
        p = Fraction(int(value.numerator), int(value.denominator))
    elif isinstance(value, str):
        try:
            p = Fraction(value)
        except (ValueError, ZeroDivisionError):
            raise InvalidDistribution(f"{where} {value!r} is not a rational number") from None
    elif isinstance(value, float):
        if math.isnan(value):
            raise InvalidDistribution(f"{where} is NaN")
        raise InvalidDistribution(
            f"{where} {value!r} is a float; probabilities must be exact (e.g. Fraction({str(value)!r}))"
        )
    else:
        raise InvalidDistribution(f"{where} {value!r} is not an exact rational number")
    if p < 0:
        raise InvalidDistribution(f"{where} {p} is negative")
    if p > 1:
        raise InvalidDistribution(f"{where} {p} exceeds 1")
    return p


class NextTokenDistribution:
    """An exact distribution over ``alphabet.outcomes`` (Σ then EOS).

    Build it from a mapping ``{token: probability}``; tokens not named get probability 0.

    Raises:
        UnknownToken: a key outside Σ ∪ {EOS}.
        InvalidDistribution: inexact, negative or NaN values, or a row that does not sum to 1.
    """

    __slots__ = ("alphabet", "probs", "_hash")

    def __init__(self, alphabet: Alphabet, probs: Mapping[str, object], *, where: str | None = None) -> None:
        index = {t: i for i, t in enumerate(alphabet.outcomes)}
        row = [Fraction(0)] * len(index)
        label = f" at prefix {where!r}" if where is not None else ""
        if not isinstance(probs, Mapping):
            raise InvalidDistribution(f"row{label} {probs!r} is not a mapping {{token: probability}}")
        for tok, val in probs.items():
            if tok not in index:
                raise UnknownToken(f"token {tok!r}{label} is not in alphabet {str(alphabet)!r} or EOS")
            row[index[tok]] = as_probability(val, f"probability of {tok!r}{label}")
        total = sum(row)
        if total != 1:
            raise InvalidDistribution(f"probabilities{label} sum to {total}, not 1")
        self.alphabet = alphabet
        self.probs: tuple[Fraction, ...] = tuple(row)
        self._hash: int | None = None

    @classmethod
    def _trusted(cls, alphabet: Alphabet, probs: tuple[Fraction, ...]) -> "NextTokenDistribution":
        """Internal: build from an already validated row (no checks)."""
        d = object.__new__(cls)
        d.alphabet = alphabet
        d.probs = probs
        d._hash = None
        return d

    @classmethod
    def from_exact(cls, alphabet: Alphabet, probs: Sequence[Fraction], *, where: str | None = None) -> "NextTokenDistribution":
        """The row ``probs`` (one Fraction per outcome, in ``alphabet.outcomes`` order), for callers that
        computed it exactly (a renormalised network row, a closed form).  Checks only what is cheap next
        to computing the row: the length, that every entry is a non-negative Fraction, and that they sum
        to exactly 1.  ``where`` (a prefix) is named in the error.

        Raises:
            InvalidDistribution: a wrong length, an entry that is not a non-negative Fraction, or a sum
                other than 1.
        """
        row = tuple(probs)
        label = f" at prefix {where!r}" if where is not None else ""
        if len(row) != len(alphabet.outcomes):
            raise InvalidDistribution(f"row{label} of {len(row)} probabilities for the {len(alphabet.outcomes)} "
                                      f"outcomes of alphabet {str(alphabet)!r}")
        for tok, p in zip(alphabet.outcomes, row):
            if type(p) is not Fraction or p < 0:
                raise InvalidDistribution(f"probability of {tok!r}{label} {p!r} is not a non-negative Fraction")
        total = sum(row)
        if total != 1:
            raise InvalidDistribution(f"probabilities{label} sum to {total}, not 1")
        return cls._trusted(alphabet, row)

    @classmethod
    def point(cls, alphabet: Alphabet, token: str) -> "NextTokenDistribution":
        """The point mass δ_token."""
        return cls(alphabet, {token: 1})

    @classmethod
    def uniform(cls, alphabet: Alphabet, tokens: tuple[str, ...] | None = None) -> "NextTokenDistribution":
        """Uniform over ``tokens`` (default: all of Σ ∪ {EOS})."""
        toks = alphabet.outcomes if tokens is None else tuple(tokens)
        return cls(alphabet, {t: Fraction(1, len(toks)) for t in toks})

    def prob(self, token: str) -> Fraction:
        """q(token); raises :class:`UnknownToken` for a token outside Σ ∪ {EOS}."""
        try:
            return self.probs[self.alphabet.outcomes.index(token)]
        except ValueError:
            raise UnknownToken(f"token {token!r} is not in alphabet {str(self.alphabet)!r} or EOS") from None

    def items(self) -> Iterator[tuple[str, Fraction]]:
        """(token, probability) pairs in outcome order, zeros included."""
        return zip(self.alphabet.outcomes, self.probs)

    def support(self) -> tuple[str, ...]:
        """Tokens of positive probability, in outcome order."""
        return tuple(t for t, p in self.items() if p > 0)

    def argmax(self) -> tuple[str, bool]:
        """(greedy token, tied).  Ties are broken by outcome order (Σ's order, EOS last); ``tied``
        says whether another token had the same probability."""
        best = max(self.probs)
        winners = [t for t, p in self.items() if p == best]
        return winners[0], len(winners) > 1

    def mix(self, other: "NextTokenDistribution", weight: object) -> "NextTokenDistribution":
        """(1 − weight)·self + weight·other, exactly."""
        w = as_probability(weight, "mixture weight")
        return NextTokenDistribution._trusted(
            self.alphabet, tuple((1 - w) * p + w * q for p, q in zip(self.probs, other.probs))
        )

    def as_dict(self) -> dict[str, Fraction]:
        """{token: probability} for tokens of positive probability."""
        return {t: p for t, p in self.items() if p > 0}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NextTokenDistribution):
            return NotImplemented
        return self.alphabet == other.alphabet and self.probs == other.probs

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash((self.alphabet, self.probs))
        return self._hash

    def __repr__(self) -> str:
        inner = ", ".join(f"{t!r}: {p}" for t, p in self.items() if p > 0)
        return f"NextTokenDistribution({{{inner}}})"


RowLike = NextTokenDistribution | Mapping[str, object]
"""What a model or a data distribution may give as a row: a distribution, or a mapping outcome → probability."""


def as_row(alphabet: Alphabet, row: RowLike, prefix: str) -> NextTokenDistribution:
    """Validate ``row`` as q(· | prefix); a mapping is converted, a distribution checked for its alphabet.

    Raises:
        InvalidDistribution: another alphabet, an invalid mapping, or not a row at all (naming the prefix).
    """
    if isinstance(row, NextTokenDistribution):
        if row.alphabet != alphabet:
            raise InvalidDistribution(
                f"row at prefix {prefix!r} is over alphabet {str(row.alphabet)!r}, expected {str(alphabet)!r}"
            )
        return row
    if isinstance(row, Mapping):
        return NextTokenDistribution(alphabet, row, where=prefix)
    raise InvalidDistribution(f"row at prefix {prefix!r} is {type(row).__name__}, not a distribution")
