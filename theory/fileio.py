"""Files and folders on disk: the one place `nonid` writes, hashes and walks them.

* :func:`write_atomic` — a file (text or bytes) via a temporary sibling and a rename: a reader sees the
  old file or the new one, never half of one;
* :func:`make_temp_dir` and :func:`replace_directory` — a folder built as a temporary sibling and
  renamed into place (an old one moved aside first), so a folder is never seen half-written either;
* :func:`output_dir_problem` — the checks every output folder passes before any work starts (each
  writer adds its own rule on what it may replace: a counterexample folder only if it is one, an
  appendix folder only if its manifest lists everything in it);
* :func:`claimed_folder_problem` — the one rule on a non-empty output folder, for every command that
  writes one: a folder that is not this command's earlier output, or holds anything it did not write,
  is refused even with ``--force``; an earlier one needs ``--force`` (or ``--resume``, where the
  command continues its own work), and the refusal says which (``nonid appendix`` applies the same rule
  through its manifest, which lists every file it wrote with its SHA-256: an unchanged earlier appendix
  is regenerated as it is, one with a user's file or edit is replaced only with ``--force``);
* :func:`walk_tree` — the one walk of a folder (links never followed, no recursion) those rules use;
* :func:`file_sha256` — the SHA-256 of a file, read in 1 MiB chunks.

Reading JSON with typed refusal lives in :mod:`theory.jsonio` (:func:`~theory.jsonio.read_json_file`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from theory.processes import raise_if_interrupted

__all__ = ["write_atomic", "make_temp_dir", "replace_directory", "output_dir_problem", "claimed_folder_problem",
           "walk_tree", "file_sha256"]

_CHUNK = 1 << 20


def write_atomic(path: str | os.PathLike[str], data: str | bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename, so a reader
    never sees a half-written file.  Text is written as UTF-8; the file gets the mode ``open()``
    would give it (0666 less the umask).  On any failure the temporary file is removed and ``path``
    is left as it was.

    Raises:
        TypeError: ``data`` is neither text nor bytes (nothing is created).
        OSError: the folder cannot be written.
    """
    if not isinstance(data, (str, bytes, bytearray, memoryview)):
        raise TypeError(f"write_atomic writes str or bytes, not {type(data).__name__}")
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        if isinstance(data, str):
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(data)
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the mode open() would
        raise_if_interrupted()  # a Ctrl-C Python swallowed somewhere still stops the commit
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def make_temp_dir(target: str | os.PathLike[str]) -> Path:
    """A new empty folder (mode 0700) next to ``target``, named ``.<target name>.<random>``, in which to
    build ``target`` before :func:`replace_directory` renames it into place; ``target``'s parent is
    created first if missing.

    Raises:
        OSError: the parent cannot be created or written.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))


def replace_directory(tmp: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Put the finished folder ``tmp`` at ``target`` by renames only (``tmp`` must be a sibling of
    ``target``): an existing ``target`` is first moved aside and removed afterwards, so a reader sees
    the old folder or the new one, never a mixture."""
    raise_if_interrupted()  # a Ctrl-C Python swallowed somewhere still stops the commit
    tmp, target = Path(tmp), Path(target)
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
        os.replace(target, old / "dir")
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, target)


def output_dir_problem(out: str | os.PathLike[str], *, replace: bool = True) -> str | None:
    """Why the folder ``out`` could not be written, or ``None``: a file in the way, a parent where we
    may not write, a name the system refuses (too long, a NUL byte).  With ``replace`` (the folder is
    built as a temporary sibling and renamed into place, replacing an old one) also an empty name,
    ``.``/``..``/a filesystem root, and the home folder or a folder holding the working directory,
    which are never to be replaced wholesale."""
    text = os.fspath(out)
    if not text or (replace and Path(text).name in ("", ".", "..")):
        return "must name a folder to create or replace" if replace else "must name a folder"
    try:
        target = Path(os.path.abspath(text))
        if target.exists() and not target.is_dir():
            return "exists and is not a folder"
        if replace and target.is_dir() and (target == Path.home() or Path.cwd().is_relative_to(target)):
            return "is the home folder or holds the working directory; name a folder of its own"
        where = target if not replace and target.is_dir() else target.parent
        while not where.exists() and not where.is_symlink() and where != where.parent:
            where = where.parent
        if not where.is_dir():
            return f"cannot be created: {where} is not a folder"
        os.rmdir(tempfile.mkdtemp(prefix=f".{target.name}.probe.", dir=where))  # may we write there?
    except (OSError, ValueError) as e:
        return f"is unusable ({getattr(e, 'strerror', None) or e})"
    return None


