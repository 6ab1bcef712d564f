"""Appendix curves for Proposition 2: ICL accuracy of P, R and the two witnesses Q against the number
of examples n, for several ε; and the posterior weight w(u) of the mixture.

:func:`curve_rows` turns an :class:`~constructions.icl.witness.ICLEvaluation` into long-format rows
(one per k, prompt set, n, model, ε) — the CSV data; :func:`plot_curves` (the witnesses, one figure per
k) and :func:`plot_accuracy` (P and R, every k in one figure) draw them with matplotlib (Agg backend)
into PNGs and PDFs whose metadata carry no timestamp, so reruns give the same bytes.

Each accuracy comes twice: ``acc_lo``/``acc_hi``, the accuracy *of the sampled prompts* (exact up to
undecided answers: the lines), and ``population_lo``/``population_hi``, a two-sided Clopper–Pearson
interval at ``confidence`` for the *population* accuracy (prompts i.i.d. from the prompt distribution;
a statistical bound, not an exact value: the bands).  :data:`CAPTION` says what the figures show and
defines their symbols; ``bench_icl`` prints it with the figures' names and writes it into BENCHMARKS.md.

Beside the curves, both plots take ``reference``: published accuracies of *trained* networks (Xie et
al. 2021, read by ``bench_icl.read_reference`` from ``../shared/reference/``; rows of
:data:`REFERENCE_FIELDS`), drawn as red markers with ±sd bars in the panels of their k — points of a
trained model, never part of a curve of P.  :func:`write_reference_csv` writes them as a CSV.
"""

from __future__ import annotations

import csv
import io
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from constructions.icl.surgery import boundary_rates
from constructions.icl.witness import CP_METHOD, DEFAULT_CONFIDENCE, Accuracy, ICLEvaluation, smallest_surgery_n
from empirical.figures import save_figure, tex_number
from theory.fileio import write_atomic

FIELDS = ("k", "prompts", "n", "model", "epsilon", "n_prompts", "acc_lo", "acc_hi", "population_lo", "population_hi",
          "confidence", "interval_method", "median_w", "median_log_P_over_R")
REFERENCE_FIELDS = ("source", "model", "k", "n", "concepts", "accuracy", "accuracy_sd", "note")
"""Columns of ``icl_reference.csv``: accuracy and its sd as fractions (the publication's % / 100);
``concepts`` is ``in-distribution`` or ``held-out``."""

CAPTION = (
    "`icl_accuracy.png` (and `.pdf`) has one panel per example length k: the ICL accuracy (the fraction of prompts "
    "whose answer — the argmax over the labels, the delimiter excluded — is the correct label) against the number of "
    "examples n (x axis linear up to 4, logarithmic beyond) of P, the Bayes-optimal predictor of the pretraining "
    "distribution, on prompts of the pretraining (in-distribution, ID) concepts (solid black) and of held-out concepts "
    "(dashed blue, with a band), and of R, the literal no-ICL model (examples scored independently from fresh starts, delimiters "
    "certain, answer from the test input alone), on the ID prompts (dotted orange). Each `icl_curves_k*.png` (and "
    "`.pdf`) shows the witnesses for one k. **Left:** P (black; held-out concepts dashed) and the local-surgery "
    "witness Q, one coloured line per ε: Q = P except at the ICL-format answer prefixes A(n), where "
    "q = (1 − λ) p + λ δ_w puts weight λ = 3/5 on a wrong label w (the smallest label other than P's answer; δ_w "
    "the point mass on w), switched on from the smallest n at which its certified KL(P‖Q) ≤ M(A) ln(1/(1 − λ)) is at "
    "most ε (M(A): the pretraining mass of A(n)); from there Q answers w, right only where P is wrong and the label "
    "happens to be w. **Middle:** the mixture Q_ε = (1 − ε) P + ε R, KL(P‖Q_ε) ≤ −ln(1 − ε), one line per ε, with R "
    "(dotted orange). **Right:** the median over prompts u of the mixture's posterior weight on R, "
    "w(u) = εR(u) / (εR(u) + (1 − ε) P(u)), one line per ε. Lines are the accuracies on the sampled prompts "
    "(every answer was certified, so these are exact for the drawn prompts); shaded bands are two-sided 99 % "
    "Clopper–Pearson intervals for the population accuracy (the prompts are i.i.d. draws from the prompt "
    "distribution; each band holds at 99 % on its own, not simultaneously), drawn for P and R (the witnesses' intervals, which "
    "overlap, are in the CSV); the CSV holds both kinds of interval for every line. Every line labelled P is the exact "
    "Bayes predictor of this instance (certified float64 forward, every answer's margin bounded), not a trained network. "
    "The red markers, where the reference folder `../shared/reference/` is present, are *published* accuracies of "
    "networks *trained* on GINC (Xie et al. 2021: GPT-2 of 4, 12 and 16 layers as filled diamonds, a 6-layer LSTM as a "
    "filled square, each the mean over 5 seeds with ±sd bars; a model pretrained on random data as a cross; trained "
    "models on held-out concepts, about 11–12 %, flat in n, as an open diamond at the midpoint), at the example length "
    "and number of examples they were published for (k = 10, n = 64), so only in the k = 10 panels; they are copied "
    "into `icl_reference.csv` and are not fitted to or compared with anything.")
