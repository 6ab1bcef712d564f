"""Proposition 3 (THEORY.md §4): fine-tunability is not identified by the function.

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
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import numbers
from dataclasses import dataclass, field
from typing import Iterator, Mapping, Sequence

import numpy as np
import torch

from constructions.transformer import DecoderTransformer, TransformerConfig
from theory.certificate import Certificate, Status, library_versions
from theory.errors import InputTooLong, InvalidReparametrisation, NotPositivelyHomogeneous

__all__ = [
    "SliceScale", "SlicePermutation", "ParameterMap", "qk_scaling", "vo_scaling", "mlp_scaling",
    "head_permutation", "hidden_unit_permutation", "compose", "wrong_inverse_qk_scaling",
    "FunctionComparison", "compare_functions", "prefix_log_probs", "GradientCheck", "gradient_check", "loss_gradients",
    "FineTuningTask", "anbn_words", "anbnan_words", "anbn_to_anbnan", "mean_nll", "train",
    "TrajectoryGap", "fine_tuning_gap", "Proposition3Setup", "pretrained_model", "certify_twin",
    "certify_function_equality",
    "default_rtol", "torch_threads",
]


# ----------------------------------------------------------------------------------------------
# The maps
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SliceScale:
    """Multiply ``parameter``'s slice ``start:stop`` along ``dim`` by ``factor``."""

    parameter: str
    dim: int
    start: int
    stop: int
    factor: float


@dataclass(frozen=True)
class SlicePermutation:
    """Reorder ``parameter``'s slice ``start:stop`` along ``dim``: new index ``start + i`` takes old
    index ``start + order[i]``."""

    parameter: str
    dim: int
    start: int
    stop: int
    order: tuple[int, ...]


Step = SliceScale | SlicePermutation


def _shape_key(cfg: TransformerConfig) -> tuple:
    return (cfg.alphabet, cfg.d_model, cfg.n_heads, cfg.d_head, cfg.d_mlp, cfg.n_layers, cfg.max_len)


