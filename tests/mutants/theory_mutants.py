"""Mutants of the exact side: witnesses, models, data, prompt splits, tail bounds, closed forms,
SMT lemmas and synthesised models, certificates and the ICL certificates.

Each mutant's control is the correct object (accepted); the mutation is the smallest change that
makes it wrong.  The shared instance (:func:`tests.oracles.ab_aab`, with the witness helpers of
:mod:`tests.mutants.shared`): P uniform on {ab, aab} over Σ = {a, b}; its support prefixes are ε, a,
aa, ab, aab; ``b`` is OOD.  Q₁ and Q₂ copy p(·|u) on the support and differ only at ``b``
(φ(Q) = q(a | b): 1 vs 0).
"""

from __future__ import annotations

import json
from fractions import Fraction
from functools import lru_cache

from tests.mutants.registry import constructed, mutant, verdict
from tests.mutants.shared import check, copy, q_at_b, rule_case, witness
from tests.oracles import A, ab_aab
from theory import (
    EOS,
    Certificate,
    FiniteDistribution,
    LogCombination,
    NextTokenDistribution,
    PatchedModel,
    SupportExtension,
    Witness,
    anbn_geometric,
    check_witness,
)
from theory.errors import NonidError
from theory.models import uniform_model

TINY = Fraction(1, 10**12)


# ---- witnesses: a model that differs on the support --------------------------------------------------
@mutant("support-row-changed", "witness", "falsified")
def _support_row_changed(mutate: bool) -> str:
    """Q1's conditional at the support prefix 'a' moved to a point mass (p(·|a) is 1/2, 1/2)."""
    q1 = copy(patches={"b": {"a": 1}, **({"a": {"a": 1}} if mutate else {})})
    return check(witness(q1=q1))


@mutant("support-row-off-by-1e-12", "witness", "falsified")
def _support_row_off(mutate: bool) -> str:
    """Q1's row at the support prefix 'a' off by 1e-12 (still a distribution): KL > 0, not = 0."""
    h = Fraction(1, 2)
    row = {"a": h + TINY, "b": h - TINY} if mutate else {"a": h, "b": h}
    return check(witness(q1=copy(patches={"b": {"a": 1}, "a": row})))


@mutant("support-eos-moved", "witness", "falsified")
def _support_eos_moved(mutate: bool) -> str:
    """At the leaf 'aab' (p(EOS|aab) = 1) Q2 moves 1e-12 of the EOS mass to 'a'."""
    row = {EOS: 1 - TINY, "a": TINY} if mutate else {EOS: 1}
    return check(witness(q2=copy(patches={"b": {EOS: 1}, "aab": row})))


@mutant("support-root-changed", "witness", "falsified")
def _support_root_changed(mutate: bool) -> str:
    """Q2's first-token row (the root, always in the support) gives 'b' a little mass."""
    row = {"a": 1 - TINY, "b": TINY} if mutate else {"a": 1}
    return check(witness(q2=copy(patches={"b": {EOS: 1}, "": row})))


# ---- witnesses: wrong epsilon, wrong delta, no OOD difference ---------------------------------------
def _root_kl() -> tuple[LogCombination, tuple[Fraction, Fraction]]:
    """Q with root row (3/4, 1/4): KL(P || Q) = ln(4/3) exactly; and a rigorous rational bracket."""
    kl = LogCombination.log(Fraction(4, 3))
    return kl, kl.interval()


@mutant("epsilon-below-kl", "witness", "falsified")
def _epsilon_below_kl(mutate: bool) -> str:
    """An epsilon-witness whose claimed epsilon is 1e-15 below the true KL = ln(4/3) (the check must
    compare a logarithm with a rational exactly, not in floats)."""
    _kl, (lo, hi) = _root_kl()
    eps = lo - Fraction(1, 10**15) if mutate else hi + Fraction(1, 10**15)
    q1 = copy(patches={"b": {"a": 1}, "": {"a": Fraction(3, 4), "b": Fraction(1, 4)}})
    return check(witness(q1=q1, epsilon=eps))


@mutant("delta-above-gap", "witness", "falsified")
def _delta_above_gap(mutate: bool) -> str:
    """The claimed property gap Δ is 1e-12 more than the true gap 3/4."""
    q1 = copy(patches={"b": {"a": Fraction(3, 4), EOS: Fraction(1, 4)}})
    return check(witness(q1=q1, delta=Fraction(3, 4) + (TINY if mutate else 0)))


