"""Argument checks, in one place (in the manner of hypothesis' ``internal/validation.py``).

Each checker returns the value it accepts (normalised: an ``int``, a ``float``) and otherwise raises the
:class:`~theory.errors.NonidError` subclass its caller names, with a one-line message that names the
value: ``f"{what} {value!r} must be …"``.  ``what`` is the value's name as the message should show it
(``"depth"``, ``"GINC parameter k ="``; after a ``what`` ending in ``=`` with no space before it none
is put, so ``"n="`` gives ``n=41``), and ``note``, where given, is appended in parentheses to say why.  A ``bool`` is never an int or a number here, although Python
treats it as one: ``steps=True`` is a mistake, not ``steps=1``.  Stdlib only, so every package can use it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection
from typing import TYPE_CHECKING, Any, TypeVar

from theory.errors import InvalidBudget, NonidError

if TYPE_CHECKING:
    import argparse

T = TypeVar("T")

__all__ = ["argparse_suggestion", "check_choice", "check_int", "check_number", "check_type", "did_you_mean", "int_range",
           "number_range"]


def _named(what: str, value: object) -> str:
    glued = what.endswith("=") and not what.endswith(" =")  # "n=" → n=41; "n =" → n = 41
    return f"{what}{'' if glued else ' '}{value!r}"


def _because(note: str | None) -> str:
    return f" ({note})" if note else ""


def int_range(minimum: int | None, maximum: int | None) -> str:
    """The words for an integer range: ``"an int >= 1"``, ``"an int <= 9"``, ``"an int in 0..9"``."""
    if minimum is not None and maximum is not None:
        return f"an int in {minimum}..{maximum}"
    if minimum is not None:
        return f"an int >= {minimum}"
    if maximum is not None:
        return f"an int <= {maximum}"
    return "an int"


def check_int(value: Any, what: str, *, minimum: int | None = None, maximum: int | None = None,
              error: type[NonidError] = InvalidBudget, integral: bool = False, note: str | None = None) -> int:
    """``value`` as an ``int`` if it is one (not a bool) with ``minimum <= value <= maximum`` (either
    bound may be ``None``), else raise ``error``.  ``integral=True`` also accepts any
    :class:`numbers.Integral` (numpy integers), returned as ``int``.  (An optional value is checked
    as ``None if v is None else check_int(v, …)``.)"""
    kinds: Any = numbers.Integral if integral else int
    if (isinstance(value, bool) or not isinstance(value, kinds)
            or (minimum is not None and value < minimum) or (maximum is not None and value > maximum)):
        raise error(f"{_named(what, value)} must be {int_range(minimum, maximum)}{_because(note)}")
    return int(value)


def number_range(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    """The words for a real interval: ``"> 0"``, ``">= 0"``, ``"in (0, 1]"``, or ``""`` when unbounded."""
    if lo is not None and hi is not None:
        return f"in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    if lo is not None:
        return f"{'>' if lo_open else '>='} {lo:g}"
    if hi is not None:
        return f"{'<' if hi_open else '<='} {hi:g}"
    return ""


def _as_float(value: numbers.Real) -> float:
    """``float(value)``; an int or Fraction beyond float range becomes ±inf (so it is not finite *as a
    float*, which is how every caller goes on to use it)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf  # type: ignore[operator]  # Real: no __gt__ in typeshed


def check_number(value: Any, what: str, *, lo: float | None = None, hi: float | None = None,
                 lo_open: bool = False, hi_open: bool = False, finite: bool = True,
                 error: type[NonidError] = NonidError, real: bool = False, note: str | None = None) -> float:
    """``value`` as a ``float`` if it is a number (an ``int`` or ``float``, not a bool; with ``real=True``
    any :class:`numbers.Real`, so also a Fraction or a numpy scalar) in the
    interval from ``lo`` to ``hi`` (closed ends unless ``lo_open``/``hi_open``; ``None`` is unbounded)
    and, when ``finite``, not ±inf or NaN, nor an int beyond float range; else raise ``error``.  The
    bounds are compared with the value itself (exactly, for an int or Fraction); NaN fails every bound."""
    words = number_range(lo, hi, lo_open, hi_open)
    ok = not isinstance(value, bool) and isinstance(value, numbers.Real if real else (int, float))
    x = _as_float(value) if ok else math.nan
    if ok and finite and not math.isfinite(x):
        ok = False
    if ok and lo is not None and not (value > lo if lo_open else value >= lo):
        ok = False
    if ok and hi is not None and not (value < hi if hi_open else value <= hi):
        ok = False
    if not ok:
        kind = "a finite number" if finite else "a number"
        raise error(f"{_named(what, value)} must be {kind}{' ' + words if words else ''}{_because(note)}")
    return x


def did_you_mean(value: object, choices: Collection[Any]) -> str:
    """``" (did you mean 'x'?)"`` naming the choices closest to a misspelt ``value`` (difflib's ratio
    ≥ 0.6, at most two), or ``""`` when none is close or ``value`` is not a string."""
    import difflib

    if not isinstance(value, str):
        return ""
    names = [str(c) for c in choices]
    close = difflib.get_close_matches(value, names, n=2, cutoff=0.6)
    if not close:
        folded = {n.casefold(): n for n in names}  # "l3" for "L3"
        close = [folded[value.casefold()]] if value.casefold() in folded else []
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def check_choice(value: T, what: str, choices: Collection[Any], *, error: type[NonidError] = NonidError,
                 note: str | None = None) -> T:
    """``value`` if it is one of ``choices``, else raise ``error`` naming it and listing the choices.
    A value that cannot be hashed (when ``choices`` is a set) is refused the same way."""
    try:
        ok = value in choices
    except TypeError:
        ok = False
    if not ok:
        listed = ", ".join(repr(c) for c in choices)
        raise error(f"{_named(what, value)} is not one of {listed}{_because(note)}{did_you_mean(value, choices)}")
    return value


def check_type(value: T, what: str, types: type | tuple[type, ...], *, error: type[NonidError] = NonidError,
               note: str | None = None) -> T:
    """``value`` if it is an instance of ``types``, else raise ``error`` naming the value and its type.
    (A bool passes only where ``bool`` or ``object`` itself is among ``types``.)"""
    kinds = types if isinstance(types, tuple) else (types,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and not any(k in (bool, object) for k in kinds)):
        names = " or ".join(k.__name__ for k in kinds)
        raise error(f"{_named(what, value)} is of type {type(value).__name__}, not {names}{_because(note)}")
    return value


def argparse_suggestion(parser: "argparse.ArgumentParser", message: str) -> str:
    """``" (did you mean …?)"`` for argparse's ``invalid choice: 'x'`` and ``unrecognized arguments: --x``
    messages: the closest choice, or the closest flag of ``parser`` and its subcommands (the one
    suggestion rule of ``nonid`` and ``python -m proofs``)."""
    import argparse
    import re

    bad = re.search(r"invalid choice: '([^']*)'", message)
    if bad:
        choices = re.findall(r"'([^']*)'", message.split("choose from", 1)[-1])
        return did_you_mean(bad.group(1), choices)
    unknown = re.search(r"unrecognized arguments: (\S+)", message)
    if unknown and unknown.group(1).startswith("-"):
        flags = [o for a in parser._actions for o in a.option_strings]  # argparse keeps no public list
        for sub in parser._actions:
            if isinstance(sub, argparse._SubParsersAction):
                flags += [o for p in sub.choices.values() for a in p._actions for o in a.option_strings]
        return did_you_mean(unknown.group(1).split("=", 1)[0], sorted(set(flags)))
    return ""
