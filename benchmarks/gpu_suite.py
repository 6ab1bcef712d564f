"""The prepared GPU suite: everything a lent GPU machine should measure, as one command that fits its
time (15 minutes of device time in all, at most 10 a command): ``--budget-s`` (default 510 s) is a
global deadline, and every part gets its share of what is left when it starts.

Parts, each timed, each printing its size and a time estimate first (and ``skipped: budget`` rather
than overrunning):

1. **aⁿbⁿ regimes at the paper's size** — L3 with n ≤ 128, the position paper's Transformer (size preset
   ``paper``: d_model 10, 5 heads, FF 1024, 5 layers), regimes ml / adversarial / oracle × 5 seeds, through
   :func:`empirical.experiment.run_grid`, with ``ensemble=True`` when it takes it (the 15 runs trained as
   one batched ensemble, :mod:`empirical.ensemble`), else one after another.  The schedule is the largest
   that fits (``--regime-steps`` fixes it instead): a calibration measures the step times (a few steps of
   bare training, of one run and of the ensemble) and the fixed cost of a run (one run of one step: two
   evaluations and the certified gap).  The gaps reached are compared with the published ones
   (``empirical/reference/anbn_regimes_published.csv``, padded convention).
2. **Distillation of the aⁿbⁿ pair** at the largest n ≤ 128 whose check fits: what ``nonid counterexample
   anbn --method distill --device cuda --n-max N`` does (:func:`constructions.export.build_pair`), with the
   students trained first in chunks that resume from their checkpoints until they reach the target or the
   time is spent; then the folder is written and re-verified as ``nonid check`` does.
3. **Rigorous exhaustive enclosure throughput** — :func:`benchmarks.bench_enclosure.bench_throughput`
   on every binary prefix of length ≤ 20 (d64 × 2 layers: random d128 × 4 networks have unbounded enclosures), after a calibration at length 16.

On the device machine, from the repository root, with its own python3 (only torch, numpy, sympy, mpmath,
networkx, hypothesis and safetensors are needed; never z3):

    python3 -m benchmarks.gpu_suite --write --export "$OUT"

Files go under ``--out`` (default ``out/benchmarks/gpu_suite``, git-ignored): the run folders, the pair,
``gpu_suite.json`` (every part's numbers), ``anbn_regimes.csv``, ``distill_certificate.json`` and, with
``--write``, ``BENCHMARKS.sections.md`` — the sections exactly as written into that machine's
BENCHMARKS.md.  ``--export DIR`` copies those few files to DIR after every part (a device machine returns
at most 8 files of its $OUT).  Back in the checkout, ``python -m benchmarks.gpu_suite --apply
DIR/BENCHMARKS.sections.md`` puts the sections into BENCHMARKS.md, stamp and machine line as written.

``--device cpu --tiny`` runs every part in a tiny configuration (L3 n ≤ 16, a few steps, 1 seed per
regime; distillation at n ≤ 4; enclosure at length ≤ 6): under a minute on 2 cores, the test's run.
Without CUDA, ``--device cuda`` (the default) is refused (one line, exit 2).  A part that raises prints one
line and the suite goes on (exit 1 at the end); an interrupt exits 130 and writes no section of the part
it stopped.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

import benchmarks.report as report
from theory.exact import scientific
from theory.fileio import write_atomic
from theory.tables import markdown_table

DEFAULT_BUDGET_S = 510.0
RESERVE_S = 10.0
"""Kept back from every part's share: writing sections and the summary, and the interpreter's exit."""
MIN_PART_S = 5.0
"""A part given less than this is skipped before it starts (its calibration alone would take that)."""
SAFETY = 0.85
"""The fraction of a part's budget its schedule may plan to use (the estimates are single measurements)."""
SECTIONS_FILE = "BENCHMARKS.sections.md"
SUMMARY_FILE = "gpu_suite.json"
REGIMES_CSV = "anbn_regimes.csv"
DISTILL_CERTIFICATE = "distill_certificate.json"
EXPORTED = (SECTIONS_FILE, SUMMARY_FILE, REGIMES_CSV, DISTILL_CERTIFICATE)
"""The files ``--export`` copies (after every part): few and small, what a device machine's $OUT returns."""
CHECK_S_PER_TOKEN = 2e-4
"""Seconds the exhaustive check of a distilled pair takes per (maximal word × position), on 2 CPU cores
(measured here: 1.5-12.9 s for aⁿbⁿ n ≤ 16..128; the check runs on the CPU, as the command's does)."""
_BLOCK = re.compile(r"<!-- bench:(gpu-[\w.-]+) -->\n.*?<!-- /bench:\1 -->\n", re.S)


@dataclass(frozen=True)
class SuiteConfig:
    """The sizes of one suite run: the paper-size defaults for the GPU, or :data:`TINY`.

    ``regime_steps`` fixes the schedule of part 1 (None: the largest that fits, at most ``regime_max_steps``,
    a multiple of ``step_quantum``); ``distill_n`` is the largest n tried in part 2 (halved while the check
    would not fit) and ``distill_max_steps`` the students' step cap (the command's default 20,000)."""

    regime_size: str = "paper"
    regime_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    regime_max_steps: int = 20_000
    regime_steps: int | None = None
    calibration_steps: int = 30
    step_quantum: int = 50
    distill_n: int = 128
    distill_max_steps: int = 20_000
    distill_first_chunk: int = 200
    enclosure_length: int = 20
    enclosure_d_model: int = 64  # 128 × 4 random networks have unbounded enclosures (even at length 2): 64 × 2 do not
    enclosure_layers: int = 2


