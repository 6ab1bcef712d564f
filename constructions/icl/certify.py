"""Proposition 2's certificates at the population level (docs/theory.md §4.2), on an instance small
enough to enumerate every prompt (:mod:`constructions.icl.population`).

Δ is fixed before ε, and three things are certified separately:

* :func:`icl_effect_certificate` — the instance is fit for Proposition 2: the Bayes predictor P
  learns in context, acc_P(n) − acc_P(0) ≥ Δ_ICL for some evaluated n, exactly.  An instance without
  the effect is *refused* (``falsified`` when the exact accuracies show it, never ``verified``).
* :func:`surgery_population_certificate` — the local surgery at the smallest n whose certified KL
  bound M̄(A(n))·ln(1/(1 − λ)) is ≤ ε, with Q's extra mass on a wrong *label*; verified when the exact
  accuracy gap acc_P(n) − acc_Q(n) is ≥ Δ and the instance's ICL effect is certified.
* :func:`mixture_population_certificate` — Q_ε = (1 − ε)P + εR with the literal no-ICL R; verified at
  the smallest evaluated n with a certified gap ≥ Δ, when R's own ICL gain is at most
  ``r_gain_bound`` (a model that learns from its examples is not a no-ICL model) and the effect is
  certified.

Every claim names the ε, Δ, instance and example counts it was checked at — nothing is claimed for
other ε (the universal statement needs bounds for every n, which are not part of these checks).
Every number in a ``detail`` string is rounded outward: accuracies as ``[lo, hi]`` to 3 decimals
(down, up), KL bounds up to 3 significant digits, gaps down.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from types import MappingProxyType
from typing import Mapping, Sequence

from constructions.icl.hmm import MixtureHMM
from constructions.icl.models import check_mixture_weight, check_surgery_weight
from constructions.icl.population import PopulationEvaluation, evaluate_population
from constructions.icl.surgery import boundary_rates
from theory.certificate import Certificate, Status, library_versions
from theory.exact import FractionInterval, LogCombination, scientific
from theory.exact import fixed as places
from theory.validation import check_number

ASSUMPTIONS = (
    "accuracies are exact expectations over the prompt distribution of constructions.icl.prompts: every prompt with "
    "positive probability is enumerated with its exact probability (constructions.icl.population)",
    "every model answers with its argmax over the labels (the delimiter excluded); float64 forward passes carry the "
    "rigorous relative error bound of constructions.icl.forward, and an answer whose margin it cannot separate is "
    "undecided: wrong in the lower end of an accuracy interval, right in the upper end",
)


def interval_text(iv: FractionInterval) -> str:
    """``[lo, hi]`` rounded outward to 3 decimals."""
    return f"[{places(iv.lo, 'down')}, {places(iv.hi, 'up')}]"


def kl_text(kl: LogCombination | Fraction) -> str:
    """An upper bound on a KL, rounded up to 3 significant digits."""
    hi = kl.interval()[1] if isinstance(kl, LogCombination) else Fraction(kl)
    return scientific(hi, "up", 3)


def gap_lower(a: FractionInterval, b: FractionInterval) -> Fraction:
    """A certified lower bound on |a − b| for values known to lie in the intervals (0 if they may meet)."""
    return max(Fraction(0), a.lo - b.hi, b.lo - a.hi)


@dataclass(frozen=True)
class InstanceReport:
    """The population evaluations of one instance at every n, with the settings they were made with."""

    hmm: MixtureHMM
    k: int
    ns: tuple[int, ...]
    epsilons: tuple[Fraction, ...]
    per_n: Mapping[int, PopulationEvaluation]
    r_model: str
    surgery_target: str
    name: str


def evaluate_instance(hmm: MixtureHMM, k: int, ns: Sequence[int], epsilons: Sequence[Fraction], *, name: str,
                      r_model: str = "literal", surgery_target: str = "label") -> InstanceReport:
    """:func:`~constructions.icl.population.evaluate_population` at every n of ``ns`` (which must
    include 0, the zero-shot baseline).

    Raises:
        InvalidPrompt: as :func:`~constructions.icl.population.enumerate_prompts`, or 0 not in ``ns``.
    """
    from theory.errors import InvalidPrompt

    ns = tuple(sorted(set(int(n) for n in ns)))
    if 0 not in ns:
        raise InvalidPrompt(f"example counts {list(ns)} must include 0 (the zero-shot baseline of the ICL effect)")
    eps = tuple(check_mixture_weight(e) for e in epsilons)
    per_n = {n: evaluate_population(hmm, n, k, eps, surgery_target, r_model) for n in ns}
    return InstanceReport(hmm, k, ns, eps, MappingProxyType(per_n), r_model, surgery_target, name)  # read-only


def check_delta(value: object, what: str) -> Fraction:
    """A gap (Δ, Δ_ICL, a gain bound) as an exact Fraction in (0, 1].

    Raises:
        InvalidWitness: anything else, naming ``what`` and the value.
    """
    from theory.errors import InvalidWitness

    try:
        d = Fraction(value)  # type: ignore[call-overload]  # refused below when it is not a number
    except (TypeError, ValueError, ZeroDivisionError):
        raise InvalidWitness(f"{what} = {value!r} is not a number in (0, 1]") from None
    check_number(d, what, lo=0, hi=1, lo_open=True, real=True, error=InvalidWitness)
    return d


def _base_quantities(rep: InstanceReport) -> dict[str, object]:
    return {"instance": rep.name, "k": rep.k, "ns": list(rep.ns), "hmm": rep.hmm.describe(),
            "prompts_per_n": {str(n): rep.per_n[n].prompts for n in rep.ns}}


def _effect(rep: InstanceReport, delta_icl: Fraction) -> tuple[int | None, Fraction, bool]:
    """(the smallest n with a certified effect ≥ Δ_ICL or None, the best certified effect, whether the
    exact numbers rule the effect out at every evaluated n)."""
    base = rep.per_n[0].acc_p
    best, found = Fraction(0), None
    ruled_out = True
    for n in rep.ns[1:]:
        acc = rep.per_n[n].acc_p
        lo = acc.lo - base.hi
        best = max(best, lo)
        if found is None and lo >= delta_icl:
            found = n
        if acc.hi - base.lo >= delta_icl:
            ruled_out = False
    return found, best, ruled_out


def icl_effect_certificate(rep: InstanceReport, delta_icl: Fraction | str = Fraction(3, 10),
                           check: str = "prop-2-icl-effect") -> Certificate:
    """Whether P learns in context on the instance: acc_P(n) − acc_P(0) ≥ Δ_ICL at some evaluated n."""
    d = check_delta(delta_icl, "delta_icl")
    found, best, ruled_out = _effect(rep, d)
    claim = (f"On the instance {rep.name} (k = {rep.k}), the Bayes predictor P learns in context: its exact "
             f"population ICL accuracy (argmax over the labels) rises by >= {d} from n = 0 examples to some n in "
             f"{list(rep.ns[1:])}.")
    per_n = {str(n): {"acc_P": rep.per_n[n].acc_p, "prompts": rep.per_n[n].prompts} for n in rep.ns}
    quantities = {**_base_quantities(rep), "delta_icl": d, "per_n": per_n, "best_effect_lower": best}
    positive = all(rep.per_n[n].positive for n in rep.ns)
    reasons = []
    if not positive:
        reasons.append("a prompt has P(u) = 0: off the support, where Proposition 1's epsilon = 0 argument applies")
    if found is None:
        reasons.append(f"P's accuracy rises by at most {places(best, 'up')} (certified lower bound) over n in "
                       f"{list(rep.ns[1:])}, not >= {d}: the instance shows no ICL effect of that size")
    status = Status.VERIFIED if not reasons else (Status.FALSIFIED if ruled_out and positive else Status.UNKNOWN)
    if found is not None:
        effect = rep.per_n[found].acc_p.lo - rep.per_n[0].acc_p.hi  # the effect at the n the detail names
        quantities["n"], quantities["effect_lower"] = found, effect
        detail = (f"acc_P {interval_text(rep.per_n[0].acc_p)} at n=0 -> {interval_text(rep.per_n[found].acc_p)} at "
                  f"n={found}; effect >= {places(effect, 'down')}")
    else:
        detail = f"no ICL effect >= {d}: best >= {places(best, 'down')}"
    return Certificate(check=check, claim=claim, status=status, method="exact", detail=detail, reason="; ".join(reasons),
                       quantities=quantities, assumptions=ASSUMPTIONS, versions=library_versions("numpy"))


def surgery_population_certificate(rep: InstanceReport, lam: Fraction | str, epsilon: Fraction | str,
                                   delta: Fraction | str = Fraction(3, 10), delta_icl: Fraction | str = Fraction(3, 10),
                                   check: str = "prop-2-icl-surgery") -> Certificate:
    """The local surgery at the smallest evaluated n with certified KL ≤ ε (see the module docstring)."""
    lam, epsilon = check_surgery_weight(lam), check_mixture_weight(epsilon)
    d, d_icl = check_delta(delta, "delta"), check_delta(delta_icl, "delta_icl")
    claim = (f"On the instance {rep.name} (k = {rep.k}) with Delta = {d} fixed first and epsilon = {epsilon}: Q = P "
             f"except at ICL-format answer prefixes with >= n examples, where q = (1 - lambda) p + lambda delta_w with "
             f"lambda = {lam} and w a wrong label (the smallest label other than P's answer), has "
             f"KL(P || Q) <= M(A(n)) ln(1/(1 - lambda)) <= epsilon, and Q's exact population ICL accuracy (argmax over the "
             f"labels) is below P's by >= Delta; P's own ICL effect is >= {d_icl}.")
    from constructions.icl.witness import smallest_surgery_n, surgery_kl_bound

    rates = boundary_rates(rep.hmm, rep.k)
    n = smallest_surgery_n(rep.hmm, rep.k, lam, epsilon, max(rep.ns), rates)
    m, kl_bound = surgery_kl_bound(rep.hmm, rep.k, n, lam, rates) if n is not None and n in rep.per_n else (None, None)
    quantities: dict[str, object] = {**_base_quantities(rep), "lambda": lam, "epsilon": epsilon, "delta": d,
                                     "delta_icl": d_icl, "surgery_target": rep.surgery_target,
                                     "per_prefix_kl_bound": LogCombination.log(1 / (1 - lam))}
    reasons = []
    effect_n, _best, _ruled = _effect(rep, d_icl)
    if effect_n is None:
        reasons.append(f"the instance has no certified ICL effect >= {d_icl} (prop-2-icl-effect): it is not fit for "
                       "Proposition 2")
    if n is None or m is None:
        reasons.append(f"no evaluated n in {list(rep.ns)} has a certified surgery KL bound <= {epsilon}")
        return Certificate(check=check, claim=claim, status=Status.UNKNOWN, method="bound", detail="no n reaches epsilon",
                           reason="; ".join(reasons), quantities=quantities, assumptions=ASSUMPTIONS,
                           versions=library_versions("numpy"))
    assert kl_bound is not None
    kl = kl_bound
    ev = rep.per_n[n]
    gap = ev.acc_p.lo - ev.acc_q_surgery.hi
    if not ev.positive:
        reasons.append("a prompt has P(u) = 0 (off the support)")
    if gap < d:
        reasons.append(f"at n = {n} the accuracy gap is >= {places(max(gap, Fraction(0)), 'down')} only, not >= {d} "
                       f"(P {interval_text(ev.acc_p)}, Q {interval_text(ev.acc_q_surgery)})")
    ruled_out = ev.acc_p.hi - ev.acc_q_surgery.lo < d
    status = Status.VERIFIED if not reasons else (Status.FALSIFIED if ruled_out and effect_n is not None else Status.UNKNOWN)
    quantities.update({"n": n, "M_A_upper": m, "kl_upper_bound": kl, "acc_P": ev.acc_p, "acc_Q": ev.acc_q_surgery,
                       "accuracy_gap_lower": max(gap, Fraction(0))})
    detail = (f"KL <= {kl_text(kl)}; acc {interval_text(ev.acc_p)} vs {interval_text(ev.acc_q_surgery)} "
              f"(n={n}, k={rep.k}, {ev.prompts:,} prompts)")
    return Certificate(check=check, claim=claim, status=status, method="bound", detail=detail, reason="; ".join(reasons),
                       quantities=quantities, assumptions=ASSUMPTIONS + (
                           "M(A(n)) <= (1/C) sum_c a_c b_c rho_c^(n-1) / (1 - rho_c), exact in the instance's rationals "
                           "(constructions.icl.surgery.surgery_mass_bound); per prefix KL <= ln(1/(1 - lambda)) "
                           "(prop-2-kl-bound-symbolic)",), versions=library_versions("numpy"))


def mixture_population_certificate(rep: InstanceReport, epsilon: Fraction | str, delta: Fraction | str = Fraction(3, 10),
                                   delta_icl: Fraction | str = Fraction(3, 10), r_gain_bound: Fraction | str = Fraction(1, 100),
                                   check: str = "prop-2-icl-mixture") -> Certificate:
    """Q_ε = (1 − ε)P + εR at the smallest evaluated n with a certified gap ≥ Δ (module docstring)."""
    epsilon = check_mixture_weight(epsilon)
    d, d_icl = check_delta(delta, "delta"), check_delta(delta_icl, "delta_icl")
    r_bound = check_delta(r_gain_bound, "r_gain_bound")
    if epsilon not in rep.epsilons:
        from theory.errors import InvalidPrompt

        raise InvalidPrompt(f"epsilon {epsilon} was not evaluated (the report has {[str(e) for e in rep.epsilons]})")
    kl = LogCombination.log(1 / (1 - epsilon))
    claim = (f"On the instance {rep.name} (k = {rep.k}) with Delta = {d} fixed first and epsilon = {epsilon}: "
             f"Q = (1 - epsilon) P + epsilon R, with R the no-ICL model (examples scored independently from fresh starts, "
             f"delimiters certain, answers from the test input alone), has KL(P || Q) <= -ln(1 - epsilon), and at some "
             f"evaluated n its exact population ICL accuracy (argmax over the labels) differs from P's by >= Delta; R's "
             f"own ICL gain is <= {r_bound} and P's ICL effect is >= {d_icl}.")
    base_r = rep.per_n[0].acc_r
    r_gain = max((gap_lower(rep.per_n[n].acc_r, base_r) for n in rep.ns), default=Fraction(0))
    r_gain_upper = max((max(rep.per_n[n].acc_r.hi - base_r.lo, base_r.hi - rep.per_n[n].acc_r.lo) for n in rep.ns),
                       default=Fraction(0))
    per_n: dict[str, object] = {}
    found = None
    for n in rep.ns:
        ev = rep.per_n[n]
        acc_q = ev.acc_q_mixture[epsilon]
        g = gap_lower(ev.acc_p, acc_q)
        w_lower = 1 / (1 + (1 - epsilon) / epsilon * ev.p_over_r_upper)  # w(u) >= this at every prompt
        per_n[str(n)] = {"acc_P": ev.acc_p, "acc_Q": acc_q, "acc_R": ev.acc_r, "gap_lower": g,
                         "min_w_lower": Fraction(scientific(w_lower, "down", 6)) if w_lower > 0 else Fraction(0),
                         "max_P_over_R_upper": Fraction(scientific(ev.p_over_r_upper, "up", 6)) if ev.p_over_r_upper else Fraction(0)}
        if found is None and g >= d:
            found = n
    quantities: dict[str, object] = {**_base_quantities(rep), "epsilon": epsilon, "delta": d, "delta_icl": d_icl,
                                     "r_model": rep.r_model, "r_gain_bound": r_bound, "r_gain_upper": r_gain_upper,
                                     "kl_upper_bound": kl, "per_n": per_n}
    reasons = []
    effect_n, _best, _ruled = _effect(rep, d_icl)
    if effect_n is None:
        reasons.append(f"the instance has no certified ICL effect >= {d_icl} (prop-2-icl-effect): it is not fit for "
                       "Proposition 2")
    if r_gain_upper > r_bound:
        reasons.append(f"R's ICL gain may reach {places(r_gain_upper, 'up')} > {r_bound} (certified >= "
                       f"{places(r_gain, 'down')}): R learns from its examples, it is not a no-ICL model")
    if not all(rep.per_n[n].positive for n in rep.ns):
        reasons.append("a prompt has P(u) = 0 (off the support)")
    if found is None:
        reasons.append(f"no n in {list(rep.ns)} has a certified accuracy gap >= {d}")
        detail = f"KL <= {kl_text(kl)}; no gap >= {d} for n <= {max(rep.ns)}"
    else:
        quantities["n"] = found
        ev = rep.per_n[found]
        row = per_n[str(found)]
        assert isinstance(row, dict)
        detail = (f"KL <= {kl_text(kl)}; acc {interval_text(ev.acc_p)} vs {interval_text(ev.acc_q_mixture[epsilon])} "
                  f"(n={found}); R gain <= {places(r_gain_upper, 'up')}; w >= {places(row['min_w_lower'], 'down')}")
    status = Status.VERIFIED if not reasons else Status.UNKNOWN
    return Certificate(check=check, claim=claim, status=status, method="bound", detail=detail, reason="; ".join(reasons),
                       quantities=quantities, assumptions=ASSUMPTIONS + (
                           "KL(P || (1-eps)P + eps R) <= -ln(1-eps) for every R: proved symbolically (prop-2-kl-bound-symbolic)",),
                       versions=library_versions("numpy"))
