"""What stands at a path, said plainly before a reader opens it.

A FIFO opened for reading blocks until something writes to it (``landscape info fifo.h5``
waited forever), and ``os.path.exists`` calls a symbolic link loop, a broken link and a missing
file all "does not exist". Readers of our files call :func:`check_file` first: only a regular
file (or a folder, for :func:`check_folder`) is opened, and a path that is not one is refused
with a message that says what it is.
"""

from __future__ import annotations

import errno
import os
import stat

from landscape.errors import ReadError

KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
         (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
         (stat.S_ISBLK, "a block device"), (stat.S_ISREG, "a regular file"))


def check_file(path: str | os.PathLike, what: str = "file") -> None:
    """Raise :class:`ReadError` unless ``path`` is (or links to) a regular file."""
    mode = _mode(path, what)
    if not stat.S_ISREG(mode):
        raise ReadError(f"{what} {os.fspath(path)} is {kind(mode)}, not a regular file")


def check_folder(path: str | os.PathLike, what: str = "folder") -> None:
    """Raise :class:`ReadError` unless ``path`` is (or links to) a folder."""
    mode = _mode(path, what)
    if not stat.S_ISDIR(mode):
        raise ReadError(f"{what} {os.fspath(path)} is {kind(mode)}, not a folder")


def kind(mode: int) -> str:
    """"a FIFO (named pipe)", "a folder" ... for an ``st_mode``."""
    return next((name for test, name in KINDS if test(mode)), "not a file or folder")


def missing(path: str | os.PathLike, exc: OSError | None = None) -> str:
    """Why ``path`` cannot be reached, as the end of a sentence: "does not exist", "is a
    symbolic link loop", "is a broken symbolic link (to X)" ..."""
    path = os.fspath(path)
    code = exc.errno if exc is not None else None
    if code == errno.ELOOP:
        return "is a symbolic link loop"
    if code in (errno.ENOENT, None) and os.path.islink(path):
        try:
            return f"is a broken symbolic link (to {os.readlink(path)})"
        except OSError:
            return "is a broken symbolic link"
    if code == errno.ENOTDIR:
        return "does not exist (a part of the path is not a folder)"
    if code in (errno.ENOENT, None):
        return "does not exist"
    return f"cannot be reached ({exc.strerror or exc})"


def _mode(path: str | os.PathLike, what: str) -> int:
    try:
        return os.stat(path).st_mode
    except OSError as exc:
        raise ReadError(f"{what} {os.fspath(path)} {missing(path, exc)}") from exc
