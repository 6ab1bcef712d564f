"""Checkpoint files that detect damage: ``torch.save`` bytes behind a one-line header with their
SHA-256, written atomically (temporary file in the same folder, then a rename).  Used by the
distiller (constructions.distill) and the training runs (empirical.train), each with its own header
tag and error type."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import torch

from theory.errors import NonidError
from theory.fileio import write_atomic


def save_hashed(path: Path, payload: dict, magic: bytes) -> None:
    """Write ``magic + sha256(body) + "\\n" + body`` (body = ``torch.save(payload)``) over ``path`` atomically."""
    buf = io.BytesIO()
    torch.save(payload, buf)
    body = buf.getvalue()
    write_atomic(path, magic + hashlib.sha256(body).hexdigest().encode() + b"\n" + body)


def load_hashed(path: Path, magic: bytes, error: type[NonidError], advice: str,
                map_location: str | torch.device = "cpu") -> dict:
    """Read a file written by :func:`save_hashed` with the same ``magic``.

    Raises:
        error: unreadable, another header, damaged (SHA-256 mismatch), not loadable or not a dict;
            each message names the file and ends with ``advice``.  The file is left as it is.
    """
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise error(f"{path}: cannot be read ({e.strerror}); {advice}") from None
    head, _, body = raw.partition(b"\n")
    if not head.startswith(magic):
        raise error(f"{path}: cannot be read (not a {magic.split(b' ')[0].decode()} checkpoint header); {advice}")
    expected, found = head[len(magic):].decode(errors="replace"), hashlib.sha256(body).hexdigest()
    if expected != found:
        raise error(f"{path}: damaged, SHA-256 does not match its header (expected {expected[:12]}…, "
                    f"found {found[:12]}…); {advice}")
    try:
        state = torch.load(io.BytesIO(body), map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises many kinds for a damaged file
        raise error(f"{path}: cannot be read ({type(e).__name__}: {str(e).splitlines()[0][:120]}); {advice}") from None
    if not isinstance(state, dict):
        raise error(f"{path}: not a checkpoint (a {type(state).__name__}, not a dict); {advice}")
    return state
