"""Rigorous enclosures of the logits of Hugging Face GPT-2 and OPT causal language models: the *real
function of the stored weights* of an exact ``transformers.GPT2LMHeadModel`` or ``OPTForCausalLM``, over
the model's full output vocabulary, registered with the one evaluator (:mod:`constructions.enclosure`).

The forward mirrors the installed library's (transformers 5.24, ``models/gpt2/modeling_gpt2.py`` and
``models/opt/modeling_opt.py``) operation for operation in ball arithmetic (:mod:`constructions.balls`),
in eval semantics (no dropout, no LayerDrop), with no attention or padding mask (causal only: right
padding changes no earlier position), positions 0..T−1:

* GPT-2: token + position embedding; per block pre-LN (``ln_1``) → ``c_attn`` (a ``Conv1D``: x·W + b, W
  stored as (in, out)) split into q | k | v → scores q·kᵀ times the module's ``scaling`` (head_dim^−½ when
  ``scale_attn_weights``, divided by layer_idx + 1 when ``scale_attn_by_inverse_layer_idx``; the float the
  library multiplies by, taken as exact) → causal softmax → ``c_proj`` → residual; ``ln_2`` → ``c_fc`` →
  activation → ``c_proj`` → residual; ``ln_f``; ``lm_head`` (tied or not: the matrix the head holds).
* OPT: token embedding (→ ``project_in`` when ``word_embed_proj_dim`` ≠ hidden) + the learned position
  embedding at rows 2..T+1 (the library's positions cumsum(ones) − 1 = 0..T−1 plus its ``offset`` 2);
  per layer, ``do_layer_norm_before`` as the layer holds it: q = q_proj(x)·scaling (after the bias, as the
  library does), k, v, causal softmax, ``out_proj``, residual, LN before or after; fc1 → activation → fc2,
  residual, LN before or after; the final LayerNorm when the library built one; ``project_out``;
  ``lm_head``.  Biases and LayerNorm affine parameters wherever the modules have them.

Activations, read off the module (not the config string): ReLU, exact GELU (erf), the tanh approximation
(``gelu_new``, ``gelu_pytorch_tanh``, ``gelu_python_tanh``: ½x(1 + tanh(√(2/π)(x + 0.044715x³))) with the
mathematical constants), ``gelu_fast`` (constant 0.7978845608), ``quick_gelu`` (x·σ(1.702x)), SiLU, tanh,
sigmoid, identity.  ``reorder_and_upcast_attn`` is covered: it reorders and rounds the float computation
(to float32) but not the real function.  Every LayerNorm's eps is its module's.  Float16/bfloat16/float32
weights are read as the exact reals they store.

Refused (:func:`why_not_enclosable_hf`, one line): a subclass, any other class, a submodule of a type the
library does not build there, a forward set on an instance or patched into a class from outside torch or
transformers, a forward (pre-)hook on any submodule or a global one, an unsupported activation, an
embedding that renormalises (``max_norm``), an attention implementation other than the library's own
(eager, sdpa, flash, flex).  transformers itself is imported only when such a network is seen.
"""

from __future__ import annotations

import functools
import math
from functools import lru_cache
from typing import Any, Callable, cast

import torch

from constructions import balls
from constructions.balls import Ball
from constructions.enclosure import causal_attention, layer_norm, register_enclosure
from theory.errors import InputTooLong, InvalidModelConfig, UnknownToken

COVERED = ("GPT2LMHeadModel", "OPTForCausalLM")
_ATTENTION = ("eager", "sdpa", "flash_attention_2", "flash_attention_3", "flash_attention_4", "flex_attention")
_MUTANTS = ("", "no_offset", "scale", "assume_tied", "erf_gelu")
"""Deliberately wrong forwards, for the tests only (each must be caught against the library's forward)."""


def _transformers():
    try:
        import transformers
    except ImportError as e:  # pragma: no cover - only without the extra
        raise InvalidModelConfig("enclosing a Hugging Face model needs transformers: pip install -e '.[hf]'") from e
    return transformers


