"""The z3 back-end (theory.smt): Lemmas A–C come back verified, false variants come back falsified
with a countermodel, synthesis returns models the exact checker accepts (and rejects once a support
row is altered), budgets and timeouts give ``unknown`` instead of hanging, bad input raises."""

import subprocess
import sys
import time
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("z3")

from theory import smt  # noqa: E402
from theory.alphabet import EOS, Alphabet  # noqa: E402
from theory.certificate import Status  # noqa: E402
from theory.data import FiniteDistribution  # noqa: E402
from theory.errors import InvalidBudget, InvalidDistribution, InvalidLanguage, InvalidPrompt, InvalidSolverOption, UnknownToken  # noqa: E402
from theory.languages import get_language  # noqa: E402
from theory.losses import kl_divergence  # noqa: E402
from theory.models import PatchedModel  # noqa: E402
from theory.strategies import data_with_ood_prompts  # noqa: E402

AB = Alphabet("ab")
PROVERS = {"a": smt.prove_lemma_a, "b": smt.prove_lemma_b, "c": smt.prove_lemma_c}
FALSE_VARIANTS = [("a", {"hypothesis": "none"}), ("a", {"hypothesis": "off-support"}), ("b", {"scope": "all"}),
                  ("c", {"node_fact": False})]
ANBN = FiniteDistribution.uniform(AB, ["ab", "aabb", "aaabbb"], name="anbn-3")
R1 = get_language("L3").r1  # #a = #b


def test_model_space_size():
    assert smt.model_space_size("ab", 12) == 3 * (2**13 - 1) == 24_573
    assert smt.model_space_size("abc", 2) == 4 * 13
    assert smt.model_space_size("a", 3) == 2 * 4


@pytest.mark.parametrize("lemma", "abc")
@pytest.mark.parametrize("encoding", ["modular", "monolithic"])
@pytest.mark.parametrize("alphabet, horizons", [("ab", (1, 2, 3, 4)), ("abc", (1, 2)), ("a", (1, 3))])
def test_lemmas_verified_at_small_horizons(lemma, encoding, alphabet, horizons):
    for L in horizons:
        r = PROVERS[lemma](L, alphabet, encoding=encoding, timeout_ms=20_000)
        assert r.status is Status.VERIFIED, (L, r.reason)
        assert r.horizon == L and r.encoding == encoding and r.reason == ""
        assert r.model_variables == smt.model_space_size(alphabet, L)
        assert r.variables > r.model_variables and r.assertions > 0 and r.assumptions
        assert r.z3_version == smt.z3_version()
        if encoding == "modular":
            assert [s.status for s in r.subproofs] == [Status.VERIFIED] * 2
            nodes = r.model_variables // (len(alphabet) + 1)
            assert r.instances == nodes and r.direct == ()  # every node checked, every node an instance
            assert f"checked at each of the {nodes:,} nodes" in r.assumptions[-1]
        else:
            assert r.instances == 0 and not any(a.startswith("modular proof") for a in r.assumptions)


def test_modular_proof_at_horizon_ten_counts_variables():
    r = smt.prove_lemma_a(10)
    assert r.verified
    assert r.model_variables == 3 * (2**11 - 1)
    assert r.variables == 10 * (2**11 - 1)  # P(u), P({u}), G1, G2, two rows of three


@pytest.mark.parametrize("lemma, variant", FALSE_VARIANTS)
@pytest.mark.parametrize("encoding", ["modular", "monolithic"])
def test_false_lemmas_are_falsified_with_a_countermodel(lemma, variant, encoding):
    r = PROVERS[lemma](3, encoding=encoding, timeout_ms=20_000, **variant)
    assert r.status is Status.FALSIFIED, r.reason
    assert r.countermodel and "countermodel" in r.reason
    assert any("false variant" in a for a in r.assumptions)


