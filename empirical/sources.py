"""Where a network to audit comes from: a Hugging Face folder, a nonid transformer file, a TorchScript
file, or a Python factory with a weights file.

:func:`source_problem` looks at the path (and the factory's spelling) without importing torch, so the
command line refuses a bad source before any heavy work; :func:`load_source` then loads it.

* **Hugging Face folder** — a folder whose ``config.json`` names a ``model_type``: loaded with
  ``AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)`` in float64 (needs the ``[hf]``
  extra); its tokenizer, when the folder has one, gives the default token map and its
  ``n_positions`` / ``max_position_embeddings`` the default context length.
* **nonid transformer** — a ``.safetensors`` file written by :meth:`constructions.transformer.DecoderTransformer.save`:
  its own token layout and ``max_len`` are the defaults.
* **TorchScript** — a file saved by ``torch.jit.save`` (a zip archive): loaded with ``torch.jit.load``.
* **factory** — ``--factory MODULE:FUNCTION`` (the module importable from the working directory):
  ``FUNCTION()`` returns a ``torch.nn.Module`` (or any callable ids → logits); the path is then its weights,
  a safetensors file or a ``torch.save`` state dict (read with ``weights_only=True``), loaded strictly.
"""

from __future__ import annotations

import importlib
import json
import re
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from theory.errors import InvalidArtifact, InvalidModelConfig

KINDS = ("hf", "nonid", "torchscript", "factory")
_FACTORY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
HF_HINT = "pip install -e '.[hf]'"


@dataclass(frozen=True)
class Source:
    """A checked source: its kind, path and (for ``factory``) the factory spelling."""

    kind: str
    path: Path
    factory: str | None = None


def _safetensors_metadata(path: Path) -> dict[str, Any] | None:
    """The ``__metadata__`` of a safetensors file (None when the file is not one)."""
    try:
        with path.open("rb") as f:
            head = f.read(8)
            if len(head) != 8:
                return None
            (n,) = struct.unpack("<Q", head)
            if n > 100_000_000:
                return None
            header = json.loads(f.read(n))
    except (OSError, ValueError):
        return None
    if not isinstance(header, dict):
        return None
    meta = header.get("__metadata__") or {}
    return meta if isinstance(meta, dict) else {}


def source_problem(path: str, factory: str | None = None) -> tuple[Source | None, str]:
    """(the source, '') or (None, one line saying what is wrong), without importing torch."""
    p = Path(path)
    if factory is not None:
        if not _FACTORY.match(factory):
            return None, f"factory {factory!r} is not MODULE:FUNCTION (e.g. mymodels:build)"
        if not p.is_file():
            return None, f"{p}: no such weights file (the factory's weights)"
        return Source("factory", p, factory), ""
    if p.is_dir():
        cfg = p / "config.json"
        if not cfg.is_file():
            return None, f"{p}: not a model folder (no config.json; a Hugging Face folder has one)"
        try:
            raw = json.loads(cfg.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError) as e:
            return None, f"{cfg}: not readable JSON ({e})"
        if not isinstance(raw, dict):
            return None, f"{cfg}: not a JSON object"
        fmt = raw.get("format")
        if isinstance(fmt, str) and fmt.startswith("nonid"):
            return None, (f"{p} is a nonid counterexample folder, not one model: audit one of its models "
                          f"({p / 'q1.safetensors'}, or an exported {p / 'hf' / 'q1'})")
        if "model_type" not in raw:
            return None, f"{p}: config.json names no model_type, so this is not a Hugging Face model folder"
        if importlib.util.find_spec("transformers") is None:
            return None, f"{p} is a Hugging Face folder; reading it needs transformers ({HF_HINT})"
        return Source("hf", p), ""
    if not p.is_file():
        return None, f"{p}: no such file or folder"
    meta = _safetensors_metadata(p)
    if meta is not None:
        if str(meta.get("format", "")).startswith("nonid-decoder-transformer"):
            return Source("nonid", p), ""
        return None, f"{p}: a safetensors file of bare weights; say which network they belong to with --factory MODULE:FUNCTION"
    try:
        with p.open("rb") as f:
            magic = f.read(4)
    except OSError as e:
        return None, f"{p}: cannot be read ({e.strerror or e})"
    if magic[:2] == b"PK":
        return Source("torchscript", p), ""
    return None, f"{p}: neither a nonid transformer, a TorchScript file nor a Hugging Face folder"


