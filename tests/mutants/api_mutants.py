"""Mutants of the Python API: objects handed to a witness that try to make it say ``verified``.

Each is an adversary's model or property, not a wrong number: a model that answers the data's row
to the loss and another to the property, a row object changed after it was read, a row over the
symbols in another order, a row summing to 1 + 2^-60 or with a negative entry, a subclass (or an
instance override) claiming to copy the support so that an infinite KL tail is closed at 0, a
property answering NaN or a bool, and a float-derived row with e^-700 probabilities whose exact
logarithm would take hours to factorise.

The shared instance is :func:`tests.oracles.ab_aab` (P uniform on {ab, aab}; ``b`` is OOD), with the
adversarial :class:`~tests.oracles.RawModel` and :class:`~tests.oracles.TwoFaced` defined there.
The two-faced mutants use φ(Q) = 2·q(a | a) − q(a | b), which reads the support prefix ``a`` as well
as the OOD prefix ``b``: honest support copies give φ = 1 − q(a | b), so a gap of 1 needs the models to
differ at ``b`` — unless a model shows the property another row at ``a`` than it showed the loss.
"""

from __future__ import annotations

from fractions import Fraction

from tests.mutants.registry import mutant, verdict
from tests.mutants.shared import check, copy, q_at_b, rule_case, witness
from tests.oracles import TINY_LOGITS, A, RawModel, TwoFaced, float_row, unchecked_row
from theory import Alphabet, NextTokenDistribution, SupportExtension, check_witness

HALF = Fraction(1, 2)


class Mutating(RawModel):
    """Hands out one row object at ``a`` and rewrites it in place when ``b`` is asked for."""

    def __init__(self, rows: dict[str, NextTokenDistribution], mutate: bool) -> None:
        super().__init__(rows, name="mutating")
        self.row_a, self.mutate = unchecked_row(HALF, HALF, 0), mutate

    def next_token(self, prefix: str) -> NextTokenDistribution:
        if prefix == "a":
            return self.row_a
        if prefix == "b" and self.mutate:
            self.row_a.probs = (Fraction(0), Fraction(1), Fraction(0))  # q(a | a) = 0 from now on
        return super().next_token(prefix)


def _b_first(q) -> Fraction:
    """φ(Q) = 2·q(a | a) − q(a | b), reading ``b`` before ``a``."""
    at_b = q.next_token("b").prob("a")
    return 2 * q.next_token("a").prob("a") - at_b


def _two_faced_witness(q2) -> str:
    from dataclasses import replace

    q1 = RawModel({"b": unchecked_row(1, 0, 0)}, name="Q1")
    return check(replace(witness(q1=q1, q2=q2), prop=_b_first, property_name="2 q(a|a) - q(a|b)"))


@mutant("stateful-model-second-answer", "model", "falsified")
def _stateful(mutate: bool) -> str:
    """Q2 answers p(.|a) at the support prefix 'a' on the first call (the loss) and (0, 1) after (the
    property), and copies Q1 at 'b': read once, Q2 is Q1 and the property gap is 0, not 1."""
    if not mutate:
        return _two_faced_witness(RawModel({}, name="Q2"))
    return _two_faced_witness(TwoFaced(unchecked_row(0, 1, 0), {"b": unchecked_row(1, 0, 0)}))


@mutant("row-mutated-after-validation", "model", "falsified")
def _mutated_row(mutate: bool) -> str:
    """Q2 copies Q1 at 'b' and rewrites its row object at 'a' in place once the property asks for 'b':
    the memo keeps its own copy, so the property sees the row the loss saw (gap 0, not 1)."""
    if not mutate:
        return _two_faced_witness(RawModel({}, name="Q2"))
    return _two_faced_witness(Mutating({"b": unchecked_row(1, 0, 0)}, mutate=True))


@mutant("row-wrong-alphabet-order", "model", "refused:InvalidDistribution")
def _wrong_order(mutate: bool) -> str:
    """Q2's root row is over Alphabet('ba'): probs (1, 0, 0) there mean 'b' surely, but read by
    position over 'ab' they look like p(.|root) = 'a' surely."""
    root = unchecked_row(1, 0, 0, alphabet=Alphabet("ba") if mutate else A)
    return check(witness(q2=RawModel({"": root}, name="Q2")))


