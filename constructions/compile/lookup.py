"""The analytic compiler: a finite prefix set of an AR model → weights of a :class:`DecoderTransformer`.

The network is an ordinary 2-layer decoder (``norm="none"``, ReLU, float64) whose residual stream is
split into four blocks of coordinates:

====== ============================== ===============================================
block  size                           holds
====== ============================== ===============================================
POS    ``max_len``                    one-hot of the position t (position embedding)
TOK    ``|Σ| + 3``                    one-hot of the input token (token embedding)
JOINT  ``(max_len − 1)·|Σ|``          one-hot of (s, xₛ) at s = t, then + its causal average
LOGIT  ``|Σ| + 1``                    the output logits (read by an identity unembedding)
====== ============================== ===============================================

* **Layer 1.**  Attention is switched off (all zero).  MLP unit (s, a) computes
  ReLU(POS_s + TOK_a − 1), which is 1 exactly when the token at position s is a, else 0, and writes it
  to JOINT(s, a): integer arithmetic, exact in floating point.
* **Layer 2.**  One head with zero query and key weights: every score is 0, so causal softmax
  attention is the *exact* uniform average over positions 0..t (no sharpness to tune).  Its values
  copy JOINT, so at position t JOINT(s, a) becomes [s = t][x_t = a] + [x_s = a]/(t + 1).
  MLP unit k looks up one prefix w = w₁…wₙ of the set:

      pre = m·( Σ_{s<n} 2(n+1)·JOINT(s, wₛ) + 2(n+1)/(n+2)·JOINT(n, wₙ) + G·POS_n − 2n + 1 − G ),  G = 2n + 6,

  which is +m at position n of the word w and ≤ −m at every other (position, word) — at t = n it is
  m(2·#matches − 2n + 1); at t ≠ n the POS gate subtracts G, more than the rest can add (the bound is
  4(n + 1) for t < n and 2n for t > n).  Its output column writes ℓ_w / m to LOGIT, with
  ℓ_w(a) = ln p(a | w), or −Λ (:attr:`CompileConfig.zero_logit`) where p(a | w) = 0.
* **Off the set** no unit fires and the logits are 0: the uniform row.  Only the set is promised.

Sizes: d_model = max_len + |Σ| + 3 + (max_len − 1)|Σ| + |Σ| + 1, d_mlp = max(#prefixes, (max_len − 1)|Σ|),
one head of width (max_len − 1)|Σ|.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import cast

import torch

from constructions.compile.config import CompileConfig
from constructions.compile.prefixes import PrefixSet
from constructions.transformer import Block, DecoderTransformer, TransformerConfig
from theory.errors import InvalidModelConfig
from theory.exact import ln_float
from theory.models import ARModel


@dataclass(frozen=True)
class CompileReport:
    """What the compiler did and the bound its logit floor costs (before any floating-point error).

    Attributes:
        prefixes: words of the set compiled.
        parameters: the network's parameter count.
        seconds: wall time of the compilation.
        zero_rows: rows of the set with some zero probability (they carry the floor).
        floor_tv_bound: max over the set of TV(p, softmax ℓ) = m e^−Λ/(1 + m e^−Λ).
        floor_kl_bound: max over the set of KL(p ‖ softmax ℓ) = ln(1 + m e^−Λ) (≤ m e^−Λ).
    """

    prefixes: int
    parameters: int
    seconds: float
    zero_rows: int
    floor_tv_bound: float
    floor_kl_bound: float


def log_row(probs: tuple[Fraction, ...], zero_logit: float) -> list[float]:
    """ℓ(a) = ln p(a) (from the exact rational, so tiny p never underflow) or −Λ where p(a) = 0."""
    return [ln_float(p) if p else -zero_logit for p in probs]


def compiled_config(alphabet: str, prefixes: PrefixSet) -> TransformerConfig:
    """The :class:`TransformerConfig` the compiler uses for ``prefixes`` (sizes in the module docstring)."""
    sigma = len(alphabet)
    max_len = prefixes.max_length + 1
    joint = (max_len - 1) * sigma
    d_model = max_len + (sigma + 3) + joint + (sigma + 1)
    return TransformerConfig(alphabet=alphabet, d_model=d_model, n_heads=1, d_head=max(joint, 1),
                             d_mlp=max(len(prefixes), joint, 1), n_layers=2, max_len=max_len, norm="none",
                             activation="relu", dtype="float64", seed=0)


def compile_model(model: ARModel, prefixes: PrefixSet, config: CompileConfig = CompileConfig()) -> tuple[DecoderTransformer, CompileReport]:
    """A :class:`DecoderTransformer` whose next-token distribution at every word u of ``prefixes`` is
    softmax(ℓ_u) with ℓ_u = ln q(· | u) of ``model`` (zeros floored at −Λ); see the module docstring.

    Returns the network (float64, CPU) and a :class:`CompileReport`.

    Raises:
        InvalidModelConfig: ``config`` is not a :class:`CompileConfig`, or ``prefixes`` is over another alphabet.
    """
    if not isinstance(config, CompileConfig):
        raise InvalidModelConfig(f"expected a CompileConfig, got {type(config).__name__}")
    alphabet = str(model.alphabet)
    if prefixes.alphabet != alphabet:
        raise InvalidModelConfig(f"prefix set is over {prefixes.alphabet!r}, the model over {alphabet!r}")
    t0 = time.perf_counter()
    cfg = compiled_config(alphabet, prefixes)
    sigma, L = len(alphabet), cfg.max_len
    POS, TOK = 0, L
    JOINT = TOK + cfg.n_inputs
    LOGIT = JOINT + (L - 1) * sigma
    n_joint = (L - 1) * sigma
    index = {a: i for i, a in enumerate(alphabet)}

    def joint(s: int, a: str) -> int:  # residual coordinate of (position s ≥ 1, symbol a)
        return JOINT + (s - 1) * sigma + index[a]

    net = DecoderTransformer(cfg)
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        net.position_embedding.weight[torch.arange(L), POS + torch.arange(L)] = 1.0
        net.token_embedding.weight[torch.arange(cfg.n_inputs), TOK + torch.arange(cfg.n_inputs)] = 1.0
        # Layer 1: the joint one-hot of (position, symbol).
        # net.blocks is the ModuleList of Blocks DecoderTransformer builds (indexing it types as a bare Module)
        mlp1 = cast(Block, net.blocks[0]).mlp
        s_idx = torch.arange(1, L).repeat_interleave(sigma)
        a_idx = torch.arange(sigma).repeat(L - 1)
        units = torch.arange(n_joint)
        mlp1.fc_in.weight[units, POS + s_idx] = 1.0
        mlp1.fc_in.weight[units, TOK + a_idx] = 1.0
        mlp1.fc_in.bias[units] = -1.0
        mlp1.fc_out.weight[JOINT + units, units] = 1.0
        # Layer 2 attention: zero scores (exact uniform average), values copy JOINT.
        attn = cast(Block, net.blocks[1]).attn
        attn.v_proj.weight[units, JOINT + units] = 1.0
        attn.o_proj.weight[JOINT + units, units] = 1.0
        # Layer 2 MLP: one lookup unit per prefix.
        mlp2 = cast(Block, net.blocks[1]).mlp
        m = config.margin
        rows_i: list[int] = []
        cols_i: list[int] = []
        vals: list[float] = []
        bias = torch.zeros(cfg.d_mlp, dtype=torch.float64)
        logits = torch.zeros(cfg.d_mlp, cfg.n_outputs, dtype=torch.float64)
        zero_rows, tv_max, kl_max = 0, 0.0, 0.0
        for k, w in enumerate(prefixes.prefixes):
            n = len(w)
            g = 2 * n + 6
            for s in range(1, n):
                rows_i.append(k)
                cols_i.append(joint(s, w[s - 1]))
                vals.append(2.0 * (n + 1) * m)
            if n:
                rows_i.append(k)
                cols_i.append(joint(n, w[n - 1]))
                vals.append(2.0 * (n + 1) / (n + 2) * m)
            rows_i.append(k)
            cols_i.append(POS + n)
            vals.append(g * m)
            bias[k] = (-2 * n + 1 - g) * m
            probs = model.next_token(w).probs
            zeros = sum(1 for p in probs if not p)
            if zeros:
                zero_rows += 1
                e = zeros * math.exp(-config.zero_logit)
                tv_max, kl_max = max(tv_max, e / (1 + e)), max(kl_max, math.log1p(e))
            logits[k] = torch.tensor(log_row(probs, config.zero_logit), dtype=torch.float64)
        mlp2.fc_in.weight[torch.tensor(rows_i), torch.tensor(cols_i)] = torch.tensor(vals, dtype=torch.float64)
        mlp2.fc_in.bias.copy_(bias)
        mlp2.fc_out.weight[LOGIT:LOGIT + cfg.n_outputs, :] = (logits / m).T
        net.unembed.weight[torch.arange(cfg.n_outputs), LOGIT + torch.arange(cfg.n_outputs)] = 1.0
    n_params = sum(p.numel() for p in net.parameters())
    report = CompileReport(len(prefixes), n_params, time.perf_counter() - t0, zero_rows, tv_max, kl_max)
    return net.eval(), report
