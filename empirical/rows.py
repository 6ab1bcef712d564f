"""One run's result as a frozen record: :class:`RunRow` (a finished run) and :class:`UnfinishedRun`.

:func:`empirical.experiment.run_one` builds a :class:`RunRow`; its :meth:`RunRow.to_dict` is what
``result.json`` stores (under ``"row"``) and what ``results.csv`` and the report read, key for key in
the producer's order, values unchanged (so the files are the same bytes as before the record).
:meth:`RunRow.from_dict` reads a stored row back and refuses a missing, unknown or mistyped key
with :class:`InvalidExperimentConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Iterable, Mapping

from empirical.errors import InvalidExperimentConfig


@dataclass(frozen=True)
class GapRecord:
    """The certified saturation gap of a run (:class:`empirical.saturation.SaturationGap`): KL bounds
    per sequence, padded and per token, the entropy floors, and how they were obtained."""

    gap_lo: float
    gap_hi: float
    gap_padded_lo: float
    gap_padded_hi: float
    gap_token_lo: float
    gap_token_hi: float
    floor_padded: float
    floor_token: float
    entropy: float
    gap_prefixes: int
    gap_method: str
    gap_rigorous: bool


@dataclass(frozen=True)
class RunRow:
    """A finished run: its spec, training facts, the ``best-validation`` numbers, the
    ``max-over-checkpoints`` ones (``min_``/``max_``), and the gap (or why there is none)."""

    name: str
    language: str
    arch: str
    regime: str
    seed: int
    size: str
    steps: int | None
    aux_lengths: tuple[int, ...] | None
    steps_done: int
    wall_s: float
    best_step: int
    params: int
    test_exact: bool
    data: str
    step: int | None  # the best-validation evaluation's step
    test_loss_padded: float
    test_loss_token: float
    id_r1: float | None
    id_r2: float | None
    ood_r1: float | None
    ood_r2c: float | None
    min_test_loss_padded: float
    min_test_loss_token: float
    max_id_r1: float | None
    max_id_r2: float | None
    max_ood_r1: float | None
    max_ood_r2c: float | None
    gap: GapRecord | None
    gap_note: str | None = None  # why there is no gap (only when ``gap`` is None)

    def to_dict(self) -> dict[str, Any]:
        """The stored row: the producer's keys in its order (``finished`` is always True here)."""
        d: dict[str, Any] = {"name": self.name, "finished": True}
        for f in fields(self):
            if f.name in ("name", "gap", "gap_note"):
                continue
            d[f.name] = getattr(self, f.name)
        if self.aux_lengths is not None:
            d["aux_lengths"] = list(self.aux_lengths)
        if self.gap is not None:
            d.update({f.name: getattr(self.gap, f.name) for f in fields(GapRecord)})
        else:
            d.update(gap_lo=None, gap_hi=None, gap_note=self.gap_note)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "run row") -> RunRow:
        """The record of a stored row.

        Raises:
            InvalidExperimentConfig: not a mapping, a key missing or unknown, or a value of the wrong type.
        """
        if not isinstance(d, Mapping):
            raise InvalidExperimentConfig(f"{where}: a run row must be an object, not {type(d).__name__}")
        has_gap = "gap_note" not in d
        expected = ["finished", *(f.name for f in fields(cls) if f.name not in ("gap", "gap_note"))]
        expected += [f.name for f in fields(GapRecord)] if has_gap else ["gap_lo", "gap_hi", "gap_note"]
        missing = [k for k in expected if k not in d]
        unknown = [k for k in d if k not in expected]
        if missing or unknown:
            parts = ([f"missing {', '.join(missing)}"] if missing else []) + ([f"unknown {', '.join(map(str, unknown))}"] if unknown else [])
            raise InvalidExperimentConfig(f"{where}: not a finished run row ({'; '.join(parts)})")
        if d["finished"] is not True:
            raise InvalidExperimentConfig(f"{where}: finished must be true, not {d['finished']!r}")
        for key, kind in _TYPES.items():
            if key in d and not _is(d[key], kind):
                raise InvalidExperimentConfig(f"{where}: {key} = {d[key]!r} is not {kind}")
        if has_gap:
            gap: GapRecord | None = GapRecord(**{f.name: d[f.name] for f in fields(GapRecord)})
            note = None
        else:
            if d["gap_lo"] is not None or d["gap_hi"] is not None:
                raise InvalidExperimentConfig(f"{where}: a row without a gap has gap_lo = gap_hi = null")
            gap, note = None, d["gap_note"]
        values = {f.name: d[f.name] for f in fields(cls) if f.name not in ("gap", "gap_note")}
        if values["aux_lengths"] is not None:
            values["aux_lengths"] = tuple(values["aux_lengths"])
        return cls(**values, gap=gap, gap_note=note)


@dataclass(frozen=True)
class UnfinishedRun:
    """A run stopped before its last step (``stop_after``): no numbers yet."""

    name: str
    step: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "finished": False, "step": self.step}


def _is(value: Any, kind: str) -> bool:
    optional = kind.endswith("?")
    kind = kind.rstrip("?")
    if value is None:
        return optional
    if kind == "str":
        return isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":  # json may store an integral float as an int; NaN and infinities are floats
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "ints":
        return isinstance(value, list) and all(_is(v, "int") for v in value)
    raise AssertionError(kind)


_TYPES = {
    "name": "str", "language": "str", "arch": "str", "regime": "str", "seed": "int", "size": "str", "steps": "int?",
    "aux_lengths": "ints?", "steps_done": "int", "wall_s": "float", "best_step": "int", "params": "int",
    "test_exact": "bool", "data": "str", "step": "int?", "test_loss_padded": "float", "test_loss_token": "float",
    "id_r1": "float?", "id_r2": "float?", "ood_r1": "float?", "ood_r2c": "float?", "min_test_loss_padded": "float",
    "min_test_loss_token": "float", "max_id_r1": "float?", "max_id_r2": "float?", "max_ood_r1": "float?",
    "max_ood_r2c": "float?", "gap_lo": "float?", "gap_hi": "float?", "gap_padded_lo": "float", "gap_padded_hi": "float",
    "gap_token_lo": "float", "gap_token_hi": "float", "floor_padded": "float", "floor_token": "float", "entropy": "float",
    "gap_prefixes": "int", "gap_method": "str", "gap_rigorous": "bool", "gap_note": "str",
}


def row_dicts(rows: Iterable[RunRow | UnfinishedRun | Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows as the dicts the report and the certificate read: records by their ``to_dict()``, stored
    or hand-made dicts as they are (so a consumer takes either)."""
    return [r.to_dict() if isinstance(r, (RunRow, UnfinishedRun)) else dict(r) for r in rows]
