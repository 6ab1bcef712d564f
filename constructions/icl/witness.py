"""Proposition 2's two witnesses, measured on a prompt set and checked into certificates.

* :func:`evaluate_icl` runs P and R_λ over nested prompts once: greedy answers with certified margins,
  rigorous brackets of ln P(u)/R(u) for every prompt and n.
* :func:`surgery_certificate` — Q = P except on A(n): KL(P ‖ Q) ≤ M(A(n))·(−ln(1 − λ)) with M(A(n))
  exact (see :mod:`constructions.icl.surgery`); Q's answer on A(n) is the delimiter, never a label,
  so its ICL accuracy is exactly 0; P's is measured with certified margins.
* :func:`mixture_certificate` — Q_ε = (1 − ε)P + εR_λ: KL(P ‖ Q_ε) ≤ −ln(1 − ε) (sympy proof in
  :mod:`constructions.icl.bounds`); w(u) bracketed for every prompt; Q_ε's answers certified.

A verdict is ``verified`` only when every number it rests on is exact or rigorously bracketed; a
prompt with P(u) = 0 (possible only with zero transitions, η = 0) makes it ``unknown`` with the
reason that the prompt is off the support (Proposition 1's ε = 0 argument applies there instead).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Sequence

import numpy as np

from constructions.icl.evaluate import Masses, bayes_masses_nested, greedy, mixture_next, no_icl_masses_nested
from constructions.icl.hmm import MixtureHMM
from constructions.icl.models import check_mixture_weight, check_surgery_weight
from constructions.icl.prompts import NestedPrompts, icl_examples
from constructions.icl.surgery import BoundaryRates, boundary_rates, format_mass, surgery_mass_bound
from theory.certificate import Certificate, Status, library_versions
from theory.exact import FractionInterval, LogCombination, decimal_string, scientific


@dataclass(frozen=True)
class Accuracy:
    """ICL accuracy on N prompts: ``correct`` certified right, ``undecided`` whose greedy answer the
    float margin could not separate (counted as either way in the interval)."""

    correct: int
    undecided: int
    total: int

    @property
    def interval(self) -> FractionInterval:
        return FractionInterval(Fraction(self.correct, self.total), Fraction(self.correct + self.undecided, self.total))

    @property
    def value(self) -> float:
        return (self.correct + self.undecided / 2) / self.total

    def show(self) -> str:
        if not self.undecided:
            return f"{self.correct / self.total:.3f}"
        return f"[{float(self.interval.lo):.3f}, {float(self.interval.hi):.3f}]"


def accuracy(answers: np.ndarray, sure: np.ndarray, labels: np.ndarray) -> Accuracy:
    return Accuracy(int(np.sum(sure & (answers == labels))), int(np.sum(~sure)), len(labels))


@dataclass(frozen=True)
class ICLEvaluation:
    """P and R_λ on nested prompts: per n, masses, certified answers, accuracies."""

    hmm: MixtureHMM
    prompts: NestedPrompts
    wrong_weight: Fraction
    p: dict[int, Masses]
    r: dict[int, Masses]
    acc_p: dict[int, Accuracy]
    acc_r: dict[int, Accuracy]

    @property
    def ns(self) -> tuple[int, ...]:
        return self.prompts.ns

    def log_ratio(self, n: int) -> np.ndarray:
        """ln P(u) − ln R(u) per prompt (float, for tables and plots)."""
        return self.p[n].prefix.log() - self.r[n].prefix.log()

    def ratio_upper(self, n: int) -> list[Fraction]:
        """Rigorous upper bounds on P(u)/R(u), per prompt (exact rationals from the Scaled bounds)."""
        P, R = self.p[n].prefix.normalised(), self.r[n].prefix.normalised()
        dp, dr = Fraction(P.rel_err), Fraction(R.rel_err)
        out = []
        for mp, ep, mr, er in zip(P.mantissa.tolist(), P.exponent.tolist(), R.mantissa.tolist(), R.exponent.tolist()):
            out.append(Fraction(mp) / Fraction(mr) * Fraction(2) ** (ep - er) * (1 + dp) / (1 - dr))
        return out

    def weight_lower(self, n: int, epsilon: Fraction) -> list[Fraction]:
        """Rigorous lower bounds on w(u) = εR(u)/(εR(u) + (1 − ε)P(u)) per prompt."""
        c = (1 - epsilon) / epsilon
        return [1 / (1 + c * x) for x in self.ratio_upper(n)]

    def mixture_accuracy(self, n: int, epsilon: Fraction) -> tuple[Accuracy, np.ndarray, np.ndarray]:
        """Q_ε's accuracy at n, with its answers and certainty flags."""
        answers, sure = greedy(mixture_next(self.p[n], self.r[n], epsilon), self.hmm.delimiter)
        return accuracy(answers, sure, self.prompts.label), answers, sure

    def support_ok(self) -> bool:
        """Every prompt has P(u) > 0 (certain: a positive float mantissa is a positive exact value)."""
        return all(bool(np.all(self.p[n].prefix.mantissa > 0)) for n in self.ns)