"""What the figures of :func:`plot_accuracy` and :func:`plot_curves` show, every symbol defined (Markdown)."""


def curve_rows(ev: ICLEvaluation, epsilons: Sequence[Fraction], lam: Fraction, prompts: str,
               confidence: Fraction = DEFAULT_CONFIDENCE, witnesses: bool = True) -> list[dict[str, object]]:
    """Rows for P, R and (``witnesses``) the surgery Q (switching at the smallest n with certified
    KL ≤ ε) and the mixture Q_ε, at every n of ``ev``; population intervals at ``confidence`` when the
    prompts are i.i.d. (else blank)."""
    hmm, k = ev.hmm, ev.prompts.k
    rates = boundary_rates(hmm, k)
    rows: list[dict[str, object]] = []

    def add(n: int, model: str, eps: Fraction | None, acc: Accuracy, w: float | None = None) -> None:
        sample = acc.interval
        pop = acc.population_interval(confidence) if ev.iid else None
        rows.append({"k": k, "prompts": prompts, "n": n, "model": model,
                     "epsilon": "" if eps is None else f"{float(eps):g}", "n_prompts": acc.total,
                     "acc_lo": f"{float(sample.lo):.6f}", "acc_hi": f"{float(sample.hi):.6f}",
                     # outward: the printed ends still bound (6 decimals, down / up)
                     "population_lo": "" if pop is None else _places(pop.lo, "down"),
                     "population_hi": "" if pop is None else _places(pop.hi, "up"),
                     "confidence": "" if pop is None else f"{float(confidence):g}",
                     "interval_method": "" if pop is None else CP_METHOD,
                     "median_w": "" if w is None else f"{w:.6g}",
                     "median_log_P_over_R": f"{float(np.median(ev.log_ratio(n))):.4f}"})

    switch = {eps: smallest_surgery_n(hmm, k, lam, eps, ev.prompts.n_max, rates) for eps in epsilons}
    for n in ev.ns:
        add(n, "P", None, ev.acc_p[n])
        add(n, "R", None, ev.acc_r[n])
        if not witnesses:
            continue
        lr = ev.log_ratio(n)
        for eps in epsilons:
            at = switch[eps]
            add(n, "Q_surgery", eps, ev.surgery_accuracy(n) if at is not None and n >= at else ev.acc_p[n])
            q = ev.mixture_accuracy(n, eps)[0]
            c = float((1 - eps) / eps)
            w = 1.0 / (1.0 + c * np.exp(np.clip(lr, -700, 700)))
            add(n, "Q_mixture", eps, q, float(np.median(w)))
    return rows


def _places(x: Fraction, direction: str, digits: int = 6) -> str:
    from constructions.icl.certify import places

    return places(x, direction, digits)


