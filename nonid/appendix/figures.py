"""The appendix's figures, drawn from certificates only, as PDF and PNG sized for a two-column paper
(3.4 in wide for one column, 7 in for both), with no timestamps or software tags in their metadata so
that the same certificates give the same bytes.  The one exception is ``z3-time-vs-horizon``'s right
panel: solver seconds are measured on the machine that ran the proofs (certificate ``timings``, never
hashed), so that figure changes from run to run.

Labels are mathtext (``$\\theta_k$``, ``$\\varepsilon = 10^{-6}$``, numbers through
:func:`empirical.figures.tex_number`); each :class:`Figure`'s caption defines every symbol its figure
shows, with inline math between ``$…$`` that :mod:`nonid.appendix.render` keeps as math in LaTeX and
Markdown.  The OOD-R1-against-gap figure is drawn by :func:`empirical.figures.ood_vs_gap`, the one
helper for every figure of that kind.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from empirical.figures import GAP_FLOOR, ood_vs_gap, save_figure, tex_number
from nonid.appendix.sources import Entry

COLUMN_IN = 3.4
WIDE_IN = 7.0
PNG_DPI = 200
RC: dict[Any, Any] = {"font.size": 7, "axes.titlesize": 7, "axes.labelsize": 7, "legend.fontsize": 6, "xtick.labelsize": 6,
      "ytick.labelsize": 6, "lines.linewidth": 1.0, "lines.markersize": 3.5, "axes.linewidth": 0.6,
      "pdf.fonttype": 42, "svg.hashsalt": "nonid"}


@dataclass(frozen=True)
class Figure:
    """A drawn figure: ``name`` (files figures/NAME.pdf and .png), caption (plain text with inline math
    between ``$…$``), whether it spans both columns, and whether its bytes depend on measured times."""

    name: str
    caption: str
    wide: bool = False
    timed: bool = False


def _plain(s: object) -> str:
    """Certificate text for a caption: never a math delimiter."""
    return str(s).replace("$", "")


FAMILY_LABELS = {"qk": "$(W_Q, W_K)$ scaling", "vo": "$(W_V, W_O)$ scaling", "mlp": "$(W_1, W_2)$ scaling"}
"""Legend label of each rescaling family of ``finetuning-gap-vs-alpha``."""
FINETUNING_FLOOR = 1e-6
"""Fine-tuning gaps below this are drawn at it (the log axis shows no 0)."""


def _find(entries: Sequence[Entry], check: str) -> Entry | None:
    return next((e for e in entries if e.check == check), None)


def _save(fig, out_dir: Path, name: str) -> None:
    save_figure(fig, out_dir / name, ("pdf", "png"), dpi=PNG_DPI)


def _z3_points(entries: Sequence[Entry]) -> dict[tuple[str, int], tuple[int, float | None, str]]:
    """(lemma, horizon) -> (variables, solver seconds or None, status)."""
    pts: dict[tuple[str, int], tuple[int, float | None, str]] = {}
    for e in entries:
        if re.fullmatch(r"z3-lemma-[abc]-h\d+", e.check):
            q = e.certificate.quantities
            if isinstance(q.get("horizon"), int) and isinstance(q.get("variables"), int):
                pts[(e.check.split("-")[2].upper(), q["horizon"])] = (q["variables"], e.certificate.timings.get("solver_seconds"),
                                                                     e.certificate.status.value)
    series = _find(entries, "z3-lemmas-by-horizon")
    if series is not None:
        for r in series.certificate.quantities.get("rows", []):
            t = series.certificate.timings.get(f"solver_seconds_{r['lemma'].lower()}_h{r['horizon']}")
            pts[(r["lemma"], r["horizon"])] = (r["variables"], t, r["status"])
    return pts


def draw(entries: Sequence[Entry], out_dir: Path) -> list[Figure]:
    """Draw every figure whose certificates are present into ``out_dir``; return them in appendix order."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, FormatStrFormatter, NullLocator

    figures: list[Figure] = []
    with matplotlib.rc_context(RC):
        pts = _z3_points(entries)
        if pts:
            any_bad = False
            timed = any(v[1] is not None for v in pts.values())
            fig, axes = plt.subplots(1, 2 if timed else 1, figsize=(WIDE_IN if timed else COLUMN_IN, 2.2),
                                     constrained_layout=True, squeeze=False)
            for i, lemma in enumerate(sorted({k[0] for k in pts})):
                hs = sorted(h for (x, h) in pts if x == lemma)
                style = dict(marker="osD"[i % 3], color=f"C{i}", label=f"Lemma {lemma}")
                axes[0][0].plot(hs, [pts[(lemma, h)][0] for h in hs], **style)
                if timed:
                    ht = [h for h in hs if pts[(lemma, h)][1] is not None]
                    axes[0][1].plot(ht, [max(pts[(lemma, h)][1], 1e-3) for h in ht],  # type: ignore[type-var]  # ht: timed only
                                    **style)
                bad = [h for h in hs if pts[(lemma, h)][2] != "verified"]
                if bad:
                    any_bad = True
                    axes[0][0].plot(bad, [pts[(lemma, h)][0] for h in bad], "x", color="red", ms=6,
                                    label="not verified" if i == 0 else None)
            horizons = sorted({h for _x, h in pts})
            axes[0][0].set(yscale="log", xlabel="horizon $L$", ylabel="z3 variables (all models)")
            axes[0][0].legend(frameon=False)
            if timed:
                axes[0][1].set(yscale="log", xlabel="horizon $L$", ylabel="z3 seconds (parse + solve)")
            for ax in axes[0]:
                ax.xaxis.set_major_locator(FixedLocator(horizons))  # horizons are whole numbers: no 2.5
                ax.xaxis.set_major_formatter(FormatStrFormatter("%d"))
                ax.xaxis.set_minor_locator(NullLocator())
                ax.grid(alpha=0.3, lw=0.4)
            _save(fig, out_dir, "z3-time-vs-horizon")
            figures.append(Figure("z3-time-vs-horizon",
                                  "z3 proofs of Lemmas A, B and C against the horizon $L$ (each lemma is proved for every "
                                  "data distribution and every model on the words over $\\{a, b\\}$ of length at most $L$), "
                                  "one line per lemma: "
                                  "the number of z3 variables over all models of the encoding (left, log scale)"
                                  + (" and the solver seconds, parsing and solving, on the machine that produced the "
                                     "certificates (right, log scale; certificate timings, not hashed, so this panel "
                                     "changes from run to run)" if timed else "")
                                  + ("; a red cross marks a horizon whose proof is not verified." if any_bad else "."),
                                  wide=timed, timed=timed))
        mix = _find(entries, "prop-2-icl-mixture")
        per_n = mix.certificate.quantities.get("per_n") if mix else None
        if isinstance(per_n, dict) and per_n:
            assert mix is not None  # per_n came from it
            ns = sorted(per_n, key=int)
            x = [int(n) for n in ns]

            def series(key: str) -> list[float]:
                return [float(per_n[n][key]["approx"]) if isinstance(per_n[n].get(key), dict) else math.nan for n in ns]

            fig, ax = plt.subplots(figsize=(COLUMN_IN, 2.2), constrained_layout=True)
            eps = _plain(tex_number(mix.certificate.quantities.get("epsilon", {}).get("exact", "?")))
            ax.plot(x, series("acc_P"), "k-o", label="$P$ (Bayes-optimal)")
            ax.plot(x, series("acc_Q"), "-s", color="C1", label=f"$Q_\\varepsilon$, $\\varepsilon = {eps}$")
            ax.plot(x, series("acc_R"), ":", color="C2", label="$R$ (no ICL)")
            surgery = _find(entries, "prop-2-icl-surgery")
            surgery_n = None
            if surgery is not None and isinstance(surgery.certificate.quantities.get("n"), int):
                sq = surgery.certificate.quantities
                surgery_n = sq["n"]
                ax.plot([sq["n"]], [float(sq.get("acc_Q", {}).get("approx", math.nan))], "v", color="C3", ms=5,
                        label=f"surgery $Q$ at $n = {sq['n']}$")
            ax.set_xscale("symlog", linthresh=4, linscale=1.5)
            # every evaluated n when there are few of them, else the doublings
            ticks = (sorted(set(x)) if len(set(x)) <= 8 else
                     [t for t in (0, 1, 2, 4, 8, 16, 32, 64, 128, 256) if t <= max(x)])
            ax.xaxis.set_major_locator(FixedLocator(ticks))
            ax.xaxis.set_minor_locator(NullLocator())
            ax.set_xticklabels([str(t) for t in ticks])
            ax.set(xlabel="examples in the prompt, $n$", ylabel="ICL accuracy", ylim=(-0.03, 1.03))
            ax.grid(alpha=0.3, lw=0.4)
            ax.legend(frameon=False, loc="lower left", bbox_to_anchor=(0.0, 0.05))
            _save(fig, out_dir, "icl-accuracy-vs-n")
            figures.append(Figure(
                "icl-accuracy-vs-n",
                "ICL accuracy (the fraction of prompts whose greedy answer is the correct one) against the number $n$ of "
                "examples in the prompt (axis linear up to 4, logarithmic beyond), for the data distribution $P$ (its "
                "Bayes-optimal predictor, solid black), the mixture $Q_\\varepsilon = (1 - \\varepsilon) P + \\varepsilon R$ "
                f"with $\\varepsilon = {eps}$, whose $\\mathrm{{KL}}(P \\| Q_\\varepsilon) \\le -\\ln(1 - \\varepsilon)$ "
                "(squares), and the no-ICL model $R$ (dotted), from prop-2-icl-mixture"
                + (f"; the triangle is the local-surgery witness $Q$ at the smallest $n$ where its gap is certified "
                   f"($n = {surgery_n}$), from prop-2-icl-surgery." if surgery_n is not None else ".")))
        sweep = _find(entries, "finetuning-gap-vs-alpha")
        if sweep is not None and sweep.certificate.quantities.get("points"):
            q = sweep.certificate.quantities
            fig, ax = plt.subplots(figsize=(COLUMN_IN, 2.2), constrained_layout=True)
            margin = q.get("margin", 1e-3)
            floored = False
            for i, fam in enumerate(q.get("families", [])):
                p = sorted((pt["alpha"], pt["loss_gap"]) for pt in q["points"]
                           if pt["family"] == fam and pt["alpha"] != 1.0 and pt["loss_gap"] is not None)
                for side, part in enumerate(([pt for pt in p if pt[0] < 1], [pt for pt in p if pt[0] > 1])):
                    if part:  # no line through alpha = 1, where the gap is exactly 0
                        floored = floored or any(g < FINETUNING_FLOOR for _, g in part)
                        ax.plot([a for a, _ in part], [max(g, FINETUNING_FLOOR) for _, g in part], marker="osD"[i % 3],
                                color=f"C{i}", label=FAMILY_LABELS.get(fam, _plain(fam)) if side == 0 or not p[0][0] < 1
                                else None)
            ax.axhline(margin, color="grey", ls="--", lw=0.7, label=f"margin ${_plain(tex_number(margin))}$")
            ax.axvline(1.0, color="grey", ls=":", lw=0.7)
            ax.set(xscale="log", yscale="log", xlabel=r"$\alpha$ ($\alpha = 1$: identity, gap 0)",
                   ylabel=r"$|L(\theta_k) - L(\theta'_k)|$ (nats)")
            ax.xaxis.set_major_locator(FixedLocator(sorted(set(q.get("alphas", [])) | {1.0})))
            ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
            ax.xaxis.set_minor_locator(NullLocator())
            ax.grid(alpha=0.3, lw=0.4)
            ax.legend(frameon=False)
            _save(fig, out_dir, "finetuning-gap-vs-alpha")
            steps = _plain(q.get("steps", "?"))
            figures.append(Figure(
                "finetuning-gap-vs-alpha",
                f"Fine-tuning gap $|L(\\theta_k) - L(\\theta'_k)|$ against $\\alpha$ (both axes log scale): "
                f"$\\theta_k$ and $\\theta'_k$ are the weights after $k = {steps}$ SGD steps on the fine-tuning task "
                "from the pretrained $\\theta$ and from its function-preserving rescaling $\\theta' = T_\\alpha(\\theta)$, "
                "and $L$ is the fine-tuning loss in nats per sequence. One line per family, the same $\\alpha$ on every "
                "head or MLP layer: $(W_Q, W_K) \\to (\\alpha W_Q, W_K / \\alpha)$, $(W_V, W_O) \\to (\\alpha W_V, "
                "W_O / \\alpha)$, $(W_1, W_2) \\to (\\alpha W_1, W_2 / \\alpha)$. At $\\alpha = 1$ (dotted) $T_\\alpha$ is "
                f"the identity and the gap is exactly 0; the dashed line is the margin ${_plain(tex_number(margin))}$ the "
                "gap must reach"
                + (f"; gaps below ${tex_number(FINETUNING_FLOOR)}$ are drawn at it" if floored else "")
                + ". From finetuning-gap-vs-alpha."))
        exp = next((e for e in entries if e.check.startswith("experiment-")), None)
        runs = [r for r in (exp.certificate.quantities.get("runs", []) if exp else [])
                if r.get("gap_padded_hi") is not None and r.get("ood_r1") is not None]
        if runs:
            assert exp is not None  # runs came from it
            fig, ax = plt.subplots(figsize=(COLUMN_IN, 2.2), constrained_layout=True)
            scale = ood_vs_gap(ax, [(r["arch"], r["regime"], r["gap_padded_hi"], r["ood_r1"]) for r in runs], size=14)
            ax.legend(frameon=False, loc="center left")
            _save(fig, out_dir, "ood-r1-vs-gap")
            floored = any(r["gap_padded_hi"] < GAP_FLOOR for r in runs)
            figures.append(Figure(
                "ood-r1-vs-gap",
                "OOD R1 (the fraction of out-of-distribution prompts whose greedy completion, prompt included, satisfies "
                "the rule $R_1$ of the language, for $a^n b^n$ equally many $a$ and $b$) against the certified saturation "
                "gap: the upper end of the certified interval on $\\mathrm{KL}(P \\| Q)/(T - 1)$, in nats per token, with $P$ "
                "the data distribution, $Q$ the trained model and $T$ the padded length of every sequence ("
                + ("log scale" if scale == "log" else "linear scale") + "). One point per trained run; colour: the "
                "training regime (ml: maximum likelihood; adversarial and oracle: with an adversarial or an oracle term); "
                "marker: the architecture"
                + (f"; gaps below ${tex_number(GAP_FLOOR)}$ are drawn at it" if floored else "")
                + f". From {_plain(exp.check)}."))
    return figures
