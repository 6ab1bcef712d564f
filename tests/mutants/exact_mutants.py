"""Mutants of the exact evaluation (issue 18): a compiled weight moved by one ulp.

One ulp moves the network's TV to its construction by ~1e−16 — invisible to any tolerance — so what
catches it is the exact design check of :mod:`proofs.compiled`: the exact rational evaluation must be
*exactly* the compiler's design at every prefix, and a one-ulp weight is not.  The fixtures are the
shared compiled aⁿbⁿ pair (n ≤ 4); a mutant clones what it breaks.
"""

from __future__ import annotations

import math

import torch

from tests.mutants.registry import mutant, verdict
from tests.mutants.shared import compiled_anbn


def _certify(q1, q2) -> str:
    from proofs.compiled import certify_compiled

    case, ps, _, _ = compiled_anbn()
    return verdict(lambda: certify_compiled(case, ps, q1, q2))


@mutant("compiled-lookup-bias-one-ulp", "compiled", "falsified")
def compiled_lookup_bias_one_ulp(mutate: bool) -> str:
    """The completer's lookup-unit bias of the support prefix 'aab' moved one ulp toward 0
    (math.nextafter(-13, 0)): TV ~1e-16, far below the tolerance 1e-9, but the exact evaluation's
    pre-activation of that unit is no longer the design's, so the exact certificate is falsified
    naming the prefix and the unit."""
    _, ps, q1, q2 = compiled_anbn()
    if not mutate:
        return _certify(q1, q2)
    bad = q1.clone()
    k = ps.prefixes.index("aab")
    with torch.no_grad():
        b = bad.blocks[1].mlp.fc_in.bias
        b[k] = math.nextafter(float(b[k]), 0.0)
    return _certify(bad, q2)


@mutant("compiled-logit-weight-one-ulp", "compiled", "falsified")
def compiled_logit_weight_one_ulp(mutate: bool) -> str:
    """The violator's output weight for the logit of 'b' written by the lookup unit of 'aab' (ln 1/2)
    moved one ulp down: the exact logits at 'aab' are no longer the designed pre-activation times the
    designed logit row, so the exact certificate is falsified at 'aab' (TV change ~1e-17)."""
    _, ps, q1, q2 = compiled_anbn()
    if not mutate:
        return _certify(q1, q2)
    bad = q2.clone()
    k = ps.prefixes.index("aab")
    row = bad.config.d_model - bad.config.n_outputs + 1
    with torch.no_grad():
        w = bad.blocks[1].mlp.fc_out.weight
        w[row, k] = math.nextafter(float(w[row, k]), -math.inf)
    return _certify(q1, bad)
