"""Hugging Face export of a :class:`~constructions.transformer.DecoderTransformer`, re-checked through the library.

:func:`to_hf` writes a network as a folder that ``AutoModelForCausalLM.from_pretrained(folder)`` and
``AutoTokenizer.from_pretrained(folder)`` load offline, computing the network's function:

* ``norm="pre"`` → GPT-2 (``GPT2LMHeadModel``), the same residual stream;
* ``norm="post"`` → OPT (``OPTForCausalLM``, ``do_layer_norm_before=False``; OPT's LayerNorm ε is fixed
  at 1e−5, so a network with another ε is refused);
* ``norm="none"`` (the compiled pairs) → a *mean-zero* GPT-2 (variant ``gpt2-mean-zero``): GPT-2 has a
  LayerNorm before every sublayer, so the residual stream gets one coordinate that always holds minus
  the sum of the others (every write — embeddings, W_O/b_O, W_out/b_out — has an extra row = −Σ of its
  rows; every read has a zero column there), so each LayerNorm input has mean 0 up to the rounding of
  those stored sums, and every LayerNorm has ε = 2⁶⁶⁴ (≈ 1.2e200) and gain γ = 2³³² = √ε exactly, so
  LN(x) = x·(1 + var/ε)^(−1/2) = x to relative error var/(2ε) ≈ 1e−190.  A second extra coordinate is
  always 0 in the residual (so it leaves the mean alone) and reads 1 after the final LayerNorm (γ = 0,
  β = 1): its lm_head column is the unembedding bias b_U.

The library's lm_head has no bias and V = |Σ| + 3 rows (the input vocabulary):

* the bias fold (pre/post): with the final LayerNorm z = γ⊙n + β (n normalised: mean 0), nonid's
  logits W_U z + b_U equal W_U (γ⊙n + β') when W_U β' = W_U β + b_U — solved by least squares (W_U has
  full row rank generically; the SVD's minimum-norm solution, refined once; the residual is
  rounding, ~1e−16, covered by the re-check);
* SOS and PAD rows (never predicted by nonid): a row r with r⊙γ = c·1 gives r·(γ⊙n) = c·Σn = 0 for every
  normalised n, so its logit r·β' is the constant :data:`CLOSED_LOGIT` (β' is moved inside W_U's null
  space so that Σ β'/γ is not small).  In the mean-zero variant the row is −200 on the constant
  coordinate and 0 elsewhere.  Their mass, about e^(−200 − max logit), counts against the model in the
  re-check (the construction gives them probability 0).

Attention: GPT-2 and OPT tie a head's width to n_embd / n_head and scale scores by its inverse root.
A nonid head narrower than that is padded with zero query/key/value columns and the factor
√(width / d_head) is folded into W_Q and b_Q (exact when the ratio is a power of 4; the mean-zero
variant picks such a width); a wider one, or a d_model not divisible by n_heads, is refused
(:func:`export_problem`).

The tokenizer is a ``tokenizers`` WordLevel tokenizer over the symbols then ``<eos>``, ``<sos>``,
``<pad>`` at nonid's ids, one token per character, loaded as a fast tokenizer (``TokenizersBackend`` in
transformers 5): ``tokenizer("aabb")`` returns ``input_ids = [SOS, a, a, b, b]`` (its post-processor
prepends ``<sos>``, exactly nonid's encoding, so position 0 is SOS as the model expects and nothing
after it shifts); ``add_special_tokens=False`` gives the bare symbols, and then the caller must prepend
``<sos>``.  A character outside Σ is an error of the tokenizer (no ``<unk>``).  Padding is on the right
(harmless: attention is causal).  The generation config sets bos/eos/pad and ``max_length = max_len``.

:func:`recheck_pair` loads both folders with ``from_pretrained`` in float64, encloses their real
functions over the pair's prefix set with the rigorous evaluator (:mod:`constructions.hf_enclosure`:
full softmax over all V outputs) and applies :func:`constructions.check.check_pair`'s verdict conditions
through its ``enclosures`` path; the library's own float64 forward must lie inside the enclosure.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from constructions.artifact_files import HF_MODEL_FILES
from constructions.transformer import DecoderTransformer, TransformerConfig
from theory.certificate import Certificate, Status
from theory.errors import InapplicableOption, InvalidArtifact, InvalidModelConfig
from theory.fileio import file_sha256, write_atomic

HF_DIR = "hf"
"""The folder of a pair directory that holds the export (``hf/q1``, ``hf/q2``, ``hf/certificate.json``)."""
CLOSED_LOGIT = -200.0
"""The constant logit of the SOS and PAD rows: e^−200 ≈ 1e−87 of mass relative to the largest logit,
and e^(200 + logit range) stays far below float64 overflow in the enclosure's log-softmax."""
MEAN_ZERO_EPS = 2.0 ** 664
"""ε of every LayerNorm of the mean-zero variant (≈ 1.2e200; its square root 2³³² is exact)."""
CROSS_CHECK_SLACK = 1e-9
"""The library's float64 log-probabilities must lie inside the enclosure widened by this times (1 + |log q|)
(a float forward rounds; the enclosure bounds the real function)."""
ARCHITECTURES = {"pre": ("gpt2", "gpt2-pre-ln"), "post": ("opt", "opt-post-ln"), "none": ("gpt2", "gpt2-mean-zero")}
_ACTIVATIONS = {"relu": "relu", "gelu": "gelu", "tanh": "tanh"}


