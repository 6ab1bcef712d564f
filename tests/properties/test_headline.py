"""The headline property: matched loss never implies matched OOD behaviour — and where the situation
*is* identifiable, the tool refuses to certify non-identifiability.

Every generated data distribution with a non-empty OOD region gets a certified pair from the
project's constructions (KL exactly 0, or certified ≤ ε) that behaves differently on the OOD prompts;
every identifiable situation (no OOD prompt, or a property read on the support only) is refused
with a typed error or gets a ``falsified`` certificate, never ``verified``.
"""

from dataclasses import replace
from fractions import Fraction

import pytest
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from constructions.generic import mixture_pair, ood_pair
from constructions.rule_extrapolation import rule_extrapolation_case
from theory import InvalidPrompt, PatchedModel, Status, SupportExtension, Witness, check_witness, kl_divergence
from theory.properties import GreedyRuleAccuracy
from theory.strategies import (
    ar_models,
    data_distributions,
    data_with_ood_prompts,
    language_data_with_ood_prompts,
    patched_models,
    rows,
    rule_languages,
)

AB = "ab"
distinct_rows = st.tuples(rows(AB), rows(AB)).filter(lambda rr: rr[0] != rr[1])
distinct_positive_rows = st.tuples(rows(AB, positive=True), rows(AB, positive=True)).filter(lambda rr: rr[0] != rr[1])
epsilons = st.fractions(min_value=Fraction(1, 1000), max_value=Fraction(1, 2), max_denominator=1000)


# ---- non-identifiable: a certified pair for every OOD region -------------------------------------------
@given(data_with_ood_prompts(), distinct_rows)
def test_exact_pair_for_any_data_and_any_ood_prompts(drawn, rr):
    P, prompts = drawn
    w = ood_pair(P, prompts, *rr)
    cert = check_witness(w)
    assert cert.status is Status.VERIFIED, cert.reason
    assert cert.method == "exact"
    assert cert.quantities["kl_q1"]["exact"] == cert.quantities["kl_q2"]["exact"] == "0"
    assert Fraction(cert.quantities["property_gap"]["exact"]) == w.delta > 0


@given(data_with_ood_prompts(), distinct_positive_rows, epsilons)
def test_epsilon_pair_for_any_data_and_any_ood_prompts(drawn, rr, eps):
    P, prompts = drawn
    w = mixture_pair(P, prompts, *rr, eps)
    cert = check_witness(w)
    assert cert.status is Status.VERIFIED, cert.reason
    # The loss is matched only up to epsilon here: both KLs are strictly positive, yet certified <= ε/(1 - ε).
    assert not kl_divergence(P, w.q1).is_zero and not kl_divergence(P, w.q2).is_zero


@given(language_data_with_ood_prompts(max_len=5, language=rule_languages()))
def test_rule_extrapolation_on_generated_rule_intersections(drawn):
    lang, P, prompts = drawn
    assume(any(lang.r1.completable(u) for u in prompts))
    try:
        case = rule_extrapolation_case(P, lang, sorted(prompts))
    except InvalidPrompt as e:  # R1 can be satisfied but never violated after these prompts: nothing to witness
        assert "cannot be violated" in str(e)
        event("refused: R1 cannot be violated")
        return
    event("certified")
    cert = case.certificate()
    assert cert.status is Status.VERIFIED, cert.reason
    assert cert.quantities["ood_r1_q1"]["exact"] == "1" and cert.quantities["ood_r1_q2"]["exact"] == "0"


@given(language_data_with_ood_prompts(max_len=5, language=rule_languages()))
def test_rule_extrapolation_refuses_prompts_where_r1_cannot_hold(drawn):
    lang, P, prompts = drawn
    assume(not any(lang.r1.completable(u) for u in prompts))
    with pytest.raises(InvalidPrompt, match="cannot be satisfied"):
        rule_extrapolation_case(P, lang, sorted(prompts))


