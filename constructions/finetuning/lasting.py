"""The lasting effect: fine-tune until the loss is within δ of its floor (:func:`fine_tune_to_floor`), then
certify from rigorous enclosures that both twins reached the floor within δ and that they differ off the
fine-tuning data by a total variation ≥ Δ at some prefix (:func:`lasting_effect`, :class:`LastingEffect`).

The floor of the mean sequence NLL of uniform data on the fine-tuning words is their empirical entropy
(:func:`loss_floor`: log of the number of distinct words when they are distinct), exact as a
:class:`~theory.exact.LogCombination`.  Rigorous bounds: the mean NLL from the enclosed
log-probabilities, summed exactly in rationals (:func:`loss_bounds`); the TV at a prefix from enclosed
probabilities, TV ≥ ½ Σ_a max(0, lower bound of |p₁(a) − p₂(a)|) (:func:`tv_bounds`)."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Sequence

import numpy as np
import torch

from constructions.finetuning.compare import _enclosure, prefix_log_probs
from constructions.finetuning.gradients import mean_nll
from constructions.finetuning.task import FineTuningTask
from constructions.transformer import DecoderTransformer
from theory.errors import InvalidTrainingOption
from theory.exact import LogCombination
from theory.processes import raise_if_interrupted
from theory.validation import check_int, check_number

STOP_FRACTION = 0.9
"""Training stops at the first step whose float loss is ≤ floor + STOP_FRACTION·δ: the rest of δ leaves
room for the enclosures' width (~1e-6) when the bound ≤ floor + δ is certified."""
CANDIDATES = 16
"""OOD prefixes (largest float TV first) whose TV is enclosed before falling back to every prefix."""


def check_positive(value: object, what: str) -> float:
    """A tolerance (ε, δ, Δ, a margin): a finite float > 0, else :class:`InvalidTrainingOption` naming it."""
    return check_number(value, what, lo=0, lo_open=True, error=InvalidTrainingOption, real=True)


def check_steps(value: object, what: str) -> int:
    """A step count: an int ≥ 1, else :class:`InvalidTrainingOption` naming it."""
    return check_int(value, what, minimum=1, error=InvalidTrainingOption, integral=True)


def loss_floor(words: Sequence[str]) -> LogCombination:
    """min over Q of the mean of −log Q(w) over ``words`` (uniform over the list, repeats counted): the
    empirical entropy Σ (c/n) ln(n/c) of the word counts c — ln n for n distinct words.  Exact."""
    counts = Counter(words)
    n = sum(counts.values())
    if not n:
        raise InvalidTrainingOption("loss_floor needs at least one fine-tuning word")
    return LogCombination.from_weighted_logs((Fraction(c, n), Fraction(n, c)) for c in counts.values())


@dataclass(frozen=True)
class ConvergedRun:
    """SGD from one model until its float loss is ≤ floor + STOP_FRACTION·δ, or ``max_steps``.

    Attributes:
        model: the fine-tuned copy.  steps: steps taken.  losses: the float loss before each step and
        after the last.  converged: the stop rule fired.  finite: every loss finite.
    """

    model: DecoderTransformer
    steps: int
    losses: tuple[float, ...]
    converged: bool
    finite: bool


def fine_tune_to_floor(model: DecoderTransformer, words: Sequence[str], lr: float, delta: float,
                       max_steps: int) -> ConvergedRun:
    """Full-batch SGD (θ ← θ − lr·∇, no momentum) on :func:`mean_nll` of ``words`` from a copy of
    ``model`` until the float loss is ≤ floor + STOP_FRACTION·``delta`` or ``max_steps`` steps.

    Raises:
        InvalidTrainingOption: lr or δ not finite and > 0, max_steps not an int ≥ 1 (before any step).
    """
    lr = check_positive(lr, "learning rate")
    delta = check_positive(delta, "delta")
    max_steps = check_steps(max_steps, "max_steps =")
    target = float(loss_floor(words)) + STOP_FRACTION * delta
    m = model.clone()
    params = list(m.parameters())
    losses: list[float] = []
    for step in range(max_steps + 1):
        raise_if_interrupted()
        loss = mean_nll(m, words)
        losses.append(loss.item())
        if not math.isfinite(losses[-1]):
            return ConvergedRun(m, step, tuple(losses), False, False)
        if losses[-1] <= target:
            return ConvergedRun(m, step, tuple(losses), True, True)
        if step == max_steps:
            break
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p.add_(g, alpha=-lr)
    return ConvergedRun(m, max_steps, tuple(losses), False, True)


