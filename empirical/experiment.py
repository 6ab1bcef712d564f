"""The rule-extrapolation experiment: train (language × architecture × regime × seed) runs, evaluate
them, certify each one's saturation gap, and aggregate.

One run (:func:`run_one`): build the data (:func:`empirical.data.language_data`), the model
(:func:`empirical.architectures.build_model`), the regime pairs (OOD prompts of ``aux_lengths`` with
oracle or violating completions), train with :func:`empirical.train.train` evaluating every
``eval_every`` steps (test loss in both conventions, the four rule metrics on the paper's prompts,
greedy), then compute the saturation gap of the best-validation weights
(:func:`empirical.saturation.saturation_gap`).  Its folder holds ``checkpoint.pt`` and ``result.json``;
:func:`recheck_gap` re-derives a stored run's gap from that checkpoint by the same code path and compares.

Two aggregations of a run's evaluation history, both stored:

* ``best-validation`` (honest, the default): every number at the evaluation of lowest validation
  loss (the exact test loss when P is enumerable, else the held-out sample's);
* ``max-over-checkpoints`` (the companion paper's notebooks): each rule metric's maximum over the
  evaluations and the minimum test loss — numbers possibly from different checkpoints.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from constructions.distill import resolve_device as _resolve_device
from empirical.architectures import SIZES, ModelSize, build_model, check_architecture, check_fits, parameter_count
from empirical.data import LanguageData, Vocab, check_regime, language_data, regime_pairs
from empirical.errors import InvalidExperimentConfig
from empirical.executors import Executor, LocalExecutor
from empirical.metrics import measure_losses, rule_metrics_batched
from empirical.protocol import EVALUATED, RegimePrompts, regime_prompts
from empirical.rows import FINISHED_METRICS, RULE_METRICS, GapRecord, RunRow, UnfinishedRun
from empirical.saturation import SaturationGap, saturation_gap
from empirical.tblog import RunLog
from empirical.train import TrainConfig, TrainResult, train
from theory import conventions
from theory.fileio import write_atomic
from theory.languages import get_language
from theory.prompts import PromptSet
from theory.validation import check_int

AGGREGATIONS = ("best-validation", "max-over-checkpoints")
METRICS = RULE_METRICS + FINISHED_METRICS


@dataclass(frozen=True)
class Preset:
    """Everything a size fixes: data sizes, model widths, training schedule."""

    n_max: dict[str, int]  # L3, L5: n = 1..n_max
    max_length: dict[str, int]  # random-word languages: the longest word
    n_train: int
    model: ModelSize
    train: TrainConfig


PRESETS = {
    # Minutes on 2 CPU cores: aⁿbⁿ with n ≤ 16 (2n ≤ 32), small models, 1,500 steps.  Random words up to
    # length 12, L6 up to 10: its 62,842 words of length ≤ 12 (178,635 support prefixes) take 20-70 s per
    # certified gap on 2 cores, its 6,214 of length ≤ 10 a few seconds (L4: 10,066 words at 12).
    "cpu": Preset({"L3": 16, "L5": 8}, {"L1": 12, "L2": 12, "L4": 12, "L6": 10}, 2048, SIZES["cpu"],
                  TrainConfig(steps=1500, batch_size=32, lr=3e-3, eval_every=250, checkpoint_every=250)),
    # The papers' data (2n ≤ 256, 3n ≤ 255) and Transformer; for a GPU.  The papers train 50,000
    # epochs; 20,000 steps of 128 words is what fits a short GPU session.
    "paper": Preset({"L3": 128, "L5": 85}, {"L1": 256, "L2": 256, "L4": 256, "L6": 256}, 8192, SIZES["paper"],
                    TrainConfig(steps=20000, batch_size=128, lr=1e-3, aux_batch_size=128, eval_every=1000,
                                checkpoint_every=1000)),
}


@dataclass(frozen=True)
class RunSpec:
    """One run: what is trained and how (JSON-able; its dict is the checkpoint's fingerprint)."""

    language: str
    arch: str
    regime: str
    seed: int
    size: str = "cpu"
    steps: int | None = None  # None: the preset's
    aux_lengths: tuple[int, ...] | None = None  # None: the protocol's default (empirical.protocol.default_lengths)
    train_on_evaluated_prompts: bool = False  # False: the regime term's prompts are held out from the evaluated ones
    convention: str = conventions.DEFAULT_CONVENTION  # theory.conventions: the language, prompts and R2c read so

    @property
    def name(self) -> str:
        suffix = "" if self.convention == conventions.DEFAULT_CONVENTION else f"-{self.convention}"
        return f"{self.language}-{self.arch}-{self.regime}-s{self.seed}{suffix}"

    def to_dict(self) -> dict[str, Any]:
        """The spec as JSON (the checkpoint's fingerprint); the default convention is left out, so a checkpoint
        written before conventions existed still resumes."""
        d = asdict(self)
        d["aux_lengths"] = list(self.aux_lengths) if self.aux_lengths is not None else None
        if self.convention == conventions.DEFAULT_CONVENTION:
            del d["convention"]
        return d


def resolve_device(name: str) -> torch.device:
    """:func:`constructions.distill.resolve_device` (``auto`` → cuda when available, else cpu; ``cuda``
    without a GPU is refused), raising :class:`InvalidExperimentConfig`."""
    return _resolve_device(name, error=InvalidExperimentConfig)


def preset(size: str) -> Preset:
    if size not in PRESETS:
        raise InvalidExperimentConfig(f"unknown size {size!r}; known: {', '.join(PRESETS)}")
    return PRESETS[size]


@lru_cache(maxsize=16)
def data_for(language: str, size: str, convention: str = conventions.DEFAULT_CONVENTION) -> LanguageData:
    """The data of a language (under ``convention``: :func:`theory.conventions.language`) at a size; the
    same for every seed (seeds vary the initialisation and the batch order, not the data)."""
    p = preset(size)
    lang = conventions.language(language, convention)
    return language_data(lang, n_max=p.n_max.get(lang.name, 16), max_length=p.max_length.get(lang.name, 16),
                         n_train=p.n_train)


def validate(spec: RunSpec) -> None:
    """Refuse a bad run before anything is trained (unknown names, a regime that does not apply)."""
    lang = get_language(spec.language)
    conventions.check_convention(spec.convention)
    check_architecture(spec.arch)
    preset(spec.size)
    check_regime(lang, spec.regime)
    if spec.aux_lengths is not None and not all(isinstance(n, int) and 1 <= n <= 16 for n in spec.aux_lengths):
        raise InvalidExperimentConfig(f"regime prompt lengths {spec.aux_lengths!r} must be integers in 1..16")
    if spec.regime != "ml":
        regime_prompt_set(spec)  # a held-out protocol with nothing left to train on is refused here
    elif spec.aux_lengths is not None or spec.train_on_evaluated_prompts:
        raise InvalidExperimentConfig(f"{spec.name}: regime prompt options apply to the adversarial and oracle regimes only")
    if spec.steps is not None:
        check_int(spec.steps, "steps =", minimum=1, error=InvalidExperimentConfig)


def regime_prompt_set(spec: RunSpec) -> RegimePrompts:
    """The OOD prompts the regime term of ``spec`` trains on (:func:`empirical.protocol.regime_prompts`):
    held out from the evaluated prompts unless ``spec.train_on_evaluated_prompts``."""
    return regime_prompts(spec.language, spec.aux_lengths, train_on_evaluated_prompts=spec.train_on_evaluated_prompts)


def generation_budget(data: LanguageData, prompts: PromptSet) -> int:
    """Greedy tokens allowed per prompt, EOS included: up to the data's longest word (the papers
    generate to 256 − |prompt|), but never fewer than |prompt| + 1, which completes any OOD prompt of
    the six languages (balancing counts or closing brackets takes at most |prompt| symbols)."""
    n = max(len(u) for u in prompts.prompts)
    return max(data.max_length + 1 - n, n + 1)


def plan(spec: RunSpec) -> tuple[LanguageData, PromptSet, tuple, TrainConfig, int]:
    """(data, prompts, regime pairs, training config, positions) of a run."""
    validate(spec)
    lang = conventions.language(spec.language, spec.convention)
    data = data_for(lang.name, spec.size, spec.convention)
    prompts = conventions.prompt_set(lang, spec.convention)
    pairs = regime_pairs(lang, spec.regime, regime_prompt_set(spec).prompts) if spec.regime != "ml" else ()
    cfg = preset(spec.size).train
    cfg = replace(cfg, seed=spec.seed, steps=spec.steps or cfg.steps,
                  eval_every=min(cfg.eval_every, spec.steps or cfg.steps),
                  checkpoint_every=min(cfg.checkpoint_every, spec.steps or cfg.steps))
    longest_prompt = max(len(u) for u in prompts.prompts)
    positions = max(data.max_length + 2, longest_prompt + generation_budget(data, prompts) + 1,
                    max((len(u) + len(z) + 2 for u, z in pairs), default=0))
    return data, prompts, pairs, cfg, positions


def check_memory(spec: RunSpec, device: torch.device, budget: int | None = None) -> int:
    """The run's memory estimate in bytes; raises ConfigTooLarge before training when it cannot fit."""
    data, _prompts, _pairs, cfg, positions = plan(spec)
    vocab = Vocab(data.language.alphabet)
    batch = cfg.batch_size + (cfg.aux_batch_size if spec.regime != "ml" else 0)
    return check_fits(spec.arch, vocab, positions, preset(spec.size).model, batch, positions, device, budget)


def step_work(language: str, arch: str, size: str) -> tuple[int, int]:  # the paper's data: the size is the same
    """(parameters of one model, parameters × tokens of one training step) at a size: the second is
    what a CPU step's time grows with, so the ratio of two sizes' step work scales a measured rate."""
    data = data_for(language, size)
    vocab = Vocab(data.language.alphabet)
    positions = data.max_length + 2  # SOS and EOS
    params = parameter_count(arch, vocab, positions, preset(size).model)
    return params, params * preset(size).train.batch_size * positions


def _evaluator(data: LanguageData, prompts: PromptSet, vocab: Vocab,
               convention: str = conventions.DEFAULT_CONVENTION) -> Callable[[torch.nn.Module], dict[str, Any]]:
    """Evaluation of a float64 copy of the network: the same model whose saturation gap is certified,
    and greedy argmaxes that do not flip with float32 rounding (which depends on the batch shape).
    ``val_loss`` is in nats per sequence (what the training loop's progress line says), the test losses
    per padded token and per token."""

    def evaluate(model: torch.nn.Module) -> dict[str, Any]:
        model = copy.deepcopy(model).to(torch.float64)
        tl = measure_losses(model, data)
        rm = rule_metrics_batched(model, vocab, prompts, generation_budget(data, prompts), convention=convention)
        rec: dict[str, Any] = {"val_loss": tl.per_sequence, "test_loss_padded": tl.padded, "test_loss_token": tl.per_token}
        for key, val in (("id_r1", rm.id_r1), ("id_r2", rm.id_r2), ("ood_r1", rm.ood_r1), ("ood_r2c", rm.ood_r2_completion),
                         ("id_r1_finished", rm.id_r1_finished), ("id_r2_finished", rm.id_r2_finished),
                         ("ood_r1_finished", rm.ood_r1_finished), ("ood_r2c_finished", rm.ood_r2_completion_finished)):
            rec[key] = None if val is None else float(val)
        rec["ood_finished"] = rm.ood_finished / rm.n_ood if rm.n_ood else None
        rec["id_finished"] = rm.id_finished / rm.n_id if rm.n_id else None
        return rec

    return evaluate


def aggregate(history: list[dict], how: str) -> dict:
    """A run's numbers under ``how`` (module docstring): test losses and the four rule metrics."""
    if how not in AGGREGATIONS:
        raise InvalidExperimentConfig(f"unknown aggregation {how!r}; known: {', '.join(AGGREGATIONS)}")
    if how == "best-validation":  # the same choice as the training loop's best weights
        best = min(history, key=lambda r: (r["val_loss"], r["step"]))
        return {k: best.get(k) for k in ("step", "test_loss_padded", "test_loss_token", *METRICS, "id_finished",
                                          "ood_finished")}
    evals = [h for h in history if h["step"] > 0] or history  # the untrained model is not a checkpoint
    out = {"step": None, "test_loss_padded": min(r["test_loss_padded"] for r in evals),
           "test_loss_token": min(r["test_loss_token"] for r in evals)}
    for k in METRICS:
        vals = [r[k] for r in evals if r.get(k) is not None]
        out[k] = max(vals) if vals else None
    return out


@dataclass
class _Run:
    """What one run trains: its data, prompts, regime pairs, schedule, fresh model, folder and evaluator."""

    spec: RunSpec
    data: LanguageData
    prompts: PromptSet
    pairs: tuple
    cfg: TrainConfig
    positions: int
    vocab: Vocab
    model: torch.nn.Module
    run_dir: Path
    fingerprint: dict[str, Any]
    evaluate: Callable[[torch.nn.Module], dict[str, Any]]


def _setup(spec: RunSpec, out: Path) -> _Run:
    data, prompts, pairs, cfg, positions = plan(spec)
    vocab = Vocab(data.language.alphabet)
    model = build_model(spec.arch, vocab, positions, preset(spec.size).model, spec.seed)
    return _Run(spec, data, prompts, pairs, cfg, positions, vocab, model, out / spec.name, spec.to_dict(),
                _evaluator(data, prompts, vocab, spec.convention))


def run_one(spec: RunSpec, out: Path, device: torch.device, *, resume: bool = False, progress: bool = True,
            stop_after: int | None = None, log_dir: Path | None = None) -> RunRow | UnfinishedRun:
    """Train, evaluate and certify one run; write ``out/<name>/result.json`` (the row as
    :meth:`empirical.rows.RunRow.to_dict`, and the evaluation history); return its record (an
    :class:`empirical.rows.UnfinishedRun` when stopped early, and nothing is written).  With ``log_dir``,
    the training curves and the recorded result also go to TensorBoard event files in
    ``log_dir/<name>/`` (:mod:`empirical.tblog`).

    Raises:
        UnknownArchitecture, UnknownRegime, InvalidLanguage, InvalidExperimentConfig, ConfigTooLarge,
        CorruptCheckpoint (on resume).
    """
    run = _setup(spec, out)
    log = RunLog(log_dir, spec.name) if log_dir is not None else None
    try:
        res = train(run.model, run.vocab, run.data.train, run.cfg, aux_pairs=run.pairs, evaluate=run.evaluate,
                    run_dir=run.run_dir, fingerprint=run.fingerprint, resume=resume, stop_after=stop_after, device=device,
                    label=spec.name, progress=progress, log=log)
        if not res.finished:
            return UnfinishedRun(spec.name, res.step)
        row = _finish(run, res, device)
        if log is not None:
            log.result(row, summary_line(row))
        return row
    finally:
        if log is not None:
            log.close()


def _finish(run: _Run, res: TrainResult, device: torch.device) -> RunRow:
    """The record of a finished run (best-validation weights → certified gap, both aggregations), written to
    its ``result.json``."""
    spec, data, prompts, vocab, positions, model, run_dir = (run.spec, run.data, run.prompts, run.vocab, run.positions,
                                                             run.model, run.run_dir)
    result_path = run_dir / "result.json"
    if res.best_state is None or res.best_step is None:  # a finished run evaluated at least its last step
        raise AssertionError(f"{spec.name}: finished without a best-validation evaluation")
    gap_record, gap_note = _gap_of_weights(spec, data, vocab, positions, res.best_state, device)
    honest, published = aggregate(res.history, "best-validation"), aggregate(res.history, "max-over-checkpoints")
    trained_on = regime_prompt_set(spec) if spec.regime != "ml" else None
    record = RunRow(
        name=spec.name, language=spec.language, arch=spec.arch, regime=spec.regime, seed=spec.seed, size=spec.size,
        steps=spec.steps, aux_lengths=spec.aux_lengths, steps_done=res.step, wall_s=round(res.wall_s, 3),
        best_step=res.best_step, params=sum(p.numel() for p in model.parameters()), test_exact=data.test_exact,
        data=data.description, step=honest["step"],
        test_loss_padded=honest["test_loss_padded"], test_loss_token=honest["test_loss_token"],
        id_r1=honest["id_r1"], id_r2=honest["id_r2"], ood_r1=honest["ood_r1"], ood_r2c=honest["ood_r2c"],
        min_test_loss_padded=published["test_loss_padded"], min_test_loss_token=published["test_loss_token"],
        max_id_r1=published["id_r1"], max_id_r2=published["id_r2"], max_ood_r1=published["ood_r1"],
        max_ood_r2c=published["ood_r2c"], gap=gap_record, gap_note=None if gap_record is not None else gap_note,
        regime_prompts=None if trained_on is None else trained_on.protocol,
        regime_prompt_count=None if trained_on is None else len(trained_on.prompts),
        regime_prompt_lengths=None if trained_on is None else trained_on.lengths,
        convention=spec.convention, prompts=prompts.description, id_finished=honest["id_finished"],
        ood_finished=honest["ood_finished"],
        **{k: honest[k] for k in FINISHED_METRICS}, **{f"max_{k}": published[k] for k in FINISHED_METRICS})
    run_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(result_path, json.dumps({"row": record.to_dict(), "history": res.history}, indent=1, sort_keys=True,
                                         default=str) + "\n")
    return record


def _gap_of_weights(spec: RunSpec, data: LanguageData, vocab: Vocab, positions: int, state: dict,
                    device: torch.device) -> tuple[GapRecord | None, str]:
    """(the gap record, why there is none) of the weights ``state`` of ``spec``'s model: the model rebuilt as
    training built it, the state loaded, :func:`empirical.saturation.saturation_gap` on ``data``'s distribution.
    The one code path of a run's certified gap, at the end of training and in :func:`recheck_gap`."""
    model = build_model(spec.arch, vocab, positions, preset(spec.size).model, spec.seed)
    model.load_state_dict(state)
    model.to(device)
    if not data.test_exact:
        return None, "support too large to enumerate"
    try:
        gap: SaturationGap = saturation_gap(model, data.distribution)
    except InvalidExperimentConfig as e:
        return None, str(e)
    lo_t, hi_t = gap.per_token()
    lo_p, hi_p = gap.padded()
    return GapRecord(gap_lo=gap.kl_lo, gap_hi=gap.kl_hi, gap_padded_lo=lo_p, gap_padded_hi=hi_p, gap_token_lo=lo_t,
                     gap_token_hi=hi_t, floor_padded=gap.floor_padded(), floor_token=float(gap.entropy) / gap.per_token_divisor,
                     entropy=float(gap.entropy), gap_prefixes=gap.prefixes, gap_method=gap.method,
                     gap_rigorous=gap.rigorous), ""


RECHECK_OUTCOMES = ("identical", "contained", "no gap", "mismatch", "unavailable")
"""What :func:`recheck_gap` found: the stored gap is bit for bit the re-derived one; it contains it (each stored
bracket holds the fresh one, the other fields equal); the run stored no gap and none was re-derived; the stored gap
is not what the weights give; the weights could not be read (no checkpoint, damaged, another run's)."""


@dataclass(frozen=True)
class GapRecheck:
    """A stored run's gap against the one re-derived from its own best-validation weights
    (:func:`recheck_gap`): the ``outcome`` (:data:`RECHECK_OUTCOMES`), the re-derived ``fresh`` gap (None when
    there is none or the weights could not be read), ``why`` (empty when the stored gap stands) and the stored
    ``row``."""

    outcome: str
    fresh: GapRecord | None
    why: str
    row: RunRow

    @property
    def stands(self) -> bool:
        """The stored gap is what the weights give (or contains it), or neither has one."""
        return self.outcome in ("identical", "contained", "no gap")

    @property
    def reason(self) -> str:
        return f"{self.row.name}: {self.why}" if self.why else ""

    def reported(self, epsilon: float) -> RunRow:
        """The row to report and certify at ``epsilon``: the stored one when its gap stands; else one whose gap
        is not certified — the fresh gap when it is certainly above ``epsilon`` (its lower bound: so the
        certificate is falsified on it), otherwise none, with ``why`` as its note (the certificate cannot be
        verified on it)."""
        if self.stands:
            return self.row
        if self.fresh is not None and self.fresh.certified and self.fresh.gap_token_lo > epsilon:
            return replace(self.row, gap=self.fresh, gap_note=None)
        return replace(self.row, gap=None, gap_note=self.why)


def run_spec_of(row: RunRow) -> RunSpec:
    """The :class:`RunSpec` a stored row was trained from (its name, language, architecture, regime, seed, size,
    steps, regime prompt lengths and protocol, convention).

    Raises:
        InvalidExperimentConfig (or the typed error of :func:`validate`): a row no run spec gives.
    """
    spec = RunSpec(row.language, row.arch, row.regime, row.seed, row.size, row.steps,
                   tuple(row.aux_lengths) if row.aux_lengths is not None else None,
                   row.regime_prompts == EVALUATED, row.convention)
    validate(spec)
    if spec.name != row.name:
        raise InvalidExperimentConfig(f"run row {row.name!r}: its fields make the run {spec.name!r}")
    return spec


def _same_gap(stored: GapRecord, fresh: GapRecord) -> str | None:
    """"identical", "contained" (each stored bracket holds the fresh one, the other fields equal) or None."""
    if stored == fresh:
        return "identical"
    brackets = (("gap_lo", "gap_hi"), ("gap_padded_lo", "gap_padded_hi"), ("gap_token_lo", "gap_token_hi"))
    others = [f for f in GapRecord.__dataclass_fields__ if not any(f in b for b in brackets)]
    if any(getattr(stored, f) != getattr(fresh, f) for f in others):
        return None
    holds = all(getattr(stored, lo) <= getattr(fresh, lo) and getattr(fresh, hi) <= getattr(stored, hi)
                for lo, hi in brackets)
    return "contained" if holds else None


def recheck_gap(row: RunRow, run_dir: Path, device: torch.device | str = "cpu") -> GapRecheck:
    """Re-derive the certified gap of a stored run from its own ``run_dir/checkpoint.pt``: its best-validation
    weights loaded into the model rebuilt from the row's :class:`RunSpec` (:func:`run_spec_of`, the folder named
    as the run), the checkpoint's fingerprint that of this spec and schedule (else refused), its best step and
    steps those of the row; then the gap of those weights (the code path of training) compared with the row's.
    Never raises for a bad run folder: the outcome says what was wrong, naming the run."""
    from empirical.train import CHECKPOINT_NAME, load_checkpoint
    from theory.errors import NonidError

    def unavailable(why: str) -> GapRecheck:
        return GapRecheck("unavailable", None, f"not re-derived: {why}", row)

    path = Path(run_dir) / CHECKPOINT_NAME
    if Path(run_dir).name != row.name:
        return unavailable(f"its result.json lies in the folder {Path(run_dir).name!r}")
    try:
        spec = run_spec_of(row)
        data, _prompts, _pairs, cfg, positions = plan(spec)
        if not path.is_file():
            return unavailable(f"no {CHECKPOINT_NAME} (the weights its gap was computed from)")
        ckpt = load_checkpoint(path, dict(spec.to_dict(), train=cfg.to_dict()))
    except NonidError as e:
        return unavailable(str(e).split("; the run is left untouched")[0])
    state = ckpt.get("best_state")
    if not isinstance(state, dict) or ckpt.get("best_step") != row.best_step or ckpt.get("step") != row.steps_done:
        return unavailable(f"its {CHECKPOINT_NAME} holds the best-validation weights of step {ckpt.get('best_step')!r} "
                           f"after {ckpt.get('step')!r} steps, its result.json step {row.best_step} after {row.steps_done}")
    vocab = Vocab(data.language.alphabet)
    try:
        fresh, _note = _gap_of_weights(spec, data, vocab, positions, state, torch.device(device))
    except (RuntimeError, ValueError, KeyError) as e:
        return unavailable(f"its best-validation weights do not fit the model ({str(e).splitlines()[0][:120]})")
    stored = row.gap
    if stored is None and fresh is None:
        return GapRecheck("no gap", None, "", row)
    if stored is not None and fresh is not None and (same := _same_gap(stored, fresh)):
        return GapRecheck(same, fresh, "", row)

    def show(g: GapRecord | None) -> str:
        return "none" if g is None else f"[{_bound(g.gap_token_lo, 'down')}, {_bound(g.gap_token_hi, 'up')}] nats/token"

    return GapRecheck("mismatch", fresh, f"result.json's gap {show(stored)} is not the {show(fresh)} its stored weights give",
                      row)


def _bound(x: float, direction: str) -> str:
    """A printed bound with 7 significant digits, rounded outward (so it still bounds)."""
    from fractions import Fraction

    from theory.exact import scientific

    return scientific(Fraction(x), direction, 7)


def summary_line(r: RunRow) -> str:
    """One printed line per finished run: the best-validation test loss and the saturation gap over the
    floor, all three in nats per padded token (the gap ``[lo, hi]`` certified, rounded outward; ``≈ x``
    when it is a float measurement, not certified) and the gap's certified upper bound in nats per token
    (the certificate's ε is in that unit), the rule metrics, the best step and the wall time."""
    g = r.gap
    if g is None:
        gap = f"gap n/a ({r.gap_note or ''})"
    elif not math.isfinite(g.gap_hi):
        gap = "gap +inf"
    elif not g.gap_rigorous:
        gap = f"gap ≈ {g.gap_padded_hi:.6e} (float, not certified) over floor {g.floor_padded:.5f}"
    else:
        gap = (f"gap [{_bound(g.gap_padded_lo, 'down')}, {_bound(g.gap_padded_hi, 'up')}] over floor {g.floor_padded:.5f}"
               f" (≤ {_bound(g.gap_token_hi, 'up')} nats/token)")

    def f(x: float | None) -> str:
        return "  -  " if x is None else f"{x:.3f}"
    return (f"{r.name:<28} test loss (nats/padded token) {r.test_loss_padded:.5f}  {gap}  "
            f"ID R1 {f(r.id_r1)}  OOD R1 {f(r.ood_r1)}  OOD R2c {f(r.ood_r2c)}  "
            f"step {r.best_step}  {r.wall_s:.1f}s")


def _run_in_worker(spec: RunSpec, out: Path, device: str, resume: bool, progress: bool, threads: int | None,
                   log_dir: Path | None = None, bars: bool = False) -> RunRow:
    """One run of a grid wherever an executor runs it (this process, a worker process, a Ray task):
    ``threads`` torch threads, progress bars only with ``bars`` (the process owns the terminal)."""
    from constructions.progress import no_bars

    if threads:
        torch.set_num_threads(threads)
    if bars:
        return _finished(run_one(spec, out, torch.device(device), resume=resume, progress=progress, log_dir=log_dir))
    with no_bars():
        return _finished(run_one(spec, out, torch.device(device), resume=resume, progress=progress, log_dir=log_dir))


def _finished(row: RunRow | UnfinishedRun) -> RunRow:
    if not isinstance(row, RunRow):  # run_grid never stops a run early
        raise AssertionError(f"{row.name}: stopped at step {row.step}")
    return row


def run_grid(languages: Sequence[str], archs: Sequence[str], regimes: Sequence[str], seeds: Sequence[int], out: Path,
             device: torch.device, *, size: str = "cpu", steps: int | None = None, resume: bool = False,
             progress: bool = True, echo: Callable[[str], object] | None = print, memory_budget: int | None = None,
             threads: int | None = 1, jobs: int = 1, aux_lengths: Sequence[int] | None = None,
             train_on_evaluated_prompts: bool = False, prepare: Callable[[], object] | None = None,
             convention: str = conventions.DEFAULT_CONVENTION, ensemble: bool = False, executor: Executor | None = None,
             log_dir: Path | None = None) -> list[RunRow]:
    """Every run of the grid (each checked before any is trained), every one under ``convention``
    (:mod:`theory.conventions`); returns their records in grid order
    (:class:`empirical.rows.RunRow`, what :mod:`empirical.report` and :mod:`empirical.certificate` take).

    Where the runs train is the ``executor``'s choice (:mod:`empirical.executors`): by default a
    :class:`~empirical.executors.LocalExecutor` of ``jobs`` processes — in this process when ``jobs`` is 1,
    else that many runs at once in separate processes (CPU only: on a GPU the runs train here, one after
    another); a :class:`~empirical.executors.RayExecutor` trains each run as one Ray task of ``threads``
    CPUs (and one GPU on ``cuda``).  Pass ``jobs`` or an executor, not both.  Every executor calls the same
    worker function on the same run specs, so the rows do not depend on it (nor on ``jobs``).  On the CPU
    each run uses ``threads`` intra-op threads (default 1: these models are tiny, and more threads only
    contend).  ``prepare()`` is called once every run has been checked (names, lengths, memory) and before
    anything is written: the command line marks or clears its output folder there, so a refused grid leaves
    the folder as it was.  An interrupt stops every run at once (worker processes terminated, Ray tasks
    cancelled) and propagates; no row is returned for a run cut short.

    ``progress``: the training progress of each run and a bar of the finished runs (with an ETA) on
    stderr when it is a terminal (:class:`constructions.progress.Progress`); ``echo`` receives each
    finished run's :func:`summary_line` as it finishes.  ``log_dir``: TensorBoard event files of every run
    in ``log_dir/<run name>/`` (:mod:`empirical.tblog`; the path must be the same wherever the runs train).

    The adversarial and oracle terms train on OOD prompts held out from the evaluated ones (of
    ``aux_lengths``, default :func:`empirical.protocol.default_lengths`); ``train_on_evaluated_prompts``
    trains them on the evaluated prompts instead (:mod:`empirical.protocol`).  Each row records which.

    ``ensemble``: the runs whose models have the same shapes (one language, architecture, size and
    positions: the seeds and regimes of a cell) train together as one batched ensemble in this process
    (:func:`empirical.ensemble.train_ensemble`; equal to training each alone up to its stated rounding
    tolerance; an architecture vmap cannot batch, the LSTM, trains one run after another there), instead
    of one run after another (``jobs`` and executors other than the local one are then not used).
    Checkpoints, resume and rows are per run, as without it.

    Raises:
        InvalidExperimentConfig: a bad run, ``jobs`` and ``executor`` both given, ``ensemble`` with a
            non-local executor; ConfigTooLarge; CorruptCheckpoint (on resume); what a run raised.
    """
    lengths = tuple(aux_lengths) if aux_lengths else None
    specs = [RunSpec(lang, a, r, s, size, steps, lengths if r != "ml" else None,
                     train_on_evaluated_prompts if r != "ml" else False, convention)
             for lang in languages for a in archs for r in regimes for s in seeds]
    for spec in specs:
        validate(spec)
    check_int(jobs, "jobs =", minimum=1, error=InvalidExperimentConfig)
    if executor is not None and jobs != 1:
        raise InvalidExperimentConfig(f"jobs = {jobs} and an executor ({executor.name}) given: the executor decides "
                                      "how many runs train at once")
    runner: Executor = executor if executor is not None else LocalExecutor(jobs)
    if ensemble and not isinstance(runner, LocalExecutor):
        raise InvalidExperimentConfig(f"ensemble training runs in this process: it does not take the {runner.name} executor")
    if isinstance(runner, LocalExecutor) and (device.type != "cpu" or ensemble):
        runner = LocalExecutor(1)  # a GPU (or one ensemble) is this process's
    for spec in {replace(s, seed=0) for s in specs}:
        check_memory(spec, device, memory_budget)
    with runner.session():  # Ray started or joined (or refused) before anything is written
        return _run_specs(specs, Path(out), device, runner, resume=resume, progress=progress, echo=echo, threads=threads,
                          prepare=prepare, ensemble=ensemble, log_dir=log_dir)


def _run_specs(specs: list[RunSpec], out: Path, device: torch.device, runner: Executor, *, resume: bool, progress: bool,
               echo: Callable[[str], object] | None, threads: int | None, prepare: Callable[[], object] | None,
               ensemble: bool, log_dir: Path | None) -> list[RunRow]:
    """:func:`run_grid` once every run is checked and the executor's session is open."""
    if prepare is not None:
        prepare()
    out = out.absolute()  # a worker may run in another folder
    log_dir = None if log_dir is None else Path(log_dir).absolute()
    out.mkdir(parents=True, exist_ok=True)
    if ensemble:
        if device.type == "cpu" and threads:
            torch.set_num_threads(threads)
        return _run_ensembles(specs, out, device, resume=resume, progress=progress, echo=echo, log_dir=log_dir)
    from contextlib import closing

    from constructions.progress import Progress

    bars = runner.in_process() or len(specs) == 1 and isinstance(runner, LocalExecutor)
    work = [(spec, out, str(device), resume, progress, threads, log_dir, bars) for spec in specs]
    rows: dict[int, RunRow] = {}
    grid = Progress(len(specs), label="runs", enabled=progress and len(specs) > 1, terminal_only=True, unit="run",
                    mininterval=0.5)
    try:
        with closing(runner.imap_unordered(_run_packed, work, cpus=threads or 1,
                                             gpus=1 if device.type == "cuda" else 0)) as finished:
            for index, row in finished:
                rows[index] = row
                grid.advance(len(rows))
                if echo is not None:
                    grid.around(echo, summary_line(row))
    finally:
        grid.close()
    return [rows[i] for i in range(len(specs))]


def in_grid_order(rows: Sequence[RunRow]) -> list[RunRow]:
    """``rows`` in the order :func:`run_grid` returns a grid's: by language (L1..L6), architecture
    (:data:`empirical.names.ARCHITECTURES`), regime (ml, adversarial, oracle), convention, seed — the
    order of a rebuilt report, whatever folder order or machine the runs came from."""
    from empirical.names import ARCHITECTURES, REGIMES
    from theory.languages import LANGUAGES

    def key(r: RunRow) -> tuple:
        def rank(value: str, known: Sequence[str]) -> tuple[int, str]:
            return (list(known).index(value), "") if value in known else (len(known), value)

        return (rank(r.language, list(LANGUAGES)), rank(r.arch, ARCHITECTURES), rank(r.regime, REGIMES), r.convention,
                r.seed, r.name)

    return sorted(rows, key=key)


def _run_ensembles(specs: Sequence[RunSpec], out: Path, device: torch.device, *, resume: bool, progress: bool,
                   echo: Callable[[str], object] | None, log_dir: Path | None = None) -> list[RunRow]:
    """The grid as batched ensembles: runs grouped by their models' shapes and shared training settings,
    each group trained by :func:`empirical.ensemble.train_ensemble`, then finished one by one; rows in
    grid order."""
    from empirical.ensemble import SHARED_FIELDS, train_ensemble

    runs = [_setup(spec, out) for spec in specs]
    groups: dict[tuple, list[int]] = {}
    for i, run in enumerate(runs):
        shared = tuple(getattr(run.cfg, f) for f in SHARED_FIELDS)
        key = (run.spec.language, run.spec.convention, run.spec.arch, run.spec.size, run.positions, shared)
        groups.setdefault(key, []).append(i)
    rows: dict[int, RunRow] = {}
    for idx in groups.values():
        members = [runs[i] for i in idx]
        logs = [RunLog(log_dir, m.spec.name) if log_dir is not None else None for m in members]
        try:
            results = train_ensemble([m.model for m in members], members[0].vocab, [m.data.train for m in members],
                                     [m.cfg for m in members], aux_pairs_per_model=[m.pairs for m in members],
                                     evaluate_per_model=[m.evaluate for m in members],
                                     run_dirs=[m.run_dir for m in members], fingerprints=[m.fingerprint for m in members],
                                     resume=resume, device=device, labels=[m.spec.name for m in members], progress=progress,
                                     logs_per_model=logs)
            for i, m, res, log in zip(idx, members, results, logs):
                rows[i] = _finished(_finish(m, res, device) if res.finished else UnfinishedRun(m.spec.name, res.step))
                if log is not None:
                    log.result(rows[i], summary_line(rows[i]))
                if echo is not None:
                    echo(summary_line(rows[i]) + ("" if res.batched else f"  (not batched: {res.unbatched_reason})"))
        finally:
            for log in logs:
                if log is not None:
                    log.close()
    return [rows[i] for i in range(len(runs))]


def _run_packed(args: tuple) -> RunRow:
    return _run_in_worker(*args)
