"""The rule-extrapolation experiment as a certificate: the runs' numbers, the published numbers beside
them, and a checked claim about the regimes.

:func:`experiment_certificate` takes the records (:class:`empirical.rows.RunRow`) of
:func:`empirical.experiment.run_grid` (or of an earlier run's folder, :func:`load_rows`) and states, for every (language, architecture) trained in all
three regimes (``ml``, ``adversarial``, ``oracle``): *the mean test losses are within ``tolerance`` of
one another (max/min − 1) and the mean OOD R1 accuracies differ by at least ``delta``* (max − min).
``verified`` only when that holds for every such pair and every run has a finite certified saturation
gap; ``falsified`` when the numbers contradict it; ``unknown`` (with the reason) when no pair was
trained in all three regimes or a gap could not be certified.  Wall times go to ``timings`` (never
hashed), so the certificate is the same bytes for the same runs.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any, Sequence

from empirical.errors import InvalidExperimentConfig
from empirical.reference_data import OOD_R1_CHANCE, published
from empirical.rows import RunRow, UnfinishedRun, finished_runs
from theory.certificate import Certificate, Status, library_versions
from theory.jsonio import JsonLimits, read_json_file

CHECK = "experiment-rule-extrapolation"
REGIMES = ("ml", "adversarial", "oracle")
RESULT_LIMITS = JsonLimits(allow_nonfinite=True)
"""Bounds of a run's ``result.json`` (:mod:`theory.jsonio`): those of a certificate, except that a diverged
loss may be stored as ``NaN`` or ``Infinity`` by the experiment's writer."""


def _num(x: Any, digits: int = 6) -> Any:
    """Floats to ``digits`` significant digits; non-finite floats to None (JSON has no infinity)."""
    if isinstance(x, bool) or not isinstance(x, float):
        return x
    if not math.isfinite(x):
        return None
    return float(f"{x:.{digits}g}")


def _published(language: str, arch: str, regime: str, aggregation: str) -> dict[str, Any] | None:
    model = "transformer" if arch.startswith("transformer") else "mamba" if arch == "ssm" else arch
    rows = published(language, model, regime)
    if not rows:
        return None
    pub = ([r for r in rows if r.aggregation == aggregation] or rows)[0]
    return {"source": pub.source, "runs": pub.runs, "aggregation": pub.aggregation,
            **{k: list(v) for k, v in sorted(pub.values.items()) if v[0] is not None}}


def _mean_std(values: Sequence[float | None]) -> list[float] | None:
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return [_num(statistics.fmean(vals)), _num(statistics.stdev(vals) if len(vals) > 1 else 0.0)]


def load_rows(directory: str | Path) -> list[RunRow]:
    """The runs of an earlier ``nonid experiment`` run: every ``*/result.json`` under ``directory``, read
    back as a :class:`empirical.rows.RunRow` (:meth:`~empirical.rows.RunRow.from_dict`) — the one place
    where stored rows become records.

    Raises:
        InvalidExperimentConfig: no such folder, no finished run in it, an unreadable result file, or a row
            that is not a :class:`empirical.rows.RunRow` (a key missing, unknown or mistyped).
    """
    d = Path(directory)
    if not d.is_dir():
        raise InvalidExperimentConfig(f"{d}: no such experiment folder")
    rows: list[RunRow] = []
    for path in sorted(d.glob("*/result.json")):
        doc = read_json_file(path, error=InvalidExperimentConfig, limits=RESULT_LIMITS)
        row = doc.get("row") if isinstance(doc, dict) else None
        if not isinstance(row, dict) or not {"language", "arch", "regime", "seed"} <= set(row):
            raise InvalidExperimentConfig(f"{path}: not a result file of `nonid experiment` (no run row)")
        rows.append(RunRow.from_dict(row, where=str(path)))
    if not rows:
        raise InvalidExperimentConfig(f"{d}: holds no */result.json (run `nonid experiment rule-extrapolation --out {d}` first)")
    return rows


