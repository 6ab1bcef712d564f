"""Proposition 3, every block: filled in by the symbolic-block work (issue 18)."""

from __future__ import annotations

from proofs import ProofCheck

CHECKS: list[ProofCheck] = []
