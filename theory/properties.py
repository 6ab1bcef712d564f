"""Properties φ of AR models (docs/theory.md §3–4), computed exactly in rationals, never by sampling.

Budget convention: ``max_new_tokens`` counts every generated token, EOS included (as in
``generate(max_new_tokens=…)``).  A completion is *finished* when it ends with EOS within the budget;
its ``text`` excludes EOS.  A rule metric has two denominators (docs/theory.md §4), both reported by
:class:`RuleMetrics`: all prompts, where an unfinished completion counts as a failure, and the finished
completions only (the published tables').

Greedy decoding takes ``NextTokenDistribution.argmax()`` (ties broken by outcome order, EOS last) and
records whether any step was tied.

Merging protocol for :func:`sampled_rule_probability`: a model may define
``state_key(prefix) -> Hashable``, promising that ``state_key(u) == state_key(v)`` implies
``next_token(u + w) == next_token(v + w)`` for every continuation w (e.g. the last token for a bigram
model, a count for a counter model).  Nodes with equal (model key, automaton state) are then merged
into one, which turns the exponential completion tree into a polynomial lattice.  Without the method
the tree is expanded as is.  The promise is trusted, not checked.

Every function here reads its model through :func:`theory.models.validated` (wrapping is cheap when
the model is already wrapped): the rows it sees are validated, and they are the rows the loss sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Iterable, Mapping, Protocol, runtime_checkable

from theory.alphabet import EOS
from theory.errors import InvalidBudget, InvalidLanguage, InvalidPrompt
from theory.exact import FractionInterval
from theory.languages import Automaton, Language
from theory.models import ARModel, validated
from theory.prompts import PromptSet
from theory.validation import check_int

DEFAULT_NODE_BUDGET = 200_000


# ---- checks ---------------------------------------------------------------------------------------
def _check_budget(value: object, what: str = "max_new_tokens", minimum: int = 0) -> int:
    return check_int(value, what, minimum=minimum, error=InvalidBudget)


def _check_rule(model: ARModel, rule: object) -> Automaton:
    if not isinstance(rule, Automaton):
        raise InvalidLanguage(f"rule {rule!r} is not a Rule or Language")
    if rule.alphabet != model.alphabet:
        raise InvalidLanguage(
            f"rule {rule.name!r} is over alphabet {str(rule.alphabet)!r} but the model is over {str(model.alphabet)!r}"
        )
    return rule


def _check_prompts(model: ARModel, prompts: Iterable[str]) -> tuple[str, ...]:
    if isinstance(prompts, str):
        raise InvalidPrompt(f"expected an iterable of prompts, got the single string {prompts!r}")
    ps = tuple(prompts)
    if not ps:
        raise InvalidPrompt("the prompt set is empty")
    for u in ps:
        model.alphabet.check_sequence(u, "prompt")
    return ps


# ---- greedy ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Completion:
    """A greedy completion: ``text`` (EOS excluded), ``finished`` (ended with EOS within the budget),
    ``tied`` (some step's argmax was tied and broken by outcome order)."""

    text: str
    finished: bool
    tied: bool


def greedy_completion(model: ARModel, prompt: str, max_new_tokens: int) -> Completion:
    """The greedy completion of ``prompt`` with at most ``max_new_tokens`` tokens (EOS included).

    Raises:
        InvalidBudget: ``max_new_tokens`` not an int ≥ 0.  UnknownToken: a prompt token outside Σ.
        InvalidModel, InvalidDistribution: not a model, or an invalid row (:func:`validated`).
    """
    _check_budget(max_new_tokens)
    model = validated(model)
    model.alphabet.check_sequence(prompt, "prompt")
    text, tied = "", False
    for _ in range(max_new_tokens):
        tok, t = model.next_token(prompt + text).argmax()
        tied = tied or t
        if tok == EOS:
            return Completion(text, True, tied)
        text += tok
    return Completion(text, False, tied)


def _greedy_ok(model: ARModel, prompt: str, rule: Automaton, max_new_tokens: int) -> bool:
    c = greedy_completion(model, prompt, max_new_tokens)
    return c.finished and rule.accepts(prompt + c.text)


def rule_extrapolation_accuracy(model: ARModel, prompts: Iterable[str], rule: Automaton, max_new_tokens: int) -> Fraction:
    """The fraction of ``prompts`` whose greedy completion finishes within the budget and makes
    prompt + completion satisfy ``rule`` (a Rule or a Language).

    Raises:
        InvalidBudget, UnknownToken (a prompt), InvalidPrompt (no prompts), InvalidLanguage (the rule's
        alphabet is not the model's), InvalidModel / InvalidDistribution (:func:`validated`).
    """
    _check_budget(max_new_tokens)
    model = validated(model)
    _check_rule(model, rule)
    ps = _check_prompts(model, prompts)
    return Fraction(sum(_greedy_ok(model, u, rule, max_new_tokens) for u in ps), len(ps))


@dataclass(frozen=True)
class RuleMetrics:
    """The companion paper's four metrics over a :class:`PromptSet` (``None`` when that side is empty):
    ``id_r1``/``id_r2``: R1/R2 of prompt + completion on ID prompts; ``ood_r1``: R1 of
    prompt + completion on OOD prompts (rule extrapolation); ``ood_r2_completion``: R2 of what the
    convention reads on OOD prompts (:func:`theory.conventions.r2_completion_word`: the completion
    alone, or for L4/L6 under ``published`` the prompt's w plus the completion).

    Two denominators, both always reported: the plain fields divide by **all prompts** (an unfinished
    completion fails every metric); the ``*_finished`` fields divide by the **finished** completions
    only, as the published tables do (``None`` when none finished).  Counts: prompts, finished
    completions, completions with a tied step; ``convention`` names the reading the rules and the
    R2-completion word follow."""

    id_r1: Fraction | None
    id_r2: Fraction | None
    ood_r1: Fraction | None
    ood_r2_completion: Fraction | None
    n_id: int
    n_ood: int
    id_finished: int
    ood_finished: int
    tied: int
    id_r1_finished: Fraction | None = None
    id_r2_finished: Fraction | None = None
    ood_r1_finished: Fraction | None = None
    ood_r2_completion_finished: Fraction | None = None
    convention: str = "paper"

    def as_dict(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def rule_metrics(model: ARModel, language: Language, prompt_set: PromptSet, max_new_tokens: int, *,
                 convention: str = "paper") -> RuleMetrics:
    """Greedy-decode every prompt of ``prompt_set`` once and score the four metrics exactly, in both
    denominators (:class:`RuleMetrics`) under ``convention``.

    Raises:
        InvalidBudget; InvalidLanguage (alphabet mismatch); InvalidPrompt (the prompt set belongs to
        another language); InvalidConvention; InvalidModel / InvalidDistribution (:func:`validated`).
    """
    _check_budget(max_new_tokens)
    model = validated(model)
    if not isinstance(language, Language):
        raise InvalidLanguage(f"{language!r} is not a Language")
    _check_rule(model, language)
    completions = {u: greedy_completion(model, u, max_new_tokens) for u in dict.fromkeys(prompt_set.prompts)}
    return score_completions(language, prompt_set, completions, convention=convention)


def score_completions(language: Language, prompt_set: PromptSet, completions: Mapping[str, Completion], *,
                      convention: str = "paper") -> RuleMetrics:
    """The four metrics from given completions (``{prompt: Completion}``, e.g. a network's batched
    greedy decoding), in both denominators: R1/R2 of prompt + completion on ID prompts, R1 of
    prompt + completion and R2 of :func:`theory.conventions.r2_completion_word` on OOD prompts.  A
    prompt listed twice counts twice (the published prompt sets draw with replacement).

    Raises:
        InvalidPrompt: the prompt set belongs to another language, or a prompt has no completion.
        InvalidConvention: an unknown convention, or one of the paper's languages under a convention that
            does not read it so (e.g. the paper's L2 scored under ``published``): :func:`theory.conventions.check_reading`.
    """
    from theory.conventions import check_reading, r2_completion_word

    if prompt_set.language != language:
        raise InvalidPrompt(f"prompt set is for {prompt_set.language.name}, not {language.name}")
    check_reading(language, convention)
    missing = [u for u in prompt_set.prompts if u not in completions]
    if missing:
        raise InvalidPrompt(f"no completion given for prompt {missing[0]!r}")
    r1, r2 = language.r1, language.r2
    tied = 0

    def score(prompts: tuple[str, ...], tests) -> tuple[list[Fraction | None], list[Fraction | None], int]:
        nonlocal tied
        hits, done = [0] * len(tests), 0
        for u in prompts:
            c = completions[u]
            tied += c.tied
            if c.finished:
                done += 1
                for i, test in enumerate(tests):
                    hits[i] += test(u, c.text)
        every = [Fraction(h, len(prompts)) if prompts else None for h in hits]
        finished = [Fraction(h, done) if done else None for h in hits]
        return every, finished, done

    (id_r1, id_r2), (id_r1_f, id_r2_f), id_done = score(
        prompt_set.id_prompts, (lambda u, z: r1.accepts(u + z), lambda u, z: r2.accepts(u + z)))
    (ood_r1, ood_r2c), (ood_r1_f, ood_r2c_f), ood_done = score(
        prompt_set.ood_prompts,
        (lambda u, z: r1.accepts(u + z), lambda u, z: r2.accepts(r2_completion_word(language.name, convention, u, z))))
    return RuleMetrics(id_r1, id_r2, ood_r1, ood_r2c, len(prompt_set.id_prompts), len(prompt_set.ood_prompts),
                       id_done, ood_done, tied, id_r1_f, id_r2_f, ood_r1_f, ood_r2c_f, convention)


# ---- sampling, exactly ----------------------------------------------------------------------------
def sampled_rule_probability(model: ARModel, prompt: str, rule: Automaton, max_new_tokens: int, *,
                             node_budget: int = DEFAULT_NODE_BUDGET,
                             prefetch: Callable[[list[str]], object] | None = None) -> FractionInterval:
    """The probability that a sampled completion of ``prompt`` ends with EOS and prompt + completion
    satisfies ``rule``, by dynamic programming over (model state, automaton state).

    Returns [lo, hi]: lo is the exact mass of satisfying completions finished within
    ``max_new_tokens`` tokens (EOS included); hi adds the mass still unfinished when the token budget
    or ``node_budget`` (model rows expanded) ran out.  Branches whose automaton state is not
    completable are dropped as certain failures, and zero-probability branches are never expanded.
    The interval contains both the within-budget probability and that of unbounded sampling; it is
    exact (lo = hi) when nothing was left unfinished.  Nodes merge under the ``state_key`` protocol
    (module docstring).  ``prefetch``, when given, is called with each level's prefixes before they
    are expanded (a network adapter evaluates them in one batched pass; the rows are read as before).

    Raises:
        InvalidBudget (``max_new_tokens`` < 0 or ``node_budget`` < 1), UnknownToken (the prompt),
        InvalidLanguage (the rule's alphabet is not the model's), InvalidModel / InvalidDistribution
        (:func:`validated`).
    """
    _check_budget(max_new_tokens)
    _check_budget(node_budget, "node_budget", 1)
    model = validated(model)
    _check_rule(model, rule)
    model.alphabet.check_sequence(prompt, "prompt")
    state = rule.run(prompt)
    if not rule.completable_state(state):
        return FractionInterval(0)
    key_fn = getattr(model, "state_key", None)
    outcomes = model.alphabet.outcomes
    # frontier: key -> [representative prefix, automaton state, mass]
    frontier: dict[object, list] = {prompt: [prompt, state, Fraction(1)]}
    lo, expanded = Fraction(0), 0
    for _ in range(max_new_tokens):
        nxt: dict[object, list] = {}
        pending = list(frontier.values())
        if prefetch is not None:
            prefetch([p for p, _s, _m in pending[:max(0, node_budget - expanded)]])
        for i, (prefix, s, mass) in enumerate(pending):
            if expanded >= node_budget:
                left = sum((m for _p, _s, m in pending[i:]), Fraction(0)) + sum((e[2] for e in nxt.values()), Fraction(0))
                return FractionInterval(lo, lo + left)
            expanded += 1
            for tok, p in zip(outcomes, model.next_token(prefix).probs):
                if p == 0:
                    continue
                if tok == EOS:
                    if rule.accepts_state(s):
                        lo += mass * p
                    continue
                s2 = rule.step(s, tok)
                if not rule.completable_state(s2):
                    continue
                child = prefix + tok
                key = (key_fn(child), s2) if key_fn is not None else child
                entry = nxt.get(key)
                if entry is None:
                    nxt[key] = [child, s2, mass * p]
                else:
                    entry[2] += mass * p
        frontier = nxt
        if not frontier:
            break
    left = sum((e[2] for e in frontier.values()), Fraction(0))
    return FractionInterval(lo, lo + left)


def mean_sampled_rule_probability(model: ARModel, prompts: Iterable[str], rule: Automaton, max_new_tokens: int, *,
                                  node_budget: int = DEFAULT_NODE_BUDGET) -> FractionInterval:
    """The average over ``prompts`` of :func:`sampled_rule_probability` (``node_budget`` per prompt).

    Raises: as :func:`sampled_rule_probability`, plus InvalidPrompt for an empty prompt set.
    """
    _check_budget(max_new_tokens)
    model = validated(model)
    _check_rule(model, rule)
    ps = _check_prompts(model, prompts)
    total = FractionInterval(0)
    for u in ps:
        total = total + sampled_rule_probability(model, u, rule, max_new_tokens, node_budget=node_budget)
    return FractionInterval(total.lo / len(ps), total.hi / len(ps))


# ---- properties as objects (for witnesses) --------------------------------------------------------
@runtime_checkable
class Property(Protocol):
    """φ: a named map from a model to an exact value or a rigorous bracket."""

    name: str

    def __call__(self, model: ARModel) -> Fraction | FractionInterval:
        ...


def _freeze_prompts(obj: object, prompts: Iterable[str], max_new_tokens: int) -> None:
    if isinstance(prompts, str):
        raise InvalidPrompt(f"expected an iterable of prompts, got the single string {prompts!r}")
    ps = tuple(prompts)
    if not ps:
        raise InvalidPrompt("the prompt set is empty")
    object.__setattr__(obj, "prompts", ps)
    _check_budget(max_new_tokens)


@dataclass(frozen=True)
class GreedyRuleAccuracy:
    """φ(Q) = :func:`rule_extrapolation_accuracy` (Q, prompts, rule, max_new_tokens): a Fraction."""

    prompts: tuple[str, ...]
    rule: Automaton
    max_new_tokens: int

    def __post_init__(self) -> None:
        _freeze_prompts(self, self.prompts, self.max_new_tokens)

    @property
    def name(self) -> str:
        return f"greedy {self.rule.name} accuracy on {len(self.prompts)} prompts (≤ {self.max_new_tokens} tokens)"

    def __call__(self, model: ARModel) -> Fraction:
        return rule_extrapolation_accuracy(model, self.prompts, self.rule, self.max_new_tokens)


@dataclass(frozen=True)
class SampledRuleProbability:
    """φ(Q) = :func:`mean_sampled_rule_probability` (Q, prompts, rule, max_new_tokens): an interval."""

    prompts: tuple[str, ...]
    rule: Automaton
    max_new_tokens: int
    node_budget: int = DEFAULT_NODE_BUDGET

    def __post_init__(self) -> None:
        _freeze_prompts(self, self.prompts, self.max_new_tokens)
        _check_budget(self.node_budget, "node_budget", 1)

    @property
    def name(self) -> str:
        return f"sampled {self.rule.name} probability on {len(self.prompts)} prompts (≤ {self.max_new_tokens} tokens)"

    def __call__(self, model: ARModel) -> FractionInterval:
        return mean_sampled_rule_probability(model, self.prompts, self.rule, self.max_new_tokens,
                                             node_budget=self.node_budget)
