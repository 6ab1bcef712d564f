"""TransformerLens export of a LayerNorm-free (or pre-LN) :class:`~constructions.transformer.DecoderTransformer`,
re-checked through TransformerLens.

TransformerLens 4 has no ``HookedTransformer`` (removed in 4.0); a model defined by its own config and
weights, with no Hugging Face checkpoint, is a ``TransformerBridge.boot_native(config)`` — a bridge around
TL's ``NativeModel`` (``transformer_lens/model_bridge/sources/native/model.py``).  Its architecture is
nonid's, parameter for parameter:

================================ ================================ =========================================
nonid (``DecoderTransformer``)    TransformerLens key (the file)   NativeModel (what its forward reads)
================================ ================================ =========================================
``token_embedding.weight``        ``embed.weight``                 ``tok_embed`` (d_vocab = |Σ| + 3)
``position_embedding.weight``     ``pos_embed.weight``             ``pos`` (standard, n_ctx = max_len)
``blocks.i.attn.{q,k,v,o}_proj``  ``blocks.i.attn.{q,k,v,o}``      split Q/K/V/O ``nn.Linear`` with biases;
                                                                   heads are the same row blocks, scores
                                                                   ÷ √d_head, causal mask
``blocks.i.mlp.fc_in / fc_out``   ``blocks.i.mlp.in / out``        ``fc_in`` / ``fc_out``, act_fn relu/gelu
``blocks.i.ln_attn / ln_mlp``     ``blocks.i.ln1 / ln2``           pre-LN ``nn.LayerNorm`` (``norm="pre"``);
                                                                   ``nn.Identity`` for ``norm="none"``
``ln_final``                      ``ln_final``                     ``ln_out`` (pre) / ``nn.Identity`` (none)
``unembed.weight / bias``         ``unembed.weight / bias``        ``head``: TL's native head has no bias
                                                                   parameter, the bridge gives it a bias
                                                                   *buffer* that its forward adds (``b_U``)
================================ ================================ =========================================

So everything maps exactly, with no padding and no rescaling: ``n_heads·d_head ≠ d_model`` is native
(Q/K/V are ``d_model → n_heads·d_head``); the output vocabulary is ``d_vocab_out = |Σ| + 1``, whose ids
are the input ids of Σ and EOS (nonid's one layout), so SOS and PAD are simply never output logits; the
unembedding bias is the bridge's ``b_U`` buffer (loaded and used, but not trainable in TL).  Refused
(:class:`~theory.errors.InvalidModelConfig`, naming the field): ``norm="post"`` (TL's native blocks are
pre-norm only), ``activation="tanh"`` (not a TL ``act_fn``) and float32 weights (the re-check is a float64
differential test).

A folder holds (built in a temporary sibling, then renamed into place):

* ``tl_config.json`` — the ``TransformerBridgeConfig`` fields (all but ``dtype``, which is not JSON);
* ``model.safetensors`` — the TL-format state dict, float64, bitwise nonid's weights;
* ``nonid.json`` — the format, nonid's :class:`~constructions.transformer.TransformerConfig`, the TL
  version that wrote it, and the SHA-256 of the other three files;
* ``README.md`` — what the files are and the three lines of Python that load them.

:func:`verify_tl` loads the folder through TransformerLens and re-checks it (see its docstring for what is
certified and what is a float cross-check).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from constructions.transformer import DecoderTransformer, TransformerConfig
from theory.errors import InapplicableOption, InvalidArtifact, InvalidModelConfig, NonidError
from theory.fileio import file_sha256, make_temp_dir, replace_directory, write_atomic

TL_FORMAT = "nonid-transformerlens-1"
"""The ``format`` of ``nonid.json``."""
TL_EXTRA = "pip install -e '.[tl]'"
CONFIG_FILE, WEIGHTS_FILE, MANIFEST_FILE, README_FILE = "tl_config.json", "model.safetensors", "nonid.json", "README.md"
TL_FILES = (CONFIG_FILE, WEIGHTS_FILE, MANIFEST_FILE, README_FILE)
HASHED_FILES = (CONFIG_FILE, WEIGHTS_FILE, README_FILE)
"""The files whose SHA-256 ``nonid.json`` records (``nonid.json`` itself is returned by :func:`export_tl`)."""
_ACT_FNS = {"relu": "relu", "gelu": "gelu"}  # nonid's F.gelu is TL's "gelu" (erf), not "gelu_new" (tanh)
_NORMS = {"none": None, "pre": "LN"}
DEFAULT_WORD_BUDGET = 1024
"""Without ``words``, :func:`verify_tl` takes every word of the largest length k ≤ max_len − 1 with
|Σ|ᵏ ≤ this (so every prefix of length ≤ k)."""


# ---- the mapping ----------------------------------------------------------------------------------------
def export_problem(config: TransformerConfig) -> str:
    """Why a network of ``config`` has no exact TransformerLens form ('' when it has); no TL import."""
    if config.norm not in _NORMS:
        return (f"norm {config.norm!r} has no TransformerLens form: TL's native blocks are pre-norm only "
                "(x + attn(LN(x))); export a norm='none' or norm='pre' network")
    if config.activation not in _ACT_FNS:
        return f"activation {config.activation!r} is not a TransformerLens act_fn (relu and gelu are)"
    if config.dtype != "float64":
        return f"dtype {config.dtype!r}: the TransformerLens export is float64 only (its re-check is a float64 differential test)"
    return ""


def tl_config_dict(config: TransformerConfig) -> dict[str, Any]:
    """The ``TransformerBridgeConfig`` fields (JSON-able; ``dtype`` is passed separately) under which TL's
    ``NativeModel`` computes nonid's architecture for ``config``.

    Raises:
        InvalidModelConfig: a network with no exact TL form (:func:`export_problem`).
    """
    problem = export_problem(config)
    if problem:
        raise InvalidModelConfig(problem)
    return {
        "model_name": f"nonid-{config.alphabet}-{config.n_layers}L", "original_architecture": "nonid.DecoderTransformer",
        "architecture": "TransformerLensNative",
        "d_model": config.d_model, "d_head": config.d_head, "n_heads": config.n_heads, "n_layers": config.n_layers,
        "n_ctx": config.max_len, "d_mlp": config.d_mlp, "d_vocab": config.n_inputs, "d_vocab_out": config.n_outputs,
        "act_fn": _ACT_FNS[config.activation], "normalization_type": _NORMS[config.norm], "eps": config.layer_norm_eps,
        "final_rms": False, "attention_dir": "causal", "positional_embedding_type": "standard",
        "use_attn_scale": True, "attn_scale": -1.0,  # -1: divide scores by √d_head, as nonid does
        "attn_only": False, "gated_mlp": False, "n_key_value_heads": None, "parallel_attn_mlp": False,
        "default_prepend_bos": False, "tokenizer_prepends_bos": False,  # ids are fed as nonid encodes them
        "init_weights": False, "seed": None, "device": "cpu",
    }


def _layer_names(config: TransformerConfig) -> list[tuple[str, str]]:
    """(nonid key, TL key) for every tensor, in nonid's ``state_dict`` order."""
    out = [("token_embedding.weight", "embed.weight"), ("position_embedding.weight", "pos_embed.weight")]
    for i in range(config.n_layers):
        if config.norm == "pre":
            out += [(f"blocks.{i}.ln_attn.{p}", f"blocks.{i}.ln1.{p}") for p in ("weight", "bias")]
        for a in "qkvo":
            out += [(f"blocks.{i}.attn.{a}_proj.{p}", f"blocks.{i}.attn.{a}.{p}") for p in ("weight", "bias")]
        if config.norm == "pre":
            out += [(f"blocks.{i}.ln_mlp.{p}", f"blocks.{i}.ln2.{p}") for p in ("weight", "bias")]
        out += [(f"blocks.{i}.mlp.fc_{x}.{p}", f"blocks.{i}.mlp.{y}.{p}") for x, y in (("in", "in"), ("out", "out"))
                for p in ("weight", "bias")]
    if config.norm == "pre":
        out += [(f"ln_final.{p}", f"ln_final.{p}") for p in ("weight", "bias")]
    return out + [("unembed.weight", "unembed.weight"), ("unembed.bias", "unembed.bias")]


