"""Rigorous enclosures of the experiments' recurrent, linear and selective state-space networks,
registered with the one evaluator (:mod:`constructions.enclosure`), so that a saturation gap of an
LSTM, of the linear baseline or of the selective SSM holds for the real function of its stored
weights, like a transformer's (:mod:`empirical.saturation`).

Each function mirrors the network's ``forward`` operation for operation in ball arithmetic
(:mod:`constructions.balls`); the registration is by exact type, so a subclass is not covered, and
:func:`_guard` refuses an instance whose forward or submodules are not the class's own.  Where torch
computes an approximation of a real function, the enclosure is of the real function: the SSM's
softplus is ln(1 + eˣ) for every x, not torch's ``F.softplus``, which returns x itself above 20.
"""

from __future__ import annotations

from typing import cast

import torch

from constructions import balls
from constructions.balls import Ball
from constructions.enclosure import Weights, register_enclosure
from empirical.linear import LinearModel
from empirical.lstm import LSTMModel
from empirical.ssm import SelectiveSSM, SelectiveSSMBlock


def _guard(model: torch.nn.Module, parts: dict[str, type]) -> None:
    """Refuse a network whose forward is not the class's own: an instance-level forward anywhere, or a
    submodule of another type than the class builds."""
    from theory.errors import InvalidModelConfig

    for name, mod in model.named_modules():
        if "forward" in vars(mod):
            raise InvalidModelConfig(f"cannot enclose this {type(model).__name__}: module {name or 'itself'} has its own forward")
    for name, cls in parts.items():
        if type(getattr(model, name, None)) is not cls:
            raise InvalidModelConfig(f"cannot enclose this {type(model).__name__}: its {name} is not a {cls.__name__}")


def lstm_balls(model: torch.nn.Module, tokens: torch.Tensor) -> Ball:
    """Enclosure of an ``empirical.lstm.LSTMModel``'s logits: torch's LSTM cell (gates i, f, g, o) in balls."""
    from theory.errors import InvalidModelConfig

    _guard(model, {"embedding": torch.nn.Embedding, "lstm": torch.nn.LSTM, "unembed": torch.nn.Linear})
    lstm = cast(torch.nn.LSTM, model.lstm)  # _guard checked its exact type
    if lstm.bidirectional or not lstm.batch_first or lstm.proj_size or not lstm.bias:
        raise InvalidModelConfig("cannot enclose this LSTMModel: its LSTM is not the unidirectional, batch-first, biased one it builds")
    dev = tokens.device
    p = {k: v.detach().to(device=dev, dtype=torch.float64) for k, v in model.state_dict().items()}
    x = Ball.exact(p["embedding.weight"][tokens])
    b, t, _ = x.shape
    for layer in range(lstm.num_layers):
        w_ih, w_hh = p[f"lstm.weight_ih_l{layer}"].T.contiguous(), p[f"lstm.weight_hh_l{layer}"].T.contiguous()
        bias = Ball.exact(p[f"lstm.bias_ih_l{layer}"]) + Ball.exact(p[f"lstm.bias_hh_l{layer}"])
        hdim = lstm.hidden_size
        pre_x = x.matmul_exact(w_ih) + Ball(bias.m.expand(b, t, -1), bias.r.expand(b, t, -1))
        h = Ball(torch.zeros(b, hdim, dtype=torch.float64, device=dev), torch.zeros(b, hdim, dtype=torch.float64, device=dev))
        c = h
        outs_m, outs_r = [], []
        for step in range(t):
            g = pre_x[:, step] + h.matmul_exact(w_hh)
            i_g, f_g = balls.sigmoid(g[:, :hdim]), balls.sigmoid(g[:, hdim:2 * hdim])
            c_g, o_g = balls.tanh(g[:, 2 * hdim:3 * hdim]), balls.sigmoid(g[:, 3 * hdim:])
            c = f_g * c + i_g * c_g
            h = o_g * balls.tanh(c)
            outs_m.append(h.m)
            outs_r.append(h.r)
        x = Ball(torch.stack(outs_m, 1), torch.stack(outs_r, 1))
    w = p["unembed.weight"].T.contiguous()
    return x.matmul_exact(w).add_exact(p["unembed.bias"])


