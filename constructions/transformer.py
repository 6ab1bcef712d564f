"""The project's one decoder-only causal transformer.

Every part of `nonid` that needs a real network — the analytic compiler, the distiller, the training
experiments, the fine-tuning witnesses of docs/theory.md Proposition 3 — builds this class, so a saved
model means the same thing everywhere.

Architecture (GPT-2 shaped, small and explicit):

* **Vocabulary.**  Inputs: the alphabet's symbols (ids ``0 … |Σ|−1``), then EOS (``|Σ|``), SOS
  (``|Σ|+1``) and PAD (``|Σ|+2``), the one layout of :class:`theory.alphabet.Alphabet` (``eos_id`` …).
  Outputs: ``|Σ| + 1`` logits over Σ ∪ {EOS}, in the order of :attr:`theory.alphabet.Alphabet.outcomes`;
  SOS and PAD are never predicted.  A word ``x`` is fed as
  ``[SOS, x₁, …, xₙ]``; the output at position ``t`` is q(· | x₁…xₜ), so one pass gives the
  distribution at every prefix of ``x`` (the empty one included).  Right padding with PAD is harmless:
  attention is causal, so padding only reaches positions after the word.
* **Embedding.**  Learned token embedding plus learned absolute position embedding (``max_len``
  positions, SOS included) — a working positional encoding, added along the sequence axis.
* **Blocks.**  Multi-head softmax attention with biases on Q, K, V and O, scores scaled by
  1/√d_head, causal mask; then an MLP ``W₂ σ(W₁ h + b₁) + b₂`` with σ configurable (``relu`` by default;
  ``gelu`` and ``tanh`` exist so that code relying on positive homogeneity can be tested to refuse them).
* **LayerNorm placement** (``norm``): ``pre`` (default; GPT-2: ``x + attn(LN(x))``, ``x + mlp(LN(x))``,
  a final LN before the unembedding), ``post`` (original Transformer: ``LN(x + attn(x))``, …; no final
  LN) or ``none``.  Every LayerNorm acts on the residual stream only, never between W_Q and W_K,
  between W_V and W_O, or between W₁ and W₂, so the rescalings of Proposition 3 (which act strictly
  inside one attention head or one MLP) commute with it in every placement; the tests check all three.
* **Unembedding** ``W_U z + b_U``, untied from the embedding.

Initialisation is deterministic from ``config.seed``: parameters are drawn in float64 from one
``torch.Generator`` in :meth:`~torch.nn.Module.named_parameters` order, then cast, so the float32 and
float64 models of one seed are the same model up to rounding.  Weights are N(0, 1/fan_in), embeddings
N(0, 1), biases N(0, 0.1²), LayerNorm gains 1 + N(0, 0.1²) — nothing starts at a special symmetric
value (a zero bias would make a bias rescaling vacuous).

Weights are saved with safetensors (config as JSON metadata); the file's tensors are the plain
``state_dict`` and load into ``DecoderTransformer(config)`` with ``load_state_dict`` in any PyTorch ≥ 2.4.
"""

from __future__ import annotations

import copy
import json
import math
import os
from dataclasses import asdict, dataclass, fields
from typing import Any, Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from theory.alphabet import Alphabet
from theory.errors import InputTooLong, InvalidAlphabet, InvalidModelConfig, UnknownToken
from theory.fileio import write_atomic
from theory.validation import check_choice, check_int, check_number

NORMS = ("pre", "post", "none")
ACTIVATIONS = ("relu", "gelu", "tanh")
DTYPES: Mapping[str, torch.dtype] = {"float32": torch.float32, "float64": torch.float64}
SAFETENSORS_FORMAT = "nonid-decoder-transformer-1"

_ACTIVATION_FNS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"relu": F.relu, "gelu": F.gelu, "tanh": torch.tanh}


