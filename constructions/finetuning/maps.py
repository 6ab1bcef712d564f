"""The parameter maps of Proposition 3: scalings and permutations of slices of a transformer's named
parameters (:class:`ParameterMap`), the constructors for each symmetry (:func:`qk_scaling`,
:func:`vo_scaling`, :func:`mlp_scaling`, :func:`head_permutation`, :func:`hidden_unit_permutation`),
:func:`compose`, the deliberately wrong :func:`wrong_inverse_qk_scaling`, and the argument checks they share."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Mapping, Sequence

import torch

from constructions.transformer import DecoderTransformer, TransformerConfig
from theory.errors import InvalidReparametrisation, NotPositivelyHomogeneous
from theory.validation import check_int, check_number


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


@dataclass(frozen=True)
class DenseTransform:
    """Contract ``parameter``'s index ``dim`` with the square matrix ``matrix`` (rows of floats):
    new[..., i, ...] = Σ_j matrix[i][j] · old[..., j, ...] — for a weight whose ``dim`` is the residual
    stream, the residual basis change x → Mx on the write side (W → MW, b → Mb, an embedding row e → Me)
    or, for a read W (out, d_model) contracted along ``dim = 1``, W → WMᵀ.  :func:`residual_rotation`
    builds one per parameter from one orthogonal M; ``orthogonal`` says M was checked orthogonal, so that
    the gradient transforms by M too (∇ → M⁻ᵀ∇ = M∇)."""

    parameter: str
    dim: int
    matrix: tuple[tuple[float, ...], ...]
    orthogonal: bool = True


Step = SliceScale | SlicePermutation | DenseTransform


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
            SGD and Adam commute with the map; false for scalings (∇' = D⁻¹∇).  A dense orthogonal
            basis change (:func:`residual_rotation`) is SGD-equivariant but *not* Adam-equivariant
            (Adam normalises coordinatewise); its ``sgd_equivariant`` is true and this is false.
        sgd_equivariant: true when ∇L(T(θ)) = T(∇L(θ)) (every step orthogonal: permutations and
            orthogonal dense steps), so SGD from T(θ) follows T of θ's trajectory.
        function_preserving: what the map claims; only the deliberately wrong
            :func:`wrong_inverse_qk_scaling` says false (the checks never trust it, they measure).
    """

    name: str
    steps: tuple[Step, ...]
    shape: tuple
    needs_positive_homogeneity: bool = False
    gradient_equivariant: bool = False
    function_preserving: bool = True
    sgd_equivariant: bool = False

    @property
    def power_of_two(self) -> bool:
        """Every step a permutation or a scaling by a power of two (2^k, k an int): then each scaled
        weight is exact in binary floating point and (2^k q)(k/2^k) = qk exactly, so the float pass of
        T(θ) repeats θ's bit for bit (barring underflow), in the same evaluation layout."""
        for s in self.steps:
            if isinstance(s, DenseTransform):
                return False
            if isinstance(s, SliceScale) and not is_power_of_two(s.factor):
                return False
        return True

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
            elif isinstance(s, DenseTransform):
                if not s.orthogonal:
                    raise InvalidReparametrisation(f"{self.name}: a dense step that is not orthogonal has no inverse here")
                inv.append(DenseTransform(s.parameter, s.dim, tuple(zip(*s.matrix)), True))  # M⁻¹ = Mᵀ
            else:
                back = [0] * len(s.order)
                for i, j in enumerate(s.order):
                    back[j] = i
                inv.append(SlicePermutation(s.parameter, s.dim, s.start, s.stop, tuple(back)))
        return ParameterMap(f"inverse({self.name})", tuple(inv), self.shape, self.needs_positive_homogeneity,
                            self.gradient_equivariant, self.function_preserving, self.sgd_equivariant)

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
    if isinstance(step, DenseTransform):  # θ → Mθ along dim; ∇ → M⁻ᵀ∇ (= M∇ for an orthogonal M)
        m = torch.tensor(step.matrix, dtype=t.dtype, device=t.device)
        if gradient and not step.orthogonal:
            m = torch.linalg.inv(m).T
        return torch.movedim(torch.tensordot(m, torch.movedim(t, step.dim, 0), dims=([1], [0])), 0, step.dim).contiguous()
    t = t.clone()
    part = t.narrow(step.dim, step.start, step.stop - step.start)
    if isinstance(step, SliceScale):
        part.mul_(1.0 / step.factor if gradient else step.factor)
    else:
        idx = torch.tensor(step.order, dtype=torch.long, device=t.device)
        part.copy_(part.index_select(step.dim, idx))
    return t