def to_tl_state(net: DecoderTransformer) -> dict[str, torch.Tensor]:
    """nonid's weights under TL's keys (the same tensors, copied, contiguous, float64)."""
    sd = net.state_dict()
    names = _layer_names(net.config)
    if sorted(k for k, _ in names) != sorted(sd):
        raise InvalidModelConfig(f"network tensors {sorted(set(sd) ^ {k for k, _ in names})} do not fit its config")
    return {tl: sd[ours].detach().cpu().contiguous().clone() for ours, tl in names}


def _native_key(tl_key: str) -> str:
    """The NativeModel parameter path (``_original_component`` segments stripped) behind a TL key."""
    head, _, rest = tl_key.partition(".")
    top = {"embed": "tok_embed", "pos_embed": "pos", "unembed": "head", "ln_final": "ln_out"}
    if head in top:
        return f"{top[head]}.{rest}"
    layer, _, rest = rest.partition(".")  # blocks.i.…
    rest = rest.replace("mlp.in.", "mlp.fc_in.").replace("mlp.out.", "mlp.fc_out.")
    return f"layers.{layer}.{rest}"


def _native_tensor(root: torch.nn.Module, path: str) -> torch.Tensor:
    """The tensor at ``path`` (``layers.0.mlp.fc_in.weight``) of the module tree NativeModel's forward walks:
    at each step the bridge's wrapper is unwrapped to the ``_original_component`` it calls (the bridge
    also registers aliases such as ``mlp.in``; those are not read)."""
    mod: Any = root
    *parts, leaf = path.split(".")
    for part in parts:
        mod = getattr(mod, part)
        while isinstance(getattr(mod, "_original_component", None), torch.nn.Module):
            mod = mod._original_component
    t = getattr(mod, leaf)
    if not isinstance(t, torch.Tensor):
        raise InvalidArtifact(f"the loaded TransformerLens model has no tensor at {path}")
    return t


