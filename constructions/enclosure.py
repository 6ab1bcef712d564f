"""The one rigorous evaluator of networks: enclosures of the next-token log-probabilities of the
*exact real function* of a :class:`~constructions.transformer.DecoderTransformer`'s stored weights.

A network is the real-valued function its weights define (docs/theory.md §3), not one float evaluation
of it: a float pass rounds differently with the batch layout, the device and the library version,
and a network can be built so that a ReLU input is exactly 0.0 in one layout and slightly positive in
another.  Here every layer is evaluated in midpoint–radius interval arithmetic
(:mod:`constructions.balls`): embeddings, every linear map (with Rump's a-priori bound on the
rounding of the float matrix product), softmax attention (a rigorous exp), LayerNorm (a rigorous
1/√), ReLU (widened where its input straddles 0 — the case that catches the trap above), GELU, tanh,
and finally log q(a | u) = −ln Σ_b exp(z_b − z_a) with a rigorous log.  The result holds for *every*
order in which the kernels sum, on the CPU and on CUDA.

What is assumed: the weights are the float values stored (float32 weights widen exactly); the
evaluating machine's float64 +, −, ×, ÷ and √ are IEEE-754 operations rounded to nearest, and its
matrix products sum the exact products in some order with such operations.  Nothing else — no
libm function, no particular summation order.

Other architectures register their own enclosure (:func:`register_enclosure`; the experiments' LSTM,
linear and SSM models in :mod:`empirical.enclosure`, Hugging Face GPT-2 and OPT in
:mod:`constructions.hf_enclosure`, imported only when such a network is first seen).

:func:`enclose` runs over the *maximal* words of a prefix set in batches (causality makes each
position the function at one prefix, whatever follows it); :class:`Enclosure` holds the bounds in
prefix-set order and the worst radius.  :func:`kl_bounds` is the one certified KL(P ‖ network) on top.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch

from constructions import balls
from constructions.balls import Ball
from constructions.transformer import DecoderTransformer
from theory.errors import InvalidDistribution, InvalidModelConfig

BATCH_ELEMENTS = 1 << 22
"""Activations per enclosure batch (rows × positions × widest layer); a ball holds two float64 tensors
and a layer keeps a few alive, so this is ~0.3 GiB at the peak."""
ASSUMPTIONS = (
    "a network is the real-valued function of its stored weights; its next-token log-probabilities are "
    "enclosed by midpoint-radius interval arithmetic (a-priori rounding bounds for every matrix product, "
    "outward-rounded elementwise operations, exp/log/erf from +,-,*,/ with explicit error bounds), valid for "
    "every summation order, batch layout and device",
    "the evaluating machine's float64 +, -, *, / and sqrt are IEEE-754 binary64 operations rounded to nearest "
    "(one ulp is tolerated) and its matrix products sum the exact products in some order with such operations",
)


# ---- one forward pass in balls -------------------------------------------------------------------------
class Weights:
    """The network's parameters as exact float64 tensors on one device (plus |W| for the linear maps), with
    the rigorous linear map and LayerNorm every enclosure shares (:mod:`empirical.enclosure` builds on it)."""

    def __init__(self, net: torch.nn.Module, device: torch.device) -> None:
        self.p = {k: v.detach().to(device=device, dtype=torch.float64) for k, v in net.state_dict().items()}
        self.abs_t: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def linear(self, x: Ball, name: str) -> Ball:
        wt = self.abs_t.get(name)
        if wt is None:
            w = self.p[name + ".weight"].T.contiguous()
            wt = self.abs_t[name] = (w, w.abs())
        return x.matmul_exact(*wt).add_exact(self.p[name + ".bias"])

    def layer_norm(self, x: Ball, name: str, eps: float) -> Ball:
        return layer_norm(x, eps, self.p[name + ".weight"], self.p[name + ".bias"])


def layer_norm(x: Ball, eps: float, weight: torch.Tensor | None = None, bias: torch.Tensor | None = None) -> Ball:
    """LayerNorm over the last axis, (x − mean)/√(var + eps) (biased variance), then ⊙ weight and + bias
    where given (exact float64 tensors)."""
    d = x.shape[-1]
    mean = x.sum(-1, keepdim=True).mul_exact(1.0 / d) if d & (d - 1) == 0 else _divide(x.sum(-1, keepdim=True), d)
    xc = x - mean
    var = xc.square().sum(-1, keepdim=True)
    var = var.mul_exact(1.0 / d) if d & (d - 1) == 0 else _divide(var, d)
    inv = balls.rsqrt_positive(var.add_exact(float(eps)))
    y = xc * inv
    if weight is not None:
        y = y.mul_exact(weight)
    return y.add_exact(bias) if bias is not None else y


def _divide(x: Ball, d: int) -> Ball:
    """x / d for a positive integer d (one rounded division)."""
    m = x.m / d
    return Ball(m, balls._upper(x.r / d + balls.U * m.abs(), 3))


def _inv_sqrt(d: int, device: torch.device) -> Ball:
    """1/√d as a ball (exact when d is a power of four)."""
    s = math.isqrt(d)
    if s * s == d and (s & (s - 1)) == 0:
        return Ball(torch.tensor(1.0 / s, dtype=torch.float64, device=device), torch.tensor(0.0, dtype=torch.float64, device=device))
    v = torch.tensor(float(d), dtype=torch.float64, device=device)
    return balls.rsqrt_positive(Ball(v, torch.zeros_like(v)))


def _activation(name: str, x: Ball) -> Ball:
    if name == "relu":
        return balls.relu(x)
    if name == "gelu":
        return balls.gelu(x)
    if name == "tanh":
        return balls.tanh(x)
    raise InvalidModelConfig(f"no rigorous enclosure for activation {name!r}")


def _attention(w: Weights, x: Ball, prefix: str, n_heads: int, d_head: int, scale: Ball) -> Ball:
    b, t, _ = x.shape
    q = w.linear(x, prefix + ".q_proj").reshape(b, t, n_heads, d_head).transpose(1, 2)
    k = w.linear(x, prefix + ".k_proj").reshape(b, t, n_heads, d_head).transpose(1, 2)
    v = w.linear(x, prefix + ".v_proj").reshape(b, t, n_heads, d_head).transpose(1, 2)
    return w.linear(causal_attention(q, k, v, scale), prefix + ".o_proj")


def causal_attention(q: Ball, k: Ball, v: Ball, scale: Ball | float | None) -> Ball:
    """Causal softmax attention of heads q, k, v (batch, heads, T, d_head): softmax(scale·q kᵀ) v over the
    positions ≤ each query's, the heads concatenated (batch, T, heads·d_head).  ``scale`` is a ball, an
    exact float, or None for none."""
    b, n_heads, t, d_head = q.shape
    scores = q.matmul(k.transpose(-2, -1))
    if isinstance(scale, Ball):
        scores = scores * Ball(scale.m.expand(1), scale.r.expand(1))
    elif scale is not None:
        scores = scores.mul_exact(float(scale))
    causal = torch.ones(t, t, dtype=torch.bool, device=q.m.device).tril()
    # any float shift c is exact: exp(s − c)/Σ exp(s − c) is the same real number for every c
    c = scores.m.masked_fill(~causal, -math.inf).amax(-1, keepdim=True)
    e = balls.exp(scores.add_exact(-c))
    zero = torch.zeros_like(e.m)
    e = Ball(torch.where(causal, e.m, zero), torch.where(causal, e.r, zero))  # masked: weight exactly 0
    weights = e * e.sum(-1, keepdim=True).reciprocal()
    return weights.matmul(v).transpose(1, 2).reshape(b, t, n_heads * d_head)


def forward_balls(net: DecoderTransformer, tokens: torch.Tensor, weights: Weights | None = None) -> Ball:
    """Enclosure of the logits (batch, T, |Σ| + 1) of the real function of ``net``'s weights on ``tokens``."""
    cfg = net.config
    device = tokens.device
    w = weights if weights is not None else Weights(net, device)
    t = tokens.shape[1]
    positions = torch.arange(t, device=device)
    x = Ball.exact(w.p["token_embedding.weight"][tokens]) + Ball.exact(w.p["position_embedding.weight"][positions][None].expand(tokens.shape[0], t, -1))
    scale = _inv_sqrt(cfg.d_head, device)
    eps = cfg.layer_norm_eps
    for i in range(cfg.n_layers):
        pre = f"blocks.{i}"
        if cfg.norm == "post":
            x = w.layer_norm(x + _attention(w, x, pre + ".attn", cfg.n_heads, cfg.d_head, scale), pre + ".ln_attn", eps)
            h = _activation(cfg.activation, w.linear(x, pre + ".mlp.fc_in"))
            x = w.layer_norm(x + w.linear(h, pre + ".mlp.fc_out"), pre + ".ln_mlp", eps)
        else:
            a = w.layer_norm(x, pre + ".ln_attn", eps) if cfg.norm == "pre" else x
            x = x + _attention(w, a, pre + ".attn", cfg.n_heads, cfg.d_head, scale)
            a = w.layer_norm(x, pre + ".ln_mlp", eps) if cfg.norm == "pre" else x
            h = _activation(cfg.activation, w.linear(a, pre + ".mlp.fc_in"))
            x = x + w.linear(h, pre + ".mlp.fc_out")
    if cfg.norm == "pre":
        x = w.layer_norm(x, "ln_final", eps)
    return w.linear(x, "unembed")