TINY = SuiteConfig(regime_size="cpu", regime_seeds=(0,), regime_max_steps=5, calibration_steps=3, step_quantum=1,
                   distill_n=4, distill_max_steps=10, distill_first_chunk=10, enclosure_length=6)
"""Every part in seconds on 2 CPU cores (``--tiny``): L3 n ≤ 16 at ≤ 5 steps, 1 seed; n ≤ 4, 10 steps; length 6."""

REGIMES = ("ml", "adversarial", "oracle")


@dataclass(frozen=True)
class Clock:
    """The suite's global deadline (``time.perf_counter`` seconds)."""

    start: float
    deadline: float

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start


@dataclass(frozen=True)
class Context:
    """What every part is given: the sizes, the device, the output folder, the clock, how it was run."""

    config: SuiteConfig
    device: torch.device
    out: Path
    clock: Clock
    tiny: bool
    script: str


@dataclass
class PartResult:
    """One part's outcome: ``status`` ``ok``, ``skipped: budget …`` or ``failed: …``, its Markdown body,
    its numbers (JSON-able) and a one-line summary for the suite's table."""

    name: str
    title: str
    status: str
    wall_s: float = 0.0
    budget_s: float = 0.0
    body: str = ""
    numbers: dict[str, Any] = field(default_factory=dict)
    summary: str = ""


class _OutOfTime(Exception):
    """Raised from run_grid's echo hook to stop the grid between runs when the next would overrun."""


def say(text: str) -> None:
    print(text, flush=True)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_line(device: torch.device) -> str:
    """The card (or the CPU) and torch, for every section: ``machine()`` of the stamp names the CPU only."""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return (f"Device: **{torch.cuda.get_device_name(device)}** ({props.total_memory / 2**30:.0f} GiB, CUDA "
                f"{torch.version.cuda}), torch {torch.__version__}")
    return f"Device: **CPU** ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads), torch {torch.__version__}"


def _up(x: float, digits: int = 3) -> str:
    return "inf" if not math.isfinite(x) else scientific(Fraction(x), "up", digits)


def _down(x: float, digits: int = 3) -> str:
    return scientific(Fraction(max(x, 0.0)), "down", digits)


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n].rstrip() + " …"


def _f(x: float | None, fmt: str = ".3f") -> str:
    return "–" if x is None else format(x, fmt)


# ---- part 1: the aⁿbⁿ regime experiment ---------------------------------------------------------------
def _members(ctx: Context, regimes: Sequence[str], seeds: Sequence[int]) -> list[tuple[Any, ...]]:
    """(vocab, training words, regime pairs, training config, fresh model) of each run of the grid."""
    from empirical.architectures import build_model
    from empirical.data import Vocab
    from empirical.experiment import RunSpec, plan, preset

    size, out = ctx.config.regime_size, []
    for regime in regimes:
        for seed in seeds:
            data, _prompts, pairs, tcfg, positions = plan(RunSpec("L3", "transformer", regime, seed, size))
            vocab = Vocab(data.language.alphabet)
            out.append((vocab, data.train, pairs, tcfg, build_model("transformer", vocab, positions, preset(size).model, seed)))
    return out


def _seconds_per_step(ctx: Context, train_for: Callable[[int], object]) -> float:
    """``train_for(k)`` trains k steps (bare: no evaluation, no checkpoint); seconds per step after a warm-up
    of 2 steps (kernels, the allocator, vmap's first import)."""
    train_for(2)
    _sync(ctx.device)
    t0 = time.perf_counter()
    train_for(ctx.config.calibration_steps)
    _sync(ctx.device)
    return (time.perf_counter() - t0) / ctx.config.calibration_steps


def step_rates(ctx: Context, seeds: Sequence[int], ensemble: bool) -> dict[str, float]:
    """Seconds per training step: of one run of ``ml`` and of ``adversarial`` (oracle's is the same: the same
    extra batch of regime pairs), and with ``ensemble`` of the batched ensemble of every regime × seed."""
    from empirical.train import train

    def solo(regime: str) -> float:
        vocab, words, pairs, tcfg, model = _members(ctx, [regime], [0])[0]
        return _seconds_per_step(ctx, lambda k: train(model, vocab, words, replace(tcfg, steps=k, eval_every=k,
                                                                                    checkpoint_every=k),
                                                      aux_pairs=pairs, device=ctx.device, progress=False))

    rates = {"ml": solo("ml"), "adversarial": solo("adversarial")}
    rates["oracle"] = rates["adversarial"]
    if ensemble:
        from empirical.ensemble import train_ensemble

        ms = _members(ctx, REGIMES, seeds)
        try:
            rates["ensemble"] = _seconds_per_step(ctx, lambda k: train_ensemble(
                [m[4] for m in ms], ms[0][0], [m[1] for m in ms],
                [replace(m[3], steps=k, eval_every=k, checkpoint_every=k) for m in ms],
                aux_pairs_per_model=[m[2] for m in ms], device=ctx.device, progress=False))
        except torch.cuda.OutOfMemoryError:  # the grid then trains one run after another
            say(f"  the ensemble of {len(ms)} does not fit in the GPU's memory: one run after another")
            del ms
            torch.cuda.empty_cache()
    return rates


def _evaluations(steps: int, every: int) -> int:
    """Evaluations of a run of ``steps`` (empirical.experiment.plan: every min(every, steps) steps, and step 0)."""
    return 1 + math.ceil(steps / min(every, steps))