def evaluate_icl(hmm: MixtureHMM, prompts: NestedPrompts, wrong_weight: Fraction | int = 0) -> ICLEvaluation:
    """Masses and certified greedy answers of P and R_λ for every n of the prompt pools."""
    lam = Fraction(wrong_weight)
    p = bayes_masses_nested(hmm, prompts)
    r = no_icl_masses_nested(hmm, prompts, wrong_weight=lam)
    acc_p = {n: accuracy(*greedy(p[n].next, hmm.delimiter), prompts.label) for n in prompts.ns}
    acc_r = {n: accuracy(*greedy(r[n].next, hmm.delimiter), prompts.label) for n in prompts.ns}
    return ICLEvaluation(hmm, prompts, lam, p, r, acc_p, acc_r)


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


ASSUMPTIONS = (
    "P is the GINC-style mixture of HMMs of constructions.icl (exact dyadic/rational parameters); "
    "accuracies are measured on the stated sampled prompt set",
    "float64 forward passes (IEEE-754 binary64, round to nearest) carry the rigorous relative error bound gamma_N of "
    "constructions.icl.forward (Higham Lemma 3.1, non-negative terms, no underflow); a greedy answer counts only when "
    "its margin exceeds the bound, otherwise it is undecided and widens the accuracy interval",
)


