"""Witnesses of ε-non-identifiability and their checking into certificates (docs/theory.md §3).

A witness is (P, Q₁, Q₂, φ, ε, Δ).  :func:`check_witness` computes KL(P ‖ Qᵢ) exactly (or bracketed
for infinite P), evaluates φ exactly (or bracketed), and returns a :class:`Certificate`:

* ``verified``  — both KLs are certified ≤ ε and |φ(Q₁) − φ(Q₂)| is certified ≥ Δ;
* ``falsified`` — some KL is certified > ε (the reason names the support prefix that contributes
  most), or the gap is certified < Δ;
* ``unknown``   — the brackets do not decide, or an exact KL would exceed its work budget
  (:class:`~theory.exact.ExactBudget`; the reason names it).

Both models are held as :func:`~theory.models.validated` memos, so the KL and the property read the
same validated rows.  A property value that is not an exact number or a rational bracket (NaN,
None, a float, a bool) is refused with :class:`~theory.errors.InvalidProperty`, never turned into a
verdict.  A KL tail bound beyond ``depth`` is recorded in the certificate's assumptions with its
value: as closed by construction when :func:`~theory.models.copies_support` proves it, else as the
caller's.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable

from theory.certificate import Certificate, Status, library_versions
from theory.data import DataDistribution
from theory.errors import BudgetExceeded, InvalidBudget, InvalidProperty, InvalidWitness
from theory.exact import FractionInterval, LogCombination, LogInterval
from theory.losses import LossValue, kl_contributions, kl_divergence
from theory.models import ARModel, copies_support, validated
from theory.validation import check_int, check_type

PropertyValue = Fraction | FractionInterval


@dataclass(frozen=True)
class Witness:
    """A claimed witness.  ``prop`` maps a model to a Fraction or FractionInterval; ``depth`` and
    ``kl_tail_bounds`` are needed only for infinite-support P.  ``q1``/``q2`` are stored as their
    :func:`~theory.models.validated` memos.

    Raises:
        InvalidWitness: a non-string name, claim or property name, ε < 0 or Δ ≤ 0 (or not exact numbers),
        or tail bounds that are not a pair of LogCombination-or-None.  InvalidBudget: a bad depth.
        InvalidModel: q1 or q2 is not an AR model.  InvalidProperty: ``prop`` is not callable.
    """

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
            check_type(getattr(self, name), f"witness {name}", str, error=InvalidWitness)
        eps, delta = _exact(self.epsilon, "epsilon"), _exact(self.delta, "delta")
        if eps < 0:
            raise InvalidWitness(f"epsilon {eps} is negative")
        if delta <= 0:
            raise InvalidWitness(f"delta {delta} must be positive")
        if self.depth is not None:
            check_int(self.depth, "depth", minimum=0, error=InvalidBudget)
        if not callable(self.prop):
            raise InvalidProperty(f"property {self.property_name!r} is {self.prop!r}, not a callable of a model")
        tails = self.kl_tail_bounds
        if not isinstance(tails, (tuple, list)) or len(tails) != 2 or \
                not all(t is None or type(t) is LogCombination for t in tails):
            raise InvalidWitness(f"kl_tail_bounds {tails!r} must be a pair of LogCombination or None")
        object.__setattr__(self, "kl_tail_bounds", tuple(tails))
        object.__setattr__(self, "epsilon", eps)
        object.__setattr__(self, "delta", delta)
        object.__setattr__(self, "q1", validated(self.q1))
        object.__setattr__(self, "q2", validated(self.q2))


def _approx(x: Fraction) -> float:
    """``float(x)``, or ±inf for a rational beyond float range (for display only)."""
    try:
        return float(x)
    except OverflowError:
        return float("inf") if x > 0 else float("-inf")


def _exact(value: object, what: str) -> Fraction:
    """``Fraction(value)``, with a typed error for what it refuses (junk, NaN, infinities, x/0)."""
    if isinstance(value, bool):
        raise InvalidWitness(f"{what} {value!r} is a bool, not a number")
    try:
        return Fraction(value)  # type: ignore[call-overload]  # any other type is refused just below
    except (TypeError, ValueError, OverflowError, ZeroDivisionError):
        raise InvalidWitness(f"{what} {value!r} is not a finite exact number") from None


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
    try:
        contributions = kl_contributions(w.data, model, w.depth)
    except BudgetExceeded:  # the verdict stands; only the pointer to the prefix is lost
        return ""
    if not contributions:
        return ""
    def key(item: tuple[str, LogCombination]) -> float:
        return float(item[1])
    u, v = max(contributions.items(), key=key)
    return f"; largest contribution at support prefix {u!r} (P(u)·KL = {float(v):.3g} nats)"


def property_value(w: Witness, value: object, which: str) -> PropertyValue:
    """``value`` = φ(``which``) as an exact Fraction or a FractionInterval with Fraction endpoints.

    Raises:
        InvalidProperty: NaN, None, a float, a bool, a string, anything else, naming the property
        and the value (a verdict must not rest on it).
    """
    if isinstance(value, FractionInterval):
        lo, hi = value.lo, value.hi
        if type(lo) is Fraction and type(hi) is Fraction and lo <= hi:
            return FractionInterval(lo, hi)
    elif type(value) is Fraction:
        return value
    elif isinstance(value, numbers.Rational) and not isinstance(value, bool):
        return Fraction(int(value.numerator), int(value.denominator))
    raise InvalidProperty(f"property {w.property_name!r} returned {value!r} ({type(value).__name__}) for {which}: "
                          "not an exact rational number or a FractionInterval of rationals")


def _kl(w: Witness, q: ARModel, tail: LogCombination | None) -> tuple[LossValue | None, str]:
    """KL(P ‖ q) for the witness, or (None, why) when the exact arithmetic exceeds its budget."""
    try:
        return kl_divergence(w.data, q, w.depth, tail), ""
    except BudgetExceeded as e:
        return None, str(e)


def _tail_assumptions(w: Witness, models: tuple[ARModel, ARModel]) -> list[str]:
    """One line per KL tail bound that the verdict uses, with its value and who vouches for it."""
    if w.data.is_finite:
        return []
    out = []
    for i, (q, tail) in enumerate(zip(models, w.kl_tail_bounds), 1):
        if tail is None:
            continue
        if tail.is_zero and copies_support(q, w.data):
            out.append(f"KL(P || Q{i}) beyond depth {w.depth} is 0 by construction: Q{i} is a library-built "
                       "SupportExtension of P, patched only off the support")
        else:
            out.append(f"KL(P || Q{i}) beyond depth {w.depth} is at most the caller-supplied bound {tail} "
                       f"(~{float(tail):.6g} nats), assumed, not checked")
    return out


def check_witness(w: Witness) -> Certificate:
    """Check ``w`` exactly and return its certificate (never raises on a wrong witness: that is a
    ``falsified`` certificate; a KL over its exact work budget is ``unknown``).

    Raises:
        InvalidProperty: the property returned NaN, None, a float, a bool or another non-number.
        InvalidModel, InvalidDistribution: a model is not one, or gave an invalid row.
    """
    models = (validated(w.q1), validated(w.q2))
    computed = [_kl(w, q, tb) for q, tb in zip(models, w.kl_tail_bounds)]
    kls = [k for k, _ in computed]
    values = [property_value(w, w.prop(q), f"Q{i}") for i, q in enumerate(models, 1)]
    gap = property_gap(*values)
    within = [None if k is None else kl_within(k, w.epsilon) for k in kls]
    exact_kl = all(isinstance(k, LogCombination) for k in kls)
    method = "exact" if exact_kl and all(not isinstance(v, FractionInterval) or v.exact for v in values) else "bound"

    reasons: list[str] = []
    status = Status.VERIFIED
    for i, ok in enumerate(within, 1):
        if ok is False:
            status = Status.FALSIFIED
            reasons.append(f"KL(P || Q{i}) exceeds epsilon = {w.epsilon}" + _worst_prefix(w, models[i - 1]))
        elif ok is None and status is not Status.FALSIFIED:
            status = Status.UNKNOWN
            why = computed[i - 1][1]
            reasons.append(f"KL(P || Q{i}) not computed: {why}" if why
                           else f"KL(P || Q{i}) <= {w.epsilon} could not be decided")
    if gap.hi < w.delta:
        status = Status.FALSIFIED
        reasons.append(f"property gap |phi(Q1) - phi(Q2)| <= {gap.hi} < delta = {w.delta}")
    elif gap.lo < w.delta and status is not Status.FALSIFIED:
        status = Status.UNKNOWN
        reasons.append(f"property gap lies in [{gap.lo}, {gap.hi}], not certified >= delta = {w.delta}")

    def show(k: LossValue | None) -> str:
        if k is None:
            return "?"
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
        assumptions=("probabilities are exact rationals; logarithms are compared exactly or by rigorous intervals",
                     *_tail_assumptions(w, models)),
        versions=library_versions("mpmath"),
    )
