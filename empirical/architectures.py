"""The architectures by name, their sizes, and the memory estimate that refuses a run before training.

Names: ``transformer`` (learned positions), ``transformer-nopos`` (the published code's
position-blind Transformer, see :mod:`empirical.transformer`), ``lstm``, ``linear``, ``ssm`` (a small
Mamba-style selective state-space model, :mod:`empirical.ssm`; compared with the published Mamba).  Every model maps
token ids (B, T) to logits (B, T, |Σ| + 1) and has ``max_positions`` (None = any length).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn

from constructions.transformer import TransformerConfig
from empirical.data import Vocab
from empirical.errors import ConfigTooLarge
from empirical.linear import LinearModel
from empirical.lstm import LSTMModel
from empirical.names import check_architecture
from empirical.ssm import SelectiveSSM
from empirical.transformer import ExperimentTransformer


@dataclass(frozen=True)
class ModelSize:
    """Widths of every architecture at one size (a frozen, JSON-able record)."""

    d_model: int = 16
    n_heads: int = 2
    d_head: int = 8
    d_mlp: int = 64
    n_layers: int = 2
    lstm_embed: int = 16
    lstm_hidden: int = 64
    lstm_layers: int = 1
    linear_embed: int = 16
    ssm_d_model: int = 16
    ssm_d_inner: int = 32
    ssm_d_state: int = 8
    ssm_layers: int = 2


SIZES = {
    "cpu": ModelSize(),
    # The position paper's Transformer: d_model 10, 5 heads, FF 1024, 5 layers.  LSTM: embedding 16
    # (the paper's text), hidden 64, 2 layers (our choice: the papers' LSTM width is not in our sources).
    "paper": ModelSize(d_model=10, n_heads=5, d_head=2, d_mlp=1024, n_layers=5, lstm_embed=16, lstm_hidden=64,
                       lstm_layers=2, linear_embed=16, ssm_d_model=32, ssm_d_inner=64, ssm_d_state=16, ssm_layers=2),
}


def build_model(arch: str, vocab: Vocab, max_positions: int, size: ModelSize, seed: int) -> nn.Module:
    """A freshly initialised model (float32, CPU), deterministic from ``seed``.

    Raises:
        UnknownArchitecture.
    """
    check_architecture(arch)
    if arch.startswith("transformer"):
        cfg = TransformerConfig(alphabet=str(vocab.alphabet), d_model=size.d_model, n_heads=size.n_heads,
                                d_head=size.d_head, d_mlp=size.d_mlp, n_layers=size.n_layers, max_len=max_positions,
                                dtype="float32", seed=seed)
        return ExperimentTransformer(cfg, position="none" if arch == "transformer-nopos" else "learned")
    if arch == "ssm":
        model: nn.Module = SelectiveSSM(vocab.n_inputs, vocab.n_outputs, d_model=size.ssm_d_model, d_inner=size.ssm_d_inner,
                             d_state=size.ssm_d_state, n_layers=size.ssm_layers, seed=seed)
    elif arch == "lstm":
        model = LSTMModel(vocab.n_inputs, vocab.n_outputs, d_embed=size.lstm_embed, d_hidden=size.lstm_hidden,
                          n_layers=size.lstm_layers, seed=seed)
    else:
        model = LinearModel(vocab.n_inputs, vocab.n_outputs, d_embed=size.linear_embed, max_positions=max_positions,
                            seed=seed)
    return model.float()


def parameter_count(arch: str, vocab: Vocab, max_positions: int, size: ModelSize) -> int:
    """Number of parameters (from the formulas, without building the model)."""
    check_architecture(arch)
    v, o = vocab.n_inputs, vocab.n_outputs
    if arch.startswith("transformer"):
        d, inner = size.d_model, size.n_heads * size.d_head
        block = 3 * (d * inner + inner) + inner * d + d + d * size.d_mlp + size.d_mlp + size.d_mlp * d + d + 4 * d
        return v * d + max_positions * d + size.n_layers * block + 2 * d + d * o + o
    if arch == "ssm":
        d, i, n = size.ssm_d_model, size.ssm_d_inner, size.ssm_d_state
        block = 2 * d + d * 2 * i + 2 * i + i * i + i + 2 * i * n + i * n + i + i * d + d
        return v * d + size.ssm_layers * block + 2 * d + d * o + o
    if arch == "lstm":
        h, e = size.lstm_hidden, size.lstm_embed
        layers = sum(4 * h * ((e if i == 0 else h) + h + 2) for i in range(size.lstm_layers))
        return v * e + layers + h * o + o
    e = size.linear_embed
    return v * e + max_positions ** 2 + e * o + o


def estimate_training_bytes(arch: str, vocab: Vocab, max_positions: int, size: ModelSize, batch: int,
                            length: int, bytes_per_value: int = 4) -> int:
    """A generous estimate of the peak memory of one training step: parameters ×4 (weights, grads,
    two Adam moments) plus the activations kept for the backward pass (×2 for their gradients)."""
    params = parameter_count(arch, vocab, max_positions, size)
    b, t = batch, length
    if arch.startswith("transformer"):
        inner = size.n_heads * size.d_head
        per_layer = b * t * (8 * size.d_model + 4 * inner + 2 * size.d_mlp) + 3 * b * size.n_heads * t * t
        acts = size.n_layers * per_layer + b * t * (2 * size.d_model + 2 * vocab.n_outputs)
    elif arch == "ssm":
        acts = size.ssm_layers * b * t * (4 * size.ssm_d_model + 8 * size.ssm_d_inner
                                          + 4 * size.ssm_d_inner * size.ssm_d_state) + b * t * 2 * vocab.n_outputs
    elif arch == "lstm":
        acts = b * t * (size.lstm_embed + size.lstm_layers * 10 * size.lstm_hidden + 2 * vocab.n_outputs)
    else:
        acts = b * t * (3 * size.linear_embed + 2 * vocab.n_outputs) + t * t
    return bytes_per_value * (4 * params + 2 * acts)


def available_bytes(device: torch.device) -> int:
    """Free memory of ``device``: CUDA's ``mem_get_info`` on a GPU, ``MemAvailable`` on the CPU."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def check_fits(arch: str, vocab: Vocab, max_positions: int, size: ModelSize, batch: int, length: int,
               device: torch.device, budget: int | None = None) -> int:
    """Return the estimate in bytes; raise :class:`ConfigTooLarge` (with the estimate and what is
    available) when it exceeds ``budget`` (default: the device's free memory)."""
    need = estimate_training_bytes(arch, vocab, max_positions, size, batch, length)
    have = available_bytes(device) if budget is None else budget
    if need > have:
        raise ConfigTooLarge(f"{arch} with batch {batch} × {length} positions needs ≈ {need / 2**30:.2f} GiB for one "
                             f"training step; {device.type} has {have / 2**30:.2f} GiB available — refused before training")
    return need