# ---- the instantiation check of the modular encoding and the root-only variants --------------------
@pytest.mark.parametrize("lemma", "abc")
@pytest.mark.parametrize("encoding, horizons", [("modular", (1, 2, 4, 6)), ("monolithic", (1, 2, 4))])
def test_root_only_false_variants_are_falsified_by_both_encodings(lemma, encoding, horizons):
    for L in horizons:
        r = PROVERS[lemma](L, encoding=encoding, variant="root-only", timeout_ms=20_000)
        assert r.status is Status.FALSIFIED, (L, r.reason)
        assert r.countermodel and "countermodel" in r.reason
        assert any(a.startswith("false variant (root-only)") for a in r.assumptions)
        if encoding == "modular":  # the root gets no node-lemma instance; every other node does
            assert r.direct == ("ε",) and r.instances == 2 ** (L + 1) - 2
            assert "asserted directly with no node-lemma instance" in r.assumptions[-1] and "ε" in r.assumptions[-1]
            assert [s.status for s in r.subproofs] == [Status.VERIFIED] * 2  # the generic node lemmas still hold


class _EveryNodeAnInstance(smt._LemmaB):
    """A spec that (wrongly, under the root-only variant) declares the root an instance."""

    def instance(self, n) -> bool:
        return True


class _RootAsserted(smt._LemmaB):
    """A spec that (needlessly) asserts the root's facts directly."""

    def instance(self, n) -> bool:
        return not n.root


def _prove_spec(spec, horizon=4, **kw):
    return smt._prove(spec, "ab", horizon, "modular", 20_000, smt.DEFAULT_MAX_VARIABLES, **kw)


def test_a_root_variant_posing_as_an_instance_is_caught(monkeypatch):
    r = _prove_spec(_EveryNodeAnInstance(3, variant="root-only"))
    assert r.status is Status.UNKNOWN and r.countermodel == ()
    assert r.reason.startswith("instantiation check failed: node 0 (prefix ε) is not an instance of the node lemma "
                               "lemma-b-node-internal")
    assert "(= d0 false)" in r.reason and r.instances == 0
    assert _prove_spec(_EveryNodeAnInstance(3)).verified  # the true lemma through the same spec class
    # the check is what closes the hole: without it the node lemma, trusted at the root, "proves" the false claim
    monkeypatch.setattr(smt, "_instance_error", lambda *args: "")
    assert _prove_spec(_EveryNodeAnInstance(3, variant="root-only")).verified


def test_a_node_asserted_directly_keeps_the_proof_sound():
    r = _prove_spec(_RootAsserted(3))
    assert r.verified and r.direct == ("ε",) and r.instances == 30
    assert _prove_spec(_RootAsserted(3, variant="root-only")).status is Status.FALSIFIED


@pytest.mark.parametrize("node, rewire, fragment", [
    (1, {"mu1": "m2"}, "premise 0 instantiates to (= m1 (+ e1 m3 m2)) but the assembly asserts (= m1 (+ e1 m3 m4))"),
    (1, {"eu": "e2"}, "(= m1 (+ e2 m3 m4))"),                       # the end mass of the sibling
    (2, {"pu_1": "q2_1"}, "premise"),                                # a data row entry wired to the model row
    (0, {"su0": "s2"}, "premise"),                                   # the root's sum over its children
    (3, {"wu1": "w7"}, "premise"),                                   # a child's flag from the wrong child
    (20, {"ku": "k19"}, "premise"),                                  # at a leaf
])
def test_a_miswired_instance_is_unknown_naming_the_node(node, rewire, fragment):
    tree = smt._Tree(AB, 4)
    r = _prove_spec(smt._LemmaB(3), rewire={node: rewire})
    assert r.status is Status.UNKNOWN, r.reason
    assert f"node {node} (prefix {tree.prefix(node)}) is not an instance" in r.reason and fragment in r.reason
    assert r.assertions == 0 and r.instances == 0  # no assembly was solved
    assert [s.status for s in r.subproofs] == [Status.VERIFIED] * 2