def claimed_folder_problem(out: str | os.PathLike[str], command: str, *, marker: str,
                           is_ours: Callable[[Path], bool], foreign: Callable[[Path], list[str]],
                           force: bool, resume: bool | None = None, replace: bool = True,
                           own_needs_force: bool = True) -> str | None:
    """The one output-folder rule of the command line: why ``nonid COMMAND --out OUT`` may not write
    into ``out``, or ``None``.

    * :func:`output_dir_problem` first (``replace``: the folder is renamed into place wholesale).
    * A missing or empty folder is fine.
    * A folder that is not an earlier output of ``command`` (``is_ours`` false: its ``marker`` missing
      or not of the command's format) is refused, even with ``--force``: a user's folder is never
      deleted.  So is an earlier output holding entries ``command`` did not write (``foreign``, in
      the order found): never deleted either.
    * An earlier output needs ``--force`` (replace it) or, where the command continues its own work
      (``resume`` is not None), ``--resume``; with ``own_needs_force=False`` (an output regenerated
      from scratch, whose ``foreign`` check already covers every user edit) it is replaced as it is.
    """
    problem = output_dir_problem(out, replace=replace)
    if problem:
        return f"output directory {os.fspath(out)!r} {problem}"
    target = Path(out)
    try:
        if not target.is_dir() or not any(target.iterdir()):
            return None
        if not is_ours(target):
            top = sorted(p.name for p in target.iterdir())
            held = ", ".join(top[:3]) + (" and more" if len(top) > 3 else "")
            return (f"{target}: directory holds {held} and is not an earlier output of `nonid {command}` (no {marker} "
                    "of its format); --force will not delete it: choose another folder or empty it yourself")
        alien = foreign(target)
    except OSError as e:  # a folder we may not list
        return f"output directory {os.fspath(out)!r} is unusable ({e.strerror or e})"
    if alien:
        shown = ", ".join(alien[:3]) + (" and more" if len(alien) > 3 else "")
        return (f"{target}: directory is not empty and holds {shown}, which `nonid {command}` did not write; "
                "--force will not delete it")
    if own_needs_force and not (force or resume):
        how = "pass --force to replace it" + (" or --resume to continue it" if resume is not None else "")
        return f"{target}: directory is not empty (an earlier output of `nonid {command}`: {how})"
    return None


def walk_tree(root: str | os.PathLike[str]) -> Iterator[tuple[str, list[os.DirEntry[str]]]]:
    """Every folder under ``root``, ``root`` first: ``(prefix, entries)`` with ``prefix`` the folder's
    path relative to ``root`` plus ``/`` (``""`` for ``root``) and ``entries`` its entries sorted by name.
    Depth first, subfolders in name order; links are never followed and there is no recursion, so
    neither a link loop nor a deep tree can stop it.  Lazy: a caller that stops early lists no more.

    Raises:
        OSError: a folder that cannot be listed.
    """
    stack: list[tuple[str, str]] = [(os.fspath(root), "")]
    while stack:
        where, prefix = stack.pop()
        with os.scandir(where) as it:
            entries = sorted(it, key=lambda e: e.name)
        yield prefix, entries
        stack.extend((e.path, f"{prefix}{e.name}/") for e in reversed(entries) if e.is_dir(follow_symlinks=False))


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of the file at ``path`` as 64 lowercase hex digits, read in 1 MiB chunks.

    Raises:
        OSError: the file cannot be read.
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()
