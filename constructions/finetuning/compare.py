"""Exhaustive function equality: two models' real functions compared at every prefix up to a length,
from rigorous enclosures of their next-token log-probabilities (:func:`compare_functions`, its record
:class:`FunctionComparison`, :func:`default_rtol`), the enclosure cache, and the float evaluation of
every prefix's log-probabilities (:func:`prefix_log_probs`) that the fine-tuning gap reads."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from constructions.transformer import DecoderTransformer
from theory.certificate import Status
from theory.errors import InputTooLong, InvalidBudget, InvalidReparametrisation
from theory.validation import check_int


def default_rtol(dtype: torch.dtype) -> float:
    """The relative tolerance of :func:`compare_functions`: 1e-4, in float64 and float32 alike.

    Why: the comparison is of rigorous enclosures of the two real functions' log-probabilities
    (:mod:`constructions.enclosure`), so the bound it tests includes both enclosures' widths — about
    1e-6 nats for the Proposition 3 model (float64, pre-LN, d_model 16), ~1e-7 relative more for
    float32 weights rounded by the map.  1e-4 leaves two orders of magnitude for that and sits three
    below any real change (a wrong inverse moves log-probabilities by O(0.1–1))."""
    return 1e-4


def _maximal_words(n_symbols: int, length: int, batch_size: int) -> Iterator[tuple[int, torch.Tensor]]:
    """All n_symbols**length words as (first index, (batch, length) digit tensor), in lexicographic
    order (digit 0 = first symbol)."""
    total = n_symbols ** length
    powers = torch.tensor([n_symbols ** (length - 1 - i) for i in range(length)], dtype=torch.long)
    for start in range(0, total, batch_size):
        idx = torch.arange(start, min(total, start + batch_size), dtype=torch.long)
        yield start, (idx[:, None] // powers[None]) % n_symbols


def _tokens(model: DecoderTransformer, digits: torch.Tensor) -> torch.Tensor:
    sos = torch.full((digits.shape[0], 1), model.config.sos_id, dtype=torch.long)
    return torch.cat([sos, digits], dim=1).to(model.device)


def _check_length(model: DecoderTransformer, length: int) -> None:
    check_int(length, "prefix length", minimum=0, error=InvalidBudget)
    if length + 1 > model.config.max_len:
        raise InputTooLong(f"prefix length {length} needs {length + 1} positions; max_len is {model.config.max_len}")


@dataclass(frozen=True)
class FunctionComparison:
    """The result of :func:`compare_functions`.

    Attributes:
        length: every prefix of length 0..length was compared.
        n_prefixes: how many distinct prefixes that is (Σₙ |Σ|ⁿ).
        n_strings: how many maximal strings were evaluated (|Σ|^length).
        max_abs_diff: a rigorous upper bound of max over prefixes and outcomes of |log q₁ − log q₂|, the
            two models' real functions (enclosures, :mod:`constructions.enclosure`); +∞ when unbounded.
        max_abs_logit: the largest |log q| bound seen (the scale of the relative tolerance).
        rtol: relative tolerance; ``tolerance = rtol · max(1, max_abs_logit)``.
        tolerance: the bound max_abs_diff is compared with.
        worst_prefix: the prefix (a word over Σ; ``""`` is the empty prefix) where max_abs_diff occurs.
        worst_outcome: the outcome (symbol or EOS) of that log-probability.
        dtype: the precision the weights are stored in (the enclosures are float64 interval arithmetic).
        max_radius: the widest log-probability enclosure of the two (half-width).
        certain_diff: a rigorous *lower* bound of max |log q₁ − log q₂| (0 when the enclosures overlap
            everywhere): the functions certainly differ by at least this at ``certain_prefix``.
        certain_prefix: where it is attained.
    """

    length: int
    n_prefixes: int
    n_strings: int
    max_abs_diff: float
    max_abs_logit: float
    rtol: float
    tolerance: float
    worst_prefix: str
    worst_outcome: str
    dtype: str
    max_radius: float = 0.0
    certain_diff: float = 0.0
    certain_prefix: str = ""

    @property
    def equal(self) -> bool:
        """Shown: every |Δ log q| is within the tolerance."""
        return self.max_abs_diff <= self.tolerance

    @property
    def differs(self) -> bool:
        """Shown: some |Δ log q| certainly exceeds the tolerance (neither this nor ``equal``: undecided)."""
        return self.certain_diff > self.tolerance

    @property
    def status(self) -> Status:
        return Status.VERIFIED if self.equal else Status.FALSIFIED if self.differs else Status.UNKNOWN


def _all_words(symbols: str, length: int) -> list[str]:
    return ["".join(p) for p in itertools.product(symbols, repeat=length)]


_ENCLOSURES: dict[tuple[str, int], object] = {}
"""Enclosures by (SHA-256 of config and weights, length): the base model of Proposition 3 is compared with
several twins, and its enclosure is the same each time."""


def model_key(model: DecoderTransformer) -> str:
    """SHA-256 of a model's config and weights (a model changed in place gets a new key)."""
    import hashlib

    h = hashlib.sha256(repr(model.config).encode())
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _enclosure(model: DecoderTransformer, length: int):
    """The enclosure of ``model`` over every prefix of length ≤ ``length``, cached by the SHA-256 of its
    config and weights (a model changed in place is a new key)."""
    from constructions.enclosure import enclose_words, why_not_enclosable
    from theory.errors import InvalidModelConfig

    why = why_not_enclosable(model)  # before the cache: a forged class with the same weights is not a hit
    if why:
        raise InvalidModelConfig(f"the rigorous evaluator cannot enclose this network: {why}")
    key = (model_key(model), length)
    enc = _ENCLOSURES.get(key)
    if enc is None:
        enc = enclose_words(model, _all_words(model.config.alphabet, length))
        if len(_ENCLOSURES) >= 8:
            _ENCLOSURES.pop(next(iter(_ENCLOSURES)))
        _ENCLOSURES[key] = enc
    return enc