def test_a_generic_constant_without_counterpart_is_unknown():
    r = _prove_spec(smt._LemmaC(3), rewire={5: {"mu0": "nowhere"}})
    assert r.status is Status.UNKNOWN and "node 5 (prefix ba)" in r.reason and "nowhere" in r.reason
    lemma = smt._node_lemma(smt._LemmaC(3), 2, False, 10_000)
    n = smt._Node("5", ("11", "12"), False)
    sigma = smt._renaming(smt._LemmaC(3), lemma, n)
    del sigma["mu1"]
    assert "constant mu1 has no counterpart" in smt._instance_error(
        lemma, sigma, smt._LemmaC(3).facts(n), [smt._LemmaC(3).invariant(c) for c in n.children], smt._LemmaC(3).invariant("5"))
    assert "it has 0 children" in smt._instance_error(lemma, sigma, [], [], "")


def test_an_unproved_node_lemma_is_not_used():
    r = smt.prove_lemma_c(3, node_fact=False)  # neither node lemma holds without KL_u >= 0
    assert r.status is Status.FALSIFIED and "node lemma not proved" in r.reason
    assert r.instances == 0 and len(r.direct) == 15 and "not used because z3 did not prove them" in r.assumptions[-1]
    assert r.countermodel  # a countermodel of the assembly, i.e. of the global negated claim


def test_tree_prefixes_in_level_order():
    tree = smt._Tree(AB, 3)
    assert [tree.prefix(i) for i in range(tree.size)] == [
        "ε", "a", "b", "aa", "ab", "ba", "bb", "aaa", "aab", "aba", "abb", "baa", "bab", "bba", "bbb"]


def test_instantiation_quantities():
    q = smt.prove_lemma_a(3).quantities()
    assert q["instantiation"] == {"instances_checked": 15, "asserted_directly": []}
    q = smt.prove_lemma_a(3, variant="root-only").quantities()
    assert q["instantiation"] == {"instances_checked": 14, "asserted_directly": ["ε"]}
    assert "instantiation" not in smt.prove_lemma_a(3, encoding="monolithic").quantities()


def test_node_gibbs_lemma():
    for outcomes, form in [(2, "ratio"), (3, "ratio"), (3, "scaled"), (4, None), (6, "scaled")]:
        r = smt.prove_node_gibbs(outcomes, form=form, timeout_ms=20_000)
        assert r.verified, (outcomes, form, r.reason)
        assert any("ln" in a for a in r.assumptions)


# ---- budgets, timeouts, bad input ----------------------------------------------------------------
def test_variable_budget_gives_unknown_without_solving():
    start = time.perf_counter()
    r = smt.prove_lemma_b(16, max_variables=1000)
    assert r.status is Status.UNKNOWN and "budget" in r.reason and f"{r.variables:,}" in r.reason
    assert time.perf_counter() - start < 1
    s = smt.synthesize_extrapolator(ANBN, ["b"], R1, 0, 8, max_variables=10)
    assert s.status is Status.UNKNOWN and "budget" in s.reason and s.model is None


def test_timeouts_give_unknown_not_a_hang():
    start = time.perf_counter()
    r = smt.prove_lemma_a(8, encoding="monolithic", timeout_ms=300)  # needs far more than 0.3 s
    assert r.status is Status.UNKNOWN and "timeout" in r.reason
    r = smt.prove_lemma_c(10, timeout_ms=1)
    assert r.status is Status.UNKNOWN and "timeout" in r.reason
    assert time.perf_counter() - start < 10


@pytest.mark.parametrize("horizon", [0, -1, True, 1.5, "3"])
def test_bad_horizon(horizon):
    with pytest.raises(InvalidBudget, match="horizon"):
        smt.prove_lemma_a(horizon)
    with pytest.raises(InvalidBudget, match="horizon"):
        smt.synthesize_extrapolator(ANBN, ["b"], R1, 0, horizon)
    with pytest.raises(InvalidBudget, match="horizon"):
        smt.model_space_size("ab", horizon)


