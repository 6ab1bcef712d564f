"""Counterexample directories: write a checked network pair to disk, and re-verify one from its files alone.

A directory holds (all written into a temporary sibling directory, then renamed into place, so a
reader never sees half of one):

* ``q1.safetensors``, ``q2.safetensors`` — the R1-completer and the R1-violator, each the plain
  ``state_dict`` of a :class:`~constructions.transformer.DecoderTransformer` with its config as JSON
  metadata;
* ``config.json`` — the case, the method and its knobs, the check tolerance, and each network's
  transformer config (it must agree with the weights' own metadata and shapes);
* ``README.md`` — a model card, with a self-contained plain-PyTorch loader;
* ``certificate.json`` — the exhaustive certificate, with the SHA-256 of every other file;
* optionally ``hf/`` — the pair as two Hugging Face folders (``hf/q1``, ``hf/q2``) and their own
  ``hf/certificate.json`` (the re-check through transformers, with every exported file's SHA-256), whose
  SHA-256 the pair certificate records under ``exports`` (:mod:`constructions.hf_export`; written by
  ``write_directory(..., export="hf")`` or added later by :func:`add_export`).

:func:`verify_directory` refuses (:class:`~theory.errors.InvalidArtifact`) a missing, truncated or
edited file and a config that disagrees with the weights, then rebuilds the case, re-runs the
exhaustive check and returns the fresh certificate; :func:`disagreements` lists where the stored
certificate (not itself hashed) says something the re-check does not.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

import torch

from constructions.artifact_files import (
    DIRECTORY_FORMAT,
    EARLIER_FORMATS,
    EXPORT_TARGETS,
    MAX_N_MAX,
    check_output_dir,
    export_unavailable,
)
from constructions.check import DEFAULT_KL_BOUND, DEFAULT_TOLERANCE, check_pair
from constructions.compile import CompileConfig, PrefixSet, compile_model, prefix_set
from constructions.transformer import SAFETENSORS_FORMAT, DecoderTransformer, TransformerConfig
from theory.certificate import Certificate, Status, library_versions
from theory.errors import InvalidArtifact, InvalidModelConfig, NonidError
from theory.fileio import file_sha256, make_temp_dir, replace_directory, write_atomic
from theory.validation import check_int

METHODS = ("compile", "distill", "compact")
MODEL_FILES = {"q1": "q1.safetensors", "q2": "q2.safetensors"}
ROLES = {"q1": "R1-completer (Q1): copies the data on its support, completes OOD prompts so that R1 holds",
         "q2": "R1-violator (Q2): copies the data on its support, completes OOD prompts so that R1 fails"}
DISTILL_TOLERANCE = 0.02
DISTILL_KL_BOUND = 0.05
METHOD_BOUNDS: dict[str, tuple[float, float]] = {"compile": (DEFAULT_TOLERANCE, DEFAULT_KL_BOUND),
                                                 "distill": (DISTILL_TOLERANCE, DISTILL_KL_BOUND),
                                                 "compact": (DEFAULT_TOLERANCE, DEFAULT_KL_BOUND)}
"""The verdict parameters of each method, (max TV at every prefix, KL(P ‖ Q) upper bound in nats per
sequence): one documented value each, never read from a file.  A compiled network matches its
construction up to its logit floor (TV ~1e−17) and its enclosures are ~1e−12 wide.  A distilled one
is trained until its float max TV is ≤ 0.01 (the distiller's default target); the check allows 0.02,
because the enclosures of an ordinary pre-LN network are up to ~1e−3 wide in log-probability, and
0.05 nats of KL (BENCHMARKS.md, "Rigorous evaluator", has the measured values)."""


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


# Measured on the project's 2-core machine (benchmarks/bench_steps.py, BENCHMARKS.md "Time estimates: the
# measured rates"): a compiled network is a lookup table with a unit per prefix, and checking it on
# rigorous enclosures evaluates every prefix, so a run's time grows as prefixes x parameters — about this
# many seconds per (prefix, parameter) of each model, after a start of COMPILE_START_S (fitted to
# anbn, L4 and L6: 1.2 M to 11 M parameters in all, with the exact re-check of the pair included; a rough
# rate, the estimate says "about").
COMPILE_SECONDS_PER_PREFIX_PARAMETER = 2.8e-9
COMPILE_START_S = 2.0


@dataclass(frozen=True)
class PairEstimate:
    """What building a pair will take, known before any weight is made: ``parameters`` per model,
    ``disk_bytes`` of the two weight files, ``seconds`` a rough wall time on 2 cores (compile only;
    distillation is bounded by its step cap instead), ``prefixes`` checked."""

    parameters: int
    disk_bytes: int
    seconds: float | None
    prefixes: int

    def line(self) -> str:
        mb = self.disk_bytes / 1e6
        when = f", about {self.seconds:.0f} s on 2 cores" if self.seconds is not None else ""
        return (f"estimate: 2 models x {self.parameters:,} parameters, {mb:,.1f} MB on disk, "
                f"{self.prefixes:,} prefixes to check{when}")


# A compact pair's check grows with the abstract states (about T² of them per model) and, for the exact
# check on the case's prefixes, with those prefixes (measured: benchmarks/bench_compact.py).
COMPACT_SECONDS_PER_STATE = 1.0e-4
COMPACT_SECONDS_PER_PREFIX = 1.0e-3


def estimate_pair(case: Any, prefixes: PrefixSet, method: str = "compile", distill_config: Any = None,
                  compact_config: Any = None) -> PairEstimate:
    """The size of the pair :func:`build_pair` would make for ``case`` (shapes only: no weights are
    computed; the model is laid out on torch's ``meta`` device)."""
    import torch

    cfg = planned_config(case, prefixes, method, distill_config, compact_config)
    with torch.device("meta"):
        net = DecoderTransformer(cfg)
    n = sum(p.numel() for p in net.parameters())
    width = torch.finfo(getattr(torch, cfg.dtype)).bits // 8
    seconds = (COMPILE_START_S + 2 * n * len(prefixes) * COMPILE_SECONDS_PER_PREFIX_PARAMETER
               if method == "compile" else None)
    if method == "compact":
        T = cfg.max_len - 1
        seconds = COMPILE_START_S + 2 * (1.5 * T * T * COMPACT_SECONDS_PER_STATE + len(prefixes) * COMPACT_SECONDS_PER_PREFIX)
    return PairEstimate(parameters=n, disk_bytes=2 * n * width, seconds=seconds, prefixes=len(prefixes))


def planned_config(case: Any, prefixes: PrefixSet, method: str = "compile", distill_config: Any = None,
                   compact_config: Any = None) -> TransformerConfig:
    """The transformer config :func:`build_pair` will give both networks (known before any weight is made)."""
    from constructions.compile import compiled_config

    if method == "compact":
        from constructions.compile.compact import CompactConfig, compact_transformer_config

        return compact_transformer_config((compact_config or CompactConfig()).context)
    if method == "compile":
        return compiled_config(str(case.completer.alphabet), prefixes)
    from constructions.distill import DistillConfig, student_config

    return student_config(str(case.completer.alphabet), prefixes, distill_config or DistillConfig())


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
               checkpoint_dir: str | os.PathLike[str] | None = None, compact_config: Any = None) -> BuiltPair:
    """Compile (or distill) the case's completer and violator and check the pair exhaustively.

    Raises:
        InvalidModelConfig: an unknown method or device, bad knobs.
    """
    if method not in METHODS:
        raise InvalidModelConfig(f"method {method!r} is not one of {METHODS}")
    prefixes = case_prefixes(case)
    nets, notes = {}, []
    knobs: dict[str, Any] = {}
    converged = True
    if method == "compact":
        from constructions.compile.compact import CompactConfig, compile_compact

        cc = compact_config or CompactConfig()
        knobs = cc.to_dict()
        for key, role in (("q1", "completer"), ("q2", "violator")):
            nets[key], crep = compile_compact(case.data, role, cc)
            log(f"compiled {ROLES[key].split(':')[0]}  {crep.parameters:,} params  {crep.seconds:.2f}s")
    elif method == "compile":
        knobs = compile_config.to_dict()
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
    tolerance, kl_bound = METHOD_BOUNDS[method]
    cert = _pair_certificate(method, case, nets["q1"], nets["q2"], prefixes, tolerance, kl_bound, None)
    if not converged and cert.status is not Status.VERIFIED:
        cert = replace(cert, status=Status.UNKNOWN,
                       reason="distillation stopped at its step cap before the target tolerance; " + cert.reason)
    return BuiltPair(case, nets["q1"], nets["q2"], prefixes, cert, tolerance, method, knobs, tuple(notes))


def _pair_certificate(method: str, case: Any, q1: DecoderTransformer, q2: DecoderTransformer, prefixes: PrefixSet,
                      tolerance: float, kl_bound: float, check_name: str | None) -> Certificate:
    """The method's verdict: compiled networks are evaluated exactly (their verdict carries no float
    assumption), distilled ones (trained weights, unequal attention rows) on the rigorous enclosures,
    compact ones exactly on the prefix set and by the abstract-state check on every prefix up to T."""
    if method == "compact":
        from constructions.compact_pair import compact_pair_certificate

        return compact_pair_certificate(case, q1, q2, prefixes, tolerance=tolerance, kl_bound=kl_bound,
                                        check_name=check_name)
    return check_pair(case, q1, q2, prefixes, tolerance=tolerance, kl_bound=kl_bound, check_name=check_name,
                      exact=method == "compile")


def _config_json(pair: BuiltPair, n_max: int | None) -> dict[str, Any]:
    return {
        "format": DIRECTORY_FORMAT,
        "case": pair.case.name,
        "case_options": {"n_max": n_max} if n_max is not None else {},
        "method": pair.method,
        "knobs": pair.knobs,
        "tolerance_tv": pair.tolerance,
        "kl_bound": METHOD_BOUNDS[pair.method][1],
        "prefixes": len(pair.prefixes),
        "vocabulary": {"inputs": list(pair.q1.config.alphabet) + ["<eos>", "<sos>", "<pad>"],
                       "outputs": list(pair.q1.config.alphabet) + ["<eos>"]},
        "models": {key: {"file": MODEL_FILES[key], "role": ROLES[key], "transformer": net.config.to_dict()}
                   for key, net in (("q1", pair.q1), ("q2", pair.q2))},
    }


def export_refusal(to: str, configs: list[TransformerConfig]) -> str:
    """Why the pair of ``configs`` cannot be exported to ``to`` ('' when it can), before any weight is touched."""
    why = export_unavailable(to)
    if why:
        return why
    if to == "tl":
        from constructions.tl_export import export_problem
    else:
        from constructions.hf_export import export_problem

    for key, cfg in zip(("q1", "q2"), configs):
        problem = export_problem(cfg)
        if problem:
            return f"{key} cannot be exported to {'Hugging Face' if to == 'hf' else 'TransformerLens'}: {problem}"
    return ""


def _write_export(tmp: Path, to: str, case: Any, prefixes: PrefixSet, nets: dict[str, DecoderTransformer],
                  method: str, check: str) -> dict[str, Any]:
    """Write the export ``to`` into ``tmp/<to>`` and return the pair certificate's ``exports`` entry."""
    if to == "tl":
        import importlib

        tl = importlib.import_module("constructions.tl_export")
        (tmp / "tl").mkdir()
        for key in ("q1", "q2"):
            tl.export_tl(nets[key], tmp / "tl" / key)
        cert = _tl_certificate(tmp / "tl", nets, check, prefixes)
        write_atomic(tmp / "tl" / "certificate.json", cert.to_json())
    else:
        from constructions.hf_export import write_hf_export

        cert = write_hf_export(tmp / to, case, prefixes, nets, method, check)
    return {"certificate_sha256": file_sha256(tmp / to / "certificate.json"), "status": cert.status.value}


def _tl_certificate(root: Path, nets: dict[str, DecoderTransformer], check: str, prefixes: PrefixSet) -> Certificate:
    """The TransformerLens export's certificate: :func:`constructions.tl_export.verify_tl` of each folder
    against the pair's network, over the maximal words of the pair's checked prefix set.

    What it certifies, exactly: the weights TransformerLens holds after loading each folder are bitwise
    the pair's (so the pair's own certificate, from rigorous enclosures of nonid's architecture, covers
    the function those weights define); TransformerLens's own float64 forward is cross-checked against
    that enclosure at every checked prefix — a float test of its code path, not a proof."""
    import importlib

    tl = importlib.import_module("constructions.tl_export")
    words = tl.maximal_words(prefixes.prefixes)
    results = {key: tl.verify_tl(root / key, nets[key], words=words) for key in ("q1", "q2")}
    files = {f"{key}/{name}": file_sha256(root / key / name) for key in ("q1", "q2") for name in tl.TL_FILES}
    statuses = {str(r.get("status")) for r in results.values()}
    status = (Status.VERIFIED if statuses == {"verified"} else Status.FALSIFIED if "falsified" in statuses
              else Status.UNKNOWN)
    bad = [f"{k}: {r.get('reason')}" for k, r in results.items() if r.get("status") != "verified"]
    return Certificate(check="tl-export-" + check.removeprefix("counterexample-"),
                       claim="The TransformerLens folders hold the pair's weights bitwise (so the pair's certificate "
                             "covers the function they define); TransformerLens's float64 forward was cross-checked "
                             f"against their rigorous enclosure at every prefix of {len(prefixes.prefixes):,} checked",
                       status=status, method="exact", detail="weights read back from TransformerLens and compared "
                       "bitwise; its forward cross-checked at every checked prefix", reason="; ".join(bad),
                       quantities={**results, "files_sha256": files},
                       assumptions=("TransformerLens's forward computes nonid's architecture: a float64 cross-check at "
                                    "every checked prefix (|z_TL - m| <= 2r for the enclosure <m, r>), not an enclosure "
                                    "of TransformerLens's own code",),
                       versions=library_versions("torch", "transformer-lens"))


def write_directory(pair: BuiltPair, out: str | os.PathLike[str], *, n_max: int | None = None, overwrite: bool = False,
                    export: str | None = None) -> Certificate:
    """Write the pair into ``out`` atomically (a temporary sibling directory renamed into place) and
    return the certificate with the files' SHA-256 added.  With ``export`` (``"hf"``) the library export
    and its re-check are written into the same temporary folder (module docstring) and recorded under
    the certificate's ``exports``.

    Raises:
        InvalidArtifact: ``out`` exists and is not an empty directory (unless ``overwrite``), or is a file.
        InapplicableOption / InvalidModelConfig: an export that cannot run, or networks it cannot hold.
    """
    if export is not None:
        why = export_refusal(export, [pair.q1.config, pair.q2.config])
        if why:
            from theory.errors import InapplicableOption

            raise (InvalidModelConfig if export_unavailable(export) == "" else InapplicableOption)(why)
    from constructions.model_card import model_card

    target = Path(out)
    check_output_dir(target, overwrite)
    try:
        tmp = make_temp_dir(target)
    except OSError as e:
        raise InvalidArtifact(f"{target}: cannot be created ({e.strerror or e})") from None
    try:
        pair.q1.save(tmp / MODEL_FILES["q1"])
        pair.q2.save(tmp / MODEL_FILES["q2"])
        config = _config_json(pair, n_max)
        write_atomic(tmp / "config.json", json.dumps(config, indent=2, sort_keys=True) + "\n")
        # the card is made from the certificate as it will be read back, so a re-check can regenerate it
        stored_form = Certificate.from_dict(json.loads(pair.certificate.to_json()))
        write_atomic(tmp / "README.md", model_card(config, stored_form))
        files = {name: file_sha256(tmp / name) for name in sorted(["config.json", "README.md", *MODEL_FILES.values()])}
        quantities = {**pair.certificate.quantities, "files_sha256": files}
        if export is not None:
            entry = _write_export(tmp, export, pair.case, pair.prefixes, {"q1": pair.q1, "q2": pair.q2}, pair.method,
                                  pair.certificate.check)
            quantities["exports"] = {export: entry}
        cert = replace(pair.certificate, quantities=quantities)
        write_atomic(tmp / "certificate.json", cert.to_json())
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
def _read_json(path: Path, limits: Any = None) -> dict[str, Any]:
    """The JSON object in ``path``, read within bounds (:mod:`theory.jsonio`): ``limits``, or by default
    :data:`~theory.jsonio.SMALL_FILE_LIMITS` for ``config.json`` and
    :data:`~theory.jsonio.CERTIFICATE_LIMITS` for anything else.

    Raises:
        InvalidArtifact: missing, too large, not bounded JSON (one line naming the limit or value), or
            not a JSON object.
    """
    from theory.jsonio import CERTIFICATE_LIMITS, SMALL_FILE_LIMITS, read_json_file

    if limits is None:
        limits = SMALL_FILE_LIMITS if path.name == "config.json" else CERTIFICATE_LIMITS
    value = read_json_file(path, limits=limits)
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
        from theory.jsonio import SMALL_FILE_LIMITS, parse_json_text

        own = parse_json_text(meta["config"], what=f"{path} (config metadata)", error=InvalidArtifact,
                              limits=SMALL_FILE_LIMITS)
        config = TransformerConfig.from_dict(expected)
    except (TypeError, NonidError) as e:
        raise InvalidArtifact(f"{path}: unusable config ({e})") from None
    if own != config.to_dict():
        diff = sorted(k for k in set(own) | set(config.to_dict()) if own.get(k) != config.to_dict().get(k))
        raise InvalidArtifact(f"{path}: config.json disagrees with the weights' own config on {', '.join(diff)}")
    try:
        return DecoderTransformer.from_state_dict(config, tensors)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise InvalidArtifact(f"{path}: weights do not fit the config ({first[1].strip() if len(first) > 1 else first[0]})") from None


def disagreements(stored: Certificate, fresh: Certificate, directory: str | os.PathLike[str] | None = None) -> list[str]:
    """Where a stored pair certificate says something its re-check does not, field by field: status,
    check, claim, method, detail, reason, assumptions and every quantity (the files' hashes are checked
    separately; only wall times are left out).  Everything must be *equal*: the bounds are stored
    rounded outward to three digits from rigorous enclosures, so a re-check on any machine re-derives
    the same strings; there is no noise floor and no percent slack.  With ``directory``, its model card
    (README.md) must also be the one config.json and the re-check generate."""
    from constructions.model_card import model_card

    out: list[str] = []
    if directory is not None:
        d = Path(directory)
        bare = replace(fresh, quantities={k: v for k, v in fresh.quantities.items() if k != "files_sha256"})
        bare = Certificate.from_dict(json.loads(bare.to_json()))
        try:
            card = (d / "README.md").read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            card = f"<unreadable: {e}>"
        if card != model_card(_read_json(d / "config.json"), bare):
            out.append("README.md: not the model card that config.json and the re-check generate")
    a, b = stored.to_dict(), fresh.to_dict()
    for side in (a, b):  # the hashes, and the exports' own certificates, are checked separately
        side.get("quantities", {}).pop("files_sha256", None)
        side.get("quantities", {}).pop("exports", None)

    def walk(path: str, x: Any, y: Any) -> None:
        if isinstance(x, dict) and isinstance(y, dict):
            for k in sorted(set(x) | set(y)):
                if k not in x or k not in y:
                    out.append(f"{path}{k} {'missing' if k not in x else 'unexpected'}")
                else:
                    walk(f"{path}{k}.", x[k], y[k])
        elif isinstance(x, list) and isinstance(y, list) and len(x) == len(y):
            for i, (u, v) in enumerate(zip(x, y)):
                walk(f"{path}{i}.", u, v)
        elif type(x) is not type(y) or x != y:
            out.append(f"{path.rstrip('.')}: stored {x!r}, re-check {y!r}")

    walk("", {k: v for k, v in a.items() if k not in ("elapsed_s", "timings")},
         {k: v for k, v in b.items() if k not in ("elapsed_s", "timings")})
    return out


def _case_options(config: dict[str, Any], nets: dict[str, DecoderTransformer], where: Path) -> dict[str, Any]:
    """The case options of config.json, bounded before anything is built: only ``n_max``, an int in
    [1, MAX_N_MAX] whose words (aⁿbⁿ: 2n symbols, plus the completions) fit the networks' positions."""
    opts = config.get("case_options", {})
    if not isinstance(opts, dict) or set(opts) - {"n_max"}:
        raise InvalidArtifact(f"{where}: case_options {opts!r} holds something other than n_max")
    n = opts.get("n_max")
    if n is None:
        return {}
    check_int(n, f"{where}: case_options n_max =", minimum=1, maximum=MAX_N_MAX, error=InvalidArtifact)
    fit = min(net.config.max_len for net in nets.values()) - 1
    if 2 * n > fit:
        raise InvalidArtifact(f"{where}: case_options n_max = {n} needs words of {2 * n} symbols; the networks' "
                              f"max_len leaves {fit}")
    return {"n_max": n}


@dataclass(frozen=True)
class StoredPair:
    """A pair folder read back and checked at the file level (hashes, config vs weights, case options):
    the stored certificate, the method, the networks, the rebuilt case and its prefix set."""

    directory: Path
    stored: Certificate
    method: str
    nets: dict[str, DecoderTransformer]
    case: Any
    prefixes: PrefixSet


def verify_directory(directory: str | os.PathLike[str]) -> tuple[Certificate, Certificate]:
    """Re-verify a counterexample directory from its files alone.  The verdict parameters come from the
    recorded method (:data:`METHOD_BOUNDS`); a config.json that states others is refused, not obeyed.
    (:func:`disagreements` with the directory also regenerates the model card and compares it.)
    Export folders are checked at the file level here (recorded, hash of their certificate) and
    re-checked by :func:`verify_exports`.

    Returns (the stored certificate, the freshly computed one).

    Raises:
        InvalidArtifact: a missing directory or file, a SHA-256 mismatch, a truncated file, a config
            that disagrees with the weights, a tolerance that is not the method's, case options out of
            range, an export folder the certificate does not record (or one it records that is missing).
    """
    return verify_pair(read_pair(directory))


def verify_pair(sp: StoredPair) -> tuple[Certificate, Certificate]:
    """The exhaustive re-check of a pair read by :func:`read_pair`: (stored, fresh) certificates."""
    tolerance, kl_bound = METHOD_BOUNDS[sp.method]
    with torch.no_grad():
        fresh = _pair_certificate(sp.method, sp.case, sp.nets["q1"], sp.nets["q2"], sp.prefixes, tolerance, kl_bound,
                                  sp.stored.check)
    return sp.stored, fresh


def recorded_exports(d: Path, stored: Certificate) -> dict[str, str]:
    """The exports the pair certificate records ({target: SHA-256 of its certificate.json}), checked
    against the folder: each recorded one present with that hash, no unrecorded export folder.

    Raises:
        InvalidArtifact: naming the folder or file."""
    from constructions.artifact_files import EXPORT_DIRS

    where = d / "certificate.json"
    raw = stored.quantities.get("exports", {})
    if not isinstance(raw, dict) or any(k not in EXPORT_TARGETS for k in raw):
        raise InvalidArtifact(f"{where}: exports {str(raw)[:60]!r} names something other than {', '.join(EXPORT_TARGETS)}")
    out: dict[str, str] = {}
    for to, entry in raw.items():
        digest = entry.get("certificate_sha256") if isinstance(entry, dict) else None
        if not isinstance(digest, str) or len(digest) != 64:
            raise InvalidArtifact(f"{where}: exports[{to!r}] has no SHA-256 of its certificate")
        path = d / to / "certificate.json"
        if not path.is_file() or path.is_symlink():
            raise InvalidArtifact(f"{path}: missing (the certificate records a {to} export)")
        found = file_sha256(path)
        if found != digest:
            raise InvalidArtifact(f"{path}: SHA-256 does not match the certificate (expected {digest[:8]}…, found {found[:8]}…)")
        out[to] = digest
    for to in EXPORT_DIRS:
        if to not in out and os.path.lexists(d / to):
            raise InvalidArtifact(f"{d / to}: an export folder that {where} does not record")
    return out


def verify_exports(sp: StoredPair) -> dict[str, tuple[Certificate, Certificate]]:
    """Re-check every export of a pair folder read by :func:`read_pair`: {target: (stored, fresh)}.

    Raises:
        InvalidArtifact: as :func:`recorded_exports` and :func:`constructions.hf_export.verify_hf_export`.
        InapplicableOption: the library an export needs is not installed."""
    out: dict[str, tuple[Certificate, Certificate]] = {}
    for to in recorded_exports(sp.directory, sp.stored):
        why = export_unavailable(to)
        if why:
            from theory.errors import InapplicableOption

            raise InapplicableOption(f"re-checking {sp.directory / to}: {why}")
        if to == "tl":
            stored = Certificate.from_dict(_read_json(sp.directory / "tl" / "certificate.json"))
            out[to] = (stored, _tl_certificate(sp.directory / "tl", sp.nets, sp.stored.check, sp.prefixes))
            continue
        from constructions.hf_export import verify_hf_export

        out[to] = verify_hf_export(sp.directory / to, sp.case, sp.prefixes, sp.method, sp.stored.check)
    return out


def read_pair(directory: str | os.PathLike[str]) -> StoredPair:
    """A pair folder read and checked at the file level (everything :func:`verify_directory` refuses
    before the exhaustive check), with the case rebuilt.

    Raises:
        InvalidArtifact: as :func:`verify_directory`.
    """
    from constructions.artifact_files import folder_to_check_problem

    d = Path(directory)
    problem = folder_to_check_problem(d)
    if problem:
        raise InvalidArtifact(problem)
    raw = _read_json(d / "certificate.json")
    try:
        stored = Certificate.from_dict(raw)
    except (ValueError, TypeError, NonidError) as e:
        raise InvalidArtifact(f"{d / 'certificate.json'}: not a certificate ({e})") from None
    from constructions.artifact_files import check_files_on_disk, check_files_sha256

    check_files_on_disk(check_files_sha256(stored.quantities.get("files_sha256"), d), d)
    config = _read_json(d / "config.json")
    if config.get("format") in EARLIER_FORMATS:
        raise InvalidArtifact(f"{d / 'config.json'}: format {config.get('format')!r} was written by an earlier nonid, "
                              "whose check read one float pass; rebuild it with `nonid counterexample`")
    if config.get("format") != DIRECTORY_FORMAT:
        raise InvalidArtifact(f"{d / 'config.json'}: format {config.get('format')!r} is not {DIRECTORY_FORMAT!r}")
    method = config.get("method")
    if not isinstance(method, str) or method not in METHOD_BOUNDS:
        raise InvalidArtifact(f"{d / 'config.json'}: method {method!r} is not one of {', '.join(METHOD_BOUNDS)}")
    tolerance, kl_bound = METHOD_BOUNDS[method]
    for key, want in (("tolerance_tv", tolerance), ("kl_bound", kl_bound)):
        got = config.get(key)
        if isinstance(got, bool) or not isinstance(got, (int, float)) or got != want:
            raise InvalidArtifact(f"{d / 'config.json'}: {key} {got!r} is not the {method} method's {want!r} "
                                  "(verdict parameters come from the method, not from the file)")
    try:
        models = config["models"]
        nets = {key: load_network(d / MODEL_FILES[key], models[key]["transformer"]) for key in ("q1", "q2")}
        case_name = config["case"]
    except (KeyError, TypeError) as e:
        raise InvalidArtifact(f"{d / 'config.json'}: missing or malformed field {e}") from None
    if not isinstance(case_name, str):
        raise InvalidArtifact(f"{d / 'config.json'}: case {case_name!r} is not a name")
    case = load_case(case_name, **_case_options(config, nets, d / "config.json"))
    prefixes = case_prefixes(case)
    if prefixes.max_length + 1 > min(net.config.max_len for net in nets.values()):
        raise InvalidArtifact(f"{d}: the case's prefixes reach length {prefixes.max_length}, beyond the networks' positions")
    recorded_exports(d, stored)
    return StoredPair(d, stored, method, nets, case, prefixes)


def add_export(directory: str | os.PathLike[str], to: str = "hf", *, force: bool = False) -> tuple[Certificate, Certificate]:
    """Add the library export ``to`` to an existing pair folder (read back at the file level first, so
    the networks exported are the hashed ones), re-check it, record its certificate's SHA-256 in the pair
    certificate, all atomically: the pair's files and the export are written into a temporary sibling
    that replaces the folder.  An existing export of ``to`` is replaced only with ``force``.

    Returns (the pair certificate as rewritten, the export certificate).

    Raises:
        InvalidArtifact: not a pair folder, a file-level problem, an existing export without ``force``.
        InapplicableOption / InvalidModelConfig: an export that cannot run here, networks it cannot hold.
    """
    d = Path(directory)
    why = export_unavailable(to)
    if why:
        from theory.errors import InapplicableOption

        raise InapplicableOption(why)
    sp = read_pair(d)
    if to in sp.stored.quantities.get("exports", {}) and not force:
        raise InvalidArtifact(f"{d / to}: the folder already has a {to} export (replace it with --force)")
    why = export_refusal(to, [sp.nets["q1"].config, sp.nets["q2"].config])
    if why:
        raise InvalidModelConfig(why)
    from constructions.artifact_files import COUNTEREXAMPLE_FILES

    try:
        tmp = make_temp_dir(d)
    except OSError as e:
        raise InvalidArtifact(f"{d}: cannot be written next to ({e.strerror or e})") from None
    try:
        for name in sorted(COUNTEREXAMPLE_FILES - {"certificate.json"}):
            shutil.copyfile(d / name, tmp / name)
        exports = {k: v for k, v in sp.stored.quantities.get("exports", {}).items() if k != to}
        for other in exports:  # keep the other exports as they are
            shutil.copytree(d / other, tmp / other, symlinks=True)
        exports[to] = _write_export(tmp, to, sp.case, sp.prefixes, sp.nets, sp.method, sp.stored.check)
        cert = replace(sp.stored, quantities={**sp.stored.quantities, "exports": dict(sorted(exports.items()))})
        write_atomic(tmp / "certificate.json", cert.to_json())
        export_cert = Certificate.from_dict(_read_json(tmp / to / "certificate.json"))
        os.chmod(tmp, 0o755)
        replace_directory(tmp, d)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise InvalidArtifact(f"{d}: could not be written ({e.strerror or e})") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return cert, export_cert
