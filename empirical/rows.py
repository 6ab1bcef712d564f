"""One run's result as a frozen record: :class:`RunRow` (a finished run) and :class:`UnfinishedRun`.

:func:`empirical.experiment.run_one` builds a :class:`RunRow`; its :meth:`RunRow.to_dict` is what
``result.json`` stores (under ``"row"``), key for key in the producer's order, values unchanged (so the
files are the same bytes as before the record).  The consumers — :mod:`empirical.report` (``results.csv``,
the Markdown report, the figure) and :mod:`empirical.certificate` — take records, never dicts; the
columns they show are named once, here (:attr:`RunRow.CSV_COLUMNS`, :attr:`RunRow.CERTIFICATE_COLUMNS`,
checked against :meth:`RunRow.columns` at import).  The one way back from a stored row is
:meth:`RunRow.from_dict`, which refuses a missing, unknown or mistyped key with
:class:`InvalidExperimentConfig` (:func:`empirical.certificate.load_rows` reads a run folder through it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Iterable, Mapping

from empirical.errors import InvalidExperimentConfig
from empirical.protocol import PROTOCOLS

RULE_METRICS = ("id_r1", "id_r2", "ood_r1", "ood_r2c")
"""The four rule metrics of a run (docs/theory.md §4), each stored at the best-validation evaluation (``id_r1``)
and as its maximum over checkpoints (``max_id_r1``), in the all-prompts denominator (an unfinished completion
fails); the finished-only denominator (the published tables') is stored beside them as ``id_r1_finished`` and
``max_id_r1_finished``."""
MAX_OVER_CHECKPOINTS = "max-over-checkpoints"
ALL_PROMPTS = "all-prompts"
FINISHED_ONLY = "finished-only"
DENOMINATORS = (ALL_PROMPTS, FINISHED_ONLY)
"""The two denominators of a rule metric (:class:`theory.properties.RuleMetrics`)."""
FINISHED_METRICS = tuple(f"{m}_finished" for m in RULE_METRICS)


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

    @property
    def certified(self) -> bool:
        """Finite, and from enclosures of the network's real function (not one float evaluation)."""
        return self.gap_rigorous is True and math.isfinite(self.gap_padded_hi)


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
    # the OOD prompts the adversarial/oracle term trained on (None for ml; empirical.protocol):
    regime_prompts: str | None = None  # "held-out" (none of them is an evaluated prompt) or "evaluated"
    regime_prompt_count: int | None = None  # how many
    regime_prompt_lengths: tuple[int, ...] | None = None  # their lengths
    # the reading of the paper (theory.conventions) and the finished-only denominator (issue 20):
    convention: str = "paper"
    prompts: str | None = None  # the evaluated prompt set (its description)
    id_finished: float | None = None  # fraction of ID prompts whose completion finished, at best validation
    ood_finished: float | None = None
    id_r1_finished: float | None = None
    id_r2_finished: float | None = None
    ood_r1_finished: float | None = None
    ood_r2c_finished: float | None = None
    max_id_r1_finished: float | None = None
    max_id_r2_finished: float | None = None
    max_ood_r1_finished: float | None = None
    max_ood_r2c_finished: float | None = None

    CSV_COLUMNS: ClassVar[tuple[str, ...]] = (
        "name", "language", "arch", "regime", "seed", "size", "steps_done", "wall_s", "params", "best_step",
        "test_loss_padded", "test_loss_token", "id_r1", "id_r2", "ood_r1", "ood_r2c",
        "min_test_loss_padded", "min_test_loss_token", "max_id_r1", "max_id_r2", "max_ood_r1", "max_ood_r2c",
        "entropy", "floor_padded", "floor_token", "gap_lo", "gap_hi", "gap_padded_lo", "gap_padded_hi",
        "gap_token_lo", "gap_token_hi", "gap_prefixes", "test_exact", "gap_note", "data", "gap_method",
        "regime_prompts", "regime_prompt_count", "convention", "id_finished", "ood_finished", "id_r1_finished",
        "id_r2_finished", "ood_r1_finished", "ood_r2c_finished", "max_id_r1_finished", "max_id_r2_finished",
        "max_ood_r1_finished", "max_ood_r2c_finished", "prompts")
    """The columns of ``results.csv``, in order: stored columns (:meth:`columns`) by name; a column a row
    does not store (a gap's on a row without one) is written empty.  Not in the CSV: ``finished``, ``steps``,
    ``aux_lengths``, ``step``, ``gap_rigorous`` and ``regime_prompt_lengths`` (``result.json`` keeps them).
    ``regime_prompts`` and ``regime_prompt_count``, then the convention and finished-only columns, came last, so
    the earlier columns did not move."""
    CERTIFICATE_COLUMNS: ClassVar[tuple[str, ...]] = (
        "name", "language", "arch", "regime", "seed", "size", "steps_done", "best_step", "params",
        "test_loss_padded", "test_loss_token", "id_r1", "id_r2", "ood_r1", "ood_r2c", "min_test_loss_padded",
        "max_id_r1", "max_ood_r1", "max_ood_r2c", "floor_padded", "floor_token", "gap_padded_lo", "gap_padded_hi",
        "gap_token_lo", "gap_token_hi", "gap_prefixes", "gap_note", "gap_rigorous", "data", "regime_prompts",
        "regime_prompt_count", "regime_prompt_lengths", "convention", "prompts", "id_finished", "ood_finished",
        "id_r1_finished", "id_r2_finished", "ood_r1_finished", "ood_r2c_finished", "max_ood_r1_finished")
    """The columns of a run in the experiment certificate's ``runs`` (those the row stores; the wall time
    goes to the certificate's timings, never hashed)."""

    @classmethod
    def columns(cls) -> tuple[str, ...]:
        """Every column a stored row can hold, in the producer's order: ``name``, ``finished``, the fields
        (:func:`dataclasses.fields`), the gap's (:class:`GapRecord`), ``gap_note``.  A row with a gap stores
        all but ``gap_note``; one without stores ``gap_lo`` = ``gap_hi`` = None and ``gap_note`` instead of
        the gap's."""
        return ("name", "finished", *_own_fields(), *(f.name for f in fields(GapRecord)), "gap_note")

    def __getitem__(self, column: str) -> Any:
        """A stored column by name (``row["gap_hi"]``), as :meth:`to_dict` holds it.

        Raises:
            KeyError: a column this row does not store.
        """
        return self.to_dict()[column]

    __iter__: ClassVar[None] = None  # columns by name only: not iterable (no fallback to row[0], row[1], …)

    @property
    def language_label(self) -> str:
        """The language as reports name it: ``L2``, or ``L2 (published)`` under another reading than the paper's."""
        return self.language if self.convention == "paper" else f"{self.language} ({self.convention})"

    def test_loss_padded_under(self, aggregation: str) -> float:
        """The test loss in nats per padded token under ``aggregation``: the best-validation one, or its
        minimum over checkpoints (``max-over-checkpoints``)."""
        return self.min_test_loss_padded if aggregation == MAX_OVER_CHECKPOINTS else self.test_loss_padded

    def metric(self, name: str, aggregation: str, denominator: str = ALL_PROMPTS) -> float | None:
        """A rule metric (:data:`RULE_METRICS`) under ``aggregation``: at the best-validation evaluation, or
        its maximum over checkpoints (``max-over-checkpoints``), divided by all prompts or by the finished
        completions only (:data:`DENOMINATORS`); None where it is undefined (or not stored: a row written
        before the finished-only columns).

        Raises:
            KeyError: not a rule metric or not a denominator.
        """
        if name not in RULE_METRICS or denominator not in DENOMINATORS:
            raise KeyError(name if name not in RULE_METRICS else denominator)
        key = name if denominator == ALL_PROMPTS else f"{name}_finished"
        value: float | None = getattr(self, f"max_{key}" if aggregation == MAX_OVER_CHECKPOINTS else key)
        return value

    def to_dict(self) -> dict[str, Any]:
        """The stored row: the producer's keys in its order (``finished`` is always True here)."""
        d: dict[str, Any] = {"name": self.name, "finished": True}
        for name in _own_fields():
            d[name] = getattr(self, name)
        for key in ("aux_lengths", "regime_prompt_lengths"):
            if getattr(self, key) is not None:
                d[key] = list(getattr(self, key))
        if self.gap is not None:
            d.update({f.name: getattr(self.gap, f.name) for f in fields(GapRecord)})
        else:
            d.update(gap_lo=None, gap_hi=None, gap_note=self.gap_note)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "run row") -> RunRow:
        """The record of a stored row.  A row written before the protocol columns (:data:`PROTOCOL_COLUMNS`)
        existed gets them from what that code trained on (:func:`_legacy_protocol`).

        Raises:
            InvalidExperimentConfig: not a mapping, a key missing or unknown, or a value of the wrong type.
        """
        if not isinstance(d, Mapping):
            raise InvalidExperimentConfig(f"{where}: a run row must be an object, not {type(d).__name__}")
        if not any(k in d for k in PROTOCOL_COLUMNS):  # a row of an earlier nonid: what its code trained on
            d = {**d, **_legacy_protocol(d)}
        if not any(k in d for k in CONVENTION_COLUMNS):  # before the conventions: the paper's reading, all prompts
            d = {**d, **dict.fromkeys(CONVENTION_COLUMNS), "convention": "paper"}
        has_gap = "gap_note" not in d
        expected = ["finished", "name", *_own_fields()]
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
        if d["convention"] not in ("paper", "published"):
            raise InvalidExperimentConfig(f"{where}: convention = {d['convention']!r} is not 'paper' or 'published'")
        if d["regime_prompts"] not in (None, *PROTOCOLS):
            raise InvalidExperimentConfig(f"{where}: regime_prompts = {d['regime_prompts']!r} is not one of "
                                          f"{', '.join(map(repr, PROTOCOLS))} or null")
        if has_gap:
            gap: GapRecord | None = GapRecord(**{f.name: d[f.name] for f in fields(GapRecord)})
            note = None
        else:
            if d["gap_lo"] is not None or d["gap_hi"] is not None:
                raise InvalidExperimentConfig(f"{where}: a row without a gap has gap_lo = gap_hi = null")
            gap, note = None, d["gap_note"]
        values = {name: d[name] for name in ("name", *_own_fields())}
        for key in ("aux_lengths", "regime_prompt_lengths"):
            if values[key] is not None:
                values[key] = tuple(values[key])
        return cls(**values, gap=gap, gap_note=note)