@mutant("same-ood-behaviour", "witness", "falsified")
def _same_ood(mutate: bool) -> str:
    """Q2 is Q1: equal loss, and equal OOD behaviour too — nothing is witnessed."""
    q1 = copy(patches={"b": {"a": 1}}, name="Q1")
    return check(witness(q1=q1, q2=q1 if mutate else None))


@mutant("property-reads-support-prefix", "witness", "falsified")
def _property_on_support(mutate: bool) -> str:
    """The two models differ only at 'b' but the property is read at the support prefix 'a' (an ID
    prompt), where matched loss forces equal behaviour."""
    w = witness()
    if mutate:
        from dataclasses import replace
        w = replace(w, prop=lambda q: q.next_token("a").prob("a"), property_name="q(a | a)")
    return check(w)


# ---- exact inputs that must be refused --------------------------------------------------------------
@mutant("row-sums-to-1-plus-1e-12", "model", "refused:InvalidDistribution")
def _row_sum(mutate: bool) -> str:
    """A next-token row whose probabilities sum to 1 + 1e-12."""
    h = Fraction(1, 2)
    return constructed(lambda: NextTokenDistribution(A, {"a": h + (TINY if mutate else 0), "b": h}))


@mutant("float-probability", "model", "refused:InvalidDistribution")
def _float_row(mutate: bool) -> str:
    """A row given in floats (0.1 + 0.9 is not exactly representable as the author meant)."""
    return constructed(lambda: NextTokenDistribution(A, {"a": 0.1 if mutate else Fraction(1, 10), "b": Fraction(9, 10)}))


@mutant("data-sums-to-1-minus-1e-12", "data", "refused:InvalidDistribution")
def _data_sum(mutate: bool) -> str:
    """A data table whose sequence probabilities sum to 1 - 1e-12."""
    h = Fraction(1, 2)
    return constructed(lambda: FiniteDistribution(A, {"ab": h - (TINY if mutate else 0), "aab": h}))


@mutant("row-token-outside-alphabet", "model", "refused:UnknownToken")
def _row_token(mutate: bool) -> str:
    """A patched row that puts mass on 'c', a token outside Σ = {a, b}."""
    return constructed(lambda: copy(patches={"b": {"c" if mutate else "a": 1}}))


# ---- infinite support: tail bounds ------------------------------------------------------------------
def _anbn_witness(tail: LogCombination | None, q1=None) -> Witness:
    P = anbn_geometric(Fraction(1, 2))
    base = SupportExtension(P, uniform_model(A))
    q1 = q1 or PatchedModel(base, {"b": {"a": 1}}, name="Q1")
    q2 = PatchedModel(base, {"b": {EOS: 1}}, name="Q2")
    return Witness(name="mutant-anbn", claim="q(a | b) is not identified", data=P, q1=q1, q2=q2, prop=q_at_b,
                   property_name="q(a | b)", epsilon=Fraction(1, 100), delta=Fraction(1), depth=8,
                   kl_tail_bounds=(tail, tail))


@mutant("kl-tail-bound-negative", "bound", "refused:InvalidBudget")
def _tail_negative(mutate: bool) -> str:
    """a^n b^n (infinite support) with the KL tail bound beyond the depth given with the wrong sign,
    -ln(101/100) instead of ln(101/100): a negative tail would pull the upper bound under epsilon."""
    t = LogCombination.log(Fraction(101, 100))
    return check(_anbn_witness(-t if mutate else t))


@mutant("kl-tail-bound-missing", "bound", "unknown")
def _tail_missing(mutate: bool) -> str:
    """The same witness with no certified tail bound: KL <= epsilon cannot be decided from a prefix sum."""
    return check(_anbn_witness(None if mutate else LogCombination.log(Fraction(101, 100))))


# ---- rule extrapolation (Proposition 1) -------------------------------------------------------------
@mutant("anbn-leak-beyond-depth", "witness", "unknown")
def _anbn_deep_leak(mutate: bool) -> str:
    """a^n b^n, KL summed to depth 8: the violator is changed at the support prefix a^10, past the
    depth.  The prefix sum cannot see it, so the tail may no longer be closed at 0 by construction."""
    case = rule_case("anbn")
    v = PatchedModel(case.violator, {"a" * 10: {"b": 1}}) if mutate else case.violator
    return verdict(lambda: case.with_models(violator=v).certificate())


