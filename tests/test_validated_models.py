"""The validating memo, tail closure by construction only, typed property values and the exact budget."""

from __future__ import annotations

import time
from dataclasses import replace
from fractions import Fraction

import pytest

from tests.oracles import TINY_LOGITS, RawModel, TwoFaced, float_row
from theory import (
    EOS,
    Alphabet,
    BudgetExceeded,
    ExactBudget,
    FiniteDistribution,
    FractionInterval,
    InvalidBudget,
    InvalidDistribution,
    InvalidModel,
    InvalidProperty,
    InvalidWitness,
    LogCombination,
    NextTokenDistribution,
    PatchedModel,
    Status,
    SupportExtension,
    ValidatedModel,
    Witness,
    anbn_geometric,
    check_witness,
    copies_support,
    kl_divergence,
    validated,
)
from theory.exact import factorize_within
from theory.models import uniform_model
from theory.properties import greedy_completion

A = Alphabet("ab")
P = FiniteDistribution.from_weights(A, {"ab": 1, "aab": 1}, name="ab|aab")


def raw_row(*probs, alphabet: Alphabet = A) -> NextTokenDistribution:
    return NextTokenDistribution._trusted(alphabet, tuple(probs))


# ---- the memo ------------------------------------------------------------------------------------------
def test_validated_is_idempotent_and_shares_one_memo_per_model():
    m = RawModel({})
    v = validated(m)
    assert validated(v) is v and isinstance(v, ValidatedModel)
    v.next_token("a")
    validated(m).next_token("a")  # a second wrapper of the same object reads the same memo
    assert m.calls == 1
    assert v.model is m and v.name == "raw" and v.alphabet == A


def test_first_row_read_is_the_row_for_every_later_reader():
    m = TwoFaced(raw_row(Fraction(0), Fraction(1), Fraction(0)), {})
    assert kl_divergence(P, m).is_zero  # the loss reads p(.|a) first
    assert validated(m).next_token("a") == P.conditional("a")
    assert greedy_completion(m, "a", 3).text == "a" + "b"  # decoding sees the same row at 'a'


def test_rows_handed_out_cannot_be_changed_by_anyone():
    own = raw_row(Fraction(1, 2), Fraction(1, 2), Fraction(0))
    v = validated(RawModel({"b": own}))
    first = v.next_token("b")
    own.probs = (Fraction(0), Fraction(0), Fraction(1))  # the model changes its row object
    first.probs = (Fraction(1), Fraction(0), Fraction(0))  # a caller changes the one it was handed
    assert v.next_token("b").probs == (Fraction(1, 2), Fraction(1, 2), Fraction(0))
    with pytest.raises(AttributeError):
        v._memo = {}


@pytest.mark.parametrize("row, words", [
    (raw_row(Fraction(1), Fraction(0), Fraction(0), alphabet=Alphabet("ba")), ["'b'", "'ba'", "'ab'"]),
    (raw_row(Fraction(1), Fraction(0)), ["'b'", "3 values"]),
    (raw_row(Fraction(1, 2), Fraction(1, 2), Fraction(1, 2**60)), ["'b'", "sum to", str(1 + Fraction(1, 2**60))]),
    (raw_row(Fraction(5, 4), Fraction(0), Fraction(-1, 4)), ["'b'", "-1/4", "negative"]),
    (raw_row(0.5, 0.5, 0), ["'b'", "0.5", "float"]),
    (raw_row(float("nan"), Fraction(1), 0), ["'b'", "nan"]),
    (raw_row(True, 0, 0), ["'b'", "True", "bool"]),
    ({"a": 1}, ["'b'", "dict"]),
])
def test_invalid_rows_are_refused_naming_prefix_and_value(row, words):
    with pytest.raises(InvalidDistribution) as e:
        validated(RawModel({"b": row})).next_token("b")
    for w in words:
        assert w in str(e.value)


def test_exact_integer_and_rational_entries_are_normalised_to_fractions():
    row = validated(RawModel({"b": raw_row(1, 0, 0)})).next_token("b")
    assert all(type(p) is Fraction for p in row.probs) and row.prob("a") == 1


