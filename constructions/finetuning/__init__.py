"""Proposition 3 (docs/theory.md §4): fine-tunability is not identified by the function.

For the project's transformer (:mod:`constructions.transformer`) these parameter maps T leave the
function — every next-token distribution at every prefix — unchanged, for every α > 0:

* **query/key scaling** of one head: (W_Q, b_Q, W_K, b_K) → (αW_Q, αb_Q, W_K/α, b_K/α) (:func:`qk_scaling`);
* **value/output scaling** of one head: (W_V, b_V, W_O[:, head]) → (αW_V, αb_V, W_O[:, head]/α)
  (:func:`vo_scaling`; the shared output bias is untouched);
* **ReLU-MLP scaling** of one layer: (W₁, b₁, W₂) → (αW₁, αb₁, W₂/α) (:func:`mlp_scaling`; needs
  σ(αz) = ασ(z), so it refuses a non-ReLU model with :class:`~theory.errors.NotPositivelyHomogeneous`).

Each is a diagonal linear map θ' = Dθ with L(Dθ) = L(θ) for every loss, hence ∇L(θ') = D⁻¹∇L(θ): one
SGD step from θ' is, in θ's coordinates, a step with learning rates multiplied by 1/D², so k steps
from θ and from θ' end at different functions.  Head and hidden-unit permutations
(:func:`head_permutation`, :func:`hidden_unit_permutation`) are symmetries too, but orthogonal:
∇L(Pθ) = P∇L(θ), so SGD and Adam from Pθ follow P of θ's trajectory exactly — the control with no gap.

Every map is a :class:`ParameterMap` (ordered steps on slices of named parameters, composable with
:func:`compose`); applying one returns a new model and never touches the original.  The checks:
:func:`compare_functions` (exhaustive over every prefix up to a length, float64, stated tolerance,
worst prefix named), :func:`gradient_check` (autograd at θ and T(θ) against the predicted transform),
:func:`fine_tuning_gap` (k steps of SGD or Adam from both, loss and OOD gap), and
:func:`certify_twin`, which turns them into one :class:`~theory.certificate.Certificate`.

Layout (a module imports only modules listed before it; this package re-exports their public names):

* :mod:`~constructions.finetuning.maps` — :class:`ParameterMap`, the symmetries, :func:`compose`;
* :mod:`~constructions.finetuning.compare` — exhaustive function equality from rigorous enclosures;
* :mod:`~constructions.finetuning.gradients` — the loss, its gradient, the gradient check;
* :mod:`~constructions.finetuning.task` — the fine-tuning task (aⁿbⁿ → aⁿbⁿaⁿ);
* :mod:`~constructions.finetuning.training` — SGD/Adam steps and the fine-tuning gap;
* :mod:`~constructions.finetuning.lasting` — SGD to the loss floor and the certified lasting effect;
* :mod:`~constructions.finetuning.certificates` — :class:`Proposition3Setup`, the pretrained θ, the certificates;
* :mod:`~constructions.finetuning.sweep` — the fine-tuning gap against α, as a certificate.
"""

from constructions.finetuning.certificates import (
    Proposition3Setup,
    certify_function_equality,
    certify_map_identity,
    certify_orthogonal_control,
    certify_twin,
    orthogonal_model,
    pretrained_model,
    theta_run,
    torch_threads,
)
from constructions.finetuning.compare import (
    BitwiseComparison,
    FunctionComparison,
    bitwise_identity,
    compare_functions,
    default_rtol,
    prefix_log_probs,
    prefix_logits,
)
from constructions.finetuning.gradients import GradientCheck, gradient_check, loss_gradients, mean_nll
from constructions.finetuning.lasting import (
    ConvergedRun,
    LastingEffect,
    TVGap,
    fine_tune_to_floor,
    lasting_effect,
    loss_bounds,
    loss_floor,
    tv_bounds,
    tv_gap,
)
from constructions.finetuning.maps import (
    ALPHA_RANGE,
    DenseTransform,
    ParameterMap,
    SlicePermutation,
    SliceScale,
    Step,
    compose,
    hadamard,
    head_permutation,
    hidden_unit_permutation,
    is_power_of_two,
    key_factor_blind_qk_scaling,
    mlp_scaling,
    qk_scaling,
    residual_rotation,
    vo_scaling,
    wrong_inverse_qk_scaling,
)
from constructions.finetuning.sweep import SWEEP_FAMILIES, alpha_sweep_certificate, uniform_scaling
from constructions.finetuning.task import FineTuningTask, anbn_to_anbnan, anbn_words, anbnan_words
from constructions.finetuning.training import ADAM_BETAS, ADAM_EPS, TrajectoryGap, fine_tuning_gap, train

__all__ = [
    "SliceScale", "SlicePermutation", "ParameterMap", "qk_scaling", "vo_scaling", "mlp_scaling",
    "head_permutation", "hidden_unit_permutation", "compose", "wrong_inverse_qk_scaling",
    "FunctionComparison", "compare_functions", "prefix_log_probs", "GradientCheck", "gradient_check", "loss_gradients",
    "FineTuningTask", "anbn_words", "anbnan_words", "anbn_to_anbnan", "mean_nll", "train",
    "TrajectoryGap", "fine_tuning_gap", "Proposition3Setup", "pretrained_model", "certify_twin",
    "certify_function_equality",
    "default_rtol", "torch_threads",
    "Step", "ALPHA_RANGE", "ADAM_BETAS", "ADAM_EPS", "SWEEP_FAMILIES", "uniform_scaling", "alpha_sweep_certificate",
    "DenseTransform", "hadamard", "residual_rotation", "is_power_of_two", "key_factor_blind_qk_scaling",
    "BitwiseComparison", "bitwise_identity", "prefix_logits", "certify_map_identity", "certify_orthogonal_control",
    "orthogonal_model", "theta_run", "ConvergedRun", "LastingEffect", "TVGap", "fine_tune_to_floor", "lasting_effect",
    "loss_bounds", "loss_floor", "tv_bounds", "tv_gap",
]