@mutant("anbn-leak-within-depth", "witness", "falsified")
def _anbn_leak(mutate: bool) -> str:
    """a^n b^n: the completer is changed at the support prefix 'aa' (inside the summed depth; p(b | aa)
    is 1/2, the patch makes it 1)."""
    case = rule_case("anbn")
    c = PatchedModel(case.completer, {"aa": {"b": 1}}) if mutate else case.completer
    return verdict(lambda: case.with_models(completer=c).certificate())


@mutant("completer-violator-swapped", "witness", "falsified")
def _swapped(mutate: bool) -> str:
    """L3 (n <= 6): the R1-completer and R1-violator passed in the wrong roles."""
    case = rule_case("L3")
    if mutate:
        case = case.with_models(completer=case.violator, violator=case.completer)
    return verdict(case.certificate)


@mutant("prompt-split-off-by-one", "prompt", "refused:InvalidPrompt")
def _prompt_split(mutate: bool) -> str:
    """An a^n b^n OOD prompt set with the split off by one: 'aabb' (ID, it is a word of L3) listed
    instead of 'aabbb' (OOD: more b's than a's)."""
    from constructions.rule_extrapolation import rule_extrapolation_case

    case = rule_case("L3")
    prompts = ["ba", "aabb" if mutate else "aabbb"]
    return verdict(lambda: rule_extrapolation_case(case.data, case.language, prompts, name="split").certificate())


@mutant("published-l2-scored-by-the-paper-rules", "prompt", "refused:InvalidConvention")
def _published_l2_paper_rules(mutate: bool) -> str:
    """The published L2 prompt set scored as ``published`` but with the paper's L2 rules (the other
    reading's language): the metric would silently mix the two readings."""
    from theory.conventions import prompt_set
    from theory.languages import LANGUAGES, PUBLISHED_L2
    from theory.properties import Completion, score_completions

    ps = prompt_set("L2", "published")
    lang = LANGUAGES["L2"] if mutate else PUBLISHED_L2
    if mutate:
        from theory.prompts import PromptSet

        ps = PromptSet(lang, ps.id_prompts, ps.ood_prompts)
    comps = {u: Completion("a", True, False) for u in ps.prompts}
    return constructed(lambda: score_completions(lang, ps, comps, convention="published"))


@mutant("published-prompts-listed-on-the-wrong-side", "prompt", "refused:InvalidPrompt")
def _published_prompt_side(mutate: bool) -> str:
    """A published L2 OOD draw (a·bᵐaʳ: an a before a b) also listed as ID."""
    from theory.conventions import prompt_set
    from theory.prompts import PromptSet

    ps = prompt_set("L2", "published")
    ids = ps.id_prompts + ((ps.ood_prompts[0],) if mutate else ())
    return constructed(lambda: PromptSet(ps.language, ids, ps.ood_prompts))


@mutant("ood-prompt-in-support", "prompt", "refused:InvalidPrompt")
def _smt_prompt_in_support(mutate: bool) -> str:
    """SMT synthesis asked to extrapolate from 'aa', a prefix of the training data (P(aa) = 1/2)."""
    return _synthesis(mutate_prompt=mutate)


# ---- SMT: synthesised models and lemma statements ---------------------------------------------------
def _ends_with_a(word: str) -> bool:
    return word.endswith("a")


@lru_cache(maxsize=None)
def _synthesised():
    from theory.smt import synthesize_extrapolator

    res = synthesize_extrapolator(ab_aab(), ["b"], _ends_with_a, 0, 3, satisfy=True)
    assert res.verified, res.reason
    return res


def _synthesis(mutate_prompt: bool = False, patches=None) -> str:
    from theory.smt import recheck_synthesis

    res = _synthesised()
    prompts = ["b", "aa"] if mutate_prompt else ["b"]
    model = PatchedModel(res.model, patches or {})

    try:
        r = recheck_synthesis(ab_aab(), prompts, _ends_with_a, 0, 3, model, satisfy=True)
    except NonidError as e:
        return f"refused:{type(e).__name__}"
    return "verified" if r.passed else "falsified"


@mutant("smt-model-violates-constraint", "smt", "falsified")
def _smt_violates(mutate: bool) -> str:
    """z3's synthesised extrapolator (every completion of 'b' ends in 'a') with its row at 'b' changed
    so the completion 'b' + EOS is possible: the exact re-check must reject the model."""
    res = _synthesised()
    if not mutate:
        return _synthesis()
    row = dict(res.model.next_token("b").as_dict())
    row[EOS] = row.get(EOS, 0) + Fraction(1, 2) * row.get("a", 0)
    row["a"] = Fraction(1, 2) * row.get("a", 0)
    return _synthesis(patches={"b": {t: p for t, p in row.items() if p}})


