"""The exhaustive checker: the one verdict path for every network the project produces (compiled,
distilled, trained).

A verdict about a network holds for the *real function of its stored weights* (docs/theory.md §3), so
:func:`check_model` reads every prefix of a prefix-closed :class:`~constructions.compile.PrefixSet`
from the rigorous evaluator (:func:`constructions.enclosure.enclose`: interval enclosures of every
next-token log-probability, valid for any batch layout, summation order and device) and compares
them with the construction's exact rows:

* **max total variation**, an upper bound at every prefix, with the worst prefix named — ``verified``
  needs it ≤ the stated tolerance;
* **KL(P ‖ network)** as a rigorous interval, for finite data P (an exact rational sum over the
  enclosure bounds minus an mpmath enclosure of H(P)) — ``verified`` needs its upper end ≤ the stated
  bound;
* **max |Δ log p|** over the tokens with p > 0 at support prefixes (reported, an upper bound);
* **greedy OOD behaviour**: :func:`certified_greedy` follows the construction's greedy completion of
  each OOD prompt and requires the network's enclosure to make the same token the certain strict
  maximum at every step, so the network's completion *is* the construction's.

:func:`evaluate` (one batched float64 pass) stays as a fast pre-filter (the distiller's progress
check); no verdict is read from it.  :class:`TorchARModel` adapts a float network to the exact
``theory`` interfaces for *measurements* (the empirical metrics), never for a verdict here.
:func:`check_pair` turns two checks into the Proposition 1 certificate for a network pair.

**The exact path** (``check_pair(..., exact=True)``, :func:`check_model_exact`): for networks the exact
evaluator covers (:mod:`constructions.exact_eval`: norm "none", ReLU, exactly-uniform attention rows —
the compiled ones) the same verdict conditions are read from the *exact rational* logits, with every
log-probability, TV and KL bound from mpmath intervals (no floating-point operation), and the float
enclosure is run as a cross-check that must contain every exact value (:func:`cross_check`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable, cast

import numpy as np
import torch

from constructions.compile.prefixes import PrefixSet
from constructions.enclosure import ASSUMPTIONS as ENCLOSURE_ASSUMPTIONS
from constructions.enclosure import Enclosure, batches, enclose, kl_bounds
from constructions.transformer import DecoderTransformer
from theory.alphabet import Alphabet
from theory.certificate import Certificate, Status, library_versions
from theory.data import DataDistribution
from theory.errors import InvalidModelConfig
from theory.exact import LogCombination, decimal_string, scientific
from theory.losses import entropy
from theory.models import ARModel, validated
from theory.probability import NextTokenDistribution
from theory.validation import check_number

DEFAULT_TOLERANCE = 1e-9
"""Max TV accepted for a compiled network (its logit floor costs ~1e−17; its enclosures are ~1e−9 wide
in log-probability at the least likely outcomes, whose probabilities are ~1e−17)."""
DEFAULT_KL_BOUND = 1e-9
"""KL(P ‖ Q) upper bound (nats per sequence) accepted for a compiled network."""
BATCH_ELEMENTS = 1 << 23
"""Activations per forward batch (rows × positions × widest layer), ~64 MiB in float64."""


# ---- evaluation ------------------------------------------------------------------------------------
def evaluate(net: DecoderTransformer, prefixes: PrefixSet, *, device: str | torch.device | None = None,
             batch_elements: int = BATCH_ELEMENTS) -> np.ndarray:
    """The float logits of ``net`` at every prefix of ``prefixes`` (in set order), shape (len(prefixes), |Σ| + 1),
    float64 on the CPU, from one batched pass over the maximal words — a fast pre-filter and progress
    measure; a float pass is not the network's real function, so no verdict comes from it.

    Raises:
        InvalidModelConfig: the network is over another alphabet.
        InputTooLong: a word longer than the network's positional range.
    """
    if str(net.alphabet) != prefixes.alphabet:
        raise InvalidModelConfig(f"network is over {str(net.alphabet)!r}, the prefix set over {prefixes.alphabet!r}")
    cfg = net.config
    width = max(cfg.d_model, cfg.d_mlp, cfg.n_heads * cfg.d_head)
    out = np.empty((len(prefixes), cfg.n_outputs), dtype=np.float64)
    was_training, home = net.training, net.device
    net.eval()
    if device is not None:
        net.to(device)

    def cost(rows: int, t: int) -> int:  # activations of a batch padded to t positions
        return rows * t * max(width, t * cfg.n_heads)

    try:
        with torch.inference_mode():
            for batch in batches(prefixes.maximal, prefixes.prefixes, cost, batch_elements):
                logits = net(net.encode(batch.words, length=batch.length))
                r = torch.as_tensor(batch.rows, device=logits.device)
                c = torch.as_tensor(batch.cols, device=logits.device)
                out[batch.where] = logits[r, c].to(torch.float64).cpu().numpy()
    finally:
        net.train(was_training)
        if device is not None:
            net.to(home)  # Module.to moves in place: give the caller its network back where it was
    return out


def _log_softmax(z: np.ndarray) -> np.ndarray:
    m = z.max(axis=1, keepdims=True)
    return z - (m + np.log(np.exp(z - m).sum(axis=1, keepdims=True)))


# ---- the adapter -----------------------------------------------------------------------------------
class TorchARModel:
    """A network as an :class:`~theory.models.ARModel`: the row at u is the exact normalisation of the
    float64 softmax probabilities (dyadic rationals divided by their exact sum), so the argmax — and
    any tie — is that of the network.  Rows of an earlier :func:`evaluate` can be passed in ``cache``
    (logits keyed by prefix); others are computed one forward pass at a time.

    ``net`` is a :class:`DecoderTransformer` or any causal network mapping the ids of
    ``[SOS, x₁ … xₙ]`` to per-position logits over Σ ∪ {EOS}; for the latter pass its ``encode``
    (words → id tensor) and ``alphabet``."""

    def __init__(self, net: torch.nn.Module, cache: dict[str, np.ndarray] | None = None, name: str = "network", *,
                 encode: Callable[[list[str]], torch.Tensor] | None = None, alphabet: Alphabet | None = None) -> None:
        self.net = net
        # without ``alphabet`` / ``encode`` the network is a DecoderTransformer (the class docstring), which has both
        self.alphabet: Alphabet = alphabet if alphabet is not None else cast(DecoderTransformer, net).alphabet
        self.encode: Callable[[list[str]], torch.Tensor] = encode if encode is not None else cast(DecoderTransformer, net).encode
        self.name = name
        self._logits = dict(cache or {})
        self._rows: dict[str, NextTokenDistribution] = {}

    def logits(self, prefix: str) -> np.ndarray:
        z = self._logits.get(prefix)
        if z is None:
            with torch.inference_mode():
                z = self.net(self.encode([prefix]))[0, len(prefix)].to(torch.float64).cpu().numpy()
            self._logits[prefix] = z
        return z

    def next_token(self, prefix: str) -> NextTokenDistribution:
        row = self._rows.get(prefix)
        if row is None:
            self.alphabet.check_sequence(prefix, "prefix")
            z = self.logits(prefix)
            p = np.exp(z - z.max())
            fr = [Fraction(float(x)) for x in p]
            total = sum(fr)
            row = NextTokenDistribution.from_exact(self.alphabet, tuple(x / total for x in fr), where=prefix)
            self._rows[prefix] = row
        return row

    def __repr__(self) -> str:
        return f"TorchARModel({self.name!r})"


# ---- one model -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelCheck:
    """The comparison of one network's real function with one construction on one prefix set, from
    rigorous enclosures (:mod:`constructions.enclosure`).

    ``tv_upper`` is a true upper bound of the max TV over every prefix; ``kl_lo``/``kl_hi`` rigorous
    bounds on KL(P ‖ network) (``None`` without finite data; ``kl_hi`` None also when unbounded);
    ``max_radius`` the widest log-probability enclosure (half-width).  ``enclosure`` feeds the
    certified greedy decoding of :func:`check_pair`."""

    prefixes: int
    words: int
    tolerance: float
    kl_bound: float | None
    max_tv: float
    worst_prefix: str
    max_dlogp_support: float | None
    worst_support_prefix: str | None
    kl_lo: Fraction | None
    kl_hi: Fraction | None
    seconds: float
    nonfinite: bool
    max_radius: float = 0.0
    enclosure: Enclosure | None = field(repr=False, compare=False, default=None)

    @property
    def kl_within_bound(self) -> bool:
        return self.kl_bound is None or (self.kl_hi is not None and self.kl_hi <= Fraction(self.kl_bound))

    @property
    def within_tolerance(self) -> bool:
        return not self.nonfinite and self.max_tv <= self.tolerance and self.kl_within_bound

    def summary(self) -> dict[str, Any]:
        return {
            "prefixes_checked": self.prefixes, "maximal_words": self.words, "tolerance_tv": self.tolerance,
            "kl_bound": self.kl_bound,
            "max_tv_upper": scientific(Fraction(self.max_tv), "up") if math.isfinite(self.max_tv) else "unbounded",
            "worst_prefix": self.worst_prefix,
            "max_abs_dlogp_support_upper": (None if self.max_dlogp_support is None else
                                            scientific(Fraction(self.max_dlogp_support), "up")
                                            if math.isfinite(self.max_dlogp_support) else "unbounded"),
            "worst_support_prefix": self.worst_support_prefix,
            "kl_upper": None if self.kl_lo is None else ("unbounded" if self.kl_hi is None else scientific(self.kl_hi, "up")),
            "kl_lower": None if self.kl_lo is None else scientific(self.kl_lo, "down"),
            "max_logprob_radius_upper": scientific(Fraction(self.max_radius), "up") if math.isfinite(self.max_radius) else "unbounded",
            "unbounded_enclosure": self.nonfinite,
        }


def _float_bracket(x: Fraction) -> tuple[float, float]:
    """Floats lo ≤ x ≤ hi (float(Fraction) is correctly rounded; one step each way)."""
    f = float(x)
    return math.nextafter(f, -math.inf), math.nextafter(f, math.inf)


def tv_upper_bounds(rows: list[tuple[Fraction, ...]], enc: Enclosure) -> np.ndarray:
    """A true upper bound of TV(p_u, q_u) for each prefix u (rows in the enclosure's order): with
    p ∈ [p_lo, p_hi] (exact rationals bracketed) and q ∈ [e^lo, e^hi] (rigorous exp),
    |p − q| ≤ max(q_hi − p_lo, p_hi − q_lo), summed and halved with the rounding bounded."""
    from constructions import balls

    lo = torch.from_numpy(enc.lp_lo)
    hi = torch.from_numpy(enc.lp_hi)
    q_lo = balls._exp_point(lo).lo.clamp(min=0.0)
    q_hi = balls._exp_point(hi).hi.clamp(max=1.0)
    q_lo = torch.where(torch.isfinite(lo), q_lo, torch.zeros_like(q_lo))
    q_hi = torch.where(torch.isfinite(hi), q_hi, torch.ones_like(q_hi))
    br = [[_float_bracket(x) for x in r] for r in rows]
    p_lo = torch.tensor([[b[0] for b in r] for r in br], dtype=torch.float64).reshape(q_lo.shape).clamp(min=0.0)
    p_hi = torch.tensor([[b[1] for b in r] for r in br], dtype=torch.float64).reshape(q_lo.shape)
    d = torch.maximum(balls._up(q_hi - p_lo), balls._up(p_hi - q_lo)).clamp(min=0.0)
    tv = balls._upper(0.5 * d.sum(-1), d.shape[-1] + 2)
    bad = ~(torch.isfinite(lo).all(-1) & torch.isfinite(hi).all(-1))
    return torch.where(bad, torch.full_like(tv, math.inf), tv).numpy()


def check_model(net: DecoderTransformer, construction: ARModel, prefixes: PrefixSet, *,
                data: DataDistribution | None = None, tolerance: float = DEFAULT_TOLERANCE,
                kl_bound: float | None = None, device: str | torch.device | None = None) -> ModelCheck:
    """Compare the real function of ``net``'s weights with ``construction`` on every prefix of
    ``prefixes``, from rigorous enclosures (module docstring).  Within tolerance iff every enclosure
    is bounded, the TV upper bound is ≤ ``tolerance`` at every prefix and (with ``kl_bound``) the KL
    upper bound is ≤ ``kl_bound``.

    Raises:
        InvalidModelConfig: alphabets differ, or a tolerance / bound that is not a number in [0, 1].
        InvalidDistribution: ``data`` infinite or with a support prefix outside the set.
    """
    for name, value in (("tolerance", tolerance), ("kl_bound", kl_bound)):
        if value is None and name == "kl_bound":
            continue
        check_number(value, name, lo=0, hi=1, error=InvalidModelConfig)
    if str(construction.alphabet) != prefixes.alphabet:
        raise InvalidModelConfig(f"construction is over {str(construction.alphabet)!r}, the prefix set over {prefixes.alphabet!r}")
    if str(net.alphabet) != prefixes.alphabet:
        raise InvalidModelConfig(f"network is over {str(net.alphabet)!r}, the prefix set over {prefixes.alphabet!r}")
    t0 = time.perf_counter()
    enc = enclose(net, prefixes.maximal, prefixes.prefixes, device=device)
    return check_enclosure(enc, construction, prefixes, data=data, tolerance=tolerance, kl_bound=kl_bound,
                           started=t0)


def check_enclosure(enc: Enclosure, construction: ARModel, prefixes: PrefixSet, *,
                    data: DataDistribution | None = None, tolerance: float = DEFAULT_TOLERANCE,
                    kl_bound: float | None = None, started: float | None = None) -> ModelCheck:
    """:func:`check_model`'s comparison read from an :class:`Enclosure` of *any* network's real function
    over ``prefixes`` (rows in the set's order): a DecoderTransformer's, or a library model's
    (:mod:`constructions.hf_export`).  The enclosure's columns are Σ ∪ {EOS} and then any number of
    outputs the construction never predicts (a Hugging Face model's SOS and PAD rows): the construction's
    probability there is exactly 0, so the mass a network puts on them counts in the TV bound.

    Raises:
        InvalidModelConfig: an enclosure of another prefix set or with fewer columns than Σ ∪ {EOS}, or a
            tolerance / bound that is not a number in [0, 1].
        InvalidDistribution: as :func:`check_model`.
    """
    for name, value in (("tolerance", tolerance), ("kl_bound", kl_bound)):
        if value is None and name == "kl_bound":
            continue
        check_number(value, name, lo=0, hi=1, error=InvalidModelConfig)
    if tuple(enc.prefixes) != tuple(prefixes.prefixes):
        raise InvalidModelConfig("the enclosure is not over the checked prefix set (other prefixes or another order)")
    if str(construction.alphabet) != prefixes.alphabet:
        raise InvalidModelConfig(f"construction is over {str(construction.alphabet)!r}, the prefix set over {prefixes.alphabet!r}")
    t0 = time.perf_counter() if started is None else started
    construction = validated(construction)  # one memo: the rows compared here are the rows decoded later
    extra = enc.lp_lo.shape[1] - len(construction.alphabet.outcomes)
    if extra < 0:
        raise InvalidModelConfig(f"the enclosure has {enc.lp_lo.shape[1]} outputs, fewer than the "
                                 f"{len(construction.alphabet.outcomes)} of the construction")
    never = (Fraction(0),) * extra
    rows = [construction.probs(u) + never for u in prefixes.prefixes]
    tv = tv_upper_bounds(rows, enc)
    worst = int(np.argmax(tv))
    dlogp, worst_s = None, None
    kl_lo = kl_hi = None
    if data is not None:
        sup = np.array([data.in_support(u) for u in prefixes.prefixes], dtype=bool)
        worst_d = -1.0
        worst_i: int | np.intp = 0  # then an index from np.flatnonzero
        for i in np.flatnonzero(sup):  # |log p − log q| ≤ max over the enclosure, p > 0 exactly
            for a, x in enumerate(rows[i]):
                if x > 0:
                    ln_n, ln_d = math.log(x.numerator), math.log(x.denominator)
                    lp_lo, lp_hi = _float_bracket(Fraction(ln_n - ln_d))
                    pad = 8e-16 * (2 + abs(ln_n) + abs(ln_d))  # math.log is within an ulp; one subtraction
                    d = max(enc.lp_hi[i, a] - (lp_lo - pad), (lp_hi + pad) - enc.lp_lo[i, a])
                    if not math.isfinite(d):
                        d = math.inf
                    if d > worst_d:
                        worst_d, worst_i = d, i
        if worst_d >= 0:
            dlogp, worst_s = math.nextafter(worst_d, math.inf), prefixes.prefixes[worst_i]
        kl_lo, kl_hi = kl_bounds(data, enc)
    return ModelCheck(len(prefixes), len(prefixes.maximal), float(tolerance), None if kl_bound is None else float(kl_bound),
                      float(tv[worst]), prefixes.prefixes[worst], dlogp, worst_s, kl_lo, kl_hi,
                      time.perf_counter() - t0, not enc.bounded, enc.max_radius, enc)


def certified_greedy(enc: Enclosure, construction: ARModel, prompt: str, max_new_tokens: int) -> str | None:
    """Follow ``construction``'s greedy completion of ``prompt`` and check, at every step, that the
    network's log-probability of the construction's token is certainly the strict maximum (its lower
    bound above every other upper bound).  Returns None when the network's greedy completion is
    certainly the construction's, else the first prefix where it is not (or not certainly)."""
    from theory.alphabet import EOS

    outcomes = list(construction.alphabet.outcomes)
    text = ""
    for _ in range(max_new_tokens):
        u = prompt + text
        tok, tied = construction.next_token(u).argmax()
        if u not in enc.index or tied or enc.certified_argmax(u) != outcomes.index(tok):
            return u
        if tok == EOS:
            return None
        text += tok
    return None


# ---- the exact path ----------------------------------------------------------------------------------
EXACT_ASSUMPTIONS = (
    "a network is the real function of its stored weights; every stored float is read as the exact rational it "
    "denotes (fractions.Fraction(x)), and embeddings, every linear map and bias, the residual sums and ReLU are "
    "evaluated in exact rational arithmetic (Python integers over a common denominator) - no floating-point "
    "operation, so the values do not depend on batching, summation order, device or any float unit",
    "softmax attention is evaluated exactly only where every score of a row is exactly equal (then each attended "
    "position has weight exactly 1/(t + 1)); a network with any other row, a LayerNorm or a non-ReLU activation "
    "is refused by the exact evaluator, not approximated",
    "the only irrational step, log q(a | u) = (z_a - max z) - ln sum_b exp(z_b - max z) of the exact logits z, is "
    "enclosed in mpmath interval arithmetic (outward rounding in software, 113 bits); TV is bounded from those "
    "intervals against the construction's exact rows in rationals, KL as an exact rational sum over the interval "
    "endpoints minus an mpmath enclosure of H(P)",
    "cross-check, not a premise: the rigorous float enclosure of each network (constructions.enclosure, which "
    "assumes IEEE-754 binary64 arithmetic) must contain every exact log-probability interval; a value outside is "
    "reported as an evaluator disagreement (status unknown)",
)


@dataclass(frozen=True)
class ExactCheck:
    """:func:`check_model_exact`'s result: the :class:`ModelCheck` (its ``enclosure`` holds the exact
    log-probability intervals rounded outward to floats, for the certified greedy decoding), the exact
    evaluation, and each prefix's rigorous row bounds (exact rational endpoints)."""

    model: ModelCheck
    evaluation: Any
    bounds: tuple[Any, ...]


def check_model_exact(net: DecoderTransformer, construction: ARModel, prefixes: PrefixSet, *,
                      data: DataDistribution | None = None, tolerance: float = DEFAULT_TOLERANCE,
                      kl_bound: float | None = None, evaluation: Any = None) -> ExactCheck:
    """:func:`check_model` read from the exact evaluation of ``net`` (:func:`constructions.exact_eval.exact_evaluate`;
    pass ``evaluation`` to reuse one) instead of float enclosures: TV, |Δ log p| and KL bounds from
    mpmath intervals around the exact logits, all in rationals.

    Raises:
        NotExactlyEvaluable: a network the exact evaluator does not cover (named, with why).
        InvalidModelConfig / InvalidDistribution: as :func:`check_model`.
    """
    from constructions.exact_eval import LOG_PREC, exact_evaluate, float_down, float_up, row_bounds, tv_upper

    for name, value in (("tolerance", tolerance), ("kl_bound", kl_bound)):
        if value is None and name == "kl_bound":
            continue
        check_number(value, name, lo=0, hi=1, error=InvalidModelConfig)
    if str(construction.alphabet) != prefixes.alphabet or str(net.alphabet) != prefixes.alphabet:
        raise InvalidModelConfig(f"network over {str(net.alphabet)!r}, construction over {str(construction.alphabet)!r}, "
                                 f"prefix set over {prefixes.alphabet!r}: they must agree")
    t0 = time.perf_counter()
    construction = validated(construction)
    ev = evaluation if evaluation is not None else exact_evaluate(net, prefixes.prefixes)
    memo: dict[tuple[Fraction, ...], Any] = {}
    bounds = []
    for u in prefixes.prefixes:
        z = ev.row(u)
        rb = memo.get(z)
        if rb is None:
            rb = memo[z] = row_bounds(z)
        bounds.append(rb)
    rows = [construction.probs(u) for u in prefixes.prefixes]
    tvs = [tv_upper(p, rb) for p, rb in zip(rows, bounds)]
    worst = max(range(len(tvs)), key=tvs.__getitem__)
    lo = np.array([[float_down(a) for a, _ in rb.log_prob] for rb in bounds], dtype=np.float64)
    hi = np.array([[float_up(b) for _, b in rb.log_prob] for rb in bounds], dtype=np.float64)
    mid = np.array([[float(x) for x in ev.row(u)] for u in prefixes.prefixes], dtype=np.float64)
    radius = max((max(b - a for a, b in rb.log_prob) for rb in bounds), default=Fraction(0)) / 2
    enc = Enclosure(prefixes.prefixes, lo, hi, mid, 0.0, "exact", {u: k for k, u in enumerate(prefixes.prefixes)})
    dlogp, worst_s = None, None
    kl_lo = kl_hi = None
    if data is not None:
        from mpmath import iv

        from constructions.exact_eval import _ends, _iv

        worst_d, worst_i = Fraction(-1), 0
        old = iv.prec
        iv.prec = LOG_PREC
        try:
            for i, u in enumerate(prefixes.prefixes):
                if not data.in_support(u):
                    continue
                for a, x in enumerate(rows[i]):
                    if x > 0:
                        ln_lo, ln_hi = _ends(iv.log(_iv(x)))
                        q_lo, q_hi = bounds[i].log_prob[a]
                        d = max(q_hi - ln_lo, ln_hi - q_lo)
                        if d > worst_d:
                            worst_d, worst_i = d, i
        finally:
            iv.prec = old
        if worst_d >= 0:
            dlogp, worst_s = float_up(worst_d), prefixes.prefixes[worst_i]
        kl_lo, kl_hi = _exact_kl_bounds(data, prefixes, bounds)
    mc = ModelCheck(len(prefixes), len(prefixes.maximal), float(tolerance), None if kl_bound is None else float(kl_bound),
                    float_up(tvs[worst]), prefixes.prefixes[worst], dlogp, worst_s, kl_lo, kl_hi,
                    time.perf_counter() - t0, False, float_up(radius), enc)
    return ExactCheck(mc, ev, tuple(bounds))


def _exact_kl_bounds(data: DataDistribution, prefixes: PrefixSet, bounds: list[Any]) -> tuple[Fraction, Fraction]:
    """[lo, hi] ∋ KL(P ‖ Q): Σ P(ua)·(−log q(a|u)) summed exactly over the rational interval endpoints,
    minus an mpmath enclosure of H(P).

    Raises:
        InvalidDistribution: infinite data, or a support prefix outside the set."""
    from theory.errors import InvalidDistribution

    if not data.is_finite:
        raise InvalidDistribution(f"data {data.name!r} may have infinite support: the exhaustive KL needs a finite one")
    index = {u: k for k, u in enumerate(prefixes.prefixes)}
    den, nodes = data.integer_trie()
    ce_lo = ce_hi = Fraction(0)
    for u, _mass, masses in nodes:
        k = index.get(u)
        if k is None:
            raise InvalidDistribution(f"support prefix {u!r} is not in the checked prefix set")
        for a, m in enumerate(masses):
            if m:
                lo, hi = bounds[k].log_prob[a]
                ce_hi -= m * lo
                ce_lo -= m * hi
    h = entropy(data)
    if not isinstance(h, LogCombination):  # a finite support sums exactly: never a LogInterval here
        raise InvalidDistribution(f"data {data.name!r}: its entropy is not an exact sum")
    h_lo, h_hi = h.interval(96)
    return max(Fraction(0), ce_lo / den - h_hi), max(Fraction(0), ce_hi / den - h_lo)


def cross_check(bounds: tuple[Any, ...], enc: Enclosure) -> tuple[int, list[str]]:
    """Whether every exact log-probability interval lies inside the float enclosure's (same prefixes,
    same order).  Returns (values checked, one line per value not certainly inside, first ones first)."""
    out: list[str] = []
    n = 0
    for i, rb in enumerate(bounds):
        for a, (lo, hi) in enumerate(rb.log_prob):
            n += 1
            e_lo, e_hi = float(enc.lp_lo[i, a]), float(enc.lp_hi[i, a])
            inside = (e_lo == -math.inf or Fraction(e_lo) <= lo) and (e_hi == math.inf or hi <= Fraction(e_hi))
            if not inside:
                out.append(f"prefix {enc.prefixes[i]!r}, outcome {a}: exact log q in [{float(lo):.17g}, {float(hi):.17g}], "
                           f"enclosure [{e_lo:.17g}, {e_hi:.17g}]")
    return n, out


# ---- a Proposition 1 pair --------------------------------------------------------------------------
def evaluation_words(model_quantities: dict) -> str:
    """How a pair certificate's network was evaluated, in words, from its per-model quantities (the
    ``evaluation`` field :func:`check_pair` records): what command lines and model cards print."""
    if model_quantities.get("evaluation") == "exact":
        return "in exact arithmetic (cross-checked against rigorous enclosures)"
    return "on rigorous enclosures"


def check_pair(case: Any, q1: DecoderTransformer | None, q2: DecoderTransformer | None, prefixes: PrefixSet, *,
               tolerance: float = DEFAULT_TOLERANCE, kl_bound: float | None = DEFAULT_KL_BOUND,
               device: str | torch.device | None = None, check_name: str | None = None, exact: bool = False,
               design: Callable[[str, DecoderTransformer, ARModel, Any], list[str]] | None = None,
               design_claim: str = "", enclosures: tuple[Enclosure, Enclosure] | None = None,
               subject: str | None = None, assumptions: tuple[str, ...] = ENCLOSURE_ASSUMPTIONS,
               versions: tuple[str, ...] = ("torch", "safetensors", "numpy", "mpmath")) -> Certificate:
    """The exhaustive certificate for a network pair of a rule-extrapolation ``case``
    (:class:`constructions.rule_extrapolation.RuleCase`), from rigorous enclosures of each network's
    real function: ``verified`` iff, for both networks, the TV upper bound to the case's completer
    resp. violator is ≤ ``tolerance`` at every prefix of ``prefixes``, the KL(P ‖ network) upper bound
    is ≤ ``kl_bound``, and on every OOD prompt the network's greedy completion is *certainly* the
    construction's (at each step the construction's token has the certainly-largest log-probability),
    so their greedy OOD R1 accuracies are the constructions', which differ.  Otherwise ``falsified``
    with the first failing prefix named (an unbounded enclosure included).

    With ``exact=True`` the verdict is read from the exact rational evaluation of each network
    (:func:`check_model_exact`), and the float enclosure is a cross-check: an exact value outside it,
    or a network the exact evaluator refuses, makes the certificate ``unknown`` with the reason.
    ``design(label, net, construction, evaluation)`` (exact path only) returns the places where the
    exact evaluation differs from a stated design — each a ``falsified`` reason; ``design_claim`` is
    the sentence the claim adds for it.

    With ``enclosures`` (Q1's, Q2's: :class:`Enclosure` of any two networks over ``prefixes``, such as
    Hugging Face models loaded back from an export, whose extra output columns count against them;
    :func:`check_enclosure`) the same verdict conditions are read from them and ``q1``/``q2`` are not
    used; ``subject`` then replaces "the real functions of two transformers' stored weights" in the
    claim, ``assumptions`` the enclosure premises and ``versions`` the libraries recorded.
    """
    from constructions.exact_eval import NotExactlyEvaluable
    from theory.prompts import PromptSet
    from theory.properties import rule_metrics

    t0 = time.perf_counter()
    lang = case.language
    ood = PromptSet(lang, (), tuple(case.ood_prompts))
    checks, metrics = [], []
    reasons: list[str] = []
    undecided: list[str] = []
    crossed: dict[str, dict[str, Any]] = {}
    if enclosures is not None and exact:
        raise InvalidModelConfig("check_pair: enclosures given with exact=True (the exact path evaluates the networks)")
    for i, (label, net, target) in enumerate((("Q1", q1, validated(case.completer)), ("Q2", q2, validated(case.violator)))):
        xc = None
        if enclosures is not None:
            mc = check_enclosure(enclosures[i], target, prefixes, data=case.data, tolerance=tolerance, kl_bound=kl_bound)
        elif exact:
            try:
                xc = check_model_exact(cast(DecoderTransformer, net), target, prefixes, data=case.data, tolerance=tolerance,
                                       kl_bound=kl_bound)
            except NotExactlyEvaluable as e:
                undecided.append(f"{label}: no exact evaluation ({e})")
        if enclosures is None and xc is None:
            mc = check_model(cast(DecoderTransformer, net), target, prefixes, data=case.data, tolerance=tolerance,
                             kl_bound=kl_bound, device=device)
        elif xc is not None:
            mc = xc.model
            enc = enclose(cast(DecoderTransformer, net), prefixes.maximal, prefixes.prefixes, device=device)
            n_values, outside = cross_check(xc.bounds, enc)
            crossed[label.lower()] = {
                "enclosure_values_checked": n_values, "exact_values_outside_enclosure": len(outside),
                "enclosure_max_logprob_radius_upper": (scientific(Fraction(enc.max_radius), "up")
                                                       if math.isfinite(enc.max_radius) else "unbounded")}
            if outside:
                undecided.append(f"{label}: EVALUATORS DISAGREE - {len(outside)} of {n_values} exact log-probabilities "
                                 f"are not inside the rigorous float enclosure, so one of the two evaluators is wrong; "
                                 f"first: {outside[0]}")
            if design is not None:
                problems = design(label, cast(DecoderTransformer, net), target, xc.evaluation)
                reasons.extend(f"{label}: {p}" for p in problems)
        checks.append(mc)
        want = rule_metrics(target, lang, ood, case.max_new_tokens)
        # check_model always fills ModelCheck.enclosure (None only for a ModelCheck built elsewhere)
        off = [(u, certified_greedy(cast(Enclosure, mc.enclosure), target, u, case.max_new_tokens)) for u in ood.ood_prompts]
        off = [(u, at) for u, at in off if at is not None]
        got = None if off else want  # the network's completions are the construction's, string for string
        metrics.append((got, want))
        if mc.nonfinite:
            reasons.append(f"{label}: an enclosure is unbounded (a log-probability without a finite bound)")
        elif mc.max_tv > tolerance:
            reasons.append(f"{label}: max TV <= {mc.summary()['max_tv_upper']} exceeds tolerance {tolerance:g} "
                           f"at prefix {mc.worst_prefix!r}")
        if not mc.kl_within_bound:
            kl = "unbounded" if mc.kl_hi is None else scientific(mc.kl_hi, "up")
            reasons.append(f"{label}: KL upper bound {kl} exceeds the bound {kl_bound:g}")
        if off:
            u, at = off[0]
            reasons.append(f"{label}: greedy completion of OOD prompt {u!r} is not certainly the construction's at "
                           f"prefix {at!r} ({len(off)} of {len(ood.ood_prompts)} prompts)")
    (g1, w1), (g2, w2) = metrics
    if not reasons and w1.ood_r1 == w2.ood_r1:
        # a RuleCase keeps at least one OOD prompt (rule_extrapolation_case refuses otherwise): ood_r1 is a Fraction
        reasons.append(f"OOD R1 accuracies are equal ({float(cast(Fraction, w1.ood_r1)):.4g}): no gap")
    status = Status.UNKNOWN if undecided else Status.FALSIFIED if reasons else Status.VERIFIED
    reasons = undecided + reasons
    h = entropy(case.data)
    h_lo, h_hi = h.interval(96)
    quantities: dict[str, Any] = {
        "case": case.name, "language": lang.name, "data": case.data.name,
        "entropy_nats": {"exact": str(h), "lower": decimal_string(h_lo, "down"), "upper": decimal_string(h_hi, "up")},
        "ood_prompts": len(ood.ood_prompts), "max_new_tokens": case.max_new_tokens,
    }
    for label, mc, (got, want) in (("q1", checks[0], metrics[0]), ("q2", checks[1], metrics[1])):
        seen = {k: None if got is None else getattr(got, k) for k in ("ood_r1", "ood_r2_completion", "ood_finished", "tied")}
        quantities[label] = {**mc.summary(), "ood_r1": seen["ood_r1"], "ood_r1_construction": want.ood_r1,
                             "ood_r2_completion": seen["ood_r2_completion"], "ood_finished": seen["ood_finished"],
                             "tied_steps": seen["tied"]}
        if exact:
            quantities[label]["evaluation"] = "exact" if label in crossed else "enclosure (exact evaluation refused)"
            if label in crossed:
                quantities[label]["cross_check"] = crossed[label]

    def r1(g: Any, spec: str) -> str:
        return "n/a" if g is None else format(float(g.ood_r1), spec)

    kls = [mc.summary()["kl_upper"] for mc in checks]
    tvs = [mc.summary()["max_tv_upper"] for mc in checks]
    how = "exact, cross-checked against enclosures" if exact else "enclosed"
    detail = (f"{checks[0].prefixes:,} prefixes, {how}; max TV <= {tvs[0]}, {tvs[1]}; "
              f"KL <= {kls[0]}, {kls[1]}; OOD R1 {r1(g1, '.3f')} vs {r1(g2, '.3f')}")
    bound = "" if kl_bound is None else f" and KL(P || Q) <= {kl_bound:g} nats"
    what = ("The exact rational functions of two transformers' stored weights (computed with no floating-point "
            "operation; only the final log-softmax is an interval, of width ~2^-100)" if exact else
            subject or "The real functions of two transformers' stored weights")
    claim = (f"{what} are within TV {tolerance:g} of the {case.name} "
             f"completer and violator on every one of {checks[0].prefixes:,} prefixes (support and OOD paths){bound}, and "
             f"on the {len(ood.ood_prompts)} OOD prompts their greedy completions are the constructions', with OOD R1 "
             f"accuracies {r1(g1, '.3g')} vs {r1(g2, '.3g')}.")
    if exact:
        claim += (" Every exact log-probability lies inside the rigorous float enclosure of the same network."
                  + (f" {design_claim}" if design_claim else ""))
    premises = EXACT_ASSUMPTIONS if exact else assumptions
    bounds_line = ("max TV and KL are upper bounds computed from the exact logits' mpmath intervals, in rationals"
                   if exact else
                   "max TV and KL are upper bounds computed from the enclosures: TV with exact rational rows bracketed by "
                   "floats and a rigorous exp, KL as an exact rational sum minus an mpmath enclosure of H(P)")
    return Certificate(
        check=check_name or f"counterexample-{case.name}", claim=claim, status=status, method="exhaustive",
        detail=detail, reason="; ".join(reasons), quantities=quantities,
        assumptions=(
            *premises,
            bounds_line,
            f"every prefix of the checked set is evaluated: all support prefixes, the prompts and their prefixes, and "
            f"the greedy paths of both constructions (at most {case.max_new_tokens} tokens)",
            "a network's greedy token is certified only where its log-probability's lower bound exceeds every other "
            "outcome's upper bound; a tie or an overlap is a failure, never broken by order",
        ),
        versions=library_versions(*versions),
        elapsed_s=time.perf_counter() - t0,
    )