@dataclass(frozen=True)
class ParameterMap:
    """A linear map θ ↦ θ' on a transformer's parameters: scalings and permutations of slices, in order.

    Attributes:
        name: what it is (``qk-scaling[layer 0, head 1, alpha 2]``).
        steps: the slice operations, applied left to right.
        shape: the model shape it was built for (alphabet and sizes); :meth:`apply` refuses another.
        needs_positive_homogeneity: true for MLP scalings — refused on a non-ReLU model.
        gradient_equivariant: true when every step is a permutation (orthogonal map): ∇' = P∇, so
            SGD and Adam commute with the map; false for scalings (∇' = D⁻¹∇).
        function_preserving: what the map claims; only the deliberately wrong
            :func:`wrong_inverse_qk_scaling` says false (the checks never trust it, they measure).
    """

    name: str
    steps: tuple[Step, ...]
    shape: tuple
    needs_positive_homogeneity: bool = False
    gradient_equivariant: bool = False
    function_preserving: bool = True

    def _check_model(self, model: DecoderTransformer) -> None:
        if not isinstance(model, DecoderTransformer):
            raise InvalidReparametrisation(f"{self.name}: expected a DecoderTransformer, got {type(model).__name__}")
        if _shape_key(model.config) != self.shape:
            raise InvalidReparametrisation(
                f"{self.name}: built for shape {self.shape}, the model has {_shape_key(model.config)}")
        if self.needs_positive_homogeneity and model.config.activation != "relu":
            raise NotPositivelyHomogeneous(
                f"{self.name}: the model's MLP activation {model.config.activation!r} is not positively "
                f"homogeneous (sigma(alpha z) != alpha sigma(z)), so rescaling W1, b1 and W2 would change the "
                f"function; only 'relu' qualifies")

    def transform_parameters(self, params: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """θ' = T(θ) for a name → tensor mapping (a ``state_dict``); new tensors, input untouched."""
        out = {k: v.detach().clone() for k, v in params.items()}
        for step in self.steps:
            out[step.parameter] = _apply_step(out[step.parameter], step, gradient=False)
        return out

    def transform_gradients(self, grads: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The predicted ∇L(T(θ)) from ∇L(θ): D⁻¹∇ for a scaling, P∇ for a permutation (the inverse
        transpose of the map, step by step)."""
        out = {k: v.detach().clone() for k, v in grads.items()}
        for step in self.steps:
            out[step.parameter] = _apply_step(out[step.parameter], step, gradient=True)
        return out

    def inverse(self) -> "ParameterMap":
        """T⁻¹: the steps reversed, each inverted."""
        inv: list[Step] = []
        for s in reversed(self.steps):
            if isinstance(s, SliceScale):
                inv.append(SliceScale(s.parameter, s.dim, s.start, s.stop, 1.0 / s.factor))
            else:
                back = [0] * len(s.order)
                for i, j in enumerate(s.order):
                    back[j] = i
                inv.append(SlicePermutation(s.parameter, s.dim, s.start, s.stop, tuple(back)))
        return ParameterMap(f"inverse({self.name})", tuple(inv), self.shape, self.needs_positive_homogeneity,
                            self.gradient_equivariant, self.function_preserving)

    def apply(self, model: DecoderTransformer) -> DecoderTransformer:
        """A new model with parameters T(θ); ``model`` is not modified.

        Raises:
            InvalidReparametrisation: the model's shape is not the one the map was built for.
            NotPositivelyHomogeneous: an MLP scaling applied to a model whose activation is not ReLU.
        """
        self._check_model(model)
        twin = model.clone()
        new = self.transform_parameters(dict(model.named_parameters()))
        with torch.no_grad():
            for name, p in twin.named_parameters():
                p.copy_(new[name])
        return twin


def _apply_step(t: torch.Tensor, step: Step, gradient: bool) -> torch.Tensor:
    t = t.clone()
    part = t.narrow(step.dim, step.start, step.stop - step.start)
    if isinstance(step, SliceScale):
        part.mul_(1.0 / step.factor if gradient else step.factor)
    else:
        idx = torch.tensor(step.order, dtype=torch.long, device=t.device)
        part.copy_(part.index_select(step.dim, idx))
    return t


def _config_of(model_or_config: DecoderTransformer | TransformerConfig) -> TransformerConfig:
    if isinstance(model_or_config, DecoderTransformer):
        return model_or_config.config
    if isinstance(model_or_config, TransformerConfig):
        return model_or_config
    raise InvalidReparametrisation(f"expected a DecoderTransformer or TransformerConfig, got {type(model_or_config).__name__}")


ALPHA_RANGE = (1e-150, 1e150)
"""Scalings allowed: inside it α, 1/α, α² and 1/α² are finite, non-zero float64 numbers."""


def _check_alpha(alpha: object, what: str) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
        raise InvalidReparametrisation(f"{what}: alpha = {alpha!r} is not a real number")
    try:
        a = float(alpha)
    except OverflowError:
        a = math.inf
    if not math.isfinite(a) or a <= 0:
        raise InvalidReparametrisation(f"{what}: alpha = {alpha!r} must be finite and > 0 (the maps need alpha > 0)")
    if not ALPHA_RANGE[0] <= a <= ALPHA_RANGE[1]:
        raise InvalidReparametrisation(f"{what}: alpha = {alpha!r} is outside [{ALPHA_RANGE[0]:g}, {ALPHA_RANGE[1]:g}], "
                                       "where alpha, 1/alpha and their squares are finite, non-zero floats")
    return a


def _check_index(value: object, upper: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= int(value) < upper:
        raise InvalidReparametrisation(f"{what} = {value!r} is out of range 0..{upper - 1}")
    return int(value)


def _check_permutation(order: Sequence[int], n: int, what: str) -> tuple[int, ...]:
    try:
        perm = tuple(int(i) for i in order if not isinstance(i, bool) and isinstance(i, numbers.Integral))
    except TypeError:
        raise InvalidReparametrisation(f"{what}: {order!r} is not a sequence of integers") from None
    if len(perm) != len(list(order)) or sorted(perm) != list(range(n)):
        raise InvalidReparametrisation(f"{what}: {tuple(order)!r} is not a permutation of 0..{n - 1}")
    return perm


def _attn(layer: int, proj: str) -> str:
    return f"blocks.{layer}.attn.{proj}"


def qk_scaling(model: DecoderTransformer | TransformerConfig, layer: int, head: int, alpha: float) -> ParameterMap:
    """(W_Q, b_Q, W_K, b_K) of ``head`` in ``layer`` → (αW_Q, αb_Q, W_K/α, b_K/α): every score
    (αq)·(k/α) is unchanged.

    Raises:
        InvalidReparametrisation: α not finite and > 0, layer or head out of range.
    """
    cfg = _config_of(model)
    a = _check_alpha(alpha, "qk_scaling")
    layer = _check_index(layer, cfg.n_layers, "qk_scaling layer")
    head = _check_index(head, cfg.n_heads, "qk_scaling head")
    lo, hi = head * cfg.d_head, (head + 1) * cfg.d_head
    steps = tuple(SliceScale(f"{_attn(layer, p)}.{w}", 0, lo, hi, f)
                  for p, f in (("q_proj", a), ("k_proj", 1.0 / a)) for w in ("weight", "bias"))
    return ParameterMap(f"qk-scaling[layer {layer}, head {head}, alpha {a:g}]", steps, _shape_key(cfg))


def vo_scaling(model: DecoderTransformer | TransformerConfig, layer: int, head: int, alpha: float) -> ParameterMap:
    """(W_V, b_V) of ``head`` → (αW_V, αb_V) and that head's columns of W_O → W_O/α: the head's
    contribution W_O·Σ aᵢ vᵢ is unchanged (attention weights sum to one, so b_V's scaling passes through).

    Raises:
        InvalidReparametrisation: α not finite and > 0, layer or head out of range.
    """
    cfg = _config_of(model)
    a = _check_alpha(alpha, "vo_scaling")
    layer = _check_index(layer, cfg.n_layers, "vo_scaling layer")
    head = _check_index(head, cfg.n_heads, "vo_scaling head")
    lo, hi = head * cfg.d_head, (head + 1) * cfg.d_head
    steps = (SliceScale(f"{_attn(layer, 'v_proj')}.weight", 0, lo, hi, a),
             SliceScale(f"{_attn(layer, 'v_proj')}.bias", 0, lo, hi, a),
             SliceScale(f"{_attn(layer, 'o_proj')}.weight", 1, lo, hi, 1.0 / a))
    return ParameterMap(f"vo-scaling[layer {layer}, head {head}, alpha {a:g}]", steps, _shape_key(cfg))


def mlp_scaling(model: DecoderTransformer | TransformerConfig, layer: int, alpha: float) -> ParameterMap:
    """(W₁, b₁, W₂) of ``layer``'s MLP → (αW₁, αb₁, W₂/α): ReLU(αz) = α ReLU(z) for α > 0.  The output
    bias b₂ is untouched.

    Raises:
        InvalidReparametrisation: α not finite and > 0, layer out of range.
        NotPositivelyHomogeneous: given a model (or config) whose activation is not ReLU.
    """
    cfg = _config_of(model)
    a = _check_alpha(alpha, "mlp_scaling")
    layer = _check_index(layer, cfg.n_layers, "mlp_scaling layer")
    mlp = f"blocks.{layer}.mlp"
    steps = (SliceScale(f"{mlp}.fc_in.weight", 0, 0, cfg.d_mlp, a),
             SliceScale(f"{mlp}.fc_in.bias", 0, 0, cfg.d_mlp, a),
             SliceScale(f"{mlp}.fc_out.weight", 1, 0, cfg.d_mlp, 1.0 / a))
    pmap = ParameterMap(f"mlp-scaling[layer {layer}, alpha {a:g}]", steps, _shape_key(cfg),
                        needs_positive_homogeneity=True)
    if cfg.activation != "relu":
        raise NotPositivelyHomogeneous(
            f"{pmap.name}: activation {cfg.activation!r} is not positively homogeneous "
            f"(sigma(alpha z) != alpha sigma(z)); only 'relu' allows rescaling W1, b1 and W2")
    return pmap


def head_permutation(model: DecoderTransformer | TransformerConfig, layer: int, order: Sequence[int]) -> ParameterMap:
    """Reorder ``layer``'s heads: new head h is old head ``order[h]`` (its W_Q, b_Q, W_K, b_K, W_V, b_V
    rows and W_O columns move together).

    Raises:
        InvalidReparametrisation: layer out of range, ``order`` not a permutation of the heads.
    """
    cfg = _config_of(model)
    layer = _check_index(layer, cfg.n_layers, "head_permutation layer")
    perm = _check_permutation(order, cfg.n_heads, "head_permutation")
    rows = tuple(h * cfg.d_head + i for h in perm for i in range(cfg.d_head))
    inner = cfg.n_heads * cfg.d_head
    steps = tuple(SlicePermutation(f"{_attn(layer, p)}.{w}", 0, 0, inner, rows)
                  for p in ("q_proj", "k_proj", "v_proj") for w in ("weight", "bias"))
    steps += (SlicePermutation(f"{_attn(layer, 'o_proj')}.weight", 1, 0, inner, rows),)
    return ParameterMap(f"head-permutation[layer {layer}, {list(perm)}]", steps, _shape_key(cfg),
                        gradient_equivariant=True)


def hidden_unit_permutation(model: DecoderTransformer | TransformerConfig, layer: int,
                            order: Sequence[int]) -> ParameterMap:
    """Reorder ``layer``'s MLP hidden units: new unit j is old unit ``order[j]`` (row of W₁ and b₁,
    column of W₂).  Valid for any activation (it acts unit-wise).

    Raises:
        InvalidReparametrisation: layer out of range, ``order`` not a permutation of the units.
    """
    cfg = _config_of(model)
    layer = _check_index(layer, cfg.n_layers, "hidden_unit_permutation layer")
    perm = _check_permutation(order, cfg.d_mlp, "hidden_unit_permutation")
    mlp = f"blocks.{layer}.mlp"
    steps = (SlicePermutation(f"{mlp}.fc_in.weight", 0, 0, cfg.d_mlp, perm),
             SlicePermutation(f"{mlp}.fc_in.bias", 0, 0, cfg.d_mlp, perm),
             SlicePermutation(f"{mlp}.fc_out.weight", 1, 0, cfg.d_mlp, perm))
    return ParameterMap(f"unit-permutation[layer {layer}]", steps, _shape_key(cfg), gradient_equivariant=True)


def compose(*maps: ParameterMap, name: str | None = None) -> ParameterMap:
    """The map applying ``maps[0]`` first, then ``maps[1]``, … (all built for the same shape).

    Raises:
        InvalidReparametrisation: no maps, or maps built for different shapes.
    """
    if not maps:
        raise InvalidReparametrisation("compose needs at least one map")
    shapes = {m.shape for m in maps}
    if len(shapes) != 1:
        raise InvalidReparametrisation(f"compose: maps built for different shapes {sorted(map(str, shapes))}")
    return ParameterMap(
        name or " then ".join(m.name for m in maps), tuple(s for m in maps for s in m.steps), maps[0].shape,
        needs_positive_homogeneity=any(m.needs_positive_homogeneity for m in maps),
        gradient_equivariant=all(m.gradient_equivariant for m in maps),
        function_preserving=all(m.function_preserving for m in maps),
    )


def wrong_inverse_qk_scaling(model: DecoderTransformer | TransformerConfig, layer: int, head: int,
                             alpha: float) -> ParameterMap:
    """A deliberately *wrong* map — α on (W_Q, b_Q), 1/α² on (W_K, b_K) — that changes the function
    whenever α ≠ 1 (scores are multiplied by 1/α).  It exists so that tests can show the exhaustive
    check falsifies a broken symmetry; it is marked ``function_preserving=False``."""
    good = qk_scaling(model, layer, head, alpha)
    a = float(alpha)
    steps = tuple(SliceScale(s.parameter, s.dim, s.start, s.stop, a if "q_proj" in s.parameter else 1.0 / a**2)
                  for s in good.steps)
    return ParameterMap(f"wrong-inverse-qk[layer {layer}, head {head}, alpha {a:g}]", steps, good.shape,
                        function_preserving=False)


# ----------------------------------------------------------------------------------------------
# Exhaustive function equality
# ----------------------------------------------------------------------------------------------

def default_rtol(dtype: torch.dtype) -> float:
    """The relative tolerance of :func:`compare_functions`: 1e-4, in float64 and float32 alike.

    Why: the comparison is of rigorous enclosures of the two real functions' log-probabilities
    (:mod:`constructions.enclosure`), so the bound it tests includes both enclosures' widths — about
    1e-6 nats for the Proposition 3 model (float64, pre-LN, d_model 16), ~1e-7 relative more for
    float32 weights rounded by the map.  1e-4 leaves two orders of magnitude for that and sits three
    below any real change (a wrong inverse moves log-probabilities by O(0.1–1))."""
    return 1e-4


def _maximal_words(n_symbols: int, length: int, batch_size: int) -> Iterator[tuple[int, torch.Tensor]]:
    """All n_symbols**length words as (first index, (batch, length) digit tensor), in lexicographic
    order (digit 0 = first symbol)."""
    total = n_symbols ** length
    powers = torch.tensor([n_symbols ** (length - 1 - i) for i in range(length)], dtype=torch.long)
    for start in range(0, total, batch_size):
        idx = torch.arange(start, min(total, start + batch_size), dtype=torch.long)
        yield start, (idx[:, None] // powers[None]) % n_symbols


def _tokens(model: DecoderTransformer, digits: torch.Tensor) -> torch.Tensor:
    sos = torch.full((digits.shape[0], 1), model.config.sos_id, dtype=torch.long)
    return torch.cat([sos, digits], dim=1).to(model.device)


def _check_length(model: DecoderTransformer, length: int) -> None:
    if isinstance(length, bool) or not isinstance(length, int) or length < 0:
        raise InputTooLong(f"prefix length {length!r} is not a non-negative integer")
    if length + 1 > model.config.max_len:
        raise InputTooLong(f"prefix length {length} needs {length + 1} positions; max_len is {model.config.max_len}")


@dataclass(frozen=True)
class FunctionComparison:
    """The result of :func:`compare_functions`.

    Attributes:
        length: every prefix of length 0..length was compared.
        n_prefixes: how many distinct prefixes that is (Σₙ |Σ|ⁿ).
        n_strings: how many maximal strings were evaluated (|Σ|^length).
        max_abs_diff: a rigorous upper bound of max over prefixes and outcomes of |log q₁ − log q₂|, the
            two models' real functions (enclosures, :mod:`constructions.enclosure`); +∞ when unbounded.
        max_abs_logit: the largest |log q| bound seen (the scale of the relative tolerance).
        rtol: relative tolerance; ``tolerance = rtol · max(1, max_abs_logit)``.
        tolerance: the bound max_abs_diff is compared with.
        worst_prefix: the prefix (a word over Σ; ``""`` is the empty prefix) where max_abs_diff occurs.
        worst_outcome: the outcome (symbol or EOS) of that log-probability.
        dtype: the precision the weights are stored in (the enclosures are float64 interval arithmetic).
        max_radius: the widest log-probability enclosure of the two (half-width).
        certain_diff: a rigorous *lower* bound of max |log q₁ − log q₂| (0 when the enclosures overlap
            everywhere): the functions certainly differ by at least this at ``certain_prefix``.
        certain_prefix: where it is attained.
    """

    length: int
    n_prefixes: int
    n_strings: int
    max_abs_diff: float
    max_abs_logit: float
    rtol: float
    tolerance: float
    worst_prefix: str
    worst_outcome: str
    dtype: str
    max_radius: float = 0.0
    certain_diff: float = 0.0
    certain_prefix: str = ""

    @property
    def equal(self) -> bool:
        """Shown: every |Δ log q| is within the tolerance."""
        return self.max_abs_diff <= self.tolerance

    @property
    def differs(self) -> bool:
        """Shown: some |Δ log q| certainly exceeds the tolerance (neither this nor ``equal``: undecided)."""
        return self.certain_diff > self.tolerance

    @property
    def status(self) -> Status:
        return Status.VERIFIED if self.equal else Status.FALSIFIED if self.differs else Status.UNKNOWN


def _all_words(symbols: str, length: int) -> list[str]:
    return ["".join(p) for p in itertools.product(symbols, repeat=length)]


_ENCLOSURES: dict[tuple[str, int], object] = {}
"""Enclosures by (SHA-256 of config and weights, length): the base model of Proposition 3 is compared with
several twins, and its enclosure is the same each time."""


def _enclosure(model: DecoderTransformer, length: int):
    """The enclosure of ``model`` over every prefix of length ≤ ``length``, cached by the SHA-256 of its
    config and weights (a model changed in place is a new key)."""
    import hashlib

    from constructions.enclosure import enclose_words, why_not_enclosable
    from theory.errors import InvalidModelConfig

    why = why_not_enclosable(model)  # before the cache: a forged class with the same weights is not a hit
    if why:
        raise InvalidModelConfig(f"the rigorous evaluator cannot enclose this network: {why}")
    h = hashlib.sha256(repr(model.config).encode())
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    key = (h.hexdigest(), length)
    enc = _ENCLOSURES.get(key)
    if enc is None:
        enc = enclose_words(model, _all_words(model.config.alphabet, length))
        if len(_ENCLOSURES) >= 8:
            _ENCLOSURES.pop(next(iter(_ENCLOSURES)))
        _ENCLOSURES[key] = enc
    return enc


def compare_functions(model: DecoderTransformer, other: DecoderTransformer, length: int,
                      rtol: float | None = None, batch_size: int = 4096) -> FunctionComparison:
    """Compare two models' real functions at every prefix of length ≤ ``length``, exhaustively, from
    rigorous enclosures of their next-token log-probabilities (never from a float evaluation):
    ``max_abs_diff`` = max over prefixes and outcomes of max(hi₁ − lo₂, hi₂ − lo₁) bounds |Δ log q|.
    By causality the |Σ|^length maximal strings give every prefix.  ``batch_size`` is unused (kept for
    callers); the evaluator batches by memory.

    Raises:
        InputTooLong: ``length + 1`` exceeds either model's ``max_len``.
        InvalidReparametrisation: the models have different alphabets.
    """
    if model.config.alphabet != other.config.alphabet:
        raise InvalidReparametrisation(
            f"models over different alphabets {model.config.alphabet!r} and {other.config.alphabet!r}")
    _check_length(model, length)
    _check_length(other, length)
    dtype = model.config.torch_dtype if model.config.dtype == "float32" else other.config.torch_dtype
    rtol = default_rtol(dtype) if rtol is None else float(rtol)
    ea = _enclosure(model, length)
    eb = _enclosure(other, length)
    diff = np.maximum(ea.lp_hi - eb.lp_lo, eb.lp_hi - ea.lp_lo)
    diff = np.where(np.isfinite(diff), diff, np.inf)
    flat = int(np.argmax(diff))
    row, outcome = divmod(flat, diff.shape[1])
    worst = float(np.nextafter(diff.flat[flat], np.inf))
    sure = np.maximum(ea.lp_lo - eb.lp_hi, eb.lp_lo - ea.lp_hi)
    sure = np.where(np.isfinite(sure), sure, 0.0).clip(min=0.0)
    s_flat = int(np.argmax(sure))
    certain = float(np.nextafter(sure.flat[s_flat], -np.inf)) if sure.flat[s_flat] > 0 else 0.0
    scale = np.concatenate([np.abs(ea.lp_lo), np.abs(eb.lp_lo)])
    max_logit = float(scale[np.isfinite(scale)].max()) if np.isfinite(scale).any() else 0.0
    return FunctionComparison(
        length=length, n_prefixes=len(ea.prefixes), n_strings=len(model.config.alphabet) ** length,
        max_abs_diff=worst, max_abs_logit=max_logit, rtol=rtol, tolerance=rtol * max(1.0, max_logit),
        worst_prefix=ea.prefixes[row], worst_outcome=model.alphabet.outcomes[outcome],
        dtype=str(dtype).replace("torch.", ""), max_radius=max(ea.max_radius, eb.max_radius),
        certain_diff=certain, certain_prefix=ea.prefixes[s_flat // diff.shape[1]],
    )


@torch.no_grad()
def prefix_log_probs(model: DecoderTransformer, length: int, batch_size: int = 4096) -> tuple[list[str], torch.Tensor]:
    """Every prefix u with |u| ≤ ``length`` (shortest first, then lexicographic) and log q(· | u), shape
    (n_prefixes, |Σ| + 1), from one pass over the maximal strings (each prefix read off once: at the
    maximal string that continues it with the first symbol only)."""
    _check_length(model, length)
    n, symbols = len(model.config.alphabet), model.config.alphabet
    by_length: list[list[torch.Tensor]] = [[] for _ in range(length + 1)]
    for _, digits in _maximal_words(n, length, batch_size):
        lp = model.log_probs(_tokens(model, digits))
        for t in range(length + 1):
            canonical = (digits[:, t:] == 0).all(dim=1)
            by_length[t].append(lp[canonical.to(lp.device), t])
    prefixes = ["".join(w) for t in range(length + 1) for w in _words(symbols, t)]
    return prefixes, torch.cat([torch.cat(rows) for rows in by_length])


def _words(symbols: str, t: int) -> Iterator[str]:
    from itertools import product

    return ("".join(w) for w in product(symbols, repeat=t))


# ----------------------------------------------------------------------------------------------
# Gradients
# ----------------------------------------------------------------------------------------------

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


# ----------------------------------------------------------------------------------------------
# Fine-tuning
# ----------------------------------------------------------------------------------------------

def anbn_words(n_max: int) -> tuple[str, ...]:
    """aⁿbⁿ for n = 1..n_max."""
    return tuple("a" * n + "b" * n for n in range(1, n_max + 1))


def anbnan_words(n_max: int) -> tuple[str, ...]:
    """aⁿbⁿaⁿ for n = 1..n_max."""
    return tuple("a" * n + "b" * n + "a" * n for n in range(1, n_max + 1))


@dataclass(frozen=True)
class FineTuningTask:
    """Fine-tuning data (uniform over ``words``) and where to look for OOD behaviour.

    Attributes:
        name: for reports.
        pretrain: the words the starting model was trained on (uniform), or empty.
        words: the fine-tuning words.
        ood_length: OOD prefixes are the words over Σ of length ≤ ood_length that are not prefixes of
            any fine-tuning word (P(u) = 0).
    """

    name: str
    pretrain: tuple[str, ...]
    words: tuple[str, ...]
    ood_length: int

    def support_prefixes(self) -> frozenset[str]:
        return frozenset(w[:i] for w in self.words for i in range(len(w) + 1))


def anbn_to_anbnan(n_max: int = 3, ood_length: int = 10) -> FineTuningTask:
    """Pretrain on aⁿbⁿ (n ≤ n_max + 1), fine-tune on aⁿbⁿaⁿ (n ≤ n_max)."""
    return FineTuningTask(f"a^n b^n (n<={n_max + 1}) -> a^n b^n a^n (n<={n_max})", anbn_words(n_max + 1),
                          anbnan_words(n_max), ood_length)


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
        ValueError: an unknown optimiser, a negative step count or a learning rate that is not finite and > 0.
    """
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"optimizer {optimizer!r} is not 'sgd' or 'adam'")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps = {steps!r} is not a non-negative integer")
    if not (isinstance(lr, numbers.Real) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"learning rate {lr!r} is not finite and > 0")
    m = model.clone()
    params = list(m.parameters())
    first = [torch.zeros_like(p) for p in params]
    second = [torch.zeros_like(p) for p in params]
    (b1, b2), losses = ADAM_BETAS, []
    for t in range(1, steps + 1):
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
        param_distance=dist if math.isfinite(dist) else math.inf, finite=finite,
    )