def choose_schedule(grid_step_s: float, fixed_s: float, eval_s: float, every: int, runs: int, available_s: float,
                    cap: int, quantum: int) -> int | None:
    """The most steps (a multiple of ``quantum``, at most ``cap``) for which a grid of ``runs`` runs fits in
    ``available_s``: each run costs ``fixed_s`` (two evaluations and the certified gap) + ``eval_s`` for each
    evaluation beyond two, and a training step of the whole grid ``grid_step_s`` (the runs' steps one after
    another, or the ensemble's one step).  None when even ``quantum`` steps do not fit."""
    def cost(steps: int) -> float:
        return runs * (fixed_s + max(0, _evaluations(steps, every) - 2) * eval_s) + steps * grid_step_s

    best = None
    for steps in range(quantum, cap + 1, quantum):
        if cost(steps) > available_s:
            break
        best = steps
    return best


def _published_gaps(rows: Sequence[Any], n_max: int) -> tuple[list[list[str]], dict[str, Any]]:
    """Per regime: our certified gaps (padded and per token) against the published test loss minus the floor."""
    from empirical.reference_data import published

    table, numbers = [], {}
    for regime in REGIMES:
        rs = [r for r in rows if r.regime == regime and r.gap is not None]
        if not rs:
            continue
        g = rs[0].gap
        factor = g.floor_token / g.floor_padded  # (T − 1)/(E|x| + 1): padded → per token, the same KL
        ours = [r.gap.gap_padded_hi for r in rs]
        pub = published("L3", "transformer", regime)
        loss = pub[0].values["test_loss"][0] if pub else None
        pub_gap = None if loss is None or n_max != 128 else loss - g.floor_padded
        reached = None if pub_gap is None else max(ours) <= pub_gap
        numbers[regime] = {"gap_padded_hi_max": max(ours), "gap_padded_hi_mean": sum(ours) / len(ours),
                           "published_gap_padded": pub_gap, "reached": reached}
        # the mean of the upper bounds exactly, then rounded up (a float mean could round below it); +∞ stays +∞
        mean_hi = (scientific(sum(map(Fraction, ours), Fraction(0)) / len(ours), "up", 3)
                   if all(math.isfinite(x) for x in ours) else "inf")
        token_hi = max(r.gap.gap_token_hi for r in rs)  # the certified per-token bound, not a float rescaling
        table.append([regime, str(len(rs)), f"≤ {mean_hi} (max ≤ {_up(max(ours))})",
                      f"≤ {_up(token_hi)}",
                      "not comparable (n ≤ %d, the paper's n ≤ 128)" % n_max if pub_gap is None
                      else f"{pub_gap:.4f} = {loss:.4f} − {g.floor_padded:.4f}",
                      "–" if pub_gap is None else f"{pub_gap * factor:.4f}",
                      "–" if reached is None else ("yes" if reached else f"no ({max(ours) / pub_gap:.1f}× the published)")])
    return table, numbers


