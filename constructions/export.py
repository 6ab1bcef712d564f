"""Counterexample directories: write a checked network pair to disk, and re-verify one from its files alone.

A directory holds (all written into a temporary sibling directory, then renamed into place, so a
reader never sees half of one):

* ``q1.safetensors``, ``q2.safetensors`` — the R1-completer and the R1-violator, each the plain
  ``state_dict`` of a :class:`~constructions.transformer.DecoderTransformer` with its config as JSON
  metadata;
* ``config.json`` — the case, the method and its knobs, the check tolerance, and each network's
  transformer config (it must agree with the weights' own metadata and shapes);
* ``README.md`` — a model card, with a self-contained plain-PyTorch loader;
* ``certificate.json`` — the exhaustive certificate, with the SHA-256 of every other file.

:func:`verify_directory` refuses (:class:`~theory.errors.InvalidArtifact`) a missing, truncated or
edited file and a config that disagrees with the weights, then rebuilds the case, re-runs the
exhaustive check and returns the fresh certificate; :func:`disagreements` lists where the stored
certificate (not itself hashed) says something the re-check does not.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

import torch

from constructions.check import DEFAULT_TOLERANCE, check_pair
from constructions.compile import CompileConfig, PrefixSet, compile_model, prefix_set
from constructions.transformer import SAFETENSORS_FORMAT, DecoderTransformer, TransformerConfig
from theory.certificate import Certificate, Status, output_dir_problem, replace_directory, write_atomic
from theory.errors import InvalidArtifact, InvalidModelConfig, NonidError

DIRECTORY_FORMAT = "nonid-counterexample-1"
METHODS = ("compile", "distill")
MODEL_FILES = {"q1": "q1.safetensors", "q2": "q2.safetensors"}
ROLES = {"q1": "R1-completer (Q1): copies the data on its support, completes OOD prompts so that R1 holds",
         "q2": "R1-violator (Q2): copies the data on its support, completes OOD prompts so that R1 fails"}
DISTILL_TOLERANCE = 0.01


def load_case(case: str, n_max: int | None = None) -> Any:
    """The rule-extrapolation case a counterexample is built for.  ``anbn`` is the companion paper's
    finite data, all aⁿbⁿ with n = 1..``n_max`` uniform (default 16 here, for CPU speed; the paper's
    is 128), i.e. ``build_case("L3", n_max=…)`` under the name ``anbn``.

    Raises:
        InvalidLanguage: an unknown case.  NonidError: ``n_max`` given to a case without it.
    """
    from constructions.rule_extrapolation import build_case

    if isinstance(case, str) and case.casefold() == "anbn":
        return replace(build_case("L3", n_max=16 if n_max is None else n_max), name="anbn")
    return build_case(case, n_max=n_max)


def case_prefixes(case: Any) -> PrefixSet:
    """Support prefixes, every prompt (and its prefixes) and both constructions' greedy paths."""
    return prefix_set(case.completer, data=case.data, prompts=case.prompts.prompts,
                      max_new_tokens=case.max_new_tokens, follow=[case.violator])


@dataclass(frozen=True)
class BuiltPair:
    """A checked pair: the networks, the prefix set, the certificate, and build notes for the CLI."""

    case: Any
    q1: DecoderTransformer
    q2: DecoderTransformer
    prefixes: PrefixSet
    certificate: Certificate
    tolerance: float
    method: str
    knobs: dict[str, Any]
    notes: tuple[str, ...]