@dataclass(frozen=True)
class TransformerConfig:
    """Hyper-parameters of a :class:`DecoderTransformer` (frozen, hashable, JSON-able).

    Attributes:
        alphabet: the symbols Σ as a string (``"ab"``); EOS/SOS/PAD are added by the model.
        d_model: residual-stream width.
        n_heads: attention heads per layer.
        d_head: width of one head's queries, keys and values (``n_heads * d_head`` need not be ``d_model``).
        d_mlp: hidden units per MLP.
        n_layers: blocks.
        max_len: positions, SOS included: words of up to ``max_len - 1`` symbols fit.
        norm: LayerNorm placement, one of ``pre``, ``post``, ``none`` (see the module docstring).
        activation: the MLP's σ, one of ``relu``, ``gelu``, ``tanh``.
        dtype: ``float32`` or ``float64``.
        seed: seed of the deterministic initialisation.
        layer_norm_eps: ε of every LayerNorm.

    Raises:
        InvalidModelConfig: a size that is not a positive int, an unknown name, a bad seed or ε.
        InvalidAlphabet: an alphabet :class:`~theory.alphabet.Alphabet` refuses.
    """

    alphabet: str = "ab"
    d_model: int = 16
    n_heads: int = 2
    d_head: int = 8
    d_mlp: int = 32
    n_layers: int = 2
    max_len: int = 32
    norm: str = "pre"
    activation: str = "relu"
    dtype: str = "float64"
    seed: int = 0
    layer_norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        if isinstance(self.alphabet, Alphabet):
            object.__setattr__(self, "alphabet", str(self.alphabet))
        if not isinstance(self.alphabet, str):
            raise InvalidAlphabet(f"config alphabet {self.alphabet!r} is not a string of symbols")
        Alphabet(self.alphabet)
        for name in ("d_model", "n_heads", "d_head", "d_mlp", "n_layers", "max_len"):
            check_int(getattr(self, name), f"config {name} =", minimum=1, error=InvalidModelConfig)
        if self.max_len < 2:
            raise InvalidModelConfig(f"config max_len = {self.max_len} leaves no room after SOS (need >= 2)")
        for name, allowed in (("norm", NORMS), ("activation", ACTIVATIONS), ("dtype", tuple(DTYPES))):
            check_choice(getattr(self, name), f"config {name} =", allowed, error=InvalidModelConfig)
        check_int(self.seed, "config seed =", minimum=0, maximum=2**63 - 1, error=InvalidModelConfig)
        check_number(self.layer_norm_eps, "config layer_norm_eps =", lo=0, hi=1, lo_open=True, hi_open=True,
                     error=InvalidModelConfig)

    # -- vocabulary ----------------------------------------------------------------------------
    @property
    def symbols(self) -> Alphabet:
        return Alphabet(self.alphabet)

    # The ids are the alphabet's one layout (theory.alphabet.Alphabet.eos_id …); these only delegate.
    @property
    def eos_id(self) -> int:
        return self.symbols.eos_id

    @property
    def sos_id(self) -> int:
        return self.symbols.sos_id

    @property
    def pad_id(self) -> int:
        return self.symbols.pad_id

    @property
    def n_inputs(self) -> int:
        """Input vocabulary size: symbols, EOS, SOS, PAD (:attr:`Alphabet.n_input_ids`)."""
        return self.symbols.n_input_ids

    @property
    def n_outputs(self) -> int:
        """Output vocabulary size: symbols and EOS (:attr:`Alphabet.n_output_ids`)."""
        return self.symbols.n_output_ids

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TransformerConfig":
        """Rebuild from :meth:`to_dict`.  Raises InvalidModelConfig for unknown or missing fields."""
        known = {f.name for f in fields(cls)}
        extra = sorted(set(d) - known)
        if extra:
            raise InvalidModelConfig(f"unknown transformer config fields {extra}")
        return cls(**dict(d))


class CausalSelfAttention(nn.Module):
    """Multi-head causal softmax attention.  Head ``h`` owns rows ``h*d_head:(h+1)*d_head`` of
    ``q_proj``, ``k_proj``, ``v_proj`` (weights and biases) and the same columns of ``o_proj.weight``;
    ``o_proj.bias`` is shared by all heads."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        inner = cfg.n_heads * cfg.d_head
        self.n_heads, self.d_head = cfg.n_heads, cfg.d_head
        self.q_proj = nn.Linear(cfg.d_model, inner)
        self.k_proj = nn.Linear(cfg.d_model, inner)
        self.v_proj = nn.Linear(cfg.d_model, inner)
        self.o_proj = nn.Linear(inner, cfg.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        split = (b, t, self.n_heads, self.d_head)
        q = self.q_proj(x).view(split).transpose(1, 2)  # (b, heads, t, d_head)
        k = self.k_proj(x).view(split).transpose(1, 2)
        v = self.v_proj(x).view(split).transpose(1, 2)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(self.d_head)
        causal = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
        weights = scores.masked_fill(~causal, float("-inf")).softmax(dim=-1)
        out = (weights @ v).transpose(1, 2).reshape(b, t, self.n_heads * self.d_head)
        return self.o_proj(out)


class MLP(nn.Module):
    """``fc_out(σ(fc_in(h)))``; hidden unit ``j`` is row ``j`` of ``fc_in`` and column ``j`` of ``fc_out.weight``."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.activation = cfg.activation
        self.fc_in = nn.Linear(cfg.d_model, cfg.d_mlp)
        self.fc_out = nn.Linear(cfg.d_mlp, cfg.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc_out(_ACTIVATION_FNS[self.activation](self.fc_in(x)))


class Block(nn.Module):
    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.norm = cfg.norm
        make_ln = (lambda: nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)) if cfg.norm != "none" else nn.Identity
        self.ln_attn, self.attn = make_ln(), CausalSelfAttention(cfg)
        self.ln_mlp, self.mlp = make_ln(), MLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.norm == "post":
            x = self.ln_attn(x + self.attn(x))
            return self.ln_mlp(x + self.mlp(x))
        x = x + self.attn(self.ln_attn(x))  # pre-LN ("none": the LNs are identities)
        return x + self.mlp(self.ln_mlp(x))


