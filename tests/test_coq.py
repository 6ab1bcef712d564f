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


def _copy(tmp_path: Path, only_ln: bool = True) -> Path:
    """A copy of the development (only LnIneq.v when ``only_ln``: seconds, not tens of seconds)."""
    dst = tmp_path / "coq"
    (dst / "theories").mkdir(parents=True)
    files = ["theories/LnIneq.v"] if only_ln else [f for f in coq_core._files(COQ_DIR)]
    for rel in files:
        shutil.copyfile(COQ_DIR / rel, dst / rel)
    (dst / "_CoqProject").write_text("-R theories Nonid\n" + "\n".join(files) + "\n")
    (dst / DEFINITIONS_FILE.name).write_text("\n" if only_ln else DEFINITIONS_FILE.read_text())
    return dst


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


@needs_coq
def test_control_a_faithful_copy_is_verified(tmp_path):
    cert = check_coq(_copy(tmp_path), LN_ONLY)
    assert cert.status.value == "verified", cert.reason


@needs_coq
def test_an_admitted_proof_is_not_verified(tmp_path):
    d = _copy(tmp_path)
    text = (d / "theories/LnIneq.v").read_text()
    start = text.index("Theorem ln_le_sub_1")
    proof_end = text.index("Qed.", start) + len("Qed.")
    statement_end = text.index(".", start) + 1
    (d / "theories/LnIneq.v").write_text(text[:statement_end] + "\nAdmitted." + text[proof_end:])
    cert = check_coq(d, LN_ONLY)
    assert cert.status.value == "falsified" and "Admitted" in cert.reason, cert.reason


@needs_coq
def test_an_axiom_from_another_library_is_caught_by_the_kernel_s_assumptions(tmp_path):
    """No forbidden word in the sources, yet the proof uses proof irrelevance: Print Assumptions shows it."""
    d = _copy(tmp_path)
    _edit(d / "theories/LnIneq.v", "Open Scope R_scope.", "Require Import Coq.Logic.ProofIrrelevance.\nOpen Scope R_scope.")
    _edit(d / "theories/LnIneq.v", "intros x Hx. pose proof (exp_ineq1_le",
          "pose proof (proof_irrelevance True I I) as _Hpi. intros x Hx. pose proof (exp_ineq1_le")
    cert = check_coq(d, LN_ONLY)
    assert cert.status.value == "falsified" and "ln_le_sub_1 rests on ProofIrrelevance" in cert.reason, cert.reason


@needs_coq
def test_a_notation_that_changes_how_a_statement_reads_is_not_verified(tmp_path):
    d = _copy(tmp_path)
    _edit(d / "theories/LnIneq.v", "Open Scope R_scope.", "Open Scope R_scope.\nNotation \"x <== y\" := (Rle x y) (at level 70).")
    cert = check_coq(d, LN_ONLY)
    assert cert.status.value == "falsified" and "Notation" in cert.reason, cert.reason


@needs_coq
def test_an_axiom_of_the_development_is_not_verified(tmp_path):
    d = _copy(tmp_path)
    _edit(d / "theories/LnIneq.v", "Theorem ln_le_sub_1", "Axiom cheat : forall x, 0 < x -> ln x <= x - 1.\n\nTheorem ln_le_sub_1")
    text = (d / "theories/LnIneq.v").read_text()
    start = text.index("Theorem ln_le_sub_1")
    proof_start, proof_end = text.index(".", start) + 1, text.index("Qed.", start) + len("Qed.")
    (d / "theories/LnIneq.v").write_text(text[:proof_start] + "\nProof. exact cheat. Qed." + text[proof_end:])
    cert = check_coq(d, LN_ONLY)
    assert cert.status.value == "falsified" and "Axiom" in cert.reason, cert.reason


XLOG_EQ = coq_core.Theorem("xlog_eq", "LnIneq", "forall a c : R, 0 <= a -> 0 <= c -> (0 < a -> 0 < c) -> "
                           "a * ln (a / c) = a - c -> c = a", "a ln(a/c) = a - c forces c = a")


@needs_coq
def test_a_weakened_statement_is_not_verified(tmp_path):
    """An extra hypothesis makes the theorem easier and the claim weaker: the statement no longer matches
    the pinned one (the control, the same theorem unedited, is verified)."""
    assert check_coq(_copy(tmp_path / "control"), (XLOG_EQ,)).status.value == "verified"
    d = _copy(tmp_path / "weakened")
    _edit(d / "theories/LnIneq.v", "(0 < a -> 0 < c) ->\n  a * ln (a / c) = a - c -> c = a.",
          "(0 < a -> 0 < c) ->\n  a * ln (a / c) = a - c -> 0 < a -> c = a.")
    _edit(d / "theories/LnIneq.v", "intros a c Ha Hc Hac Heq.", "intros a c Ha Hc Hac Heq _.")
    cert = check_coq(d, (XLOG_EQ,))
    assert cert.status.value == "falsified" and "xlog_eq states" in cert.reason, cert.reason


@needs_coq
def test_a_false_statement_does_not_compile_and_is_not_verified(tmp_path):
    d = _copy(tmp_path)
    _edit(d / "theories/LnIneq.v", "Theorem ln_le_sub_1 : forall x, 0 < x -> ln x <= x - 1.",
          "Theorem ln_le_sub_1 : forall x, 0 < x -> ln x <= x - 2.")
    cert = check_coq(d, LN_ONLY)
    assert cert.status.value == "falsified" and "does not compile" in cert.detail, cert.reason


@needs_coq
def test_a_changed_definition_is_not_verified(tmp_path):
    """The statements stay the same words while a definition they use changes: caught by the pin."""
    d = _copy(tmp_path, only_ln=False)
    _edit(d / "theories/ChainRule.v", "Definition rows_le1 (q : model) : Prop := forall u, sum Omega (q u) <= 1.",
          "Definition rows_le1 (q : model) : Prop := forall u, sum Omega (q u) <= 1 /\\ 0 <= 1.")
    cert = check_coq(d, THEOREMS)
    assert cert.status.value == "falsified" and "definitions differ" in cert.reason, cert.reason


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
