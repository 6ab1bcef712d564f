"""Proposition 2 at the population level: the designed instance learns in context, every model is
scored on the labels, the exact accuracies are what an independent brute force gives, and every
number printed in a certificate's detail is rounded outward from its quantities."""

from __future__ import annotations

from fractions import Fraction

import pytest

from constructions.icl.certify import (
    evaluate_instance,
    icl_effect_certificate,
    interval_text,
    kl_text,
    mixture_population_certificate,
    places,
    surgery_population_certificate,
)
from constructions.icl.forward import exact_next_token_masses
from constructions.icl.instance import learning_instance
from constructions.icl.population import enumerate_prompts, evaluate_population
from theory.errors import InvalidDistribution, InvalidHMM, InvalidPrompt

EPS = Fraction(1, 10**6)


@pytest.fixture(scope="module")
def report():
    return evaluate_instance(learning_instance(), 2, (0, 1, 2, 3), (EPS,), name="learning_instance()")


def test_the_prompt_distribution_is_a_distribution_with_exact_weights():
    hmm = learning_instance()
    for n in (0, 1, 2):
        pop = enumerate_prompts(hmm, n, 2)
        assert sum(pop.weight, Fraction(0)) == 1 and all(w > 0 for w in pop.weight)
        assert len(pop) == 4 * 8 ** n * 2  # (concept, start) x 8 examples each x 2 test inputs
        assert set(pop.prompts.label.tolist()) <= {1, 2, 3, 4}  # labels never the delimiter


def test_bayes_accuracy_matches_an_exact_fraction_brute_force():
    """P's answers from the certified float forward against P's exact posterior predictive in
    Fractions, prompt by prompt, at n = 1: the same accuracy to the last digit."""
    hmm = learning_instance()
    pop = enumerate_prompts(hmm, 1, 2)
    ev = evaluate_population(hmm, 1, 2)
    exact = Fraction(0)
    tokens = pop.prompts.at(1).tokens.tolist()
    for row, label, w in zip(tokens, pop.prompts.label.tolist(), pop.weight):
        masses = exact_next_token_masses(hmm, row)
        labels = [t for t in range(hmm.vocab_size) if t != hmm.delimiter]
        best = max(masses[t] for t in labels)
        answer = min(t for t in labels if masses[t] == best)
        exact += w if answer == label else 0
    assert ev.acc_p.lo == ev.acc_p.hi == exact


def test_p_learns_in_context_and_r_does_not(report):
    acc = {n: report.per_n[n].acc_p for n in report.ns}
    assert acc[0].hi <= Fraction(1, 2) + Fraction(1, 100) and acc[1].lo >= Fraction(9, 10)
    assert all(report.per_n[n].acc_r == report.per_n[0].acc_r for n in report.ns)  # R answers from the test input alone
    cert = icl_effect_certificate(report, Fraction(3, 10))
    assert cert.verified and cert.quantities["n"] == 1 and cert.method == "exact"


def test_both_constructions_are_verified_with_delta_fixed_first(report):
    s = surgery_population_certificate(report, Fraction(3, 5), EPS, Fraction(3, 10), Fraction(3, 10))
    m = mixture_population_certificate(report, EPS, Fraction(3, 10), Fraction(3, 10), Fraction(1, 100))
    assert s.verified and m.verified, (s.reason, m.reason)
    assert s.quantities["n"] == 2 and m.quantities["n"] == 3
    assert "epsilon = 1/1000000" in s.claim and "Delta = 3/10 fixed first" in m.claim  # says what was checked
    assert "every epsilon" not in s.claim and "every epsilon" not in m.claim  # a grid is not a universal claim


def test_the_instance_refuses_zero_transitions_and_bad_probabilities():
    with pytest.raises(InvalidHMM, match="rho = 0"):
        learning_instance(rho=0)
    with pytest.raises(InvalidHMM, match="1 - rho - eta - tilt"):
        learning_instance(eta=Fraction(1, 2), tilt=Fraction(1, 2))
    with pytest.raises(InvalidDistribution):
        learning_instance(stickiness=Fraction(3, 2))


def test_enumeration_refuses_what_it_cannot_list():
    hmm = learning_instance()
    with pytest.raises(InvalidPrompt, match="more than max_prompts"):
        enumerate_prompts(hmm, 3, 2, max_prompts=100)
    with pytest.raises(InvalidPrompt, match="k ="):
        enumerate_prompts(hmm, 1, 1)
    with pytest.raises(InvalidPrompt, match="must include 0"):
        evaluate_instance(hmm, 2, (1, 2), (EPS,), name="x")


def test_outward_rounding_helpers_never_round_inward():
    third = Fraction(1, 3)
    assert places(third, "down") == "0.333" and places(third, "up") == "0.334" and places(Fraction(1), "up") == "1.000"
    from theory.exact import FractionInterval

    assert interval_text(FractionInterval(third, Fraction(2, 3))) == "[0.333, 0.667]"
    assert Fraction(kl_text(Fraction(10000005, 10**13))) >= Fraction(10000005, 10**13)
    assert kl_text(Fraction(10000005, 10**13)) == "1.01e-06"