def build_pair(case: Any, method: str = "compile", *, compile_config: CompileConfig = CompileConfig(),
               distill_config: Any = None, device: str = "auto", log: Callable[[str], None] = lambda _m: None,
               checkpoint_dir: str | os.PathLike[str] | None = None) -> BuiltPair:
    """Compile (or distill) the case's completer and violator and check the pair exhaustively.

    Raises:
        InvalidModelConfig: an unknown method or device, bad knobs.
    """
    if method not in METHODS:
        raise InvalidModelConfig(f"method {method!r} is not one of {METHODS}")
    prefixes = case_prefixes(case)
    nets, notes, knobs = {}, [], {}
    converged = True
    if method == "compile":
        knobs = compile_config.to_dict()
        tolerance = DEFAULT_TOLERANCE
        for key, model in (("q1", case.completer), ("q2", case.violator)):
            nets[key], rep = compile_model(model, prefixes, compile_config)
            log(f"compiled {ROLES[key].split(':')[0]}  {rep.parameters:,} params  {rep.seconds:.1f}s")
            notes.append(f"{key}: floor bound TV <= {rep.floor_tv_bound:.2e} on {rep.zero_rows} rows with zeros")
    else:
        from constructions.distill import DistillConfig, distill, resolve_device

        cfg = distill_config if distill_config is not None else DistillConfig(device=device)
        if distill_config is not None and device != "auto":
            cfg = replace(cfg, device=device)
        resolve_device(cfg.device)
        knobs = asdict(cfg)
        tolerance = max(DISTILL_TOLERANCE, cfg.target_tv)
        for key, model in (("q1", case.completer), ("q2", case.violator)):
            ck = None if checkpoint_dir is None else Path(checkpoint_dir) / f"{key}.distill.pt"
            res = distill(model, prefixes, cfg, checkpoint=ck)
            nets[key] = res.net
            converged = converged and res.converged
            log(f"distilled {ROLES[key].split(':')[0]}  {sum(p.numel() for p in res.net.parameters()):,} params  {res.steps} steps  "
                f"max TV {res.max_tv:.4f}  {res.seconds:.1f}s on {res.device}")
            if not res.converged:
                notes.append(f"{key}: step cap {cfg.max_steps} reached at max TV {res.max_tv:.4f} > {cfg.target_tv}")
    log(f"checking {len(prefixes):,} prefixes")
    cert = check_pair(case, nets["q1"], nets["q2"], prefixes, tolerance=tolerance)
    if not converged and cert.status is not Status.VERIFIED:
        cert = replace(cert, status=Status.UNKNOWN,
                       reason="distillation stopped at its step cap before the target tolerance; " + cert.reason)
    return BuiltPair(case, nets["q1"], nets["q2"], prefixes, cert, tolerance, method, knobs, tuple(notes))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _config_json(pair: BuiltPair, n_max: int | None) -> dict[str, Any]:
    return {
        "format": DIRECTORY_FORMAT,
        "case": pair.case.name,
        "case_options": {"n_max": n_max} if n_max is not None else {},
        "method": pair.method,
        "knobs": pair.knobs,
        "tolerance_tv": pair.tolerance,
        "prefixes": len(pair.prefixes),
        "vocabulary": {"inputs": list(pair.q1.config.alphabet) + ["<eos>", "<sos>", "<pad>"],
                       "outputs": list(pair.q1.config.alphabet) + ["<eos>"]},
        "models": {key: {"file": MODEL_FILES[key], "role": ROLES[key], "transformer": net.config.to_dict()}
                   for key, net in (("q1", pair.q1), ("q2", pair.q2))},
    }


def check_output_dir(out: str | os.PathLike[str], overwrite: bool = False) -> None:
    """Refuse an ``out`` that is a file, or a non-empty directory unless ``overwrite``, or one that
    cannot be created: an empty path, ``.``/``..``/``/``, a path under a file, or a folder where we
    may not write (checked up front, so that nothing is built only to fail at the end).

    Raises:
        InvalidArtifact: naming the path.
    """
    problem = output_dir_problem(out)
    if problem:
        raise InvalidArtifact(f"output directory {os.fspath(out)!r} {problem}")
    target = Path(out)
    try:
        if target.is_dir() and any(target.iterdir()):
            if not overwrite:
                raise InvalidArtifact(f"{target}: directory is not empty (pass --force to replace it)")
            try:  # --force deletes the old directory: only ever one that `nonid counterexample` wrote
                ours = json.loads((target / "config.json").read_text(encoding="utf-8")).get("format") == DIRECTORY_FORMAT
            except (OSError, UnicodeDecodeError, ValueError, AttributeError):
                ours = False
            if not ours:
                raise InvalidArtifact(f"{target}: not a directory written by `nonid counterexample` (no config.json of "
                                      f"format {DIRECTORY_FORMAT!r}); --force will not delete it")
    except OSError as e:  # a folder we may not list
        raise InvalidArtifact(f"output directory {str(out)!r} is unusable ({e.strerror or e})") from None


