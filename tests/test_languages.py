"""Rules and languages against brute-force oracles written independently (regex, counting, a stack; in
tests/oracles.py)."""

from functools import lru_cache
from itertools import product

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.oracles import LANG_ORACLES, RULE_ORACLES
from theory.alphabet import Alphabet
from theory.errors import InvalidLanguage, UnknownToken
from theory.languages import DEAD, LANGUAGES, Language, Rule, get_language


def all_words(alphabet: Alphabet, max_len: int):
    for n in range(max_len + 1):
        for w in product(alphabet.symbols, repeat=n):
            yield "".join(w)


def max_len_for(lang: Language) -> int:
    return 8 if len(lang.alphabet) <= 3 else 6


@pytest.mark.parametrize("name", list(LANGUAGES))
def test_membership_matches_oracles_on_all_short_words(name):
    lang = LANGUAGES[name]
    r1, r2 = RULE_ORACLES[name]
    n_in = 0
    for w in all_words(lang.alphabet, max_len_for(lang)):
        assert lang.r1.accepts(w) == r1(w), (lang.r1.name, w)
        assert lang.r2.accepts(w) == r2(w), (lang.r2.name, w)
        assert lang.contains(w) == LANG_ORACLES[name](w), (name, w)
        n_in += lang.contains(w)
    assert n_in > 1  # the oracle is not vacuous


# ---- completability against brute force ------------------------------------------------------------
# A prefix u is completable iff it is a prefix of some word of the (rule's or language's) set.  We
# enumerate that set up to a total length N by brute force and take all prefixes; this decides
# completable(u) exactly for |u| ≤ n provided every completable u of length ≤ n has a completion of
# length ≤ N − n.  Shortest completions need at most:
#   parity / starts-with / block order: 1 symbol;  matched (one kind) or Dyck-2: the depth ≤ |u|;
#   #a = #b: |u| (add the minority); #a = #b = #c: 2|u| (e.g. aᵏ needs bᵏcᵏ);
#   L1/L2: 2 symbols (a "b", then one "a");  aⁿbⁿ: |u| b's;  aⁿbⁿcⁿ: 3·max count − |u| ≤ 2|u|.
# So (n, N) = (6, 12) for {a,b}, (3, 9) for {a,b,c}, (4, 8) for ()[] are all sufficient.
BOUNDS = {2: (6, 12), 3: (3, 9), 4: (4, 8)}


@lru_cache(maxsize=None)
def words_tuple(symbols: str, max_len: int) -> tuple[str, ...]:
    return tuple(all_words(Alphabet(symbols), max_len))


def prefixes_of(words) -> set[str]:
    return {w[:i] for w in words for i in range(len(w) + 1)}


@pytest.mark.parametrize("name", list(LANGUAGES))
def test_completable_matches_brute_force(name):
    lang = LANGUAGES[name]
    n, big_n = BOUNDS[len(lang.alphabet)]
    universe = words_tuple(str(lang.alphabet), big_n)
    short = [w for w in universe if len(w) <= n]
    checks = [(lang, LANG_ORACLES[name]), (lang.r1, RULE_ORACLES[name][0]), (lang.r2, RULE_ORACLES[name][1])]
    for auto, oracle in checks:
        ok = prefixes_of(w for w in universe if oracle(w))
        results = {u: auto.completable(u) for u in short}
        assert results == {u: u in ok for u in short}, auto.name
        assert any(results.values())
        assert auto is not lang or not all(results.values())  # every language has dead prefixes


def test_closed_form_languages_completable_up_to_length_8():
    # aⁿbⁿ and aⁿbⁿcⁿ are enumerated directly; a prefix of length ≤ 8 needs a word of length ≤ 3·8.
    for name, k in (("L3", 2), ("L5", 3)):
        lang = LANGUAGES[name]
        ok = prefixes_of("".join(s * m for s in "abc"[:k]) for m in range(9))
        for u in all_words(lang.alphabet, 8 if k == 2 else 6):
            assert lang.completable(u) == (u in ok), (name, u)


def test_joint_completability_is_not_the_and_of_the_rules():
    l3 = get_language("anbn")
    assert l3.r1.completable("b") and l3.r2.completable("b") and not l3.completable("b")
    assert l3.r1.completable("aabbb") and l3.r2.completable("aabbb") and not l3.is_id("aabbb")
    l5 = LANGUAGES["L5"]
    assert not l5.completable("abbc") and l5.completable("aabbc") and not l5.completable("aabc")
    l4, l6 = LANGUAGES["L4"], LANGUAGES["L6"]
    for w in ("([)]", "[(])"):
        assert l4.r1.accepts(w) and l4.r2.accepts(w) and not l4.contains(w) and l6.contains(w)
    assert not l4.completable("([)") and l6.completable("([)")


def test_empty_word_convention():
    assert not LANGUAGES["L1"].contains("") and LANGUAGES["L1"].is_id("")
    for name in ("L2", "L3", "L4", "L5", "L6"):
        assert LANGUAGES[name].contains(""), name
    assert LANGUAGES["L2"].contains("aa") and not LANGUAGES["L2"].contains("a")


