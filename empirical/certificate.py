"""The rule-extrapolation experiment as a certificate: the runs' numbers, the published numbers beside
them, and a checked claim about the regimes.

:func:`experiment_certificate` takes the records (:class:`empirical.rows.RunRow`) of
:func:`empirical.experiment.run_grid` (or of an earlier run's folder, :func:`load_rows`) and states, for
every (language, architecture) trained in all three regimes (``ml``, ``adversarial``, ``oracle``) with at
least :data:`~empirical.protocol.MIN_SEEDS` seeds each:

* **saturation, certified**: every run's certified saturation gap — test loss minus the entropy floor,
  KL(P ‖ Q)/(E|x| + 1) in nats per token, the upper end of the rigorous interval of
  :mod:`empirical.saturation` — is at most ``epsilon``;
* **opposite OOD behaviour, on every seed**: two regimes' OOD R1 intervals over seeds (least to greatest
  value) are at least ``delta`` apart (the least value of one minus the greatest of the other);

and which prompts the adversarial and oracle terms trained on (``regime_prompts`` of the rows:
:mod:`empirical.protocol`).  The total test losses are reported, never compared: they include the
floor, so "within 10 %" says nothing about the gaps.

Verdicts (as the other certificates use them: ``falsified`` when the numbers contradict the claim,
``unknown`` when they cannot decide it):

* ``falsified`` — a run's gap is certainly above ε (its certified *lower* bound exceeds ε: not saturated at
  ε), or, with enough seeds, no two regimes' OOD R1 intervals are Δ apart;
* ``unknown`` — fewer than 3 seeds in a regime (one draw says nothing about the regime), a gap that is not
  certified (none, a float measurement, unbounded), an interval that straddles ε, an undefined OOD R1, or no
  (language, architecture) trained in all three regimes;
* ``verified`` — none of these.

Whether the gaps were computed from the runs' weights (in training, or re-derived from each run's checkpoint by
``nonid experiment --report-only``: :func:`empirical.experiment.recheck_gap`) or only read from the runs'
``result.json`` files is stated (``rechecked``: quantity ``gaps_rederived`` and the first assumption).

Wall times go to ``timings`` (never hashed), so the certificate is the same bytes for the same runs.
"""

from __future__ import annotations

import math
import statistics
from fractions import Fraction
from pathlib import Path
from typing import Any, Mapping, Sequence

from empirical.errors import InvalidExperimentConfig
from empirical.protocol import DEFAULT_DELTA, DEFAULT_EPSILON, EVALUATED, HELD_OUT, MIN_SEEDS, check_delta, check_epsilon
from empirical.reference_data import published
from empirical.rows import RunRow, UnfinishedRun, finished_runs
from theory.certificate import Certificate, Status, library_versions
from theory.jsonio import JsonLimits, read_json_file

CHECK = "experiment-rule-extrapolation"
REGIMES = ("ml", "adversarial", "oracle")
RESULT_LIMITS = JsonLimits(allow_nonfinite=True)
"""Bounds of a run's ``result.json`` (:mod:`theory.jsonio`): those of a certificate, except that a diverged
loss may be stored as ``NaN`` or ``Infinity`` by the experiment's writer."""


def _num(x: Any, digits: int = 6, direction: str | None = None) -> Any:
    """Floats to ``digits`` significant digits — rounded to nearest, or ``direction`` "up"/"down" for a
    bound, so that the stored bound still bounds; non-finite floats to None (JSON has no infinity)."""
    if isinstance(x, bool) or not isinstance(x, float):
        return x
    if not math.isfinite(x):
        return None
    if direction is None or x <= 0:
        return float(f"{x:.{digits}g}")
    from theory.exact import scientific

    # the float nearest a decimal ≥ x is ≥ x (rounding is monotone and x is a float): still an upper bound
    return float(scientific(Fraction(x), direction, digits))


def _column(key: str, value: Any) -> Any:
    """A stored run column for the certificate: bounds (``*_hi`` / ``*_lo``) rounded outward."""
    return _num(value, direction="up" if key.endswith("_hi") else "down" if key.endswith("_lo") else None)


def _up(x: Fraction | float, digits: int = 3) -> str:
    from theory.exact import scientific

    return scientific(Fraction(x), "up", digits)


