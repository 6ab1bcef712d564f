"""Bad input gets a typed error that names the bad value."""

from fractions import Fraction

import pytest

from theory.alphabet import EOS, Alphabet
from theory.data import ConditionalDistribution, FiniteDistribution, anbn_geometric
from theory.errors import (
    EmptySupport,
    InvalidAlphabet,
    InvalidDistribution,
    OffSupport,
    UndefinedPrefix,
    UnknownToken,
)
from theory.models import FunctionModel, PatchedModel, TabularModel, uniform_model
from theory.probability import NextTokenDistribution

AB = Alphabet("ab")


@pytest.mark.parametrize("symbols, fragment", [("", "empty"), ("aa", "'a' is repeated"), (["ab"], "'ab' is not a single"),
                                               ("a ", "whitespace")])
def test_bad_alphabets(symbols, fragment):
    with pytest.raises(InvalidAlphabet, match=fragment):
        Alphabet(symbols)


@pytest.mark.parametrize("row, error, fragment", [
    ({"a": Fraction(1, 2), "b": Fraction(1, 3)}, InvalidDistribution, "sum to 5/6"),
    ({"a": Fraction(3, 2), "b": Fraction(-1, 2)}, InvalidDistribution, "exceeds 1"),
    ({"a": -1, "b": 2}, InvalidDistribution, "negative"),
    ({"a": float("nan"), "b": 1}, InvalidDistribution, "NaN"),
    ({"a": 0.5, "b": 0.5}, InvalidDistribution, "float"),
    ({"a": "x", "b": 1}, InvalidDistribution, "not a rational"),
    ({"c": 1}, UnknownToken, "'c'"),
])
def test_bad_rows(row, error, fragment):
    with pytest.raises(error, match=fragment):
        NextTokenDistribution(AB, row)


def test_row_error_names_the_prefix():
    with pytest.raises(InvalidDistribution, match="at prefix 'ab'"):
        TabularModel(AB, {"ab": {"a": Fraction(1, 2)}})


def test_unknown_token_in_sequence_names_token_and_position():
    with pytest.raises(UnknownToken, match=r"'c' at position 2"):
        FiniteDistribution(AB, {"abc": 1})
    with pytest.raises(UnknownToken, match="'x'"):
        uniform_model(AB).next_token("ax")


def test_bad_data_tables():
    with pytest.raises(EmptySupport):
        FiniteDistribution(AB, {"a": 0})
    with pytest.raises(EmptySupport):
        FiniteDistribution(AB, {})
    with pytest.raises(InvalidDistribution, match="sums to 3/4"):
        FiniteDistribution(AB, {"a": Fraction(1, 2), "b": Fraction(1, 4)})
    with pytest.raises(InvalidDistribution, match="negative"):
        FiniteDistribution(AB, {"a": Fraction(-1, 2), "b": Fraction(3, 2)})
    with pytest.raises(InvalidDistribution, match="weight of 'a'"):
        FiniteDistribution.from_weights(AB, {"a": -1})


def test_off_support_conditional_is_undefined():
    P = FiniteDistribution(AB, {"ab": 1})
    assert P.prefix_mass("b") == 0 and not P.in_support("b")
    with pytest.raises(OffSupport, match="'b'"):
        P.conditional("b")


def test_undefined_prefix_and_bad_function_rows():
    with pytest.raises(UndefinedPrefix, match="'ab'"):
        TabularModel(AB, {"": {"a": 1}}).next_token("ab")
    bad = FunctionModel(AB, lambda u: {"a": Fraction(1, 2)})
    with pytest.raises(InvalidDistribution, match="prefix 'a'"):
        bad.next_token("a")


def test_patch_over_wrong_alphabet_and_bad_geometric_ratio():
    with pytest.raises(UnknownToken):
        PatchedModel(uniform_model(AB), {"c": {EOS: 1}})
    with pytest.raises(InvalidDistribution, match="strictly between"):
        anbn_geometric(1)
    with pytest.raises(InvalidDistribution, match="max_depth"):
        list(anbn_geometric(Fraction(1, 2)).support_prefixes())


def test_conditional_distribution_row_errors_name_prefix():
    P = ConditionalDistribution(AB, lambda u: {"a": Fraction(1, 3)}, name="broken")
    with pytest.raises(InvalidDistribution, match="prefix ''"):
        P.conditional("")


def test_conditional_distribution_with_max_length_is_finite_and_checked():
    def walk(u):
        return {EOS: 1} if len(u) >= 2 else {"a": Fraction(1, 2), EOS: Fraction(1, 2)}

    P = ConditionalDistribution(AB, walk, name="walk", max_length=2)
    assert P.is_finite and dict(P.sequences()) == {"": Fraction(1, 2), "a": Fraction(1, 4), "aa": Fraction(1, 4)}
    assert P.mean_length() == Fraction(3, 4)
    liar = ConditionalDistribution(AB, lambda u: {"a": Fraction(1, 2), EOS: Fraction(1, 2)}, name="liar", max_length=1)
    with pytest.raises(InvalidDistribution, match="continues past prefix 'a'"):
        list(liar.sequences())
