"""Batched, certified evaluation of the pretraining distribution P and the no-ICL model R on ICL
prompts: prefix masses P(u), R(u) and next-token masses P(u y), R(u y), each a
:class:`~constructions.icl.forward.Scaled` array with a rigorous relative error bound, and the greedy
answers decided with certified margins.

* **P** (the Bayes-optimal predictor, docs/theory.md §4): P(u) = (1/C) Σ_c Σ_h α_c(h) with the uniform
  start 1/H; one forward pass over each prompt pool serves every n (snapshots after each delimiter).
* **R** (no ICL): a stream of independent examples, each drawn from the pretraining mixture afresh —
  concept from the prior, entity uniform, start property uniform on 1..V−1, k tokens of that
  concept's HMM — each followed by the delimiter with certainty.  So R(x₁ d … xₙ d x) = Πᵢ m(xᵢ) · m(x)
  with m the one-example mixture, and R's answer r(y | u) = m(x y)/m(x) depends on the test input
  alone: R does no in-context learning by construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Literal, overload

import numpy as np

from constructions.icl.forward import ForwardTables, Scaled, scaled_constant
from constructions.icl.hmm import MixtureHMM
from constructions.icl.prompts import NestedPrompts, certified_argmax


@dataclass(frozen=True)
class Masses:
    """prefix: P(u) (N,); next: P(u y) (N, vocab) — exact probabilities within the Scaled bounds."""

    prefix: Scaled
    next: Scaled


def _times(x: Scaled, c: Fraction) -> Scaled:
    return x * scaled_constant(c, x.mantissa.shape)


def _combine(alpha: Scaled, tables: ForwardTables, last: np.ndarray, const: Fraction) -> Masses:
    prefix = alpha.sum(axis=2).sum(axis=1)
    nxt = tables.next_token_masses(alpha, last).sum(axis=1)
    return Masses(_times(prefix, const), _times(nxt, const))


def bayes_masses(hmm: MixtureHMM, tokens: np.ndarray, tables: ForwardTables | None = None) -> Masses:
    """P(u) and P(u y) for answer prefixes ``tokens`` (N, L), L < doc_length, under the pretraining
    mixture: the exact posterior predictive is ``next / prefix``."""
    tables = tables or ForwardTables(hmm, hmm.pretrain_concepts)
    tokens = np.asarray(tokens, dtype=np.int64)
    alpha = tables.run(tokens, tables.start(tokens[:, 0]))
    return _combine(alpha, tables, tokens[:, -1], Fraction(1, len(tables.concepts) * hmm.n_hidden))


def bayes_masses_nested(hmm: MixtureHMM, prompts: NestedPrompts, ns: tuple[int, ...] | None = None) -> dict[int, Masses]:
    """:func:`bayes_masses` for every n in ``ns`` (default ``prompts.ns``), sharing one forward pass
    over the example pools."""
    ns = prompts.ns if ns is None else tuple(ns)
    tables = ForwardTables(hmm, hmm.pretrain_concepts)
    const = Fraction(1, len(tables.concepts) * hmm.n_hidden)
    k, N = prompts.k, len(prompts)
    out: dict[int, Masses] = {}
    if 0 in ns:
        out[0] = bayes_masses(hmm, prompts.test, tables)
    pos = [n for n in ns if n > 0]
    if not pos:
        return out
    n_top = max(pos)
    flat = prompts.at(n_top).tokens[:, : n_top * (k + 1)]
    ran = tables.run(flat, tables.start(flat[:, 0]), keep=[n * (k + 1) - 1 for n in pos])
    assert isinstance(ran, tuple)  # pos is not empty: the kept states come too
    _, kept = ran
    tail = np.concatenate([np.full((N, 1), hmm.delimiter, dtype=np.int64), prompts.test], axis=1)
    for n in pos:
        alpha = tables.run(tail, kept[n * (k + 1) - 1])
        out[n] = _combine(alpha, tables, prompts.test[:, -1], const)
    return out


@overload
def example_masses(hmm: MixtureHMM, examples: np.ndarray, tables: ForwardTables | None = None,
                   with_next: Literal[False] = False) -> Scaled: ...
@overload
def example_masses(hmm: MixtureHMM, examples: np.ndarray, tables: ForwardTables | None = None, *,
                   with_next: Literal[True]) -> Masses: ...
def example_masses(hmm: MixtureHMM, examples: np.ndarray, tables: ForwardTables | None = None,
                   with_next: bool = False) -> Masses | Scaled:
    """m(x) for examples (M, j): the one-example mixture (concept from the prior, entity uniform,
    start property uniform on 1..V−1) — Scaled (M,); with ``with_next`` also m(x y) as Masses."""
    tables = tables or ForwardTables(hmm, hmm.pretrain_concepts)
    examples = np.asarray(examples, dtype=np.int64)
    start = tables.valid[examples[:, 0]] * (tables.state_property[examples[:, 0]] > 0)
    alpha = tables.run(examples, np.repeat(start[:, None, :], len(tables.concepts), axis=1))
    const = Fraction(1, len(tables.concepts) * hmm.n_entities * (hmm.n_properties - 1))
    if with_next:
        return _combine(alpha, tables, examples[:, -1], const)
    return _times(alpha.sum(axis=2).sum(axis=1), const)


def no_icl_masses_nested(hmm: MixtureHMM, prompts: NestedPrompts, ns: tuple[int, ...] | None = None,
                         batch: int = 20_000) -> dict[int, Masses]:
    """R(u) and R(u y) for every n in ``ns`` (default ``prompts.ns``), R the literal no-ICL model:
    Πᵢ m(xᵢ) times m(x_test), resp. times m(x_test y) — each example scored independently from a fresh
    start, the delimiters certain (prompt examples are delimiter-free, so each example's label factor is
    m(label | input)); R's answer depends on the test input alone and is still a label."""
    ns = prompts.ns if ns is None else tuple(ns)
    tables = ForwardTables(hmm, hmm.pretrain_concepts)
    test = example_masses(hmm, prompts.test, tables, with_next=True)
    N, n_max, k = prompts.pool.shape
    n_top = max(ns)
    out: dict[int, Masses] = {}
    if n_top > 0:
        flat = prompts.pool[:, :n_top].reshape(N * n_top, k)
        parts = [example_masses(hmm, flat[lo:lo + batch], tables) for lo in range(0, len(flat), batch)]
        m = Scaled(np.concatenate([p.mantissa for p in parts]).reshape(N, n_top),
                   np.concatenate([p.exponent for p in parts]).reshape(N, n_top), parts[0].roundings)
    for n in ns:
        if n == 0:
            out[0] = test
            continue
        head = m[:, :n].prod(axis=1)
        nxt_head = Scaled(np.repeat(head.mantissa[:, None], hmm.vocab_size, axis=1),
                          np.repeat(head.exponent[:, None], hmm.vocab_size, axis=1), head.roundings)
        out[n] = Masses(head * test.prefix, nxt_head * test.next)
    return out


