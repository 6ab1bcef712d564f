"""The selective SSM's rigorous enclosure (:func:`empirical.enclosure.ssm_balls`): it contains the
float64 forward and an independent mpmath evaluation of the real function at 50 digits (softplus as
ln(1 + eˣ) beyond torch's threshold too), with radii small enough for a useful gap; instances whose
forward is not the class's own are refused; two mutant enclosures (torch's thresholded softplus, the
D ⊙ u term dropped) miss the mpmath value where the real one holds it (the control); and the SSM's
saturation gap is now certified."""

from __future__ import annotations

import copy
import math

import mpmath
import pytest
import torch

import empirical.enclosure as ssm_enclosure
from constructions.balls import Ball
from constructions.enclosure import logit_balls, why_not_enclosable
from empirical.architectures import SIZES, build_model
from empirical.data import Vocab, language_data
from empirical.saturation import METHOD, model_rows, saturation_gap
from empirical.ssm import SelectiveSSM, SelectiveSSMBlock
from empirical.train import TrainConfig, train
from theory.alphabet import Alphabet
from theory.errors import InvalidModelConfig
from theory.losses import entropy

VOCAB = Vocab(Alphabet("ab"))
DPS = 50


# ---- an independent reference: the real function in mpmath ----------------------------------------------
def _mp(t: torch.Tensor):
    """A float tensor's values as exact mpf (nested lists)."""
    return _mp_nested(t.detach().double().tolist())


def _mp_nested(v):
    return [_mp_nested(x) for x in v] if isinstance(v, list) else mpmath.mpf(v)


def _mp_layer_norm(row: list, g: list, b: list, eps: float) -> list:
    d = len(row)
    mu = mpmath.fsum(row) / d
    var = mpmath.fsum((v - mu) ** 2 for v in row) / d
    inv = 1 / mpmath.sqrt(var + mpmath.mpf(eps))
    return [(v - mu) * inv * gg + bb for v, gg, bb in zip(row, g, b)]


def _mp_linear(row: list, w: list, b: list | None) -> list:
    out = [mpmath.fdot(wr, row) for wr in w]
    return out if b is None else [o + bb for o, bb in zip(out, b)]


def mp_logits(model: SelectiveSSM, ids: list[int]) -> list[list]:
    """The logits of the real function of ``model``'s weights at token ids ``ids``, at 50 digits:
    ``SelectiveSSM.forward`` written out scalar by scalar, softplus as the mathematical ln(1 + eˣ)."""
    with mpmath.workdps(DPS):
        p = {k: _mp(v) for k, v in model.state_dict().items()}
        x = [list(p["embedding.weight"][i]) for i in ids]
        for i, block in enumerate(model.blocks):
            pre = f"blocks.{i}."
            di = len(p[pre + "D"])
            ds = len(p[pre + "A_log"][0])
            a_mat = [[-mpmath.exp(v) for v in row] for row in p[pre + "A_log"]]
            h = [[mpmath.mpf(0)] * ds for _ in range(di)]
            new_x = []
            for t, xt in enumerate(x):
                n = _mp_layer_norm(xt, p[pre + "norm.weight"], p[pre + "norm.bias"], block.norm.eps)
                uz = _mp_linear(n, p[pre + "in_proj.weight"], p[pre + "in_proj.bias"])
                u, z = uz[:di], uz[di:]
                dt = [mpmath.log(1 + mpmath.exp(v)) for v in _mp_linear(u, p[pre + "delta.weight"], p[pre + "delta.bias"])]
                bt, ct = _mp_linear(u, p[pre + "b_proj.weight"], None), _mp_linear(u, p[pre + "c_proj.weight"], None)
                y = []
                for c in range(di):
                    for s in range(ds):
                        h[c][s] = mpmath.exp(dt[c] * a_mat[c][s]) * h[c][s] + dt[c] * u[c] * bt[s]
                    y.append(mpmath.fdot(h[c], ct) + p[pre + "D"][c] * u[c])
                g = [yc * zc / (1 + mpmath.exp(-zc)) for yc, zc in zip(y, z)]
                new_x.append([a + b for a, b in zip(xt, _mp_linear(g, p[pre + "out_proj.weight"], p[pre + "out_proj.bias"]))])
            x = new_x
        return [_mp_linear(_mp_layer_norm(xt, p["ln_final.weight"], p["ln_final.bias"], model.ln_final.eps),
                           p["unembed.weight"], p["unembed.bias"]) for xt in x]


def _outside(z: Ball, model: SelectiveSSM, words: list[str]) -> int:
    """How many logits of the mpmath reference at ``words`` the ball ``z`` (over ``VOCAB.encode(words)``) misses."""
    misses = 0
    lo, hi = z.lo.tolist(), z.hi.tolist()
    for row, w in enumerate(words):
        ids = VOCAB.encode([w])[0].tolist()
        for t, ref in enumerate(mp_logits(model, ids)):
            misses += sum(not (mpmath.mpf(lo[row][t][a]) <= v <= mpmath.mpf(hi[row][t][a])) for a, v in enumerate(ref))
    return misses


