"""Proposition 3, block by block, for every size: the mathematics behind the ``prop-3-blocks`` proof
check (:mod:`proofs.prop3_blocks` turns the result into a certificate).

:mod:`theory.symbolic_finetuning` proves the maps on one minimal model (width 1, one head, one unit).
This module proves the invariance half of Proposition 3 for the transformer of
:mod:`constructions.transformer` at every width, head count and depth, and for every LayerNorm
placement, and it proves it *about the maps the numeric checks apply*: its input is a real
:class:`~constructions.finetuning.maps.ParameterMap`, read step by step.

1. **Reading the map** (exact, no sympy).  Every parameter row (or column) a step touches is tracked
   through the steps in order: after the map, new index ``i`` holds ``factor · old[src(i)]``.  Each
   float factor is read as a power α^p (p ∈ {±1, ±2}) of a factor already seen, or else as a new
   positive symbol α_j (see :class:`_FactorReader`): so α on W_Q and 1/α on W_K become α and α⁻¹,
   and the deliberately wrong 1/α² becomes α⁻².
2. **Structure** (exact).  Only in-block factors may be touched: rows of W_Q, b_Q, W_K, b_K, W_V, b_V,
   columns of W_O, rows of W₁, b₁, columns of W₂ — never a LayerNorm, an embedding, the unembedding,
   an output bias or a residual connection.  Q and K rows must be moved together, V rows with W_O's
   columns, W₁'s rows with b₁ and W₂'s columns, and every head's coordinates into one head, the same
   for QK and VO.  Anything else is *outside* the proof (status unknown, never a verdict).
3. **Identities** (sympy, matrix symbols of symbolic sizes n, d, k_c, m_c).  Per head, its coordinates
   split into classes of equal factors (one class for a whole-head map), each class its own block of
   symbolic width:
     * scores  Σ_c (X W_Q^c a + 1 b_Q^c a')(X W_K^c b + 1 b_K^c b')ᵀ = Σ_c (X W_Q^c + 1 b_Q^c)(X W_K^c + 1 b_K^c)ᵀ,
       so the attention matrix A = softmax(mask(S/√d_head)) is the same;
     * values  Σ_c A (X W_V^c a + 1 b_V^c a')(W_O^c b) = Σ_c A (X W_V^c + 1 b_V^c) W_O^c for a free A;
     * heads   Σ_h T_{π(h)} + 1 b_O = Σ_h T_h + 1 b_O (the head permutation π reorders the sum);
     * MLP     Σ_c σ(X W₁^c a + 1 b₁^c a)(W₂^c b) = Σ_c σ(X W₁^c + 1 b₁^c) W₂^c, via the scalar lemma
       max(0, αz) = α max(0, z) for α > 0 (sympy, case split z > 0 / z ≤ 0), lifted elementwise.
   A GELU or tanh σ has no such lemma: σ(cz) − cσ(z) has a non-zero derivative at z = 0 for every
   c > 0, c ≠ 1 (decided exactly), so a scaled MLP with such σ is *falsified*.
4. **Depth and LayerNorm** (uninterpreted functions + the stated induction).  Each identity is proved
   for a free input X, hence for X = LN(x) (pre-LN) and X = x (post-LN, none).  With the per-block
   equalities substituted, the logits of the ``n_layers``-deep network are the same sympy expression
   in every placement; for any depth, induction over layers.

sympy is imported inside the functions, so importing this module stays cheap; it never imports torch.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Iterable, Mapping, Protocol, Sequence

from theory.errors import InvalidModelConfig, InvalidReparametrisation
from theory.validation import check_choice, check_number

ACTIVATIONS = ("relu", "gelu", "tanh")
NORMS = ("pre", "post", "none")
POWERS = (1, -1, 2, -2)
"""The powers of an earlier factor a later factor is read as (1/α, α², the wrong inverse's 1/α²)."""
READ_ULPS = 2
"""A factor f is read as a^p when |f − a^p| ≤ READ_ULPS ulp(a^p), exactly in rationals: 1.0/a and
1.0/a**2 are at most that far from the exact power (one or two roundings)."""
_NAME = re.compile(r"blocks\.(\d+)\.(?:attn\.([qkvo])_proj|mlp\.fc_(in|out))\.(weight|bias)")
# (role, dim) pairs a Proposition 3 map may touch: head rows of Q, K, V (weights and biases), head
# columns of W_O, unit rows of W1 and b1, unit columns of W2.
_IN_BLOCK = {("q.weight", 0), ("q.bias", 0), ("k.weight", 0), ("k.bias", 0), ("v.weight", 0), ("v.bias", 0),
             ("o.weight", 1), ("in.weight", 0), ("in.bias", 0), ("out.weight", 1)}
_QK, _VO, _MLP = ("q.weight", "q.bias", "k.weight", "k.bias"), ("v.weight", "v.bias", "o.weight"), \
    ("in.weight", "in.bias", "out.weight")


class _Map(Protocol):
    """What the prover reads of a :class:`~constructions.finetuning.maps.ParameterMap` (duck-typed, so
    this module needs no torch)."""

    @property
    def name(self) -> str: ...

    @property
    def steps(self) -> tuple: ...

    @property
    def shape(self) -> tuple: ...


@dataclass(frozen=True)
class BlockProof:
    """The outcome of :func:`prove_blocks`.

    Attributes:
        ok: every identity reduced to zero and nothing was outside the proof.
        failures: the identities that did not reduce to zero (a falsified map), in order.
        outside: steps or structures the proof does not cover (LayerNorm, embedding, a Q row moved
            without its K row, …): no verdict either way.
        identities: the identities decided by sympy, in order (``map: layer l head h: scores``).
        quantities: what a certificate reports (factor readings, classes, permutations, counts).
    """

    ok: bool
    failures: tuple[str, ...]
    outside: tuple[str, ...]
    identities: tuple[str, ...]
    quantities: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        """``verified`` / ``falsified`` / ``unknown`` (a falsification outranks an outside step)."""
        return "falsified" if self.failures else ("unknown" if self.outside else "verified")


# ----------------------------------------------------------------------------------------------
# 1. Reading the map
# ----------------------------------------------------------------------------------------------

class _FactorReader:
    """Turns a map's float factors into sympy expressions: 1.0 ↦ 1; a factor within ``READ_ULPS`` ulp
    of a^p for an earlier base a ↦ α^p; anything else becomes a new base and a new positive symbol.
    The reading is what the proof is about; :meth:`value` maps each symbol back to its float (exactly,
    as a rational), so a residual can be evaluated at the map's own numbers."""

    def __init__(self) -> None:
        self.bases: list[tuple[float, Any]] = []
        self.readings: dict[str, str] = {}

    def read(self, f: float) -> Any:
        import sympy as sp

        if f == 1.0:
            self.readings[repr(f)] = "1"
            return sp.Integer(1)
        exact = Fraction(f)
        for a, sym in self.bases:
            for p in POWERS:
                target = Fraction(a) ** p
                if abs(exact - target) <= READ_ULPS * Fraction(math.ulp(float(target))):
                    self.readings[repr(f)] = str(sym ** p)
                    return sym ** p
        sym = sp.Symbol(f"alpha{len(self.bases) + 1}", positive=True)
        self.bases.append((f, sym))
        self.readings[repr(f)] = str(sym)
        return sym

    def values(self) -> dict:
        import sympy as sp

        return {sym: sp.Rational(Fraction(a).numerator, Fraction(a).denominator) for a, sym in self.bases}


@dataclass
class _Track:
    """One parameter's rows (or columns) along the mapped dimension: ``src[i]`` the old index now at
    ``i``, ``factor[i]`` its accumulated factor (a sympy expression)."""

    src: list[int]
    factor: list[Any]


def _role(parameter: str, dim: int, cfg: Mapping[str, int]) -> tuple[int, str, int] | None:
    """(layer, role, size along dim) for an in-block factor, None for anything else."""
    m = _NAME.fullmatch(parameter)
    if m is None:
        return None
    layer, attn, mlp, kind = int(m.group(1)), m.group(2), m.group(3), m.group(4)
    role = f"{attn or mlp}.{kind}"
    if (role, dim) not in _IN_BLOCK:
        return None
    if layer >= cfg["n_layers"]:
        raise InvalidReparametrisation(f"step on {parameter!r}: layer {layer} is out of range "
                                       f"(the map's shape has {cfg['n_layers']} layers)")
    return layer, role, cfg["n_heads"] * cfg["d_head"] if attn else cfg["d_mlp"]


def _shape(pmap: _Map) -> dict[str, int]:
    try:
        _, d_model, n_heads, d_head, d_mlp, n_layers, _ = pmap.shape
        cfg = {"d_model": d_model, "n_heads": n_heads, "d_head": d_head, "d_mlp": d_mlp, "n_layers": n_layers}
    except (TypeError, ValueError):
        raise InvalidReparametrisation(f"{pmap.name!r}: shape {pmap.shape!r} is not a transformer shape "
                                       f"(alphabet, d_model, n_heads, d_head, d_mlp, n_layers, max_len)") from None
    for k, v in cfg.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise InvalidReparametrisation(f"{pmap.name!r}: shape {k} = {v!r} is not a positive int")
    return cfg


def _read(pmap: _Map, reader: _FactorReader) -> tuple[dict[tuple[int, str], _Track], list[str], dict[str, int]]:
    """Track every touched in-block row through the steps.  Returns the tracks by (layer, role), the
    steps outside the proof, and the shape.

    Raises:
        InvalidReparametrisation: not a map, a factor that is not a finite number > 0, a slice out of
            range, an order that is not a permutation, a layer out of range.
    """
    import sympy as sp

    for attr in ("name", "steps", "shape"):
        if not hasattr(pmap, attr):
            raise InvalidReparametrisation(f"expected a ParameterMap, got {type(pmap).__name__} (no {attr!r})")
    cfg = _shape(pmap)
    tracks: dict[tuple[int, str], _Track] = {}
    outside: list[str] = []
    for i, step in enumerate(pmap.steps):
        what = f"{pmap.name}: step {i} ({getattr(step, 'parameter', '?')})"
        scale, perm = hasattr(step, "factor"), hasattr(step, "order")
        if not hasattr(step, "parameter") or not hasattr(step, "dim"):
            raise InvalidReparametrisation(f"{what}: {type(step).__name__} is not a step (no parameter, no dim)")
        if scale == perm:  # a DenseTransform (a residual-basis change) or another kind of step
            outside.append(f"{what}: a {type(step).__name__} is neither a slice scaling nor a slice permutation; "
                           f"this per-block proof does not cover it")
            continue
        if scale:
            factor = check_number(step.factor, f"{what}: factor =", lo=0, lo_open=True, error=InvalidReparametrisation,
                                  real=True, note="a scaling needs a finite factor > 0")
        role = _role(step.parameter, step.dim, cfg)
        if role is None:
            outside.append(f"{what}, dim {step.dim}: not an in-block factor of attention or the MLP (a LayerNorm, "
                           f"embedding, unembedding, output bias or input-side slice is outside this proof)")
            continue
        layer, name, size = role
        start, stop = step.start, step.stop
        if not (isinstance(start, int) and isinstance(stop, int) and 0 <= start < stop <= size):
            raise InvalidReparametrisation(f"{what}: slice {start!r}:{stop!r} is not inside 0:{size}")
        t = tracks.setdefault((layer, name), _Track(list(range(size)), [sp.Integer(1)] * size))
        if scale:
            f = reader.read(factor)
            for j in range(start, stop):
                t.factor[j] = t.factor[j] * f
        else:
            order = tuple(step.order)
            if sorted(order) != list(range(stop - start)) or any(isinstance(o, bool) for o in order):
                raise InvalidReparametrisation(f"{what}: order {order!r} is not a permutation of 0..{stop - start - 1}")
            src, fac = t.src[:], t.factor[:]
            for j, o in enumerate(order):
                t.src[start + j], t.factor[start + j] = src[start + o], fac[start + o]
    return tracks, outside, cfg


# ----------------------------------------------------------------------------------------------
# 3. The identities (cached: the same algebra recurs for every head and layer)
# ----------------------------------------------------------------------------------------------

def _dims() -> tuple:
    import sympy as sp

    return sp.symbols("n d", positive=True, integer=True)


def _residual(new: Any, old: Any) -> Any:
    """new − old, expanded: a MatAdd whose terms are scalar multiples of distinct words in the matrix
    symbols, or 0."""
    import sympy as sp

    diff = sp.expand(new - old)
    return sp.Integer(0) if diff == 0 or isinstance(diff, sp.ZeroMatrix) else diff


def _canonical(classes: tuple) -> tuple[tuple, dict]:
    """``classes`` with its symbols renamed c1, c2, … in order of appearance, each inverted if it first
    appears with a negative power, and the substitution back.  The identities hold for every positive
    value of the symbols, a property invariant under these bijections of (0, ∞), so the heads and
    layers of one map share one sympy computation (a cache hit) instead of one each."""
    import sympy as sp

    forward: dict = {}
    for cls in classes:
        for f in cls:
            for sym in sorted(f.free_symbols, key=lambda x: x.name):
                if sym not in forward:
                    c = sp.Symbol(f"c{len(forward) + 1}", positive=True)
                    inverted = sp.degree(sp.numer(sp.together(f)), sym) == 0
                    forward[sym] = 1 / c if inverted else c
    if not forward:
        return classes, {}
    back = {(1 / v if v.is_Pow else v): (1 / k if v.is_Pow else k) for k, v in forward.items()}
    return tuple(tuple(sp.sympify(f).xreplace(forward) for f in cls) for cls in classes), back


def _decided(fn: Any, classes: tuple, *rest: Any) -> Any:
    """``fn`` (a cached identity) on the canonical form of ``classes``, its residual renamed back."""
    import sympy as sp

    canon, back = _canonical(classes)
    out = fn(canon, *rest)
    if isinstance(out, tuple):
        res, why = out
        names = {str(k): f"({v})" for k, v in back.items() if isinstance(k, sp.Symbol)}
        why = re.sub(r"\bc\d+\b", lambda m: names.get(m.group(0), m.group(0)), why)
        return (res.xreplace(back) if res is not None else None), why
    return out.xreplace(back)


@functools.lru_cache(maxsize=256)
def _scores_identity(classes: tuple[tuple[Any, Any, Any, Any], ...]) -> Any:
    """The score residual for one head whose coordinates fall into ``classes`` of factors
    (W_Q, b_Q, W_K, b_K); 0 when the scores are unchanged."""
    import sympy as sp

    n, d = _dims()
    X, one = sp.MatrixSymbol("X", n, d), sp.OneMatrix(n, 1)
    new, old = sp.ZeroMatrix(n, n), sp.ZeroMatrix(n, n)
    for c, (qw, qb, kw, kb) in enumerate(classes):
        k = sp.Symbol(f"k{c}" if len(classes) > 1 else "k", positive=True, integer=True)
        WQ, WK = sp.MatrixSymbol(f"W_Q{c}", d, k), sp.MatrixSymbol(f"W_K{c}", d, k)
        bQ, bK = sp.MatrixSymbol(f"b_Q{c}", 1, k), sp.MatrixSymbol(f"b_K{c}", 1, k)
        new += (X * WQ * qw + one * bQ * qb) * (X * WK * kw + one * bK * kb).T
        old += (X * WQ + one * bQ) * (X * WK + one * bK).T
    return _residual(new, old)


@functools.lru_cache(maxsize=256)
def _values_identity(classes: tuple[tuple[Any, Any, Any], ...]) -> Any:
    """The head-output residual for one head, factors (W_V, b_V, W_O) per class, any attention matrix A."""
    import sympy as sp

    n, d = _dims()
    X, one, A = sp.MatrixSymbol("X", n, d), sp.OneMatrix(n, 1), sp.MatrixSymbol("A", n, n)
    new, old = sp.ZeroMatrix(n, d), sp.ZeroMatrix(n, d)
    for c, (vw, vb, ow) in enumerate(classes):
        k = sp.Symbol(f"k{c}" if len(classes) > 1 else "k", positive=True, integer=True)
        WV, bV, WO = sp.MatrixSymbol(f"W_V{c}", d, k), sp.MatrixSymbol(f"b_V{c}", 1, k), sp.MatrixSymbol(f"W_O{c}", k, d)
        new += A * (X * WV * vw + one * bV * vb) * (WO * ow)
        old += A * (X * WV + one * bV) * WO
    return _residual(new, old)


@functools.lru_cache(maxsize=64)
def _heads_identity(perm: tuple[int, ...]) -> Any:
    """Σ_h T_{π(h)} + 1 b_O − (Σ_h T_h + 1 b_O): the block's attention output when each new head h
    computes old head π(h)'s term T_{π(h)} (which the per-head identities prove)."""
    import sympy as sp

    n, d = _dims()
    one, bO = sp.OneMatrix(n, 1), sp.MatrixSymbol("b_O", 1, d)
    T = [sp.MatrixSymbol(f"T{h}", n, d) for h in range(len(perm))]
    return _residual(sp.MatAdd(*(T[g] for g in perm)) + one * bO, sp.MatAdd(*T) + one * bO)


@functools.lru_cache(maxsize=1)
def relu_lemma() -> tuple[bool, str]:
    """max(0, αz) = α max(0, z) for α > 0, by sympy: the case z > 0 and the case z ≤ 0, each with the
    sign in the symbol's assumptions, reduce to 0 (and the two cases cover the real line)."""
    import sympy as sp

    a = sp.Symbol("alpha", positive=True)
    cases = {"z > 0": sp.Symbol("z", positive=True), "z <= 0": sp.Symbol("z", nonpositive=True)}
    bad = [f"{name}: {r}" for name, z in cases.items() if (r := sp.simplify(sp.Max(0, a * z) - a * sp.Max(0, z))) != 0]
    return (not bad, "; ".join(bad))


@functools.lru_cache(maxsize=8)
def _activation(name: str) -> Any:
    import sympy as sp

    z = sp.Symbol("z", real=True)
    if name == "gelu":
        return z, z / 2 * (1 + sp.erf(z / sp.sqrt(2)))
    return z, sp.tanh(z)


def homogeneity_witness(activation: str, c: Any) -> str | None:
    """For a smooth σ (GELU, tanh) and an exact c > 0, c ≠ 1 (the map's factor, as the float's
    rational): the first k ≤ 5 with d^k/dz^k [σ(cz) − cσ(z)] at z = 0 non-zero at that c, decided
    exactly by sympy (the derivative is (c^k − c)σ⁽ᵏ⁾(0)); a non-zero derivative means σ(cz) ≠ cσ(z)
    near 0.  The text gives the derivative as a formula in c.  None if no such k."""
    import sympy as sp

    z, s = _activation(activation)
    cs = sp.Symbol("c", positive=True)
    gap = s.subs(z, cs * z) - cs * s
    for k in range(1, 6):
        formula = sp.factor(sp.simplify(sp.diff(gap, z, k).subs(z, 0)))
        if formula.subs(cs, c).is_zero is False:
            return (f"d^{k}/dz^{k} [{activation}(c z) - c {activation}(z)] at z = 0 is {formula}, "
                    f"non-zero at the map's c = {float(c)!r} (exactly)")
    return None


@functools.lru_cache(maxsize=256)
def _mlp_identity(classes: tuple[tuple[Any, Any, Any], ...], activation: str) -> tuple[Any, str]:
    """The MLP residual for one layer, factors (W₁, b₁, W₂) per class of units, and the reason a class
    cannot be rewritten (empty when every class could).  A class with W₁ and b₁ scaled by the same
    c > 0 has pre-activation c·Z (checked) and, for ReLU, output c·ReLU(Z) (the lemma, lifted
    elementwise); c = 1 needs no lemma (any σ acts unit by unit, so moving units moves its outputs)."""
    import sympy as sp

    n, d = _dims()
    X, one = sp.MatrixSymbol("X", n, d), sp.OneMatrix(n, 1)
    new, old = sp.ZeroMatrix(n, d), sp.ZeroMatrix(n, d)
    for c, (w1, b1, w2) in enumerate(classes):
        m = sp.Symbol(f"m{c}" if len(classes) > 1 else "m", positive=True, integer=True)
        W1, B1, W2 = sp.MatrixSymbol(f"W_1{c}", d, m), sp.MatrixSymbol(f"b_1{c}", 1, m), sp.MatrixSymbol(f"W_2{c}", m, d)
        R = sp.MatrixSymbol(f"R{c}", n, m)  # sigma(X W_1 + 1 b_1), elementwise, of the old parameters
        if sp.simplify(w1 - b1) != 0:
            return None, (f"unit class {c}: W_1 scaled by {w1} but b_1 by {b1}: the pre-activation is not a "
                          f"multiple of the old one (the ReLU kink moves)")
        pre = _residual(X * W1 * w1 + one * B1 * b1, w1 * (X * W1 + one * B1))
        if pre != 0:
            return None, f"unit class {c}: pre-activation residual {pre}"
        if w1 != 1:
            if not w1.is_positive:
                return None, f"unit class {c}: factor {w1} not known positive"
            if activation != "relu":
                return None, f"unit class {c}: {activation}(c z) != c {activation}(z) for c = {w1} (not positively homogeneous)"
            ok, why = relu_lemma()
            if not ok:
                return None, f"ReLU lemma failed: {why}"
        new += (R * w1) * (W2 * w2)
        old += R * W2
    return _residual(new, old), ""


# ----------------------------------------------------------------------------------------------
# 2 + 3. Per layer: structure, then identities
# ----------------------------------------------------------------------------------------------

def _classes(track_list: Sequence[_Track], rows: Iterable[int]) -> tuple:
    """The distinct factor tuples over ``rows`` (in order of first appearance): the classes of
    coordinates, each a block of its own symbolic width."""
    seen: dict[tuple, None] = {}
    for i in rows:
        seen.setdefault(tuple(t.factor[i] for t in track_list), None)
    return tuple(seen)


def _coefficients_vanish_at_values(residual: Any, values: Mapping) -> bool:
    """Whether every scalar coefficient of a residual is (nearly) zero at the map's own factors: then a
    non-zero residual says more about the reading (factors related in a way :class:`_FactorReader`
    did not see, e.g. 2 · 3 · (1/6)) than about the map, and the proof gives no verdict."""
    import sympy as sp

    terms = residual.args if isinstance(residual, sp.MatAdd) else (residual,)
    for term in terms:
        scal = sp.Mul(*[a for a in getattr(term, "args", ()) if not getattr(a, "is_Matrix", False)])
        v = sp.Abs(scal.subs(values))  # an exact rational: the values are the floats' exact rationals
        if not v.is_Rational or v > sp.Rational(1, 10**9):
            return False
    return True


def _prove_map(key: str, pmap: _Map, activation: str, out: dict) -> None:
    """Read one map, check its structure and its identities; append to ``out``'s lists."""
    import sympy as sp

    reader = _FactorReader()
    tracks, outside, cfg = _read(pmap, reader)
    out["outside"] += outside
    values = reader.values()
    H, k = cfg["n_heads"], cfg["d_head"]
    layers: dict[str, Any] = {}

    def decide(residual: Any, what: str, why: str = "") -> None:
        out["identities"].append(what)
        if residual is None:  # could not be rewritten: why says which step failed
            out["failures"].append(f"{what}: {why}")
        elif residual != 0:
            if _coefficients_vanish_at_values(residual, values):
                out["outside"].append(f"{what}: residual {residual} vanishes at the map's own factors "
                                      f"{reader.readings}: the factors are related in a way the reading did not see")
            else:
                out["failures"].append(f"{what}: residual {residual} != 0")

    for layer in sorted({lay for lay, _ in tracks}):
        def get(role: str, size: int) -> _Track:
            return tracks.get((layer, role)) or _Track(list(range(size)), [sp.Integer(1)] * size)

        info: dict[str, Any] = {}
        if any((layer, r) in tracks for r in _QK + _VO):
            qk, vo = [get(r, H * k) for r in _QK], [get(r, H * k) for r in _VO]
            where = f"{key}: layer {layer}"
            if len({tuple(t.src) for t in qk}) > 1 or len({tuple(t.src) for t in vo}) > 1:
                out["outside"].append(f"{where}: W_Q, b_Q, W_K, b_K (or W_V, b_V, W_O) rows are permuted differently")
            else:
                heads_of = [{s // k for s in t.src[h * k:(h + 1) * k]} for t in (qk[0], vo[0]) for h in range(H)]
                qk_heads, vo_heads = heads_of[:H], heads_of[H:]
                if any(len(s) != 1 for s in heads_of) or qk_heads != vo_heads:
                    out["outside"].append(f"{where}: a permutation mixes heads' coordinates, or moves a head's QK "
                                          f"part and VO part to different heads")
                else:
                    perm = tuple(next(iter(s)) for s in qk_heads)
                    info["head_permutation"] = list(perm)
                    info["heads"] = {}
                    for h in range(H):
                        rows = range(h * k, (h + 1) * k)
                        cq, cv = _classes(qk, rows), _classes(vo, rows)
                        info["heads"][str(h)] = {"from_old_head": perm[h], "qk_factors": [list(map(str, c)) for c in cq],
                                                 "vo_factors": [list(map(str, c)) for c in cv]}
                        decide(_decided(_scores_identity, cq), f"{where} head {h}: scores (X W_Q + 1 b_Q)(X W_K + 1 b_K)^T")
                        decide(_decided(_values_identity, cv), f"{where} head {h}: head output A (X W_V + 1 b_V) W_O, any A")
                    decide(_heads_identity(perm), f"{where}: attention output sum_h head_h + 1 b_O")
        if any((layer, r) in tracks for r in _MLP):
            mlp = [get(r, cfg["d_mlp"]) for r in _MLP]
            where = f"{key}: layer {layer}"
            if len({tuple(t.src) for t in mlp}) > 1:
                out["outside"].append(f"{where}: W_1 rows, b_1 and W_2 columns are permuted differently")
            else:
                cm = _classes(mlp, range(cfg["d_mlp"]))
                info["mlp_factors"] = [list(map(str, c)) for c in cm]
                info["mlp_units_permuted"] = mlp[0].src != list(range(cfg["d_mlp"]))
                residual, why = _decided(_mlp_identity, cm, activation)
                if residual is None and activation != "relu" and "homogeneous" in why:
                    why = _gelu_reason(cm, values, activation, why)
                decide(residual, f"{where}: MLP sigma(X W_1 + 1 b_1) W_2 ({activation})", why)
        layers[str(layer)] = info
    out["maps"][key] = {"name": pmap.name, "factor_readings": dict(reader.readings), "layers": layers}
    out["shapes"].add(tuple(cfg.values()))


def _gelu_reason(classes: tuple, values: Mapping, activation: str, why: str) -> str:
    """The exact witness that σ(cz) ≠ cσ(z) at the map's own c (a rational, from its floats)."""
    for w1, _, _ in classes:
        if w1 != 1:
            c = w1.subs(values)
            if c != 1:
                witness = homogeneity_witness(activation, c)
                if witness:
                    return f"{why}; {witness}"
    return why


def _depth_identity(n_layers: int) -> dict[str, bool]:
    """Step 4, per LayerNorm placement: with uninterpreted functions for the embedding E, each block's
    attention and MLP (old: Attn_l, Mlp_l; mapped: Attn'_l, Mlp'_l), each LayerNorm and the unembedding
    U, the ``n_layers``-deep logits after substituting the proved Attn'_l = Attn_l and Mlp'_l = Mlp_l
    are the same expression as before; the maps touch none of E, LN, U (checked in step 2)."""
    import sympy as sp

    tokens = sp.Symbol("tokens")
    E, U, LNf = sp.Function("E"), sp.Function("U"), sp.Function("LN_final")
    result = {}
    for norm in NORMS:
        def logits(mapped: bool) -> Any:
            x = E(tokens)
            for lay in range(n_layers):
                attn = sp.Function(f"Attn{lay}{'_T' if mapped else ''}")
                mlp = sp.Function(f"Mlp{lay}{'_T' if mapped else ''}")
                ln_a, ln_m = sp.Function(f"LN_attn{lay}"), sp.Function(f"LN_mlp{lay}")
                if norm == "post":
                    x = ln_a(x + attn(x))
                    x = ln_m(x + mlp(x))
                elif norm == "pre":
                    x = x + attn(ln_a(x))
                    x = x + mlp(ln_m(x))
                else:
                    x = x + attn(x)
                    x = x + mlp(x)
            return U(LNf(x) if norm == "pre" else x)

        mapped = logits(True)
        for lay in range(n_layers):  # the per-block identities, as rewrites of the mapped functions
            mapped = mapped.replace(sp.Function(f"Attn{lay}_T"), sp.Function(f"Attn{lay}"))
            mapped = mapped.replace(sp.Function(f"Mlp{lay}_T"), sp.Function(f"Mlp{lay}"))
        result[norm] = bool(mapped == logits(False))
    return result


def prove_blocks(maps: Mapping[str, _Map] | _Map, activation: str = "relu") -> BlockProof:
    """The per-block proof for each map (a mapping name → ParameterMap, or one map).

    ``activation`` is the MLP's σ of the model the maps are meant for: ``relu`` (the Proposition 3
    model), or ``gelu``/``tanh``, for which an MLP scaling is falsified (not positively homogeneous),
    while attention maps and permutations still verify.

    Raises:
        InvalidReparametrisation: an input that is not a ParameterMap, a factor that is not a finite
            number > 0 (NaN, inf, ≤ 0: the message names it), a bad slice or permutation.
        InvalidModelConfig: an activation that is not one of ``relu``, ``gelu``, ``tanh``.
    """
    check_choice(activation, "activation =", ACTIVATIONS, error=InvalidModelConfig)
    table: Mapping[str, _Map] = maps if isinstance(maps, Mapping) else {str(getattr(maps, "name", "map")): maps}
    if not table:
        raise InvalidReparametrisation("expected a non-empty mapping of ParameterMaps, got an empty one")
    out: dict[str, Any] = {"identities": [], "failures": [], "outside": [], "maps": {}, "shapes": set()}
    for key, pmap in table.items():
        _prove_map(str(key), pmap, activation, out)
    ok, why = relu_lemma()
    if not ok:
        out["failures"].append(f"ReLU positive homogeneity: {why}")
    depth = max((s[4] for s in out["shapes"]), default=1)
    composed = _depth_identity(depth)
    for norm, same in composed.items():
        out["identities"].append(f"depth {depth}, norm {norm}: logits composed from the blocks")
        if not same:
            out["failures"].append(f"depth {depth}, norm {norm}: the composed logits differ")
    quantities = {
        "maps": out["maps"], "activation": activation, "identities": len(out["identities"]),
        "relu_lemma": "max(0, alpha z) - alpha max(0, z) = 0 for z > 0 and z <= 0 (alpha > 0)" if ok else why,
        "layernorm_placements": list(NORMS), "depth_checked": depth,
        "symbolic_sizes": "n positions, d d_model, k (or k_c per factor class) d_head, m (or m_c) d_mlp",
        "failures": list(out["failures"]), "outside": list(out["outside"]),
    }
    return BlockProof(ok=not out["failures"] and not out["outside"], failures=tuple(out["failures"]),
                      outside=tuple(out["outside"]), identities=tuple(out["identities"]), quantities=quantities)
