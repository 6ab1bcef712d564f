"""Every mutant of the catalogue is rejected with the verdict it must get, and its unmutated
control is accepted (so the rejection is the checker's doing, not a broken fixture).

The catalogue itself is pinned: tests/mutants/catalogue.txt lists every mutant name with its expected
verdict, per catalogue module, so a mutant that disappears (or whose expected verdict changes) fails
the suite.  After adding or removing a mutant on purpose, regenerate it and review the diff:

    NONID_REGENERATE=1 .venv/bin/pytest -q tests/mutants/test_mutants.py -k catalogue
"""

from pathlib import Path

import pytest

from tests.mutants.registry import ACCEPTED, load_all, run_mutant
from tests.oracles import check_golden

MUTANTS = load_all()
CATALOGUE = Path(__file__).with_name("catalogue.txt")


def catalogue_listing() -> str:
    """The golden text: a ``[module]`` header per catalogue module, then ``name  expected`` lines, sorted."""
    by_module: dict[str, list[str]] = {}
    for m in MUTANTS.values():
        by_module.setdefault(m.run.__module__.rsplit(".", 1)[-1], []).append(f"{m.name}  {m.expected}")
    lines = ["# The mutation catalogue, pinned by tests/mutants/test_mutants.py: every mutant name and its",
             "# expected verdict, per catalogue module.  Regenerate (never by hand):",
             "#     NONID_REGENERATE=1 .venv/bin/pytest -q tests/mutants/test_mutants.py -k catalogue"]
    for module in sorted(by_module):
        lines += ["", f"[{module}]", *sorted(by_module[module])]
    return "\n".join(lines) + "\n"


def test_the_catalogue_is_exactly_the_pinned_set():
    check_golden(CATALOGUE, catalogue_listing())


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_mutant_is_killed(name):
    m = MUTANTS[name]
    out = run_mutant(m)
    assert out.control == ACCEPTED, f"{name}: the unmutated control gave {out.control!r}"
    assert out.observed != ACCEPTED, f"{name} SURVIVED: the checker accepted {m.description}"
    assert out.observed == m.expected, f"{name}: expected {m.expected!r}, got {out.observed!r}"
