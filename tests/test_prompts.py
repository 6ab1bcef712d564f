"""Prompt sets: the paper's counts, the L4/L6 constructions, exact splits and typed errors."""

import re
from itertools import product

import pytest
from hypothesis import given
from hypothesis import strategies as st

from theory.errors import InvalidLanguage, InvalidPrompt, UnknownToken
from theory.languages import LANGUAGES
from theory.prompts import PromptSet, bracket_words, check_ood, paper_prompts, split_prompts


def dyck_prefix(w: str, kinds: str) -> bool:
    """Independent oracle: ``w`` is a prefix of a balanced word (nested together if kinds == 'nested',
    each kind on its own if 'separate')."""
    if kinds == "nested":
        stack = []
        for t in w:
            if t in "([":
                stack.append(t)
            elif not stack or stack.pop() != {")": "(", "]": "["}[t]:
                return False
        return True
    for o, c in ("()", "[]"):
        d = 0
        for t in w:
            d += (t == o) - (t == c)
            if d < 0:
                return False
    return True


def test_l1_to_l3_and_l5_counts_and_members():
    expected = {"L1": (128, 128), "L2": (9, 247), "L3": (5, 251), "L5": (4, 239)}
    for name, (n_id, n_ood) in expected.items():
        ps = paper_prompts(name)
        assert (len(ps.id_prompts), len(ps.ood_prompts)) == (n_id, n_ood), name
        assert len(set(ps.prompts)) == len(ps)
    assert paper_prompts("L3").id_prompts == ("aaaaaaaa", "aaaaaaab", "aaaaaabb", "aaaaabbb", "aaaabbbb")
    assert paper_prompts("aNbNcN").id_prompts == ("aaaaa", "aaaab", "aaabb", "aabbc")
    assert all(u.startswith("b") for u in paper_prompts("L1").id_prompts)
    assert set(paper_prompts("L2").id_prompts) == {"b" * k + "a" * (8 - k) for k in range(9)}


@pytest.mark.parametrize("name", ["L4", "L6"])
def test_bracket_prompts_are_paired_and_classified(name):
    lang = LANGUAGES[name]
    kinds = "nested" if name == "L4" else "separate"
    ps = paper_prompts(name, seed=3)
    assert len(ps.id_prompts) == len(ps.ood_prompts) == 64
    for i, o in zip(ps.id_prompts, ps.ood_prompts):
        assert i[:2] == "([" and o[:2] == ")[" and i[2:] == o[2:] and len(i) == 8
        assert dyck_prefix(i, kinds) and not dyck_prefix(o, kinds)
        assert dyck_prefix(o.replace("(", "").replace(")", ""), "nested")  # R1 ([] only) still completable
    assert ps == paper_prompts(name, seed=3) and ps != paper_prompts(name, seed=4)
    # exhaustive: every eligible w, counted by the independent oracle
    expect = ["".join(w) for w in product("()[]", repeat=6) if dyck_prefix("([" + "".join(w), kinds)]
    full = paper_prompts(name, exhaustive=True)
    assert [u[2:] for u in full.id_prompts] == expect == list(bracket_words(lang))
    assert len(expect) == (684 if name == "L4" else 2170)


def test_dyck2_w_kind_is_the_papers_code():
    full = paper_prompts("L4", w_kind="dyck2", exhaustive=True)
    assert len(full.id_prompts) == 40  # Catalan(3) · 2³ balanced Dyck-2 words of length 6
    assert all(LANGUAGES["L4"].contains(u[2:]) for u in full.id_prompts)
    assert len(paper_prompts("L6", w_kind="dyck2").id_prompts) == 32
    with pytest.raises(InvalidPrompt, match=r"n=41"):
        paper_prompts("L4", w_kind="dyck2", n=41)
    with pytest.raises(InvalidPrompt, match="w_kind"):
        paper_prompts("L4", w_kind="random")
    with pytest.raises(InvalidPrompt, match="exhaustive"):
        paper_prompts("L3", n=10)


@given(st.sampled_from(list(LANGUAGES)), st.data())
def test_split_matches_brute_force(name, data):
    lang = LANGUAGES[name]
    prompts = data.draw(st.lists(st.text(alphabet=lang.alphabet.symbols, max_size=6), max_size=8))
    ps = split_prompts(name, prompts)
    assert sorted(ps.prompts) == sorted(prompts)  # a split: nothing lost, nothing added, duplicates kept
    oracle = {
        "L1": lambda u: u == "" or u.startswith("b"),
        "L2": lambda u: re.fullmatch("b*a*", u) is not None,
        "L3": lambda u: re.fullmatch("a*b*", u) is not None and u.count("b") <= u.count("a"),
        "L4": lambda u: dyck_prefix(u, "nested"),
        "L5": lambda u: re.fullmatch("a*b*c*", u) is not None and (
            u.count("b") <= u.count("a") if "c" not in u else u.count("a") == u.count("b") >= u.count("c")),
        "L6": lambda u: dyck_prefix(u, "separate"),
    }[name]
    assert all(oracle(u) for u in ps.id_prompts) and not any(oracle(u) for u in ps.ood_prompts)


def test_check_ood_and_errors():
    assert check_ood("L3", ["ba", "abab"]) == ("ba", "abab")
    with pytest.raises(InvalidPrompt, match="'aab'"):
        check_ood("L3", ["ba", "aab", "ab"])
    with pytest.raises(UnknownToken, match="'c'"):
        check_ood("L3", ["ba", "bc"])
    with pytest.raises(InvalidPrompt, match="single string"):
        split_prompts("L3", "abab")
    with pytest.raises(InvalidLanguage, match="'L9'"):
        split_prompts("L9", ["a"])
    with pytest.raises(InvalidPrompt, match="'ba' is listed as ID"):
        PromptSet(LANGUAGES["L3"], ("ab", "ba"), ())
    with pytest.raises(InvalidPrompt, match="'ab' is listed as OOD"):
        PromptSet(LANGUAGES["L3"], (), ("ab",))
