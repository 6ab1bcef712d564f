"""The exact evaluator: exact rational logits of a transformer's stored weights (hand-built networks by
hand, random ones inside their float enclosures), refusals for what it cannot compute exactly, and the
compiled pair's exact certificate with its design check seeing one ulp."""

import math
from fractions import Fraction

import pytest
import torch

from constructions.check import check_model_exact, cross_check, evaluate
from constructions.compile import compile_model
from constructions.enclosure import enclose
from constructions.exact_eval import NotExactlyEvaluable, exact_evaluate, row_bounds, tv_upper
from constructions.export import case_prefixes, load_case
from constructions.transformer import DecoderTransformer, TransformerConfig
from theory.errors import InvalidModelConfig


def _tiny() -> DecoderTransformer:
    """d_model 2: x₀ = [token is a], x₁ = [token is b]; the head (zero scores) adds the mean of x₀ to x₁;
    one ReLU unit adds ReLU(x₁ − 1) to x₀; logits (x₁, x₀, 0)."""
    cfg = TransformerConfig(alphabet="ab", d_model=2, n_heads=1, d_head=1, d_mlp=1, n_layers=1, max_len=4, norm="none")
    net = DecoderTransformer(cfg)
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        net.token_embedding.weight[0, 0] = 1.0
        net.token_embedding.weight[1, 1] = 1.0
        attn = net.blocks[0].attn
        attn.v_proj.weight[0, 0] = 1.0
        attn.o_proj.weight[1, 0] = 1.0
        mlp = net.blocks[0].mlp
        mlp.fc_in.weight[0, 1] = 1.0
        mlp.fc_in.bias[0] = -1.0
        mlp.fc_out.weight[0, 0] = 1.0
        net.unembed.weight[0, 1] = 1.0
        net.unembed.weight[1, 0] = 1.0
    return net


def test_a_hand_built_network_gives_the_hand_computed_rationals():
    ev = exact_evaluate(_tiny(), ["ab", "aab"])
    # 'ab': x₁ = 1 + (0 + 1 + 0)/3 = 4/3; the unit: 4/3 − 1 = 1/3 → x₀ = 1/3
    assert ev.row("ab") == (Fraction(4, 3), Fraction(1, 3), Fraction(0))
    assert ev.on("ab", 0) == ((0, Fraction(1, 3)),)
    # 'aab': x₁ = 1 + 2/4 = 3/2 → unit 1/2
    assert ev.row("aab") == (Fraction(3, 2), Fraction(1, 2), Fraction(0))
    # '' and 'a': x₁ = 0 resp. 1/2, the unit is off
    assert ev.row("") == (0, 0, 0) and ev.on("a", 0) == () and ev.row("a") == (Fraction(1, 2), Fraction(1), 0)


def test_the_log_softmax_bounds_are_tight_and_contain_the_true_value():
    from mpmath import mp, mpf

    z = (Fraction(4, 3), Fraction(1, 3), Fraction(0))
    rb = row_bounds(z)
    with mp.workprec(300):
        total = sum(mp.exp(mpf(x.numerator) / x.denominator) for x in z)
        for (lo, hi), x in zip(rb.log_prob, z):
            true = mpf(x.numerator) / x.denominator - mp.log(total)
            assert mpf(lo.numerator) / lo.denominator <= true <= mpf(hi.numerator) / hi.denominator
            assert hi - lo < Fraction(1, 2**100)
    assert tv_upper([Fraction(1), Fraction(0), Fraction(0)], rb) > Fraction(1, 3)


def _random_uniform_attention(seed: int, layers: int = 2) -> DecoderTransformer:
    cfg = TransformerConfig(alphabet="ab", d_model=8, n_heads=2, d_head=4, d_mlp=16, n_layers=layers, max_len=7,
                            norm="none", seed=seed)
    net = DecoderTransformer(cfg)
    with torch.no_grad():
        for block in net.blocks:
            block.attn.k_proj.weight.zero_()  # keys = the bias at every position: every row's scores are equal
    return net


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_on_random_networks_the_exact_value_lies_inside_the_float_enclosure(seed):
    from constructions.compile import PrefixSet

    net = _random_uniform_attention(seed)
    words = ["".join("ab"[(seed + i * 7 + j * 3) % 2 if (i + j) % 3 else 1] for j in range(6)) for i in range(6)]
    ps = PrefixSet.closure("ab", words)
    ev = exact_evaluate(net, ps.prefixes)
    bounds = tuple(row_bounds(ev.row(u)) for u in ps.prefixes)
    enc = enclose(net, ps.maximal, ps.prefixes)
    n, outside = cross_check(bounds, enc)
    assert n == 3 * len(ps) and outside == []
    z = evaluate(net, ps)  # and the float pass is close to the exact logits
    assert max(abs(float(x) - y) for r, zr in zip(ev.logits, z) for x, y in zip(r, zr)) < 1e-12