def _quiet() -> None:
    """No progress bars or advice lines from the library (the command line prints its own)."""
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()


def require_transformers(flag: str = "--to hf") -> None:
    """Raise :class:`InapplicableOption` (with the install command) when transformers or tokenizers is missing."""
    import importlib.util

    for name in ("transformers", "tokenizers", "safetensors"):
        if importlib.util.find_spec(name) is None:
            raise InapplicableOption(f"{flag} needs the {name} package, which is not installed: pip install -e '.[hf]'")


@dataclass(frozen=True)
class Layout:
    """How a network sits in the library model: ``arch`` (gpt2 | opt), ``variant`` (gpt2-pre-ln,
    opt-post-ln, gpt2-mean-zero), residual width ``n_embd``, library head width ``head_dim`` and the
    factor folded into W_Q (√(head_dim / d_head))."""

    arch: str
    variant: str
    n_embd: int
    head_dim: int
    q_scale: float

    def to_dict(self) -> dict[str, Any]:
        return {"arch": self.arch, "variant": self.variant, "n_embd": self.n_embd, "head_dim": self.head_dim,
                "q_scale": self.q_scale}


def export_problem(config: TransformerConfig) -> str:
    """Why a network of ``config`` cannot be exported ('' when it can); cheap, no library import."""
    try:
        layout(config)
    except InvalidModelConfig as e:
        return str(e)
    return ""


def layout(config: TransformerConfig) -> Layout:
    """The library layout of a network of ``config``.

    Raises:
        InvalidModelConfig: a shape the library cannot hold (named).
    """
    arch, variant = ARCHITECTURES[config.norm]
    h, dh = config.n_heads, config.d_head
    if config.norm == "none":
        width = dh
        while h * width < config.d_model + 2:  # two extra coordinates: minus the sum, and the constant
            width *= 4
        return Layout(arch, variant, h * width, width, math.sqrt(width / dh))
    if config.norm == "post" and config.layer_norm_eps != 1e-5:
        raise InvalidModelConfig(f"layer_norm_eps = {config.layer_norm_eps!r}: OPT's LayerNorm epsilon is fixed at 1e-05, "
                                 "so this post-LN network has no OPT form")
    if config.d_model % h:
        raise InvalidModelConfig(f"d_model = {config.d_model} is not a multiple of n_heads = {h}: {arch} needs "
                                 "n_embd = n_head x head width")
    width = config.d_model // h
    if width < dh:
        raise InvalidModelConfig(f"d_head = {dh} is wider than d_model / n_heads = {width}: {arch} ties a head's width "
                                 "to n_embd / n_head (padding would change the LayerNorm)")
    return Layout(arch, variant, config.d_model, width, math.sqrt(width / dh))


