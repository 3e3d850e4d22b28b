"""An exclusive lock on an output file, held by one process for as long as it writes it.

``OUT/surface.h5`` is guarded by ``OUT/surface.h5.lock``, locked with ``flock(LOCK_EX |
LOCK_NB)``: a second writer fails at once with :class:`FileInUse` naming the holder's pid and
what it is doing (a ``scan`` or a ``compare``, as the holder wrote them in the lock file). The
kernel drops the lock when its process dies (even by SIGKILL), so a crash never leaves a stale
lock behind; the file itself is deleted by the holder on a clean exit.

The lock file is opened with ``O_NOFOLLOW`` and must be a regular file with one link: a
symbolic (or hard) link planted at ``PATH.lock`` to aim its pid line at another file is refused
with :class:`WriteError`, and left in place (neither it nor its target is touched).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from collections.abc import Iterator

from landscape.errors import FileInUse, WriteError


def lock_path(path: str | os.PathLike) -> str:
    return f"{os.fspath(path)}.lock"


@contextlib.contextmanager
def exclusive(path: str | os.PathLike, *, what: str = "scan") -> Iterator[None]:
    """Hold the lock of ``path`` for the ``with`` block.

    Raises:
      FileInUse: another process holds it ("PATH is in use by another scan (pid N)").
      WriteError: the lock file cannot be created.
    """
    fd = _acquire(os.fspath(path), what)
    try:
        yield
    finally:
        # Unlinked while still locked: a process that opened the old file before the unlink
        # finds, once it gets the lock, that the name points elsewhere and retries. Only while
        # the name is still our file: whatever took its place is not ours to remove.
        with contextlib.suppress(OSError):
            if os.path.samestat(os.fstat(fd), os.lstat(lock_path(path))):
                os.remove(lock_path(path))
        os.close(fd)


def check_free(path: str | os.PathLike, *, what: str = "scan") -> None:
    """Raise :class:`FileInUse` now if another process holds the lock (taken and dropped at
    once: lets a command fail before its expensive part)."""
    with exclusive(path, what=what):
        pass


def _acquire(path: str, what: str) -> int:
    name = lock_path(path)
    while True:
        if os.path.islink(name):  # O_NOFOLLOW's ELOOP, said plainly
            raise WriteError(f"lock file {name} is a symbolic link, not a lock of ours; remove "
                             "it (its target is left alone)")
        try:
            fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
                         | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise WriteError(f"cannot create lock file {name}: {exc.strerror or exc}") from exc
        info = os.fstat(fd)
        # (0 links: its holder just unlinked it; the check after flock below retries.)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink > 1:
            os.close(fd)
            kind = "is not a regular file" if not stat.S_ISREG(info.st_mode) else (
                "has other hard links")
            raise WriteError(f"lock file {name} {kind}, not a lock of ours; remove it")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid, holder = _holder(fd)
            os.close(fd)
            raise FileInUse(f"{path} is in use by another {holder or what} (pid {pid}); wait "
                            "for it to finish") from None
        except OSError as exc:
            os.close(fd)
            raise WriteError(f"cannot lock {name}: {exc.strerror or exc}") from exc
        try:
            same = os.path.samestat(os.fstat(fd), os.lstat(name))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the holder unlinked it between our open and flock: try the new one
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()} {what}\n".encode())
    return fd


def _holder(fd: int) -> tuple[str, str | None]:
    """(pid, what it is doing) as the holder wrote them: ("N", "scan"), ("N", "eigen map");
    "unknown" and None for whatever cannot be read (e.g. the holder has not written yet)."""
    try:
        line = os.pread(fd, 128, 0).decode().strip()
    except (OSError, UnicodeDecodeError):
        line = ""
    pid, _, what = line.partition(" ")
    what = " ".join(what.split())  # e.g. "eigen map"
    return (pid if pid.isdigit() else "unknown"), (what if what.isprintable() and what else None)
