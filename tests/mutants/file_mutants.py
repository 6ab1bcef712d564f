"""The file side of the mutation catalogue: JSON that is too deep, too long or ambiguous, a forged
``files_sha256``, output folders holding a user's files, and edited certificates read back by
``nonid appendix --from``.  Every name starts with ``file-`` (``pytest tests/mutants -k file``).

Fixtures are tiny and built once per process: an appendix of the single proof check ``lemma-a``
(no figures, no models; written in well under a second, rebuilt from in a tenth), and the cached
aⁿbⁿ (n ≤ 3) counterexample pair of :mod:`tests.mutants.shared` for the directory mutants.
A mutant never changes a cached folder: it works on a copy.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from tests.mutants.registry import constructed, mutant, verdict
from tests.mutants.shared import anbn_pair, cli_verdict, fresh, rehash, written


# ---- shared fixtures --------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _appendix_root() -> Path:
    """An appendix of ``lemma-a`` alone, written once into a process-lifetime temporary folder."""
    from nonid.appendix import Options, write_appendix

    root = Path(tempfile.mkdtemp(prefix="nonid-file-mutants-"))
    write_appendix(root / "appendix", options=Options(only=("lemma-a",), horizons=(), alphas=(), experiment_steps=0,
                                                      models=False))
    return root / "appendix"


@contextlib.contextmanager
def _work() -> Iterator[tuple[Path, Path]]:
    """(a fresh copy of the tiny appendix, an unused sibling path), deleted afterwards."""
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "appendix"
        shutil.copytree(_appendix_root(), d)
        yield d, Path(tmp) / "out"


def _snapshot(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): (p.read_bytes() if p.is_file() else b"<dir>") for p in sorted(d.rglob("*"))}


def _untouched(d: Path, run: Callable[[], str]) -> str:
    """``run()``'s verdict, or ``"touched"`` when it changed anything under ``d`` (a refusal must not)."""
    before = _snapshot(d)
    out = run()
    return out if _snapshot(d) == before else "touched"


def _certificates(d: Path) -> dict:
    return json.loads((d / "certificates.json").read_text())


def _write_certificates(d: Path, doc: dict, rehash: bool = True) -> None:
    """Write ``doc`` as ``d``'s certificates.json, re-signing every entry's SHA-256 as a forger would."""
    from theory.certificate import Certificate

    if rehash:
        for e in doc["certificates"]:
            e["sha256"] = Certificate.from_dict(e["certificate"]).sha256()
    (d / "certificates.json").write_text(json.dumps(doc, indent=2))


def _load(d: Path) -> str:
    from nonid.appendix import load_entries

    return constructed(lambda: load_entries(d))


# ---- bounded JSON -----------------------------------------------------------------------------------
@mutant("file-json-certificate-nested-100000-deep", "file", "refused:InvalidArtifact")
def json_deep(mutate: bool) -> str:
    """A saved certificate whose quantities hold a list nested 100,000 deep (about 200 KB): refused by the
    bounded reader's depth pre-scan (limit 64), not a RecursionError or a stack overflow in the parser."""
    with _work() as (d, _out):
        if mutate:
            text = (d / "certificates.json").read_text()
            (d / "certificates.json").write_text(text.replace('"quantities": {', '"quantities": {"deep": '
                                                              + "[" * 100_000 + "]" * 100_000 + ", ", 1))
        return _load(d)


@mutant("file-json-duplicate-status-key", "file", "refused:InvalidArtifact")
def json_duplicate(mutate: bool) -> str:
    """A saved falsified certificate with a second ``"status": "verified"`` key after the first: a reader
    that keeps the last value (Python's json) would see verified; the bounded reader refuses the repeat."""
    with _work() as (d, _out):
        doc = _certificates(d)
        cert = doc["certificates"][0]["certificate"]
        cert.update(status="falsified", reason="a changed row leaks onto the support")
        _write_certificates(d, doc)
        if mutate:
            text = (d / "certificates.json").read_text()
            (d / "certificates.json").write_text(text.replace('"status": "falsified"',
                                                              '"status": "falsified", "status": "verified"', 1))
        return _load(d)


@mutant("file-json-nan-quantity", "file", "refused:InvalidArtifact")
def json_nan(mutate: bool) -> str:
    """A saved certificate whose count of instances is ``NaN`` (not JSON; Python's json accepts it)."""
    with _work() as (d, _out):
        if mutate:
            text = (d / "certificates.json").read_text()
            (d / "certificates.json").write_text(text.replace('"quantities": {', '"quantities": {"instances_nan": NaN, ', 1))
        return _load(d)