# ---- the weights -------------------------------------------------------------------------------------
def _heads(w: torch.Tensor, n_heads: int, d_head: int, width: int, axis: int) -> torch.Tensor:
    """Head-blocked rows (axis 0) or columns (axis 1) of ``w`` spread from d_head to ``width`` per head with zeros."""
    shape = list(w.shape)
    shape[axis] = n_heads * width
    out = w.new_zeros(shape)
    for h in range(n_heads):
        src = slice(h * d_head, (h + 1) * d_head)
        dst = slice(h * width, h * width + d_head)
        if axis == 0:
            out[dst] = w[src]
        else:
            out[:, dst] = w[:, src]
    return out


def _fold_bias(w_u: torch.Tensor, b_u: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor,
               closed_logit: float, fold: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(β', the two closed rows): W_U β' = W_U β + b_U, and rows r = c/γ with r·β' = ``closed_logit``."""
    if bool((gamma == 0).any()):
        raise InvalidModelConfig("the final LayerNorm has a zero gain: no lm_head row is constant on its outputs")
    w, b, g, be = (t.to(torch.float64) for t in (w_u, b_u, gamma, beta))
    delta = torch.zeros_like(be)
    if fold:  # the minimum-norm solution from the SVD (LAPACK's gelsy, torch's CPU default, can return 0 here)
        pinv = torch.linalg.pinv(w)
        delta = pinv @ b
        delta = delta + pinv @ (b - w @ delta)  # one step of refinement
    new = be + delta
    s = float((new / g).sum())
    if abs(s) < 1.0 and fold:  # move β' inside W_U's null space until Σ β'/γ is not small
        _, _, vh = torch.linalg.svd(w)
        null = vh[w.shape[0]:]
        along = null @ (1.0 / g)
        if null.shape[0] and float(along.abs().max()) > 0:
            k = int(along.abs().argmax())
            new = new + null[k] * ((1.0 - s) / float(along[k]))
            s = float((new / g).sum())
    if s == 0.0:
        raise InvalidModelConfig("cannot give the SOS/PAD rows a constant logit (sum of beta/gamma is 0)")
    row = (closed_logit / s) / g
    return new, torch.stack([row, row])


def hf_weights(net: DecoderTransformer, *, closed_logit: float = CLOSED_LOGIT,
               fold_bias: bool = True) -> tuple[Layout, dict[str, Any], dict[str, torch.Tensor]]:
    """(layout, library config fields, library state dict) of ``net`` (module docstring).  The
    keywords exist for the mutation tests: ``closed_logit`` the SOS/PAD logit, ``fold_bias=False`` an
    export that drops the unembedding bias.

    Raises:
        InvalidModelConfig: a network the library cannot hold (:func:`layout`).
    """
    cfg = net.config
    lay = layout(cfg)
    p = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    d, e, h, dh, width = cfg.d_model, lay.n_embd, cfg.n_heads, cfg.d_head, lay.head_dim
    mean_zero = cfg.norm == "none"
    n_out = cfg.n_outputs
    dtype = p["unembed.weight"].dtype

    def write(rows: torch.Tensor) -> torch.Tensor:  # a map into the residual: (d, ...) → (e, ...)
        if not mean_zero:
            return rows
        out = rows.new_zeros((e, *rows.shape[1:]))
        out[:d] = rows
        out[d] = -rows.to(torch.float64).sum(0).to(dtype)
        return out

    def read(cols: torch.Tensor) -> torch.Tensor:  # a map out of the residual: (..., d) → (..., e)
        if not mean_zero:
            return cols
        out = cols.new_zeros((*cols.shape[:-1], e))
        out[..., :d] = cols
        return out

    def ln(name: str) -> tuple[torch.Tensor, torch.Tensor]:
        if not mean_zero:
            return p[name + ".weight"], p[name + ".bias"]
        g = torch.zeros(e, dtype=dtype)
        g[:d + 1] = math.sqrt(MEAN_ZERO_EPS)
        return g, torch.zeros(e, dtype=dtype)

    layers = []
    for i in range(cfg.n_layers):
        b = f"blocks.{i}."
        wq = _heads(p[b + "attn.q_proj.weight"], h, dh, width, 0) * lay.q_scale
        bq = _heads(p[b + "attn.q_proj.bias"][:, None], h, dh, width, 0)[:, 0] * lay.q_scale
        wk = _heads(p[b + "attn.k_proj.weight"], h, dh, width, 0)
        bk = _heads(p[b + "attn.k_proj.bias"][:, None], h, dh, width, 0)[:, 0]
        wv = _heads(p[b + "attn.v_proj.weight"], h, dh, width, 0)
        bv = _heads(p[b + "attn.v_proj.bias"][:, None], h, dh, width, 0)[:, 0]
        wo = _heads(p[b + "attn.o_proj.weight"], h, dh, width, 1)
        layers.append({
            "q": (read(wq), bq), "k": (read(wk), bk), "v": (read(wv), bv),
            "o": (write(wo), write(p[b + "attn.o_proj.bias"])),
            "fc_in": (read(p[b + "mlp.fc_in.weight"]), p[b + "mlp.fc_in.bias"]),
            "fc_out": (write(p[b + "mlp.fc_out.weight"]), write(p[b + "mlp.fc_out.bias"])),
            "ln_attn": ln(b + "ln_attn"), "ln_mlp": ln(b + "ln_mlp"),
        })
    tok = write(p["token_embedding.weight"].T).T
    pos = write(p["position_embedding.weight"].T).T
    w_u, b_u = p["unembed.weight"], p["unembed.bias"]
    head = torch.zeros((cfg.n_inputs, e), dtype=torch.float64)
    if mean_zero:
        final = ln("ln_final")
        final[1][d + 1] = 1.0  # the constant coordinate: γ = 0, β = 1
        final[0][d + 1] = 0.0
        head[:n_out, :d] = w_u
        if fold_bias:
            head[:n_out, d + 1] = b_u
        head[n_out:, d + 1] = closed_logit
    else:
        g, be = (p["ln_final.weight"], p["ln_final.bias"]) if cfg.norm == "pre" else \
            (p[f"blocks.{cfg.n_layers - 1}.ln_mlp.weight"], p[f"blocks.{cfg.n_layers - 1}.ln_mlp.bias"])
        new_beta, closed = _fold_bias(w_u, b_u, g, be, closed_logit, fold_bias)
        head[:n_out] = w_u
        head[n_out:] = closed
        final = (g, new_beta.to(dtype))
        if cfg.norm == "post":
            layers[-1]["ln_mlp"] = final
    head = head.to(dtype)
    fields = _library_config(cfg, lay)
    if lay.arch == "gpt2":
        state = {"transformer.wte.weight": tok, "transformer.wpe.weight": pos, "lm_head.weight": head,
                 "transformer.ln_f.weight": final[0], "transformer.ln_f.bias": final[1]}
        for i, L in enumerate(layers):
            t = f"transformer.h.{i}."
            state[t + "attn.c_attn.weight"] = torch.cat([L["q"][0], L["k"][0], L["v"][0]], 0).T
            state[t + "attn.c_attn.bias"] = torch.cat([L["q"][1], L["k"][1], L["v"][1]])
            state[t + "attn.c_proj.weight"] = L["o"][0].T
            state[t + "attn.c_proj.bias"] = L["o"][1]
            state[t + "mlp.c_fc.weight"] = L["fc_in"][0].T
            state[t + "mlp.c_fc.bias"] = L["fc_in"][1]
            state[t + "mlp.c_proj.weight"] = L["fc_out"][0].T
            state[t + "mlp.c_proj.bias"] = L["fc_out"][1]
            for ours, theirs in (("ln_attn", "ln_1"), ("ln_mlp", "ln_2")):
                state[t + theirs + ".weight"], state[t + theirs + ".bias"] = L[ours]
    else:
        # OPT reads position t from row t + 2 (its learned-embedding offset); rows 0 and 1 are never used
        # for a word's positions (row 1 is what a right PAD position reads under an attention mask)
        state = {"model.decoder.embed_tokens.weight": tok, "lm_head.weight": head,
                 "model.decoder.embed_positions.weight": torch.cat([pos.new_zeros((2, e)), pos], 0)}
        for i, L in enumerate(layers):
            t = f"model.decoder.layers.{i}."
            for ours, theirs in (("q", "self_attn.q_proj"), ("k", "self_attn.k_proj"), ("v", "self_attn.v_proj"),
                                 ("o", "self_attn.out_proj"), ("fc_in", "fc1"), ("fc_out", "fc2"),
                                 ("ln_attn", "self_attn_layer_norm"), ("ln_mlp", "final_layer_norm")):
                state[t + theirs + ".weight"], state[t + theirs + ".bias"] = L[ours]
    return lay, fields, {k: v.contiguous() for k, v in state.items()}


def _library_config(cfg: TransformerConfig, lay: Layout) -> dict[str, Any]:
    common = {"vocab_size": cfg.n_inputs, "bos_token_id": cfg.sos_id, "eos_token_id": cfg.eos_id,
              "pad_token_id": cfg.pad_id, "tie_word_embeddings": False, "use_cache": True}
    n_heads = lay.n_embd // lay.head_dim
    if lay.arch == "gpt2":
        eps = MEAN_ZERO_EPS if cfg.norm == "none" else cfg.layer_norm_eps
        return {**common, "n_positions": cfg.max_len, "n_embd": lay.n_embd, "n_layer": cfg.n_layers, "n_head": n_heads,
                "n_inner": cfg.d_mlp, "activation_function": _ACTIVATIONS[cfg.activation], "resid_pdrop": 0.0,
                "embd_pdrop": 0.0, "attn_pdrop": 0.0, "layer_norm_epsilon": eps, "scale_attn_weights": True,
                "scale_attn_by_inverse_layer_idx": False, "reorder_and_upcast_attn": False}
    return {**common, "hidden_size": lay.n_embd, "num_hidden_layers": cfg.n_layers, "ffn_dim": cfg.d_mlp,
            "num_attention_heads": n_heads, "max_position_embeddings": cfg.max_len, "do_layer_norm_before": False,
            "word_embed_proj_dim": lay.n_embd, "activation_function": _ACTIVATIONS[cfg.activation], "dropout": 0.0,
            "attention_dropout": 0.0, "activation_dropout": 0.0, "layerdrop": 0.0, "enable_bias": True,
            "layer_norm_elementwise_affine": True}


# ---- the folder ----------------------------------------------------------------------------------------
def build_tokenizer(config: TransformerConfig) -> Any:
    """The character-level fast tokenizer of ``config``'s vocabulary (module docstring)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    names = [*config.symbols.symbols, "<eos>", "<sos>", "<pad>"]
    tok = Tokenizer(models.WordLevel(vocab={s: i for i, s in enumerate(names)}, unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.post_processor = processors.TemplateProcessing(single="<sos> $A", special_tokens=[("<sos>", config.sos_id)])
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<sos>", eos_token="<eos>", pad_token="<pad>",
                                   padding_side="right", model_max_length=config.max_len)


@dataclass(frozen=True)
class HFExport:
    """One exported model folder: its layout and the SHA-256 of every file it holds."""

    folder: Path
    layout: Layout
    files_sha256: dict[str, str]


def to_hf(net: DecoderTransformer, folder: str | os.PathLike[str], *, closed_logit: float = CLOSED_LOGIT,
          fold_bias: bool = True) -> HFExport:
    """Write ``net`` as a Hugging Face folder (weights in the network's dtype, config, generation config,
    tokenizer; module docstring).  ``folder`` must not exist; it is written into a temporary sibling and
    renamed into place.  (``closed_logit`` / ``fold_bias``: see :func:`hf_weights`; for tests.)

    Raises:
        InapplicableOption: transformers is not installed.  InvalidModelConfig: a network the library cannot
            hold.  InvalidArtifact: ``folder`` exists or cannot be written.
    """
    require_transformers()
    target = Path(folder)
    if target.exists():
        raise InvalidArtifact(f"{target}: already exists (an export is written into a new folder)")
    lay, fields, state = hf_weights(net, closed_logit=closed_logit, fold_bias=fold_bias)
    import transformers
    from transformers import GenerationConfig

    _quiet()

    cls_config: Any = transformers.GPT2Config if lay.arch == "gpt2" else transformers.OPTConfig
    cls_model: Any = transformers.GPT2LMHeadModel if lay.arch == "gpt2" else transformers.OPTForCausalLM
    hf_cfg = cls_config(**fields)
    hf_cfg.dtype = net.config.dtype
    with torch.device("meta"):
        model = cls_model(hf_cfg)
    missing = sorted(set(model.state_dict()) - set(state))
    if missing:
        raise InvalidModelConfig(f"the {lay.arch} model has parameters the export does not set: {missing[:3]}")
    model.load_state_dict(state, strict=True, assign=True)
    model.generation_config = GenerationConfig(bos_token_id=net.config.sos_id, eos_token_id=net.config.eos_id,
                                               pad_token_id=net.config.pad_id, max_length=net.config.max_len,
                                               do_sample=False)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        build_tokenizer(net.config).save_pretrained(tmp)
        written = sorted(p.name for p in tmp.iterdir())
        if written != sorted(HF_MODEL_FILES):
            raise InvalidArtifact(f"{target}: the library wrote {written}, not the expected {sorted(HF_MODEL_FILES)}")
        _normalise_json(tmp)
        files = {name: file_sha256(tmp / name) for name in HF_MODEL_FILES}
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return HFExport(target, lay, files)


def _normalise_json(folder: Path) -> None:
    """Rewrite the library's JSON files with sorted keys (same content), so two exports hash alike."""
    for name in ("config.json", "generation_config.json", "tokenizer_config.json"):
        path = folder / name
        write_atomic(path, json.dumps(json.loads(path.read_text(encoding="utf-8")), indent=2, sort_keys=True) + "\n")


def load_hf(folder: str | os.PathLike[str]) -> tuple[Any, Any]:
    """(model in float64, eval mode; tokenizer) loaded offline with the Auto classes.

    Raises:
        InvalidArtifact: a folder the library cannot load (its one-line reason)."""
    require_transformers()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _quiet()
    try:
        model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float64, local_files_only=True)
        tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except Exception as e:  # the library raises OSError, ValueError, safetensors errors …
        first = (str(e).strip().splitlines() or [""])[0]
        raise InvalidArtifact(f"{folder}: transformers cannot load it ({type(e).__name__}: {first[:200]})") from None
    model.eval()
    return model, tok


def tokenizer_encoder(tok: Any, pad_id: int) -> Callable[..., torch.Tensor]:
    """words, length → ``[SOS, x…, PAD…]`` ids, through the exported tokenizer (its post-processor adds SOS)."""

    def encode(words: list[str], length: int | None = None) -> torch.Tensor:
        ids = tok(list(words), add_special_tokens=True)["input_ids"]
        t = length if length is not None else max(len(r) for r in ids)
        out = torch.full((len(ids), t), pad_id, dtype=torch.long)
        for i, r in enumerate(ids):
            out[i, :len(r)] = torch.tensor(r, dtype=torch.long)
        return out

    return encode


def float_log_probs(model: Any, encode: Callable[..., torch.Tensor], maximal: list[str], prefixes: tuple[str, ...]) -> np.ndarray:
    """The library's own float64 full-softmax log-probabilities (all V outputs) at every prefix (one pass per
    maximal word batch; a float pass, for the cross-check only)."""
    from constructions.enclosure import batches

    out = None
    with torch.inference_mode():
        for batch in batches(maximal, prefixes, lambda n, t: n * t, 1 << 20):
            lp = model(input_ids=encode(batch.words, length=batch.length)).logits.to(torch.float64).log_softmax(-1)
            if out is None:
                out = np.empty((len(prefixes), lp.shape[-1]), dtype=np.float64)
            out[batch.where] = lp[torch.as_tensor(batch.rows), torch.as_tensor(batch.cols)].numpy()
    assert out is not None
    return out


def rigorous_enclosure(model: Any, encode: Callable[..., torch.Tensor], maximal: list[str], prefixes: tuple[str, ...]) -> Any:
    """The rigorous enclosure of the loaded library model over ``prefixes`` (full softmax over V).

    Raises:
        InvalidModelConfig: the evaluator has no enclosure for this model (e.g. constructions/hf_enclosure.py absent)."""
    from constructions.enclosure import enclose

    try:
        import constructions.hf_enclosure  # noqa: F401  (registers the library models with the evaluator)
    except ImportError as e:
        raise InvalidModelConfig(f"no rigorous enclosure of transformers models ({e})") from None
    return enclose(model, maximal, prefixes, encode=encode)


def _assumptions() -> tuple[str, ...]:
    from constructions.enclosure import ASSUMPTIONS

    try:
        from constructions import hf_enclosure

        extra = tuple(getattr(hf_enclosure, "ASSUMPTIONS", ()))
    except ImportError:
        extra = ()
    return (*ASSUMPTIONS, *[a for a in extra if a not in ASSUMPTIONS],
            "each exported folder is loaded with transformers' AutoModelForCausalLM.from_pretrained in float64 (its "
            "stored weights widen exactly) and AutoTokenizer.from_pretrained; the words are encoded by that tokenizer; "
            "the enclosure is of the loaded model's function over all V = |Sigma| + 3 outputs (SOS and PAD included: "
            "their mass counts against the model)")


def recheck_pair(case: Any, prefixes: Any, folders: dict[str, Path], method: str, *, check_name: str,
                 layouts: dict[str, dict[str, Any]]) -> Certificate:
    """The export certificate: each folder loaded back through the library and checked with the pair's
    own verdict conditions (:data:`constructions.export.METHOD_BOUNDS`, :func:`~constructions.check.check_pair`
    on the rigorous enclosures), plus the float cross-check; ``unknown`` when no rigorous enclosure exists
    or the library's float forward falls outside it.  Quantities: the layouts (``variant`` per model) and
    ``cross_check``; the caller adds the files' SHA-256."""
    from dataclasses import replace

    from constructions.check import check_pair
    from constructions.export import METHOD_BOUNDS

    tolerance, kl_bound = METHOD_BOUNDS[method]
    encs, crossed, undecided = [], {}, []
    maximal = sorted(prefixes.maximal, key=len)
    for key in ("q1", "q2"):
        model, tok = load_hf(folders[key])
        encode = tokenizer_encoder(tok, model.config.pad_token_id)
        try:
            enc = rigorous_enclosure(model, encode, maximal, prefixes.prefixes)
        except InvalidModelConfig as e:
            return Certificate(check=check_name, claim="the exported folders compute the pair's functions",
                               status=Status.UNKNOWN, method="exhaustive", detail="not re-checked",
                               reason=f"{key}: {e}", quantities={"layouts": layouts})
        lp = float_log_probs(model, encode, maximal, prefixes.prefixes)
        slack = CROSS_CHECK_SLACK * (1.0 + np.abs(lp))
        outside = ~((lp >= enc.lp_lo - slack) & (lp <= enc.lp_hi + slack))
        n_out = int(outside.sum())
        crossed[key] = {"float64_values_checked": int(lp.size), "float64_values_outside_enclosure": n_out,
                        "slack": f"{CROSS_CHECK_SLACK:g} x (1 + |log q|)"}
        if n_out:
            i, a = (int(x) for x in np.argwhere(outside)[0])
            undecided.append(f"{key.upper()}: LIBRARY AND ENCLOSURE DISAGREE - {n_out} of {lp.size} float64 "
                             f"log-probabilities of transformers' forward lie outside the enclosure; first: prefix "
                             f"{prefixes.prefixes[i]!r}, output {a}: {lp[i, a]:.17g} not in [{enc.lp_lo[i, a]:.17g}, "
                             f"{enc.lp_hi[i, a]:.17g}]")
        encs.append(enc)
    cert = check_pair(case, None, None, prefixes, tolerance=tolerance, kl_bound=kl_bound, check_name=check_name,
                      enclosures=(encs[0], encs[1]), assumptions=_assumptions(),
                      subject="The real functions of the two exported Hugging Face models, as transformers loads them",
                      versions=("torch", "safetensors", "numpy", "mpmath", "transformers", "tokenizers"))
    q = {**cert.quantities, "layouts": layouts, "cross_check": crossed}
    claim = cert.claim + " The library's own float64 forward lies inside each enclosure."
    if undecided:
        return replace(cert, status=Status.UNKNOWN, reason="; ".join([*undecided, cert.reason]).rstrip("; "),
                       quantities=q, claim=claim)
    return replace(cert, quantities=q, claim=claim)


# ---- the export folder of a pair ----------------------------------------------------------------------
def export_check_name(pair_check: str) -> str:
    """The export certificate's check name, from the pair's (``counterexample-anbn`` → ``hf-export-anbn``)."""
    return "hf-export-" + pair_check.removeprefix("counterexample-")


def write_hf_export(root: str | os.PathLike[str], case: Any, prefixes: Any, nets: dict[str, DecoderTransformer],
                    method: str, pair_check: str) -> Certificate:
    """Write ``root/q1``, ``root/q2`` (:func:`to_hf`) and ``root/certificate.json`` (:func:`recheck_pair`, with
    every exported file's SHA-256 under ``files_sha256``, keyed ``q1/config.json`` …) into ``root``, a folder
    that must not exist (the caller builds the pair folder in a temporary sibling).  Returns the certificate.

    Raises:
        InvalidModelConfig: a network the library cannot hold.  InapplicableOption: no transformers.
    """
    root = Path(root)
    root.mkdir(parents=True)
    exports = {key: to_hf(nets[key], root / key) for key in ("q1", "q2")}
    cert = recheck_pair(case, prefixes, {k: e.folder for k, e in exports.items()}, method,
                        check_name=export_check_name(pair_check), layouts={k: e.layout.to_dict() for k, e in exports.items()})
    files = {f"{k}/{name}": digest for k, e in exports.items() for name, digest in sorted(e.files_sha256.items())}
    from dataclasses import replace

    cert = replace(cert, quantities={**cert.quantities, "files_sha256": files})
    write_atomic(root / "certificate.json", cert.to_json())
    return cert


def check_hf_files(root: Path, files: object) -> dict[str, str]:
    """The stored ``files_sha256`` of an export certificate, checked (exactly the files of :func:`to_hf` for q1
    and q2, each a SHA-256) and compared with the files on disk.

    Raises:
        InvalidArtifact: naming the first bad entry, missing file or mismatch."""
    from constructions.artifact_files import check_files_on_disk, check_files_sha256

    want = {f"{k}/{name}" for k in ("q1", "q2") for name in HF_MODEL_FILES}
    checked = check_files_sha256(files, root, expected=want)
    check_files_on_disk(checked, root, "the export certificate")
    return checked


def verify_hf_export(root: str | os.PathLike[str], case: Any, prefixes: Any, method: str,
                     pair_check: str) -> tuple[Certificate, Certificate]:
    """Re-verify an export folder: its files' SHA-256 against its certificate, then the re-check through the
    library from the files alone.  Returns (stored, fresh) export certificates.

    Raises:
        InvalidArtifact: a missing or edited file, an unreadable certificate, a folder transformers cannot load.
        InapplicableOption: transformers is not installed.
    """
    from constructions.export import _read_json
    from theory.errors import NonidError

    root = Path(root)
    require_transformers("re-checking the hf export")
    try:
        stored = Certificate.from_dict(_read_json(root / "certificate.json"))
    except (ValueError, TypeError, NonidError) as e:
        raise InvalidArtifact(f"{root / 'certificate.json'}: not a certificate ({e})") from None
    files = check_hf_files(root, stored.quantities.get("files_sha256"))
    layouts = stored.quantities.get("layouts")
    if not isinstance(layouts, dict) or set(layouts) != {"q1", "q2"}:
        raise InvalidArtifact(f"{root / 'certificate.json'}: no layouts of q1 and q2")
    fresh = recheck_pair(case, prefixes, {k: root / k for k in ("q1", "q2")}, method,
                         check_name=export_check_name(pair_check), layouts=layouts)
    from dataclasses import replace

    return stored, replace(fresh, quantities={**fresh.quantities, "files_sha256": files})
