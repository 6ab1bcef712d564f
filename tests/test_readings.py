"""The two readings of the companion paper (theory.conventions): the published code's L2 rules, its
prompt generators, both denominators of the rule metrics, and the exact chance levels."""

from __future__ import annotations

import itertools
import random
from collections import Counter
from fractions import Fraction

import pytest

from theory import conventions as conv
from theory.alphabet import Alphabet
from theory.chance import PUBLISHED_CHANCE, UniformModel, chance_levels, chance_table, default_budget, published_chance, rounds_to
from theory.errors import InvalidConvention, InvalidLanguage, InvalidPrompt
from theory.exact import FractionInterval
from theory.languages import LANGUAGES, PUBLISHED_L2, CountParityAfterLast, LedBlockOrder
from theory.prompts import PUBLISHED_DRAWS, PromptSet, published_draw_law, published_prompts
from theory.properties import Completion, score_completions


# ---- the published checkers, re-read from their definitions (an independent oracle) ---------------
def published_r1(word: str) -> bool:
    """#a after the last b is even (every a when there is no b)."""
    tail = word[word.rfind("b") + 1:]
    return tail.count("a") % 2 == 0


def published_r2(word: str) -> bool:
    """At least one b, and the first a after the last b (b+a*)."""
    if "b" not in word:
        return False
    return "a" not in word or word.index("a") > word.rindex("b")


def words(alphabet: str, up_to: int):
    for n in range(up_to + 1):
        for t in itertools.product(alphabet, repeat=n):
            yield "".join(t)


def test_published_l2_rules_agree_with_the_published_checkers_on_every_short_word():
    for w in words("ab", 10):
        assert PUBLISHED_L2.r1.accepts(w) == published_r1(w), w
        assert PUBLISHED_L2.r2.accepts(w) == published_r2(w), w
        assert PUBLISHED_L2.contains(w) == (published_r1(w) and published_r2(w)), w


def test_the_two_readings_of_l2_differ_where_the_issue_says():
    paper = LANGUAGES["L2"]
    assert PUBLISHED_L2.r1.accepts("ab") and not paper.r1.accepts("ab")  # the a before the last b
    assert paper.contains("aa") and not PUBLISHED_L2.contains("aa")  # no b
    assert paper.contains("") and not PUBLISHED_L2.contains("")
    differ = sum(paper.r1.accepts(w) != PUBLISHED_L2.r1.accepts(w) for w in words("ab", 8))
    assert differ > 100  # about half of the short words


def test_published_l2_completability_matches_a_search():
    for u in words("ab", 7):
        found = any(PUBLISHED_L2.contains(u + z) for z in words("ab", 3))
        assert PUBLISHED_L2.is_id(u) == found, u
        n = PUBLISHED_L2.shortest_completion_length(PUBLISHED_L2.run(u))
        if found:
            assert n is not None and any(PUBLISHED_L2.contains(u + z) for z in words("ab", n) if len(z) == n)
            assert not any(PUBLISHED_L2.contains(u + z) for z in words("ab", n - 1)) if n else True


def test_the_new_rules_refuse_bad_parameters():
    ab = Alphabet("ab")
    with pytest.raises(InvalidLanguage, match="both 'a'"):
        CountParityAfterLast("x", ab, "a", "a")
    with pytest.raises(InvalidLanguage, match="'c'"):
        CountParityAfterLast("x", ab, "a", "c")
    with pytest.raises(InvalidLanguage, match="order"):
        LedBlockOrder("x", ab, "b")


# ---- conventions -----------------------------------------------------------------------------------
def test_a_convention_name_is_checked_and_named():
    with pytest.raises(InvalidConvention, match="'publshed'.*did you mean 'published'"):
        conv.check_convention("publshed")
    with pytest.raises(InvalidConvention):
        conv.language("L3", "code")
    with pytest.raises(InvalidLanguage):
        conv.language("L7", "paper")


def test_languages_agree_except_l2():
    for name in LANGUAGES:
        same = conv.language(name, "paper") == conv.language(name, "published")
        assert same == (name != "L2"), name
    assert conv.convention_of(PUBLISHED_L2) == ("published",)
    assert conv.convention_of(LANGUAGES["L3"]) == ("paper", "published")
    assert set(conv.DIFFERENCES) == set(LANGUAGES)


# ---- the published prompt generators ---------------------------------------------------------------
def simulate_published_dyck2(rng: random.Random, n: int = 6) -> str:
    """The published generator, step by step as described (an independent sampler)."""
    while True:
        word, stack = "", ""
        while len(word) < n:
            if not stack:
                choice = rng.choice("([")
            else:
                close = ")" if stack[-1] == "(" else "]"
                choice = rng.choice(["(", "[", close])
                if len(word) + len(stack) >= n:
                    choice = close
            if choice in "([":
                word, stack = word + choice, stack + choice
            else:
                word, stack = word + choice, stack[:-1]
            if not stack:
                break
        if len(word) == n:
            return word


