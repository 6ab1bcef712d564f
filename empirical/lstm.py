"""The LSTM of the experiments: token embedding (16-dimensional, as the companion paper states; its
code uses 10), a stacked ``torch.nn.LSTM``, a linear read-out over Σ ∪ {EOS}.

Initialisation is deterministic from ``seed`` (its own ``torch.Generator``; the global RNG is not
touched).  It has no positional range: any length fits.
"""

from __future__ import annotations

import torch
from torch import nn


class LSTMModel(nn.Module):
    """``unembed(LSTM(embed(tokens)))``: logits (B, T, n_outputs) from ids (B, T)."""

    def __init__(self, n_inputs: int, n_outputs: int, *, d_embed: int = 16, d_hidden: int = 64, n_layers: int = 1,
                 seed: int = 0) -> None:
        super().__init__()
        self.embedding = nn.Embedding(n_inputs, d_embed)
        self.lstm = nn.LSTM(d_embed, d_hidden, num_layers=n_layers, batch_first=True)
        self.unembed = nn.Linear(d_hidden, n_outputs)
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in self.named_parameters():
                scale = 1.0 if name.startswith("embedding") else 1.0 / d_hidden ** 0.5
                p.copy_(torch.empty(p.shape, dtype=torch.float64).uniform_(-scale, scale, generator=gen))

    max_positions = None

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(self.embedding(tokens))
        return self.unembed(out)
