"""Proposition 1: the witness builder, its policies and data, and the checks that must fail."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from constructions.rule_extrapolation import (
    CASES,
    RulePolicy,
    budget_uniform,
    build_case,
    complete_ood_with,
    ordered_counts_data,
    rule_extrapolation_case,
    shortest_continuation,
)
from theory.alphabet import EOS, Alphabet
from theory.data import FiniteDistribution
from theory.errors import InapplicableOption, InvalidBudget, InvalidDistribution, InvalidLanguage, InvalidPrompt, UnknownToken
from theory.languages import IndependentIntersection, StartsWith, get_language
from theory.losses import kl_divergence
from theory.models import PatchedModel, uniform_model
from theory.properties import greedy_completion
from theory.strategies import language_data_with_ood_prompts, words


@pytest.mark.parametrize("case", CASES)
def test_every_case_is_verified_with_exact_zero_kl_and_opposite_behaviour(case):
    cert = build_case(case).certificate()
    assert cert.verified, cert.reason
    q = cert.quantities
    assert q["ood_r1_q1"]["exact"] == "1" and q["ood_r1_q2"]["exact"] == "0"
    assert q["sampled_r1_q1"]["exact"] == "1" and q["sampled_r1_q2"]["exact"] == "0"  # exact, not bracketed
    assert "ood_r2_completion_q1" in q and "ood_r2_completion_q2" in q


def test_paper_sizes_and_prompt_counts():
    l3, l5 = build_case("L3"), build_case("L5")
    assert sum(1 for _ in l3.data.sequences()) == 128 and len(l3.ood_prompts) == 251
    assert sum(1 for _ in l5.data.sequences()) == 85 and len(l5.ood_prompts) == 239
    assert max(len(x) for x, _ in l5.data.sequences()) == 255


def test_policies_follow_theory_md_examples():
    r1 = get_language("L3").r1
    completer, violator = RulePolicy(r1, satisfy=True), RulePolicy(r1, satisfy=False)
    assert greedy_completion(completer, "bbbab", 10).text == "aaa"  # the minority letter until #a = #b
    assert greedy_completion(violator, "abab", 10).text == "a"  # one surplus letter, then EOS
    assert greedy_completion(violator, "bbb", 10).text == ""  # already violates: EOS


@settings(max_examples=60)
@given(st.sampled_from(["L1", "L2", "L3", "L4", "L5", "L6"]), st.data())
def test_shortest_continuation_matches_brute_force(name, data):
    lang = get_language(name)
    rule = lang.r1
    prefix = data.draw(words(lang.alphabet, 4))
    z = shortest_continuation(rule, prefix, lambda s: s is not None and rule.accepts_state(s), limit=5)
    brute = next((w for w in lang.alphabet.words_up_to(5) if rule.accepts(prefix + w)), None)
    assert z == brute


@settings(max_examples=40)
@given(language_data_with_ood_prompts(max_len=6))
def test_builder_gives_equal_loss_and_opposite_ood_behaviour_on_random_instances(drawn):
    lang, P, prompts = drawn
    assume(any(lang.r1.completable(u) for u in prompts))
    case = rule_extrapolation_case(P, lang, sorted(prompts))
    assert kl_divergence(P, case.completer).is_zero and kl_divergence(P, case.violator).is_zero
    cert = case.certificate()
    assert cert.verified, cert.reason


def test_leak_onto_a_support_prefix_is_falsified_and_named():
    case = build_case("L3", n_max=8)
    leaky = PatchedModel(case.violator, {"aaab": {"a": Fraction(1, 2), "b": Fraction(1, 2)}}, name="leaky")
    cert = case.with_models(violator=leaky).certificate()
    assert cert.status.value == "falsified"
    assert "KL(P || Q2) exceeds" in cert.reason and "'aaab'" in cert.reason


def test_two_completers_have_no_gap_and_are_falsified():
    case = build_case("L1")
    cert = case.with_models(violator=case.completer).certificate()
    assert cert.status.value == "falsified" and "gap" in cert.reason


def test_budget_uniform_support_is_the_bounded_language():
    lang = get_language("L6")
    P = budget_uniform(lang, 6)
    support = {x for x, _ in P.sequences()}
    assert support == {w for w in lang.alphabet.words_up_to(6) if w and lang.contains(w)}
    assert sum(p for _, p in P.sequences()) == 1


def test_complete_ood_with_a_function_policy():
    P = ordered_counts_data("L3", 3)
    Q = complete_ood_with(P, lambda u: {EOS: 1})
    assert kl_divergence(P, Q).is_zero and Q.next_token("ba").prob(EOS) == 1
    with pytest.raises(InvalidDistribution, match="off-support model"):
        complete_ood_with(P, uniform_model(Alphabet("abc")))


# ---- bad input -------------------------------------------------------------------------------------
def test_id_prompt_passed_as_ood_is_refused():
    P = ordered_counts_data("L3", 4)
    with pytest.raises(InvalidPrompt, match="'aab'"):
        rule_extrapolation_case(P, "L3", ["ba", "aab"])


def test_prompt_on_the_support_is_refused():
    P = FiniteDistribution.uniform(Alphabet("ab"), ["ab", "ba"])  # 'ba' is not in L3: the data is wrong
    with pytest.raises(InvalidPrompt, match="'b'.*on the support"):
        rule_extrapolation_case(P, "L3", ["b"])
    with pytest.raises(InvalidDistribution, match="'ba'.*not in L3"):
        rule_extrapolation_case(P, "L3", ["bb"])


def test_contradicting_rules_give_an_empty_language_error():
    ab = Alphabet("ab")
    empty = IndependentIntersection("E", "empty", ab, StartsWith("starts with a", ab, "a"),
                                    StartsWith("starts with b", ab, "b"), "contradiction")
    with pytest.raises(InvalidLanguage, match="no non-empty word of length <= 8"):
        budget_uniform(empty, 8)


def test_other_bad_inputs():
    with pytest.raises(InvalidLanguage, match="'L7'"):
        build_case("L7")
    with pytest.raises(InapplicableOption, match="n_max"):
        build_case("L1", n_max=4)
    with pytest.raises(InvalidBudget):
        build_case("L3", n_max=0)
    with pytest.raises(InvalidBudget):
        budget_uniform("L1", -1)
    with pytest.raises(UnknownToken):
        rule_extrapolation_case(ordered_counts_data("L3", 2), "L3", ["bx"])
    with pytest.raises(InvalidPrompt, match="single string"):
        rule_extrapolation_case(ordered_counts_data("L3", 2), "L3", "ba")
    with pytest.raises(InvalidBudget):
        RulePolicy(get_language("L3").r1, satisfy=True, search_limit=0)


def test_budget_uniform_is_the_experiments_data():
    from empirical.data import language_data

    for name in ("L1", "L2", "L4", "L6"):
        ours, theirs = budget_uniform(name, 8), language_data(name, max_length=8).distribution
        assert dict(ours.sequences()) == dict(theirs.sequences()), name
