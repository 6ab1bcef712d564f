"""The sampled path's population bounds (constructions.icl.witness): Clopper–Pearson intervals checked
against brute-force binomial tails in Fractions, undecided prompts, i.i.d. prompt sets, and what the
sampled certificates claim and report."""

from __future__ import annotations

from fractions import Fraction
from math import comb

import numpy as np
import pytest

from constructions.icl import GINCConfig, build_ginc, evaluate_icl, mixture_certificate, sample_prompts, surgery_certificate
from constructions.icl.witness import (
    CP_DENOMINATOR,
    CP_METHOD,
    Accuracy,
    IIDPrompts,
    clopper_pearson,
    clopper_pearson_lower,
    clopper_pearson_upper,
    population_gap,
    sample_prompts_iid,
)
from theory.errors import InvalidDistribution, InvalidPrompt


def at_least(N: int, k: int, p: Fraction) -> Fraction:
    """P(X >= k) for X ~ Binomial(N, p), term by term in Fractions."""
    return sum((comb(N, j) * p**j * (1 - p) ** (N - j) for j in range(k, N + 1)), Fraction(0))


def at_most(N: int, k: int, p: Fraction) -> Fraction:
    return sum((comb(N, j) * p**j * (1 - p) ** (N - j) for j in range(0, k + 1)), Fraction(0))


CLOSE = Fraction(1, 10**6)


# ---- Clopper–Pearson against brute force ---------------------------------------------------------------
@pytest.mark.parametrize("confidence", [Fraction(99, 100), Fraction(95, 100)])
@pytest.mark.parametrize("N,k", [(20, 0), (20, 7), (20, 20), (20, 1), (20, 19), (500, 490)])
def test_clopper_pearson_ends_are_the_binomial_roots_rounded_outward(N, k, confidence):
    """L: P(X >= k | p = L) <= alpha/2, and the exact root lies within 1e-6 above L; U likewise with
    P(X <= k | p = U) <= alpha/2 and the root within 1e-6 below U; k = 0 gives L = 0, k = N gives U = 1."""
    half = (1 - confidence) / 2
    iv = Accuracy(k, 0, N).population_interval(confidence)
    L, U = iv.lo, iv.hi
    if k == 0:
        assert L == 0
    else:
        assert at_least(N, k, L) <= half < at_least(N, k, L + CLOSE)
    if k == N:
        assert U == 1
    else:
        assert at_most(N, k, U) <= half < at_most(N, k, U - CLOSE)
    assert L <= Fraction(k, N) <= U
    assert CP_DENOMINATOR % L.denominator == 0 and CP_DENOMINATOR % U.denominator == 0


def test_clopper_pearson_matches_the_textbook_values():
    """binom.test(7, 20) in R prints the 95 % interval [0.1539092, 0.5921885]."""
    iv = clopper_pearson(7, 20, Fraction(95, 100))
    assert abs(float(iv.lo) - 0.1539092) < 1e-7 and abs(float(iv.hi) - 0.5921885) < 1e-7
    assert clopper_pearson_upper(7, 20) == 1 - clopper_pearson_lower(13, 20)


def test_clopper_pearson_covers_at_least_the_confidence_exactly():
    """The exact coverage Σ_x P(X = x) 1[L(x) <= p <= U(x)] is >= 99 % at every p of a grid, including
    the endpoints themselves (where coverage is lowest)."""
    N, c = 20, Fraction(99, 100)
    ends = [(clopper_pearson_lower(x, N, c), clopper_pearson_upper(x, N, c)) for x in range(N + 1)]
    grid = [Fraction(j, 40) for j in range(1, 40)] + [lo for lo, _ in ends[1:]] + [hi for _, hi in ends[:-1]]
    for p in grid:
        cover = sum((comb(N, x) * p**x * (1 - p) ** (N - x) for x, (lo, hi) in enumerate(ends) if lo <= p <= hi), Fraction(0))
        assert cover >= c, (p, float(cover))


def test_undecided_prompts_widen_the_population_interval():
    decided, undecided = Accuracy(7, 0, 20), Accuracy(7, 3, 20)
    a, b = decided.population_interval(), undecided.population_interval()
    assert b.lo == a.lo  # undecided counted wrong in the lower end
    assert b.hi == Accuracy(10, 0, 20).population_interval().hi > a.hi  # and right in the upper end
    assert b.lo < undecided.interval.lo and undecided.interval.hi < b.hi