_STOCK_MODULES = ("DecoderTransformer", "Block", "CausalSelfAttention", "MLP", "Linear", "Embedding", "LayerNorm",
                  "Identity", "ModuleList")
_ENCLOSERS: dict[type, Callable[[torch.nn.Module, torch.Tensor], Ball]] = {}
_WHY_NOT: dict[type, Callable[[torch.nn.Module], str]] = {}
_SHAPES: dict[type, Callable[[torch.nn.Module], tuple[int, int]]] = {}
_LAZY_PACKAGES = {"transformers": "constructions.hf_enclosure"}
"""Foreign packages whose networks an enclosure module of ours covers: it is imported (and calls
:func:`register_enclosure`) the first time a network whose class comes from that package is seen, so that
``import constructions.enclosure`` never imports the package itself."""


def register_enclosure(cls: type, fn: Callable[[torch.nn.Module, torch.Tensor], Ball], *,
                       why_not: Callable[[torch.nn.Module], str] | None = None,
                       shape: Callable[[torch.nn.Module], tuple[int, int]] | None = None) -> None:
    """Give the evaluator a rigorous logit enclosure ``fn(model, tokens) -> Ball`` for networks whose type
    is *exactly* ``cls`` (a subclass could compute something else: it is not covered).  ``why_not(model)``,
    when given, is '' for an instance ``fn`` covers and else why not (a hook, a replaced module, a flag);
    ``shape(model)`` gives (widest activation, attention heads) for :func:`enclose`'s batch sizes."""
    _ENCLOSERS[cls] = fn
    if why_not is not None:
        _WHY_NOT[cls] = why_not
    if shape is not None:
        _SHAPES[cls] = shape


