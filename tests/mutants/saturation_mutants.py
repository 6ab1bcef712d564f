"""Mutants (issue 18): filled in by the saturation work."""

from __future__ import annotations
