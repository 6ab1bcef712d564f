"""The machine-checked core (proofs/coq/, the check coq-core): verified only for the pinned statements
and definitions with the standard reals' axioms alone; an Admitted proof, an axiom of the development's
own, a weakened statement or a changed definition is never verified; no coqc (or another Coq) is
unknown with what to install; README shows exactly the statements the check pins."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from proofs import coq_core
from proofs.coq_core import COQ_DIR, DEFINITIONS_FILE, THEOREMS, check_coq

ROOT = Path(__file__).resolve().parents[1]
needs_coq = pytest.mark.skipif(shutil.which("coqc") is None, reason="coqc is not installed (make test installs it as root)")
LN_ONLY = tuple(t for t in THEOREMS if t.module == "LnIneq")


@pytest.fixture(scope="module")
def full():
    return check_coq()


@needs_coq
def test_the_development_is_verified_with_the_standard_axioms_only(full):
    assert full.status.value == "verified", full.reason
    assert full.method == "proof"
    for t in THEOREMS:
        got = full.quantities["theorems"][t.name]
        assert set(got["axioms"]) <= coq_core.STANDARD_AXIOMS
        assert got["statement"] == coq_core._normal(t.statement)


@needs_coq
def test_the_definitions_are_pinned(full):
    printed = full.quantities["definitions_printed"]
    if os.environ.get("NONID_REGENERATE"):
        DEFINITIONS_FILE.write_text(printed)
    assert DEFINITIONS_FILE.read_text() == printed


PINSKER_FILES = ("theories/LnIneq.v", "theories/Sums.v", "theories/Gibbs.v", "theories/Pinsker.v")
PINSKER = next(t for t in THEOREMS if t.name == "pinsker")


def _copy(tmp_path: Path, only_ln: bool | tuple[str, ...] = True) -> Path:
    """A copy of the development: only LnIneq.v when ``only_ln`` is True (seconds, not tens of seconds),
    the files named when it is a tuple (with the pinned definitions of their modules), else all of it."""
    dst = tmp_path / "coq"
    (dst / "theories").mkdir(parents=True)
    if only_ln is True:
        files = ["theories/LnIneq.v"]
    elif only_ln is False:
        files = list(coq_core._files(COQ_DIR))
    else:
        files = list(only_ln)
    for rel in files:
        shutil.copyfile(COQ_DIR / rel, dst / rel)
    (dst / "_CoqProject").write_text("-R theories Nonid\n" + "\n".join(files) + "\n")
    if only_ln is False:
        pinned = DEFINITIONS_FILE.read_text()
    else:  # the pinned blocks of the copied modules only
        modules = {Path(f).stem for f in files}
        blocks = [b for b in DEFINITIONS_FILE.read_text().strip().split("\n\n") if b.split(".")[1] in modules]
        pinned = "\n\n".join(blocks) + "\n"
    (dst / DEFINITIONS_FILE.name).write_text(pinned)
    return dst


def _edit(path: Path, old: str | None, new: str) -> None:
    """Replace the first ``old`` by ``new`` (which must be there); ``old`` None appends ``new``."""
    text = path.read_text()
    if old is None:
        path.write_text(text + new)
        return
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


XLOG_EQ = coq_core.Theorem("xlog_eq", "LnIneq", "forall a c : R, 0 <= a -> 0 <= c -> (0 < a -> 0 < c) -> "
                           "a * ln (a / c) = a - c -> c = a", "a ln(a/c) = a - c forces c = a")
LN = "theories/LnIneq.v"
LN_PROOF = ("Proof.\n  intros x Hx. pose proof (exp_ineq1_le (ln x)) as H.\n  rewrite exp_ln in H by exact Hx. lra.\n"
            "Qed.")


@needs_coq
def test_control_a_faithful_copy_is_verified(tmp_path):
    """The control of every rejection below: the same copy, unedited, is verified."""
    for theorems in (LN_ONLY, (XLOG_EQ,)):
        cert = check_coq(_copy(tmp_path / theorems[0].name), theorems)
        assert cert.status.value == "verified", cert.reason
    cert = check_coq(_copy(tmp_path / "pinsker", PINSKER_FILES), (PINSKER,))
    assert cert.status.value == "verified", cert.reason


# (what is broken, edits as (file, old or None to append, new), theorems checked, copy only LnIneq.v, where the reason is, fragment)
REJECTED = [
    ("an Admitted proof", [(LN, LN_PROOF, "Admitted.")], LN_ONLY, True, "reason", "Admitted"),
    ("an axiom of the development",
     [(LN, "Theorem ln_le_sub_1", "Axiom cheat : forall x, 0 < x -> ln x <= x - 1.\n\nTheorem ln_le_sub_1"),
      (LN, LN_PROOF, "Proof. exact cheat. Qed.")], LN_ONLY, True, "reason", "Axiom"),
    # no forbidden word in the sources, yet the proof uses proof irrelevance: Print Assumptions shows it
    ("an axiom from another library, caught by the kernel's assumptions",
     [(LN, "Open Scope R_scope.", "Require Import Coq.Logic.ProofIrrelevance.\nOpen Scope R_scope."),
      (LN, "intros x Hx. pose proof (exp_ineq1_le",
       "pose proof (proof_irrelevance True I I) as _Hpi. intros x Hx. pose proof (exp_ineq1_le")],
     LN_ONLY, True, "reason", "ln_le_sub_1 rests on ProofIrrelevance"),
    ("a notation that changes how a statement reads",
     [(LN, "Open Scope R_scope.", "Open Scope R_scope.\nNotation \"x <== y\" := (Rle x y) (at level 70).")],
     LN_ONLY, True, "reason", "Notation"),
    # an extra hypothesis makes the theorem easier and the claim weaker: the statement no longer matches
    ("a weakened statement",
     [(LN, "(0 < a -> 0 < c) ->\n  a * ln (a / c) = a - c -> c = a.",
       "(0 < a -> 0 < c) ->\n  a * ln (a / c) = a - c -> 0 < a -> c = a."),
      (LN, "intros a c Ha Hc Hac Heq.", "intros a c Ha Hc Hac Heq _.")], (XLOG_EQ,), True, "reason", "xlog_eq states"),
    ("a false statement, which does not compile",
     [(LN, "Theorem ln_le_sub_1 : forall x, 0 < x -> ln x <= x - 1.",
       "Theorem ln_le_sub_1 : forall x, 0 < x -> ln x <= x - 2.")], LN_ONLY, True, "detail", "does not compile"),
    # Pinsker with the constant 1 (true, weaker, proved from the real one): the statement pin catches it
    ("Pinsker weakened to KL >= TV^2",
     [("theories/Pinsker.v", "Theorem pinsker : forall l,", "Theorem pinsker_full : forall l,"),
      ("theories/Pinsker.v", None,
       "\nTheorem pinsker : forall l, admissible l -> sp l = 1 -> sq l = 1 -> TV l ^ 2 <= KL l.\n"
       "Proof.\n  intros l Hl Hp Hq. pose proof (pinsker_full l Hl Hp Hq). pose proof (TV_nonneg l).\n"
       "  assert (0 <= TV l ^ 2) by (apply pow_le; assumption). lra.\nQed.\n")],
     (PINSKER,), PINSKER_FILES, "reason", "pinsker states"),
    # the statements stay the same words while a definition they use changes: caught by the pin
    ("a changed definition",
     [("theories/ChainRule.v", "Definition rows_le1 (q : model) : Prop := forall u, sum Omega (q u) <= 1.",
       "Definition rows_le1 (q : model) : Prop := forall u, sum Omega (q u) <= 1 /\\ 0 <= 1.")],
     THEOREMS, False, "reason", "definitions differ"),
]


@needs_coq
@pytest.mark.parametrize("broken, edits, theorems, only_ln, where, fragment", REJECTED, ids=[r[0] for r in REJECTED])
def test_a_broken_development_is_not_verified(tmp_path, broken, edits, theorems, only_ln, where, fragment):
    d = _copy(tmp_path, only_ln=only_ln)
    for rel, old, new in edits:
        _edit(d / rel, old, new)
    cert = check_coq(d, theorems)
    assert cert.status.value == "falsified" and fragment in getattr(cert, where), cert.reason


def test_without_coqc_the_check_is_unknown_and_says_what_to_install(monkeypatch):
    monkeypatch.setattr(coq_core.shutil, "which", lambda name: None)
    cert = check_coq()
    assert cert.status.value == "unknown" and "apt-get install coq" in cert.reason and "\n" not in cert.reason


def test_another_coq_version_is_unknown(monkeypatch):
    monkeypatch.setattr(coq_core.shutil, "which", lambda name: "/usr/bin/coqc")
    monkeypatch.setattr(coq_core, "_version", lambda coqc: "8.19.2")
    cert = check_coq()
    assert cert.status.value == "unknown" and "Coq 8.19.2" in cert.reason and "8.16" in cert.reason


def test_readme_shows_every_pinned_statement_and_its_reading():
    readme = (ROOT / "README.md").read_text()
    for t in THEOREMS:
        assert f"`{t.name}`" in readme, t.name
        assert t.statement in readme, f"README does not show the pinned statement of {t.name}"
        assert t.math in readme, f"README does not show the reading of {t.name}"


@needs_coq
def test_a_project_file_outside_the_development_is_refused_before_anything_is_copied(tmp_path):
    d = tmp_path / "coq"
    d.mkdir()
    (d / "_CoqProject").write_text("-R theories Nonid\n../outside.v\n")
    (tmp_path / "outside.v").write_text("Theorem t : True. Proof. exact I. Qed.\n")
    cert = check_coq(d, LN_ONLY)
    assert cert.status.value == "falsified" and "../outside.v" in cert.reason, cert.reason


def test_coqc_answers_are_read_strictly():
    """A Print Assumptions answer that is neither form is not read as 'no axioms'."""
    read = coq_core._statement_and_axioms
    assert read("t\n     : forall x : R, 0 < x\nClosed under the global context\n") == ("forall x : R, 0 < x", frozenset())
    assert read("t\n : A\nAxioms:\nFoo.bar : X\n  : Y\nBaz.q\n  : Z\n") == ("A", frozenset({"Foo.bar", "Baz.q"}))
    with pytest.raises(ValueError):
        read("t\n : forall x, True\n")
    with pytest.raises(ValueError):
        coq_core._sections("1000%nat\n     : nat\nsomething\n", 2)  # a marker missing