def _lazy_register(model: object) -> None:
    """Import the enclosure module of the foreign package ``model``'s class (or a base class) comes from."""
    import importlib

    for c in type(model).__mro__:
        module = _LAZY_PACKAGES.get(c.__module__.split(".")[0])
        if module is not None:
            importlib.import_module(module)
            return


def _stock_transformer(model: DecoderTransformer) -> str:
    """Why ``model`` is not a DecoderTransformer whose function is the one :func:`forward_balls`
    encloses ('' when it is): a subclass or an instance that replaces a forward, or a foreign submodule."""
    for name, mod in model.named_modules():
        cls = type(mod)
        stock = cls.__module__ in ("constructions.transformer", "torch.nn.modules.linear", "torch.nn.modules.sparse",
                                   "torch.nn.modules.normalization", "torch.nn.modules.container")
        if "forward" in vars(mod):
            return f"module {name or 'the network'} has its own forward on the instance"
        if mod is model:
            if cls.forward is not DecoderTransformer.forward or cls.log_probs is not DecoderTransformer.log_probs:
                return f"{cls.__name__} overrides the DecoderTransformer's forward"
            continue
        if not stock or cls.__name__ not in _STOCK_MODULES:
            return f"submodule {name!r} is a {cls.__module__}.{cls.__name__}"
    return ""


def why_not_enclosable(model: object) -> str:
    """'' when :func:`logit_balls` has a rigorous enclosure of this network's function, else why not."""
    if isinstance(model, DecoderTransformer):
        return _stock_transformer(model)
    _lazy_register(model)
    cls = type(model)
    if cls in _ENCLOSERS:
        check = _WHY_NOT.get(cls)
        return check(model) if check is not None else ""  # type: ignore[arg-type]
    for base, check in _WHY_NOT.items():
        if isinstance(model, base):  # a subclass of a covered type: its own check names why it is refused
            return check(model)  # type: ignore[arg-type]
    return f"no rigorous enclosure for a {type(model).__name__}"


