"""Mutants (issue 18): filled in by the finetuning work."""

from __future__ import annotations
