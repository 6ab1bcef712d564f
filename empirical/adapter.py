"""Bring your own network: any causal language model, with a token map, as a ``theory`` AR model.

A network someone trained elsewhere reads token ids and returns logits over *its* vocabulary, which
may be larger than Σ ∪ {EOS} (a BOS row, padding, a whole GPT-2 vocabulary).  Two objects turn it
into the project's interfaces:

* :class:`TokenMap` — which id each symbol, EOS, BOS (and PAD) is: ``a=0,b=1,eos=2,bos=3`` or read
  from a tokenizer (:func:`token_map_from_tokenizer`).  A word ``x`` is fed as ``[BOS, x₁ … xₙ]``; the
  logits at position t are the network's next-token scores after ``x₁ … xₜ``.
* :class:`NetworkModel` — the network as an :class:`~theory.models.ARModel`, batched and memoised:

  - :meth:`~NetworkModel.prefetch` evaluates many prefixes in batched float64 passes over their
    longest words (one pass reads every prefix of a word: attention is causal);
  - :meth:`~NetworkModel.next_token` is q(· | u) **renormalised over Σ ∪ {EOS}** — the float64
    full-softmax probabilities of the mapped ids read as exact rationals and divided by their exact
    sum (the argmax and any tie are the network's among the mapped ids).  What the network puts on
    other ids is :meth:`~NetworkModel.leaked_mass`; the saturation gap of :mod:`empirical.audit` uses the
    full softmax, never the renormalised rows;
  - :meth:`~NetworkModel.enclosure` gives log-probability bounds of the *full* softmax at every asked
    prefix, over every output id: **rigorous** (the real function of the stored weights,
    :mod:`constructions.enclosure`) when the network is a stock :class:`~constructions.transformer.DecoderTransformer`
    or another architecture the evaluator covers (:func:`constructions.enclosure.why_not_enclosable`),
    otherwise **float-logit intervals**: the float64 logits of one evaluation taken as exact points
    and log-softmaxed with rigorous rounding — bounds on that evaluation, not on the network
    (:attr:`~NetworkModel.rigorous` is then False and :attr:`~NetworkModel.evaluation` says why).

The first answer at a prefix is the answer: rows are memoised and a module is deep-copied at
construction (a caller who later changes the weights does not change this model).  A callable that
is not a module cannot be copied; its first answers are kept all the same.
"""

from __future__ import annotations

import copy
from fractions import Fraction
from typing import Any, Callable, Iterable, Sequence, cast

import numpy as np
import torch

from theory.alphabet import Alphabet
from theory.errors import InputTooLong, InvalidModel, InvalidModelConfig, UnknownToken
from theory.probability import NextTokenDistribution
from theory.tokenmap import TokenMap, example_map, native_token_map, parse_token_map, token_map_from_tokenizer  # noqa: F401  (re-exported)
from theory.validation import check_int

BATCH_ELEMENTS = 1 << 22
"""Float activations per batched pass (rows × positions × widest layer), about 32 MiB in float64."""


# ---- the network as an AR model ------------------------------------------------------------------------
def _call(network: Callable[..., Any], ids: torch.Tensor) -> torch.Tensor:
    out = network(ids)
    if hasattr(out, "logits"):  # a Hugging Face ModelOutput
        out = out.logits
    elif isinstance(out, (tuple, list)):
        out = out[0]
    if not isinstance(out, torch.Tensor) or out.dim() != 3 or out.shape[:2] != ids.shape:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise InvalidModelConfig(f"the network returned {shape} for ids of shape {tuple(ids.shape)}; expected logits "
                                 "(batch, positions, vocabulary)")
    return out


def _input_vocabulary(network: object) -> int | None:
    from constructions.transformer import DecoderTransformer

    if isinstance(network, DecoderTransformer):
        return network.config.n_inputs
    get = getattr(network, "get_input_embeddings", None)
    if callable(get):
        try:
            emb = get()
            return int(emb.num_embeddings)
        except Exception:  # noqa: BLE001 - a model without a readable embedding: probed by a forward instead
            return None
    return None


