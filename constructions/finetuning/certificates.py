"""The standard witness and its certificates: the fixed setup of the Proposition 3 checks
(:class:`Proposition3Setup`) and its pretrained θ (:func:`pretrained_model`), and the certificates built
from the checks — function equality alone (:func:`certify_function_equality`) and one map's twin
(:func:`certify_twin`)."""

from __future__ import annotations

import contextlib
import functools
import math
from dataclasses import dataclass, field
from typing import Iterator

import torch

from constructions.finetuning.compare import FunctionComparison, compare_functions
from constructions.finetuning.gradients import gradient_check
from constructions.finetuning.maps import ParameterMap
from constructions.finetuning.task import FineTuningTask, anbn_to_anbnan
from constructions.finetuning.training import TrajectoryGap, fine_tuning_gap, train
from constructions.transformer import DecoderTransformer, TransformerConfig
from theory.certificate import Certificate, Status, library_versions


@dataclass(frozen=True)
class Proposition3Setup:
    """Everything the Proposition 3 checks fix: the model, the pretraining, the fine-tuning runs and
    the tolerances.  Small enough that all checks run in seconds (timings: see BENCHMARKS.md, "Time of the whole check").

    Attributes:
        config: the transformer (float64, ReLU, pre-LN).
        task: pretraining and fine-tuning words, OOD horizon.
        pretrain_lr, pretrain_steps: Adam on the pretraining words, from the seeded init.
        sgd_lr, sgd_steps, adam_lr, adam_steps: the two fine-tuning runs compared.
        check_length: the exhaustive function check covers every prefix up to this length.
        rtol: its relative tolerance on enclosed log-probabilities (see :func:`default_rtol`).
        grad_rtol: the gradient check's relative tolerance.
        margin: a scaling's SGD loss gap and mean OOD TV must both be at least this.
        control_tol: the permutation control's loss gaps and OOD TVs (mean and max), SGD and Adam, must
            be at most this.
        control_param_tol: and its parameter distances ‖θ'_k − T(θ_k)‖∞ at most this.  Looser, for
            Adam: b_K's gradient is zero in exact arithmetic, so Adam divides rounding noise (~1e-17)
            by √v + ε and moves b_K by up to lr·noise/ε per step — differently in the two runs, and
            without any effect on the function.
    """

    config: TransformerConfig = TransformerConfig(alphabet="ab", d_model=16, n_heads=2, d_head=8, d_mlp=32,
                                                  n_layers=2, max_len=16, norm="pre", activation="relu",
                                                  dtype="float64", seed=0)
    task: FineTuningTask = field(default_factory=anbn_to_anbnan)
    pretrain_lr: float = 0.01
    pretrain_steps: int = 150
    sgd_lr: float = 0.05
    sgd_steps: int = 20
    adam_lr: float = 0.01
    adam_steps: int = 20
    check_length: int = 10
    rtol: float = 1e-4
    grad_rtol: float = 1e-8
    margin: float = 1e-3
    control_tol: float = 1e-9
    control_param_tol: float = 1e-6


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)``, restoring the previous count after.  The
    certificates' models are tiny: on a shared or small machine, one thread is several times faster
    than many (and its reductions are reproducible run to run)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@functools.lru_cache(maxsize=4)
def _pretrained_state(setup: Proposition3Setup) -> tuple[tuple[str, torch.Tensor], ...]:
    base = DecoderTransformer(setup.config)
    if setup.task.pretrain and setup.pretrain_steps:
        with torch_threads(1):
            base, _ = train(base, setup.task.pretrain, "adam", setup.pretrain_lr, setup.pretrain_steps)
    return tuple((k, v.detach().clone()) for k, v in base.state_dict().items())


def pretrained_model(setup: Proposition3Setup = Proposition3Setup()) -> DecoderTransformer:
    """θ: the seeded model after ``pretrain_steps`` Adam steps on the pretraining words (computed once
    per setup and process; each call returns a fresh copy)."""
    return DecoderTransformer.from_state_dict(setup.config, dict(_pretrained_state(setup)))


def _sig(x: float, digits: int = 3) -> float:
    """Round to a few significant digits, so that certificates do not carry last-bit noise."""
    if x == 0 or not math.isfinite(x):
        return x
    return float(f"{x:.{digits}g}")


def _sig_up(x: float, digits: int = 3) -> str:
    """An upper bound with a few significant digits, rounded up (so it still bounds), as text."""
    from fractions import Fraction

    from theory.exact import scientific

    return "unbounded" if not math.isfinite(x) else scientific(Fraction(x), "up", digits)


def _sig_down(x: float, digits: int = 3) -> str:
    """A lower bound with a few significant digits, rounded down (so it still bounds), as text."""
    from fractions import Fraction

    from theory.exact import scientific

    return scientific(Fraction(x), "down", digits)


