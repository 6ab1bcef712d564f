"""Saving a matplotlib figure: the one writer of figure files (the appendix's, the experiment report's,
the benchmarks').

Torch-free, and matplotlib is imported only when a figure is saved, so ``nonid.appendix`` and
``benchmarks`` import this without pulling in torch.  Files carry no timestamps or software tags, so
the same figure gives the same bytes, and each is written atomically (:func:`theory.fileio.write_atomic`).
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, Sequence

from theory.fileio import write_atomic

__all__ = ["save_figure", "FIGURE_METADATA"]

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
    import matplotlib.pyplot as plt

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
