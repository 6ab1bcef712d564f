"""The companion paper's prompt sets, split exactly into in-distribution (ID) and OOD prompts.

A prompt u is ID for L when some z gives uz ∈ L (decided by :meth:`Language.is_id`, exactly), OOD
otherwise (docs/theory.md §4).  Two sets per language, one per convention (:mod:`theory.conventions`):

Paper prompts (:func:`paper_prompts`, convention ``paper``: the paper's text, exhaustive where it can be):

* L1–L3: all 2⁸ words of length 8 over {a, b} (L3: 5 ID, 251 OOD); L5: all 3⁵ words over {a, b, c}
  (4 ID).
* L4, L6: ``([w`` (ID) and ``)[w`` (OOD) for words w of length 6, the same w on both sides.  Two
  families of w:

  - ``w_kind="prefix"`` (default): every w such that ``([w`` is an ID prefix of the language and
    ``)[w`` is still R1-completable (its [] projection is a Dyck-1 prefix), so rule extrapolation
    is possible on every OOD prompt.  (For these two languages the second condition follows from the
    first: ``([w`` being ID makes ``[w``'s bracket projection a Dyck-1 prefix.  It is checked anyway.)
  - ``w_kind="dyck2"``: w a complete Dyck-2 word of length 6 (all 40 of them).

  ``exhaustive=True`` gives every eligible w; otherwise a seeded uniform sample of ``n`` distinct w
  (default 64 for "prefix", 32 for "dyck2"), listed in alphabet order.

Published prompts (:func:`published_prompts`, convention ``published``: what the published code's
``generate_test_prompts`` draws, with its pools and draw probabilities, with replacement, from our own
seeded generator — its RNG stream cannot be replayed):

* L1, L3, L5: the paper's exhaustive sets (the published code enumerates the same words).
* L2: 128 ID draws of bᵐaʳ (m + r = 8, r uniform on 1..7) and 128 OOD draws of a·bᵐaʳ (m + r = 7, r
  uniform on 1..6): pools of 7 and 6 words, duplicates kept.
* L4, L6: 32 draws of w (the same w for ``([w`` and ``)[w``) from the published random Dyck-2
  generator conditioned on length 6 (it restarts on a word that closes early).  That generator stops as
  soon as its stack empties, so only the 16 *primitive* Dyck-2 words of length 6 (x·v·x̄, v Dyck-2 of
  length 4) can be drawn: the 8 nested three deep (x y z z̄ ȳ x̄) with probability 3/32 each, the 8 of the
  form x y ȳ z z̄ x̄ with 1/32 each — not the 40 of ``w_kind="dyck2"``, nor uniformly.

:func:`published_draw_law` gives each pool's exact law of one draw (Fractions summing to 1).
"""

from __future__ import annotations

import random
from bisect import bisect_right
from dataclasses import dataclass
from fractions import Fraction
from itertools import accumulate
from math import gcd
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


# ---- the published code's prompt generators -------------------------------------------------------
PUBLISHED_DRAWS = {"L2": 128, "L4": 32, "L6": 32}
"""Draws per pool of the published generator (2⁸/2 for L2's ID and OOD pools, 2⁶/2 for L4/L6's w)."""


def _primitive_dyck2_law(n: int) -> dict[str, Fraction]:
    """The law of the published random Dyck-2 generator's word of length ``n``, conditioned on that
    length.  The generator: with an empty stack pick ``(`` or ``[`` (1/2 each); otherwise pick one of
    the two openers or the closer of the top (1/3 each), but close when word + stack reach ``n``; stop
    as soon as the stack is empty.  Exact, by enumerating every path."""
    out: dict[str, Fraction] = {}

    def walk(word: str, stack: str, p: Fraction) -> None:
        if word and not stack:
            if len(word) == n:
                out[word] = out.get(word, Fraction(0)) + p
            return
        if not stack:
            for c in "([":
                walk(word + c, stack + c, p / 2)
            return
        close = ")" if stack[-1] == "(" else "]"
        if len(word) + len(stack) >= n:
            walk(word + close, stack[:-1], p)
            return
        for c in ("(", "[", close):
            walk(word + c, stack[:-1] if c == close else stack + c, p / 3)

    walk("", "", Fraction(1))
    total = sum(out.values(), Fraction(0))
    return {w: q / total for w, q in sorted(out.items())}


def published_draw_law(language: Language | str) -> dict[str, dict[str, Fraction]]:
    """The exact law of one draw of each pool of the published prompt generator: ``{"id": …, "ood": …}``
    (L2: whole prompts) or ``{"w": …}`` (L4, L6: the random part w); ``{}`` for L1, L3, L5, whose
    published prompts are exhaustive.  Each law maps words to Fractions summing to 1.

    Raises:
        InvalidLanguage: unknown language.
    """
    lang = get_language(language)
    if lang.name == "L2":
        return {"id": {"b" * (8 - r) + "a" * r: Fraction(1, 7) for r in range(1, 8)},
                "ood": {"a" + "b" * (7 - r) + "a" * r: Fraction(1, 6) for r in range(1, 7)}}
    if lang.name in ("L4", "L6"):
        return {"w": _primitive_dyck2_law(6)}
    return {}


def _draw(rng: random.Random, law: dict[str, Fraction], k: int) -> tuple[str, ...]:
    """``k`` draws with replacement from ``law``, exactly: integer weights over a common denominator."""
    words = list(law)
    denominator = 1
    for q in law.values():
        denominator = denominator * q.denominator // gcd(denominator, q.denominator)
    cumulative = list(accumulate(int(law[w] * denominator) for w in words))
    return tuple(words[bisect_right(cumulative, rng.randrange(cumulative[-1]))] for _ in range(k))


def published_prompts(language: Language | str, *, seed: int = 0) -> PromptSet:
    """The published code's prompt set for ``language`` (module docstring): L1, L3, L5 exhaustive (the
    paper's sets); L2, L4, L6 drawn with replacement from :func:`published_draw_law` by a
    ``random.Random`` seeded from (language, ``seed``), in draw order, duplicates kept.  ``language``
    may be a :class:`Language` object (e.g. :data:`theory.languages.PUBLISHED_L2`); the split is checked
    exactly against it.

    Raises:
        InvalidLanguage: unknown language.  InvalidPrompt: a seed that is not an int.
    """
    lang = get_language(language)
    check_int(seed, "seed", error=InvalidPrompt)
    law = published_draw_law(lang)
    if not law:
        base = paper_prompts(lang.name)
        return PromptSet(lang, base.id_prompts, base.ood_prompts,
                         base.description + " (the published code enumerates the same words)")
    rng = random.Random(f"nonid-published-prompts-{lang.name}-{seed}")
    k = PUBLISHED_DRAWS[lang.name]
    if lang.name == "L2":
        ids, oods = _draw(rng, law["id"], k), _draw(rng, law["ood"], k)
        desc = (f"L2 (bbaN), published generator, seed {seed}: {k} ID draws of b^m a^r (m + r = 8, r uniform on 1..7) "
                f"and {k} OOD draws of a b^m a^r (m + r = 7, r uniform on 1..6), with replacement")
        return PromptSet(lang, ids, oods, desc)
    ws = _draw(rng, law["w"], k)
    desc = (f"{lang.name} ({lang.grammar}), published generator, seed {seed}: '([w' (ID) and ')[w' (OOD), {k} draws of w "
            f"with replacement from the published random Dyck-2 generator at length 6 ({len(law['w'])} primitive words, "
            "non-uniform)")
    return PromptSet(lang, tuple("([" + w for w in ws), tuple(")[" + w for w in ws), desc)
