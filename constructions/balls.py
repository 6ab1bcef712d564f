"""Midpoint–radius interval arithmetic ("balls") on torch float64 tensors, rounded outward.

A :class:`Ball` ``(m, r)`` stands for every real tensor ``x`` with ``|x − m| ≤ r`` elementwise.  Every
operation here returns a ball that contains the exact real result for *every* real input inside the
argument balls — whatever order the underlying kernels sum in, on any device.  What is assumed (and
nothing else): the device's float64 ``+ − × ÷ √`` are IEEE-754 binary64 operations rounded to nearest
(an error of at most half an ulp of the result; one ulp is tolerated too: every bound below is nudged
up by :func:`torch.nextafter`), and a matrix product computes each entry as *some* sum of the ``n``
products, each operation so rounded (FMA allowed).  No transcendental library function is trusted:
``exp``, ``log``, ``erf`` are computed from those five operations with explicit error bounds.

Where the bounds come from (u = 2⁻⁵³, γₙ = nu/(1 − nu), Higham, *Accuracy and Stability of Numerical
Algorithms*, §2–§3; Rump, "Fast and parallel interval arithmetic", BIT 39, 1999):

* one rounded operation: |fl(x ∘ y) − x ∘ y| ≤ u·|fl(x ∘ y)| for normal results, ≤ η/2 (η = 2⁻¹⁰⁷⁴) for
  subnormal ones;
* a sum or dot product of n terms, in any order: |fl(Σ) − Σ| ≤ γₙ Σ|terms| (+ n·η/2 for underflow);
* so the product of balls ⟨A, R_A⟩⟨B, R_B⟩ lies in ⟨fl(AB), |A|(R_B + γₙ|B|) + R_A(|B| + R_B)⟩ — the
  radius itself computed in floats and inflated by :func:`_upper`, which turns the floating-point value
  of a non-negative expression of at most k roundings into a true upper bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch

U = 2.0 ** -53
"""Unit roundoff of binary64."""
TINY = 2.0 ** -1000
"""Added to every radius: covers the absolute (subnormal) rounding errors, at most a few η = 2⁻¹⁰⁷⁴ each."""
_F64 = torch.float64


def gamma(n: int) -> float:
    """γₙ = nu/(1 − nu), rounded up (n < 2⁴⁰)."""
    return math.nextafter(n * U / (1.0 - n * U), math.inf)


def _upper(r: torch.Tensor, k: int) -> torch.Tensor:
    """A true upper bound of the exact value of a non-negative expression whose float value is ``r``,
    computed with at most ``k`` rounded operations on non-negative numbers.

    Each rounding loses at most a factor (1 − u) (and η/2 when subnormal), so the exact value is at
    most r·(1 − u)⁻ᵏ + k·η ≤ r·(1 + (2k + 4)u) + TINY.  The product with c = 1 + (2k + 8)u rounds to
    nearest, losing at most a factor (1 − u), which the two extra u's cover; adding TINY > 0 then
    rounds to a float ≥ the sum's first term.  So two operations give the bound.  NaN stays NaN (and
    fails every later test), +∞ stays +∞."""
    c = 1.0 + (2 * k + 8) * U  # exact: a small integer times a power of two, plus one
    return (r * c).add_(TINY)


def _upper_(r: torch.Tensor, k: int) -> torch.Tensor:
    """:func:`_upper` in place, for a temporary ``r`` that nothing else holds."""
    return r.mul_(1.0 + (2 * k + 8) * U).add_(TINY)


@lru_cache(maxsize=None)
def _inf_on(device: torch.device, sign: float) -> torch.Tensor:
    return torch.tensor(sign * math.inf, dtype=_F64, device=device)


def _inf(x: torch.Tensor, sign: float) -> torch.Tensor:
    """±∞ as a 0-d tensor on x's device (nextafter broadcasts it)."""
    return _inf_on(x.device, sign)


def _up(x: torch.Tensor) -> torch.Tensor:
    return torch.nextafter(x, _inf(x, 1.0))


def _down(x: torch.Tensor) -> torch.Tensor:
    return torch.nextafter(x, _inf(x, -1.0))