def test_non_models_and_alphabet_changes_are_invalid_models():
    with pytest.raises(InvalidModel, match="alphabet"):
        validated(object())

    class NoMethod:
        alphabet = A

    with pytest.raises(InvalidModel, match="next_token"):
        validated(NoMethod())
    m = RawModel({})
    validated(m).next_token("")
    m.alphabet = Alphabet("ba")
    with pytest.raises(InvalidModel, match="'ba'"):
        validated(m)


def test_every_entry_point_validates():
    bad = RawModel({"": raw_row(Fraction(1), Fraction(1, 2**60), Fraction(0))})
    with pytest.raises(InvalidDistribution):
        kl_divergence(P, bad)
    with pytest.raises(InvalidDistribution):
        greedy_completion(bad, "", 2)


# ---- tail closure ---------------------------------------------------------------------------------------
def genuine():
    return PatchedModel(SupportExtension(P, uniform_model(A)), {"b": {"a": 1}})


def test_copies_support_holds_for_library_built_models_only():
    q = genuine()
    assert copies_support(q, P) and copies_support(validated(q), P)
    assert copies_support(PatchedModel(validated(q), {"ba": {EOS: 1}}), P)
    assert not copies_support(PatchedModel(q, {"a": {"a": 1}}), P)  # a patch on the support
    assert not copies_support(q, FiniteDistribution.from_weights(A, {"ab": 1, "aab": 1}))  # other data

    class Sub(SupportExtension):
        pass

    assert not copies_support(Sub(P, uniform_model(A)), P)
    swapped_data = SupportExtension(P, uniform_model(A))
    swapped_data.data = FiniteDistribution.from_weights(A, {"b": 1})
    assert not copies_support(swapped_data, swapped_data.data)
    overridden = SupportExtension(P, uniform_model(A))
    overridden.next_token = lambda u: NextTokenDistribution(A, {EOS: 1})
    assert not copies_support(overridden, P)
    rebased = genuine()
    rebased.base = uniform_model(A)
    assert not copies_support(rebased, P)
    repatched = genuine()
    repatched.patches = {"a": NextTokenDistribution(A, {"a": 1})}
    assert not copies_support(repatched, P)


def test_patches_are_read_only():
    with pytest.raises(TypeError):
        genuine().patches["a"] = NextTokenDistribution(A, {"a": 1})


def anbn_witness(tails, q1=None):
    D = anbn_geometric(Fraction(1, 2))
    base = SupportExtension(D, uniform_model(A))
    return Witness(name="t", claim="t", data=D, q1=q1 or PatchedModel(base, {"b": {"a": 1}}),
                   q2=PatchedModel(base, {"b": {EOS: 1}}), prop=lambda q: q.next_token("b").prob("a"),
                   property_name="q(a | b)", epsilon=Fraction(1, 100), depth=8, kl_tail_bounds=tails)


def test_tail_bounds_are_recorded_as_assumptions_with_their_value():
    zero, t = LogCombination.zero(), LogCombination.log(Fraction(101, 100))
    cert = check_witness(anbn_witness((zero, t)))
    assert cert.status is Status.VERIFIED
    text = "\n".join(cert.assumptions)
    assert "KL(P || Q1) beyond depth 8 is 0 by construction" in text
    assert f"KL(P || Q2) beyond depth 8 is at most the caller-supplied bound {t}" in text
    cert = check_witness(anbn_witness((zero, zero), q1=uniform_model(A)))
    assert "KL(P || Q1) beyond depth 8 is at most the caller-supplied bound 0" in "\n".join(cert.assumptions)


def test_tail_bounds_must_be_log_combinations():
    with pytest.raises(InvalidWitness, match="kl_tail_bounds"):
        anbn_witness((Fraction(0), None))


# ---- property values ------------------------------------------------------------------------------------
def base_witness(prop) -> Witness:
    q1 = PatchedModel(SupportExtension(P, uniform_model(A)), {"b": {"a": 1}}, name="Q1")
    q2 = PatchedModel(SupportExtension(P, uniform_model(A)), {"b": {EOS: 1}}, name="Q2")
    return Witness(name="t", claim="t", data=P, q1=q1, q2=q2, prop=prop, property_name="phi-under-test")


def float_interval() -> FractionInterval:
    iv = FractionInterval(0, 1)
    iv.hi = 0.5  # endpoints are plain attributes: a property could hand back floats in a bracket
    return iv


