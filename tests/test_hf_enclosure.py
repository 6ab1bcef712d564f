"""The rigorous evaluator on Hugging Face GPT-2 and OPT causal LMs (constructions/hf_enclosure.py): its
enclosures contain the library's own float64 forward at every position of every batch layout, and an
independent mpmath forward (50 digits) of the real function of the weights; every covered config variant is
contained; deliberately wrong forwards (no OPT position offset, a wrong attention scale, a head assumed
tied, erf-GELU for the tanh one) are caught, each with its control; unsupported networks are refused by
name; ``enclose`` gives full-softmax log-probability bounds over all V outputs (pairwise and large-V)."""

from __future__ import annotations

import copy
import subprocess
import sys

import mpmath
import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")

from constructions.balls import Ball  # noqa: E402
from constructions.enclosure import (  # noqa: E402
    PAIRWISE_MAX_OUTPUTS,
    _log_softmax_bounds_lse,
    enclose,
    log_softmax_bounds,
    logit_balls,
    why_not_enclosable,
)
from constructions.hf_enclosure import hf_logit_balls, why_not_enclosable_hf  # noqa: E402
from theory.errors import InputTooLong, InvalidModelConfig, UnknownToken  # noqa: E402

GPT2Config, GPT2LMHeadModel = transformers.GPT2Config, transformers.GPT2LMHeadModel
OPTConfig, OPTForCausalLM = transformers.OPTConfig, transformers.OPTForCausalLM
BOS, PAD = 0, 4
WORDS = [[BOS, 1, 2, 2, 3, 1], [BOS, 2, 1], [BOS], [BOS, 3, 3, 1, 2]]  # token ids, V = 5


def gpt2(seed: int = 0, dtype=torch.float64, **kw) -> torch.nn.Module:
    torch.manual_seed(seed)
    args = dict(n_embd=12, n_layer=2, n_head=3, vocab_size=5, n_positions=12, bos_token_id=0, eos_token_id=0,
                initializer_range=0.5)
    args.update(kw)
    return GPT2LMHeadModel(GPT2Config(**args)).to(dtype).eval()


def opt(seed: int = 0, dtype=torch.float64, **kw) -> torch.nn.Module:
    torch.manual_seed(seed)
    args = dict(hidden_size=12, num_hidden_layers=2, ffn_dim=16, num_attention_heads=3, vocab_size=5,
                max_position_embeddings=12, word_embed_proj_dim=12, bos_token_id=0, eos_token_id=0, pad_token_id=1,
                init_std=0.5)
    args.update(kw)
    return OPTForCausalLM(OPTConfig(**args)).to(dtype).eval()


def padded(words: list[list[int]]) -> torch.Tensor:
    t = max(len(w) for w in words)
    return torch.tensor([w + [PAD] * (t - len(w)) for w in words])


