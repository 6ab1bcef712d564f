"""The compiler's numeric knobs, in one frozen object with documented safe ranges (after ALTA)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

from theory.errors import InvalidModelConfig
from theory.validation import check_number

ZERO_LOGIT_RANGE = (1.0, 700.0)
MARGIN_RANGE = (1e-3, 1e3)


@dataclass(frozen=True)
class CompileConfig:
    """Numeric knobs of :func:`constructions.compile.compile_model`.

    Attributes:
        zero_logit: Λ, the logit floor for a token the construction gives probability 0: its logit is
            −Λ where the others are ln p.  The compiled row is then q = softmax, with
            TV(p, q) = m e^−Λ / (1 + m e^−Λ) and KL(p ‖ q) = ln(1 + m e^−Λ) ≤ m e^−Λ for m zero tokens —
            never exactly p.  Safe range [1, 700]: below ~20 the floor is visible (e^−20 ≈ 2e−9);
            above ~745 e^−Λ underflows float64 (harmless for log-probabilities, but the bound is then
            the float64 underflow, not the formula).  Default 40 (e^−40 ≈ 4.2e−18, below float64
            resolution of 1).
        margin: the pre-activation of a lookup unit is +margin on its own prefix and ≤ −margin on
            every other word (the unit's output is divided by it again).  Rounding moves a
            pre-activation by about 1e−16 × (prefix length)², so any margin in [1e−3, 1e3] is safe in
            float64.  Default 1.

    The encoding needs no attention-sharpness knob: its one attention head has identically zero
    scores, so softmax attention is an exact uniform average (module :mod:`constructions.compile.lookup`).

    Raises:
        InvalidModelConfig: a knob that is not a finite number inside its safe range.
    """

    zero_logit: float = 40.0
    margin: float = 1.0

    def __post_init__(self) -> None:
        for name, (lo, hi) in (("zero_logit", ZERO_LOGIT_RANGE), ("margin", MARGIN_RANGE)):
            v = check_number(getattr(self, name), f"compile {name} =", lo=lo, hi=hi, error=InvalidModelConfig,
                             note="its safe range")
            object.__setattr__(self, name, v)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "CompileConfig":
        extra = sorted(set(d) - {"zero_logit", "margin"})
        if extra:
            raise InvalidModelConfig(f"unknown compile config fields {extra}")
        return cls(**dict(d))
