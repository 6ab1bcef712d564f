"""Proposition 2's two witnesses on *sampled* prompts (instances too large to enumerate, such as GINC
size), checked into certificates.  The population path — every prompt enumerated with its exact
probability — is :mod:`constructions.icl.certify`; this is its sampled counterpart.

* :func:`evaluate_icl` runs P and R over nested prompts once: label answers (argmax over the labels,
  :func:`~constructions.icl.evaluate.greedy`) with certified margins, rigorous brackets of ln P(u)/R(u)
  for every prompt and n.
* :func:`surgery_certificate` — Q = P except on A(n): KL(P ‖ Q) ≤ M(A(n))·(−ln(1 − λ)) with M(A(n))
  bounded exactly (see :mod:`constructions.icl.surgery`); on A(n) Q puts λ > ½ on a wrong *label*
  (:func:`~constructions.icl.population.surgery_answers`), so Q answers that label.
* :func:`mixture_certificate` — Q_ε = (1 − ε)P + εR: KL(P ‖ Q_ε) ≤ −ln(1 − ε) (sympy proof in
  :mod:`constructions.icl.bounds`); w(u) bracketed for every prompt; Q_ε's answers certified.

**Two kinds of accuracy.**  An :class:`Accuracy` counts the drawn prompts: its ``interval`` is the
accuracy *of the sampled prompt set*, exact up to the undecided answers — not a population value.
:meth:`Accuracy.population_interval` is a **statistical** bound on the population accuracy (the
probability, under the prompt distribution, that the answer is the label): a two-sided
Clopper–Pearson interval at a stated confidence c, valid when the prompts are i.i.d. draws from the
prompt distribution (:func:`sample_prompts_iid`; :func:`~constructions.icl.prompts.sample_prompts`
draws *equal* numbers per concept, which is not an i.i.d. sample, and the certificates then state no
population bound).  It holds with probability ≥ c over the draw, each interval on its own (no
simultaneous coverage over n, models or ε); it is never an exact value.

A verdict is ``verified`` only when every number it rests on is exact or rigorously bracketed — the
verdicts rest on the sampled prompts; the population intervals are reported beside them and are not
part of any verdict.  A prompt with P(u) = 0 (possible only with zero transitions, η = 0) makes it
``unknown`` with the reason that the prompt is off the support (Proposition 1's ε = 0 argument
applies there instead).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from typing import Sequence

import numpy as np

from constructions.icl.evaluate import Masses, bayes_masses_nested, greedy, mixture_next, no_icl_masses_nested
from constructions.icl.hmm import MixtureHMM
from constructions.icl.models import check_mixture_weight, check_surgery_weight
from constructions.icl.population import surgery_answers
from constructions.icl.prompts import NestedPrompts, icl_examples, sample_prompts
from constructions.icl.surgery import BoundaryRates, boundary_rates, format_mass, surgery_mass_bound
from theory.certificate import Certificate, Status, library_versions
from theory.errors import InvalidDistribution, InvalidPrompt
from theory.exact import FractionInterval, LogCombination, decimal_string, scientific
from theory.probability import as_probability
from theory.validation import check_int

# ---- Clopper–Pearson population bounds ----------------------------------------------------------------
CP_METHOD = "clopper-pearson"
"""The name the certificates give the population bound."""
DEFAULT_CONFIDENCE = Fraction(99, 100)
CP_DENOMINATOR = 10**12
"""Clopper–Pearson endpoints are rounded outward to multiples of 1/CP_DENOMINATOR."""
CP_DPS = 30
"""mpmath working precision (decimal digits) of the root finder."""


def check_confidence(confidence: object) -> Fraction:
    """A confidence level as a Fraction in (0, 1) (exact: an int, Fraction or string such as "99/100").

    Raises:
        InvalidDistribution: a float, or a value outside (0, 1), named.
    """
    c = as_probability(confidence, "confidence")
    if not 0 < c < 1:
        raise InvalidDistribution(f"confidence = {c} must lie in (0, 1)")
    return c


def _binomial_sum_scaled(trials: int, lo: int, hi: int, m: int, d: int) -> int:
    """d^N · Σ_{j=lo}^{hi} C(N, j) p^j (1 − p)^(N−j) at p = m/d, exactly (an integer; 0 if lo > hi)."""
    if lo > hi:
        return 0
    q = d - m
    c = math.comb(trials, lo)
    acc, power = c, 1
    for j in range(lo + 1, hi + 1):  # homogeneous Horner: acc = Σ_{i ≤ j} C(N, i) m^(i−lo) q^(j−i)
        c = c * (trials - j + 1) // j
        power *= m
        acc = acc * q + c * power
    return acc * m**lo * q ** (trials - hi)


def _upper_tail_at_most(trials: int, successes: int, m: int, d: int, bound: Fraction) -> bool:
    """Whether P(X ≥ successes) ≤ bound for X ~ Binomial(trials, m/d), decided in integers."""
    N, k = trials, successes
    scale = d**N
    if k <= N - k + 1:  # the shorter of the two sums
        tail = scale - _binomial_sum_scaled(N, 0, k - 1, m, d)
    else:
        tail = _binomial_sum_scaled(N, k, N, m, d)
    return tail * bound.denominator <= bound.numerator * scale


def _cp_root(successes: int, trials: int, half_alpha: Fraction):  # -> mpmath.mpf
    """The p in (0, 1) with P(X ≥ successes | p) = half_alpha, X ~ Binomial(trials, p), 1 ≤ successes ≤
    trials: the regularised incomplete beta I_p(k, N − k + 1) = α/2, by Newton's method on its log
    (safeguarded by bisection), started at the Wilson score bound, in mpmath at CP_DPS digits."""
    import mpmath

    k, N = successes, trials
    with mpmath.workdps(CP_DPS):
        a, b = mpmath.mpf(k), mpmath.mpf(N - k + 1)
        t = mpmath.mpf(half_alpha.numerator) / half_alpha.denominator
        log_t, log_beta = mpmath.log(t), mpmath.log(mpmath.beta(a, b))
        z = mpmath.sqrt(2) * mpmath.erfinv(1 - 2 * t)
        ph = mpmath.mpf(k) / N
        p = (ph + z**2 / (2 * N) - z * mpmath.sqrt(ph * (1 - ph) / N + z**2 / (4 * N**2))) / (1 + z**2 / N)
        if not 0 < p < 1:
            p = ph / 2
        lo, hi = mpmath.mpf(0), mpmath.mpf(1)
        tol = mpmath.mpf(10) ** (8 - CP_DPS)
        for _ in range(400):
            tail = mpmath.betainc(a, b, 0, p, regularized=True)
            h = mpmath.log(tail) - log_t if tail > 0 else mpmath.mpf(-1)
            if h < 0:
                lo = p
            else:
                hi = p
            slope = mpmath.exp((a - 1) * mpmath.log(p) + (b - 1) * mpmath.log1p(-p) - log_beta - mpmath.log(tail)) \
                if tail > 0 else mpmath.mpf(0)
            step = h / slope if slope > 0 else mpmath.mpf(1)
            if abs(step) <= tol * p:
                return p - step
            p = p - step
            if not lo < p < hi:
                p = (lo + hi) / 2
            if hi - lo <= tol * lo:
                break
        return lo


@lru_cache(maxsize=None)
def clopper_pearson_lower(successes: int, trials: int, confidence: Fraction = DEFAULT_CONFIDENCE) -> Fraction:
    """The lower end L of the two-sided Clopper–Pearson interval at ``confidence`` c for ``successes``
    out of ``trials``, rounded *down* to a multiple of 1/CP_DENOMINATOR: 0 if successes = 0, else
    L ≤ the root of P(X ≥ successes | p) = (1 − c)/2.  The root is found in mpmath; the rounded L is then
    checked exactly (the binomial tail at L in integers is ≤ (1 − c)/2, so L lies below the root) and
    moved down until it passes, so the result is a rigorous lower end whatever the float error."""
    check_int(trials, "trials =", minimum=1, error=InvalidPrompt)
    check_int(successes, "successes =", minimum=0, maximum=trials, error=InvalidPrompt)
    half_alpha = (1 - check_confidence(confidence)) / 2
    if successes == 0:
        return Fraction(0)
    import mpmath

    root = _cp_root(successes, trials, half_alpha)
    with mpmath.workdps(CP_DPS):
        m = max(0, min(CP_DENOMINATOR - 1, int(mpmath.floor(root * CP_DENOMINATOR))))
    step = 1
    while m > 0 and not _upper_tail_at_most(trials, successes, m, CP_DENOMINATOR, half_alpha):
        m, step = max(0, m - step), step * 2
    return Fraction(m, CP_DENOMINATOR)


def clopper_pearson_upper(successes: int, trials: int, confidence: Fraction = DEFAULT_CONFIDENCE) -> Fraction:
    """The upper end of the two-sided Clopper–Pearson interval, rounded *up*: 1 − (the lower end for
    the failures), by the symmetry X ↦ N − X."""
    check_int(trials, "trials =", minimum=1, error=InvalidPrompt)
    check_int(successes, "successes =", minimum=0, maximum=trials, error=InvalidPrompt)
    return 1 - clopper_pearson_lower(trials - successes, trials, confidence)


def clopper_pearson(successes: int, trials: int, confidence: Fraction | str = DEFAULT_CONFIDENCE,
                    successes_hi: int | None = None) -> FractionInterval:
    """[lower end for ``successes``, upper end for ``successes_hi``] (default the same count) of the
    two-sided Clopper–Pearson interval at ``confidence``, endpoints rounded outward to rationals.  With
    the true count anywhere in [successes, successes_hi] the interval still covers the population
    proportion with probability ≥ confidence (the ends are monotone in the count)."""
    c = check_confidence(confidence)
    hi = successes if successes_hi is None else successes_hi
    return FractionInterval(clopper_pearson_lower(successes, trials, c), clopper_pearson_upper(hi, trials, c))


def population_entry(acc: "Accuracy", confidence: Fraction, iid: bool) -> dict[str, object] | None:
    """What a sampled certificate reports next to an accuracy: the Clopper–Pearson interval with its
    confidence, method and prompt count — or None when the prompts are not an i.i.d. sample."""
    if not iid:
        return None
    return {"interval": acc.population_interval(confidence), "confidence": confidence, "method": CP_METHOD,
            "prompts": acc.total, "undecided": acc.undecided}


@dataclass(frozen=True)
class Accuracy:
    """ICL accuracy on N sampled prompts: ``correct`` certified right, ``undecided`` whose label answer
    the float margin could not separate (wrong in the lower end of an interval, right in the upper)."""

    correct: int
    undecided: int
    total: int

    @property
    def interval(self) -> FractionInterval:
        """The accuracy of *the drawn prompt set* (exact up to the undecided answers); not a population value."""
        return FractionInterval(Fraction(self.correct, self.total), Fraction(self.correct + self.undecided, self.total))

    @property
    def value(self) -> float:
        return (self.correct + self.undecided / 2) / self.total

    def population_interval(self, confidence: Fraction | str = DEFAULT_CONFIDENCE) -> FractionInterval:
        """A two-sided Clopper–Pearson interval for the *population* accuracy at ``confidence`` c: a
        statistical bound — it covers the probability, under the prompt distribution, that the answer
        is the label with probability ≥ c over the draw, when the ``total`` prompts are i.i.d. draws
        from that distribution (:func:`sample_prompts_iid`) — never an exact value.  Undecided prompts
        count as wrong in the lower end and as right in the upper end; the ends are rounded outward to
        rationals (see :func:`clopper_pearson_lower`)."""
        return clopper_pearson(self.correct, self.total, confidence, self.correct + self.undecided)

    def show(self) -> str:
        """The accuracy on the drawn prompts: three decimals when that is its exact value, else its interval
        rounded outward (``[lo, hi]``; undecided prompts widen it)."""
        from constructions.icl.certify import interval_text

        value = Fraction(self.correct, self.total)
        if not self.undecided and (value * 1000).denominator == 1:
            return f"{float(value):.3f}"
        return interval_text(self.interval)

    def show_population(self, confidence: Fraction | str = DEFAULT_CONFIDENCE) -> str:
        """The population interval rounded outward to 3 decimals, ``[lo, hi]``."""
        from constructions.icl.certify import interval_text

        return interval_text(self.population_interval(confidence))


def accuracy(answers: np.ndarray, sure: np.ndarray, labels: np.ndarray) -> Accuracy:
    return Accuracy(int(np.sum(sure & (answers == labels))), int(np.sum(~sure)), len(labels))


# ---- i.i.d. prompts ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class IIDPrompts(NestedPrompts):
    """Nested prompts that are an i.i.d. sample of the prompt distribution with the concept uniform over
    ``population`` (see :func:`sample_prompts_iid`): the sample the Clopper–Pearson bounds need."""

    population: tuple[int, ...] = ()


def sample_prompts_iid(hmm: MixtureHMM, concepts: Sequence[int], ns: Sequence[int], k: int, n_prompts: int,
                       seed: int = 0) -> IIDPrompts:
    """``n_prompts`` nested prompts drawn i.i.d. from the prompt distribution of
    :mod:`constructions.icl.prompts` with the concept uniform over ``concepts`` (distinct): each prompt's
    concept is drawn uniformly and independently (multinomial counts), the prompts of each concept by
    :func:`~constructions.icl.prompts.sample_prompts` (independent given the concept), and the order is
    shuffled — so, unlike ``sample_prompts``'s equal numbers per concept, the prompts are i.i.d. and the
    accuracy counts are binomial.  Deterministic from ``seed``.

    Raises:
        InvalidPrompt: as :func:`~constructions.icl.prompts.sample_prompts`, or n_prompts < 1.
    """
    check_int(n_prompts, "n_prompts =", minimum=1, error=InvalidPrompt)
    population = tuple(sorted({int(c) for c in concepts}))
    if not population:
        raise InvalidPrompt("no concepts to draw prompts from")
    rng = np.random.default_rng(seed)
    counts = np.bincount(rng.integers(0, len(population), size=n_prompts), minlength=len(population))
    seeds = rng.integers(0, 2**62, size=len(population))
    parts = [sample_prompts(hmm, [c], ns, k, int(m), seed=int(s)) for c, m, s in zip(population, counts, seeds) if m > 0]
    order = rng.permutation(n_prompts)

    def cat(name: str) -> np.ndarray:
        return np.ascontiguousarray(np.concatenate([getattr(part, name) for part in parts])[order])

    return IIDPrompts(cat("pool"), cat("test"), cat("concept"), cat("start_property"), cat("label"), parts[0].ns,
                      hmm.delimiter, all(part.label_exact for part in parts), population)


def sampling_text(prompts: NestedPrompts) -> str:
    """How the prompts were drawn, for certificates."""
    if isinstance(prompts, IIDPrompts):
        return (f"i.i.d. from the prompt distribution, concept uniform over {list(prompts.population)} "
                "(witness.sample_prompts_iid)")
    return ("not an i.i.d. sample of the prompt distribution (e.g. prompts.sample_prompts: equal numbers per concept); "
            "no population bound is stated")


# ---- evaluation --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ICLEvaluation:
    """P and R on nested prompts: per n, masses, certified label answers, accuracies on the drawn prompts."""

    hmm: MixtureHMM
    prompts: NestedPrompts
    p: dict[int, Masses]
    r: dict[int, Masses]
    acc_p: dict[int, Accuracy]
    acc_r: dict[int, Accuracy]
    answers_p: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, compare=False, repr=False)
    _mixture: dict[tuple[int, Fraction], tuple[Accuracy, np.ndarray, np.ndarray]] = field(
        default_factory=dict, compare=False, repr=False)

    @property
    def ns(self) -> tuple[int, ...]:
        return self.prompts.ns

    @property
    def iid(self) -> bool:
        """Whether the prompts are an i.i.d. sample of the prompt distribution (population bounds apply)."""
        return isinstance(self.prompts, IIDPrompts)

    def log_ratio(self, n: int) -> np.ndarray:
        """ln P(u) − ln R(u) per prompt (float, for tables and plots)."""
        return self.p[n].prefix.log() - self.r[n].prefix.log()

    def ratio_upper(self, n: int) -> list[Fraction]:
        """Rigorous upper bounds on P(u)/R(u), per prompt (:func:`~constructions.icl.evaluate.ratio_upper_bounds`)."""
        from constructions.icl.evaluate import ratio_upper_bounds

        return ratio_upper_bounds(self.p[n].prefix, self.r[n].prefix)

    def weight_lower(self, n: int, epsilon: Fraction) -> list[Fraction]:
        """Rigorous lower bounds on w(u) = εR(u)/(εR(u) + (1 − ε)P(u)) per prompt."""
        c = (1 - epsilon) / epsilon
        return [1 / (1 + c * x) for x in self.ratio_upper(n)]

    def mixture_accuracy(self, n: int, epsilon: Fraction) -> tuple[Accuracy, np.ndarray, np.ndarray]:
        """Q_ε's accuracy at n on the drawn prompts, with its answers and certainty flags (cached)."""
        key = (n, Fraction(epsilon))
        if key not in self._mixture:
            answers, sure = greedy(mixture_next(self.p[n], self.r[n], Fraction(epsilon)), self.hmm.delimiter)
            self._mixture[key] = (accuracy(answers, sure, self.prompts.label), answers, sure)
        return self._mixture[key]

    def p_answers(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """P's certified label answers at n (computed for an n off the grid too)."""
        if n not in self.answers_p:
            p = self.p[n] if n in self.p else bayes_masses_nested(self.hmm, self.prompts, (n,))[n]
            self.answers_p[n] = greedy(p.next, self.hmm.delimiter)
        return self.answers_p[n]

    def surgery_accuracy(self, n: int) -> Accuracy:
        """The surgery Q's accuracy at n on the drawn prompts, for a switch at or below n (so every prompt
        with n examples is in A): Q answers the smallest label other than P's answer."""
        return accuracy(*surgery_answers(*self.p_answers(n), self.hmm), self.prompts.label)

    def support_ok(self) -> bool:
        """Every prompt has P(u) > 0 (certain: a positive float mantissa is a positive exact value)."""
        return all(bool(np.all(self.p[n].prefix.mantissa > 0)) for n in self.ns)


def evaluate_icl(hmm: MixtureHMM, prompts: NestedPrompts) -> ICLEvaluation:
    """Masses and certified label answers of P and R for every n of the prompt pools, R the literal
    no-ICL model of docs/theory.md §4.2 (examples scored independently from fresh starts, delimiters
    certain, answers from the test input alone, still a label)."""
    p = bayes_masses_nested(hmm, prompts)
    r = no_icl_masses_nested(hmm, prompts)
    answers_p = {n: greedy(p[n].next, hmm.delimiter) for n in prompts.ns}
    acc_p = {n: accuracy(*answers_p[n], prompts.label) for n in prompts.ns}
    acc_r = {n: accuracy(*greedy(r[n].next, hmm.delimiter), prompts.label) for n in prompts.ns}
    return ICLEvaluation(hmm, prompts, p, r, acc_p, acc_r, answers_p)


def round_up(x: Fraction, digits: int = 3) -> Fraction:
    """x rounded up to ``digits`` significant decimal digits (a rational upper bound)."""
    return Fraction(decimal_string(x, "up", digits)) if x > 0 else Fraction(0)


def surgery_kl_bound(hmm: MixtureHMM, k: int, n: int, lam: Fraction,
                     rates: list[BoundaryRates] | None = None) -> tuple[Fraction | None, LogCombination | None]:
    """(M̄ rounded up, M̄ · ln(1/(1 − λ))): a certified upper bound on KL(P ‖ Q_surgery(n))."""
    m = surgery_mass_bound(hmm, k, n, rates)
    if m is None:
        return None, None
    m_up = round_up(m)
    return m_up, LogCombination.log(1 / (1 - lam)) * m_up


def smallest_surgery_n(hmm: MixtureHMM, k: int, lam: Fraction, epsilon: Fraction, n_cap: int,
                       rates: list[BoundaryRates] | None = None) -> int | None:
    """The smallest n ≤ n_cap whose certified surgery KL bound is ≤ ε (None if none)."""
    for n in range(0, n_cap + 1):
        _, kl = surgery_kl_bound(hmm, k, n, lam, rates)
        if kl is not None and kl.compare(epsilon) in (-1, 0):
            return n
    return None


def one_sided_gap(a: FractionInterval, b: FractionInterval) -> Fraction:
    """a.lo − b.hi, floored at 0: a lower bound on (value in a) − (value in b)."""
    return max(Fraction(0), a.lo - b.hi)


def population_gap(a: Accuracy, b: Accuracy, confidence: Fraction, two_sided: bool = False) -> Fraction:
    """A lower bound, at ``confidence`` c, on the population gap acc_a − acc_b (``two_sided``: on
    |acc_a − acc_b|).  One-sided it is L_a − U_b with both intervals at c: it fails only when a's lower
    tail or b's upper tail fails, each with probability ≤ (1 − c)/2.  Two-sided both intervals are taken
    at (1 + c)/2, so both hold together with probability ≥ c (union bound)."""
    if not two_sided:
        return one_sided_gap(a.population_interval(confidence), b.population_interval(confidence))
    c2 = (1 + confidence) / 2
    ia, ib = a.population_interval(c2), b.population_interval(c2)
    return max(one_sided_gap(ia, ib), one_sided_gap(ib, ia))


ASSUMPTIONS = (
    "P is the GINC-style mixture of HMMs of constructions.icl (exact dyadic/rational parameters); every model answers "
    "with its argmax over the labels (the delimiter excluded); the accuracies acc_* are those of the stated sampled "
    "prompt set, not of the prompt distribution",
    "float64 forward passes (IEEE-754 binary64, round to nearest) carry the rigorous relative error bound gamma_N of "
    "constructions.icl.forward (Higham Lemma 3.1, non-negative terms, no underflow); a label answer counts only when "
    "its margin exceeds the bound, otherwise it is undecided and widens the accuracy interval",
    "the *_population entries are two-sided Clopper-Pearson intervals at the stated confidence (statistical bounds, "
    "not exact values; undecided prompts wrong in the lower end, right in the upper end; endpoints rounded outward and "
    "checked exactly in integers), valid when the prompts are i.i.d. draws from the prompt distribution, each interval "
    "on its own (no simultaneous coverage over n, models or epsilon); they are reported, not part of the verdict",
)


def _population_sentence(ev: ICLEvaluation, confidence: Fraction) -> str:
    if ev.iid:
        return (f" Beside each sampled accuracy the certificate reports a Clopper-Pearson interval for the population "
                f"accuracy at confidence {confidence} (the prompts are i.i.d. draws from the prompt distribution): a "
                f"statistical bound, not an exact value, and not part of this verdict.")
    return (" The prompts are not an i.i.d. sample of the prompt distribution, so no population bound is stated: the "
            "result is about the drawn prompts only.")


def surgery_certificate(ev: ICLEvaluation, lam: Fraction | str, epsilon: Fraction | str, delta: Fraction = Fraction(1, 2),
                        check: str = "prop-2-icl-surgery", confidence: Fraction | str = DEFAULT_CONFIDENCE) -> Certificate:
    """Certify the local surgery at the smallest n with KL bound ≤ ε, on ``ev``'s sampled prompts
    (population accuracies at ``confidence`` reported beside, when the prompts are i.i.d.)."""
    from constructions.icl.certify import interval_text, kl_text, places

    hmm, prompts, k = ev.hmm, ev.prompts, ev.prompts.k
    lam, epsilon = check_surgery_weight(lam), check_mixture_weight(epsilon)
    conf = check_confidence(confidence)
    rates = boundary_rates(hmm, k)
    claim = (f"ICL accuracy is {epsilon}-non-identifiable on the sampled prompts: Q = P except at ICL-format "
             f"answer prefixes with >= n examples (k = {k}), where q = (1 - lambda) p + lambda delta_w with lambda = {lam} "
             f"and w a wrong label, has KL(P || Q) <= M(A) * ln(1/(1 - lambda)) <= epsilon (a bound on the pretraining "
             f"distribution, proved), and on the {len(prompts)} sampled prompts Q's ICL accuracy (argmax over the labels) "
             f"is below P's by >= {delta} - an exact statement about the drawn prompt set, not about the prompt "
             f"distribution." + _population_sentence(ev, conf))
    n = smallest_surgery_n(hmm, k, lam, epsilon, prompts.n_max, rates)
    quantities: dict[str, object] = {
        "k": k, "lambda": lam, "epsilon": epsilon, "delta": delta, "hmm": hmm.describe(),
        "prompts_per_n": len(prompts), "concepts": sorted(set(prompts.concept.tolist())),
        "sampling": sampling_text(prompts), "population_confidence": conf if ev.iid else None,
        "population_method": CP_METHOD if ev.iid else None,
        "boundary_rate_rho_per_concept_upper": {str(r.concept): round_up(r.rho, 6) for r in rates},
        "per_prefix_kl_bound": LogCombination.log(1 / (1 - lam)),
    }
    if n is None:
        return Certificate(check=check, claim=claim, status=Status.UNKNOWN, method="bound", detail="no n reaches epsilon",
                           reason=f"no n <= {prompts.n_max} has M(A(n)) ln(1/(1-lambda)) <= {epsilon}", quantities=quantities,
                           assumptions=ASSUMPTIONS, versions=library_versions("numpy", "mpmath"))
    m_up, kl = surgery_kl_bound(hmm, k, n, lam, rates)
    assert kl is not None  # n came from smallest_surgery_n: its bound exists
    ps = prompts.at(n)
    in_a = all(icl_examples(row, k, hmm.delimiter) == n for row in ps.tokens.tolist()) and ps.length < hmm.doc_length
    acc_p = accuracy(*ev.p_answers(n), prompts.label)
    acc_q = ev.surgery_accuracy(n) if in_a else None
    gap = FractionInterval(one_sided_gap(acc_p.interval, acc_q.interval) if acc_q else Fraction(0),
                           acc_p.interval.hi - (acc_q.interval.lo if acc_q else Fraction(0)))
    reasons = []
    if not ev.support_ok():
        reasons.append(_off_support(ev))
    if acc_q is None:
        reasons.append("a prompt is not in A(n): Q's answers there are not the surgery's")
    if gap.lo < delta:
        reasons.append(f"the accuracy gap of P over Q at n = {n} on the sampled prompts lies in [{places(gap.lo, 'down')}, "
                       f"{places(gap.hi, 'up')}], not certified >= {delta}")
    status = Status.VERIFIED if not reasons else (Status.FALSIFIED if gap.hi < delta and acc_q is not None
                                                  and ev.support_ok() else Status.UNKNOWN)
    pop_gap = population_gap(acc_p, acc_q, conf) if acc_q is not None and ev.iid else None
    quantities.update({
        "n": n, "M_A_upper": m_up, "kl_upper_bound": kl,
        "acc_P": acc_p.interval, "acc_P_population": population_entry(acc_p, conf, ev.iid),
        "acc_Q": acc_q.interval if acc_q else None,
        "acc_Q_population": population_entry(acc_q, conf, ev.iid) if acc_q else None,
        "accuracy_gap": gap,
        "accuracy_gap_population_lower": None if pop_gap is None else {
            "lower": pop_gap, "confidence": conf, "method": CP_METHOD + " (lower end of P minus upper end of Q)"},
        "labels_exact": prompts.label_exact,
        "format_mass_P_A_n": {str(j): round_up(format_mass(hmm, k, j, rates)) for j in range(0, min(n + 3, prompts.n_max) + 1)},
    })
    detail = (f"KL <= {kl_text(kl)}; acc {interval_text(acc_p.interval)} vs "
              f"{interval_text(acc_q.interval) if acc_q else 'n/a'} (n={n}, k={k}, {len(prompts)} sampled prompts)")
    if acc_q is not None and ev.iid:
        detail += (f"; population at {_percent(conf)} (Clopper-Pearson): P {acc_p.show_population(conf)}, "
                   f"Q {acc_q.show_population(conf)}")
    return Certificate(check=check, claim=claim, status=status, method="bound", detail=detail, reason="; ".join(reasons),
                       quantities=quantities, assumptions=ASSUMPTIONS,
                       versions=library_versions("numpy", "mpmath"))


def _percent(c: Fraction) -> str:
    """A confidence as a percentage ("99%"), exact when it has few digits, else rounded down."""
    return f"{decimal_string(c * 100, 'down', 6)}%"


def _off_support(ev: ICLEvaluation) -> str:
    zeros = {n: int(np.sum(ev.p[n].prefix.mantissa == 0)) for n in ev.ns}
    bad = {n: z for n, z in zeros.items() if z}
    return (f"prompts with P(u) = 0 (per n: {bad}) are off the support (zero transitions, e.g. eta = 0): there the "
            "data conditional is undefined and Proposition 1's epsilon = 0 argument applies instead")


def mixture_certificate(ev: ICLEvaluation, epsilon: Fraction | str, delta: Fraction = Fraction(1, 2),
                        check: str = "prop-2-icl-mixture", confidence: Fraction | str = DEFAULT_CONFIDENCE) -> Certificate:
    """Certify Q_ε = (1 − ε)P + εR on ``ev``'s sampled prompts: the smallest n of the grid with a
    certified accuracy gap ≥ Δ on the drawn prompts, and w(u) at every n (population accuracies at
    ``confidence`` reported beside, when the prompts are i.i.d.)."""
    from constructions.icl.certify import interval_text, kl_text

    hmm, prompts, k = ev.hmm, ev.prompts, ev.prompts.k
    epsilon = check_mixture_weight(epsilon)
    conf = check_confidence(confidence)
    kl = LogCombination.log(1 / (1 - epsilon))
    claim = (f"ICL accuracy is {kl_text(kl)}-non-identifiable (-ln(1 - eps), rounded up) on the sampled prompts: "
             f"Q = (1 - eps) P + eps R with "
             f"eps = {epsilon} and R the literal no-ICL model (examples scored independently from fresh starts, "
             f"delimiters certain, answers from the test input alone, still a label) has KL(P || Q) <= -ln(1 - eps) (proved), and at some n of "
             f"{list(ev.ns)} Q's ICL accuracy (argmax over the labels) on the {len(prompts)} sampled prompts differs "
             f"from P's by >= {delta} (k = {k}) - an exact statement about the drawn prompt set, not about the prompt "
             f"distribution." + _population_sentence(ev, conf))
    per_n, found = {}, None
    for n in ev.ns:
        acc_q, answers, sure = ev.mixture_accuracy(n, epsilon)
        w_lo = ev.weight_lower(n, epsilon)
        acc_p = ev.acc_p[n]
        gap_lo = max(one_sided_gap(acc_p.interval, acc_q.interval), one_sided_gap(acc_q.interval, acc_p.interval))
        r_ans, r_sure = greedy(ev.r[n].next, hmm.delimiter)
        follows_r = int(np.sum(sure & r_sure & (answers == r_ans)))
        per_n[str(n)] = {"acc_P": acc_p.interval, "acc_P_population": population_entry(acc_p, conf, ev.iid),
                         "acc_Q": acc_q.interval, "acc_Q_population": population_entry(acc_q, conf, ev.iid),
                         "acc_R": ev.acc_r[n].interval, "acc_R_population": population_entry(ev.acc_r[n], conf, ev.iid),
                         "gap_lower": gap_lo, "max_one_minus_w_upper": round_up(1 - min(w_lo)),
                         "median_w_lower": round_down(sorted(w_lo)[len(w_lo) // 2]),
                         "median_log_P_over_R": round(float(np.median(ev.log_ratio(n))), 4),
                         "answers_equal_R": follows_r}
        if found is None and gap_lo >= delta:
            found = (n, acc_p, acc_q, min(w_lo))
    quantities = {"k": k, "epsilon": epsilon, "delta": delta, "kl_upper_bound": kl,
                  "hmm": hmm.describe(), "prompts_per_n": len(prompts), "per_n": per_n,
                  "sampling": sampling_text(prompts), "population_confidence": conf if ev.iid else None,
                  "population_method": CP_METHOD if ev.iid else None,
                  "concepts": sorted(set(prompts.concept.tolist())), "labels_exact": prompts.label_exact}
    reasons = []
    if not ev.support_ok():
        reasons.append(_off_support(ev))
    if found is None:
        reasons.append(f"no n in {list(ev.ns)} has a certified accuracy gap >= {delta} on the sampled prompts")
        detail = f"KL <= {kl_text(kl)}; no gap >= {delta} for n <= {max(ev.ns)} ({len(prompts)} sampled prompts)"
    else:
        n, acc_p, acc_q, wmin = found
        quantities["n"] = n
        n_top = max(ev.ns)
        one_minus_w = 1 - min(ev.weight_lower(n_top, epsilon))
        quantities["max_one_minus_w_at_n_max"] = round_up(one_minus_w)
        if ev.iid:
            quantities["accuracy_gap_population_lower"] = {
                "lower": population_gap(acc_p, acc_q, conf, two_sided=True), "confidence": conf,
                "method": CP_METHOD + " (|acc_P - acc_Q|: both intervals at (1 + confidence)/2, union bound)"}
        detail = (f"KL <= {kl_text(kl)}; acc {interval_text(acc_p.interval)} vs {interval_text(acc_q.interval)} (n={n}, "
                  f"{len(prompts)} sampled prompts); 1-w <= {scientific(round_up(one_minus_w), 'up', 2)}")
    if ev.iid:
        n_show = found[0] if found is not None else max(ev.ns)
        detail += (f"; population at {_percent(conf)} (Clopper-Pearson), n={n_show}: P {ev.acc_p[n_show].show_population(conf)}, "
                   f"Q {ev.mixture_accuracy(n_show, epsilon)[0].show_population(conf)}")
    status = Status.VERIFIED if not reasons else Status.UNKNOWN
    return Certificate(check=check, claim=claim, status=status, method="bound", detail=detail, reason="; ".join(reasons),
                       quantities=quantities, assumptions=ASSUMPTIONS + (
                           "KL(P || (1-eps)P + eps R) <= -ln(1-eps) for every R: proved symbolically (prop-2-kl-bound-symbolic)",),
                       versions=library_versions("numpy", "mpmath"))


def round_down(x: Fraction, digits: int = 6) -> Fraction:
    """x rounded down to ``digits`` significant decimal digits (a rational lower bound)."""
    return Fraction(decimal_string(x, "down", digits)) if x > 0 else Fraction(0)


def epsilon_grid(ev: ICLEvaluation, epsilons: Sequence[Fraction], lam: Fraction, delta: Fraction = Fraction(1, 2),
                 confidence: Fraction | str = DEFAULT_CONFIDENCE) -> list[dict[str, object]]:
    """For each ε: surgery — the smallest n with certified KL ≤ ε, and the smallest n ≥ it on the grid with
    a certified gap > Δ on the sampled prompts (Q answers a wrong label there); mixture — the smallest n
    on the grid with a certified gap > Δ on the sampled prompts.  With i.i.d. prompts also the smallest
    such n whose *population* gap is > Δ at ``confidence`` (:func:`population_gap`; None otherwise)."""
    hmm, k = ev.hmm, ev.prompts.k
    conf = check_confidence(confidence)
    rates = boundary_rates(hmm, k)
    rows: list[dict[str, object]] = []
    for eps in epsilons:
        n_kl = smallest_surgery_n(hmm, k, lam, eps, ev.prompts.n_max, rates)
        after = [] if n_kl is None else [n for n in ev.ns if n >= n_kl]
        n_s = next((n for n in after if one_sided_gap(ev.acc_p[n].interval, ev.surgery_accuracy(n).interval) > delta), None)
        n_s_pop = next((n for n in after if population_gap(ev.acc_p[n], ev.surgery_accuracy(n), conf) > delta), None) \
            if ev.iid else None
        n_m = n_m_pop = None
        for n in ev.ns:
            acc_q, acc_p = ev.mixture_accuracy(n, eps)[0], ev.acc_p[n]
            if n_m is None and max(one_sided_gap(acc_p.interval, acc_q.interval), one_sided_gap(acc_q.interval, acc_p.interval)) > delta:
                n_m = n
            if ev.iid and n_m_pop is None and population_gap(acc_p, acc_q, conf, two_sided=True) > delta:
                n_m_pop = n
        rows.append({"epsilon": eps, "surgery_n_kl": n_kl, "surgery_n_gap": n_s, "surgery_n_gap_population": n_s_pop,
                     "mixture_n_gap": n_m, "mixture_n_gap_population": n_m_pop})
    return rows
