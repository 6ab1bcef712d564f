"""The experiment's names — architectures, regimes, sizes — and their checks, importable without
torch, so ``nonid experiment`` and ``nonid appendix`` refuse a misspelt option before any heavy import.
:mod:`empirical.architectures`, :mod:`empirical.data` and :mod:`empirical.experiment` build on these."""

from __future__ import annotations

from empirical.errors import UnknownArchitecture, UnknownRegime
from theory.languages import EqualCounts, Language
from theory.validation import did_you_mean

ARCHITECTURES = ("transformer", "transformer-nopos", "lstm", "linear", "ssm")
REGIMES = ("ml", "adversarial", "oracle")
SIZE_NAMES = ("cpu", "paper")
"""The presets of :data:`empirical.experiment.PRESETS` (a test keeps the two lists equal)."""


def check_architecture(name: str) -> str:
    """Return ``name`` if registered; raise :class:`UnknownArchitecture` (listing the known ones)."""
    if name not in ARCHITECTURES:
        raise UnknownArchitecture(f"unknown architecture {name!r}; known: {', '.join(ARCHITECTURES)}"
                                  f"{did_you_mean(name, ARCHITECTURES)}")
    return name


def counts_rule(language: Language) -> EqualCounts:
    """The language's R1 when it is an equal-counts rule (L3, L5), which the adversarial and oracle
    regimes complete or violate; :class:`UnknownRegime` otherwise."""
    if not isinstance(language.r1, EqualCounts):
        raise UnknownRegime(f"the adversarial and oracle regimes need R1 = equal counts (L3, L5), not {language.name}'s "
                            f"R1 {language.r1.name!r}; use --regime ml")
    return language.r1


def check_regime(language: Language, regime: str) -> str:
    """Return ``regime`` if it applies to ``language``; raise :class:`UnknownRegime` otherwise."""
    if regime not in REGIMES:
        raise UnknownRegime(f"unknown regime {regime!r}; known: {', '.join(REGIMES)}{did_you_mean(regime, REGIMES)}")
    if regime != "ml":
        counts_rule(language)
    return regime