def experiment_certificate(rows: Sequence[RunRow | UnfinishedRun], *, aggregation: str = "best-validation",
                           tolerance: float = 0.10, delta: float = 0.5, command: str = "") -> Certificate:
    """The certificate of a set of runs (module docstring).  ``command`` is recorded as how they were made.

    Raises:
        TypeError: an item of ``rows`` that is not a record (:func:`empirical.rows.finished_runs`).
    """
    order = {r: i for i, r in enumerate(REGIMES)}
    finished = sorted(finished_runs(rows), key=lambda r: (r.language, r.arch, order.get(r.regime, 9), r.regime, r.seed))
    runs: list[dict[str, Any]] = []
    for r in finished:
        stored = r.to_dict()
        run = {k: _num(stored[k]) for k in RunRow.CERTIFICATE_COLUMNS if k in stored}
        run["gap_certified"] = r.gap is not None and r.gap.certified
        runs.append(run)
    groups: dict[tuple[str, str, str], list[RunRow]] = {}
    for r in finished:
        groups.setdefault((r.language, r.arch, r.regime), []).append(r)
    group_q = []
    for (lang, arch, regime), rs in groups.items():
        his = [r.gap.gap_padded_hi for r in rs if r.gap is not None]
        first_gap = rs[0].gap
        group_q.append({
            "language": lang, "arch": arch, "regime": regime, "runs": len(rs),
            "test_loss_padded": _mean_std([r.test_loss_padded_under(aggregation) for r in rs]),
            "floor_padded": _num(first_gap.floor_padded if first_gap is not None else None),
            "gap_padded_max": _num(max(his, default=None)),
            **{m: _mean_std([r.metric(m, aggregation) for r in rs]) for m in ("id_r1", "ood_r1", "ood_r2c")},
            "published": _published(lang, arch, regime, aggregation),
        })
    comparisons: list[dict[str, Any]] = []
    broken: list[str] = []
    for lang, arch in dict.fromkeys((k[0], k[1]) for k in groups):
        have = {g: groups.get((lang, arch, g), []) for g in REGIMES}
        if not all(have.values()):
            continue
        loss = {g: statistics.fmean(x.test_loss_padded_under(aggregation) for x in rs) for g, rs in have.items()}
        ood = {g: statistics.fmean(x.metric("ood_r1", aggregation) or 0.0 for x in rs) for g, rs in have.items()}
        spread = max(loss.values()) / min(loss.values()) - 1
        ood_range = max(ood.values()) - min(ood.values())
        ok_loss, ok_ood = spread <= tolerance, ood_range >= delta
        comparisons.append({"language": lang, "arch": arch, "test_loss_padded": {g: _num(v) for g, v in loss.items()},
                            "loss_spread": _num(spread), "ood_r1": {g: _num(v) for g, v in ood.items()},
                            "ood_r1_range": _num(ood_range), "losses_within_tolerance": ok_loss, "ood_r1_differs": ok_ood})
        if not ok_loss:
            broken.append(f"{lang} {arch}: test losses spread {100 * spread:.1f} % > {100 * tolerance:g} %")
        if not ok_ood:
            broken.append(f"{lang} {arch}: OOD R1 range {ood_range:.3f} < {delta:g}")
    uncertified = [r["name"] for r in runs if not r["gap_certified"]]
    if broken:
        status, reason = Status.FALSIFIED, "; ".join(broken)
    elif not comparisons:
        status, reason = Status.UNKNOWN, "no (language, architecture) was trained in all three regimes (ml, adversarial, oracle)"
    elif uncertified:
        status, reason = Status.UNKNOWN, f"no finite certified saturation gap for {', '.join(uncertified)}"
    else:
        status, reason = Status.VERIFIED, ""
    pairs = ", ".join(f"{c['language']} {c['arch']}" for c in comparisons) or "none"
    detail = "; ".join(f"{c['language']} {c['arch']}: loss spread {100 * c['loss_spread']:.1f} %, OOD R1 "
                       + " / ".join(f"{c['ood_r1'][g]:.2f}" for g in REGIMES) for c in comparisons) or f"{len(runs)} runs"
    langs = sorted({r.language for r in finished})
    return Certificate(
        check=CHECK,
        claim=(f"Trained in the three regimes (ml, adversarial, oracle), each (language, architecture) [{pairs}] reaches "
               f"mean test losses within {100 * tolerance:g} % of one another while its mean OOD R1 accuracies differ "
               f"by >= {delta:g}; every run's saturation gap KL(P || Q) is certified finite."),
        status=status, method="bound", detail=detail, reason=reason,
        quantities={"aggregation": aggregation, "tolerance": tolerance, "delta": delta, "runs": runs,
                    "groups": group_q, "comparisons": comparisons, "command": command,
                    "ood_r1_chance": {lang: OOD_R1_CHANCE[lang] for lang in langs if lang in OOD_R1_CHANCE}},
        assumptions=("test losses and rule metrics are float64 evaluations of the trained networks (greedy completions, "
                     "scored on finished ones); the saturation gap is a rigorous interval over every support prefix "
                     "with the network's float64 softmax read as exact (empirical.saturation)",
                     "published numbers: empirical/reference (arXiv 2405.01964, arXiv 2409.13728), their own data sizes "
                     "and aggregation; compare gaps and rule metrics, not raw losses"),
        versions=library_versions("torch"),
        timings={f"wall_s_{r.name}": float(r.wall_s) for r in finished},
    )
