"""The verdict on a compact pair (``nonid counterexample CASE --method compact``): every prefix up to T.

:func:`every_prefix_certificate` runs the abstract-state check (:mod:`constructions.compile.abstract`)
on each network and decides, for the real function of its stored weights:

* **support** — at every support prefix u of P with |u| ≤ T, TV(p(·|u), q(·|u)) ≤ the tolerance, and
  the chain-rule sum Σ_u P(u)·KL(p(·|u) ‖ q(·|u)) over those prefixes is bracketed (for finite P that
  is KL(P ‖ Q) itself; for infinite P the words longer than T, of stated mass, are outside the context);
* **every OOD prompt** — for every prefix u with P(u) = 0 and |u| ≤ T: the network's greedy token is
  certified at each step, and the completion ends with EOS at a position ≤ T with R1 satisfied (Q₁) or
  violated (Q₂).  Prompts whose completion would need a position beyond T are counted, not claimed;
* **cross-check** — a direct rigorous enclosure of the whole forward pass on every word of length
  ≤ :data:`CROSS_LENGTH` must overlap the abstract bounds prefix by prefix and certify the same greedy
  tokens; a disagreement means one evaluator is wrong, and the verdict is then ``unknown``.

:func:`compact_pair_certificate` joins it with the exhaustive pair check on the case's prefix set (the
paper's prompts, exact arithmetic), which the other methods use, so a compact folder re-verifies,
exports and reports like any other.
"""

from __future__ import annotations

import math
import time
from fractions import Fraction
from typing import Any, Callable

import numpy as np

from theory.certificate import Certificate, Status, library_versions
from theory.errors import InvalidModelConfig
from theory.exact import scientific

CROSS_LENGTH = 14
"""The independent exhaustive enclosure covers every word of at most this many symbols."""

COUNT_RULES: dict[str, tuple[str, Callable[[tuple[int, ...]], bool]]] = {
    "L3": ("#a = #b", lambda c: c[0] == c[1]),
}
"""R1 of each language the compact compiler covers, as a function of the symbol counts (R1 of these
languages depends on the counts alone; tests/test_compact.py checks each against the language's own
automaton on every word of length ≤ 12)."""

COMPACT_CASES = ("anbn", "L3")
"""The Proposition 1 cases with a compact construction (the others stay with the lookup compiler)."""


def compact_language(case_name: str) -> str:
    return "L3" if case_name in ("anbn", "L3") else case_name


def _group_of_prefixes(ev: Any, words: list[str]) -> dict[str, int]:
    """Group index of every prefix of ``words`` (parents first), incrementally."""
    ids = {s: i for i, s in enumerate(ev.alphabet)}
    out: dict[str, int] = {}
    groups: dict[str, Any] = {"": ev.group_of("")}
    out[""] = ev.index[groups[""]]
    for w in words:
        for t in range(1, len(w) + 1):
            u = w[:t]
            if u in groups:
                continue
            g = ev.successor(groups[u[:-1]], ids[u[-1]])
            groups[u] = g
            out[u] = ev.index[g]
    return out


def _kl_sum(nodes: list[tuple[str, Fraction, tuple[Fraction, ...]]], lp_lo: np.ndarray, lp_hi: np.ndarray) -> tuple[Fraction, Fraction | None]:
    """[lo, hi] ∋ Σ_u Σ_a P(ua)·(ln p(a|u) − ln q(a|u)) over ``nodes`` (rows of lp in the same order),
    with ln p enclosed by mpmath and the sum exact in rationals."""
    from mpmath import iv

    from constructions.exact_eval import _ends, _iv

    cache: dict[Fraction, tuple[Fraction, Fraction]] = {}
    lo = hi = Fraction(0)
    for k, (_u, mass, masses) in enumerate(nodes):
        for a, m in enumerate(masses):
            if not m:
                continue
            p = m / mass
            if p not in cache:
                old = iv.prec
                iv.prec = 96
                try:
                    cache[p] = _ends(iv.log(_iv(p)))
                finally:
                    iv.prec = old
            lnp_lo, lnp_hi = cache[p]
            if not (math.isfinite(lp_lo[k, a]) and math.isfinite(lp_hi[k, a])):
                return Fraction(0), None
            hi += m * (lnp_hi - Fraction(float(lp_lo[k, a])))
            lo += m * (lnp_lo - Fraction(float(lp_hi[k, a])))
    return max(lo, Fraction(0)), max(hi, Fraction(0))


