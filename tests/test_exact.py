"""Exact log-combinations: equality is exact, signs and enclosures are rigorous."""

from fractions import Fraction

import mpmath
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from theory.errors import OutsideDomain
from theory.exact import FractionInterval, LogCombination, decimal_string, factorize

positive_rationals = st.fractions(min_value=Fraction(1, 10**6), max_value=10**6).filter(lambda r: r > 0)


@given(st.integers(1, 10**9))
def test_factorize_multiplies_back(n):
    prod = 1
    for p, e in factorize(n):
        prod *= p**e
    assert prod == n


@given(positive_rationals, positive_rationals)
def test_log_of_product_is_sum_of_logs(r, s):
    assert LogCombination.log(r * s) == LogCombination.log(r) + LogCombination.log(s)


@given(st.lists(st.tuples(st.fractions(-5, 5), positive_rationals), max_size=5))
def test_enclosure_contains_high_precision_value(terms):
    v = LogCombination.from_weighted_logs(terms)
    with mpmath.workprec(400):
        true = mpmath.fsum(mpmath.mpf(w.numerator) / w.denominator * mpmath.log(mpmath.mpf(r.numerator) / r.denominator)
                           for w, r in terms if w)
        lo, hi = v.interval(64)
        assert mpmath.mpf(lo.numerator) / lo.denominator <= true + mpmath.mpf(10) ** -100
        assert true - mpmath.mpf(10) ** -100 <= mpmath.mpf(hi.numerator) / hi.denominator


@given(st.lists(st.tuples(st.fractions(-5, 5), positive_rationals), max_size=4))
def test_sign_agrees_with_high_precision(terms):
    v = LogCombination.from_weighted_logs(terms)
    s = v.sign()
    event("exactly zero" if v.is_zero else "non-zero")
    if v.is_zero:  # decided exactly (no float can tell 0 from a tiny value): nothing to compare
        assert s == 0
        return
    assert s in (-1, 1)
    with mpmath.workprec(2000):
        true = mpmath.fsum(mpmath.mpf(w.numerator) / w.denominator * mpmath.log(mpmath.mpf(r.numerator) / r.denominator)
                           for w, r in terms if w)
    assert (true > 0) == (s == 1)


def test_near_cancellation_is_decided_not_guessed():
    # ln(2^10) vs ln(1025): differ by ~1e-3; and 10 ln 2 - ln 1024 is exactly 0
    assert (LogCombination.log(1024) - LogCombination.log(2) * 10).is_zero
    tiny = LogCombination.log(Fraction(2**60 + 1, 2**60))
    assert tiny.sign() == 1 and (-tiny).sign() == -1


def test_infinity_rules():
    inf = LogCombination.infinity()
    assert (inf + LogCombination.log(2)).infinite
    assert inf.compare(10**9) == 1
    with pytest.raises(OutsideDomain, match="undefined"):
        inf - inf
    with pytest.raises(OutsideDomain, match="ln\\(0\\)"):
        LogCombination.log(0)


def test_decimal_strings_round_outward():
    x = Fraction(2, 3)
    assert Fraction(decimal_string(x, "down")) <= x <= Fraction(decimal_string(x, "up"))
    assert decimal_string(x, "down") != decimal_string(x, "up")


def test_json_interval_encloses():
    v = LogCombination.log(3) - LogCombination.log(2)
    j = v.to_json()
    lo, hi = (Fraction(s) for s in j["interval"])
    assert float(lo) <= 0.4054651081081644 <= float(hi)
    assert j["exact"] == "-ln(2) + ln(3)"


def test_fraction_interval():
    i = FractionInterval(Fraction(1, 3), Fraction(1, 2))
    assert not i.exact and i.width == Fraction(1, 6)
    with pytest.raises(OutsideDomain, match="empty interval"):
        FractionInterval(1, 0)


def test_a_fraction_interval_of_any_size_prints_and_serialises():
    """Float-derived rationals have thousands of digits: repr shows a decimal bracket rounded outward (never
    Python's 4,300-digit ValueError), the exact forms stay available, and JSON keeps them exactly."""
    import json
    from fractions import Fraction

    from theory.exact import FractionInterval

    x = Fraction(3 ** 12000, 7 ** 5000)
    iv = FractionInterval(x, x + 1)
    text = repr(iv)
    assert text.startswith("FractionInterval(≈ [9.222667e+1499, 9.222668e+1499]") and "digits" in text
    lo, hi = iv.exact_text()
    import sys

    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        assert Fraction(lo) == x and Fraction(hi) == x + 1 and len(lo) > 4300
    finally:
        sys.set_int_max_str_digits(limit)
    data = json.loads(json.dumps(FractionInterval(x).to_json()))
    assert data["approx"] == float("inf") and len(data["exact"]) > 4300
    small = FractionInterval(Fraction(-1, 3), Fraction(1, 7))
    assert repr(small) == "FractionInterval(-1/3, 1/7)"
    y = Fraction(-(3 ** 200), 7 ** 150)
    assert repr(FractionInterval(y, y + Fraction(1, 10 ** 9))).startswith("FractionInterval(≈ [-4.566095e-32, 1.000000e-09]")