# ---- long words: hypothesis --------------------------------------------------------------------------
@st.composite
def language_and_word(draw, max_len=40):
    name = draw(st.sampled_from(list(LANGUAGES)))
    lang = LANGUAGES[name]
    return name, draw(st.text(alphabet=lang.alphabet.symbols, max_size=max_len))


@given(language_and_word())
def test_long_words_match_oracles(nw):
    name, w = nw
    lang = LANGUAGES[name]
    assert lang.contains(w) == LANG_ORACLES[name](w)
    assert lang.r1.accepts(w) == RULE_ORACLES[name][0](w)
    assert lang.r2.accepts(w) == RULE_ORACLES[name][1](w)


@st.composite
def member_word(draw):
    """A word of the language built constructively (not by the automata under test)."""
    name = draw(st.sampled_from(list(LANGUAGES)))
    n = draw(st.integers(0, 12))
    if name == "L1":
        w = "b" + "".join(draw(st.permutations("a" * (2 * (n // 2)) + "b" * n)))
    elif name == "L2":
        w = "b" * n + "aa" * draw(st.integers(0, 6))
    elif name == "L3":
        w = "a" * n + "b" * n
    elif name == "L5":
        w = "a" * n + "b" * n + "c" * n
    elif name == "L4":
        w = ""
        for _ in range(n):  # wrap or append a pair of a random kind: always a Dyck-2 word
            o, c = draw(st.sampled_from(["()", "[]"]))
            w = o + w + c if draw(st.booleans()) else w + o + c
    else:  # L6: a random interleaving of a balanced () word and a balanced [] word (crossings allowed)
        parts = []
        for o, c in ("()", "[]"):
            v = ""
            for _ in range(draw(st.integers(0, n))):
                v = o + v + c if draw(st.booleans()) else v + o + c
            parts.append(v)
        p, b, w = parts[0], parts[1], ""
        while p or b:
            if p and (not b or draw(st.booleans())):
                w, p = w + p[0], p[1:]
            else:
                w, b = w + b[0], b[1:]
    return name, w


@given(member_word(), st.data())
def test_every_prefix_of_a_member_is_id_and_states_are_hashable(nw, data):
    name, w = nw
    lang = LANGUAGES[name]
    assert LANG_ORACLES[name](w)  # the constructor is right
    assert lang.contains(w)
    state = lang.start()
    for i, t in enumerate(w):
        hash(state)
        assert lang.completable_state(state), (w, i)
        state = lang.step(state, t)
    assert lang.accepts_state(state)
    cut = data.draw(st.integers(0, len(w)))
    assert lang.is_id(w[:cut]) and not lang.is_ood(w[:cut])


@given(language_and_word(max_len=10), st.data())
def test_non_completable_prefixes_never_reach_the_language(nw, data):
    name, u = nw
    lang = LANGUAGES[name]
    z = data.draw(st.text(alphabet=lang.alphabet.symbols, max_size=12))
    if not lang.completable(u):
        assert not LANG_ORACLES[name](u + z)
        assert lang.run(u + z) is DEAD or not lang.accepts(u + z)


# ---- interface and errors -------------------------------------------------------------------------
def test_registry_and_lookup():
    assert list(LANGUAGES) == ["L1", "L2", "L3", "L4", "L5", "L6"]
    grammars = ["baN", "bbaN", "aNbN", "parentheses_and_brackets", "aNbNcN", "not_nested_parentheses_and_brackets"]
    for name, g in zip(LANGUAGES, grammars):
        assert get_language(name) is LANGUAGES[name] and get_language(g) is LANGUAGES[name]
        assert LANGUAGES[name].grammar == g
        assert isinstance(LANGUAGES[name].r1, Rule) and isinstance(LANGUAGES[name], Language)
    assert get_language("anbn") is LANGUAGES["L3"] and get_language("l5") is LANGUAGES["L5"]
    with pytest.raises(InvalidLanguage, match=r"'L7'.*L1 \(baN\).*aNbNcN"):
        get_language("L7")


def test_bad_tokens_are_named():
    l3 = LANGUAGES["L3"]
    with pytest.raises(UnknownToken, match=r"'c' at position 2"):
        l3.contains("abc")
    with pytest.raises(UnknownToken, match="'x'"):
        l3.step(l3.start(), "x")
    with pytest.raises(UnknownToken):
        l3.r1.completable("a(")
    assert l3.step(DEAD, "a") is DEAD


def test_rule_construction_errors():
    from theory.languages import BlockOrder, EqualCounts, StartsWith

    with pytest.raises(InvalidLanguage, match="'z'"):
        StartsWith("starts with z", Alphabet("ab"), "z")
    with pytest.raises(InvalidLanguage, match="order"):
        BlockOrder("a*", Alphabet("ab"), "a")
    with pytest.raises(InvalidLanguage):
        EqualCounts("#a", Alphabet("ab"), "a")
