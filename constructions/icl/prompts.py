"""ICL prompts in GINC's format, and the ICL format as a set of token strings.

**ICL format** (example length k, n examples).  A prefix u is an *ICL-format answer prefix with n
examples* when

    u = x₁ d x₂ d … xₙ d x_test,   |xᵢ| = k,  |x_test| = k − 1,

with d the delimiter at exactly the n boundary positions i(k+1) + k and nowhere else (examples are
delimiter-free).  Under P the delimiter is emitted by property 0 and by nothing else, so this is the
token-observable form of the example-boundary events of docs/theory.md §4: the property chain must return
to 0 *exactly* every k + 1 tokens and never in between.  ``A(n) = ⋃_{n' ≥ n} {answer prefixes with n'
examples, shorter than the document}`` is the set the surgery edits.

**Prompt distribution** (GINC, made delimiter-free).  A prompt for concept c: a start property s*
drawn uniformly from 1..V−1 once per prompt; each example (and the test example) starts afresh at a
uniform entity and property s*, runs concept c's HMM for k tokens *conditioned on emitting no
delimiter* (exact conditional sampling by backward messages), and is followed by d.  The test input
is the first k − 1 tokens of the test example.  Its **label** is the argmax over y ≠ d of the true
concept's posterior predictive p_c(y | x_test; start (uniform entity, s*)) — the Bayes answer given
the true concept, exactly as GINC's ``score(...)`` but excluding the delimiter, which the format rules
out (ties go to the smallest token id).  Prompts are *nested*: the prompt with n examples is the first
n examples of one drawn pool plus the same test input, so curves over n compare like with like.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Sequence

import numpy as np

from constructions.icl.forward import ForwardTables, Scaled, exact_forward
from constructions.icl.hmm import MixtureHMM
from theory.errors import InvalidPrompt
from theory.validation import check_int


def prompt_length(n: int, k: int) -> int:
    """|u| of an answer prefix with n examples of length k: n(k + 1) + k − 1."""
    return n * (k + 1) + k - 1


def check_prompt_shape(hmm: MixtureHMM, n: int, k: int) -> None:
    """Raises :class:`InvalidPrompt` unless k ≥ 2, n ≥ 0 and the answer position lies inside a
    document (n(k + 1) + k − 1 < doc_length), naming the bad value."""
    check_int(k, "example length k =", minimum=2, error=InvalidPrompt, integral=True,
              note="k - 1 input tokens and a label")
    check_int(n, "number of examples n =", minimum=0, error=InvalidPrompt, integral=True)
    if prompt_length(n, k) >= hmm.doc_length:
        raise InvalidPrompt(f"n = {n} examples of length k = {k} need {prompt_length(n, k)} tokens before the answer; "
                            f"documents have {hmm.doc_length}, so n must be <= {max_examples(hmm, k)}")


def max_examples(hmm: MixtureHMM, k: int) -> int:
    """The largest n whose answer position lies inside a document."""
    return (hmm.doc_length - k) // (k + 1)


def icl_examples(tokens: Sequence[int], k: int, delimiter: int) -> int | None:
    """n if ``tokens`` is an ICL-format answer prefix with n examples of length k, else None."""
    L = len(tokens)
    if L < k - 1 or (L - (k - 1)) % (k + 1):
        return None
    for i, t in enumerate(tokens):
        boundary = i % (k + 1) == k
        if (t == delimiter) != boundary:
            return None
    return (L - (k - 1)) // (k + 1)


@dataclass(frozen=True)
class ICLPromptSet:
    """N prompts with the same n and k.

    Attributes:
        tokens: (N, n(k+1) + k − 1) int array, the answer prefixes.
        n, k: examples per prompt and example length.
        concept: (N,) the true concept of each prompt.
        start_property: (N,) s*.
        label: (N,) the label token.
        label_exact: whether every label was decided exactly (certified float margin or Fractions).
    """

    tokens: np.ndarray
    n: int
    k: int
    concept: np.ndarray
    start_property: np.ndarray
    label: np.ndarray
    label_exact: bool = True

    def __len__(self) -> int:
        return len(self.label)

    @property
    def length(self) -> int:
        return self.tokens.shape[1]

    def examples(self) -> np.ndarray:
        """(N, n, k): the n examples without delimiters."""
        N = len(self)
        return self.tokens[:, : self.n * (self.k + 1)].reshape(N, self.n, self.k + 1)[:, :, : self.k]

    def test_inputs(self) -> np.ndarray:
        """(N, k − 1)."""
        return self.tokens[:, self.n * (self.k + 1):]

    def select(self, mask: np.ndarray) -> "ICLPromptSet":
        return ICLPromptSet(self.tokens[mask], self.n, self.k, self.concept[mask], self.start_property[mask],
                         self.label[mask], self.label_exact)


def _sample_examples(hmm: MixtureHMM, concept: np.ndarray, start: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Token arrays (M, k): concept[m]'s HMM from (uniform entity, start[m]), conditioned on no
    property 0 in the k steps (backward messages over properties; entities are independent of the
    conditioning because the transition factorises)."""
    M = len(concept)
    V = hmm.n_properties
    T = np.array([[[float(x) for x in r] for r in Tc] for Tc in hmm.concepts])  # (C, V, V)
    Tn = T.copy()
    Tn[:, :, 0] = 0.0  # never step into the delimiter property
    beta = np.zeros((k, hmm.n_concepts, V))
    beta[k - 1] = 1.0
    beta[k - 1, :, 0] = 0.0
    for t in range(k - 2, -1, -1):
        beta[t] = np.einsum("cvw,cw->cv", Tn, beta[t + 1])
    E = np.array([[float(x) for x in r] for r in hmm.entity_transition])
    ent = rng.integers(0, hmm.n_entities, size=M)
    prop = np.array(start, dtype=np.int64)
    out = np.empty((M, k), dtype=np.int64)
    emission = np.array(hmm.emission)
    out[:, 0] = emission[ent, prop]
    for t in range(1, k):
        w = Tn[concept, prop] * beta[t][concept]
        prop = _draw(rng, w)
        ent = _draw(rng, E[ent])
        out[:, t] = emission[ent, prop]
    return out


