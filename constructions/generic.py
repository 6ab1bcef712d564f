"""The case-free constructions: for *any* data distribution P and *any* set U of OOD prompts, two
models with matched loss and different behaviour on U (docs/theory.md §3, Lemmas A-B and the mixing-in
lemma of Proposition 2).

* :func:`ood_pair` — exact: Q₁, Q₂ copy p(·|u) on S(P) (KL = 0 exactly) and answer ``row1`` resp.
  ``row2`` at every prompt of U.
* :func:`mixture_pair` — ε > 0: Q_ε = (1 − ε) P + ε Rᵢ on whole sequences, with Rᵢ answering rowᵢ on
  U; KL(P ‖ Q_ε) ≤ −ln(1 − ε) ≤ ε/(1 − ε), and Q_ε(·|u) = rowᵢ exactly at every u ∈ U.

Both return a :class:`~theory.witness.Witness` whose property is the mean of q(t|u) over U for the
token t on which the rows differ most; :func:`~theory.witness.check_witness` certifies it exactly.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Iterable

from theory.data import DataDistribution
from theory.errors import InvalidDistribution, InvalidPrompt
from theory.models import ARModel, PatchedModel, RowLike, SequenceMixture, SupportExtension, as_row, uniform_model
from theory.probability import NextTokenDistribution
from theory.witness import Witness


def _ood(data: DataDistribution, prompts: Iterable[str]) -> tuple[str, ...]:
    if isinstance(prompts, str):
        raise InvalidPrompt(f"expected an iterable of prompts, got the single string {prompts!r}")
    ps = tuple(sorted(set(prompts)))
    if not ps:
        raise InvalidPrompt("the OOD prompt set is empty")
    for u in ps:
        data.alphabet.check_sequence(u, "prompt")
        if data.prefix_mass(u) > 0:
            raise InvalidPrompt(f"prompt {u!r} has P(u) = {data.prefix_mass(u)} > 0: it is on the support, not OOD")
    return ps


def _rows(data: DataDistribution, row1: RowLike, row2: RowLike) -> tuple[NextTokenDistribution, NextTokenDistribution, str]:
    r1, r2 = as_row(data.alphabet, row1, "row1"), as_row(data.alphabet, row2, "row2")
    token, gap = max(((t, abs(p - r2.prob(t))) for t, p in r1.items()), key=lambda tg: tg[1])
    if gap == 0:
        raise InvalidDistribution("row1 and row2 are equal: the two models would not differ on the prompts")
    return r1, r2, token


def _witness(name: str, data: DataDistribution, q1: ARModel, q2: ARModel, prompts: tuple[str, ...], token: str,
             gap: Fraction, epsilon: Fraction, claim: str) -> Witness:
    def phi(q: ARModel) -> Fraction:
        return sum((q.next_token(u).prob(token) for u in prompts), Fraction(0)) / len(prompts)

    return Witness(name=name, claim=claim, data=data, q1=q1, q2=q2, prop=phi,
                   property_name=f"mean q({token} | u) over {len(prompts)} OOD prompts",
                   epsilon=epsilon, delta=gap)


def ood_pair(data: DataDistribution, prompts: Iterable[str], row1: RowLike, row2: RowLike, *,
             name: str = "ood-pair") -> Witness:
    """Support copies answering ``row1`` / ``row2`` at every prompt (uniform elsewhere off the support).

    Raises:
        InvalidPrompt: no prompts, or a prompt with P(u) > 0.  UnknownToken: a prompt or row token
        outside Σ.  InvalidDistribution: a row that is not a distribution, or equal rows.
    """
    ps = _ood(data, prompts)
    r1, r2, token = _rows(data, row1, row2)
    base = SupportExtension(data, uniform_model(data.alphabet))
    q1 = PatchedModel(base, dict.fromkeys(ps, r1), name="Q1")
    q2 = PatchedModel(base, dict.fromkeys(ps, r2), name="Q2")
    gap = abs(r1.prob(token) - r2.prob(token))
    return _witness(name, data, q1, q2, ps, token, gap, Fraction(0),
                    f"KL(P || Q1) = KL(P || Q2) = 0 exactly, yet mean q({token} | u) over the OOD prompts differs by {gap}")


def mixture_pair(data: DataDistribution, prompts: Iterable[str], row1: RowLike, row2: RowLike, epsilon: object, *,
                 name: str = "mixture-pair") -> Witness:
    """Q_ε = (1 − ε) P + ε Rᵢ with Rᵢ uniform except rowᵢ on the prompts; the witness claims
    KL ≤ ε/(1 − ε) (a rational upper bound on −ln(1 − ε)).

    Raises: as :func:`ood_pair`, and InvalidDistribution for ε outside (0, 1) or for a prompt that a
    row at a shorter prompt makes unreachable.
    """
    ps = _ood(data, prompts)
    r1, r2, token = _rows(data, row1, row2)
    u = uniform_model(data.alphabet)
    q1 = SequenceMixture(data, PatchedModel(u, dict.fromkeys(ps, r1)), epsilon, name="Q1")
    q2 = SequenceMixture(data, PatchedModel(u, dict.fromkeys(ps, r2)), epsilon, name="Q2")
    for q in (q1, q2):
        for v in ps:
            if q.other_prefix_probability(v) == 0:
                raise InvalidDistribution(f"prompt {v!r} is unreachable under the mixed-in model of {q.name} (a row at a "
                                          "shorter prompt gives one of its tokens probability 0): use rows with no zeros")
    eps = q1.epsilon
    bound = eps / (1 - eps)
    gap = abs(r1.prob(token) - r2.prob(token))
    return _witness(name, data, q1, q2, ps, token, gap, bound,
                    f"KL(P || Q_i) <= -ln(1 - {eps}) <= {bound} for both mixtures, yet mean q({token} | u) over the "
                    f"OOD prompts differs by {gap}")
