"""Many small models of one experiment trained at once, in one process, as one batched ensemble.

:func:`train_ensemble` gives every member what :func:`empirical.train.train` alone would give it:

* its own initial weights (the caller builds each model with its own seed) and its own data order
  (the batch of step s is ``_batch_index(cfg.seed, s, stream, n, size)``, the seed's alone);
* the same loss (token-mean NLL of the batch, plus ``aux_weight`` × the regime pairs' token-mean NLL
  for a member that has pairs and a non-zero weight; a member without either gets no aux term at
  all: the aux forward pass runs only on the members that have one);
* gradient clipping by the member's *own* global norm (torch's formula: ``max_norm / (‖g‖ + 1e-6)``
  clamped at 1), and AdamW with the member's hyper-parameters, applied by torch's own functional
  Adam (``torch.optim.adam.adam``, decoupled weight decay) on the stacked tensors — an elementwise
  update, the same arithmetic as the member's own optimiser would do;
* evaluation every ``eval_every`` steps and at the end on the member's own ``nn.Module`` (the
  caller's model, into which the member's weights are copied first), best-validation weights, and
  checkpoints in its run folder in exactly ``train()``'s format (:data:`empirical.train.CHECKPOINT_FORMAT`,
  an ``AdamW.state_dict()`` in torch's own layout, the member's global-RNG state), written by
  :func:`empirical.train.save_checkpoint`.  So an ensemble resumes from its members' checkpoints,
  ``train()`` resumes a member's checkpoint, and the ensemble resumes ``train()``'s.

Each member's evaluations run under the member's own global-RNG stream (seeded ``cfg.seed`` as
``train()`` seeds it, stored in its checkpoints); the training steps draw nothing from the global RNG
(vmap runs with ``randomness="error"``, so a random operation in a forward pass is refused, not
shared).  The caller's global RNG state is restored on return.

Batching.  The members' parameters are stacked (``torch.func.stack_module_state`` layout) and one
``torch.func.vmap`` of ``functional_call`` runs every forward and backward pass.  The members' batches
have different lengths; each is padded to the longest with PAD inputs and IGNORE targets.  For these
causal models that changes no member's loss mathematically: position t's logits depend only on tokens
up to t, and IGNORE targets carry no loss and do not count in the token mean.  (The padded positions
do receive a zero gradient, exactly as the positions beyond a short batch do in ``train()``.)
:class:`~constructions.transformer.DecoderTransformer` checks its token ids with ``.item()``, which vmap
cannot trace; the ensemble runs the same submodules in the same order (:func:`_decoder_body`, tested
bitwise equal to ``forward``) and makes the same checks itself (the ids once on every example, the
length on every batch).  Members must share the architecture (:func:`_check_same_architecture`) and the
:data:`SHARED_FIELDS` of their configs.

What is not batched.  Whether a model can be vmapped is probed once, before training, with one
forward and backward pass on a two-token batch; ``nn.LSTM`` cannot (``aten::lstm`` has no batching
rule), nor can a forward pass that draws random numbers.  Of the experiment's architectures
``transformer``, ``transformer-nopos``, ``linear`` and ``ssm`` are batched, ``lstm`` is not.  Such an ensemble is trained one member
after another with plain :func:`~empirical.train.train` in the same call; each result's ``batched``
says which path ran and ``unbatched_reason`` why.

Equality with ``train()``.  Batched and unbatched float matmuls round differently, so a member equals
its solo run only up to rounding, which training then amplifies: :data:`PARAMETER_TOLERANCE` and
:data:`VAL_LOSS_TOLERANCE` are the tested bounds, and their notes say how they were measured and which
runs no such bound covers (those that ``train()`` alone does not reproduce across thread counts).  Within
the batched path everything is deterministic: stopping and resuming reaches the same parameters, bit
for bit, as an uninterrupted ensemble run of the same members (tested on the CPU).
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap
from torch.optim.adam import adam

from constructions.progress import Progress
from constructions.transformer import DecoderTransformer
from empirical.data import IGNORE, Vocab
from empirical.errors import CorruptCheckpoint, InvalidExperimentConfig
from empirical.train import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_NAME,
    TrainConfig,
    TrainResult,
    _batch_index,
    _rng_state,
    _set_rng_state,
    load_checkpoint,
    progress_line,
    progress_status,
    save_checkpoint,
    train,
)
from theory.errors import InputTooLong, UnknownToken
from theory.processes import raise_if_interrupted

if TYPE_CHECKING:
    from empirical.tblog import RunLog

__all__ = ["MemberResult", "NOISE_PARAMETERS", "PARAMETER_TOLERANCE", "SHARED_FIELDS", "VAL_LOSS_TOLERANCE", "parameter_gap",
           "train_ensemble"]

NOISE_PARAMETERS = ("attn.k_proj.bias",)
"""Parameters (by name suffix) left out of :func:`parameter_gap`: softmax ignores a shift common to all
keys, so the exact gradient of the attention key biases is zero and what is computed is rounding noise,
which Adam normalises into steps of about ``lr``.  Any two runs that round differently — ``train()``
alone with one and with two threads — move them apart by ≈ 1e-2 in 40 steps; they do not change the
function."""

PARAMETER_TOLERANCE = 1e-4
"""Bound on :func:`parameter_gap` between a member and its solo ``train()`` run after the tests' 40 steps
(L3, size cpu, lr 3e-3, tests/test_ensemble.py's seeds).  Measured on the 2-core CPU, one and two threads:
at most 2.2e-5 for the transformer (median ≈ 3e-7, 15 runs: 5 seeds × 3 regimes), 1.2e-7 for linear,
5e-7 for ssm (20 steps).  Not a bound for every run: a few seeds are chaotic — L3 transformer oracle seed 4
is 6e-3 away after 40 steps, and ``train()`` alone is as far from itself between one and two threads, or
when one initial weight moves by one ulp.  A member then differs from its solo run as much as two solo
runs differ from each other.  The gap grows with the steps: after 300 steps the transformer's members are
≈ 4e-2 from their solo runs (median over 15), and ``train()``'s own runs at one and two threads are as
far apart (2e-2 to 8e-2; benchmarks/bench_ensemble.py prints both); linear stays at ≈ 3e-7."""
VAL_LOSS_TOLERANCE = 1e-4
"""Bound on |val_loss_ensemble − val_loss_solo| (nats per sequence) over a member's evaluation history in
the same tests: measured at most 4e-6 (the transformer; linear 5e-7)."""

SHARED_FIELDS = ("batch_size", "aux_batch_size", "lr", "weight_decay", "betas", "grad_clip")
"""TrainConfig fields every member must share (they shape the batch or are scalars of the one optimiser
call); ``steps``, ``seed``, ``eval_every``, ``checkpoint_every`` and ``aux_weight`` may differ."""


@dataclass
class MemberResult(TrainResult):
    """A :class:`~empirical.train.TrainResult` plus the path that trained it: ``batched`` (one vmapped
    ensemble) or not (``train()`` one member after another, for the reason ``unbatched_reason``)."""

    batched: bool = False
    unbatched_reason: str | None = None


def train_ensemble(models: Sequence[nn.Module], vocab: Vocab, words_per_model: Sequence[Sequence[str]],
                   cfgs: Sequence[TrainConfig], *, aux_pairs_per_model: Sequence[Sequence[tuple[str, str]]] | None = None,
                   evaluate_per_model: Sequence[Callable[[nn.Module], dict] | None] | None = None,
                   run_dirs: Sequence[Path | None] | None = None, fingerprints: Sequence[dict | None] | None = None,
                   resume: bool = False, stop_after: int | None = None, device: torch.device | str = "cpu",
                   labels: Sequence[str] | None = None, progress: bool = True,
                   logs_per_model: Sequence[RunLog | None] | None = None) -> list[MemberResult]:
    """Train ``models`` in place (moved to ``device``), each as :func:`empirical.train.train` would train
    it with its own words, config, aux pairs, evaluation, run folder and fingerprint (the module
    docstring says what is shared and what equality holds); return one :class:`MemberResult` per model,
    in order, whose ``model`` is the caller's model holding its final weights.  ``vocab`` is every
    member's vocabulary.

    The per-model arguments are sequences of ``len(models)`` (``None``: no aux pairs, no evaluation, no
    run folder, no fingerprint, labels ``model 0`` …, no log: ``logs_per_model`` are
    :class:`empirical.tblog.RunLog` s, started here as ``train()`` starts one and closed by the caller); ``resume`` and ``stop_after`` apply to every
    member as in ``train()``: each resumes from its own checkpoint when there is one, and each stops
    before its step ``stop_after`` without saving.  Members may resume at different steps: the ensemble
    steps the members that are behind until they catch up.  ``wall_s`` of a batched member is the
    ensemble's wall time (all members share it) plus its checkpoint's.  ``evaluate`` must not change the
    model's weights (the ensemble does not read them back).

    Raises:
        InvalidExperimentConfig: sequences of different lengths, no models, a member without training
            words, two members with one run folder, configs that differ in a :data:`SHARED_FIELDS`
            field, or models of different architectures or shapes (the message names the first
            difference: a module's setting, a parameter's or buffer's shape, dtype or trainability).
        CorruptCheckpoint: resuming from a damaged or foreign checkpoint (before anything is trained).
        UnknownToken, InputTooLong: as the model would raise them.
    """
    n = len(models)
    if n == 0:
        raise InvalidExperimentConfig("an ensemble needs at least one model")
    labels = list(labels) if labels is not None else [f"model {i}" for i in range(n)]
    per_model: dict[str, Sequence[Any]] = {
        "words_per_model": words_per_model, "cfgs": cfgs, "labels": labels,
        "aux_pairs_per_model": aux_pairs_per_model if aux_pairs_per_model is not None else [()] * n,
        "evaluate_per_model": evaluate_per_model if evaluate_per_model is not None else [None] * n,
        "run_dirs": run_dirs if run_dirs is not None else [None] * n,
        "fingerprints": fingerprints if fingerprints is not None else [None] * n,
        "logs_per_model": logs_per_model if logs_per_model is not None else [None] * n}
    for name, seq in per_model.items():
        if len(seq) != n:
            raise InvalidExperimentConfig(f"{name} has {len(seq)} entries for {n} models")
    for i, words in enumerate(words_per_model):
        if not words:
            raise InvalidExperimentConfig(f"no training words for {labels[i]}")
    folders = [Path(d).resolve() for d in per_model["run_dirs"] if d is not None]
    if len(set(folders)) != len(folders):
        twice = next(d for d in folders if folders.count(d) > 1)
        raise InvalidExperimentConfig(f"two ensemble members share the run folder {twice}")
    _check_shared_config(list(cfgs), labels)
    _check_same_architecture(list(models), labels)
    device = torch.device(device)
    members = [_Member(i, labels[i], models[i], words_per_model[i], cfgs[i], per_model["aux_pairs_per_model"][i],
                       per_model["evaluate_per_model"][i], per_model["run_dirs"][i], per_model["fingerprints"][i],
                       per_model["logs_per_model"][i])
               for i in range(n)]
    caller_rng = _rng_state()
    try:
        reason = _vmap_obstacle(models[0], vocab, device)
        if reason is not None:
            for m in members:  # every checkpoint is checked before anything is trained, as on the batched path
                if resume and m.path is not None and m.path.exists():
                    load_checkpoint(m.path, m.full_fingerprint)
            return [_train_alone(m, vocab, resume, stop_after, device, progress, reason) for m in members]
        return _Ensemble(members, vocab, device).run(resume, stop_after, progress)
    finally:
        _set_rng_state(caller_rng)


def parameter_gap(a: nn.Module, b: nn.Module) -> float:
    """max |a − b| over the two models' ``state_dict`` entries, :data:`NOISE_PARAMETERS` left out (0.0 when
    nothing is left).

    Raises:
        InvalidExperimentConfig: the two state dicts have different keys or shapes.
    """
    sa, sb = a.state_dict(), b.state_dict()
    if sa.keys() != sb.keys():
        raise InvalidExperimentConfig(f"models with different parameters: {sorted(set(sa) ^ set(sb))[:4]}")
    gap = 0.0
    for k in sa:
        if sa[k].shape != sb[k].shape:
            raise InvalidExperimentConfig(f"parameter {k} has shape {tuple(sa[k].shape)} and {tuple(sb[k].shape)}")
        if not k.endswith(NOISE_PARAMETERS) and sa[k].numel():
            gap = max(gap, float((sa[k].double() - sb[k].double()).abs().max()))
    return gap


# ---- checks ---------------------------------------------------------------------------------------
def _check_shared_config(cfgs: list[TrainConfig], labels: list[str]) -> None:
    for name in SHARED_FIELDS:
        first = getattr(cfgs[0], name)
        for i, cfg in enumerate(cfgs):
            if getattr(cfg, name) != first:
                raise InvalidExperimentConfig(f"ensemble members must share training {name}: {labels[i]} has "
                                              f"{getattr(cfg, name)!r}, {labels[0]} {first!r}")


def _settings(prefix: str, value: object) -> dict[str, object]:
    """A module attribute as compared between members, flattened: a dataclass field by field without its
    ``seed`` (the one setting members are meant to differ in), anything else as it is."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f"{prefix}.{f.name}": getattr(value, f.name) for f in dataclasses.fields(value) if f.name != "seed"}
    return {prefix: value}


def _architecture(model: nn.Module) -> dict[str, object]:
    """What must be equal for two models to share one forward function: every module's class and
    public plain settings, every parameter's shape, dtype and trainability, every buffer's shape and dtype."""
    out: dict[str, object] = {"model class": type(model).__qualname__}
    for name, module in model.named_modules():
        where = f"module {name or '(root)'}"
        out[f"{where} class"] = type(module).__qualname__
        for k, v in sorted(vars(module).items()):
            if not k.startswith("_") and k != "training" and not isinstance(v, (torch.Tensor, nn.Module)):
                out.update(_settings(f"{where} setting {k}", v))
    for name, p in model.named_parameters():
        out[f"parameter {name} (shape, dtype, trainable)"] = (tuple(p.shape), p.dtype, p.requires_grad)
    for name, b in model.named_buffers():
        out[f"buffer {name} (shape, dtype)"] = (tuple(b.shape), b.dtype)
    return out


def _check_same_architecture(models: list[nn.Module], labels: list[str]) -> None:
    ref = _architecture(models[0])
    for i, model in enumerate(models[1:], start=1):
        arch = _architecture(model)
        for key in list(ref) + [k for k in arch if k not in ref]:
            if ref.get(key) != arch.get(key):
                raise InvalidExperimentConfig(
                    f"ensemble members must share one architecture: {labels[i]} differs from {labels[0]} in {key}: "
                    f"{arch.get(key, 'absent')!r} vs {ref.get(key, 'absent')!r}")


# ---- the members' forward pass --------------------------------------------------------------------
def _decoder_body(model: DecoderTransformer, tokens: torch.Tensor) -> torch.Tensor:
    """:meth:`DecoderTransformer.forward` without its input checks (``.item()``, which vmap cannot
    trace): the same submodules in the same order.  The ensemble checks the ids itself."""
    positions = torch.arange(tokens.shape[1], device=tokens.device)
    x = model.token_embedding(tokens) + model.position_embedding(positions)[None]
    for block in model.blocks:
        x = block(x)
    return model.unembed(model.ln_final(x))


class _Forward(nn.Module):
    """The module vmap calls: the member architecture as ``inner``, through :func:`_decoder_body` for a
    DecoderTransformer and its own ``forward`` otherwise."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if isinstance(self.inner, DecoderTransformer):
            return _decoder_body(self.inner, tokens)
        return self.inner(tokens)


def _member_loss(net: _Forward, state: dict[str, torch.Tensor], inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``train()``'s token-mean NLL of one member (``empirical.train._token_nll``), on its own weights."""
    logits = functional_call(net, state, (inputs,))
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), ignore_index=IGNORE)


