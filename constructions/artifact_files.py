"""Which files a counterexample directory holds, and the checks that rest on that list.

A ``nonid counterexample`` directory holds exactly :data:`COUNTEREXAMPLE_FILES` at its top level and
nothing else: no subfolder, no link (the distillation checkpoints go to ``--checkpoint-dir``, never
into the directory).  Two checks use the list:

* :func:`check_files_sha256` — the certificate's ``files_sha256`` map names exactly the hashed files
  (:data:`HASHED_FILES`), each with a 64-digit lowercase hex SHA-256; a name such as ``../x`` or
  ``/etc/passwd`` is refused before any path is built from it;
* :func:`foreign_entries` — what, anywhere under a folder, is not one of those files: ``--force`` deletes
  a folder only when that list is empty, so a user's file is never lost.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from theory.errors import InvalidArtifact, NonidError
from theory.fileio import walk_tree

DIRECTORY_FORMAT = "nonid-counterexample-2"
"""Format 2: checked on rigorous enclosures, verdict bounds fixed by the method (``kl_bound`` recorded)."""
EARLIER_FORMATS = ("nonid-counterexample-1",)
"""Folders an earlier nonid wrote: ``--force`` may replace them; ``nonid check`` refuses them by name."""
MAX_N_MAX = 4096
"""The largest ``n_max`` a re-check accepts before looking at the networks (which bound it further)."""

HASHED_FILES = frozenset({"config.json", "README.md", "q1.safetensors", "q2.safetensors"})
"""The files whose SHA-256 the certificate records."""

COUNTEREXAMPLE_FILES = HASHED_FILES | {"certificate.json"}
"""Every file ``nonid counterexample`` writes (the certificate is not hashed: it holds the hashes)."""

EXPORT_DIRS = {"hf": ("q1", "q2"), "tl": ("q1", "q2")}
"""Library exports a pair folder may hold (``nonid counterexample --export``, ``nonid export``): a folder per
export with one subfolder per network and its own ``certificate.json`` (hashed in the pair certificate)."""
HF_MODEL_FILES = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")
"""The files of one exported Hugging Face model folder."""
TL_MODEL_FILES = ("tl_config.json", "model.safetensors", "nonid.json", "README.md")
"""The files of one exported TransformerLens model folder (``constructions.tl_export.TL_FILES``, spelt out here so
that listing a folder needs no import)."""
EXPORT_FILES = frozenset({f"{e}/certificate.json" for e in EXPORT_DIRS}
                         | {f"hf/{k}/{name}" for k in EXPORT_DIRS["hf"] for name in HF_MODEL_FILES}
                         | {f"tl/{k}/{name}" for k in EXPORT_DIRS["tl"] for name in TL_MODEL_FILES})
"""Every file an export writes, relative to the pair folder."""

_HEX64 = re.compile(r"[0-9a-f]{64}")


def _short(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def check_files_sha256(files: object, directory: str | os.PathLike[str],
                       expected: frozenset[str] | set[str] | None = None) -> dict[str, str]:
    """The stored ``files_sha256`` map of ``directory``'s certificate, checked: a JSON object whose keys
    are exactly ``expected`` (default :data:`HASHED_FILES`, a pair folder's) and whose values are SHA-256
    digests (64 lowercase hex digits).

    Returns:
        The map as a plain ``dict`` (safe to join each key to ``directory``).

    Raises:
        InvalidArtifact: naming ``directory/certificate.json`` and the first bad entry — not a mapping, an
            unknown name (``../../etc/passwd``), a name missing, a digest that is not a string or not hex.
    """
    names = HASHED_FILES if expected is None else frozenset(expected)
    where = Path(directory) / "certificate.json"
    if not isinstance(files, dict):
        raise InvalidArtifact(f"{where}: files_sha256 {_short(files)} is not a mapping of file names to SHA-256 digests")
    for name, digest in files.items():
        if not isinstance(name, str) or name not in names:
            raise InvalidArtifact(f"{where}: files_sha256 names {_short(name)}, which is not one of "
                                  f"{', '.join(sorted(names))}")
        if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
            raise InvalidArtifact(f"{where}: files_sha256[{name!r}] = {_short(digest)} is not a SHA-256 digest "
                                  "(64 lowercase hex digits)")
    missing = sorted(names - set(files))
    if missing:
        raise InvalidArtifact(f"{where}: files_sha256 does not list the SHA-256 of {', '.join(missing)}")
    return {name: files[name] for name in sorted(files)}


def check_files_on_disk(files: dict[str, str], directory: str | os.PathLike[str], certificate: str = "the certificate") -> None:
    """Every file of a checked ``files_sha256`` map (:func:`check_files_sha256`) is a regular file of
    ``directory`` (no link) with that SHA-256.

    Raises:
        InvalidArtifact: the first missing file or mismatch, named."""
    from theory.fileio import file_sha256

    for name, digest in files.items():
        path = Path(directory) / name
        if not path.is_file() or path.is_symlink():
            raise InvalidArtifact(f"{path}: missing")
        found = file_sha256(path)
        if found != digest:
            raise InvalidArtifact(f"{path}: SHA-256 does not match {certificate} (expected {digest[:8]}…, found {found[:8]}…)")


def foreign_entries(directory: str | os.PathLike[str], allowed: frozenset[str] = COUNTEREXAMPLE_FILES,
                    limit: int = 4) -> list[str]:
    """Up to ``limit`` entries anywhere under ``directory`` that are not a regular file named in
    ``allowed`` at its top level (a subfolder and whatever it holds, a link, a FIFO, an unknown name),
    as paths relative to ``directory``, sorted.  Links are never followed.

    Raises:
        OSError: a folder that cannot be listed.
    """
    out: list[str] = []
    top = next(walk_tree(directory))[1]
    for entry in top:
        st = entry.stat(follow_symlinks=False)
        if entry.name in allowed and stat.S_ISREG(st.st_mode):
            continue
        if stat.S_ISDIR(st.st_mode):  # name the user's files inside, not only the folder
            inner = [f"{entry.name}/{x}" for x in _files_under(entry.path, limit - len(out))]
            out.extend(inner or [entry.name + "/"])
        else:
            out.append(entry.name)
        if len(out) >= limit:
            break
    return out[:limit]


def pair_foreign_entries(directory: str | os.PathLike[str], limit: int = 4) -> list[str]:
    """:func:`foreign_entries` of a pair folder, where the export folders (:data:`EXPORT_DIRS`) holding
    only :data:`EXPORT_FILES` are the pair's own.  Links are never followed.

    Raises:
        OSError: a folder that cannot be listed.
    """
    out: list[str] = []
    for entry in foreign_entries(directory, COUNTEREXAMPLE_FILES, limit=1 << 30):
        top = entry.split("/", 1)[0]
        if top in EXPORT_DIRS and entry in EXPORT_FILES \
                and stat.S_ISREG(os.lstat(Path(directory) / entry).st_mode):
            continue
        out.append(entry)
        if len(out) >= limit:
            break
    return out


def _files_under(folder: str, limit: int) -> list[str]:
    """Up to ``limit`` non-folder entries under ``folder`` (relative paths, sorted); the walk stops once
    a folder brings the count to ``limit``, so a huge folder of the user's is not listed to the end."""
    found: list[str] = []
    for prefix, entries in walk_tree(folder):
        found.extend(prefix + e.name for e in entries if not e.is_dir(follow_symlinks=False))
        if len(found) >= limit:
            break
    return sorted(found)[:limit]


def check_output_dir(out: str | os.PathLike[str], overwrite: bool = False) -> None:
    """Refuse an ``out`` that is a file, or a non-empty directory unless ``overwrite``, or one that
    cannot be created: an empty path, ``.``/``..``/``/``, a path under a file, or a folder where we
    may not write (checked up front, so that nothing is built only to fail at the end).  Even with
    ``overwrite`` a non-empty folder is replaced only when it is recognisably an earlier counterexample:
    a ``config.json`` of :data:`DIRECTORY_FORMAT` and nothing anywhere under it but the files
    ``nonid counterexample`` writes (:data:`constructions.artifact_files.COUNTEREXAMPLE_FILES`), so
    that ``--force`` never deletes a user's file.

    Raises:
        InvalidArtifact: naming the path (and the first foreign files).
    """
    from theory.fileio import claimed_folder_problem

    problem = claimed_folder_problem(out, "counterexample", marker="config.json", is_ours=_is_counterexample,
                                     foreign=pair_foreign_entries, force=overwrite)
    if problem:
        raise InvalidArtifact(problem)


def _is_counterexample(folder: Path) -> bool:
    """Whether ``folder`` holds the ``config.json`` of a format ``nonid counterexample`` writes or wrote."""
    from theory.jsonio import SMALL_FILE_LIMITS, read_json_file

    try:
        config = read_json_file(folder / "config.json", limits=SMALL_FILE_LIMITS)
    except NonidError:
        return False
    return isinstance(config, dict) and config.get("format") in (DIRECTORY_FORMAT, *EARLIER_FORMATS)


def folder_to_check_problem(directory: str | os.PathLike[str]) -> str | None:
    """Why ``directory`` is not something ``nonid check`` can read, with the likely fix, or ``None``:
    a missing path, a file (the folder is what is checked), or a folder without ``certificate.json``
    that holds counterexample folders one level down (an appendix keeps its pair in a subfolder)."""
    d = Path(directory)
    if not d.exists():
        return f"{d}: no such directory"
    if not d.is_dir():
        return f"{d}: is a file, not a folder; `nonid check` reads the folder that `nonid counterexample --out` wrote"
    if (d / "certificate.json").exists():
        return None
    try:
        inner = sorted(p for p in d.iterdir() if p.is_dir() and not p.is_symlink() and (p / "certificate.json").is_file()
                       and (p / "config.json").is_file())
    except OSError:
        inner = []
    if inner:
        where = " or ".join(f"`nonid check {p}`" for p in inner[:2])
        return f"{d}: no certificate.json here, but a counterexample folder inside it: try {where}"
    return f"{d}: no certificate.json: not a folder written by `nonid counterexample`"


EXPORT_TARGETS = ("hf", "tl")
"""The library exports of a pair (``--export`` / ``nonid export --to``): Hugging Face (``constructions.hf_export``)
and TransformerLens (``constructions.tl_export``)."""


def export_unavailable(to: str) -> str:
    """Why the export ``to`` cannot run here ('' when it can): an unknown target or a missing library.
    Cheap: no heavy import."""
    import importlib.util

    if to not in EXPORT_TARGETS:
        return f"export target {to!r} is not one of {', '.join(EXPORT_TARGETS)}"
    if to == "tl":
        if importlib.util.find_spec("transformer_lens") is None:
            return ("--to tl needs the transformer_lens package (TransformerLens 4), which is not installed: "
                    "pip install -e '.[tl]'")
        return ""
    for name in ("transformers", "tokenizers"):
        if importlib.util.find_spec(name) is None:
            return f"--export hf needs the {name} package, which is not installed: pip install -e '.[hf]'"
    return ""
