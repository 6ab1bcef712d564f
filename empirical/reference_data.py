"""Published numbers the experiments compare against, stored as data in ``empirical/reference/``.

Sources (each CSV's header says how the numbers were recomputed):

* ``anbn_regimes_published.csv`` — the position paper (Reizinger et al., ICML 2024, arXiv 2405.01964),
  aⁿbⁿ with maximum-likelihood / adversarial / oracle training; rule metric read at the checkpoint
  of minimum validation loss; test loss in the padded convention.
* ``rule_extrapolation_published.csv`` — Mészáros et al. (NeurIPS 2024, arXiv 2409.13728), L1–L6 ×
  architectures; rule accuracies are the MAX over validation checkpoints, test loss the MIN
  validation loss (padded convention).

Chance levels are not copied: :mod:`theory.chance` computes them exactly and keeps the published figures
beside them (:data:`theory.chance.PUBLISHED_CHANCE`, with why they differ where they do).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

REFERENCE_DIR = Path(__file__).resolve().parent / "reference"
REGIME_NAMES = {"ml": "max_likelihood", "adversarial": "adversarial", "oracle": "oracle"}


@dataclass(frozen=True)
class PublishedRow:
    """One published cell group: mean and sample std over ``runs`` runs (None = not reported)."""

    source: str
    aggregation: str
    language: str
    model: str
    regime: str
    runs: int
    values: dict[str, tuple[float | None, float | None]]  # metric -> (mean, std)


def _read(name: str) -> list[dict[str, str]]:
    with open(REFERENCE_DIR / name, newline="") as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


def _num(s: str) -> float | None:
    return float(s) if s.strip() else None


@lru_cache(maxsize=None)
def published_rows() -> tuple[PublishedRow, ...]:
    """Every published row of both CSVs, metrics renamed to ours (test_loss, id_r1, id_r2, ood_r1,
    ood_r2c)."""
    out = []
    for r in _read("anbn_regimes_published.csv"):
        if r["layers"] != "5":
            continue  # the 3-layer ML row is an ablation; we compare against the 5-layer setup
        regime = {v: k for k, v in REGIME_NAMES.items()}[r["regime"]]
        vals = {m: (_num(r[f"{m}_mean"]), _num(r[f"{m}_std"])) for m in ("test_loss", "ood_r1", "id_r1")}
        out.append(PublishedRow("arXiv 2405.01964", "best-validation", "L3", "transformer", regime, int(r["runs"]), vals))
    for r in _read("rule_extrapolation_published.csv"):
        vals = {m: (_num(r[f"{m}_mean"]), _num(r[f"{m}_std"])) for m in ("test_loss", "id_r1", "id_r2", "ood_r1", "ood_r2c")}
        out.append(PublishedRow("arXiv 2409.13728", "max-over-checkpoints", r["language"], r["model"], "ml", int(r["runs"]), vals))
    return tuple(out)


def published(language: str, model: str, regime: str) -> list[PublishedRow]:
    """The published rows for (language, model, regime); the regime paper first, then the companion."""
    return [r for r in published_rows() if r.language == language and r.model == model and r.regime == regime]
