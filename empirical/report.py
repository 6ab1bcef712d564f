"""Results of the rule-extrapolation experiment as CSV, a Markdown comparison with the published
numbers (:mod:`empirical.reference_data`), and a figure: OOD R1 against the certified saturation gap,
one point per run.  Every function takes records (:class:`empirical.rows.RunRow`; an
:class:`~empirical.rows.UnfinishedRun` is skipped); the CSV's columns are :attr:`RunRow.CSV_COLUMNS`.

Notation of the tables: every loss names its unit in its header or label (:data:`LOSS_UNIT`, nats per
padded token); ``m ± s`` is a mean and sample standard deviation (ours over seeds, the published ones
over the papers' runs); ``[lo, hi]`` is a certified interval and nothing else; a spread over seeds is
written ``(a–b over n seeds)``, its least and greatest value; ``≈ x`` is a float measurement, not
certified.

The regime comparison (:func:`regime_comparison`) compares the **gaps**, never the total losses (which
include the floor: a 1 % spread of losses hid a 2.1× spread of gaps): per regime the certified per-token
gaps over seeds, their spread (max − min and max/min, upper bounds rounded up), the OOD R1 intervals over
seeds, which prompts the regime terms trained on, and the experiment certificate's verdict at ε and Δ
(:func:`empirical.certificate.experiment_certificate`).
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from fractions import Fraction
from pathlib import Path
from typing import Sequence

from empirical.figures import ood_vs_gap, save_figure
from empirical.protocol import DEFAULT_DELTA, DEFAULT_EPSILON
from empirical.reference_data import PublishedRow, published
from empirical.rows import RunRow, UnfinishedRun, finished_runs
from theory.fileio import write_atomic
from theory.tables import markdown_table

LOSS_UNIT = "nats/padded token"
"""The unit of every loss, floor and gap in the report's tables: nats per padded token, ÷ (T − 1)."""
TOKEN_UNIT = "nats/token"
"""The unit of the certificate's ε and of the gaps the regime comparison compares: KL(P ‖ Q)/(E|x| + 1)."""


