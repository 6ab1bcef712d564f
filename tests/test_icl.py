"""Proposition 2 (ICL) — the GINC-style construction, its forward algorithm, both witnesses, bad input.

Fast by design: tiny instances for everything exact (Fractions, enumeration), the ``small`` instance of
``nonid prove`` for the certificates."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from constructions.icl import (
    XIE_EXAMPLE_LENGTHS,
    BayesPredictor,
    GINCConfig,
    MixtureHMM,
    MixtureModel,
    NoICLModel,
    SurgeryModel,
    bayes_masses,
    boundary_rates,
    brute_force_prefix_probability,
    build_ginc,
    check_prompt_shape,
    evaluate_icl,
    exact_forward,
    exact_label,
    exact_next_token_masses,
    exact_prefix_probability,
    example_masses,
    format_mass,
    icl_examples,
    max_examples,
    mixture_certificate,
    prompt_length,
    prove_kl_bounds,
    sample_prompts,
    surgery_certificate,
    surgery_mass,
    surgery_mass_bound,
)
from theory.errors import InvalidDistribution, InvalidHMM, InvalidPrompt, UnknownToken
from theory.models import ARModel


def exact(scaled, index) -> Fraction:
    """The exact rational a Scaled entry stands for (mantissa and exponent are exact)."""
    return Fraction(float(scaled.mantissa[index])) * Fraction(2) ** int(scaled.exponent[index])


def within(approx: Fraction, value: Fraction, rel: float) -> bool:
    return approx == value == 0 or abs(approx - value) <= Fraction(rel) * value


@st.composite
def tiny_configs(draw, max_doc: int = 6) -> GINCConfig:
    """Random tiny GINC configurations (1-2 entities, 2-3 properties, vocabulary 3-4)."""
    return GINCConfig.tiny(
        seed=draw(st.integers(0, 10_000)), n_entities=draw(st.integers(1, 2)), n_properties=draw(st.integers(2, 3)),
        vocab_size=draw(st.integers(3, 4)), n_pretrain_concepts=draw(st.integers(1, 2)), n_heldout_concepts=1,
        doc_length=draw(st.integers(4, max_doc)), weight_bits=draw(st.sampled_from([3, 10])),
        eta=draw(st.sampled_from([Fraction(1, 100), Fraction(1, 3)])),
        entity_stickiness=draw(st.sampled_from([Fraction(9, 10), Fraction(1, 2)])))


# ---- the construction --------------------------------------------------------------------------------
def test_xie_sizes_are_named_parameters():
    c = GINCConfig.xie()
    assert (c.n_entities, c.n_properties, c.vocab_size, c.n_pretrain_concepts, c.n_heldout_concepts) == (10, 10, 50, 5, 5)
    assert (c.transition_temp, c.entity_stickiness, c.delimiter, c.doc_length) == (0.1, Fraction(9, 10), 0, 10_240)
    assert XIE_EXAMPLE_LENGTHS == (3, 5, 8, 10)
    h = build_ginc(c)
    assert (h.n_hidden, h.vocab_size, h.n_pretrain, h.n_concepts) == (100, 50, 5, 10)
    for k in XIE_EXAMPLE_LENGTHS:
        check_prompt_shape(h, 64, k)


def test_build_is_deterministic_from_the_seed():
    a, b = build_ginc(GINCConfig.small(seed=3)), build_ginc(GINCConfig.small(seed=3))
    c = build_ginc(GINCConfig.small(seed=4))
    assert a.emission == b.emission and a.concepts == b.concepts and a.entity_transition == b.entity_transition
    assert a.concepts != c.concepts


@settings(max_examples=25)
@given(tiny_configs(max_doc=8))
def test_every_matrix_is_row_stochastic_and_positive(cfg):
    h = build_ginc(cfg)
    for M in (h.entity_transition, *h.concepts):
        assert all(sum(row) == 1 and all(x > 0 for x in row) for row in M)
    assert h.strictly_positive
    assert np.allclose(h.kernels.sum(axis=2), 1.0, atol=1e-14)
    for e, row in enumerate(h.emission):
        assert row[0] == h.delimiter and all(t != h.delimiter for t in row[1:])


@settings(max_examples=25)
@given(tiny_configs(), st.data())
def test_forward_equals_brute_force_and_float_is_within_its_bound(cfg, data):
    h = build_ginc(cfg)
    L = data.draw(st.integers(1, 4))
    toks = data.draw(st.lists(st.integers(0, h.vocab_size - 1), min_size=L, max_size=L))
    for c in range(h.n_concepts):
        assert sum(exact_forward(h, c, toks)) == brute_force_prefix_probability(h, toks, c)
    m = bayes_masses(h, np.array([toks]))
    assert within(exact(m.prefix, 0), exact_prefix_probability(h, toks), m.prefix.rel_err)
    for y, value in enumerate(exact_next_token_masses(h, toks)):
        assert within(exact(m.next, (0, y)), value, m.next.rel_err)


def test_float_path_agrees_with_fractions_on_icl_prompts():
    h = build_ginc(GINCConfig.tiny(doc_length=40))
    prompts = sample_prompts(h, range(h.n_concepts), (0, 3, 8), 2, 3, seed=5)
    P, R = BayesPredictor(h), NoICLModel(h, 2)
    for n in prompts.ns:
        ps = prompts.at(n)
        m = bayes_masses(h, ps.tokens)
        for i, row in enumerate(ps.tokens.tolist()):
            assert icl_examples(row, 2, h.delimiter) == n and h.delimiter not in row[-1:]
            assert within(exact(m.prefix, i), P.prefix_probability(row), m.prefix.rel_err)
            masses, _ = P.next_masses(row)
            assert all(within(exact(m.next, (i, y)), v, m.next.rel_err) for y, v in enumerate(masses))
            assert exact_label(h, int(ps.concept[i]), int(ps.start_property[i]), row[-1:]) == ps.label[i]
    ex = example_masses(h, prompts.pool[:, 0])
    for i, x in enumerate(prompts.pool[:, 0].tolist()):
        assert within(exact(ex, i), R.example_mass(x), ex.rel_err)


def test_format_mass_equals_enumeration():
    h = build_ginc(GINCConfig.tiny(vocab_size=4, doc_length=8))
    P, k = BayesPredictor(h), 2
    for n in range(max_examples(h, k) + 1):
        L = prompt_length(n, k)
        total = sum(P.prefix_probability(w) for w in itertools.product(range(4), repeat=L)
                    if icl_examples(w, k, h.delimiter) == n)
        assert total == format_mass(h, k, n)
    assert surgery_mass(h, k, 1) == format_mass(h, k, 1) + format_mass(h, k, 2)
    assert surgery_mass(h, k, 1) <= surgery_mass_bound(h, k, 1)
    assert all(r.rho < 1 for r in boundary_rates(h, k))


def test_models_are_ar_models_with_exact_rows():
    h = build_ginc(GINCConfig.tiny(doc_length=6))
    P = BayesPredictor(h)
    models = [P, NoICLModel(h, 2), SurgeryModel(P, 2, 1, Fraction(3, 5)),
              MixtureModel(P, NoICLModel(h, 2), Fraction(1, 10))]
    for model in models:
        assert isinstance(model, ARModel)
        for u in ["", "a", "ab/", "ab/ab", "abcab/"]:
            assert sum(model.next_token(u).probs) == 1
    assert P.alphabet.symbols[h.delimiter] == "/"


# ---- the two witnesses, exactly, on tiny instances ---------------------------------------------------
def kl_bracket(P: BayesPredictor, Q) -> tuple[float, float]:
    """A rigorous mpmath interval for KL(P ‖ Q) by the chain rule (Σ over support prefixes and outcomes
    of P(ua) ln(p(a|u)/q(a|u))), from exact rational rows: theory.losses' exact log-combinations would
    factorise every HMM probability, which is far too slow for a test."""
    from mpmath import iv

    iv.prec = 80
    total = iv.mpf(0)
    for u, mass, masses in P.data_distribution().support_nodes():
        qrow = Q.next_token(u).probs
        for m, q in zip(masses, qrow):
            if m:
                assert q > 0
                ratio = (m / mass) / q
                total += iv.mpf(m.numerator) / m.denominator * iv.log(iv.mpf(ratio.numerator) / ratio.denominator)
    return float(total.a), float(total.b)


@settings(max_examples=6, deadline=None)
@given(tiny_configs(max_doc=5), st.sampled_from([Fraction(3, 5), Fraction(9, 10)]),
       st.sampled_from([Fraction(1, 10), Fraction(1, 1000)]))
def test_kl_bounds_hold_on_random_instances(cfg, lam, eps):
    """Both KL bounds bracket the witnesses as built: the surgery with its mass on a wrong *label*
    (checked on every support prefix of A(n) the bracket sums over), the mixture with the literal R."""
    from mpmath import iv

    h = build_ginc(cfg.with_(doc_length=5))
    P, k = BayesPredictor(h), 2
    for n in (0, 1):
        Q = SurgeryModel(P, k, n, lam)
        moved = 0
        for u, _, _ in P.data_distribution().support_nodes():
            if Q.in_A(Q.decode(u)):
                p_top, q_row = Q.p_answer(u), Q.next_token(u)
                w = Q.alphabet.symbols[Q.wrong(u)]
                assert Q.wrong(u) not in (p_top, h.delimiter)
                assert q_row.prob(w) >= lam and q_row.argmax() == (w, False)
                moved += 1
        assert moved > 0  # A(n) has support prefixes: the bracket below really covers the label surgery
        lo, hi = kl_bracket(P, Q)
        mass = surgery_mass(h, k, n)
        bound = iv.mpf(mass.numerator) / mass.denominator * -iv.log(1 - iv.mpf(lam.numerator) / lam.denominator)
        assert hi <= float(bound.b) and lo >= 0
    lo, hi = kl_bracket(P, MixtureModel(P, NoICLModel(h, k), eps))
    assert hi <= float((-iv.log(1 - iv.mpf(eps.numerator) / eps.denominator)).b)


@settings(max_examples=15)
@given(tiny_configs(max_doc=7), st.lists(st.integers(0, 3), max_size=7),
       st.sampled_from([Fraction(1, 2), Fraction(1, 10**6)]))
def test_mixture_rows_through_w_equal_rows_from_sequence_probabilities(cfg, toks, eps):
    h = build_ginc(cfg)
    P = BayesPredictor(h)
    Q = MixtureModel(P, NoICLModel(h, 2), eps)
    u = Q.encode([t % h.vocab_size for t in toks])
    assert Q.next_token(u) == Q.sequence_conditional(u)


def test_float_weights_bracket_the_exact_weights():
    h = build_ginc(GINCConfig.tiny(doc_length=30))
    prompts = sample_prompts(h, h.pretrain_concepts, (0, 2, 5), 2, 3, seed=2)
    ev = evaluate_icl(h, prompts)
    P, R = BayesPredictor(h), NoICLModel(h, 2)
    eps = Fraction(1, 1000)
    Q = MixtureModel(P, R, eps)
    for n in prompts.ns:
        for i, row in enumerate(prompts.at(n).tokens.tolist()):
            w = Q.weight(row)
            assert ev.weight_lower(n, eps)[i] <= w
            assert within(exact(ev.r[n].prefix, i), R.prefix_probability(row), ev.r[n].prefix.rel_err)


def test_surgery_answers_a_wrong_label_and_mixture_weight_tends_to_one():
    """On A(n) the surgery's label answer is a wrong label — a label other than P's, the one
    population.surgery_answers picks — and never the delimiter; below n it answers as P does."""
    from constructions.icl.population import surgery_answers

    h = build_ginc(GINCConfig.tiny(doc_length=40))
    P = BayesPredictor(h)
    Q = SurgeryModel(P, 2, 3, Fraction(3, 5))
    prompts = sample_prompts(h, h.pretrain_concepts, (2, 3, 6), 2, 4, seed=1)
    labels = [t for t in range(h.vocab_size) if t != h.delimiter]
    for n in prompts.ns:
        for row in prompts.at(n).tokens.tolist():
            u = Q.encode(row)
            p_row, q_row = P.next_token(u), Q.next_token(u)
            p_best = max(p_row.probs[t] for t in labels)
            p_top = min(t for t in labels if p_row.probs[t] == p_best)  # P's label answer (ties: smallest)
            if n < 3:  # outside A(n): Q is P
                assert q_row == p_row
                continue
            q_best = max(q_row.probs[t] for t in labels)
            q_tops = [t for t in labels if q_row.probs[t] == q_best]
            assert len(q_tops) == 1 and q_tops[0] != p_top  # a strict label argmax, and a wrong label
            assert q_tops[0] == Q.wrong(u) == int(surgery_answers(np.array([p_top]), np.array([True]), h)[0][0])
            top, tied = q_row.argmax()  # over all of Σ ∪ {EOS}: the delimiter is not Q's answer either
            assert top == Q.alphabet.symbols[q_tops[0]] != "/" and not tied
    M = MixtureModel(P, NoICLModel(h, 2), Fraction(1, 100))
    ws = [min(M.weight(r) for r in prompts.at(n).tokens.tolist()) for n in (2, 6)]
    assert ws[1] > ws[0]


# ---- certificates on the small instance --------------------------------------------------------------
@pytest.fixture(scope="module")
def small_eval():
    h = build_ginc(GINCConfig.small())
    prompts = sample_prompts(h, h.pretrain_concepts, tuple(range(9)) + (16, 32, 64), 5, 60, seed=1)
    return evaluate_icl(h, prompts)


def test_sampled_certificates_are_deterministic_and_honest_on_the_ginc_draw(small_eval):
    """On the small GINC draw P barely learns in context (its accuracy is flat in n), so once every
    model is scored on the labels the mixture's R, which answers like P at n = 0, gives no gap: the
    certificate is `unknown` with the numbers — never `verified` on a delimiter answer.  The surgery,
    which moves mass to a wrong *label*, still separates the accuracies on the sampled prompts."""
    eps = Fraction(1, 10**6)
    s1, s2 = surgery_certificate(small_eval, Fraction(3, 5), eps), surgery_certificate(small_eval, Fraction(3, 5), eps)
    assert s1.verified, s1.reason
    assert s1.to_json() == s2.to_json() and "sampled prompts" in s1.detail
    m = mixture_certificate(small_eval, eps)
    assert m.status.value == "unknown" and "has a certified accuracy gap >= 1/2" in m.reason
    assert Fraction(m.quantities["per_n"]["64"]["max_one_minus_w_upper"]["exact"]) < Fraction(1, 10**6)


def test_zero_transitions_are_reported_not_verified():
    h = build_ginc(GINCConfig.small(eta=0, allow_zero_transitions=True))
    assert not h.strictly_positive
    ev = evaluate_icl(h, sample_prompts(h, h.pretrain_concepts, (0, 4, 8), 5, 30, seed=1))
    cert = surgery_certificate(ev, Fraction(3, 5), Fraction(1, 10**6))
    assert not cert.verified and "off the support" in cert.reason


def test_kl_bounds_are_proved_by_sympy():
    facts = prove_kl_bounds()
    assert facts and all(f.proved for f in facts)


# ---- bad input ---------------------------------------------------------------------------------------
def test_non_stochastic_matrices_are_refused():
    emission = [[0, 1], [0, 2]]
    ent = [[Fraction(1, 2)] * 2] * 2
    good = [[Fraction(1, 2)] * 2] * 2
    with pytest.raises(InvalidDistribution, match="row 1 sums to 3/4"):
        MixtureHMM.from_matrices(emission, ent, [[[Fraction(1, 2)] * 2, [Fraction(1, 2), Fraction(1, 4)]]],
                                 vocab_size=3, doc_length=5)
    with pytest.raises(InvalidDistribution, match="entity transition matrix"):
        MixtureHMM.from_matrices(emission, [[1, 0], [Fraction(1, 2), Fraction(1, 3)]], [good], vocab_size=3, doc_length=5)
    with pytest.raises(InvalidDistribution, match="float"):
        MixtureHMM.from_matrices(emission, ent, [[[0.5, 0.5], [0.5, 0.5]]], vocab_size=3, doc_length=5)
    with pytest.raises(InvalidDistribution, match="negative"):
        MixtureHMM.from_matrices(emission, ent, [[[Fraction(-1, 2), Fraction(3, 2)], [1, 0]]], vocab_size=3, doc_length=5)
    with pytest.raises(InvalidHMM, match="must not emit the delimiter"):
        MixtureHMM.from_matrices([[0, 0], [0, 2]], ent, [good], vocab_size=3, doc_length=5)


@pytest.mark.parametrize("changes, error, fragment", [
    ({"delimiter": 50}, UnknownToken, "delimiter token 50"),
    ({"delimiter": -1}, UnknownToken, "delimiter token -1"),
    ({"n_properties": 1}, InvalidHMM, "n_properties = 1"),
    ({"transition_temp": 0.0}, InvalidHMM, "transition_temp"),
    ({"eta": Fraction(3, 2)}, InvalidDistribution, "exceeds 1"),
    ({"entity_stickiness": 1}, InvalidDistribution, "entity_stickiness = 1"),
])
def test_bad_configs_name_the_value(changes, error, fragment):
    with pytest.raises(error, match=fragment):
        GINCConfig.xie(**changes)


def test_bad_prompt_shapes_and_weights_name_the_value():
    h = build_ginc(GINCConfig.small())
    with pytest.raises(InvalidPrompt, match="k = 1"):
        sample_prompts(h, [0], [2], 1, 3)
    with pytest.raises(InvalidPrompt, match="n = -1"):
        sample_prompts(h, [0], [-1], 5, 3)
    with pytest.raises(InvalidPrompt, match="n must be <= 169"):
        sample_prompts(h, [0], [170], 5, 3)
    with pytest.raises(InvalidPrompt, match="concept 9"):
        sample_prompts(h, [9], [2], 5, 3)
    ev_eps = [0, 1, Fraction(3, 2), "-1/2"]
    P = BayesPredictor(build_ginc(GINCConfig.tiny()))
    for eps in ev_eps:
        with pytest.raises(InvalidDistribution, match="epsilon"):
            MixtureModel(P, NoICLModel(P.hmm, 2), eps)
    with pytest.raises(InvalidDistribution, match="float"):
        MixtureModel(P, NoICLModel(P.hmm, 2), 1e-6)
    for lam in (Fraction(1, 2), 1, Fraction(1, 3)):
        with pytest.raises(InvalidDistribution, match="lambda"):
            SurgeryModel(P, 2, 1, lam)
