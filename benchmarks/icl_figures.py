"""Appendix curves for Proposition 2: ICL accuracy of P and of the two witnesses Q against the number
of examples n, for several ε; and the posterior weight w(u) of the mixture.

:func:`curve_rows` turns an :class:`~constructions.icl.witness.ICLEvaluation` into long-format rows
(one per k, prompt set, n, model, ε) — the CSV data; :func:`plot_curves` draws them with matplotlib
(Agg backend) into a PNG and a PDF whose metadata carry no timestamp, so reruns give the same bytes.
Accuracies are certified intervals; the plots show their midpoints (the intervals are points whenever
every greedy answer was decided, which the CSV records).  :data:`CAPTION` says what a figure shows and
defines its symbols; ``bench_icl`` prints it with the figures' names and writes it into BENCHMARKS.md.
"""

from __future__ import annotations

import csv
import io
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from constructions.icl.surgery import boundary_rates
from constructions.icl.witness import ICLEvaluation, smallest_surgery_n
from empirical.figures import save_figure, tex_number
from theory.fileio import write_atomic

FIELDS = ("k", "prompts", "n", "model", "epsilon", "acc_lo", "acc_hi", "median_w", "median_log_P_over_R")

CAPTION = (
    "Each `icl_curves_k*.png` (and `.pdf`) plots, for prompts of n examples of k tokens each from the GINC-size "
    "mixture of HMMs, a quantity against the number of examples n (x axis linear up to 4, logarithmic beyond). "
    "**Left:** ICL accuracy (the fraction of prompts whose greedy answer is the correct label) of P, the Bayes-optimal "
    "predictor of the pretraining distribution (thick solid black: prompts of the pretraining, in-distribution "
    "concepts; thin dashed black: prompts of held-out concepts), and of the local-surgery witness Q, one coloured "
    "line per ε: Q = P except at the ICL-format answer prefixes A(n), where q = (1 − λ) p + λ δ_d puts weight "
    "λ = 3/5 on the delimiter d (δ_d: the point mass on d), switched on from the smallest n at which its certified "
    "KL(P‖Q) ≤ M(A) ln(1/(1 − λ)) is at most ε (M(A): the pretraining mass of A(n)); from there its accuracy is 0. "
    "**Middle:** the same for the mixture Q_ε = (1 − ε) P + ε R, with R a model that does no in-context learning "
    "(its answers ignore the examples), KL(P‖Q_ε) ≤ −ln(1 − ε). **Right:** the median over prompts u of the "
    "mixture's posterior weight on R, w(u) = εR(u) / (εR(u) + (1 − ε) P(u)), one line per ε. Accuracies are "
    "certified intervals, drawn at their midpoints; the CSV holds both ends.")
"""What a figure of :func:`plot_curves` shows, every symbol defined (Markdown, for BENCHMARKS.md)."""


def curve_rows(ev: ICLEvaluation, epsilons: Sequence[Fraction], lam: Fraction, prompts: str) -> list[dict[str, object]]:
    """Rows for P, R, the surgery Q (switching at the smallest n with certified KL ≤ ε) and the
    mixture Q_ε, at every n of ``ev``."""
    hmm, k = ev.hmm, ev.prompts.k
    rates = boundary_rates(hmm, k)
    rows: list[dict[str, object]] = []

    def add(n: int, model: str, eps: Fraction | None, lo: Fraction, hi: Fraction, w: float | None = None) -> None:
        rows.append({"k": k, "prompts": prompts, "n": n, "model": model,
                     "epsilon": "" if eps is None else f"{float(eps):g}", "acc_lo": f"{float(lo):.6f}",
                     "acc_hi": f"{float(hi):.6f}", "median_w": "" if w is None else f"{w:.6g}",
                     "median_log_P_over_R": f"{float(np.median(ev.log_ratio(n))):.4f}"})

    switch = {eps: smallest_surgery_n(hmm, k, lam, eps, ev.prompts.n_max, rates) for eps in epsilons}
    for n in ev.ns:
        p = ev.acc_p[n].interval
        add(n, "P", None, p.lo, p.hi)
        r = ev.acc_r[n].interval
        add(n, "R", None, r.lo, r.hi)
        lr = ev.log_ratio(n)
        for eps in epsilons:
            at = switch[eps]
            if at is not None and n >= at:
                add(n, "Q_surgery", eps, Fraction(0), Fraction(0))
            else:
                add(n, "Q_surgery", eps, p.lo, p.hi)
            q = ev.mixture_accuracy(n, eps)[0].interval
            c = float((1 - eps) / eps)
            w = 1.0 / (1.0 + c * np.exp(np.clip(lr, -700, 700)))
            add(n, "Q_mixture", eps, q.lo, q.hi, float(np.median(w)))
    return rows


