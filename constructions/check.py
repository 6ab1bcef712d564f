"""The exhaustive checker: the one verdict path for every network the project produces (compiled,
distilled, trained).

:func:`evaluate` runs a :class:`DecoderTransformer` over the *maximal* words of a prefix-closed
:class:`~constructions.compile.PrefixSet` in large batches; causality makes every position of a
maximal word the next-token distribution of one of its prefixes, so every prefix of the set is read
off one pass.  :func:`check_model` compares those rows with the construction's exact rows:

* **max total variation** over every prefix of the set, with the worst prefix named — the verdict:
  ``verified`` iff it is ≤ the stated tolerance (computed in float64 from the exact rationals; its
  rounding error, < 1e−15, is far below any tolerance the project uses);
* **max |Δ log p|** over the tokens with p > 0 at support prefixes (reported, with its prefix);
* **KL(P ‖ model)** as a rigorous interval, for finite data P.  The model is taken to be
  softmax(z) of the float64 logits z the network computed (exact dyadic rationals); then
  KL = CE − H(P) with CE = Σ_u [P(u)·lse(z_u) − Σ_a P(ua) z_{u,a}]: the second sum is done exactly in
  rationals, the log-sum-exps and H(P) by mpmath interval arithmetic.  No float error is hidden; the
  only thing taken as given is that the float64 forward pass *is* the model;
* **OOD property values** (the companion paper's greedy rule metrics) of the network itself, through
  :class:`TorchARModel`, an adapter that makes it an :class:`~theory.models.ARModel` with exact rows.

:func:`check_pair` turns two such checks into the Proposition 1 certificate for a network pair.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable

import numpy as np
import torch

from constructions.compile.prefixes import PrefixSet
from constructions.transformer import DecoderTransformer
from theory.alphabet import Alphabet
from theory.certificate import Certificate, Status, library_versions
from theory.data import DataDistribution
from theory.errors import InputTooLong, InvalidDistribution, InvalidModelConfig
from theory.exact import decimal_string
from theory.losses import entropy
from theory.models import ARModel
from theory.probability import NextTokenDistribution

DEFAULT_TOLERANCE = 1e-9
"""Max TV accepted for a compiled network (its logit floor costs ~1e−17, float64 rounding ~1e−15)."""
BATCH_ELEMENTS = 1 << 23
"""Activations per forward batch (rows × positions × widest layer), ~64 MiB in float64."""


# ---- evaluation ------------------------------------------------------------------------------------
def _layout(prefixes: PrefixSet) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Maximal words sorted by length, and for each prefix (in set order) its (word, position)."""
    words = sorted(prefixes.maximal, key=len)
    where: dict[str, tuple[int, int]] = {}
    for i, w in enumerate(words):
        for t in range(len(w), -1, -1):
            u = w[:t]
            if u in where:
                break  # every shorter prefix of w is assigned too (the set is prefix-closed)
            where[u] = (i, t)
    rows = np.fromiter((where[u][0] for u in prefixes.prefixes), dtype=np.int64, count=len(prefixes))
    cols = np.fromiter((where[u][1] for u in prefixes.prefixes), dtype=np.int64, count=len(prefixes))
    return words, rows, cols