def logit_balls(model: torch.nn.Module, tokens: torch.Tensor) -> Ball:
    """Enclosure of ``model``'s logits on ``tokens``: a stock DecoderTransformer (subclasses that keep
    its forward, such as the experiments' transformer, included), or a network of a registered type.

    Raises:
        InvalidModelConfig: a network with no rigorous enclosure here (named, with why).
    """
    why = why_not_enclosable(model)
    if why:
        raise InvalidModelConfig(f"the rigorous evaluator cannot enclose this network: {why}")
    if isinstance(model, DecoderTransformer):
        return forward_balls(model, tokens)
    return _ENCLOSERS[type(model)](model, tokens)


PAIRWISE_MAX_OUTPUTS = 256
"""Up to this many outputs :func:`log_softmax_bounds` sums exp(z_b − z_a) for every pair (V² per row, the
tighter bound); above it, z_a minus a log-sum-exp enclosed once per row (V per row)."""


def log_softmax_bounds(z: Ball) -> tuple[torch.Tensor, torch.Tensor]:
    """[lo, hi] ∋ log softmax(z) along the last axis, as log q_a = −ln Σ_b exp(z_b − z_a) (the b = a
    term is exactly 1) for at most :data:`PAIRWISE_MAX_OUTPUTS` outputs, else as
    log q_a ∈ [z_a.lo − LSE(z.hi), z_a.hi − LSE(z.lo)] (LSE is increasing in every argument).  Non-finite
    bounds mean "not bounded"."""
    v = z.shape[-1]
    if v > PAIRWISE_MAX_OUTPUTS:
        return _log_softmax_bounds_lse(z)
    diff = Ball(z.m[..., None, :], z.r[..., None, :]) - Ball(z.m[..., :, None], z.r[..., :, None])  # [.., a, b] = z_b − z_a
    e = balls.exp(diff)
    eye = torch.eye(v, dtype=torch.bool, device=z.m.device)
    e = Ball(torch.where(eye, torch.ones_like(e.m), e.m), torch.where(eye, torch.zeros_like(e.r), e.r))
    lp = -balls.log(e.sum(-1))
    return _clamped(lp.lo, lp.hi)


def _log_sum_exp(y: torch.Tensor) -> Ball:
    """A ball containing ln Σ_b exp(y_b) along the last axis, y's floats taken as exact reals: with the
    float shift c = max y (any c gives the same real), c + ln Σ exp(y_b − c), the sum ≥ 1."""
    c = y.amax(-1, keepdim=True)
    c = torch.where(torch.isfinite(c), c, torch.zeros_like(c))  # a non-finite row stays unbounded below
    s = balls.exp(Ball.exact(y).add_exact(-c)).sum(-1, keepdim=True)
    return balls.log(s).add_exact(c)


def _log_softmax_bounds_lse(z: Ball) -> tuple[torch.Tensor, torch.Tensor]:
    zlo, zhi = z.lo, z.hi
    lo = (Ball.exact(zlo) - _log_sum_exp(zhi)).lo
    hi = (Ball.exact(zhi) - _log_sum_exp(zlo)).hi
    return _clamped(lo, hi)


