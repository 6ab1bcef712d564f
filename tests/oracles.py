"""Oracles and fixtures shared by more than one test module (test modules never import each other).

* independent membership oracles for the library's languages (regex, counting, a stack);
* the small exact instance P uniform on {ab, aab} over {a, b} (support prefixes ε, a, aa, ab, aab;
  ``b`` is OOD) and the adversarial user models built on it (:class:`RawModel`, :class:`TwoFaced`),
  used by tests/test_validated_models.py and the API mutants;
* :func:`float_row` / :data:`TINY_LOGITS`: a row as the float adapters make it;
* :func:`check_golden`: compare text with a golden file, rewritten only under ``NONID_REGENERATE=1``.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

from theory.alphabet import Alphabet
from theory.data import FiniteDistribution
from theory.probability import NextTokenDistribution

# ---- independent language oracles ----------------------------------------------------------------------


def balanced(w: str, o: str, c: str) -> bool:
    depth = 0
    for t in w:
        depth += (t == o) - (t == c)
        if depth < 0:
            return False
    return depth == 0


def dyck2(w: str) -> bool:
    stack = []
    for t in w:
        if t in "([":
            stack.append(t)
        elif not stack or stack.pop() != {")": "(", "]": "["}[t]:
            return False
    return not stack


RULE_ORACLES = {
    "L1": (lambda w: w.count("a") % 2 == 0, lambda w: w.startswith("b")),
    "L2": (lambda w: w.count("a") % 2 == 0, lambda w: re.fullmatch("b*a*", w) is not None),
    "L3": (lambda w: w.count("a") == w.count("b"), lambda w: re.fullmatch("a*b*", w) is not None),
    "L4": (lambda w: balanced(w, "[", "]"), lambda w: balanced(w, "(", ")")),
    "L5": (lambda w: w.count("a") == w.count("b") == w.count("c"), lambda w: re.fullmatch("a*b*c*", w) is not None),
    "L6": (lambda w: balanced(w, "[", "]"), lambda w: balanced(w, "(", ")")),
}
"""name → (oracle for R1, oracle for R2), written independently of theory.languages."""
LANG_ORACLES = {name: (lambda w, r=r: r[0](w) and r[1](w)) for name, r in RULE_ORACLES.items()}
LANG_ORACLES["L4"] = dyck2

# ---- the shared exact instance and adversarial user models -------------------------------------------
A = Alphabet("ab")


@lru_cache(maxsize=None)
def ab_aab() -> FiniteDistribution:
    """P uniform on {ab, aab} over {a, b}: support prefixes ε, a, aa, ab, aab; ``b`` is OOD."""
    return FiniteDistribution.from_weights(A, {"ab": 1, "aab": 1}, name="ab|aab")


def unchecked_row(*probs: Fraction, alphabet: Alphabet = A) -> NextTokenDistribution:
    """A row built as a careless (or hostile) model would: unchecked, straight from a tuple."""
    return NextTokenDistribution._trusted(alphabet, tuple(Fraction(p) for p in probs))


class RawModel:
    """A user's model: the data's conditional on the support, ``rows`` where given (checked by nobody
    but the library's validating memo), and a point mass on EOS elsewhere."""

    def __init__(self, rows: dict[str, NextTokenDistribution], name: str = "raw") -> None:
        self.alphabet, self.rows, self.name, self.calls = A, rows, name, 0

    def next_token(self, prefix: str) -> NextTokenDistribution:
        self.calls += 1
        if prefix in self.rows:
            return self.rows[prefix]
        if ab_aab().prefix_mass(prefix) > 0:
            return ab_aab().conditional(prefix)
        return unchecked_row(0, 0, 1)


class TwoFaced(RawModel):
    """Answers p(· | a) at ``a`` the first time (the loss reads it first) and ``later`` afterwards."""

    def __init__(self, later: NextTokenDistribution, rows: dict[str, NextTokenDistribution]) -> None:
        super().__init__(rows, name="two-faced")
        self.later, self.seen = later, 0

    def next_token(self, prefix: str) -> NextTokenDistribution:
        if prefix == "a":
            self.seen += 1
            return ab_aab().conditional("a") if self.seen == 1 else self.later
        return super().next_token(prefix)


def float_row(logits: tuple[float, ...]) -> NextTokenDistribution:
    """A network's row as the float adapters make it: exp(z - max z) in float64, each an exact dyadic
    rational, divided by their exact sum (so the row sums to exactly 1)."""
    top = max(logits)
    fr = [Fraction(math.exp(z - top)) for z in logits]
    total = sum(fr)
    return NextTokenDistribution(A, dict(zip(A.outcomes, (x / total for x in fr))))


TINY_LOGITS = (0.0, -700.0, -701.0)
"""Float logits whose row has probabilities e^-700 and e^-701: normalised exactly, its denominator is
a 1064-bit integer with a 998-bit composite part that a bounded factoring attempt does not split."""

# ---- golden files --------------------------------------------------------------------------------------
REGENERATE_VARIABLE = "NONID_REGENERATE"


def regenerating() -> bool:
    """True when golden files are to be rewritten (``NONID_REGENERATE=1``), never otherwise."""
    return os.environ.get(REGENERATE_VARIABLE) == "1"


def check_golden(path: Path, actual: str) -> None:
    """Assert that ``path`` holds exactly ``actual``.  Under ``NONID_REGENERATE=1`` the file is
    rewritten first (and the comparison then holds); otherwise a missing or different file fails with
    a diff and the command that regenerates it — a golden file never changes silently.

    Raises AssertionError when the file is missing or differs (and regeneration is off)."""
    if regenerating():
        path.write_text(actual, encoding="utf-8")
    how = f"if the change is intended, regenerate with {REGENERATE_VARIABLE}=1 and review the diff"
    assert path.exists(), f"golden file {path} is missing; {how}"
    expected = path.read_text(encoding="utf-8")
    if expected != actual:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True),
                                            f"{path} (golden)", "this run"))
        raise AssertionError(f"{path} differs from this run; {how}:\n{diff}")


def rehash(d) -> None:
    """Re-sign every file of a counterexample folder ``d`` in its certificate, as a forger would: a
    check must still catch the lie."""
    import hashlib
    import json
    from pathlib import Path

    d = Path(d)
    cert = json.loads((d / "certificate.json").read_text())
    files = cert["quantities"]["files_sha256"]
    for name in files:
        files[name] = hashlib.sha256((d / name).read_bytes()).hexdigest()
    (d / "certificate.json").write_text(json.dumps(cert))
