"""What every figure of the project shares: the one writer of figure files (the appendix's, the
experiment report's, the benchmarks'), numbers as math, and the OOD-R1-against-gap scatter.

* :func:`save_figure` — files carry no timestamps or software tags, so the same figure gives the same
  bytes, and each is written atomically (:func:`theory.fileio.write_atomic`);
* :func:`tex_number` — a number as matplotlib mathtext (and LaTeX math): ``10^{-6}``, not ``1/1000000``;
* :func:`gap_axis` and :func:`ood_vs_gap` — the scatter of OOD R1 against the certified saturation gap,
  drawn the same way (same scale rule, tick locator and formatter, labels) in the experiment report
  and in the appendix.

Torch-free, and matplotlib is imported only inside the functions, so ``nonid.appendix`` and
``benchmarks`` import this without pulling in torch.
"""

from __future__ import annotations

import io
import math
import os
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterable, Sequence

from theory.fileio import write_atomic

__all__ = ["save_figure", "FIGURE_METADATA", "tex_number", "gap_axis", "ood_vs_gap", "GAP_LABEL", "GAP_FLOOR",
           "REGIME_COLOURS", "ARCH_MARKERS"]

FIGURE_METADATA = {
    "png": {"Software": None},
    "pdf": {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None},
}
"""Per format, the metadata that matplotlib would otherwise fill with a timestamp or its version."""


def save_figure(fig: Any, stem: str | os.PathLike[str], formats: Sequence[str] = ("pdf", "png"), *,
                dpi: float = 200) -> list[Path]:
    """Write ``fig`` as STEM.FORMAT for each of ``formats`` (folders made as needed), then close it.

    ``dpi`` sets the raster resolution (PNG; images inside a PDF).  Returns the paths, in the order of
    ``formats``.

    Raises:
        OSError: the folder cannot be written (files already written stay; none is half-written).
    """
    import logging

    import matplotlib.pyplot as plt

    # fontTools, subsetting an embedded TrueType font (pdf.fonttype 42), warns on stderr that the font's
    # own creation date "seems very low": harmless, and not a line a user should have to read
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    try:
        for ext in formats:
            buf = io.BytesIO()
            fig.savefig(buf, format=ext, dpi=dpi, metadata=FIGURE_METADATA.get(ext))
            path = stem.with_name(f"{stem.name}.{ext}")
            write_atomic(path, buf.getvalue())
            paths.append(path)
    finally:
        plt.close(fig)
    return paths


def tex_number(x: Any, digits: int = 3) -> str:
    """``x`` as math for a figure label or a LaTeX caption (no ``$``): an exact power of ten as
    ``10^{-6}`` (``x`` may be a :class:`~fractions.Fraction`, its text ``"1/1000000"``, ``1e-06`` or
    ``"1e-06"``), other numbers of moderate size as ``%g`` with ``digits`` significant digits, very large or
    small ones as ``2.5 \\times 10^{-7}``.  Text that is not a number is returned unchanged."""
    try:
        f = Fraction(str(x)) if not isinstance(x, Fraction) else x
    except (ValueError, ZeroDivisionError):
        return str(x)
    if f > 0:
        for num, den, sign in ((f.numerator, f.denominator, "-"), (f.denominator, f.numerator, "")):
            if num == 1 and den >= 10 and str(den).rstrip("0") == "1" and (sign or den >= 1000):
                return f"10^{{{sign}{len(str(den)) - 1}}}"
    v = float(f)
    if v == 0 or 1e-3 <= abs(v) < 1e4:
        return f"{v:.{digits}g}"
    exp = math.floor(math.log10(abs(v)))
    mant = v / 10**exp
    if f"{mant:.{digits}g}" == "10":
        mant, exp = mant / 10, exp + 1
    return f"{mant:.{digits}g} \\times 10^{{{exp}}}"


GAP_FLOOR = 1e-12
"""Gaps below this (a certified gap of 0, say) are drawn at it, so that a log axis can show them."""

GAP_LABEL = r"certified gap $\mathrm{KL}(P\,\|\,Q)/(T-1)$ (nats/padded token)"
"""The x label of :func:`ood_vs_gap`: the upper end of the certified saturation gap, per token, padded."""

REGIME_COLOURS = {"ml": "tab:blue", "adversarial": "tab:red", "oracle": "tab:green"}
ARCH_MARKERS = {"transformer": "o", "transformer-nopos": "x", "lstm": "s", "linear": "^", "ssm": "D"}


def gap_axis(ax: Any, gaps: Sequence[float]) -> str:
    """Scale and ticks of the gap axis (x) of an OOD-R1-against-gap scatter, one rule wherever it is drawn.

    Gaps spanning more than two decades get a log axis with a labelled tick at decades only (``10^{k}``,
    at most seven: every other decade beyond that) and unlabelled minor ticks, so labels never overlap and
    at least two are shown; within two decades a log axis would label one decade or none (or crowd its
    minor ticks), so the axis is linear from 0 in scientific notation with at most five ticks, and
    near-equal gaps read as near-equal.  Returns ``"log"`` or ``"linear"``.
    """
    from matplotlib.ticker import LogFormatterSciNotation, LogLocator, MaxNLocator, NullFormatter

    xs = [max(g, GAP_FLOOR) for g in gaps]
    if xs and max(xs) / min(xs) > 100:
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10, numticks=7))
        ax.xaxis.set_major_formatter(LogFormatterSciNotation(base=10))
        ax.xaxis.set_minor_formatter(NullFormatter())
        return "log"
    ax.set_xscale("linear")
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 3), useMathText=True)
    ax.set_xlim(0, max(xs, default=1.0) * 1.25)
    return "linear"


def ood_vs_gap(ax: Any, points: Iterable[tuple[str, str, float, float]], *, size: float | None = None) -> str:
    """Draw OOD R1 (y) against the certified gap per token (x) on ``ax``, one point per run:
    ``points`` are ``(architecture, regime, gap upper end, OOD R1)``; colour is the regime
    (:data:`REGIME_COLOURS`), marker the architecture (:data:`ARCH_MARKERS`), one legend entry per
    (architecture, regime).  The gap axis follows :func:`gap_axis`; gaps below :data:`GAP_FLOOR` are
    drawn at it.  Sets the labels, the y range and the grid (the caller adds the legend and a title);
    returns the scale of the gap axis (``"log"`` or ``"linear"``)."""
    pts = list(points)
    seen: set[tuple[str, str]] = set()
    for arch, regime, gap, ood in pts:
        ax.scatter(max(gap, GAP_FLOOR), ood, c=REGIME_COLOURS.get(regime, "k"), s=size, marker=ARCH_MARKERS.get(arch, "o"),
                   label=f"{arch}, {regime}" if (arch, regime) not in seen else None)
        seen.add((arch, regime))
    scale = gap_axis(ax, [p[2] for p in pts])
    ax.set(xlabel=GAP_LABEL, ylabel="OOD R1", ylim=(-0.05, 1.05))
    ax.grid(alpha=0.3, lw=0.4)
    return scale
