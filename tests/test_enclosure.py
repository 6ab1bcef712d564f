"""The rigorous evaluator: its enclosures contain the exact real function of the weights (an independent
mpmath evaluation at 120 digits is the oracle), for every LayerNorm placement and activation, in any
batch layout; the elementary functions contain mpmath's values; the adversary's networks are refused or
falsified."""

from __future__ import annotations

import itertools
import math

import mpmath
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from constructions import balls
from constructions.balls import Ball
from constructions.enclosure import enclose, enclose_words, kl_bounds, why_not_enclosable
from constructions.transformer import DecoderTransformer, TransformerConfig
from tests.mp_reference import reference_log_probs
from theory.errors import InvalidModelConfig


def _contains(enc, net, words):
    worst = 0.0
    for w in words:
        for t, row in enumerate(reference_log_probs(net, w)):
            lo, hi = enc.row(w[:t])
            for a, v in enumerate(row):
                assert lo[a] <= v <= hi[a], (w[:t], a, float(v), lo[a], hi[a])
                worst = max(worst, float(hi[a] - lo[a]))
    return worst


@pytest.mark.parametrize("norm", ["pre", "post", "none"])
@pytest.mark.parametrize("activation", ["relu", "gelu", "tanh"])
def test_enclosures_contain_the_real_function(norm, activation):
    cfg = TransformerConfig(alphabet="ab", d_model=6, n_heads=2, d_head=3, d_mlp=8, n_layers=2, max_len=6, norm=norm,
                            activation=activation, seed=7)
    net = DecoderTransformer(cfg)
    words = ["abba", "baa", "b"]
    enc = enclose_words(net, words)
    width = _contains(enc, net, words)
    assert enc.bounded and 0 < width < 1e-5


def test_float32_weights_are_enclosed_as_the_reals_they_store():
    cfg = TransformerConfig(alphabet="abc", d_model=8, n_heads=2, d_head=4, d_mlp=8, n_layers=1, max_len=5, dtype="float32")
    net = DecoderTransformer(cfg)
    _contains(enclose_words(net, ["abc", "cc"]), net, ["abc", "cc"])


def test_the_layout_does_not_change_the_bounds_beyond_their_width():
    cfg = TransformerConfig(alphabet="ab", d_model=8, n_heads=2, d_head=4, d_mlp=16, max_len=8)
    net = DecoderTransformer(cfg)
    words = ["".join(p) for p in itertools.product("ab", repeat=5)]
    prefixes = sorted({w[:t] for w in words for t in range(6)}, key=lambda u: (len(u), u))
    big = enclose(net, words, prefixes)
    small = enclose(net, words, prefixes, batch_elements=64)  # one word per batch
    alone = enclose_words(net, ["abba"])
    for u in ("", "ab", "abba"):
        for e in (small, alone):
            lo, hi = e.row(u)
            blo, bhi = big.row(u)
            assert (np.maximum(lo, blo) <= np.minimum(hi, bhi)).all()  # the two enclosures intersect


@settings(max_examples=60, deadline=None)
@given(st.floats(-700, 700), st.floats(0, 1e-3))
def test_exp_contains_the_exact_value(x, r):
    b = balls.exp(Ball(torch.tensor([x], dtype=torch.float64), torch.tensor([r], dtype=torch.float64)))
    with mpmath.workdps(60):
        for end in (mpmath.mpf(x) - mpmath.mpf(r), mpmath.mpf(x) + mpmath.mpf(r), mpmath.mpf(x)):
            v = mpmath.exp(end)
            assert mpmath.mpf(float(b.lo[0])) <= v <= mpmath.mpf(float(b.hi[0]))
    if r == 0 and x > -700:
        assert float(b.r[0]) <= 4e-15 * float(b.m[0]) + 1e-299  # relative, plus the absolute TINY


@settings(max_examples=60, deadline=None)
@given(st.floats(1e-300, 1e300))
def test_log_contains_the_exact_value(x):
    b = balls.log(Ball(torch.tensor([x], dtype=torch.float64), torch.tensor([0.0], dtype=torch.float64)))
    with mpmath.workdps(60):
        v = mpmath.log(mpmath.mpf(x))
        assert mpmath.mpf(float(b.lo[0])) <= v <= mpmath.mpf(float(b.hi[0]))
        assert float(b.r[0]) <= 1e-14 * max(1.0, abs(float(v)))


@settings(max_examples=40, deadline=None)
@given(st.floats(-8, 8), st.sampled_from(["tanh", "gelu", "sigmoid", "relu"]))
def test_activations_contain_the_exact_value(x, name):
    fn = {"tanh": balls.tanh, "gelu": balls.gelu, "sigmoid": balls.sigmoid, "relu": balls.relu}[name]
    exact = {"tanh": mpmath.tanh, "gelu": lambda v: v * (1 + mpmath.erf(v / mpmath.sqrt(2))) / 2,
             "sigmoid": lambda v: 1 / (1 + mpmath.exp(-v)), "relu": lambda v: max(v, mpmath.mpf(0))}[name]
    b = fn(Ball(torch.tensor([x], dtype=torch.float64), torch.tensor([1e-9], dtype=torch.float64)))
    with mpmath.workdps(60):
        for end in (mpmath.mpf(x) - mpmath.mpf(1e-9), mpmath.mpf(x), mpmath.mpf(x) + mpmath.mpf(1e-9)):
            assert mpmath.mpf(float(b.lo[0])) <= exact(end) <= mpmath.mpf(float(b.hi[0]))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3), min_size=6, max_size=6), st.lists(st.floats(-10, 10), min_size=6, max_size=6))
