"""Bounded JSON: every JSON file or text that `nonid` reads goes through :func:`read_json_file` or
:func:`parse_json_text`, which refuse, with one line naming the file and the offending value or limit:

* a file larger than ``max_bytes`` (its size is checked before reading, and at most ``max_bytes + 1``
  bytes are ever read, so a growing file or a device cannot make it read more), or not a regular file;
* bytes that are not UTF-8, or strings holding lone surrogates (``"\\ud800"``, which no UTF-8 file can
  carry and which would crash any later write);
* nesting deeper than ``max_depth`` (pre-scanned without recursion, so a 100,000-deep ``[[[…]]]`` is
  refused in linear time instead of exhausting Python's stack);
* a number literal longer than ``max_number_digits`` (Python would parse a 10,000-digit integer in
  quadratic time, and refuse one of 4,300 digits with an untyped ``ValueError``), a float literal
  that overflows to infinity (``1e999``), and the constants ``NaN``/``Infinity``/``-Infinity``, which
  are not JSON;
* a string longer than ``max_string`` characters, a key longer than ``max_key``, a repeated key in
  one object (JSON leaves its meaning open: the first and the last reader may disagree).

The limits live in one frozen :class:`JsonLimits`; :data:`CERTIFICATE_LIMITS` and
:data:`SMALL_FILE_LIMITS` are the two the project uses.  Refusals raise the error class the caller
passes (:class:`~theory.errors.InvalidArtifact` by default, :class:`~theory.errors.InvalidCertificate`
for certificate text), so each caller keeps its own error vocabulary.
"""

from __future__ import annotations

import math
import os
import re
import stat
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import Any

from theory.errors import InvalidArtifact, NonidError
from theory.validation import check_int

__all__ = ["InvalidJsonLimits", "JsonLimits", "CERTIFICATE_LIMITS", "SMALL_FILE_LIMITS", "read_json_file", "parse_json_text", "json_depth"]

MiB = 1 << 20


class InvalidJsonLimits(NonidError):
    """A :class:`JsonLimits` field outside its documented safe range."""


@dataclass(frozen=True)
class JsonLimits:
    """How much JSON one read may hold.  Safe ranges (each checked in ``__post_init__``):

    * ``max_bytes`` — file size, 1 byte .. 1 GiB.  The largest certificate `nonid prove` writes is about
      62 KB and a whole appendix's ``certificates.json`` a few hundred KB; 16 MiB is 250 times that while
      keeping the parsed objects (up to ~20 bytes of Python objects per JSON byte) far below memory.
    * ``max_depth`` — nesting of arrays and objects, 1 .. 512 (Python's own parser recurses and stops
      near 1,000).  Certificates nest 7 deep today.
    * ``max_number_digits`` — characters of one number literal, 1 .. 4,000 (below Python's 4,300-digit
      limit on ``int``, so the typed refusal always comes first).  Certificates hold counts of at most a
      few digits; exact rationals are stored as strings.
    * ``max_string`` — characters of one string value, 1 .. 64 Mi.  The longest in a certificate today
      is a few hundred; exact rationals with large denominators stay well below 1 Mi.
    * ``max_key`` — characters of one object key, 1 .. 1 Mi.  Keys are field names or prefixes (at most
      a few hundred characters for the largest case).
    * ``allow_nonfinite`` — accept ``NaN``/``Infinity``/``-Infinity`` (and ``1e999``) as floats.  Only
      for files our own writer is known to emit them in (an experiment's ``result.json``, whose losses
      may diverge); never for certificates.
    """

    max_bytes: int = 16 * MiB
    max_depth: int = 64
    max_number_digits: int = 1000
    max_string: int = 1 * MiB
    max_key: int = 1024
    allow_nonfinite: bool = False

    def __post_init__(self) -> None:
        for name, top in (("max_bytes", 1 << 30), ("max_depth", 512), ("max_number_digits", 4000),
                          ("max_string", 64 * MiB), ("max_key", MiB)):
            check_int(getattr(self, name), f"JsonLimits.{name} =", minimum=1, maximum=top, error=InvalidJsonLimits)


CERTIFICATE_LIMITS = JsonLimits()
"""Certificates and appendix ``certificates.json`` files (16 MiB, depth 64)."""

SMALL_FILE_LIMITS = JsonLimits(max_bytes=1 * MiB)
"""Configs, manifests and timings: a counterexample's ``config.json`` is about 1.4 KB (1 MiB)."""

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = [1 if b in b"[{" else -1 if b in b"]}" else 0 for b in range(256)]


class _Refused(Exception):
    """Raised inside the parser's hooks and turned into the caller's error class with the file's name."""


def _count(n: int) -> str:
    return f"{n:,}"


def _size(n: int) -> str:
    return f"{n / MiB:g} MiB" if n >= MiB and n % MiB == 0 else f"{n:,} bytes"


def json_depth(raw: bytes) -> int:
    """The bracket nesting depth of JSON bytes, counted outside string literals, without recursion and
    in linear time.  Malformed input gives some number (the parser refuses such input anyway)."""
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKET)
    if len(brackets) <= 1 << 16:
        return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)
    import numpy as np  # a vectorised running sum for large inputs (a Python loop takes ~2 s on 16 MiB)

    steps = np.asarray(_STEP, dtype=np.int8)[np.frombuffer(brackets, dtype=np.uint8)]
    return int(np.cumsum(steps, dtype=np.int64).max())


