"""The appendix folder's ``manifest.json``: every file ``nonid appendix`` wrote, with its size and SHA-256.

It is what makes a folder recognisably an earlier appendix, and what tells the appendix's files from a
user's: ``nonid appendix --out DIR`` replaces a non-empty ``DIR`` only when it holds a manifest and every
file anywhere under it is listed there with the same size and SHA-256 (:func:`user_files` is empty);
with ``--force`` it replaces any folder that holds a readable manifest, and never one without.

Format (sorted keys, two-space indent)::

    {"format": "nonid-appendix-manifest-1",
     "note": "...",
     "files": {"appendix.tex": {"bytes": 41234, "sha256": "3f2a…"}, "figures/ood-r1-vs-gap.pdf": {…}, …}}

Paths are relative, with ``/``; the manifest does not list itself.  Nothing is ever opened by a name read
from a manifest: the folder is walked, and each file found is looked up in the map.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

from theory.errors import InvalidArtifact, NonidError
from theory.fileio import file_sha256, walk_tree
from theory.jsonio import SMALL_FILE_LIMITS, read_json_file

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "nonid-appendix-manifest-1"
_HEX64 = re.compile(r"[0-9a-f]{64}")


def _walk(root: Path) -> list[tuple[str, os.DirEntry]]:
    """Every entry under ``root`` (relative ``/`` path, entry), links not followed, sorted by path."""
    return sorted(((prefix + e.name, e) for prefix, entries in walk_tree(root) for e in entries), key=lambda x: x[0])


def manifest_json(folder: str | os.PathLike[str]) -> str:
    """The manifest of ``folder`` as JSON text: every regular file under it but the manifest itself.

    Raises:
        InvalidArtifact: a link or special file in ``folder`` (the writer never makes one).
    """
    root = Path(folder)
    files: dict[str, dict[str, Any]] = {}
    for rel, e in _walk(root):
        st = e.stat(follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode) or rel == MANIFEST:
            continue
        if not stat.S_ISREG(st.st_mode):
            raise InvalidArtifact(f"{root / rel}: not a regular file; the appendix writes only files and folders")
        files[rel] = {"bytes": st.st_size, "sha256": file_sha256(e.path)}
    doc = {"format": MANIFEST_FORMAT, "files": files,
           "note": ("Every file `nonid appendix` wrote into this folder, with its size and SHA-256. `nonid appendix "
                    "--out` replaces the folder only while every file under it is listed here unchanged (with "
                    "--force: while this manifest is here); a file of yours in it is never deleted otherwise.")}
    return json.dumps(doc, sort_keys=True, indent=2) + "\n"


def read_manifest(folder: str | os.PathLike[str]) -> dict[str, tuple[int, str]] | None:
    """The files ``{relative path: (bytes, sha256)}`` of ``folder``'s manifest, or ``None`` when there is
    no manifest or it is not one ``nonid appendix`` writes (unreadable, oversized, another format, a
    malformed entry): such a folder is not recognisably an earlier appendix."""
    path = Path(folder) / MANIFEST
    if not path.is_file() or path.is_symlink():
        return None
    try:
        doc = read_json_file(path, limits=SMALL_FILE_LIMITS)
    except NonidError:
        return None
    if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT or not isinstance(doc.get("files"), dict):
        return None
    files: dict[str, tuple[int, str]] = {}
    for rel, rec in doc["files"].items():
        if not isinstance(rec, dict):
            return None
        size, digest = rec.get("bytes"), rec.get("sha256")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0 or not isinstance(digest, str) \
                or not _HEX64.fullmatch(digest):
            return None
        files[rel] = (size, digest)
    return files


def user_files(folder: str | os.PathLike[str], manifest: dict[str, tuple[int, str]], limit: int = 4) -> list[str]:
    """Up to ``limit`` entries anywhere under ``folder`` that the earlier appendix did not write as they
    are now: a file not in ``manifest`` (``notes/mine.txt``), a listed file whose size or SHA-256 changed
    (``appendix.md (changed)``), a folder holding no listed file, a link or special file.  Empty when
    ``folder`` holds only the appendix's own, unchanged files.

    Raises:
        OSError: a folder that cannot be listed or a file that cannot be read.
    """
    root = Path(folder)
    ours_dirs = {"/".join(rel.split("/")[:i]) for rel in manifest for i in range(1, rel.count("/") + 1)}
    found: list[str] = []
    walked = _walk(root)
    parents = {rel.rsplit("/", 1)[0] for rel, _e in walked if "/" in rel}
    for rel, e in walked:
        st = e.stat(follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            if rel not in ours_dirs and rel not in parents:  # an empty folder of the user's (else: its files are named)
                found.append(rel + "/")
        elif rel == MANIFEST and stat.S_ISREG(st.st_mode):
            continue
        elif not stat.S_ISREG(st.st_mode) or rel not in manifest:
            found.append(rel)
        elif manifest[rel][0] != st.st_size or manifest[rel][1] != file_sha256(e.path):
            found.append(f"{rel} (changed)")
        if len(found) >= limit:
            break
    return found
