"""The one training loop of the experiments: AdamW on batches of the language's words, an optional
extra loss term on (OOD prompt, completion) pairs (the adversarial and oracle regimes), periodic
evaluation, atomic checkpoints and exact resume.

Loss: the token-mean NLL of ``[SOS x]`` → ``[x EOS]`` over the batch (PAD positions carry no loss),
plus ``aux_weight`` × the token-mean NLL of the completions and EOS of the regime pairs (prompt
positions carry no loss; they are OOD, so the term only touches prefixes off the support of P).  The
progress line is in one unit, nats per token: ``train`` (the batch's term), ``regime`` and ``test`` (the
last evaluation's ``test_loss_token``; an evaluation without one shows its ``val_loss`` in nats per
sequence, labelled so).

Determinism and resume.  The batch of step s is drawn from its own ``torch.Generator`` seeded from
(seed, s), so the data order depends on nothing but the seed.  A checkpoint holds the model, the
optimizer, the step, the evaluation history, the best-validation weights and the global RNG states;
it is written to a temporary file in the run folder and renamed over the old one, so an interruption
at any moment leaves the previous checkpoint intact.  Resuming from it reaches the same final
parameters, bit for bit, as an uninterrupted run on the same device (tested on the CPU).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import torch
import torch.nn.functional as F

from constructions.checkpoint import load_hashed, save_hashed
from constructions.progress import Progress
from empirical.data import IGNORE, Vocab
from empirical.errors import CorruptCheckpoint, InvalidExperimentConfig
from theory.processes import raise_if_interrupted
from theory.validation import check_int, check_number

if TYPE_CHECKING:
    from empirical.tblog import RunLog

CHECKPOINT_FORMAT = "nonid-empirical-checkpoint-1"
CHECKPOINT_NAME = "checkpoint.pt"


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser and schedule.  ``eval_every`` / ``checkpoint_every`` are in steps (the last step
    is always evaluated and checkpointed)."""

    steps: int = 2000
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.98)
    grad_clip: float = 1.0
    aux_batch_size: int = 32
    aux_weight: float = 1.0
    eval_every: int = 250
    checkpoint_every: int = 500
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "aux_batch_size", "eval_every", "checkpoint_every"):
            check_int(getattr(self, name), f"training {name} =", minimum=1, error=InvalidExperimentConfig)
        for name in ("lr", "aux_weight"):
            check_number(getattr(self, name), f"training {name} =", lo=0, error=InvalidExperimentConfig)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d


@dataclass
class TrainResult:
    """The trained model, the evaluation history ({"step", "val_loss", …} per evaluation), the step
    and weights of the best validation loss, the steps done and the wall time (all sessions)."""

    model: torch.nn.Module
    history: list[dict] = field(default_factory=list)
    best_step: int | None = None
    best_state: dict | None = None
    step: int = 0
    wall_s: float = 0.0
    finished: bool = False


class _Encoded:
    """Examples pre-encoded as (inputs, targets, lengths) tensors on the device."""

    def __init__(self, vocab: Vocab, pairs: Sequence[tuple[str, str]], device: torch.device) -> None:
        self.n = len(pairs)
        if self.n:
            inputs, targets = vocab.examples(pairs)
            self.inputs, self.targets = inputs.to(device), targets.to(device)
            self.lengths = torch.tensor([len(u) + len(z) + 1 for u, z in pairs], device=device)

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        index = index.to(self.inputs.device)
        t = int(self.lengths[index].max())
        return self.inputs[index, :t], self.targets[index, :t]


def _batch_index(seed: int, step: int, stream: int, n: int, size: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed((seed * 1_000_003 + step) * 4 + stream)
    return torch.randint(n, (size,), generator=gen)


def _token_nll(model: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    logits = model(inputs)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), ignore_index=IGNORE)


def _rng_state() -> dict:
    state: dict[str, object] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


_MAGIC = b"NONID-CKPT-1 sha256="