def write_csv(rows: Sequence[RunRow | UnfinishedRun], path: Path) -> None:
    """One line per finished run, the columns :attr:`RunRow.CSV_COLUMNS` (both aggregations side by side;
    ``max_``/``min_`` = over checkpoints); a column the run does not store is empty."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=RunRow.CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in finished_runs(rows):
        stored = r.to_dict()
        w.writerow({k: ("" if stored.get(k) is None else stored[k]) for k in RunRow.CSV_COLUMNS})
    write_atomic(path, buf.getvalue())


def _ms(values: Sequence[float | None], digits: int = 3) -> str:
    """Mean ± sample std over seeds (``–`` when none is defined)."""
    vals = [v for v in values if v is not None]
    if not vals:
        return "–"
    m = statistics.fmean(vals)
    if len(vals) == 1:
        s = 0.0
    else:  # statistics.stdev fails on a NaN or an infinity (a diverged run): its std is undefined
        s = statistics.stdev(vals) if all(math.isfinite(v) for v in vals) else math.nan
    return f"{m:.{digits}f} ± {s:.{digits}f}"


def _pub(language: str, arch: str, regime: str, aggregation: str) -> PublishedRow | None:
    model = "transformer" if arch.startswith("transformer") else "mamba" if arch == "ssm" else arch
    rows = published(language, model, regime)
    if not rows:
        return None
    same = [r for r in rows if r.aggregation == aggregation]
    return (same or rows)[0]


def _groups(rows: Sequence[RunRow | UnfinishedRun]) -> dict[tuple[str, str, str], list[RunRow]]:
    """Finished runs by (language, arch, regime); under a convention other than the paper's the language
    is labelled with it (``L2 (published)``), so runs of two readings never share a group."""
    groups: dict[tuple[str, str, str], list[RunRow]] = {}
    for r in finished_runs(rows):
        groups.setdefault((r.language_label, r.arch, r.regime), []).append(r)
    return groups


def chance_lines(rows: Sequence[RunRow | UnfinishedRun]) -> list[str]:
    """One line per (language, convention) of ``rows``: the exact chance levels of the four metrics on the
    runs' evaluated prompts (:func:`theory.chance.chance_table`, brackets rounded outward), and beside them
    each published figure, whether it agrees and, where not, why."""
    from theory.chance import chance_table
    from theory.exact import fixed

    names = {"id_r1": "ID R1", "id_r2": "ID R2", "ood_r1": "OOD R1", "ood_r2c": "OOD R2c"}
    out = []
    for lang, convention in dict.fromkeys((r.language, r.convention) for r in finished_runs(rows)):
        table = [c for c in chance_table((lang,), convention) if c.exact is not None]
        cells = [f"{names[c.metric]} [{fixed(c.exact.lo, 'down', 4)}, {fixed(c.exact.hi, 'up', 4)}]"
                 for c in table if c.exact is not None]  # (filtered above; repeated for the type checker)
        notes = [f"{names[c.metric]} {c.published:g} ({c.note})" for c in table if c.published is not None]
        line = (f"Chance levels for {lang} ({convention} reading; a uniform random continuation over Σ ∪ {{EOS}}, exact "
                f"brackets, the same in both denominators): " + ", ".join(cells) + ".")
        if notes:
            line += " Published: " + "; ".join(notes) + "."
        out.append(line)
    return out


def _upper(x: float, measured: bool) -> str:
    """A certified upper bound printed rounded up (so it still bounds); a float measurement, or a
    non-finite value, as it is."""
    from theory.exact import scientific

    return f"{x:.2e}" if measured or not math.isfinite(x) else scientific(Fraction(x), "up")


def _gap_cell(rs: Sequence[RunRow]) -> str:
    """The gap of a group of seeds: ``[lo, hi]`` certified (of the mean over seeds), then the spread
    ``(a–b over n seeds)`` when there are several; ``+∞`` when a seed's gap is unbounded, ``≈ x`` when
    a seed's gap is a float measurement (not certified), ``n/a`` when none has a gap."""
    gaps = [r.gap for r in rs if r.gap is not None]
    if not gaps:
        return "n/a"
    if not all(math.isfinite(g.gap_padded_hi) for g in gaps):
        return "+∞"
    from theory.exact import scientific  # printed bounds round outward, so they still bound

    his = [g.gap_padded_hi for g in gaps]
    los = [max(g.gap_padded_lo, 0.0) for g in gaps]  # KL ≥ 0 (Gibbs): a negative lower bound says no more than 0
    spread = (f" ({scientific(Fraction(min(los)), 'down')}–{scientific(Fraction(max(his)), 'up')} over {len(gaps)} seeds)"
              if len(gaps) > 1 else "")
    if not all(g.gap_rigorous for g in gaps):
        return f"≈ {statistics.fmean(his):.2e}{spread}"
    mean_lo = sum(map(Fraction, los), Fraction(0)) / len(los)  # exact means of the bounds, then rounded outward
    mean_hi = sum(map(Fraction, his), Fraction(0)) / len(his)
    return f"[{scientific(mean_lo, 'down')}, {scientific(mean_hi, 'up')}]{spread}"


def _token_gap_cell(rs: Sequence[RunRow]) -> str:
    """The greatest certified upper bound on the per-token gap over the seeds of a group, rounded up
    (``≈`` for a float measurement, ``+∞`` unbounded, ``n/a`` none)."""
    gaps = [r.gap for r in rs if r.gap is not None]
    if not gaps:
        return "n/a"
    hi = max(g.gap_token_hi for g in gaps)
    if not math.isfinite(hi):
        return "+∞"
    if not all(g.gap_rigorous for g in gaps):
        return f"≈ {hi:.2e}"
    return f"≤ {_upper(hi, False)}"


