"""Certificates: the checked, JSON-serialisable record every claim in `nonid` rests on.

Status vocabulary (after α,β-CROWN): ``verified``, ``falsified``, ``unknown`` — the last two always
with a reason.  The canonical JSON (sorted keys, no timings) is deterministic: the same check on the
same input gives the same bytes, so certificates can be hashed, diffed and re-verified.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
from dataclasses import dataclass, field
from enum import Enum
from fractions import Fraction
from pathlib import Path
from typing import Any, Mapping

CERTIFICATE_FORMAT = 1
METHODS = ("exact", "smt", "bound", "exhaustive", "symbolic")


class Status(str, Enum):
    VERIFIED = "verified"
    FALSIFIED = "falsified"
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return self.value


def jsonable(value: Any) -> Any:
    """Convert exact values to JSON: objects with ``to_json()`` (LogCombination, FractionInterval,
    …), Fractions as {"exact": "p/q", "approx": float}, containers recursively."""
    if hasattr(value, "to_json"):
        return value.to_json()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, bool) or value is None or isinstance(value, (str, int, float)):
        return value
    if isinstance(value, Fraction):
        return {"exact": str(value), "approx": float(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [jsonable(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, (set, frozenset)) else items
    raise TypeError(f"cannot put {type(value).__name__} {value!r} into a certificate")


def library_versions(*names: str) -> dict[str, str]:
    """{"python": …, "nonid": …, name: version…} for the named libraries that are importable."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in ("nonid",) + names:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


@dataclass(frozen=True)
class Certificate:
    """One checked claim.

    Attributes:
        check: the registry name (``lemma-a``, ``prop-1-L3``…).
        claim: the statement checked, in one sentence.
        status: verified / falsified / unknown.
        method: how — one of ``exact``, ``smt``, ``bound``, ``exhaustive``, ``symbolic``.
        detail: a short summary for a table row.
        reason: why the status (required unless verified).
        quantities: the numbers, as exact JSON values (KLs, property values, counts…).
        assumptions: what the verdict takes for granted.
        versions: library versions that produced it.
        elapsed_s: wall time; not part of the canonical JSON.
        timings: named sub-timings in seconds (e.g. ``solver_seconds`` of an SMT proof); like
            ``elapsed_s`` they are reported with ``to_json(timings=True)`` and never hashed.
    """

    check: str
    claim: str
    status: Status
    method: str
    detail: str = ""
    reason: str = ""
    quantities: Mapping[str, Any] = field(default_factory=dict)
    assumptions: tuple[str, ...] = ()
    versions: Mapping[str, str] = field(default_factory=dict)
    elapsed_s: float | None = field(default=None, compare=False)
    timings: Mapping[str, float] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))
        if self.method not in METHODS:
            raise ValueError(f"certificate method {self.method!r} is not one of {METHODS}")
        if self.status is not Status.VERIFIED and not self.reason:
            raise ValueError(f"a {self.status} certificate needs a reason ({self.check!r})")
        object.__setattr__(self, "quantities", jsonable(dict(self.quantities)))
        object.__setattr__(self, "assumptions", tuple(self.assumptions))
        object.__setattr__(self, "timings", {str(k): round(float(v), 3) for k, v in dict(self.timings).items()})

    @property
    def verified(self) -> bool:
        return self.status is Status.VERIFIED

    def with_elapsed(self, seconds: float) -> "Certificate":
        from dataclasses import replace

        return replace(self, elapsed_s=seconds)

    def to_dict(self, timings: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {
            "format": CERTIFICATE_FORMAT,
            "check": self.check,
            "claim": self.claim,
            "status": self.status.value,
            "method": self.method,
            "detail": self.detail,
            "reason": self.reason,
            "quantities": self.quantities,
            "assumptions": list(self.assumptions),
            "versions": dict(self.versions),
        }
        if timings and self.elapsed_s is not None:
            d["elapsed_s"] = round(self.elapsed_s, 3)
        if timings and self.timings:
            d["timings"] = dict(self.timings)
        return d

    def to_json(self, timings: bool = False) -> str:
        """Canonical JSON: sorted keys, two-space indent, trailing newline; timings only if asked."""
        return json.dumps(self.to_dict(timings), sort_keys=True, indent=2, ensure_ascii=False) + "\n"

    def sha256(self) -> str:
        """SHA-256 of the canonical JSON (without timings)."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Certificate":
        """Rebuild from :meth:`to_dict`; raises ValueError for another format version or a bad field."""
        if d.get("format") != CERTIFICATE_FORMAT:
            raise ValueError(f"certificate format {d.get('format')!r} is not {CERTIFICATE_FORMAT}")
        try:
            return cls(
                check=d["check"], claim=d["claim"], status=Status(d["status"]), method=d["method"],
                detail=d.get("detail", ""), reason=d.get("reason", ""), quantities=d.get("quantities", {}),
                assumptions=tuple(d.get("assumptions", ())), versions=d.get("versions", {}),
                elapsed_s=d.get("elapsed_s"), timings=d.get("timings", {}),
            )
        except KeyError as e:
            raise ValueError(f"certificate is missing field {e.args[0]!r}") from None

    @classmethod
    def from_json(cls, text: str) -> "Certificate":
        return cls.from_dict(json.loads(text))


def write_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same folder and a rename, so a reader
    never sees a half-written file."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the mode open() would
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
