"""Proposition 3: the function-preserving maps on random small transformers (function equality,
gradients against autograd in float64), the fine-tuning gap and its control, the wrong inverse caught,
bad input refused, and the proof checks."""

import math
import subprocess
import sys
from dataclasses import replace
from fractions import Fraction

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from constructions import finetuning as ft
from constructions.transformer import ACTIVATIONS, NORMS, DecoderTransformer, TransformerConfig
from theory.certificate import Status
from theory.errors import InputTooLong, InvalidReparametrisation, InvalidTrainingOption, NotPositivelyHomogeneous

SMALL = TransformerConfig(alphabet="ab", d_model=8, n_heads=2, d_head=4, d_mlp=8, n_layers=2, max_len=8)


# -- strategies ----------------------------------------------------------------------------------

@st.composite
def small_models(draw, activations=("relu",)) -> DecoderTransformer:
    """Random small float64 transformers: alphabet, widths, depth, LayerNorm placement, seed."""
    cfg = TransformerConfig(
        alphabet=draw(st.sampled_from(["ab", "abc"])), d_model=draw(st.sampled_from([4, 8])),
        n_heads=draw(st.integers(1, 3)), d_head=draw(st.integers(1, 4)), d_mlp=draw(st.integers(1, 8)),
        n_layers=draw(st.integers(1, 2)), max_len=6, norm=draw(st.sampled_from(NORMS)),
        activation=draw(st.sampled_from(activations)), seed=draw(st.integers(0, 2**31 - 1)),
    )
    return DecoderTransformer(cfg)


alphas = st.floats(min_value=1 / 16, max_value=16, allow_nan=False).filter(lambda a: a > 0)


@st.composite
def function_preserving_maps(draw, model: DecoderTransformer) -> ft.ParameterMap:
    """A random scaling or permutation (or a composition of two) valid for ``model``."""
    cfg = model.config

    def one():
        kind = draw(st.sampled_from(["qk", "vo", "mlp", "heads", "units"]))
        layer = draw(st.integers(0, cfg.n_layers - 1))
        if kind in ("qk", "vo"):
            head = draw(st.integers(0, cfg.n_heads - 1))
            return (ft.qk_scaling if kind == "qk" else ft.vo_scaling)(model, layer, head, draw(alphas))
        if kind == "mlp":
            return ft.mlp_scaling(model, layer, draw(alphas))
        n = cfg.n_heads if kind == "heads" else cfg.d_mlp
        order = draw(st.permutations(range(n)))
        return (ft.head_permutation if kind == "heads" else ft.hidden_unit_permutation)(model, layer, order)

    return ft.compose(one(), one()) if draw(st.booleans()) else one()


def random_words(alphabet: str, seed: int, n: int = 4, max_len: int = 4) -> list[str]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(0, max_len + 1, (n,), generator=g).tolist()
    return ["".join(alphabet[int(i)] for i in torch.randint(0, len(alphabet), (k,), generator=g)) for k in lengths]


# -- function equality and the gradient law (property tests) -------------------------------------

@settings(max_examples=25)
@given(st.data())
def test_maps_preserve_the_function(data):
    model = data.draw(small_models())
    pmap = data.draw(function_preserving_maps(model))
    cmp = ft.compare_functions(model, pmap.apply(model), length=3)
    assert cmp.equal, (pmap.name, cmp)
    # the real functions are equal, so each midpoint lies within its radius of the same value
    assert cmp.max_abs_diff <= 4.000001 * cmp.max_radius + 1e-300


@settings(max_examples=25)
@given(st.data(), st.integers(0, 10**6))
def test_gradients_transform_exactly_as_predicted(data, seed):
    model = data.draw(small_models())
    pmap = data.draw(function_preserving_maps(model))
    check = ft.gradient_check(pmap, model, random_words(model.config.alphabet, seed))
    assert check.max_rel_error < 1e-10, (pmap.name, check)


@settings(max_examples=15)
@given(small_models(activations=("gelu", "tanh")), st.integers(0, 1), st.integers(0, 1), alphas)
def test_attention_maps_need_no_homogeneity(model, layer, head, alpha):
    layer, head = min(layer, model.config.n_layers - 1), min(head, model.config.n_heads - 1)
    for make in (ft.qk_scaling, ft.vo_scaling):
        assert ft.compare_functions(model, make(model, layer, head, alpha).apply(model), 3).equal


