"""The per-block symbolic proof of Proposition 3 (theory.symbolic_blocks, check ``prop-3-blocks``):
it verifies the real standard maps, reads its factors from the maps' steps (so a wrong inverse, a
one-sided scaling or an uninverted output factor is falsified, naming the identity), refuses GELU and
tanh for an MLP scaling with an exact witness, and gives no verdict on what it does not cover."""

from dataclasses import replace

import pytest

from constructions import finetuning as ft
from proofs.prop3_blocks import check_blocks
from theory.errors import InvalidModelConfig, InvalidReparametrisation
from theory.symbolic_blocks import prove_blocks, relu_lemma

CFG = ft.Proposition3Setup().config


def test_the_check_verifies_the_standard_maps():
    cert = check_blocks()
    assert cert.status.value == "verified", cert.reason
    assert cert.method == "symbolic"
    q = cert.quantities
    # every map the numeric prop-3 checks apply, the power-of-two families included
    assert set(q["maps"]) == {"qk", "vo", "mlp", "qk-pow2", "vo-pow2", "mlp-pow2", "permutation"}
    assert q["layernorm_placements"] == ["pre", "post", "none"]
    # the factors were read from the real maps: per-head alphas as powers of positive symbols
    assert q["maps"]["qk"]["factor_readings"]["2.5"] == "alpha1"
    assert q["maps"]["qk"]["factor_readings"]["0.4"] == "1/alpha1"
    assert q["maps"]["permutation"]["layers"]["0"]["head_permutation"] == [1, 0]
    assert q["maps"]["permutation"]["layers"]["1"]["mlp_units_permuted"] is True
    assert any("argued" in a for a in cert.assumptions) and any("decided by sympy" in a for a in cert.assumptions)


def test_the_relu_lemma_is_proved():
    assert relu_lemma() == (True, "")


def test_a_wrong_inverse_is_falsified_naming_the_score_identity():
    proof = prove_blocks({"wrong": ft.wrong_inverse_qk_scaling(CFG, 0, 1, 2.0)})
    assert proof.status == "falsified" and not proof.outside
    assert len(proof.failures) == 1
    assert "layer 0 head 1: scores" in proof.failures[0] and "1/alpha1" in proof.failures[0]
    assert check_blocks({"wrong": ft.wrong_inverse_qk_scaling(CFG, 0, 1, 2.0)}).status.value == "falsified"


def test_a_one_sided_mlp_scaling_is_falsified():
    good = ft.mlp_scaling(CFG, 0, 3.0)
    bad = replace(good, steps=good.steps[:2], name="one-sided")
    proof = prove_blocks(bad)
    assert proof.status == "falsified"
    assert "layer 0: MLP" in proof.failures[0]


def test_an_uninverted_output_factor_is_falsified():
    good = ft.vo_scaling(CFG, 1, 0, 2.0)
    bad = replace(good, steps=good.steps[:2] + (replace(good.steps[2], factor=2.0),))
    proof = prove_blocks(bad)
    assert proof.status == "falsified" and "head output" in proof.failures[0]


def test_gelu_and_tanh_falsify_an_mlp_scaling_with_an_exact_witness_but_not_the_other_maps():
    mlp = ft.mlp_scaling(CFG, 0, 3.0)
    for activation, k in (("gelu", 2), ("tanh", 3)):
        proof = prove_blocks(mlp, activation=activation)
        assert proof.status == "falsified"
        assert "not positively homogeneous" in proof.failures[0] and f"d^{k}/dz^{k}" in proof.failures[0]
    # the attention maps and the permutations never touch sigma's homogeneity
    perm = ft.compose(ft.hidden_unit_permutation(CFG, 0, list(reversed(range(CFG.d_mlp)))), ft.qk_scaling(CFG, 0, 0, 3.0),
                      ft.vo_scaling(CFG, 1, 1, 0.5))
    assert prove_blocks(perm, activation="gelu").status == "verified"
    # and the constructor itself refuses a GELU model
    from theory.errors import NotPositivelyHomogeneous

    with pytest.raises(NotPositivelyHomogeneous):
        ft.mlp_scaling(replace(CFG, activation="gelu"), 0, 3.0)


