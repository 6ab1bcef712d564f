"""Audit a network someone trained elsewhere: is it saturated on the data, and what does it do on the
paper's prompts?

:func:`audit` takes a :class:`~empirical.adapter.NetworkModel` (any causal network with a token map) and
the data (a language's data distribution P of :func:`empirical.data.language_data`, or any finite P)
and returns an :class:`AuditResult`; :func:`audit_certificate` states it as a certificate.

**Saturation.**  The gap is KL(P ‖ Q) = CE(P, Q) − H(P), summed exactly by the chain rule over the
support prefixes (docs/theory.md §2), with q(a | u) the network's **full** softmax: mass it puts on
ids outside Σ ∪ {EOS} (a BOS row, padding, the rest of a big vocabulary) counts against it, so this
gap is at least the gap of the network renormalised over Σ ∪ {EOS}.  It is given in the three units
of docs/theory.md §1: nats per sequence, per token (÷ (E|x| + 1)) and per padded token (÷ (T − 1),
T = the longest word + 2), as a bracket rounded outward.  The bracket is *rigorous* — it holds for
the real function of the stored weights — when the evaluator encloses the architecture
(:func:`constructions.enclosure.why_not_enclosable`); otherwise it bounds one float64 evaluation and
says so.

**Verdict** against a stated ε (in a stated unit): ``verified`` when the rigorous gap's upper end is
≤ ε, ``falsified`` when its lower end is > ε, ``unknown`` when the bracket straddles ε, is unbounded,
or is not rigorous (a float evaluation proves nothing about the network, either way).

**Rule metrics** (docs/theory.md §4) on the evaluated prompt sets of both readings
(:mod:`theory.conventions`), both denominators: greedy completions, batched, with at most the
experiments' token budget and never past the context length.  Greedy decoding is over the network's
whole vocabulary (what it would emit); a completion that emits an id outside Σ ∪ {EOS} stops there,
unfinished.  Completions are decoded on float passes, then, where the enclosure is rigorous, every
step is checked on one enclosure of the completed words: a step is *certified* when the token taken
is certainly the strict maximum; a completion all of whose steps are certified is the real network's
greedy completion, whatever the batch layout or float kernel — the metrics are certified when every
completion is.  A
completion stopped by the context length (not by EOS or the budget) is listed: the check that no
completion runs past the context.

**Sampled completions** (optional, budgeted): the probability that a sampled completion satisfies R1,
by :func:`theory.properties.sampled_rule_probability` on the renormalised float64 rows — a measurement,
``unknown`` with the reason when the node budget runs out first.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from empirical.adapter import NetworkModel, leaked_mass_bounds
from empirical.data import LanguageData
from empirical.experiment import generation_budget
from empirical.protocol import check_epsilon
from empirical.saturation import FLOAT_METHOD, METHOD, SaturationGap, float_down, float_up
from theory import conventions
from theory.certificate import Certificate, Status, library_versions
from theory.data import DataDistribution
from theory.errors import InvalidBudget, InvalidModelConfig
from theory.exact import LogCombination, scientific
from theory.languages import Language
from theory.properties import Completion, RuleMetrics, score_completions
from theory.validation import check_choice, check_int

CHECK = "audit-saturation"
UNITS = ("token", "sequence", "padded")
UNIT_TEXT = {"token": "nats/token", "sequence": "nats/sequence", "padded": "nats/padded token"}
DEFAULT_EPSILON = 1e-3
DEFAULT_NODE_BUDGET = 2_000
MAX_PREFIXES = 200_000
ASSUMPTIONS_RIGOROUS = (
    "the network computes the function of its architecture as the evaluator encloses it (constructions.enclosure: "
    "IEEE-754 binary64 + - * / sqrt rounded to nearest; no library transcendental trusted)",
)
ASSUMPTIONS_FLOAT = (
    "the gap bracket bounds one float64 evaluation of the network (its logits taken as exact points), not the network's "
    "real function: no rigorous enclosure of this architecture",
)


@dataclass(frozen=True)
class GreedyRun:
    """One prompt's greedy completion (over the whole vocabulary, at most ``budget`` tokens, EOS counted).

    ``stop``: ``eos`` (finished), ``budget`` (the token budget ran out), ``context`` (the next step would
    need more positions than the context length), ``off-alphabet`` (the network emitted id ``off_id``,
    outside Σ ∪ {EOS}).  ``certified``: every step's output was certainly the strict maximum of the
    rigorous enclosure.  ``tied``: some step's float argmax was tied."""

    prompt: str
    text: str
    stop: str
    certified: bool
    tied: bool
    off_id: int | None = None

    @property
    def finished(self) -> bool:
        return self.stop == "eos"

    def completion(self, budget: int) -> Completion:
        """The completion within ``budget`` tokens (EOS included)."""
        if self.finished and len(self.text) + 1 <= budget:
            return Completion(self.text, True, self.tied)
        return Completion(self.text[:budget], False, self.tied)

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"prompt": self.prompt, "completion": self.text, "stop": self.stop, "certified": self.certified}
        if self.off_id is not None:
            d["off_id"] = self.off_id
        return d