def check_every_prefix(net: Any, case: Any, role: str, *, tolerance: float, cross_length: int = CROSS_LENGTH) -> tuple[Status, list[str], dict[str, Any]]:
    """(status, reasons, quantities) of one network (module docstring)."""
    from constructions.check import tv_upper_bounds
    from constructions.compile.abstract import NotAbstractable, abstract_evaluate
    from constructions.enclosure import Enclosure, enclose
    from theory.exact import decimal_string

    label = "Q1" if role == "completer" else "Q2"
    try:
        ev = abstract_evaluate(net)
    except NotAbstractable as e:
        return Status.UNKNOWN, [f"{label}: {e}"], {"abstract_check": "refused"}
    T = ev.context
    data = case.data
    r1_name, r1 = COUNT_RULES[compact_language(case.name)]
    reasons: list[str] = []
    status = Status.VERIFIED
    # -- the support ------------------------------------------------------------------------------
    nodes = list(data.support_nodes(T + 1))
    words = [u for u, _m, _o in nodes]
    gi = _group_of_prefixes(ev, words)
    rows_i = np.array([gi[u] for u in words], dtype=np.int64)
    enc = Enclosure(tuple(words), ev.lp_lo[rows_i], ev.lp_hi[rows_i], np.zeros((len(words), ev.lp_lo.shape[1])), 0.0,
                    "cpu", {u: k for k, u in enumerate(words)})
    rows = [tuple(m / mass for m in masses) for _u, mass, masses in nodes]
    tv = tv_upper_bounds(rows, enc)
    worst = int(np.argmax(tv))
    max_tv = float(tv[worst])
    if not max_tv <= tolerance:
        status = Status.FALSIFIED
        reasons.append(f"{label}: TV <= {max_tv:.3g} exceeds tolerance {tolerance:g} at support prefix {words[worst]!r}")
    kl_lo, kl_hi = _kl_sum(nodes, enc.lp_lo, enc.lp_hi)
    tail = data.tail_mass(T + 1)  # P(|x| > T): words the context cannot hold
    if data.is_finite and tail:
        status = Status.UNKNOWN
        reasons.append(f"{label}: support words longer than the context T = {T} carry mass {tail}; their last "
                       "prefixes are not covered, so the test loss is not decided")
    # -- every OOD prompt -------------------------------------------------------------------------
    ids = {s: i for i, s in enumerate(ev.alphabet)}
    seeds = set()
    for u, _mass, masses in nodes:
        if len(u) < T:
            for s, i in ids.items():
                if not masses[i]:
                    seeds.add(ev.successor(ev.groups[gi[u]], i))
    reach = set(seeds)
    stack = list(seeds)
    k = len(ev.alphabet)
    while stack:
        g = stack.pop()
        if g[0] < T:
            for y in range(k):
                h = ev.successor(g, y)
                if h not in reach:
                    reach.add(h)
                    stack.append(h)
    eos = k
    outcome: dict[Any, tuple[str, int]] = {}
    for g in sorted(reach, key=lambda g: -g[0]):
        a = ev.certified_argmax(ev.index[g])
        if a is None:
            outcome[g] = ("uncertified", 0)
        elif a == eos:
            outcome[g] = ("satisfies" if r1(g[1]) else "violates", 1)
        elif g[0] == T:
            outcome[g] = ("beyond", 0)
        else:
            o, n = outcome[ev.successor(g, a)]
            outcome[g] = (o, n + 1)
    counts = {o: 0 for o in ("satisfies", "violates", "beyond", "uncertified")}
    for o, _n in outcome.values():
        counts[o] += 1
    want, wrong = ("satisfies", "violates") if role == "completer" else ("violates", "satisfies")
    beyond_t = min((g[0] for g, (o, _n) in outcome.items() if o == "beyond"), default=None)
    longest = max((n for o, n in outcome.values() if o == want), default=0)
    examples: dict[str, Any] = {o: next((g for g, (oo, _n) in outcome.items() if oo == o), None) for o in ("uncertified", wrong)}
    if counts[wrong]:
        ex = examples[wrong]
        status = Status.FALSIFIED
        reasons.append(f"{label}: {counts[wrong]} OOD state(s) complete so that R1 {'fails' if role == 'completer' else 'holds'}; "
                       f"first at length {ex[0]} with counts {ex[1]}")
    if counts["uncertified"] and status is Status.VERIFIED:
        ex = examples["uncertified"]
        status = Status.UNKNOWN
        reasons.append(f"{label}: the greedy token is not certified in {counts['uncertified']} OOD state(s); first at "
                       f"length {ex[0]} with counts {ex[1]}")
    paper = [outcome[ev.group_of(u)][0] if len(u) <= T else "longer than T"
             for u in case.ood_prompts]
    # -- the independent cross-check -----------------------------------------------------------------
    L = min(cross_length, T)
    words_l = ["".join(w) for w in _words(ev.alphabet, L)]
    cross_gi = _group_of_prefixes(ev, words_l)
    prefixes = tuple(cross_gi)
    direct = enclose(net, words_l, prefixes)
    ab_i = np.array([cross_gi[u] for u in prefixes], dtype=np.int64)
    a_lo, a_hi = ev.lp_lo[ab_i], ev.lp_hi[ab_i]
    overlap = (np.maximum(a_lo, direct.lp_lo) <= np.minimum(a_hi, direct.lp_hi)).all(-1)
    argmax_disagree = 0
    for j, u in enumerate(prefixes):
        ka = ev.certified_argmax(int(ab_i[j]))
        kd = direct.certified_argmax(u)
        if ka is not None and kd is not None and ka != kd:
            argmax_disagree += 1
    if not overlap.all() or argmax_disagree:
        bad = prefixes[int(np.argmin(overlap))] if not overlap.all() else "?"
        status = Status.UNKNOWN
        reasons.insert(0, f"{label}: EVALUATORS DISAGREE - the abstract-state bounds and the direct enclosure do not "
                          f"overlap at {int((~overlap).sum())} of {len(prefixes)} prefixes (first {bad!r}) or certify different "
                          f"greedy tokens at {argmax_disagree}")
    q = {
        "context": T,
        "parameters": sum(p.numel() for p in net.parameters()),
        "groups": len(ev.groups), "layer1_states": len(ev.layer1.keys),
        "corner_evaluations": ev.corner_evaluations, "point_evaluations": ev.point_evaluations,
        "bit_coordinates": ev.bit_coords, "bit_error_upper": scientific(Fraction(ev.layer1.bit_error), "up") if ev.layer1.bit_error else "0",
        "support_prefixes": len(words), "max_tv_upper": scientific(Fraction(max_tv), "up") if max_tv else "0",
        "tolerance_tv": tolerance,
        "kl_lower": decimal_string(kl_lo, "down"), "kl_upper": "unbounded" if kl_hi is None else scientific(kl_hi, "up"),
        "support_mass_beyond_context": str(tail),
        "ood_states": len(reach), "ood_outcomes": counts, "designed_outcome": want,
        "ood_prompt_length_all_finish": (T if beyond_t is None else beyond_t - 1),
        "longest_completion_tokens": longest,
        "paper_prompts": {o: paper.count(o) for o in sorted(set(paper))},
        "cross_check": {"words_of_length": L, "prefixes": len(prefixes), "all_overlap": bool(overlap.all()),
                        "certified_argmax_disagreements": argmax_disagree},
        "r1": r1_name,
    }
    return status, reasons, q


