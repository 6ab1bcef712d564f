"""Exact chance levels of the rule metrics: what a uniform random continuation scores.

The chance level of a metric on a prompt set is the mean over its prompts of the probability that a
completion sampled from the *uniform* model — q(· | u) uniform over Σ ∪ {EOS} at every prefix — ends
with EOS and makes the metric's word satisfy its rule: :func:`theory.properties.sampled_rule_probability`
on that model, per prompt, averaged.  Each value is a :class:`~theory.exact.FractionInterval` [lo, hi]:
lo is the exact mass of satisfying completions of at most ``max_new_tokens`` tokens, hi adds the mass
still unfinished there, so the interval contains the chance level of unbounded sampling (the default
budget makes it at most :data:`WIDTH` wide).  Under the uniform model a completion finishes with probability 1, so the
two denominators of :class:`~theory.properties.RuleMetrics` have the same chance level.

The published figures (the companion paper's, copied) are in :data:`PUBLISHED_CHANCE`, each with why it
differs from the exact value where it does (:func:`chance_table`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Final

from theory.alphabet import Alphabet
from theory.conventions import DEFAULT_CONVENTION, check_convention, r2_completion_offset
from theory.conventions import language as convention_language
from theory.conventions import prompt_set as convention_prompts
from theory.errors import InvalidPrompt
from theory.exact import FractionInterval
from theory.languages import LANGUAGES, Automaton, Language
from theory.probability import NextTokenDistribution
from theory.prompts import PromptSet
from theory.properties import sampled_rule_probability
from theory.validation import check_int

METRICS: Final = ("id_r1", "id_r2", "ood_r1", "ood_r2c")
WIDTH: Final = Fraction(1, 10 ** 6)
"""The default budget makes every interval at most this wide: the unfinished mass is ≤ (k/(k+1))^budget
(k = |Σ|).  Three orders finer than the published figures' digits; a narrower one costs cubic time
for L5 (20 s at 1e-9 against 5 s here, on 2 cores)."""


class UniformModel:
    """q(· | u) uniform over Σ ∪ {EOS} at every prefix; ``state_key`` is constant (its promise holds:
    every row is the same), so sampled completions merge on the rule's state alone."""

    def __init__(self, alphabet: Alphabet) -> None:
        self.alphabet = alphabet
        self.name = "uniform"
        self._row = NextTokenDistribution.uniform(alphabet)

    def next_token(self, prefix: str) -> NextTokenDistribution:
        return self._row

    def state_key(self, prefix: str) -> int:
        return 0


def default_budget(alphabet: Alphabet) -> int:
    """The fewest tokens after which a uniform completion is unfinished with probability ≤ :data:`WIDTH`."""
    k = len(alphabet)
    return math.ceil(math.log(float(1 / WIDTH)) / math.log((k + 1) / k)) + 1