def test_a_scaling_really_moves_the_gradient():
    model = DecoderTransformer(SMALL)
    words = ["ab", "aabb", "b"]
    qk = ft.gradient_check(ft.qk_scaling(model, 0, 1, 3.0), model, words)
    assert qk.max_rel_error < 1e-12 and qk.max_change > 1e-3  # the gradient really changed, as predicted
    g = ft.loss_gradients(model, words)
    g_twin = ft.loss_gradients(ft.qk_scaling(model, 0, 1, 3.0).apply(model), words)
    q, head1 = "blocks.0.attn.q_proj.weight", slice(4, 8)
    assert torch.allclose(g_twin[q][head1], g[q][head1] / 3.0, rtol=1e-12)
    assert torch.allclose(g_twin[q][:4], g[q][:4], rtol=1e-12)  # head 0 untouched
    assert float(g["blocks.0.attn.k_proj.bias"].abs().max()) < 1e-12  # b_K gets no gradient at all


def test_apply_returns_a_new_model_and_inverse_undoes_it():
    model = DecoderTransformer(SMALL)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    pmap = ft.compose(ft.qk_scaling(model, 1, 0, 2.5), ft.head_permutation(model, 1, [1, 0]),
                      ft.mlp_scaling(model, 0, 0.3), ft.hidden_unit_permutation(model, 0, [3, 1, 0, 2, 7, 6, 5, 4]))
    twin = pmap.apply(model)
    assert twin is not model
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # original untouched
    assert any(not torch.equal(before[k], v) for k, v in twin.state_dict().items())  # really rescaled
    back = pmap.inverse().apply(twin)
    assert all(torch.allclose(before[k], v, rtol=1e-14, atol=1e-15) for k, v in back.state_dict().items())


# -- SGD and Adam -------------------------------------------------------------------------------

def test_one_sgd_step_from_the_twin_is_a_rescaled_step_from_theta():
    model = DecoderTransformer(SMALL)
    words, lr = ["ab", "aabb", "abab"], 0.1
    pmap = ft.compose(ft.qk_scaling(model, 0, 0, 2.0), ft.vo_scaling(model, 1, 1, 0.3), ft.mlp_scaling(model, 1, 3.0))
    stepped_twin, _ = ft.train(pmap.apply(model), words, "sgd", lr, 1)
    pulled_back = pmap.inverse().transform_parameters(dict(stepped_twin.named_parameters()))
    g = ft.loss_gradients(model, words)
    rescaled = pmap.transform_gradients(pmap.transform_gradients(g))  # D^-2 g
    for name, p in model.named_parameters():
        assert torch.allclose(pulled_back[name], p.detach() - lr * rescaled[name], rtol=1e-12, atol=1e-14), name
    plain, _ = ft.train(model, words, "sgd", lr, 1)
    assert not ft.compare_functions(plain, stepped_twin, 4).equal  # one step: different functions


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_permutation_control_has_no_gap(optimizer):
    model = DecoderTransformer(SMALL)
    pmap = ft.compose(ft.head_permutation(model, 0, [1, 0]), ft.hidden_unit_permutation(model, 1, list(range(7, -1, -1))))
    task = ft.FineTuningTask("t", (), ("ab", "aabb", "abab"), ood_length=4)
    gap = ft.fine_tuning_gap(pmap, model, task, optimizer, 0.05, 10)
    assert gap.finite and gap.loss_gap < 1e-12 and gap.ood_tv_max < 1e-12
    assert gap.param_distance < (1e-12 if optimizer == "sgd" else 1e-6)  # Adam: b_K noise / eps, see the setup


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_scaling_has_a_gap(optimizer):
    model = DecoderTransformer(SMALL)
    task = ft.FineTuningTask("t", (), ("ab", "aabb", "abab"), ood_length=4)
    gap = ft.fine_tuning_gap(ft.mlp_scaling(model, 0, 4.0), model, task, optimizer, 0.05, 10)
    assert gap.loss_before[0] == pytest.approx(gap.loss_before[1], abs=1e-12)
    assert gap.loss_gap > 1e-4 and gap.ood_tv_mean > 1e-4 and gap.n_ood_prefixes == 31 - 8