# ---- the networks ---------------------------------------------------------------------------------------
def _random(seed: int) -> SelectiveSSM:
    return build_model("ssm", VOCAB, 34, SIZES["cpu"], seed)


@pytest.fixture(scope="module")
def trained() -> SelectiveSSM:
    """An SSM after a few large Adam steps on L3 (weights no longer at their initial scale)."""
    model = _random(3)
    train(model, VOCAB, language_data("L3", n_max=4).train, TrainConfig(steps=12, batch_size=8, lr=3e-2, seed=3),
          progress=False)
    return model


def _random_words(seed: int, n: int = 20) -> list[str]:
    """Words of lengths 0..n−1 over {a, b} (so the encoded rows are SOS + word, lengths 1..n)."""
    g = torch.Generator().manual_seed(seed)
    return ["".join("ab"[int(i)] for i in torch.randint(0, 2, (k,), generator=g)) for k in range(n)]


def _forced_softplus() -> SelectiveSSM:
    """One block whose Δ pre-activations are constants far out on both sides: 20.25 and 30 (where torch's
    softplus returns x itself, 1.6e−9 and 9e−14 below the real value), −25 and −40 (Δ ≈ e^x)."""
    model = SelectiveSSM(VOCAB.n_inputs, VOCAB.n_outputs, d_model=4, d_inner=4, d_state=2, n_layers=1, seed=5).double()
    with torch.no_grad():
        model.blocks[0].delta.weight.zero_()
        model.blocks[0].delta.bias.copy_(torch.tensor([20.25, 30.0, -25.0, -40.0]))
    return model


# ---- containment ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2, "trained"])
def test_the_enclosure_contains_the_float64_forward_at_lengths_1_to_20(seed, trained):
    model = trained if seed == "trained" else _random(seed)
    words = _random_words(7 if seed == "trained" else seed)
    tokens = VOCAB.encode(words)  # (20, 20): row k is SOS + a word of length k, then PAD
    z = logit_balls(model, tokens)
    with torch.no_grad():
        f64 = copy.deepcopy(model).double()(tokens)
    assert ((z.lo <= f64) & (f64 <= z.hi)).all()
    one = logit_balls(model, tokens[:, :1])  # length 1 on its own
    assert ((one.lo <= f64[:, :1]) & (f64[:, :1] <= one.hi)).all()
    # small enough for a useful gap: at most 1e-8 relative to the row's largest logit (measured ≤ 3e-9 absolute)
    scale = z.m.abs().amax(-1, keepdim=True).clamp(min=1.0)
    assert float((z.r / scale).max()) < 1e-8


@pytest.mark.parametrize("which", ["random", "trained"])
def test_the_enclosure_contains_the_real_function_in_mpmath(which, trained):
    model = trained if which == "trained" else _random(1)
    words = ["abba", "aab", ""]
    assert _outside(logit_balls(model, VOCAB.encode(words)), model, words) == 0


def test_softplus_is_the_real_function_beyond_torchs_threshold():
    xs = [20.25, 21.0, 30.0, 40.0, 800.0, -20.5, -25.0, -40.0, -800.0, 0.0, 1e-3]
    ball = ssm_enclosure.softplus(Ball.exact(torch.tensor(xs, dtype=torch.float64)))
    with mpmath.workdps(DPS):
        for x, lo, hi in zip(xs, ball.lo.tolist(), ball.hi.tolist()):
            v = mpmath.log(1 + mpmath.exp(mpmath.mpf(x)))
            assert mpmath.mpf(lo) <= v <= mpmath.mpf(hi), x
    assert float(ball.lo[0]) > 20.25  # torch returns 20.25 itself: 1.6e-9 below ln(1 + e^20.25), outside the ball
    # a ball straddling 0, and wide ones: every point inside is enclosed
    wide = ssm_enclosure.softplus(Ball(torch.tensor([0.0, -30.0, 25.0], dtype=torch.float64),
                                       torch.tensor([0.5, 20.0, 10.0], dtype=torch.float64)))
    with mpmath.workdps(DPS):
        for m, r, lo, hi in zip([0.0, -30.0, 25.0], [0.5, 20.0, 10.0], wide.lo.tolist(), wide.hi.tolist()):
            for x in (m - r, m, m + r):
                assert mpmath.mpf(lo) <= mpmath.log(1 + mpmath.exp(mpmath.mpf(x))) <= mpmath.mpf(hi)


# ---- mutants, each with its control ---------------------------------------------------------------------
_REAL_SOFTPLUS = ssm_enclosure.softplus


