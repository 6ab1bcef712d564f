"""The companion paper's prompt sets, split exactly into in-distribution (ID) and OOD prompts.

A prompt u is ID for L when some z gives uz ∈ L (decided by :meth:`Language.is_id`, exactly), OOD
otherwise (docs/theory.md §4).

Paper prompts (:func:`paper_prompts`):

* L1–L3: all 2⁸ words of length 8 over {a, b} (L3: 5 ID, 251 OOD); L5: all 3⁵ words over {a, b, c}
  (4 ID).  These are exhaustive, as in the paper.
* L4, L6: ``([w`` (ID) and ``)[w`` (OOD) for words w of length 6, the same w on both sides.  Two
  families of w:

  - ``w_kind="prefix"`` (default): every w such that ``([w`` is an ID prefix of the language and
    ``)[w`` is still R1-completable (its [] projection is a Dyck-1 prefix), so rule extrapolation
    is possible on every OOD prompt.  (For these two languages the second condition follows from the
    first: ``([w`` being ID makes ``[w``'s bracket projection a Dyck-1 prefix.  It is checked anyway.)
  - ``w_kind="dyck2"``: w a complete Dyck-2 word of length 6 (40 of them).  This is what the paper's
    code draws (``generate_test_prompts``: 2⁶/2 = 32 draws, with replacement, from its own random
    Dyck-2 generator, for both L4 and L6); we cannot replay its RNG, so the faithful choice is
    ``paper_prompts(L, w_kind="dyck2", n=32)`` — a uniform sample without replacement — or
    ``exhaustive=True`` for all 40.

  ``exhaustive=True`` gives every eligible w; otherwise a seeded uniform sample of ``n`` distinct w
  (default 64 for "prefix", 32 for "dyck2"), listed in alphabet order.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Iterable

from theory.errors import InvalidPrompt
from theory.languages import LANGUAGES, Language, get_language
from theory.validation import check_int


@dataclass(frozen=True)
class PromptSet:
    """Prompts of one language, split into ID and OOD.  Construction checks the split exactly.

    Raises:
        UnknownToken: a prompt over the wrong alphabet.
        InvalidPrompt: an ID-listed prompt that is OOD or the reverse (the prompt is named).
    """

    language: Language
    id_prompts: tuple[str, ...]
    ood_prompts: tuple[str, ...]
    description: str = ""

    def __post_init__(self) -> None:
        lang = get_language(self.language)
        object.__setattr__(self, "language", lang)
        ids, oods = _as_prompts(self.id_prompts), _as_prompts(self.ood_prompts)
        object.__setattr__(self, "id_prompts", ids)
        object.__setattr__(self, "ood_prompts", oods)
        for u in ids:
            lang.alphabet.check_sequence(u, "prompt")
            if not lang.is_id(u):
                raise InvalidPrompt(f"prompt {u!r} is listed as ID but is OOD for {lang.name}: no completion is in the language")
        for u in oods:
            lang.alphabet.check_sequence(u, "prompt")
            if lang.is_id(u):
                raise InvalidPrompt(f"prompt {u!r} is listed as OOD but is ID for {lang.name}: it has a completion in the language")

    @property
    def prompts(self) -> tuple[str, ...]:
        """ID prompts, then OOD prompts."""
        return self.id_prompts + self.ood_prompts

    def __len__(self) -> int:
        return len(self.id_prompts) + len(self.ood_prompts)


def _as_prompts(prompts: Iterable[str]) -> tuple[str, ...]:
    if isinstance(prompts, str):
        raise InvalidPrompt(f"expected an iterable of prompts, got the single string {prompts!r}")
    try:
        out = tuple(prompts)
    except TypeError:
        raise InvalidPrompt(f"expected an iterable of prompts, got {prompts!r}") from None
    for u in out:
        if not isinstance(u, str):
            raise InvalidPrompt(f"prompt {u!r} is not a string")
    return out


def split_prompts(language: Language | str, prompts: Iterable[str], description: str = "") -> PromptSet:
    """Split ``prompts`` (order and duplicates kept) into ID and OOD by the exact procedure.

    Raises:
        InvalidLanguage: unknown language name.  UnknownToken: a prompt over the wrong alphabet.
    """
    lang = get_language(language)
    ps = _as_prompts(prompts)
    for u in ps:
        lang.alphabet.check_sequence(u, "prompt")
    ids = tuple(u for u in ps if lang.is_id(u))
    oods = tuple(u for u in ps if not lang.is_id(u))
    return PromptSet(lang, ids, oods, description or f"{len(ps)} prompts for {lang.name}")


def check_ood(language: Language | str, prompts: Iterable[str]) -> tuple[str, ...]:
    """Return ``prompts`` as a tuple if every one is OOD for the language.

    Raises:
        UnknownToken: a prompt over the wrong alphabet.
        InvalidPrompt: the first prompt that is in fact ID (it has a completion in the language).
    """
    lang = get_language(language)
    ps = _as_prompts(prompts)
    for u in ps:
        lang.alphabet.check_sequence(u, "prompt")
        if lang.is_id(u):
            raise InvalidPrompt(f"prompt {u!r} is ID for {lang.name}, not OOD: some completion is in the language")
    return ps


def bracket_words(language: Language | str, w_kind: str = "prefix") -> tuple[str, ...]:
    """Every eligible w of length 6 for L4/L6 (see the module docstring), in alphabet order.

    Raises:
        InvalidPrompt: not a bracket language, or an unknown ``w_kind``.
    """
    lang = get_language(language)
    if lang.name not in ("L4", "L6"):
        raise InvalidPrompt(f"bracket prompts ([w / )[w exist only for L4 and L6, not {lang.name}")
    if w_kind not in ("prefix", "dyck2"):
        raise InvalidPrompt(f"unknown w_kind {w_kind!r}; use 'prefix' or 'dyck2'")
    dyck2 = LANGUAGES["L4"]
    out = []
    for w in lang.alphabet.words(6):
        if w_kind == "dyck2" and not dyck2.contains(w):
            continue
        if lang.is_id("([" + w) and lang.r1.completable(")[" + w):
            out.append(w)
    return tuple(out)


def paper_prompts(language: Language | str, *, seed: int = 0, n: int | None = None, exhaustive: bool = False,
                  w_kind: str = "prefix") -> PromptSet:
    """The paper's prompt set for ``language`` (see the module docstring for L4/L6's choices).

    ``seed``, ``n``, ``exhaustive`` and ``w_kind`` matter only for L4/L6; L1–L3 and L5 are always
    exhaustive, and giving them ``n`` or a ``w_kind`` is an error.

    Raises:
        InvalidLanguage: unknown language.  InvalidPrompt: ``n`` < 1, ``n`` above the number of
        eligible w, a seed that is not an int, or an option that does not apply.
    """
    lang = get_language(language)
    if lang.name in ("L1", "L2", "L3", "L5"):
        if n is not None or w_kind != "prefix":
            raise InvalidPrompt(f"{lang.name}'s paper prompts are exhaustive: n={n!r} and w_kind={w_kind!r} do not apply")
        length = 5 if lang.name == "L5" else 8
        words = tuple(lang.alphabet.words(length))
        k = len(lang.alphabet)
        return split_prompts(lang, words, f"{lang.name} ({lang.grammar}): all {k}^{length} = {len(words)} words of length {length}")
    pool = bracket_words(lang, w_kind)
    if exhaustive:
        ws = pool
        how = f"every eligible w ({len(ws)})"
    else:
        size = (64 if w_kind == "prefix" else 32) if n is None else n
        check_int(size, "sample size n=", minimum=1, maximum=len(pool), error=InvalidPrompt,
                  note=f"the eligible w of kind {w_kind!r}")
        check_int(seed, "seed", error=InvalidPrompt)
        ws = tuple(sorted(random.Random(seed).sample(pool, size), key=lambda w: [lang.alphabet.symbols.index(t) for t in w]))
        how = f"{size} of {len(pool)} eligible w, seed {seed}"
    desc = f"{lang.name} ({lang.grammar}): '([w' (ID) and ')[w' (OOD), |w| = 6, w_kind {w_kind!r}, {how}"
    return PromptSet(lang, tuple("([" + w for w in ws), tuple(")[" + w for w in ws), desc)