def rows_to_csv(rows: Iterable[dict[str, object]], fields: Sequence[str] = FIELDS) -> str:
    """CSV text of ``rows`` with the columns ``fields`` (the curves' by default)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return buf.getvalue()


def _series(rows: Sequence[dict[str, object]], model: str, prompts: str, eps: str = "",
            k: int | None = None) -> tuple[list[int], list[float], list[float], list[float]]:
    """(n, sample accuracy midpoint, population lower, population upper) sorted by n."""
    pts = sorted((int(r["n"]), (float(r["acc_lo"]) + float(r["acc_hi"])) / 2,
                  float(r["population_lo"]) if r["population_lo"] != "" else np.nan,
                  float(r["population_hi"]) if r["population_hi"] != "" else np.nan)
                 for r in rows if r["model"] == model and r["prompts"] == prompts and r["epsilon"] == eps
                 and (k is None or int(r["k"]) == k))
    return [p[0] for p in pts], [p[1] for p in pts], [p[2] for p in pts], [p[3] for p in pts]


def _n_axis(ax, n_top: int, ylabel: str, ylim: tuple[float, float] = (-0.03, 1.03)) -> None:
    from matplotlib.ticker import FixedLocator, NullLocator

    ticks = [t for t in (0, 1, 2, 4, 8, 16, 32, 64, 128, 256) if t <= n_top]
    ax.set_xscale("symlog", linthresh=4, linscale=1.5)
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([str(t) for t in ticks])
    ax.set_xlim(-0.3, n_top * 1.1)
    ax.set_ylim(*ylim)
    ax.set_xlabel("examples in the prompt, $n$")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)


def _line(ax, rows, model, prompts, eps="", k=None, band=True, **style):
    n, a, lo, hi = _series(rows, model, prompts, eps, k)
    if not n:
        return None
    handle = ax.plot(n, a, **style)[0]
    if band and not np.all(np.isnan(lo)):
        ax.fill_between(n, lo, hi, color=handle.get_color(), alpha=0.15, lw=0)
    return handle


P_STYLE = {"color": "k", "ls": "-", "marker": "o", "ms": 2.5, "lw": 1.8}
P_LABEL = "$P$: exact Bayes predictor (certified), ID concepts"
P_HELD_LABEL = "$P$: exact Bayes predictor, held-out concepts"
REF_COLOUR = "tab:red"
HELD_STYLE = {"color": "tab:blue", "ls": "--", "lw": 1.2}
R_STYLE = {"color": "tab:orange", "ls": ":", "lw": 2.0}


def plot_accuracy(rows: Sequence[dict[str, object]], out_stem: str | Path, title: str = "",
                  reference: Sequence[dict[str, object]] = ()) -> list[Path]:
    """One panel per k: P on ID and held-out prompts and R on ID prompts against n, with population
    bands; ``reference`` rows (:data:`REFERENCE_FIELDS`) as markers in the panel of their k.  Writes
    ``out_stem``.png and .pdf; returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = sorted({int(r["k"]) for r in rows})
    n_top = max(int(r["n"]) for r in rows)
    fig, axes = plt.subplots(1, len(ks), figsize=(3.4 * len(ks), 3.6), constrained_layout=True, squeeze=False)
    handles: list = []
    ref_handles: dict[str, object] = {}
    for ax, k in zip(axes[0], ks):
        hs = [_line(ax, rows, "P", "in-distribution", k=k, label=P_LABEL, **P_STYLE),
              _line(ax, rows, "P", "held-out", k=k, label=P_HELD_LABEL, **HELD_STYLE),
              _line(ax, rows, "R", "in-distribution", k=k, label="$R$ (no ICL), ID concepts", **R_STYLE)]
        ref_handles.update(_reference_markers(ax, reference, k))
        ax.set_title(f"$k = {k}$ tokens per example", fontsize=10)
        _n_axis(ax, n_top, "ICL accuracy")
        handles = handles or [h for h in hs if h is not None]
    handles = handles + list(ref_handles.values())
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 3 if ref_handles else 4), fontsize=8,
               frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, Path(out_stem), ("png", "pdf"), dpi=150)