def test_divergence_is_reported_not_hidden():
    model = DecoderTransformer(SMALL)
    task = ft.FineTuningTask("t", (), ("ab", "aabb"), ood_length=3)
    gap = ft.fine_tuning_gap(ft.mlp_scaling(model, 0, 64.0), model, task, "sgd", 1e300, 3)
    assert not gap.finite and gap.loss_gap == math.inf


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_written_out_optimisers_match_torch_optim(optimizer):
    model = DecoderTransformer(SMALL)
    words = ["ab", "aabb", "b"]
    ours, losses = ft.train(model, words, optimizer, 0.02, 5)
    ref = model.clone()
    opt = torch.optim.SGD(ref.parameters(), lr=0.02) if optimizer == "sgd" else torch.optim.Adam(ref.parameters(), lr=0.02)
    for _ in range(5):
        opt.zero_grad()
        ft.mean_nll(ref, words).backward()
        opt.step()
    assert len(losses) == 6
    for (name, p), q in zip(ours.named_parameters(), ref.parameters()):
        assert torch.allclose(p, q, rtol=0, atol=1e-15), name


# -- the exhaustive checker ----------------------------------------------------------------------

def test_wrong_inverse_is_caught_as_falsified():
    model = DecoderTransformer(SMALL)
    wrong = ft.wrong_inverse_qk_scaling(model, 0, 1, 2.0)
    assert not wrong.function_preserving
    cert = ft.certify_function_equality("wrong-inverse", model, wrong.apply(model), length=5)
    assert cert.status is Status.FALSIFIED
    q = cert.quantities
    assert float(q["max_abs_dlogprob_upper"]) > 1e-3 and isinstance(q["worst_prefix"], str) and q["worst_prefix"]
    assert f"prefix {q['worst_prefix']!r}" in cert.reason and "|dlogp|" in cert.reason
    twin_cert = ft.certify_twin("prop-3-wrong", wrong, model, replace(ft.Proposition3Setup(), check_length=5))
    assert twin_cert.status is Status.FALSIFIED and "not the same function" in twin_cert.reason
    good = ft.certify_function_equality("right", model, ft.qk_scaling(model, 0, 1, 2.0).apply(model), length=5)
    assert good.verified


def test_nan_weights_never_pass():
    model = DecoderTransformer(SMALL)
    broken = model.clone()
    with torch.no_grad():
        broken.unembed.bias[0] = float("nan")
    assert not ft.compare_functions(model, broken, 2).equal


def test_prefix_log_probs_cover_every_prefix_once():
    model = DecoderTransformer(replace(SMALL, alphabet="abc"))
    prefixes, lp = ft.prefix_log_probs(model, 3, batch_size=5)
    assert len(prefixes) == len(set(prefixes)) == 1 + 3 + 9 + 27 and prefixes[:2] == ["", "a"]
    assert torch.allclose(lp, model.next_token_log_probs(prefixes), atol=1e-13)


def test_compare_functions_bad_input():
    model = DecoderTransformer(SMALL)
    with pytest.raises(InputTooLong, match="prefix length 8"):
        ft.compare_functions(model, model, 8)
    with pytest.raises(InvalidReparametrisation, match="different alphabets"):
        ft.compare_functions(model, DecoderTransformer(replace(SMALL, alphabet="xy")), 2)


# -- bad input -----------------------------------------------------------------------------------

@pytest.mark.parametrize("alpha", [0, -1.0, float("nan"), float("inf"), -float("inf"), "2", True, None])
@pytest.mark.parametrize("make", ["qk", "vo", "mlp"])
def test_bad_alpha_is_refused(alpha, make):
    model = DecoderTransformer(SMALL)
    with pytest.raises(InvalidReparametrisation, match="alpha"):
        if make == "mlp":
            ft.mlp_scaling(model, 0, alpha)
        else:
            (ft.qk_scaling if make == "qk" else ft.vo_scaling)(model, 0, 0, alpha)


@pytest.mark.parametrize("layer, head, fragment", [(0, 2, "head = 2"), (2, 0, "layer = 2"), (-1, 0, "layer = -1"),
                                                   (0, -1, "head = -1"), (0, 1.0, "head = 1.0")])
def test_index_out_of_range_is_refused(layer, head, fragment):
    model = DecoderTransformer(SMALL)
    for make in (ft.qk_scaling, ft.vo_scaling):
        with pytest.raises(InvalidReparametrisation, match=fragment):
            make(model, layer, head, 2.0)