def _prob_bounds(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rigorous [p_lo, p_hi] ∋ exp(log q) from log-probability bounds (rigorous exp; unbounded → [0, 1])."""
    from constructions import balls

    def ex(x: np.ndarray, upper: bool) -> np.ndarray:
        t = torch.as_tensor(np.where(np.isfinite(x), x, 0.0), dtype=torch.float64)
        b = balls.exp(balls.Ball.exact(t))
        v = (b.hi if upper else b.lo).numpy()
        ok = np.isfinite(x) & np.isfinite(v)
        return np.where(ok, v, 1.0 if upper else 0.0)

    return np.clip(ex(lo, False), 0.0, 1.0), np.clip(ex(hi, True), 0.0, 1.0)


def tv_bounds(enc_a, enc_b, prefix: str) -> tuple[Fraction, Fraction]:
    """[lo, hi] ∋ TV(q_a(·|u), q_b(·|u)) at ``prefix`` u, exact rationals over the enclosed probabilities:
    lo = ½ Σ_a max(0, p_a⁻ − p_b⁺, p_b⁻ − p_a⁺), hi = min(1, ½ Σ_a max(p_a⁺ − p_b⁻, p_b⁺ − p_a⁻))."""
    la, ha = _prob_bounds(*enc_a.row(prefix))
    lb, hb = _prob_bounds(*enc_b.row(prefix))
    lo = hi = Fraction(0)
    for x1, y1, x2, y2 in zip(la.tolist(), ha.tolist(), lb.tolist(), hb.tolist()):
        lo += max(Fraction(0), Fraction(x1) - Fraction(y2), Fraction(x2) - Fraction(y1))
        hi += max(Fraction(y1) - Fraction(x2), Fraction(y2) - Fraction(x1))
    return lo / 2, min(Fraction(1), hi / 2)


def _tv_screen(enc_a, enc_b, prefixes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Float screens of the TV bounds at each prefix (the certified values are :func:`tv_bounds`')."""
    ia = [enc_a.index[u] for u in prefixes]
    ib = [enc_b.index[u] for u in prefixes]
    la, ha = _prob_bounds(enc_a.lp_lo[ia], enc_a.lp_hi[ia])
    lb, hb = _prob_bounds(enc_b.lp_lo[ib], enc_b.lp_hi[ib])
    lo = 0.5 * np.maximum(0.0, np.maximum(la - hb, lb - ha)).sum(axis=1)
    hi = 0.5 * np.maximum(ha - lb, hb - la).sum(axis=1)
    return lo, hi


def loss_bounds(enc, model: DecoderTransformer, words: Sequence[str]) -> tuple[Fraction, Fraction]:
    """[lo, hi] ∋ the real function's mean over ``words`` of −log Q(w) (EOS included), summed exactly in
    rationals from the enclosed log-probabilities; an unbounded enclosure gives the vacuous hi = 10⁹."""
    outcomes = model.alphabet.outcomes
    col = {a: i for i, a in enumerate(outcomes)}
    eos = len(outcomes) - 1
    lo = hi = Fraction(0)
    for w in words:
        for t in range(len(w) + 1):
            a = col[w[t]] if t < len(w) else eos
            l_lo, l_hi = enc.row(w[:t])
            if not (math.isfinite(l_lo[a]) and math.isfinite(l_hi[a])):
                return Fraction(0), Fraction(10 ** 9)
            lo -= Fraction(float(l_hi[a]))
            hi -= Fraction(float(l_lo[a]))
    return lo / len(words), hi / len(words)


@dataclass(frozen=True)
class LastingEffect:
    """SGD to the floor from θ and T(θ), certified from rigorous enclosures.

    Attributes:
        lr, delta, tv_margin (Δ), max_steps: the run and its thresholds.
        steps: (θ's, T(θ)'s) steps taken.  converged: both stop rules fired.  finite: both runs finite.
        floor_lo, floor_hi: rigorous bounds of the loss floor (empirical entropy of the words).
        loss_lo, loss_hi: rigorous bounds of each fine-tuned model's mean NLL (θ', then T(θ)').
        within_delta: both loss upper bounds ≤ floor_lo + δ (so |ΔL| ≤ δ too).
        tv_lower, tv_upper: rigorous TV bounds at ``tv_prefix``, the OOD prefix of the best lower bound.
        max_tv_upper: a rigorous upper bound of the TV over every OOD prefix (only when every prefix was
            enclosed, else None).
        ood_tv_mean_float, ood_tv_max_float: mean and max OOD TV of the float passes (reported).
        n_ood, n_enclosed: OOD prefixes, and how many of them were enclosed.
    """

    lr: float
    delta: float
    tv_margin: float
    max_steps: int
    steps: tuple[int, int]
    converged: bool
    finite: bool
    floor_lo: Fraction
    floor_hi: Fraction
    loss_lo: tuple[Fraction, Fraction] = (Fraction(0), Fraction(0))
    loss_hi: tuple[Fraction, Fraction] = (Fraction(0), Fraction(0))
    within_delta: bool = False
    tv_lower: Fraction = Fraction(0)
    tv_upper: Fraction = Fraction(1)
    tv_prefix: str = ""
    max_tv_upper: Fraction | None = None
    ood_tv_mean_float: float = math.nan
    ood_tv_max_float: float = math.nan
    n_ood: int = 0
    n_enclosed: int = 0

    @property
    def differs(self) -> bool:
        """Certified: both at the floor within δ and TV ≥ Δ at ``tv_prefix``."""
        return self.converged and self.within_delta and self.tv_lower >= Fraction(self.tv_margin)

    @property
    def same_within_margin(self) -> bool:
        """Certified the other way: at the floor, and every OOD prefix has TV < Δ (a converged pair that
        agrees off the data: the lasting effect is absent for this run)."""
        return (self.converged and self.within_delta and self.max_tv_upper is not None
                and self.max_tv_upper < Fraction(self.tv_margin))


@dataclass(frozen=True)
class TVGap:
    """The largest certified TV between two models over a set of prefixes.

    Attributes:
        lower, upper: rigorous bounds of the TV at ``prefix`` (the best lower bound found).
        max_upper: a rigorous upper bound of the TV over *every* prefix of the set (None unless every
            one was enclosed: only when the candidates left the margin undecided).
        mean_float, max_float: mean and max TV of the two float passes over the set (reported).
        n_prefixes, n_enclosed: the set's size and how many were enclosed.
    """

    lower: Fraction
    upper: Fraction
    prefix: str
    max_upper: Fraction | None
    mean_float: float
    max_float: float
    n_prefixes: int
    n_enclosed: int


def tv_gap(a: DecoderTransformer, b: DecoderTransformer, length: int, margin: float,
           exclude: frozenset[str] = frozenset(), extra_words: Sequence[str] = ()) -> tuple[TVGap, Any, Any]:
    """Certify max over prefixes u (|u| ≤ ``length``, u ∉ ``exclude``) of TV(q_a(·|u), q_b(·|u)): the float
    passes rank the prefixes, the CANDIDATES largest are enclosed (with ``extra_words``' prefixes, for
    other bounds read off the same enclosures); when no candidate reaches ``margin``, every prefix up to
    ``length`` is enclosed, for the best lower bound and an upper bound of them all.  Returns the gap and
    the two candidate enclosures (:class:`~constructions.enclosure.Enclosure`)."""
    with torch.no_grad():
        prefixes, pa = prefix_log_probs(a, length)
        _, pb = prefix_log_probs(b, length)
    idx = [i for i, u in enumerate(prefixes) if u not in exclude]
    tv = 0.5 * (pa.exp() - pb.exp()).abs().sum(dim=1)[idx]
    finite = bool(torch.isfinite(tv).all())
    tv = torch.nan_to_num(tv, nan=1.0)
    order = torch.argsort(tv, descending=True, stable=True)[:CANDIDATES].tolist()
    candidates = [prefixes[idx[i]] for i in order]
    from constructions.enclosure import enclose_words

    ea, eb = enclose_words(a, [*extra_words, *candidates]), enclose_words(b, [*extra_words, *candidates])
    lo_screen, _ = _tv_screen(ea, eb, candidates)
    best = candidates[int(np.argmax(lo_screen))] if candidates else ""
    lo, hi = tv_bounds(ea, eb, best) if best else (Fraction(0), Fraction(0))
    max_hi, n_enc = None, len(candidates)
    if lo < Fraction(margin) and idx:
        fa, fb = _enclosure(a, length), _enclosure(b, length)
        pool = [prefixes[i] for i in idx]
        lo_all, hi_all = _tv_screen(fa, fb, pool)
        best = pool[int(np.argmax(lo_all))]
        lo, hi = tv_bounds(fa, fb, best)
        # the float sum of |Σ| + 1 non-negative rounded terms is within (1 ± 4u) of the exact one: inflate
        top = float(np.nextafter(np.nanmax(np.where(np.isfinite(hi_all), hi_all, 1.0)), np.inf))
        max_hi = min(Fraction(1), Fraction(top) * (1 + Fraction(1, 2 ** 40)))
        n_enc = len(pool)
    return TVGap(lo, hi, best, max_hi, float(tv.mean()) if idx and finite else math.inf,
                 float(tv.max()) if idx and finite else math.inf, len(idx), n_enc), ea, eb


def lasting_effect(theta_run: ConvergedRun, twin_run: ConvergedRun, task: FineTuningTask, lr: float,
                   delta: float, tv_margin: float, max_steps: int) -> LastingEffect:
    """Certify the lasting effect of two finished :func:`fine_tune_to_floor` runs (θ's and T(θ)'s):
    (a) both real functions' mean NLL on the fine-tuning words ≤ floor + δ (rigorous), (b) some OOD
    prefix (length ≤ ``task.ood_length``, not a prefix of a fine-tuning word) has TV ≥ Δ (rigorous)."""
    fl_lo, fl_hi = loss_floor(task.words).interval(96)
    base = dict(lr=lr, delta=delta, tv_margin=tv_margin, max_steps=max_steps, steps=(theta_run.steps, twin_run.steps),
                converged=theta_run.converged and twin_run.converged, finite=theta_run.finite and twin_run.finite,
                floor_lo=fl_lo, floor_hi=fl_hi)
    if not base["converged"]:
        return LastingEffect(**base)  # type: ignore[arg-type]
    a, b = theta_run.model, twin_run.model
    gap, ea, eb = tv_gap(a, b, task.ood_length, tv_margin, task.support_prefixes(), task.words)
    la, lb = loss_bounds(ea, a, task.words), loss_bounds(eb, b, task.words)
    within = la[1] <= fl_lo + Fraction(delta) and lb[1] <= fl_lo + Fraction(delta)
    return LastingEffect(**base, loss_lo=(la[0], lb[0]), loss_hi=(la[1], lb[1]), within_delta=within,  # type: ignore[arg-type]
                         tv_lower=gap.lower, tv_upper=gap.upper, tv_prefix=gap.prefix, max_tv_upper=gap.max_upper,
                         ood_tv_mean_float=gap.mean_float, ood_tv_max_float=gap.max_float, n_ood=gap.n_prefixes,
                         n_enclosed=gap.n_enclosed)