@dataclass(frozen=True)
class Ball:
    """The real tensors within ``r`` of ``m`` (same shape, float64, same device, ``r ≥ 0``)."""

    m: torch.Tensor
    r: torch.Tensor

    # -- construction --------------------------------------------------------------------------------
    @staticmethod
    def exact(x: torch.Tensor) -> "Ball":
        """The point ``x`` (its float64 values are taken as exact reals; float32 widens exactly)."""
        m = x.detach().to(_F64)
        return Ball(m, torch.zeros_like(m))

    @staticmethod
    def from_bounds(lo: torch.Tensor, hi: torch.Tensor) -> "Ball":
        """The smallest representable ball containing [lo, hi] (``lo ≤ hi``, both true bounds)."""
        m = 0.5 * lo + 0.5 * hi  # no overflow; halving is exact for normal numbers, TINY covers subnormals
        r = torch.maximum(_up(hi - m), _up(m - lo))
        return Ball(m, _upper(r, 1))

    @property
    def lo(self) -> torch.Tensor:
        """A true lower bound, elementwise."""
        return _down(self.m - self.r)

    @property
    def hi(self) -> torch.Tensor:
        """A true upper bound, elementwise."""
        return _up(self.m + self.r)

    @property
    def shape(self) -> torch.Size:
        return self.m.shape

    def __getitem__(self, index) -> "Ball":
        return Ball(self.m[index], self.r[index])

    def reshape(self, *shape: int) -> "Ball":
        return Ball(self.m.reshape(*shape), self.r.reshape(*shape))

    def transpose(self, a: int, b: int) -> "Ball":
        return Ball(self.m.transpose(a, b), self.r.transpose(a, b))

    def where(self, keep: torch.Tensor, other: "Ball") -> "Ball":
        return Ball(torch.where(keep, self.m, other.m), torch.where(keep, self.r, other.r))

    # -- the field operations -----------------------------------------------------------------------
    def __add__(self, other: "Ball") -> "Ball":
        m = self.m + other.m
        return Ball(m, _upper_(torch.add(self.r + other.r, m.abs(), alpha=U), 3))

    def __neg__(self) -> "Ball":
        return Ball(-self.m, self.r)

    def __sub__(self, other: "Ball") -> "Ball":
        return self + (-other)

    def add_exact(self, c: torch.Tensor | float) -> "Ball":
        """self + c for an exact float (tensor) c."""
        m = self.m + c
        return Ball(m, _upper_(torch.add(self.r, m.abs(), alpha=U), 2))

    def __mul__(self, other: "Ball") -> "Ball":
        m = self.m * other.m
        r = torch.addcmul(torch.add(self.m.abs() * other.r, m.abs(), alpha=U), self.r, other.m.abs() + other.r)
        return Ball(m, _upper_(r, 6))

    def mul_exact(self, c: torch.Tensor | float) -> "Ball":
        """self · c for an exact float (tensor) c."""
        m = self.m * c
        ac = c.abs() if isinstance(c, torch.Tensor) else abs(c)
        return Ball(m, _upper_(torch.add(self.r * ac, m.abs(), alpha=U), 3))

    def reciprocal(self) -> "Ball":
        """1/x, for balls that do not contain 0 (elsewhere the radius is +∞)."""
        lo, hi = self.lo, self.hi
        pos, neg = lo > 0, hi < 0
        a = torch.where(pos, _down(1.0 / hi), torch.where(neg, _down(1.0 / hi), torch.full_like(lo, -math.inf)))
        b = torch.where(pos, _up(1.0 / lo), torch.where(neg, _up(1.0 / lo), torch.full_like(lo, math.inf)))
        out = Ball.from_bounds(torch.where(pos | neg, a, torch.zeros_like(a)), torch.where(pos | neg, b, torch.zeros_like(b)))
        return Ball(out.m, torch.where(pos | neg, out.r, torch.full_like(out.r, math.inf)))

    def __truediv__(self, other: "Ball") -> "Ball":
        return self * other.reciprocal()

    def square(self) -> "Ball":
        a = self.m.abs()
        m = self.m * self.m
        return Ball(m, _upper(2.0 * a * self.r + self.r * self.r + U * m, 5))

    # -- reductions and products ---------------------------------------------------------------------
    def sum(self, dim: int, keepdim: bool = False) -> "Ball":
        n = self.m.shape[dim]
        m = self.m.sum(dim, keepdim=keepdim)
        r = self.r.sum(dim, keepdim=keepdim) + gamma(max(n - 1, 1)) * self.m.abs().sum(dim, keepdim=keepdim)
        return Ball(m, _upper(r, n + 3))

    def matmul_exact(self, w: torch.Tensor, w_abs: torch.Tensor | None = None) -> "Ball":
        """self @ w for an exact matrix ``w`` (k, j); ``w_abs`` = |w| if precomputed."""
        k = w.shape[0]
        m = self.m @ w
        aw = w.abs() if w_abs is None else w_abs
        r = torch.add(self.r, self.m.abs(), alpha=gamma(k)) @ aw
        return Ball(m, _upper_(r, k + 3))

    def matmul(self, other: "Ball") -> "Ball":
        """self @ other for two balls (batched like ``torch.matmul``)."""
        k = self.m.shape[-1]
        m = self.m @ other.m
        left = torch.cat([self.m.abs(), self.r], dim=-1)
        right = torch.cat([other.r + gamma(k) * other.m.abs(), other.m.abs() + other.r], dim=-2)
        return Ball(m, _upper_(left @ right, 2 * k + 4))


