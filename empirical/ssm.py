"""A small Mamba-style selective state-space model in pure PyTorch (no custom kernels).

Each block (pre-LayerNorm, residual) maps the stream x to ``u, z = in_proj(x)`` (width ``d_inner``
each), then runs a *selective* diagonal recurrence per channel c and state n:

    Δ_t = softplus(W_Δ u_t + b_Δ),  B_t = W_B u_t,  C_t = W_C u_t,  A = −exp(A_log)  (d_inner × d_state)
    h_t = exp(Δ_t A) ⊙ h_{t−1} + Δ_t B_t u_t,       y_t = C_t · h_t + D ⊙ u_t

and returns ``out_proj(y ⊙ silu(z))``.  This is Mamba's selective scan without its short causal
convolution and hardware-aware kernel; the scan is a plain loop over positions, so the model is
causal by construction and any length fits.  Initialisation is deterministic from ``seed``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class SelectiveSSMBlock(nn.Module):
    def __init__(self, d_model: int, d_inner: int, d_state: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.in_proj = nn.Linear(d_model, 2 * d_inner)
        self.delta = nn.Linear(d_inner, d_inner)
        self.b_proj = nn.Linear(d_inner, d_state, bias=False)
        self.c_proj = nn.Linear(d_inner, d_state, bias=False)
        self.A_log = nn.Parameter(torch.empty(d_inner, d_state))
        self.D = nn.Parameter(torch.empty(d_inner))
        self.out_proj = nn.Linear(d_inner, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u, z = self.in_proj(self.norm(x)).chunk(2, dim=-1)  # (B, T, d_inner) each
        dt = F.softplus(self.delta(u))  # (B, T, d_inner)
        bt, ct = self.b_proj(u), self.c_proj(u)  # (B, T, d_state)
        A = -torch.exp(self.A_log)  # (d_inner, d_state)
        decay = torch.exp(dt[..., None] * A)  # (B, T, d_inner, d_state)
        drive = (dt * u)[..., None] * bt[:, :, None, :]  # (B, T, d_inner, d_state)
        h = torch.zeros_like(decay[:, 0])
        ys = []
        for t in range(x.shape[1]):
            h = decay[:, t] * h + drive[:, t]
            ys.append((h * ct[:, t, None, :]).sum(-1))
        y = torch.stack(ys, dim=1) + self.D * u
        return x + self.out_proj(y * F.silu(z))


class SelectiveSSM(nn.Module):
    """Embedding, ``n_layers`` :class:`SelectiveSSMBlock`, final LayerNorm, read-out over Σ ∪ {EOS}."""

    max_positions = None

    def __init__(self, n_inputs: int, n_outputs: int, *, d_model: int = 16, d_inner: int = 32, d_state: int = 8,
                 n_layers: int = 2, seed: int = 0) -> None:
        super().__init__()
        self.embedding = nn.Embedding(n_inputs, d_model)
        self.blocks = nn.ModuleList(SelectiveSSMBlock(d_model, d_inner, d_state) for _ in range(n_layers))
        self.ln_final = nn.LayerNorm(d_model)
        self.unembed = nn.Linear(d_model, n_outputs)
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in self.named_parameters():
                noise = torch.randn(p.shape, generator=gen, dtype=torch.float64)
                if name.endswith("A_log"):  # S4D-real: A_n = −(n + 1)
                    value = torch.log(torch.arange(1, p.shape[1] + 1, dtype=torch.float64)).expand(p.shape).clone()
                elif name.endswith(".D"):
                    value = torch.ones(p.shape, dtype=torch.float64)
                elif name.endswith("delta.bias"):  # Δ starts in [0.001, 0.1], as in Mamba
                    dt = torch.exp(torch.rand(p.shape, generator=gen, dtype=torch.float64) * math.log(100) + math.log(1e-3))
                    value = dt + torch.log(-torch.expm1(-dt))
                elif "norm" in name or name.startswith("ln_"):
                    value = torch.ones(p.shape, dtype=torch.float64) if name.endswith("weight") else torch.zeros(p.shape, dtype=torch.float64)
                elif name.endswith("bias"):
                    value = 0.02 * noise
                elif name.startswith("embedding"):
                    value = noise
                else:
                    value = noise / math.sqrt(p.shape[1])
                p.copy_(value)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embedding(tokens)
        for block in self.blocks:
            x = block(x)
        return self.unembed(self.ln_final(x))
