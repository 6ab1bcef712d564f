"""Training and the fine-tuning gap: full-batch SGD or Adam steps (:func:`train`), and k steps from θ and
from T(θ) compared on the loss and on every OOD prefix (:func:`fine_tuning_gap`, :class:`TrajectoryGap`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import torch

from constructions.finetuning.compare import prefix_log_probs
from constructions.finetuning.gradients import mean_nll
from constructions.finetuning.maps import ParameterMap
from constructions.finetuning.task import FineTuningTask
from constructions.transformer import DecoderTransformer
from theory.errors import InvalidTrainingOption
from theory.processes import raise_if_interrupted
from theory.validation import check_choice, check_int, check_number

ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


def train(model: DecoderTransformer, words: Sequence[str], optimizer: str, lr: float,
          steps: int) -> tuple[DecoderTransformer, list[float]]:
    """``steps`` full-batch steps on :func:`mean_nll` of ``words`` from a copy of ``model``.

    ``optimizer`` is ``"sgd"`` (θ ← θ − lr·g, no momentum, no weight decay) or ``"adam"`` (Kingma & Ba
    with torch's defaults β = (0.9, 0.999), ε = 1e-8, written out exactly as ``torch.optim.Adam``
    computes it — the tests check they agree; it is written out because constructing a
    ``torch.optim`` optimiser imports ``torch._dynamo``, seconds of start-up on a small machine).
    Returns the trained copy and the loss before each step and after the last (``steps + 1`` values).
    The input model is not modified.

    Raises:
        InvalidTrainingOption: an unknown optimiser, a negative step count or a learning rate that is not finite and > 0.
    """
    check_choice(optimizer, "optimizer", ("sgd", "adam"), error=InvalidTrainingOption)
    check_int(steps, "steps =", minimum=0, error=InvalidTrainingOption)
    check_number(lr, "learning rate", lo=0, lo_open=True, error=InvalidTrainingOption, real=True)
    m = model.clone()
    params = list(m.parameters())
    first = [torch.zeros_like(p) for p in params]
    second = [torch.zeros_like(p) for p in params]
    (b1, b2), losses = ADAM_BETAS, []
    for t in range(1, steps + 1):
        raise_if_interrupted()  # a Ctrl-C deferred inside torch stops here, between steps
        loss = mean_nll(m, words)
        losses.append(loss.item())
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g, mo, ve in zip(params, grads, first, second):
                if optimizer == "sgd":
                    p.add_(g, alpha=-lr)
                    continue
                mo.lerp_(g, 1 - b1)
                ve.mul_(b2).addcmul_(g, g, value=1 - b2)
                denom = (ve.sqrt() / math.sqrt(1 - b2 ** t)).add_(ADAM_EPS)
                p.addcdiv_(mo, denom, value=-lr / (1 - b1 ** t))
    with torch.no_grad():
        losses.append(mean_nll(m, words).item())
    return m, losses


@dataclass(frozen=True)
class TrajectoryGap:
    """k steps of one optimiser from θ and from T(θ).

    Attributes:
        optimizer, lr, steps: the run.
        loss_before: (L(θ), L(T(θ))) on the fine-tuning words — equal, the twins are one function.
        loss_after: (L(θ_k), L(θ'_k)).
        loss_gap: |L(θ_k) − L(θ'_k)| (nats per sequence); ``inf`` if either run diverged.
        ood_tv_mean, ood_tv_max: mean and max over OOD prefixes of the total-variation distance
            between the two fine-tuned models' next-token distributions.
        ood_argmax_disagreement: fraction of OOD prefixes where their greedy next tokens differ.
        worst_ood_prefix: where ood_tv_max occurs.
        n_ood_prefixes: how many OOD prefixes.
        param_distance: ‖θ'_k − T(θ_k)‖∞: ~0 for a gradient-equivariant map (the trajectories are
            images of each other), large for a scaling.
        finite: both runs stayed finite.
        final: the two fine-tuned models (θ_k, θ'_k), for checks that enclose them (not compared, not printed).
    """

    optimizer: str
    lr: float
    steps: int
    loss_before: tuple[float, float]
    loss_after: tuple[float, float]
    loss_gap: float
    ood_tv_mean: float
    ood_tv_max: float
    ood_argmax_disagreement: float
    worst_ood_prefix: str
    n_ood_prefixes: int
    param_distance: float
    finite: bool
    final: tuple[DecoderTransformer, DecoderTransformer] | None = field(default=None, repr=False, compare=False)


def fine_tuning_gap(pmap: ParameterMap, model: DecoderTransformer, task: FineTuningTask, optimizer: str,
                    lr: float, steps: int) -> TrajectoryGap:
    """Fine-tune θ = ``model`` and T(θ) = ``pmap.apply(model)`` for ``steps`` steps and measure how far
    apart they end, on the fine-tuning loss and on every OOD prefix up to ``task.ood_length``."""
    twin = pmap.apply(model)
    a, la = train(model, task.words, optimizer, lr, steps)
    b, lb = train(twin, task.words, optimizer, lr, steps)
    finite = all(math.isfinite(x) for x in la + lb)
    support = task.support_prefixes()
    ood_tv = torch.zeros(0)
    worst, disagree, n_ood = "", 0.0, 0
    if finite:
        prefixes, pa = prefix_log_probs(a, task.ood_length)
        _, pb = prefix_log_probs(b, task.ood_length)
        ood = torch.tensor([u not in support for u in prefixes])
        n_ood = int(ood.sum())
        tv = 0.5 * (pa.exp() - pb.exp()).abs().sum(dim=1)
        ood_tv = tv[ood.to(tv.device)]
        if n_ood:
            worst = [u for u, o in zip(prefixes, ood.tolist()) if o][int(ood_tv.argmax())]
            disagree = float((pa.argmax(1) != pb.argmax(1))[ood.to(tv.device)].double().mean())
    with torch.no_grad():
        pushed = pmap.transform_parameters(dict(a.named_parameters()))
        dist = max(float((p - pushed[k]).abs().max()) for k, p in b.named_parameters())
    return TrajectoryGap(
        optimizer=optimizer, lr=lr, steps=steps, loss_before=(la[0], lb[0]), loss_after=(la[-1], lb[-1]),
        loss_gap=abs(la[-1] - lb[-1]) if finite else math.inf,
        ood_tv_mean=float(ood_tv.mean()) if n_ood else (0.0 if finite else math.inf),
        ood_tv_max=float(ood_tv.max()) if n_ood else (0.0 if finite else math.inf),
        ood_argmax_disagreement=disagree, worst_ood_prefix=worst, n_ood_prefixes=n_ood,
        param_distance=dist if math.isfinite(dist) else math.inf, finite=finite, final=(a, b),
    )
