"""The machine-checked core: the chain rule, Lemmas A, B, C and the bracket step proved in Coq for every
finite alphabet, every horizon and every finite support (``proofs/coq/``, docs/theory.md §2 and §5).

``coq-core`` compiles the development from its sources with ``coqc`` — in a fresh temporary folder, so
no ``.vo`` file from the repository or from an earlier run is trusted — then asks Coq's kernel, for
each main theorem, its statement (``Check``) and the axioms it rests on (``Print Assumptions``).
``verified`` only when every file compiles, every statement is exactly the one in :data:`THEOREMS`
(what README.md shows beside its mathematical reading) and every theorem's axioms are among the four
of Coq's standard real numbers (:data:`STANDARD_AXIOMS`): an ``Admitted`` proof, an ``Axiom`` of the
development's own or a weakened statement is therefore never ``verified``.  Without ``coqc``, or with
another Coq than the one the development is checked with, the check is ``unknown`` with one line
saying what to install; every other check still runs.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from proofs import ProofCheck
from theory.certificate import Certificate, Status

COQ_DIR = Path(__file__).resolve().parent / "coq"
LIBRARY = "Nonid"
"""The logical name the development is compiled under (``-R theories Nonid``)."""
COQ_VERSION = "8.16"
"""The Coq release the development is checked with (Debian bookworm's ``coq``, 8.16.1)."""
INSTALL_HINT = ("install Coq 8.16: `apt-get install coq` (Debian/Ubuntu, as root), or `opam install coq.8.16.1`; "
                "`make prove` and `make test` do the former where they can")
STANDARD_AXIOMS = frozenset({
    "ClassicalDedekindReals.sig_not_dec",
    "ClassicalDedekindReals.sig_forall_dec",
    "FunctionalExtensionality.functional_extensionality_dep",
    "Classical_Prop.classic",
})
"""The axioms of Coq's standard library of real numbers (``Reals``), which every theorem about R rests
on; the development adds none of its own."""
TIMEOUT_S = 300


@dataclass(frozen=True)
class Theorem:
    """One main theorem: its Coq name and module, its statement as Coq's ``Check`` prints it (whitespace
    normalised), and its reading in mathematical notation (README.md shows both)."""

    name: str
    module: str
    statement: str
    math: str


_ARGS = "forall (A : Type) (alph : list A) (L : nat) (P : list A -> R) (q : model A), "
_HYP = "dist A alph L P -> qnn A q -> posQ A P q -> "
THEOREMS: tuple[Theorem, ...] = (
    Theorem("ln_le_sub_1", "LnIneq", "forall x : R, 0 < x -> ln x <= x - 1",
            "ln x ≤ x − 1 for every x > 0 (proved from the standard library, not assumed)"),
    Theorem("gibbs", "Gibbs", "forall l : list (R * R), admissible l -> sp l = 1 -> sq l <= 1 -> 0 <= KL l",
            "Gibbs (Lemma C for one row): Σᵢ pᵢ ln(pᵢ/qᵢ) ≥ 0 when p ≥ 0 sums to 1, q ≥ 0 sums to ≤ 1 and qᵢ > 0 "
            "wherever pᵢ > 0"),
    Theorem("KL_zero_iff_support", "Gibbs",
            "forall l : list (R * R), admissible l -> sp l = 1 -> sq l <= 1 -> KL l = 0 <-> "
            "(forall pq : R * R, List.In pq l -> 0 < fst pq -> snd pq = fst pq)",
            "Lemma B for one row: under the same hypotheses, KL(p ‖ q) = 0 iff qᵢ = pᵢ wherever pᵢ > 0"),
    Theorem("chain_rule", "ChainRule",
            _ARGS + _HYP + "KLseq A alph L P q = sum (words A alph L) (fun u : list A => mb A alph L P u * "
            "KLrow A alph L P q u)",
            "the chain rule: Σₓ P(x) ln(P(x)/Q(x)) = Σ_u P(u)·KL(p(·|u) ‖ q(·|u)), u over every word of length ≤ L"),
    Theorem("lemma_A", "ChainRule",
            "forall (A : Type) (alph : list A) (L : nat) (P : list A -> R) (q q' : model A), " + _HYP
            + "qnn A q' -> posQ A P q' -> (forall (u : list A) (o : option A), 0 < mb A alph L P u -> q u o = q' u o) "
            "-> KLseq A alph L P q = KLseq A alph L P q'",
            "Lemma A: two models that agree at every prefix u with P(u) > 0 have the same KL(P ‖ ·)"),
    Theorem("lemma_B_seq", "ChainRule",
            _ARGS + _HYP + "rows_le1 A alph q -> KLseq A alph L P q = 0 <-> (forall u : list A, List.In u (words A "
            "alph L) -> 0 < mb A alph L P u -> forall o : option A, List.In o (Omega A alph) -> q u o = cond A alph L P u o)",
            "Lemma B: for a model whose rows sum to ≤ 1, KL(P ‖ Q) = 0 iff q(o|u) = p(o|u) for every outcome o at "
            "every prefix u with P(u) > 0"),
    Theorem("lemma_C_seq", "ChainRule", _ARGS + _HYP + "rows_le1 A alph q -> 0 <= KLseq A alph L P q",
            "Lemma C: KL(P ‖ Q) ≥ 0 for every model whose rows sum to ≤ 1"),
    Theorem("bracket_step", "ChainRule",
            "forall (A : Type) (alph : list A) (L : nat) (P : list A -> R) (q : model A) (u : list A), " + _HYP
            + "rows_le1 A alph q -> List.In u (words A alph L) -> mb A alph L P u * KLrow A alph L P q u <= "
            "KLseq A alph L P q",
            "the bracket step: P(u)·KL(p(·|u) ‖ q(·|u)) ≤ KL(P ‖ Q) at every prefix u"),
    Theorem("words_NoDup", "ChainRule",
            "forall (A : Type) (alph : list A), List.NoDup alph -> forall n : nat, List.NoDup (words A alph n)",
            "the sums over words L count every word of length ≤ L once (with words_complete: words L is that set) "
            "when the alphabet lists each token once"),
    Theorem("pinsker", "Pinsker",
            "forall l : list (R * R), admissible l -> sp l = 1 -> sq l = 1 -> 2 * TV l ^ 2 <= KL l",
            "Pinsker's inequality: KL(p ‖ q) ≥ 2·TV(p, q)² for probability vectors p, q (qᵢ > 0 wherever pᵢ > 0), "
            "TV = ½ Σᵢ |pᵢ − qᵢ|"),
    Theorem("tv_margin", "Pinsker",
            "forall (X : Type) (xs : list X) (p q : X -> R) (a : X) (gamma : R), List.In a xs -> (forall b : X, "
            "List.In b xs -> b <> a -> gamma <= p a - p b) -> TV (List.map (fun x : X => (p x, q x)) xs) < gamma / 2 "
            "-> forall b : X, List.In b xs -> b <> a -> q b < q a",
            "the margin lemma: if p(a) − p(b) ≥ γ for every b ≠ a and TV(p, q) < γ/2, then q(a) > q(b) for every b ≠ a "
            "(q's argmax is p's)"),
    Theorem("pinsker_row", "Bracket",
            "forall (A : Type) (alph : list A) (L : nat) (P : list A -> R) (q : model A) (u : list A), " + _HYP
            + "List.In u (words A alph L) -> 0 < mb A alph L P u -> sum (Omega A alph) (q u) = 1 -> "
            "2 * TVrow A alph L P q u ^ 2 <= KLrow A alph L P q u",
            "Pinsker at a prefix: KL(p(·|u) ‖ q(·|u)) ≥ 2·TV(p(·|u), q(·|u))² at every u with P(u) > 0 whose row of q "
            "sums to 1"),
    Theorem("greedy_identified", "Bracket",
            "forall (A : Type) (alph : list A) (L : nat) (P : list A -> R) (q : model A) (u : list A) (a : option A) "
            "(gamma : R), " + _HYP + "rows_le1 A alph q -> List.In u (words A alph L) -> 0 < mb A alph L P u -> "
            "sum (Omega A alph) (q u) = 1 -> List.In a (Omega A alph) -> 0 < gamma -> (forall b : option A, "
            "List.In b (Omega A alph) -> b <> a -> gamma <= cond A alph L P u a - cond A alph L P u b) -> "
            "KLseq A alph L P q < mb A alph L P u * gamma ^ 2 / 2 -> forall b : option A, List.In b (Omega A alph) -> "
            "b <> a -> q u b < q u a",
            "the identification bracket's lower end: if p(·|u) has argmax a with margin γ > 0 and KL(P ‖ Q) < "
            "P(u)·γ²/2, then Q's argmax at u is a (q(a|u) > q(b|u) for every b ≠ a)"),
)
"""The main theorems, in the order of the table in README.md ("The machine-checked core")."""
DEFINITIONS_FILE = COQ_DIR / "definitions.txt"
"""What Coq prints for every definition of the development (``Print``), pinned: a statement is only as
strong as the definitions it uses (``KLseq``, ``dist``, ``mb`` …), so a changed definition is a
changed claim.  Regenerate after a deliberate change with
``NONID_REGENERATE=1 .venv/bin/pytest -q tests/test_coq.py -k definitions`` and review the diff."""


FORBIDDEN = re.compile(r"(?m)^\s*(?:#\[[^\]]*\]\s*)?(?:Local\s+|Global\s+|Polymorphic\s+)?"
                       r"(Notation|Infix|Reserved|Coercion|Axiom|Axioms|Parameter|Parameters|Conjecture|Hypothesis|"
                       r"Hypotheses|Instance|Canonical|Declare|Arguments)\b|\b(Admitted|admit|Abort)\b")
"""Vernacular the development may not use: an axiom or admitted proof (``Print Assumptions`` would show it
too), and anything that changes how a statement *reads* without changing the words ``Check`` prints (a
notation, a coercion, an implicit-argument change, an instance)."""


def forbidden(source: Path, files: Sequence[str]) -> list[str]:
    """``file:line: word`` for each use of :data:`FORBIDDEN` vernacular (comments skipped roughly: text
    inside ``(* … *)`` on one line)."""
    found = []
    for rel in files:
        for i, line in enumerate((source / rel).read_text().splitlines(), 1):
            code = re.sub(r"\(\*.*?\*\)", "", line)
            m = FORBIDDEN.search(code)
            if m:
                found.append(f"{rel}:{i}: {m.group(1) or m.group(2)}")
    return found


def _die_with_parent() -> None:
    """In the coqc child (Linux): end when the process that started it ends — a worker of a parallel
    ``nonid prove`` terminated on Ctrl-C must not leave coqc running."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _coqc(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S, preexec_fn=_die_with_parent)


def _normal(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _version(coqc: str) -> str:
    out = subprocess.run([coqc, "--version"], capture_output=True, text=True, timeout=60)
    m = re.search(r"version (\d+\.\d+)(\.\d+)?", out.stdout)
    return m.group(0).split()[-1] if m else ""


def _files(source: Path) -> list[str]:
    """The development's files in build order, as _CoqProject lists them (the Assumptions.v there is the
    user's own printout; the check writes its own queries)."""
    names = [line.strip() for line in (source / "_CoqProject").read_text().splitlines()
             if line.strip().endswith(".v")]
    return [n for n in names if Path(n).name != "Assumptions.v"]


_MARK = 1000  # a numeral: the only entries of coqc's output that can start with a digit are these markers


def definitions(source: Path, files: Sequence[str]) -> list[tuple[str, str]]:
    """(module, name) of every ``Definition`` and ``Fixpoint`` in the development's files."""
    out = []
    for rel in files:
        module = Path(rel).stem
        for m in re.finditer(r"(?m)^\s*(?:Definition|Fixpoint)\s+([A-Za-z_][\w']*)", (source / rel).read_text()):
            out.append((module, m.group(1)))
    return out


def _query(theorems: Sequence[Theorem], defs: Sequence[tuple[str, str]]) -> str:
    modules = sorted({t.module for t in theorems} | {m for m, _ in defs})
    lines = [f"Require Import Reals {' '.join(f'{LIBRARY}.{m}' for m in modules)}.", "Open Scope R_scope."]
    for i, t in enumerate(theorems):
        lines += [f"Check {_MARK + i}%nat.", f"Check @{LIBRARY}.{t.module}.{t.name}.",
                  f"Print Assumptions {LIBRARY}.{t.module}.{t.name}."]
    for j, (module, name) in enumerate(defs):
        lines += [f"Check {_MARK + len(theorems) + j}%nat.", f"Print {LIBRARY}.{module}.{name}."]
    lines.append(f"Check {_MARK + len(theorems) + len(defs)}%nat.")
    return "\n".join(lines) + "\n"


def _sections(output: str, count: int) -> list[str]:
    """coqc's output cut at the markers of :func:`_query`: one text per query (``count`` of them)."""
    parts = re.split(r"(?m)^(\d+)%nat\n\s+: nat\n", output)
    # parts: [before, mark0, text0, mark1, text1, ...]
    marks = [int(m) for m in parts[1::2]]
    if marks != list(range(_MARK, _MARK + count + 1)):
        raise ValueError(f"expected the markers {_MARK}..{_MARK + count} in coqc's output, found {marks[:5]}...")
    return parts[2::2][:count]


def _statement_and_axioms(text: str) -> tuple[str, frozenset[str]]:
    """From ``Check`` then ``Print Assumptions`` output: the statement (after the first ``:``) and the
    names of the axioms (entries at column 0 after ``Axioms:``)."""
    head, sep, tail = text.partition("\nAxioms:\n")
    if not sep:
        head, closed, rest = text.partition("\nClosed under the global context")
        if not closed or rest.strip():
            raise ValueError("a Print Assumptions answer is neither 'Axioms:' nor 'Closed under the global context'")
    statement = _normal(head.split("\n", 1)[1]) if "\n" in head else ""
    statement = statement[1:].strip() if statement.startswith(":") else statement
    axioms = frozenset(m.group(1) for m in re.finditer(r"(?m)^([^\s:][^\s]*)(?:\s|$)", tail))
    return statement, axioms


def definitions_text(defs: Sequence[tuple[str, str]], printed: Sequence[str]) -> str:
    """The pinned form of the definitions: per definition a header line and Coq's ``Print``, whitespace
    normalised per line (what :data:`DEFINITIONS_FILE` holds)."""
    blocks = []
    for (module, name), text in zip(defs, printed):
        lines = [re.sub(r"\s+", " ", line).rstrip() for line in text.strip().splitlines() if line.strip()]
        blocks.append("\n".join([f"# {LIBRARY}.{module}.{name}", *lines]))
    return "\n\n".join(blocks) + "\n"


def _first_difference(expected: str, got: str) -> str:
    for i, (a, b) in enumerate(zip(expected.splitlines(), got.splitlines())):
        if a != b:
            return f"line {i + 1}: expected {a!r}, got {b!r}"
    return "one has more lines than the other"


def check_coq(source: Path = COQ_DIR, theorems: Sequence[Theorem] = THEOREMS, check: str = "coq-core") -> Certificate:
    """The certificate for the development in ``source`` (a folder with ``_CoqProject`` and
    ``theories/``), for ``theorems``: compiled from source in a temporary folder, statements compared,
    assumptions read.  See the module text for the verdicts."""
    claim = ("Proved in Coq " + COQ_VERSION + " for every finite alphabet, every horizon L and every data distribution on "
             "words of length <= L (and a model with nonnegative rows, positive on the support): "
             + "; ".join(t.math for t in theorems) + ". Coq's kernel checked each proof; each theorem rests only on "
             "the axioms of Coq's standard real numbers.")

    def unknown(reason: str, detail: str) -> Certificate:
        return Certificate(check=check, claim=claim, status=Status.UNKNOWN, method="proof",
                           detail=detail, reason=reason)

    def falsified(reason: str, detail: str) -> Certificate:
        return Certificate(check=check, claim=claim, status=Status.FALSIFIED, method="proof",
                           detail=detail, reason=reason)

    coqc = shutil.which("coqc")
    if coqc is None:
        return unknown(f"coqc is not installed: {INSTALL_HINT}", "coqc not installed")
    version = _version(coqc)
    if not version.startswith(COQ_VERSION + ".") and version != COQ_VERSION:
        return unknown(f"coqc is Coq {version or '(unknown version)'}, the development is checked with Coq {COQ_VERSION}: "
                       f"{INSTALL_HINT}", f"Coq {version or '?'} found, {COQ_VERSION} needed")
    files = _files(source)
    odd = [f for f in files if Path(f).is_absolute() or ".." in Path(f).parts or not (source / f).is_file()]
    if odd or not files:
        return falsified(f"_CoqProject must list the development's .v files as relative paths inside {source}: "
                         f"{', '.join(odd[:3]) or 'none listed'}", "_CoqProject names no usable file")
    banned = forbidden(source, files)
    if banned:
        return falsified("the development uses what it may not (an axiom, an admitted proof, or a notation, coercion "
                         "or instance that changes how a statement reads): " + "; ".join(banned[:3]), "forbidden vernacular")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="nonid-coq-") as tmp:
        build = Path(tmp)
        for rel in files:
            target = build / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / rel, target)
        root = build / Path(files[0]).parent
        for rel in files:
            out = _coqc([coqc, "-q", "-R", str(root), LIBRARY, str(build / rel)], build)
            if out.returncode:
                message = _normal((out.stderr or out.stdout).replace(str(build) + "/", ""))[:400] or "no message"
                return falsified(f"coqc rejected {rel}: {message}", f"{rel} does not compile")
        defs = definitions(source, files)
        query = build / "NonidQuery.v"
        query.write_text(_query(theorems, defs))
        out = _coqc([coqc, "-q", "-R", str(root), LIBRARY, str(query)], build)
    seconds = time.perf_counter() - start
    if out.returncode:
        return falsified(f"coqc could not find a main theorem: {_normal(out.stderr)[:300]}", "a main theorem is missing")
    try:
        sections = _sections(out.stdout, len(theorems) + len(defs))
        answers = [_statement_and_axioms(text) for text in sections[:len(theorems)]]
    except ValueError as e:
        return unknown(f"could not read coqc's answers: {e}", "coqc output not understood")
    problems, per_theorem = [], {}
    for t, (statement, axioms) in zip(theorems, answers):
        extra = sorted(axioms - STANDARD_AXIOMS)
        if extra:
            problems.append(f"{t.name} rests on {', '.join(extra)} (not an axiom of Coq's reals: an Admitted proof "
                            "or an axiom of the development)")
        if statement != _normal(t.statement):
            problems.append(f"{t.name} states {statement!r}, not {t.statement!r}")
        per_theorem[t.name] = {"module": f"{LIBRARY}.{t.module}", "statement": statement, "axioms": sorted(axioms)}
    printed = definitions_text(defs, sections[len(theorems):])
    pinned_file = source / DEFINITIONS_FILE.name
    pinned = pinned_file.read_text() if pinned_file.is_file() else ""
    if printed != pinned:
        changed = _first_difference(pinned, printed)
        problems.append(f"the definitions differ from {DEFINITIONS_FILE.name} (a changed definition changes every "
                        f"statement that uses it): {changed}")
    quantities = {"coq_version": version, "theorems": per_theorem, "standard_axioms": sorted(STANDARD_AXIOMS),
                  "files": files, "definitions": len(defs), "definitions_printed": printed}
    status = Status.FALSIFIED if problems else Status.VERIFIED
    found = "axioms: the standard reals' only" if status is Status.VERIFIED else f"{len(problems)} problem(s)"
    return Certificate(
        check=check, claim=claim, status=status, method="proof",
        detail=f"{len(theorems)} theorems, {len(files)} files, Coq {version}; {found}",
        reason="; ".join(problems[:3]), quantities=quantities,
        assumptions=("Coq's kernel is sound and the standard library's axioms of the real numbers "
                     "(ClassicalDedekindReals, functional extensionality, excluded middle) are consistent",
                     "finite support: distributions on words of length <= L; countable support is not covered",
                     "a word x stands for x followed by end-of-sequence; P(u) is the prefix mass and p(.|u) the ratio "
                     "of prefix masses"),
        versions={"coq": version}, timings={"coqc_s": round(seconds, 1)},
    )


CHECKS = [ProofCheck("coq-core", "Coq: the chain rule, Lemmas A-C, Pinsker and the identification bracket, every horizon",
                     check_coq)]