@mutant("smt-model-leaks-onto-support", "smt", "falsified")
def _smt_leak(mutate: bool) -> str:
    """The synthesised model with its row at the support prefix 'aa' changed: KL(P || Q) != 0."""
    return _synthesis(patches={"aa": {"a": 1}} if mutate else None)


def _lemma(prover: str, **variant) -> str:
    from theory import smt

    return verdict(lambda: getattr(smt, prover)(3, timeout_ms=20_000, **variant))


@mutant("lemma-a-without-support-hypothesis", "smt", "falsified")
def _lemma_a(mutate: bool) -> str:
    """Lemma A with its hypothesis dropped (the models need not agree anywhere): z3 must find a countermodel."""
    return _lemma("prove_lemma_a", hypothesis="none" if mutate else "support")


@mutant("lemma-b-claimed-for-all-prefixes", "smt", "falsified")
def _lemma_b(mutate: bool) -> str:
    """Lemma B overstated: KL = 0 would force q = p at *every* prefix (off the support too)."""
    return _lemma("prove_lemma_b", scope="all" if mutate else "support")


@mutant("lemma-c-without-node-fact", "smt", "falsified")
def _lemma_c(mutate: bool) -> str:
    """Gibbs' inequality without the per-node fact KL_u >= 0 that it rests on."""
    return _lemma("prove_lemma_c", node_fact=not mutate)


# ---- closed forms -----------------------------------------------------------------------------------
@mutant("closed-form-sign-flipped", "bound", "falsified")
def _closed_form(mutate: bool) -> str:
    """The a^n b^n entropy closed form with its sign flipped."""
    from theory import symbolic

    form = symbolic.anbn_entropy()
    res = symbolic.check_anbn_entropy(-form if mutate else form, ratios=(Fraction(1, 2),), depths=(8,))
    return {True: "verified", False: "falsified", None: "unknown"}[res.ok]


# ---- certificates -----------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def _certificate_json() -> str:
    return check_witness(witness()).to_json()


def _reparse(edit) -> str:
    d = json.loads(_certificate_json())
    if edit:
        edit(d)
    return verdict(lambda: Certificate.from_json(json.dumps(d)))


@mutant("certificate-format-bumped", "certificate", "refused:InvalidCertificate")
def _cert_format(mutate: bool) -> str:
    """A certificate written by an incompatible version (format 2)."""
    return _reparse((lambda d: d.update(format=2)) if mutate else None)


@mutant("certificate-falsified-without-reason", "certificate", "refused:InvalidCertificate")
def _cert_reason(mutate: bool) -> str:
    """A certificate edited to 'falsified' with no reason given."""
    return _reparse((lambda d: d.update(status="falsified")) if mutate else None)


@mutant("certificate-unknown-method", "certificate", "refused:InvalidCertificate")
def _cert_method(mutate: bool) -> str:
    """A certificate claiming a method the project does not have ('float-equality')."""
    return _reparse((lambda d: d.update(method="float-equality")) if mutate else None)


@mutant("certificate-field-missing", "certificate", "refused:InvalidCertificate")
def _cert_missing(mutate: bool) -> str:
    """A certificate with its claim deleted."""
    return _reparse((lambda d: d.pop("claim")) if mutate else None)


# ---- ICL (Proposition 2) ----------------------------------------------------------------------------
@lru_cache(maxsize=None)
def _icl(eta: int | None = None):
    from constructions.icl import GINCConfig, build_ginc, evaluate_icl, sample_prompts

    cfg = GINCConfig.small() if eta is None else GINCConfig.small(eta=eta, allow_zero_transitions=True)
    h = build_ginc(cfg)
    return evaluate_icl(h, sample_prompts(h, h.pretrain_concepts, (0, 4, 8, 16), 5, 30, seed=1))


@mutant("icl-zero-transitions", "data", "unknown")
def _icl_zero(mutate: bool) -> str:
    """The GINC mixture with eta = 0 (zero transitions): some prompts leave the support, so the
    epsilon > 0 surgery argument does not apply there."""
    from constructions.icl import surgery_certificate

    return verdict(lambda: surgery_certificate(_icl(0 if mutate else None), Fraction(3, 5), Fraction(1, 10**3)))


