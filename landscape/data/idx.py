"""The IDX file format of MNIST and Fashion-MNIST (plain or gzip-compressed).

Spec: http://yann.lecun.com/exdb/mnist/ ("THE IDX FILE FORMAT"). A file is a 4-byte magic number
— two zero bytes, a type code (0x08 unsigned byte, 0x09 signed byte, 0x0B int16, 0x0C int32,
0x0D float32, 0x0E float64) and the number of dimensions — then one big-endian uint32 per
dimension, then the values in C order, big-endian.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from landscape.data.files import read_bytes
from landscape.errors import ReadError

TYPE_CODES: dict[int, str] = {
    0x08: "u1",
    0x09: "i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """The array stored in the IDX file ``path`` (``.gz`` is decompressed).

    Raises:
      ReadError: a bad magic number, or fewer (or more) bytes than the header announces.
    """
    path = Path(path)
    raw = read_bytes(path)
    if len(raw) < 4:
        raise ReadError(f"{path}: truncated: {len(raw)} bytes, an IDX header needs at least 4")
    zero0, zero1, code, ndim = raw[:4]
    if zero0 or zero1 or code not in TYPE_CODES or ndim == 0:
        raise ReadError(
            f"{path}: not an IDX file (magic bytes {raw[:4].hex()}, expected 0000 + a type code "
            f"in {{{', '.join(f'{c:02x}' for c in TYPE_CODES)}}} + the number of dimensions)"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ReadError(f"{path}: truncated: {len(raw)} bytes, the header alone needs {header}")
    shape = tuple(int(n) for n in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(TYPE_CODES[code])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "has trailing bytes"
        raise ReadError(
            f"{path}: {what}: {len(raw)} bytes, expected {expected} for shape {shape} of {dtype.name}"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file (gzip-compressed when the name ends in ``.gz``); for tests
    and for converting data sets."""
    import gzip

    array = np.asarray(array)
    codes = {np.dtype(v).newbyteorder("="): k for k, v in TYPE_CODES.items()}
    code = codes.get(array.dtype.newbyteorder("="))
    if code is None:
        raise ValueError(f"IDX cannot store dtype {array.dtype}; allowed: uint8, int8, int16, "
                         "int32, float32, float64")
    payload = (bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
               + np.ascontiguousarray(array, dtype=TYPE_CODES[code]).tobytes())
    from landscape.io.atomic import write_bytes

    path = Path(path)
    write_bytes(path, gzip.compress(payload) if path.suffix == ".gz" else payload)