def linear_model_balls(model: torch.nn.Module, tokens: torch.Tensor) -> Ball:
    """Enclosure of an ``empirical.linear.LinearModel``'s logits (the mixing weights times the model's own
    mask buffer, then the read-out)."""
    from theory.errors import InputTooLong

    _guard(model, {"embedding": torch.nn.Embedding, "unembed": torch.nn.Linear})
    lm = cast(LinearModel, model)  # registered for exactly LinearModel (below)
    dev = tokens.device
    p = {k: v.detach().to(device=dev, dtype=torch.float64) for k, v in model.state_dict().items()}
    t = tokens.shape[1]
    if t > lm.max_positions:
        raise InputTooLong(f"{t} positions exceed the linear model's max_positions = {lm.max_positions}")
    mix = lm.mix.detach().to(device=dev, dtype=torch.float64)[:t, :t]
    mask = cast(torch.Tensor, lm.mask).detach().to(device=dev, dtype=torch.float64)[:t, :t]  # a buffer LinearModel registers
    w = Ball.exact(mix).mul_exact(mask)  # (t, s)
    e = Ball.exact(p["embedding.weight"][tokens])  # (b, s, d)
    h = Ball(w.m[None], w.r[None]).matmul(e)  # (b, t, d): h_t = Σ_s w[t, s] e_s
    return h.matmul_exact(p["unembed.weight"].T.contiguous()).add_exact(p["unembed.bias"])


def softplus(x: Ball) -> Ball:
    """ln(1 + eˣ) over a ball, for every real x (no threshold): it is increasing, so the hull of its
    values at the ball's two float ends, each max(p, 0) + ln(1 + e^{−|p|}) — max and |·| exact on a float,
    e^{−|p|} ∈ (0, 1] and the log of a ball in (1, 2] both rigorous (:mod:`constructions.balls`)."""
    ends = []
    for p in (x.lo, x.hi):
        tail = balls.log(balls.exp(Ball.exact(-p.abs())).add_exact(1.0))
        ends.append(tail.add_exact(p.clamp(min=0.0)))
    return Ball.from_bounds(ends[0].lo, ends[1].hi)


class _SSMWeights(Weights):
    """The evaluator's weights helper (its rigorous LayerNorm and biased linear maps) over a selective
    SSM's parameters, plus a linear map whose bias is optional (the B and C projections have none)."""

    def __init__(self, model: torch.nn.Module, device: torch.device) -> None:
        self.p = {k: v.detach().to(device=device, dtype=torch.float64) for k, v in model.state_dict().items()}
        self.abs_t = {}

    def project(self, x: Ball, name: str) -> Ball:
        """x Wᵀ (+ b when the layer has a bias), as ``torch.nn.Linear``."""
        if name + ".bias" in self.p:
            return self.linear(x, name)
        w = self.p[name + ".weight"].T.contiguous()
        return x.matmul_exact(w)


def _layer_norm_eps(norm: torch.nn.Module, width: int, where: str) -> float:
    """The eps of a LayerNorm the enclosure can mirror (affine with a bias, over the last axis of ``width``)."""
    from theory.errors import InvalidModelConfig

    ln = cast(torch.nn.LayerNorm, norm)  # _guard checked its exact type
    if tuple(ln.normalized_shape) != (width,) or not ln.elementwise_affine or ln.bias is None:
        raise InvalidModelConfig(f"cannot enclose this SelectiveSSM: its {where} is not the affine LayerNorm over {width} it builds")
    return float(ln.eps)


