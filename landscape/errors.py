"""Typed errors raised by the library; the CLI turns them into one-line messages.

Nothing below ``landscape.cli`` prints or exits: it raises one of these, and the message says
what was found, what was expected, and (where it helps) what to do about it.
"""

from __future__ import annotations


class LandscapeError(Exception):
    """Base class of every error this package raises on purpose."""


class InputError(LandscapeError, ValueError):
    """A user-supplied value (argument, option, name) is invalid.

    ``param`` names the library argument at fault (``metrics``, ``x`` ...) as the message writes
    it in backticks; the CLI replaces that name by its option (``--metrics``)."""

    def __init__(self, message: str, *, param: str | None = None):
        super().__init__(message)
        self.param = param


class FormatError(LandscapeError):
    """A file exists but does not hold what it should."""


class ReadError(FormatError):
    """A file could not be read (missing, truncated, corrupt or of the wrong layout)."""


class WriteError(LandscapeError):
    """An output could not be written (unwritable folder, full disk ...)."""


class ResumeMismatch(LandscapeError):
    """An existing output was made with different arguments than the ones given now."""


class FileInUse(LandscapeError):
    """Another process holds the lock of an output (a scan writing the same surface file)."""


class TrainingDiverged(LandscapeError):
    """Training produced a NaN or infinite loss before anything could be kept."""