def rows_to_csv(rows: Iterable[dict[str, object]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return buf.getvalue()


def plot_curves(rows: Sequence[dict[str, object]], out_stem: str | Path, title: str = "") -> list[Path]:
    """Three panels — surgery, mixture, median w(u) — for the in-distribution prompts (held-out P
    dashed), labels in mathtext (:data:`CAPTION` defines every symbol).  Writes ``out_stem``.png and .pdf
    (no timestamps); returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def series(model: str, prompts: str, eps: str = "") -> tuple[list[int], list[float]]:
        pts = sorted((int(r["n"]), (float(r["acc_lo"]) + float(r["acc_hi"])) / 2) for r in rows
                     if r["model"] == model and r["prompts"] == prompts and r["epsilon"] == eps)
        return [p[0] for p in pts], [p[1] for p in pts]

    from matplotlib.ticker import FixedLocator, NullLocator

    epsilons = sorted({str(r["epsilon"]) for r in rows if r["epsilon"]}, key=float, reverse=True)
    colours = plt.get_cmap("viridis")(np.linspace(0.0, 0.85, max(len(epsilons), 1)))
    n_top = max(int(r["n"]) for r in rows)
    ticks = [t for t in (0, 1, 2, 4, 8, 16, 32, 64, 128, 256) if t <= n_top]

    def style(ax, ylabel: str) -> None:
        ax.set_xscale("symlog", linthresh=4, linscale=1.5)
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticklabels([str(t) for t in ticks])
        ax.set_xlim(-0.3, n_top * 1.1)
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel("examples in the prompt, $n$")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)

    fig, axes = plt.subplots(1, 3, figsize=(13.5, 4.4), constrained_layout=True)
    handles = []
    for ax, model, name in ((axes[0], "Q_surgery", r"local surgery: $q = (1 - \lambda)\, p + \lambda\, \delta_d$ on $A(n)$"),
                            (axes[1], "Q_mixture", r"mixture $Q_\varepsilon = (1 - \varepsilon) P + \varepsilon R$ ($R$: no ICL)")):
        n, a = series("P", "in-distribution")
        hp, = ax.plot(n, a, "k-o", ms=3, lw=2, label="$P$ (Bayes-optimal), ID concepts")
        n, a = series("P", "held-out")
        hh = ax.plot(n, a, "k--", lw=1, label="$P$, held-out concepts")[0] if n else None
        hq = []
        for eps, col in zip(epsilons, colours):
            n, a = series(model, "in-distribution", eps)
            hq.append(ax.plot(n, a, "-", color=col, lw=1.4, marker=".", ms=4,
                              label=f"$Q$, $\\varepsilon = {tex_number(eps)}$")[0])
        ax.set_title(name, fontsize=10)
        style(ax, "ICL accuracy")
        if not handles:
            handles = [hp] + ([hh] if hh else []) + hq
    ax = axes[2]
    for eps, col in zip(epsilons, colours):
        pts = sorted((int(r["n"]), float(r["median_w"])) for r in rows
                     if r["model"] == "Q_mixture" and r["prompts"] == "in-distribution" and r["epsilon"] == eps)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "-", color=col, marker=".", ms=4)
    ax.set_title("mixture: median posterior weight $w(u)$ on $R$", fontsize=10)
    style(ax, "median $w(u)$")
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, Path(out_stem), ("png", "pdf"), dpi=150)


def write_csv(rows: Sequence[dict[str, object]], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, rows_to_csv(rows))
    return path