def read_back(model: Any, config: TransformerConfig) -> DecoderTransformer:
    """The loaded TL model's weights, read from the tensors its ``NativeModel`` forward uses (not from the
    bridge's TL-format view), mapped into a :class:`DecoderTransformer` of ``config``.  Every tensor in the
    NativeModel's state must be one of them (no parameter nonid lacks).

    Raises:
        InvalidArtifact: a tensor missing, extra, of another shape or dtype.
    """
    root = model.original_model
    state, used = {}, set()
    try:
        for ours, tl in _layer_names(config):
            t = _native_tensor(root, _native_key(tl))
            used.add(t.data_ptr())
            if t.dtype != torch.float64:
                raise InvalidArtifact(f"the loaded TransformerLens tensor {_native_key(tl)} is {t.dtype}, not float64")
            state[ours] = t.detach().cpu().clone()
    except AttributeError as e:
        raise InvalidArtifact(f"the loaded TransformerLens model lacks a module nonid's architecture needs ({e})") from None
    extra = sorted(k.replace("._original_component", "") for k, v in root.state_dict(keep_vars=True).items()
                   if v.numel() and v.data_ptr() not in used)
    if extra:
        raise InvalidArtifact(f"the loaded TransformerLens model has tensors nonid's architecture lacks: {extra[:3]}")
    try:
        return DecoderTransformer.from_state_dict(config, state).eval()
    except RuntimeError as e:
        raise InvalidArtifact(f"the loaded TransformerLens weights do not fit the nonid config ({str(e).splitlines()[-1].strip()})") from None