# ---- elementary functions ----------------------------------------------------------------------------
@lru_cache(maxsize=None)
def _constants() -> dict[str, Any]:  # balls (mid, radius) and plain floats
    """Balls (midpoint, radius) of the constants, from mpmath at 200 bits, rounded outward."""
    import mpmath

    with mpmath.workprec(200):
        def ball(x) -> tuple[float, float]:
            mid = float(x)
            return mid, math.nextafter(float(abs(x - mpmath.mpf(mid))) * (1 + 2 ** -50), math.inf) + 2.0 ** -1070

        l16 = mpmath.log(2) / 16
        # Cody–Waite: L_HI keeps 32 significant bits, so k·L_HI is exact for every integer |k| < 2**21
        e = math.frexp(float(l16))[1]
        l_hi = math.floor(float(l16) * 2.0 ** (32 - e)) / 2.0 ** (32 - e)
        return {
            "l_hi": l_hi, "l_lo": ball(l16 - mpmath.mpf(l_hi)), "inv_l": float(1 / l16),
            "pow2_16": tuple(ball(mpmath.power(2, mpmath.mpf(j) / 16)) for j in range(16)),
            "ln2": ball(mpmath.log(2)), "two_over_sqrt_pi": ball(2 / mpmath.sqrt(mpmath.pi)),
            "inv_sqrt2": ball(1 / mpmath.sqrt(2)),
            "exp_coeffs": tuple(float(1 / mpmath.factorial(i)) for i in range(10)),
            "log_coeffs": tuple(float(mpmath.mpf(1) / (2 * i + 1)) for i in range(11)),
        }


