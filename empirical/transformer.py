"""The Transformer of the experiments: the project's one :class:`~constructions.transformer.DecoderTransformer`,
with a switch for the published code's positional-encoding defect.

``position="learned"`` is the decoder as it is (learned absolute positions, added along the sequence
axis).  ``position="none"`` reproduces what the companion paper's code effectively trained: its
sinusoidal encoding is added along the *batch* axis (``pe[:x.size(0)]`` on a batch-first tensor), so
every position of a sequence gets the same vector — no position signal at all.  (It also shifts
each sequence by a vector that depends on its row in the batch; we drop that part, which only adds
noise, and keep the defect that matters: the network sees no position.)  Implemented by zeroing
the position embedding and freezing it, so the forward pass is the decoder's own and the other
parameters are initialised exactly as for ``learned`` with the same seed.

Without positions, causal self-attention is invariant to permutations of the prefix: the output at
position t depends only on the multiset of tokens up to t.  :func:`position_sensitivity` measures
exactly that, and the tests use it to catch the defect.
"""

from __future__ import annotations

import torch

from constructions.transformer import DecoderTransformer, TransformerConfig
from empirical.errors import InvalidExperimentConfig

POSITIONS = ("learned", "none")


class ExperimentTransformer(DecoderTransformer):
    """A :class:`DecoderTransformer` with ``position`` = ``learned`` or ``none`` (module docstring)."""

    def __init__(self, config: TransformerConfig, position: str = "learned") -> None:
        if position not in POSITIONS:
            raise InvalidExperimentConfig(f"position {position!r} is not one of {POSITIONS}")
        super().__init__(config)
        self.position = position
        if position == "none":
            with torch.no_grad():
                self.position_embedding.weight.zero_()
            self.position_embedding.weight.requires_grad_(False)

    @property
    def max_positions(self) -> int:
        return self.config.max_len


def position_sensitivity(model: torch.nn.Module, tokens: torch.Tensor) -> float:
    """max |Δ logit| at the last position when the tokens strictly between SOS and the last one are
    reversed (the same multiset before the same query token, in another order).  0 for a
    position-blind causal model (up to rounding); clearly positive for one that sees positions.
    ``tokens``: (B, T) rows of ``[SOS, x…]`` without padding, T ≥ 4."""
    flipped = tokens.clone()
    flipped[:, 1:-1] = tokens[:, 1:-1].flip(1)
    with torch.no_grad():
        a, b = model(tokens)[:, -1], model(flipped)[:, -1]
    return float((a - b).abs().max())