def _draw(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(weights, axis=1)
    u = rng.random(len(weights)) * cdf[:, -1]
    return np.minimum((cdf < u[:, None]).sum(axis=1), weights.shape[1] - 1)


def certified_argmax(values: Scaled, exclude: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise argmax of Scaled (N, m) values (ties → smallest index), and whether each is certain:
    the top value's lower bound exceeds every other value's upper bound, compared in Fractions."""
    x = values.normalised()
    # With mantissas in [1/2, 1) the order of the values is exactly the (exponent, mantissa) order.
    low = np.iinfo(np.int64).min // 2
    ekey = np.where(x.mantissa > 0, x.exponent, low)
    mkey = x.mantissa.copy()
    if exclude is not None:
        ekey[:, exclude], mkey[:, exclude] = low, 0.0
    order = np.lexsort((np.broadcast_to(np.arange(ekey.shape[1]), ekey.shape), -mkey, -ekey), axis=1)
    top, second = order[:, 0], order[:, 1]
    delta = Fraction(values.rel_err)
    sure = np.zeros(len(top), dtype=bool)
    rows = np.arange(len(top))
    for i, a, b in zip(rows.tolist(), top.tolist(), second.tolist()):
        va = Fraction(float(x.mantissa[i, a])) * Fraction(2) ** int(x.exponent[i, a])
        vb = Fraction(float(x.mantissa[i, b])) * Fraction(2) ** int(x.exponent[i, b])
        if exclude is not None and b == exclude:
            vb = Fraction(0)
        sure[i] = va * (1 - delta) > vb * (1 + delta) if va > 0 else False
    return top, sure


def exact_label(hmm: MixtureHMM, concept: int, start_property: int, test_input: Sequence[int]) -> int:
    """The label in Fractions: argmax_{y ≠ d} p_c(y | x_test; start (uniform entity, s*))."""
    H, V, E = hmm.n_hidden, hmm.n_properties, hmm.n_entities
    start = [Fraction(1, E) if h % V == start_property else Fraction(0) for h in range(H)]
    alpha = exact_forward(hmm, concept, list(test_input), start)
    emit = hmm.emit.tolist()
    mass = [Fraction(0)] * hmm.vocab_size
    for h, a in enumerate(alpha):
        if a:
            for h2 in range(H):
                mass[emit[h2]] += a * hmm.transition(concept, h, h2)
    best = max(m for y, m in enumerate(mass) if y != hmm.delimiter)
    return min(y for y, m in enumerate(mass) if y != hmm.delimiter and m == best)


def compute_labels(hmm: MixtureHMM, concept: np.ndarray, start: np.ndarray, test_inputs: np.ndarray,
                   exact_fallback: bool = True) -> tuple[np.ndarray, bool]:
    """Labels of test inputs (N, k − 1) by the certified float forward; undecided ones (float margin
    too small) are recomputed in Fractions when ``exact_fallback``.  Returns (labels, all exact)."""
    tables = ForwardTables(hmm, range(hmm.n_concepts))
    alpha = tables.run(test_inputs, tables.start(test_inputs[:, 0], start))
    masses = tables.next_token_masses(alpha, test_inputs[:, -1])
    rows = np.arange(len(concept))
    per = masses[(rows, concept)]  # (N, vocab), one concept each
    labels, sure = certified_argmax(per, exclude=hmm.delimiter)
    exact = True
    for i in np.flatnonzero(~sure).tolist():
        if exact_fallback:
            labels[i] = exact_label(hmm, int(concept[i]), int(start[i]), test_inputs[i].tolist())
        else:
            exact = False
    return labels, exact


@dataclass(frozen=True)
class NestedPrompts:
    """Prompt pools: for each of N prompts, ``n_max`` examples and one test input; the prompt with n
    examples (n in ``ns``) is the first n examples plus the test input.

    Attributes:
        pool: (N, n_max, k) examples (delimiter-free).
        test: (N, k − 1) test inputs.
        concept, start_property, label: (N,) as in :class:`ICLPromptSet`.
        ns: the example counts offered, increasing.
        label_exact: whether every label was decided exactly.
    """

    pool: np.ndarray
    test: np.ndarray
    concept: np.ndarray
    start_property: np.ndarray
    label: np.ndarray
    ns: tuple[int, ...]
    delimiter: int
    label_exact: bool = True

    @property
    def k(self) -> int:
        return self.pool.shape[2]

    @property
    def n_max(self) -> int:
        return self.pool.shape[1]

    def __len__(self) -> int:
        return len(self.label)

    def at(self, n: int) -> ICLPromptSet:
        """The prompt set with n examples (n need not be in ``ns``, only ≤ n_max)."""
        if not 0 <= n <= self.n_max:
            raise InvalidPrompt(f"n = {n} is outside 0..{self.n_max} for these prompt pools")
        N, k = len(self), self.k
        delim = np.full((N, n, 1), self.delimiter, dtype=np.int64)
        blocks = np.concatenate([self.pool[:, :n], delim], axis=2).reshape(N, n * (k + 1))
        toks = np.concatenate([blocks, self.test], axis=1)
        return ICLPromptSet(toks, n, k, self.concept, self.start_property, self.label, self.label_exact)

    def select(self, mask: np.ndarray) -> "NestedPrompts":
        return NestedPrompts(self.pool[mask], self.test[mask], self.concept[mask], self.start_property[mask],
                             self.label[mask], self.ns, self.delimiter, self.label_exact)


def sample_prompts(hmm: MixtureHMM, concepts: Sequence[int], ns: Sequence[int], k: int, per_concept: int,
                   seed: int = 0) -> NestedPrompts:
    """Nested ICL prompts: ``per_concept`` pools per concept, each of max(ns) examples and a test
    example; the prompt set for n keeps the first n examples.  Deterministic from ``seed``.

    Raises:
        InvalidPrompt: k or some n out of range (see :func:`check_prompt_shape`), no concepts, a concept
            index outside the mixture, or per_concept < 1.
    """
    ns = sorted(set(ns))
    if not ns:
        raise InvalidPrompt("no example counts n given")
    for n in ns:
        check_prompt_shape(hmm, n, k)
    concepts = list(concepts)
    if not concepts:
        raise InvalidPrompt("no concepts to draw prompts from")
    for c in concepts:
        check_int(c, "concept", minimum=0, maximum=hmm.n_concepts - 1, error=InvalidPrompt, integral=True,
                  note=f"one of the {hmm.n_concepts} concepts")
    check_int(per_concept, "per_concept =", minimum=1, error=InvalidPrompt)
    rng = np.random.default_rng(seed)
    N = per_concept * len(concepts)
    concept = np.repeat(np.array(concepts, dtype=np.int64), per_concept)
    start = rng.integers(1, hmm.n_properties, size=N)
    n_max = int(ns[-1])
    pool = _sample_examples(hmm, np.repeat(concept, n_max + 1), np.repeat(start, n_max + 1), k, rng)
    pool = pool.reshape(N, n_max + 1, k)
    test = np.ascontiguousarray(pool[:, n_max, : k - 1])
    labels, exact = compute_labels(hmm, concept, start, test)
    return NestedPrompts(np.ascontiguousarray(pool[:, :n_max]), test, concept, start, labels,
                         tuple(int(n) for n in ns), hmm.delimiter, exact)
