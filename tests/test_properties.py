"""Greedy and sampled rule properties, computed exactly, against hand computations and enumeration."""

from fractions import Fraction
from itertools import product

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.oracles import LANG_ORACLES, RULE_ORACLES
from theory.alphabet import EOS, Alphabet
from theory.certificate import Status
from theory.data import FiniteDistribution
from theory.errors import InvalidBudget, InvalidLanguage, InvalidPrompt, UnknownToken
from theory.exact import FractionInterval
from theory.languages import LANGUAGES
from theory.models import FunctionModel, SupportExtension, TabularModel, sequence_probability
from theory.prompts import paper_prompts
from theory.properties import (
    Completion,
    GreedyRuleAccuracy,
    Property,
    SampledRuleProbability,
    greedy_completion,
    mean_sampled_rule_probability,
    rule_extrapolation_accuracy,
    rule_metrics,
    sampled_rule_probability,
)
from theory.strategies import rows
from theory.witness import Witness, check_witness

AB = Alphabet("ab")
L1, L3 = LANGUAGES["L1"], LANGUAGES["L3"]


def minority(u: str) -> dict:
    """R1-completer for aⁿbⁿ: emit the minority letter until #a = #b, then EOS."""
    a, b = u.count("a"), u.count("b")
    return {"b": 1} if a > b else {"a": 1} if b > a else {EOS: 1}


def surplus(u: str) -> dict:
    """R1-violator on length-8 prompts: one majority letter ('a' on a tie), then EOS."""
    if len(u) == 8:
        return {"a": 1} if u.count("a") >= u.count("b") else {"b": 1}
    return {EOS: 1}


COMPLETER, VIOLATOR = FunctionModel(AB, minority, "completer"), FunctionModel(AB, surplus, "violator")
HALF_A = FunctionModel(AB, lambda u: {"a": Fraction(1, 2), EOS: Fraction(1, 2)}, "half-a")  # never emits b


# ---- greedy ---------------------------------------------------------------------------------------
def test_greedy_completion_by_hand():
    assert greedy_completion(COMPLETER, "aaab", 5) == Completion("bb", True, False)
    assert greedy_completion(COMPLETER, "aaab", 2) == Completion("bb", False, False)  # EOS needs a 3rd token
    assert greedy_completion(COMPLETER, "ab", 0) == Completion("", False, False)
    uniform = FunctionModel(AB, lambda u: {"a": Fraction(1, 3), "b": Fraction(1, 3), EOS: Fraction(1, 3)})
    assert greedy_completion(uniform, "b", 3) == Completion("aaa", False, True)  # ties go to 'a'
    eos_first = FunctionModel(AB, lambda u: {"a": Fraction(1, 4), EOS: Fraction(3, 4)})
    assert greedy_completion(eos_first, "", 1) == Completion("", True, False)


def test_paper_metrics_of_completer_and_violator_on_anbn():
    ps = paper_prompts("L3")
    m = rule_metrics(COMPLETER, L3, ps, 9)  # the worst prompts (a⁸, b⁸) need 8 letters + EOS
    assert (m.id_r1, m.id_r2, m.ood_r1, m.ood_r2_completion) == (1, 1, 1, 1)
    assert (m.n_id, m.n_ood, m.id_finished, m.ood_finished, m.tied) == (5, 251, 5, 251, 0)
    short = rule_metrics(COMPLETER, L3, ps, 8)  # a⁸ and b⁸ are left unfinished: failures
    assert (short.id_r1, short.ood_r1, short.id_finished) == (Fraction(4, 5), Fraction(250, 251), 4)
    v = rule_metrics(VIOLATOR, L3, ps, 2)
    # ID: a^k b^(8-k) + 'a' breaks a*b* unless k = 8; #a = #b never holds.  OOD: one letter is in a*b*.
    assert (v.id_r1, v.id_r2, v.ood_r1, v.ood_r2_completion) == (0, Fraction(1, 5), 0, 1)
    ood = ps.ood_prompts
    assert rule_extrapolation_accuracy(COMPLETER, ood, L3.r1, 9) == 1
    assert rule_extrapolation_accuracy(VIOLATOR, ood, L3.r1, 9) == 0
    # "aaab" + "bb" satisfies R1, but only counts once EOS is emitted within the budget
    assert rule_extrapolation_accuracy(COMPLETER, ["aaab"], L3.r1, 2) == 0
    assert rule_extrapolation_accuracy(COMPLETER, ["aaab", "abbb"], L3.r1, 3) == 1
    assert rule_extrapolation_accuracy(COMPLETER, ["ba", "bbba"], L3.r2, 9) == 0  # a Rule other than R1
    assert rule_extrapolation_accuracy(COMPLETER, ["ab", "aab"], L3, 9) == 1  # a Language as the rule