def _check_text(s: str, limit: int, kind: str) -> None:
    if len(s) > limit:
        raise _Refused(f"a {kind} of {_count(len(s))} characters (limit {_count(limit)}): {s[:24]!r}…")
    if not s.isascii():
        try:
            s.encode("utf-8")
        except UnicodeEncodeError as e:
            raise _Refused(f"a {kind} holding the lone surrogate U+{ord(s[e.start]):04X} (not representable in UTF-8)") from None


def _hooks(limits: JsonLimits) -> dict[str, Any]:
    digits = limits.max_number_digits

    def parse_int(text: str) -> int:
        if len(text) > digits:
            raise _Refused(f"an integer of {_count(len(text.lstrip('-')))} digits (limit {_count(digits)}): {text[:12]}…")
        return int(text)

    def parse_float(text: str) -> float:
        if len(text) > digits:
            raise _Refused(f"a number literal of {_count(len(text))} characters (limit {_count(digits)}): {text[:12]}…")
        value = float(text)
        if not math.isfinite(value) and not limits.allow_nonfinite:
            raise _Refused(f"the number {text} overflows to {value} (JSON numbers must be finite)")
        return value

    def parse_constant(name: str) -> float:
        if not limits.allow_nonfinite:
            raise _Refused(f"{name} is not a JSON value")
        return float(name)

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            _check_text(key, limits.max_key, "key")
            if key in out:
                raise _Refused(f"the key {key[:60]!r} appears twice in one object")
            if isinstance(value, str):
                _check_text(value, limits.max_string, "string")
            out[key] = value
        return out

    return {"parse_int": parse_int, "parse_float": parse_float, "parse_constant": parse_constant, "object_pairs_hook": pairs}


def _check_array_strings(value: Any, limits: JsonLimits) -> None:
    """Strings inside arrays (object members are checked by the pairs hook), iteratively."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, list):
            for x in v:
                if isinstance(x, str):
                    _check_text(x, limits.max_string, "string")
                elif isinstance(x, (list, dict)):
                    stack.append(x)
        elif isinstance(v, dict):
            stack.extend(x for x in v.values() if isinstance(x, (list, dict)))


def parse_json_text(text: str | bytes, *, what: str, error: type[NonidError] = InvalidArtifact,
                    limits: JsonLimits = CERTIFICATE_LIMITS) -> Any:
    """Parse JSON text (``str``, or ``bytes`` that must be UTF-8) within ``limits``.

    ``what`` names the source in the message (a path, "certificate", "metadata of q1.safetensors").

    Raises:
        ``error`` (default InvalidArtifact): one line ``"{what}: …"`` naming the limit or the bad value —
        too long, not UTF-8, nested too deep, a number too long or not finite, NaN, a string or key too
        long or holding a lone surrogate, a repeated key, or not JSON at all.
    """
    try:
        if isinstance(text, str):
            raw = text.encode("utf-8", "surrogatepass")
            source = text
        else:
            raw = bytes(text)
            try:
                source = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise _Refused(f"not UTF-8 (byte 0x{raw[e.start]:02x} at offset {_count(e.start)})") from None
        if len(raw) > limits.max_bytes:
            raise _Refused(f"{_count(len(raw))} bytes, over the limit of {_size(limits.max_bytes)}")
        depth = json_depth(raw)
        if depth > limits.max_depth:
            raise _Refused(f"nested deeper than {limits.max_depth} levels of arrays and objects (limit {limits.max_depth})")
        import json

        try:
            value = json.loads(source, **_hooks(limits))
        except RecursionError:  # belt and braces: the pre-scan bounds the depth far below Python's limit
            raise _Refused(f"nested deeper than {limits.max_depth} levels of arrays and objects "
                           f"(limit {limits.max_depth})") from None
        except json.JSONDecodeError as e:
            raise _Refused(f"not JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
        if isinstance(value, str):
            _check_text(value, limits.max_string, "string")
        _check_array_strings(value, limits)
        return value
    except _Refused as e:
        raise error(f"{what}: {e}") from None


def read_json_file(path: str | os.PathLike[str], *, what: str | None = None, error: type[NonidError] = InvalidArtifact,
                   limits: JsonLimits = CERTIFICATE_LIMITS) -> Any:
    """Read and parse the JSON file ``path`` within ``limits`` (see :func:`parse_json_text`).

    The size is checked with ``os.stat`` before the file is opened, only regular files are read (a FIFO
    would block, a device never end), and at most ``limits.max_bytes + 1`` bytes are read.

    Raises:
        ``error`` (default InvalidArtifact): ``"{what}: missing"`` for a file that does not exist, or one
        line naming the limit or the bad value (``what`` defaults to the path).
    """
    p = Path(path)
    name = str(p) if what is None else what
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise error(f"{name}: missing") from None
    except (OSError, ValueError) as e:
        raise error(f"{name}: unreadable ({getattr(e, 'strerror', None) or e})") from None
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{name}: not a regular file")
    if st.st_size > limits.max_bytes:
        raise error(f"{name}: {_count(st.st_size)} bytes, over the limit of {_size(limits.max_bytes)}")
    try:
        with open(p, "rb") as f:
            raw = f.read(limits.max_bytes + 1)
    except OSError as e:
        raise error(f"{name}: unreadable ({e.strerror or e})") from None
    if len(raw) > limits.max_bytes:  # grew after the stat
        raise error(f"{name}: more than {_size(limits.max_bytes)}, over the limit")
    return parse_json_text(raw, what=name, error=error, limits=limits)