def evaluate(net: DecoderTransformer, prefixes: PrefixSet, *, device: str | torch.device | None = None,
             batch_elements: int = BATCH_ELEMENTS) -> np.ndarray:
    """The logits of ``net`` at every prefix of ``prefixes`` (in set order), shape (len(prefixes), |Σ| + 1),
    float64 on the CPU, from one batched pass over the maximal words.

    Raises:
        InvalidModelConfig: the network is over another alphabet.
        InputTooLong: a word longer than the network's positional range.
    """
    if str(net.alphabet) != prefixes.alphabet:
        raise InvalidModelConfig(f"network is over {str(net.alphabet)!r}, the prefix set over {prefixes.alphabet!r}")
    words, rows, cols = _layout(prefixes)
    cfg = net.config
    width = max(cfg.d_model, cfg.d_mlp, cfg.n_heads * cfg.d_head)
    out = np.empty((len(prefixes), cfg.n_outputs), dtype=np.float64)
    order = np.argsort(rows, kind="stable")
    rows_sorted, cols_sorted = rows[order], cols[order]
    start_of = np.searchsorted(rows_sorted, np.arange(len(words) + 1))
    was_training, home = net.training, net.device
    net.eval()
    if device is not None:
        net.to(device)
    try:
        with torch.inference_mode():
            def cost(rows: int, t: int) -> int:  # activations of a batch padded to t positions
                return rows * t * max(width, t * cfg.n_heads)

            i = 0
            while i < len(words):
                j = i + 1  # words are sorted by length, so a batch's padding is set by its last word
                while j < len(words) and cost(j + 1 - i, len(words[j]) + 1) <= batch_elements:
                    j += 1
                t = len(words[j - 1]) + 1
                tokens = net.encode(words[i:j], length=t)
                logits = net(tokens)
                a, b = start_of[i], start_of[j]
                r = torch.as_tensor(rows_sorted[a:b] - i, device=logits.device)
                c = torch.as_tensor(cols_sorted[a:b], device=logits.device)
                out[order[a:b]] = logits[r, c].to(torch.float64).cpu().numpy()
                i = j
    finally:
        net.train(was_training)
        if device is not None:
            net.to(home)  # Module.to moves in place: give the caller its network back where it was
    return out


