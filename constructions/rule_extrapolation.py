"""Proposition 1: zero-shot rule extrapolation is non-identifiable (docs/theory.md §4), as explicit witnesses.

For a data distribution P supported in a language L = R1 ∩ R2 and a set U of OOD prompts
(P(u) = 0 for every u ∈ U), two models copy p(· | u) at every support prefix and differ only off the
support:

* Q₁, the **R1-completer**: at an off-support prefix u it emits the first token of the shortest
  continuation z with u·z ∈ R1 (ties broken by alphabet order), and EOS once u ∈ R1;
* Q₂, the **R1-violator**: it emits EOS once u ∉ R1, and otherwise the first token of the shortest z
  with u·z ∉ R1 (for aⁿbⁿ: one surplus letter, then EOS).

Both have KL(P ‖ Qᵢ) = 0 exactly (Lemma B); on U, Q₁'s greedy and sampled completions satisfy R1
(where R1 can still be satisfied) and Q₂'s never do.  :meth:`RuleCase.certificate` computes all of it
exactly — the KLs by the chain rule over every support prefix, the greedy accuracies by decoding, the
sampled probabilities by the dynamic program of :mod:`theory.properties` — so a broken model (one
that leaks an OOD change onto a support prefix) comes out ``falsified`` with that prefix named.

The cases (:data:`CASES`):

* ``anbn`` — aⁿbⁿ, n ≥ 1, with a geometric prior P(n) = (1 − r) r^(n−1): infinite support, KL summed
  exactly to a depth and the tail closed by the construction (see :meth:`RuleCase.witness`);
* ``L3`` / ``L5`` — the companion paper's data: all aⁿbⁿ, n = 1..128, and all aⁿbⁿcⁿ, n = 1..85,
  uniform (``n_max`` shrinks them);
* ``L1``, ``L2``, ``L4``, ``L6`` — the paper trains on random words; here an explicit generator with
  exact conditionals, :func:`theory.budget_data.budget_uniform`: words of L of length ≤ ``max_length``, each step uniform
  over the tokens (EOS included) after which the word can still end in L within the budget.

Prompts are the paper's (:func:`theory.prompts.paper_prompts`): all 256 words of length 8 for L1–L3
(251 OOD for L3), all 243 of length 5 for L5, ``)[w`` for L4/L6.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Callable, Iterable, SupportsFloat

from theory.alphabet import EOS, Alphabet
from theory.budget_data import budget_uniform
from theory.certificate import Certificate, Status, library_versions
from theory.data import DataDistribution, FiniteDistribution, anbn_geometric
from theory.errors import InapplicableOption, InvalidBudget, InvalidDistribution, InvalidLanguage, InvalidPrompt
from theory.exact import LogCombination
from theory.languages import DEFAULT_SEARCH_LIMIT, Automaton, Language, block_words, get_language
from theory.languages import shortest_continuation as shortest_continuation
from theory.models import ARModel, FunctionModel, RowLike, SupportExtension, copies_support
from theory.probability import NextTokenDistribution, as_probability
from theory.prompts import PromptSet, paper_prompts
from theory.properties import GreedyRuleAccuracy, SampledRuleProbability, rule_metrics
from theory.validation import check_int
from theory.witness import Witness, check_witness

CASES: tuple[str, ...] = ("anbn", "L1", "L2", "L3", "L4", "L5", "L6")
"""The seven Proposition 1 cases, in the order ``nonid prove`` lists them."""

PAPER_N_MAX: dict[str, int] = {"L3": 128, "L5": 85}
"""The companion paper's data: all aⁿbⁿ with 2n ≤ 256 and all aⁿbⁿcⁿ with 3n ≤ 256."""

DEFAULT_MAX_LENGTH: dict[str, int] = {"L1": 12, "L2": 12, "L4": 10, "L6": 10}
"""Word-length budget of :func:`budget_uniform` for the random-word languages (the paper's is 256; the
exact KL visits every support prefix, so the default keeps ``nonid prove`` in seconds)."""

DEFAULT_MAX_NEW_TOKENS = 32
"""Completion budget, EOS included (the longest completion the paper's prompts need here is 11)."""

DEFAULT_ANBN_RATIO = Fraction(1, 2)
DEFAULT_ANBN_DEPTH = 40