def plot_curves(rows: Sequence[dict[str, object]], out_stem: str | Path, title: str = "",
                reference: Sequence[dict[str, object]] = ()) -> list[Path]:
    """Three panels — surgery, mixture, median w(u) — for the in-distribution prompts (held-out P
    dashed), labels in mathtext (:data:`CAPTION` defines every symbol); ``reference`` rows of the
    figure's k as markers in the two accuracy panels.  Writes ``out_stem``.png and .pdf (no
    timestamps); returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epsilons = sorted({str(r["epsilon"]) for r in rows if r["epsilon"]}, key=float, reverse=True)
    colours = plt.get_cmap("viridis")(np.linspace(0.0, 0.85, max(len(epsilons), 1)))
    n_top = max(int(r["n"]) for r in rows)
    ks = {int(r["k"]) for r in rows}

    fig, axes = plt.subplots(1, 3, figsize=(13.5, 4.6), constrained_layout=True)
    handles: list = []
    ref_handles: dict[str, object] = {}
    for ax, model, name in ((axes[0], "Q_surgery", r"local surgery: $q = (1 - \lambda)\, p + \lambda\, \delta_w$ on $A(n)$"),
                            (axes[1], "Q_mixture", r"mixture $Q_\varepsilon = (1 - \varepsilon) P + \varepsilon R$ ($R$: no ICL)")):
        hp = _line(ax, rows, "P", "in-distribution", label=P_LABEL, **P_STYLE)
        hh = _line(ax, rows, "P", "held-out", band=False, label=P_HELD_LABEL, **HELD_STYLE)
        hq = [_line(ax, rows, model, "in-distribution", eps, band=False, color=col, lw=1.2, marker=".",
                    ms=3, label=f"$Q$, $\\varepsilon = {tex_number(eps)}$") for eps, col in zip(epsilons, colours)]
        hr = _line(ax, rows, "R", "in-distribution", label="$R$ (no ICL), ID concepts", zorder=5, **R_STYLE) \
            if model == "Q_mixture" else None
        for k in ks:
            ref_handles.update(_reference_markers(ax, reference, k))
        ax.set_title(name, fontsize=10)
        _n_axis(ax, n_top, "ICL accuracy")
        if model == "Q_mixture":
            handles = [h for h in [hp, hh, hr, *hq] if h is not None]
    ax = axes[2]
    for eps, col in zip(epsilons, colours):
        pts = sorted((int(r["n"]), float(r["median_w"])) for r in rows
                     if r["model"] == "Q_mixture" and r["prompts"] == "in-distribution" and r["epsilon"] == eps)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "-", color=col, marker=".", ms=4)
    ax.set_title("mixture: median posterior weight $w(u)$ on $R$", fontsize=10)
    _n_axis(ax, n_top, "median $w(u)$")
    handles += list(ref_handles.values())
    fig.legend(handles=handles, loc="outside lower center", ncol=4 if ref_handles else 3, fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, Path(out_stem), ("png", "pdf"), dpi=150)


def _reference_kind(row: dict[str, object]) -> str:
    model = str(row["model"])
    if row["concepts"] == "held-out":
        return "held-out"
    return "GPT-2" if "GPT-2" in model else "LSTM" if "LSTM" in model else "random" if "random" in model else "other"


_REF_MARKERS = {"GPT-2": {"marker": "D"}, "LSTM": {"marker": "s"}, "random": {"marker": "X"},
                "held-out": {"marker": "D", "mfc": "white"}, "other": {"marker": "^"}}


def _reference_label(kind: str, rows: Sequence[dict[str, object]]) -> str:
    n = ", ".join(sorted({str(r["n"]) for r in rows}, key=int))
    where = f"published, $n = {n}$"
    if kind == "GPT-2":
        layers = ", ".join(str(r["model"]).split("-layer")[0] for r in rows)
        return f"Xie et al. (trained GPT-2, {layers} layers), {where}, ID"
    if kind == "LSTM":
        return f"Xie et al. (trained LSTM), {where}, ID"
    if kind == "random":
        return f"Xie et al. (trained on random data), {where}"
    if kind == "held-out":
        return f"Xie et al. (trained), {where}, held-out concepts"
    return f"Xie et al. (trained), {where}"


def _reference_markers(ax, reference: Sequence[dict[str, object]], k: int) -> dict[str, object]:
    """Draw the published points of example length ``k`` on ``ax`` (red, one marker per kind, ±sd
    bars where published); returns {label: handle} for the legend."""
    handles: dict[str, object] = {}
    mine = [r for r in reference if int(str(r["k"])) == k]
    for kind in _REF_MARKERS:
        group = [r for r in mine if _reference_kind(r) == kind]
        if not group:
            continue
        n = [int(str(r["n"])) for r in group]
        acc = [float(str(r["accuracy"])) for r in group]
        sd = [float(str(r["accuracy_sd"])) if r["accuracy_sd"] != "" else 0.0 for r in group]
        label = _reference_label(kind, group)
        bars = ax.errorbar(n, acc, yerr=sd if any(sd) else None, ls="none", color=REF_COLOUR, ms=5, capsize=2.5,
                           elinewidth=1.0, zorder=7, label=label, **_REF_MARKERS[kind])
        handles[label] = bars
    return handles


def reference_to_csv(rows: Iterable[dict[str, object]]) -> str:
    """CSV text of the published reference points."""
    return rows_to_csv(rows, REFERENCE_FIELDS)


def write_reference_csv(rows: Sequence[dict[str, object]], path: str | Path) -> Path:
    """``icl_reference.csv``: the published trained-model accuracies drawn beside the curves."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, reference_to_csv(rows))
    return path


def write_csv(rows: Sequence[dict[str, object]], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, rows_to_csv(rows))
    return path
