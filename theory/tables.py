"""Markdown (GitHub) tables as lines of text: the one table writer of the appendix's Markdown, the
experiment report and the benchmarks.  Pure strings: cells are written as given (a caller escapes
what its cells need, e.g. ``|``)."""

from __future__ import annotations

from typing import Iterable, Sequence

__all__ = ["markdown_table"]

_ALIGN = {None: "---", "": "---", "-": "---", "l": ":---", "r": "---:", "c": ":---:"}


def markdown_table(header: Sequence[object], rows: Iterable[Sequence[object]],
                   align: Sequence[str | None] | str | None = None) -> list[str]:
    """The lines of a Markdown table: ``| h1 | h2 |``, the rule (``|---|---|``), then one line per row.

    ``align`` gives one letter per column (``l``, ``r``, ``c``; ``-`` or None for the plain ``---``), as
    a string (``"lrr"``) or a sequence; None leaves every column plain.  Cells are ``str()``-ed.

    Raises:
        KeyError: an alignment letter other than those.
    """
    cols = len(header)
    marks = [None] * cols if align is None else list(align)
    lines = ["| " + " | ".join(str(h) for h in header) + " |", "|" + "|".join(_ALIGN[a] for a in marks) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines
