"""The public strategies draw valid objects and shrink to small readable ones."""

from fractions import Fraction

import torch
from hypothesis import find, given, settings
from hypothesis import strategies as st

from constructions.strategies import hmm_mixtures, transformers
from theory.strategies import (
    ar_models,
    data_distributions,
    language_data_with_ood_prompts,
    patched_models,
    rule_languages,
    rules,
    words,
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


@given(st.data(), st.sampled_from(["ab", "abc"]), st.integers(0, 3), st.integers(1, 3))
def test_patched_models_patch_the_drawn_base_where_the_strategy_says(data, symbols, max_len, max_patches):
    """What patched_models promises beyond PatchedModel's own checks: the model is the drawn base with
    1..max_patches rows patched in, at prefixes of length <= max_len; so it answers the base's row at
    every other prefix (checked on all words up to max_len + 1), and the default base is over the
    requested alphabet."""
    base = data.draw(ar_models(symbols, depth=3))
    model = data.draw(patched_models(st.just(base), symbols, max_len=max_len, max_patches=max_patches))
    assert model.base is base and model.alphabet == base.alphabet
    assert 1 <= len(model.patched_prefixes) <= max_patches
    assert all(len(u) <= max_len for u in model.patched_prefixes)
    for u in base.alphabet.words_up_to(max_len + 1):
        assert model.next_token(u) == (model.patches[u] if u in model.patched_prefixes else base.next_token(u)), u
    default = data.draw(patched_models(alphabet=symbols, max_len=max_len, max_patches=max_patches))
    assert str(default.base.alphabet) == symbols and 1 <= len(default.patched_prefixes) <= max_patches


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