def test_the_dyck2_law_is_exact_and_matches_the_generator():
    law = published_draw_law("L4")["w"]
    assert law == published_draw_law("L6")["w"]
    assert sum(law.values()) == 1 and len(law) == 16
    dyck = LANGUAGES["L4"]
    for w, q in law.items():
        assert dyck.contains(w) and not any(dyck.contains(w[:i]) for i in range(2, 6)), w  # primitive
        assert q == (Fraction(3, 32) if w[2] in "([" else Fraction(1, 32)), w
    rng, draws = random.Random(1), 16_000
    counts = Counter(simulate_published_dyck2(rng) for _ in range(draws))
    assert set(counts) <= set(law)
    for w, q in law.items():
        sd = (float(q) * (1 - float(q)) / draws) ** 0.5
        assert abs(counts[w] / draws - float(q)) < 5 * sd, w


def test_l2_laws():
    law = published_draw_law("L2")
    assert sorted(law["id"]) == sorted("b" * (8 - r) + "a" * r for r in range(1, 8))
    assert sorted(law["ood"]) == sorted("a" + "b" * (7 - r) + "a" * r for r in range(1, 7))
    assert all(sum(v.values()) == 1 for v in law.values())
    assert published_draw_law("L3") == {}


def test_published_prompts_are_seeded_with_replacement_and_split_exactly():
    ps = published_prompts(PUBLISHED_L2, seed=3)
    assert len(ps.id_prompts) == len(ps.ood_prompts) == PUBLISHED_DRAWS["L2"]
    assert len(set(ps.prompts)) <= 13  # duplicates kept
    assert ps == published_prompts(PUBLISHED_L2, seed=3)
    assert ps.prompts != published_prompts(PUBLISHED_L2, seed=4).prompts
    for name in ("L4", "L6"):
        q = published_prompts(name, seed=0)
        assert [u[2:] for u in q.id_prompts] == [u[2:] for u in q.ood_prompts]
        assert len(q.id_prompts) == 32 and all(u[2:] in published_draw_law(name)["w"] for u in q.id_prompts)
    assert published_prompts("L3").prompts == conv.prompt_set("L3", "paper").prompts
    with pytest.raises(InvalidPrompt, match="seed"):
        published_prompts("L4", seed="0")  # type: ignore[arg-type]


def test_the_published_prompt_set_follows_the_convention():
    assert conv.prompt_set("L2", "published").language == PUBLISHED_L2
    assert conv.prompt_set("L2", "paper").language == LANGUAGES["L2"]
    assert len(conv.prompt_set("L2", "paper")) == 256


# ---- both denominators and the R2-completion word ----------------------------------------------------
def test_both_denominators():
    lang = LANGUAGES["L3"]
    ps = PromptSet(lang, ("aab",), ("ba", "bba", "abba"))
    comps = {"aab": Completion("b", True, False), "ba": Completion("ab", True, False), "bba": Completion("", False, False),
             "abba": Completion("b", True, False)}
    m = score_completions(lang, ps, comps)
    assert (m.ood_r1, m.ood_r1_finished) == (Fraction(1, 3), Fraction(1, 2))  # "baab" holds, "abbab" fails
    assert (m.ood_r2_completion, m.ood_r2_completion_finished) == (Fraction(2, 3), Fraction(1))
    assert m.ood_finished == 2 and m.id_r1 == m.id_r1_finished == 1 and m.convention == "paper"
    none_done = score_completions(lang, ps, {u: Completion("", False, False) for u in ps.prompts})
    assert none_done.ood_r1 == 0 and none_done.ood_r1_finished is None


def test_duplicates_count_twice():
    lang = PUBLISHED_L2
    ps = PromptSet(lang, (), ("abb", "abb", "aba"))
    comps = {"abb": Completion("", True, False), "aba": Completion("", True, False)}
    m = score_completions(lang, ps, comps, convention="published")
    assert m.ood_r1 == Fraction(2, 3)  # "abb" (twice): no a after the last b; "aba": one


def test_the_published_dyck_r2_completion_reads_w_and_the_completion():
    lang = LANGUAGES["L4"]
    ps = PromptSet(lang, (), (")[(",))
    comps = {")[(": Completion(")]", True, False)}
    paper = score_completions(lang, ps, comps, convention="paper")
    published = score_completions(lang, ps, comps, convention="published")
    assert paper.ood_r2_completion == 0  # ")]" alone: a closer first
    assert published.ood_r2_completion == 1  # "(" + ")]" balances the parentheses
    assert paper.ood_r1 == published.ood_r1 == 1


def test_a_language_of_the_other_reading_is_refused():
    ps = conv.prompt_set("L2", "paper")
    with pytest.raises(InvalidConvention, match="L2"):
        score_completions(LANGUAGES["L2"], ps, {u: Completion("", True, False) for u in ps.prompts}, convention="published")


# ---- chance levels ---------------------------------------------------------------------------------
def sqrt5_bounds() -> tuple[Fraction, Fraction]:
    lo, hi = Fraction(2236067977, 10 ** 9), Fraction(2236067978, 10 ** 9)
    assert lo * lo < 5 < hi * hi
    return lo, hi