# ---- the activations, in balls -----------------------------------------------------------------------------
@lru_cache(maxsize=None)
def _constant(name: str) -> tuple[float, float]:
    """(midpoint, radius) of a real constant, from mpmath at 200 bits, the radius rounded up."""
    import mpmath

    with mpmath.workprec(200):
        v = {"sqrt_2_over_pi": lambda: mpmath.sqrt(2 / mpmath.pi), "0.044715": lambda: mpmath.mpf("0.044715"),
             "0.7978845608": lambda: mpmath.mpf("0.7978845608"), "1.702": lambda: mpmath.mpf("1.702")}[name]()
        mid = float(v)
        return mid, math.nextafter(float(abs(v - mpmath.mpf(mid))) * (1 + 2 ** -50), math.inf) + 2.0 ** -1070


def _const_ball(name: str, like: torch.Tensor) -> Ball:
    m, r = _constant(name)
    return Ball(torch.tensor(m, dtype=torch.float64, device=like.device), torch.tensor(r, dtype=torch.float64, device=like.device))


def _gelu_tanh(x: Ball, c: str = "sqrt_2_over_pi") -> Ball:
    """½·x·(1 + tanh(c·(x + 0.044715·x³)))."""
    inner = (x + x.square() * x * _const_ball("0.044715", x.m)) * _const_ball(c, x.m)
    return (x * balls.tanh(inner).add_exact(1.0)).mul_exact(0.5)


def _silu(x: Ball) -> Ball:
    return x * balls.sigmoid(x)


def _quick_gelu(x: Ball) -> Ball:
    return x * balls.sigmoid(x * _const_ball("1.702", x.m))


_ACTIVATIONS: dict[str, Callable[[Ball], Ball]] = {
    "relu": balls.relu, "gelu": balls.gelu, "gelu_tanh": _gelu_tanh, "gelu_fast": lambda x: _gelu_tanh(x, "0.7978845608"),
    "quick_gelu": _quick_gelu, "silu": _silu, "tanh": balls.tanh, "sigmoid": balls.sigmoid, "linear": lambda x: x,
}


def _activation_kind(act: Any) -> str:
    """The real function an activation module computes ('' when not one enclosed here)."""
    from transformers import activations as A

    nn = torch.nn
    cls = type(act)
    if cls is nn.ReLU:
        return "relu"
    if cls is nn.GELU:
        return {"none": "gelu", "tanh": "gelu_tanh"}.get(cast(nn.GELU, act).approximate, "")
    if cls is A.GELUActivation:
        f = getattr(act, "act", None)
        python = getattr(f, "__func__", None) is A.GELUActivation._gelu_python and getattr(f, "__self__", None) is act
        return "gelu" if (f is nn.functional.gelu or python) else ""
    if cls is A.GELUTanh:
        f = getattr(act, "act", None)
        python = getattr(f, "__func__", None) is A.GELUTanh._gelu_tanh_python and getattr(f, "__self__", None) is act
        native = (isinstance(f, functools.partial) and f.func is nn.functional.gelu and not f.args
                  and f.keywords == {"approximate": "tanh"})
        return "gelu_tanh" if (python or native) else ""
    return {A.NewGELUActivation: "gelu_tanh", A.FastGELUActivation: "gelu_fast", A.QuickGELUActivation: "quick_gelu",
            A.SiLUActivation: "silu", nn.SiLU: "silu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid",
            A.LinearActivation: "linear"}.get(cls, "")