def test_population_interval_grows_with_confidence_and_shrinks_with_prompts():
    a = Accuracy(350, 0, 500)
    i95, i99 = a.population_interval(Fraction(95, 100)), a.population_interval("99/100")
    assert i99.lo < i95.lo < Fraction(7, 10) < i95.hi < i99.hi
    small = Accuracy(35, 0, 50).population_interval()
    assert small.lo < i99.lo and i99.hi < small.hi
    assert a.show_population() == "[0.644, 0.752]"


@pytest.mark.parametrize("bad", [0.99, 0, 1, Fraction(3, 2), "x"])
def test_a_confidence_outside_zero_one_or_inexact_is_refused(bad):
    with pytest.raises(InvalidDistribution):
        Accuracy(1, 0, 2).population_interval(bad)


def test_counts_outside_the_trials_are_refused():
    with pytest.raises(InvalidPrompt):
        clopper_pearson_lower(21, 20)
    with pytest.raises(InvalidPrompt):
        clopper_pearson_lower(0, 0)


def test_population_gap_is_one_sided_at_the_confidence_and_two_sided_by_union():
    hi, lo = Accuracy(480, 0, 500), Accuracy(20, 0, 500)
    c = Fraction(99, 100)
    one = population_gap(hi, lo, c)
    assert one == hi.population_interval(c).lo - lo.population_interval(c).hi
    two = population_gap(lo, hi, c, two_sided=True)
    c2 = (1 + c) / 2
    assert two == hi.population_interval(c2).lo - lo.population_interval(c2).hi < one
    assert population_gap(lo, hi, c) == 0


# ---- i.i.d. prompts and the certificates -----------------------------------------------------------------
@pytest.fixture(scope="module")
def small():
    return build_ginc(GINCConfig.small())


@pytest.fixture(scope="module")
def iid_eval(small):
    prompts = sample_prompts_iid(small, small.pretrain_concepts, (0, 4, 8), 5, 120, seed=3)
    return evaluate_icl(small, prompts)


def test_iid_prompts_are_deterministic_nested_and_marked(small, iid_eval):
    a = sample_prompts_iid(small, small.pretrain_concepts, (0, 2), 3, 40, seed=5)
    b = sample_prompts_iid(small, small.pretrain_concepts, (0, 2), 3, 40, seed=5)
    assert isinstance(a, IIDPrompts) and a.population == tuple(small.pretrain_concepts)
    assert len(a) == 40 and np.array_equal(a.pool, b.pool) and np.array_equal(a.label, b.label)
    assert set(a.concept.tolist()) <= set(small.pretrain_concepts) and a.at(2).tokens.shape == (40, 2 * 4 + 2)
    assert iid_eval.iid
    strat = evaluate_icl(small, sample_prompts(small, small.pretrain_concepts, (0, 4), 5, 10, seed=1))
    assert not strat.iid
    with pytest.raises(InvalidPrompt):
        sample_prompts_iid(small, small.pretrain_concepts, (0,), 3, 0)


def test_sampled_certificates_report_population_intervals_beside_each_accuracy(iid_eval):
    s = surgery_certificate(iid_eval, Fraction(3, 5), Fraction(1, 10**3))
    m = mixture_certificate(iid_eval, Fraction(1, 10**6))
    for cert in (s, m):
        assert "on the sampled prompts" in cert.claim and "at confidence 99/100" in cert.claim
        assert "not an exact value" in cert.claim and "not about the prompt distribution" in cert.claim
        assert cert.quantities["population_method"] == CP_METHOD
        assert cert.quantities["sampling"].startswith("i.i.d.")
    q = s.quantities
    for name in ("acc_P", "acc_Q"):
        pop = q[f"{name}_population"]
        assert pop["method"] == CP_METHOD and pop["confidence"]["exact"] == "99/100" and pop["prompts"] == 120
        lo, hi = (Fraction(x) for x in pop["interval"]["interval"])
        sample = Fraction(q[name]["exact"]) if "exact" in q[name] else None
        assert sample is not None and lo <= sample <= hi
    assert q["accuracy_gap_population_lower"]["confidence"]["exact"] == "99/100"
    assert "population at 99% (Clopper-Pearson)" in s.detail and "120 sampled prompts" in s.detail
    row = m.quantities["per_n"]["8"]
    assert all(row[f"acc_{x}_population"]["method"] == CP_METHOD for x in "PQR")


def test_stratified_prompts_get_no_population_bound(small):
    ev = evaluate_icl(small, sample_prompts(small, small.pretrain_concepts, (0, 4, 8), 5, 30, seed=1))
    cert = surgery_certificate(ev, Fraction(3, 5), Fraction(1, 10**3))
    assert "no population bound is stated" in cert.claim and cert.quantities["acc_P_population"] is None
    assert cert.quantities["population_method"] is None and "Clopper" not in cert.detail