def _down(x: Fraction | float, digits: int = 3) -> str:
    from theory.exact import scientific

    return scientific(Fraction(x), "down", digits)


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


def regime_protocol(rows: Sequence[RunRow]) -> dict[str, Any]:
    """What the adversarial and oracle terms of ``rows`` trained on: the protocol (``held-out``,
    ``evaluated``, ``mixed`` or ``not recorded``), the lengths, the prompt counts and one sentence."""
    term = [r for r in rows if r.regime != "ml"]
    kinds = sorted({r.regime_prompts or "not recorded" for r in term})
    lengths = sorted({n for r in term for n in (r.regime_prompt_lengths or ())})
    counts = sorted({r.regime_prompt_count for r in term if r.regime_prompt_count is not None})
    kind = kinds[0] if len(kinds) == 1 else "mixed" if kinds else "none"
    where = (f"OOD prompts of length {', '.join(map(str, lengths))}" if lengths else "OOD prompts") + (
        f" ({' or '.join(f'{c:,}' for c in counts)} prompts)" if counts else "")
    text = {HELD_OUT: f"{where} held out from the evaluated prompt set (none of them is evaluated)",
            EVALUATED: f"{where} that include the evaluated prompts (--train-on-evaluated-prompts)",
            "not recorded": "prompts these rows do not record (written before the protocol was recorded)",
            "none": "nothing (no adversarial or oracle run)"}.get(kind, f"{where}, by different protocols ({', '.join(kinds)})")
    return {"protocol": kind, "lengths": lengths, "counts": counts, "text": text}


def _evaluated(language: str) -> str:
    """The evaluated OOD prompts of a language, in words ("the 251 OOD prompts of length 8")."""
    from theory.languages import get_language
    from theory.prompts import paper_prompts

    ps = paper_prompts(get_language(language))
    lengths = sorted({len(u) for u in ps.ood_prompts})
    return f"the {len(ps.ood_prompts)} OOD prompts of length {', '.join(map(str, lengths))}"


def _ood_interval(values: Sequence[float | None]) -> list[float] | None:
    """[least, greatest] of a regime's OOD R1 over its seeds; None when a seed's is undefined."""
    defined = [v for v in values if v is not None]
    return [_num(min(defined)), _num(max(defined))] if defined and len(defined) == len(values) else None


def _gap_verdict(r: RunRow, epsilon: float) -> tuple[str, str]:
    """("ok" | "falsified" | "unknown", why) for one run's gap against ε (nats per token)."""
    g = r.gap
    if g is None:
        return "unknown", f"{r.name}: no gap ({r.gap_note or 'not computed'})"
    if not g.gap_rigorous:
        return "unknown", f"{r.name}: gap is a float measurement, not certified"
    if not math.isfinite(g.gap_token_hi):
        return "unknown", f"{r.name}: gap has no finite certified upper bound"
    if g.gap_token_hi <= epsilon:
        return "ok", ""
    if g.gap_token_lo > epsilon:
        return "falsified", f"{r.name} >= {_down(g.gap_token_lo)}"
    return "unknown", (f"{r.name}: certified gap [{_down(g.gap_token_lo)}, {_up(g.gap_token_hi)}] nats/token "
                       f"straddles eps = {epsilon:g}")


def gap_spread(rows: Sequence[RunRow]) -> dict[str, Any] | None:
    """The spread of the certified per-token gaps of ``rows`` (every gap certified and finite; else None):
    every gap lies in [least lower bound, greatest upper bound], so max − min ≤ ``difference_hi`` and
    max / min ≤ ``ratio_hi`` (None when the least lower bound is 0), both rounded up."""
    gaps = [r.gap for r in rows]
    if not gaps or any(g is None or not g.certified or not math.isfinite(g.gap_token_hi) for g in gaps):
        return None
    lo = min(Fraction(g.gap_token_lo) for g in gaps if g is not None)
    hi = max(Fraction(g.gap_token_hi) for g in gaps if g is not None)
    lo = max(lo, Fraction(0))
    def above(x: Fraction) -> float:  # a float ≥ x (x is not a float: one step up past the decimal's rounding)
        return math.nextafter(float(_up(x, 6)), math.inf)

    return {"lo": _num(float(lo), direction="down"), "hi": _num(float(hi), direction="up"),
            "difference_hi": above(hi - lo), "ratio_hi": above(hi / lo) if lo > 0 else None}


