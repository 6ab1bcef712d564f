"""The distiller (trained compilation): fit an ordinary small :class:`DecoderTransformer` to a construction.

The loss is the mean over every prefix u of a prefix-closed set (support prefixes and the OOD prompt
paths) of KL(q_construction(· | u) ‖ q_net(· | u)); the data's own entropy term is constant, so the
cross-entropy against the construction's exact rows is minimised.  One forward pass over the maximal
words gives every prefix at once (causality), each prefix weighted once.

Training stops at a **target tolerance**, max TV over the set ≤ ``target_tv``, checked every
``check_every`` steps, never at a step count; ``max_steps`` is only a cap, and reaching it is reported
as not converged (the caller's certificate says ``unknown``).  Progress goes to stderr (tqdm when it is
installed, plain lines otherwise); a checkpoint (weights, optimiser, step, behind a header with its
SHA-256) is written atomically every ``checkpoint_every`` steps and a run resumes from it; a damaged
one is refused.  Device ``auto`` picks CUDA when present (TF32 allowed there; the result is still
checked by :mod:`constructions.check` in the network's dtype).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from constructions.checkpoint import load_hashed, save_hashed
from constructions.compile.prefixes import PrefixSet
from constructions.enclosure import layout
from constructions.progress import Progress
from constructions.transformer import DecoderTransformer, TransformerConfig
from theory.errors import InvalidArtifact, InvalidModelConfig, NonidError
from theory.models import ARModel
from theory.validation import check_choice, check_int, check_number

DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class DistillConfig:
    """Size of the student and the optimisation knobs.

    Attributes: the student's ``d_model``, ``n_heads``, ``d_head``, ``d_mlp``, ``n_layers`` (pre-LN, ReLU,
    float32); ``lr`` (Adam, cosine-free constant rate); ``target_tv`` (stop once max TV over the set is ≤ it);
    ``max_steps`` (cap); ``check_every``, ``checkpoint_every`` (steps); ``seed``; ``device`` (auto|cpu|cuda).

    Raises:
        InvalidModelConfig: a size or rate out of range, an unknown device.
    """

    d_model: int = 64
    n_heads: int = 4
    d_head: int = 16
    d_mlp: int = 256
    n_layers: int = 2
    lr: float = 3e-3
    target_tv: float = 0.01
    max_steps: int = 20_000
    check_every: int = 50
    checkpoint_every: int = 500
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        for name in ("d_model", "n_heads", "d_head", "d_mlp", "n_layers", "max_steps", "check_every", "checkpoint_every"):
            check_int(getattr(self, name), f"distill {name} =", minimum=1, error=InvalidModelConfig)
        for name, lo, hi in (("lr", 0.0, 1.0), ("target_tv", 0.0, 1.0)):
            check_number(getattr(self, name), f"distill {name} =", lo=lo, hi=hi, lo_open=True, error=InvalidModelConfig)
        check_choice(self.device, "device", DEVICES, error=InvalidModelConfig)


@dataclass(frozen=True)
class DistillResult:
    """The trained network (on the CPU), whether it reached the target, and how long it took."""

    net: DecoderTransformer
    converged: bool
    steps: int
    max_tv: float
    seconds: float
    device: str


def resolve_device(device: str, *, error: type[NonidError] = InvalidModelConfig) -> torch.device:
    """The torch device named ``device``: ``auto`` → CUDA when available, else CPU; ``cpu``; ``cuda``
    or ``cuda:N``.  The one device resolution of the project (``empirical.experiment`` calls it too).

    Raises:
        InvalidModelConfig (or ``error``): a name other than those, or CUDA asked for while torch
            sees no CUDA device.
    """
    if not isinstance(device, str) or not (device in DEVICES or re.fullmatch(r"cuda:\d+", device)):
        raise error(f"device {device!r} is not one of {DEVICES} or cuda:N")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise error(f"device {device!r} asked for, but torch sees no CUDA device; use cpu or auto")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


_MAGIC = b"NONID-DISTILL-1 sha256="


def _save_checkpoint(path: Path, state: dict) -> None:
    save_hashed(path, state, _MAGIC)


def _load_checkpoint(path: Path, device: torch.device) -> dict:
    """Read a checkpoint written by :func:`_save_checkpoint`.

    Raises:
        InvalidArtifact: unreadable, not a distillation checkpoint, or damaged (SHA-256 mismatch); the
            file is left as it is.
    """
    return load_hashed(path, _MAGIC, InvalidArtifact, "delete it to start afresh", device)


def student_config(alphabet: str, prefixes: PrefixSet, config: DistillConfig) -> TransformerConfig:
    """The student's shape for ``prefixes`` (pre-LN, ReLU, float32, context one past the longest word)."""
    return TransformerConfig(alphabet=alphabet, d_model=config.d_model, n_heads=config.n_heads,
                             d_head=config.d_head, d_mlp=config.d_mlp, n_layers=config.n_layers,
                             max_len=prefixes.max_length + 1, norm="pre", activation="relu", dtype="float32",
                             seed=config.seed)


