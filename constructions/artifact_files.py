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

from theory.errors import InvalidArtifact
from theory.fileio import walk_tree

HASHED_FILES = frozenset({"config.json", "README.md", "q1.safetensors", "q2.safetensors"})
"""The files whose SHA-256 the certificate records."""

COUNTEREXAMPLE_FILES = HASHED_FILES | {"certificate.json"}
"""Every file ``nonid counterexample`` writes (the certificate is not hashed: it holds the hashes)."""

_HEX64 = re.compile(r"[0-9a-f]{64}")


def _short(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def check_files_sha256(files: object, directory: str | os.PathLike[str]) -> dict[str, str]:
    """The stored ``files_sha256`` map of ``directory``'s certificate, checked: a JSON object whose keys
    are exactly :data:`HASHED_FILES` and whose values are SHA-256 digests (64 lowercase hex digits).

    Returns:
        The map as a plain ``dict`` (safe to join each key to ``directory``).

    Raises:
        InvalidArtifact: naming ``directory/certificate.json`` and the first bad entry — not a mapping, an
            unknown name (``../../etc/passwd``), a name missing, a digest that is not a string or not hex.
    """
    where = Path(directory) / "certificate.json"
    if not isinstance(files, dict):
        raise InvalidArtifact(f"{where}: files_sha256 {_short(files)} is not a mapping of file names to SHA-256 digests")
    for name, digest in files.items():
        if not isinstance(name, str) or name not in HASHED_FILES:
            raise InvalidArtifact(f"{where}: files_sha256 names {_short(name)}, which is not one of "
                                  f"{', '.join(sorted(HASHED_FILES))}")
        if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
            raise InvalidArtifact(f"{where}: files_sha256[{name!r}] = {_short(digest)} is not a SHA-256 digest "
                                  "(64 lowercase hex digits)")
    missing = sorted(HASHED_FILES - set(files))
    if missing:
        raise InvalidArtifact(f"{where}: files_sha256 does not list the SHA-256 of {', '.join(missing)}")
    return {name: files[name] for name in sorted(files)}


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


def _files_under(folder: str, limit: int) -> list[str]:
    """Up to ``limit`` non-folder entries under ``folder`` (relative paths, sorted); the walk stops once
    a folder brings the count to ``limit``, so a huge folder of the user's is not listed to the end."""
    found: list[str] = []
    for prefix, entries in walk_tree(folder):
        found.extend(prefix + e.name for e in entries if not e.is_dir(follow_symlinks=False))
        if len(found) >= limit:
            break
    return sorted(found)[:limit]