def surgery_certificate(ev: ICLEvaluation, lam: Fraction | str, epsilon: Fraction | str, delta: Fraction = Fraction(1, 2),
                        check: str = "prop-2-icl-surgery") -> Certificate:
    """Certify the local surgery at the smallest n with KL bound ≤ ε, on ``ev``'s prompts."""
    hmm, prompts, k = ev.hmm, ev.prompts, ev.prompts.k
    lam, epsilon = check_surgery_weight(lam), check_mixture_weight(epsilon)
    rates = boundary_rates(hmm, k)
    claim = (f"ICL accuracy is {float(epsilon):g}-non-identifiable: Q = P except at ICL-format answer prefixes with "
             f">= n examples (k = {k}), where q = (1 - lambda) p + lambda delta_w with w a wrong label, has KL(P || Q) <= "
             f"M(A) * ln(1/(1 - lambda)) <= epsilon, and, on the stated sampled prompts, Q's ICL accuracy (argmax over the "
             f"labels; Q answers a wrong label) is below P's by >= {delta}.")
    n = smallest_surgery_n(hmm, k, lam, epsilon, prompts.n_max, rates)
    quantities: dict[str, object] = {
        "k": k, "lambda": lam, "epsilon": epsilon, "delta": delta, "hmm": hmm.describe(),
        "prompts_per_n": len(prompts), "concepts": sorted(set(prompts.concept.tolist())),
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
    p_n = ev.p[n] if n in ev.p else bayes_masses_nested(hmm, prompts, (n,))[n]
    p_answers, p_sure = greedy(p_n.next, hmm.delimiter)
    acc_p = accuracy(p_answers, p_sure, prompts.label)
    from constructions.icl.population import surgery_answers  # Q's answer at A(n): a wrong label (λ > ½)

    acc_q = accuracy(*surgery_answers(p_answers, p_sure, hmm), prompts.label) if in_a else None
    gap = FractionInterval(max(Fraction(0), acc_p.interval.lo - acc_q.interval.hi) if acc_q else Fraction(0),
                           acc_p.interval.hi - (acc_q.interval.lo if acc_q else Fraction(0)))
    reasons = []
    if not ev.support_ok():
        reasons.append(_off_support(ev))
    if acc_q is None:
        reasons.append("a prompt is not in A(n): Q's answers there are not the surgery's")
    if gap.lo < delta:
        reasons.append(f"the accuracy gap of P over Q at n = {n} lies in [{float(gap.lo):.3f}, {float(gap.hi):.3f}], "
                       f"not certified >= {delta}")
    status = Status.VERIFIED if not reasons else (Status.FALSIFIED if gap.hi < delta and acc_q is not None
                                                  and ev.support_ok() else Status.UNKNOWN)
    quantities.update({
        "n": n, "M_A_upper": m_up, "kl_upper_bound": kl, "acc_P": acc_p.interval, "acc_Q": acc_q.interval if acc_q else None,
        "accuracy_gap": gap, "labels_exact": prompts.label_exact,
        "format_mass_P_A_n": {str(j): round_up(format_mass(hmm, k, j, rates)) for j in range(0, min(n + 3, prompts.n_max) + 1)},
    })
    from constructions.icl.certify import interval_text, kl_text

    detail = (f"KL <= {kl_text(kl)}; acc {interval_text(acc_p.interval)} vs "
              f"{interval_text(acc_q.interval) if acc_q else 'n/a'} (n={n}, k={k}, sampled prompts)")
    return Certificate(check=check, claim=claim, status=status, method="bound", detail=detail, reason="; ".join(reasons),
                       quantities=quantities, assumptions=ASSUMPTIONS,
                       versions=library_versions("numpy", "mpmath"))


def _off_support(ev: ICLEvaluation) -> str:
    zeros = {n: int(np.sum(ev.p[n].prefix.mantissa == 0)) for n in ev.ns}
    bad = {n: z for n, z in zeros.items() if z}
    return (f"prompts with P(u) = 0 (per n: {bad}) are off the support (zero transitions, e.g. eta = 0): there the "
            "data conditional is undefined and Proposition 1's epsilon = 0 argument applies instead")


def _acc_at(ev: ICLEvaluation, n: int) -> Accuracy:
    if n in ev.acc_p:
        return ev.acc_p[n]
    p = bayes_masses_nested(ev.hmm, ev.prompts, (n,))[n]
    return accuracy(*greedy(p.next, ev.hmm.delimiter), ev.prompts.label)


def mixture_certificate(ev: ICLEvaluation, epsilon: Fraction | str, delta: Fraction = Fraction(1, 2),
                        check: str = "prop-2-icl-mixture") -> Certificate:
    """Certify Q_ε = (1 − ε)P + εR_λ on ``ev``'s prompts: the smallest n of the grid with a certified
    accuracy gap ≥ Δ, and w(u) at every n."""
    from constructions.icl.certify import interval_text, kl_text

    hmm, prompts, k = ev.hmm, ev.prompts, ev.prompts.k
    epsilon = check_mixture_weight(epsilon)
    kl = LogCombination.log(1 / (1 - epsilon))
    claim = (f"ICL accuracy is {float(kl):.8g}-non-identifiable: Q = (1 - eps) P + eps R with eps = {epsilon} and R a "
             f"no-ICL model of ICL-format sequences (independent examples, certain delimiters, wrong_weight "
             f"{ev.wrong_weight}) has KL(P || Q) <= -ln(1 - eps), and its posterior weight w(u) on R tends to 1 as n "
             f"grows, so its ICL accuracy departs from P's by >= {delta} (k = {k}).")
    per_n, found = {}, None
    for n in ev.ns:
        acc_q, answers, sure = ev.mixture_accuracy(n, epsilon)
        w_lo = ev.weight_lower(n, epsilon)
        acc_p = ev.acc_p[n]
        gap_lo = max(Fraction(0), acc_p.interval.lo - acc_q.interval.hi, acc_q.interval.lo - acc_p.interval.hi)
        r_ans, r_sure = greedy(ev.r[n].next, hmm.delimiter)
        follows_r = int(np.sum(sure & r_sure & (answers == r_ans)))
        per_n[str(n)] = {"acc_P": acc_p.interval, "acc_Q": acc_q.interval, "acc_R": ev.acc_r[n].interval,
                         "gap_lower": gap_lo, "max_one_minus_w_upper": round_up(1 - min(w_lo)),
                         "median_w_lower": round_down(sorted(w_lo)[len(w_lo) // 2]),
                         "median_log_P_over_R": round(float(np.median(ev.log_ratio(n))), 4),
                         "answers_equal_R": follows_r}
        if found is None and gap_lo >= delta:
            found = (n, acc_p, acc_q, min(w_lo))
    quantities = {"k": k, "epsilon": epsilon, "delta": delta, "wrong_weight": ev.wrong_weight, "kl_upper_bound": kl,
                  "hmm": hmm.describe(), "prompts_per_n": len(prompts), "per_n": per_n,
                  "concepts": sorted(set(prompts.concept.tolist())), "labels_exact": prompts.label_exact}
    reasons = []
    if not ev.support_ok():
        reasons.append(_off_support(ev))
    if found is None:
        reasons.append(f"no n in {list(ev.ns)} has a certified accuracy gap >= {delta}")
        detail = f"KL <= {kl_text(kl)}; no gap >= {delta} for n <= {max(ev.ns)}"
    else:
        n, acc_p, acc_q, wmin = found
        quantities["n"] = n
        n_top = max(ev.ns)
        one_minus_w = 1 - min(ev.weight_lower(n_top, epsilon))
        quantities["max_one_minus_w_at_n_max"] = round_up(one_minus_w)
        detail = (f"KL <= {kl_text(kl)}; acc {interval_text(acc_p.interval)} vs {interval_text(acc_q.interval)} (n={n}, "
                  f"sampled prompts); 1-w <= {scientific(round_up(one_minus_w), 'up', 2)}")
    status = Status.VERIFIED if not reasons else Status.UNKNOWN
    return Certificate(check=check, claim=claim, status=status, method="bound", detail=detail, reason="; ".join(reasons),
                       quantities=quantities, assumptions=ASSUMPTIONS + (
                           "KL(P || (1-eps)P + eps R) <= -ln(1-eps) for every R: proved symbolically (prop-2-kl-bound-symbolic)",),
                       versions=library_versions("numpy", "mpmath"))


def round_down(x: Fraction, digits: int = 6) -> Fraction:
    """x rounded down to ``digits`` significant decimal digits (a rational lower bound)."""
    return Fraction(decimal_string(x, "down", digits)) if x > 0 else Fraction(0)


def epsilon_grid(ev: ICLEvaluation, epsilons: Sequence[Fraction], lam: Fraction, delta: Fraction = Fraction(1, 2)) -> list[dict[str, object]]:
    """For each ε: surgery — the smallest n with certified KL ≤ ε, and the smallest n ≥ it on the grid with
    certified gap > Δ; mixture — the smallest n on the grid with certified gap > Δ."""
    hmm, k = ev.hmm, ev.prompts.k
    rates = boundary_rates(hmm, k)
    rows: list[dict[str, object]] = []
    for eps in epsilons:
        n_kl = smallest_surgery_n(hmm, k, lam, eps, ev.prompts.n_max, rates)
        n_s = None if n_kl is None else next((n for n in ev.ns if n >= n_kl and ev.acc_p[n].interval.lo > delta), None)
        n_m = None
        for n in ev.ns:
            acc_q = ev.mixture_accuracy(n, eps)[0]
            if max(ev.acc_p[n].interval.lo - acc_q.interval.hi, acc_q.interval.lo - ev.acc_p[n].interval.hi) > delta:
                n_m = n
                break
        rows.append({"epsilon": eps, "surgery_n_kl": n_kl, "surgery_n_gap": n_s, "mixture_n_gap": n_m})
    return rows