def save_checkpoint(path: Path, payload: dict) -> None:
    """Write ``payload`` behind a SHA-256 header, atomically (:func:`constructions.checkpoint.save_hashed`)."""
    save_hashed(path, payload, _MAGIC)


def load_checkpoint(path: Path, fingerprint: dict) -> dict:
    """Read a checkpoint written for the run ``fingerprint``.

    Raises:
        CorruptCheckpoint: unreadable, damaged (SHA-256 mismatch), of another format, or of another
        run (the file is left as is).
    """
    advice = "the run is left untouched — delete it or rerun without --resume"
    ckpt = load_hashed(path, _MAGIC, CorruptCheckpoint, advice)
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CorruptCheckpoint(f"{path}: not a nonid checkpoint (format {ckpt.get('format') if isinstance(ckpt, dict) else None!r})")
    if ckpt.get("fingerprint") != fingerprint:
        raise CorruptCheckpoint(f"{path}: belongs to another run configuration; the run is left untouched — "
                                f"use another --out or rerun without --resume")
    for key in ("step", "model", "optimizer", "rng", "history"):
        if key not in ckpt:
            raise CorruptCheckpoint(f"{path}: checkpoint lacks {key!r}")
    return ckpt


def progress_line(label: str, step: int, steps: int, train_loss: float, regime_loss: float | None,
                  evaluation: dict | None, wall_s: float) -> str:
    """The training loop's progress line, in one unit, nats per token: the batch's loss, the regime
    term's (before ``aux_weight``) and the last evaluation's ``test_loss_token`` (an evaluation without
    one shows its ``val_loss``, in nats per sequence, labelled so)."""
    return f"  [{label}] step {step}/{steps}  {progress_status(train_loss, regime_loss, evaluation)}  ({wall_s:.1f}s)"


def progress_status(train_loss: float, regime_loss: float | None, evaluation: dict | None) -> str:
    """The losses of :func:`progress_line` (what a progress bar shows beside itself)."""
    text = f"train {train_loss:.4f} nats/token"
    if regime_loss is not None:
        text += f"  regime {regime_loss:.4f} nats/token"
    if evaluation is not None:
        if evaluation.get("test_loss_token") is not None:
            text += f"  test {evaluation['test_loss_token']:.4f} nats/token"
        else:
            text += f"  val {evaluation['val_loss']:.4f} nats/seq"
    return text


