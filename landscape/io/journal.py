"""Append-only journals of numeric records, safe against a process killed at any moment.

A journal is a sequence of records, each

    MAGIC ``LSJ1`` (4 bytes) | payload length (uint32 LE) | payload | CRC-32 of payload (uint32 LE)

and a payload is a UTF-8 JSON header — ``{"meta": {...}, "arrays": [[name, dtype, shape], ...]}``
— preceded by its length (uint32 LE) and followed by the arrays' raw little-endian bytes in
that order. Only numeric and boolean dtypes are allowed: nothing is ever unpickled.

Every append is one ``write`` (followed by ``fsync`` unless the caller batches syncs), so a
record is either complete or a torn tail. :func:`read` returns the records up to the first one that is incomplete or fails
its checksum (a torn tail after a kill) and says where the valid part ends; the writer that
resumes drops the rest (:func:`truncate`).

A journal is never opened through a symbolic link (``O_NOFOLLOW``): a link planted at its name
to aim the appends at another file is refused with a one-line error and left alone.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import math
import os
import stat
import struct
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from landscape.errors import ReadError, WriteError
from landscape.io import killpoint
from landscape.io.atomic import fsync_folder

MAGIC = b"LSJ1"
_HEAD = struct.Struct("<4sI")  # magic, payload length
_U32 = struct.Struct("<I")
_DTYPE_KINDS = "biuf"  # bool, signed, unsigned, float: never objects


@dataclasses.dataclass(frozen=True)
class Record:
    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]


@dataclasses.dataclass(frozen=True)
class Replay:
    """What :func:`read` found: the valid records, where they end, and the file's size."""

    records: list[Record]
    valid_bytes: int
    total_bytes: int

    @property
    def torn(self) -> bool:
        """True when bytes after the last valid record were dropped (a torn or corrupt tail)."""
        return self.valid_bytes != self.total_bytes


def encode(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any] | None = None) -> bytes:
    """One record's bytes (see the module docstring)."""
    columns, blobs = [], []
    for name, value in arrays.items():
        value = np.asarray(value)
        if value.dtype.kind not in _DTYPE_KINDS:
            raise WriteError(f"journal: array {name!r} has dtype {value.dtype}; only bool, "
                             "integer and float arrays are journaled")
        value = np.asarray(value, dtype=value.dtype.newbyteorder("<"))
        columns.append([name, value.dtype.str, list(value.shape)])
        blobs.append(value.tobytes(order="C"))
    header = json.dumps({"meta": dict(meta or {}), "arrays": columns}).encode()
    payload = b"".join([_U32.pack(len(header)), header, *blobs])
    return b"".join([_HEAD.pack(MAGIC, len(payload)), payload,
                     _U32.pack(zlib.crc32(payload))])


def decode(payload: bytes) -> Record:
    """The record in a checksummed payload; ValueError if it is malformed."""
    try:
        (size,) = _U32.unpack_from(payload, 0)
        header = json.loads(payload[4:4 + size].decode())
        meta, columns = header["meta"], header["arrays"]
        if not isinstance(meta, dict) or not isinstance(columns, list):
            raise ValueError("header must hold a `meta` mapping and an `arrays` list")
        offset, arrays = 4 + size, {}
        for name, dtype, shape in columns:
            dtype = np.dtype(str(dtype))
            if dtype.kind not in _DTYPE_KINDS or not all(isinstance(n, int) and n >= 0
                                                         for n in shape):
                raise ValueError(f"array {name!r}: bad dtype {dtype} or shape {shape}")
            count = math.prod(shape)
            nbytes = count * dtype.itemsize
            if offset + nbytes > len(payload):
                raise ValueError(f"array {name!r} runs past the record")
            arrays[str(name)] = np.frombuffer(payload, dtype, count, offset).reshape(shape).copy()
            offset += nbytes
        if offset != len(payload):
            raise ValueError("trailing bytes after the arrays")
    except (ValueError, TypeError, KeyError, OverflowError, struct.error) as exc:
        raise ValueError(f"malformed record: {exc}") from exc
    return Record(meta, arrays)


def append(path: str | os.PathLike, arrays: Mapping[str, np.ndarray],
           meta: Mapping[str, Any] | None = None, *, sync: bool = True) -> None:
    """Append one record in one ``write``: on return it survives the process being killed
    (the bytes are the kernel's). With ``sync`` it is also ``fsync``ed, so it survives a power
    cut; a record appended without sync is synced by the next synced append."""
    record = encode(arrays, meta)
    new = not os.path.lexists(path)
    try:
        fd = _open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            if killpoint.reached("journal-append"):  # test hook: die halfway through a record
                _write_all(fd, record[: len(record) // 2])
                os.fsync(fd)
                killpoint.kill()
            _write_all(fd, record)
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise WriteError(f"cannot append to journal {path}: {exc.strerror or exc}") from exc
    if new:
        fsync_folder(os.path.dirname(os.fspath(path)) or ".")


def _open(path: str | os.PathLike, flags: int) -> int:
    """``os.open`` of a journal that must be a regular file, never followed through a link."""
    if os.path.islink(path):
        raise OSError(errno.ELOOP, "a symbolic link, not a journal of ours: remove it (its "
                      "target is left alone)")
    fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file: remove it")
    return fd


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def read(path: str | os.PathLike) -> Replay:
    """The valid records of the journal at ``path`` (none if it does not exist); reading stops
    at the first incomplete or corrupt record. Raises :class:`ReadError` only if the file
    exists but cannot be read at all."""
    try:
        with os.fdopen(_open(path, os.O_RDONLY), "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return Replay([], 0, 0)
    except OSError as exc:
        raise ReadError(f"cannot read journal {path}: {exc.strerror or exc}") from exc
    records, offset = [], 0
    while offset + _HEAD.size <= len(data):
        magic, size = _HEAD.unpack_from(data, offset)
        end = offset + _HEAD.size + size + _U32.size
        if magic != MAGIC or end > len(data):
            break
        payload = data[offset + _HEAD.size: end - _U32.size]
        if _U32.unpack_from(data, end - _U32.size)[0] != zlib.crc32(payload):
            break
        try:
            records.append(decode(payload))
        except ValueError:
            break
        offset = end
    return Replay(records, offset, len(data))


def truncate(path: str | os.PathLike, length: int) -> None:
    """Cut the journal at ``length`` bytes (drop a torn tail before appending again)."""
    try:
        with os.fdopen(_open(path, os.O_RDWR), "r+b") as handle:
            handle.truncate(length)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        raise WriteError(f"cannot repair journal {path}: {exc.strerror or exc}") from exc


def remove(path: str | os.PathLike) -> None:
    """Delete the journal (if any), durably."""
    try:
        os.remove(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise WriteError(f"cannot remove journal {path}: {exc.strerror or exc}") from exc
    fsync_folder(os.path.dirname(os.fspath(path)) or ".")
