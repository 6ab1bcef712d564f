"""Witnesses of ε-non-identifiability and their checking into certificates (THEORY.md §3).

A witness is (P, Q₁, Q₂, φ, ε, Δ).  :func:`check_witness` computes KL(P ‖ Qᵢ) exactly (or bracketed
for infinite P), evaluates φ exactly (or bracketed), and returns a :class:`Certificate`:

* ``verified``  — both KLs are certified ≤ ε and |φ(Q₁) − φ(Q₂)| is certified ≥ Δ;
* ``falsified`` — some KL is certified > ε (the reason names the support prefix that contributes
  most), or the gap is certified < Δ;
* ``unknown``   — the brackets do not decide (the reason says which).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Callable

from theory.certificate import Certificate, Status, library_versions
from theory.data import DataDistribution
from theory.errors import InvalidBudget, NonidError
from theory.exact import FractionInterval, LogCombination, LogInterval
from theory.losses import LossValue, kl_contributions, kl_divergence
from theory.models import ARModel

PropertyValue = Fraction | FractionInterval


@dataclass(frozen=True)
class Witness:
    """A claimed witness.  ``prop`` maps a model to a Fraction or FractionInterval; ``depth`` and
    ``kl_tail_bounds`` are needed only for infinite-support P."""

    name: str
    claim: str
    data: DataDistribution
    q1: ARModel
    q2: ARModel
    prop: Callable[[ARModel], PropertyValue]
    property_name: str
    epsilon: Fraction = Fraction(0)
    delta: Fraction = Fraction(1)
    depth: int | None = None
    kl_tail_bounds: tuple[LogCombination | None, LogCombination | None] = (None, None)

    def __post_init__(self) -> None:
        for name in ("name", "claim", "property_name"):
            if not isinstance(getattr(self, name), str):
                raise NonidError(f"witness {name} {getattr(self, name)!r} is not a string")
        eps, delta = _exact(self.epsilon, "epsilon"), _exact(self.delta, "delta")
        if eps < 0:
            raise NonidError(f"epsilon {eps} is negative")
        if delta <= 0:
            raise NonidError(f"delta {delta} must be positive")
        if self.depth is not None and (isinstance(self.depth, bool) or not isinstance(self.depth, int) or self.depth < 0):
            raise InvalidBudget(f"depth {self.depth!r} must be None or an int >= 0")
        object.__setattr__(self, "epsilon", eps)
        object.__setattr__(self, "delta", delta)


def _approx(x: Fraction) -> float:
    """``float(x)``, or ±inf for a rational beyond float range (for display only)."""
    try:
        return float(x)
    except OverflowError:
        return float("inf") if x > 0 else float("-inf")


def _exact(value: object, what: str) -> Fraction:
    """``Fraction(value)``, with a typed error for what it refuses (junk, NaN, infinities, x/0)."""
    if isinstance(value, bool):
        raise NonidError(f"{what} {value!r} is a bool, not a number")
    try:
        return Fraction(value)
    except (TypeError, ValueError, OverflowError, ZeroDivisionError):
        raise NonidError(f"{what} {value!r} is not a finite exact number") from None


def kl_within(kl: LossValue, epsilon: Fraction) -> bool | None:
    """Certified KL ≤ ε: True, False, or None (undecided).  With ε = 0 the test is exact equality."""
    if isinstance(kl, LogInterval):
        hi, lo = kl_within(kl.hi, epsilon), kl_within(kl.lo, epsilon)
        if hi:
            return True
        return False if lo is False else None
    if epsilon == 0:
        return kl.is_zero
    c = kl.compare(epsilon)
    return None if c is None else c <= 0


def property_gap(v1: PropertyValue, v2: PropertyValue) -> FractionInterval:
    """The interval of possible |v1 − v2| given exact values or brackets."""
    a = v1 if isinstance(v1, FractionInterval) else FractionInterval(v1)
    b = v2 if isinstance(v2, FractionInterval) else FractionInterval(v2)
    lo = max(Fraction(0), a.lo - b.hi, b.lo - a.hi)
    hi = max(a.hi - b.lo, b.hi - a.lo)
    return FractionInterval(lo, hi)


def _worst_prefix(w: Witness, model: ARModel) -> str:
    contributions = kl_contributions(w.data, model, w.depth)
    if not contributions:
        return ""
    def key(item: tuple[str, LogCombination]) -> float:
        return float(item[1])
    u, v = max(contributions.items(), key=key)
    return f"; largest contribution at support prefix {u!r} (P(u)·KL = {float(v):.3g} nats)"


def check_witness(w: Witness) -> Certificate:
    """Check ``w`` exactly and return its certificate (never raises on a wrong witness: that is a
    ``falsified`` certificate)."""
    kls = [kl_divergence(w.data, q, w.depth, tb) for q, tb in zip((w.q1, w.q2), w.kl_tail_bounds)]
    values = [w.prop(w.q1), w.prop(w.q2)]
    gap = property_gap(*values)
    within = [kl_within(k, w.epsilon) for k in kls]
    exact_kl = all(isinstance(k, LogCombination) for k in kls)
    method = "exact" if exact_kl and all(not isinstance(v, FractionInterval) or v.exact for v in values) else "bound"

    reasons: list[str] = []
    status = Status.VERIFIED
    for i, ok in enumerate(within, 1):
        if ok is False:
            status = Status.FALSIFIED
            reasons.append(f"KL(P || Q{i}) exceeds epsilon = {w.epsilon}" + _worst_prefix(w, (w.q1, w.q2)[i - 1]))
        elif ok is None and status is not Status.FALSIFIED:
            status = Status.UNKNOWN
            reasons.append(f"KL(P || Q{i}) <= {w.epsilon} could not be decided")
    if gap.hi < w.delta:
        status = Status.FALSIFIED
        reasons.append(f"property gap |phi(Q1) - phi(Q2)| <= {gap.hi} < delta = {w.delta}")
    elif gap.lo < w.delta and status is not Status.FALSIFIED:
        status = Status.UNKNOWN
        reasons.append(f"property gap lies in [{gap.lo}, {gap.hi}], not certified >= delta = {w.delta}")

    def show(k: LossValue) -> str:
        if isinstance(k, LogInterval):
            return f"[{float(k.lo):.2g}, {float(k.hi):.2g}]"
        return "0" if k.is_zero else f"{float(k):.3g}"

    def show_v(v: PropertyValue) -> str:
        if isinstance(v, FractionInterval) and not v.exact:
            return f"[{float(v.lo):.3f}, {float(v.hi):.3f}]"
        x = v.lo if isinstance(v, FractionInterval) else v
        return f"{float(x):.3f}"

    eq = "=" if w.epsilon == 0 else "<="
    detail = f"KL {show(kls[0])}, {show(kls[1])} {eq} {_approx(w.epsilon):g}; {w.property_name} {show_v(values[0])} vs {show_v(values[1])}"
    return Certificate(
        check=w.name,
        claim=w.claim,
        status=status,
        method=method,
        detail=detail,
        reason="; ".join(reasons),
        quantities={
            "epsilon": w.epsilon,
            "delta": w.delta,
            "kl_q1": kls[0],
            "kl_q2": kls[1],
            "property": w.property_name,
            "property_q1": values[0],
            "property_q2": values[1],
            "property_gap": gap,
            "data": repr(w.data),
        },
        assumptions=("probabilities are exact rationals; logarithms are compared exactly or by rigorous intervals",),
        versions=library_versions("mpmath"),
    )