def _gap_quantities(g: TrajectoryGap) -> dict:
    return {
        "optimizer": g.optimizer, "lr": g.lr, "steps": g.steps,
        "loss_before": [_sig(x, 6) for x in g.loss_before], "loss_after": [_sig(x, 6) for x in g.loss_after],
        "loss_gap": _sig(g.loss_gap), "ood_tv_mean": _sig(g.ood_tv_mean), "ood_tv_max": _sig(g.ood_tv_max),
        "ood_argmax_disagreement": _sig(g.ood_argmax_disagreement), "worst_ood_prefix": g.worst_ood_prefix,
        "n_ood_prefixes": g.n_ood_prefixes, "param_distance": _sig(g.param_distance), "finite": g.finite,
    }


def _function_quantities(cmp: FunctionComparison) -> dict:
    return {"prefix_length": cmp.length, "prefixes": cmp.n_prefixes, "max_abs_dlogprob_upper": _sig_up(cmp.max_abs_diff),
            "max_abs_logprob": _sig(cmp.max_abs_logit), "rtol": cmp.rtol, "tolerance": _sig(cmp.tolerance),
            "max_logprob_radius_upper": _sig_up(cmp.max_radius),
            "worst_prefix": cmp.worst_prefix, "worst_outcome": cmp.worst_outcome, "dtype": cmp.dtype}


def certify_function_equality(check: str, model: DecoderTransformer, other: DecoderTransformer, length: int,
                              rtol: float | None = None, claim: str = "") -> Certificate:
    """The exhaustive function-equality certificate alone: ``verified`` when max |Δ logit| ≤ tolerance
    over every prefix of length ≤ ``length``, else ``falsified`` naming the worst prefix and |Δ logit|."""
    with torch_threads(1):
        cmp = compare_functions(model, other, length, rtol=rtol)
    return Certificate(
        check=check, claim=claim or (f"The real functions of the two models' weights give next-token log-probabilities within the "
                                       f"stated tolerance of each other at every prefix of length <= {length}."),
        status=cmp.status, method="exhaustive",
        detail=f"max|dlogp| <= {_sig_up(cmp.max_abs_diff, 2)} over {cmp.n_prefixes} prefixes, enclosed",
        reason="" if cmp.equal else _not_equal_reason(cmp), quantities=_function_quantities(cmp),
        assumptions=(*_enclosure_assumptions(), _equality_meaning(cmp)),
        versions=library_versions("torch"),
    )


def _enclosure_assumptions() -> tuple[str, ...]:
    from constructions.enclosure import ASSUMPTIONS

    return ASSUMPTIONS


def _equality_meaning(cmp: FunctionComparison) -> str:
    return (f"'the same function' means: a rigorous upper bound of |log q1 - log q2| over all {cmp.n_prefixes} prefixes "
            f"of length <= {cmp.length} and every outcome is <= rtol*max(1, max|log q|), rtol {cmp.rtol:g} "
            "(exact equality in real arithmetic is not shown by this check)")


def _not_equal_reason(cmp: FunctionComparison) -> str:
    if cmp.differs:
        return (f"not the same function: |dlogp| >= {_sig_down(cmp.certain_diff)} > tolerance {cmp.tolerance:.3g} "
                f"at prefix {cmp.certain_prefix!r}")
    return (f"undecided: the enclosures are too wide; |dlogp| <= {_sig_up(cmp.max_abs_diff)} is not within tolerance {cmp.tolerance:.3g} "
            f"at prefix {cmp.worst_prefix!r} (outcome {cmp.worst_outcome})")


def _not_twins(check: str, pmap: ParameterMap, cmp: FunctionComparison) -> Certificate:
    return Certificate(
        check=check, claim=(f"{pmap.name} leaves every next-token distribution on prefixes of length <= {cmp.length} "
                            f"unchanged within the tolerance {cmp.tolerance:.3g} (rigorous enclosures)."), status=cmp.status,
        method="exhaustive", detail=f"max|dlogp| <= {_sig_up(cmp.max_abs_diff, 2)} at {cmp.worst_prefix!r}",
        reason=_not_equal_reason(cmp), quantities={"map": pmap.name, **_function_quantities(cmp)},
        assumptions=(*_enclosure_assumptions(), _equality_meaning(cmp)),
        versions=library_versions("torch"),
    )


