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
DEFAULT_STEPS = {"cpu": 1500, "paper": 20000}
"""Training steps of each preset (the same test keeps them equal to the presets')."""

# Measured on the project's 2-core machine, L3, one torch thread (benchmarks/bench_steps.py, BENCHMARKS.md
# "Experiment time estimate: rates"): seconds per training step at --size cpu, and a run's fixed cost
# (data, evaluation, the certified gap).  The adversarial and oracle regimes train an extra batch:
# REGIME_FACTOR.  Rough by design: the estimate is printed as "about".
CPU_SECONDS_PER_STEP = {"transformer": 0.007, "transformer-nopos": 0.011, "lstm": 0.0055, "linear": 0.002, "ssm": 0.057}
RUN_OVERHEAD_S = 1.5
REGIME_FACTOR = {"ml": 1.0, "adversarial": 1.3, "oracle": 1.3}


def estimate_seconds(archs: list[str], regimes: list[str], runs_per_cell: int, steps: int | None, size: str,
                     jobs: int = 1) -> float | None:
    """A rough wall time of a grid on 2 CPU cores (``None`` for ``--size paper``, which is for a GPU
    and has no measured rate here): the sum over runs of overhead + steps × rate, divided among ``jobs``."""
    if size != "cpu":
        return None
    n = steps if steps is not None else DEFAULT_STEPS[size]
    total = sum(runs_per_cell * (RUN_OVERHEAD_S + n * CPU_SECONDS_PER_STEP[a] * REGIME_FACTOR[r])
                for a in archs for r in regimes)
    return total / max(1, min(jobs, 2))  # 2 cores: more jobs than cores do not help


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