@dataclass
class Loaded:
    """A loaded network, with the defaults its source implies (None where it implies none)."""

    network: Any
    name: str
    tokenizer: Any = None
    context: int | None = None
    native_alphabet: str | None = None


def load_source(src: Source, *, device: str = "cpu") -> Loaded:
    """Load ``src`` (module docstring).

    Raises:
        InvalidArtifact: the file or folder cannot be loaded as what it claims to be (named, with why).
    """
    import torch

    if src.kind == "nonid":
        from constructions.transformer import DecoderTransformer

        try:
            net = DecoderTransformer.load(src.path)
        except (OSError, ValueError, RuntimeError) as e:
            raise InvalidArtifact(f"{src.path}: not a loadable nonid transformer ({_first(e)})") from None
        return Loaded(net, src.path.name, None, net.config.max_len, net.config.alphabet)
    if src.kind == "hf":
        try:
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError:
            raise InvalidArtifact(f"{src.path}: reading a Hugging Face folder needs transformers ({HF_HINT})") from None
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # one line per step of our own, not the library's bars
        hf_logging.set_verbosity_error()
        try:
            model = AutoModelForCausalLM.from_pretrained(str(src.path), local_files_only=True, dtype=torch.float64)
        except (OSError, ValueError, KeyError, RuntimeError) as e:
            raise InvalidArtifact(f"{src.path}: not a loadable Hugging Face causal LM ({_first(e)})") from None
        tokenizer = None
        if any((src.path / n).is_file() for n in ("tokenizer.json", "tokenizer_config.json", "vocab.json")):
            try:
                tokenizer = AutoTokenizer.from_pretrained(str(src.path), local_files_only=True)
            except (OSError, ValueError, KeyError) as e:
                raise InvalidArtifact(f"{src.path}: its tokenizer does not load ({_first(e)})") from None
        cfg = model.config
        ctx = getattr(cfg, "n_positions", None) or getattr(cfg, "max_position_embeddings", None)
        return Loaded(model.eval(), f"{src.path.name} ({type(model).__name__})", tokenizer, ctx)
    if src.kind == "torchscript":
        try:
            net = torch.jit.load(str(src.path), map_location=device)
        except (RuntimeError, ValueError) as e:
            raise InvalidArtifact(f"{src.path}: not a loadable TorchScript file ({_first(e)})") from None
        return Loaded(net, f"{src.path.name} (TorchScript)")
    assert src.factory is not None
    mod_name, fn_name = src.factory.split(":")
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")
    try:
        mod = importlib.import_module(mod_name)
    except Exception as e:  # noqa: BLE001 - the user's module: any failure to import it is one line naming it
        raise InvalidArtifact(f"factory module {mod_name!r} cannot be imported ({type(e).__name__}: {_first(e)})") from None
    fn = getattr(mod, fn_name, None)
    if not callable(fn):
        raise InvalidArtifact(f"factory {src.factory!r}: {mod_name} has no function {fn_name!r}")
    try:
        net = fn()
    except Exception as e:  # noqa: BLE001 - the user's factory: its failure is one line naming it
        raise InvalidArtifact(f"factory {src.factory}() raised {type(e).__name__}: {_first(e)}") from None
    if isinstance(net, torch.nn.Module):
        state = _read_state(src.path)
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise InvalidArtifact(f"{src.path}: the weights do not fit {src.factory}() ({_first(e)})") from None
    elif not callable(net):
        raise InvalidModelConfig(f"factory {src.factory!r} returned a {type(net).__name__}, not a module or callable")
    return Loaded(net, f"{src.path.name} ({src.factory})")


def _read_state(path: Path) -> dict[str, Any]:
    import torch

    if _safetensors_metadata(path) is not None:
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure is one bad-input line
        raise InvalidArtifact(f"{path}: not a state dict torch can read with weights_only=True ({_first(e)})") from None
    if not isinstance(state, dict):
        raise InvalidArtifact(f"{path}: holds a {type(state).__name__}, not a state dict")
    return state


def _first(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__