# ---- identifiable: refused, or falsified — never verified ----------------------------------------------
@given(data_distributions(), distinct_rows, st.data())
def test_no_ood_region_is_refused(P, rr, data):
    """Prompts on the support are not an OOD region: the constructions refuse them by name."""
    prompts = data.draw(st.frozensets(st.sampled_from(sorted(P.support_prefixes())), min_size=1, max_size=3))
    for build in (lambda: ood_pair(P, prompts, *rr), lambda: mixture_pair(P, prompts, *rr, Fraction(1, 10))):
        with pytest.raises(InvalidPrompt, match="on the support"):
            build()


@given(data_distributions(), ar_models(), ar_models(), st.data())
def test_a_property_of_the_support_is_never_certified(P, m1, m2, data):
    """phi(Q) = q(t | u) at a support prefix u: any two models with KL = 0 agree on it (Lemma B), so no
    witness with matched loss can show a gap — whatever the models do elsewhere."""
    u = data.draw(st.sampled_from(sorted(P.support_prefixes())))
    t = data.draw(st.sampled_from(P.alphabet.outcomes))
    q1, q2 = SupportExtension(P, m1), data.draw(st.sampled_from([SupportExtension(P, m2), m2]))
    w = Witness(name="support-property", claim="q(t|u) on the support is not identified", data=P, q1=q1, q2=q2,
                prop=lambda q: q.next_token(u).prob(t), property_name=f"q({t} | {u!r})",
                epsilon=Fraction(0), delta=data.draw(st.fractions(Fraction(1, 10**6), Fraction(1))))
    cert = check_witness(w)
    assert cert.status is Status.FALSIFIED, cert.detail


@given(data_distributions(), patched_models(), patched_models(), st.data())
def test_greedy_completions_of_id_prompts_are_never_certified(P, m1, m2, data):
    """Greedy completion from a support prefix stays on the support (the argmax has P(ut) > 0), so two
    loss-matched models complete every ID prompt identically: no certified gap."""
    from theory.alphabet import Alphabet
    from theory.languages import CountParity

    prompts = tuple(data.draw(st.frozensets(st.sampled_from(sorted(P.support_prefixes())), min_size=1, max_size=3)))
    rule = CountParity("#a even", Alphabet(AB), "a")
    phi = GreedyRuleAccuracy(prompts, rule, 8)
    w = Witness(name="id-greedy", claim="greedy ID behaviour is not identified", data=P,
                q1=SupportExtension(P, m1), q2=SupportExtension(P, m2), prop=phi, property_name="greedy ID accuracy",
                epsilon=Fraction(0), delta=Fraction(1, 10**6))
    assert check_witness(w).status is Status.FALSIFIED


@given(data_with_ood_prompts(), distinct_rows, st.data())
def test_a_pair_that_leaks_onto_the_support_is_never_certified(drawn, rr, data):
    """The exact pair with Q1 changed at one support prefix: KL > 0, so the ε = 0 witness is falsified
    and the reason names a support prefix."""
    P, prompts = drawn
    w = ood_pair(P, prompts, *rr)
    u = data.draw(st.sampled_from(sorted(P.support_prefixes())))
    other = data.draw(rows(AB).filter(lambda r: r != P.conditional(u)))
    cert = check_witness(replace(w, q1=PatchedModel(w.q1, {u: other})))
    assert cert.status is Status.FALSIFIED and "support prefix" in cert.reason


@settings(max_examples=10)
@given(language_data_with_ood_prompts(max_len=4, max_prompts=2, language=rule_languages()))
def test_real_transformers_compiled_for_generated_languages_are_certified(drawn):
    """The same claim one level down: the generated case's two models compiled into real transformers,
    checked exhaustively against the construction on every prefix (support and OOD paths)."""
    from constructions.export import build_pair

    lang, P, prompts = drawn
    assume(any(lang.r1.completable(u) for u in prompts))  # else refused (the refusal test above)
    try:
        case = rule_extrapolation_case(P, lang, sorted(prompts), max_new_tokens=6)
    except InvalidPrompt as e:  # R1 cannot be violated after these prompts: nothing to compile
        assert "cannot be violated" in str(e)
        event("refused: R1 cannot be violated")
        assume(False)
    event("compiled and checked")
    cert = build_pair(case).certificate
    assert cert.status is Status.VERIFIED, cert.reason
    assert cert.method == "exhaustive"