def test_bad_options():
    with pytest.raises(InvalidSolverOption, match="'fast'"):
        smt.prove_lemma_b(2, encoding="fast")
    with pytest.raises(InvalidBudget, match="timeout_ms 0"):
        smt.prove_lemma_c(2, timeout_ms=0)
    with pytest.raises(InvalidSolverOption, match="'maybe'"):
        smt.prove_lemma_a(2, hypothesis="maybe")
    with pytest.raises(InvalidSolverOption, match="'some'"):
        smt.prove_lemma_b(2, scope="some")
    with pytest.raises(InvalidBudget, match="outcomes 1"):
        smt.prove_node_gibbs(1)
    for prove in PROVERS.values():
        with pytest.raises(InvalidSolverOption, match="variant 'leaf-only'"):
            prove(2, variant="leaf-only")


@pytest.mark.parametrize("kwargs, error, fragment", [
    ({"delta": 1}, InvalidDistribution, "delta 1 must lie in"),
    ({"delta": Fraction(3, 2)}, InvalidDistribution, "exceeds 1"),
    ({"delta": Fraction(-1, 2)}, InvalidDistribution, "negative"),
    ({"delta": 0.1}, InvalidDistribution, "float"),
    ({"prompts": ["aab"]}, InvalidPrompt, "'aab' is in the support"),
    ({"prompts": ["bbbbbbbbb"]}, InvalidPrompt, "'bbbbbbbbb' has length 9, longer than the horizon 8"),
    ({"prompts": ["bc"]}, UnknownToken, "'c'"),
    ({"prompts": []}, InvalidPrompt, "empty"),
    ({"prompts": "b"}, InvalidPrompt, "single string"),
    ({"rule": 42}, InvalidLanguage, "42"),
    ({"rule": get_language("L5").r1}, InvalidLanguage, "'abc'"),
])
def test_bad_synthesis_input(kwargs, error, fragment):
    args = {"P": ANBN, "prompts": ["b"], "rule": R1, "delta": 0, "horizon": 8} | kwargs
    with pytest.raises(error, match=fragment):
        smt.synthesize_extrapolator(**args)


# ---- synthesis ------------------------------------------------------------------------------------
def completions(model, prompt: str, horizon: int):
    """(completion, probability) for every completion ending in EOS within the horizon — a brute-force
    enumeration, independent of theory.properties."""
    out, stack = [], [(prompt, Fraction(1))]
    while stack:
        v, mass = stack.pop()
        row = model.next_token(v)
        if row.prob(EOS):
            out.append((v[len(prompt):], mass * row.prob(EOS)))
        if len(v) < horizon:
            stack += [(v + a, mass * row.prob(a)) for a in model.alphabet.symbols if row.prob(a)]
    return out


def assert_accepted(P, prompts, rule, delta, horizon, result, satisfy):
    assert result.status is Status.VERIFIED, result.reason
    assert result.recheck.passed and result.recheck.kl_zero
    assert kl_divergence(P, result.model).is_zero
    accepts = rule.accepts if hasattr(rule, "accepts") else rule
    for u in prompts:
        hit = sum((p for z, p in completions(result.model, u, horizon) if bool(accepts(u + z)) == satisfy), Fraction(0))
        assert hit >= 1 - Fraction(delta), (u, hit)
    for row in result.rows.values():
        assert all(isinstance(p, Fraction) for p in row.values()) and sum(row.values()) == 1


@pytest.mark.parametrize("satisfy", [False, True])
def test_anbn_extrapolator_and_violator(satisfy):
    prompts = ["b", "ba", "bb", "abb", "aaaa"]
    res = smt.synthesize_extrapolator(ANBN, prompts, R1, 0, 8, satisfy=satisfy)
    assert_accepted(ANBN, prompts, R1, 0, 8, res, satisfy)
    assert res.variables > 0 and res.assertions > 0 and res.z3_version == smt.z3_version()


RULES = [get_language("L3").r1, get_language("L1").r1, lambda w: w.endswith("b"), lambda w: len(w) % 3 == 0]


@settings(max_examples=25)
@given(data_with_ood_prompts(max_len=3, max_prompt_len=3, max_prompts=3), st.sampled_from(RULES),
       st.sampled_from([Fraction(0), Fraction(1, 3), Fraction(9, 10)]), st.booleans())
