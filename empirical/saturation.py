"""The certified saturation gap KL(P ‖ Q) of a trained network on a finite data distribution P.

By the chain rule (docs/theory.md §2), KL(P ‖ Q) = CE(P, Q) − H(P) with

    CE(P, Q) = −Σ_{u ∈ S(P)} Σ_a P(ua) ln q(a | u),

one term per support prefix u and outcome a (a symbol or EOS) with P(ua) > 0.  Q is the **real
function of the network's stored weights** (docs/theory.md §3): its log-probabilities at every support
prefix are enclosed by the one rigorous evaluator (:func:`constructions.enclosure.enclose`; the
experiments' LSTM, linear and selective SSM models through :mod:`empirical.enclosure`), and the gap is
:func:`constructions.enclosure.kl_bounds` on top — an exact rational sum over the enclosure bounds
minus an mpmath enclosure of H(P).  So [kl_lo, kl_hi] ∋ KL(P ‖ Q) rigorously, for any batch layout or
device.  An unbounded enclosure (an overflow, a probability too small to bound) makes the gap +∞.

A network the evaluator does not cover (a type it has no enclosure for, a subclass of a covered one
included) gets a *measured* gap: its float64 softmax rows read as exact rationals and summed in
interval arithmetic, which bounds the gap of that one float evaluation, not of the network;
``rigorous`` is then False and ``method`` says so, and no certificate counts it as certified.

Cost: one ball pass over the support sequences (about 150 prefixes for aⁿbⁿ with n ≤ 16, 8,400 for
the paper's n ≤ 128) and an exact sum.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from fractions import Fraction

import torch

from empirical.data import Vocab
from empirical.errors import InvalidExperimentConfig
from theory.data import DataDistribution
from theory.exact import LogCombination
from theory.losses import entropy

METHOD = ("rigorous enclosures of the network's real function at every support prefix (interval arithmetic "
          "with float rounding bounded), KL as an exact rational sum minus an enclosure of H(P)")
FLOAT_METHOD = ("measured, not certified: one float64 evaluation's softmax rows read as exact rationals, summed in "
                "interval arithmetic; forward-pass rounding is not bounded (no rigorous enclosure of this architecture)")


@dataclass(frozen=True)
class SaturationGap:
    """KL(P ‖ Q̂) ∈ [kl_lo, kl_hi] nats per sequence (outward-rounded floats), the exact entropy floor,
    and the divisors of the per-token (E|x| + 1) and padded (T − 1) conventions."""

    kl_lo: float
    kl_hi: float
    entropy: LogCombination
    entropy_lo: float
    entropy_hi: float
    prefixes: int
    per_token_divisor: float
    padded_divisor: int
    method: str = METHOD
    rigorous: bool = True

    @property
    def finite(self) -> bool:
        return math.isfinite(self.kl_hi)

    def per_token(self) -> tuple[float, float]:
        """The bounds divided by E|x| + 1, rounded outward (the divisor is itself a rounded float: its
        relative error, < 1e−15, is covered by one more step each way)."""
        return _outward(self.kl_lo, self.kl_hi, self.per_token_divisor, 2)

    def padded(self) -> tuple[float, float]:
        """The bounds divided by T − 1 (an exact integer), rounded outward."""
        return _outward(self.kl_lo, self.kl_hi, self.padded_divisor, 1)

    def floor_padded(self) -> float:
        return float(self.entropy) / self.padded_divisor


def _outward(lo: float, hi: float, divisor: float, steps: int) -> tuple[float, float]:
    a, b = lo / divisor, hi / divisor
    for _ in range(steps):
        a, b = math.nextafter(a, -math.inf), math.nextafter(b, math.inf)
    return max(0.0, a), b


def float_down(x) -> float:
    """The float just below ``x`` (a Fraction or float): a lower bound of ``x`` as a float, whatever its rounding."""
    return math.nextafter(float(x), -math.inf)


def float_up(x) -> float:
    """The float just above ``x``: an upper bound of ``x`` as a float."""
    return math.nextafter(float(x), math.inf)


@torch.no_grad()
def model_rows(model: torch.nn.Module, vocab: Vocab, sequences: list[str], *, batch_size: int = 256) -> dict[str, list[float]]:
    """{u: float64 softmax row at u} for every prefix u of every sequence (one float64 forward pass
    per sequence, in batches, on the model's device)."""
    device = next(model.parameters()).device
    net = copy.deepcopy(model).to(device, torch.float64).eval()
    rows: dict[str, list[float]] = {}
    for start in range(0, len(sequences), batch_size):
        chunk = sequences[start:start + batch_size]
        probs = net(vocab.encode(chunk).to(device)).softmax(-1).cpu().tolist()
        for w, prow in zip(chunk, probs):
            for t in range(len(w) + 1):
                u = w[:t]
                if u not in rows:
                    rows[u] = prow[t]
    return rows


def saturation_gap(model: torch.nn.Module, P: DataDistribution, *, prec: int = 96, batch_size: int = 256,
                   max_prefixes: int = 500_000) -> SaturationGap:
    """The interval of KL(P ‖ Q) for the network ``model``: certified for the real function of its weights
    where the evaluator covers the architecture, else measured and marked (module docstring).

    Raises:
        InvalidExperimentConfig: P is not finite, or has more than ``max_prefixes`` support prefixes.
    """
    from mpmath import iv

    import empirical.enclosure  # noqa: F401  (registers the LSTM, linear and SSM enclosures)
    from constructions.enclosure import enclose, kl_bounds, why_not_enclosable

    if not P.is_finite:
        raise InvalidExperimentConfig(f"the saturation gap needs a finite data distribution; {P.name!r} may be infinite")
    vocab = Vocab(P.alphabet)
    den, nodes = P.integer_trie()
    if len(nodes) > max_prefixes:
        raise InvalidExperimentConfig(f"{P.name!r} has {len(nodes)} support prefixes, above the limit {max_prefixes}")
    seqs = [x for x, _p in P.sequences()]
    mean_len = float(P.mean_length())
    padded = max(len(x) for x in seqs) + 1  # T − 1 with T = longest + 2
    if not why_not_enclosable(model):
        enc = enclose(model, seqs, [u for u, _m, _ms in nodes], encode=vocab.encode,
                      device=next(model.parameters()).device)
        lo, hi = kl_bounds(P, enc, prec)
        H = entropy(P)
        assert isinstance(H, LogCombination)  # P is finite (checked above): H(P) is exact
        h_lo, h_hi = H.interval(prec)
        kl_lo = float_down(lo)
        kl_hi = math.inf if hi is None else float_up(hi)
        return SaturationGap(max(0.0, kl_lo), kl_hi, H, float_down(h_lo), float_up(h_hi), len(nodes), mean_len + 1, padded)
    rows = model_rows(model, vocab, seqs, batch_size=batch_size)
    H = entropy(P)
    assert isinstance(H, LogCombination)  # P is finite (checked above): H(P) is exact
    h_lo, h_hi = H.interval(prec)
    old = iv.prec
    iv.prec = prec
    try:
        ce = iv.mpf(0)
        infinite = False
        for u, _mass, masses in nodes:
            prow = rows[u]
            total = sum((Fraction(p) for p in prow), Fraction(0))
            log_total = iv.log(iv.mpf(total.numerator) / iv.mpf(total.denominator))
            for m, p in zip(masses, prow):
                if not m:
                    continue
                if p <= 0.0:
                    infinite = True
                    break
                if p == total:  # q = 1 exactly: no loss
                    continue
                ce += (iv.mpf(m) / den) * (log_total - iv.log(iv.mpf(p)))
            if infinite:
                break
        if infinite:
            kl_lo = kl_hi = math.inf
        else:
            h = iv.mpf([iv.mpf(h_lo.numerator) / h_lo.denominator, iv.mpf(h_hi.numerator) / h_hi.denominator])
            kl = ce - h
            kl_lo = max(0.0, float_down(kl.a))  # Gibbs: KL ≥ 0
            kl_hi = float_up(kl.b)
    finally:
        iv.prec = old
    return SaturationGap(kl_lo, kl_hi, H, float_down(h_lo), float_up(h_hi), len(nodes), mean_len + 1, padded,
                         FLOAT_METHOD, rigorous=False)
