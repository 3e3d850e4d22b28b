"""Whole-file writes that never leave a half-written file under the final name.

The content goes to a temporary name in the same folder, is flushed to disk (``fsync``) and
renamed over the target with ``os.replace`` — atomic on POSIX file systems — and the folder is
synced so the rename itself survives a power cut. A reader, or a process killed at any moment,
sees either the old file or the new one, never a mixture.

Files cannot be aimed elsewhere: the temporary is created with ``O_CREAT | O_EXCL | O_NOFOLLOW``
before anyone writes it (whatever stood at its name — a killed writer's leftover, or a symbolic
link planted there — is unlinked first, and unlinking a link never touches its target), and the
rename replaces a link at the final name instead of writing through it, as orbax commits its
checkpoints (``orbax/checkpoint/_src/path/atomicity.py``). :func:`create_new` is that creation,
for the writers that do not go through a temporary (journals).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from landscape.errors import WriteError

# A temporary of a process that is no longer running is removed once it is this old: younger
# ones may be a writer's on another host sharing the folder (its pid means nothing here).
STALE_AFTER_S = 60.0


def temporary_name(path: str | os.PathLike, *, unique: bool = True) -> str:
    """``folder/.NAME.PID.part.EXT`` beside ``path`` (keeps the extension, which matplotlib and
    VTK read the format from); without ``unique`` the process id is left out, for writers that
    hold a lock on ``path`` and should overwrite their own leftovers."""
    folder, name = os.path.split(os.fspath(path))
    ext = os.path.splitext(name)[1]
    tag = f".{os.getpid()}" if unique else ""
    return os.path.join(folder, f".{name}{tag}.part{ext}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, unique: bool = True) -> Iterator[str]:
    """Yield a temporary path to write; on a clean exit it is synced and renamed to ``path``.
    The temporaries of ``path`` that killed writers left are removed first
    (:func:`remove_stale_temporaries`).

    If the body raises, the temporary file is removed and the exception propagates (``path`` is
    untouched). Failures to sync or rename raise :class:`WriteError` naming ``path``.
    """
    path = os.fspath(path)
    tmp = temporary_name(path, unique=unique)
    remove_stale_temporaries(path)
    try:
        os.close(create_new(tmp, replace=True))
        yield tmp
        fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if isinstance(exc, OSError):
            raise WriteError(f"cannot write {path}: {exc.strerror or exc}") from exc
        raise
    fsync_folder(os.path.dirname(path) or ".")


def create_new(path: str | os.PathLike, *, replace: bool = False, flags: int = os.O_WRONLY,
               attempts: int = 5) -> int:
    """Create the regular file ``path`` and return its descriptor (opened with ``flags``), never
    following a symbolic link: ``O_CREAT | O_EXCL | O_NOFOLLOW``, so the file is a new one of
    ours whatever stood at the name. With ``replace``, an entry already there (a file, or a link
    planted to aim the write elsewhere) is unlinked first — the link itself, never its target —
    and the creation retried; without, :class:`FileExistsError` propagates.

    Raises:
      OSError: the file cannot be created (``FileExistsError`` as said above).
    """
    mode = os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC | flags
    for attempt in range(attempts):
        try:
            return os.open(path, mode, 0o666)  # the umask applies, as for open(path, "w")
        except FileExistsError:
            if not replace or attempt == attempts - 1:
                raise
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)  # a link, a leftover or a folder's name: unlink never follows
    raise AssertionError("unreachable")


def refuse_link(path: str | os.PathLike, what: str) -> None:
    """Raise :class:`WriteError` when ``path`` is a symbolic link (an output of ours is never
    written through one, and never removed when it is not ours)."""
    if os.path.islink(path):
        raise WriteError(f"{what} {os.fspath(path)} is a symbolic link, not a file of ours; "
                         "remove it (its target is left alone)")


def require_space(path: str | os.PathLike, nbytes: int, *, what: str = "") -> None:
    """Raise :class:`WriteError` ("cannot write PATH: No space left on device ...") when the
    file system of ``path``'s folder has fewer than ``nbytes`` bytes free for us. For writers
    that cannot fail cleanly on a full disk: h5py, whose ``close`` crashed the process
    (SIGSEGV) when HDF5 could not flush a new file."""
    folder = os.path.dirname(os.fspath(path)) or "."
    try:
        info = os.statvfs(folder)
    except OSError:
        return  # no answer: let the write itself say what is wrong
    free = info.f_bavail * info.f_frsize
    if free < nbytes:
        raise WriteError(f"cannot write {what or 'file'} {os.fspath(path)}: No space left on "
                         f"device (about {_size(nbytes)} needed, {_size(free)} free)")


def _size(nbytes: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if nbytes < 1024 or unit == "GiB":
            return f"{nbytes:.0f} {unit}" if unit == "bytes" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    raise AssertionError("unreachable")


def remove_stale_temporaries(path: str | os.PathLike) -> list[str]:
    """Remove the ``.NAME.PID.part.EXT`` temporaries of ``path`` left by writers that were
    killed: those whose process is gone (``kill(pid, 0)`` finds none) and that are at least
    ``STALE_AFTER_S`` old. A live process's temporary — or one whose pid is now another
    process's — is never touched. Returns the paths removed (best effort: errors are ignored)."""
    folder, name = os.path.split(os.fspath(path))
    ext = os.path.splitext(name)[1]
    prefix, suffix = f".{name}.", f".part{ext}"
    removed = []
    try:
        entries = os.listdir(folder or ".")
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        pid = entry[len(prefix):len(entry) - len(suffix)]
        if not (entry.startswith(prefix) and entry.endswith(suffix) and pid.isdigit()):
            continue
        candidate = os.path.join(folder, entry)
        try:
            if int(pid) == os.getpid() or _running(int(pid)):
                continue
            if now - os.stat(candidate).st_mtime < STALE_AFTER_S:
                continue
            os.remove(candidate)
        except OSError:
            continue
        removed.append(candidate)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # another user's process (or no valid pid): leave it alone
    return True


def no_follow(path: str | os.PathLike, flags: int) -> int:
    """An ``opener`` for :func:`open` that refuses to follow a symbolic link (``ELOOP``)."""
    return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"))


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb", opener=no_follow) as handle:
            handle.write(data)


def write_json(path: str | os.PathLike, value: Any, *, allow_nan: bool = True) -> None:
    """Write ``value`` as indented JSON (one trailing newline) to ``path`` atomically."""
    write_text(path, json.dumps(value, indent=2, allow_nan=allow_nan) + "\n")


def write_csv(path: str | os.PathLike, columns: Sequence[str], rows: Iterable[Mapping[str, Any]],
              *, lineterminator: str = "\n") -> None:
    """Write ``rows`` (dicts keyed by ``columns``) under a header row to ``path`` atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator=lineterminator)
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buffer.getvalue())


def fsync_file(path: str | os.PathLike) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_folder(folder: str | os.PathLike) -> None:
    """Make a rename, creation or deletion in ``folder`` durable (best effort: some file
    systems refuse to sync a folder)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def save_figure(figure, path: str, *, dpi: int = 120, unique: bool = True) -> str:
    """Save a matplotlib ``figure`` to a temporary name in the same folder, then rename (no
    half-written figures); ``unique=False`` for a writer holding the output's lock, whose fixed
    temporary name a killed run's leftover is overwritten by (see :func:`temporary_name`).
    An ``OSError`` becomes a ``WriteError``."""
    with atomic_path(path, unique=unique) as tmp:
        figure.savefig(tmp, dpi=dpi)
    return path
