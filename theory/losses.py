"""Exact test losses by the chain rule (docs/theory.md §2).

One pass over the support trie S(P): at each support prefix u and outcome a with P(ua) > 0 the
weight P(ua) meets ln p(a | u) and ln q(a | u).  Weights are grouped by the distinct probability
before any logarithm is taken, so each distinct rational is factorised once.

    H(P)       = −Σ P(ua) ln p(a|u)            (entropy, nats per sequence)
    CE(P, Q)   = −Σ P(ua) ln q(a|u) = E[−ln Q(x)]
    KL(P ‖ Q)  = Σ P(ua) ln(p(a|u)/q(a|u)) = Σ_u P(u)·KL(p(·|u) ‖ q(·|u))

For finite P the results are exact :class:`LogCombination` values.  For infinite P they are
:class:`LogInterval` brackets summed to ``depth`` with a certified tail (entropy: the distribution's
own tail bound; cross-entropy/KL: ``tail_bound`` if the caller can certify one, else +∞).

Every model argument is read through :func:`theory.models.validated` (one validated row per prefix),
and every logarithm is taken under an :class:`~theory.exact.ExactBudget` (default
:data:`~theory.exact.DEFAULT_EXACT_BUDGET`): rows derived from floats with tiny probabilities raise
:class:`~theory.errors.BudgetExceeded` instead of factorising for hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import gcd
from typing import overload

from theory.data import DataDistribution, FiniteDistribution
from theory.errors import InvalidBudget, InvalidDistribution
from theory.exact import DEFAULT_EXACT_BUDGET, ExactBudget, LogCombination, LogInterval
from theory.models import ARModel, sequence_probability, validated
from theory.validation import check_int

LossValue = LogCombination | LogInterval


@dataclass(frozen=True)
class ChainRuleSums:
    """The three sums of one pass: entropy, cross-entropy and KL over the visited support prefixes,
    with the number of prefixes visited."""

    entropy: LogCombination
    cross_entropy: LogCombination
    kl: LogCombination
    prefixes: int


def chain_rule_sums(P: DataDistribution, Q: ARModel | None, depth: int | None = None, *,
                    budget: ExactBudget = DEFAULT_EXACT_BUDGET) -> ChainRuleSums:
    """One pass over S(P) (prefixes shorter than ``depth`` when given).  With ``Q = None`` only the
    entropy is computed (cross-entropy and KL come back as zero).

    Raises:
        InvalidModel, InvalidDistribution: ``Q`` is not a model, gives an invalid row, or is over
        another alphabet.  BudgetExceeded: the logarithms exceed ``budget``.
    """
    if Q is not None:
        Q = validated(Q)
    if Q is not None and Q.alphabet != P.alphabet:
        raise InvalidDistribution(f"model alphabet {str(Q.alphabet)!r} differs from data alphabet {str(P.alphabet)!r}")
    den, nodes = P.integer_trie(depth)
    by_p: dict[tuple[int, int], int] = {}  # p(a|u) as (num, den) -> Σ D·P(ua)
    by_q: dict[Fraction, int] = {}  # q(a|u) -> Σ D·P(ua)
    infinite = False
    for u, mass, masses in nodes:
        qrow = Q.probs(u) if Q is not None else None
        for i, m in enumerate(masses):
            if not m:
                continue
            if m != mass:
                g = gcd(m, mass)
                key = (m // g, mass // g)
                by_p[key] = by_p.get(key, 0) + m
            if qrow is not None:
                q = qrow[i]
                if not q:
                    infinite = True
                elif q != 1:
                    by_q[q] = by_q.get(q, 0) + m
    n = len(nodes)
    entropy = -LogCombination.from_weighted_logs(((Fraction(w, den), Fraction(*p)) for p, w in by_p.items()), budget)
    if Q is None:
        return ChainRuleSums(entropy, LogCombination.zero(), LogCombination.zero(), n)
    if infinite:
        inf = LogCombination.infinity()
        return ChainRuleSums(entropy, inf, inf, n)
    ce = -LogCombination.from_weighted_logs(((Fraction(w, den), q) for q, w in by_q.items()), budget)
    return ChainRuleSums(entropy, ce, ce - entropy, n)


def _tail(P: DataDistribution, depth: int | None) -> int:
    if P.is_finite:
        return 0
    if depth is None:
        raise InvalidDistribution(f"{P.name!r} may have infinite support: pass depth=")
    return check_int(depth, "depth", minimum=0, error=InvalidBudget)


# A FiniteDistribution (is_finite is True) gets an exact LogCombination, never an interval.
@overload
def entropy(P: FiniteDistribution, depth: int | None = None, *, budget: ExactBudget = DEFAULT_EXACT_BUDGET) -> LogCombination: ...
@overload
def entropy(P: DataDistribution, depth: int | None = None, *, budget: ExactBudget = DEFAULT_EXACT_BUDGET) -> LossValue: ...
def entropy(P: DataDistribution, depth: int | None = None, *, budget: ExactBudget = DEFAULT_EXACT_BUDGET) -> LossValue:
    """H(P) in nats per sequence: exact for finite P, else bracketed by the certified entropy tail.

    Raises: InvalidDistribution (infinite P without ``depth``), BudgetExceeded."""
    d = _tail(P, depth)
    h = chain_rule_sums(P, None, depth if d else None, budget=budget).entropy
    if P.is_finite:
        return h
    tail = getattr(P, "entropy_tail", None)
    if tail is None:
        return LogInterval(h, LogCombination.infinity())
    t = tail(d)
    t = t if isinstance(t, LogCombination) else LogCombination.from_weighted_logs([]) if Fraction(t) == 0 else None
    if t is None:
        raise InvalidDistribution("a rational entropy tail other than 0 cannot be added exactly; return a LogCombination")
    return LogInterval(h, h + t)


def _with_tail(value: LogCombination, P: DataDistribution, tail_bound: LogCombination | None) -> LossValue:
    if P.is_finite:
        return value
    if tail_bound is not None and tail_bound.sign() != 1 and not tail_bound.is_zero:
        raise InvalidBudget(f"tail bound {tail_bound} is not certified >= 0: a bound on a sum of non-negative "
                            "KL terms cannot be negative")
    return LogInterval(value, value + tail_bound if tail_bound is not None else LogCombination.infinity())


@overload
def cross_entropy(P: FiniteDistribution, Q: ARModel, depth: int | None = None,
                  tail_bound: LogCombination | None = None, *, budget: ExactBudget = DEFAULT_EXACT_BUDGET) -> LogCombination: ...
@overload
def cross_entropy(P: DataDistribution, Q: ARModel, depth: int | None = None,
                  tail_bound: LogCombination | None = None, *, budget: ExactBudget = DEFAULT_EXACT_BUDGET) -> LossValue: ...
def cross_entropy(P: DataDistribution, Q: ARModel, depth: int | None = None,
                  tail_bound: LogCombination | None = None, *, budget: ExactBudget = DEFAULT_EXACT_BUDGET) -> LossValue:
    """E_{x∼P}[−ln Q(x)], nats per sequence.  For infinite P, summed to ``depth`` and bracketed by
    ``tail_bound`` (a certified bound on the rest; +∞ without one).

    Raises: as :func:`chain_rule_sums`; InvalidBudget for a tail bound not certified ≥ 0."""
    d = _tail(P, depth)
    return _with_tail(chain_rule_sums(P, Q, d or None, budget=budget).cross_entropy, P, tail_bound)


@overload
def kl_divergence(P: FiniteDistribution, Q: ARModel, depth: int | None = None,
                  tail_bound: LogCombination | None = None, *, budget: ExactBudget = DEFAULT_EXACT_BUDGET) -> LogCombination: ...
@overload
def kl_divergence(P: DataDistribution, Q: ARModel, depth: int | None = None,
                  tail_bound: LogCombination | None = None, *, budget: ExactBudget = DEFAULT_EXACT_BUDGET) -> LossValue: ...
def kl_divergence(P: DataDistribution, Q: ARModel, depth: int | None = None,
                  tail_bound: LogCombination | None = None, *, budget: ExactBudget = DEFAULT_EXACT_BUDGET) -> LossValue:
    """KL(P ‖ Q) by the chain rule; exact for finite P (``== 0`` is an exact test).

    Raises: as :func:`chain_rule_sums` (BudgetExceeded when the exact logarithms exceed ``budget``);
    InvalidBudget for a tail bound not certified ≥ 0."""
    d = _tail(P, depth)
    return _with_tail(chain_rule_sums(P, Q, d or None, budget=budget).kl, P, tail_bound)


def kl_by_enumeration(P: DataDistribution, Q: ARModel, max_length: int | None = None, *,
                      budget: ExactBudget = DEFAULT_EXACT_BUDGET) -> LogCombination:
    """Σ_x P(x) ln(P(x)/Q(x)) by enumerating sequences: the naive reference for the chain rule
    (quadratic in depth; for tests and benchmarks only).  Raises: as :func:`chain_rule_sums`."""
    Q = validated(Q)
    terms: list[tuple[Fraction, Fraction]] = []
    for x, px in P.sequences(max_length):
        qx = sequence_probability(Q, x)
        if qx == 0:
            return LogCombination.infinity()
        terms.append((px, px / qx))
    return LogCombination.from_weighted_logs(terms, budget)


def kl_contributions(P: DataDistribution, Q: ARModel, depth: int | None = None, *,
                     budget: ExactBudget = DEFAULT_EXACT_BUDGET) -> dict[str, LogCombination]:
    """{u: P(u)·KL(p(·|u) ‖ q(·|u))} for the support prefixes where it is nonzero: which prefixes the
    loss sees Q differ on.  Raises: as :func:`chain_rule_sums` (the budget applies per prefix)."""
    Q = validated(Q)
    out: dict[str, LogCombination] = {}
    for u, mass, masses in P.support_nodes(_tail(P, depth) or None):
        qrow = Q.probs(u)
        terms = []
        inf = False
        for m, q in zip(masses, qrow):
            if m:
                if not q:
                    inf = True
                    break
                terms.append((m, (m / mass) / q))
        v = LogCombination.infinity() if inf else LogCombination.from_weighted_logs(terms, budget)
        if not v.is_zero:
            out[u] = v
    return out


def per_token(value: LossValue, P: DataDistribution) -> LossValue:
    """Divide a per-sequence loss by E|x| + 1 (the EOS prediction counts as a token)."""
    k = P.mean_length() + 1
    if isinstance(value, LogInterval):
        return LogInterval(value.lo / k, value.hi / k)
    return value / k


def padded_per_token(value: LossValue, P: DataDistribution, padded_length: int) -> LossValue:
    """The padded convention (docs/theory.md §1): every sequence is SOS x EOS PAD… of ``padded_length``
    tokens; the loss averages over its padded_length − 1 targets, PAD targets included.  A model is
    taken to predict PAD with certainty after EOS, so PAD targets add no loss: the per-sequence loss
    is divided by padded_length − 1.  For all aⁿbⁿ, n = 1..128, padded to 258 the entropy floor is
    ln 128 / 257.

    Raises:
        InvalidDistribution: a support sequence too long for ``padded_length`` (|x| + 2 > T).
    """
    if not P.is_finite:
        raise InvalidDistribution(f"padded convention needs a finite support; {P.name!r} may be infinite")
    longest = max(len(x) for x, _ in P.sequences())
    if padded_length < longest + 2:
        raise InvalidDistribution(
            f"padded length {padded_length} is too short: the longest sequence needs {longest} + 2 (SOS, EOS)"
        )
    k = padded_length - 1
    if isinstance(value, LogInterval):
        return LogInterval(value.lo / k, value.hi / k)
    return value / k