def markdown(rows: Sequence[RunRow | UnfinishedRun], aggregation: str = "best-validation", *,
             epsilon: float = DEFAULT_EPSILON, delta: float = DEFAULT_DELTA) -> str:
    """The comparison table (mean ± sample std over seeds) and, for each language and architecture
    trained in all three regimes, the regime comparison and the certificate's verdict at ``epsilon``
    (nats per token) and ``delta``."""
    lines = [f"Aggregation of our runs: **{aggregation}**"
             + (" (every number at the evaluation of lowest validation loss)." if aggregation == "best-validation"
                else " (each rule metric's max over evaluations, the min test loss: the companion paper's notebooks)."),
             f"Losses, floors and gaps in {LOSS_UNIT} (÷ (T − 1), the papers' padded convention); cells: mean ± "
             "sample std over seeds; floor = H(P)/(T − 1), exact; gap = KL(P ‖ Q)/(T − 1) of the best-validation "
             "weights: [lo, hi] is a certified interval (for several seeds, of their mean) and (a–b over n seeds) "
             "the spread over seeds (least lower, greatest upper end); ≈ x is a float measurement, not certified. "
             f"The gap in {TOKEN_UNIT} is KL(P ‖ Q)/(E|x| + 1), the certificate's unit: the greatest certified "
             "upper bound over seeds.",
             "Rule metrics: ID R1, OOD R1 and OOD R2c divide by all prompts (an unfinished completion fails); the "
             "\"finished only\" columns divide by the finished completions only, as the published tables do (compare "
             "those with the published columns); \"OOD finished\" is the fraction of OOD prompts whose completion "
             "ended with EOS. Reading of the paper (theory.conventions): "
             + ", ".join(sorted({r.convention for r in finished_runs(rows)}) or ["paper"])
             + "; a language under the published code's reading is labelled so.", ""]
    header = ["language", "arch", "regime", "runs", f"test loss ({LOSS_UNIT})", f"floor ({LOSS_UNIT})",
              f"gap ({LOSS_UNIT})", f"gap ({TOKEN_UNIT})", "ID R1", "OOD R1", "OOD R2c", "OOD R1 (finished only)",
              "OOD R2c (finished only)", "OOD finished", f"published test loss ({LOSS_UNIT})",
              "published ID R1", "published OOD R1", "published (source, runs, aggregation)"]
    table: list[list[object]] = []
    for (lang, arch, regime), rs in _groups(rows).items():
        floor = rs[0].gap.floor_padded if rs[0].gap is not None else None
        pub = _pub(rs[0].language, arch, regime, aggregation)

        def pv(k: str) -> str:
            if pub is None:
                return "–"
            m, s = pub.values.get(k, (None, None))
            if m is None:
                return "–"
            return f"{m:.3f} ± {s:.3f}" if s is not None else f"{m:.3f}"

        src = f"{pub.source}, {pub.runs}, {pub.aggregation}" if pub else "not published"
        table.append([lang, arch, regime, len(rs), _ms([r.test_loss_padded_under(aggregation) for r in rs], 4),
                      "–" if floor is None else f"{floor:.4f}", _gap_cell(rs), _token_gap_cell(rs),
                      _ms([r.metric("id_r1", aggregation) for r in rs]),
                      _ms([r.metric("ood_r1", aggregation) for r in rs]), _ms([r.metric("ood_r2c", aggregation) for r in rs]),
                      _ms([r.metric("ood_r1", aggregation, "finished-only") for r in rs]),
                      _ms([r.metric("ood_r2c", aggregation, "finished-only") for r in rs]),
                      _ms([r.ood_finished for r in rs]),
                      pv("test_loss"), pv("id_r1"), pv("ood_r1"), src])
    lines += markdown_table(header, table)
    lines += ["", "Published test losses are for the papers' data (aⁿbⁿ with n ≤ 128: floor ln 128 / 257 ≈ 0.0189; "
              "random words up to length 256 from the papers' own generators), so compare gaps and rule metrics, "
              "not raw losses.  The published Transformer had no position signal (its encoding was added along the "
              "batch axis): `transformer-nopos` reproduces that."]
    lines += chance_lines(rows)
    lines += [""] + regime_comparison(rows, aggregation)
    lines += [""] + certificate_lines(rows, aggregation, epsilon=epsilon, delta=delta)
    return "\n".join(lines) + "\n"


def certificate_lines(rows: Sequence[RunRow | UnfinishedRun], aggregation: str = "best-validation", *,
                      epsilon: float = DEFAULT_EPSILON, delta: float = DEFAULT_DELTA) -> list[str]:
    """The experiment certificate in three Markdown lines: verdict and detail, claim, reason."""
    from empirical.certificate import experiment_certificate

    c = experiment_certificate(rows, aggregation=aggregation, epsilon=epsilon, delta=delta)
    out = [f"**Certificate `{c.check}`: {c.status.value}** — {c.detail}", "", f"Claim: {c.claim}"]
    if c.reason:
        out += ["", f"Reason: {c.reason}"]
    return out


def _interval(values: Sequence[float]) -> str:
    """Least–greatest of ``values`` (one number when they agree; ``n/a`` when one is undefined)."""
    if any(math.isnan(v) for v in values):
        return "n/a"
    lo, hi = min(values), max(values)
    return f"{lo:.3f}" if lo == hi else f"{lo:.3f}–{hi:.3f}"


