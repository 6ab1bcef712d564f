"""Certificates: the checked, JSON-serialisable record every claim in `nonid` rests on.

Status vocabulary (after α,β-CROWN): ``verified``, ``falsified``, ``unknown`` — the last two always
with a reason.  The canonical JSON (sorted keys, no timings) is deterministic: the same check on the
same input gives the same bytes, so certificates can be hashed, diffed and re-verified.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
from dataclasses import dataclass, field
from enum import Enum
from fractions import Fraction
from typing import Any, Iterable, Mapping

from theory.errors import InvalidCertificate

# the file writers moved to theory.fileio; their old home keeps the names the README documents
from theory.fileio import output_dir_problem as output_dir_problem
from theory.fileio import replace_directory as replace_directory
from theory.fileio import write_atomic as write_atomic

CERTIFICATE_FORMAT = 1
METHODS = ("exact", "smt", "bound", "exhaustive", "symbolic", "proof")


class Status(str, Enum):
    VERIFIED = "verified"
    FALSIFIED = "falsified"
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return self.value


def status_counts(statuses: Iterable[object]) -> dict[str, int]:
    """{"verified": n, "falsified": n, "unknown": n} over ``statuses`` (Status values, their strings, or
    anything with a ``.status`` or ``.certificate.status``), in that order."""
    counts = {s.value: 0 for s in Status}
    for x in statuses:
        x = getattr(getattr(x, "certificate", x), "status", x)
        counts[str(getattr(x, "value", x))] += 1
    return counts


def jsonable(value: Any) -> Any:
    """Convert exact values to JSON: objects with ``to_json()`` (LogCombination, FractionInterval,
    …), Fractions as {"exact": "p/q", "approx": float}, containers recursively."""
    if hasattr(value, "to_json"):
        return value.to_json()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, float) and not math.isfinite(value):
        # JSON has no infinity, and the bounded reader refuses NaN/Infinity: write them as text
        return "nan" if value != value else ("inf" if value > 0 else "-inf")
    if isinstance(value, bool) or value is None or isinstance(value, (str, int, float)):
        return value
    if isinstance(value, Fraction):
        try:
            approx: float | str = float(value)
        except OverflowError:  # beyond float range: the exact string is what counts
            approx = "inf" if value > 0 else "-inf"
        return {"exact": str(value), "approx": approx}
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
        for name in ("check", "claim", "method", "detail", "reason"):
            if not isinstance(getattr(self, name), str):
                raise InvalidCertificate(f"certificate field {name} = {getattr(self, name)!r} is not a string")
        try:
            object.__setattr__(self, "status", Status(self.status))
        except ValueError:
            raise InvalidCertificate(f"certificate status {self.status!r} is not one of "
                                     f"{tuple(s.value for s in Status)}") from None
        if self.method not in METHODS:
            raise InvalidCertificate(f"certificate method {self.method!r} is not one of {METHODS}")
        if self.status is not Status.VERIFIED and not self.reason:
            raise InvalidCertificate(f"a {self.status} certificate needs a reason ({self.check!r})")
        if not isinstance(self.quantities, Mapping):
            raise InvalidCertificate(f"certificate quantities {self.quantities!r} are not a mapping")
        try:
            object.__setattr__(self, "quantities", jsonable(dict(self.quantities)))
        except TypeError as e:
            raise InvalidCertificate(f"certificate quantities: {e}") from None
        if isinstance(self.assumptions, (str, bytes, Mapping)) or not isinstance(self.assumptions, Iterable):
            raise InvalidCertificate(f"certificate assumptions {self.assumptions!r} are not a list of strings")
        object.__setattr__(self, "assumptions", tuple(self.assumptions))
        if not all(isinstance(a, str) for a in self.assumptions):
            raise InvalidCertificate(f"certificate assumptions {self.assumptions!r} are not a list of strings")
        if not isinstance(self.versions, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in self.versions.items()):
            raise InvalidCertificate(f"certificate versions {self.versions!r} are not a mapping of names to strings")
        if self.elapsed_s is not None and not _finite_number(self.elapsed_s):
            raise InvalidCertificate(f"certificate elapsed_s {self.elapsed_s!r} is not a finite number")
        if not isinstance(self.timings, Mapping) or not all(_finite_number(v) for v in self.timings.values()):
            raise InvalidCertificate(f"certificate timings {self.timings!r} are not a mapping of names to seconds")
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
        """Rebuild from :meth:`to_dict`; raises InvalidCertificate (a ValueError) for another format
        version, a missing field or a bad one."""
        if not isinstance(d, Mapping):
            raise InvalidCertificate(f"certificate {_short(d)} is not a JSON object")
        if d.get("format") != CERTIFICATE_FORMAT:
            raise InvalidCertificate(f"certificate format {_short(d.get('format'))} is not {CERTIFICATE_FORMAT}")
        try:
            return cls(
                check=d["check"], claim=d["claim"], status=d["status"], method=d["method"],
                detail=d.get("detail", ""), reason=d.get("reason", ""), quantities=d.get("quantities", {}),
                assumptions=d.get("assumptions", ()), versions=d.get("versions", {}),
                elapsed_s=d.get("elapsed_s"), timings=d.get("timings", {}),
            )
        except KeyError as e:
            raise InvalidCertificate(f"certificate is missing field {e.args[0]!r}") from None

    @classmethod
    def from_json(cls, text: str | bytes, what: str = "certificate") -> "Certificate":
        """Parse :meth:`to_json`'s output within :data:`theory.jsonio.CERTIFICATE_LIMITS` (size, depth,
        number, string and key lengths; no NaN, no repeated key); ``what`` names the source in messages.

        Raises:
            InvalidCertificate: text that is not bounded JSON (one line naming the limit or the value), or
                not a certificate.
        """
        from theory.jsonio import CERTIFICATE_LIMITS, parse_json_text

        if not isinstance(text, (str, bytes, bytearray)):
            raise InvalidCertificate(f"{what}: {type(text).__name__} is not JSON text")
        return cls.from_dict(parse_json_text(text, what=what, error=InvalidCertificate, limits=CERTIFICATE_LIMITS))


def _finite_number(x: object) -> bool:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return False
    try:
        return math.isfinite(float(x))
    except OverflowError:  # an int beyond float range is no number of seconds
        return False


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"
