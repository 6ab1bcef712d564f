"""Read-back is not re-checking: what ``nonid appendix --from`` does with saved certificates.

A saved certificate is a file anyone can edit (and re-hash).  :func:`recheck` therefore re-runs every
saved certificate whose re-run is cheap and compares the two:

* a proof check of ``nonid prove`` (:mod:`proofs`, looked up by its check name), the z3 series
  ``z3-lemmas-by-horizon`` (re-run at its recorded horizons, each in 1..14) and the fine-tuning series
  ``finetuning-gap-vs-alpha`` (at its recorded alphas) — seconds each;
* the comparison is exact: the canonical JSON (:meth:`~theory.certificate.Certificate.to_dict`, every
  field — check, claim, status, method, detail, reason, quantities, assumptions, versions — but not the
  timings) of the saved certificate must equal the re-run's.  Agreement gives :data:`RECHECKED` (the
  saved certificate, with its saved timings, is kept: it is the same bytes); a difference gives
  :data:`RERUN` — the re-run replaces the saved one in the appendix, and :func:`first_difference` names
  the first field that differs;
* what cannot be re-run here — the trained experiment, the compiled model pair (re-verify it with
  ``nonid check``), a check this version does not know — stays :data:`READ_BACK`, "read back, not
  re-checked", and says so in every output.

The command exits 0 only when every entry is verified and re-checked.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Any, Callable, Sequence

from nonid.appendix.sources import ALPHA_CHECK, NAME_WIDTH, READ_BACK, RECHECKED, RERUN, Z3_CHECK, Entry, alpha_entry, proof_entry, z3_entry
from proofs.cli import format_row
from theory.certificate import Certificate

MAX_SERIES = 32
"""At most this many horizons or alphas are re-run from a saved series (the appendix writes five)."""

_ORDER = ("check", "status", "claim", "method", "detail", "reason", "quantities", "assumptions", "versions", "format")


def _short(value: Any, limit: int = 48) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _first(path: str, a: Any, b: Any) -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            where = f"{path}.{k}" if path else str(k)
            if k not in a:
                return f"{where}: not in the saved certificate, re-run {_short(b[k])}"
            if k not in b:
                return f"{where}: saved {_short(a[k])}, not in the re-run"
            found = _first(where, a[k], b[k])
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        for i, (x, y) in enumerate(zip(a, b)):
            found = _first(f"{path}[{i}]", x, y)
            if found:
                return found
        if len(a) != len(b):
            return f"{path}: saved {len(a)} items, re-run {len(b)}"
        return None
    if type(a) is not type(b) or a != b:  # 1 and 1.0, True and 1 differ in the canonical JSON too
        return f"{path}: saved {_short(a)}, re-run {_short(b)}"
    return None


def first_difference(saved: Certificate, fresh: Certificate) -> str | None:
    """The first field (in the order check, status, claim, method, detail, reason, quantities, assumptions,
    versions) where the canonical JSON of ``saved`` and ``fresh`` differ, as ``"field.path: saved X,
    re-run Y"``; ``None`` when they are the same bytes (timings are never compared)."""
    a, b = saved.to_dict(), fresh.to_dict()
    for key in _ORDER + tuple(sorted((set(a) | set(b)) - set(_ORDER))):
        found = _first(key, a.get(key), b.get(key))
        if found:
            return found
    return None


def _series(values: Any, kind: str) -> tuple | None:
    """A saved z3 horizon list or alpha list, if it can be re-run as it stands; else ``None``."""
    if not isinstance(values, list) or not 1 <= len(values) <= MAX_SERIES:
        return None
    if kind == "horizons":
        ok = all(isinstance(h, int) and not isinstance(h, bool) and 1 <= h <= 14 for h in values)
    else:
        ok = all(isinstance(a, float) and math.isfinite(a) and 0 < a <= 1e6 for a in values)
    return tuple(values) if ok else None


def _rerun(entry: Entry, registry: dict[str, Any]) -> Entry | None:
    """The entry recomputed here, or ``None`` when it cannot be re-run (kept as read back)."""
    c = entry.certificate
    if c.check in registry:
        return proof_entry(registry[c.check])
    q = c.quantities
    if c.check == Z3_CHECK:
        horizons = _series(q.get("horizons"), "horizons")
        lemmas = q.get("lemmas")
        if horizons is None or not isinstance(lemmas, list) or not lemmas or not set(lemmas) <= {"A", "B", "C"} \
                or len(set(lemmas)) != len(lemmas):
            return None
        return z3_entry(horizons, "".join(x.lower() for x in lemmas))
    if c.check == ALPHA_CHECK:
        alphas = _series(q.get("alphas"), "alphas")
        return None if alphas is None else alpha_entry(alphas)
    return None


def recheck(entries: Sequence[Entry], echo: Callable[[str], None] = lambda _m: None) -> list[Entry]:
    """Re-run every entry that can be re-run (module docstring) and return the entries in the same order:
    :data:`RECHECKED` (the saved certificate, which equals its re-run), :data:`RERUN` (the re-run, with a
    ``note`` naming the first difference), or :data:`READ_BACK` (unchanged).  ``echo`` gets one line per entry."""
    import proofs

    registry = {c.name: c for c in proofs.discover()}
    out: list[Entry] = []
    for entry in entries:
        saved = entry.certificate
        t = time.perf_counter()
        fresh = _rerun(entry, registry)
        seconds = time.perf_counter() - t
        if fresh is None:
            new = replace(entry, provenance=READ_BACK, note="")
            what = READ_BACK
        else:
            diff = first_difference(saved, fresh.certificate)
            if diff is None:
                new = replace(fresh, certificate=saved, provenance=RECHECKED, note="")
                what = "re-checked: the saved certificate agrees with its re-run"
            else:
                note = f"the saved certificate disagreed with this re-run at {diff}; shown is the re-run"
                new = replace(fresh, provenance=RERUN, note=note)
                what = f"DISAGREES with its re-run at {diff}"
        c = new.certificate
        echo(format_row(c.check, c, NAME_WIDTH, seconds=seconds, detail=what))
        out.append(new)
    return out