def part_regimes(ctx: Context, budget: float) -> PartResult:
    """Part 1 (module docstring)."""
    from empirical.certificate import experiment_certificate, load_rows
    from empirical.experiment import PRESETS, run_grid
    from empirical.report import markdown, write_csv

    t_start = time.perf_counter()
    cfg = ctx.config
    pre = PRESETS[cfg.regime_size]
    n_max, m = pre.n_max["L3"], pre.model
    ensemble = "ensemble" in inspect.signature(run_grid).parameters

    def what(n_seeds: int) -> str:
        return (f"L3 n ≤ {n_max}, size {cfg.regime_size} (transformer d_model {m.d_model}, {m.n_heads} heads, FF {m.d_mlp}, "
                f"{m.n_layers} layers), regimes {'/'.join(REGIMES)} × {n_seeds} seeds = {3 * n_seeds} runs")

    say(f"part 1 (anbn regimes): {what(len(cfg.regime_seeds))}; budget {budget:.0f} s; "
        + ("ensemble=True (batched training)" if ensemble else "runs one after another"))
    seeds = list(cfg.regime_seeds)
    calib: dict[str, Any] = {}
    if cfg.regime_steps is not None:
        steps: int | None = cfg.regime_steps
        say(f"  schedule fixed by --regime-steps: {steps} steps per run")
    else:
        rates = step_rates(ctx, seeds, ensemble)
        ensemble = "ensemble" in rates
        t0 = time.perf_counter()
        one = run_grid(["L3"], ["transformer"], ["adversarial"], [0], ctx.out / "anbn-calibration", ctx.device,
                       size=cfg.regime_size, steps=1, progress=False, echo=None, threads=None)
        fixed_s = time.perf_counter() - t0
        eval_s = one[0].wall_s  # the training loop's wall: the evaluation at step 0 and one step
        calib = {"step_s": rates, "fixed_s": fixed_s, "eval_s": eval_s}
        available = (budget - (time.perf_counter() - t_start)) * SAFETY
        steps = None
        for n_seeds in dict.fromkeys([len(seeds), min(3, len(seeds))]):
            # fewer seeds in an ensemble: its measured step is kept (an upper bound)
            grid_step = rates["ensemble"] if ensemble else n_seeds * sum(rates[r] for r in REGIMES)
            steps = choose_schedule(grid_step, fixed_s, eval_s, pre.train.eval_every, 3 * n_seeds, available,
                                    cfg.regime_max_steps, cfg.step_quantum)
            if steps is not None:
                seeds = seeds[:n_seeds]
                calib["grid_step_s"] = grid_step
                break
        say(f"  calibration: {rates['ml'] * 1e3:.1f} ms/step (ml), {rates['adversarial'] * 1e3:.1f} ms/step (adversarial, "
            f"oracle)" + (f", {rates['ensemble'] * 1e3:.1f} ms/step for the ensemble of {3 * len(cfg.regime_seeds)}"
                          if ensemble else "")
            + f"; {fixed_s:.1f} s fixed per run (two evaluations + certified gap), {eval_s:.1f} s per evaluation")
        if steps is None:
            return PartResult("anbn-regimes", "", f"skipped: budget ({available:.0f} s cannot hold 3 × 3 runs of "
                              f"{cfg.step_quantum} steps)", numbers={"calibration": calib})
        estimate = (3 * len(seeds) * (fixed_s + max(0, _evaluations(steps, pre.train.eval_every) - 2) * eval_s)
                    + steps * calib["grid_step_s"])
        say(f"  schedule: {steps:,} steps per run (the largest multiple of {cfg.step_quantum} ≤ {cfg.regime_max_steps:,} that "
            f"fits), {len(seeds)} seeds; estimate {estimate:.0f} s for {3 * len(seeds)} runs")
        calib["estimate_s"] = estimate
    assert steps is not None
    grid_dir = ctx.out / "anbn-regimes"
    shutil.rmtree(grid_dir, ignore_errors=True)
    walls: dict[str, float] = {}
    last = [time.perf_counter()]
    hard_deadline = min(t_start + budget * 1.1, ctx.clock.deadline - RESERVE_S)
    typical = [0.0]

    def echo(line: str) -> None:
        now = time.perf_counter()
        name = line.split(maxsplit=1)[0]
        walls[name] = now - last[0]
        typical[0] = max(typical[0], walls[name])
        last[0] = now
        say(f"  {line}  (wall {walls[name]:.1f}s)")
        if not ensemble and len(walls) < 3 * len(seeds) and now + typical[0] > hard_deadline:
            raise _OutOfTime

    kwargs: dict[str, Any] = {"ensemble": True} if ensemble else {}
    t_grid = time.perf_counter()
    stopped = False
    try:
        rows = run_grid(["L3"], ["transformer"], list(REGIMES), seeds, grid_dir, ctx.device, size=cfg.regime_size,
                        steps=steps, progress=False, echo=echo, threads=None, **kwargs)
    except _OutOfTime:
        stopped = True
        rows = load_rows(grid_dir)
        say(f"  stopped after {len(rows)} of {3 * len(seeds)} runs: the next would overrun the budget")
    grid_s = time.perf_counter() - t_grid
    table = []
    for r in rows:
        g = r.gap
        gap_p = "n/a" if g is None else f"[{_down(g.gap_padded_lo)}, {_up(g.gap_padded_hi)}]"
        gap_t = "n/a" if g is None else f"≤ {_up(g.gap_token_hi)}"
        table.append([r.name, r.steps_done, r.best_step, f"{r.test_loss_padded:.5f}", gap_p, gap_t, _f(r.ood_r1),
                      _f(r.id_r1), _f(walls.get(r.name), ".1f")])
    write_csv(rows, ctx.out / REGIMES_CSV)
    pub_table, pub_numbers = _published_gaps(rows, n_max)
    cert = experiment_certificate(rows, command=ctx.script)
    verdict = f"**Certificate `{cert.check}`: {cert.status.value}** — {cert.detail}" + (f" ({cert.reason})" if cert.reason else "")
    sched = (f"{steps:,} steps × batch {pre.train.batch_size} (+ {pre.train.aux_batch_size} regime pairs in adversarial and "
             f"oracle) per run (the preset's schedule: {pre.train.steps:,} steps; the position paper's: 50,000 epochs)")
    how = ("chosen by --regime-steps" if not calib else
           f"the largest that fit {budget:.0f} s after a calibration: {calib['step_s']['ml'] * 1e3:.1f} / "
           f"{calib['step_s']['adversarial'] * 1e3:.1f} ms per step of one run (ml / adversarial, oracle)"
           + (f", {calib['step_s']['ensemble'] * 1e3:.1f} ms per step of the batched ensemble" if ensemble else "")
           + f", {calib['fixed_s']:.1f} s fixed per run")
    lines = [device_line(ctx.device), "",
             f"{what(len(seeds))}; {sched}, {how}; "
             + ("trained with run_grid(ensemble=True); " if ensemble else "trained one after another; ")
             + f"total {grid_s:.1f} s for {len(rows)} runs" + (" (stopped early: budget)" if stopped else "") + ".", "",
             "Per run (best-validation weights; gaps certified, rounded outward; "
             + ("wall: the first row's holds the ensemble's training, every row its final evaluation and certified gap):"
                if ensemble else "wall = training + evaluations + certified gap):"), ""]
    lines += markdown_table(["run", "steps", "best step", "test loss (nats/padded token)", "gap (nats/padded token)",
                             "gap (nats/token)", "OOD R1", "ID R1", "wall (s)"], table)
    gap_lines = ["Saturation gap reached vs the published one (the position paper's test loss, padded convention, "
                 "minus the floor H(P)/(T − 1); per token × (T − 1)/(E|x| + 1)):", ""]
    gap_lines += markdown_table(["regime", "runs", "our gap (nats/padded token), mean", "our gap (nats/token), max",
                                 "published gap (nats/padded token)", "published gap (nats/token)", "reached"], pub_table)
    say("\n".join("  " + line for line in gap_lines + ["", verdict]))
    lines += [""] + gap_lines + ["", verdict, "", markdown(rows)]
    numbers = {"steps": steps, "seeds": seeds, "ensemble": ensemble, "calibration": calib, "total_s": grid_s,
               "stopped_early": stopped, "certificate": cert.status.value, "published": pub_numbers,
               "runs": [{"name": r.name, "steps_done": r.steps_done, "wall_s": walls.get(r.name), "ood_r1": r.ood_r1,
                         "gap_padded_lo": None if r.gap is None else r.gap.gap_padded_lo,
                         "gap_padded_hi": None if r.gap is None else r.gap.gap_padded_hi,
                         "gap_token_hi": None if r.gap is None else r.gap.gap_token_hi} for r in rows]}
    worst = max((r.gap.gap_token_hi for r in rows if r.gap is not None), default=math.inf)
    summary = (f"{len(rows)} runs × {steps:,} steps, certificate {cert.status.value}, gaps ≤ {_up(worst)} nats/token")
    return PartResult("anbn-regimes", f"aⁿbⁿ regimes at n ≤ {n_max}", "ok", body="\n".join(lines), numbers=numbers,
                      summary=summary)