# ----------------------------------------------------------------------------------------------
# The standard witness and its certificate
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Proposition3Setup:
    """Everything the Proposition 3 checks fix: the model, the pretraining, the fine-tuning runs and
    the tolerances.  Small enough that all checks run in seconds on two CPU cores.

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

    from constructions.check import scientific

    return "unbounded" if not math.isfinite(x) else scientific(Fraction(x), "up", digits)


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
        return (f"not the same function: |dlogp| >= {cmp.certain_diff:.3g} > tolerance {cmp.tolerance:.3g} "
                f"at prefix {cmp.certain_prefix!r}")
    return (f"undecided: the enclosures are too wide; |dlogp| <= {cmp.max_abs_diff:.3g} is not within tolerance {cmp.tolerance:.3g} "
            f"at prefix {cmp.worst_prefix!r} (outcome {cmp.worst_outcome})")


def _not_twins(check: str, pmap: ParameterMap, cmp: FunctionComparison) -> Certificate:
    return Certificate(
        check=check, claim=f"{pmap.name} leaves every next-token distribution unchanged.", status=cmp.status,
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
        claim = (f"{pmap.name} leaves every next-token distribution unchanged (so every loss on any data), yet "
                 f"{setup.sgd_steps} SGD steps from theta and T(theta) give losses and OOD behaviour differing by >= {setup.margin:g}.")
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


# ----------------------------------------------------------------------------------------------
# The fine-tuning gap against alpha, as a certificate (the appendix's series)
# ----------------------------------------------------------------------------------------------

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
    ``setup.sgd_steps`` SGD steps from θ and T_α(θ) the loss gap and the mean OOD TV are ≥
    ``setup.margin`` for α ≠ 1 (α = 1 is the identity: its gap must be exactly 0).  ``verified`` when
    every point holds; a twin that is not the same function makes it ``falsified``; a gap below the
    margin ``unknown``.  The numbers (rounded to 3 significant digits) are the quantities' ``points``.
    """
    alphas = tuple(float(a) for a in alphas)
    for a in alphas:
        _check_alpha(a, "alpha")
    model = pretrained_model(setup)
    points, bad_fn, small = [], [], []
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
                elif a != 1.0 and not (g.finite and g.loss_gap >= setup.margin and g.ood_tv_mean >= setup.margin):
                    small.append(f"{family} alpha {a:g}: loss gap {g.loss_gap:.3g}, mean OOD TV {g.ood_tv_mean:.3g}")
    status = Status.FALSIFIED if bad_fn else Status.UNKNOWN if small else Status.VERIFIED
    reason = "; ".join(bad_fn) if bad_fn else ("below the margin " + f"{setup.margin:g}: " + "; ".join(small) if small else "")
    gaps = [p["loss_gap"] for p in points if p["alpha"] != 1.0 and p["loss_gap"] is not None]
    return Certificate(
        check=check,
        claim=(f"For every alpha != 1 in {{{', '.join(f'{a:g}' for a in alphas)}}}, scaling every head (qk, vo) or MLP "
               f"layer (mlp) by alpha keeps the function, yet {setup.sgd_steps} SGD steps (lr {setup.sgd_lr:g}) from theta "
               f"and T(theta) end with loss gap and mean OOD TV >= {setup.margin:g}; at alpha = 1 the gap is 0."),
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