def library(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(ids).logits.double()


def outside(z: Ball, ref: torch.Tensor) -> int:
    """How many reference values fall outside the enclosure."""
    return int(((ref < z.lo) | (ref > z.hi)).sum())


def check_layouts(model: torch.nn.Module, reference: torch.nn.Module | None = None) -> float:
    """The library's forward (of ``reference``, default ``model``) inside ``model``'s enclosure at every
    position: every word alone, all padded together, and each alone read off the padded batch."""
    reference = reference if reference is not None else model
    ids = padded(WORDS)
    z = hf_logit_balls(model, ids)
    assert z.shape == (len(WORDS), ids.shape[1], reference.config.vocab_size)
    assert outside(z, library(reference, ids)) == 0
    for i, w in enumerate(WORDS):
        alone = torch.tensor([w])
        za = hf_logit_balls(model, alone)
        ref = library(reference, alone)
        assert outside(za, ref) == 0
        assert outside(z[i:i + 1, :len(w)], ref) == 0  # the word alone, inside the padded batch's enclosure
    assert bool(torch.isfinite(z.r).all())
    return float(z.r.max())


# ---- an independent mpmath forward ---------------------------------------------------------------------
def _mp(t: torch.Tensor | None) -> np.ndarray | None:
    if t is None:
        return None
    a = t.detach().double().numpy()
    out = np.empty(a.shape, dtype=object)
    for idx in np.ndindex(a.shape):
        out[idx] = mpmath.mpf(float(a[idx]))
    return out


def _mp_ln(x: np.ndarray, ln) -> np.ndarray:
    w, b = _mp(ln.weight), _mp(ln.bias)
    out = np.empty_like(x)
    for i, row in enumerate(x):
        mu = sum(row) / len(row)
        var = sum((v - mu) ** 2 for v in row) / len(row)
        y = (row - mu) / mpmath.sqrt(var + mpmath.mpf(ln.eps))
        out[i] = y * (w if w is not None else 1) + (b if b is not None else 0)
    return out


_MP_ACT = {
    "relu": lambda v: max(v, mpmath.mpf(0)),
    "gelu": lambda v: v * (1 + mpmath.erf(v / mpmath.sqrt(2))) / 2,
    "gelu_new": lambda v: v * (1 + mpmath.tanh(mpmath.sqrt(2 / mpmath.pi) * (v + mpmath.mpf("0.044715") * v ** 3))) / 2,
}


def _mp_attend(q, k, v, heads: int, scale) -> np.ndarray:
    t, d = q.shape
    dh = d // heads
    out = np.empty((t, d), dtype=object)
    for h in range(heads):
        sl = slice(h * dh, (h + 1) * dh)
        for i in range(t):
            s = [q[i, sl].dot(k[j, sl]) * scale for j in range(i + 1)]
            e = [mpmath.exp(x - max(s)) for x in s]
            out[i, sl] = sum((e[j] / sum(e)) * v[j, sl] for j in range(i + 1))
    return out


def mp_gpt2(model, ids: list[int], act: str) -> np.ndarray:
    with mpmath.workdps(50):
        tr = model.transformer
        wte, wpe = _mp(tr.wte.weight), _mp(tr.wpe.weight)
        x = np.array([wte[i] + wpe[p] for p, i in enumerate(ids)], dtype=object)
        d = x.shape[1]
        for layer, blk in enumerate(tr.h):
            qkv = _mp_ln(x, blk.ln_1).dot(_mp(blk.attn.c_attn.weight)) + _mp(blk.attn.c_attn.bias)
            scale = 1 / mpmath.sqrt(d // blk.attn.num_heads) / (layer + 1 if model.config.scale_attn_by_inverse_layer_idx else 1)
            a = _mp_attend(qkv[:, :d], qkv[:, d:2 * d], qkv[:, 2 * d:], blk.attn.num_heads, scale)
            x = x + a.dot(_mp(blk.attn.c_proj.weight)) + _mp(blk.attn.c_proj.bias)
            h = _mp_ln(x, blk.ln_2).dot(_mp(blk.mlp.c_fc.weight)) + _mp(blk.mlp.c_fc.bias)
            h = np.vectorize(_MP_ACT[act], otypes=[object])(h)
            x = x + h.dot(_mp(blk.mlp.c_proj.weight)) + _mp(blk.mlp.c_proj.bias)
        return _mp_ln(x, tr.ln_f).dot(_mp(model.lm_head.weight).T)


def mp_opt(model, ids: list[int], act: str) -> np.ndarray:
    with mpmath.workdps(50):
        dec = model.model.decoder
        emb, pos = _mp(dec.embed_tokens.weight), _mp(dec.embed_positions.weight)
        x = np.array([emb[i] + pos[p + 2] for p, i in enumerate(ids)], dtype=object)
        pre = model.config.do_layer_norm_before
        for layer in dec.layers:
            at = layer.self_attn

            def lin(h, m):
                return h.dot(_mp(m.weight).T) + (_mp(m.bias) if m.bias is not None else 0)

            h = _mp_ln(x, layer.self_attn_layer_norm) if pre else x
            a = _mp_attend(lin(h, at.q_proj), lin(h, at.k_proj), lin(h, at.v_proj), at.num_heads,
                           1 / mpmath.sqrt(at.head_dim))
            x = x + lin(a, at.out_proj)
            x = x if pre else _mp_ln(x, layer.self_attn_layer_norm)
            h = _mp_ln(x, layer.final_layer_norm) if pre else x
            x = x + lin(np.vectorize(_MP_ACT[act], otypes=[object])(lin(h, layer.fc1)), layer.fc2)
            x = x if pre else _mp_ln(x, layer.final_layer_norm)
        if dec.final_layer_norm is not None:
            x = _mp_ln(x, dec.final_layer_norm)
        return x.dot(_mp(model.lm_head.weight).T)


def _inside_mp(z: Ball, ref: np.ndarray) -> None:
    lo, hi = z.lo[0].numpy(), z.hi[0].numpy()
    for idx in np.ndindex(ref.shape):
        assert mpmath.mpf(float(lo[idx])) <= ref[idx] <= mpmath.mpf(float(hi[idx])), (idx, ref[idx], lo[idx], hi[idx])


@pytest.mark.parametrize("act", ["gelu_new", "relu"])
def test_gpt2_contains_the_mpmath_real_function(act):
    model = gpt2(n_embd=8, n_head=2, activation_function=act, scale_attn_by_inverse_layer_idx=True)
    ids = WORDS[0][:5]
    z = hf_logit_balls(model, torch.tensor([ids]))
    _inside_mp(z, mp_gpt2(model, ids, act))
    wrong = hf_logit_balls(model, torch.tensor([ids]), _mutant="scale")  # the oracle can fail
    with pytest.raises(AssertionError):
        _inside_mp(wrong, mp_gpt2(model, ids, act))


@pytest.mark.parametrize("pre", [True, False])
def test_opt_contains_the_mpmath_real_function(pre):
    model = opt(hidden_size=8, word_embed_proj_dim=8, num_attention_heads=2, do_layer_norm_before=pre, activation_function="gelu")
    ids = WORDS[0][:5]
    _inside_mp(hf_logit_balls(model, torch.tensor([ids])), mp_opt(model, ids, "gelu"))
    with pytest.raises(AssertionError):
        _inside_mp(hf_logit_balls(model, torch.tensor([ids]), _mutant="no_offset"), mp_opt(model, ids, "gelu"))


# ---- every covered variant -----------------------------------------------------------------------------
GPT2_ACTIVATIONS = ["relu", "gelu", "gelu_python", "gelu_new", "gelu_pytorch_tanh", "gelu_python_tanh", "gelu_fast",
                    "quick_gelu", "silu", "swish", "tanh", "sigmoid", "linear"]


@pytest.mark.parametrize("act", GPT2_ACTIVATIONS)
def test_gpt2_activations_are_contained(act):
    model = gpt2(activation_function=act)
    assert why_not_enclosable(model) == ""
    assert 0 < check_layouts(model) < 1e-3


@pytest.mark.parametrize("kw", [
    dict(tie_word_embeddings=False),
    dict(scale_attn_weights=False),
    dict(scale_attn_by_inverse_layer_idx=True),
    dict(n_inner=20, n_layer=1),
    dict(attn_implementation="eager"),
    dict(add_cross_attention=True),
    dict(layer_norm_epsilon=0.25),
], ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_gpt2_config_variants_are_contained(kw):
    model = gpt2(**kw)
    assert why_not_enclosable(model) == ""
    check_layouts(model)


def test_gpt2_reorder_and_upcast_attn_is_the_same_real_function():
    # the library runs this path in float32 only (a float64 model raises inside it), so: float32 weights,
    # and the reference is the same reals in float64 without the reordering
    model = gpt2(dtype=torch.float32, reorder_and_upcast_attn=True, scale_attn_by_inverse_layer_idx=True,
                 attn_implementation="eager")
    assert why_not_enclosable(model) == ""
    library(model, padded(WORDS))  # the library's own path runs
    plain = copy.deepcopy(model).double()
    for blk in plain.transformer.h:
        blk.attn.reorder_and_upcast_attn = False
    check_layouts(model, reference=plain)


def _same_reals_in_sdpa(model: torch.nn.Module) -> torch.nn.Module:
    """The same network with sdpa attention: the eager OPT rounds its softmax to float32 even in float64."""
    ref = copy.deepcopy(model)
    ref.config._attn_implementation = "sdpa"
    return ref


@pytest.mark.parametrize("kw", [
    dict(do_layer_norm_before=True), dict(do_layer_norm_before=False),
    dict(activation_function="gelu"), dict(activation_function="gelu_new"), dict(activation_function="silu"),
    dict(enable_bias=False), dict(layer_norm_elementwise_affine=False),
    dict(word_embed_proj_dim=6), dict(word_embed_proj_dim=6, do_layer_norm_before=False),
    dict(_remove_final_layer_norm=True), dict(tie_word_embeddings=False), dict(attn_implementation="eager"),
], ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_opt_config_variants_are_contained(kw):
    model = opt(**kw)
    assert why_not_enclosable(model) == ""
    if kw.get("_remove_final_layer_norm"):
        assert model.model.decoder.final_layer_norm is None
    if kw.get("do_layer_norm_before") is False:
        assert model.model.decoder.final_layer_norm is None  # the library builds none post-LN
    check_layouts(model, reference=_same_reals_in_sdpa(model) if kw.get("attn_implementation") else None)


@pytest.mark.parametrize("build, dtype", [(gpt2, torch.float32), (opt, torch.float32), (gpt2, torch.float16),
                                          (opt, torch.bfloat16)])
def test_low_precision_weights_are_enclosed_as_the_reals_they_store(build, dtype):
    model = build(dtype=dtype)
    assert why_not_enclosable(model) == ""
    check_layouts(model, reference=copy.deepcopy(model).double())  # the same reals, evaluated in float64


def test_the_opt_positions_are_the_librarys():
    model = opt()
    ids = torch.tensor([WORDS[0]])
    out = model.model.decoder(ids)  # the library's own path: positions from an all-ones mask
    emb = model.model.decoder.embed_positions
    assert emb.offset == 2
    assert torch.equal(emb(torch.ones(1, 6), 0), emb.weight[2:8][None])
    assert out.last_hidden_state.shape == (1, 6, 12)


# ---- wrong forwards are caught (each with its control) ---------------------------------------------------
@pytest.mark.parametrize("build, mutant", [
    (lambda: opt(), "no_offset"),
    (lambda: opt(do_layer_norm_before=False), "no_offset"),
    (lambda: gpt2(scale_attn_by_inverse_layer_idx=True), "scale"),
    (lambda: gpt2(scale_attn_weights=False), "scale"),
    (lambda: gpt2(tie_word_embeddings=False), "assume_tied"),
    (lambda: gpt2(activation_function="gelu_new"), "erf_gelu"),
    (lambda: gpt2(activation_function="gelu_pytorch_tanh"), "erf_gelu"),
    (lambda: opt(activation_function="gelu_new"), "erf_gelu"),
])
def test_a_wrong_forward_fails_containment(build, mutant):
    model = build()
    ids = padded(WORDS)
    ref = library(model, ids)
    assert outside(hf_logit_balls(model, ids), ref) == 0  # control
    assert outside(hf_logit_balls(model, ids, _mutant=mutant), ref) > 0


# ---- refusals ---------------------------------------------------------------------------------------------
class _Sub(GPT2LMHeadModel):
    pass


def _refused(model, words: str) -> None:
    why = why_not_enclosable(model)
    assert words in why, why
    assert why_not_enclosable_hf(model) == why
    with pytest.raises(InvalidModelConfig, match=words):
        logit_balls(model, torch.tensor([[0, 1]]))
    with pytest.raises(InvalidModelConfig, match=words):
        enclose(model, ["a"], ["", "a"], encode=_encode)


def test_unsupported_networks_are_refused_by_name():
    assert why_not_enclosable(gpt2()) == ""  # control
    _refused(gpt2(activation_function="mish"), "MishActivation")
    _refused(opt(activation_function="relu2"), "ReLUSquaredActivation")
    _refused(_Sub(gpt2().config).eval(), "subclass of GPT2LMHeadModel")
    model = gpt2()
    model.transformer.h[0].mlp.act = torch.nn.Softplus()
    _refused(model, "Softplus")
    model = gpt2()
    model.transformer.h[1].ln_2 = torch.nn.Identity()
    _refused(model, "transformer.h.1.ln_2")
    model = opt()
    model.model.decoder.layers[0].fc1.forward = lambda x: x
    _refused(model, "own forward")
    model = gpt2()
    model.transformer.wte.max_norm = 1.0
    _refused(model, "max_norm")
    bert = transformers.BertConfig(vocab_size=5, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8)
    assert "no rigorous enclosure" in why_not_enclosable(transformers.BertModel(bert))


@pytest.mark.parametrize("build, where", [(gpt2, "transformer.h.0.mlp"), (opt, "model.decoder.layers.1.self_attn")])
def test_a_forward_hook_is_refused_until_removed(build, where):
    model = build()
    handle = model.get_submodule(where).register_forward_hook(lambda m, i, o: o)
    _refused(model, f"module {where} has a forward hook")
    handle.remove()
    assert why_not_enclosable(model) == ""  # control
    pre = model.get_submodule(where).register_forward_pre_hook(lambda m, i: None)
    assert "forward hook" in why_not_enclosable(model)
    pre.remove()
    glob = torch.nn.modules.module.register_module_forward_hook(lambda m, i, o: o)
    try:
        assert "global forward hook" in why_not_enclosable(model)
    finally:
        glob.remove()
    assert why_not_enclosable(model) == ""


def test_bad_inputs_get_typed_errors():
    model = gpt2()
    hf_logit_balls(model, torch.tensor([[0] * 12]))  # control: every position
    with pytest.raises(InputTooLong, match="13 positions"):
        hf_logit_balls(model, torch.tensor([[0] * 13]))
    with pytest.raises(UnknownToken, match="token id 5"):
        hf_logit_balls(model, torch.tensor([[0, 5]]))
    with pytest.raises(InputTooLong, match="13 positions"):
        hf_logit_balls(opt(), torch.tensor([[0] * 13]))


def test_importing_the_evaluator_does_not_import_transformers():
    code = "import sys, constructions.enclosure, empirical.enclosure; assert 'transformers' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- log-probability bounds over every output ---------------------------------------------------------------
SYMBOLS = {"a": 1, "b": 2}


def _encode(words, length: int) -> torch.Tensor:
    return padded([[BOS] + [SYMBOLS[c] for c in w] + [PAD] * (length - 1 - len(w)) for w in words])


@pytest.mark.parametrize("build", [lambda: gpt2(), lambda: opt(do_layer_norm_before=False),
                                   lambda: gpt2(vocab_size=300), lambda: opt(vocab_size=300)])
def test_enclose_contains_the_librarys_log_softmax_at_every_prefix(build):
    model = build()
    words = ["abba", "ba", "aab"]
    prefixes = sorted({w[:t] for w in words for t in range(len(w) + 1)}, key=lambda u: (len(u), u))
    enc = enclose(model, words, prefixes, encode=_encode, batch_elements=1 << 12)
    v = model.config.vocab_size
    assert enc.lp_lo.shape == (len(prefixes), v) and enc.bounded
    for u in prefixes:
        ref = torch.log_softmax(library(model, _encode([u], len(u) + 1)), -1)[0, len(u)].numpy()
        lo, hi = enc.row(u)
        assert (lo <= ref).all() and (ref <= hi).all(), u
    assert enc.max_radius < 1e-3


def test_the_large_vocabulary_bound_contains_every_point_of_the_ball():
    torch.manual_seed(3)
    v = PAIRWISE_MAX_OUTPUTS + 44
    z = Ball(torch.randn(2, v, dtype=torch.float64) * 4, torch.rand(2, v, dtype=torch.float64) * 1e-3)
    lo, hi = log_softmax_bounds(z)
    assert torch.equal(lo, _log_softmax_bounds_lse(z)[0])
    wrong_lo = (Ball.exact(z.lo) - Ball.exact(torch.logsumexp(z.lo, -1, keepdim=True))).lo  # the mutant: LSE at lo
    with mpmath.workdps(40):
        for row in range(2):
            for a in (0, 7):
                # the worst point for the lower bound: z_a at its low end, every other at its high end
                point = [mpmath.mpf(float(x)) for x in z.hi[row]]
                point[a] = mpmath.mpf(float(z.lo[row, a]))
                val = point[a] - mpmath.log(sum(mpmath.exp(x) for x in point))
                assert mpmath.mpf(float(lo[row, a])) <= val <= mpmath.mpf(float(hi[row, a]))
                assert val < mpmath.mpf(float(wrong_lo[row, a]))  # the mutant misses it
    small = Ball(z.m[:, :PAIRWISE_MAX_OUTPUTS], z.r[:, :PAIRWISE_MAX_OUTPUTS])  # the pairwise path and the LSE one agree
    plo, phi = log_softmax_bounds(small)
    llo, lhi = _log_softmax_bounds_lse(small)
    assert (torch.maximum(plo, llo) <= torch.minimum(phi, lhi)).all()
    assert float((lhi - llo).max()) < 1e-2


def test_an_attention_function_or_class_forward_from_elsewhere_is_refused():
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
    from transformers.models.opt import modeling_opt

    model = opt()
    original = ALL_ATTENTION_FUNCTIONS["sdpa"]
    ALL_ATTENTION_FUNCTIONS["sdpa"] = lambda *a, **k: original(*a, **k)
    try:
        _refused(model, "attention implementation 'sdpa' is not the library's own")
    finally:
        ALL_ATTENTION_FUNCTIONS["sdpa"] = original
    assert why_not_enclosable(model) == ""  # control
    model.config._attn_implementation = "paged|eager"
    assert "attention implementation 'paged|eager'" in why_not_enclosable(model)
    model.config._attn_implementation = "sdpa"
    forward = modeling_opt.OPTAttention.forward
    modeling_opt.OPTAttention.forward = lambda self, *a, **k: forward(self, *a, **k)
    try:
        assert "has a forward from tests" in why_not_enclosable(model)
    finally:
        modeling_opt.OPTAttention.forward = forward
    assert why_not_enclosable(model) == ""


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_cuda_enclosure_contains_the_cpu_library_forward():
    for model in (gpt2(), opt(do_layer_norm_before=False), gpt2(vocab_size=300)):
        ids = padded(WORDS)
        ref = library(model, ids)
        z = hf_logit_balls(model.to("cuda"), ids.to("cuda"))
        assert outside(Ball(z.m.cpu(), z.r.cpu()), ref) == 0