# ---- part 2: distillation of the aⁿbⁿ pair ------------------------------------------------------------
def _distill_within(construction: Any, prefixes: Any, dcfg: Any, checkpoint: Path, seconds: float, cap: int,
                    first_chunk: int) -> tuple[Any, float, int]:
    """Train one student with :func:`constructions.distill.distill` in chunks that resume from ``checkpoint``,
    until it converges, reaches ``cap`` steps, or the next chunk would outlast ``seconds``; returns (the
    last result, wall seconds, chunks).  Chunks end at multiples of the distiller's ``check_every``, where it
    checks the target, so stopping between chunks changes nothing about the training."""
    from constructions.distill import distill

    t0 = time.perf_counter()
    done, chunk, chunks = 0, min(first_chunk, cap), 0
    while True:
        target = min(cap, done + chunk)
        res = distill(construction, prefixes, replace(dcfg, max_steps=target), checkpoint=checkpoint, progress=False)
        chunks += 1
        rate = res.seconds / max(1, res.steps - done)  # set-up included: an overestimate of a step
        done = res.steps
        if res.converged or done >= cap:
            break
        left = seconds - (time.perf_counter() - t0)
        every = dcfg.check_every
        chunk = int(left * 0.9 / rate) // every * every
        if chunk < every:
            break
    return res, time.perf_counter() - t0, chunks


