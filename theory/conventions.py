"""The two readings of the companion paper's rule-extrapolation setup, selected by one name.

The companion paper (Mészáros et al., NeurIPS 2024) defines its six languages, prompts and metrics in
its text; the published code that produced its tables reads some of them differently.  Both readings
are legitimate, and the numbers they give differ, so every function that depends on one takes
``convention`` and every certificate, CSV row and report records it:

* ``paper`` (the default): the paper's text.  L2 = #a even ∩ b*a*; prompts exhaustive where they can
  be (:func:`theory.prompts.paper_prompts`); OOD R2 completion = R2 of the completion alone.  It is the
  default because it is the mathematics the propositions are about, and its prompt sets are exact
  (no sampling).
* ``published``: the published code, to reproduce the published numbers.  L2 =
  :data:`theory.languages.PUBLISHED_L2` (R1: the a's after the last b are even; R2: b⁺a*, at least one
  b); prompts drawn as its generator draws them (:func:`theory.prompts.published_prompts`); for L4 and
  L6 the OOD R2 completion is R2 of the prompt's random part w plus the completion (``)[w`` + z: it
  reads ``w z``), elsewhere of the completion alone.

Where the readings agree (L1, L3, L5 languages and prompts; L4, L6 languages) both return the same
object.  Both denominators of a rule metric (all prompts, unfinished completions failing; finished
completions only, as the published tables) are reported under either convention
(:class:`theory.properties.RuleMetrics`): the denominator is not part of the convention.
"""

from __future__ import annotations

from typing import Final

from theory.errors import InvalidConvention
from theory.languages import LANGUAGES, PUBLISHED_L2, Language, get_language
from theory.prompts import PromptSet, paper_prompts, published_prompts
from theory.validation import check_choice

PAPER: Final = "paper"
PUBLISHED: Final = "published"
CONVENTIONS: Final = (PAPER, PUBLISHED)
DEFAULT_CONVENTION: Final = PAPER

DIFFERENCES: Final[dict[str, tuple[str, ...]]] = {
    "L1": (),
    "L2": ("R1: paper #a even; published #a after the last b even",
           "R2: paper b*a*; published b+a* (a word without b fails)",
           "prompts: paper all 2^8 words of length 8; published 128 + 128 draws from pools of 7 ID and 6 OOD words"),
    "L3": (),
    "L4": ("prompts: paper every eligible w of length 6 (a seeded sample); published 32 draws from the 16 primitive "
           "Dyck-2 words, non-uniform, with replacement",
           "OOD R2 completion: paper R2 of the completion; published R2 of w + the completion"),
    "L5": (),
    "L6": ("prompts: paper every eligible w of length 6 (a seeded sample); published 32 draws from the 16 primitive "
           "Dyck-2 words, non-uniform, with replacement",
           "OOD R2 completion: paper R2 of the completion; published R2 of w + the completion"),
}
"""Per language, what differs between the two readings (empty: nothing)."""


def check_convention(value: object, what: str = "convention") -> str:
    """``value`` if it names a convention, else :class:`InvalidConvention` naming it."""
    check_choice(value, what, CONVENTIONS, error=InvalidConvention)
    return str(value)


def language(name: str | Language, convention: str = DEFAULT_CONVENTION) -> Language:
    """The language called ``name`` ("L1".."L6", a grammar name, or a :class:`Language`, read by its
    name) under ``convention``.

    Raises:
        InvalidLanguage: unknown name.  InvalidConvention: unknown convention.
    """
    check_convention(convention)
    lang = get_language(name.name if isinstance(name, Language) else name)
    if convention == PUBLISHED and lang.name == "L2":
        return PUBLISHED_L2
    return LANGUAGES[lang.name]


def convention_of(lang: Language) -> tuple[str, ...]:
    """The conventions under which ``lang`` is the language of its name (both where they agree)."""
    return tuple(c for c in CONVENTIONS if language(lang.name, c) == lang)


def prompt_set(name: str | Language, convention: str = DEFAULT_CONVENTION, *, seed: int = 0) -> PromptSet:
    """The evaluated prompts of ``name`` under ``convention``: :func:`theory.prompts.paper_prompts`
    (``paper``; ``seed`` is the L4/L6 sample's) or :func:`theory.prompts.published_prompts`
    (``published``; ``seed`` seeds the draws), split against :func:`language`.

    Raises:
        InvalidLanguage, InvalidConvention, InvalidPrompt (a seed that is not an int).
    """
    lang = language(name, convention)
    if convention == PAPER:
        return paper_prompts(lang, seed=seed)
    return published_prompts(lang, seed=seed)


def r2_completion_offset(language_name: str, convention: str = DEFAULT_CONVENTION) -> int | None:
    """What OOD R2 completion reads: ``None`` for the completion alone, else the number of leading
    prompt symbols dropped before prompt + completion is read (2 for L4/L6 under ``published``: the
    ``)[`` of ``)[w``)."""
    check_convention(convention)
    if convention == PUBLISHED and _canonical(language_name) in ("L4", "L6"):
        return 2
    return None


def _canonical(name: str) -> str:
    """The L1..L6 name of ``name`` (an alias such as a grammar name), or ``name`` itself for a language of the
    user's own."""
    from theory.errors import InvalidLanguage

    try:
        return get_language(name).name
    except InvalidLanguage:
        return name


def check_reading(lang: Language, convention: str) -> None:
    """Refuse scoring one of the paper's languages under a convention it is not read by (e.g. the paper's L2
    under ``published``): the metric would mix the two readings.  A language of the user's own (not one of
    the readings' objects) passes under either convention.

    Raises:
        InvalidConvention: the mismatch, named.
    """
    check_convention(convention)
    if lang.name not in LANGUAGES:
        return
    readings = {c: language(lang.name, c) for c in CONVENTIONS}
    if lang in readings.values() and readings[convention] != lang:
        raise InvalidConvention(f"{lang.name} ({lang.description}) is not {lang.name} under the {convention!r} convention")


def r2_completion_word(language_name: str, convention: str, prompt: str, completion: str) -> str:
    """The word OOD R2 completion checks (:func:`r2_completion_offset`)."""
    k = r2_completion_offset(language_name, convention)
    return completion if k is None else prompt[k:] + completion