@dataclass(frozen=True)
class ChanceLevels:
    """Chance levels of the four metrics on one prompt set (``None``: that side has no prompt)."""

    language: str
    convention: str
    prompts: str
    max_new_tokens: int
    id_r1: FractionInterval | None
    id_r2: FractionInterval | None
    ood_r1: FractionInterval | None
    ood_r2c: FractionInterval | None

    def value(self, metric: str) -> FractionInterval | None:
        if metric not in METRICS:
            raise InvalidPrompt(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")
        return getattr(self, metric)

    def bracket(self, metric: str, digits: int = 6) -> str:
        """``[lo, hi]`` of ``metric`` with ``digits`` decimals, rounded outward (``n/a`` for no prompt)."""
        from theory.exact import fixed

        v = self.value(metric)
        return "n/a" if v is None else f"[{fixed(v.lo, 'down', digits)}, {fixed(v.hi, 'up', digits)}]"


def chance_levels(language: str | Language, convention: str = DEFAULT_CONVENTION, prompts: PromptSet | None = None, *,
                  max_new_tokens: int | None = None) -> ChanceLevels:
    """The exact chance levels (module docstring) of ``language``'s four metrics under ``convention`` on
    ``prompts`` (default: the convention's evaluated prompt set, :func:`theory.conventions.prompt_set`).
    A :class:`~theory.languages.Language` of the user's own (not named L1..L6) is taken as it is, with its
    ``prompts`` required.

    Raises:
        InvalidLanguage, InvalidConvention; InvalidPrompt (a prompt set of another language);
        InvalidBudget (``max_new_tokens`` < 1).
    """
    check_convention(convention)
    lang: Language
    if isinstance(language, Language) and language.name not in LANGUAGES:
        if prompts is None:
            raise InvalidPrompt(f"language {language.name!r} is not one of the paper's: give its prompts")
        lang = language
    else:
        lang = convention_language(language, convention)
    budget = default_budget(lang.alphabet) if max_new_tokens is None else check_int(max_new_tokens, "max_new_tokens",
                                                                                     minimum=1)
    if prompts is None:  # the convention's own prompt set: the same every time, so computed once per process
        values = _evaluated_chance(lang.name, convention, budget)
        return ChanceLevels(lang.name, convention, values[0], budget,
                            *(None if v is None else FractionInterval(*v) for v in values[1:]))
    if prompts.language != lang:
        raise InvalidPrompt(f"prompt set is for {prompts.language.name} ({prompts.language.description}), not {lang.name} "
                            f"under the {convention!r} convention")
    return _chance_levels(lang, convention, prompts, budget)


@lru_cache(maxsize=32)
def _evaluated_chance(name: str, convention: str, budget: int) -> tuple:
    """(prompt description, then (lo, hi) or None per metric) on the convention's evaluated prompts: plain
    Fractions, so every call builds its own intervals (a cached object handed out could be changed)."""
    lang = convention_language(name, convention)
    ch = _chance_levels(lang, convention, convention_prompts(lang, convention), budget)
    return (ch.prompts, *(None if (v := ch.value(m)) is None else (v.lo, v.hi) for m in METRICS))


def _chance_levels(lang: Language, convention: str, ps: PromptSet, budget: int) -> ChanceLevels:
    model = UniformModel(lang.alphabet)
    cache: dict[tuple[int, object], FractionInterval] = {}

    def probability(rule: Automaton, which: int, prefix: str) -> FractionInterval:
        key = (which, rule.run(prefix))
        if key not in cache:
            cache[key] = sampled_rule_probability(model, prefix, rule, budget)
        return cache[key]

    def mean(values: list[FractionInterval]) -> FractionInterval | None:
        if not values:
            return None
        return FractionInterval(sum((v.lo for v in values), Fraction(0)) / len(values),
                                sum((v.hi for v in values), Fraction(0)) / len(values))

    offset = r2_completion_offset(lang.name, convention)
    r2c_prefix = (lambda u: "") if offset is None else (lambda u: u[offset:])
    return ChanceLevels(
        lang.name, convention, ps.description, budget,
        mean([probability(lang.r1, 1, u) for u in ps.id_prompts]),
        mean([probability(lang.r2, 2, u) for u in ps.id_prompts]),
        mean([probability(lang.r1, 1, u) for u in ps.ood_prompts]),
        mean([probability(lang.r2, 2, r2c_prefix(u)) for u in ps.ood_prompts]))


# ---- the published figures ------------------------------------------------------------------------
@dataclass(frozen=True)
class PublishedChance:
    """One chance level the companion paper prints, copied; ``note`` says why it differs from the exact
    value where it does (empty where it rounds from it)."""

    language: str
    metric: str
    value: float
    digits: int
    note: str = ""


PUBLISHED_CHANCE: Final = (
    PublishedChance("L1", "ood_r1", 0.5, 1),
    PublishedChance("L3", "ood_r1", 0.154, 3),
    PublishedChance("L3", "ood_r2c", 0.444, 3,
                    "0.444 rounds 4/9, the value over four equally likely outcomes (one more than a, b, EOS); the R1 "
                    "figure uses three, and over Σ ∪ {EOS} the value is 3/4"),
    PublishedChance("L4", "ood_r1", 0.127, 3,
                    "not the chance of a sampled continuation, which is (7 - 3*sqrt(5))/2 from one open bracket; the "
                    "published script computes a bounded-length string count instead (each string below a length cap "
                    "weighted alike), which tends to 0 as the cap grows and gives 0.042 at its cap of 20: 0.127 matches "
                    "neither, and its origin is not in the published code"),
    PublishedChance("L5", "ood_r1", 0.033, 3, "agrees; the paper's figure code draws 0.0033, a factor-10 slip of it"),
    PublishedChance("L6", "ood_r1", 0.127, 3, "as for L4: not the chance of a sampled continuation, and not the "
                    "bounded-length string count of the published script either"),
)


@dataclass(frozen=True)
class ChanceRow:
    """One metric's chance level: the exact bracket, the published figure (if any), whether it agrees
    (the published value is the exact one rounded to its printed digits), and why not."""

    language: str
    metric: str
    convention: str
    exact: FractionInterval | None
    published: float | None
    agrees: bool | None
    note: str


def published_chance(language: str, metric: str) -> PublishedChance | None:
    """The published figure for (language, metric), if the paper prints one."""
    return next((p for p in PUBLISHED_CHANCE if p.language == language and p.metric == metric), None)


def rounds_to(value: float, digits: int, exact: FractionInterval) -> bool:
    """Whether ``value`` (printed with ``digits`` decimals) is a correct rounding of every point of
    ``exact``: |value − x| ≤ half a unit of its last digit for both ends, exactly."""
    v, half = Fraction(str(value)), Fraction(1, 2 * 10 ** digits)
    return abs(v - exact.lo) <= half and abs(v - exact.hi) <= half


def chance_table(languages: tuple[str, ...] = ("L1", "L2", "L3", "L4", "L5", "L6"),
                 convention: str = DEFAULT_CONVENTION) -> list[ChanceRow]:
    """Every metric's chance level for ``languages`` under ``convention`` beside the published figure."""
    rows = []
    for name in languages:
        ch = chance_levels(name, convention)
        for metric in METRICS:
            pub = published_chance(ch.language, metric)
            exact = ch.value(metric)
            agrees = None if pub is None or exact is None else rounds_to(pub.value, pub.digits, exact)
            note = "" if pub is None else (pub.note if pub.note else ("agrees" if agrees else "differs"))
            rows.append(ChanceRow(ch.language, metric, convention, exact, None if pub is None else pub.value, agrees, note))
    return rows