def part_distill(ctx: Context, budget: float) -> PartResult:
    """Part 2 (module docstring)."""
    from constructions.distill import DistillConfig
    from constructions.export import (
        METHOD_BOUNDS,
        build_pair,
        case_prefixes,
        disagreements,
        estimate_pair,
        load_case,
        verify_directory,
        write_directory,
    )

    t_start = time.perf_counter()
    cfg = ctx.config
    dev = ctx.device.type
    n, case, prefixes, check_est = cfg.distill_n, None, None, 0.0
    while n >= 1:
        case = load_case("anbn", n)
        prefixes = case_prefixes(case)
        check_est = CHECK_S_PER_TOKEN * len(prefixes.maximal) * (prefixes.max_length + 1)
        if 2.2 * check_est <= 0.4 * budget or n <= 4:
            break
        n //= 2
    assert case is not None and prefixes is not None
    dcfg = DistillConfig(device=dev, max_steps=cfg.distill_max_steps)
    est = estimate_pair(case, prefixes, "distill", dcfg)
    say(f"part 2 (distill): aⁿbⁿ n ≤ {n}, {est.parameters:,} parameters per student, {len(prefixes):,} prefixes "
        f"({len(prefixes.maximal)} maximal words, length ≤ {prefixes.max_length}); budget {budget:.0f} s: training "
        f"until max TV ≤ {dcfg.target_tv} or ≤ {cfg.distill_max_steps:,} steps, check about {check_est:.0f} s (2-core rate), "
        f"re-check the same")
    if 2.2 * check_est > 0.8 * budget:
        return PartResult("distill", "", f"skipped: budget ({budget:.0f} s < the check's 2 × {check_est:.0f} s)")
    ckdir = ctx.out / "distill-checkpoints"
    shutil.rmtree(ckdir, ignore_errors=True)
    ckdir.mkdir(parents=True)
    train_s = budget - (time.perf_counter() - t_start) - 2.2 * check_est - 5.0
    students: dict[str, dict[str, Any]] = {}
    cap = cfg.distill_max_steps
    for key, model in (("q1", case.completer), ("q2", case.violator)):
        share = train_s / 2 if key == "q1" else train_s - students["q1"]["wall_s"]
        res, wall, chunks = _distill_within(model, prefixes, dcfg, ckdir / f"{key}.distill.pt", share, cap,
                                            cfg.distill_first_chunk)
        students[key] = {"steps": res.steps, "converged": res.converged, "max_tv_float": res.max_tv, "wall_s": wall,
                         "chunks": chunks, "device": res.device}
        say(f"  {key}: {res.steps:,} steps, float max TV {res.max_tv:.4f} "
            f"({'converged' if res.converged else 'not converged'}), {wall:.1f} s in {chunks} chunk(s) on {res.device}")
        if key == "q1" and not res.converged:
            cap = res.steps  # the pair shares one step cap, so build_pair resumes both without training further
    final_cap = max(s["steps"] for s in students.values())
    marks: dict[str, float] = {}

    def log(message: str) -> None:
        if message.startswith("checking"):
            marks["check"] = time.perf_counter()
        say(f"  build_pair: {message}")

    t_build = time.perf_counter()
    pair = build_pair(case, "distill", distill_config=replace(dcfg, max_steps=final_cap), device=dev, log=log,
                      checkpoint_dir=ckdir)
    check_s = time.perf_counter() - marks.get("check", t_build)
    folder = ctx.out / "distill-pair"
    write_directory(pair, folder, n_max=n, overwrite=True)
    shutil.copyfile(folder / "certificate.json", ctx.out / DISTILL_CERTIFICATE)
    cert = pair.certificate
    recheck: dict[str, Any] = {"status": "skipped: budget"}
    left = budget - (time.perf_counter() - t_start)
    if left >= 1.3 * check_s:
        t0 = time.perf_counter()
        stored, fresh = verify_directory(folder)
        diffs = disagreements(stored, fresh, folder)
        exit_code = 0 if fresh.verified and stored.status is fresh.status and not diffs else 1
        recheck = {"status": fresh.status.value, "stored": stored.status.value, "disagreements": diffs[:3],
                   "nonid_check_exit": exit_code, "wall_s": time.perf_counter() - t0}
        say(f"  nonid check (verify_directory): {fresh.status.value}, exit {exit_code}, {recheck['wall_s']:.1f} s")
    else:
        say(f"  nonid check: skipped: budget ({left:.0f} s left, the check took {check_s:.0f} s)")
    q = cert.quantities
    tol, kl_bound = METHOD_BOUNDS["distill"]

    def r1(m: dict[str, Any]) -> str:
        return "n/a (not certainly the construction's)" if m.get("ood_r1") is None else f"{m['ood_r1']['approx']:.3f}"

    table = []
    for key, role in (("q1", "Q1 R1-completer"), ("q2", "Q2 R1-violator")):
        s, m = students[key], q[key]
        table.append([role, f"{s['steps']:,}", f"{s['max_tv_float']:.4f}", "yes" if s["converged"] else "no (budget or cap)",
                      f"{s['wall_s']:.1f}", m["max_tv_upper"], f"[{m['kl_lower']}, {m['kl_upper']}]", r1(m)])
    lines = [device_line(ctx.device), "",
             f"`nonid counterexample anbn --method distill --device {dev} --n-max {n}` through its functions "
             f"(constructions.export.build_pair): aⁿbⁿ n ≤ {n}, {len(prefixes):,} prefixes, students d_model {dcfg.d_model} × "
             f"{dcfg.n_layers} layers ({est.parameters:,} parameters), trained to float max TV ≤ {dcfg.target_tv} (cap "
             f"{cfg.distill_max_steps:,} steps; the budget's chunks resume from checkpoints), then the exhaustive check "
             f"on rigorous enclosures (CPU, as the command; bounds TV ≤ {tol}, KL ≤ {kl_bound} nats): {check_s:.1f} s.", ""]
    student_lines = markdown_table(["student", "steps", "float max TV", "converged", "training (s)", "certified max TV ≤",
                                    "certified KL(P ‖ Q) (nats)", f"OOD R1 ({q['ood_prompts']} prompts)"], table)
    say("\n".join("  " + line for line in student_lines) + f"\n  verdict: {cert.status.value}")
    lines += student_lines
    lines += ["", f"**Verdict: {cert.status.value}**" + (f" — {_clip(cert.reason, 400)}" if cert.reason else ""), "",
              "Re-check from the written folder (`nonid check`, constructions.export.verify_directory): "
              + (f"{recheck['status']} (stored {recheck['stored']}; `nonid check` would exit {recheck['nonid_check_exit']}), "
                 f"{recheck['wall_s']:.1f} s." if "wall_s" in recheck else "skipped: budget.")]
    numbers = {"n_max": n, "prefixes": len(prefixes), "parameters": est.parameters, "students": students,
               "check_s": check_s, "status": cert.status.value, "reason": cert.reason,
               "kl": {k: [q[k]["kl_lower"], q[k]["kl_upper"]] for k in ("q1", "q2")},
               "max_tv_upper": {k: q[k]["max_tv_upper"] for k in ("q1", "q2")},
               "ood_r1": {k: None if q[k].get("ood_r1") is None else q[k]["ood_r1"]["approx"] for k in ("q1", "q2")},
               "recheck": recheck, "folder": str(folder)}
    summary = (f"n ≤ {n}: {students['q1']['steps']:,} + {students['q2']['steps']:,} steps, {cert.status.value}, "
               f"KL ≤ {q['q1']['kl_upper']}, {q['q2']['kl_upper']} nats")
    return PartResult("distill", f"distilled aⁿbⁿ pair at n ≤ {n}", "ok", body="\n".join(lines), numbers=numbers,
                      summary=summary)


# ---- part 3: rigorous enclosure throughput ------------------------------------------------------------
def part_enclosure(ctx: Context, budget: float) -> PartResult:
    """Part 3 (module docstring)."""
    from benchmarks.bench_enclosure import bench_throughput

    t_start = time.perf_counter()
    cfg = ctx.config
    dev = ctx.device.type
    d, layers, want = cfg.enclosure_d_model, cfg.enclosure_layers, cfg.enclosure_length
    cal = max(2, want - 4)

    def reps(length: int) -> tuple[int, int]:  # bench_throughput's repeats (bare, rigorous)
        return (2, 1) if length > 16 else (3, 3)

    say(f"part 3 (enclosure): every binary prefix of length ≤ {want} ({2 ** (want + 1) - 1:,}), d_model {d} × {layers} "
        f"layers, float64, {dev}; calibration at length {cal} first; budget {budget:.0f} s")
    t0 = time.perf_counter()
    rows = bench_throughput(dev, cal, d, layers)
    t_cal = time.perf_counter() - t0
    tf, te = float(rows[0][2]), float(rows[0][3])
    rb, rr = reps(cal)
    setup = max(0.0, t_cal - rb * tf - rr * te)

    def estimate(length: int) -> float:
        b, r = reps(length)
        return 2 ** (length - cal) * (setup + b * tf + r * te)

    left = (budget - (time.perf_counter() - t_start)) * SAFETY
    length = next((L for L in range(want, cal, -1) if estimate(L) <= left), None)
    say(f"  calibration (length {cal}): bare {tf:.3f} s, rigorous {te:.3f} s, set-up {setup:.2f} s; "
        + (f"length {length}: estimate {estimate(length):.0f} s" if length is not None
           else f"length {cal + 1}: estimate {estimate(cal + 1):.0f} s > {left:.0f} s left: skipped: budget"))
    if length is not None:
        rows += bench_throughput(dev, length, d, layers)
    say("  " + " | ".join(rows[-1]))
    head = ["network", "prefixes", "bare float forward (s)", "rigorous enclosure (s)", "ratio", "widest log-prob radius"]
    lines = [device_line(ctx.device), "",
             f"Rigorous enclosure (benchmarks.bench_enclosure.bench_throughput) of every binary prefix, length {cal} "
             f"(calibration) and {length if length is not None else f'{want}: skipped: budget'}; best of "
             f"{'/'.join(map(str, reps(length or cal)))} (bare / rigorous).", ""]
    lines += markdown_table(head, rows)
    if any(r[5] == "inf" for r in rows):
        lines += ["", "A widest radius of inf: the enclosure of this random network is unbounded somewhere (already so "
                  "at length 2 on the CPU for d_model 128 × 3-4 layers, not for 64 × 2), so these rows time the evaluator, "
                  "not a useful bound."]
    numbers = {"rows": rows, "length": length, "calibration_length": cal,
               "prefixes_per_s": None if length is None else (2 ** (length + 1) - 1) / float(rows[-1][3])}
    summary = (f"length ≤ {length}: {rows[-1][1]} prefixes, rigorous {rows[-1][3]} s ({rows[-1][4]} the bare forward)"
               if length is not None else f"only the calibration (length {cal}): budget")
    return PartResult("enclosure", f"rigorous enclosure, every binary prefix of length ≤ {length or cal}", "ok",
                      body="\n".join(lines), numbers=numbers, summary=summary)


