"""Hessian-diagonal files (``diagonal.h5`` of ``landscape hessian --diagonal``) in HDF5.

Layout (HDF5: https://docs.hdfgroup.org/hdf5/develop/_h5_d_m__u_g.html):

- ``diagonal/<leaf path>``: the estimated diagonal of the Hessian, one dataset per parameter
  leaf, shaped like it and named by its key path (``diagonal/dense0/kernel``);
- ``stderr/<leaf path>``: each entry's standard error, the same way;
- root attributes: ``format`` (``landscape-hessian-diagonal``), ``format_version``,
  ``num_samples`` (Rademacher probes) and ``provenance``, a JSON string (model, settings,
  the per-layer summary).

Read it with h5py (``h5py.File(path)["diagonal/dense0/kernel"][()]``) or :func:`read`.
"""

from __future__ import annotations

import json
import os
from typing import Any, NamedTuple

import h5py
import numpy as np

from landscape.errors import ReadError, WriteError
from landscape.io.atomic import atomic_path
from landscape.io.h5tree import read_tree, write_tree

FORMAT = "landscape-hessian-diagonal"
FORMAT_VERSION = 1


class DiagonalFile(NamedTuple):
    diagonal: Any  # params pytree (nested dicts when read back)
    stderr: Any
    num_samples: int
    provenance: dict[str, Any]


def write(path: str | os.PathLike, diagonal: DiagonalFile) -> None:
    """Write ``diagonal`` to ``path`` whole (a temporary name, then a rename).

    Raises:
      WriteError: the file cannot be written, or the provenance is not JSON.
    """
    try:
        text = json.dumps(diagonal.provenance, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise WriteError(f"cannot write diagonal {path}: provenance is not JSON: {exc}") from exc
    try:
        with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
            handle.attrs.update({"format": FORMAT, "format_version": FORMAT_VERSION,
                                 "num_samples": int(diagonal.num_samples), "provenance": text})
            write_tree(handle.create_group("diagonal"), diagonal.diagonal)
            write_tree(handle.create_group("stderr"), diagonal.stderr)
    except OSError as exc:
        raise WriteError(f"cannot write diagonal {path}: {exc}") from exc


def read(path: str | os.PathLike, like: Any | None = None) -> DiagonalFile:
    """Read a file written by :func:`write` (pytrees as nested dicts, or shaped like ``like``).

    Raises:
      ReadError: the file is missing or not a diagonal file.
    """
    if not os.path.exists(path):
        raise ReadError(f"{path} not found")
    try:
        with h5py.File(path, "r") as handle:
            if handle.attrs.get("format") != FORMAT:
                raise ReadError(f"{path}: not a Hessian-diagonal file (attribute `format` is "
                                f"{handle.attrs.get('format')!r}, expected {FORMAT!r})")
            missing = [name for name in ("diagonal", "stderr") if name not in handle]
            if missing:
                raise ReadError(f"{path}: Hessian-diagonal file lacks {', '.join(missing)}")
            return DiagonalFile(read_tree(handle["diagonal"], like),
                                read_tree(handle["stderr"], like),
                                int(np.asarray(handle.attrs.get("num_samples", 0))),
                                json.loads(handle.attrs.get("provenance", "{}")))
    except OSError as exc:
        raise ReadError(f"cannot read diagonal {path}: {exc}") from exc
    except ValueError as exc:
        raise ReadError(f"{path}: malformed provenance attribute: {exc}") from exc
