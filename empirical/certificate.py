"""The rule-extrapolation experiment as a certificate: the runs' numbers, the published numbers beside
them, and a checked claim about the regimes.

:func:`experiment_certificate` takes the rows of :func:`empirical.experiment.run_grid` (or of an
earlier run's folder, :func:`load_rows`) and states, for every (language, architecture) trained in all
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
from empirical.rows import RunRow, row_dicts
from theory.certificate import Certificate, Status, library_versions
from theory.jsonio import JsonLimits, read_json_file

CHECK = "experiment-rule-extrapolation"
REGIMES = ("ml", "adversarial", "oracle")
RESULT_LIMITS = JsonLimits(allow_nonfinite=True)
"""Bounds of a run's ``result.json`` (:mod:`theory.jsonio`): those of a certificate, except that a diverged
loss may be stored as ``NaN`` or ``Infinity`` by the experiment's writer."""
RUN_FIELDS = ("name", "language", "arch", "regime", "seed", "size", "steps_done", "best_step", "params",
              "test_loss_padded", "test_loss_token", "id_r1", "id_r2", "ood_r1", "ood_r2c", "min_test_loss_padded",
              "max_id_r1", "max_ood_r1", "max_ood_r2c", "floor_padded", "gap_padded_lo", "gap_padded_hi",
              "gap_prefixes", "gap_note", "gap_rigorous", "data")


def _num(x: Any, digits: int = 6) -> Any:
    """Floats to ``digits`` significant digits; non-finite floats to None (JSON has no infinity)."""
    if isinstance(x, bool) or not isinstance(x, float):
        return x
    if not math.isfinite(x):
        return None
    return float(f"{x:.{digits}g}")


def _pick(row: dict, key: str, aggregation: str) -> Any:
    if aggregation == "max-over-checkpoints":
        key = f"min_{key}" if key.startswith("test_loss") else f"max_{key}"
    return row.get(key)


def _published(language: str, arch: str, regime: str, aggregation: str) -> dict | None:
    model = "transformer" if arch.startswith("transformer") else "mamba" if arch == "ssm" else arch
    rows = published(language, model, regime)
    if not rows:
        return None
    pub = ([r for r in rows if r.aggregation == aggregation] or rows)[0]
    return {"source": pub.source, "runs": pub.runs, "aggregation": pub.aggregation,
            **{k: list(v) for k, v in sorted(pub.values.items()) if v[0] is not None}}


def _mean_std(vals: list[Any]) -> list[float] | None:
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    return [_num(statistics.fmean(vals)), _num(statistics.stdev(vals) if len(vals) > 1 else 0.0)]


def load_rows(directory: str | Path) -> list[dict]:
    """The rows of an earlier ``nonid experiment`` run: every ``*/result.json`` under ``directory``, each
    checked by :meth:`empirical.rows.RunRow.from_dict` and returned as its ``to_dict()``.

    Raises:
        InvalidExperimentConfig: no such folder, no finished run in it, an unreadable result file, or a row
            that is not a :class:`empirical.rows.RunRow` (a key missing, unknown or mistyped).
    """
    d = Path(directory)
    if not d.is_dir():
        raise InvalidExperimentConfig(f"{d}: no such experiment folder")
    rows = []
    for path in sorted(d.glob("*/result.json")):
        doc = read_json_file(path, error=InvalidExperimentConfig, limits=RESULT_LIMITS)
        row = doc.get("row") if isinstance(doc, dict) else None
        if not isinstance(row, dict) or not {"language", "arch", "regime", "seed"} <= set(row):
            raise InvalidExperimentConfig(f"{path}: not a result file of `nonid experiment` (no run row)")
        rows.append(RunRow.from_dict(row, where=str(path)).to_dict())
    if not rows:
        raise InvalidExperimentConfig(f"{d}: holds no */result.json (run `nonid experiment rule-extrapolation --out {d}` first)")
    return rows


def experiment_certificate(rows: Sequence[RunRow | dict], *, aggregation: str = "best-validation", tolerance: float = 0.10,
                           delta: float = 0.5, command: str = "") -> Certificate:
    """The certificate of a set of runs (module docstring).  ``command`` is recorded as how they were made."""
    finished = [r for r in row_dicts(rows) if r.get("finished", True)]
    order = {r: i for i, r in enumerate(REGIMES)}
    finished = sorted(finished, key=lambda r: (r["language"], r["arch"], order.get(r["regime"], 9), r["regime"], r["seed"]))
    runs = []
    for r in finished:
        run = {k: _num(r.get(k)) for k in RUN_FIELDS if k in r}
        hi = r.get("gap_padded_hi")
        # certified: finite, and from enclosures of the network's real function (not one float evaluation)
        run["gap_certified"] = (hi is not None and isinstance(hi, (int, float)) and math.isfinite(hi)
                                and r.get("gap_rigorous") is True)
        runs.append(run)
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for r in finished:
        groups.setdefault((r["language"], r["arch"], r["regime"]), []).append(r)
    group_q = []
    for (lang, arch, regime), rs in groups.items():
        group_q.append({
            "language": lang, "arch": arch, "regime": regime, "runs": len(rs),
            "test_loss_padded": _mean_std([_pick(r, "test_loss_padded", aggregation) for r in rs]),
            "floor_padded": _num(rs[0].get("floor_padded")),
            "gap_padded_max": _num(max((r.get("gap_padded_hi") for r in rs if r.get("gap_padded_hi") is not None), default=None)),
            **{m: _mean_std([_pick(r, m, aggregation) for r in rs]) for m in ("id_r1", "ood_r1", "ood_r2c")},
            "published": _published(lang, arch, regime, aggregation),
        })
    comparisons, broken = [], []
    for lang, arch in dict.fromkeys((k[0], k[1]) for k in groups):
        have = {g: groups.get((lang, arch, g)) for g in REGIMES}
        if not all(have.values()):
            continue
        loss = {g: statistics.fmean(_pick(x, "test_loss_padded", aggregation) for x in rs) for g, rs in have.items()}
        ood = {g: statistics.fmean(_pick(x, "ood_r1", aggregation) or 0.0 for x in rs) for g, rs in have.items()}
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
    langs = sorted({r["language"] for r in finished})
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
        timings={f"wall_s_{r['name']}": float(r["wall_s"]) for r in finished if isinstance(r.get("wall_s"), (int, float))},
    )