def _words(alphabet: str, n: int):
    import itertools

    return itertools.product(alphabet, repeat=n)


def every_prefix_certificate(case: Any, q1: Any, q2: Any, *, tolerance: float, cross_length: int = CROSS_LENGTH) -> Certificate:
    """The abstract-state verdict on a pair (module docstring)."""
    t0 = time.perf_counter()
    if compact_language(case.name) not in COUNT_RULES:
        raise InvalidModelConfig(f"case {case.name} has no compact construction (known: {', '.join(COMPACT_CASES)})")
    results, timings = [], {}
    for key, net, role in (("q1", q1, "completer"), ("q2", q2, "violator")):
        t1 = time.perf_counter()
        results.append(check_every_prefix(net, case, role, tolerance=tolerance, cross_length=cross_length))
        timings[f"every_prefix_{key}_seconds"] = time.perf_counter() - t1
    statuses = [s for s, _r, _q in results]
    status = (Status.FALSIFIED if Status.FALSIFIED in statuses else Status.UNKNOWN if Status.UNKNOWN in statuses
              else Status.VERIFIED)
    reasons = [r for _s, rs, _q in results for r in rs]
    q = {"q1": results[0][2], "q2": results[1][2]}
    contexts = [m["context"] for m in q.values() if "context" in m]
    T: Any = min(contexts) if contexts else "T"  # the claim holds up to the shorter of the two contexts
    r1_name = COUNT_RULES[compact_language(case.name)][0]
    claim = (f"For every prefix of length <= {T}: on each support prefix of P both networks are within TV {tolerance:g} "
             f"of P's conditional, and from every prefix with P(u) = 0 the greedy completion of Q1 ends with EOS with "
             f"R1 ({r1_name}) satisfied and that of Q2 with R1 violated, whenever it ends within position {T} "
             f"(the prompts it does not are counted).")
    return Certificate(
        check=f"prop-1-{case.name}-every-prefix", claim=claim, status=status, method="exhaustive",
        detail=_detail(q, T),
        reason="; ".join(reasons), quantities=q,
        assumptions=(
            "the real function of the stored weights, enclosed with outward-rounded float64 balls; attention rows are "
            "exactly uniform because every head's queries are identically 0 or its key weights are (checked entry by entry)",
            "prefixes are grouped by (length, counts, last token, which layer-2 bits have occurred); inside a group "
            "every layer-2 unit keeps one sign at the corners of the reachable bit-count box, so the logits are affine "
            "there and the hull of the corner enclosures holds every prefix of the group; other groups are evaluated "
            "at each reachable bit count",
            "a greedy token is certified only where its lower log-probability bound exceeds every other's upper bound",
        ),
        versions=library_versions("torch", "numpy", "mpmath"), elapsed_s=time.perf_counter() - t0, timings=timings,
    )