def stack_sum(*terms: Scaled) -> Scaled:
    """Σ of Scaled arrays of one shape (aligned exponents, len − 1 roundings)."""
    m = np.stack([t.normalised().mantissa for t in terms], axis=-1)
    e = np.stack([t.normalised().exponent for t in terms], axis=-1)
    return Scaled(m, e, max(t.roundings for t in terms)).sum(axis=-1)


def mixture_next(p: Masses, r: Masses, epsilon: Fraction) -> Scaled:
    """Q_ε(u y) = ε R(u y) + (1 − ε) P(u y) (N, vocab)."""
    shape = p.next.mantissa.shape
    return stack_sum(r.next * scaled_constant(epsilon, shape), p.next * scaled_constant(1 - epsilon, shape))


def ratio_upper_bounds(p_prefix: Scaled, r_prefix: Scaled) -> list[Fraction]:
    """Rigorous upper bounds on P(u)/R(u) per prompt, exact rationals from the two Scaled enclosures
    (mantissa ratio times the power of two, widened by both relative error bounds)."""
    P, R = p_prefix.normalised(), r_prefix.normalised()
    dp, dr = Fraction(P.rel_err), Fraction(R.rel_err)
    return [Fraction(mp) / Fraction(mr) * Fraction(2) ** (ep - er) * (1 + dp) / (1 - dr)
            for mp, ep, mr, er in zip(P.mantissa.tolist(), P.exponent.tolist(), R.mantissa.tolist(), R.exponent.tolist())]


def greedy(next_masses: Scaled, delimiter: int) -> tuple[np.ndarray, np.ndarray]:
    """A model's answers (N,): its argmax over the *labels* — every token but the delimiter, which the
    ICL format rules out as an answer (docs/theory.md §4.2: one scoring rule for every model) — and
    whether each is certified."""
    return certified_argmax(next_masses, exclude=delimiter)