def _ssm_block_balls(w: _SSMWeights, block: SelectiveSSMBlock, pre: str, x: Ball) -> Ball:
    """One :class:`~empirical.ssm.SelectiveSSMBlock` on the stream ``x`` (batch, T, d_model), in balls."""
    _guard(block, {"norm": torch.nn.LayerNorm, "in_proj": torch.nn.Linear, "delta": torch.nn.Linear,
                   "b_proj": torch.nn.Linear, "c_proj": torch.nn.Linear, "out_proj": torch.nn.Linear})
    d_inner = w.p[pre + "D"].shape[0]
    uz = w.project(w.layer_norm(x, pre + "norm", _layer_norm_eps(block.norm, x.shape[-1], pre + "norm")), pre + "in_proj")
    u, z = uz[..., :d_inner], uz[..., d_inner:]  # chunk(2, dim=-1)
    dt = softplus(w.project(u, pre + "delta"))  # (B, T, d_inner)
    bt, ct = w.project(u, pre + "b_proj"), w.project(u, pre + "c_proj")  # (B, T, d_state)
    a = -balls.exp(Ball.exact(w.p[pre + "A_log"]))  # (d_inner, d_state)
    dtu = dt * u
    b, t = x.shape[0], x.shape[1]
    zeros = torch.zeros(b, *a.shape, dtype=torch.float64, device=x.m.device)
    h = Ball(zeros, zeros)
    ys_m, ys_r = [], []
    for step in range(t):  # decay and drive one position at a time: the same reals, a T-th of the memory
        decay = balls.exp(dt[:, step, :, None] * a)  # (B, d_inner, d_state)
        drive = dtu[:, step, :, None] * bt[:, step, None, :]
        h = decay * h + drive
        y_t = (h * ct[:, step, None, :]).sum(-1)
        ys_m.append(y_t.m)
        ys_r.append(y_t.r)
    y = Ball(torch.stack(ys_m, 1), torch.stack(ys_r, 1)) + u.mul_exact(w.p[pre + "D"])
    silu = z * balls.sigmoid(z)
    return x + w.project(y * silu, pre + "out_proj")


def ssm_balls(model: torch.nn.Module, tokens: torch.Tensor) -> Ball:
    """Enclosure of an ``empirical.ssm.SelectiveSSM``'s logits: embedding, every block (pre-LayerNorm,
    in_proj, Δ = softplus(·) as the real ln(1 + eˣ), B and C, A = −exp(A_log), the scan
    h_t = exp(Δ_t A) ⊙ h_{t−1} + Δ_t B_t u_t, y = C·h + D ⊙ u, y ⊙ silu(z), out_proj, residual), the
    final LayerNorm and the read-out, in balls.  Each LayerNorm's eps is read off its module.

    Raises:
        InvalidModelConfig: an instance whose forward or submodules are not the class's own (:func:`_guard`),
            or a LayerNorm or embedding other than the ones the class builds.
    """
    from theory.errors import InvalidModelConfig

    _guard(model, {"embedding": torch.nn.Embedding, "blocks": torch.nn.ModuleList, "ln_final": torch.nn.LayerNorm,
                   "unembed": torch.nn.Linear})
    ssm = cast(SelectiveSSM, model)  # registered for exactly SelectiveSSM (below)
    if cast(torch.nn.Embedding, ssm.embedding).max_norm is not None:
        raise InvalidModelConfig("cannot enclose this SelectiveSSM: its embedding renormalises (max_norm)")
    w = _SSMWeights(model, tokens.device)
    x = Ball.exact(w.p["embedding.weight"][tokens])
    for i, block in enumerate(cast(torch.nn.ModuleList, ssm.blocks)):
        if type(block) is not SelectiveSSMBlock:
            raise InvalidModelConfig(f"cannot enclose this SelectiveSSM: its blocks.{i} is not a SelectiveSSMBlock")
        x = _ssm_block_balls(w, block, f"blocks.{i}.", x)
    x = w.layer_norm(x, "ln_final", _layer_norm_eps(ssm.ln_final, x.shape[-1], "ln_final"))
    return w.project(x, "unembed")


register_enclosure(LSTMModel, lstm_balls)
register_enclosure(LinearModel, linear_model_balls)
register_enclosure(SelectiveSSM, ssm_balls)