# ---- the two policies ------------------------------------------------------------------------------
# The search itself (shortest_continuation, DEFAULT_SEARCH_LIMIT) lives in theory.languages; it is
# re-exported here, where Proposition 1's tests and readers first meet it.
class RulePolicy:
    """A deterministic AR model defined at every prefix: the first token of the shortest continuation
    that makes the word satisfy ``rule`` (``satisfy=True``, the R1-completer) or violate it
    (``satisfy=False``, the R1-violator), EOS once the goal holds or when no continuation within
    ``search_limit`` reaches it.  Rows depend only on the rule's state, so they are cached by state.
    """

    def __init__(self, rule: Automaton, *, satisfy: bool, search_limit: int = DEFAULT_SEARCH_LIMIT,
                 name: str | None = None) -> None:
        check_int(search_limit, "search limit", minimum=1, error=InvalidBudget)
        self.alphabet: Alphabet = rule.alphabet
        self.rule = rule
        self.satisfy = satisfy
        self.search_limit = search_limit
        self.name = name or f"{'satisfy' if satisfy else 'violate'} {rule.name}"
        self._rows: dict[object, NextTokenDistribution] = {}

    def next_token(self, prefix: str) -> NextTokenDistribution:
        state = self.rule.run(prefix)
        row = self._rows.get(state)
        if row is None:
            z = self.rule.shortest_completion(prefix, accept=self.satisfy, limit=self.search_limit)
            row = NextTokenDistribution.point(self.alphabet, z[0] if z else EOS)
            self._rows[state] = row
        return row

    def __repr__(self) -> str:
        return f"RulePolicy({self.name!r})"


def complete_ood_with(data: DataDistribution, policy: ARModel | Callable[[str], RowLike], name: str = "") -> SupportExtension:
    """The model that copies ``data``'s conditionals on its support and follows ``policy`` off it.

    ``policy`` is an AR model or a function ``prefix → row`` (a mapping token → probability); it is
    asked only at prefixes u with P(u) = 0.  Every such model has KL(P ‖ Q) = 0 (Lemma B).

    Raises:
        InvalidDistribution: the policy is over another alphabet.
    """
    if not hasattr(policy, "next_token"):
        if not callable(policy):
            raise InvalidDistribution(f"policy {policy!r} is neither an AR model nor a function prefix -> row")
        policy = FunctionModel(data.alphabet, policy, name=getattr(policy, "__name__", "policy"))
    return SupportExtension(data, policy,  # type: ignore[arg-type]  # has next_token: an AR model
                            name=name or f"{data.name} + {getattr(policy, 'name', 'policy')} off the support")


# ---- data ------------------------------------------------------------------------------------------
def ordered_counts_data(language: Language | str, n_max: int) -> FiniteDistribution:
    """All s₁ⁿ s₂ⁿ … s_kⁿ, n = 1..``n_max``, uniform (the paper's aⁿbⁿ and aⁿbⁿcⁿ data)."""
    lang = get_language(language) if isinstance(language, str) else language
    check_int(n_max, "n_max", minimum=1, error=InvalidBudget)
    return FiniteDistribution.uniform(lang.alphabet, block_words(str(lang.alphabet), n_max), name=f"{lang.name} n=1..{n_max}, uniform")