def test_the_factorised_accuracy_is_the_enumerated_one_and_has_a_floor_for_every_n():
    from constructions.icl.universal import accuracy_floor, bayes_accuracy

    hmm = learning_instance()
    for n in range(4):
        ev = evaluate_population(hmm, n, 2)
        assert bayes_accuracy(hmm, n) == ev.acc_p.lo == ev.acc_p.hi  # the lemma's formula against every prompt
    floor = accuracy_floor(hmm, 2)
    assert floor is not None and floor.floor == min(list(floor.exact.values()) + [floor.tail_floor])
    for n in (floor.n0, floor.n0 + 1, 50, 200):  # the Hoeffding range: exact values stay above the floor
        assert bayes_accuracy(hmm, n) >= floor.tail_floor


def test_surgery_for_every_epsilon_is_verified_and_refused_without_its_hypotheses():
    from constructions.icl.universal import check_structure, surgery_every_epsilon_certificate, surgery_n

    hmm = learning_instance()
    cert = surgery_every_epsilon_certificate(hmm, 2, Fraction(3, 5), Fraction(3, 10), name="learning_instance()")
    assert cert.verified, cert.reason
    assert "for every epsilon in [10^-1027, 1)" in cert.claim
    n, K, rho = surgery_n(hmm, 2, Fraction(3, 5), Fraction(1, 10**6))
    assert n == 2 and K * rho ** (n - 1) * Fraction(916, 1000) <= Fraction(1, 10**6)  # ln(5/2) < 0.917
    with pytest.raises(InvalidHMM, match="k = 2"):
        check_structure(hmm, 3)
    same = surgery_every_epsilon_certificate(learning_instance(same_concepts=True), 2, Fraction(3, 5), Fraction(3, 10),
                                             name="same concepts")
    assert same.status.value == "unknown" and "hypotheses fail" in same.reason


def test_the_ratio_bound_holds_on_every_enumerated_prompt_and_the_mixture_is_verified_for_every_epsilon():
    from constructions.icl.universal import mixture_every_epsilon_certificate, mixture_n, ratio_bound

    hmm = learning_instance()
    bound = ratio_bound(hmm, 2)
    for n in range(4):  # the proven K0 B^n against the certified float ratio of every prompt
        ev = evaluate_population(hmm, n, 2)
        assert ev.p_over_r_upper * (1 - Fraction(1, 10**9)) <= bound.k0 * bound.b ** n
    assert bound.acc_r == evaluate_population(hmm, 0, 2).acc_r.lo == Fraction(1, 2)
    n = mixture_n(bound, EPS)
    assert (1 - EPS) / EPS * bound.k0 * bound.b ** n < bound.gamma <= (1 - EPS) / EPS * bound.k0 * bound.b ** (n - 1)
    cert = mixture_every_epsilon_certificate(hmm, 2, Fraction(3, 10), name="learning_instance()")
    assert cert.verified and "for every epsilon in [10^-850, 1)" in cert.claim


def test_bad_icl_input_gets_a_typed_error_naming_the_value():
    from constructions.icl import GINCConfig

    with pytest.raises(InvalidHMM, match="eta = 0 gives zero transitions"):
        GINCConfig.small(eta=0)
    assert GINCConfig.small(eta=0, allow_zero_transitions=True).eta == 0  # on purpose, to see it reported
    hmm = learning_instance()
    with pytest.raises(InvalidPrompt, match="number of examples n = -1"):
        enumerate_prompts(hmm, -1, 2)
    with pytest.raises(InvalidDistribution, match="epsilon = 1 must lie in"):
        evaluate_instance(hmm, 2, (0, 1), (Fraction(1),), name="x")
    from constructions.icl.hmm import MixtureHMM
    from constructions.icl.population import surgery_answers

    one_label = MixtureHMM.from_matrices(((0, 1),), ((1,),), (((Fraction(1, 2), Fraction(1, 2)),) * 2,), vocab_size=2,
                                         doc_length=8)
    import numpy as np

    with pytest.raises(InvalidPrompt, match="needs two labels"):
        surgery_answers(np.array([1]), np.array([True]), one_label)


def test_the_floor_leaves_mpmath_as_it_found_it_and_cannot_be_edited():
    from mpmath import iv

    from constructions.icl.universal import accuracy_floor

    before = iv.prec
    floor = accuracy_floor(learning_instance(), 2)
    assert iv.prec == before and floor is not None
    with pytest.raises(TypeError):
        floor.exact[1] = Fraction(1)  # cached and shared by both every-epsilon checks: read-only


def test_a_gap_outside_zero_one_is_refused_by_name():
    from constructions.icl.certify import check_delta
    from theory.errors import InvalidWitness

    for bad in ("abc", 0, 2, float("nan")):
        with pytest.raises(InvalidWitness, match="delta"):
            check_delta(bad, "delta")
    assert check_delta("3/10", "delta") == Fraction(3, 10)