# ---- the DP by hand -------------------------------------------------------------------------------
def test_dp_by_hand_geometric_parity():
    # a^k EOS with probability 2^-(k+1); #a even for even k: Σ_k even 2^-(k+1) = 2/3.
    for budget in range(0, 11):
        lo = sum((Fraction(1, 2 ** (k + 1)) for k in range(0, budget, 2)), Fraction(0))
        got = sampled_rule_probability(HALF_A, "", L1.r1, budget)
        assert got == FractionInterval(lo, lo + Fraction(1, 2 ** budget))
        assert got.lo <= Fraction(2, 3) <= got.hi
    # starts with b: 'a' kills the branch at once, so the answer is exactly 0 after one step
    assert sampled_rule_probability(HALF_A, "", L1.r2, 1) == FractionInterval(0)
    assert sampled_rule_probability(HALF_A, "", L1.r2, 0) == FractionInterval(0, 1)
    assert sampled_rule_probability(HALF_A, "a", L1, 5) == FractionInterval(0)  # OOD for L1: nothing to do


def test_node_budget_cut_and_zero_branches_skipped():
    asked = []
    spy = FunctionModel(AB, lambda u: asked.append(u) or {"a": Fraction(1, 2), EOS: Fraction(1, 2)})
    # expand "" (EOS ok: 1/2) and "a" (EOS at odd #a: fails); "aa" with mass 1/4 is left undecided
    assert sampled_rule_probability(spy, "", L1.r1, 10, node_budget=2) == FractionInterval(Fraction(1, 2), Fraction(3, 4))
    assert sampled_rule_probability(spy, "", L1.r1, 5).lo == Fraction(1, 2) + Fraction(1, 8) + Fraction(1, 32)
    assert asked == ["", "a", "aa", "aaa", "aaaa"]  # memoised rows; no 'b' branch was ever expanded


def test_state_key_merging_gives_the_same_answer_and_scales():
    third = {"a": Fraction(1, 3), "b": Fraction(1, 3), EOS: Fraction(1, 3)}
    plain = FunctionModel(AB, lambda u: third)
    merged = FunctionModel(AB, lambda u: third)
    merged.state_key = lambda u: 0  # stationary: the future never depends on the prefix
    for budget in range(7):
        assert sampled_rule_probability(plain, "b", L1, budget) == sampled_rule_probability(merged, "b", L1, budget)
    # e = 1/3 + e/3 + o/3, o = o/3 + e/3  ⇒  P(#a even at EOS) = 2/3; unfinished after B steps: (2/3)^B
    got = sampled_rule_probability(merged, "b", L1, 60)
    assert got.hi - got.lo == Fraction(2, 3) ** 60 and got.lo < Fraction(2, 3) < got.hi


def test_mean_over_prompts():
    got = mean_sampled_rule_probability(COMPLETER, ["ba", "bbb", "abab"], L3.r1, 5)
    assert got == FractionInterval(1)
    got = mean_sampled_rule_probability(HALF_A, ["", "a"], L1.r1, 0)
    assert got == FractionInterval(0, 1)
    assert mean_sampled_rule_probability(VIOLATOR, paper_prompts("L3").ood_prompts, L3.r1, 3) == FractionInterval(0)


# ---- the DP against enumeration (hypothesis) ---------------------------------------------------------
AB_AUTOMATA = [(LANGUAGES[n].r1, RULE_ORACLES[n][0]) for n in ("L1", "L2", "L3")] + \
              [(LANGUAGES[n].r2, RULE_ORACLES[n][1]) for n in ("L1", "L2", "L3")] + \
              [(LANGUAGES[n], LANG_ORACLES[n]) for n in ("L1", "L2", "L3")]


def enumerate_interval(model, prompt, auto, oracle, budget):
    """lo: Σ over finished z (|z| + 1 ≤ budget) of Q(z·EOS | prompt)·[oracle(prompt z)];
    hi − lo: Σ over |z| = budget of Q(z | prompt)·[prompt z completable]."""
    def path(z):
        p = Fraction(1)
        for t in range(len(z)):
            p *= model.next_token(prompt + z[:t]).prob(z[t])
        return p
    lo = sum((path(z) * model.next_token(prompt + z).prob(EOS)
              for n in range(budget) for z in map("".join, product("ab", repeat=n)) if oracle(prompt + z)), Fraction(0))
    left = sum((path(z) for z in map("".join, product("ab", repeat=budget)) if auto.completable(prompt + z)), Fraction(0))
    return FractionInterval(lo, lo + left)


@st.composite
def tabular(draw, depth=4, eos_beyond=False):
    table = {u: draw(rows(AB)) for u in AB.words_up_to(depth - 1)}
    default = {EOS: 1} if eos_beyond else draw(rows(AB))
    return TabularModel(AB, table, default=default)


