"""Mutants (issue 18): filled in by the exact work."""

from __future__ import annotations