@dataclass(frozen=True)
class AuditResult:
    """What :func:`audit` found (module docstring); :func:`audit_certificate` states it."""

    model: str
    evaluation: str
    rigorous: bool
    token_map: str
    context: int
    data: str
    language: str
    gap: SaturationGap
    leaked: tuple[float, float]
    epsilon: float
    unit: str
    status: Status
    reason: str
    metrics: Mapping[str, RuleMetrics]
    budgets: Mapping[str, int]
    completions: tuple[GreedyRun, ...]
    sampled: Mapping[str, Any] = field(default_factory=dict)
    timings: Mapping[str, float] = field(default_factory=dict)

    def gap_in(self, unit: str) -> tuple[float, float]:
        if unit == "token":
            return self.gap.per_token()
        if unit == "padded":
            return self.gap.padded()
        return self.gap.kl_lo, self.gap.kl_hi

    @property
    def certified_completions(self) -> int:
        return sum(r.certified for r in self.completions)

    @property
    def context_stops(self) -> tuple[str, ...]:
        return tuple(r.prompt for r in self.completions if r.stop == "context")

    @property
    def off_alphabet(self) -> tuple[str, ...]:
        return tuple(r.prompt for r in self.completions if r.stop == "off-alphabet")



def data_for_audit(data: LanguageData | DataDistribution, language: Language | None) -> LanguageData:
    """``data`` as a :class:`LanguageData` (a bare finite P needs its ``language`` for the rule metrics)."""
    if isinstance(data, LanguageData):
        return data
    if not isinstance(data, DataDistribution):
        raise InvalidModelConfig(f"data must be a LanguageData or a DataDistribution, got {type(data).__name__}")
    if language is None:
        raise InvalidModelConfig("a bare data distribution needs language= (for the rule metrics)")
    if not data.is_finite:
        raise InvalidModelConfig(f"the saturation gap needs a finite data distribution; {data.name!r} may be infinite")
    words = [x for x, _p in data.sequences()]
    return LanguageData(language, data, tuple(words), tuple((x, float(p)) for x, p in data.sequences()), True,
                        max(len(x) for x in words), data.name)