def regime_comparison(rows: Sequence[RunRow | UnfinishedRun], aggregation: str = "best-validation") -> list[str]:
    """For each (language, arch) with ml, adversarial and oracle runs: the certified per-token gap of each
    regime over its seeds (least lower – greatest upper bound, rounded outward), the **spread of the gaps**
    over all the runs (max − min and max/min: upper bounds from every gap lying in [least lower, greatest
    upper bound], rounded up), the OOD R1 over seeds (least–greatest), the mean test losses (reported, not
    compared), and which prompts the regime terms trained on."""
    from empirical.certificate import gap_spread, regime_protocol
    from theory.exact import fixed, scientific

    out = []
    groups = _groups(rows)
    for lang, arch in dict.fromkeys((k[0], k[1]) for k in groups):
        have = {r: groups.get((lang, arch, r), []) for r in ("ml", "adversarial", "oracle")}
        if not all(have.values()):
            continue
        seeds = min(len({x.seed for x in rs}) for rs in have.values())
        loss = {r: statistics.fmean(x.test_loss_padded_under(aggregation) for x in rs) for r, rs in have.items()}
        oods = {r: [_or_nan(x.metric("ood_r1", aggregation)) for x in rs] for r, rs in have.items()}
        measured = any(x.gap is not None and not x.gap.gap_rigorous for rs in have.values() for x in rs)
        per = {r: gap_spread(rs) for r, rs in have.items()}
        spread = gap_spread([x for rs in have.values() for x in rs])

        def gap_text(r: str) -> str:
            gaps = [x.gap for x in have[r] if x.gap is not None]
            if len(gaps) < len(have[r]):
                return "n/a"
            his = [g.gap_token_hi for g in gaps]
            if not all(math.isfinite(h) for h in his):
                return "+∞"
            if measured or per[r] is None:
                return f"≈ {max(his):.2e}"
            sp = per[r]
            assert sp is not None
            return f"[{scientific(Fraction(sp['lo']), 'down')}, {scientific(Fraction(sp['hi']), 'up')}]"

        if spread is None:
            spread_text = "gap spread n/a (a gap is not certified)"
        else:
            ratio = spread["ratio_hi"]
            spread_text = (f"gap spread ≤ {scientific(Fraction(spread['difference_hi']), 'up')} {TOKEN_UNIT} (max − min), "
                           f"max/min ≤ {'∞' if ratio is None else fixed(Fraction(ratio), 'up', 2) + '×'}")
        label = "gap (float, not certified" if measured else "certified gap ("
        protocol = regime_protocol([x for rs in have.values() for x in rs])["text"]
        out.append(f"- **{lang} {arch}** ({seeds} seed{'s' if seeds != 1 else ''} per regime): "
                   f"{label}{'; ' if measured else ''}{TOKEN_UNIT}) ml {gap_text('ml')} / adversarial {gap_text('adversarial')} / "
                   f"oracle {gap_text('oracle')} — {spread_text}; OOD R1 (least–greatest over seeds) "
                   + " / ".join(f"{r} {_interval(v)}" for r, v in oods.items())
                   + f"; mean test loss ({LOSS_UNIT}, floor included: reported, not compared) ml {loss['ml']:.5f} / "
                   f"adversarial {loss['adversarial']:.5f} / oracle {loss['oracle']:.5f}; regime terms trained on {protocol}"
                   + ("; published, for the position paper's Transformer only, best-validation, n ≤ 128: OOD R1 "
                      "0.462 / 0.000 / 0.830." if lang == "L3" else "."))
    return out


def _or_nan(x: float | None) -> float:
    """``x``, or NaN for an undefined value (no OOD completion scored, no gap)."""
    return math.nan if x is None else x


def figure(rows: Sequence[RunRow | UnfinishedRun], path: Path, aggregation: str = "best-validation") -> bool:
    """Scatter of OOD R1 (y) against the certified saturation gap in nats per padded token (x, upper end
    of the interval; the gap axis of :func:`empirical.figures.gap_axis`, as in the appendix): one point per run.  Returns False when no run has a finite gap."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = [(r, r.gap.gap_padded_hi, ood) for r in finished_runs(rows)
           if r.gap is not None and math.isfinite(r.gap.gap_padded_hi) and (ood := r.metric("ood_r1", aggregation)) is not None]
    if not pts:
        return False
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ood_vs_gap(ax, [(r.arch, r.regime, hi, ood) for r, hi, ood in pts])  # the appendix's axis rule and markers
    ax.set_ylabel(f"OOD R1 ({aggregation})")
    ax.set_ylim(-0.05, 1.05)
    langs = sorted({r.language for r, _hi, _ood in pts})
    ax.set_title(f"Rule extrapolation vs saturation gap ({', '.join(langs)}; one point per run)")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    save_figure(fig, path.with_suffix(""), (path.suffix.lstrip(".") or "png",), dpi=130)
    return True