def test_the_evaluation_is_a_function_of_the_weights_alone():
    net = _random_uniform_attention(3)
    full = exact_evaluate(net, ["abba", "baab", "aaaa"])
    part = exact_evaluate(net, ["aaaa", "ab"])
    for u in ("", "a", "ab", "aa", "aaaa"):
        assert full.row(u) == part.row(u)  # exact equality: no batching or order in it


def test_networks_it_cannot_compute_exactly_are_refused_with_the_reason():
    cfg = dict(alphabet="ab", d_model=8, n_heads=2, d_head=4, d_mlp=16, n_layers=1, max_len=5)
    with pytest.raises(NotExactlyEvaluable, match="LayerNorm"):
        exact_evaluate(DecoderTransformer(TransformerConfig(**cfg, norm="pre")), ["ab"])
    with pytest.raises(NotExactlyEvaluable, match="gelu"):
        exact_evaluate(DecoderTransformer(TransformerConfig(**cfg, norm="none", activation="gelu")), ["ab"])
    with pytest.raises(NotExactlyEvaluable, match="attention row of layer 0, head 0 at prefix 'a'"):
        exact_evaluate(DecoderTransformer(TransformerConfig(**cfg, norm="none")), ["ab"])  # random keys
    net = _random_uniform_attention(0, layers=1)
    with torch.no_grad():
        net.unembed.bias[0] = math.inf
    with pytest.raises(NotExactlyEvaluable, match="non-finite"):
        exact_evaluate(net, ["a"])
    assert issubclass(NotExactlyEvaluable, InvalidModelConfig)


@pytest.fixture(scope="module")
def compiled():
    case = load_case("anbn", 3)
    ps = case_prefixes(case)
    return case, ps, compile_model(case.completer, ps)[0], compile_model(case.violator, ps)[0]


def test_the_compiled_network_is_exactly_its_design(compiled):
    from proofs.compiled import design_problems

    case, ps, q1, q2 = compiled
    for net, model in ((q2, case.violator), (q1, case.completer)):
        ev = exact_evaluate(net, ps.prefixes)
        assert design_problems(net, model, ps, ev) == []
    # the design's pre-activation is not exactly the margin where n + 2 is not a power of two
    assert ev.on("aab", 1)[0][1] == 1 + Fraction(1, 2**53) and ev.on("aa", 1)[0][1] == 1


@pytest.mark.parametrize("where", ["bias", "logit", "c2"])
def test_one_ulp_is_invisible_to_tv_and_visible_to_the_design_check(compiled, where):
    from proofs.compiled import design_problems

    case, ps, q1, _ = compiled
    bad = q1.clone()
    k = ps.prefixes.index("aab")
    mlp = bad.blocks[1].mlp
    with torch.no_grad():
        if where == "bias":
            mlp.fc_in.bias[k] = math.nextafter(float(mlp.fc_in.bias[k]), 0.0)
        elif where == "logit":
            row = bad.config.d_model - bad.config.n_outputs + 1  # the logit of 'b' at 'aab'
            mlp.fc_out.weight[row, k] = math.nextafter(float(mlp.fc_out.weight[row, k]), -math.inf)
        else:
            col = int(torch.nonzero(mlp.fc_in.weight[k]).flatten()[-1])  # JOINT(n, wₙ): c₂ = 2(n+1)/(n+2)
            mlp.fc_in.weight[k, col] = math.nextafter(float(mlp.fc_in.weight[k, col]), math.inf)
    xc = check_model_exact(bad, case.completer, ps, data=case.data)
    assert xc.model.within_tolerance and xc.model.max_tv < 1e-15  # far below any tolerance
    problems = design_problems(bad, case.completer, ps, xc.evaluation)
    assert problems and "prefix 'aab'" in problems[0], problems


def test_the_exact_certificate_of_a_compiled_pair(compiled):
    from proofs.compiled import certify_compiled

    case, ps, q1, q2 = compiled
    cert = certify_compiled(case, ps, q1, q2)
    assert cert.verified, cert.reason
    assert "no floating-point operation" in cert.claim and "design" in cert.claim
    assert any("exact rational arithmetic" in a for a in cert.assumptions)
    q = cert.quantities["q1"]
    assert q["evaluation"] == "exact" and q["cross_check"]["exact_values_outside_enclosure"] == 0
    assert float(q["max_tv_upper"]) < 1e-16 and q["ood_r1"]["exact"] == "1"


def test_an_evaluator_disagreement_is_found(compiled):
    case, ps, q1, _ = compiled
    xc = check_model_exact(q1, case.completer, ps)
    other = q1.clone()
    with torch.no_grad():
        other.unembed.bias[0] = 1e-6  # a different network's enclosure: the exact values are outside it
    n, outside = cross_check(xc.bounds, enclose(other, ps.maximal, ps.prefixes))
    assert outside and n == 3 * len(ps) and "prefix" in outside[0]