@mutant("row-sums-to-1-plus-2^-60", "model", "refused:InvalidDistribution")
def _sum_over_one(mutate: bool) -> str:
    """Q1's row at the OOD prefix 'b' is (1, 0, 2^-60), built unchecked: it sums to 1 + 2^-60."""
    return check(witness(q1=RawModel({"b": unchecked_row(1, 0, Fraction(1, 2**60) if mutate else 0)}, name="Q1")))


@mutant("row-negative-entry", "model", "refused:InvalidDistribution")
def _negative(mutate: bool) -> str:
    """Q1's row at 'b' is (5/4, 0, -1/4): sum 1, but a negative 'probability' that stretches the gap."""
    row = unchecked_row(Fraction(5, 4), 0, Fraction(-1, 4)) if mutate else unchecked_row(1, 0, 0)
    return check(witness(q1=RawModel({"b": row}, name="Q1")))


# ---- the infinite-support tail: closure only for what the library built -------------------------------
class ForgedExtension(SupportExtension):
    """Claims to be a SupportExtension, but answers 'b' surely at the support prefix a^10, past the
    summed depth 8 (where p(.|a^10) gives 'a' and 'b' 1/2 each)."""

    def next_token(self, prefix: str) -> NextTokenDistribution:
        if prefix == "a" * 10:
            return NextTokenDistribution(self.alphabet, {"b": 1})
        return super().next_token(prefix)


@mutant("subclass-claims-copies-support", "witness", "unknown")
def _forged_subclass(mutate: bool) -> str:
    """a^n b^n, KL summed to depth 8: the violator replaced by a subclass of SupportExtension that
    leaks onto the support at a^10.  isinstance would close its tail at 0 (a false 'verified')."""
    case = rule_case("anbn")
    v = case.violator
    if mutate:
        v = ForgedExtension(v.data, v.off_support, name="forged")
    return verdict(lambda: case.with_models(violator=v).certificate())


@mutant("instance-next-token-override", "witness", "unknown")
def _forged_instance(mutate: bool) -> str:
    """The same leak at a^10 by replacing next_token on a genuine SupportExtension instance."""
    case = rule_case("anbn")
    v = case.violator
    if mutate:
        v = SupportExtension(v.data, v.off_support, name="patched-instance")
        honest = v.next_token
        v.next_token = lambda u: NextTokenDistribution(A, {"b": 1}) if u == "a" * 10 else honest(u)
    return verdict(lambda: case.with_models(violator=v).certificate())


# ---- properties that are not numbers -------------------------------------------------------------------
@mutant("property-returns-nan", "witness", "refused:InvalidProperty")
def _nan(mutate: bool) -> str:
    """A property that answers float('nan') for Q2 (NaN compares false with everything)."""
    from dataclasses import replace

    def phi(q) -> object:
        return float("nan") if mutate and q.name == "Q2" else q_at_b(q)

    return check(replace(witness(), prop=phi))


@mutant("property-returns-bool", "witness", "refused:InvalidProperty")
def _bool(mutate: bool) -> str:
    """A property that answers True/False (read as 1/0 by Fraction, a gap of 1 from a label)."""
    from dataclasses import replace

    def phi(q) -> object:
        v = q_at_b(q)
        return bool(v) if mutate else v

    return check(replace(witness(), prop=phi))


# ---- bounded work -------------------------------------------------------------------------------------
@mutant("float-row-e-minus-700", "witness", "unknown")
def _tiny(mutate: bool) -> str:
    """Q1's root row comes from float logits (0, -700, -701): probabilities e^-700 and e^-701, whose
    normalised exact rationals have a 1064-bit denominator with a 998-bit composite part.  Exactly,
    KL = 0 is false, but deciding it by factorisation could take hours; the budget answers unknown."""
    root = float_row(TINY_LOGITS) if mutate else NextTokenDistribution(A, {"a": 1})
    return verdict(lambda: check_witness(witness(q1=copy(patches={"b": {"a": 1}, "": root}, name="Q1"))))

