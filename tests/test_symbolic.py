"""Closed forms (theory.symbolic) against exact chain-rule computations; wrong closed forms rejected."""

import subprocess
import sys
from fractions import Fraction

import pytest
import sympy as sp

from theory.data import anbn_geometric
from theory.exact import LogCombination, LogInterval
from theory.losses import cross_entropy, entropy, kl_divergence, padded_per_token
from theory.models import sequence_probability
from theory.symbolic import (
    ClosedFormError,
    ExactReal,
    anbn_entropy,
    anbn_entropy_per_token,
    anbn_mean_length,
    binary_entropy,
    check_anbn_entropy,
    check_geometric_ce,
    check_padded_floor,
    exact_value,
    geometric_ce_minimiser,
    geometric_ce_tail,
    geometric_cross_entropy,
    geometric_model,
    padded_floor,
    symbols,
    uniform_anbn,
    uniform_anbncn,
)

S = symbols()
HALF = sp.Rational(1, 2)
LN2 = LogCombination.log(2)


def test_import_does_not_load_sympy():
    code = "import sys, theory, theory.symbolic, proofs.closed_forms; print('sympy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_anbn_entropy_values_at_one_half():
    assert exact_value(anbn_entropy().subs(S.r, HALF)).equals(LogCombination.log(4))
    assert exact_value(anbn_entropy_per_token().subs(S.r, HALF)).equals(LN2 * Fraction(2, 5))
    assert sp.simplify(anbn_entropy_per_token().subs(S.r, HALF) / sp.log(2)) == sp.Rational(2, 5)
    assert sp.simplify(anbn_mean_length() - 2 / (1 - S.r)) == 0


def test_anbn_entropy_closed_form_matches_exact_brackets():
    result = check_anbn_entropy()
    assert result.ok is True, result.reason()
    assert {c.quantity for c in result.cases} >= {"entropy per sequence", "entropy per token"}
    # theory's tail for anbn_geometric is exact, so the upper end is the closed form itself
    assert all(c.relation.endswith("= hi") for c in result.cases if c.quantity == "entropy per sequence")


@pytest.mark.parametrize("wrong", [sp.log(3), binary_entropy(S.r), binary_entropy(S.r) / (1 - S.r) + sp.Rational(1, 10**30)])
def test_wrong_entropy_closed_forms_are_rejected(wrong):
    result = check_anbn_entropy(closed_form=wrong, ratios=[Fraction(1, 2), Fraction(1, 3)], depths=[8])
    assert result.ok is False
    assert any(c.relation == "outside" for c in result.cases)


def test_wrong_per_token_divisor_is_rejected():
    wrong = binary_entropy(S.r) / (1 - S.r) / anbn_mean_length()  # forgot the EOS token
    assert check_anbn_entropy(per_token_form=wrong, depths=[12]).ok is False


def test_geometric_ce_closed_form_minimiser_and_exact_brackets():
    m = geometric_ce_minimiser()
    assert m.unique_at_r and m.convex and m.value_is_entropy
    result = check_geometric_ce()
    assert result.ok is True, result.reason()


def test_geometric_ce_tail_is_the_difference_between_depths():
    r, s = Fraction(1, 3), Fraction(3, 4)
    P, Q = anbn_geometric(r), geometric_model(s)
    tail = [exact_value(geometric_ce_tail().subs({S.r: sp.Rational(1, 3), S.s: sp.Rational(3, 4), S.D: d})).logs
            for d in (3, 9)]
    lo3 = cross_entropy(P, Q, depth=3, tail_bound=tail[0])
    lo9 = cross_entropy(P, Q, depth=9, tail_bound=tail[1])
    assert isinstance(lo3, LogInterval) and isinstance(lo9, LogInterval)
    assert lo9.lo - lo3.lo == tail[0] - tail[1]
    assert lo3.hi == lo9.hi == exact_value(geometric_cross_entropy().subs({S.r: sp.Rational(1, 3), S.s: sp.Rational(3, 4)})).logs


def test_geometric_model_is_the_geometric_prior():
    Q = geometric_model(Fraction(1, 4))
    assert sequence_probability(Q, "aaabbb") == Fraction(3, 4) * Fraction(1, 4) ** 2
    assert sequence_probability(Q, "aab") == 0
    P = anbn_geometric(Fraction(1, 4))
    kl = kl_divergence(P, Q, depth=10, tail_bound=LogCombination.zero())
    assert kl.lo.is_zero and kl.hi.is_zero


@pytest.mark.parametrize("wrong", [-sp.log(1 - S.s) - S.r * sp.log(S.s), -sp.log(1 - S.s) - S.r / (1 - S.r) * sp.log(S.s) / 2])
def test_wrong_cross_entropy_closed_forms_are_rejected(wrong):
    result = check_geometric_ce(closed_form=wrong, depths=[16])
    assert result.ok is False
    assert any(c.relation == "outside" for c in result.cases if c.quantity == "cross-entropy")


def test_padded_floor_equals_exact_value():
    assert check_padded_floor().ok is True
    P = uniform_anbn(128)
    assert padded_per_token(entropy(P), P, 258) == LogCombination.log(128) / 257
    assert exact_value(padded_floor().subs({S.N: 128, S.T: 258})).equals(LogCombination.log(128) / 257)
    Q = uniform_anbncn(85)
    assert exact_value(padded_floor().subs({S.N: 85, S.T: 257})).equals(padded_per_token(entropy(Q), Q, 257))


def test_padded_floor_divided_by_T_is_rejected():
    result = check_padded_floor(closed_form=sp.log(S.N) / S.T)
    assert result.ok is False and all(c.relation == "differs" for c in result.cases)


def test_exact_value_is_exact_or_refuses():
    v = exact_value(sp.Rational(1, 3) + sp.log(sp.Rational(2, 9)) / 5)
    assert v == ExactReal(Fraction(1, 3), (LN2 - LogCombination.log(9)) / 5)
    assert not v.equals(v.logs)  # a rational part is never equal to a pure log combination
    for bad in (sp.Float(0.5) * sp.log(2), sp.pi, sp.log(2) * sp.log(3), sp.sqrt(2), S.r * sp.log(2)):
        with pytest.raises(ClosedFormError):
            exact_value(bad)


def test_closed_form_in_foreign_symbols_is_refused():
    x = sp.Symbol("x")
    with pytest.raises(ClosedFormError, match="outside"):
        check_padded_floor(closed_form=sp.log(x), cases=[("anbn", 4, 10)])
    with pytest.raises(ClosedFormError, match="unknown language"):
        check_padded_floor(cases=[("dyck", 4, 10)])
    with pytest.raises(ClosedFormError, match="depths"):
        check_anbn_entropy(depths=[0])


def test_closed_form_certificates():
    from proofs.closed_forms import CHECKS

    names = [c.name for c in CHECKS]
    assert names == ["closed-form-anbn-entropy", "closed-form-geometric-ce", "closed-form-padded-floor"]
    for check in CHECKS:
        cert = check.run()
        assert cert.verified and cert.method == "symbolic", cert.reason
        assert cert.quantities["closed_form"] and cert.quantities["comparisons"]