def experiment_certificate(rows: Sequence[RunRow | UnfinishedRun], *, aggregation: str = "best-validation",
                           epsilon: float = DEFAULT_EPSILON, delta: float = DEFAULT_DELTA, command: str = "",
                           rechecked: bool = False, recheck: Mapping[str, str] | None = None) -> Certificate:
    """The certificate of a set of runs (module docstring).  ``epsilon`` in nats per token (> 0, finite),
    ``delta`` in (0, 1]; ``command`` is recorded as how the runs were made.

    ``rechecked``: the rows' gaps were computed from the runs' weights — just now in training, or re-derived from
    each run's stored best-validation weights (:func:`empirical.experiment.recheck_gap`, whose outcome per run is
    ``recheck``, recorded) — rather than read from the runs' ``result.json`` files as written when each run
    finished.  Default False: the certificate then says that the gaps were read, not re-derived (quantity
    ``gaps_rederived``, and its first assumption).

    Raises:
        InvalidExperimentConfig: ``epsilon`` or ``delta`` out of range, NaN or infinite (named).
        TypeError: an item of ``rows`` that is not a record (:func:`empirical.rows.finished_runs`).
    """
    epsilon = check_epsilon(epsilon)
    delta = check_delta(delta)
    order = {r: i for i, r in enumerate(REGIMES)}
    finished = sorted(finished_runs(rows), key=lambda r: (r.language, r.arch, order.get(r.regime, 9), r.regime, r.seed))
    runs: list[dict[str, Any]] = []
    for r in finished:
        stored = r.to_dict()
        run = {k: _column(k, stored[k]) for k in RunRow.CERTIFICATE_COLUMNS if k in stored}
        run["gap_certified"] = r.gap is not None and r.gap.certified
        run["gap_within_epsilon"] = _gap_verdict(r, epsilon)[0] == "ok"
        runs.append(run)
    groups: dict[tuple[str, str, str], list[RunRow]] = {}
    for r in finished:
        groups.setdefault((r.language, r.arch, r.regime), []).append(r)
    group_q = []
    for (lang, arch, regime), rs in groups.items():
        his = [r.gap.gap_padded_hi for r in rs if r.gap is not None]
        first_gap = rs[0].gap
        oods = [r.metric("ood_r1", aggregation) for r in rs]
        spread = gap_spread(rs)
        group_q.append({
            "language": lang, "arch": arch, "regime": regime, "runs": len(rs), "seeds": sorted({r.seed for r in rs}),
            "test_loss_padded": _mean_std([r.test_loss_padded_under(aggregation) for r in rs]),
            "floor_padded": _num(first_gap.floor_padded if first_gap is not None else None),
            "floor_token": _num(first_gap.floor_token if first_gap is not None else None),
            "gap_padded_max": _num(max(his, default=None), direction="up"),
            "gap_token": None if spread is None else [spread["lo"], spread["hi"]],
            **{m: _mean_std([r.metric(m, aggregation) for r in rs]) for m in ("id_r1", "ood_r1", "ood_r2c")},
            "ood_r1_interval": _ood_interval(oods),
            "regime_prompts": regime_protocol(rs)["protocol"] if regime != "ml" else None,
            "published": _published(lang, arch, regime, aggregation),
        })
    failed: list[str] = []  # the numbers contradict the claim
    undecided: list[str] = []  # they cannot decide it
    above = []
    for r in finished:
        kind, why = _gap_verdict(r, epsilon)
        if kind == "falsified":
            above.append(why)
        elif kind == "unknown":
            undecided.append(why)
    if above:  # one clause for all of them, the first few named
        failed.append(f"certified gap above eps = {epsilon:g} nats/token (not saturated at eps) in {len(above)} of "
                      f"{len(finished)} runs: {', '.join(above[:3])}" + (f" and {len(above) - 3} more" if len(above) > 3 else ""))
    comparisons: list[dict[str, Any]] = []
    for lang, arch in dict.fromkeys((k[0], k[1]) for k in groups):
        have = {g: groups.get((lang, arch, g), []) for g in REGIMES}
        if not all(have.values()):
            continue
        seeds = {g: len({x.seed for x in rs}) for g, rs in have.items()}
        enough = min(seeds.values()) >= MIN_SEEDS
        if not enough:
            undecided.append(f"{lang} {arch}: " + ", ".join(f"{seeds[g]} seed{'s' if seeds[g] != 1 else ''} ({g})" for g in REGIMES)
                             + f"; the claim needs >= {MIN_SEEDS} seeds per regime (one draw says nothing about the regime)")
        ood: dict[str, tuple[float, float] | None] = {}
        for g, rs in have.items():
            vals = [x.metric("ood_r1", aggregation) for x in rs]
            defined = [v for v in vals if v is not None]
            ood[g] = (min(defined), max(defined)) if len(defined) == len(vals) else None
        best: tuple[float, str, str] | None = None
        for a in REGIMES:
            for b in REGIMES:
                ia, ib = ood[a], ood[b]
                if a != b and ia is not None and ib is not None and (best is None or ia[0] - ib[1] > best[0]):
                    best = (ia[0] - ib[1], a, b)
        separated = best is not None and best[0] >= delta
        missing = [g for g in REGIMES if ood[g] is None]
        if not separated:
            sep = "no two regimes with a defined OOD R1" if best is None else (
                f"OOD R1 separation {best[0]:.3f} ({best[1]} least minus {best[2]} greatest over seeds) < Delta = {delta:g}")
            if missing:
                undecided.append(f"{lang} {arch}: {sep}; OOD R1 undefined (no finished OOD completion) in {', '.join(missing)}")
            elif enough:
                failed.append(f"{lang} {arch}: {sep}")
        all_rows = [x for rs in have.values() for x in rs]
        spread = gap_spread(all_rows)
        per_regime = {g: gap_spread(rs) for g, rs in have.items()}
        loss = {g: statistics.fmean(x.test_loss_padded_under(aggregation) for x in rs) for g, rs in have.items()}
        comparisons.append({
            "language": lang, "arch": arch, "seeds": seeds, "enough_seeds": enough,
            "gap_token": {g: None if v is None else [v["lo"], v["hi"]] for g, v in per_regime.items()},
            "gap_spread": spread, "gaps_within_epsilon": all(_gap_verdict(x, epsilon)[0] == "ok" for x in all_rows),
            "ood_r1_interval": {g: None if v is None else [_num(v[0]), _num(v[1])] for g, v in ood.items()},
            "ood_r1_separation": None if best is None else {"value": _num(best[0]), "above": best[1], "below": best[2]},
            "ood_r1_differs": separated, "test_loss_padded": {g: _num(v) for g, v in loss.items()},
            "regime_prompts": regime_protocol(all_rows)["protocol"], "evaluated": _evaluated(lang)})
    if failed:
        status, reason = Status.FALSIFIED, "; ".join(failed + undecided)
    elif not comparisons:
        status = Status.UNKNOWN
        reason = "; ".join(["no (language, architecture) was trained in all three regimes (ml, adversarial, oracle)"] + undecided)
    elif undecided:
        status, reason = Status.UNKNOWN, "; ".join(undecided)
    else:
        status, reason = Status.VERIFIED, ""
    protocol = regime_protocol(finished)
    pairs = ", ".join(f"{c['language']} {c['arch']}" for c in comparisons) or "none"
    evaluated = "; ".join(dict.fromkeys(f"{c['language']}: {c['evaluated']}" for c in comparisons)) or "the evaluated OOD prompts"

    from theory.exact import fixed

    def one(c: dict[str, Any]) -> str:
        sp = c["gap_spread"]
        gaps = ("gaps n/a" if sp is None else f"gaps <= {_up(sp['hi'])} nats/token (eps {epsilon:g}; spread <= {_up(sp['difference_hi'])}"
                + (f", max/min <= {fixed(Fraction(sp['ratio_hi']), 'up', 2)}x)" if sp["ratio_hi"] is not None else ")"))
        # printed outward, so the interval still holds the values (each a ratio k/n of prompt counts, read from its
        # shortest decimal: a float k/n is a multiple of 0.01 only when k/n is)
        ood = " / ".join("n/a" if c["ood_r1_interval"][g] is None else
                         f"[{fixed(Fraction(str(c['ood_r1_interval'][g][0])), 'down', 2)}, "
                         f"{fixed(Fraction(str(c['ood_r1_interval'][g][1])), 'up', 2)}]" for g in REGIMES)
        n = min(c["seeds"].values())
        return f"{c['language']} {c['arch']}, {n} seed{'s' if n != 1 else ''}: {gaps}; OOD R1 {ood}; {c['regime_prompts']}"

    detail = "; ".join(one(c) for c in comparisons) or f"{len(runs)} run{'s' if len(runs) != 1 else ''}"
    return Certificate(
        check=CHECK,
        claim=(f"Trained in the three regimes (ml, adversarial, oracle) with at least {MIN_SEEDS} seeds each, every "
               f"(language, architecture) [{pairs}] is saturated and differs out of distribution: every run's certified "
               f"saturation gap (test loss minus the entropy floor, KL(P || Q)/(E|x| + 1), the upper end of a rigorous "
               f"interval) is <= eps = {epsilon:g} nats per token, and two regimes' OOD R1 accuracies ({aggregation}; "
               f"greedy; divided by all prompts, an unfinished completion failing; on {evaluated}; the "
               f"{'/'.join(sorted({r.convention for r in finished})) or 'paper'} reading of the paper) are >= Delta = {delta:g} apart on every seed "
               f"(the least value over seeds of one minus the greatest of the other). The adversarial and oracle terms "
               f"trained on {protocol['text']}."),
        status=status, method="bound", detail=detail, reason=reason,
        quantities={"aggregation": aggregation, "epsilon": epsilon, "epsilon_unit": "nats per token: KL(P || Q)/(E|x| + 1)",
                    "delta": delta, "min_seeds": MIN_SEEDS, "regime_prompts": protocol, "runs": runs,
                    "groups": group_q, "comparisons": comparisons, "command": command,
                    "conventions": sorted({r.convention for r in finished}), "denominator": "all-prompts",
                    "ood_r1_chance": _chance(finished), "gaps_rederived": bool(rechecked),
                    **({"gap_recheck": dict(sorted(recheck.items()))} if recheck is not None else {})},
        assumptions=(_GAPS_REDERIVED if rechecked else _GAPS_READ,
                     "OOD R1 intervals are the least and greatest value over the seeds run, not a confidence interval "
                     "for the regime",
                     "published numbers: empirical/reference (arXiv 2405.01964, arXiv 2409.13728), their own data sizes "
                     "and aggregation; compare gaps and rule metrics, not raw losses"),
        versions=library_versions("torch"),
        timings={f"wall_s_{r.name}": float(r.wall_s) for r in finished},
    )


