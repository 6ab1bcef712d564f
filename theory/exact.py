"""Exact real numbers of the form Σ_p c_p · ln p (c_p rational, p prime), and rational intervals.

Every loss of a model with rational conditionals is such a number: ln(n/d) = Σ e_p ln p by unique
factorisation.  Because the logarithms of distinct primes are linearly independent over ℚ, two such
numbers are equal *iff* their coefficient vectors are equal — so "KL = 0" and "the two losses are
identical" are decided exactly, with no floating point.  Signs and comparisons with rationals are
decided by rigorous mpmath interval arithmetic at increasing precision (a nonzero value always
separates from 0 eventually; the cap makes the answer ``None`` — unknown — rather than a hang).

Factorisation is the other place exact work can explode: a row derived from floats with tiny
probabilities (e^-700 is a dyadic rational with a 1000-bit denominator; normalising by the row's sum
gives a 1000-bit composite) would send ``sympy.factorint`` off for hours.  Verdict paths therefore
pass an :class:`ExactBudget`, and exceeding it raises :class:`~theory.errors.BudgetExceeded` (which
certificate paths turn into ``unknown``); the plain constructors without a budget are unbounded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Iterable, Mapping

from theory.errors import BudgetExceeded, InvalidBudget, OutsideDomain
from theory.validation import check_int

_SMALL_PRIMES_LIMIT = 10_000


@lru_cache(maxsize=None)
def _small_primes() -> tuple[int, ...]:
    sieve = bytearray([1]) * (_SMALL_PRIMES_LIMIT + 1)
    sieve[0:2] = b"\x00\x00"
    for i in range(2, int(_SMALL_PRIMES_LIMIT**0.5) + 1):
        if sieve[i]:
            sieve[i * i :: i] = bytearray(len(sieve[i * i :: i]))
    return tuple(i for i, f in enumerate(sieve) if f)


@lru_cache(maxsize=1 << 16)
def _trial_division(n: int) -> tuple[tuple[tuple[int, int], ...], int]:
    """(the factors of ``n`` below 10⁴, the cofactor left), for a positive integer ``n``.  A cofactor
    below 10⁸ is 1 or a prime: it has no factor below its square root."""
    if n < 1:
        raise OutsideDomain(f"cannot factorise {n}")
    out: list[tuple[int, int]] = []
    for p in _small_primes():
        if p * p > n:
            break
        if n % p == 0:
            e = 0
            while n % p == 0:
                n //= p
                e += 1
            out.append((p, e))
    return tuple(out), n


@lru_cache(maxsize=1 << 16)
def factorize(n: int) -> tuple[tuple[int, int], ...]:
    """Prime factorisation of a positive integer as ((p, e), ...) in increasing p.

    Trial division by primes below 10⁴; a larger cofactor goes to ``sympy.factorint`` (unbounded:
    verdict paths use :func:`factorize_within` instead)."""
    small, n = _trial_division(n)
    out = list(small)
    if n > 1:
        if n < _SMALL_PRIMES_LIMIT**2:
            out.append((n, 1))
        else:
            from sympy import factorint  # rare: only for huge cofactors

            out.extend(sorted(factorint(n).items()))
    return tuple(out)


@dataclass(frozen=True)
class ExactBudget:
    """Work bounds for the exact logarithms of one loss computation (one sum of weighted logs).

    * ``max_integer_bits`` — no numerator or denominator longer than this is factorised at all;
    * ``max_composite_bits`` — a composite left after trial division (by primes below 10⁴) of at
      most this many bits is factorised completely (``factorint``'s Pollard rho needs at most ~2¹⁶
      steps there);
    * ``factor_limit`` — a longer composite gets one bounded attempt, ``factorint(c, limit=…)``
      (trial division and rho/p−1 steps up to this bound, ~0.1 s); every factor it leaves must then
      be prime or short enough for the rule above.  Beyond it a product of two large primes could
      take hours;
    * ``max_large_cofactors`` — how many cofactors longer than ``max_composite_bits`` (each one BPSW
      primality test, ~0.1 s at 2048 bits, and at most one bounded attempt) one computation may meet;
    * ``max_log_terms`` — distinct primes in the result (each is one interval logarithm in every
      later comparison).

    The defaults leave every small-rational case untouched (its cofactors are short) and bound the
    worst case to seconds.

    Raises:
        InvalidBudget: a bound that is not an int ≥ 1.
    """

    max_integer_bits: int = 2048
    max_composite_bits: int = 64
    factor_limit: int = 1 << 14
    max_large_cofactors: int = 64
    max_log_terms: int = 20_000

    def __post_init__(self) -> None:
        for name in ("max_integer_bits", "max_composite_bits", "factor_limit", "max_large_cofactors", "max_log_terms"):
            check_int(getattr(self, name), f"exact budget {name} =", minimum=1, error=InvalidBudget)


DEFAULT_EXACT_BUDGET = ExactBudget()
"""The budget every loss of :mod:`theory.losses` (and so every witness) runs under."""


def _describe(n: int) -> str:
    """A short name for a possibly huge integer: its bit length and its leading and trailing digits."""
    if n.bit_length() <= 64:
        return str(n)
    return f"the {n.bit_length()}-bit integer …{str(n % 10**9).rjust(9, '0')}"


def factorize_within(n: int, budget: ExactBudget, meter: list[int]) -> tuple[tuple[int, int], ...]:
    """:func:`factorize` under ``budget``; ``meter`` = [large cofactors met so far] is updated.

    Raises:
        BudgetExceeded: ``n`` longer than ``max_integer_bits``, more than ``max_large_cofactors``
        cofactors longer than ``max_composite_bits``, or a composite part that the bounded attempt
        (``factor_limit``) leaves longer than ``max_composite_bits``.
    """
    if n.bit_length() <= budget.max_composite_bits:  # the common case: bounded by construction
        return factorize(n)
    if n.bit_length() > budget.max_integer_bits:
        raise BudgetExceeded(f"exact logarithm of {_describe(n)}: longer than max_integer_bits = "
                             f"{budget.max_integer_bits} of the exact budget")
    small, c = _trial_division(n)
    if c < _SMALL_PRIMES_LIMIT**2 or c.bit_length() <= budget.max_composite_bits:
        return factorize(n)
    meter[0] += 1
    if meter[0] > budget.max_large_cofactors:
        raise BudgetExceeded(f"exact logarithms met more than max_large_cofactors = {budget.max_large_cofactors} "
                             f"cofactors longer than {budget.max_composite_bits} bits (the last in {_describe(n)})")
    from sympy import factorint, isprime

    if isprime(c):
        return small + ((c, 1),)
    found: dict[int, int] = {}
    for f, e in factorint(c, limit=budget.factor_limit).items():  # partial: f may be composite
        if f.bit_length() > budget.max_composite_bits and not isprime(f):
            raise BudgetExceeded(f"exact logarithm of {_describe(n)}: a {f.bit_length()}-bit composite factor is "
                                 f"left after the bounded attempt (factor_limit = {budget.factor_limit}), longer than "
                                 f"max_composite_bits = {budget.max_composite_bits} of the exact budget")
        for p, k in (((f, 1),) if f.bit_length() > budget.max_composite_bits else factorize(f)):
            found[p] = found.get(p, 0) + k * e
    return small + tuple(sorted(found.items()))


class LogCombination:
    """An exact real Σ_p c_p ln p, or +∞.

    Build with :meth:`log` (ln of a positive rational), :meth:`from_weighted_logs`, or arithmetic
    (``+``, ``-``, multiplication by a rational).  ``==`` is exact equality.
    """

    __slots__ = ("coeffs", "infinite")

    def __init__(self, coeffs: Mapping[int, Fraction] | None = None, *, infinite: bool = False) -> None:
        self.infinite = infinite
        if infinite:
            self.coeffs: tuple[tuple[int, Fraction], ...] = ()
        else:
            self.coeffs = tuple(sorted((p, Fraction(c)) for p, c in (coeffs or {}).items() if c != 0))

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def zero(cls) -> "LogCombination":
        return cls()

    @classmethod
    def infinity(cls) -> "LogCombination":
        return cls(infinite=True)

    @classmethod
    def log(cls, r: Fraction | int, budget: ExactBudget | None = None) -> "LogCombination":
        """ln r for a positive rational r (ln 0 is refused: use :meth:`infinity` deliberately).

        Raises: OutsideDomain for r ≤ 0; BudgetExceeded as :meth:`from_weighted_logs`."""
        r = Fraction(r)
        if r <= 0:
            raise OutsideDomain(f"ln({r}) is not a finite real")
        return cls.from_weighted_logs([(Fraction(1), r)], budget)

    @classmethod
    def from_weighted_logs(cls, terms: Iterable[tuple[Fraction, Fraction]],
                           budget: ExactBudget | None = None) -> "LogCombination":
        """Σ w · ln r over (w, r) pairs, r > 0.  Pairs with w = 0 are skipped (0·ln 0 = 0).

        Without ``budget`` the work is unbounded; with one it stops early.

        Raises:
            OutsideDomain: some r ≤ 0 with w ≠ 0.
            BudgetExceeded: ``budget`` given and exceeded (:func:`factorize_within`), or the result
            would have more than ``budget.max_log_terms`` distinct primes.
        """
        acc: dict[int, Fraction] = {}
        meter = [0]
        for w, r in terms:
            if w == 0:
                continue
            r = Fraction(r)
            if r <= 0:
                raise OutsideDomain(f"ln({r}) with weight {w} is not finite")
            if budget is None:
                num, den = factorize(r.numerator), factorize(r.denominator)
            else:
                num = factorize_within(r.numerator, budget, meter)
                den = factorize_within(r.denominator, budget, meter)
            for p, e in num:
                acc[p] = acc.get(p, Fraction(0)) + w * e
            for p, e in den:
                acc[p] = acc.get(p, Fraction(0)) - w * e
            if budget is not None and len(acc) > budget.max_log_terms:
                raise BudgetExceeded(f"exact logarithms need more than max_log_terms = {budget.max_log_terms} "
                                     f"distinct primes (reached at ln({_short_rational(r)}))")
        return cls(acc)

    # ---- arithmetic ---------------------------------------------------------------------------
    def _combine(self, other: "LogCombination", sign: int) -> "LogCombination":
        if self.infinite or other.infinite:
            if other.infinite and sign < 0:
                raise OutsideDomain("∞ − ∞ is undefined")
            return LogCombination.infinity()
        acc = dict(self.coeffs)
        for p, c in other.coeffs:
            acc[p] = acc.get(p, Fraction(0)) + sign * c
        return LogCombination(acc)

    def __add__(self, other: "LogCombination") -> "LogCombination":
        return self._combine(other, +1)

    def __sub__(self, other: "LogCombination") -> "LogCombination":
        return self._combine(other, -1)

    def __neg__(self) -> "LogCombination":
        if self.infinite:
            raise OutsideDomain("−∞ is not represented")
        return LogCombination({p: -c for p, c in self.coeffs})

    def __mul__(self, k: Fraction | int) -> "LogCombination":
        k = Fraction(k)
        if self.infinite:
            if k < 0:
                raise OutsideDomain("−∞ is not represented")
            return LogCombination.infinity() if k > 0 else LogCombination.zero()
        return LogCombination({p: c * k for p, c in self.coeffs})

    __rmul__ = __mul__

    def __truediv__(self, k: Fraction | int) -> "LogCombination":
        return self * (1 / Fraction(k))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, int) and other == 0:
            return self.is_zero
        if not isinstance(other, LogCombination):
            return NotImplemented
        return self.infinite == other.infinite and self.coeffs == other.coeffs

    def __hash__(self) -> int:
        return hash((self.infinite, self.coeffs))

    @property
    def is_zero(self) -> bool:
        """Exactly zero (all coefficients vanish)."""
        return not self.infinite and not self.coeffs

    # ---- rigorous numerics --------------------------------------------------------------------
    def enclosure(self, prec: int = 64):  # -> mpmath.iv.mpf
        """A rigorous mpmath interval containing the value, computed at ``prec`` bits."""
        from mpmath import iv

        if self.infinite:
            return iv.mpf("inf")
        old = iv.prec
        try:
            iv.prec = prec
            total = iv.mpf(0)
            for p, c in self.coeffs:
                total += iv.mpf(c.numerator) / iv.mpf(c.denominator) * iv.log(iv.mpf(p))
            return total
        finally:
            iv.prec = old

    def interval(self, prec: int = 64) -> tuple[Fraction, Fraction]:
        """A rigorous enclosure [lo, hi] with exact rational endpoints (the binary endpoints of
        :meth:`enclosure`).  Raises OutsideDomain for +∞."""
        if self.infinite:
            raise OutsideDomain("+inf has no finite enclosure")
        lo, hi = self.enclosure(prec)._mpi_
        return _mpf_to_fraction(lo), _mpf_to_fraction(hi)

    def compare(self, other: "Fraction | int | LogCombination", max_prec: int = 4096) -> int | None:
        """Sign of (self − other): −1, 0 or +1, decided rigorously; ``None`` if not separated by
        ``max_prec`` bits (unknown, never guessed)."""
        if isinstance(other, LogCombination):
            if self.infinite or other.infinite:
                if self.infinite and other.infinite:
                    return None
                return 1 if self.infinite else -1
            diff, offset = self - other, Fraction(0)
        else:
            if self.infinite:
                return 1
            diff, offset = self, Fraction(other)
        if diff.is_zero:
            return (0 > offset) - (0 < offset)
        prec = 64
        while prec <= max_prec:
            lo, hi = diff.interval(prec)
            if lo > offset:
                return 1
            if hi < offset:
                return -1
            prec *= 4
        return None

    def sign(self) -> int | None:
        """−1, 0, +1 rigorously (0 only when exactly zero); ``None`` if undecided."""
        return self.compare(0)

    def __float__(self) -> float:
        """Nearest float, for display only (never for a verdict)."""
        if self.infinite:
            return float("inf")
        lo, hi = self.interval(80)
        return float((lo + hi) / 2)

    def to_sympy(self):  # -> sympy.Expr
        """The exact value as a sympy expression (``oo`` for +∞)."""
        import sympy

        if self.infinite:
            return sympy.oo
        return sympy.Add(*[sympy.Rational(c.numerator, c.denominator) * sympy.log(p) for p, c in self.coeffs])

    def __str__(self) -> str:
        if self.infinite:
            return "inf"
        if not self.coeffs:
            return "0"
        parts = []
        for p, c in self.coeffs:
            mag = abs(c)
            coef = "" if mag == 1 else f"{mag}*"
            parts.append(("- " if c < 0 else "+ ") + f"{coef}ln({p})")
        s = " ".join(parts)
        return s[2:] if s.startswith("+ ") else "-" + s[2:]

    def __repr__(self) -> str:
        return f"LogCombination({self})"

    def to_json(self) -> dict[str, object]:
        """{"exact": "3/2*ln(2) - ln(3)", "approx": 0.0…, "interval": ["lo", "hi"]}; the interval's
        decimal endpoints are rounded outward, so it still encloses the value."""
        if self.infinite:
            return {"exact": "inf", "approx": "inf", "interval": ["inf", "inf"]}
        lo, hi = self.interval(80)
        return {
            "exact": str(self),
            "approx": float(self),
            "interval": [decimal_string(lo, "down"), decimal_string(hi, "up")],
        }


def _short_rational(r: Fraction) -> str:
    """``r`` as text, shortened when its numerator or denominator is huge."""
    return str(r) if len(str(r)) <= 60 else f"{_describe(r.numerator)} / {_describe(r.denominator)}"


def _mpf_to_fraction(raw: tuple) -> Fraction:
    """An mpmath raw mpf tuple (sign, man, exp, bc) as the exact Fraction it denotes."""
    sign, man, exp, _ = raw
    if man == 0 and exp != 0:
        raise OutsideDomain("non-finite interval endpoint")
    val = Fraction(man) * (Fraction(2) ** exp)
    return -val if sign else val


def ln_float(x: Fraction) -> float:
    """ln x of a positive Fraction as a float, from the logarithms of its integer parts, so neither a tiny nor
    a huge x underflows or overflows (a float, for proposals and logits: not a bound)."""
    return math.log(x.numerator) - math.log(x.denominator)


def scientific(x: Fraction, direction: str, digits: int = 3) -> str:
    """``x`` ≥ 0 in scientific notation with ``digits`` significant digits, rounded toward +∞ ("up") or
    −∞ ("down"), so a printed bound still bounds."""
    x = Fraction(x)
    if x <= 0:
        return "0"
    e = math.floor(math.log10(x.numerator) - math.log10(x.denominator))
    shift = e - digits + 1
    scaled = x / Fraction(10) ** shift
    n = math.ceil(scaled) if direction == "up" else math.floor(scaled)
    if n >= 10 ** digits:  # rounding up carried into a new digit
        n, shift = -(-n // 10), shift + 1
    text = str(n)
    return f"{text[0]}.{text[1:]}e{shift + len(text) - 1:+03d}" if len(text) > 1 else f"{text}e{shift:+03d}"


def fixed(x: Fraction, direction: str, digits: int = 3) -> str:
    """``x`` ≥ 0 with ``digits`` decimals, rounded down or up (so a printed bound still bounds)."""
    scaled = Fraction(x) * 10 ** digits
    n = math.floor(scaled) if direction == "down" else math.ceil(scaled)
    text = str(n).rjust(digits + 1, "0")
    return f"{text[:-digits]}.{text[-digits:]}"


def decimal_string(x: Fraction, direction: str, digits: int = 17) -> str:
    """``x`` as a decimal string of ``digits`` significant digits, rounded toward −∞ ("down") or
    +∞ ("up"), so outward-rounded endpoints still enclose what they bound."""
    x = Fraction(x)
    if x == 0:
        return "0"
    import math

    exp10 = math.floor(math.log10(abs(x.numerator)) - math.log10(x.denominator))
    scale = Fraction(10) ** (digits - 1 - exp10)
    scaled = x * scale
    n = math.floor(scaled) if direction == "down" else math.ceil(scaled)
    value = Fraction(n) / scale
    return f"{float(value):.{digits}g}" if Fraction(float(value)) == value else _exact_decimal(n, digits - 1 - exp10)


def _exact_decimal(n: int, shift: int) -> str:
    """n · 10^(−shift) written exactly."""
    neg, s = n < 0, str(abs(n))
    if shift <= 0:
        out = s + "0" * (-shift)
    elif shift < len(s):
        out = s[:-shift] + "." + s[-shift:]
    else:
        out = "0." + "0" * (shift - len(s)) + s
    return ("-" if neg else "") + out


def _exact_str(x: Fraction) -> str:
    """``str(x)`` at any size: Python refuses int → decimal text beyond 4,300 digits unless the limit is lifted."""
    import sys

    limit = sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else 0
    if limit and max(x.numerator.bit_length(), x.denominator.bit_length()) > 3.3 * limit:
        sys.set_int_max_str_digits(0)
        try:
            return str(x)
        finally:
            sys.set_int_max_str_digits(limit)
    return str(x)


def _approx(x: Fraction) -> float:
    """``float(x)``, or ±inf beyond the float range (``float`` raises OverflowError there)."""
    try:
        return float(x)
    except OverflowError:
        return math.inf if x > 0 else -math.inf


def _digits(n: int) -> str:
    return _exact_str(Fraction(abs(n)))


def _signed_scientific(x: Fraction, direction: str, digits: int = 7) -> str:
    """:func:`scientific` for any sign, rounded toward ``direction`` ("up" = +∞) so a printed bound still bounds."""
    if x < 0:
        return "-" + scientific(-x, "down" if direction == "up" else "up", digits)
    return scientific(x, direction, digits)


class FractionInterval:
    """A closed interval [lo, hi] of rationals: an exact value when lo == hi, otherwise a rigorous
    bracket (e.g. a probability with the mass of unfinished completions left undecided)."""

    __slots__ = ("lo", "hi")

    def __init__(self, lo: Fraction | int, hi: Fraction | int | None = None) -> None:
        self.lo = Fraction(lo)
        self.hi = Fraction(lo if hi is None else hi)
        if self.lo > self.hi:
            raise OutsideDomain(f"empty interval [{self.lo}, {self.hi}]")

    @property
    def exact(self) -> bool:
        return self.lo == self.hi

    @property
    def width(self) -> Fraction:
        return self.hi - self.lo

    def __add__(self, other: "FractionInterval") -> "FractionInterval":
        return FractionInterval(self.lo + other.lo, self.hi + other.hi)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FractionInterval):
            return NotImplemented
        return (self.lo, self.hi) == (other.lo, other.hi)

    def __hash__(self) -> int:
        return hash((self.lo, self.hi))

    REPR_BITS = 256
    """Above this many bits in a numerator or denominator, :meth:`__repr__` shows a decimal bracket (rounded
    outward) and the exact forms' sizes instead of the exact forms (:meth:`exact_text` gives them)."""

    def __repr__(self) -> str:
        if not all(isinstance(x, Fraction) for x in (self.lo, self.hi)):  # endpoints are plain attributes: anything
            return f"FractionInterval({self.lo!r}, {self.hi!r})"
        big = max(x.numerator.bit_length() + x.denominator.bit_length() for x in (self.lo, self.hi)) > self.REPR_BITS
        if not big:
            return f"FractionInterval({self.lo})" if self.exact else f"FractionInterval({self.lo}, {self.hi})"
        digits = max(len(_digits(x.numerator)) + len(_digits(x.denominator)) for x in (self.lo, self.hi))
        return (f"FractionInterval(≈ [{_signed_scientific(self.lo, 'down')}, {_signed_scientific(self.hi, 'up')}], "
                f"exact forms of up to {digits:,} digits: .exact_text())")

    def exact_text(self) -> tuple[str, str]:
        """The exact forms of lo and hi (``p/q``), at any size (Python's 4,300-digit limit on converting an
        int to decimal text is lifted for the conversion)."""
        return _exact_str(self.lo), _exact_str(self.hi)

    def to_json(self) -> dict[str, object]:
        if self.exact:
            return {"exact": _exact_str(self.lo), "approx": _approx(self.lo)}
        return {"interval": list(self.exact_text()), "approx": [_approx(self.lo), _approx(self.hi)]}


class LogInterval:
    """A rigorous bracket [lo, hi] of two :class:`LogCombination` values (hi may be +∞): what an exact
    loss becomes when only part of an infinite support can be summed."""

    __slots__ = ("lo", "hi")

    def __init__(self, lo: LogCombination, hi: LogCombination) -> None:
        self.lo, self.hi = lo, hi

    @property
    def exact(self) -> bool:
        return self.lo == self.hi

    def to_json(self) -> dict[str, object]:
        return {"lower": self.lo.to_json(), "upper": self.hi.to_json()}

    def __repr__(self) -> str:
        return f"LogInterval([{self.lo}, {self.hi}])"