class DecoderTransformer(nn.Module):
    """Decoder-only causal transformer over an alphabet (see the module docstring).

    ``DecoderTransformer(config)`` is initialised deterministically from ``config.seed`` and lives on
    the CPU in ``config.dtype``.
    """

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        if not isinstance(config, TransformerConfig):
            raise InvalidModelConfig(f"expected a TransformerConfig, got {type(config).__name__}")
        self.config = config
        self.token_embedding = nn.Embedding(config.n_inputs, config.d_model)
        self.position_embedding = nn.Embedding(config.max_len, config.d_model)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.ln_final = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps) if config.norm == "pre" else nn.Identity()
        self.unembed = nn.Linear(config.d_model, config.n_outputs)
        self._initialise(config.seed)
        self.to(config.torch_dtype)

    def _initialise(self, seed: int) -> None:
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in self.named_parameters():
                noise = torch.randn(p.shape, generator=gen, dtype=torch.float64)
                if name.endswith("embedding.weight"):
                    value = noise
                elif name.startswith("ln") or ".ln_" in name:
                    value = (1.0 if name.endswith("weight") else 0.0) + 0.1 * noise
                elif name.endswith("bias"):
                    value = 0.1 * noise
                else:  # a Linear weight (out, in)
                    value = noise / math.sqrt(p.shape[1])
                p.copy_(value)

    # -- the vocabulary ----------------------------------------------------------------------------
    @property
    def alphabet(self) -> Alphabet:
        return self.config.symbols

    @property
    def device(self) -> torch.device:
        return self.unembed.weight.device

    def encode(self, words: Sequence[str], length: int | None = None) -> torch.Tensor:
        """``[SOS, x₁…xₙ, PAD…]`` for each word, as a (len(words), T) long tensor on the model's device,
        T = ``length`` or 1 + the longest word.

        Raises:
            UnknownToken: a word with a symbol outside the alphabet (named, with its position).
            InputTooLong: a word that does not fit in ``max_len`` positions (or in ``length``).
        """
        if isinstance(words, str):
            raise UnknownToken(f"encode expects a sequence of words, got the single string {words!r}")
        words = list(words)
        ab, cfg = self.alphabet, self.config
        for w in words:
            ab.check_sequence(w, "word")
        t = length if length is not None else 1 + max((len(w) for w in words), default=0)
        for w in words:
            if len(w) + 1 > min(t, cfg.max_len):
                raise InputTooLong(f"word {_short(w)} has {len(w)} symbols; with SOS it needs {len(w) + 1} positions, "
                                   f"the model has max_len = {cfg.max_len}" + (f" and length = {t}" if length else ""))
        index = {s: i for i, s in enumerate(ab.symbols)}
        out = torch.full((len(words), t), cfg.pad_id, dtype=torch.long)
        out[:, 0] = cfg.sos_id
        for row, w in enumerate(words):
            if w:
                out[row, 1:len(w) + 1] = torch.tensor([index[c] for c in w], dtype=torch.long)
        return out.to(self.device)

    # -- the function ------------------------------------------------------------------------------
    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits over Σ ∪ {EOS} (EOS last), shape (batch, T, |Σ| + 1); position t is the next-token
        distribution after the first t + 1 input tokens.

        Raises:
            UnknownToken: a token id outside the input vocabulary.
            InputTooLong: more than ``max_len`` positions.
        """
        if tokens.dim() != 2:
            raise UnknownToken(f"tokens must be a (batch, positions) tensor, got shape {tuple(tokens.shape)}")
        t = tokens.shape[1]
        if t > self.config.max_len:
            raise InputTooLong(f"{t} positions exceed the model's max_len = {self.config.max_len}")
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= self.config.n_inputs):
            bad = int(tokens.min()) if int(tokens.min()) < 0 else int(tokens.max())
            raise UnknownToken(f"token id {bad} is outside the input vocabulary 0..{self.config.n_inputs - 1}")
        positions = torch.arange(t, device=tokens.device)
        x = self.token_embedding(tokens) + self.position_embedding(positions)[None]
        for block in self.blocks:
            x = block(x)
        return self.unembed(self.ln_final(x))

    def log_probs(self, tokens: torch.Tensor) -> torch.Tensor:
        """Next-token log-probabilities over Σ ∪ {EOS} at every position: log_softmax of :meth:`forward`."""
        return self(tokens).log_softmax(dim=-1)

    def next_token_log_probs(self, prefixes: Sequence[str]) -> torch.Tensor:
        """log q(· | u) for each prefix u, shape (len(prefixes), |Σ| + 1)."""
        tokens = self.encode(prefixes)
        ends = torch.tensor([len(u) for u in prefixes], device=tokens.device)
        return self.log_probs(tokens)[torch.arange(len(prefixes), device=tokens.device), ends]

    def sequence_nll(self, words: Sequence[str]) -> torch.Tensor:
        """−log Q(x) = −Σₜ log q(xₜ | x<ₜ) − log q(EOS | x) for each word, shape (len(words),);
        differentiable (the training loss, in nats per sequence)."""
        tokens = self.encode(words)
        targets = torch.roll(tokens, -1, dims=1)  # x₁…xₙ then whatever: fixed below
        lengths = torch.tensor([len(w) for w in words], device=tokens.device)
        rows = torch.arange(len(words), device=tokens.device)
        targets[rows, lengths] = self.config.eos_id
        positions = torch.arange(tokens.shape[1], device=tokens.device)[None]
        valid = positions <= lengths[:, None]
        targets = torch.where(valid, targets, torch.zeros_like(targets))
        picked = self.log_probs(tokens).gather(-1, targets[..., None])[..., 0]
        return -(picked * valid).sum(dim=1)

    # -- copies and files --------------------------------------------------------------------------
    def clone(self) -> "DecoderTransformer":
        """An independent deep copy (same config, same weights, no shared storage)."""
        return copy.deepcopy(self)

    @classmethod
    def from_state_dict(cls, config: TransformerConfig, state: Mapping[str, torch.Tensor]) -> "DecoderTransformer":
        """A model of ``config`` with the given weights (strict: every key must match)."""
        model = cls(config)
        model.load_state_dict(dict(state), strict=True)
        return model

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the weights (the plain ``state_dict``) and the config (as JSON metadata) to a
        safetensors file, atomically (temporary file in the same folder, then a rename)."""
        from safetensors.torch import save

        tensors = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        meta = {"format": SAFETENSORS_FORMAT, "config": json.dumps(self.config.to_dict(), sort_keys=True)}
        write_atomic(path, _sorted_header(save(tensors, metadata=meta)))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "DecoderTransformer":
        """Read a model written by :meth:`save`.

        Raises:
            FileNotFoundError: no such file.
            InvalidModelConfig: the file is not a `nonid` transformer (no or bad config metadata).
        """
        from safetensors import safe_open
        from safetensors.torch import load_file

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        if meta.get("format") != SAFETENSORS_FORMAT or "config" not in meta:
            raise InvalidModelConfig(f"{path}: not a nonid transformer file (format {meta.get('format')!r})")
        from theory.jsonio import SMALL_FILE_LIMITS, parse_json_text

        try:
            raw = parse_json_text(meta["config"], what=f"{path} (config metadata)", error=InvalidModelConfig,
                                  limits=SMALL_FILE_LIMITS)
            if not isinstance(raw, dict):
                raise InvalidModelConfig(f"{path}: config metadata is not a JSON object")
            config = TransformerConfig.from_dict(raw)
        except TypeError as e:
            raise InvalidModelConfig(f"{path}: unreadable config metadata ({e})") from None
        return cls.from_state_dict(config, load_file(str(path)))


def _sorted_header(raw: bytes) -> bytes:
    """The same safetensors file with its JSON header's keys sorted (same length, same tensors).
    safetensors writes its metadata map in a random order, so without this two saves of the same
    weights differ in bytes (and in SHA-256)."""
    import struct

    (n,) = struct.unpack("<Q", raw[:8])
    header = raw[8:8 + n]
    body = header.rstrip(b" ")
    new = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    if len(new) != len(body):  # not the compact form safetensors writes: leave it as it is
        return raw
    return raw[:8] + new + header[len(body):] + raw[8 + n:]


def _short(word: str, limit: int = 24) -> str:
    return repr(word) if len(word) <= limit else repr(word[:limit]) + f"… ({len(word)} symbols)"