def scientific(x: Fraction, direction: str, digits: int = 3) -> str:
    """``x`` ≥ 0 in scientific notation with ``digits`` significant digits, rounded toward +∞ ("up") or
    −∞ ("down"), so a printed bound still bounds."""
    x = Fraction(x)
    if x <= 0:
        return "0"
    e = math.floor(math.log10(x.numerator) - math.log10(x.denominator))
    shift = e - digits + 1
    scaled = x / Fraction(10) ** shift
    n = math.ceil(scaled) if direction == "up" else math.floor(scaled)
    if n >= 10 ** digits:  # rounding up carried into a new digit
        n, shift = -(-n // 10), shift + 1
    text = str(n)
    return f"{text[0]}.{text[1:]}e{shift + len(text) - 1:+03d}" if len(text) > 1 else f"{text}e{shift:+03d}"


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
        self.alphabet: Alphabet = alphabet if alphabet is not None else net.alphabet
        self.encode = encode if encode is not None else net.encode
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
            row = NextTokenDistribution._trusted(self.alphabet, tuple(x / total for x in fr))
            self._rows[prefix] = row
        return row

    def __repr__(self) -> str:
        return f"TorchARModel({self.name!r})"


# ---- one model -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelCheck:
    """The comparison of one network with one construction on one prefix set.

    ``kl_lo``/``kl_hi`` are rigorous bounds on KL(P ‖ softmax z) (``None`` without finite data).
    ``logits`` (prefix → float64 logits) feeds :class:`TorchARModel`."""

    prefixes: int
    words: int
    tolerance: float
    max_tv: float
    worst_prefix: str
    max_dlogp_support: float | None
    worst_support_prefix: str | None
    kl_lo: Fraction | None
    kl_hi: Fraction | None
    seconds: float
    nonfinite: bool
    logits: dict[str, np.ndarray] = field(repr=False, compare=False, default_factory=dict)

    @property
    def within_tolerance(self) -> bool:
        return not self.nonfinite and self.max_tv <= self.tolerance

    def summary(self) -> dict[str, Any]:
        return {
            "prefixes_checked": self.prefixes, "maximal_words": self.words, "tolerance_tv": self.tolerance,
            "max_tv": self.max_tv, "worst_prefix": self.worst_prefix,
            "max_abs_dlogp_support": self.max_dlogp_support, "worst_support_prefix": self.worst_support_prefix,
            "kl_upper": None if self.kl_hi is None else scientific(self.kl_hi, "up"),
            "kl_lower": None if self.kl_lo is None else scientific(self.kl_lo, "down"),
            "nonfinite_logits": self.nonfinite,
        }


def rigorous_kl(data: DataDistribution, prefixes: PrefixSet, logits: np.ndarray, prec: int = 96) -> tuple[Fraction, Fraction]:
    """[lo, hi] ∋ KL(P ‖ softmax z) for finite ``data``, ``logits`` aligned with ``prefixes`` (module docstring).

    Raises:
        InvalidDistribution: infinite data, or a support prefix missing from ``prefixes``.
    """
    from mpmath import iv

    if not data.is_finite:
        raise InvalidDistribution(f"data {data.name!r} may have infinite support: the exhaustive KL needs a finite one")
    pos = {u: i for i, u in enumerate(prefixes.prefixes)}
    den, nodes = data.integer_trie()
    by_z: dict[tuple[float, ...], int] = {}
    exact = Fraction(0)
    for u, mass, masses in nodes:
        i = pos.get(u)
        if i is None:
            raise InvalidDistribution(f"support prefix {u!r} is not in the checked prefix set")
        z = tuple(float(x) for x in logits[i])
        by_z[z] = by_z.get(z, 0) + mass
        for m, x in zip(masses, z):
            if m:
                exact += m * Fraction(x)
    old = iv.prec
    try:
        iv.prec = prec
        ce = iv.mpf(0)
        for z, w in by_z.items():
            ce += iv.mpf(w) * iv.log(sum((iv.exp(iv.mpf(x)) for x in z), iv.mpf(0)))
        ce = (ce - iv.mpf(exact.numerator) / iv.mpf(exact.denominator)) / iv.mpf(den)
        kl = ce - entropy(data).enclosure(prec)
        from theory.exact import _mpf_to_fraction

        lo, hi = (_mpf_to_fraction(e) for e in kl._mpi_)
    finally:
        iv.prec = old
    return max(lo, Fraction(0)), max(hi, Fraction(0))  # KL ≥ 0 (Gibbs) tightens the lower end


def check_model(net: DecoderTransformer, construction: ARModel, prefixes: PrefixSet, *,
                data: DataDistribution | None = None, tolerance: float = DEFAULT_TOLERANCE,
                device: str | torch.device | None = None) -> ModelCheck:
    """Compare ``net`` with ``construction`` on every prefix of ``prefixes`` (module docstring).

    Raises:
        InvalidModelConfig: alphabets differ or the tolerance is not a number in [0, 1].
        InvalidDistribution: ``data`` infinite or with a support prefix outside the set.
    """
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 <= tolerance <= 1:
        raise InvalidModelConfig(f"tolerance {tolerance!r} is not a number in [0, 1]")
    if str(construction.alphabet) != prefixes.alphabet:
        raise InvalidModelConfig(f"construction is over {str(construction.alphabet)!r}, the prefix set over {prefixes.alphabet!r}")
    t0 = time.perf_counter()
    z = evaluate(net, prefixes, device=device)
    nonfinite = not bool(np.isfinite(z).all())
    lq = _log_softmax(np.nan_to_num(z, nan=0.0, posinf=1e300, neginf=-1e300))
    rows = [construction.next_token(u).probs for u in prefixes.prefixes]
    p = np.array([[float(x) for x in r] for r in rows], dtype=np.float64)
    tv = 0.5 * np.abs(p - np.exp(lq)).sum(axis=1)
    worst = int(np.argmax(tv))
    dlogp, worst_s = None, None
    if data is not None:
        sup = np.array([data.in_support(u) for u in prefixes.prefixes], dtype=bool)
        with np.errstate(divide="ignore"):
            lp = np.log(p)
        d = np.where((p > 0) & sup[:, None], np.abs(lp - lq), 0.0).max(axis=1)
        k = int(np.argmax(np.where(sup, d, -1.0)))
        dlogp, worst_s = float(d[k]), prefixes.prefixes[k]
    kl_lo = kl_hi = None
    if data is not None and not nonfinite:
        kl_lo, kl_hi = rigorous_kl(data, prefixes, z)
    cache = {u: z[i] for i, u in enumerate(prefixes.prefixes)}
    return ModelCheck(len(prefixes), len(prefixes.maximal), float(tolerance), float(tv[worst]), prefixes.prefixes[worst],
                      dlogp, worst_s, kl_lo, kl_hi, time.perf_counter() - t0, nonfinite, cache)


# ---- a Proposition 1 pair --------------------------------------------------------------------------
def check_pair(case: Any, q1: DecoderTransformer, q2: DecoderTransformer, prefixes: PrefixSet, *,
               tolerance: float = DEFAULT_TOLERANCE, device: str | torch.device | None = None,
               check_name: str | None = None) -> Certificate:
    """The exhaustive certificate for a network pair of a rule-extrapolation ``case``
    (:class:`constructions.rule_extrapolation.RuleCase`): ``verified`` iff both networks are within
    ``tolerance`` (max TV) of the case's completer resp. violator on every prefix of ``prefixes`` and their
    own greedy OOD R1 accuracies are those of the constructions and differ.  Otherwise ``falsified``
    with the worst prefix named — also for non-finite logits (no OOD metric is read from such a network)
    and for a greedy OOD completion that runs past the network's positional range.
    """
    from theory.prompts import PromptSet
    from theory.properties import rule_metrics

    t0 = time.perf_counter()
    lang = case.language
    ood = PromptSet(lang, (), tuple(case.ood_prompts))
    checks, metrics, reasons = [], [], []
    for label, net, target in (("Q1", q1, case.completer), ("Q2", q2, case.violator)):
        mc = check_model(net, target, prefixes, data=case.data, tolerance=tolerance, device=device)
        checks.append(mc)
        # non-finite logits are no distribution to decode from: the check has failed, and no OOD metric is read
        got, lost = None, ""
        if not mc.nonfinite:
            try:
                got = rule_metrics(TorchARModel(net, mc.logits, name=label), lang, ood, case.max_new_tokens)
            except InputTooLong as e:  # only a network off its construction's greedy paths walks that far
                lost = f"{label}: a greedy OOD completion leaves the network's positional range ({e})"
        want = rule_metrics(target, lang, ood, case.max_new_tokens)
        metrics.append((got, want))
        if mc.nonfinite:
            reasons.append(f"{label}: non-finite logits")
        elif not mc.within_tolerance:
            reasons.append(f"{label}: max TV {mc.max_tv:.3g} > tolerance {tolerance:g} at prefix {mc.worst_prefix!r}")
        if lost:
            reasons.append(lost)
        if got is not None and got.ood_r1 != want.ood_r1:
            reasons.append(f"{label}: greedy OOD R1 accuracy {float(got.ood_r1):.4g}, the construction's is {float(want.ood_r1):.4g}")
    (g1, w1), (g2, w2) = metrics
    if not reasons and g1.ood_r1 == g2.ood_r1:
        reasons.append(f"OOD R1 accuracies are equal ({float(g1.ood_r1):.4g}): no gap")
    status = Status.FALSIFIED if reasons else Status.VERIFIED
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

    def r1(g: Any, spec: str) -> str:
        return "n/a" if g is None else format(float(g.ood_r1), spec)

    kls = [scientific(mc.kl_hi, "up") if mc.kl_hi is not None else "?" for mc in checks]
    detail = (f"{checks[0].prefixes:,} prefixes; max TV {max(c.max_tv for c in checks):.1e}; "
              f"KL <= {kls[0]}, {kls[1]}; OOD R1 {r1(g1, '.3f')} vs {r1(g2, '.3f')}")
    claim = (f"Two transformers whose next-token distributions are within TV {tolerance:g} of the {case.name} completer and "
             f"violator on every one of {checks[0].prefixes:,} prefixes (support and OOD paths) have test loss "
             f"H(P) + KL with KL rigorously bounded, and greedy OOD R1 accuracies {r1(g1, '.3g')} vs {r1(g2, '.3g')}.")
    return Certificate(
        check=check_name or f"counterexample-{case.name}", claim=claim, status=status, method="exhaustive",
        detail=detail, reason="; ".join(reasons), quantities=quantities,
        assumptions=(
            "the float64 forward pass of each network is the model: KL is enclosed rigorously for softmax of the "
            "float64 logits it computed (exact dyadic rationals), by exact rational sums and mpmath interval arithmetic",
            "max TV is computed in float64 from the exact rational rows (rounding < 1e-15, far below the tolerance)",
            f"every prefix of the checked set is evaluated: all support prefixes, the prompts and their prefixes, and "
            f"the greedy paths of both constructions (at most {case.max_new_tokens} tokens)",
            "greedy completions of the networks are decoded from their exact rows (ties broken by outcome order)",
        ),
        versions=library_versions("torch", "safetensors", "numpy", "mpmath"),
        elapsed_s=time.perf_counter() - t0,
    )