# ---- the parameters ---------------------------------------------------------------------------------------
class _Params:
    """The modules' parameters as exact float64 tensors on one device (with |Wᵀ| for the matrix products),
    read off the modules themselves, so a tied head is the embedding it is tied to."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._t: dict[int, torch.Tensor] = {}
        self._mat: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def t(self, x: torch.Tensor) -> torch.Tensor:
        out = self._t.get(id(x))
        if out is None:
            out = self._t[id(x)] = x.detach().to(device=self.device, dtype=torch.float64)
        return out

    def _matmul(self, x: Ball, w: torch.Tensor, transpose: bool) -> Ball:
        mat = self._mat.get(id(w))
        if mat is None:
            m = self.t(w).T.contiguous() if transpose else self.t(w)
            mat = self._mat[id(w)] = (m, m.abs())
        return x.matmul_exact(*mat)

    def linear(self, x: Ball, mod: Any) -> Ball:
        """``torch.nn.Linear``: x Wᵀ (+ b)."""
        out = self._matmul(x, cast(torch.Tensor, mod.weight), True)
        return out.add_exact(self.t(mod.bias)) if mod.bias is not None else out

    def conv1d(self, x: Ball, mod: Any) -> Ball:
        """transformers' ``Conv1D``: x W + b, W stored as (in, out)."""
        out = self._matmul(x, cast(torch.Tensor, mod.weight), False)
        return out.add_exact(self.t(mod.bias)) if mod.bias is not None else out

    def layer_norm(self, x: Ball, ln: Any) -> Ball:
        w, b = ln.weight, ln.bias
        return layer_norm(x, float(ln.eps), self.t(w) if w is not None else None, self.t(b) if b is not None else None)