PartFn = Callable[[Context, float], PartResult]
PARTS: tuple[tuple[str, float, PartFn], ...] = (
    ("anbn-regimes", 0.55, part_regimes),
    ("distill", 0.30, part_distill),
    ("enclosure", 0.15, part_enclosure),
)
"""(name, share of the time left, function): each part's budget is its share of what is left when it starts."""


# ---- sections -----------------------------------------------------------------------------------------
def section_key(name: str, ctx: Context) -> str:
    """``gpu-<name>`` for the full suite on CUDA; a tiny or CPU run gets its own key, so it never replaces
    the GPU's section."""
    suffix = "" if ctx.device.type == "cuda" and not ctx.tiny else f"-{'tiny-' if ctx.tiny else ''}{ctx.device.type}"
    return f"gpu-{name}{suffix}"


def _title(text: str, ctx: Context) -> str:
    where = torch.cuda.get_device_name(ctx.device) if ctx.device.type == "cuda" else "CPU"
    return f"GPU suite{' (tiny)' if ctx.tiny else ''}: {text} ({where})"


def publish_section(key: str, title: str, body: str, ctx: Context) -> None:
    """:func:`benchmarks.report.write_section`, then the block as written copied into ``out/BENCHMARKS.sections.md``
    (what comes back from the device machine; :func:`apply_sections` puts it into another checkout)."""
    report.write_section(key, title, body, ctx.script)
    text = report.BENCHMARKS_MD.read_text()
    block = next(m.group(0) for m in _BLOCK.finditer(text) if m.group(1) == key)
    path = ctx.out / SECTIONS_FILE
    old = path.read_text() if path.exists() else ""
    kept = "".join(m.group(0) + "\n" for m in _BLOCK.finditer(old) if m.group(1) != key)
    write_atomic(path, kept + block)