@mutant("file-json-certificates-over-size-cap", "file", "exit 2")
def json_over_cap(mutate: bool) -> str:
    """The appendix's certificates.json padded with whitespace (still valid JSON) to one byte over the
    16 MiB cap: `nonid appendix --from` refuses it by its size before reading, with exit 2."""
    from theory.jsonio import CERTIFICATE_LIMITS

    with _work() as (d, out):
        if mutate:
            p = d / "certificates.json"
            with open(p, "ab") as f:
                f.write(b" " * (CERTIFICATE_LIMITS.max_bytes + 1 - p.stat().st_size))
        return cli_verdict(["appendix", "--out", str(out), "--from", str(d), "--quiet"])


def _counterexample_verdict(edit: Callable[[Path], None] | None) -> str:
    with written() as d:
        if edit is not None:
            edit(d)
            rehash(d)
        return verdict(lambda: fresh(d))


@mutant("file-json-config-10000-digit-integer", "file", "refused:InvalidArtifact")
def json_digits(mutate: bool) -> str:
    """config.json's prefix count replaced by a 10,000-digit integer and the directory re-signed: refused by
    the bounded reader (limit 1,000 digits), before Python's own 4,300-digit ValueError."""
    def edit(d: Path) -> None:
        cfg = (d / "config.json").read_text()
        n = json.loads(cfg)["prefixes"]
        (d / "config.json").write_text(cfg.replace(f'"prefixes": {n}', '"prefixes": ' + "7" * 10_000, 1))

    return _counterexample_verdict(edit if mutate else None)


@mutant("file-json-certificate-json-over-size-cap", "file", "refused:InvalidArtifact")
def certificate_over_cap(mutate: bool) -> str:
    """A counterexample's certificate.json padded with whitespace to one byte over the 16 MiB cap (valid
    JSON, so only the cap refuses it): refused by its size before it is read."""
    from theory.jsonio import CERTIFICATE_LIMITS
    with written() as d:
        if mutate:
            p = d / "certificate.json"
            with open(p, "ab") as f:
                f.write(b" " * (CERTIFICATE_LIMITS.max_bytes + 1 - p.stat().st_size))
        return verdict(lambda: fresh(d))


@mutant("file-files-sha256-unknown-name", "file", "refused:InvalidArtifact")
def files_sha256_unknown(mutate: bool) -> str:
    """A certificate's files_sha256 with one more entry, ``../../etc/passwd``, with the true hash of the
    file that name reaches from the directory: the map may name only the four files a counterexample
    hashes, so `verify_directory` refuses it (a reader that hashed every listed name would accept it)."""
    with written() as original, tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "a" / "cx"  # two levels down, so that d/../../etc/passwd stays inside tmp
        shutil.copytree(original, d)
        if mutate:
            target = Path(tmp) / "etc" / "passwd"
            target.parent.mkdir()
            target.write_text("root:x:0:0:root:/root:/bin/sh\n")
            assert (d / "../../etc/passwd").resolve() == target.resolve()
            cert = json.loads((d / "certificate.json").read_text())
            cert["quantities"]["files_sha256"]["../../etc/passwd"] = hashlib.sha256(target.read_bytes()).hexdigest()
            (d / "certificate.json").write_text(json.dumps(cert))
        return verdict(lambda: fresh(d))


@mutant("file-files-sha256-checker-unknown-name", "file", "refused:InvalidArtifact")
def files_sha256_checker(mutate: bool) -> str:
    """The same forged map given to constructions.artifact_files.check_files_sha256, the one checker of the
    map (a name outside config.json, README.md, q1/q2.safetensors is refused before any path is built)."""
    from constructions.artifact_files import check_files_sha256
    with written() as d:
        files = json.loads((d / "certificate.json").read_text())["quantities"]["files_sha256"]
        if mutate:
            files["../../etc/passwd"] = files["README.md"]
        return constructed(lambda: check_files_sha256(files, d))