def _heads(x: Ball, n_heads: int) -> Ball:
    b, t, d = x.shape
    return x.reshape(b, t, n_heads, d // n_heads).transpose(1, 2)


def _act(mod: Any, mutant: str) -> Callable[[Ball], Ball]:
    kind = _activation_kind(mod)
    if mutant == "erf_gelu" and kind == "gelu_tanh":
        kind = "gelu"
    return _ACTIVATIONS[kind]


# ---- the two forwards ---------------------------------------------------------------------------------------
def _gpt2(model: Any, ids: torch.Tensor, p: _Params, mutant: str) -> Ball:
    tr = model.transformer
    b, t = ids.shape
    pos = torch.arange(t, device=ids.device)
    x = Ball.exact(p.t(tr.wte.weight)[ids]) + Ball.exact(p.t(tr.wpe.weight)[pos][None].expand(b, t, -1))
    for blk in tr.h:
        attn = blk.attn
        d, heads = int(attn.embed_dim), int(attn.num_heads)
        qkv = p.conv1d(p.layer_norm(x, blk.ln_1), attn.c_attn)
        q, k, v = (_heads(qkv[..., i * d:(i + 1) * d], heads) for i in range(3))
        scale = float(attn.scaling) if mutant != "scale" else float(attn.head_dim) ** -0.5
        x = x + p.conv1d(causal_attention(q, k, v, scale), attn.c_proj)
        h = _act(blk.mlp.act, mutant)(p.conv1d(p.layer_norm(x, blk.ln_2), blk.mlp.c_fc))
        x = x + p.conv1d(h, blk.mlp.c_proj)
    x = p.layer_norm(x, tr.ln_f)
    if mutant == "assume_tied":
        return x.matmul_exact(p.t(tr.wte.weight).T.contiguous())
    return p.linear(x, model.lm_head)


def _opt(model: Any, ids: torch.Tensor, p: _Params, mutant: str) -> Ball:
    dec = model.model.decoder
    b, t = ids.shape
    x = Ball.exact(p.t(dec.embed_tokens.weight)[ids])
    if dec.project_in is not None:
        x = p.linear(x, dec.project_in)
    offset = 0 if mutant == "no_offset" else int(dec.embed_positions.offset)
    pos = torch.arange(t, device=ids.device) + offset  # cumsum of an all-ones mask, minus 1, plus the offset
    x = x + Ball.exact(p.t(dec.embed_positions.weight)[pos][None].expand(b, t, -1))
    for layer in dec.layers:
        pre = bool(layer.do_layer_norm_before)
        at = layer.self_attn
        h = p.layer_norm(x, layer.self_attn_layer_norm) if pre else x
        q = p.linear(h, at.q_proj).mul_exact(float(at.scaling))  # scaled after the bias, as the library does
        k, v = p.linear(h, at.k_proj), p.linear(h, at.v_proj)
        heads = int(at.num_heads)
        x = x + p.linear(causal_attention(_heads(q, heads), _heads(k, heads), _heads(v, heads), None), at.out_proj)
        if not pre:
            x = p.layer_norm(x, layer.self_attn_layer_norm)
        h = p.layer_norm(x, layer.final_layer_norm) if pre else x
        x = x + p.linear(_act(layer.activation_fn, mutant)(p.linear(h, layer.fc1)), layer.fc2)
        if not pre:
            x = p.layer_norm(x, layer.final_layer_norm)
    if dec.final_layer_norm is not None:
        x = p.layer_norm(x, dec.final_layer_norm)
    if dec.project_out is not None:
        x = p.linear(x, dec.project_out)
    return p.linear(x, model.lm_head)


def _positions(model: Any) -> int:
    """How many positions the model can read."""
    if type(model).__name__ == "GPT2LMHeadModel":
        return int(model.transformer.wpe.num_embeddings)
    emb = model.model.decoder.embed_positions
    return int(emb.num_embeddings) - int(emb.offset)


def hf_logit_balls(model: torch.nn.Module, input_ids: torch.Tensor, *, _mutant: str = "") -> Ball:
    """Enclosure, shape (batch, T, V) over the full output vocabulary, of the logits of the real function of
    ``model``'s stored weights on ``input_ids`` (batch, T) — an exact ``GPT2LMHeadModel`` or
    ``OPTForCausalLM``, eval semantics, causal mask only, positions 0..T−1.

    Raises:
        InvalidModelConfig: a network :func:`why_not_enclosable_hf` refuses (the reason named).
        UnknownToken: an id outside the embedding.  InputTooLong: more positions than the model has.
    """
    why = why_not_enclosable_hf(model)
    if why:
        raise InvalidModelConfig(f"the rigorous evaluator cannot enclose this network: {why}")
    if _mutant not in _MUTANTS:
        raise InvalidModelConfig(f"unknown enclosure variant {_mutant!r}")
    if input_ids.dim() != 2 or input_ids.dtype not in (torch.int64, torch.int32) or input_ids.shape[1] == 0:
        raise UnknownToken(f"input_ids must be a non-empty (batch, T) integer tensor, got shape {tuple(input_ids.shape)}, "
                           f"{input_ids.dtype}")
    gpt2 = type(model).__name__ == "GPT2LMHeadModel"
    net: Any = model
    emb = net.transformer.wte if gpt2 else net.model.decoder.embed_tokens
    n_vocab = int(emb.num_embeddings)
    if input_ids.numel() and (int(input_ids.min()) < 0 or int(input_ids.max()) >= n_vocab):
        bad = int(input_ids.min()) if int(input_ids.min()) < 0 else int(input_ids.max())
        raise UnknownToken(f"token id {bad} is outside the model's vocabulary 0..{n_vocab - 1}")
    if input_ids.shape[1] > _positions(model):
        raise InputTooLong(f"{input_ids.shape[1]} positions exceed the model's {_positions(model)}")
    ids = input_ids.to(torch.int64)
    with torch.no_grad():
        p = _Params(ids.device)
        return _gpt2(model, ids, p, _mutant) if gpt2 else _opt(model, ids, p, _mutant)


# ---- what is covered ------------------------------------------------------------------------------------------
def _allowed_types() -> dict[str, tuple[type, ...]]:
    t = _transformers()
    from transformers.models.gpt2 import modeling_gpt2 as g
    from transformers.models.opt import modeling_opt as o
    from transformers.pytorch_utils import Conv1D

    nn = torch.nn
    common = (nn.ModuleList, nn.Dropout, nn.Embedding, nn.LayerNorm, nn.Linear)
    return {"GPT2LMHeadModel": (t.GPT2LMHeadModel, g.GPT2Model, g.GPT2Block, g.GPT2Attention, g.GPT2MLP, Conv1D, *common),
            "OPTForCausalLM": (t.OPTForCausalLM, o.OPTModel, o.OPTDecoder, o.OPTDecoderLayer, o.OPTAttention,
                               o.OPTLearnedPositionalEmbedding, *common)}


def _is(mod: object, cls: type, what: str) -> str:
    return "" if type(mod) is cls else f"{what} is a {type(mod).__module__}.{type(mod).__qualname__}, not a {cls.__name__}"


def _ln(ln: object, d: int, what: str) -> str:
    if type(ln) is not torch.nn.LayerNorm:
        return f"{what} is a {type(ln).__qualname__}, not a LayerNorm"
    if tuple(cast(torch.nn.LayerNorm, ln).normalized_shape) != (d,):
        return f"{what} normalises over {tuple(cast(torch.nn.LayerNorm, ln).normalized_shape)}, not ({d},)"
    return ""


def _attention_impl(config: object, what: str) -> str:
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    impl = getattr(config, "_attn_implementation", "eager") or "eager"
    if impl not in _ATTENTION:
        return f"{what} uses the attention implementation {impl!r} (covered: {', '.join(_ATTENTION)})"
    if impl != "eager" and not getattr(ALL_ATTENTION_FUNCTIONS.get(impl), "__module__", "").startswith("transformers."):
        return f"{what}'s attention implementation {impl!r} is not the library's own"
    return ""


def _gpt2_structure(model: Any) -> str:
    from transformers.models.gpt2 import modeling_gpt2 as g
    from transformers.pytorch_utils import Conv1D

    tr = model.transformer
    why = _is(tr, g.GPT2Model, "transformer")
    if why:
        return why
    d = int(tr.embed_dim)
    for i, blk in enumerate(tr.h):
        pre = f"transformer.h.{i}"
        attn, mlp = blk.attn, blk.mlp
        checks = [_is(blk, g.GPT2Block, pre), _ln(blk.ln_1, d, pre + ".ln_1"), _ln(blk.ln_2, d, pre + ".ln_2"),
                  _is(attn, g.GPT2Attention, pre + ".attn"), _is(mlp, g.GPT2MLP, pre + ".mlp")]
        why = next((c for c in checks if c), "")
        if why:
            return why
        for name, mod in (("attn.c_attn", attn.c_attn), ("attn.c_proj", attn.c_proj), ("mlp.c_fc", mlp.c_fc),
                          ("mlp.c_proj", mlp.c_proj)):
            if type(mod) is not Conv1D:
                return f"{pre}.{name} is a {type(mod).__qualname__}, not a Conv1D"
        if attn.is_cross_attention or int(attn.embed_dim) != d or int(attn.num_heads) * int(attn.head_dim) != d \
                or int(attn.split_size) != d or tuple(attn.c_attn.weight.shape) != (d, 3 * d):
            return f"{pre}.attn is not the {d}-wide causal self-attention GPT-2 builds"
        if not (isinstance(attn.scaling, (int, float)) and math.isfinite(attn.scaling)):
            return f"{pre}.attn has a non-finite scaling {attn.scaling!r}"
        why = _attention_impl(attn.config, pre + ".attn")
        if why:
            return why
        if not _activation_kind(mlp.act):
            return f"{pre}.mlp.act is a {type(mlp.act).__qualname__} (activation_function {model.config.activation_function!r}): no rigorous enclosure of it"
    checks = [_ln(tr.ln_f, d, "transformer.ln_f"), _is(tr.wte, torch.nn.Embedding, "transformer.wte"),
              _is(tr.wpe, torch.nn.Embedding, "transformer.wpe"), _is(model.lm_head, torch.nn.Linear, "lm_head")]
    return next((c for c in checks if c), "")


def _opt_structure(model: Any) -> str:
    from transformers.models.opt import modeling_opt as o

    why = _is(model.model, o.OPTModel, "model") or _is(model.model.decoder, o.OPTDecoder, "model.decoder")
    if why:
        return why
    dec = model.model.decoder
    checks = [_is(dec.embed_tokens, torch.nn.Embedding, "model.decoder.embed_tokens"),
              _is(dec.embed_positions, o.OPTLearnedPositionalEmbedding, "model.decoder.embed_positions"),
              _is(model.lm_head, torch.nn.Linear, "lm_head")]
    for name in ("project_in", "project_out"):
        mod = getattr(dec, name)
        if mod is not None:
            checks.append(_is(mod, torch.nn.Linear, f"model.decoder.{name}"))
    why = next((c for c in checks if c), "")
    if why:
        return why
    if not isinstance(dec.embed_positions.offset, int):
        return f"model.decoder.embed_positions has a non-integer offset {dec.embed_positions.offset!r}"
    d = int(dec.embed_positions.embedding_dim)
    if dec.final_layer_norm is not None:
        why = _ln(dec.final_layer_norm, d, "model.decoder.final_layer_norm")
        if why:
            return why
    for i, layer in enumerate(dec.layers):
        pre = f"model.decoder.layers.{i}"
        at = layer.self_attn
        checks = [_is(layer, o.OPTDecoderLayer, pre), _is(at, o.OPTAttention, pre + ".self_attn"),
                  _ln(layer.self_attn_layer_norm, d, pre + ".self_attn_layer_norm"),
                  _ln(layer.final_layer_norm, d, pre + ".final_layer_norm"),
                  *(_is(getattr(at, n), torch.nn.Linear, f"{pre}.self_attn.{n}") for n in ("q_proj", "k_proj", "v_proj", "out_proj")),
                  _is(layer.fc1, torch.nn.Linear, pre + ".fc1"), _is(layer.fc2, torch.nn.Linear, pre + ".fc2"),
                  _attention_impl(at.config, pre + ".self_attn")]
        why = next((c for c in checks if c), "")
        if why:
            return why
        if int(at.num_heads) * int(at.head_dim) != d or not (isinstance(at.scaling, (int, float)) and math.isfinite(at.scaling)):
            return f"{pre}.self_attn is not the {d}-wide self-attention OPT builds"
        if not _activation_kind(layer.activation_fn):
            return f"{pre}.activation_fn is a {type(layer.activation_fn).__qualname__} (activation_function {model.config.activation_function!r}): no rigorous enclosure of it"
    return ""


def why_not_enclosable_hf(model: object) -> str:
    """'' when :func:`hf_logit_balls` encloses this network's function, else a one-line reason."""
    t = _transformers()
    name = type(model).__name__
    if not any(type(model) is getattr(t, cov) for cov in COVERED):
        for cov in COVERED:
            if isinstance(model, getattr(t, cov)):
                return f"{type(model).__qualname__} is a subclass of {cov}: only the exact class is covered"
        return f"no rigorous enclosure for a {type(model).__module__}.{name} (covered: {', '.join(COVERED)})"
    net: Any = model
    import torch.nn.modules.module as torch_module

    if torch_module._global_forward_hooks or torch_module._global_forward_pre_hooks:
        return "a global forward hook is registered with torch"
    allowed = _allowed_types()[name]  # activation modules: by their package here, by kind where they are used
    for sub_name, mod in net.named_modules():
        where = sub_name or "the network"
        if "forward" in vars(mod):
            return f"module {where} has its own forward on the instance"
        if mod._forward_hooks or mod._forward_pre_hooks:
            return f"module {where} has a forward hook"
        cls = type(mod)
        home = getattr(cls.forward, "__module__", "") or ""
        if home.split(".")[0] not in ("torch", "transformers"):
            return f"module {where}'s class {cls.__qualname__} has a forward from {home}"
        if cls not in allowed and not cls.__module__.startswith(("transformers.activations", "torch.nn.modules.activation")):
            return f"submodule {where!r} is a {cls.__module__}.{cls.__qualname__}"
        if isinstance(mod, torch.nn.Embedding) and mod.max_norm is not None:
            return f"embedding {where} renormalises (max_norm = {mod.max_norm})"
    for pname, param in net.named_parameters():
        if not param.dtype.is_floating_point:
            return f"parameter {pname} is {param.dtype}, not a float"
    return _gpt2_structure(net) if name == "GPT2LMHeadModel" else _opt_structure(net)


def _shape(model: Any) -> tuple[int, int]:
    """(widest activation, heads) for the enclosure's batch sizes: the fused q|k|v or the MLP width, the vocabulary."""
    cfg = model.config
    hidden = int(cfg.hidden_size)
    inner = int(getattr(cfg, "n_inner", None) or getattr(cfg, "ffn_dim", None) or 4 * hidden)
    return max(3 * hidden, inner, int(cfg.vocab_size)) * 2, int(cfg.num_attention_heads)


def register() -> None:
    """Register both covered classes with :mod:`constructions.enclosure` (done when this module is imported)."""
    t = _transformers()
    for cov in COVERED:
        register_enclosure(getattr(t, cov), hf_logit_balls, why_not=why_not_enclosable_hf, shape=_shape)


register()
