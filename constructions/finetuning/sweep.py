"""The fine-tuning gap against α, as a certificate (the appendix's series): the same α on every head or
MLP layer (:func:`uniform_scaling`), and the point-by-point certificate (:func:`alpha_sweep_certificate`)."""

from __future__ import annotations

import math
from typing import Any, Sequence

from constructions.finetuning.certificates import (
    Proposition3Setup,
    _enclosure_assumptions,
    _not_equal_reason,
    _sig,
    _sig_up,
    pretrained_model,
    torch_threads,
)
from constructions.finetuning.compare import compare_functions
from constructions.finetuning.maps import (
    ParameterMap,
    _check_alpha,
    _config_of,
    compose,
    mlp_scaling,
    qk_scaling,
    vo_scaling,
)
from constructions.finetuning.training import fine_tuning_gap
from constructions.transformer import DecoderTransformer, TransformerConfig
from theory.certificate import Certificate, Status, library_versions
from theory.errors import InvalidReparametrisation

SWEEP_FAMILIES = ("qk", "vo", "mlp")


def _finite_or_none(x: float) -> float | None:
    """3 significant digits; None for a non-finite value (JSON has no infinity)."""
    return _sig(x) if math.isfinite(x) else None


def uniform_scaling(model: DecoderTransformer | TransformerConfig, family: str, alpha: float) -> ParameterMap:
    """The same α on every head (``qk``, ``vo``) or every MLP layer (``mlp``) of ``model``.

    Raises:
        InvalidReparametrisation: an unknown family or a bad α.
    """
    cfg = _config_of(model)
    if family == "mlp":
        maps = [mlp_scaling(cfg, layer, alpha) for layer in range(cfg.n_layers)]
    elif family in ("qk", "vo"):
        make = qk_scaling if family == "qk" else vo_scaling
        maps = [make(cfg, layer, head, alpha) for layer in range(cfg.n_layers) for head in range(cfg.n_heads)]
    else:
        raise InvalidReparametrisation(f"family {family!r} is not one of {SWEEP_FAMILIES}")
    return compose(*maps, name=f"{family}-scaling, alpha {alpha:g} everywhere")


def alpha_sweep_certificate(alphas: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 4.0),
                            setup: Proposition3Setup = Proposition3Setup(), check_length: int = 8,
                            check: str = "finetuning-gap-vs-alpha") -> Certificate:
    """The fine-tuning gap of Proposition 3 as a function of α, certified point by point.

    For each family (qk, vo, mlp: the same α everywhere, :func:`uniform_scaling`) and each α of the
    grid: the twin is the same function (exhaustive, every prefix up to ``check_length``), and after
    ``setup.sgd_steps`` SGD steps from θ and T_α(θ) the mean OOD TV is ≥ ``setup.margin`` for α ≠ 1
    (the loss gap, transient — both twins can reach the same loss later — is reported, not required) (α = 1 is the identity: its gap must be exactly 0).  ``verified`` when
    every point holds; a twin that is not the same function makes it ``falsified``; a gap below the
    margin ``unknown``.  The numbers (rounded to 3 significant digits) are the quantities' ``points``.
    """
    alphas = tuple(float(a) for a in alphas)
    for a in alphas:
        _check_alpha(a, "alpha")
    model = pretrained_model(setup)
    points: list[dict[str, Any]] = []
    bad_fn: list[str] = []
    small: list[str] = []
    with torch_threads(1):
        for family in SWEEP_FAMILIES:
            for a in alphas:
                pmap = uniform_scaling(model, family, a)
                cmp = compare_functions(model, pmap.apply(model), check_length, rtol=setup.rtol)
                g = fine_tuning_gap(pmap, model, setup.task, "sgd", setup.sgd_lr, setup.sgd_steps)
                point = {"family": family, "alpha": a, "same_function": cmp.equal,
                         "max_abs_dlogprob_upper": _sig_up(cmp.max_abs_diff), "loss_gap": _finite_or_none(g.loss_gap),
                         "ood_tv_mean": _finite_or_none(g.ood_tv_mean), "finite": g.finite}
                points.append(point)
                if cmp.differs:
                    bad_fn.append(f"{family} alpha {a:g}: {_not_equal_reason(cmp)}")
                elif not cmp.equal:
                    small.append(f"{family} alpha {a:g}: {_not_equal_reason(cmp)}")
                elif a == 1.0 and (g.loss_gap != 0 or g.ood_tv_mean != 0):
                    bad_fn.append(f"{family} alpha 1 (the identity) shows a gap {g.loss_gap:.3g}")
                elif a != 1.0 and not (g.finite and g.ood_tv_mean >= setup.margin):  # the loss gap is transient: reported
                    small.append(f"{family} alpha {a:g}: loss gap {g.loss_gap:.3g}, mean OOD TV {g.ood_tv_mean:.3g}")
    status = Status.FALSIFIED if bad_fn else Status.UNKNOWN if small else Status.VERIFIED
    reason = "; ".join(bad_fn) if bad_fn else ("below the margin " + f"{setup.margin:g}: " + "; ".join(small) if small else "")
    gaps = [p["loss_gap"] for p in points if p["alpha"] != 1.0 and p["loss_gap"] is not None]
    return Certificate(
        check=check,
        claim=(f"For every alpha != 1 in {{{', '.join(f'{a:g}' for a in alphas)}}}, scaling every head (qk, vo) or MLP "
               f"layer (mlp) by alpha keeps the function, yet {setup.sgd_steps} SGD steps (lr {setup.sgd_lr:g}) from theta "
               f"and T(theta) end with mean OOD TV (float64) >= {setup.margin:g} (the transient loss gap is reported); at alpha "
               f"= 1 the gap is 0."),
        status=status, method="exhaustive",
        detail=(f"{len(points)} twins; SGD loss gap {min(gaps):.2g}..{max(gaps):.2g} for alpha != 1" if gaps
                else f"{len(points)} twins"),
        reason=reason,
        quantities={"alphas": list(alphas), "families": list(SWEEP_FAMILIES), "points": points, "task": setup.task.name,
                    "optimizer": "sgd", "lr": setup.sgd_lr, "steps": setup.sgd_steps, "margin": setup.margin,
                    "prefix_length": check_length, "rtol": setup.rtol},
        assumptions=(*_enclosure_assumptions(),
                     f"'keeps the function' means: a rigorous upper bound of |log q1 - log q2| is <= rtol*max(1, max|log q|) "
                     f"(rtol {setup.rtol:g}) over every prefix of length <= {check_length}",
                     "the pretrained theta and fine-tuning task of Proposition3Setup (as for prop-3-*)"),
        versions=library_versions("torch"),
    )