def _detail(q: dict[str, Any], T: Any) -> str:
    a, b = q["q1"], q["q2"]
    if "groups" not in a or "groups" not in b:
        return f"abstract-state check refused, T = {T}"
    return (f"{a['groups']:,} + {b['groups']:,} abstract states, every prefix <= {T}; max TV <= {a['max_tv_upper']}, "
            f"{b['max_tv_upper']}; OOD states: {a['ood_outcomes']['satisfies']:,} satisfy R1 vs "
            f"{b['ood_outcomes']['violates']:,} violate; cross-check {a['cross_check']['prefixes']:,} prefixes")


def compact_pair_certificate(case: Any, q1: Any, q2: Any, prefixes: Any, *, tolerance: float, kl_bound: float,
                             check_name: str | None = None) -> Certificate:
    """The exhaustive pair check on the case's prefix set (exact arithmetic) joined with
    :func:`every_prefix_certificate`: verified only when both are."""
    from dataclasses import replace

    from constructions.check import check_pair

    base = check_pair(case, q1, q2, prefixes, tolerance=tolerance, kl_bound=kl_bound, check_name=check_name, exact=True)
    every = every_prefix_certificate(case, q1, q2, tolerance=tolerance)
    order = {Status.VERIFIED: 0, Status.UNKNOWN: 1, Status.FALSIFIED: 2}
    status = max(base.status, every.status, key=lambda s: order[s])
    reasons = [r for r in (base.reason, every.reason) if r]
    return replace(base, status=status, reason="; ".join(reasons), claim=base.claim + " " + every.claim,
                   detail=base.detail + "; every prefix <= T: " + every.detail,
                   quantities={**base.quantities, "every_prefix": dict(every.quantities)},
                   assumptions=tuple(base.assumptions) + tuple(every.assumptions),
                   timings={**base.timings, **every.timings},
                   elapsed_s=(base.elapsed_s or 0) + (every.elapsed_s or 0))
