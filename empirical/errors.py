"""Typed errors of the empirical side.  Each names the offending value; all derive from
:class:`~theory.errors.NonidError`, so the command line turns them into one stderr line and exit 2."""

from __future__ import annotations

from theory.errors import NonidError


class UnknownArchitecture(NonidError):
    """An architecture name that is not registered (the message lists the known ones)."""


class UnknownRegime(NonidError):
    """A training regime that is unknown, or that does not apply to the language."""


class InvalidExperimentConfig(NonidError):
    """A size, step count, seed count, device or aggregation that cannot be used."""


class ConfigTooLarge(NonidError):
    """A configuration whose estimated memory exceeds what the device has (refused before training)."""


class CorruptCheckpoint(NonidError):
    """A checkpoint that cannot be read or does not belong to the run being resumed; the run
    directory is left untouched."""