@pytest.mark.parametrize("bad", [float("nan"), None, 0.5, True, "1", float_interval()])
def test_non_numeric_property_values_are_refused(bad):
    with pytest.raises(InvalidProperty) as e:
        check_witness(base_witness(lambda q: bad if q.name == "Q2" else Fraction(1)))
    assert "phi-under-test" in str(e.value) and "Q2" in str(e.value)


def test_exact_property_values_are_accepted():
    assert check_witness(base_witness(lambda q: 1 if q.name == "Q1" else 0)).verified
    bracket = base_witness(lambda q: FractionInterval(Fraction(1), Fraction(1)) if q.name == "Q1" else Fraction(0))
    assert check_witness(bracket).verified
    with pytest.raises(InvalidProperty, match="not a callable"):
        base_witness("phi")


# ---- the exact budget -----------------------------------------------------------------------------------
def test_budget_refuses_long_integers_composite_cofactors_and_too_many_terms():
    b = ExactBudget()
    with pytest.raises(BudgetExceeded, match="max_integer_bits"):
        factorize_within(2**3000 + 1, b, [0])
    with pytest.raises(BudgetExceeded, match="bounded attempt"):
        factorize_within((2**61 - 1) * (2**89 - 1), b, [0])
    ps = (1000003, 1000033, 1000037, 1000039)  # an 80-bit composite of 20-bit primes: the bounded attempt splits it
    assert factorize_within(ps[0] * ps[1] * ps[2] * ps[3], b, [0]) == tuple((q, 1) for q in ps)
    assert factorize_within(3 * (2**127 - 1), b, [0]) == ((3, 1), (2**127 - 1, 1))  # a prime cofactor is fine
    with pytest.raises(BudgetExceeded, match="max_large_cofactors"):
        LogCombination.from_weighted_logs([(1, 2**127 - 1), (1, 2**89 - 1)], ExactBudget(max_large_cofactors=1))
    with pytest.raises(BudgetExceeded, match="max_log_terms"):
        LogCombination.log(30, ExactBudget(max_log_terms=2))
    assert LogCombination.log(Fraction(30, 7), b) == LogCombination.log(Fraction(30, 7))


@pytest.mark.parametrize("field", ["max_integer_bits", "max_composite_bits", "factor_limit", "max_large_cofactors",
                                   "max_log_terms"])
def test_budget_bounds_are_validated(field):
    with pytest.raises(InvalidBudget, match=field):
        ExactBudget(**{field: 0})


def float_model(logits=TINY_LOGITS):
    root = float_row(logits)
    return PatchedModel(SupportExtension(P, uniform_model(A)), {"": root, "b": {"a": 1}}, name="Q1")


def test_float_derived_kl_raises_budget_exceeded_quickly():
    start = time.perf_counter()
    with pytest.raises(BudgetExceeded, match="composite factor is left after the bounded attempt"):
        kl_divergence(P, float_model())
    assert time.perf_counter() - start < 2


def test_float_derived_rows_that_factor_within_the_budget_are_decided_exactly():
    # (0, -700, -700): the 1058-bit denominator is 4 · (a 20-bit prime) · (a 1039-bit prime)
    kl = kl_divergence(P, float_model((0.0, -700.0, -700.0)))
    assert not kl.is_zero and kl.sign() == 1


def test_float_derived_witness_is_unknown_with_the_budget_named():
    w = base_witness(lambda q: q.next_token("b").prob("a"))
    cert = check_witness(replace(w, q1=float_model()))
    assert cert.status is Status.UNKNOWN
    assert "KL(P || Q1) not computed" in cert.reason and "factor_limit" in cert.reason
    assert cert.quantities["kl_q1"] is None and cert.quantities["kl_q2"]["exact"] == "0"


def test_copies_of_library_models_are_rebuilt_by_the_constructor_and_subclasses_are_not():
    import copy

    q = genuine()
    deep = copy.deepcopy(q)
    assert copies_support(copy.copy(q), P) and copies_support(deep, deep.base.data)

    class Sub(SupportExtension):
        pass

    forged = copy.deepcopy(PatchedModel(Sub(P, uniform_model(A)), {"b": {"a": 1}}))
    assert type(forged.base) is Sub and not copies_support(forged, forged.base.data)
