"""Typed errors.  Each names the offending value; all derive from :class:`NonidError` (a ValueError)."""

from __future__ import annotations


class NonidError(ValueError):
    """Base class of every error `nonid` raises on bad input."""


class InvalidAlphabet(NonidError):
    """An alphabet with repeated, reserved or non-single-character symbols."""


class UnknownToken(NonidError):
    """A token (or a sequence containing one) that is not in the alphabet."""


class InvalidDistribution(NonidError):
    """Probabilities that are negative, NaN, inexact, or do not sum to one."""


class EmptySupport(InvalidDistribution):
    """A data distribution with no sequence of positive probability."""


class OffSupport(NonidError):
    """A data conditional asked for at a prefix u with P(u) = 0, where it is undefined."""


class UndefinedPrefix(NonidError):
    """A tabular model asked for a prefix it has no row for (and no default)."""


class InvalidLanguage(NonidError):
    """A language or rule that is unknown, malformed, or empty."""


class InvalidPrompt(NonidError):
    """A prompt that is malformed or in the wrong class (e.g. an ID prompt passed as OOD)."""


class UnknownCheck(NonidError):
    """A proof-check name that matches nothing in the registry."""
