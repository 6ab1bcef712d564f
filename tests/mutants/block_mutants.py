"""Mutants (issue 18): filled in by the block work."""

from __future__ import annotations