@given(tabular(), st.text("ab", max_size=3), st.sampled_from(range(len(AB_AUTOMATA))), st.integers(0, 5))
def test_dp_equals_enumeration(model, prompt, which, budget):
    auto, oracle = AB_AUTOMATA[which]
    assert sampled_rule_probability(model, prompt, auto, budget) == enumerate_interval(model, prompt, auto, oracle, budget)


@given(st.dictionaries(st.sampled_from(["", "a", "b"]), rows(AB), min_size=3, max_size=3),
       st.text("ab", max_size=3), st.sampled_from(range(len(AB_AUTOMATA))), st.integers(0, 6))
def test_bigram_merging_equals_the_tree(bigram, prompt, which, budget):
    auto = AB_AUTOMATA[which][0]
    fn = lambda u: bigram[u[-1:]]  # noqa: E731
    tree, merged = FunctionModel(AB, fn), FunctionModel(AB, fn)
    merged.state_key = lambda u: u[-1:]
    assert sampled_rule_probability(tree, prompt, auto, budget) == sampled_rule_probability(merged, prompt, auto, budget)


@given(tabular(depth=4, eos_beyond=True), st.sampled_from(range(len(AB_AUTOMATA))), st.integers(1, 12))
def test_cut_intervals_are_rigorous(model, which, node_budget):
    # From the empty prompt every completion has ≤ 4 letters, so budget 5 decides everything exactly.
    auto, oracle = AB_AUTOMATA[which]
    true = sampled_rule_probability(model, "", auto, 5)
    assert true.exact
    assert true.lo == sum((sequence_probability(model, x) for x in AB.words_up_to(4) if oracle(x)), Fraction(0))
    prev = Fraction(0)
    for budget in range(6):
        for nb in (node_budget, 10**6):
            got = sampled_rule_probability(model, "", auto, budget, node_budget=nb)
            assert got.lo <= true.lo <= got.hi
        assert got.lo >= prev  # more budget never loses certified mass
        prev = got.lo


# ---- properties as objects, and a witness -----------------------------------------------------------
def test_property_objects_and_a_verified_witness():
    ood = paper_prompts("L3").ood_prompts
    greedy = GreedyRuleAccuracy(ood, L3.r1, 9)
    sampled = SampledRuleProbability(ood[:20], L3.r1, 9)
    assert isinstance(greedy, Property) and isinstance(sampled, Property)
    assert "#a = #b" in greedy.name and "251 prompts" in greedy.name
    assert (greedy(COMPLETER), greedy(VIOLATOR)) == (1, 0)
    assert (sampled(COMPLETER), sampled(VIOLATOR)) == (FractionInterval(1), FractionInterval(0))
    data = FiniteDistribution.uniform(AB, ["a" * n + "b" * n for n in range(1, 5)])
    w = Witness("prop1-anbn", "greedy rule extrapolation is non-identifiable", data,
                SupportExtension(data, COMPLETER), SupportExtension(data, VIOLATOR), greedy, greedy.name)
    assert check_witness(w).status == Status.VERIFIED


# ---- bad input ------------------------------------------------------------------------------------
def test_typed_errors_name_the_value():
    with pytest.raises(InvalidBudget, match="-1"):
        greedy_completion(COMPLETER, "ab", -1)
    with pytest.raises(InvalidBudget, match="True"):
        sampled_rule_probability(COMPLETER, "ab", L3.r1, True)
    with pytest.raises(InvalidBudget, match="node_budget 0"):
        sampled_rule_probability(COMPLETER, "ab", L3.r1, 3, node_budget=0)
    with pytest.raises(UnknownToken, match="'c'"):
        rule_extrapolation_accuracy(COMPLETER, ["ab", "abc"], L3.r1, 3)
    with pytest.raises(UnknownToken, match="'x'"):
        sampled_rule_probability(COMPLETER, "x", L3.r1, 3)
    with pytest.raises(InvalidLanguage, match=r"'#a = #b = #c'.*'abc'.*'ab'"):
        rule_extrapolation_accuracy(COMPLETER, ["ab"], LANGUAGES["L5"].r1, 3)
    with pytest.raises(InvalidLanguage, match="'L4'"):
        sampled_rule_probability(COMPLETER, "ab", LANGUAGES["L4"], 3)
    with pytest.raises(InvalidPrompt, match="empty"):
        mean_sampled_rule_probability(COMPLETER, [], L3.r1, 3)
    with pytest.raises(InvalidPrompt, match="L3, not L1"):
        rule_metrics(COMPLETER, L1, paper_prompts("L3"), 3)
    with pytest.raises(InvalidBudget, match="-2"):
        GreedyRuleAccuracy(["ab"], L3.r1, -2)
