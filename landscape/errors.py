"""Typed errors raised by the library; the CLI turns them into one-line messages.

Nothing below ``landscape.cli`` prints or exits: it raises one of these, and the message says
what was found, what was expected, and (where it helps) what to do about it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any


class LandscapeError(Exception):
    """Base class of every error this package raises on purpose. ``param`` names the library
    argument(s) at fault (``metrics``, ``x`` ...) as the message writes them in backticks; the
    CLI replaces each name by its option (``--metrics``)."""

    def __init__(self, message: str = "", *, param: str | tuple[str, ...] | None = None):
        super().__init__(message)
        self.param = param


class InputError(LandscapeError, ValueError):
    """A user-supplied value (argument, option, name) is invalid."""


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
    """Training produced a NaN or infinite loss before anything could be kept (``param``: the
    arguments to change)."""


class OutOfMemory(LandscapeError):
    """A computation ran out of device memory even at the smallest size it could be cut to
    (:func:`landscape.engine.memory.halve_on_oom`). ``what`` names the size that was halved
    (``chunk``, ``eval batch`` ...), ``sizes`` lists every size tried, largest first."""

    def __init__(self, message: str, *, what: str = "size", sizes: tuple[int, ...] = ()):
        super().__init__(message)
        self.what = what
        self.sizes = tuple(sizes)


def first_line(exc: BaseException) -> str:
    """The first non-blank line of ``exc``'s message ("(no message)" if it has none): what a
    one-line error can carry of a long, multi-line one (JAX's, h5py's)."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()
    return "(no message)"


@contextlib.contextmanager
def user_code(what: str) -> Iterator[None]:
    """Run (or trace) code the user wrote — a workload's loss or init — inside the ``with``
    block: any exception it raises that is not one of ours becomes an :class:`InputError`
    "``what`` raised TypeError: <first line>", chained to the original.

    Our own errors pass through unchanged, and so do KeyboardInterrupt, SystemExit and
    MemoryError (not the user's mistake, and not to be hidden). Wrap only calls into user code:
    a bug of ours inside the block would be reported as theirs.
    """
    try:
        yield
    except LandscapeError:
        raise
    except MemoryError:
        raise
    except Exception as exc:
        raise InputError(f"{what} raised {type(exc).__name__}: {first_line(exc)}") from exc


def blame_user_code(check: Callable[..., None], *args: Any) -> Callable[[Callable], Callable]:
    """A decorator for calls that run user code among ours (a jitted training step traces the
    user's loss and our optimizer): when a call raises anything but our own errors,
    ``check(*args)`` runs first — something that exercises the user's code alone, under
    :func:`user_code` — and its one-line :class:`InputError` replaces the original error; if the
    check passes, the original error (ours) propagates. Costs nothing until a call fails."""

    def decorate(fn: Callable) -> Callable:
        def call(*call_args: Any, **call_kwargs: Any) -> Any:
            try:
                return fn(*call_args, **call_kwargs)
            except (LandscapeError, MemoryError):
                raise
            except Exception:
                check(*args)
                raise

        return call

    return decorate