def apply_sections(source: Path) -> int:
    """Put every ``gpu-…`` section of ``source`` (a BENCHMARKS.sections.md or a BENCHMARKS.md from the
    device machine) into this checkout's BENCHMARKS.md, verbatim (stamp and machine line kept); returns 0.

    Raises:
        InvalidArtifact: ``source`` unreadable or without a ``gpu-`` section.
    """
    from theory.errors import InvalidArtifact

    try:
        blocks = [(m.group(1), m.group(0)) for m in _BLOCK.finditer(source.read_text())]
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidArtifact(f"{source}: cannot be read ({getattr(e, 'strerror', None) or e})") from None
    if not blocks:
        raise InvalidArtifact(f"{source}: holds no <!-- bench:gpu-… --> section")
    path = report.BENCHMARKS_MD
    text = path.read_text() if path.exists() else report.HEADER
    for key, block in blocks:
        pattern = re.compile(rf"<!-- bench:{re.escape(key)} -->.*?<!-- /bench:{re.escape(key)} -->\n", re.S)
        text = pattern.sub(lambda _m: block, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + block
    write_atomic(path, text)
    say(f"applied {len(blocks)} section(s) to {path}: {', '.join(k for k, _b in blocks)}")
    return 0


# ---- the driver ---------------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.gpu_suite", description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", help="cuda (default; refused without CUDA), cpu or auto")
    ap.add_argument("--tiny", action="store_true", help="every part in a tiny configuration (under a minute on 2 CPU cores)")
    ap.add_argument("--budget-s", type=float, default=DEFAULT_BUDGET_S, help=f"global deadline in seconds (default {DEFAULT_BUDGET_S:g})")
    ap.add_argument("--out", default=None, help="folder for the runs and files (default out/benchmarks/gpu_suite)")
    ap.add_argument("--write", action="store_true", help="write the sections into BENCHMARKS.md (and out/" + SECTIONS_FILE + ")")
    ap.add_argument("--regime-steps", type=int, default=None, help="part 1: this many steps per run (no calibration)")
    ap.add_argument("--parts", default=",".join(p[0] for p in PARTS), help="comma-separated parts to run (default all)")
    ap.add_argument("--export", default=None, metavar="DIR", help="copy the few result files there after every part "
                    f"({', '.join(EXPORTED)}): a device machine's $OUT")
    ap.add_argument("--apply", default=None, metavar="FILE", help="only put FILE's gpu- sections into BENCHMARKS.md")
    return ap


def _suite(argv: Sequence[str] | None) -> int:
    from constructions.distill import resolve_device
    from theory.errors import InvalidModelConfig, one_line
    from theory.processes import raise_if_interrupted

    args = _parser().parse_args(argv)
    if args.apply is not None:
        return apply_sections(Path(args.apply))
    device = resolve_device(args.device)
    if not (isinstance(args.budget_s, float) and math.isfinite(args.budget_s) and args.budget_s > 0):
        raise InvalidModelConfig(f"--budget-s {args.budget_s!r} must be a positive number of seconds")
    known = [p[0] for p in PARTS]
    chosen = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = [p for p in chosen if p not in known]
    if unknown:
        raise InvalidModelConfig(f"--parts: unknown part {unknown[0]!r}; known: {', '.join(known)}")
    if args.regime_steps is not None and args.regime_steps < 1:
        raise InvalidModelConfig(f"--regime-steps {args.regime_steps} must be at least 1")
    out = report.output_folder(args.out, args.write) if args.out is not None else report.SCRATCH / "gpu_suite"
    config = replace(TINY if args.tiny else SuiteConfig(), regime_steps=args.regime_steps)
    now = time.perf_counter()
    script = "python -m benchmarks.gpu_suite" + (" --tiny" if args.tiny else "") + (f" --device {args.device}" if
                                                                                   args.device != "cuda" else "")
    ctx = Context(config, device, out, Clock(now, now + args.budget_s), args.tiny, script)
    out.mkdir(parents=True, exist_ok=True)
    for name in EXPORTED:  # this run's files only
        (out / name).unlink(missing_ok=True)
    export = Path(args.export) if args.export is not None else None
    if export is not None:
        export.mkdir(parents=True, exist_ok=True)
    if args.tiny and device.type == "cpu":
        torch.set_num_threads(1)  # tiny models: one thread is as fast, and a shared 2-core machine is not slowed
    say(f"gpu_suite: {device_line(device)}; budget {args.budget_s:.0f} s; parts {', '.join(chosen)}; out {out}"
        + (" (tiny)" if args.tiny else ""))
    results: list[PartResult] = []
    todo = [p for p in PARTS if p[0] in chosen]
    for i, (name, share, fn) in enumerate(todo):
        rest = sum(s for _n, s, _f in todo[i:])
        budget = max(0.0, ctx.clock.left() - RESERVE_S) * share / rest
        t0 = time.perf_counter()
        try:
            if budget < MIN_PART_S:
                say(f"part {name}: {budget:.0f} s left for it")
                res = PartResult(name, "", f"skipped: budget ({budget:.0f} s < {MIN_PART_S:g} s)")
            else:
                res = fn(ctx, budget)
        except Exception as e:  # noqa: BLE001 - one line, and the suite goes on with the next part
            res = PartResult(name, "", f"failed: {type(e).__name__}: {one_line(e)}"[:300])
            say(f"gpu_suite: part {name} {res.status}")
        res.wall_s, res.budget_s = time.perf_counter() - t0, budget
        results.append(res)
        say(f"part {name}: {res.status} in {res.wall_s:.1f} s (budget {budget:.0f} s)" + (f" — {res.summary}" if res.summary else ""))
        raise_if_interrupted()
        if args.write and res.status == "ok":
            body = res.body + f"\n\nWall {res.wall_s:.1f} s of a {budget:.0f} s budget (suite budget {args.budget_s:.0f} s)."
            publish_section(section_key(name, ctx), _title(res.title, ctx), body, ctx)
        _save(ctx, results, args.budget_s, export, finished=False)
    table = [[r.name, r.status, f"{r.budget_s:.0f}", f"{r.wall_s:.1f}", r.summary or "–"] for r in results]
    body = "\n".join([device_line(device), "", f"One command, `{script} --write`, global budget {args.budget_s:.0f} s; "
                      f"total wall {ctx.clock.elapsed():.1f} s (after the imports).", ""]
                     + markdown_table(["part", "status", "budget (s)", "wall (s)", "result"], table))
    say(body)
    raise_if_interrupted()
    if args.write:
        publish_section(section_key("suite", ctx), _title("summary", ctx), body, ctx)
        say(f"sections written to {report.BENCHMARKS_MD} and {out / SECTIONS_FILE}")
    _save(ctx, results, args.budget_s, export, finished=True)
    return 1 if any(r.status.startswith("failed") for r in results) else 0


def _save(ctx: Context, results: list[PartResult], budget_s: float, export: Path | None, *, finished: bool) -> None:
    """Write ``gpu_suite.json`` (every part so far) and copy the result files to ``export``: after every part, so
    a run stopped from outside still leaves what it finished."""
    write_atomic(ctx.out / SUMMARY_FILE, json.dumps({"device": device_line(ctx.device), "budget_s": budget_s,
                                                     "total_s": ctx.clock.elapsed(), "tiny": ctx.tiny, "finished": finished,
                                                     "parts": [r.__dict__ for r in results]}, indent=1, default=str) + "\n")
    if export is not None and export.resolve() != ctx.out.resolve():
        for name in EXPORTED:
            if (ctx.out / name).exists():
                shutil.copyfile(ctx.out / name, export / name)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the suite; returns the exit status (0; 1 when a part failed; 2 a refusal; 130 an interrupt)."""
    from theory.errors import exit_status

    return exit_status("gpu_suite", lambda: _suite(argv))


if __name__ == "__main__":
    sys.exit(main())