# ---- output folders that hold a user's files ----------------------------------------------------------
@mutant("file-appendix-user-file-in-subfolder", "file", "exit 2")
def appendix_user_file(mutate: bool) -> str:
    """An earlier appendix with a user's notes/draft.tex added in a subfolder: `nonid appendix --out --force`
    must refuse with exit 2 and leave the folder as it was (a user's file is never deleted).  Control: the
    same --force over the earlier appendix as written."""
    with _work() as (d, _out):
        src = d.parent / "src"
        shutil.copytree(d, src)
        if mutate:
            (d / "notes").mkdir()
            (d / "notes" / "draft.tex").write_text("my own draft\n")
            return _untouched(d, lambda: cli_verdict(["appendix", "--out", str(d), "--from", str(src), "--quiet", "--force"]))
        return cli_verdict(["appendix", "--out", str(d), "--from", str(src), "--quiet", "--force"])


@mutant("file-appendix-user-edit-in-place", "file", "exit 2")
def appendix_user_edit(mutate: bool) -> str:
    """An earlier appendix whose appendix.md the user edited (its SHA-256 no longer matches the manifest):
    the edit is the user's, so `nonid appendix --out` refuses even with --force, exit 2, untouched.
    Control: --force over the unedited earlier appendix."""
    with _work() as (d, _out):
        src = d.parent / "src"
        shutil.copytree(d, src)
        if mutate:
            with open(d / "appendix.md", "a") as f:
                f.write("\nMy comment on lemma A.\n")
            return _untouched(d, lambda: cli_verdict(["appendix", "--out", str(d), "--from", str(src), "--quiet", "--force"]))
        return cli_verdict(["appendix", "--out", str(d), "--from", str(src), "--quiet", "--force"])


@mutant("file-appendix-force-on-foreign-folder", "file", "exit 2")
def appendix_force_foreign(mutate: bool) -> str:
    """`nonid appendix --out DIR --force` where DIR is the user's paper folder (main.tex, figs/plot.pdf, no
    manifest): --force replaces only an earlier appendix, so exit 2 and the folder is untouched.  Control:
    --force over an earlier appendix."""
    with _work() as (d, out):
        if not mutate:
            shutil.copytree(d, out)
            return cli_verdict(["appendix", "--out", str(out), "--from", str(d), "--force", "--quiet"])
        out.mkdir()
        (out / "main.tex").write_text("\\documentclass{article}\n")
        (out / "figs").mkdir()
        (out / "figs" / "plot.pdf").write_bytes(b"%PDF-1.4\n")
        return _untouched(out, lambda: cli_verdict(["appendix", "--out", str(out), "--from", str(d), "--force", "--quiet"]))


@mutant("file-counterexample-force-user-file-in-subfolder", "file", "refused:InvalidArtifact")
def counterexample_force_user_file(mutate: bool) -> str:
    """An earlier counterexample directory with a user's runs/notes.txt added, replaced with --force
    (write_directory(..., overwrite=True), what `nonid counterexample --force` calls): refused, untouched."""
    from constructions.export import write_directory

    def force() -> str:
        return verdict(lambda: write_directory(anbn_pair(), d, n_max=3, overwrite=True))

    with written() as d:
        if not mutate:
            return force()
        (d / "runs").mkdir()
        (d / "runs" / "notes.txt").write_text("seed 3 looked odd\n")
        return _untouched(d, force)


# ---- read-back is not re-checking -------------------------------------------------------------------
@mutant("file-appendix-from-edited-certificate", "certificate", "exit 1")
def appendix_from_edited(mutate: bool) -> str:
    """A saved appendix whose lemma-a certificate claims one more off-support row changed than it checked
    (a quantity edited, SHA-256 re-signed): `nonid appendix --from` re-runs lemma-a, finds the difference
    and exits 1 (the appendix shows the re-run)."""
    with _work() as (d, out):
        if mutate:
            doc = _certificates(d)
            q = doc["certificates"][0]["certificate"]["quantities"]
            q["off_support_rows_changed"] += 1
            _write_certificates(d, doc)
        return cli_verdict(["appendix", "--out", str(out), "--from", str(d), "--quiet"])


@mutant("file-appendix-from-renamed-check", "certificate", "exit 1")
def appendix_from_renamed(mutate: bool) -> str:
    """A saved certificate renamed to a check this version does not have (``lemma-a-strong``) and re-signed,
    so that no re-run applies: it comes out marked "read back, not re-checked" and the exit status is 1."""
    with _work() as (d, out):
        if mutate:
            doc = _certificates(d)
            doc["certificates"][0]["check"] = doc["certificates"][0]["certificate"]["check"] = "lemma-a-strong"
            _write_certificates(d, doc)
        return cli_verdict(["appendix", "--out", str(out), "--from", str(d), "--quiet"])
