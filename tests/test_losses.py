"""The chain rule and Lemmas A–C as hypothesis properties over random data and models."""

from fractions import Fraction

from hypothesis import assume, event, given
from hypothesis import strategies as st

from theory.alphabet import EOS, Alphabet
from theory.data import FiniteDistribution, anbn_geometric
from theory.exact import LogCombination, LogInterval
from theory.losses import (
    chain_rule_sums,
    cross_entropy,
    entropy,
    kl_by_enumeration,
    kl_contributions,
    kl_divergence,
    padded_per_token,
    per_token,
)
from theory.models import PatchedModel, SupportExtension, TabularModel, sequence_probability, uniform_model
from theory.strategies import ar_models, data_distributions, rows

AB = Alphabet("ab")
# Half the models are strictly positive: with zeros allowed, most drawn models miss a word of P and the
# finite case (where the comparison says something) would be the minority (see the tests' events).
models_with_and_without_zeros = st.booleans().flatmap(lambda positive: ar_models(depth=5, positive=positive))


@given(data_distributions(alphabet="abc", max_len=4), ar_models(alphabet="abc", depth=5))
def test_chain_rule_equals_enumeration(P, Q):
    assert kl_divergence(P, Q) == kl_by_enumeration(P, Q)


@given(data_distributions(max_len=4), models_with_and_without_zeros)
def test_cross_entropy_is_expected_negative_log_likelihood(P, Q):
    ce = cross_entropy(P, Q)
    terms = [(px, sequence_probability(Q, x)) for x, px in P.sequences()]
    if any(qx == 0 for _px, qx in terms):  # Q misses a word of P: the expectation is +inf
        event("Q gives a word of P probability 0")
        assert ce.infinite
    else:
        event("Q gives every word of P positive probability")
        assert ce == -LogCombination.from_weighted_logs(terms)


@given(data_distributions(max_len=4), models_with_and_without_zeros)
def test_gibbs_kl_nonnegative_and_ce_at_least_entropy(P, Q):
    sums = chain_rule_sums(P, Q)
    assert not sums.entropy.infinite  # P is finite
    if sums.kl.infinite:  # Gibbs holds as +inf >= 0, and the cross-entropy is +inf with it
        event("KL infinite")
        assert sums.cross_entropy.infinite
        return
    event("KL finite")
    assert sums.kl.sign() in (0, 1)
    assert sums.cross_entropy.compare(sums.entropy) in (0, 1)


@given(data_distributions(max_len=4), ar_models(depth=5))
def test_kl_zero_iff_conditionals_agree_on_support(P, Q):
    agree = all(Q.next_token(u) == P.conditional(u) for u in P.support_prefixes())
    assert kl_divergence(P, Q).is_zero == agree


@given(data_distributions(max_len=4), ar_models(depth=5), st.data())
def test_changing_model_off_support_never_changes_loss(P, Q, data):
    off = [u for u in AB.words_up_to(5) if not P.in_support(u)]
    assume(off)
    chosen = data.draw(st.lists(st.sampled_from(off), min_size=1, unique=True))
    patched = PatchedModel(Q, {u: data.draw(rows(AB)) for u in chosen})
    assert cross_entropy(P, patched) == cross_entropy(P, Q)
    assert kl_divergence(P, patched) == kl_divergence(P, Q)


@given(data_distributions(max_len=4), ar_models(depth=5, positive=True), st.data())
def test_changing_model_on_support_always_changes_loss(P, Q, data):
    u = data.draw(st.sampled_from(sorted(P.support_prefixes())))
    copy = SupportExtension(P, Q)
    new = data.draw(rows(AB).filter(lambda r: r != P.conditional(u)))
    changed = PatchedModel(copy, {u: new})
    assert kl_divergence(P, copy).is_zero
    assert kl_divergence(P, changed) != kl_divergence(P, copy)
    assert kl_divergence(P, changed).sign() == 1
    assert set(kl_contributions(P, changed)) == {u}


@given(data_distributions(max_len=4))
def test_entropy_is_cross_entropy_of_the_data_itself(P):
    Q = SupportExtension(P, uniform_model(AB))
    assert cross_entropy(P, Q) == entropy(P)


def test_padded_floor_anbn_128():
    P = FiniteDistribution.uniform(AB, ["a" * n + "b" * n for n in range(1, 129)])
    floor = padded_per_token(entropy(P), P, 258)
    assert floor == LogCombination.log(128) / 257
    lo, hi = floor.interval(64)
    assert lo < Fraction("0.018880") and hi > Fraction("0.018879")


def test_padded_length_too_short_is_refused():
    P = FiniteDistribution.uniform(AB, ["ab", "aabb"])
    import pytest

    from theory.errors import InvalidDistribution

    with pytest.raises(InvalidDistribution, match="padded length 5"):
        padded_per_token(entropy(P), P, 5)
    assert padded_per_token(entropy(P), P, 6) == LogCombination.log(2) / 5


def test_per_token_divides_by_mean_length_plus_one():
    P = FiniteDistribution(AB, {"a": Fraction(1, 2), "abb": Fraction(1, 2)})
    assert per_token(entropy(P), P) == LogCombination.log(2) / 3


def test_infinite_support_entropy_is_a_rigorous_bracket():
    P = anbn_geometric(Fraction(1, 2))
    for depth in (2, 5, 12):
        h = entropy(P, depth=depth)
        assert isinstance(h, LogInterval)
        two_ln2 = LogCombination.log(4)
        assert h.lo.compare(two_ln2) == -1 and h.hi.compare(two_ln2) in (0, 1)
    assert per_token(entropy(P, depth=30), P).hi == LogCombination.log(4) / 5  # 2/5 bit per token


def test_infinite_support_kl_without_tail_bound_is_open_above():
    P = anbn_geometric(Fraction(1, 3))
    k = kl_divergence(P, uniform_model(AB), depth=6)
    assert isinstance(k, LogInterval) and k.hi.infinite and k.lo.sign() == 1


def test_zero_model_probability_on_support_gives_infinite_kl():
    P = FiniteDistribution(AB, {"a": Fraction(1, 2), "b": Fraction(1, 2)})
    Q = TabularModel(AB, {"": {"a": 1}}, default={EOS: 1})
    assert kl_divergence(P, Q).infinite and kl_by_enumeration(P, Q).infinite
