"""The linear baseline: logits_t = U · Σ_{s ≤ t} W[t, s] · E[x_s] + b, a single linear map of the
embedded prefix with a *correct* causal mask (the companion paper's mask lets a position see later
tokens, a defect we do not copy).  The mask is applied to the weights on every forward pass, so
entries above the diagonal neither act nor learn.
"""

from __future__ import annotations

import torch
from torch import nn


class LinearModel(nn.Module):
    """Causal linear sequence model over ``max_positions`` positions (module docstring)."""

    mask: torch.Tensor  # a registered buffer

    def __init__(self, n_inputs: int, n_outputs: int, *, d_embed: int = 16, max_positions: int = 64, seed: int = 0) -> None:
        super().__init__()
        self.max_positions = max_positions
        self.embedding = nn.Embedding(n_inputs, d_embed)
        self.mix = nn.Parameter(torch.empty(max_positions, max_positions))
        self.unembed = nn.Linear(d_embed, n_outputs)
        self.register_buffer("mask", torch.ones(max_positions, max_positions).tril(), persistent=False)
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in self.named_parameters():
                scale = 1.0 if name.startswith("embedding") else 1.0 / d_embed ** 0.5
                if name == "mix":
                    scale = 1.0 / max_positions
                p.copy_(torch.empty(p.shape, dtype=torch.float64).uniform_(-scale, scale, generator=gen))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        t = tokens.shape[1]
        if t > self.max_positions:
            from theory.errors import InputTooLong

            raise InputTooLong(f"{t} positions exceed the linear model's max_positions = {self.max_positions}")
        w = (self.mix[:t, :t] * self.mask[:t, :t]).to(self.unembed.weight.dtype)
        h = torch.einsum("ts,bsd->btd", w, self.embedding(tokens))
        return self.unembed(h)