def _pow2(e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Two exact powers of two whose product is 2**e, for integer tensors |e| ≤ 2044 (each factor normal)."""
    e = e.to(torch.int64)
    a = torch.div(e, 2, rounding_mode="floor")
    b = e - a

    def p(k: torch.Tensor) -> torch.Tensor:
        return ((k.clamp(-1022, 1023) + 1023) << 52).view(_F64)

    return p(a), p(b)


def _exp_point(x: torch.Tensor) -> Ball:
    """A ball containing exp(x) for the float64 tensor x (every element taken as an exact real).

    exp(x) = 2^(k div 16) · 2^((k mod 16)/16) · exp(y), y = x − k·ln2/16, |y| ≤ 0.0217, with
    exp(y) by a degree-9 Taylor polynomial: Horner error ≤ γ₁₈·e^|y|, coefficient rounding ≤ u·e^|y|,
    truncation ≤ |y|¹⁰/10!·e^|y| < 1e−23, and the reduced argument's own error times e^|y|."""
    c = _constants()
    finite = torch.isfinite(x)
    xs = torch.where(finite, x, torch.zeros_like(x)).clamp(-760.0, 720.0)
    k = torch.round(xs * c["inv_l"])
    y0 = xs - k * c["l_hi"]  # k·L_HI exact (Cody–Waite); the subtraction rounds once
    lo_m, lo_r = c["l_lo"]
    y = y0 - k * lo_m
    y_r = _upper(U * y0.abs() + k.abs() * lo_r + U * (k * lo_m).abs() + U * y.abs(), 8)
    ay = y.abs() + y_r
    ok = ay <= 0.0218
    p = torch.full_like(y, c["exp_coeffs"][9])
    for coef in reversed(c["exp_coeffs"][:9]):
        p = p * y + coef
    e_bound = 1.0223  # ≥ e^0.0218
    rad = _upper(torch.full_like(y, (gamma(18) + U) * e_bound + 1e-23) + e_bound * y_r * (1.0 + y_r), 8)
    ball = Ball(p, rad)
    j = torch.remainder(k, 16).to(torch.int64)
    t_m = torch.tensor([v[0] for v in c["pow2_16"]], dtype=_F64, device=x.device)[j]
    t_r = torch.tensor([v[1] for v in c["pow2_16"]], dtype=_F64, device=x.device)[j]
    ball = ball * Ball(t_m, t_r)
    f1, f2 = _pow2(torch.div(k, 16, rounding_mode="floor"))
    m = ball.m * f1 * f2  # exact unless the result is subnormal: TINY covers that
    r = _upper(ball.r * f1 * f2 + U * m.abs(), 4)
    # outside the reduction's range: overflow gives an unbounded ball, deep underflow [0, TINY]
    big = (x > 709.0) | (x == math.inf) | ~ok | torch.isnan(x)
    tiny = (x < -745.0) | (x == -math.inf)
    m = torch.where(tiny, torch.zeros_like(m), m)
    r = torch.where(tiny, torch.full_like(r, TINY), r)
    m = torch.where(big, torch.zeros_like(m), m)
    r = torch.where(big, torch.full_like(r, math.inf), r)
    return Ball(m, r)


def exp(x: Ball) -> Ball:
    """exp over a ball: exp(m ± r) ⊂ exp(m)·[1 − r, 1 + r + r²] for r ≤ 1 (e^r ≤ 1 + r + r² there);
    a larger radius gives an unbounded ball."""
    e = _exp_point(x.m)
    f = _upper(x.r + x.r * x.r, 2)
    f = torch.where(x.r <= 1.0, f, torch.full_like(f, math.inf))
    return e * Ball(torch.ones_like(f), f)


def _log_point(x: torch.Tensor) -> Ball:
    """A ball containing ln x for positive normal float64 x (others: unbounded).

    x = f·2^e with f ∈ [1/√2, √2); ln f = 2 atanh(s), s = (f − 1)/(f + 1), |s| ≤ 0.1716, by
    2s·Σ_{i≤10} s²ⁱ/(2i + 1): truncation < 1e−19, Horner error ≤ γ₂₀·1.011, s within 3u|s|."""
    c = _constants()
    ok = (x >= 2.0 ** -1022) & torch.isfinite(x)
    xs = torch.where(ok, x, torch.ones_like(x))
    f, e = torch.frexp(xs)  # exact: xs = f·2^e, f ∈ [0.5, 1)
    small = f < 0.7071067811865476
    f = torch.where(small, 2.0 * f, f)
    e = torch.where(small, e - 1, e).to(_F64)
    s = (f - 1.0) / (f + 1.0)  # f − 1 exact (Sterbenz); the sum and the quotient round once each
    s_r = _upper(3.0 * U * s.abs(), 2)
    t = s * s
    t_r = _upper(U * t + 2.0 * s.abs() * s_r + s_r * s_r, 6)
    g = torch.full_like(t, c["log_coeffs"][10])
    for coef in reversed(c["log_coeffs"][:10]):
        g = g * t + coef
    g_r = _upper(torch.full_like(t, (gamma(20) + U) * 1.011 + 1e-19) + 0.36 * t_r, 4)
    lnf = Ball(s, s_r) * Ball(g, g_r)
    lnf = lnf.mul_exact(2.0)
    ln2_m, ln2_r = c["ln2"]
    out = Ball(e * ln2_m, _upper(e.abs() * ln2_r + U * (e * ln2_m).abs(), 3)) + lnf
    return Ball(torch.where(ok, out.m, torch.zeros_like(out.m)), torch.where(ok, out.r, torch.full_like(out.r, math.inf)))


def log(x: Ball) -> Ball:
    """ln over a ball of positive numbers: ln(m ± r) ⊂ ln m ± (ρ + ρ²), ρ = r/m ≤ ½ (−ln(1 − ρ) ≤ ρ + ρ²
    there); a wider ball, or one reaching 0, gives an unbounded one."""
    pos = x.m > 0
    rho = _up(x.r / torch.where(pos, x.m, torch.ones_like(x.m)))
    ok = pos & (rho <= 0.5)
    rad = torch.where(ok, _upper(rho + rho * rho, 2), torch.full_like(rho, math.inf))
    return _log_point(torch.where(pos, x.m, torch.ones_like(x.m))) + Ball(torch.zeros_like(rad), rad)


def relu(x: Ball) -> Ball:
    """max(0, x): the identity where the ball is positive, 0 where it is ≤ 0, and the hull [0, hi]
    where it straddles 0 — the case that widens the result.  (m > r and r ≤ −m are exact comparisons.)"""
    pos, neg = x.m > x.r, x.r <= -x.m
    if bool(pos.all()):
        return x
    half = _upper(0.5 * _up(x.m + x.r), 1)
    zero = torch.zeros_like(x.m)
    m = torch.where(pos, x.m, torch.where(neg, zero, half))
    r = torch.where(pos, x.r, torch.where(neg, zero, half))
    return Ball(m, r)


def tanh(x: Ball) -> Ball:
    """tanh, monotone: the hull of tanh at the two ends, each by 1 − 2/(e^{2x} + 1) in balls
    (arguments clamped to ±40, where tanh is within 2e^{−80} of ±1; that slack is added)."""
    ends = []
    for end in (x.lo, x.hi):
        z = (2.0 * end.clamp(-40.0, 40.0))  # exact doubling
        e = _exp_point(z)
        t = (e.add_exact(1.0)).reciprocal().mul_exact(-2.0).add_exact(1.0)
        ends.append(Ball(t.m, _upper(t.r + 2e-34, 1)))
    return Ball.from_bounds(ends[0].lo, ends[1].hi)


def sigmoid(x: Ball) -> Ball:
    """1/(1 + e^{−x}), monotone: the hull at the two ends (arguments clamped to ±740, slack added)."""
    ends = []
    for end in (x.lo, x.hi):
        e = _exp_point(-end.clamp(-740.0, 740.0))
        s = e.add_exact(1.0).reciprocal()
        ends.append(Ball(s.m, _upper(s.r + 2.0 ** -1060, 1)))
    return Ball.from_bounds(ends[0].lo, ends[1].hi)


def _erf_point(x: torch.Tensor) -> Ball:
    """erf(x) for float64 x: (2/√π)·e^{−x²}·Σₙ 2ⁿx^{2n+1}/(2n + 1)!! (all terms of one sign, so the
    relative error of the float sum is at most (4N + 8)u) for |x| ≤ 6, and ±1 within 2.2e−17 beyond."""
    c = _constants()
    a = x.abs().clamp(max=6.0)
    t2 = 2.0 * a * a
    term = a.clone()
    total = a.clone()
    n_terms = 160  # ratio 2x²/(2n + 3) ≤ 72/323 < ¼ from n = 160 on: the tail is < term_N/3
    for n in range(1, n_terms):
        term = term * t2 / (2 * n + 1)
        total = total + term
    rel = (4 * n_terms + 8) * U
    s = Ball(total, _upper(total * rel + term, 4))
    e = _exp_point(-(a * a))  # x² rounds once: that error enters through e's argument
    arg_r = _upper(U * a * a, 1)
    e = e * Ball(torch.ones_like(arg_r), _upper(arg_r + arg_r * arg_r, 2))
    k_m, k_r = c["two_over_sqrt_pi"]
    v = s * e * Ball(torch.full_like(a, k_m), torch.full_like(a, k_r))
    big = x.abs() > 6.0
    v = Ball(torch.where(big, torch.full_like(v.m, 1.0), v.m), torch.where(big, torch.full_like(v.r, 2.2e-17), v.r))
    sign = torch.where(x < 0, -1.0, 1.0).to(_F64)
    return Ball(v.m * sign, v.r)


def gelu(x: Ball) -> Ball:
    """x·Φ(x), Φ(x) = (1 + erf(x/√2))/2 (torch's exact GELU): Φ is monotone, so Φ over the ball is
    the hull of Φ at its ends, and x·Φ(x) ∈ ball(x)·hull."""
    c = _constants()
    k_m, k_r = c["inv_sqrt2"]
    ends = []
    for end in (x.lo, x.hi):
        z = Ball(end, torch.zeros_like(end)) * Ball(torch.full_like(end, k_m), torch.full_like(end, k_r))
        ends.append(z)
    lo_phi = _erf_point(ends[0].lo).add_exact(1.0).mul_exact(0.5)
    hi_phi = _erf_point(ends[1].hi).add_exact(1.0).mul_exact(0.5)
    phi = Ball.from_bounds(lo_phi.lo, hi_phi.hi)
    return x * phi


def rsqrt_positive(v: Ball) -> Ball:
    """1/√v for balls of positive numbers (√ and ÷ correctly rounded, each nudged outward)."""
    lo = v.lo.clamp(min=0.0)
    hi = v.hi
    a = _down(1.0 / _up(torch.sqrt(hi)))
    b = _up(1.0 / _down(torch.sqrt(lo)))
    out = Ball.from_bounds(a, b)
    return Ball(out.m, torch.where(lo > 0, out.r, torch.full_like(out.r, math.inf)))
