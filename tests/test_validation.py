"""theory.validation: each checker returns what it accepts and raises the caller's type, naming the value."""

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from theory.errors import InvalidBudget, InvalidPrompt, NonidError
from theory.validation import check_choice, check_int, check_number, check_type


class Custom(NonidError):
    """A caller's own error type."""


@given(st.integers(-5, 5), st.integers(-5, 5))
def test_check_int_accepts_exactly_the_range(x, lo):
    if x >= lo:
        assert check_int(x, "x", minimum=lo) == x
    else:
        with pytest.raises(InvalidBudget, match=f"x {x} must be an int >= {lo}"):
            check_int(x, "x", minimum=lo)


@pytest.mark.parametrize("bad", [True, False, 1.0, "1", None, Fraction(1)])
def test_check_int_refuses_non_ints_and_bools(bad):
    with pytest.raises(Custom, match="must be an int"):
        check_int(bad, "steps", error=Custom)


def test_check_int_bounds_and_wording():
    assert check_int(9, "n", minimum=0, maximum=9) == 9
    with pytest.raises(InvalidPrompt, match=r"^sample size n=41 must be an int in 1\.\.40 \(the pool\)$"):
        check_int(41, "sample size n=", minimum=1, maximum=40, error=InvalidPrompt, note="the pool")
    with pytest.raises(InvalidBudget, match=r"^k = 1 must be an int <= 0$"):
        check_int(1, "k =", maximum=0)


def test_check_int_integral_accepts_numpy_ints():
    np = pytest.importorskip("numpy")
    with pytest.raises(InvalidBudget):
        check_int(np.int64(3), "t")
    got = check_int(np.int64(3), "t", integral=True)
    assert got == 3 and type(got) is int


def test_check_number():
    assert check_number(1, "lr", lo=0, lo_open=True) == 1.0
    assert check_number(0.5, "p", lo=0, hi=1) == 0.5
    for bad in (0, -1.0, float("nan"), float("inf"), True, "0.1", Fraction(1, 2), 10**400):
        with pytest.raises(Custom, match="lr"):
            check_number(bad, "lr", lo=0, lo_open=True, error=Custom)
    assert check_number(Fraction(1, 2), "p", hi=1, real=True) == 0.5
    with pytest.raises(NonidError, match=r"^eps 1 must be a finite number in \(0, 1\)$"):
        check_number(1, "eps", lo=0, hi=1, lo_open=True, hi_open=True)
    assert check_number(float("inf"), "t", finite=False, lo=0) == float("inf")
    with pytest.raises(NonidError, match="must be a number >= 0"):
        check_number(float("nan"), "t", finite=False, lo=0)


def test_check_choice_and_type():
    assert check_choice("adam", "optimizer", ("sgd", "adam")) == "adam"
    with pytest.raises(Custom, match=r"^optimizer 'rmsprop' is not one of 'sgd', 'adam'$"):
        check_choice("rmsprop", "optimizer", ("sgd", "adam"), error=Custom)
    with pytest.raises(NonidError, match="is not one of"):
        check_choice([], "device", {"cpu"})  # unhashable: refused, not a TypeError
    assert check_type("a", "name", str) == "a"
    with pytest.raises(Custom, match=r"^witness name 3 is of type int, not str$"):
        check_type(3, "witness name", str, error=Custom)
    with pytest.raises(NonidError, match="bool"):
        check_type(True, "count", int)
