"""The four models of Proposition 2 as exact autoregressive models (theory.models' protocol), for
tiny instances: every row is a Fraction computation by the forward algorithm.

* :class:`BayesPredictor` — P itself: p(y | u) = P(u y)/P(u) under the pretraining mixture; documents
  have ``doc_length`` tokens, then EOS with certainty.
* :class:`NoICLModel` — R, docs/theory.md's no-ICL model literally: independent examples (concept from
  the prior, entity uniform, start property uniform on 1..V−1, k tokens of that concept's HMM), the
  delimiter with certainty after each; its answer r(y | u) = m(x y)/m(x) uses the test input x alone,
  and it is still a label (every model is scored by its argmax over the labels).
* :class:`SurgeryModel` — Q = P except on A(n), the ICL-format answer prefixes with ≥ n examples,
  where q = (1 − λ) p + λ δ_w(u) with λ ∈ (½, 1) and w(u) a wrong *label*: :func:`wrong_label` of P's
  label answer (the smallest label other than it; the rule the population path's
  :func:`~constructions.icl.population.surgery_answers` uses too), so Q's label argmax on A(n) is w(u).
* :class:`MixtureModel` — Q_ε = (1 − ε) P + ε R as sequence distributions; its rows are computed
  through the posterior weight w(u) = εR(u)/(εR(u) + (1 − ε)P(u)).

Tokens map to single characters (delimiter ``/``, then ``a``–``z``, ``A``–``Z``, ``0``–``9``), so a
vocabulary of up to 63 tokens has an :class:`~theory.alphabet.Alphabet`.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Sequence

from constructions.icl.forward import exact_forward
from constructions.icl.hmm import MixtureHMM
from constructions.icl.prompts import icl_examples
from theory.alphabet import Alphabet
from theory.data import ConditionalDistribution
from theory.errors import InvalidAlphabet, InvalidDistribution, InvalidPrompt
from theory.probability import NextTokenDistribution, as_probability
from theory.validation import check_int

_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def token_alphabet(hmm: MixtureHMM) -> Alphabet:
    """The character alphabet: the delimiter is ``/``, other tokens take letters then digits in order.

    Raises:
        InvalidAlphabet: a vocabulary larger than 63 tokens (no single-character alphabet).
    """
    if hmm.vocab_size > len(_CHARS) + 1:
        raise InvalidAlphabet(f"vocabulary of {hmm.vocab_size} tokens has no single-character alphabet (at most {len(_CHARS) + 1})")
    chars, it = [], iter(_CHARS)
    for t in range(hmm.vocab_size):
        chars.append("/" if t == hmm.delimiter else next(it))
    return Alphabet(chars)


class _TokenModel:
    """Shared plumbing: the alphabet, token/character conversion, rows from next-token masses."""

    def __init__(self, hmm: MixtureHMM) -> None:
        self.hmm = hmm
        self.alphabet = token_alphabet(hmm)
        self._index = {ch: i for i, ch in enumerate(self.alphabet.symbols)}

    def encode(self, tokens: Sequence[int]) -> str:
        return "".join(self.alphabet.symbols[int(t)] for t in tokens)

    def decode(self, text: str) -> list[int]:
        self.alphabet.check_sequence(text)
        return [self._index[ch] for ch in text]

    def _eos(self) -> NextTokenDistribution:
        return NextTokenDistribution.from_exact(self.alphabet, (Fraction(0),) * self.hmm.vocab_size + (Fraction(1),))

    def _row(self, masses: Sequence[Fraction], end: Fraction, total: Fraction, where: str) -> NextTokenDistribution:
        if total == 0:  # an off-support prefix: any row will do; uniform over Σ
            return NextTokenDistribution.uniform(self.alphabet, self.alphabet.symbols)
        probs = tuple(m / total for m in masses) + (end / total,)
        return NextTokenDistribution.from_exact(self.alphabet, probs, where=where)


class BayesPredictor(_TokenModel):
    """P as an AR model: the Bayes-optimal predictor of its own pretraining data.  Exact, memoised."""

    name = "bayes"

    def __init__(self, hmm: MixtureHMM) -> None:
        super().__init__(hmm)
        self._alpha: dict[tuple[int, tuple[int, ...]], list[Fraction]] = {}

    def _forward(self, c: int, toks: tuple[int, ...]) -> list[Fraction]:
        key = (c, toks)
        a = self._alpha.get(key)
        if a is None:
            if len(toks) <= 1:
                a = exact_forward(self.hmm, c, list(toks))
            else:
                prev = self._forward(c, toks[:-1])
                emit = self.hmm.emit.tolist()
                H = self.hmm.n_hidden
                a = [Fraction(0)] * H
                for h, x in enumerate(prev):
                    if x:
                        for h2 in range(H):
                            if emit[h2] == toks[-1]:
                                a[h2] += x * self.hmm.transition(c, h, h2)
            self._alpha[key] = a
        return a

    def prefix_probability(self, tokens: Sequence[int]) -> Fraction:
        """P(u): the mass of documents starting with u (0 beyond the document length)."""
        toks = tuple(int(t) for t in tokens)
        if len(toks) > self.hmm.doc_length:
            return Fraction(0)
        cs = self.hmm.pretrain_concepts
        return sum((sum(self._forward(c, toks), Fraction(0)) for c in cs), Fraction(0)) / len(cs)

    def next_masses(self, tokens: Sequence[int]) -> tuple[list[Fraction], Fraction]:
        """([P(u y) for y], P(u EOS))."""
        toks = tuple(int(t) for t in tokens)
        V = self.hmm.vocab_size
        if len(toks) >= self.hmm.doc_length:
            return [Fraction(0)] * V, self.prefix_probability(toks)
        return [self.prefix_probability(toks + (y,)) for y in range(V)], Fraction(0)

    def next_token(self, prefix: str) -> NextTokenDistribution:
        toks = self.decode(prefix)
        if len(toks) >= self.hmm.doc_length:  # documents end here (beyond it: off the support, same row)
            return self._eos()
        masses, end = self.next_masses(toks)
        return self._row(masses, end, self.prefix_probability(toks), prefix)

    def data_distribution(self) -> ConditionalDistribution:
        """P as a theory data distribution (finite support: documents of ``doc_length`` tokens)."""
        return ConditionalDistribution(self.alphabet, self.next_token, name=f"ginc-{self.hmm!r}",
                                       max_length=self.hmm.doc_length)


class NoICLModel(_TokenModel):
    """R (see the module docstring): examples scored independently from fresh starts, delimiters
    certain, answers from the test input alone.  ``k`` is the example length."""

    def __init__(self, hmm: MixtureHMM, k: int) -> None:
        super().__init__(hmm)
        check_int(k, "example length k =", minimum=2, error=InvalidPrompt)
        self.k = k
        self.name = f"no-icl(k={k})"
        self._cache: dict[tuple[int, ...], Fraction] = {}

    def example_mass(self, x: Sequence[int]) -> Fraction:
        """m(x) for the first 0 ≤ |x| ≤ k tokens of one example (the k-th is its label): the
        one-example mixture from a fresh start."""
        x = tuple(int(t) for t in x)
        got = self._cache.get(x)
        if got is None:
            hmm = self.hmm
            if not x:
                got = Fraction(1)
            else:
                V, E = hmm.n_properties, hmm.n_entities
                start = [Fraction(1, E * (V - 1)) if h % V else Fraction(0) for h in range(hmm.n_hidden)]
                cs = hmm.pretrain_concepts
                got = sum((sum(exact_forward(hmm, c, list(x), start), Fraction(0)) for c in cs), Fraction(0)) / len(cs)
            self._cache[x] = got
        return got

    def prefix_probability(self, tokens: Sequence[int]) -> Fraction:
        """R(u): the product of the examples' masses m(xᵢ) (the test input's too); 0 unless every
        boundary token is the delimiter."""
        toks = tuple(int(t) for t in tokens)
        if len(toks) > self.hmm.doc_length:
            return Fraction(0)
        k, d = self.k, self.hmm.delimiter
        total = Fraction(1)
        for lo in range(0, len(toks), k + 1):
            block = toks[lo:lo + k + 1]
            if len(block) == k + 1 and block[k] != d:
                return Fraction(0)
            total *= self.example_mass(block[:k])
            if total == 0:
                return total
        return total

    def next_token(self, prefix: str) -> NextTokenDistribution:
        toks = self.decode(prefix)
        V = self.hmm.vocab_size
        if len(toks) >= self.hmm.doc_length:
            return self._eos()
        masses = [self.prefix_probability(toks + [y]) for y in range(V)]
        return self._row(masses, Fraction(0), self.prefix_probability(toks), prefix)


class SurgeryModel(_TokenModel):
    """Q = P off A(n); on A(n), q = (1 − λ) p + λ δ_w(u) with w(u) = :func:`wrong_label` of P's label
    answer at u — a wrong *label*, never the delimiter.  With λ > ½, w(u) gets q ≥ λ > ½ and every other
    outcome ≤ 1 − λ < ½, so w(u) is Q's strict argmax there (over the labels and over Σ ∪ {EOS}).
    ``lam`` must lie in (½, 1).

    Raises:
        InvalidDistribution: λ outside (½, 1).
        InvalidPrompt: a vocabulary with fewer than two labels (no wrong label to move the mass to).
    """

    def __init__(self, base: BayesPredictor, k: int, n: int, lam: Fraction | int | str) -> None:
        super().__init__(base.hmm)
        self.base, self.k, self.n = base, k, n
        self.lam = check_surgery_weight(lam)
        surgery_labels(self.hmm)
        self.name = f"surgery(k={k}, n>={n}, lambda={self.lam})"

    def in_A(self, tokens: Sequence[int]) -> bool:
        """u ∈ A(n): an ICL-format answer prefix with ≥ n examples, inside a document."""
        m = icl_examples(tokens, self.k, self.hmm.delimiter)
        return m is not None and m >= self.n and len(tokens) < self.hmm.doc_length

    def p_answer(self, prefix: str) -> int:
        """P's label answer at ``prefix``: its argmax over the labels (the delimiter and EOS excluded),
        ties to the smallest label — the tie rule of :func:`~constructions.icl.prompts.certified_argmax`."""
        return label_argmax(self.base.next_token(prefix).probs, self.hmm)

    def wrong(self, prefix: str) -> int:
        """w(u): the wrong label the surgery puts λ on at ``prefix`` (:func:`wrong_label` of P's answer)."""
        return wrong_label(self.p_answer(prefix), self.hmm)

    def next_token(self, prefix: str) -> NextTokenDistribution:
        row = self.base.next_token(prefix)
        if not self.in_A(self.decode(prefix)):
            return row
        w = wrong_label(label_argmax(row.probs, self.hmm), self.hmm)
        return row.mix(NextTokenDistribution.point(self.alphabet, self.alphabet.symbols[w]), self.lam)


class MixtureModel(_TokenModel):
    """Q_ε = (1 − ε) P + ε R (sequence mixture), rows through w(u).  ``epsilon`` ∈ (0, 1)."""

    def __init__(self, p: BayesPredictor, r: NoICLModel, epsilon: Fraction | int | str) -> None:
        super().__init__(p.hmm)
        self.p, self.r = p, r
        self.epsilon = check_mixture_weight(epsilon)
        self.name = f"mixture(epsilon={self.epsilon})"

    def weight(self, tokens: Sequence[int]) -> Fraction:
        """w(u) = εR(u) / (εR(u) + (1 − ε)P(u)); ε where both vanish (the prior weight)."""
        eps = self.epsilon
        a, b = eps * self.r.prefix_probability(tokens), (1 - eps) * self.p.prefix_probability(tokens)
        return eps if a + b == 0 else a / (a + b)

    def next_token(self, prefix: str) -> NextTokenDistribution:
        w = self.weight(self.decode(prefix))
        return self.p.next_token(prefix).mix(self.r.next_token(prefix), w)

    def sequence_conditional(self, prefix: str) -> NextTokenDistribution:
        """The same row from sequence probabilities: [εR(u·) + (1 − ε)P(u·)] / [εR(u) + (1 − ε)P(u)]."""
        toks = self.decode(prefix)
        eps, V = self.epsilon, self.hmm.vocab_size
        if len(toks) >= self.hmm.doc_length:
            return self._eos()
        masses = [eps * self.r.prefix_probability(toks + [y]) + (1 - eps) * self.p.prefix_probability(toks + [y])
                  for y in range(V)]
        total = eps * self.r.prefix_probability(toks) + (1 - eps) * self.p.prefix_probability(toks)
        return self._row(masses, Fraction(0), total, prefix)


def surgery_labels(hmm: MixtureHMM) -> tuple[int, int]:
    """The two smallest labels (tokens other than the delimiter), between which :func:`wrong_label` chooses.

    Raises:
        InvalidPrompt: the vocabulary has fewer than two labels.
    """
    labels = [t for t in range(min(hmm.vocab_size, 3)) if t != hmm.delimiter][:2]
    if len(labels) < 2:
        raise InvalidPrompt(f"the surgery needs two labels to put its mass on a wrong one; vocabulary {hmm.vocab_size} "
                            "has one besides the delimiter")
    return labels[0], labels[1]


def wrong_label(answer: int, hmm: MixtureHMM) -> int:
    """The surgery's target at an answer prefix where P answers the label ``answer``: the smallest label
    other than ``answer`` (the delimiter is never a target: scoring ignores it).  The one rule for the
    surgery's wrong label, used by :class:`SurgeryModel` and by
    :func:`~constructions.icl.population.surgery_answers`.

    Raises:
        InvalidPrompt: the vocabulary has fewer than two labels.
    """
    first, second = surgery_labels(hmm)
    return second if int(answer) == first else first


def label_argmax(probs: Sequence[Fraction], hmm: MixtureHMM) -> int:
    """A row's argmax over the labels — the tokens 0..vocab_size − 1 but the delimiter (an EOS entry
    after them is not a label either) — ties to the smallest label, as
    :func:`~constructions.icl.prompts.certified_argmax` and :func:`~constructions.icl.prompts.exact_label` break them."""
    labels = [t for t in range(hmm.vocab_size) if t != hmm.delimiter]
    return max(labels, key=lambda t: (probs[t], -t))


def check_surgery_weight(lam: object) -> Fraction:
    """λ as a Fraction in (½, 1).  Raises InvalidDistribution naming λ otherwise (λ = ½ can tie)."""
    value = as_probability(lam, "surgery weight lambda")
    if not Fraction(1, 2) < value < 1:
        raise InvalidDistribution(f"surgery weight lambda = {value} must lie in (1/2, 1): lambda > 1/2 makes the "
                                  "wrong token the strict argmax, lambda < 1 keeps the per-prefix KL finite")
    return value


def check_mixture_weight(epsilon: object) -> Fraction:
    """ε as a Fraction in (0, 1).  Raises InvalidDistribution naming ε otherwise."""
    value = as_probability(epsilon, "mixture weight epsilon")
    if not 0 < value < 1:
        raise InvalidDistribution(f"mixture weight epsilon = {value} must lie in (0, 1)")
    return value


__all__ = ["BayesPredictor", "NoICLModel", "SurgeryModel", "MixtureModel", "token_alphabet",
           "check_surgery_weight", "check_mixture_weight", "label_argmax", "surgery_labels", "wrong_label"]