# ---- the witness -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RuleCase:
    """One Proposition 1 witness: data P on ``language``, OOD prompts, and the two models.

    ``ood_prompts`` are the prompts the claim is about (those of ``prompts`` on which R1 can still be
    satisfied and violated); ``unsatisfiable`` lists the OOD prompts left out because no continuation
    satisfies R1, ``inviolable`` those left out because every continuation (within the search limit) keeps it.
    ``depth`` is set only for infinite-support data (KL summed exactly below it)."""

    name: str
    language: Language
    data: DataDistribution
    prompts: PromptSet
    ood_prompts: tuple[str, ...]
    unsatisfiable: tuple[str, ...]
    completer: ARModel
    violator: ARModel
    inviolable: tuple[str, ...] = ()
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    depth: int | None = None
    description: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def check_name(self) -> str:
        return f"prop-1-{self.name}"

    def with_models(self, completer: ARModel | None = None, violator: ARModel | None = None) -> "RuleCase":
        """The same case with other models (to test that the check catches a broken construction)."""
        return replace(self, completer=completer or self.completer, violator=violator or self.violator)

    def witness(self) -> Witness:
        """The (P, Q₁, Q₂, φ = greedy OOD R1 accuracy, ε = 0, Δ = 1) witness.

        For infinite P the KL is summed exactly over the support prefixes shorter than ``depth`` and
        the tail is closed at 0 by construction (listed in the certificate's assumptions): at every u
        with P(u) > 0 a :class:`~theory.models.SupportExtension` returns p(· | u) itself."""
        r1 = self.language.r1
        phi = GreedyRuleAccuracy(self.ood_prompts, r1, self.max_new_tokens)
        # The tail beyond ``depth`` is closed at 0 only for a model that copies p(.|u) on the whole
        # support by construction; any other model leaves it open (and the KL undecided).
        tails = tuple(LogCombination.zero() if self.depth is not None and copies_support(q, self.data) else None
                      for q in (self.completer, self.violator))
        return Witness(
            name=self.check_name, claim=self.claim(), data=self.data, q1=self.completer, q2=self.violator,
            prop=phi, property_name="greedy OOD R1 accuracy", epsilon=Fraction(0), delta=Fraction(1),
            depth=self.depth, kl_tail_bounds=tails,  # type: ignore[arg-type]  # one tail per model: two
        )

    def claim(self) -> str:
        return (f"{self.language.name} ({self.language.grammar}): two models with KL(P || Q) = 0 exactly whose "
                f"completions of {len(self.ood_prompts)} OOD prompts all satisfy R1 ({self.language.r1.name}), "
                "resp. all violate it, greedy and sampled.")

    def certificate(self) -> Certificate:
        """Check the witness exactly.  ``verified`` needs KL(P ‖ Q₁) = KL(P ‖ Q₂) = 0, greedy OOD R1
        accuracy 1 vs 0, and the exact sampled R1 probability 1 vs 0; anything else is ``falsified``
        (or ``unknown`` when a bracket does not decide), with the reason."""
        t0 = time.perf_counter()
        base = check_witness(self.witness())
        r1 = self.language.r1
        sampled_phi = SampledRuleProbability(self.ood_prompts, r1, self.max_new_tokens)
        sampled = (sampled_phi(self.completer), sampled_phi(self.violator))
        ood_only = PromptSet(self.language, (), self.ood_prompts)
        metrics = [rule_metrics(q, self.language, ood_only, self.max_new_tokens) for q in (self.completer, self.violator)]

        status, reasons = base.status, [base.reason] if base.reason else []
        for i, (iv, want) in enumerate(zip(sampled, (1, 0)), 1):
            if iv.exact and iv.lo != want:
                status = Status.FALSIFIED
                reasons.append(f"sampled R1 probability of Q{i} is {iv.lo} (exactly), not {want}")
            elif not iv.exact and not iv.lo <= want <= iv.hi:
                status = Status.FALSIFIED
                reasons.append(f"sampled R1 probability of Q{i} lies in [{iv.lo}, {iv.hi}], which excludes {want}")
            elif not iv.exact and status is Status.VERIFIED:
                status = Status.UNKNOWN
                reasons.append(f"sampled R1 probability of Q{i} only bracketed in [{iv.lo}, {iv.hi}]")

        q = dict(base.quantities)
        q.update({
            "language": self.language.name, "grammar": self.language.grammar, "r1": r1.name,
            "r2": self.language.r2.name, "data": self.data.name, "prompt_set": self.prompts.description,
            "ood_prompts": len(self.ood_prompts), "ood_prompts_r1_unsatisfiable": list(self.unsatisfiable),
            "ood_prompts_r1_inviolable": list(self.inviolable),
            "max_new_tokens": self.max_new_tokens, "depth": self.depth,
            "sampled_r1_q1": sampled[0], "sampled_r1_q2": sampled[1],
            "ood_r1_q1": metrics[0].ood_r1, "ood_r1_q2": metrics[1].ood_r1,
            "ood_r2_completion_q1": metrics[0].ood_r2_completion, "ood_r2_completion_q2": metrics[1].ood_r2_completion,
            "ood_finished_q1": metrics[0].ood_finished, "ood_finished_q2": metrics[1].ood_finished,
        })
        if self.data.is_finite:
            q["support_sequences"] = sum(1 for _ in self.data.sequences())
        assumptions = list(base.assumptions) + [
            "completions are greedy (ties broken by outcome order; the policies never tie) or sampled exactly, "
            f"at most {self.max_new_tokens} tokens with EOS, scored only when finished",
        ]
        if self.depth is not None:
            assumptions.append(
                f"infinite support: KL summed exactly over support prefixes shorter than {self.depth}; the tail is 0 "
                "because both models return p(.|u) itself at every u with P(u) > 0 (checked structurally: each is a "
                "SupportExtension of P, patched only off the support; any other model leaves the tail open)")
        assumptions.extend(self.notes)

        def f(x: SupportsFloat | None) -> str:
            return "?" if x is None else f"{float(x):g}"

        kl_part = base.detail.split(";")[0]
        detail = (f"{kl_part}; OOD R1 greedy {f(metrics[0].ood_r1)} vs {f(metrics[1].ood_r1)}, sampled "
                  f"{f(sampled[0].lo)} vs {f(sampled[1].hi)}; {len(self.ood_prompts)} prompts")
        return Certificate(
            check=self.check_name, claim=self.claim(), status=status, method=base.method, detail=detail,
            reason="; ".join(reasons), quantities=q, assumptions=tuple(assumptions),
            versions=library_versions(), elapsed_s=time.perf_counter() - t0,
        )