def compare_functions(model: DecoderTransformer, other: DecoderTransformer, length: int,
                      rtol: float | None = None, batch_size: int = 4096) -> FunctionComparison:
    """Compare two models' real functions at every prefix of length ≤ ``length``, exhaustively, from
    rigorous enclosures of their next-token log-probabilities (never from a float evaluation):
    ``max_abs_diff`` = max over prefixes and outcomes of max(hi₁ − lo₂, hi₂ − lo₁) bounds |Δ log q|.
    By causality the |Σ|^length maximal strings give every prefix.  ``batch_size`` is unused (kept for
    callers); the evaluator batches by memory.

    Raises:
        InputTooLong: ``length + 1`` exceeds either model's ``max_len``.  InvalidBudget: a length that is
        not an int >= 0.
        InvalidReparametrisation: the models have different alphabets.
    """
    if model.config.alphabet != other.config.alphabet:
        raise InvalidReparametrisation(
            f"models over different alphabets {model.config.alphabet!r} and {other.config.alphabet!r}")
    _check_length(model, length)
    _check_length(other, length)
    dtype = model.config.torch_dtype if model.config.dtype == "float32" else other.config.torch_dtype
    rtol = default_rtol(dtype) if rtol is None else float(rtol)
    ea = _enclosure(model, length)
    eb = _enclosure(other, length)
    diff = np.maximum(ea.lp_hi - eb.lp_lo, eb.lp_hi - ea.lp_lo)
    diff = np.where(np.isfinite(diff), diff, np.inf)
    flat = int(np.argmax(diff))
    row, outcome = divmod(flat, diff.shape[1])
    worst = float(np.nextafter(diff.flat[flat], np.inf))
    sure = np.maximum(ea.lp_lo - eb.lp_hi, eb.lp_lo - ea.lp_hi)
    sure = np.where(np.isfinite(sure), sure, 0.0).clip(min=0.0)
    s_flat = int(np.argmax(sure))
    certain = float(np.nextafter(sure.flat[s_flat], -np.inf)) if sure.flat[s_flat] > 0 else 0.0
    scale = np.concatenate([np.abs(ea.lp_lo), np.abs(eb.lp_lo)])
    max_logit = float(scale[np.isfinite(scale)].max()) if np.isfinite(scale).any() else 0.0
    return FunctionComparison(
        length=length, n_prefixes=len(ea.prefixes), n_strings=len(model.config.alphabet) ** length,
        max_abs_diff=worst, max_abs_logit=max_logit, rtol=rtol, tolerance=rtol * max(1.0, max_logit),
        worst_prefix=ea.prefixes[row], worst_outcome=model.alphabet.outcomes[outcome],
        dtype=str(dtype).replace("torch.", ""), max_radius=max(ea.max_radius, eb.max_radius),
        certain_diff=certain, certain_prefix=ea.prefixes[s_flat // diff.shape[1]],
    )


@torch.no_grad()
def prefix_log_probs(model: DecoderTransformer, length: int, batch_size: int = 4096) -> tuple[list[str], torch.Tensor]:
    """Every prefix u with |u| ≤ ``length`` (shortest first, then lexicographic) and log q(· | u), shape
    (n_prefixes, |Σ| + 1), from one pass over the maximal strings (each prefix read off once: at the
    maximal string that continues it with the first symbol only)."""
    _check_length(model, length)
    n, symbols = len(model.config.alphabet), model.config.alphabet
    by_length: list[list[torch.Tensor]] = [[] for _ in range(length + 1)]
    for _, digits in _maximal_words(n, length, batch_size):
        lp = model.log_probs(_tokens(model, digits))
        for t in range(length + 1):
            canonical = (digits[:, t:] == 0).all(dim=1)
            by_length[t].append(lp[canonical.to(lp.device), t])
    prefixes = ["".join(w) for t in range(length + 1) for w in _words(symbols, t)]
    return prefixes, torch.cat([torch.cat(rows) for rows in by_length])


def _words(symbols: str, t: int) -> Iterator[str]:
    from itertools import product

    return ("".join(w) for w in product(symbols, repeat=t))


@dataclass(frozen=True)
class BitwiseComparison:
    """The float64 forward passes of two models at every prefix up to ``length``, in one layout.

    Attributes:
        length, n_prefixes: every prefix of length 0..length (Σₙ |Σ|ⁿ of them).
        max_abs_dlogit: max |Δ logit| over prefixes and outcomes of the two float passes (float64).
        identical: the two logit tensors are equal bit for bit (``torch.equal``).
        worst_prefix: where max_abs_dlogit occurs (``""`` when identical).
    """

    length: int
    n_prefixes: int
    max_abs_dlogit: float
    identical: bool
    worst_prefix: str


@torch.no_grad()
def prefix_logits(model: DecoderTransformer, length: int) -> tuple[list[str], torch.Tensor]:
    """Every prefix u with |u| ≤ ``length`` (as :func:`prefix_log_probs`) and the float logits at u, from
    one batch of the |Σ|^length maximal strings: the evaluation layout is fixed by the length alone."""
    _check_length(model, length)
    n, symbols = len(model.config.alphabet), model.config.alphabet
    _, digits = next(_maximal_words(n, length, n ** length))
    z = model(_tokens(model, digits))
    rows = [z[(digits[:, t:] == 0).all(dim=1).to(z.device), t] for t in range(length + 1)]
    return ["".join(w) for t in range(length + 1) for w in _words(symbols, t)], torch.cat(rows)


def bitwise_identity(model: DecoderTransformer, other: DecoderTransformer, length: int) -> BitwiseComparison:
    """Evaluate both models' float passes at every prefix up to ``length`` in the same layout and compare
    the logits bit for bit.  A statement about *these float passes*, not about the real functions (for
    those: :func:`compare_functions`)."""
    prefixes, za = prefix_logits(model, length)
    _, zb = prefix_logits(other, length)
    diff = (za - zb).abs()
    identical = bool(torch.equal(za, zb))
    worst = "" if identical else prefixes[int(diff.max(dim=1).values.argmax())]
    top = float(diff.max()) if not identical else 0.0
    return BitwiseComparison(length, len(prefixes), top if top == top else float("inf"), identical, worst)
