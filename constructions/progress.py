"""Progress of a long loop on stderr: the one printer the distiller, the training loops and the
experiment grid share.

A :class:`Progress` shows a tqdm bar when tqdm is installed (none otherwise) and prints whole lines
(flushed, to stderr) on request; each caller decides what its lines say and how often.  With
``terminal_only`` (the experiment's loops) the bar is drawn only when stderr is a terminal and bars
are not turned off in this process (:func:`no_bars`, which worker processes use: several processes
cannot share one terminal's bars); otherwise there is no bar and the caller prints its plain lines,
so logs and captured output stay line by line.  Nothing here reaches stdout, so a command's table or
JSON output stays clean; :meth:`Progress.around` prints a caller's stdout line with the bars cleared
first and redrawn after.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Callable, Iterator

__all__ = ["Progress", "bars_allowed", "no_bars"]

_BARS = True  # turned off by no_bars()


def bars_allowed() -> bool:
    """Whether a ``terminal_only`` bar may be drawn now: stderr is a terminal and bars are not turned off."""
    try:
        terminal = sys.stderr.isatty()
    except (AttributeError, ValueError):  # no stderr, or a closed one
        terminal = False
    return _BARS and terminal


@contextmanager
def no_bars() -> Iterator[None]:
    """No ``terminal_only`` bar in this process for the duration of the block (plain lines instead)."""
    global _BARS
    before, _BARS = _BARS, False
    try:
        yield
    finally:
        _BARS = before


class Progress:
    """A bar of ``total`` steps (starting at ``initial``, titled ``label``, counted in ``unit``) when tqdm
    is installed and ``enabled`` — and, with ``terminal_only``, when :func:`bars_allowed`; :meth:`line`
    prints when ``enabled`` whether or not there is a bar."""

    def __init__(self, total: int, *, label: str | None = None, initial: int = 0, enabled: bool = True,
                 mininterval: float = 0.1, terminal_only: bool = False, unit: str = "it", leave: bool = False) -> None:
        self.enabled = enabled
        self._bar = None
        if enabled and (not terminal_only or bars_allowed()):
            try:
                from tqdm import tqdm
            except ImportError:  # plain lines instead
                return
            self._bar = tqdm(total=total, initial=initial, desc=label, file=sys.stderr, leave=leave,
                             mininterval=mininterval, unit=unit, dynamic_ncols=True)

    @property
    def has_bar(self) -> bool:
        """Whether a tqdm bar is shown (tqdm installed and progress enabled)."""
        return self._bar is not None

    def advance(self, step: int, status: str | None = None) -> None:
        """Move the bar to ``step`` and, given ``status``, show it beside the bar; no-op without a bar."""
        if self._bar is None:
            return
        if status is not None:  # shown with the next redraw, which update() makes when it is due
            self._bar.set_postfix_str(status, refresh=False)
        if step != self._bar.n:
            self._bar.update(step - self._bar.n)

    def line(self, text: str) -> None:
        """Print ``text`` as one flushed line on stderr (when enabled), above the bar if there is one."""
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.write(text, file=sys.stderr)
            sys.stderr.flush()
        else:
            print(text, file=sys.stderr, flush=True)

    def around(self, write: Callable[[str], object], text: str) -> None:
        """``write(text)`` (a caller's own output, stdout) with every bar cleared first and redrawn after, so
        the line does not land inside a bar; just ``write(text)`` without a bar."""
        if self._bar is None:
            write(text)
            return
        with self._bar.external_write_mode():
            write(text)

    def close(self) -> None:
        """Remove the bar (lines printed stay)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