@pytest.mark.parametrize("activation", [a for a in ACTIVATIONS if a != "relu"])
def test_mlp_scaling_refuses_a_non_relu_model(activation):
    cfg = replace(SMALL, activation=activation)
    model = DecoderTransformer(cfg)
    with pytest.raises(NotPositivelyHomogeneous, match=activation):
        ft.mlp_scaling(model, 0, 2.0)
    with pytest.raises(NotPositivelyHomogeneous):
        ft.mlp_scaling(cfg, 0, 2.0)
    relu_map = ft.mlp_scaling(SMALL, 0, 2.0)  # same shape, built for a ReLU model
    with pytest.raises(NotPositivelyHomogeneous):
        relu_map.apply(model)
    assert issubclass(NotPositivelyHomogeneous, InvalidReparametrisation)
    # and it would indeed be wrong: the forced rescaling changes the function
    forced = replace(relu_map, needs_positive_homogeneity=False)
    assert not ft.compare_functions(model, forced.apply(model), 3).equal


@pytest.mark.parametrize("order, fragment", [([0, 0], "not a permutation"), ([0, 1, 2], "not a permutation"),
                                             (["a", "b"], "not a permutation"), ([1, True], "not a permutation")])
def test_bad_permutations_are_refused(order, fragment):
    with pytest.raises(InvalidReparametrisation, match=fragment):
        ft.head_permutation(DecoderTransformer(SMALL), 0, order)


def test_shape_mismatch_is_refused():
    pmap = ft.mlp_scaling(SMALL, 0, 2.0)
    with pytest.raises(InvalidReparametrisation, match="built for shape"):
        pmap.apply(DecoderTransformer(replace(SMALL, d_mlp=4)))
    with pytest.raises(InvalidReparametrisation, match="different shapes"):
        ft.compose(pmap, ft.qk_scaling(replace(SMALL, d_mlp=4), 0, 0, 2.0))
    with pytest.raises(InvalidReparametrisation, match="at least one"):
        ft.compose()
    with pytest.raises(InvalidReparametrisation, match="expected a DecoderTransformer"):
        pmap.apply("model")  # type: ignore[arg-type]
    with pytest.raises(InvalidReparametrisation, match="expected a DecoderTransformer or TransformerConfig"):
        ft.qk_scaling("config", 0, 0, 2.0)  # type: ignore[arg-type]


@pytest.mark.parametrize("kwargs, fragment", [({"optimizer": "rmsprop"}, "optimizer"), ({"lr": 0.0}, "learning rate"),
                                              ({"lr": float("nan")}, "learning rate"), ({"steps": -1}, "steps")])
def test_train_bad_input(kwargs, fragment):
    args = {"optimizer": "sgd", "lr": 0.1, "steps": 1, **kwargs}
    with pytest.raises(InvalidTrainingOption, match=fragment):
        ft.train(DecoderTransformer(SMALL), ["ab"], **args)


# -- the proof checks ----------------------------------------------------------------------------

def test_prop3_checks_all_verified():
    from proofs import finetuning as pf
    from proofs import run

    names = [c.name for c in pf.CHECKS]
    assert names == ["prop-3-symbolic", "prop-3-qk-scaling", "prop-3-vo-scaling", "prop-3-mlp-scaling",
                     "prop-3-permutation-control", "prop-3-orthogonal-control"]
    certs = {c.name: run(c) for c in pf.CHECKS}
    for name, cert in certs.items():
        assert cert.verified, (name, cert.reason)
    assert certs["prop-3-symbolic"].method == "symbolic"
    assert all(certs[n].method == "exhaustive" for n in names[1:])
    setup = ft.Proposition3Setup()
    n_all = sum(2 ** k for k in range(setup.config.max_len))  # every prefix the model accepts
    # prop-3-blocks proves the maps of standard_maps only; the rotation is not among them, and its claim says so
    orth = certs["prop-3-orthogonal-control"].claim
    assert "prop-3-blocks does not cover this map" in orth and "is proved by the check prop-3-blocks" not in orth
    for n in names[1:4]:
        cert, q = certs[n], certs[n].quantities
        assert q["prefixes"] == n_all and q["prefix_length"] == setup.config.max_len - 1
        assert f"every prefix the model accepts ({n_all:,} prefixes" in cert.claim and "prop-3-blocks" in cert.claim
        assert float(q["max_abs_dlogprob_upper"]) <= q["tolerance"]
        assert q["bitwise"]["identical"] and q["bitwise"]["max_abs_dlogit"] == 0 and q["bitwise"]["prefixes"] == n_all
        le = q["lasting"]
        assert le["converged"] and le["within_delta"] and float(le["tv_lower"]) >= setup.tv_margin
        assert le["tv_prefix"] not in setup.task.support_prefixes() and le["steps"][0] <= setup.max_steps
        assert all(float(x) <= math.log(3) + setup.delta for x in le["loss_upper"])
        assert q["adam"]["finite"]  # reported, not required
    assert certs["prop-3-qk-scaling"].quantities["lasting"]["steps"][0] == certs["prop-3-mlp-scaling"].quantities["lasting"]["steps"][0]
    orth = certs["prop-3-orthogonal-control"]
    assert "separates an optimiser" in orth.claim and float(orth.quantities["adam"]["tv_lower"]) >= setup.margin
    assert certs["prop-3-symbolic"].quantities["identically_zero_gradients"] == ["bk"]


def test_prop3_certificate_is_deterministic():
    from proofs import finetuning as pf

    assert pf.check_mlp().to_json() == pf.check_mlp().to_json()


def test_listing_imports_neither_torch_nor_sympy():
    code = "import sys, proofs.finetuning as m; print(len(m.CHECKS), 'torch' in sys.modules, 'sympy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["6", "False", "False"]


def test_numeric_checks_without_torch_are_unknown(monkeypatch):
    from proofs import finetuning as pf

    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    cert = pf.check_qk()
    assert cert.status is Status.UNKNOWN and "torch is not installed" in cert.reason


# -- powers of two, the floor, the lasting effect, the orthogonal control ---------------------------

def test_power_of_two_scalings_give_bitwise_identical_float_passes():
    model = DecoderTransformer(SMALL)
    exact = ft.compose(ft.qk_scaling(model, 0, 1, 2.0), ft.vo_scaling(model, 1, 0, 0.25), ft.mlp_scaling(model, 1, 8.0))
    assert exact.power_of_two and not ft.qk_scaling(model, 0, 0, 3.0).power_of_two
    bit = ft.bitwise_identity(model, exact.apply(model), 6)
    assert bit.identical and bit.max_abs_dlogit == 0 and bit.n_prefixes == 127
    cert = ft.certify_map_identity("pow2", exact, model, 6)
    assert cert.verified and "bitwise identical" in cert.claim and cert.quantities["bitwise"]["identical"]
    other = ft.bitwise_identity(model, ft.qk_scaling(model, 0, 1, 3.0).apply(model), 6)
    assert other.max_abs_dlogit < 1e-12  # not a power of two: no bitwise claim is made, only ~rounding apart


def test_key_factor_blind_at_two_is_caught_at_three():
    model = DecoderTransformer(SMALL)
    assert ft.certify_map_identity("c", ft.key_factor_blind_qk_scaling(model, 0, 1, 2.0), model, 5).verified
    bad = ft.certify_map_identity("m", ft.key_factor_blind_qk_scaling(model, 0, 1, 3.0), model, 5)
    assert bad.status is Status.FALSIFIED and "not the same function" in bad.reason


def test_loss_floor_is_the_exact_empirical_entropy():
    lo, hi = ft.loss_floor(("aba", "aabbaa", "aaabbbaaa")).interval(96)
    assert lo <= Fraction(math.log(3)) * (1 + Fraction(1, 10 ** 15)) and hi >= Fraction(math.log(3)) * (1 - Fraction(1, 10 ** 15))
    assert hi - lo < Fraction(1, 10 ** 20)
    lo2, hi2 = ft.loss_floor(("ab", "ab", "b")).interval(64)  # (2/3) ln(3/2) + (1/3) ln 3
    h = 2 / 3 * math.log(1.5) + math.log(3) / 3
    assert abs(float(lo2) - h) < 1e-12 and lo2 <= hi2


def test_fine_tune_to_floor_stops_at_the_floor_or_the_cap():
    model = DecoderTransformer(SMALL)
    words = ("ab", "aabb")
    run = ft.fine_tune_to_floor(model, words, 0.05, 0.5, 2000)
    assert run.converged and run.losses[-1] <= math.log(2) + 0.45 and run.steps == len(run.losses) - 1
    capped = ft.fine_tune_to_floor(model, words, 0.05, 0.5, 2)
    assert not capped.converged and capped.steps == 2 and capped.finite