def _gap(model: NetworkModel, data: LanguageData, prec: int = 96) -> tuple[SaturationGap, tuple[float, float], float]:
    from constructions.enclosure import kl_bounds
    from theory.losses import entropy

    P = data.distribution
    den, nodes = P.integer_trie()
    if len(nodes) > MAX_PREFIXES:
        raise InvalidModelConfig(f"{P.name!r} has {len(nodes)} support prefixes, above the audit's limit {MAX_PREFIXES}")
    t0 = time.perf_counter()
    prefixes = [u for u, _m, _ms in nodes]
    full = model.enclosure(prefixes)
    enc = model.outcome_enclosure(full)
    lo, hi = kl_bounds(P, enc, prec)
    H = entropy(P)
    assert isinstance(H, LogCombination)
    h_lo, h_hi = H.interval(prec)
    seqs = [x for x, _p in P.sequences()]
    mean_len = float(P.mean_length())
    gap = SaturationGap(max(0.0, float_down(lo)), math.inf if hi is None else float_up(hi), H, float_down(h_lo),
                        float_up(h_hi), len(nodes),
                        mean_len + 1, max(len(x) for x in seqs) + 1, METHOD if model.rigorous else FLOAT_METHOD,
                        rigorous=model.rigorous)
    return gap, leaked_mass_bounds(full, model.tokens.outcome_ids), time.perf_counter() - t0


@dataclass
class _Decoding:
    text: str = ""
    cert: bool = True
    tied: bool = False
    stop: str = ""
    off: int | None = None


def greedy_runs(model: NetworkModel, prompts: Sequence[str], budget: int,
                progress: Callable[[int, int], object] | None = None) -> tuple[GreedyRun, ...]:
    """Greedy completions of ``prompts`` (module docstring): decoded on batched float64 passes (every
    active prompt of a step in one pass), then, where the network is enclosed rigorously, every step of
    every completion checked on one enclosure of the completed words: a completion is ``certified``
    when at each of its steps the token it took is certainly the strict maximum of the real function
    (so the real network's greedy completion is this one, whatever the float kernels did)."""
    check_int(budget, "greedy budget =", minimum=0, error=InvalidBudget)
    tok = model.tokens
    sym_of = {i: s for s, i in zip(tok.alphabet.symbols, tok.symbols)}
    state = {u: _Decoding(cert=model.rigorous) for u in dict.fromkeys(prompts)}
    for u in state:
        model.alphabet.check_sequence(u, "prompt")
    active = []
    for u, st in state.items():  # a prompt the context cannot hold is stopped by it before any step
        if len(u) + 1 > model.context:
            st.stop, st.cert = "context", False
        else:
            active.append(u)
    steps: dict[str, list[tuple[str, int]]] = {u: [] for u in state}  # (prefix read, id taken)
    for step in range(budget):
        if not active:
            break
        if progress is not None:
            progress(step, budget)
        prefixes = [u + state[u].text for u in active]
        z = model.logits(prefixes)
        keep = []
        for u, prefix, row in zip(active, prefixes, z):
            st = state[u]
            top = row.max()
            k = int(np.flatnonzero(row == top)[0])
            st.tied = st.tied or int((row == top).sum()) > 1
            steps[u].append((prefix, k))
            if k == tok.eos:
                st.stop = "eos"
            elif k in sym_of:
                st.text += sym_of[k]
                if len(u) + len(st.text) + 1 > model.context:
                    st.stop = "context"
                else:
                    keep.append(u)
            else:
                st.stop, st.off = "off-alphabet", k
        active = keep
    for u in active:
        state[u].stop = "budget"
    if model.rigorous:
        read = [pre for u in state for pre, _k in steps[u]]
        if read:
            enc = model.enclosure(read)
            for u, st in state.items():
                st.cert = st.cert and all(_certain(enc, pre) == k for pre, k in steps[u])
    return tuple(GreedyRun(u, st.text, st.stop, st.cert, st.tied, st.off) for u, st in state.items())


def _certain(enc: Any, prefix: str) -> int | None:
    """The output certainly the strict maximum of the enclosed real function at ``prefix``, or None."""
    i = enc.index[prefix]
    lo, hi = enc.lp_lo[i], enc.lp_hi[i]
    k = int(np.argmax(lo))
    others = np.delete(hi, k)
    return k if np.isfinite(lo[k]) and (others.size == 0 or lo[k] > others.max()) else None