def train(model: torch.nn.Module, vocab: Vocab, words: Sequence[str], cfg: TrainConfig, *,
          aux_pairs: Sequence[tuple[str, str]] = (), evaluate: Callable[[torch.nn.Module], dict] | None = None,
          run_dir: Path | None = None, fingerprint: dict | None = None, resume: bool = False,
          stop_after: int | None = None, device: torch.device | str = "cpu", label: str = "",
          progress: bool = True, log: RunLog | None = None) -> TrainResult:
    """Train ``model`` in place (moved to ``device``) and return a :class:`TrainResult`.

    ``evaluate(model)`` must return a dict with ``val_loss`` (nats per sequence; ``test_loss_padded``, nats
    per padded token, is printed too when present); it runs every ``cfg.eval_every`` steps
    and at the end, and the weights of the lowest ``val_loss`` are kept.  With ``run_dir`` a
    checkpoint is written there every ``cfg.checkpoint_every`` steps and at the end; with ``resume``
    an existing one is continued (see the module docstring).  ``stop_after`` stops after that many
    steps *without* saving (an interruption, for tests).  ``log`` (an :class:`empirical.tblog.RunLog`)
    receives every step's losses and every evaluation; it is started here and closed by the caller.
    ``progress``: a bar on a terminal (the losses beside it), else a line every 10 s and at the end
    (:class:`constructions.progress.Progress` with ``terminal_only``).

    Raises:
        CorruptCheckpoint: resuming from a damaged or foreign checkpoint.
        InvalidExperimentConfig: no training words.
    """
    if not words:
        raise InvalidExperimentConfig("no training words")
    device = torch.device(device)
    model.to(device)
    fingerprint = dict(fingerprint or {}, train=cfg.to_dict())
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    data = _Encoded(vocab, [("", w) for w in words], device)
    aux = _Encoded(vocab, list(aux_pairs), device)
    result = TrainResult(model)
    path = run_dir / CHECKPOINT_NAME if run_dir is not None else None
    if resume and path is not None and path.exists():
        ckpt = load_checkpoint(path, fingerprint)
        try:
            model.load_state_dict(ckpt["model"])
            opt.load_state_dict(ckpt["optimizer"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise CorruptCheckpoint(f"{path}: weights do not fit the model ({str(e).splitlines()[0][:120]})") from None
        _set_rng_state(ckpt["rng"])
        result.step, result.history = int(ckpt["step"]), list(ckpt["history"])
        result.best_step, result.best_state = ckpt.get("best_step"), ckpt.get("best_state")
        result.wall_s = float(ckpt.get("wall_s", 0.0))
    else:
        if run_dir is not None:
            run_dir.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(cfg.seed)

    def checkpoint() -> None:
        if path is None:
            return
        save_checkpoint(path, {"format": CHECKPOINT_FORMAT, "fingerprint": fingerprint, "step": result.step,
                               "model": model.state_dict(), "optimizer": opt.state_dict(), "rng": _rng_state(),
                               "history": result.history, "best_step": result.best_step,
                               "best_state": result.best_state, "wall_s": result.wall_s})

    def run_eval() -> None:
        if evaluate is None:
            return
        model.eval()
        record = {"step": result.step, **evaluate(model)}
        model.train()
        result.history.append(record)
        if log is not None:
            log.evaluation(record)
        best = min((r for r in result.history), key=lambda r: (r["val_loss"], r["step"]))
        if best is record:
            result.best_step = record["step"]
            result.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}

    start, last_print = time.perf_counter(), 0.0
    wall0 = result.wall_s
    if log is not None:
        log.start(result.step, resumed=result.step > 0 or bool(result.history))
    out = Progress(cfg.steps, label=label, initial=result.step, enabled=progress, mininterval=1.0, terminal_only=True,
                   unit="step")
    model.train()
    try:
        if result.step == 0 and not result.history:
            run_eval()
        while result.step < cfg.steps:
            raise_if_interrupted()  # a Ctrl-C deferred inside torch stops here, between steps
            if stop_after is not None and result.step >= stop_after:
                return result
            s = result.step
            inputs, targets = data.batch(_batch_index(cfg.seed, s, 0, data.n, cfg.batch_size))
            data_loss = loss = _token_nll(model, inputs, targets)
            aux_loss: torch.Tensor | None = None
            if aux.n and cfg.aux_weight:
                a_in, a_tg = aux.batch(_batch_index(cfg.seed, s, 1, aux.n, cfg.aux_batch_size))
                aux_loss = _token_nll(model, a_in, a_tg)
                loss = loss + cfg.aux_weight * aux_loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            result.step += 1
            result.wall_s = wall0 + time.perf_counter() - start
            if log is not None:
                log.train_step(result.step, data_loss.item(), None if aux_loss is None else aux_loss.item())
            if result.step % cfg.eval_every == 0 or result.step == cfg.steps:
                run_eval()
            if result.step % cfg.checkpoint_every == 0 or result.step == cfg.steps:
                checkpoint()
            now = time.perf_counter() - start
            every = 1.0 if out.has_bar else 10.0  # a bar's status is cheap to refresh; a line is not
            if progress and (now - last_print > every or result.step == cfg.steps):
                last_print = now
                train_loss, regime_loss = data_loss.item(), None if aux_loss is None else aux_loss.item()
                evaluation = result.history[-1] if result.history else None
                if out.has_bar:
                    out.advance(result.step, progress_status(train_loss, regime_loss, evaluation))
                else:
                    out.line(progress_line(label, result.step, cfg.steps, train_loss, regime_loss, evaluation, result.wall_s))
            else:
                out.advance(result.step)
    finally:
        out.close()
    result.finished = True
    return result