def _thresholded_softplus(x: Ball) -> Ball:
    """The mutant: torch's F.softplus rule (x itself above 20) instead of the real function."""
    real = _REAL_SOFTPLUS(x)
    return Ball(torch.where(x.m > 20, x.m, real.m), torch.where(x.m > 20, x.r, real.r))


def _without_d(model: torch.nn.Module, tokens: torch.Tensor) -> Ball:
    """The mutant: an enclosure that drops the D ⊙ u term (the real one run with D = 0)."""
    stripped = copy.deepcopy(model)
    with torch.no_grad():
        for block in stripped.blocks:
            block.D.zero_()
    return ssm_enclosure.ssm_balls(stripped, tokens)


def test_a_thresholded_softplus_enclosure_misses_the_real_function(monkeypatch):
    model = _forced_softplus()
    words = ["ab", "b"]
    tokens = VOCAB.encode(words)
    assert _outside(logit_balls(model, tokens), model, words) == 0  # control
    monkeypatch.setattr(ssm_enclosure, "softplus", _thresholded_softplus)
    assert _outside(logit_balls(model, tokens), model, words) > 0


def test_an_enclosure_without_the_skip_term_misses_the_real_function():
    model = _random(2)
    words = ["ab"]
    tokens = VOCAB.encode(words)
    assert _outside(ssm_enclosure.ssm_balls(model, tokens), model, words) == 0  # control
    assert _outside(_without_d(model, tokens), model, words) > 0


def test_each_layer_norms_own_eps_is_read():
    model = _random(4).double()
    for m in model.modules():
        if isinstance(m, torch.nn.LayerNorm):
            m.eps = 0.5  # large enough to move every logit far beyond the radius
    tokens = VOCAB.encode(["abab", "b"])
    z = logit_balls(model, tokens)
    with torch.no_grad():
        f64 = model(tokens)
    assert ((z.lo <= f64) & (f64 <= z.hi)).all()


class _Subclassed(SelectiveSSM):
    pass


class _Block(SelectiveSSMBlock):
    pass


def _instance_forward(model: SelectiveSSM) -> None:
    model.blocks[1].forward = lambda x: x  # type: ignore[method-assign]


def _swapped_linear(model: SelectiveSSM) -> None:
    model.blocks[0].delta = torch.nn.Sequential(model.blocks[0].delta)


def _swapped_block(model: SelectiveSSM) -> None:
    old = model.blocks[0]
    new = _Block(16, 32, 8)
    new.load_state_dict(old.state_dict())
    model.blocks[0] = new


def _swapped_norm(model: SelectiveSSM) -> None:
    model.ln_final = torch.nn.RMSNorm(16)


@pytest.mark.parametrize("mutate", [_instance_forward, _swapped_linear, _swapped_block, _swapped_norm])
def test_a_network_whose_forward_is_not_the_class_own_is_refused(mutate):
    model = _random(0)
    tokens = VOCAB.encode(["ab"])
    logit_balls(model, tokens)  # control
    mutate(model)
    with pytest.raises(InvalidModelConfig, match="cannot enclose"):
        logit_balls(model, tokens)


def test_a_subclass_is_not_covered():
    model = _Subclassed(VOCAB.n_inputs, VOCAB.n_outputs)
    assert why_not_enclosable(model) == "no rigorous enclosure for a _Subclassed"
    assert why_not_enclosable(SelectiveSSM(VOCAB.n_inputs, VOCAB.n_outputs)) == ""  # control
    with pytest.raises(InvalidModelConfig, match="cannot enclose"):
        logit_balls(model, VOCAB.encode(["ab"]))


# ---- the saturation gap ---------------------------------------------------------------------------------
def test_the_ssm_saturation_gap_is_certified_and_contains_the_float_kl(trained):
    P = language_data("L3", n_max=4).distribution
    gap = saturation_gap(trained, P)
    assert gap.rigorous and gap.method == METHOD and gap.finite
    rows = model_rows(trained, VOCAB, [x for x, _p in P.sequences()])
    den, nodes = P.integer_trie()
    ce = math.fsum(m / den * -math.log(rows[u][a]) for u, _mass, masses in nodes for a, m in enumerate(masses) if m)
    kl = ce - float(entropy(P))
    assert gap.kl_lo - 1e-12 <= kl <= gap.kl_hi + 1e-12  # the float KL is within ~1e-14 of the real one
    assert 0 < gap.kl_hi - gap.kl_lo < 1e-6
    # an unregistered subclass still takes the measured path, and the two intervals meet
    sub = _Subclassed(VOCAB.n_inputs, VOCAB.n_outputs)
    sub.load_state_dict(trained.state_dict())
    measured = saturation_gap(sub, P)
    assert not measured.rigorous and measured.kl_lo <= gap.kl_hi + 1e-12 and gap.kl_lo <= measured.kl_hi + 1e-12