def certify_twin(check: str, pmap: ParameterMap, model: DecoderTransformer, setup: Proposition3Setup) -> Certificate:
    """The Proposition 3 certificate for one map on one model (method ``exhaustive``).

    Always: (i) every prefix up to ``setup.check_length`` has max |Δ logit| ≤ tolerance (else
    ``falsified`` at once, worst prefix and |Δ logit| named, nothing fine-tuned); (ii) ∇L(T(θ)) matches
    the predicted transform within ``grad_rtol`` (else ``falsified``).  Then, for a scaling (not
    gradient-equivariant): (iii) after ``sgd_steps`` SGD steps the loss gap and the mean OOD TV are
    ≥ ``margin`` (else ``unknown``); Adam's gap is measured and reported, not required.  For a
    permutation (the control): (iii') after SGD *and* Adam, the loss gaps and max OOD TVs are
    ≤ ``control_tol`` and ‖θ'_k − T(θ_k)‖∞ ≤ ``control_param_tol`` (else ``falsified``).
    """
    with torch_threads(1):
        cmp = compare_functions(model, pmap.apply(model), setup.check_length, rtol=setup.rtol)
        if not cmp.equal:  # not twins: a fine-tuning gap between two different functions would prove nothing
            return _not_twins(check, pmap, cmp)
        grads = gradient_check(pmap, model, setup.task.words)
        sgd = fine_tuning_gap(pmap, model, setup.task, "sgd", setup.sgd_lr, setup.sgd_steps)
        adam = fine_tuning_gap(pmap, model, setup.task, "adam", setup.adam_lr, setup.adam_steps)
    control = pmap.gradient_equivariant
    quantities = {
        "map": pmap.name, "task": setup.task.name, **_function_quantities(cmp),
        "gradient_max_rel_error": _sig(grads.max_rel_error), "gradient_worst_parameter": grads.worst_parameter,
        "gradient_max_change": _sig(grads.max_change), "grad_rtol": setup.grad_rtol,
        "sgd": _gap_quantities(sgd), "adam": _gap_quantities(adam),
    }
    if control:
        quantities.update(control_tol=setup.control_tol, control_param_tol=setup.control_param_tol)
    else:
        quantities["margin"] = setup.margin
    fn = f"max|dlogp| <= {_sig_up(cmp.max_abs_diff, 1)}"
    reason = ""
    if not grads.max_rel_error <= setup.grad_rtol:
        status = Status.FALSIFIED
        reason = (f"gradient of T(theta) is not the predicted transform: relative error {grads.max_rel_error:.3g} "
                  f"> {setup.grad_rtol:g} at {grads.worst_parameter}")
    elif control:
        gap = max(sgd.loss_gap, sgd.ood_tv_max, adam.loss_gap, adam.ood_tv_max)
        dist = max(sgd.param_distance, adam.param_distance)
        ok = gap <= setup.control_tol and dist <= setup.control_param_tol
        status = Status.VERIFIED if ok else Status.FALSIFIED
        if not ok:
            reason = (f"the control shows a gap: max(loss gap, OOD TV) = {gap:.3g} (tolerance {setup.control_tol:g}), "
                      f"parameter distance {dist:.3g} (tolerance {setup.control_param_tol:g})")
    else:
        ok = sgd.finite and sgd.loss_gap >= setup.margin and sgd.ood_tv_mean >= setup.margin
        status = Status.VERIFIED if ok else Status.UNKNOWN
        if not ok:
            reason = (f"SGD gap below the margin {setup.margin:g} (loss gap {sgd.loss_gap:.3g}, mean OOD TV "
                      f"{sgd.ood_tv_mean:.3g}, finite {sgd.finite}); the function equality holds")
    if control:
        detail = (f"{fn}; no gap: sgd {max(sgd.loss_gap, sgd.ood_tv_max):.0e}, "
                  f"adam {max(adam.loss_gap, adam.ood_tv_max):.0e}")
        claim = (f"Control: {pmap.name} preserves the function and is gradient-equivariant, so {setup.sgd_steps} SGD and "
                 f"{setup.adam_steps} Adam steps from theta and T(theta) end at the same function (no gap).")
    else:
        detail = f"{fn}; SGD gap {sgd.loss_gap:.2g}, OOD TV {sgd.ood_tv_mean:.2g}; Adam {adam.loss_gap:.2g}"
        claim = (f"{pmap.name}: on every prefix of length <= {cmp.length} ({cmp.n_prefixes:,} prefixes; the model's context "
                 f"holds {model.config.max_len - 1} tokens), rigorous enclosures of the real functions of theta and T(theta) "
                 f"give next-token log-probabilities within {_sig_up(cmp.max_abs_diff, 2)} of each other (tolerance "
                 f"{cmp.tolerance:.3g}); the map is an algebraic identity of each block, which prop-3-symbolic proves for "
                 f"a one-layer model; yet {setup.sgd_steps} SGD steps from theta and T(theta) give losses and OOD behaviour "
                 f"differing by >= {setup.margin:g} (a gap after a fixed number of steps, not at convergence).")
    assumptions = (
        *_enclosure_assumptions(), _equality_meaning(cmp),
        "fine-tuning: full-batch steps on the mean sequence NLL of the fine-tuning words, from the same pretrained theta",
        f"gaps are float64 numbers; the permutation control, run through the same pipeline, bounds its float noise "
        f"(<= {setup.control_tol:g}), many orders below the margin {setup.margin:g}",
        "Adam is reported, not certified: it normalises each coordinate's gradient, so from T(theta) its steps are "
        "~lr in theta' coordinates, i.e. lr/D_i in theta's (SGD: lr/D_i^2); its gap is generally nonzero but different",
    )
    return Certificate(check=check, claim=claim, status=status, method="exhaustive", detail=detail, reason=reason,
                       quantities=quantities, assumptions=assumptions, versions=library_versions("torch"))