@lru_cache(maxsize=None)
def _population(same_concepts: bool = False, surgery_target: str = "label", r_model: str = "literal"):
    from constructions.icl.certify import evaluate_instance
    from constructions.icl.instance import learning_instance

    return evaluate_instance(learning_instance(same_concepts=same_concepts), 2, (0, 1, 2, 3), (Fraction(1, 10**6),),
                             name="mutant", surgery_target=surgery_target, r_model=r_model)


@mutant("icl-instance-without-icl-effect", "data", "falsified")
def _icl_no_effect(mutate: bool) -> str:
    """The designed instance with both concepts the same: P cannot learn anything from its examples,
    so the instance is refused for Proposition 2 (exact population accuracies: no effect >= 3/10)."""
    from constructions.icl.certify import icl_effect_certificate

    return verdict(lambda: icl_effect_certificate(_population(same_concepts=mutate), Fraction(3, 10)))


@mutant("icl-surgery-without-icl-effect", "data", "unknown")
def _icl_surgery_no_effect(mutate: bool) -> str:
    """The surgery certified on an instance whose P does not learn in context: not a witness of
    Proposition 2, whatever its accuracy gap."""
    from constructions.icl.certify import surgery_population_certificate

    return verdict(lambda: surgery_population_certificate(_population(same_concepts=mutate), Fraction(3, 5),
                                                          Fraction(1, 10**6)))


@mutant("icl-surgery-onto-the-delimiter", "witness", "falsified")
def _icl_surgery_delimiter(mutate: bool) -> str:
    """The surgery's mass moved onto the delimiter instead of a wrong label: every model is scored on
    the labels, so Q answers as P does and there is no gap (exact population accuracies)."""
    from constructions.icl.certify import surgery_population_certificate

    rep = _population(surgery_target="delimiter" if mutate else "label")
    return verdict(lambda: surgery_population_certificate(rep, Fraction(3, 5), Fraction(1, 10**6)))


@mutant("icl-r-that-learns-from-examples", "witness", "unknown")
def _icl_r_learns(mutate: bool) -> str:
    """The mixture's R replaced by P itself, a model that does learn from its examples: R's measured
    ICL gain exceeds the no-ICL bound (1/100), so the mixture is not certified."""
    from constructions.icl.certify import mixture_population_certificate

    rep = _population(r_model="bayes" if mutate else "literal")
    return verdict(lambda: mixture_population_certificate(rep, Fraction(1, 10**6)))


@mutant("icl-every-epsilon-boundary-is-evidence", "data", "unknown")
def _icl_every_eps_boundary(mutate: bool) -> str:
    """The every-epsilon surgery on an instance whose concepts differ in how often they enter the
    delimiter: an example boundary is then evidence of the concept, the factorisation lemma's
    hypotheses fail, and no claim for every epsilon is made."""
    from constructions.icl.hmm import MixtureHMM
    from constructions.icl.instance import learning_instance
    from constructions.icl.universal import surgery_every_epsilon_certificate

    h = learning_instance()
    concepts = [list(map(list, T)) for T in h.concepts]
    if mutate:  # concept 1 enters the delimiter twice as often from property 1
        row = concepts[1][1]
        row[0], row[1] = 2 * row[0], row[1] - row[0]
    m = MixtureHMM.from_matrices(h.emission, h.entity_transition, concepts, n_pretrain=2, vocab_size=5, delimiter=0,
                                 doc_length=h.doc_length)
    return verdict(lambda: surgery_every_epsilon_certificate(m, 2, Fraction(3, 5), Fraction(3, 10), name="mutant"))


@mutant("icl-mixture-every-epsilon-delta-above-floor", "witness", "unknown")
def _icl_mix_every_eps_delta(mutate: bool) -> str:
    """The every-epsilon mixture asked for Delta = 1/2, above what the proven floors give
    (acc_P >= 0.906 at every n, acc_Q = acc_R = 1/2): not certified."""
    from constructions.icl.instance import learning_instance
    from constructions.icl.universal import mixture_every_epsilon_certificate

    delta = Fraction(1, 2) if mutate else Fraction(3, 10)
    return verdict(lambda: mixture_every_epsilon_certificate(learning_instance(), 2, delta, name="mutant"))


@mutant("icl-delta-above-accuracy", "witness", "falsified")
def _icl_delta(mutate: bool) -> str:
    """The surgery certificate asked for an accuracy gap of 1 - 1e-12 (P is not that accurate)."""
    from constructions.icl import surgery_certificate

    delta = 1 - TINY if mutate else Fraction(1, 2)
    return verdict(lambda: surgery_certificate(_icl(), Fraction(3, 5), Fraction(1, 10**3), delta=delta))