def is_power_of_two(x: float) -> bool:
    """x = 2^k for an integer k (x a positive finite float)."""
    if not (isinstance(x, float | int) and math.isfinite(x) and x > 0):
        return False
    m, _ = math.frexp(float(x))
    return m == 0.5


def _config_of(model_or_config: DecoderTransformer | TransformerConfig) -> TransformerConfig:
    if isinstance(model_or_config, DecoderTransformer):
        return model_or_config.config
    if isinstance(model_or_config, TransformerConfig):
        return model_or_config
    raise InvalidReparametrisation(f"expected a DecoderTransformer or TransformerConfig, got {type(model_or_config).__name__}")


ALPHA_RANGE = (1e-150, 1e150)
"""Scalings allowed: inside it α, 1/α, α² and 1/α² are finite, non-zero float64 numbers."""


def _check_alpha(alpha: object, what: str) -> float:
    return check_number(alpha, f"{what}: alpha =", lo=ALPHA_RANGE[0], hi=ALPHA_RANGE[1], error=InvalidReparametrisation,
                        real=True, note="the maps need alpha > 0, and alpha, 1/alpha and their squares finite, non-zero floats")


def _check_index(value: object, upper: int, what: str) -> int:
    return check_int(value, f"{what} =", minimum=0, maximum=upper - 1, error=InvalidReparametrisation, integral=True)


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
                        gradient_equivariant=True, sgd_equivariant=True)


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
    return ParameterMap(f"unit-permutation[layer {layer}]", steps, _shape_key(cfg), gradient_equivariant=True,
                        sgd_equivariant=True)


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
        sgd_equivariant=all(m.sgd_equivariant or m.gradient_equivariant for m in maps),
    )


def wrong_inverse_qk_scaling(model: DecoderTransformer | TransformerConfig, layer: int, head: int,
                             alpha: float) -> ParameterMap:
    """A deliberately *wrong* map — α on (W_Q, b_Q), 1/α² on (W_K, b_K) — that changes the function
    whenever α ≠ 1 (scores are multiplied by 1/α).  It exists so that tests can show the exhaustive
    check falsifies a broken symmetry; it is marked ``function_preserving=False``."""
    good = qk_scaling(model, layer, head, alpha)
    a = float(alpha)
    steps = tuple(SliceScale(s.parameter, s.dim, s.start, s.stop, a if "q_proj" in s.parameter else 1.0 / a**2)
                  for s in good.steps if isinstance(s, SliceScale))
    return ParameterMap(f"wrong-inverse-qk[layer {layer}, head {head}, alpha {a:g}]", steps, good.shape,
                        function_preserving=False)


def key_factor_blind_qk_scaling(model: DecoderTransformer | TransformerConfig, layer: int, head: int,
                                alpha: float) -> ParameterMap:
    """A deliberately *wrong* query/key scaling whose error vanishes at α = 2: α on (W_Q, b_Q), 2/α² on
    (W_K, b_K).  At α = 2 the key factor 2/4 = 1/α is right (the map is :func:`qk_scaling`); at α = 3 it
    is 2/9 ≠ 1/3 and every score of the head is multiplied by 2/3.  A check run only at α = 2 cannot see
    the bug; marked ``function_preserving=False`` for α ≠ 2."""
    good = qk_scaling(model, layer, head, alpha)
    a = float(alpha)
    steps = tuple(SliceScale(s.parameter, s.dim, s.start, s.stop, a if "q_proj" in s.parameter else 2.0 / a**2)
                  for s in good.steps if isinstance(s, SliceScale))
    return ParameterMap(f"key-factor-2/alpha^2-qk[layer {layer}, head {head}, alpha {a:g}]", steps, good.shape,
                        function_preserving=a == 2.0)


