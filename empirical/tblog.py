"""Offline TensorBoard logs of the experiment's runs (``nonid experiment … --log-dir DIR``).

One subdirectory per run, ``DIR/<run name>/``, holding TensorBoard event files written with
``torch.utils.tensorboard.SummaryWriter`` (it needs the ``tensorboard`` package: the ``[logging]``
extra, ``pip install -e '.[logging]'``; imported only when a log is opened).  Nothing is served: read
them with ``tensorboard --logdir DIR`` or :class:`tensorboard.backend.event_processing.event_accumulator.EventAccumulator`.

What is logged, all against the training step:

* ``train/loss`` and ``train/regime_loss`` — the batch's loss and the regime term's, nats per token
  (the training loop's progress line), every step;
* ``eval/<key>`` — every number of each evaluation (``val_loss`` in nats per sequence, the test losses,
  the rule metrics), at each evaluation;
* ``certified/<key>`` — once, at the last step, the run's recorded result: the certified saturation gap's
  bounds (``gap_token_lo``/``gap_token_hi`` nats per token, ``gap_padded_lo``/``gap_padded_hi`` nats per
  padded token, present only when the gap was computed), the best-validation OOD R1, ID R1, OOD R2c, test
  loss; and the run's summary line as text.  Event files store float32: the bounds are rounded outward to
  float32 (an upper bound up, a lower bound down), so they still bound.  These are copies of ``result.json`` for plotting: the
  certificate is made from ``result.json``, never from these files.

An event file is a log appended record by record (each with a CRC): an interrupted run leaves the records
written so far, and a resumed run starts a new file whose first record purges (hides) the older records
from its start step on, so the curves show each step once (``purge_step``).
"""

from __future__ import annotations

import importlib.util
import math
import os
import sys
from pathlib import Path
from typing import Any

from empirical.errors import InvalidExperimentConfig

__all__ = ["LOGGING_EXTRA", "RunLog", "check_log_dir", "check_tensorboard_available"]

LOGGING_EXTRA = "pip install -e '.[logging]'"
_CERTIFIED = ("gap_token_lo", "gap_token_hi", "gap_padded_lo", "gap_padded_hi", "floor_token", "floor_padded")
_RESULTS = ("ood_r1", "id_r1", "ood_r2c", "test_loss_token", "test_loss_padded")


def check_tensorboard_available(flag: str = "--log-dir") -> None:
    """Raise :class:`InvalidExperimentConfig` (naming ``flag`` and the extra) when ``tensorboard`` cannot
    be imported here (checked without importing it)."""
    if "tensorboard" in sys.modules:
        ok = sys.modules["tensorboard"] is not None
    else:
        try:
            ok = importlib.util.find_spec("tensorboard") is not None
        except (ImportError, ValueError):
            ok = False
    if not ok:
        raise InvalidExperimentConfig(f"{flag} writes TensorBoard event files and needs the tensorboard package: {LOGGING_EXTRA}")


def check_log_dir(log_dir: str | os.PathLike[str], out: str | os.PathLike[str] | None = None) -> Path:
    """``log_dir`` as an absolute path, if it can hold the logs: not an existing file, not inside ``out``
    (the experiment folder holds only its own files) and ``out`` not inside it; tensorboard installed.

    Raises:
        InvalidExperimentConfig: naming ``--log-dir`` and the value.
    """
    path = Path(log_dir).expanduser().absolute()
    if path.exists() and not path.is_dir():
        raise InvalidExperimentConfig(f"--log-dir {os.fspath(log_dir)!r} is a file, not a folder")
    if out is not None:
        target = Path(out).expanduser().absolute()
        if path == target or target in path.parents or path in target.parents:
            raise InvalidExperimentConfig(f"--log-dir {os.fspath(log_dir)!r} and --out {os.fspath(out)!r} overlap: "
                                          "the experiment folder holds only its own files; give a folder beside it")
    check_tensorboard_available()
    return path


def _finite(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _float32(x: float, direction: str | None) -> float:
    """``x`` as the float32 TensorBoard stores, rounded ``up`` or ``down`` for a bound (so it still bounds)."""
    import numpy as np

    f = np.float32(x)
    if direction == "up" and float(f) < x:
        f = np.nextafter(f, np.float32(np.inf))
    elif direction == "down" and float(f) > x:
        f = np.nextafter(f, np.float32(-np.inf))
    return float(f)


class RunLog:
    """The event files of one run, ``log_dir/name/``; the writer is opened by :meth:`start` (when the
    training loop knows its first step) and closed by :meth:`close`.  Safe to pickle before
    :meth:`start` (it holds only paths then)."""

    def __init__(self, log_dir: str | os.PathLike[str], name: str) -> None:
        self.path = Path(log_dir) / name
        self._writer: Any = None

    def start(self, step: int, *, resumed: bool) -> None:
        """Open the writer: a fresh run (``resumed`` false) hides every older record of this run's folder,
        a resumed one those after ``step`` (its checkpoint: what came later is trained again)."""
        if self._writer is not None:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise InvalidExperimentConfig(f"--log-dir needs the tensorboard package: {LOGGING_EXTRA}") from None
        self.path.mkdir(parents=True, exist_ok=True)
        self._writer = SummaryWriter(str(self.path), purge_step=step + 1 if resumed else 0, flush_secs=30)

    def train_step(self, step: int, loss: float, regime_loss: float | None) -> None:
        """The batch's loss (and the regime term's) after ``step`` steps, nats per token."""
        if self._writer is None:
            return
        self._writer.add_scalar("train/loss", loss, step)
        if regime_loss is not None:
            self._writer.add_scalar("train/regime_loss", regime_loss, step)

    def evaluation(self, record: dict[str, Any]) -> None:
        """Every finite number of one evaluation record (``{"step", "val_loss", …}``)."""
        if self._writer is None:
            return
        step = int(record["step"])
        for key, value in sorted(record.items()):
            v = _finite(value)
            if key != "step" and v is not None:
                self._writer.add_scalar(f"eval/{key}", v, step)

    def result(self, row: Any, summary: str | None = None) -> None:
        """The finished run's recorded numbers (a :class:`empirical.rows.RunRow`) at its last step."""
        if self._writer is None:
            return
        step = int(row.steps_done)
        gap = row.gap
        if gap is not None:
            for key in _CERTIFIED:
                v = _finite(getattr(gap, key))
                if v is not None:  # float32 in the event file: bounds rounded outward
                    direction = "up" if key.endswith("_hi") else "down" if key.endswith("_lo") else None
                    self._writer.add_scalar(f"certified/{key}", _float32(v, direction), step)
            self._writer.add_scalar("certified/gap_rigorous", float(bool(gap.gap_rigorous)), step)
        for key in _RESULTS:
            v = _finite(getattr(row, key))
            if v is not None:
                self._writer.add_scalar(f"certified/{key}", v, step)
        if summary:
            self._writer.add_text("summary", summary, step)

    def close(self) -> None:
        """Flush and close the writer (a no-op when it was never opened)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