@dataclass(frozen=True)
class UnfinishedRun:
    """A run stopped before its last step (``stop_after``): no numbers yet."""

    name: str
    step: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "finished": False, "step": self.step}


PROTOCOL_COLUMNS = ("regime_prompts", "regime_prompt_count", "regime_prompt_lengths")
"""The columns that say which prompts the regime term trained on (issue 18); a row written before them has none."""
CONVENTION_COLUMNS = ("convention", "prompts", "id_finished", "ood_finished", *FINISHED_METRICS,
                      *(f"max_{m}" for m in FINISHED_METRICS))
"""The columns of the convention and the finished-only denominator (issue 20); a row written before them has
none, and was scored under the paper's reading in the all-prompts denominator."""


def _legacy_protocol(d: Mapping[str, Any]) -> dict[str, Any]:
    """The protocol columns of a row written before they existed, from what that code did: the regime term
    trained on every OOD word of ``aux_lengths`` (default: the evaluation length), evaluated prompts included —
    so the protocol is ``evaluated`` unless those lengths held the evaluated prompts out.  All None for ``ml``,
    or when the row's own columns are missing or malformed (then :meth:`RunRow.from_dict` refuses it for them)."""
    none = dict.fromkeys(PROTOCOL_COLUMNS)
    lengths = d.get("aux_lengths")
    if d.get("regime") in (None, "ml") or not isinstance(d.get("language"), str) or not (lengths is None or _is(lengths, "ints")):
        return none
    from empirical.protocol import regime_prompts
    from theory.errors import NonidError

    try:
        rp = regime_prompts(d["language"], tuple(lengths) if lengths else None, train_on_evaluated_prompts=True)
    except NonidError:
        return none
    return {"regime_prompts": rp.protocol, "regime_prompt_count": len(rp.prompts), "regime_prompt_lengths": list(rp.lengths)}


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
    "regime_prompts": "str?", "regime_prompt_count": "int?", "regime_prompt_lengths": "ints?",
    "convention": "str", "prompts": "str?", "id_finished": "float?", "ood_finished": "float?",
    **{k: "float?" for k in (*FINISHED_METRICS, *(f"max_{m}" for m in FINISHED_METRICS))},
}