def write_directory(pair: BuiltPair, out: str | os.PathLike[str], *, n_max: int | None = None, overwrite: bool = False) -> Certificate:
    """Write the pair into ``out`` atomically (a temporary sibling directory renamed into place) and
    return the certificate with the files' SHA-256 added.

    Raises:
        InvalidArtifact: ``out`` exists and is not an empty directory (unless ``overwrite``), or is a file.
    """
    from constructions.model_card import model_card

    target = Path(out)
    check_output_dir(target, overwrite)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    except OSError as e:
        raise InvalidArtifact(f"{target}: cannot be created ({e.strerror or e})") from None
    try:
        pair.q1.save(tmp / MODEL_FILES["q1"])
        pair.q2.save(tmp / MODEL_FILES["q2"])
        config = _config_json(pair, n_max)
        write_atomic(tmp / "config.json", json.dumps(config, indent=2, sort_keys=True) + "\n")
        write_atomic(tmp / "README.md", model_card(config, pair.certificate))
        files = {name: _sha256(tmp / name) for name in sorted(["config.json", "README.md", *MODEL_FILES.values()])}
        cert = replace(pair.certificate, quantities={**pair.certificate.quantities, "files_sha256": files})
        write_atomic(tmp / "certificate.json", cert.to_json())
        for name in MODEL_FILES.values():  # the transformer's own atomic save leaves mkstemp's 0600
            os.chmod(tmp / name, 0o644)
        os.chmod(tmp, 0o755)
        replace_directory(tmp, target)
    except OSError as e:  # disk full, permissions changed under us, …: nothing half-written is left
        shutil.rmtree(tmp, ignore_errors=True)
        raise InvalidArtifact(f"{target}: could not be written ({e.strerror or e})") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return cert


# ---- re-verification -------------------------------------------------------------------------------
def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidArtifact(f"{path}: missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InvalidArtifact(f"{path}: not readable JSON ({e})") from None
    if not isinstance(value, dict):
        raise InvalidArtifact(f"{path}: not a JSON object")
    return value


def load_network(path: Path, expected: dict[str, Any]) -> DecoderTransformer:
    """Load a safetensors file and check it against the config ``expected`` (from config.json).

    Raises:
        InvalidArtifact: unreadable/truncated file, metadata or tensor shapes that disagree with ``expected``.
    """
    from safetensors import safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
    except FileNotFoundError:
        raise InvalidArtifact(f"{path}: missing") from None
    except Exception as e:  # safetensors raises its own SafetensorError (and OSError) on a damaged file
        raise InvalidArtifact(f"{path}: not a readable safetensors file ({type(e).__name__}: {e})") from None
    if meta.get("format") != SAFETENSORS_FORMAT or "config" not in meta:
        raise InvalidArtifact(f"{path}: not a nonid transformer file (format {meta.get('format')!r})")
    try:
        own = json.loads(meta["config"])
        config = TransformerConfig.from_dict(expected)
    except (json.JSONDecodeError, TypeError, NonidError) as e:
        raise InvalidArtifact(f"{path}: unusable config ({e})") from None
    if own != config.to_dict():
        diff = sorted(k for k in set(own) | set(config.to_dict()) if own.get(k) != config.to_dict().get(k))
        raise InvalidArtifact(f"{path}: config.json disagrees with the weights' own config on {', '.join(diff)}")
    try:
        return DecoderTransformer.from_state_dict(config, tensors)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise InvalidArtifact(f"{path}: weights do not fit the config ({first[1].strip() if len(first) > 1 else first[0]})") from None


NOISE_FLOOR = 1e-12
"""Below this a number in a pair certificate is float64 rounding (every tolerance the project uses is ≥ 1e−9)."""
_SCIENTIFIC = re.compile(r"^\d(\.\d+)?e[+-]\d+$")


def _numbers_agree(a: float, b: float, rel: float) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=0.0) or (abs(a) <= NOISE_FLOOR and abs(b) <= NOISE_FLOOR)


