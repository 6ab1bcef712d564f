"""ICL accuracy at the population level, by enumerating every prompt (docs/theory.md §4.2).

For an instance small enough, the prompt distribution of :mod:`constructions.icl.prompts` (concept c
uniform over the pretraining concepts, start property s* uniform on 1..V−1, n examples and a test
example drawn independently from (uniform entity, s*) and conditioned on emitting no delimiter) has
finitely many prompts with positive probability.  :func:`enumerate_prompts` lists all of them with
their **exact** probabilities (Fractions summing to 1), so an expected accuracy is an exact sum, not
a sample mean: acc(n) = Σ_u Pr(u) · 1[answer(u) = label(u)].

**One scoring rule** (docs/theory.md §4.2): every model — P, the surgery Q, the mixture Q_ε, R —
answers with its argmax over the *labels* (every token but the delimiter); mass on the delimiter is
ignored, never an answer.  Answers come from the certified float forward of
:mod:`constructions.icl.forward`; an answer whose margin the rigorous error bound cannot separate is
*undecided* and counted as wrong in the lower end and right in the upper end of the accuracy interval.

The models scored here (all on the same enumerated prompts):

* P — the pretraining mixture's posterior predictive (:func:`~constructions.icl.evaluate.bayes_masses_nested`);
* R — the literal no-ICL model of docs/theory.md §4.2: examples scored independently from fresh
  starts by the concept mixture, delimiters certain, so its answer is a function of the test input
  alone, still answering with a label (:func:`~constructions.icl.evaluate.no_icl_masses_nested`);
* Q_ε = (1 − ε)P + εR (:func:`~constructions.icl.evaluate.mixture_next`);
* the surgery Q: at answer prefixes with ≥ n examples q = (1 − λ)p + λδ_w(u), λ > ½, with w(u) a
  wrong **label** — the smallest label other than P's answer
  (:func:`~constructions.icl.models.wrong_label`) — so Q's answer there is w(u).  (Onto
  the delimiter instead, ``target="delimiter"``, Q's label answer is P's: no counterexample.)
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from fractions import Fraction
from types import MappingProxyType
from typing import Mapping, Sequence

import numpy as np

from constructions.icl.evaluate import bayes_masses_nested, mixture_next, no_icl_masses_nested, ratio_upper_bounds
from constructions.icl.forward import Scaled, exact_forward
from constructions.icl.hmm import MixtureHMM
from constructions.icl.models import surgery_labels, wrong_label
from constructions.icl.prompts import NestedPrompts, certified_argmax, check_prompt_shape, exact_label
from theory.errors import InvalidPrompt
from theory.exact import FractionInterval
from theory.validation import check_int

MAX_PROMPTS = 100_000
"""The most prompts :func:`enumerate_prompts` lists for one n (beyond it, sample and bound instead)."""


def example_distribution(hmm: MixtureHMM, concept: int, start_property: int, k: int) -> dict[tuple[int, ...], Fraction]:
    """Every delimiter-free example of length k with positive probability from (uniform entity,
    ``start_property``) under ``concept``, with its exact probability conditioned on no delimiter."""
    H, V, E = hmm.n_hidden, hmm.n_properties, hmm.n_entities
    start = [Fraction(1, E) if h % V == start_property else Fraction(0) for h in range(H)]
    tokens = sorted({hmm.emission[e][v] for e in range(E) for v in range(1, V)})
    first = sorted({hmm.emission[e][start_property] for e in range(E)})
    weights: dict[tuple[int, ...], Fraction] = {}
    for head in first:
        for tail in itertools.product(tokens, repeat=k - 1):
            x = (head, *tail)
            w = sum(exact_forward(hmm, concept, list(x), start), Fraction(0))
            if w > 0:
                weights[x] = w
    total = sum(weights.values(), Fraction(0))
    return {x: w / total for x, w in weights.items()}


@dataclass(frozen=True)
class PopulationPrompts:
    """Every prompt with n examples: ``prompts`` (one :class:`NestedPrompts` with ``ns = (n,)``) and
    ``weight[i]``, the exact probability of prompt i under the prompt distribution (Σ = 1)."""

    prompts: NestedPrompts
    weight: tuple[Fraction, ...]
    n: int

    def __len__(self) -> int:
        return len(self.weight)


def enumerate_prompts(hmm: MixtureHMM, n: int, k: int, *, max_prompts: int = MAX_PROMPTS) -> PopulationPrompts:
    """All prompts with n examples of length k, with exact probabilities and exact labels.

    Raises:
        InvalidPrompt: k < 2, n < 0, a prompt longer than a document, or more than ``max_prompts``
            prompts (naming the count: then sample and bound instead).
    """
    check_prompt_shape(hmm, n, k)
    check_int(max_prompts, "max_prompts =", minimum=1, error=InvalidPrompt)
    concepts = hmm.pretrain_concepts
    starts = range(1, hmm.n_properties)
    dists = {(c, s): example_distribution(hmm, c, s, k) for c in concepts for s in starts}
    tests: dict[tuple[int, int], dict[tuple[int, ...], Fraction]] = {}
    for key, dist in dists.items():
        marginal: dict[tuple[int, ...], Fraction] = {}
        for x, w in dist.items():
            marginal[x[:-1]] = marginal.get(x[:-1], Fraction(0)) + w
        tests[key] = marginal
    count = sum(len(dists[key]) ** n * len(tests[key]) for key in dists)
    if count > max_prompts:
        raise InvalidPrompt(f"{count:,} prompts with n = {n}, k = {k}: more than max_prompts = {max_prompts:,} to "
                            "enumerate; sample prompts and bound the accuracy instead")
    prior = Fraction(1, len(concepts) * len(starts))
    pool, test, concept, start, label, weight = [], [], [], [], [], []
    labels: dict[tuple[int, int, tuple[int, ...]], int] = {}
    for (c, s), dist in dists.items():
        items = sorted(dist.items())
        for combo in itertools.product(items, repeat=n):
            w_examples = prior
            for _x, w in combo:
                w_examples *= w
            for x_test, w_test in sorted(tests[(c, s)].items()):
                which = (c, s, x_test)
                if which not in labels:
                    labels[which] = exact_label(hmm, c, s, list(x_test))
                pool.append([list(x) for x, _w in combo])
                test.append(list(x_test))
                concept.append(c)
                start.append(s)
                label.append(labels[which])
                weight.append(w_examples * w_test)
    N = len(weight)
    pool_arr = np.array(pool, dtype=np.int64).reshape(N, n, k)
    prompts = NestedPrompts(pool_arr, np.array(test, dtype=np.int64).reshape(N, k - 1), np.array(concept, dtype=np.int64),
                            np.array(start, dtype=np.int64), np.array(label, dtype=np.int64), (n,), hmm.delimiter, True)
    return PopulationPrompts(prompts, tuple(weight), n)


def label_answers(next_masses: Scaled, delimiter: int) -> tuple[np.ndarray, np.ndarray]:
    """Every model's answer: the certified argmax over the labels (the delimiter excluded), and
    whether it is certain."""
    return certified_argmax(next_masses, exclude=delimiter)


def weighted_accuracy(answers: np.ndarray, sure: np.ndarray, labels: np.ndarray,
                      weight: Sequence[Fraction]) -> FractionInterval:
    """[Σ Pr(u) over certainly right prompts, that + Σ Pr(u) over undecided ones], exactly."""
    right = sure & (answers == labels)
    lo = sum((w for w, r in zip(weight, right.tolist()) if r), Fraction(0))
    undecided = sum((w for w, s in zip(weight, sure.tolist()) if not s), Fraction(0))
    return FractionInterval(lo, lo + undecided)


def surgery_answers(p_answers: np.ndarray, p_sure: np.ndarray, hmm: MixtureHMM,
                    target: str = "label") -> tuple[np.ndarray, np.ndarray]:
    """The surgery Q's label answers at answer prefixes inside A(n): ``target="label"`` — the smallest
    label other than P's answer (:func:`~constructions.icl.models.wrong_label`, the rule the exact
    :class:`~constructions.icl.models.SurgeryModel` uses too; certain when P's is: with λ > ½ it is q's
    strict argmax); ``"delimiter"`` — q's extra mass sits on the delimiter, which scoring ignores, so
    Q answers as P does."""
    if target == "delimiter":
        return p_answers.copy(), p_sure.copy()
    if target != "label":
        raise InvalidPrompt(f"surgery target {target!r} is not 'label' or 'delimiter'")
    surgery_labels(hmm)  # fewer than two labels: refused even when there is no answer to move
    wrong = np.array([wrong_label(a, hmm) for a in p_answers.tolist()], dtype=np.int64)
    return wrong, p_sure.copy()


@dataclass(frozen=True)
class PopulationEvaluation:
    """Exact population accuracies (as intervals) of P, R, Q_ε (per ε) and the surgery Q, per n."""

    n: int
    prompts: int
    acc_p: FractionInterval
    acc_r: FractionInterval
    acc_q_mixture: Mapping[Fraction, FractionInterval]
    acc_q_surgery: FractionInterval
    p_over_r_upper: Fraction
    """max over prompts of a rigorous upper bound on P(u)/R(u)."""
    positive: bool
    """every enumerated prompt has P(u) > 0 (certain from the float mantissas)."""


def evaluate_population(hmm: MixtureHMM, n: int, k: int, epsilons: Sequence[Fraction] = (),
                        surgery_target: str = "label", r_model: str = "literal") -> PopulationEvaluation:
    """Every model scored on every prompt with n examples.  ``r_model="literal"`` is the no-ICL R;
    ``"bayes"`` puts P in R's place (a model that does learn from its examples: the control R must
    not be).

    Raises:
        InvalidPrompt: as :func:`enumerate_prompts`; an unknown ``r_model`` or ``surgery_target``.
    """
    if r_model not in ("literal", "bayes"):
        raise InvalidPrompt(f"r_model {r_model!r} is not 'literal' or 'bayes'")
    pop = enumerate_prompts(hmm, n, k)
    prompts, weight, d = pop.prompts, pop.weight, hmm.delimiter
    p = bayes_masses_nested(hmm, prompts, (n,))[n]
    r = no_icl_masses_nested(hmm, prompts, (n,))[n] if r_model == "literal" else p
    pa, ps = label_answers(p.next, d)
    ra, rs = label_answers(r.next, d)
    acc_p = weighted_accuracy(pa, ps, prompts.label, weight)
    acc_r = weighted_accuracy(ra, rs, prompts.label, weight)
    mixture = {}
    for eps in epsilons:
        qa, qs = label_answers(mixture_next(p, r, Fraction(eps)), d)
        mixture[Fraction(eps)] = weighted_accuracy(qa, qs, prompts.label, weight)
    sa, ss = surgery_answers(pa, ps, hmm, surgery_target)
    acc_s = weighted_accuracy(sa, ss, prompts.label, weight)
    ratio = max(ratio_upper_bounds(p.prefix, r.prefix), default=Fraction(0))
    positive = bool(np.all(p.prefix.normalised().mantissa > 0))
    return PopulationEvaluation(n, len(pop), acc_p, acc_r, MappingProxyType(mixture), acc_s, ratio, positive)
