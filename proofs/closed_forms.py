"""Closed forms (docs/theory.md §1–§2), derived by sympy and checked against the exact chain rule.

* ``closed-form-anbn-entropy``: aⁿbⁿ with P(n) = (1 − r) r^(n−1) has entropy h(r)/(1 − r) nats per
  sequence and h(r)/(3 − r) per token (2/5 bit at r = ½); theory's depth-truncated entropy brackets
  it rigorously and its finite part equals the symbolic partial sum exactly.
* ``closed-form-geometric-ce``: the geometric model with ratio s has cross-entropy
  −ln(1 − s) − r/(1 − r) ln s on that data, minimised exactly at s = r where it equals the entropy;
  checked against theory's truncated cross-entropy and KL with a symbolically derived exact tail.
* ``closed-form-padded-floor``: the uniform distribution over aⁿbⁿ (n ≤ N) padded to T tokens has
  padded per-token entropy ln N / (T − 1) — ln 128 / 257 for the companion paper's L3 — equal
  exactly to theory's value; likewise aⁿbⁿcⁿ (n ≤ 85, L5).
"""

from __future__ import annotations

from proofs import ProofCheck
from theory.certificate import Certificate, Status, library_versions
from theory.symbolic import ClosedFormCheck, check_anbn_entropy, check_geometric_ce, check_padded_floor

EXACTNESS = ("rational parameters; closed forms evaluated to q + sum c ln p and compared by coefficients "
             "(1 and ln p are linearly independent over Q) or by rigorous mpmath interval arithmetic")


def _certificate(check: str, claim: str, result: ClosedFormCheck, assumptions: tuple[str, ...]) -> Certificate:
    ok = result.ok
    status = Status.VERIFIED if ok else Status.FALSIFIED if ok is False else Status.UNKNOWN
    n_exact = sum(1 for c in result.cases if c.relation in ("equal", "differs"))
    return Certificate(
        check=check, claim=claim, status=status, method="symbolic",
        detail=f"{result.formula.split(';')[0]}; {n_exact} exact + {len(result.cases) - n_exact} bracketed comparisons",
        reason=result.reason(),
        quantities={"closed_form": result.closed_form, "formula": result.formula,
                    "symbolic_facts": list(result.facts), "comparisons": list(result.cases)},
        assumptions=(EXACTNESS,) + assumptions,
        versions=library_versions("sympy", "mpmath"),
    )


def anbn_entropy_certificate() -> Certificate:
    return _certificate(
        "closed-form-anbn-entropy",
        "a^n b^n with P(n) = (1 - r) r^(n-1) has entropy h(r)/(1 - r) nats per sequence and h(r)/(3 - r) per "
        "token (2 ln 2 and 2/5 bit at r = 1/2).",
        check_anbn_entropy(),
        ("theory's entropy tail for anbn_geometric is a certified upper bound on the entropy beyond the depth",),
    )


def geometric_ce_certificate() -> Certificate:
    return _certificate(
        "closed-form-geometric-ce",
        "The geometric a^n b^n model with ratio s has cross-entropy -ln(1 - s) - r/(1 - r) ln s on the ratio-r "
        "data, uniquely minimised at s = r, where it equals the entropy.",
        check_geometric_ce(),
        ("the cross-entropy/KL tail beyond depth D is the layer sum over a^k, k >= D: every a^k carries the same "
         "row a: s, b: 1 - s at mass r^(k-1), and every other support prefix is deterministic under both",
         "convexity is sympy's ask(Q.positive(d2CE/ds2)) under 0 < r, s < 1"),
    )


def padded_floor_certificate() -> Certificate:
    return _certificate(
        "closed-form-padded-floor",
        "Uniform data over N sequences padded to T tokens has padded per-token entropy ln N / (T - 1): "
        "ln 128 / 257 for a^n b^n, n <= 128, and ln 85 / 256 or ln 85 / 257 for a^n b^n c^n, n <= 85, "
        "padded to 257 or 258.",
        check_padded_floor(),
        ("padded convention of theory.losses.padded_per_token: PAD targets after EOS cost nothing",),
    )


CHECKS: list[ProofCheck] = [
    ProofCheck("closed-form-anbn-entropy", "entropy of geometric a^n b^n in closed form", anbn_entropy_certificate),
    ProofCheck("closed-form-geometric-ce", "cross-entropy of the geometric model family", geometric_ce_certificate),
    ProofCheck("closed-form-padded-floor", "padded per-token floor ln N / (T - 1)", padded_floor_certificate),
]