def positions_of(network: object) -> int | None:
    """The positions a network can read (a DecoderTransformer's max_len, a Hugging Face config's n_positions or
    max_position_embeddings, a ``max_positions`` attribute), or None."""
    return _positions(network)


def _positions(network: object) -> int | None:
    from constructions.transformer import DecoderTransformer

    if isinstance(network, DecoderTransformer):
        return network.config.max_len
    cfg = getattr(network, "config", None)
    for name in ("n_positions", "max_position_embeddings"):
        v = getattr(cfg, name, None)
        if isinstance(v, int):
            return v
    v = getattr(network, "max_positions", None)
    return v if isinstance(v, int) else None


class NetworkModel:
    """A causal network and its :class:`TokenMap` as a ``theory`` AR model (module docstring).

    Args:
        network: a ``torch.nn.Module`` or any callable mapping an id tensor (batch, T) to logits (batch,
            T, V) (or an object with ``.logits``, as Hugging Face models return).  A module is deep-copied,
            put in eval mode and evaluated in float64 on ``device`` (default: where its weights are).
        tokens: the token map, over the language's alphabet.
        context: the most positions (BOS included) the network may read: every prefix asked has at most
            ``context − 1`` symbols.
        name: for messages and reports.

    Raises:
        InvalidModelConfig: the network's vocabulary does not hold the map's ids, its positional range
            is shorter than ``context``, or a probe forward fails (named).  InvalidBudget-like
            UnknownToken: a bad ``context``.
    """

    def __init__(self, network: Callable[..., Any], tokens: TokenMap, context: int, *, name: str | None = None,
                 device: str | torch.device | None = None, batch_elements: int = BATCH_ELEMENTS) -> None:
        from constructions.enclosure import why_not_enclosable

        if not isinstance(tokens, TokenMap):
            raise UnknownToken(f"tokens must be a TokenMap, got {type(tokens).__name__}")
        check_int(context, "context length =", minimum=2, maximum=1 << 20, error=InvalidModelConfig)
        self.tokens = tokens
        self.context = context
        self.name = name or type(network).__name__
        if isinstance(network, torch.nn.Module):
            params = list(network.parameters())
            dev = torch.device(device) if device is not None else (params[0].device if params else torch.device("cpu"))
            net: Callable[..., Any] = copy.deepcopy(network).to(dev, torch.float64).eval()
            self.device = dev
            why = why_not_enclosable(net)
        elif callable(network):
            net = network
            self.device = torch.device(device) if device is not None else torch.device("cpu")
            why = f"a Python callable ({type(network).__name__}), not a network the evaluator reads"
        else:
            raise InvalidModelConfig(f"the network must be a torch module or a callable, got {type(network).__name__}")
        self.network = net
        self.rigorous = not why
        self.evaluation = ("rigorous enclosure of the real function of the stored weights" if not why else
                           f"float-logit intervals (one float64 evaluation; {why})")
        self.batch_elements = batch_elements
        positions = _positions(net)
        if positions is not None and context > positions:
            raise InvalidModelConfig(f"context length {context} exceeds the network's {positions} positions")
        n_in = _input_vocabulary(net)
        fed = [*zip(tokens.alphabet.symbols, tokens.symbols), ("bos", tokens.bos), ("pad", tokens.pad)]
        for role, v in fed:
            if n_in is not None and v >= n_in:
                raise InvalidModelConfig(f"token id {v} of {role!r} is outside the network's input vocabulary of {n_in} "
                                         f"ids (token map {tokens.text()})")
        probe = torch.tensor([[tokens.bos, *tokens.symbols, tokens.pad][:context]], dtype=torch.long)
        try:
            with torch.no_grad():
                z = _call(net, probe.to(self.device))
        except InvalidModelConfig:
            raise
        except Exception as e:  # noqa: BLE001 - the user's network: any failure on the probe is one line naming it
            raise InvalidModelConfig(f"the network cannot read the token map's ids {tokens.text()} "
                                     f"({type(e).__name__}): "
                                     f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
        self.vocabulary = int(z.shape[-1])
        for role, v in zip((*tokens.alphabet.symbols, "eos"), tokens.outcome_ids):
            if v >= self.vocabulary:
                raise InvalidModelConfig(f"token id {v} of {role!r} is outside the network's {self.vocabulary} outputs "
                                         f"(token map {tokens.text()})")
        self._cols = np.array(tokens.outcome_ids, dtype=np.int64)
        self._probs: dict[str, tuple[np.ndarray, float]] = {}
        self._rows: dict[str, NextTokenDistribution] = {}
        self._width = max([p.shape[-1] for p in net.parameters()], default=64) if isinstance(net, torch.nn.Module) else 64

    # -- the ARModel protocol --------------------------------------------------------------------------
    @property
    def alphabet(self) -> Alphabet:
        return self.tokens.alphabet

    def check_prefix(self, prefix: str) -> None:
        """Raises UnknownToken (a symbol outside the alphabet) or InputTooLong (beyond the context)."""
        self.alphabet.check_sequence(prefix, "prefix")
        if len(prefix) + 1 > self.context:
            raise InputTooLong(f"prefix of {len(prefix)} symbols needs {len(prefix) + 1} positions; the context "
                               f"length is {self.context}")

    def next_token(self, prefix: str) -> NextTokenDistribution:
        """q(· | prefix) over Σ ∪ {EOS}, renormalised exactly (module docstring).

        Raises: UnknownToken, InputTooLong; InvalidModel when every mapped probability underflows to 0."""
        row = self._rows.get(prefix)
        if row is None:
            probs, _leak = self.probabilities(prefix)
            fr = [Fraction(float(x)) for x in probs]
            total = sum(fr, Fraction(0))
            if total == 0:
                raise InvalidModel(f"{self.name}: every symbol and EOS has float64 probability 0 at prefix {prefix!r}")
            row = NextTokenDistribution.from_exact(self.alphabet, tuple(x / total for x in fr), where=prefix)
            self._rows[prefix] = row
        return row

    def state_key(self, prefix: str) -> str:  # no two prefixes are known to share a state
        return prefix

    # -- batched float evaluation ---------------------------------------------------------------------------
    def probabilities(self, prefix: str) -> tuple[np.ndarray, float]:
        """(float64 full-softmax probabilities of Σ ∪ {EOS}, float mass on every other id) at ``prefix``."""
        got = self._probs.get(prefix)
        if got is None:
            self.prefetch([prefix])
            got = self._probs[prefix]
        return got

    def leaked_mass(self, prefix: str) -> float:
        return self.probabilities(prefix)[1]

    def prefetch(self, prefixes: Iterable[str]) -> None:
        """Evaluate every prefix not yet memoised, in batched float64 passes over the longest words."""
        todo = [u for u in dict.fromkeys(prefixes) if u not in self._probs]
        for u in todo:
            self.check_prefix(u)
        if not todo:
            return
        for words, t, logits in self._passes(todo):
            lp = torch.log_softmax(logits, dim=-1)
            sel = lp[..., torch.as_tensor(self._cols)].exp().cpu().numpy()
            for i, w in enumerate(words):
                for k in range(len(w) + 1):
                    u = w[:k]
                    if u not in self._probs:
                        p = sel[i, k].copy()
                        self._probs[u] = (p, max(0.0, 1.0 - float(p.sum())))

    def _passes(self, prefixes: Sequence[str]) -> Iterable[tuple[list[str], int, torch.Tensor]]:
        from constructions.enclosure import batches, maximal_words

        maximal = maximal_words(prefixes)

        def cost(n: int, t: int) -> int:
            return n * t * max(self._width, t, self.vocabulary)

        with torch.no_grad():
            for batch in batches(maximal, maximal, cost, self.batch_elements):
                ids = self.tokens.encode(batch.words, length=batch.length).to(self.device)
                yield batch.words, batch.length, _call(self.network, ids).to(torch.float64)

    def logits(self, prefixes: Sequence[str]) -> np.ndarray:
        """Float64 logits over all V outputs at each prefix (not memoised: for greedy decoding)."""
        out = np.empty((len(prefixes), self.vocabulary), dtype=np.float64)
        where = {u: i for i, u in enumerate(prefixes)}
        for words, _t, z in self._passes(list(prefixes)):
            zc = z.cpu().numpy()
            for i, w in enumerate(words):
                for k in range(len(w) + 1):
                    j = where.get(w[:k])
                    if j is not None:
                        out[j] = zc[i, k]
        return out

    # -- enclosures -------------------------------------------------------------------------------------------
    def enclosure(self, prefixes: Sequence[str]):
        """Bounds on log q(a | u) of the full softmax, every output id a, every prefix (module docstring):
        an :class:`constructions.enclosure.Enclosure` (columns: the network's V outputs)."""
        import time

        from constructions.balls import Ball
        from constructions.enclosure import Enclosure, enclose, log_softmax_bounds, maximal_words

        prefixes = tuple(dict.fromkeys(prefixes))
        for u in prefixes:
            self.check_prefix(u)
        if self.rigorous:
            return enclose(cast(torch.nn.Module, self.network), maximal_words(prefixes), prefixes, encode=self.tokens.encode, device=self.device)
        t0 = time.perf_counter()
        z = self.logits(prefixes)
        zt = torch.as_tensor(z)
        lo, hi = log_softmax_bounds(Ball(zt, torch.zeros_like(zt)))
        return Enclosure(prefixes, lo.numpy(), hi.numpy(), z, time.perf_counter() - t0, str(self.device),
                         {u: k for k, u in enumerate(prefixes)})

    def outcome_enclosure(self, enc):
        """``enc`` cut to the columns Σ ∪ {EOS} (still the full softmax's log-probabilities)."""
        from constructions.enclosure import Enclosure

        return Enclosure(enc.prefixes, enc.lp_lo[:, self._cols], enc.lp_hi[:, self._cols], enc.logits_mid[:, self._cols],
                         enc.seconds, enc.device, enc.index)

    def __repr__(self) -> str:
        return f"NetworkModel({self.name!r}, {self.tokens.text()}, context={self.context})"


def leaked_mass_bounds(enc_full, cols: Sequence[int]) -> tuple[float, float]:
    """[lo, hi] ∋ the largest mass the full softmax puts outside ``cols`` over the enclosure's prefixes:
    max_u (1 − Σ_{a ∈ cols} q(a | u)), from the log-probability bounds with the project's rigorous
    ball exp and sums (:mod:`constructions.balls`), so it bounds what the enclosure bounds."""
    from constructions.balls import Ball, exp

    if not len(enc_full.prefixes) or sorted(cols) == list(range(enc_full.lp_lo.shape[1])):
        return 0.0, 0.0  # no prefix, or every output is mapped: nothing can leak
    lo = torch.as_tensor(enc_full.lp_lo[:, list(cols)])
    hi = torch.as_tensor(enc_full.lp_hi[:, list(cols)])
    if not (torch.isfinite(lo).all() and torch.isfinite(hi).all()):
        return 0.0, 1.0
    inside = exp(Ball.from_bounds(lo, hi)).sum(-1)
    leak = Ball.exact(torch.ones_like(inside.m)) - inside
    return max(0.0, float(leak.lo.max())), min(1.0, float(leak.hi.max()))


def as_network_model(network: object, tokens: TokenMap | str | None, context: int | None, alphabet: Alphabet | str, *,
                     name: str | None = None) -> NetworkModel:
    """A :class:`NetworkModel` from a network and a token map given as a TokenMap or its text (for a
    DecoderTransformer both may be left out: its own layout and ``max_len``)."""
    from constructions.transformer import DecoderTransformer

    ab = Alphabet(alphabet) if isinstance(alphabet, str) else alphabet
    if tokens is None:
        if not isinstance(network, DecoderTransformer):
            raise UnknownToken(f"a {type(network).__name__} needs a token map (e.g. {example_map(ab)})")
        tokens = native_token_map(ab)
    elif isinstance(tokens, str):
        tokens = parse_token_map(tokens, ab)
    if context is None:
        context = _positions(network)
        if context is None:
            raise InvalidModelConfig(f"a {type(network).__name__} needs a context length (its positional range is not known)")
    return NetworkModel(network, tokens, context, name=name)  # type: ignore[arg-type]


__all__ = ["TokenMap", "parse_token_map", "native_token_map", "token_map_from_tokenizer", "NetworkModel",
           "as_network_model", "leaked_mass_bounds"]