_METRICS_READ = ("test losses and rule metrics are float64 evaluations of the trained networks (greedy completions; "
                 "an unfinished one fails), made when each run finished; a report rebuilt from a folder reads them from "
                 "the runs' result.json files as written")
_GAPS_REDERIVED = (_METRICS_READ + "; the saturation gap is a rigorous interval over every support prefix of the real "
                   "function of each run's best-validation weights (empirical.saturation, empirical.enclosure), computed "
                   "from those weights by this certificate's producer (at the end of training, or re-derived from the "
                   "run's checkpoint.pt and compared with its result.json: a run whose stored gap is not what its weights "
                   "give, or whose weights cannot be read, has no certified gap)")
_GAPS_READ = (_METRICS_READ + "; the saturation gaps were read from the runs' result.json files as written when each run "
              "finished, not re-derived from the stored weights: each is a rigorous interval over every support prefix "
              "of the real function of the best-validation weights (empirical.saturation, empirical.enclosure) only if "
              "those files are the ones training wrote")


def _chance(rows: Sequence[RunRow]) -> dict[str, dict[str, str]]:
    """The exact OOD R1 chance level per language label (``L2`` or ``L2 (published)``) of ``rows``: the
    bracket of :func:`theory.chance.chance_levels` on the runs' evaluated prompts, rounded outward."""
    from theory.chance import chance_levels
    from theory.exact import fixed

    out = {}
    for r in rows:
        if r.language_label not in out and (v := chance_levels(r.language, r.convention).ood_r1) is not None:
            out[r.language_label] = {"lo": fixed(v.lo, "down", 6), "hi": fixed(v.hi, "up", 6), "convention": r.convention}
    return out