def _own_fields() -> tuple[str, ...]:
    """The fields of :class:`RunRow` stored as columns of their own (all but ``name``, first, and the gap)."""
    return tuple(f.name for f in fields(RunRow) if f.name not in ("name", "gap", "gap_note"))


def finished_runs(rows: Iterable[RunRow | UnfinishedRun]) -> list[RunRow]:
    """The finished runs of ``rows``, in order (an :class:`UnfinishedRun` has no numbers yet).

    Raises:
        TypeError: an item that is not a record (a stored row is read back with :meth:`RunRow.from_dict`,
            a run folder with :func:`empirical.certificate.load_rows`).
    """
    out = []
    for r in rows:
        if isinstance(r, RunRow):
            out.append(r)
        elif not isinstance(r, UnfinishedRun):
            raise TypeError(f"a run row is a RunRow or an UnfinishedRun, not {type(r).__name__} "
                            "(read a stored row back with RunRow.from_dict)")
    return out


def _check_columns() -> None:
    """Every column a consumer names is a stored column, once (run at import: a typo fails loudly)."""
    for name, cols in (("CSV_COLUMNS", RunRow.CSV_COLUMNS), ("CERTIFICATE_COLUMNS", RunRow.CERTIFICATE_COLUMNS)):
        stray = [c for c in cols if c not in RunRow.columns()]
        if stray or len(set(cols)) != len(cols):
            raise AssertionError(f"RunRow.{name}: {', '.join(stray) or 'a repeated column'} is not a stored column once")


_check_columns()