def audit(model: NetworkModel, data: LanguageData | DataDistribution, *, language: Language | None = None,
          epsilon: float = DEFAULT_EPSILON, unit: str = "token", readings: Sequence[str] = conventions.CONVENTIONS,
          sampled: bool = False, node_budget: int = DEFAULT_NODE_BUDGET,
          echo: Callable[[str], object] | None = None) -> AuditResult:
    """Audit ``model`` on ``data`` (module docstring).

    Raises:
        InvalidModelConfig: a bad ε, a context length shorter than the longest support word needs, a
            data distribution that is not finite.  InvalidConvention: an unknown reading.  InvalidBudget:
            a bad node budget.
    """
    if not isinstance(model, NetworkModel):
        raise InvalidModelConfig(f"audit takes a NetworkModel (empirical.adapter), got {type(model).__name__}")
    eps = float(check_epsilon(epsilon, error=InvalidModelConfig))
    check_choice(unit, "unit", UNITS, error=InvalidModelConfig)
    check_int(node_budget, "node budget =", minimum=1, error=InvalidBudget)
    for r in readings:
        conventions.check_convention(r)
    d = data_for_audit(data, language)
    if d.language.alphabet != model.alphabet:
        raise InvalidModelConfig(f"the data is over {str(d.language.alphabet)!r}, the token map over {str(model.alphabet)!r}")
    if d.max_length + 1 > model.context:
        raise InvalidModelConfig(f"context length {model.context} is shorter than the longest support word needs: "
                                 f"{d.max_length} symbols + BOS = {d.max_length + 1} positions")
    timings: dict[str, float] = {}
    gap, leaked, timings["gap_s"] = _gap(model, d)
    lo, hi = (gap.per_token() if unit == "token" else gap.padded() if unit == "padded" else (gap.kl_lo, gap.kl_hi))
    name = f"saturated at eps = {eps:g} {UNIT_TEXT[unit]}"
    if not gap.rigorous:
        status, reason = Status.UNKNOWN, (f"{name}: the gap [{_dn(lo)}, {_upt(hi)}] is from one float evaluation "
                                          f"({model.evaluation}), not certified")
    elif not math.isfinite(hi) and lo <= eps:
        status, reason = Status.UNKNOWN, f"{name}: the enclosure leaves the gap unbounded (a probability too small to bound)"
    elif hi <= eps:
        status, reason = Status.VERIFIED, ""
    elif lo > eps:
        status, reason = Status.FALSIFIED, f"certified gap >= {_dn(lo)} {UNIT_TEXT[unit]} > eps = {eps:g}: not saturated at eps"
    else:
        status, reason = Status.UNKNOWN, f"{name}: the certified gap [{_dn(lo)}, {_upt(hi)}] straddles eps"
    # rule metrics: every reading's prompt set, one decoding pass with the largest budget
    t0 = time.perf_counter()
    sets = {r: conventions.prompt_set(d.language.name, r) for r in readings}
    budgets = {r: generation_budget(d, s) for r, s in sets.items()}  # the experiments' budget
    prompts = list(dict.fromkeys(u for s in sets.values() for u in s.prompts))
    if echo is not None:
        echo(f"greedy: {len(prompts)} prompts, at most {max(budgets.values())} tokens each")
    runs = greedy_runs(model, prompts, max(budgets.values()))
    by_prompt = {r.prompt: r for r in runs}
    metrics = {}
    for r, s in sets.items():
        comps = {u: by_prompt[u].completion(budgets[r]) for u in dict.fromkeys(s.prompts)}
        metrics[r] = score_completions(s.language, s, comps, convention=r)
    timings["greedy_s"] = time.perf_counter() - t0
    out_sampled: dict[str, Any] = {}
    if sampled:
        t0 = time.perf_counter()
        out_sampled = _sampled(model, sets, budgets, node_budget)
        timings["sampled_s"] = time.perf_counter() - t0
    return AuditResult(model.name, model.evaluation, model.rigorous, model.tokens.text(), model.context, d.description,
                       d.language.name, gap, leaked, eps, unit, status, reason, metrics, budgets, runs, out_sampled, timings)


