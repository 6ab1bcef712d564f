"""Every mutant of the catalogue is rejected with the verdict it must get, and its unmutated
control is accepted (so the rejection is the checker's doing, not a broken fixture)."""

import pytest

from tests.mutants.registry import ACCEPTED, load_all, run_mutant

MUTANTS = load_all()


def test_the_catalogue_has_at_least_thirty_mutants():
    assert len(MUTANTS) >= 30


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_mutant_is_killed(name):
    m = MUTANTS[name]
    out = run_mutant(m)
    assert out.control == ACCEPTED, f"{name}: the unmutated control gave {out.control!r}"
    assert out.observed != ACCEPTED, f"{name} SURVIVED: the checker accepted {m.description}"
    assert out.observed == m.expected, f"{name}: expected {m.expected!r}, got {out.observed!r}"