def rule_extrapolation_case(data: DataDistribution, language: Language | str, prompts: PromptSet | Iterable[str], *,
                            name: str | None = None, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
                            search_limit: int = DEFAULT_SEARCH_LIMIT, depth: int | None = None,
                            description: str = "", notes: Iterable[str] = ()) -> RuleCase:
    """The Proposition 1 witness for any data P on ``language`` and any OOD prompts.

    ``prompts`` is a :class:`PromptSet` (its OOD side is used) or an iterable of OOD prompts.  Every
    prompt must be OOD for the language *and* off the support of P.  For finite P, every support word
    must lie in the language.

    Raises:
        InvalidPrompt: an ID prompt passed as OOD, a prompt with P(u) > 0, or no OOD prompt at all.
        UnknownToken: a prompt over the wrong alphabet.
        InvalidDistribution: P over another alphabet, or a support word outside the language.
        InvalidBudget: a bad ``max_new_tokens`` or ``search_limit``.
    """
    lang = get_language(language) if isinstance(language, str) else language
    if data.alphabet != lang.alphabet:
        raise InvalidDistribution(f"data {data.name!r} is over {str(data.alphabet)!r}, {lang.name} over {str(lang.alphabet)!r}")
    check_int(max_new_tokens, "max_new_tokens", minimum=1, error=InvalidBudget)
    pset = prompts if isinstance(prompts, PromptSet) else PromptSet(lang, (), tuple(_as_prompt_list(prompts)))
    if pset.language != lang:
        raise InvalidPrompt(f"prompt set is for {pset.language.name}, not {lang.name}")
    if not pset.ood_prompts:
        raise InvalidPrompt(f"no OOD prompts given for {lang.name}")
    for u in pset.ood_prompts:
        if data.prefix_mass(u) > 0:
            raise InvalidPrompt(f"OOD prompt {u!r} has P(u) = {data.prefix_mass(u)} > 0 under {data.name!r}: it is on the support")
    if data.is_finite:
        for x, _p in data.sequences():
            if not lang.contains(x):
                raise InvalidDistribution(f"support word {x!r} of {data.name!r} is not in {lang.name}")
    r1 = lang.r1
    completer_policy = RulePolicy(r1, satisfy=True, search_limit=search_limit, name="R1-completer")
    violator_policy = RulePolicy(r1, satisfy=False, search_limit=search_limit, name="R1-violator")
    satisfiable = tuple(u for u in pset.ood_prompts if r1.completable(u))
    unsat = tuple(u for u in pset.ood_prompts if not r1.completable(u))
    if not satisfiable:
        raise InvalidPrompt(f"R1 ({r1.name}) cannot be satisfied after any of the {len(pset.ood_prompts)} OOD prompts")
    # A prompt after which every continuation keeps R1 (e.g. "starts with a" after "a…") shows nothing either.
    kept = tuple(u for u in satisfiable if r1.shortest_completion(u, accept=False, limit=search_limit) is not None)
    inviolable = tuple(u for u in satisfiable if u not in kept)
    if not kept:
        raise InvalidPrompt(f"R1 ({r1.name}) cannot be violated within {search_limit} tokens after any of the "
                            f"{len(satisfiable)} OOD prompts where it can be satisfied")
    completer = complete_ood_with(data, completer_policy, name="Q1 (R1-completer)")
    violator = complete_ood_with(data, violator_policy, name="Q2 (R1-violator)")
    return RuleCase(name=name or lang.name, language=lang, data=data, prompts=pset, ood_prompts=kept,
                    unsatisfiable=unsat, inviolable=inviolable, completer=completer, violator=violator,
                    max_new_tokens=max_new_tokens,
                    depth=depth, description=description or data.name, notes=tuple(notes))