def _sampled(model: NetworkModel, sets: Mapping[str, Any], budgets: Mapping[str, int], node_budget: int) -> dict[str, Any]:
    from theory.properties import sampled_rule_probability

    out: dict[str, Any] = {}
    for r, s in sets.items():
        lo = hi = Fraction(0)
        exhausted = 0
        ood = list(dict.fromkeys(s.ood_prompts))
        for u in ood:  # never a row past the context: a completion the context cuts stays open mass
            tokens = max(0, min(budgets[r], model.context - len(u)))
            iv = sampled_rule_probability(model, u, s.language.r1, tokens, node_budget=node_budget,
                                          prefetch=model.prefetch)
            lo += iv.lo
            hi += iv.hi
            exhausted += iv.lo != iv.hi
        n = len(ood)
        status = "verified" if not exhausted else "unknown"
        out[r] = {"ood_r1_sampled": [lo / n, hi / n], "prompts": n, "open": exhausted, "status": status,
                  "reason": "" if not exhausted else (f"the node budget ({node_budget} per prompt), the token budget or the "
                                                      f"context length ran out on {exhausted} of {n} prompts: the bracket "
                                                      "holds the open mass"),
                  "node_budget": node_budget}
    return out


def _dn(x: float, digits: int = 4) -> str:
    return "0" if x <= 0 else scientific(Fraction(x), "down", digits)


def _upt(x: float, digits: int = 4) -> str:
    return "inf" if not math.isfinite(x) else scientific(Fraction(x), "up", digits)


def bracket(lo: float, hi: float, digits: int = 4) -> str:
    """``[lo, hi]`` as decimals rounded outward."""
    return f"[{_dn(lo, digits)}, {_upt(hi, digits)}]"


def _ratio(x: Fraction | None) -> str:
    return "n/a" if x is None else f"{float(x):.3f}"


def _cells(values: Sequence[str]) -> str:
    widths = (5, 5, 6, 7)
    return "  ".join(f"{v:<{w}}" for v, w in zip(values, widths))


def audit_table(res: AuditResult, *, exact: bool = False) -> str:
    """The human-readable report of ``res``."""
    g = res.gap
    lines = [f"model: {res.model}; token map {res.token_map}; context {res.context} positions",
             f"evaluation: {res.evaluation}",
             f"data: {res.data}; {g.prefixes:,} support prefixes",
             "saturation gap KL(P || Q) (full softmax; outward-rounded):",
             f"  per sequence       {bracket(g.kl_lo, g.kl_hi)} nats",
             f"  per token          {bracket(*g.per_token())} nats   (/ E|x| + 1 = {g.per_token_divisor:.6g})",
             f"  per padded token   {bracket(*g.padded())} nats   (/ T - 1 = {g.padded_divisor}, T = {g.padded_divisor + 1})",
             f"  entropy floor H(P) {bracket(g.entropy_lo, g.entropy_hi)} nats per sequence",
             f"  mass outside the alphabet and EOS, largest over the support prefixes: {bracket(*res.leaked)}"]
    if exact:
        lines.append(f"  exact: H(P) = {g.entropy}")
    lines.append(f"verdict: saturated at eps = {res.epsilon:g} {UNIT_TEXT[res.unit]}: {res.status.value}"
                 + (f" ({res.reason})" if res.reason else ""))
    n, c = len(res.completions), res.certified_completions
    lines.append(f"rule metrics (greedy; {c} of {n} completions certified"
                 + ("" if res.rigorous else ": no rigorous enclosure, measured") + "):")
    head = "ID R1  ID R2  OOD R1  OOD R2c"
    lines.append(f"  {'':<10} {'all prompts':<{len(head)}}   {'finished only':<{len(head)}}   OOD finished")
    lines.append(f"  {'reading':<10} {head}   {head}")
    for r, m in res.metrics.items():
        cells = [_ratio(m.id_r1), _ratio(m.id_r2), _ratio(m.ood_r1), _ratio(m.ood_r2_completion)]
        fin = [_ratio(m.id_r1_finished), _ratio(m.id_r2_finished), _ratio(m.ood_r1_finished),
               _ratio(m.ood_r2_completion_finished)]
        lines.append(f"  {r:<10} " + _cells(cells) + "   " + _cells(fin) + f"   {m.ood_finished}/{m.n_ood}")
    lines.append("  (R2c: OOD R2 of the completion; all prompts: an unfinished completion fails; exact values in --json)")
    stops = res.context_stops
    lines.append(f"context: {len(stops)} of {n} completions reached the context length of {res.context} positions"
                 + (f" (first: {stops[0]!r})" if stops else ""))
    if res.off_alphabet:
        lines.append(f"off-alphabet: {len(res.off_alphabet)} completions emitted an id outside the alphabet and EOS")
    for r, s in res.sampled.items():
        lo, hi = s["ood_r1_sampled"]
        lines.append(f"sampled OOD R1 ({r}): [{_dn(float(lo))}, {_upt(float(hi))}] ({s['status']}"
                     + (f": {s['reason']}" if s["reason"] else "") + "; float64 rows, measured)")
    return "\n".join(lines)