def test_dyck_chance_is_the_closed_form():
    lo5, hi5 = sqrt5_bounds()
    ch = chance_levels("L4", "published")
    closed = FractionInterval((7 - 3 * hi5) / 2, (7 - 3 * lo5) / 2)  # (7 - 3√5)/2 ≈ 0.1459
    assert ch.ood_r1.lo <= closed.hi and closed.lo <= ch.ood_r1.hi
    assert ch.ood_r1.hi - ch.ood_r1.lo <= Fraction(1, 10 ** 6)
    assert not rounds_to(0.127, 3, ch.ood_r1)
    r2 = FractionInterval((3 - hi5) / 2, (3 - lo5) / 2)  # from depth 0: (3 - √5)/2
    assert ch.ood_r2c.lo <= r2.hi and r2.lo <= ch.ood_r2c.hi


def test_anbn_chance_levels():
    ch = chance_levels("L3")
    assert ch.ood_r2c.lo <= Fraction(3, 4) <= ch.ood_r2c.hi
    assert rounds_to(0.154, 3, ch.ood_r1) and not rounds_to(0.444, 3, ch.ood_r2c)
    assert round(4 / 9, 3) == 0.444  # the published figure is the four-outcome value, as its note says


def test_a_shorter_budget_gives_a_wider_bracket_that_still_holds():
    wide, tight = chance_levels("L3", max_new_tokens=10), chance_levels("L3")
    for m in ("id_r1", "ood_r1", "ood_r2c"):
        a, b = wide.value(m), tight.value(m)
        assert a.lo <= b.lo and b.hi <= a.hi and a.hi - a.lo > b.hi - b.lo


def test_chance_refuses_bad_input():
    with pytest.raises(InvalidPrompt, match="L3"):
        chance_levels("L2", prompts=conv.prompt_set("L3"))
    with pytest.raises(InvalidPrompt, match="published"):
        chance_levels("L2", "published", prompts=conv.prompt_set("L2", "paper"))
    with pytest.raises(InvalidPrompt, match="unknown metric"):
        chance_levels("L1").value("ood_r3")


def test_the_chance_table_and_the_published_figures():
    assert default_budget(Alphabet("ab")) >= 35
    rows = {(r.language, r.metric): r for r in chance_table(("L1", "L3", "L6"), "published")}
    assert rows[("L1", "ood_r1")].agrees and rows[("L3", "ood_r1")].agrees
    assert rows[("L6", "ood_r1")].agrees is False and "bounded-length" in rows[("L6", "ood_r1")].note
    assert rows[("L3", "id_r1")].published is None and rows[("L3", "id_r1")].agrees is None
    assert all(published_chance(p.language, p.metric) is p for p in PUBLISHED_CHANCE)


def test_the_uniform_model_is_uniform():
    m = UniformModel(Alphabet("abc"))
    assert set(m.next_token("ab").probs) == {Fraction(1, 4)} and m.state_key("a") == m.state_key("bb")


def test_a_language_of_the_users_own_scores_under_either_convention():
    from theory.languages import CountParity, IndependentIntersection, StartsWith

    ab = Alphabet("ab")
    mine = IndependentIntersection("mine", "mine", ab, CountParity("#a even", ab, "a"), StartsWith("starts with b", ab, "b"),
                                   "my L1")
    ps = PromptSet(mine, ("b",), ("ab",))
    comps = {"b": Completion("", True, False), "ab": Completion("a", True, False)}
    for c in ("paper", "published"):
        m = score_completions(mine, ps, comps, convention=c)
        assert m.ood_r1 == 1 and m.id_r1 == 1 and m.convention == c
    assert conv.r2_completion_offset("mine", "published") is None
    assert conv.r2_completion_offset("parentheses_and_brackets", "published") == 2


def test_chance_levels_of_a_language_of_the_users_own():
    from theory.languages import CountParity, IndependentIntersection, StartsWith

    ab = Alphabet("ab")
    mine = IndependentIntersection("mine", "mine", ab, CountParity("#a even", ab, "a"), StartsWith("starts with b", ab, "b"),
                                   "my L1")
    ch = chance_levels(mine, prompts=PromptSet(mine, ("b",), ("ab",)))
    assert ch.ood_r2c.lo <= Fraction(1, 3) <= ch.ood_r2c.hi and ch.language == "mine"
    with pytest.raises(InvalidPrompt, match="give its prompts"):
        chance_levels(mine)


def test_the_evaluated_prompts_chance_is_computed_once_and_handed_out_fresh():
    first = chance_levels("L3")
    first.ood_r1.hi = Fraction(7)  # endpoints are plain attributes: a caller may change them
    again = chance_levels("L3")
    assert again.ood_r1 is not first.ood_r1 and again.ood_r1.hi < 1
    assert again == chance_levels("L3", prompts=conv.prompt_set("L3"))  # the cached value is the computed one
