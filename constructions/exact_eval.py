"""The exact evaluator: next-token logits of a :class:`~constructions.transformer.DecoderTransformer`
in exact rational arithmetic, with no floating-point operation anywhere.

Every stored weight is a float, and every finite float is a dyadic rational
(``fractions.Fraction(x)`` is exact).  For networks of the kind the analytic compiler builds
(:mod:`constructions.compile.lookup`) the whole forward pass is then a rational function that can be
computed *exactly*:

* embeddings, every linear map and bias, residual sums and ReLU are exact in rationals (here Python
  integers over one common denominator per vector, so a matrix–vector product is a sparse scatter of
  integer products — no rounding, no dependence on batching, summation order or device);
* softmax attention is exact **where a row's scores are exactly equal**: then every attended position
  gets weight exactly 1/(t + 1) whatever the scale 1/√d_head, and the head's output is the exact mean
  of the values.  The compiled networks' heads have all-zero queries and keys, so every row is of
  this kind.  A row whose scores differ would need exp of unequal rationals: the evaluator **refuses**
  the network (:class:`NotExactlyEvaluable`, naming the layer, head and prefix) rather than switch to
  intervals half-way — :mod:`constructions.enclosure` is the evaluator for such networks;
* LayerNorm needs a square root and GELU/tanh are transcendental: networks with ``norm`` other than
  ``"none"`` or an activation other than ReLU are refused with that reason (the compiled networks use
  neither);
* the log-softmax on top, log q(a | u) = (z_a − max z) − ln Σ_b exp(z_b − max z), is transcendental
  in the exact logits z: it is enclosed in mpmath interval arithmetic (``mpmath.iv``, outward
  rounding in software, :data:`LOG_PREC` bits), so every log-probability comes as a rational interval
  of width ~2^−100 around the true value.  (theory's :class:`~theory.exact.LogCombination` — sums of
  c·ln p, p prime — cannot hold exp of a rational, so it is not used here.)

The result is a pure function of the stored weights: :func:`exact_evaluate` walks the prefix trie
depth first, so each prefix's pass extends its parent's (attention is causal: the keys and the
running sum of the values along the path are shared), and every prefix is evaluated once.  It also
records, per prefix and layer, the MLP units that are on (ReLU input > 0) with their exact
pre-activations — what a design check (:mod:`proofs.compiled`) compares with the compiler's intended
values.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Iterable, Sequence

import numpy as np
import torch

from constructions.transformer import DecoderTransformer
from theory.errors import InvalidModelConfig

LOG_PREC = 113
"""Bits of the mpmath interval arithmetic of the log-softmax (its endpoints are exact rationals)."""

Vec = tuple[np.ndarray, int]
"""An exact rational vector: integer numerators (a numpy object array of Python ints) over one
positive denominator, reduced (gcd of the numerators and the denominator is 1), so equal vectors have
equal representations."""


_LIMB = 32
_LIMB_MASK = (1 << _LIMB) - 1
_INT64_SAFE = 1 << 62
_DENSE_ENTRIES = 1 << 21
"""int64 arithmetic is exact integer arithmetic while no partial sum reaches 2⁶³: every fast-path sum is
bounded below this first, in Python integers."""


class NotExactlyEvaluable(InvalidModelConfig):
    """A network the exact evaluator cannot compute exactly: LayerNorm, a non-ReLU activation, a
    non-finite weight, a module that is not the stock transformer's, or an attention row whose
    scores are not all exactly equal (named)."""


# ---- exact vectors -------------------------------------------------------------------------------
def _reduce(num: np.ndarray, den: int) -> Vec:
    g = math.gcd(den, *num.tolist())
    if g > 1:
        return num // g, den // g
    return num, den


def _add(a: Vec, b: Vec) -> Vec:
    (an, ad), (bn, bd) = a, b
    if ad == bd:
        return _reduce(an + bn, ad)
    lcm = ad * bd // math.gcd(ad, bd)
    return _reduce(an * (lcm // ad) + bn * (lcm // bd), lcm)


def _zeros(d: int) -> np.ndarray:
    return np.zeros(d, dtype=object)


def _rationals(t: torch.Tensor, what: str) -> tuple[list[tuple[int, ...]], list[int], int]:
    """(indices, integer numerators, common power-of-two denominator) of the nonzero entries of ``t``."""
    arr = t.detach().to(torch.float64).cpu().numpy()
    if not np.isfinite(arr).all():
        raise NotExactlyEvaluable(f"{what} holds a non-finite value: no exact real function")
    where = np.nonzero(arr)
    ratios = [v.as_integer_ratio() for v in arr[where].tolist()]
    den = max((d for _, d in ratios), default=1)  # every d is a power of two: the largest is their lcm
    return list(zip(*(w.tolist() for w in where))), [n * (den // d) for n, d in ratios], den


class _Linear:
    """``W x + b`` exactly: W's nonzero entries by column (rows, integer numerators over ``den``)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, name: str) -> None:
        self.d_out, self.d_in = weight.shape
        idx, nums, self.den = _rationals(weight, name + ".weight")
        by_col: dict[int, tuple[list[int], list[int]]] = {}
        for (i, j), n in zip(idx, nums):
            rows, vals = by_col.setdefault(j, ([], []))
            rows.append(i)
            vals.append(n)
        empty = (np.zeros(0, dtype=np.int64), _zeros(0))
        self.cols = [empty] * self.d_in
        # the fast path: each numerator n = hi·2³² + lo (0 ≤ lo < 2³²) as two int64 columns, so a column
        # scatter is two int64 scatters whose every partial sum is bounded (checked per call) below 2⁶²
        self.fast = all(abs(n) < _INT64_SAFE for n in nums)
        self.limbs: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = [(empty[0], empty[0], empty[0])] * self.d_in
        self.hi_max = [0] * self.d_in
        for j, (rows, vals) in by_col.items():
            v = _zeros(len(vals))
            v[:] = vals
            r = np.array(rows, dtype=np.int64)
            self.cols[j] = (r, v)
            if self.fast:
                hi = [n >> _LIMB for n in vals]
                self.limbs[j] = (r, np.array(hi, dtype=np.int64), np.array([n & _LIMB_MASK for n in vals], dtype=np.int64))
                self.hi_max[j] = max(abs(h) for h in hi)
        # dense transposed limbs (input-major) for a gather + one int64 vector-matrix product per limb
        self.dense: tuple[np.ndarray, np.ndarray] | None = None
        if self.fast and self.d_out * self.d_in <= _DENSE_ENTRIES:
            hi_t = np.zeros((self.d_in, self.d_out), dtype=np.int64)
            lo_t = np.zeros((self.d_in, self.d_out), dtype=np.int64)
            for j, (r, h, lo) in enumerate(self.limbs):
                hi_t[j, r] = h
                lo_t[j, r] = lo
            self.dense = (hi_t, lo_t)
        self.bias_num: np.ndarray | None = None
        self.bias_den = 1
        if bias is not None:
            bidx, bnums, self.bias_den = _rationals(bias, name + ".bias")
            if bidx:
                self.bias_num = _zeros(self.d_out)
                for (i,), n in zip(bidx, bnums):
                    self.bias_num[i] = n
        self.zero = not idx and self.bias_num is None  # the map is identically 0

    def __call__(self, x: Vec, reduce: bool = True) -> Vec:
        if self.zero:
            return _zeros(self.d_out), 1
        num, den = x
        nz = [(int(j), int(num[j])) for j in np.flatnonzero(num)]
        if self.fast and sum(abs(v) for _, v in nz) << _LIMB < _INT64_SAFE \
                and sum(self.hi_max[j] * abs(v) for j, v in nz) < _INT64_SAFE:
            if self.dense is not None:
                cols = np.array([j for j, _ in nz], dtype=np.int64)
                xs = np.array([v for _, v in nz], dtype=np.int64)
                hi_acc = xs @ self.dense[0][cols]
                lo_acc = xs @ self.dense[1][cols]
            else:
                hi_acc = np.zeros(self.d_out, dtype=np.int64)
                lo_acc = np.zeros(self.d_out, dtype=np.int64)
                for j, v in nz:
                    rows, hi, lo = self.limbs[j]
                    if rows.size:
                        hi_acc[rows] += hi * v
                        lo_acc[rows] += lo * v
            if hi_acc.any():
                acc = hi_acc.astype(object) * (1 << _LIMB) + lo_acc.astype(object)
            else:
                acc = lo_acc.astype(object)
        else:
            acc = _zeros(self.d_out)
            for j, v in nz:
                rows, vals = self.cols[j]
                if rows.size:
                    acc[rows] += vals * v
        d = self.den * den
        if self.bias_num is not None:
            lcm = d * self.bias_den // math.gcd(d, self.bias_den)
            if lcm != d:
                acc = acc * (lcm // d)
            acc = acc + self.bias_num * (lcm // self.bias_den)
            d = lcm
        return _reduce(acc, d) if reduce else (acc, d)


# ---- the network ---------------------------------------------------------------------------------
def why_not_exact(net: object) -> str:
    """'' when :func:`exact_evaluate` covers ``net`` (up to its attention rows, checked as they are
    met), else why not."""
    from constructions.enclosure import _stock_transformer

    if not isinstance(net, DecoderTransformer):
        return f"a {type(net).__name__} is not a DecoderTransformer"
    stock = _stock_transformer(net)
    if stock:
        return stock
    cfg = net.config
    if cfg.norm != "none":
        return (f"norm = {cfg.norm!r}: LayerNorm divides by a square root, which is not rational; the exact "
                "evaluator covers norm = 'none' networks only (the compiled ones) — use constructions.enclosure")
    if cfg.activation != "relu":
        return (f"activation = {cfg.activation!r} is transcendental; the exact evaluator covers ReLU only — "
                "use constructions.enclosure")
    return ""


class _ExactNet:
    def __init__(self, net: DecoderTransformer) -> None:
        cfg = net.config
        sd = net.state_dict()
        self.cfg = cfg
        tok = _Linear(sd["token_embedding.weight"].T, None, "token_embedding")
        pos = _Linear(sd["position_embedding.weight"].T, None, "position_embedding")
        self.tok = [self._column(tok, i) for i in range(cfg.n_inputs)]
        self.pos = [self._column(pos, i) for i in range(cfg.max_len)]
        self.layers = []
        for i in range(cfg.n_layers):
            p = f"blocks.{i}"
            self.layers.append({n: _Linear(sd[f"{p}.{n}.weight"], sd[f"{p}.{n}.bias"], f"{p}.{n}")
                                for n in ("attn.q_proj", "attn.k_proj", "attn.v_proj", "attn.o_proj", "mlp.fc_in",
                                          "mlp.fc_out")})
        self.unembed = _Linear(sd["unembed.weight"], sd["unembed.bias"], "unembed")

    @staticmethod
    def _column(lin: _Linear, j: int) -> Vec:
        v = _zeros(lin.d_out)
        one = _zeros(lin.d_in)
        one[j] = 1
        return lin(( one, 1)) if lin.d_in else (v, 1)


@dataclass(frozen=True)
class ExactEvaluation:
    """Exact logits of one network at every prefix of a prefix-closed set (rows in ``prefixes``
    order: the prefixes asked for, then the shorter ones they imply; columns Σ then EOS), and per prefix and layer the MLP units that are on, as
    ``((unit, exact pre-activation), ...)`` in unit order."""

    prefixes: tuple[str, ...]
    logits: tuple[tuple[Fraction, ...], ...]
    active: tuple[tuple[tuple[tuple[int, Fraction], ...], ...], ...]
    seconds: float
    index: dict[str, int] = field(repr=False, compare=False, default_factory=dict)

    def row(self, prefix: str) -> tuple[Fraction, ...]:
        return self.logits[self.index[prefix]]

    def on(self, prefix: str, layer: int) -> tuple[tuple[int, Fraction], ...]:
        return self.active[self.index[prefix]][layer]


def _closure(words: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {"": None}
    for w in words:
        for t in range(len(w) + 1):
            seen.setdefault(w[:t])
    return tuple(seen)


def exact_evaluate(net: DecoderTransformer, prefixes: Sequence[str]) -> ExactEvaluation:
    """The exact logits of ``net``'s stored weights at every prefix in ``prefixes`` (and their
    prefixes: the set is closed first), one depth-first walk of the prefix trie.

    Raises:
        NotExactlyEvaluable: a network of another kind (:func:`why_not_exact`), or an attention row
            whose scores are not all exactly equal (the layer, head, prefix and two scores named).
        UnknownToken / InputTooLong: a word the network cannot read.
    """
    why = why_not_exact(net)
    if why:
        raise NotExactlyEvaluable(f"the exact evaluator cannot evaluate this network: {why}")
    t0 = time.perf_counter()
    wanted = tuple(prefixes)
    words = _closure(wanted)
    ab = net.alphabet
    for w in words:
        ab.check_sequence(w, "prefix")
    if words and max(len(w) for w in words) + 1 > net.config.max_len:
        from theory.errors import InputTooLong

        longest = max(words, key=len)
        raise InputTooLong(f"prefix of {len(longest)} symbols needs {len(longest) + 1} positions; max_len = "
                           f"{net.config.max_len}")
    exact = _ExactNet(net)
    cfg = exact.cfg
    ids = {s: i for i, s in enumerate(ab.symbols)}
    children: dict[str, list[str]] = {}
    for w in words:
        if w:
            children.setdefault(w[:-1], []).append(w)
    out_logits: dict[str, tuple[Fraction, ...]] = {}
    out_active: dict[str, tuple[tuple[tuple[int, Fraction], ...], ...]] = {}
    H, dh = cfg.n_heads, cfg.d_head
    # per layer and head, along the current path: the keys, whether they are all equal, the value sum
    keys: list[list[list[Vec]]] = [[[] for _ in range(H)] for _ in range(cfg.n_layers)]

    def visit(u: str, vsums: list[list[Vec]]) -> None:
        t = len(u)
        token = cfg.sos_id if t == 0 else ids[u[-1]]
        x = _add(exact.tok[token], exact.pos[t])
        new_sums: list[list[Vec]] = []
        on: list[tuple[tuple[int, Fraction], ...]] = []
        for i, lay in enumerate(exact.layers):
            q = lay["attn.q_proj"](x)
            k = lay["attn.k_proj"](x)
            v = lay["attn.v_proj"](x)
            heads: list[Vec] = []
            sums: list[Vec] = []
            for h in range(H):
                sl = slice(h * dh, (h + 1) * dh)
                qh = _reduce(q[0][sl], q[1])
                kh = _reduce(k[0][sl], k[1])
                vh = _reduce(v[0][sl], v[1])
                path = keys[i][h]
                path.append(kh)
                _uniform_or_refuse(qh, path, i, h, u)
                s = vh if t == 0 else _add(vsums[i][h], vh)
                sums.append(s)
                heads.append(_reduce(s[0], s[1] * (t + 1)))  # exactly uniform weights 1/(t + 1)
            new_sums.append(sums)
            den = 1
            for _, d in heads:
                den = den * d // math.gcd(den, d)
            cat = np.concatenate([n * (den // d) for n, d in heads])
            x = _add(x, lay["attn.o_proj"](_reduce(cat, den)))
            pre_num, pre_den = lay["mlp.fc_in"](x, reduce=False)
            units = np.flatnonzero(pre_num > 0)
            on.append(tuple((int(j), Fraction(int(pre_num[j]), pre_den)) for j in units))
            hidden = _zeros(len(pre_num))
            hidden[units] = pre_num[units]
            x = _add(x, lay["mlp.fc_out"](_reduce(hidden, pre_den)))
        zn, zd = exact.unembed(x)
        out_logits[u] = tuple(Fraction(int(n), zd) for n in zn)
        out_active[u] = tuple(on)
        for c in children.get(u, ()):
            visit(c, new_sums)
        for i in range(cfg.n_layers):
            for h in range(H):
                keys[i][h].pop()

    import sys

    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 4 * cfg.max_len + 200))
    try:
        visit("", [])
    finally:
        sys.setrecursionlimit(old)
    order = tuple(dict.fromkeys(wanted + words))  # the ones asked for first, then the prefixes they imply
    return ExactEvaluation(order, tuple(out_logits[u] for u in order), tuple(out_active[u] for u in order),
                           time.perf_counter() - t0, {u: k for k, u in enumerate(order)})


def _uniform_or_refuse(q: Vec, path: list[Vec], layer: int, head: int, prefix: str) -> None:
    """Refuse unless every score q·k_s (s ≤ t) of this row is exactly the same rational."""
    qn, qd = q
    if not qn.any():
        return  # all scores are exactly 0
    if all(kn.shape == path[0][0].shape and kd == path[0][1] and (kn == path[0][0]).all() for kn, kd in path):
        return  # one key at every position: one score
    first = Fraction(int(np.dot(qn, path[0][0])), qd * path[0][1])
    for s, (kn, kd) in enumerate(path):
        score = Fraction(int(np.dot(qn, kn)), qd * kd)
        if score != first:
            raise NotExactlyEvaluable(
                f"attention row of layer {layer}, head {head} at prefix {prefix!r}: the scores at positions 0 and "
                f"{s} differ (q·k = {float(first):.6g} vs {float(score):.6g}), so the softmax weights are exp of "
                "unequal rationals; the exact evaluator covers exactly-uniform rows only — use constructions.enclosure")


# ---- log-probabilities and TV, rigorously from the exact logits ------------------------------------------
def _iv(x: Fraction):  # -> mpmath.iv.mpf
    from mpmath import iv

    return iv.mpf(x.numerator) / iv.mpf(x.denominator)


def _ends(v) -> tuple[Fraction, Fraction]:  # an mpmath interval's endpoints as exact rationals
    from theory.exact import _mpf_to_fraction

    lo, hi = v._mpi_
    return _mpf_to_fraction(lo), _mpf_to_fraction(hi)


@dataclass(frozen=True)
class RowBounds:
    """Rigorous bounds from one row of exact logits z: ``log_prob[a] = (lo, hi)`` ∋ log q(a | u) and
    ``prob[a] = (lo, hi)`` ∋ q(a | u), exact rational endpoints."""

    log_prob: tuple[tuple[Fraction, Fraction], ...]
    prob: tuple[tuple[Fraction, Fraction], ...]


def row_bounds(z: Sequence[Fraction], prec: int = LOG_PREC) -> RowBounds:
    """log q_a = (z_a − M) − ln Σ_b exp(z_b − M), M = max z, and q_a = exp(z_a − M) / Σ_b exp(z_b − M), in
    mpmath interval arithmetic at ``prec`` bits (z_a − M exact)."""
    from mpmath import iv

    top = max(z)
    old = iv.prec
    iv.prec = prec
    try:
        e = [_iv(a - top) for a in z]
        ex = [iv.exp(d) for d in e]
        total = sum(ex[1:], ex[0])
        log_total = iv.log(total)
        lp = tuple(_ends(d - log_total) for d in e)
        pr = tuple(_ends(x / total) for x in ex)
    finally:
        iv.prec = old
    lp = tuple((lo, min(hi, Fraction(0))) for lo, hi in lp)  # log q ≤ 0
    pr = tuple((max(lo, Fraction(0)), min(hi, Fraction(1))) for lo, hi in pr)
    return RowBounds(lp, pr)


def tv_upper(p: Sequence[Fraction], rb: RowBounds) -> Fraction:
    """An exact rational upper bound of TV(p, q) = ½ Σ_a |p_a − q_a| for q enclosed by ``rb``."""
    return sum((max(hi - pa, pa - lo) for pa, (lo, hi) in zip(p, rb.prob)), Fraction(0)) / 2


def float_down(x: Fraction) -> float:
    """The largest float ≤ x (float(Fraction) is correctly rounded by integer arithmetic)."""
    f = float(x)
    return math.nextafter(f, -math.inf) if Fraction(f) > x else f


def float_up(x: Fraction) -> float:
    """The smallest float ≥ x."""
    f = float(x)
    return math.nextafter(f, math.inf) if Fraction(f) < x else f


__all__ = ["LOG_PREC", "ExactEvaluation", "NotExactlyEvaluable", "RowBounds", "exact_evaluate", "float_down",
           "float_up", "row_bounds", "tv_upper", "why_not_exact"]