def _ensemble_losses(net: _Forward, state: dict[str, torch.Tensor], inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Each member's loss, shape (members,), from stacked ``state`` and (members, B, T) batches."""
    return vmap(_member_loss, in_dims=(None, 0, 0, 0), randomness="error")(net, state, inputs, targets)


def _vmap_obstacle(model: nn.Module, vocab: Vocab, device: torch.device) -> str | None:
    """Why ``model`` cannot be trained in a vmapped ensemble (one forward and backward pass of two copies
    on a two-token batch fails), or None when it can."""
    net = _Forward(copy.deepcopy(model)).to(device).train()
    state = {k: torch.stack([v.detach(), v.detach()]).requires_grad_(v.requires_grad) for k, v in net.named_parameters()}
    state.update({k: torch.stack([v, v]) for k, v in net.named_buffers()})
    tokens = torch.tensor([[[vocab.sos, 0]], [[vocab.sos, 0]]], device=device)
    targets = torch.tensor([[[0, vocab.eos]], [[0, vocab.eos]]], device=device)
    try:
        loss = _ensemble_losses(net, state, tokens, targets).sum()
        trainable = [v for v in state.values() if v.requires_grad]
        if trainable:
            torch.autograd.grad(loss, trainable, allow_unused=True)
    except (RuntimeError, NotImplementedError) as e:
        return f"{type(model).__name__} cannot be vmapped ({str(e).splitlines()[0][:160]})"
    return None


# ---- members --------------------------------------------------------------------------------------
class _Member:
    """One model's own side of the ensemble: its inputs, its result and the state ``train()`` keeps."""

    def __init__(self, index: int, label: str, model: nn.Module, words: Sequence[str], cfg: TrainConfig,
                 aux_pairs: Sequence[tuple[str, str]], evaluate: Callable[[nn.Module], dict] | None,
                 run_dir: Path | None, fingerprint: dict | None, log: RunLog | None = None) -> None:
        self.index, self.label, self.model, self.words, self.cfg = index, label, model, words, cfg
        self.log = log
        self.aux_pairs, self.evaluate, self.run_dir = tuple(aux_pairs), evaluate, run_dir
        self.fingerprint = fingerprint  # the caller's; train() adds the config
        self.full_fingerprint = dict(fingerprint or {}, train=cfg.to_dict())
        self.path = run_dir / CHECKPOINT_NAME if run_dir is not None else None
        self.result = MemberResult(model, batched=True)
        self.rng: dict = {}
        self.wall0 = 0.0
        self.last_print = 0.0

    @property
    def has_aux(self) -> bool:
        return bool(self.aux_pairs) and bool(self.cfg.aux_weight)

    @property
    def pending(self) -> bool:
        return self.result.step < self.cfg.steps


def _train_alone(m: _Member, vocab: Vocab, resume: bool, stop_after: int | None, device: torch.device, progress: bool,
                 reason: str) -> MemberResult:
    res = train(m.model, vocab, m.words, m.cfg, aux_pairs=m.aux_pairs, evaluate=m.evaluate, run_dir=m.run_dir,
                fingerprint=m.fingerprint, resume=resume, stop_after=stop_after, device=device, label=m.label,
                progress=progress, log=m.log)
    fields = {f.name: getattr(res, f.name) for f in dataclasses.fields(TrainResult)}
    return MemberResult(**fields, batched=False, unbatched_reason=reason)


class _Examples:
    """The members' (prompt, completion) sets, each distinct set encoded once on the device, padded to
    one width and one row count: inputs and targets (sets, rows, width), lengths (sets, rows)."""

    def __init__(self, vocab: Vocab, sets: Sequence[Sequence[tuple[str, str]]], device: torch.device) -> None:
        distinct: dict[tuple, int] = {}
        self.slot = [distinct.setdefault(tuple(s), len(distinct)) if s else -1 for s in sets]
        self.n = [len(s) for s in sets]
        keys = list(distinct)
        width = 1 + max((len(u) + len(z) for key in keys for u, z in key), default=0)
        rows = max((len(key) for key in keys), default=0)
        self.inputs = torch.full((len(keys), rows, width), vocab.pad, dtype=torch.long)
        self.targets = torch.full((len(keys), rows, width), IGNORE, dtype=torch.long)
        self.lengths = torch.zeros((len(keys), rows), dtype=torch.long)
        for s, key in enumerate(keys):
            self.inputs[s, :len(key)], self.targets[s, :len(key)] = vocab.examples(list(key), width)
            self.lengths[s, :len(key)] = torch.tensor([len(u) + len(z) + 1 for u, z in key])
        self.inputs, self.targets, self.lengths = self.inputs.to(device), self.targets.to(device), self.lengths.to(device)
        self.device = device

    def batch(self, members: Sequence[_Member], stream: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Each member's batch of its current step (``train()``'s indices), padded to the longest: (members, size, T)."""
        slots = torch.tensor([self.slot[m.index] for m in members], device=self.device)[:, None]
        index = torch.stack([_batch_index(m.cfg.seed, m.result.step, stream, self.n[m.index], size) for m in members])
        index = index.to(self.device)
        t = int(self.lengths[slots, index].max())
        return self.inputs[slots, index, :t], self.targets[slots, index, :t]


# ---- the batched ensemble -------------------------------------------------------------------------
class _Ensemble:
    """The stacked weights and optimiser state of the members, and the loop that trains them."""

    def __init__(self, members: list[_Member], vocab: Vocab, device: torch.device) -> None:
        self.members, self.vocab, self.device = members, vocab, device
        for m in members:
            m.model.to(device)
        self.net = _Forward(copy.deepcopy(members[0].model)).to(device)
        ref = members[0].model
        self.trainable = [k for k, p in ref.named_parameters() if p.requires_grad]
        self.frozen = [k for k, p in ref.named_parameters() if not p.requires_grad]
        self.buffers = [k for k, _ in ref.named_buffers()]
        self.data = _Examples(vocab, [[("", w) for w in m.words] for m in members], device)
        self.aux = _Examples(vocab, [m.aux_pairs if m.has_aux else () for m in members], device)
        cfg = members[0].cfg
        # The members' own optimisers: torch's hyper-parameter defaults and its state_dict layout.
        self.opts = [torch.optim.AdamW([p for p in m.model.parameters() if p.requires_grad], lr=cfg.lr, betas=cfg.betas,
                                       weight_decay=cfg.weight_decay) for m in members]
        self.group = {k: v for k, v in self.opts[0].param_groups[0].items() if k != "params"}
        self.params: dict[str, torch.Tensor] = {}
        self.buf: dict[str, torch.Tensor] = {}
        self._loaded_moments: dict[int, dict[str, tuple[torch.Tensor, torch.Tensor]]] = {m.index: {} for m in members}
        self.exp_avg: dict[str, torch.Tensor] = {}
        self.exp_avg_sq: dict[str, torch.Tensor] = {}
        self.opt_step = [0.0] * len(members)
        self.has_state: list[set[str]] = [set() for _ in members]  # parameters with optimiser state, as torch keeps it
        self.max_positions = getattr(ref, "max_positions", None)
        self._check_ids(self.data.inputs)
        self._check_ids(self.aux.inputs)

    # -- state in and out of the members' own modules ----------------------------------------------
    def _stack(self) -> None:
        named = [dict(m.model.named_parameters()) for m in self.members]
        bufs = [dict(m.model.named_buffers()) for m in self.members]
        self.params = {k: torch.stack([p[k].detach() for p in named]).requires_grad_(k in self.trainable)
                       for k in self.trainable + self.frozen}
        self.buf = {k: torch.stack([b[k] for b in bufs]) for k in self.buffers}

    def _unstack(self, i: int) -> None:
        """Copy member ``i``'s weights into its own module."""
        m = self.members[i]
        with torch.no_grad():
            for k, p in m.model.named_parameters():
                p.copy_(self.params[k][i])
            for k, b in m.model.named_buffers():
                b.copy_(self.buf[k][i])

    def _optimizer_state(self, i: int) -> dict:
        """Member ``i``'s ``AdamW.state_dict()``, built by its own optimiser (torch's layout)."""
        opt = self.opts[i]
        params = [p for p in self.members[i].model.parameters() if p.requires_grad]
        for k, p in zip(self.trainable, params):
            if k in self.has_state[i]:
                opt.state[p] = {"step": torch.tensor(self.opt_step[i], dtype=_step_dtype()),
                                "exp_avg": self.exp_avg[k][i].clone(), "exp_avg_sq": self.exp_avg_sq[k][i].clone()}
        state = opt.state_dict()
        opt.state.clear()
        return state

    def _load(self, m: _Member) -> None:
        """Resume member ``m`` from its checkpoint, as ``train()`` does (its module, optimiser, RNG, history)."""
        assert m.path is not None
        ckpt = load_checkpoint(m.path, m.full_fingerprint)
        opt = self.opts[m.index]
        try:
            m.model.load_state_dict(ckpt["model"])
            opt.load_state_dict(ckpt["optimizer"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise CorruptCheckpoint(f"{m.path}: weights do not fit the model ({str(e).splitlines()[0][:120]})") from None
        m.rng = ckpt["rng"]
        m.result.step, m.result.history = int(ckpt["step"]), list(ckpt["history"])
        m.result.best_step, m.result.best_state = ckpt.get("best_step"), ckpt.get("best_state")
        m.wall0 = m.result.wall_s = float(ckpt.get("wall_s", 0.0))
        params = [p for p in m.model.parameters() if p.requires_grad]
        steps = {float(opt.state[p]["step"]) for p in params if p in opt.state}
        if len(steps) > 1:
            raise CorruptCheckpoint(f"{m.path}: the optimizer's parameters are at different steps {sorted(steps)}")
        self.opt_step[m.index] = steps.pop() if steps else 0.0
        self._loaded_moments[m.index] = {k: (opt.state[p]["exp_avg"], opt.state[p]["exp_avg_sq"])
                                         for k, p in zip(self.trainable, params) if p in opt.state}
        self.has_state[m.index] = set(self._loaded_moments[m.index])
        opt.state.clear()

    def _stack_moments(self) -> None:
        for k in self.trainable:
            zeros = torch.zeros_like(self.params[k][0])
            self.exp_avg[k] = torch.stack([self._loaded_moments[i].get(k, (zeros, zeros))[0].to(zeros) for i in range(len(self.members))])
            self.exp_avg_sq[k] = torch.stack([self._loaded_moments[i].get(k, (zeros, zeros))[1].to(zeros) for i in range(len(self.members))])
        self._loaded_moments = {}

    # -- evaluation and checkpoints, per member ----------------------------------------------------
    def _loop(self, members: list[_Member], stop_after: int | None, progress: bool, out: Progress) -> None:
        """The training steps, from the first evaluation to every member's last step (or ``stop_after``)."""
        start = time.perf_counter()  # as in train(), the first evaluation counts in the wall time
        for m in members:
            if m.result.step == 0 and not m.result.history:
                self._evaluate(m)
        while True:
            raise_if_interrupted()  # a Ctrl-C deferred inside torch stops here, between steps
            ready = [m for m in members if m.pending and (stop_after is None or m.result.step < stop_after)]
            if not ready:
                break
            key = min((m.result.step, self.opt_step[m.index]) for m in ready)
            active = [m for m in ready if (m.result.step, self.opt_step[m.index]) == key]
            data_loss, aux_loss = self._step(active)
            now = time.perf_counter() - start
            aux_of = {m.index: j for j, m in enumerate(x for x in active if x.has_aux)}
            status = None
            for j, m in enumerate(active):
                r = m.result
                r.step += 1
                r.wall_s = m.wall0 + now
                if m.log is not None:  # read back (a device sync) only when something shows it
                    m.log.train_step(r.step, float(data_loss[j]), _regime(aux_loss, aux_of, m.index))
                if r.step % m.cfg.eval_every == 0 or r.step == m.cfg.steps:
                    self._evaluate(m)
                if r.step % m.cfg.checkpoint_every == 0 or r.step == m.cfg.steps:
                    self._checkpoint(m)
                every = 1.0 if out.has_bar else 10.0  # a bar's status is cheap to refresh; a line is not
                if progress and (now - m.last_print > every or r.step == m.cfg.steps):
                    m.last_print = now
                    evaluation = r.history[-1] if r.history else None
                    regime = _regime(aux_loss, aux_of, m.index)
                    if out.has_bar:
                        status = f"{m.label}: {progress_status(float(data_loss[j]), regime, evaluation)}"
                    else:
                        out.line(progress_line(m.label, r.step, m.cfg.steps, float(data_loss[j]), regime, evaluation,
                                               r.wall_s))
            out.advance(sum(m.result.step for m in members), status)

    def _evaluate(self, m: _Member) -> None:
        if m.evaluate is None:
            return
        self._unstack(m.index)
        _set_rng_state(m.rng)
        m.model.eval()
        record = {"step": m.result.step, **m.evaluate(m.model)}
        m.model.train()
        m.rng = _rng_state()
        m.result.history.append(record)
        if m.log is not None:
            m.log.evaluation(record)
        best = min(m.result.history, key=lambda r: (r["val_loss"], r["step"]))
        if best is record:
            m.result.best_step = record["step"]
            m.result.best_state = {k: v.detach().cpu().clone() for k, v in m.model.state_dict().items()}

    def _checkpoint(self, m: _Member) -> None:
        if m.path is None:
            return
        self._unstack(m.index)
        save_checkpoint(m.path, {"format": CHECKPOINT_FORMAT, "fingerprint": m.full_fingerprint, "step": m.result.step,
                                 "model": m.model.state_dict(), "optimizer": self._optimizer_state(m.index), "rng": m.rng,
                                 "history": m.result.history, "best_step": m.result.best_step,
                                 "best_state": m.result.best_state, "wall_s": m.result.wall_s})

    # -- one step of some members ------------------------------------------------------------------
    def _step(self, active: list[_Member]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One ``train()`` step of each member in ``active`` (members at one step and optimiser step);
        returns their data losses and the aux losses of those with an aux term (in order)."""
        everyone = len(active) == len(self.members)
        rows = None if everyone else torch.tensor([m.index for m in active], device=self.device)

        def take(t: torch.Tensor) -> torch.Tensor:
            return t if rows is None else t[rows]

        # Everyone: the stacked leaves themselves.  Some: their rows, as leaves of their own, written back below.
        params = self.params if rows is None else {k: v.detach()[rows].requires_grad_(v.requires_grad)
                                                   for k, v in self.params.items()}
        state = {**{f"inner.{k}": v for k, v in params.items()}, **{f"inner.{k}": take(v) for k, v in self.buf.items()}}
        cfg = active[0].cfg
        inputs, targets = self.data.batch(active, 0, cfg.batch_size)
        self._check_positions(inputs)
        data_loss = _ensemble_losses(self.net, state, inputs, targets)
        total = data_loss.sum()
        aux_loss = None
        with_aux = [j for j, m in enumerate(active) if m.has_aux]
        if with_aux:
            sub = None if len(with_aux) == len(active) else torch.tensor(with_aux, device=self.device)
            aux_state = state if sub is None else {k: v[sub] for k, v in state.items()}
            a_in, a_tg = self.aux.batch([active[j] for j in with_aux], 1, cfg.aux_batch_size)
            self._check_positions(a_in)
            aux_loss = _ensemble_losses(self.net, aux_state, a_in, a_tg)
            weight = torch.tensor([active[j].cfg.aux_weight for j in with_aux], dtype=aux_loss.dtype, device=self.device)
            total = total + (weight * aux_loss).sum()
        total.backward()
        with torch.no_grad():
            used = [k for k in self.trainable if params[k].grad is not None]  # torch skips a parameter without a gradient
            grads = [g for g in (params[k].grad for k in used) if g is not None]
            if cfg.grad_clip and grads:
                _clip_each(grads, cfg.grad_clip)
            exp_avg = [take(self.exp_avg[k]) for k in used]
            exp_avg_sq = [take(self.exp_avg_sq[k]) for k in used]
            steps = [torch.tensor(self.opt_step[active[0].index], dtype=_step_dtype()) for _ in used]
            g = self.group
            adam([params[k] for k in used], grads, exp_avg, exp_avg_sq, [], steps, foreach=g["foreach"],
                 capturable=g["capturable"], differentiable=g["differentiable"], fused=g["fused"],
                 decoupled_weight_decay=g["decoupled_weight_decay"], amsgrad=g["amsgrad"], beta1=g["betas"][0],
                 beta2=g["betas"][1], lr=g["lr"], weight_decay=g["weight_decay"], eps=g["eps"], maximize=g["maximize"])
            for k in used:
                params[k].grad = None
            if rows is not None:
                for j, k in enumerate(used):
                    self.params[k][rows] = params[k].detach()
                    self.exp_avg[k][rows] = exp_avg[j]
                    self.exp_avg_sq[k][rows] = exp_avg_sq[j]
        for m in active:
            self.opt_step[m.index] += 1
            self.has_state[m.index].update(used)
        return data_loss.detach(), None if aux_loss is None else aux_loss.detach()

    def _check_positions(self, inputs: torch.Tensor) -> None:
        """The length check the model's own forward makes (skipped by :func:`_decoder_body`), on the whole batch."""
        t = inputs.shape[-1]
        if self.max_positions is not None and t > self.max_positions:
            raise InputTooLong(f"{t} positions exceed the model's max_positions = {self.max_positions}")

    def _check_ids(self, inputs: torch.Tensor) -> None:
        """The id check of the model's own forward (skipped by :func:`_decoder_body`), once on every example."""
        ref = self.members[0].model
        limit = ref.config.n_inputs if isinstance(ref, DecoderTransformer) else self.vocab.n_inputs
        if inputs.numel() and (int(inputs.min()) < 0 or int(inputs.max()) >= limit):
            bad = int(inputs.min()) if int(inputs.min()) < 0 else int(inputs.max())
            raise UnknownToken(f"token id {bad} is outside the input vocabulary 0..{limit - 1}")

    # -- the loop ----------------------------------------------------------------------------------
    def run(self, resume: bool, stop_after: int | None, progress: bool) -> list[MemberResult]:
        members = self.members
        fresh = [m for m in members if not (resume and m.path is not None and m.path.exists())]
        for m in members:  # every checkpoint is read before anything is trained or written
            if m not in fresh:
                self._load(m)
        for m in fresh:
            if m.run_dir is not None:
                m.run_dir.mkdir(parents=True, exist_ok=True)
            torch.manual_seed(m.cfg.seed)
            m.rng = _rng_state()
        self._stack()
        self._stack_moments()
        for m in members:
            m.model.train()
        self.net.train()
        total = sum(m.cfg.steps for m in members)
        for m in members:
            if m.log is not None:
                m.log.start(m.result.step, resumed=m.result.step > 0 or bool(m.result.history))
        out = Progress(total, label=f"ensemble of {len(members)}", initial=sum(m.result.step for m in members),
                       enabled=progress, mininterval=1.0, terminal_only=True, unit="step")
        try:
            self._loop(members, stop_after, progress, out)
        finally:
            out.close()
        for m in members:
            self._unstack(m.index)
            m.result.finished = not m.pending
        return [m.result for m in members]


def _regime(aux_loss: torch.Tensor | None, aux_of: dict[int, int], index: int) -> float | None:
    """Member ``index``'s regime loss of the step (None: it has no regime term)."""
    return None if aux_loss is None or index not in aux_of else float(aux_loss[aux_of[index]])


def _step_dtype() -> torch.dtype:
    """The dtype of AdamW's ``step`` state (torch.optim.optimizer's ``_get_scalar_dtype``, not fused)."""
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def _clip_each(grads: list[torch.Tensor], max_norm: float) -> None:
    """``torch.nn.utils.clip_grad_norm_`` applied to each member's own gradients (row i of every stacked
    gradient): its global 2-norm over its tensors, ``max_norm / (norm + 1e-6)`` clamped at 1, in place."""
    rows = grads[0].shape[0]
    norms = torch.stack([torch.linalg.vector_norm(g.reshape(rows, -1), 2, dim=1) for g in grads], dim=1)
    total = torch.linalg.vector_norm(norms, 2, dim=1)
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for g in grads:
        g.mul_(coef.view(rows, *([1] * (g.dim() - 1))))
