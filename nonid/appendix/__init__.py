"""The paper appendix: every certificate, table and figure as LaTeX, Markdown and images, from
certificates only.

:func:`write_appendix` writes, into a temporary folder next to ``out`` that is then renamed into place
(nothing half-written is left on failure):

* ``appendix.tex`` — one ``\\section`` (booktabs tables, figures from ``\\nonidfigdir``) stating each
  lemma and proposition of docs/theory.md with its certificates: claim, verdict (a ``falsified`` or
  ``unknown`` one is shown as such, with its reason), method, solver, horizon, numbers, versions, hash
  and a reproduction command;
* ``appendix.md`` — the same content in Markdown;
* ``figures/*.pdf`` and ``*.png`` — drawn from the certificates (:mod:`nonid.appendix.figures`);
* ``certificates.json`` — every certificate (canonical, without timings) with its SHA-256, source and
  reproduction command; ``timings.json`` — the wall and solver times (machine-dependent, never hashed);
* ``counterexample-anbn/`` — when computed here, the compiled transformer pair (``nonid check`` re-verifies it);
* ``manifest.json`` — every file above with its size and SHA-256 (:mod:`nonid.appendix.manifest`), written
  last: it is how a later run tells this appendix's files from a user's.

:func:`compile_appendix` (``nonid appendix --compile``) then compiles ``appendix.tex`` with pdflatex and
puts the PDF beside it as ``appendix.pdf`` (atomically, and listed in ``manifest.json``), byte-identical
for the same ``appendix.tex`` and figures (``SOURCE_DATE_EPOCH`` fixes its dates and ID).

The same certificates give byte-identical ``.tex``, ``.md``, ``certificates.json`` and figures, except
the solver-seconds panel of ``z3-time-vs-horizon`` (measured times).

With ``from_path`` the saved certificates are read back and re-checked where the re-run is cheap
(:func:`nonid.appendix.readback.recheck`); the rest is marked "read back, not re-checked" everywhere.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable, Sequence

from nonid.appendix.manifest import MANIFEST, manifest_json, read_manifest, user_files
from nonid.appendix.sources import APPENDIX_FORMAT, COUNTEREXAMPLE_DIR, Entry, Options, collect, load_entries
from theory.certificate import CERTIFICATE_FORMAT, status_counts
from theory.errors import InvalidArtifact
from theory.fileio import file_sha256, make_temp_dir, replace_directory, write_atomic

PDF = "appendix.pdf"
OUTPUT_NAMES = frozenset({"appendix.tex", "appendix.md", "certificates.json", "timings.json", "figures", COUNTEREXAMPLE_DIR,
                          MANIFEST, PDF})

__all__ = ["Entry", "Options", "check_output_dir", "collect", "compile_appendix", "load_entries", "write_appendix",
           "OUTPUT_NAMES", "PDF"]


def _listing(names: list[str], more: bool = False) -> str:
    shown = ", ".join(names[:3])
    return shown + (" and more" if more or len(names) > 3 else "")


def check_output_dir(out: str | os.PathLike[str], force: bool = False) -> None:
    """The command line's one output-folder rule (:func:`theory.fileio.claimed_folder_problem`) for the
    appendix: an ``out`` that cannot be created is refused; so is a non-empty folder that is not an
    earlier appendix (no readable ``manifest.json``) and an earlier appendix holding anything, anywhere
    under it, that it did not write as it is now (:func:`nonid.appendix.manifest.user_files`: a file of
    the user's, a changed one) — both even with ``force``, so a user's file is never deleted; an earlier
    appendix as it was written is replaced only with ``force``.

    Raises:
        InvalidArtifact: one line naming the path and the first foreign entries.
    """
    from theory.fileio import claimed_folder_problem

    def ours(target: Path) -> bool:
        return read_manifest(target) is not None

    def foreign(target: Path) -> list[str]:
        manifest = read_manifest(target)
        return [] if manifest is None else user_files(target, manifest)

    problem = claimed_folder_problem(out, "appendix", marker=MANIFEST, is_ours=ours, foreign=foreign, force=force)
    if problem:
        raise InvalidArtifact(problem)


def _version() -> str:
    from nonid import __version__

    return __version__


def certificates_json(entries: Sequence[Entry]) -> str:
    counts = status_counts(entries)
    doc = {
        "appendix_format": APPENDIX_FORMAT, "certificate_format": CERTIFICATE_FORMAT, "generator": f"nonid {_version()}",
        "counts": counts,
        "how_to_verify": ("sha256 is the SHA-256 of the certificate's canonical JSON (theory.Certificate.to_json: sorted "
                          "keys, two-space indent, no timings). Re-run a proof check with `nonid prove --only NAME --json` "
                          "and compare; re-verify the model pair with `nonid check counterexample-anbn/`; rebuild this "
                          "appendix from this file with `nonid appendix --from certificates.json --out DIR`."),
        "certificates": [e.to_dict() for e in entries],
    }
    return json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def timings_json(entries: Sequence[Entry]) -> str:
    doc = {e.check: {"elapsed_s": None if e.certificate.elapsed_s is None else round(e.certificate.elapsed_s, 3),
                     "timings": dict(e.certificate.timings)} for e in entries}
    return json.dumps(doc, sort_keys=True, indent=2) + "\n"


def write_appendix(out: str | os.PathLike[str], *, options: Options | None = None, from_path: str | None = None,
                   force: bool = False, echo: Callable[[str], None] = lambda _m: None) -> tuple[list[Entry], list]:
    """Compute (``options``) or read (``from_path``) the certificates and write the appendix into ``out``
    atomically.  Returns (entries, figures).

    Raises:
        InvalidArtifact: ``out`` refused (:func:`check_output_dir`), or unreadable / incompatible saved certificates.
        NonidError: bad options (unknown check, experiment folder…).
    """
    from nonid.appendix import figures as F
    from nonid.appendix import render
    from nonid.appendix.readback import recheck

    target = Path(out)
    check_output_dir(target, force)
    entries_in = load_entries(from_path) if from_path else None  # refuse bad input before any work
    tmp = make_temp_dir(target)
    try:
        if entries_in is not None:
            entries = recheck(entries_in, echo)
            assert from_path is not None  # entries_in was loaded from it
            src = Path(from_path)
            if any(e.source == "counterexample" for e in entries):
                _copy_counterexample((src if src.is_dir() else src.parent) / COUNTEREXAMPLE_DIR, tmp / COUNTEREXAMPLE_DIR)
        else:
            entries = collect(options or Options(), models_dir=tmp, echo=echo)
        figs = F.draw(entries, tmp / "figures")
        version = _version()
        write_atomic(tmp / "appendix.tex", render.latex(entries, figs, version))
        write_atomic(tmp / "appendix.md", render.markdown(entries, figs, version))
        write_atomic(tmp / "certificates.json", certificates_json(entries))
        write_atomic(tmp / "timings.json", timings_json(entries))
        for p in sorted(tmp.rglob("*")):
            os.chmod(p, 0o755 if p.is_dir() else 0o644)
        write_atomic(tmp / MANIFEST, manifest_json(tmp))  # last: it lists every other file
        os.chmod(tmp / MANIFEST, 0o644)
        os.chmod(tmp, 0o755)
        check_output_dir(target, force)  # again: a file the user put there while we computed is not lost
        replace_directory(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return entries, figs


SOURCE_DATE_EPOCH = "0"
"""The date pdfTeX writes into the PDF (and derives its /ID from): fixed, so the same sources give the same bytes."""


def _pdflatex(appendix_dir: Path, timeout: float) -> tuple[bool, str, bytes | None]:
    """Compile ``appendix_dir``'s ``appendix.tex`` and ``figures/`` in a scratch copy, wrapped as in
    :func:`nonid.appendix.texcheck.compile_pdf`; returns (ok, the log's error lines or tail, the PDF's bytes when ok)."""
    from nonid.appendix import texcheck

    engine = texcheck.latex_engine()
    if engine is None:
        raise FileNotFoundError("pdflatex is not installed")
    with tempfile.TemporaryDirectory(prefix="nonid-tex-") as tmp:
        t = Path(tmp)
        shutil.copy(appendix_dir / "appendix.tex", t / "appendix.tex")
        if (appendix_dir / "figures").is_dir():
            shutil.copytree(appendix_dir / "figures", t / "figures")
        (t / "main.tex").write_text(texcheck.WRAPPER)
        env = {**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH, "FORCE_SOURCE_DATE": "1"}
        proc = subprocess.run([engine, "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", "main.tex"],
                              cwd=t, capture_output=True, text=True, timeout=timeout, errors="replace", env=env)
        log = (t / "main.log").read_text(errors="replace") if (t / "main.log").exists() else proc.stdout
        errors = [ln for ln in log.splitlines() if ln.startswith("!") or "Undefined" in ln or "Missing character" in ln]
        ok = proc.returncode == 0 and (t / "main.pdf").exists() and not errors
        return ok, "\n".join(errors) if errors else "\n".join(log.splitlines()[-15:]), (t / "main.pdf").read_bytes() if ok else None


def compile_appendix(out: str | os.PathLike[str], timeout: float = 120) -> tuple[bool, str]:
    """Compile the appendix in ``out`` (``appendix.tex`` with its figures, in a two-column ``article``
    loading booktabs and graphicx) with pdflatex and, when it compiles, put the PDF at ``out/appendix.pdf``
    (:func:`theory.fileio.write_atomic`) and list it in ``manifest.json`` (rewritten atomically), so that a
    later ``nonid appendix --out`` replaces it as one of its own files.  Returns (ok, the log's error lines
    or tail), as :func:`nonid.appendix.texcheck.compile_pdf` does; when not ok no PDF is written (an
    earlier ``appendix.pdf`` is left as it was).  The PDF's dates are fixed (``SOURCE_DATE_EPOCH``): the
    same ``appendix.tex`` and figures give the same bytes.

    If a file under ``out`` that the manifest does not list as it is (a user's) appears while pdflatex
    runs, the PDF is removed again and the manifest left alone: ok is False and the log says why.

    Raises:
        FileNotFoundError: pdflatex is not installed (nothing is written).
        InvalidArtifact: ``out`` is not an appendix folder (no readable ``manifest.json``).
    """
    target = Path(out)
    before = read_manifest(target)
    if before is None:
        raise InvalidArtifact(f"{target}: not an appendix folder (no readable {MANIFEST} of `nonid appendix`)")
    ok, log, pdf = _pdflatex(target, timeout)
    if not ok or pdf is None:
        return False, log
    write_atomic(target / PDF, pdf)
    os.chmod(target / PDF, 0o644)
    text = manifest_json(target)
    listed = {rel: (rec["bytes"], rec["sha256"]) for rel, rec in json.loads(text)["files"].items()}
    others_now = {k: v for k, v in listed.items() if k != PDF}
    if others_now != {k: v for k, v in before.items() if k != PDF}:
        changed = sorted(k for k in set(others_now) | set(before) - {PDF} if others_now.get(k) != before.get(k))
        (target / PDF).unlink(missing_ok=True)
        return False, (f"{target}: files changed while pdflatex ran ({', '.join(changed[:3])}"
                       f"{' and more' if len(changed) > 3 else ''}); {PDF} not kept, rerun the command")
    write_atomic(target / MANIFEST, text)
    os.chmod(target / MANIFEST, 0o644)
    return True, log


def _copy_counterexample(src: Path, dst: Path) -> None:
    """Copy a saved counterexample folder's own files (regular files with the names ``nonid counterexample``
    writes; links and anything else are left behind) — it travels with its certificate, unverified here."""
    from constructions.artifact_files import COUNTEREXAMPLE_FILES

    if not src.is_dir() or src.is_symlink():
        return
    dst.mkdir()
    for name in sorted(COUNTEREXAMPLE_FILES):
        p = src / name
        if p.is_file() and not p.is_symlink():
            shutil.copyfile(p, dst / name)


def file_hashes(directory: str | os.PathLike[str]) -> dict[str, str]:
    """SHA-256 of every file under ``directory`` (relative paths), for comparing two appendices."""
    d = Path(directory)
    return {str(p.relative_to(d)): file_sha256(p) for p in sorted(d.rglob("*")) if p.is_file()}