def distill(construction: ARModel, prefixes: PrefixSet, config: DistillConfig = DistillConfig(), *,
            checkpoint: str | os.PathLike[str] | None = None, progress: bool = True) -> DistillResult:
    """Train a student to ``construction`` on ``prefixes`` until max TV ≤ ``config.target_tv`` (or the cap).

    ``checkpoint``: a file to write every ``checkpoint_every`` steps and to resume from when it exists
    and belongs to the same run (same config, construction rows and prefix set); another run's file is
    refused, not overwritten.

    Raises:
        InvalidModelConfig: bad config or device, or a checkpoint of another run.
        InvalidArtifact: a checkpoint that is damaged (SHA-256 mismatch) or unreadable.
    """
    if not isinstance(config, DistillConfig):
        raise InvalidModelConfig(f"expected a DistillConfig, got {type(config).__name__}")
    t0 = time.perf_counter()
    device = resolve_device(config.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    tcfg = student_config(prefixes.alphabet, prefixes, config)
    net = DecoderTransformer(tcfg).to(device)
    words, rows, cols = layout(prefixes.maximal, prefixes.prefixes)
    targets = np.array([[float(x) for x in construction.next_token(u).probs] for u in prefixes.prefixes])
    T = len(words[-1]) + 1
    tokens = net.encode(words, length=T)
    target = torch.zeros(len(words), T, tcfg.n_outputs, dtype=torch.float32)
    weight = torch.zeros(len(words), T, dtype=torch.float32)
    target[rows, cols] = torch.tensor(targets, dtype=torch.float32)
    weight[rows, cols] = 1.0
    target, weight = target.to(device), weight.to(device)
    plogp = torch.where(target > 0, target * torch.log(target.clamp_min(1e-45)), torch.zeros_like(target)).sum(-1)
    opt = torch.optim.Adam(net.parameters(), lr=config.lr)
    run_knobs = {k: v for k, v in asdict(config).items() if k not in ("max_steps", "check_every", "checkpoint_every", "device")}
    fingerprint = hashlib.sha256(json.dumps([run_knobs, tcfg.to_dict(), prefixes.prefixes, targets.tolist()],
                                            default=str).encode()).hexdigest()
    step, ckpt = 0, Path(checkpoint) if checkpoint is not None else None
    if ckpt is not None and ckpt.exists():
        state = _load_checkpoint(ckpt, device)
        if state.get("fingerprint") != fingerprint:
            raise InvalidModelConfig(f"{ckpt}: checkpoint of another distillation run (config, construction or prefixes differ)")
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step = int(state["step"])
    out = Progress(config.max_steps, enabled=progress)

    def report(at: int, text: str) -> None:
        if out.has_bar:
            out.advance(at, text)
        else:
            out.line(f"distill: step {at:>6}  {text}")

    n = float(len(prefixes))
    max_tv, converged = 1.0, False
    while True:
        logq = net.log_probs(tokens)
        if step % config.check_every == 0 or step >= config.max_steps:
            with torch.no_grad():
                tv = 0.5 * (target - logq.exp()).abs().sum(-1)
                max_tv = float((tv * weight).max())
            report(step, f"max TV {max_tv:.4f}")
            if max_tv <= config.target_tv:
                converged = True
                break
            if step >= config.max_steps:
                break
        kl = (plogp - (target * logq).sum(-1)) * weight
        loss = kl.sum() / n
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if ckpt is not None and step % config.checkpoint_every == 0:
            _save_checkpoint(ckpt, {"fingerprint": fingerprint, "model": net.state_dict(),
                                    "optimizer": opt.state_dict(), "step": step})
    out.close()
    if ckpt is not None:
        _save_checkpoint(ckpt, {"fingerprint": fingerprint, "model": net.state_dict(),
                                "optimizer": opt.state_dict(), "step": step})
    net = net.cpu().eval()
    return DistillResult(net, converged, step, max_tv, time.perf_counter() - t0, str(device))