def test_compositions_across_heads_layers_and_permutations_verify():
    m = ft.compose(ft.qk_scaling(CFG, 0, 0, 2.0), ft.head_permutation(CFG, 0, [1, 0]), ft.vo_scaling(CFG, 0, 0, 7.0),
                   ft.mlp_scaling(CFG, 1, 0.3), ft.hidden_unit_permutation(CFG, 1, list(range(1, CFG.d_mlp)) + [0]),
                   ft.qk_scaling(CFG, 0, 1, 5.0))
    proof = prove_blocks(m)
    assert proof.status == "verified", proof.failures + proof.outside
    layer0 = proof.quantities["maps"][m.name]["layers"]["0"]
    assert layer0["head_permutation"] == [1, 0]
    assert layer0["heads"]["1"]["qk_factors"] == [["alpha1*alpha4", "alpha1*alpha4", "1/(alpha1*alpha4)", "1/(alpha1*alpha4)"]]


def test_a_partial_head_slice_is_proved_class_by_class():
    good = ft.qk_scaling(CFG, 0, 0, 2.0)
    half = replace(good, steps=tuple(replace(s, stop=4) for s in good.steps))
    proof = prove_blocks(half)
    assert proof.status == "verified"
    assert len(proof.quantities["maps"][half.name]["layers"]["0"]["heads"]["0"]["qk_factors"]) == 2


def test_what_the_proof_does_not_cover_is_unknown_not_a_verdict():
    ln = ft.ParameterMap("ln gain", (ft.SliceScale("blocks.0.ln_attn.weight", 0, 0, 4, 2.0),), ft.qk_scaling(CFG, 0, 0, 2).shape)
    assert prove_blocks(ln).status == "unknown"
    assert check_blocks({"ln": ln}).status.value == "unknown"
    q_only = ft.ParameterMap("q rows only", (ft.SlicePermutation("blocks.0.attn.q_proj.weight", 0, 0, 2, (1, 0)),), ln.shape)
    assert "permuted differently" in prove_blocks(q_only).outside[0]
    # 2 * 3 * (1/6) = 1 up to rounding, but read as three unrelated symbols: no verdict, not "falsified"
    m = ft.mlp_scaling(CFG, 0, 2.0)
    tri = replace(m, steps=(replace(m.steps[0], factor=2.0), replace(m.steps[1], factor=2.0),
                            replace(m.steps[0], factor=3.0), replace(m.steps[1], factor=3.0),
                            replace(m.steps[2], factor=1 / 6)))
    assert prove_blocks(tri).status == "unknown"


@pytest.mark.parametrize("factor", [0.0, -2.0, float("nan"), float("inf")])
def test_a_bad_factor_is_refused_naming_it(factor):
    good = ft.qk_scaling(CFG, 0, 0, 2.0)
    bad = replace(good, steps=(replace(good.steps[0], factor=factor),) + good.steps[1:])
    with pytest.raises(InvalidReparametrisation, match=repr(factor) if factor == factor else "nan"):
        prove_blocks(bad)


def test_other_bad_input_is_refused():
    with pytest.raises(InvalidModelConfig, match="swish"):
        prove_blocks(ft.qk_scaling(CFG, 0, 0, 2.0), activation="swish")
    with pytest.raises(InvalidReparametrisation, match="ParameterMap"):
        prove_blocks({"x": 3})
    with pytest.raises(InvalidReparametrisation, match="empty"):
        prove_blocks({})
    good = ft.qk_scaling(CFG, 0, 0, 2.0)
    with pytest.raises(InvalidReparametrisation, match="0:40"):
        prove_blocks(replace(good, steps=(replace(good.steps[0], stop=40),)))
    with pytest.raises(InvalidReparametrisation, match="layer 7"):
        prove_blocks(replace(good, steps=(replace(good.steps[0], parameter="blocks.7.attn.q_proj.weight"),)))
    perm = ft.head_permutation(CFG, 0, [1, 0])
    with pytest.raises(InvalidReparametrisation, match="not a permutation"):
        prove_blocks(replace(perm, steps=(replace(perm.steps[0], order=(0,) * 16),)))


def test_a_dense_transform_is_outside_the_proof():
    from constructions.finetuning.maps import DenseTransform

    step = DenseTransform("token_embedding.weight", 1, tuple(tuple(float(i == j) for j in range(CFG.d_model)) for i in range(CFG.d_model)))
    m = ft.ParameterMap("dense", (step,), ft.qk_scaling(CFG, 0, 0, 2).shape)
    proof = prove_blocks(m)
    assert proof.status == "unknown" and "DenseTransform" in proof.outside[0]