def test_the_matrix_product_bound_holds_in_any_order(a, w):
    x = Ball(torch.tensor(a, dtype=torch.float64).reshape(2, 3), torch.zeros(2, 3, dtype=torch.float64))
    wt = torch.tensor(w, dtype=torch.float64).reshape(3, 2)
    out = x.matmul_exact(wt)
    for i, j in itertools.product(range(2), range(2)):
        exact = sum(mpmath.mpf(a[3 * i + k]) * mpmath.mpf(w[2 * k + j]) for k in range(3))
        assert mpmath.mpf(float(out.lo[i, j])) <= exact <= mpmath.mpf(float(out.hi[i, j]))


def test_a_relu_that_straddles_zero_widens_the_result():
    x = Ball(torch.tensor([1e-20, 5.0, -5.0], dtype=torch.float64), torch.tensor([1e-15, 0.0, 0.0], dtype=torch.float64))
    y = balls.relu(x)
    assert float(y.lo[0]) <= 0 and float(y.hi[0]) >= 1e-15  # the hull [0, hi]
    assert float(y.m[1]) == 5.0 and float(y.m[2]) == 0.0 and float(y.r[2]) == 0.0


def test_overflowing_logits_make_an_unbounded_enclosure_never_a_pass():
    net = DecoderTransformer(TransformerConfig(alphabet="ab", d_model=4, n_heads=1, d_head=4, d_mlp=4, n_layers=1,
                                               max_len=4, norm="none"))
    with torch.no_grad():
        net.unembed.bias[0] = 1e308
        net.unembed.bias[1] = -1e308
    enc = enclose_words(net, ["ab"])
    assert not enc.bounded and enc.max_radius == math.inf


def test_the_kl_of_a_network_is_a_rigorous_interval():
    from constructions.export import case_prefixes, load_case

    case = load_case("anbn", 2)
    ps = case_prefixes(case)
    net = DecoderTransformer(TransformerConfig(alphabet="ab", d_model=8, n_heads=2, d_head=4, d_mlp=8, max_len=ps.max_length + 1))
    lo, hi = kl_bounds(case.data, enclose(net, ps.maximal, ps.prefixes))
    assert hi is not None and 0 < lo <= hi and hi - lo < 1e-6 * hi


def test_networks_the_evaluator_does_not_cover_are_refused_by_name():
    class Sneaky(DecoderTransformer):
        def forward(self, tokens):
            return super().forward(tokens) + 1

    cfg = TransformerConfig(alphabet="ab", d_model=4, n_heads=1, d_head=4, d_mlp=4, n_layers=1, max_len=4)
    assert "overrides" in why_not_enclosable(Sneaky(cfg))
    patched = DecoderTransformer(cfg)
    patched.blocks[0].mlp.forward = lambda x: x
    assert "own forward" in why_not_enclosable(patched)
    swapped = DecoderTransformer(cfg)
    swapped.blocks[0].mlp.fc_in = torch.nn.Bilinear(4, 4, 4)
    assert "Bilinear" in why_not_enclosable(swapped)
    with pytest.raises(InvalidModelConfig, match="cannot enclose"):
        enclose_words(Sneaky(cfg), ["a"])
    assert why_not_enclosable(DecoderTransformer(cfg)) == ""


def test_the_experiments_lstm_and_linear_models_are_enclosed():
    import empirical.enclosure  # noqa: F401
    from empirical.data import Vocab
    from empirical.linear import LinearModel
    from empirical.lstm import LSTMModel
    from theory.alphabet import Alphabet

    v = Vocab(Alphabet("ab"))
    for m in (LSTMModel(v.n_inputs, v.n_outputs, d_embed=4, d_hidden=8, n_layers=2, seed=1),
              LinearModel(v.n_inputs, v.n_outputs, d_embed=4, max_positions=8)):
        m = m.double()
        words = ["abba", "b"]
        pre = sorted({w[:t] for w in words for t in range(len(w) + 1)}, key=len)
        e = enclose(m, words, pre, encode=v.encode)
        with torch.no_grad():
            lp = m(v.encode(words)).log_softmax(-1)
        for i, w in enumerate(words):
            for t in range(len(w) + 1):
                lo, hi = e.row(w[:t])
                assert ((lo <= lp[i, t].numpy() + 1e-12) & (lp[i, t].numpy() - 1e-12 <= hi)).all()
        assert e.max_radius < 1e-10


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_and_cpu_enclosures_intersect():
    cfg = TransformerConfig(alphabet="ab", d_model=16, n_heads=2, d_head=8, d_mlp=32, max_len=8)
    net = DecoderTransformer(cfg)
    words = ["abab", "bbb"]
    cpu = enclose_words(net, words)
    gpu = enclose_words(net, words, device="cuda")
    assert (np.maximum(cpu.lp_lo, gpu.lp_lo) <= np.minimum(cpu.lp_hi, gpu.lp_hi)).all()
    _contains(gpu, net, words)


@given(st.lists(st.text(alphabet="ab", max_size=6), max_size=12))
def test_maximal_words_are_exactly_the_words_no_other_extends(words):
    from constructions.enclosure import maximal_words

    want = [w for w in dict.fromkeys(words) if not any(v != w and v.startswith(w) for v in words)]
    assert maximal_words(words) == want