def test_lasting_effect_identity_twins_are_falsified():
    """Two identical runs converge to one function: every OOD TV is certified < Delta, so no lasting effect."""
    model = DecoderTransformer(SMALL)
    task = ft.FineTuningTask("t", (), ("ab", "aabb"), ood_length=5)
    run = ft.fine_tune_to_floor(model, task.words, 0.05, 0.5, 2000)
    le = ft.lasting_effect(run, run, task, 0.05, 0.5, 0.25, 2000)
    assert le.converged and le.within_delta and not le.differs and le.same_within_margin
    assert le.max_tv_upper is not None and le.max_tv_upper < Fraction(1, 10 ** 4)
    other = ft.fine_tune_to_floor(ft.mlp_scaling(model, 0, 4.0).apply(model), task.words, 0.05, 0.5, 2000)
    le2 = ft.lasting_effect(run, other, task, 0.05, 0.5, 0.01, 2000)
    assert le2.differs and le2.tv_prefix not in task.support_prefixes() and le2.tv_lower <= le2.tv_upper


def test_residual_rotation_preserves_the_function_and_rotates_the_gradient():
    cfg = replace(SMALL, norm="none")
    model = DecoderTransformer(cfg)
    rot = ft.residual_rotation(model, ft.hadamard(cfg.d_model))
    assert rot.sgd_equivariant and not rot.gradient_equivariant and not rot.power_of_two
    assert ft.compare_functions(model, rot.apply(model), 4).equal
    assert ft.gradient_check(rot, model, ["ab", "aabb", "b"]).max_rel_error < 1e-12
    back = rot.inverse().apply(rot.apply(model))
    assert all(torch.allclose(p, q, atol=1e-14) for p, q in zip(model.parameters(), back.parameters()))
    words = ["ab", "aabb"]
    a, _ = ft.train(model, words, "sgd", 0.02, 5)
    b, _ = ft.train(rot.apply(model), words, "sgd", 0.02, 5)
    assert ft.compare_functions(a, b, 4).equal  # SGD commutes with U
    a2, _ = ft.train(model, words, "adam", 0.02, 5)
    b2, _ = ft.train(rot.apply(model), words, "adam", 0.02, 5)
    assert ft.compare_functions(a2, b2, 4).differs  # Adam does not


def test_residual_rotation_bad_input():
    with pytest.raises(InvalidReparametrisation, match="norm='pre'"):
        ft.residual_rotation(SMALL, ft.hadamard(SMALL.d_model))
    cfg = replace(SMALL, norm="none")
    with pytest.raises(InvalidReparametrisation, match="not orthogonal"):
        ft.residual_rotation(cfg, [[2.0 * x for x in row] for row in ft.hadamard(8)])
    with pytest.raises(InvalidReparametrisation, match="shape"):
        ft.residual_rotation(cfg, ft.hadamard(4))
    with pytest.raises(InvalidReparametrisation, match="non-finite"):
        ft.residual_rotation(cfg, [[float("nan")] * 8] * 8)
    with pytest.raises(InvalidReparametrisation, match="power of two"):
        ft.hadamard(6)


@pytest.mark.parametrize("field, value", [("delta", 0.0), ("delta", float("nan")), ("delta", -1.0), ("tv_margin", 0.0),
                                          ("tv_margin", float("inf")), ("rtol", 0.0), ("rtol", float("nan")),
                                          ("margin", -1e-3), ("max_steps", 0), ("sgd_steps", 0), ("adam_steps", -1),
                                          ("orthogonal_steps", 0), ("max_steps", 2.5), ("finetune_lr", 0.0),
                                          ("check_length", 11)])
def test_setup_bad_input_is_refused_before_training(field, value):
    with pytest.raises(InvalidTrainingOption, match=field):
        ft.Proposition3Setup(**{field: value})


@pytest.mark.parametrize("kwargs, fragment", [({"lr": 0.0}, "learning rate"), ({"delta": 0.0}, "delta"),
                                              ({"delta": float("nan")}, "delta"), ({"max_steps": 0}, "max_steps"),
                                              ({"max_steps": -3}, "max_steps")])
def test_fine_tune_to_floor_bad_input(kwargs, fragment):
    args = {"lr": 0.05, "delta": 0.1, "max_steps": 10, **kwargs}
    with pytest.raises(InvalidTrainingOption, match=fragment):
        ft.fine_tune_to_floor(DecoderTransformer(SMALL), ["ab"], **args)
