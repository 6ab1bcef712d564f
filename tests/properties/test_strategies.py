"""The public strategies draw valid objects and shrink to small readable ones."""

from fractions import Fraction

import torch
from hypothesis import find, given, settings

from constructions.strategies import hmm_mixtures, transformers
from theory.strategies import (
    data_distributions, language_data_with_ood_prompts, patched_models, rule_languages, rules, words,
)


@given(rule_languages())
def test_rule_languages_decide_completability_exactly(lang):
    """completable(u) agrees with a brute-force search for a completion of length <= 6 (over {a, b}, no
    pair of library rules needs more than 2 symbols to be completed from any prefix up to length 6)."""
    for u in lang.alphabet.words_up_to(3):
        brute = any(lang.contains(u + z) for z in lang.alphabet.words_up_to(6))
        assert lang.completable(u) == brute, u


@given(language_data_with_ood_prompts(max_len=5, language=rule_languages()))
def test_generated_data_lies_in_the_language_and_prompts_are_ood(drawn):
    lang, P, prompts = drawn
    assert all(lang.contains(x) for x, _p in P.sequences())
    assert all(lang.is_ood(u) and P.prefix_mass(u) == 0 for u in prompts)


@given(patched_models())
def test_patched_models_have_exact_rows_everywhere(model):
    for u in list(model.patched_prefixes) + ["", "ab"]:
        row = model.next_token(u)
        assert sum(p for _t, p in row.items()) == 1


@settings(max_examples=10)
@given(transformers(alphabet="ab"))
def test_transformers_are_seeded_and_give_distributions(net):
    x = net.encode(["", "ab", "ba"])
    with torch.inference_mode():
        p = net(x).softmax(-1)
        again = type(net)(net.config).eval()(x).softmax(-1)
    assert torch.allclose(p.sum(-1), torch.ones_like(p.sum(-1)), atol=1e-12)
    assert torch.equal(p, again)  # the config's seed fixes the weights


@settings(max_examples=10)
@given(hmm_mixtures())
def test_hmm_mixtures_are_strictly_positive_as_proposition_2_needs(h):
    assert h.strictly_positive


def test_failures_shrink_to_readable_examples():
    """What a user sees when a property fails: the smallest table, words and rules that break it."""
    P = find(data_distributions(), lambda P: len(list(P.sequences())) >= 2)
    assert sorted(P.sequences()) == [("", Fraction(1, 2)), ("a", Fraction(1, 2))]
    assert find(words(), lambda w: "b" in w) == "b"
    r = find(rules(), lambda r: r.accepts("") is False)
    assert r.name == "starts with a"
