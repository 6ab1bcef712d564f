"""The compact compiler: Proposition 1's R1-completer and R1-violator for aⁿbⁿ as small transformers
that are exact for every prompt up to the context length T, not tables over a finite prefix set.

The lookup compiler (:mod:`constructions.compile.lookup`) stores one MLP unit per compiled prefix, so
its networks grow as N³ and say nothing off the compiled set.  Here the network *computes* the rule:

====== ===================================================================================================
layer  what it computes at position t (prefix x₁…xₜ, counts kₐ, k_b; position 0 holds SOS)
====== ===================================================================================================
embed  token one-hot TA, TB, TS; position features LE = [t ≤ N − 1] and the row R(t) of P at aᵗ
attn 1 one uniform head (zero queries and keys: every causal softmax row is exactly 1/(t + 1)) averaging
       the one-hots: FA = kₐ/(t + 1), FB = k_b/(t + 1), U = 1/(t + 1), exact
mlp 1  step units s(x) = ReLU(x) − ReLU(x − 1) on x = S·(linear form) − m/2, S = (1 + m)(T + 1): a
       count difference ≥ 1 gives x ≥ 1 + m/2, ≤ 0 gives x ≤ −m/2, so every bit is exactly 0 or 1 for
       every t ≤ T (and strictly away from both kinks): GT = [kₐ > k_b], LT = [k_b > kₐ], BIG = [kₐ > N], BAD = [xₜ = a and k_b ≥ 1]
       (an a after a b), and G = ReLU(LE − S·FB) = [t ≤ N − 1 and k_b = 0] (the prefix is aᵗ, t < N)
attn 2 (violator only) a uniform head averaging BAD: FBAD = β/(t + 1), β = number of a's after a b
mlp 2  the decision, every unit a ReLU of bits (and of S·FBAD): the stored row R(t) where G = 1, else
       Λ on the token of the rule; see :func:`_decide`
====== ===================================================================================================

The targets (both models copy P at every support prefix, which decides the test loss):

* **completer** Q₁: P's row at aᵗ (t ≤ N − 1), elsewhere the count rule — b if kₐ > k_b, a if
  kₐ < k_b, EOS if equal.  On the support the count rule *is* P's row (b inside b*, EOS at aⁿbⁿ, b at
  aᴺ), so Q₁ needs no flag at all; every greedy completion ends with #a = #b.
* **violator** Q₂: on the support the same rows; off it (an a after a b, kₐ > N, or k_b > kₐ) EOS if
  kₐ ≠ k_b and a if kₐ = k_b — one surplus letter, then EOS, so R1 fails.

A zero-probability token gets logit −Λ relative to the others (:attr:`CompactConfig.zero_logit`), so a
support row is P up to TV ≤ 2e^−Λ/(1 + 2e^−Λ) and an off-support row gives the rule's token all but
≤ 2e^−Λ of the mass.  For the geometric aⁿbⁿ (infinite support) the row at aᵗ is the same for every
t ≥ 1, LE = 1 at every position and BIG is not built: the parameters do not depend on the data at all.

Sizes (d_model 19, one head of width 3, 10 MLP units per layer): 19·(T + 1) + 1,485 parameters, the 19·(T + 1)
being the learned position embedding every such transformer has; 6,368 at T = 256.

The networks are checked by :mod:`constructions.compile.abstract`, which reads nothing but the stored
weights.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any, Mapping, cast

from theory.data import DataDistribution
from theory.errors import InvalidModelConfig
from theory.validation import check_int, check_number

ZERO_LOGIT_RANGE = (4.0, 700.0)
MARGIN_RANGE = (1e-3, 1e3)
MAX_CONTEXT = 4096
ROLES = ("completer", "violator")


@dataclass(frozen=True)
class CompactConfig:
    """Knobs of :func:`compile_compact`, frozen, with their safe ranges (after ALTA's compiler config).

    Attributes:
        context: T, the longest prefix the network is built and checked for (``max_len`` = T + 1
            positions, SOS included).  It must be at least the longest support word, so that every
            support prefix (including the one that predicts EOS) fits: checked by :func:`compile_compact`.
            Range [2, 4096].
        zero_logit: Λ: a token the construction gives probability 0 sits Λ below the others; the
            rule's token off the support sits Λ above them.  Range [4, 700] (above ~745, e^−Λ
            underflows float64 and the stated bound becomes the float64 underflow).  Default 40.
        margin: m: every step unit's pre-activation is ≥ 1 + m when its condition holds and ≤ 0 when
            not, for every t ≤ T (the scale is (1 + m)(T + 1)).  Range [1e-3, 1e3]; default 1.
            A network built for a smaller T than it is run at has steps that no longer saturate:
            that is what the abstract-state check catches (mutant ``margin-too-small``).

    Raises:
        InvalidModelConfig: a knob outside its range, naming it and the value.
    """

    context: int = 256
    zero_logit: float = 40.0
    margin: float = 1.0

    def __post_init__(self) -> None:
        check_int(self.context, "compact context T =", minimum=2, maximum=MAX_CONTEXT, error=InvalidModelConfig)
        for name, (lo, hi) in (("zero_logit", ZERO_LOGIT_RANGE), ("margin", MARGIN_RANGE)):
            v = check_number(getattr(self, name), f"compact {name} =", lo=lo, hi=hi, error=InvalidModelConfig,
                             note="its safe range")
            object.__setattr__(self, name, v)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "CompactConfig":
        extra = sorted(set(d) - {"context", "zero_logit", "margin"})
        if extra:
            raise InvalidModelConfig(f"unknown compact config fields {extra}")
        return cls(**dict(d))


@dataclass(frozen=True)
class CompactReport:
    """What :func:`compile_compact` built: parameters, residual width, MLP units, layers, seconds."""

    role: str
    parameters: int
    d_model: int
    d_mlp: int
    n_layers: int
    context: int
    seconds: float


# residual coordinates
TA, TB, TS, LE, RA, RB, RE, FA, FB, U, GT, LT, G, BAD, BIG, FBAD, LA, LB, LEOS = range(19)
D_MODEL = 19


@dataclass(frozen=True)
class AnbnData:
    """What the compiler needs of an aⁿbⁿ data distribution: the exact row at aᵗ for t < N (or one row
    for every t ≥ 1 when the support is infinite), and N (None: unbounded)."""

    n_max: int | None
    rows: tuple[tuple[Fraction, Fraction, Fraction], ...]  # rows[t] for t < len(rows); the last repeats when n_max is None
    longest_word: int | None


def anbn_data(data: DataDistribution) -> AnbnData:
    """Read N and the rows at aᵗ from P, and refuse data that are not aⁿbⁿ of the two kinds the compact
    construction covers (uniform-or-any over n = 1..N, or infinite with a constant row at aᵗ, t ≥ 1).

    Raises:
        InvalidModelConfig: other data (the reason named).
    """
    from theory.languages import get_language

    if str(data.alphabet) != "ab":
        raise InvalidModelConfig(f"the compact aⁿbⁿ construction needs data over 'ab', not {str(data.alphabet)!r}")
    lang = get_language("L3")
    if data.is_finite:
        words = [x for x, _ in data.sequences()]
        bad = [x for x in words if not lang.contains(x)]
        if bad:
            raise InvalidModelConfig(f"support word {bad[0]!r} of {data.name!r} is not a^n b^n")
        n_max = max(len(x) for x in words) // 2
        rows = tuple(cast(tuple, tuple(data.conditional("a" * t).probs)) for t in range(n_max))
        return AnbnData(n_max, rows, 2 * n_max)
    # infinite: a^n b^n for every n >= 1 with P(a | a^t) constant for t >= 1 (checked on the first 64)
    rows = tuple(cast(tuple, tuple(data.conditional("a" * t).probs)) for t in range(2))
    for t in range(2, 64):
        if tuple(data.conditional("a" * t).probs) != rows[1]:
            raise InvalidModelConfig(f"{data.name!r}: P(. | a^{t}) differs from P(. | a); the compact construction "
                                     "covers infinite a^n b^n data with one row at every a^t, t >= 1")
    for u in ("ab", "aab", "aabb", "b", "aaab"):
        want = lang_row(u)
        got = tuple(data.conditional(u).probs) if data.prefix_mass(u) > 0 else None
        if got is not None and want is not None and got != want:
            raise InvalidModelConfig(f"{data.name!r} is not a^n b^n: P(. | {u!r}) = {got}")
    return AnbnData(None, rows, None)


def lang_row(u: str) -> tuple[Fraction, Fraction, Fraction] | None:
    """The deterministic support row of aⁿbⁿ at a prefix aᵏbʲ with j ≥ 1 (b inside, EOS at the end)."""
    k = len(u) - len(u.lstrip("a"))
    j = len(u) - k
    if j == 0 or "a" in u[k:]:
        return None
    one, zero = Fraction(1), Fraction(0)
    return (zero, one, zero) if j < k else (zero, zero, one)


def _shifted_logits(row: tuple[Fraction, ...], zero_logit: float) -> list[float]:
    """ℓ = ln p (−Λ where p = 0), shifted so that its minimum is 0 (softmax is shift-invariant)."""
    from theory.exact import ln_float

    lg = [ln_float(p) if p else -zero_logit for p in row]
    lo = min(lg)
    return [v - lo for v in lg]


def compact_transformer_config(context: int) -> Any:
    """The :class:`~constructions.transformer.TransformerConfig` of a compact aⁿbⁿ network of context T."""
    from constructions.transformer import TransformerConfig

    return TransformerConfig(alphabet="ab", d_model=D_MODEL, n_heads=1, d_head=3, d_mlp=10, n_layers=2,
                             max_len=context + 1, norm="none", activation="relu", dtype="float64", seed=0)


def compile_compact(data: DataDistribution, role: str, config: CompactConfig = CompactConfig(), *,
                    _design_context: int | None = None, _omit: tuple[str, ...] = ()) -> tuple[Any, CompactReport]:
    """The compact ``role`` (``"completer"`` or ``"violator"``) network for aⁿbⁿ data P (module docstring).

    ``_design_context`` and ``_omit`` exist for the mutants only: steps scaled for a smaller T than the
    network is run at, or a flag left out.

    Raises:
        InvalidModelConfig: another role, data that are not aⁿbⁿ, T shorter than the longest support word.
    """
    import torch

    from constructions.transformer import DecoderTransformer

    if role not in ROLES:
        raise InvalidModelConfig(f"compact role {role!r} is not one of {', '.join(ROLES)}")
    if not isinstance(config, CompactConfig):
        raise InvalidModelConfig(f"expected a CompactConfig, got {type(config).__name__}")
    t0 = time.perf_counter()
    info = anbn_data(data)
    T = config.context
    if info.longest_word is not None and T < info.longest_word:
        raise InvalidModelConfig(f"compact context T = {T} is shorter than the longest support word "
                                 f"({info.longest_word} symbols, n = {info.n_max}): its last prefixes would not fit")
    lam, S = config.zero_logit, (1.0 + config.margin) * ((_design_context or T) + 1)
    half = config.margin / 2  # steps read x − m/2: ≤ −m/2 when false, ≥ 1 + m/2 when true (strict both ways)
    n_max = info.n_max
    violator = role == "violator"
    cfg = compact_transformer_config(T)
    net = DecoderTransformer(cfg)
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        tok = net.token_embedding.weight
        tok[0, TA] = tok[1, TB] = tok[cfg.sos_id, TS] = 1.0
        pos = net.position_embedding.weight
        shifted = [_shifted_logits(r, lam) for r in info.rows]
        for t in range(T + 1):
            if n_max is None or t <= n_max - 1:
                pos[t, LE] = 1.0
                r = shifted[min(t, len(shifted) - 1)]
                pos[t, RA], pos[t, RB], pos[t, RE] = r
        gate = max(max(r) for r in shifted) + 1.0  # > every stored logit
        b1, b2 = cast(Any, net.blocks[0]), cast(Any, net.blocks[1])  # the Blocks DecoderTransformer builds
        # layer 1: uniform head (q = k = 0), values = the token one-hots
        for i, (src, dst) in enumerate(((TA, FA), (TB, FB), (TS, U))):
            b1.attn.v_proj.weight[i, src] = 1.0
            b1.attn.o_proj.weight[dst, i] = 1.0
        w, b, o = b1.mlp.fc_in.weight, b1.mlp.fc_in.bias, b1.mlp.fc_out.weight
        unit = 0

        def step(terms: dict[int, float], bias: float, out: int, layer_in, layer_b, layer_out) -> None:
            nonlocal unit
            for k, shift in enumerate((-half, -1.0 - half)):
                for j, c in terms.items():
                    layer_in[unit + k, j] = c
                layer_b[unit + k] = bias + shift
                layer_out[out, unit + k] = 1.0 if k == 0 else -1.0
            unit += 2

        step({FA: S, FB: -S}, 0.0, GT, w, b, o)
        step({FB: S, FA: -S}, 0.0, LT, w, b, o)
        w[unit, LE], w[unit, FB] = 1.0, -S  # G = ReLU(LE − S·FB), exactly 0 or 1
        o[G, unit] = 1.0
        unit += 1
        if violator:
            big_m = S + 2.0
            if "bad" not in _omit:
                step({FB: S, TA: big_m}, -big_m, BAD, w, b, o)
            if n_max is not None and "big" not in _omit:
                step({FA: 2.0 * S, U: -S * (2 * n_max + 1)}, 0.0, BIG, w, b, o)
            # layer 2: uniform head averaging BAD
            b2.attn.v_proj.weight[0, BAD] = 1.0
            b2.attn.o_proj.weight[FBAD, 0] = 1.0
        _decide(b2.mlp, violator, lam, gate, S, half)
        for i, c in enumerate((LA, LB, LEOS)):
            net.unembed.weight[i, c] = 1.0
    n_params = sum(p.numel() for p in net.parameters())
    return net.eval(), CompactReport(role, n_params, D_MODEL, cfg.d_mlp, cfg.n_layers, T, time.perf_counter() - t0)


def _decide(mlp: Any, violator: bool, lam: float, gate: float, S: float, half: float) -> None:
    """Layer 2's MLP: the logits.  Every unit's input is a 0/1 bit combination (or S·FBAD ∈ {0} ∪ [1 + m, ∞)).

    * R(t) where G = 1: unit ReLU(R_k(t) + C·G − C), C > max R, is R_k(t) when G = 1 and 0 when G = 0;
    * completer: Λ·ReLU(GT − G) on b, Λ·ReLU(LT − G) on a, Λ·ReLU(1 − GT − LT − G) on EOS;
    * violator: with s = S·FBAD + 2·(BIG + LT) (0 on the support, ≥ 1 + m off it) the same three
      units with −s added (so they are off off the support), and Λ·step(s − K·EQ) on EOS,
      Λ·step(s − K·(1 − EQ)) on a (EQ = 1 − GT − LT; K above every s).
    """
    w, b, o = mlp.fc_in.weight, mlp.fc_in.bias, mlp.fc_out.weight
    unit = 0
    for src, dst in ((RA, LA), (RB, LB), (RE, LEOS)):
        w[unit, src], w[unit, G] = 1.0, gate
        b[unit] = -gate
        o[dst, unit] = 1.0
        unit += 1
    for dst, terms, bias in ((LB, {GT: 1.0}, 0.0), (LA, {LT: 1.0}, 0.0), (LEOS, {GT: -1.0, LT: -1.0}, 1.0)):
        terms = dict(terms)
        terms[G] = terms.get(G, 0.0) - 1.0
        if violator:
            terms[FBAD] = terms.get(FBAD, 0.0) - S
            terms[BIG] = terms.get(BIG, 0.0) - 2.0
            terms[LT] = terms.get(LT, 0.0) - 2.0
        for j, c in terms.items():
            w[unit, j] = c
        b[unit] = bias
        o[dst, unit] = lam
        unit += 1
    if not violator:
        return
    K = S + 8.0  # s ≤ S·t/(t + 1) + 4 < S + 4
    # EOS when off and not EQ: step(s − K·EQ) = step(s − K + K·GT + K·LT); a when off and EQ: step(s − K·GT − K·LT)
    for dst, gt_lt, bias in ((LEOS, K, -K), (LA, -K, 0.0)):
        for k, shift in enumerate((-half, -1.0 - half)):
            w[unit, FBAD], w[unit, BIG], w[unit, LT] = S, 2.0, 2.0
            w[unit, GT] += gt_lt
            w[unit, LT] += gt_lt
            b[unit] = bias + shift
            o[dst, unit] = lam if k == 0 else -lam
            unit += 1


def parameters_for(context: int) -> int:
    """The parameter count of a compact aⁿbⁿ network of context T (the same for both roles)."""
    d, h, m = D_MODEL, 3, 10
    attn = 3 * (d * h + h) + h * d + d
    mlp = d * m + m + m * d + d
    return 5 * d + (context + 1) * d + 2 * (attn + mlp) + d * 3 + 3


def safe_exp_floor(zero_logit: float) -> float:
    """2e^−Λ/(1 + 2e^−Λ): the TV every floored row (two zero tokens at most) is from its target."""
    e = 2.0 * math.exp(-zero_logit)
    return e / (1.0 + e)