def hadamard(n: int) -> tuple[tuple[float, ...], ...]:
    """The Sylvester–Hadamard matrix of order n (a power of two) divided by √n: entries ±1/√n, exactly
    orthogonal in real arithmetic, and exact floats when n is a power of four (d_model 16: ±1/4).

    Raises:
        InvalidReparametrisation: n not a power of two ≥ 1.
    """
    n = check_int(n, "hadamard order n =", minimum=1, error=InvalidReparametrisation)
    if n & (n - 1):
        raise InvalidReparametrisation(f"hadamard order n = {n} is not a power of two")
    h = [[1]]
    while len(h) < n:
        h = [row + row for row in h] + [row + [-x for x in row] for row in h]
    c = 1.0 / math.sqrt(n)
    return tuple(tuple(c * x for x in row) for row in h)


def _check_orthogonal(matrix: Sequence[Sequence[float]], d: int, what: str) -> tuple[tuple[float, ...], ...]:
    try:
        m = torch.tensor([[float(x) for x in row] for row in matrix], dtype=torch.float64)
    except (TypeError, ValueError):
        raise InvalidReparametrisation(f"{what}: the matrix is not a square table of numbers") from None
    if m.shape != (d, d):
        raise InvalidReparametrisation(f"{what}: the matrix has shape {tuple(m.shape)}, the residual stream needs ({d}, {d})")
    if not torch.isfinite(m).all():
        raise InvalidReparametrisation(f"{what}: the matrix has a non-finite entry")
    err = float((m @ m.T - torch.eye(d, dtype=torch.float64)).abs().max())
    if not err <= 1e-12:
        raise InvalidReparametrisation(f"{what}: the matrix is not orthogonal: max |U U^T - I| = {err:.3g} > 1e-12")
    return tuple(tuple(float(x) for x in row) for row in m.tolist())


def residual_rotation(model: DecoderTransformer | TransformerConfig, matrix: Sequence[Sequence[float]],
                      name: str = "residual-rotation") -> ParameterMap:
    """The orthogonal change of basis x → Ux of the residual stream of a LayerNorm-free model: the token
    and position embeddings and every write into the stream (W_O, b_O, W₂ = fc_out, b₂) multiplied by U
    on the residual side, every read (W_Q, W_K, W_V, W₁ = fc_in, the unembedding) by Uᵀ.  The function
    is unchanged in real arithmetic (UᵀU = I; the stored U is exactly orthogonal for :func:`hadamard` of a
    power of four, else to ~1e-16), and ∇L(Uθ) = U∇L(θ), so SGD commutes with the map
    (``sgd_equivariant``); Adam's coordinatewise normalisation does not (``gradient_equivariant`` false).

    Raises:
        InvalidReparametrisation: a model with LayerNorm (LN is not rotation-equivariant: its mean and the
            learned gain act coordinatewise), or a matrix that is not a d_model × d_model orthogonal one.
    """
    cfg = _config_of(model)
    if cfg.norm != "none":
        raise InvalidReparametrisation(
            f"{name}: the model has norm={cfg.norm!r}; a residual rotation preserves the function only without "
            f"LayerNorm (norm='none'): LN's centring and gain act coordinatewise")
    u = _check_orthogonal(matrix, cfg.d_model, name)
    steps: list[Step] = [DenseTransform("token_embedding.weight", 1, u), DenseTransform("position_embedding.weight", 1, u)]
    for layer in range(cfg.n_layers):
        att, mlp = f"blocks.{layer}.attn", f"blocks.{layer}.mlp"
        steps += [DenseTransform(f"{att}.{p}_proj.weight", 1, u) for p in ("q", "k", "v")]
        steps += [DenseTransform(f"{att}.o_proj.weight", 0, u), DenseTransform(f"{att}.o_proj.bias", 0, u),
                  DenseTransform(f"{mlp}.fc_in.weight", 1, u),
                  DenseTransform(f"{mlp}.fc_out.weight", 0, u), DenseTransform(f"{mlp}.fc_out.bias", 0, u)]
    steps.append(DenseTransform("unembed.weight", 1, u))
    return ParameterMap(name, tuple(steps), _shape_key(cfg), sgd_equivariant=True)