def bitwise_differences(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> list[str]:
    """The keys whose tensors differ in dtype, shape or any bit (so −0.0 ≠ 0.0 and NaN payloads count)."""
    out = sorted(set(a) ^ set(b))
    for k in sorted(set(a) & set(b)):
        x, y = a[k].detach().cpu().contiguous(), b[k].detach().cpu().contiguous()
        if x.dtype != y.dtype or x.shape != y.shape or not torch.equal(_bits(x), _bits(y)):
            out.append(k)
    return out


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.view(torch.int64) if t.dtype == torch.float64 else t.view(torch.int32) if t.dtype == torch.float32 else t


# ---- writing ---------------------------------------------------------------------------------------------
def require_transformer_lens(flag: str = "--to tl") -> str:
    """The installed TransformerLens version; :class:`InapplicableOption` (with the install command) when absent."""
    if importlib.util.find_spec("transformer_lens") is None:
        raise InapplicableOption(f"{flag} needs the transformer_lens package (TransformerLens 4), which is not installed: {TL_EXTRA}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("transformer-lens")
    except PackageNotFoundError:
        return "unknown"


def _readme(config: TransformerConfig, tl_version: str) -> str:
    sym = config.alphabet
    return f"""# A nonid network for TransformerLens

A `nonid` decoder transformer (alphabet `{sym}`, {config.n_layers} layers, d_model {config.d_model},
{config.n_heads} head(s) of width {config.d_head}, d_mlp {config.d_mlp}, norm `{config.norm}`, {config.activation},
max_len {config.max_len}) as a TransformerLens native model, float64, weights bitwise nonid's
(written with TransformerLens {tl_version}).  Load it offline (run in this folder):

```python
import json, torch; from safetensors.torch import load_file; from transformer_lens import TransformerBridge, TransformerBridgeConfig
model = TransformerBridge.boot_native(TransformerBridgeConfig(**json.load(open("{CONFIG_FILE}")), dtype=torch.float64), device="cpu", dtype=torch.float64)
model.load_state_dict(load_file("{WEIGHTS_FILE}"), strict=True)
```

Inputs: token ids {", ".join(f"{c} = {i}" for i, c in enumerate(sym))}, EOS = {config.eos_id}, SOS = {config.sos_id},
PAD = {config.pad_id}.  Feed a word x as `[SOS, x₁, …, xₙ]` (`torch.tensor([[...]])`, no BOS is added); the
logits at position t (|Σ| + 1 = {config.n_outputs} of them: the symbols, then EOS) give q(· | x₁…xₜ).  SOS
and PAD are never predicted.  The unembedding bias is TransformerLens's `b_U` buffer.

`nonid.json` holds nonid's own config and the SHA-256 of the other files; `nonid export … --to tl` wrote
the folder and `constructions.tl_export.verify_tl` re-checks it through TransformerLens.
"""


def _is_tl_export(folder: Path) -> bool:
    from theory.jsonio import SMALL_FILE_LIMITS, read_json_file

    try:
        raw = read_json_file(folder / MANIFEST_FILE, limits=SMALL_FILE_LIMITS)
    except NonidError:
        return False
    return isinstance(raw, dict) and raw.get("format") == TL_FORMAT


def _foreign(folder: Path) -> list[str]:
    return sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir() if p.name not in TL_FILES or not p.is_file())


def export_tl(net: DecoderTransformer, folder: str | os.PathLike[str], *, overwrite: bool = False) -> dict[str, str]:
    """Write ``net`` as a TransformerLens native model into ``folder`` (see the module docstring), atomically:
    built in a temporary sibling folder, then renamed into place.

    Returns {file name: SHA-256} of every file written (``nonid.json`` included; it holds the others').

    Raises:
        InvalidModelConfig: not a DecoderTransformer, or one with no exact TL form (named field).
        InapplicableOption: TransformerLens is not installed (the export records its version).
        InvalidArtifact: ``folder`` is a file, a non-empty folder that is not an earlier TL export (even
            with ``overwrite``), an earlier one without ``overwrite``, or cannot be written.
    """
    if not isinstance(net, DecoderTransformer):
        raise InvalidModelConfig(f"expected a DecoderTransformer, got {type(net).__name__}")
    from constructions.enclosure import why_not_enclosable

    why = why_not_enclosable(net)
    if why:  # a subclass computing something else: its weights under nonid's architecture are not its function
        raise InvalidModelConfig(f"only a stock DecoderTransformer is exported: {why}")
    config = net.config
    tl_cfg = tl_config_dict(config)
    state = to_tl_state(net)
    tl_version = require_transformer_lens()
    from theory.fileio import claimed_folder_problem

    target = Path(folder)
    problem = claimed_folder_problem(target, "export --to tl", marker=MANIFEST_FILE, is_ours=_is_tl_export,
                                     foreign=_foreign, force=overwrite)
    if problem:
        raise InvalidArtifact(problem)
    from safetensors.torch import save

    from constructions.transformer import _sorted_header

    try:
        tmp = make_temp_dir(target)
    except OSError as e:
        raise InvalidArtifact(f"{target}: cannot be created ({e.strerror or e})") from None
    try:
        write_atomic(tmp / CONFIG_FILE, json.dumps(tl_cfg, indent=2, sort_keys=True) + "\n")
        write_atomic(tmp / WEIGHTS_FILE, _sorted_header(save(state, metadata={"format": TL_FORMAT})))
        write_atomic(tmp / README_FILE, _readme(config, tl_version))
        hashes = {name: file_sha256(tmp / name) for name in HASHED_FILES}
        manifest = {"format": TL_FORMAT, "transformer_lens": tl_version, "nonid_config": config.to_dict(),
                    "boot": "TransformerBridge.boot_native", "files_sha256": hashes}
        write_atomic(tmp / MANIFEST_FILE, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        hashes = {**hashes, MANIFEST_FILE: file_sha256(tmp / MANIFEST_FILE)}
        os.chmod(tmp, 0o755)
        replace_directory(tmp, target)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise InvalidArtifact(f"{target}: could not be written ({e.strerror or e})") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dict(sorted(hashes.items()))


# ---- reading -----------------------------------------------------------------------------------------------
def read_manifest(folder: str | os.PathLike[str]) -> tuple[dict[str, Any], TransformerConfig]:
    """``nonid.json`` of a TL export, with every hashed file's SHA-256 checked, and nonid's config.

    Raises:
        InvalidArtifact: a missing folder or file, another format, a SHA-256 mismatch, a bad config.
    """
    from theory.jsonio import SMALL_FILE_LIMITS, read_json_file

    d = Path(folder)
    if not d.is_dir():
        raise InvalidArtifact(f"{d}: not a folder")
    raw = read_json_file(d / MANIFEST_FILE, limits=SMALL_FILE_LIMITS)
    if not isinstance(raw, dict) or raw.get("format") != TL_FORMAT:
        got = raw.get("format") if isinstance(raw, dict) else raw
        raise InvalidArtifact(f"{d / MANIFEST_FILE}: format {got!r} is not {TL_FORMAT!r}")
    files = raw.get("files_sha256")
    if not isinstance(files, dict) or sorted(files) != sorted(HASHED_FILES):
        raise InvalidArtifact(f"{d / MANIFEST_FILE}: files_sha256 must list exactly {', '.join(HASHED_FILES)}")
    for name in HASHED_FILES:
        path = d / name
        if not path.is_file():
            raise InvalidArtifact(f"{path}: missing")
        found = file_sha256(path)
        if found != files[name]:
            raise InvalidArtifact(f"{path}: SHA-256 does not match {MANIFEST_FILE} (expected {str(files[name])[:8]}…, found {found[:8]}…)")
    try:
        config = TransformerConfig.from_dict(raw["nonid_config"])
    except (KeyError, TypeError, NonidError) as e:
        raise InvalidArtifact(f"{d / MANIFEST_FILE}: unusable nonid_config ({e})") from None
    return raw, config


def _read_tl_config(folder: Path, config: TransformerConfig) -> dict[str, Any]:
    """``tl_config.json``, which must be field for field the one nonid's config maps to (TL's ``from_dict``
    silently drops unknown fields, so an edited file could change the function unnoticed)."""
    from theory.jsonio import SMALL_FILE_LIMITS, read_json_file

    raw = read_json_file(folder / CONFIG_FILE, limits=SMALL_FILE_LIMITS)
    try:
        want = tl_config_dict(config)
    except InvalidModelConfig as e:
        raise InvalidArtifact(f"{folder / MANIFEST_FILE}: {e}") from None
    if not isinstance(raw, dict) or raw != want:
        diff = sorted(set(raw) ^ set(want)) + sorted(k for k in set(raw) & set(want) if raw[k] != want[k]) \
            if isinstance(raw, dict) else ["(not an object)"]
        raise InvalidArtifact(f"{folder / CONFIG_FILE}: disagrees with nonid's architecture on {', '.join(diff)}")
    return raw


def load_tl(folder: str | os.PathLike[str]) -> Any:
    """The folder's model through TransformerLens (``TransformerBridge.boot_native`` + strict
    ``load_state_dict``), float64 on the CPU, offline (no Hub call: a native boot never makes one).

    Raises:
        InvalidArtifact: a bad folder (:func:`read_manifest`), a tl_config.json that is not nonid's mapping,
            a weights file TL cannot load (missing, unexpected or misshapen tensors, not float64).
        InapplicableOption: TransformerLens is not installed.
    """
    d = Path(folder)
    _, config = read_manifest(d)
    raw = _read_tl_config(d, config)
    require_transformer_lens("loading a TransformerLens export")
    from safetensors.torch import load_file
    from transformer_lens import TransformerBridge, TransformerBridgeConfig

    try:
        tensors = load_file(str(d / WEIGHTS_FILE))
    except Exception as e:  # safetensors' own error type on a damaged file
        raise InvalidArtifact(f"{d / WEIGHTS_FILE}: not a readable safetensors file ({type(e).__name__}: {e})") from None
    wrong = sorted(k for k, v in tensors.items() if v.dtype != torch.float64)
    if wrong:  # TL's load_state_dict would silently widen float32 tensors
        raise InvalidArtifact(f"{d / WEIGHTS_FILE}: tensors {wrong[:3]} are not float64")
    model = TransformerBridge.boot_native(TransformerBridgeConfig(**raw, dtype=torch.float64), device="cpu", dtype=torch.float64)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as e:
        lines = [s.strip() for s in str(e).strip().splitlines() if s.strip()]
        first = (lines[-1] if lines else str(e)).split(", ")[0]  # TL names each alias of one tensor: keep the first
        raise InvalidArtifact(f"{d / WEIGHTS_FILE}: TransformerLens refuses the weights ({first})") from None
    return model.eval()


def maximal_words(prefixes: Sequence[str]) -> list[str]:
    """The words to give :func:`verify_tl` for a pair's prefix set (``constructions.export.case_prefixes``):
    :func:`constructions.enclosure.maximal_words`."""
    from constructions.enclosure import maximal_words as maximal

    return maximal(prefixes)


def default_words(config: TransformerConfig, budget: int = DEFAULT_WORD_BUDGET) -> list[str]:
    """Every word of length k over Σ, k the largest ≤ max_len − 1 with |Σ|ᵏ ≤ ``budget`` (so its prefixes
    are every word of length ≤ k)."""
    from itertools import product

    sigma = config.alphabet
    k = 0
    while k + 1 <= config.max_len - 1 and len(sigma) ** (k + 1) <= budget:
        k += 1
    return ["".join(p) for p in product(sigma, repeat=k)]


def verify_tl(folder: str | os.PathLike[str], net_expected: DecoderTransformer | None = None, *,
              words: Sequence[str] | None = None, batch_words: int = 64) -> dict[str, Any]:
    """Re-check a TransformerLens export through TransformerLens.

    1. **Load** (:func:`load_tl`): hashes, nonid's config, a ``tl_config.json`` that is exactly nonid's
       mapping, TL's own strict ``load_state_dict``.  A folder that fails is refused (InvalidArtifact).
    2. **Weights, certified (exact).**  The tensors the loaded ``NativeModel``'s forward reads are mapped
       back into a :class:`DecoderTransformer` (:func:`read_back`) and compared *bitwise* with the file's
       tensors and, with ``net_expected``, with that network's.  Equal bits mean: every rigorous enclosure
       or exact check of ``net_expected`` (:mod:`constructions.enclosure`, the exhaustive checker) holds
       for the real function that *nonid's architecture* gives the weights TL holds.  A difference from
       ``net_expected`` is ``falsified`` (the tensors named).
    3. **TL's forward, a float cross-check (not certified).**  At every prefix of ``words`` (default
       :func:`default_words`) TL's float64 logits z_TL are compared with the rigorous logit enclosure
       ⟨m, r⟩ of the read-back network (:func:`constructions.enclosure.forward_balls`): the real logit z
       lies in [m − r, m + r].  Tolerance: |z_TL − m| ≤ 2r.  Why: r also bounds the rounding of *any*
       float64 evaluation of the same operations in any summation order (the a-priori bounds behind it
       hold for every order); TL's NativeModel performs the same operations (``F.linear``, scores ÷ √d_head,
       masked softmax, ReLU/GELU, the bias add), so — *if* its libm ``exp`` (in the softmax) is as accurate
       as the enclosure's own exp bound, which is nowhere assumed or checked — |z_TL − z| ≤ r, hence
       ≤ 2r from m.  TL's code path and kernels are not enclosed: a pass is evidence from one float
       evaluation per prefix that TL computes nonid's architecture, not a proof; a logit outside 2r is
       ``falsified`` (the worst prefix named).  The count of logits strictly inside [m − r, m + r] is
       reported too (on the compiled aⁿbⁿ pair: all of them).

    Returns a dict: ``status`` (verified | falsified), ``reason``, ``transformer_lens`` (version),
    ``tensors``, ``parameters``, ``weights_bitwise_equal_file`` and ``weights_bitwise_equal_expected``
    (None without ``net_expected``), ``prefixes``, ``logits``, ``inside_enclosure``, ``within_tolerance``,
    ``max_abs_diff`` (max |z_TL − m|), ``max_radius``, ``worst_ratio`` (max |z_TL − m| / 2r), ``worst_prefix``,
    ``tolerance`` (the rule, in words), ``certified`` and ``cross_check`` (what each part means).

    Raises:
        InvalidArtifact: the folder is refused (step 1).  InapplicableOption: TransformerLens is absent.
        InvalidModelConfig: ``net_expected`` is not a DecoderTransformer.
        UnknownToken / InputTooLong: a word the network cannot read.
    """
    if net_expected is not None and not isinstance(net_expected, DecoderTransformer):
        raise InvalidModelConfig(f"net_expected must be a DecoderTransformer, got {type(net_expected).__name__}")
    d = Path(folder)
    manifest, config = read_manifest(d)
    model = load_tl(d)
    tl_version = require_transformer_lens("verifying a TransformerLens export")
    from safetensors.torch import load_file

    net = read_back(model, config)
    file_state = load_file(str(d / WEIGHTS_FILE))
    ours = {tl: net.state_dict()[k] for k, tl in _layer_names(config)}
    diff_file = bitwise_differences(file_state, ours)
    diff_expected: list[str] | None = None
    if net_expected is not None:
        diff_expected = bitwise_differences(net_expected.state_dict(), net.state_dict())
        if net_expected.config != config:
            diff_expected = ["config: " + ", ".join(k for k, v in config.to_dict().items()
                                                    if net_expected.config.to_dict().get(k) != v)] + diff_expected
    result: dict[str, Any] = {
        "transformer_lens": tl_version, "written_with": manifest.get("transformer_lens"),
        "tensors": len(ours), "parameters": sum(v.numel() for v in ours.values()),
        "weights_bitwise_equal_file": not diff_file,
        "weights_bitwise_equal_expected": None if diff_expected is None else not diff_expected,
        "tolerance": "|z_TL - m| <= 2r per logit, <m, r> the rigorous logit enclosure of the read-back network",
        "certified": ("the weights TransformerLens holds after loading are bitwise the folder's"
                      + (" and net_expected's" if net_expected is not None else "")
                      + "; so enclosures of that DecoderTransformer hold for the real function nonid's architecture "
                      "gives the weights TransformerLens holds"),
        "cross_check": "TransformerLens's own float64 forward against the enclosure (its code path is not enclosed)",
    }
    if diff_file or diff_expected:
        which = (f"the weights TransformerLens loaded differ from {WEIGHTS_FILE} at {', '.join(diff_file[:4])}" if diff_file
                 else f"the exported weights differ from net_expected at {', '.join((diff_expected or [])[:4])}")
        return {**result, "status": "falsified", "reason": which}
    if isinstance(words, str):
        raise InvalidModelConfig(f"words must be a sequence of words, got the single string {words!r}")
    cross = _cross_check(model, net, list(default_words(config) if words is None else words), batch_words)
    result.update(cross)
    if cross["within_tolerance"] < cross["logits"]:
        return {**result, "status": "falsified",
                "reason": (f"TransformerLens's logits leave the enclosure's 2r tolerance at {cross['logits'] - cross['within_tolerance']} "
                           f"of {cross['logits']} logits (worst prefix {cross['worst_prefix']!r}, max |z_TL - m| = "
                           f"{'not finite' if cross['max_abs_diff'] is None else format(cross['max_abs_diff'], '.3e')})")}
    return {**result, "status": "verified",
            "reason": (f"weights bitwise equal ({result['tensors']} tensors); TransformerLens's float64 logits within 2r of the "
                       f"enclosure at all {cross['prefixes']} prefixes ({cross['inside_enclosure']} of {cross['logits']} strictly inside)")}


def _cross_check(model: Any, net: DecoderTransformer, words: list[str], batch_words: int) -> dict[str, Any]:
    """TL's logits against the enclosure at every prefix of ``words`` (see :func:`verify_tl`, step 3)."""
    from constructions.enclosure import forward_balls

    seen: set[str] = set()
    n_prefixes = n_logits = inside = within = 0
    max_diff = max_radius = worst_ratio = 0.0
    worst = ""
    order = sorted(dict.fromkeys(words), key=len)
    with torch.no_grad():
        for start in range(0, len(order), max(1, batch_words)):
            chunk = order[start:start + max(1, batch_words)]
            tokens = net.encode(chunk)
            z_tl = model(tokens)
            ball = forward_balls(net, tokens)
            if not isinstance(z_tl, torch.Tensor) or z_tl.shape != ball.m.shape or z_tl.dtype != torch.float64:
                got = tuple(z_tl.shape) if isinstance(z_tl, torch.Tensor) else type(z_tl).__name__
                raise InvalidArtifact(f"TransformerLens returned logits {got}, expected float64 {tuple(ball.m.shape)}")
            diff = (z_tl - ball.m).abs()
            r = ball.r
            ok_in = (z_tl >= ball.lo) & (z_tl <= ball.hi)
            ok_tol = diff <= 2.0 * r
            for row, w in enumerate(chunk):
                for t in range(len(w) + 1):
                    u = w[:t]
                    if u in seen:
                        continue
                    seen.add(u)
                    n_prefixes += 1
                    n_logits += diff.shape[-1]
                    inside += int(ok_in[row, t].sum())
                    within += int(ok_tol[row, t].sum())
                    dm = float(diff[row, t].max())
                    ratio = float((diff[row, t] / (2.0 * r[row, t])).max())
                    max_radius = max(max_radius, float(r[row, t].max()))
                    if dm > max_diff:
                        max_diff = dm
                    ratio = ratio if math.isfinite(ratio) else math.inf  # a NaN logit is the worst
                    if ratio > worst_ratio or n_prefixes == 1:
                        worst_ratio, worst = ratio, u
    finite = math.isfinite(worst_ratio) and math.isfinite(max_diff)  # a certificate's JSON holds finite numbers only
    return {"prefixes": n_prefixes, "logits": n_logits, "inside_enclosure": inside, "within_tolerance": within,
            "max_abs_diff": max_diff if finite else None, "max_radius": max_radius if math.isfinite(max_radius) else None,
            "worst_ratio": worst_ratio if finite else None, "worst_prefix": worst}
