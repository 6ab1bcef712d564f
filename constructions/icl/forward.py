"""The forward algorithm for :class:`~constructions.icl.hmm.MixtureHMM`: a batched float64 path with a
rigorous error bound, an exact Fraction path, and brute-force enumeration (the tests' reference).

**Float path.**  Emissions are deterministic, so after token xₜ the forward vector lives on the ≤ W
hidden states that emit xₜ.  For every ordered token pair (a, b) and concept c the W × W block
K_c[states(a), states(b)] is precomputed; one step is then a batched vector-times-block product.
The scale is kept in log space *exactly*: after every step each vector is multiplied by a power of two
(``frexp``/``ldexp``, no rounding) so that its largest entry lies in [½, 1), and the integer
exponents are summed.  A value is a :class:`Scaled` array mantissa · 2^exponent.

**Error bound** (Higham, *Accuracy and Stability of Numerical Algorithms*, Lemma 3.1).  Every
quantity is a sum of non-negative terms, each a product of parameters; in floating point each term
picks up at most N factors (1 + δ), |δ| ≤ u = 2⁻⁵³ — one per rounding on its way: 1 for the float
image of each exact parameter (E, T_c), 1 for their product, 1 per multiplication and at most n − 1
per sum of n terms (in any order, FMA or not).  Since the terms are non-negative, the computed value is
exact · (1 + θ) with |θ| ≤ γ_N = N·u / (1 − N·u).  :class:`Scaled` carries N (``roundings``) through
every operation.  Two side conditions make Lemma 3.1 apply: no overflow (values stay below W after
each rescale), and no underflow — guaranteed when every transition is strictly positive (then every
surviving entry is ≥ ½·K_minˢ s steps after a rescale, so rescaling every ``rescale_every`` steps
with (rescale_every + 1)·log₂(1/K_min) ≤ 1000 keeps everything normal; see
:attr:`ForwardTables.underflow_free`), and otherwise checked step by step (rescaling every step, every
positive entry ≥ 2⁻⁵⁰⁰, every positive transition ≥ 2⁻⁴⁵⁰; else :class:`FloatBoundViolated`).  Terms
flushed when sums align exponents lose < 2⁻⁹⁰⁰ relatively, added to the bound.
``relative_error_bound(N)`` returns γ_N + 2⁻⁹⁰⁰ rounded up to a float.

**Exact path.**  :func:`exact_forward` runs the same recursion in Fractions (tiny instances only);
:func:`brute_force_prefix_probability` sums over every hidden path (tests only).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Any, Sequence, overload

import numpy as np

from constructions.icl.hmm import MixtureHMM
from theory.errors import InvalidPrompt, NonidError, OutsideDomain

UNIT_ROUNDOFF = Fraction(1, 2**53)
FLUSH_SLACK = Fraction(1, 2**900)


class FloatBoundViolated(NonidError):
    """The float forward left the range where its error bound holds (possible only with zero transitions)."""


@lru_cache(maxsize=4096)
def relative_error_bound(roundings: int) -> float:
    """γ_N + 2⁻⁹⁰⁰ for N = ``roundings``, as a float rounded *up* (a rigorous relative error bound).

    Raises:
        FloatBoundViolated: N·u ≥ 1/2 (the bound would be meaningless).
    """
    nu = roundings * UNIT_ROUNDOFF
    if nu >= Fraction(1, 2):
        raise FloatBoundViolated(f"{roundings} roundings are too many for a float64 error bound")
    exact = nu / (1 - nu) + FLUSH_SLACK
    f = float(exact)
    return f if Fraction(f) >= exact else math.nextafter(f, math.inf)


@dataclass(frozen=True)
class Scaled:
    """Non-negative reals mantissa · 2^exponent (elementwise), each within relative error
    ``relative_error_bound(roundings)`` of the exact value it stands for."""

    mantissa: np.ndarray
    exponent: np.ndarray
    roundings: int

    @property
    def rel_err(self) -> float:
        return relative_error_bound(self.roundings)

    def log(self) -> np.ndarray:
        """ln of the computed values (float, for display and plots; −inf for zeros)."""
        with np.errstate(divide="ignore"):
            return np.log(self.mantissa) + self.exponent * math.log(2)

    def normalised(self) -> "Scaled":
        """The same values with mantissas in [½, 1) (exact: powers of two only)."""
        m, e = np.frexp(self.mantissa)
        return Scaled(m, self.exponent + e, self.roundings)

    def prod(self, axis: int) -> "Scaled":
        """Π over ``axis`` (mantissas normalised to [½, 1) first, in chunks of 512 so that no partial
        product underflows): n − 1 roundings."""
        x = self.normalised()
        m = np.moveaxis(x.mantissa, axis, -1)
        e = np.moveaxis(x.exponent, axis, -1).sum(axis=-1)
        n = m.shape[-1]
        out = np.ones(m.shape[:-1])
        for lo in range(0, n, 512):
            part = np.prod(m[..., lo:lo + 512], axis=-1)
            fr, ex = np.frexp(out * part)
            out, e = fr, e + ex
        return Scaled(out, e, n * x.roundings + max(n - 1, 0) + (n + 511) // 512)

    def sum(self, axis: int) -> "Scaled":
        """Σ over ``axis``: exponents aligned to the largest (exact ldexp), then summed (n − 1 roundings)."""
        x = self.normalised()
        n = x.mantissa.shape[axis]
        top = np.max(np.where(x.mantissa > 0, x.exponent, np.iinfo(np.int64).min // 2), axis=axis, keepdims=True)
        top = np.where(top < np.iinfo(np.int64).min // 4, 0, top)
        aligned = np.ldexp(x.mantissa, np.clip(x.exponent - top, -2000, 0).astype(np.int32))
        return Scaled(aligned.sum(axis=axis), np.squeeze(top, axis=axis), x.roundings + max(n - 1, 0))

    def __mul__(self, other: "Scaled") -> "Scaled":
        a, b = self.normalised(), other.normalised()  # mantissas in [1/2, 1): the product cannot underflow
        return Scaled(a.mantissa * b.mantissa, a.exponent + b.exponent, a.roundings + b.roundings + 1)

    def scale_exact(self, mantissa: np.ndarray) -> "Scaled":
        """Multiply by exactly representable factors (0/1 masks, powers of two): no rounding."""
        return Scaled(self.mantissa * mantissa, self.exponent, self.roundings)

    def __getitem__(self, index: Any) -> "Scaled":  # any numpy index
        return Scaled(self.mantissa[index], self.exponent[index], self.roundings)


def scaled_constant(value: Fraction, shape: tuple[int, ...] = ()) -> Scaled:
    """A positive rational as a Scaled value (one rounding: the float image of its mantissa)."""
    value = Fraction(value)
    if value <= 0:
        raise OutsideDomain(f"scaled_constant needs a positive rational, got {value}")
    e = value.numerator.bit_length() - value.denominator.bit_length()
    m = float(value / Fraction(2) ** e)
    exact = Fraction(m) == value / Fraction(2) ** e
    return Scaled(np.full(shape, m), np.full(shape, e, dtype=np.int64), 0 if exact else 1)


class ForwardTables:
    """Precomputed float blocks of a :class:`MixtureHMM` for a chosen list of concepts.

    ``blocks[a, b, c]`` is the W × W block K_c[states(a), states(b)] (zero-padded), ``predictive[a, c]``
    the W × vocab matrix Σ_{h': emit(h') = y} K_c[states(a)_i, h'].  Memory: vocab² · C · W² floats.
    """

    def __init__(self, hmm: MixtureHMM, concepts: Sequence[int]) -> None:
        self.hmm = hmm
        self.concepts = tuple(concepts)
        H, W, Vt = hmm.n_hidden, hmm.width, hmm.vocab_size
        self.width = W
        states = np.full((Vt, W), H, dtype=np.int64)
        for tok, hs in enumerate(hmm.states_of):
            states[tok, : len(hs)] = hs
        self.states = states
        self.valid = (states < H).astype(np.float64)
        props = np.where(states < H, states % hmm.n_properties, -1)
        self.state_property = props
        kp = np.zeros((len(self.concepts), H + 1, H + 1))
        kp[:, :H, :H] = hmm.kernels[list(self.concepts)]
        blocks = kp[:, states[:, None, :, None], states[None, :, None, :]]  # (C, Vt, Vt, W, W)
        self.blocks = np.ascontiguousarray(blocks.transpose(1, 2, 0, 3, 4))
        self._pair_blocks = self.blocks.reshape(Vt * Vt, len(self.concepts), W, W)
        agg = np.zeros((H + 1, Vt))
        agg[np.arange(H), hmm.emit] = 1.0
        pred = kp @ agg  # (C, H+1, Vt): sums of at most W nonzero products with 0/1
        self.predictive = np.ascontiguousarray(pred[:, states, :].transpose(1, 0, 2, 3))  # (Vt, C, W, Vt)
        # Rounding counts: a block entry is fl(fl(E)·fl(T)) (3); a predictive entry adds a sum of ≤ W.
        self.block_roundings = 3
        self.predictive_roundings = 3 + (W - 1)
        # Strictly positive K: s steps after a rescale (max entry ≥ ½) every entry on the support is
        # ≥ ½·K_min^s and every product ≥ ½·K_min^(s+1), all normal floats while (s + 1)·log2(1/K_min)
        # ≤ 1000; values grow by at most W per step, so no overflow either.  With zeros in K we rescale
        # every step and check the smallest entry instead.
        # With zeros in K, entries are rescaled every step and must stay ≥ 2^-500 (so every product
        # with a block entry ≥ 2^-450 is ≥ 2^-950, still normal), else FloatBoundViolated.
        if hmm.min_positive_kernel < 2.0**-450:
            raise FloatBoundViolated(f"a transition probability {hmm.min_positive_kernel:.3g} is below 2^-450: "
                                     "the float forward's error bound does not cover it")
        self.underflow_free = hmm.strictly_positive
        if self.underflow_free:
            bits = -math.log2(hmm.min_positive_kernel)
            self.rescale_every = max(1, min(16, int(1000 // max(bits, 1.0)) - 1))
        else:
            self.rescale_every = 1

    @property
    def step_roundings(self) -> int:
        """Roundings one forward step adds to every term: block entry, product, sum of W terms."""
        return self.block_roundings + 1 + (self.width - 1)

    def start(self, first_tokens: np.ndarray, start_property: np.ndarray | None = None) -> np.ndarray:
        """α₀ (B, C, W): 1 on the states emitting the first token (uniform start; its factor 1/H is
        the caller's exact constant), restricted to property ``start_property[b]`` when given."""
        v = self.valid[first_tokens]
        if start_property is not None:
            v = v * (self.state_property[first_tokens] == start_property[:, None])
        return np.repeat(v[:, None, :], len(self.concepts), axis=1)

    @overload
    def run(self, tokens: np.ndarray, alpha0: "np.ndarray | Scaled", keep: tuple[()] = (), chunk: int = 512) -> "Scaled": ...
    @overload
    def run(self, tokens: np.ndarray, alpha0: "np.ndarray | Scaled", keep: Sequence[int],
            chunk: int = 512) -> "Scaled | tuple[Scaled, dict[int, Scaled]]": ...
    def run(self, tokens: np.ndarray, alpha0: "np.ndarray | Scaled", keep: Sequence[int] = (),
            chunk: int = 512) -> "Scaled | tuple[Scaled, dict[int, Scaled]]":
        """Forward over ``tokens`` (B, L) from α₀ (B, C, W): exact small values, or a Scaled state from
        an earlier run (continuing it; α₀ must then already include ``tokens[:, 0]``'s emission).

        Returns α after the last token as Scaled (B, C, W) — the joint mass of the tokens and the last
        hidden state, per concept, before the caller's constant factors — and, when ``keep`` names
        token positions t, also {t: α after token t}.
        """
        tokens = np.asarray(tokens, dtype=np.int64)
        B, L = tokens.shape
        if isinstance(alpha0, Scaled):
            row = _aligned_rows(alpha0)
            _, ex = np.frexp(row.mantissa.max(axis=2))  # start from a rescaled state (exact)
            mant = np.ldexp(row.mantissa, -ex[..., None])
            expo = row.exponent[..., 0] + ex
            base = row.roundings
        else:
            mant = np.array(alpha0, dtype=np.float64, copy=True)
            expo = np.zeros(mant.shape[:2], dtype=np.int64)
            base = 0
        keep = sorted(set(int(t) for t in keep))
        for t in keep:
            if not 0 <= t < L:
                raise InvalidPrompt(f"snapshot position {t} is outside 0..{L - 1}")
        kept_m = {t: np.empty_like(mant) for t in keep}
        kept_e = {t: np.empty_like(expo) for t in keep}
        check = not self.underflow_free
        for lo in range(0, B, chunk):
            hi = min(B, lo + chunk)
            a, e = mant[lo:hi], expo[lo:hi]
            if 0 in kept_m:
                kept_m[0][lo:hi], kept_e[0][lo:hi] = a, e
            pairs = tokens[lo:hi, :-1] * self.hmm.vocab_size + tokens[lo:hi, 1:]
            for t in range(L - 1):
                blk = np.take(self._pair_blocks, pairs[:, t], axis=0)  # (b, C, W, W)
                a = np.matmul(a[..., None, :], blk)[..., 0, :]
                if (t + 1) % self.rescale_every == 0 or t == L - 2 or (t + 1) in kept_m:
                    _, ex = np.frexp(a.max(axis=2))
                    a = np.ldexp(a, -ex[..., None])
                    e = e + ex
                if check:
                    pos = a[a > 0]
                    if pos.size and pos.min() < 2.0**-500:
                        raise FloatBoundViolated(f"forward entry {pos.min():.3g} is near underflow at step {t}")
                if (t + 1) in kept_m:
                    kept_m[t + 1][lo:hi], kept_e[t + 1][lo:hi] = a, e
            mant[lo:hi], expo[lo:hi] = a, e
        def full(e: np.ndarray) -> np.ndarray:
            return np.repeat(e[..., None], mant.shape[2], axis=2)

        final = Scaled(mant, full(expo), base + (L - 1) * self.step_roundings)
        if not keep:
            return final
        return final, {t: Scaled(kept_m[t], full(kept_e[t]), base + t * self.step_roundings) for t in keep}

    def next_token_masses(self, alpha: Scaled, last_tokens: np.ndarray) -> Scaled:
        """Σ_h α(h) Σ_{h': emit(h') = y} K_c[h, h'] for every y: Scaled (B, C, vocab)."""
        pred = self.predictive[np.asarray(last_tokens, dtype=np.int64)]  # (B, C, W, Vt)
        row = _aligned_rows(alpha)
        out = np.einsum("bci,bciy->bcy", row.mantissa, pred)
        expo = np.repeat(row.exponent[..., :1], out.shape[2], axis=2)
        return Scaled(out, expo, row.roundings + self.predictive_roundings + 1 + (self.width - 1))


def _aligned_rows(alpha: Scaled) -> Scaled:
    """α (B, C, W) with one exponent per (B, C) row: mantissas shifted to the row's largest exponent
    (exact for the forward's own output, whose rows share an exponent; otherwise tiny entries may be
    flushed, which the 2⁻⁹⁰⁰ slack covers)."""
    e = alpha.exponent
    top = e.max(axis=2, keepdims=True)
    if np.array_equal(e, np.broadcast_to(top, e.shape)):
        return alpha
    m = np.ldexp(alpha.mantissa, np.clip(e - top, -2000, 0).astype(np.int32))
    return Scaled(m, np.broadcast_to(top, e.shape).copy(), alpha.roundings)


# ---- exact paths --------------------------------------------------------------------------------------
def exact_forward(hmm: MixtureHMM, concept: int, tokens: Sequence[int], start: Sequence[Fraction] | None = None) -> list[Fraction]:
    """α over all H hidden states after ``tokens``, in Fractions: α(h) = P(tokens, last state h | concept)
    with the uniform start (or ``start``, a length-H vector).  Tiny instances only."""
    H = hmm.n_hidden
    emit = hmm.emit.tolist()
    init = [Fraction(1, H)] * H if start is None else [Fraction(x) for x in start]
    if not tokens:
        return init
    alpha = [init[h] if emit[h] == tokens[0] else Fraction(0) for h in range(H)]
    for tok in tokens[1:]:
        nxt = [Fraction(0)] * H
        targets = [h2 for h2 in range(H) if emit[h2] == tok]
        for h, a in enumerate(alpha):
            if a:
                for h2 in targets:
                    nxt[h2] += a * hmm.transition(concept, h, h2)
        alpha = nxt
    return alpha


def exact_prefix_probability(hmm: MixtureHMM, tokens: Sequence[int], concepts: Sequence[int] | None = None) -> Fraction:
    """P(u) under the uniform mixture of ``concepts`` (default: the pretraining concepts), exactly."""
    cs = hmm.pretrain_concepts if concepts is None else tuple(concepts)
    return sum((sum(exact_forward(hmm, c, tokens), Fraction(0)) for c in cs), Fraction(0)) / len(cs)


def exact_next_token_masses(hmm: MixtureHMM, tokens: Sequence[int], concepts: Sequence[int] | None = None) -> list[Fraction]:
    """[P(u y) for y in the vocabulary] under the uniform mixture, exactly (u = ``tokens``)."""
    cs = hmm.pretrain_concepts if concepts is None else tuple(concepts)
    out = [Fraction(0)] * hmm.vocab_size
    emit = hmm.emit.tolist()
    for c in cs:
        if not tokens:
            for h in range(hmm.n_hidden):
                out[emit[h]] += Fraction(1, hmm.n_hidden * len(cs))
            continue
        alpha = exact_forward(hmm, c, tokens)
        for h, a in enumerate(alpha):
            if a:
                for h2 in range(hmm.n_hidden):
                    out[emit[h2]] += a * hmm.transition(c, h, h2) / len(cs)
    return out


def brute_force_prefix_probability(hmm: MixtureHMM, tokens: Sequence[int], concept: int) -> Fraction:
    """Σ over every hidden path of the path's probability times its emissions: the definition of
    P(u | concept), by enumeration (H^|u| paths; tests only)."""
    H = hmm.n_hidden
    emit = hmm.emit.tolist()
    total = Fraction(0)
    for path in itertools.product(range(H), repeat=len(tokens)):
        if any(emit[h] != t for h, t in zip(path, tokens)):
            continue
        p = Fraction(1, H)
        for h, h2 in zip(path, path[1:]):
            p *= hmm.transition(concept, h, h2)
        total += p
    return total