def _disagree(path: str, a: Any, b: Any, out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k.startswith("worst_") or (path == "quantities." and k == "files_sha256"):
                continue  # where a maximum of rounding noise falls may differ between machines; hashes: checked before
            if k not in a or k not in b:
                out.append(f"{path}{k} {'missing' if k not in a else 'unexpected'}")
            else:
                _disagree(f"{path}{k}.", a[k], b[k], out)
        return
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            _disagree(f"{path}{i}.", x, y, out)
        return
    numbers = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (a, b))
    if numbers and not (isinstance(a, int) and isinstance(b, int)):
        agree = _numbers_agree(float(a), float(b), 1e-3)  # float32 networks re-run on another CPU
    elif isinstance(a, str) and isinstance(b, str) and a != b and all(x == "0" or _SCIENTIFIC.match(x) for x in (a, b)):
        agree = _numbers_agree(float(a), float(b), 1e-2)  # 3 significant digits, rounded outward
    else:
        agree = a == b
    if not agree:
        out.append(f"{path.rstrip('.')}: stored {a!r}, re-check {b!r}")


def disagreements(stored: Certificate, fresh: Certificate) -> list[str]:
    """Where a stored pair certificate says something its re-check does not: the status, check, method,
    claim and every quantity (the files' hashes are checked separately).  Integers, exact rationals and
    text must be equal; floats agree to 1e−3 relative (3-digit bounds to 1e−2), or both below
    :data:`NOISE_FLOOR`; which prefix attains a maximum (``worst_*``) is not compared."""
    out: list[str] = []
    a, b = stored.to_dict(), fresh.to_dict()
    _disagree("", {k: a[k] for k in ("status", "check", "method", "claim", "quantities")},
              {k: b[k] for k in ("status", "check", "method", "claim", "quantities")}, out)
    return out


def verify_directory(directory: str | os.PathLike[str]) -> tuple[Certificate, Certificate]:
    """Re-verify a counterexample directory from its files alone.

    Returns (the stored certificate, the freshly computed one).

    Raises:
        InvalidArtifact: a missing directory or file, a SHA-256 mismatch, a truncated file, or a config
            that disagrees with the weights.
    """
    d = Path(directory)
    if not d.is_dir():
        raise InvalidArtifact(f"{d}: no such directory")
    raw = _read_json(d / "certificate.json")
    try:
        stored = Certificate.from_dict(raw)
    except (ValueError, TypeError) as e:
        raise InvalidArtifact(f"{d / 'certificate.json'}: not a certificate ({e})") from None
    files = stored.quantities.get("files_sha256")
    needed = {"config.json", "README.md", *MODEL_FILES.values()}
    if not isinstance(files, dict) or not needed <= set(files):
        raise InvalidArtifact(f"{d / 'certificate.json'}: does not list the SHA-256 of {', '.join(sorted(needed))}")
    for name in sorted(files):
        path = d / name
        if not path.is_file():
            raise InvalidArtifact(f"{path}: missing")
        found = _sha256(path)
        if found != files[name]:
            raise InvalidArtifact(f"{path}: SHA-256 does not match the certificate (expected {files[name][:8]}…, found {found[:8]}…)")
    config = _read_json(d / "config.json")
    if config.get("format") != DIRECTORY_FORMAT:
        raise InvalidArtifact(f"{d / 'config.json'}: format {config.get('format')!r} is not {DIRECTORY_FORMAT!r}")
    try:
        models = config["models"]
        nets = {key: load_network(d / MODEL_FILES[key], models[key]["transformer"]) for key in ("q1", "q2")}
        case = load_case(config["case"], **config.get("case_options", {}))
        tolerance = config["tolerance_tv"]
    except (KeyError, TypeError) as e:
        raise InvalidArtifact(f"{d / 'config.json'}: missing or malformed field {e}") from None
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 <= tolerance < 1:
        raise InvalidArtifact(f"{d / 'config.json'}: tolerance_tv {tolerance!r} is not a number in [0, 1)")
    prefixes = case_prefixes(case)
    with torch.no_grad():
        fresh = check_pair(case, nets["q1"], nets["q2"], prefixes, tolerance=tolerance, check_name=stored.check)
    return stored, fresh
