"""Progress of a long loop on stderr: the one printer the distiller and the training loop share.

A :class:`Progress` shows a tqdm bar when tqdm is installed (none otherwise) and prints whole lines
(flushed, to stderr) on request; each caller decides what its lines say and how often.  Nothing here
reaches stdout, so a command's table or JSON output stays clean.
"""

from __future__ import annotations

import sys

__all__ = ["Progress"]


class Progress:
    """A bar of ``total`` steps (starting at ``initial``, titled ``label``) when tqdm is installed and
    ``enabled``; :meth:`line` prints when ``enabled`` whether or not there is a bar."""

    def __init__(self, total: int, *, label: str | None = None, initial: int = 0, enabled: bool = True,
                 mininterval: float = 0.1) -> None:
        self.enabled = enabled
        self._bar = None
        if enabled:
            try:
                from tqdm import tqdm
            except ImportError:  # plain lines instead
                return
            self._bar = tqdm(total=total, initial=initial, desc=label, file=sys.stderr, leave=False,
                             mininterval=mininterval)

    @property
    def has_bar(self) -> bool:
        """Whether a tqdm bar is shown (tqdm installed and progress enabled)."""
        return self._bar is not None

    def advance(self, step: int, status: str | None = None) -> None:
        """Move the bar to ``step`` and, given ``status``, show it beside the bar; no-op without a bar."""
        if self._bar is None:
            return
        if step != self._bar.n:
            self._bar.update(step - self._bar.n)
        if status is not None:
            self._bar.set_postfix_str(status)

    def line(self, text: str) -> None:
        """Print ``text`` as one flushed line on stderr (when enabled)."""
        if self.enabled:
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        """Remove the bar (lines printed stay)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
