"""Gradients: the loss (:func:`mean_nll`), its autograd gradient (:func:`loss_gradients`), and the
check that ∇L(T(θ)) is the predicted transform of ∇L(θ) (:func:`gradient_check`, :class:`GradientCheck`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from constructions.finetuning.maps import ParameterMap
from constructions.transformer import DecoderTransformer


def mean_nll(model: DecoderTransformer, words: Sequence[str]) -> torch.Tensor:
    """The test loss of uniform data on ``words``: mean of −log Q(x) (nats per sequence), differentiable."""
    return model.sequence_nll(words).mean()


def loss_gradients(model: DecoderTransformer, words: Sequence[str]) -> dict[str, torch.Tensor]:
    """∇ of :func:`mean_nll` on ``words`` by autograd: parameter name → gradient (detached)."""
    params = dict(model.named_parameters())
    grads = torch.autograd.grad(mean_nll(model, words), list(params.values()))
    return {k: g.detach() for k, g in zip(params, grads)}


@dataclass(frozen=True)
class GradientCheck:
    """∇L(T(θ)) by autograd against the predicted transform of ∇L(θ).

    Attributes:
        max_rel_error: max over parameters of ‖predicted − autograd‖∞, divided by the largest
            |∂L/∂θ'ᵢ| of the whole model.
        worst_parameter: where that happens.
        max_change: max over parameters of ‖∇L(T(θ)) − ∇L(θ)‖∞ / max |∇L(θ)| — how much the gradient
            actually moved (0 for a model-wide identity map).
    """

    max_rel_error: float
    worst_parameter: str
    max_change: float


def gradient_check(pmap: ParameterMap, model: DecoderTransformer, words: Sequence[str]) -> GradientCheck:
    """Autograd gradients of :func:`mean_nll` on ``words`` at θ and at T(θ), against
    ``pmap.transform_gradients``.

    Errors are relative to the largest gradient entry of the model (not of each tensor): some
    gradients vanish identically — b_K's always does, since shifting every key moves a row's scores by
    the same q·b_K, which the softmax ignores — and a per-tensor ratio would divide rounding noise by
    rounding noise."""
    twin = pmap.apply(model)
    g, g_twin = loss_gradients(model, words), loss_gradients(twin, words)
    predicted = pmap.transform_gradients(g)
    scale = max(max(float(t.abs().max()) for t in g_twin.values()), 1e-300)
    base = max(max(float(t.abs().max()) for t in g.values()), 1e-300)
    worst, worst_name, change = -1.0, "", 0.0
    for name, actual in g_twin.items():
        err = float((predicted[name] - actual).abs().max()) / scale
        if err > worst:
            worst, worst_name = err, name
        change = max(change, float((actual - g[name]).abs().max()) / base)
    return GradientCheck(worst, worst_name, change)
