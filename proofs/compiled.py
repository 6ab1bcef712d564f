"""Proposition 1 on real transformers: the completer and the violator of aⁿbⁿ (n = 1..16, uniform),
compiled analytically into two ordinary causal transformers (embeddings, softmax attention, ReLU MLP,
unembedding; float64 weights), are checked exhaustively — every support prefix, every paper prompt
with its prefixes and both greedy paths — against the constructions, with **no floating-point
assumption**: each network is evaluated in exact rational arithmetic (:mod:`constructions.exact_eval`;
every stored float is the rational it denotes, every linear map, bias and ReLU is exact, and every
attention row of these networks has exactly equal scores, so its weights are exactly 1/(t + 1)); only
the final log-softmax is transcendental and is enclosed in mpmath intervals.  Verified means: both
networks within TV 1e−9 of their construction everywhere on that set, test losses H(P) + KL with the KL
upper bound ≤ 1e−9 nats, on the paper's 251 OOD prompts greedy completions that are certainly the
constructions' (so OOD R1 accuracies 1 vs 0), every exact value inside the rigorous float enclosure
of the same network (:mod:`constructions.enclosure`, a cross-check that must agree), and the networks
compute *exactly* what the compiler designed (:func:`design_problems`).

The design check is what makes one ulp visible.  The compiler (:mod:`constructions.compile.lookup`)
fixes, at every prefix u = w of its set (t = |u|):

* layer 1: exactly one MLP unit is on, the joint one-hot unit (t, u_t), with pre-activation exactly 1
  (none at u = ε);
* layer 2: exactly one MLP unit is on, u's lookup unit, with exactly the pre-activation
  (t − 1)·c₁/(t + 1) + c₂·(t + 2)/(t + 1) + g + b of its stored constants c₁ = 2(n+1)m, c₂ = 2(n+1)m/(n+2),
  g = (2n+6)m, b = (−2n+1−g)m, each the float64 the compiler's expression rounds to (mirrored here from
  exact rationals, correctly rounded — no float operation);
* the logits are exactly that pre-activation times the compiler's designed logit row
  ℓ_u / m (:func:`constructions.compile.lookup.log_row`, rounded as the compiler divides).

A weight moved by one ulp moves some exact value off its design (unless it changes nothing on the
set, e.g. a weight of a unit that stays off), and the certificate names the prefix and the unit,
while the TV it causes (~1e−16) is far below any tolerance.  Note that the design's pre-activation
is *not* exactly m: c₂ = 2(n+1)/(n+2) is not dyadic unless n + 2 is a power of two, so the compiled
logits are ℓ_u·(1 + ρ_n) with |ρ_n| ≲ 2^−52 — the exact evaluation shows it, the design states it.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from proofs import ProofCheck
from theory.certificate import Certificate

N_MAX = 16
MAX_LISTED = 3
"""Design mismatches listed in a reason (then a count)."""

DESIGN_CLAIM = ("At every prefix the exact evaluation is the compiler's design exactly: one layer-1 joint unit on with "
                "pre-activation 1, one layer-2 lookup unit (the prefix's own) on with the designed pre-activation, and "
                "logits equal to that pre-activation times the designed logit row.")


def _rn(x: Fraction) -> Fraction:
    """x rounded to the nearest float64 (ties to even), as the exact rational: float(Fraction) divides
    Python integers, which is correctly rounded and uses no float operation."""
    return Fraction(float(x))


def design_pre(n: int, margin: float) -> Fraction:
    """The exact pre-activation the compiler designs for the lookup unit of a length-n word at its own
    position, from its float64 constants (each rounded as lookup.py's expression rounds it)."""
    m = Fraction(margin)
    g = 2 * n + 6
    gm = _rn(g * m)
    bias = _rn((-2 * n + 1 - g) * m)
    if n == 0:
        return gm + bias
    c1 = _rn(2 * (n + 1) * m)
    c2 = _rn(_rn(Fraction(2 * (n + 1), n + 2)) * m)
    return (n - 1) * c1 / (n + 1) + c2 * Fraction(n + 2, n + 1) + gm + bias


def design_problems(net: Any, model: Any, prefixes: Any, evaluation: Any, config: Any = None) -> list[str]:
    """Where the exact evaluation of a network compiled from ``model`` on ``prefixes`` (with
    ``config``, default :class:`~constructions.compile.CompileConfig`) is not the compiler's design
    (module docstring): one line per failing prefix, at most :data:`MAX_LISTED`, then a count."""
    from constructions.compile import CompileConfig
    from constructions.compile.lookup import log_row

    cfg = config if config is not None else CompileConfig()
    m = Fraction(cfg.margin)
    alphabet = str(net.alphabet)
    sigma = len(alphabet)
    index = {a: i for i, a in enumerate(alphabet)}
    bad: list[str] = []
    for k, u in enumerate(prefixes.prefixes):
        t = len(u)
        want1 = ((((t - 1) * sigma + index[u[-1]]), Fraction(1)),) if t else ()
        got1 = evaluation.on(u, 0)
        pre = design_pre(t, cfg.margin)
        got2 = evaluation.on(u, 1)
        if got1 != want1:
            bad.append(f"prefix {u!r}: layer-1 units on {_units(got1)}, the design's {_units(want1)}")
        elif got2 != ((k, pre),):
            bad.append(f"prefix {u!r}: layer-2 units on {_units(got2)}, the design's {_units(((k, pre),))} "
                       f"(unit {k} is the lookup unit of {u!r})")
        else:
            want_z = tuple(pre * _rn(Fraction(x) / m) for x in log_row(model.next_token(u).probs, cfg.zero_logit))
            got_z = evaluation.row(u)
            if got_z != want_z:
                a = next(i for i, (x, y) in enumerate(zip(got_z, want_z)) if x != y)
                bad.append(f"prefix {u!r}: exact logit {a} is {got_z[a]} (~{float(got_z[a]):.17g}), the design's "
                           f"{want_z[a]} (~{float(want_z[a]):.17g}): differ by {float(got_z[a] - want_z[a]):.3g}")
    if len(bad) > MAX_LISTED:
        bad = bad[:MAX_LISTED] + [f"... {len(bad) - MAX_LISTED} more prefixes off the design"]
    return [f"not the compiled design - {b}" for b in bad]


def _units(on: Any) -> str:
    return "{" + ", ".join(f"{j}: {v} (~{float(v):.17g})" for j, v in on) + "}" if on else "none"


def certify_compiled(case: Any, prefixes: Any, q1: Any, q2: Any, config: Any = None,
                     check_name: str = "compiled-anbn") -> Certificate:
    """The exact certificate of a compiled pair (module docstring): :func:`constructions.check.check_pair`
    on the exact path, with the compiler's design checked exactly."""
    from constructions.check import check_pair
    from constructions.export import METHOD_BOUNDS

    tolerance, kl_bound = METHOD_BOUNDS["compile"]
    models = {"Q1": case.completer, "Q2": case.violator}

    def design(label: str, net: Any, _target: Any, evaluation: Any) -> list[str]:
        return design_problems(net, models[label], prefixes, evaluation, config)

    return check_pair(case, q1, q2, prefixes, tolerance=tolerance, kl_bound=kl_bound, check_name=check_name,
                      exact=True, design=design, design_claim=DESIGN_CLAIM)


def check_compiled_anbn() -> Certificate:
    from constructions.compile import compile_model
    from constructions.export import case_prefixes, load_case

    case = load_case("anbn", N_MAX)
    prefixes = case_prefixes(case)
    q1, _ = compile_model(case.completer, prefixes)
    q2, _ = compile_model(case.violator, prefixes)
    return certify_compiled(case, prefixes, q1, q2)


CHECKS = [
    ProofCheck("compiled-anbn", f"a^n b^n (n <= {N_MAX}) compiled transformer pair", check_compiled_anbn),
]


COMPACT_CONTEXT = 64
"""Context of the compact pair ``nonid prove`` checks (every one of the 2⁶⁵ − 1 prefixes up to it)."""


def check_compact_anbn() -> Certificate:
    """The compact aⁿbⁿ pair (n ≤ 16) at T = 64: the abstract-state certificate of every prefix up to T
    (:func:`constructions.compact_pair.every_prefix_certificate`)."""
    from dataclasses import replace

    from constructions.compact_pair import every_prefix_certificate
    from constructions.compile.compact import CompactConfig, compile_compact
    from constructions.export import METHOD_BOUNDS, load_case

    case = load_case("anbn", N_MAX)
    cfg = CompactConfig(context=COMPACT_CONTEXT)
    q1, _ = compile_compact(case.data, "completer", cfg)
    q2, _ = compile_compact(case.data, "violator", cfg)
    return replace(every_prefix_certificate(case, q1, q2, tolerance=METHOD_BOUNDS["compact"][0], cross_length=12),
                   check="compact-anbn")


CHECKS.append(ProofCheck("compact-anbn", f"a^n b^n (n <= {N_MAX}) compact transformer pair, every prefix up to "
                         f"T = {COMPACT_CONTEXT}", check_compact_anbn))
