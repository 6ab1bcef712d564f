"""Synthesis of rule-(non)extrapolating models with exact rational rows (:func:`synthesize_extrapolator`,
:class:`SynthesisResult`) and their exact re-check with the theory code (:func:`recheck_synthesis`,
:class:`Recheck`)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Iterable, Mapping

from theory.alphabet import EOS, Alphabet
from theory.certificate import Status
from theory.errors import InvalidDistribution, InvalidPrompt
from theory.languages import rule_event
from theory.smt.query import DEFAULT_MAX_VARIABLES, DEFAULT_TIMEOUT_MS, _budget, _check_int, _Query, _solve, _sum, z3_version

if TYPE_CHECKING:
    from theory.data import FiniteDistribution
    from theory.exact import FractionInterval, LogCombination
    from theory.models import ARModel



@dataclass(frozen=True)
class Recheck:
    """The exact re-check of a synthesised model: ``kl`` = KL(P ‖ Q) (exact; ``kl_zero`` its exact
    zero test), ``probabilities`` = per prompt the exact bracket of P(completion finishes within the
    horizon and satisfies/violates R1), ``target`` = 1 − δ; ``passed`` iff KL = 0 and every
    bracket's lower end ≥ target.  ``failures`` says what failed."""

    kl: "LogCombination"
    kl_zero: bool
    probabilities: tuple[tuple[str, "FractionInterval"], ...]
    target: Fraction
    satisfy: bool
    passed: bool
    failures: tuple[str, ...] = ()


@dataclass(frozen=True)
class SynthesisResult:
    """Synthesis outcome: ``status`` verified only when z3 found a model *and* the exact re-check
    passed; falsified when z3 proved no model exists in the horizon-L space (exact unless prompts
    nest, where the encoding is conservative and unsat gives unknown); unknown otherwise (timeout,
    budget, or a re-check failure), with ``reason``.  ``model`` is a PatchedModel over a
    SupportExtension of P (rows exact Fractions), or None; ``rows`` the synthesised off-support rows."""

    status: Status
    model: "ARModel | None"
    rows: Mapping[str, Mapping[str, Fraction]]
    recheck: Recheck | None
    horizon: int
    variables: int
    assertions: int
    solver_seconds: float
    z3_version: str
    reason: str = ""

    @property
    def verified(self) -> bool:
        return self.status is Status.VERIFIED


def _check_synthesis_input(P: "FiniteDistribution", prompts: Iterable[str], delta: object, horizon: int) -> tuple[tuple[str, ...], Fraction]:
    from theory.probability import as_probability

    _check_int(horizon, "horizon", 1)
    d = as_probability(delta, "delta")
    if d >= 1:
        raise InvalidDistribution(f"delta {d} must lie in [0, 1)")
    if isinstance(prompts, str):
        raise InvalidPrompt(f"expected an iterable of prompts, got the single string {prompts!r}")
    ps = tuple(dict.fromkeys(prompts))
    if not ps:
        raise InvalidPrompt("the prompt set is empty")
    for u in ps:
        P.alphabet.check_sequence(u, "prompt")
        if len(u) > horizon:
            raise InvalidPrompt(f"prompt {u!r} has length {len(u)}, longer than the horizon {horizon}")
        if P.prefix_mass(u) > 0:
            raise InvalidPrompt(f"prompt {u!r} is in the support (P(u) = {P.prefix_mass(u)}), not OOD")
    return ps, d


def _regions(prompts: tuple[str, ...], alphabet: Alphabet, horizon: int) -> list[tuple[str, list[str], list[str]]]:
    """Per prompt u: (u, region nodes v ⊒ u not inside a longer prompt, boundary prompts w ⊐ u)."""
    pset = set(prompts)
    out = []
    for u in prompts:
        nodes: list[str] = []
        boundary: list[str] = []
        stack = [u]
        while stack:
            v = stack.pop()
            nodes.append(v)
            if len(v) < horizon:
                for a in alphabet.symbols:
                    (boundary if v + a in pset else stack).append(v + a)
        out.append((u, nodes, boundary))
    return out


