"""Rigorous enclosures of the experiments' recurrent and linear networks, registered with the one
evaluator (:mod:`constructions.enclosure`), so that a saturation gap of an LSTM or of the linear
baseline holds for the real function of its stored weights, like a transformer's.  The selective
SSM has no enclosure yet: its gap is measured in float and says so (:mod:`empirical.saturation`).

Each function mirrors the network's ``forward`` operation for operation in ball arithmetic
(:mod:`constructions.balls`); the registration is by exact type, so a subclass is not covered.
"""

from __future__ import annotations

from typing import cast

import torch

from constructions import balls
from constructions.balls import Ball
from constructions.enclosure import register_enclosure
from empirical.linear import LinearModel
from empirical.lstm import LSTMModel


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


register_enclosure(LSTMModel, lstm_balls)
register_enclosure(LinearModel, linear_model_balls)