def audit_certificate(res: AuditResult, *, exact: bool = False) -> Certificate:
    """``res`` as a certificate: the saturation verdict, with the gap, the rule metrics, every greedy
    completion and the context check as quantities."""
    g = res.gap
    unit_text = UNIT_TEXT[res.unit]
    claim = (f"{res.model} is saturated on {res.data}: KL(P || Q) with Q the network's full softmax is at most eps = "
             f"{res.epsilon:g} {unit_text}")
    q: dict[str, Any] = {
        "model": res.model, "evaluation": res.evaluation, "rigorous": res.rigorous, "token_map": res.token_map,
        "context": res.context, "data": res.data, "language": res.language, "epsilon": res.epsilon, "unit": res.unit,
        "support_prefixes": g.prefixes,
        "gap_nats_per_sequence": [_dn(g.kl_lo, 6), _upt(g.kl_hi, 6)],
        "gap_nats_per_token": [_dn(g.per_token()[0], 6), _upt(g.per_token()[1], 6)],
        "gap_nats_per_padded_token": [_dn(g.padded()[0], 6), _upt(g.padded()[1], 6)],
        "per_token_divisor": g.per_token_divisor, "padded_T": g.padded_divisor + 1,
        "entropy_nats_per_sequence": [_dn(g.entropy_lo, 9), _upt(g.entropy_hi, 9)],
        "leaked_mass_max": [_dn(res.leaked[0], 6), _upt(res.leaked[1], 6)],
        "greedy_budgets": dict(res.budgets),
        "completions_certified": res.certified_completions, "completions": [r.as_dict() for r in res.completions],
        "context_stops": list(res.context_stops), "off_alphabet": list(res.off_alphabet),
        "rule_metrics": {r: m.as_dict() for r, m in res.metrics.items()},
        "rule_metrics_certified": res.rigorous and res.certified_completions == len(res.completions),
    }
    if exact:
        q["entropy_exact"] = g.entropy
    if res.sampled:
        q["sampled"] = {r: {**s, "ood_r1_sampled": list(s["ood_r1_sampled"])} for r, s in res.sampled.items()}
    detail = (f"gap {bracket(*res.gap_in(res.unit))} {unit_text}; {res.certified_completions}/{len(res.completions)} "
              "greedy completions certified")
    return Certificate(check=CHECK, claim=claim, status=res.status, method="bound", detail=detail, reason=res.reason,
                       quantities=q, assumptions=ASSUMPTIONS_RIGOROUS if res.rigorous else ASSUMPTIONS_FLOAT,
                       versions=library_versions("torch", "numpy", "transformers"), timings=dict(res.timings))