def synthesize_extrapolator(P: "FiniteDistribution", prompts: Iterable[str], rule: object, delta: object,
                            horizon: int, *, satisfy: bool = False, timeout_ms: int = DEFAULT_TIMEOUT_MS,
                            max_variables: int = DEFAULT_MAX_VARIABLES) -> SynthesisResult:
    """Find a model equal to p(·|u) on S(P) whose sampled completion from every OOD prompt ends
    within the horizon and violates R1 (``satisfy=True``: satisfies it) with probability ≥ 1 − δ.

    Linear encoding per prompt u: f(v) = P(reach v | u), g(v) = P(end at v | u), f(u) = 1,
    f(v) = g(v) + Σ_a f(va) (= g(v) at |v| = L), all ≥ 0, and Σ_{v target} g(v) ≥ 1 − δ; a longer
    prompt w inside u's subtree is its own region and counts (1 − δ)·f(w) for u (conservative).
    Rows are read off as q(a|v) = f(va)/f(v), q(EOS|v) = g(v)/f(v) (EOS where f(v) = 0), then
    re-checked exactly by :func:`recheck_synthesis`.

    Raises:
        InvalidBudget: horizon < 1 (or not an int), bad timeout/budget.  InvalidDistribution: δ not
        an exact number in [0, 1).  InvalidPrompt: no prompts, a prompt in the support or longer than
        the horizon.  UnknownToken: a prompt token outside Σ.  InvalidLanguage: a bad rule.
    """
    ps, d = _check_synthesis_input(P, prompts, delta, horizon)
    _check_int(timeout_ms, "timeout_ms", 1)
    _check_int(max_variables, "max_variables", 1)
    event = rule_event(rule, P.alphabet, satisfy=satisfy)
    regions = _regions(ps, P.alphabet, horizon)
    nvars = sum(2 * len(nodes) + len(bd) for _u, nodes, bd in regions)
    over = _budget(nvars, max_variables)
    if over:
        return SynthesisResult(Status.UNKNOWN, None, {}, None, horizon, nvars, 0, 0.0, z3_version(), over)
    q = _Query()
    names: dict[tuple[int, str], str] = {}
    for r, (u, nodes, bd) in enumerate(regions):
        ids = {v: j for j, v in enumerate(nodes + bd)}
        for v in nodes + bd:
            names[(r, v)] = f"f{r}_{ids[v]}"
        for v in nodes:
            names[(r, "#" + v)] = f"g{r}_{ids[v]}"
        q.declare([names[(r, v)] for v in nodes + bd] + [names[(r, "#" + v)] for v in nodes])
        q.add(f"(= {names[(r, u)]} 1)")
        target = []
        for v in nodes:
            f, g = names[(r, v)], names[(r, "#" + v)]
            kids = [names[(r, v + a)] for a in P.alphabet.symbols] if len(v) < horizon else []
            q.add(f"(>= {g} 0)", f"(= {f} {_sum([g] + kids)})", *[f"(>= {c} 0)" for c in kids])
            if event.accepts(v):
                target.append(g)
        target += [f"(* {_smt_frac(1 - d)} {names[(r, w)]})" for w in bd]
        q.add(f"(>= {_sum(target)} {_smt_frac(1 - d)})")
    out = _solve(q, timeout_ms, want=list(names.values()))
    nested = any(bd for _u, _n, bd in regions)
    if out.answer != "sat":
        if out.answer == "unsat" and not nested:
            status, why = Status.FALSIFIED, (f"no model in the horizon-{horizon} space reaches {'R1' if satisfy else 'not R1'} "
                                             f"with probability >= {1 - d} from every prompt (unsat)")
        else:
            status = Status.UNKNOWN
            why = out.reason or "unsat under the conservative encoding for nested prompts (a longer prompt inside another's subtree)"
        return SynthesisResult(status, None, {}, None, horizon, q.reals, q.assertions, out.seconds, z3_version(), why)
    rows = _read_rows(regions, names, out.values, P.alphabet, horizon)
    model = _assemble_model(P, rows)
    check = recheck_synthesis(P, ps, rule, d, horizon, model, satisfy=satisfy)
    status = Status.VERIFIED if check.passed else Status.UNKNOWN
    why = "" if check.passed else "the solver's model failed the exact re-check: " + "; ".join(check.failures)
    return SynthesisResult(status, model, rows, check, horizon, q.reals, q.assertions, out.seconds, z3_version(), why)


def _smt_frac(x: Fraction) -> str:
    return f"(/ {x.numerator}.0 {x.denominator}.0)"


def _read_rows(regions, names, values: Mapping[str, Fraction], alphabet: Alphabet, horizon: int) -> dict[str, dict[str, Fraction]]:
    rows: dict[str, dict[str, Fraction]] = {}
    for r, (_u, nodes, _bd) in enumerate(regions):
        for v in nodes:
            f = values[names[(r, v)]]
            if f <= 0:
                continue
            row = {EOS: values[names[(r, "#" + v)]] / f}
            if len(v) < horizon:
                for a in alphabet.symbols:
                    row[a] = values[names[(r, v + a)]] / f
            rows[v] = {t: p for t, p in row.items() if p != 0}
    return rows


def _assemble_model(P: "FiniteDistribution", rows: Mapping[str, Mapping[str, Fraction]]) -> "ARModel":
    from theory.models import PatchedModel, SupportExtension, TabularModel

    eos = TabularModel(P.alphabet, {}, default={EOS: 1}, name="eos-everywhere")
    return PatchedModel(SupportExtension(P, eos, name=f"{P.name}-copy"), rows, name="smt-synthesised")


def recheck_synthesis(P: "FiniteDistribution", prompts: Iterable[str], rule: object, delta: object, horizon: int,
                      model: "ARModel", *, satisfy: bool = False) -> Recheck:
    """Re-check a model with the exact theory code: KL(P ‖ Q) by the chain rule (exact zero test) and,
    per prompt, theory.properties.sampled_rule_probability of the target event within the horizon.

    Raises: the input errors of :func:`synthesize_extrapolator`.
    """
    from theory.losses import kl_divergence
    from theory.properties import sampled_rule_probability

    ps, d = _check_synthesis_input(P, prompts, delta, horizon)
    event = rule_event(rule, P.alphabet, satisfy=satisfy)
    kl = kl_divergence(P, model)
    failures = [] if kl.is_zero else [f"KL(P || Q) = {kl}, not 0"]
    probs = []
    for u in ps:
        iv = sampled_rule_probability(model, u, event, horizon - len(u) + 1)
        probs.append((u, iv))
        if iv.lo < 1 - d:
            failures.append(f"prompt {u!r}: P({'R1' if satisfy else 'not R1'}) >= {iv.lo} < {1 - d}")
    return Recheck(kl, kl.is_zero, tuple(probs), 1 - d, satisfy, not failures, tuple(failures))