def _clamped(lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    bad = ~(torch.isfinite(lo) & torch.isfinite(hi))
    lo = torch.where(bad, torch.full_like(lo, -math.inf), lo.clamp(max=0.0))
    hi = torch.where(bad, torch.full_like(hi, math.inf), hi.clamp(max=0.0))  # log q ≤ 0
    return lo, hi


# ---- over a prefix set -----------------------------------------------------------------------------------
def maximal_words(prefixes: Iterable[str]) -> list[str]:
    """The words of ``prefixes`` that are a proper prefix of no other word of it, in their first order:
    enough to read every one (a causal network fed a word gives the next-token row at each of its
    prefixes).  The set need not be prefix-closed."""
    words = list(dict.fromkeys(prefixes))
    ordered = sorted(words)  # the words extending w form one block right after w in this order
    inner = {w for w, nxt in zip(ordered, ordered[1:]) if nxt.startswith(w)}
    return [w for w in words if w not in inner]


def layout(maximal: Iterable[str], prefixes: Sequence[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Maximal words sorted by length, and for each prefix (in the given order) its (word, position)."""
    words = sorted(maximal, key=len)
    where: dict[str, tuple[int, int]] = {}
    for i, w in enumerate(words):
        for t in range(len(w), -1, -1):
            u = w[:t]
            if u in where:
                break  # every shorter prefix of w is assigned too (the set is prefix-closed)
            where[u] = (i, t)
    rows = np.fromiter((where[u][0] for u in prefixes), dtype=np.int64, count=len(prefixes))
    cols = np.fromiter((where[u][1] for u in prefixes), dtype=np.int64, count=len(prefixes))
    return words, rows, cols


@dataclass(frozen=True)
class Batch:
    """One batch of maximal words padded to ``length`` positions, and where its prefixes go: output
    rows ``where`` are read at (word ``rows``, position ``cols``) of the batch."""

    words: list[str]
    length: int
    where: np.ndarray
    rows: np.ndarray
    cols: np.ndarray


def batches(maximal: Iterable[str], prefixes: Sequence[str], cost: Callable[[int, int], int],
            budget: int) -> Iterator[Batch]:
    """The maximal words in batches whose ``cost(n_words, positions)`` stays within ``budget`` (a batch
    holds at least one word), shortest words first so a batch's padding is set by its last word; every
    prefix of ``prefixes`` is read off exactly one batch (:func:`layout`)."""
    words, rows, cols = layout(maximal, prefixes)
    order = np.argsort(rows, kind="stable")
    rows_sorted, cols_sorted = rows[order], cols[order]
    start_of = np.searchsorted(rows_sorted, np.arange(len(words) + 1))
    i = 0
    while i < len(words):
        j = i + 1
        while j < len(words) and cost(j + 1 - i, len(words[j]) + 1) <= budget:
            j += 1
        a, b = start_of[i], start_of[j]
        yield Batch(words[i:j], len(words[j - 1]) + 1, order[a:b], rows_sorted[a:b] - i, cols_sorted[a:b])
        i = j


@dataclass(frozen=True)
class Enclosure:
    """Rigorous bounds lp_lo ≤ log q(a | u) ≤ lp_hi of a network's real function, for every prefix u of
    a prefix set (rows in its order; columns Σ then EOS), with the float64 midpoints of the logits.

    ``max_radius`` is the largest half-width (hi − lo)/2 of a log-probability (``inf`` when some bound
    is not finite)."""

    prefixes: tuple[str, ...]
    lp_lo: np.ndarray
    lp_hi: np.ndarray
    logits_mid: np.ndarray
    seconds: float
    device: str
    index: dict[str, int] = field(repr=False, compare=False, default_factory=dict)

    @property
    def bounded(self) -> bool:
        return bool(np.isfinite(self.lp_lo).all() and np.isfinite(self.lp_hi).all())

    @property
    def max_radius(self) -> float:
        if not self.bounded:
            return math.inf
        return float(np.max((self.lp_hi - self.lp_lo) / 2.0)) if len(self.prefixes) else 0.0

    def row(self, prefix: str) -> tuple[np.ndarray, np.ndarray]:
        i = self.index[prefix]
        return self.lp_lo[i], self.lp_hi[i]

    def certified_argmax(self, prefix: str) -> int | None:
        """The outcome index whose log-probability is certainly the strict maximum at ``prefix``, or None."""
        lo, hi = self.row(prefix)
        k = int(np.argmax(lo))
        others = np.delete(hi, k)
        return k if (others.size == 0 or lo[k] > others.max()) else None


def enclose(net: torch.nn.Module, maximal: Iterable[str], prefixes: Sequence[str], *,
            device: str | torch.device | None = None, batch_elements: int = BATCH_ELEMENTS,
            encode: Callable[..., torch.Tensor] | None = None) -> Enclosure:
    """Rigorous log-probability bounds of ``net`` at every prefix in ``prefixes`` (each a prefix of one of
    the ``maximal`` words; the set must be prefix-closed), from batched ball passes over the maximal words.
    ``net`` is a DecoderTransformer (its own ``encode``), one of the experiments' LSTM / linear / SSM models
    or a Hugging Face ``GPT2LMHeadModel`` / ``OPTForCausalLM`` (:mod:`constructions.hf_enclosure`) — pass
    ``encode``: words, length → ids ``[SOS, x…, PAD…]``.  The bounds are over all of the network's V outputs.

    Raises:
        InvalidModelConfig: a network the evaluator does not cover.  UnknownToken / InputTooLong: a word
            the network cannot read.
    """
    why = why_not_enclosable(net)
    if why:
        raise InvalidModelConfig(f"the rigorous evaluator cannot enclose this network: {why}")
    t0 = time.perf_counter()
    prefixes = tuple(prefixes)
    if isinstance(net, DecoderTransformer):
        cfg = net.config
        weights = Weights(net, torch.device(device) if device is not None else net.device)
        width = max(cfg.d_model, cfg.d_mlp, cfg.n_heads * cfg.d_head)
        heads = cfg.n_heads
        encode = encode or net.encode
        forward = lambda tokens: forward_balls(net, tokens, weights)  # noqa: E731
    else:
        if encode is None:
            raise InvalidModelConfig(f"a {type(net).__name__} needs an encode function")
        shape = _SHAPES.get(type(net))
        width, heads = shape(net) if shape is not None else (max(p.shape[-1] for p in net.parameters()) * 4, 1)
        forward = lambda tokens: logit_balls(net, tokens)  # noqa: E731
    dev = torch.device(device) if device is not None else next(net.parameters()).device
    v = int(forward(encode([""], length=1).to(dev)).shape[-1])
    lo_out = np.empty((len(prefixes), v), dtype=np.float64)
    hi_out = np.empty((len(prefixes), v), dtype=np.float64)
    mid_out = np.empty((len(prefixes), v), dtype=np.float64)
    softmax = 2 * v * v if v <= PAIRWISE_MAX_OUTPUTS else 8 * v

    def cost(n: int, t: int) -> int:
        return n * t * max(width, t * heads, softmax)

    with torch.no_grad():
        for batch in batches(maximal, prefixes, cost, batch_elements):
            tokens = encode(batch.words, length=batch.length).to(dev)
            r = torch.as_tensor(batch.rows, device=dev)
            c = torch.as_tensor(batch.cols, device=dev)
            z = forward(tokens)
            zr = Ball(z.m[r, c], z.r[r, c])
            lo, hi = log_softmax_bounds(zr)
            lo_out[batch.where] = lo.cpu().numpy()
            hi_out[batch.where] = hi.cpu().numpy()
            mid_out[batch.where] = zr.m.cpu().numpy()
    return Enclosure(prefixes, lo_out, hi_out, mid_out, time.perf_counter() - t0, str(dev),
                     {u: k for k, u in enumerate(prefixes)})


def enclose_words(net: DecoderTransformer, words: Sequence[str], **kw) -> Enclosure:
    """:func:`enclose` over every prefix of ``words``."""
    seen: dict[str, None] = {}
    for w in words:
        for t in range(len(w) + 1):
            seen.setdefault(w[:t])
    return enclose(net, words, tuple(seen), **kw)


# ---- rigorous numbers on top ------------------------------------------------------------------------------
_SCALE = 1074  # every finite float64 is an integer multiple of 2**-1074


def _scaled(x: float) -> int:
    """x·2**1074 as an exact int (x a finite float)."""
    n, d = float(x).as_integer_ratio()
    return n * ((1 << _SCALE) // d)


def kl_bounds(data, enc: Enclosure, prec: int = 96) -> tuple[Fraction, Fraction | None]:
    """[lo, hi] ∋ KL(P ‖ Q) for finite data P and the network Q whose log-probabilities ``enc`` encloses:
    KL = Σ_{u,a} P(ua)·(−ln q(a|u)) − H(P), the sum exact in rationals over the float bounds, H(P)
    enclosed by mpmath.  ``hi`` is +∞ (as ``Fraction`` cannot be) — reported as None — when a needed
    bound is not finite.

    Returns (lo, hi) as Fractions; hi is None when unbounded.

    Raises:
        InvalidDistribution: infinite data, or a support prefix the enclosure does not cover.
    """
    from theory.losses import entropy

    if not data.is_finite:
        raise InvalidDistribution(f"data {data.name!r} may have infinite support: the exhaustive KL needs a finite one")
    den, nodes = data.integer_trie()
    ce_hi = ce_lo = 0
    unbounded = False
    for u, _mass, masses in nodes:
        k = enc.index.get(u)
        if k is None:
            raise InvalidDistribution(f"support prefix {u!r} is not in the checked prefix set")
        lo, hi = enc.lp_lo[k], enc.lp_hi[k]
        for a, m in enumerate(masses):
            if not m:
                continue
            if not (math.isfinite(lo[a]) and math.isfinite(hi[a])):
                unbounded = True
                continue
            ce_hi -= m * _scaled(lo[a])
            ce_lo -= m * _scaled(hi[a])
    h_lo, h_hi = entropy(data).interval(prec)
    scale = Fraction(1, den << _SCALE)
    lo = max(Fraction(0), ce_lo * scale - h_hi)  # Gibbs: KL ≥ 0
    hi = None if unbounded else max(Fraction(0), ce_hi * scale - h_lo)
    return lo, hi