def _as_prompt_list(prompts: Iterable[str]) -> list[str]:
    if isinstance(prompts, str):
        raise InvalidPrompt(f"expected an iterable of prompts, got the single string {prompts!r}")
    return list(prompts)


def build_case(name: str, *, n_max: int | None = None, max_length: int | None = None,
               ratio: Fraction | str | None = None, depth: int | None = None, seed: int = 0,
               max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS) -> RuleCase:
    """One of :data:`CASES` with the paper's prompts.

    Options (each only where it applies; elsewhere it is an error): ``n_max`` for L3/L5 (default
    128/85), ``max_length`` for L1/L2/L4/L6 (default :data:`DEFAULT_MAX_LENGTH`), ``ratio`` and ``depth``
    for anbn (default 1/2 and 40), ``seed`` for L4/L6's sampled ``w`` (64 of them).

    Raises:
        InvalidLanguage: an unknown case.  InapplicableOption: an option that does not apply to the case.
        InvalidBudget: a bad size.
    """
    key = {c.casefold(): c for c in CASES}.get(name.casefold()) if isinstance(name, str) else None
    if key is None:
        raise InvalidLanguage(f"unknown rule-extrapolation case {name!r}; known: {', '.join(CASES)}")
    given = {"n_max": n_max, "max_length": max_length, "ratio": ratio, "depth": depth}
    allowed = {"anbn": {"ratio", "depth"}, "L3": {"n_max"}, "L5": {"n_max"}}.get(key, {"max_length"})
    bad = [k for k, v in given.items() if v is not None and k not in allowed]
    if bad:
        raise InapplicableOption(f"option {bad[0]}={given[bad[0]]!r} does not apply to case {key!r} (it takes {', '.join(sorted(allowed))})")
    if key == "anbn":
        lang = get_language("L3")
        r = as_probability(ratio, "anbn ratio") if ratio is not None else DEFAULT_ANBN_RATIO
        data: DataDistribution = anbn_geometric(r)
        d = DEFAULT_ANBN_DEPTH if depth is None else depth
        check_int(d, "depth", minimum=1, error=InvalidBudget)
        return rule_extrapolation_case(data, lang, paper_prompts(lang), name="anbn", max_new_tokens=max_new_tokens,
                                       depth=d, description=f"a^n b^n, n >= 1, P(n) = (1 - r) r^(n-1), r = {r}")
    lang = get_language(key)
    if key in PAPER_N_MAX:
        n = PAPER_N_MAX[key] if n_max is None else n_max
        data = ordered_counts_data(lang, n)
        return rule_extrapolation_case(data, lang, paper_prompts(lang), name=key, max_new_tokens=max_new_tokens,
                                       description=data.name)
    m = DEFAULT_MAX_LENGTH[key] if max_length is None else max_length
    data = budget_uniform(lang, m)
    prompts = paper_prompts(lang, seed=seed) if key in ("L4", "L6") else paper_prompts(lang)
    return rule_extrapolation_case(
        data, lang, prompts, name=key, max_new_tokens=max_new_tokens, description=data.name,
        notes=(f"the paper's random words (length <= 256) are replaced by an explicit generator with exact "
                       f"conditionals: words of {key} of length <= {m}, uniform over the feasible next outcomes",))


def certify_all(cases: Iterable[str] = CASES) -> list[Certificate]:
    """:meth:`RuleCase.certificate` for each named case (default: all seven)."""
    return [build_case(c).certificate() for c in cases]
