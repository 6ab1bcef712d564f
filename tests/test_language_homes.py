"""One home each for the language helpers: the budget-uniform data, the automaton helpers (shortest
completion, complement, callable adapters), the sⁿ…sⁿ word lists and the token-id layout."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from theory.alphabet import EOS, Alphabet
from theory.budget_data import BudgetWalk, budget_uniform
from theory.errors import InvalidBudget, InvalidLanguage, UnknownToken
from theory.languages import (
    LANGUAGES,
    Automaton,
    CallableRule,
    Complement,
    CountParity,
    EndsWith,
    RuleIntersection,
    as_automaton,
    block_words,
    get_language,
    rule_event,
)
from theory.strategies import words


def _automata():
    for lang in LANGUAGES.values():
        yield lang
        yield lang.r1
        yield lang.r2


def _brute_length(automaton, prefix: str, max_len: int):
    return next((len(z) for z in automaton.alphabet.words_up_to(max_len) if automaton.accepts(prefix + z)), None)


# ---- shortest completion -----------------------------------------------------------------------------
@pytest.mark.parametrize("automaton", list(_automata()), ids=lambda a: a.name)
def test_closed_form_completion_length_is_the_search(automaton):
    for w in automaton.alphabet.words_up_to(5 if len(automaton.alphabet) > 3 else 7):
        s = automaton.run(w)
        assert automaton.shortest_completion_length(s) == Automaton.shortest_completion_length(automaton, s), w


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(LANGUAGES)), st.data())
def test_completion_length_and_word_match_brute_force(name, data):
    lang = get_language(name)
    prefix = data.draw(words(lang.alphabet, 4))
    n = lang.shortest_completion_length(lang.run(prefix))
    brute = _brute_length(lang, prefix, 6)
    if brute is not None:
        assert n == brute
    else:
        assert n is None or n > 6
    z = lang.shortest_completion(prefix, limit=6)
    assert z == next((w for w in lang.alphabet.words_up_to(6) if lang.accepts(prefix + w)), None)
    bad = lang.r1.shortest_completion(prefix, accept=False, limit=4)
    assert bad == next((w for w in lang.alphabet.words_up_to(4) if not lang.r1.accepts(prefix + w)), None)


def test_default_search_decides_a_rule_intersection():
    ab = Alphabet("ab")
    lang = RuleIntersection("E", "even-ends-a", ab, CountParity("#a even", ab, "a"), EndsWith("ends with a", ab, "a"), "")
    assert lang.shortest_completion_length(lang.run("ab")) == 1  # one a fixes both rules
    assert lang.shortest_completion_length(lang.run("aa")) == 0
    assert lang.shortest_completion_length(lang.run("b")) == 2


def test_shortest_completion_refuses_a_bad_limit():
    with pytest.raises(InvalidBudget, match="search limit -1"):
        get_language("L3").shortest_completion("ab", limit=-1)


# ---- complement and callable adapters ----------------------------------------------------------------
def test_complement_accepts_exactly_the_rejected_words():
    r1 = get_language("L3").r1
    comp = r1.complement()
    assert isinstance(comp, Complement) and comp.name == f"not {r1.name}"
    for w in r1.alphabet.words_up_to(6):
        assert comp.accepts(w) == (not r1.accepts(w))


def test_callable_rules_and_events():
    ab = Alphabet("ab")

    def even_b(w: str) -> bool:
        return w.count("b") % 2 == 0

    auto = as_automaton(even_b, ab)
    assert isinstance(auto, CallableRule) and auto.name == "even_b"
    assert [auto.accepts(w) for w in ("", "b", "bab")] == [True, False, True]
    assert as_automaton(get_language("L3"), ab) is get_language("L3")
    violate = rule_event(even_b, ab, satisfy=False)
    assert violate.accepts("b") and not violate.accepts("bb")
    with pytest.raises(InvalidLanguage, match="over 'abc'"):
        as_automaton(get_language("L5"), ab)
    with pytest.raises(InvalidLanguage, match="neither"):
        as_automaton(3, ab)


# ---- budget-uniform data ----------------------------------------------------------------------------
def test_budget_walk_count_sample_and_rows_agree():
    walk = BudgetWalk("L6", 6)
    P = budget_uniform("L6", 6)
    support = dict(P.sequences())
    assert walk.count() == len(support) == len(dict(walk.distribution().sequences()))
    rng = random.Random(0)
    assert all(walk.sample(rng) in support for _ in range(50))
    masses = dict(zip(P.alphabet.outcomes, P.outcome_masses("")))
    assert walk.row("") == {t: m for t, m in masses.items() if m}
    assert set(walk.row("()")) == {"(", "[", EOS}  # ")" or "]" would leave no way back


def test_budget_walk_refuses_an_impossible_budget():
    with pytest.raises(InvalidLanguage, match="no non-empty word of length <= 1"):
        BudgetWalk("L4", 1)  # the shortest non-empty Dyck word has two symbols
    with pytest.raises(InvalidBudget, match="max_length True"):
        BudgetWalk("L1", True)


def test_the_old_names_are_the_one_home():
    import constructions.rule_extrapolation as re_mod
    import empirical.data as data_mod
    import theory.budget_data as budget_mod
    import theory.languages as lang_mod

    assert re_mod.budget_uniform is budget_mod.budget_uniform
    assert re_mod.shortest_continuation is lang_mod.shortest_continuation
    assert re_mod.DEFAULT_SEARCH_LIMIT == lang_mod.DEFAULT_SEARCH_LIMIT
    assert not hasattr(data_mod, "_Walk") and not hasattr(data_mod, "counted_words")


# ---- word lists -------------------------------------------------------------------------------------
def test_block_words():
    assert block_words("ab", 3) == ("ab", "aabb", "aaabbb")
    assert block_words("aba", 2) == ("aba", "aabbaa")
    assert block_words("abc", 0) == ()
    from constructions.finetuning.task import anbn_words, anbnan_words
    from theory.symbolic import uniform_anbncn

    assert anbn_words(4) == block_words("ab", 4) and anbnan_words(3) == block_words("aba", 3)
    assert {x for x, _ in uniform_anbncn(3).sequences()} == set(block_words("abc", 3))
    with pytest.raises(InvalidBudget, match="n_max -1"):
        block_words("ab", -1)
    with pytest.raises(InvalidLanguage, match="blocks ''"):
        block_words("", 2)


# ---- token ids --------------------------------------------------------------------------------------
@pytest.mark.parametrize("symbols", ["ab", "abc", "()[]", "x"])
def test_token_id_layout_is_the_alphabets(symbols):
    from constructions.transformer import TransformerConfig
    from empirical.data import Vocab

    a = Alphabet(symbols)
    k = len(a)
    assert (a.eos_id, a.sos_id, a.pad_id, a.n_input_ids, a.n_output_ids) == (k, k + 1, k + 2, k + 3, k + 1)
    assert a.outcomes.index(EOS) == a.eos_id and a.n_output_ids == len(a.outcomes)
    cfg, vocab = TransformerConfig(alphabet=symbols), Vocab(a)
    assert (cfg.eos_id, cfg.sos_id, cfg.pad_id, cfg.n_inputs, cfg.n_outputs) == \
           (a.eos_id, a.sos_id, a.pad_id, a.n_input_ids, a.n_output_ids)
    assert (vocab.eos, vocab.sos, vocab.pad, vocab.n_inputs, vocab.n_outputs) == \
           (a.eos_id, a.sos_id, a.pad_id, a.n_input_ids, a.n_output_ids)
    assert a.token_ids(symbols[::-1]) == list(range(k))[::-1] == vocab.ids(symbols[::-1])


def test_token_ids_name_an_unknown_token():
    with pytest.raises(UnknownToken, match="'c' at position 1"):
        Alphabet("ab").token_ids("acb")
