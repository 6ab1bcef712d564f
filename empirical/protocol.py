"""Which OOD prompts the adversarial and oracle terms train on, and the experiment certificate's
thresholds — importable without torch, so ``nonid experiment`` refuses a bad option before any heavy
import.

Two protocols (recorded in every run row as ``regime_prompts``):

* ``held-out`` (the default, the published protocol): the regime term trains on OOD words of the
  regime lengths **minus every evaluated prompt** (:func:`theory.prompts.paper_prompts`: all 2⁸ words
  of length 8 for L3, all 3⁵ of length 5 for L5), so no training prompt is an evaluated one.  Default
  lengths: the two above the evaluation length (9, 10 for L3; 6, 7 for L5).
* ``evaluated`` (``--train-on-evaluated-prompts``): the regime term trains on every OOD word of the
  regime lengths, default the evaluation length — the very prompts whose OOD R1 is then measured.

The protocol a row records is what its training prompts *are*: ``held-out`` exactly when none of them is
an evaluated prompt (so ``--train-on-evaluated-prompts --regime-lengths 9,10`` records ``held-out``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

from empirical.errors import InvalidExperimentConfig
from theory.errors import NonidError
from theory.languages import Language, get_language
from theory.validation import check_int, check_number

HELD_OUT = "held-out"
EVALUATED = "evaluated"
PROTOCOLS = (HELD_OUT, EVALUATED)

DEFAULT_EPSILON = 1e-2
"""ε of the experiment certificate: every run's certified saturation gap KL(P ‖ Q)/(E|x| + 1) must be at
most this many nats per token.  Why 1e-2: the default experiment (L3 with n ≤ 16, transformer and LSTM, 3
seeds, 1,500 steps, held-out regime prompts) reached certified per-token gaps of 2.2e-4 to 1.5e-3
(transformer) and 1.3e-3 to 4.3e-3 (LSTM; its adversarial runs the largest) on the 2-core machine
(/tmp/notes/saturation.md); trained gaps vary by a factor of about 2 between CPUs and library versions, so
1e-2 is reachable there with that margin, and 1e-3 is not (no LSTM run reached it).  It is 6.5 % of the
per-token entropy floor H(P)/(E|x| + 1) = ln 16 / 18 ≈ 0.154; give ``--epsilon`` for a tighter claim."""
DEFAULT_DELTA = 0.5
"""Δ of the experiment certificate: the OOD R1 accuracies of two regimes must be at least this far apart
on every seed (the least value of one regime minus the greatest of the other)."""
MIN_SEEDS = 3
"""Seeds every regime needs before the certificate can say ``verified``: the claim is about the regimes, not
one draw."""


def check_epsilon(epsilon: object, what: str = "epsilon =", error: type[NonidError] = InvalidExperimentConfig) -> float:
    """``epsilon`` as a float: a finite number > 0 (nats per token); else ``error`` (default
    :class:`InvalidExperimentConfig`) naming the value."""
    return check_number(epsilon, what, lo=0, lo_open=True, error=error)


def check_delta(delta: object, what: str = "delta =") -> float:
    """``delta`` as a float in (0, 1] (OOD R1 is a fraction: a larger Δ can never be reached); else
    :class:`InvalidExperimentConfig` naming the value."""
    return check_number(delta, what, lo=0, hi=1, lo_open=True, error=InvalidExperimentConfig)


def check_seeds(seeds: object, what: str = "seeds =") -> int:
    """A seed count ≥ 1; else :class:`InvalidExperimentConfig` naming the value."""
    return check_int(seeds, what, minimum=1, error=InvalidExperimentConfig)


@dataclass(frozen=True)
class RegimePrompts:
    """The regime term's training prompts of one (language, protocol): the prompts, their lengths, the
    protocol they realise, and the evaluated prompt set they were compared with."""

    prompts: tuple[str, ...]
    lengths: tuple[int, ...]
    protocol: str
    evaluated: frozenset[str]
    requested: str  # the protocol asked for

    @property
    def overlap(self) -> int:
        """How many training prompts are evaluated prompts (0 for ``held-out``)."""
        return sum(u in self.evaluated for u in self.prompts)

    def describe(self) -> str:
        lengths = ", ".join(map(str, self.lengths))
        if self.protocol == HELD_OUT:
            return (f"{len(self.prompts)} OOD prompts of length {lengths}, held out from the {len(self.evaluated)} "
                    f"evaluated prompts (none of them is evaluated)")
        return (f"{len(self.prompts)} OOD prompts of length {lengths}, {self.overlap} of them evaluated prompts "
                f"(trained on the evaluated prompts)")


def evaluated_prompts(language: Language | str) -> tuple[str, ...]:
    """The prompts every run is evaluated on (:func:`theory.prompts.paper_prompts`), ID and OOD."""
    from theory.prompts import paper_prompts

    return tuple(paper_prompts(get_language(language)).prompts)


def default_lengths(language: Language | str, train_on_evaluated_prompts: bool) -> tuple[int, ...]:
    """The regime lengths when none are given: the evaluation length (``evaluated``), or the two above it
    (``held-out``; no word of them is evaluated).  Above, not below: trained on L3's OOD words of lengths 9
    and 10 both terms carry over to the evaluated length-8 prompts (OOD R1 0.00 adversarial, 1.00 oracle),
    trained on lengths 6 and 7 only the oracle's does (adversarial 0.24, about ml's) — measured, one LSTM
    seed each, 1,500 steps (/tmp/notes/saturation.md)."""
    n = sorted({len(u) for u in evaluated_prompts(language)})
    if train_on_evaluated_prompts:
        return tuple(n)
    return (n[-1] + 1, n[-1] + 2)


def regime_prompts(language: Language | str, lengths: Sequence[int] | None = None, *,
                   train_on_evaluated_prompts: bool = False) -> RegimePrompts:
    """The regime term's training prompts (module docstring): OOD words of ``lengths`` (default
    :func:`default_lengths`), without the evaluated prompts unless ``train_on_evaluated_prompts``.

    Raises:
        InvalidExperimentConfig: a length outside 1..16, or no training prompt left (every OOD word of the
            lengths is evaluated, and the protocol is ``held-out``).
    """
    lang = get_language(language)
    if not isinstance(train_on_evaluated_prompts, bool):
        raise InvalidExperimentConfig(f"train_on_evaluated_prompts = {train_on_evaluated_prompts!r} must be True or False")
    lens = tuple(lengths) if lengths else default_lengths(lang, train_on_evaluated_prompts)
    if not all(isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= 16 for n in lens):
        raise InvalidExperimentConfig(f"regime prompt lengths {lens!r} must be integers in 1..16")
    return _regime_prompts(lang.name, lens, train_on_evaluated_prompts)


@lru_cache(maxsize=32)
def _regime_prompts(language: str, lens: tuple[int, ...], train_on_evaluated_prompts: bool) -> RegimePrompts:
    lang = get_language(language)
    evaluated = frozenset(evaluated_prompts(lang))
    pool = tuple(w for n in lens for w in lang.alphabet.words(n) if not lang.is_id(w))
    requested = EVALUATED if train_on_evaluated_prompts else HELD_OUT
    prompts = pool if train_on_evaluated_prompts else tuple(w for w in pool if w not in evaluated)
    if not prompts:
        raise InvalidExperimentConfig(
            f"no held-out regime prompt: every OOD word of length {', '.join(map(str, lens))} is an evaluated prompt of "
            f"{lang.name}; give other --regime-lengths, or --train-on-evaluated-prompts to train on them")
    protocol = EVALUATED if any(u in evaluated for u in prompts) else HELD_OUT
    return RegimePrompts(prompts, lens, protocol, evaluated, requested)