def test_synthesis_on_random_instances_is_accepted_by_the_exact_checker(data, rule, delta, satisfy):
    P, prompts = data
    horizon = 7  # ≥ prompt length + 4: every rule above can be met or broken from every prompt
    res = smt.synthesize_extrapolator(P, prompts, rule, delta, horizon, satisfy=satisfy)
    assert_accepted(P, prompts, rule, delta, horizon, res, satisfy)


def test_altering_a_support_row_is_rejected_by_the_recheck():
    prompts = ["b", "abb"]
    res = smt.synthesize_extrapolator(ANBN, prompts, R1, 0, 8)
    assert res.verified
    for u in ("", "a", "aab"):  # support prefixes
        altered = PatchedModel(res.model, {u: {EOS: 1} if ANBN.conditional(u).prob(EOS) == 0 else {"a": 1}})
        check = smt.recheck_synthesis(ANBN, prompts, R1, 0, 8, altered)
        assert not check.passed and not check.kl_zero and "KL" in check.failures[0]


def test_altering_a_prompt_row_is_rejected_by_the_recheck():
    res = smt.synthesize_extrapolator(ANBN, ["b"], R1, 0, 8)  # violator: never #a = #b after "b"
    altered = PatchedModel(res.model, {"b": {"a": 1}, "ba": {EOS: 1}})  # "ba" satisfies R1
    check = smt.recheck_synthesis(ANBN, ["b"], R1, 0, 8, altered)
    assert check.kl_zero and not check.passed and "'b'" in check.failures[0]


def test_impossible_synthesis_is_falsified():
    always = smt.synthesize_extrapolator(ANBN, ["b", "bb"], lambda w: True, 0, 6)
    assert always.status is Status.UNKNOWN  # nested prompts: the encoding is conservative
    res = smt.synthesize_extrapolator(ANBN, ["b"], lambda w: True, 0, 6)
    assert res.status is Status.FALSIFIED and "unsat" in res.reason and res.model is None
    far = smt.synthesize_extrapolator(ANBN, ["aaaa"], R1, 0, 6, satisfy=True)  # needs four b's, room for two
    assert far.status is Status.FALSIFIED


def test_import_theory_does_not_import_z3():
    code = "import sys, theory, theory.smt; assert 'z3' not in sys.modules, 'z3 imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(__import__("pathlib").Path(__file__).parents[1]))


def test_proof_checks():
    from proofs.smt_lemmas import CHECKS

    names = [c.name for c in CHECKS]
    assert names == [f"z3-lemma-{x}-h{L}" for x in "abc" for L in (6, 10, 12)] + ["z3-node-gibbs", "z3-synthesis-anbn"]
    for c in CHECKS:
        if c.name.endswith(("h10", "h12")):
            continue
        cert = c.run()
        assert cert.verified and cert.method == "smt", (c.name, cert.reason)
        assert "z3" in cert.detail and cert.assumptions
        if c.name.startswith("z3-lemma"):
            assert {"horizon", "variables", "assertions", "z3_version"} <= set(cert.quantities)
            assert "solver_seconds" not in cert.quantities and cert.timings["solver_seconds"] >= 0
            assert "solver_seconds" in cert.to_dict(timings=True)["timings"] and "timings" not in cert.to_dict()
            assert "381 vars/model" in cert.detail and "unsat" in cert.detail
            assert "node-lemma premises checked at 127 nodes" in cert.detail
            assert any("checked at each of the 127 nodes" in a for a in cert.assumptions)


def test_prove_lemmas_in_processes_gives_the_same_verdicts():
    seq = smt.prove_lemmas(6, jobs=1)
    par = smt.prove_lemmas(6, jobs=2)
    assert set(seq) == set(par) == {"a", "b", "c"}
    for x in "abc":
        assert seq[x].verified and par[x].verified
        assert (seq[x].variables, seq[x].assertions) == (par[x].variables, par[x].assertions)
    with pytest.raises(InvalidBudget, match="'abd'"):
        smt.prove_lemmas(6, "abd")
    with pytest.raises(InvalidBudget):
        smt.prove_lemmas(6, jobs=0)
