"""Curve files (``curve.h5`` of ``landscape connect``) in HDF5.

Layout (HDF5: https://docs.hdfgroup.org/hdf5/develop/_h5_d_m__u_g.html), N evaluated points:

- ``t`` (N,) float64: the path parameter, 0 at model A, 1 at model B;
- ``linear/<metric>`` and, when a curve was trained, ``bezier/<metric>`` (N,) float64: exact
  dataset means along each path (``train_loss``, ``train_acc`` in percent, ``test_*``);
- ``points/start``, ``points/end`` and (Bezier) ``points/control``: the parameter pytrees θ_A,
  θ_B, θ_b, one dataset per leaf named by its key path; the curve is
  θ(t) = (1 − t)² θ_A + 2t(1 − t) θ_b + t² θ_B;
- ``plane/linear_x``, ``plane/linear_y``, ``plane/bezier_x``, ``plane/bezier_y`` (N,): the paths'
  coordinates on the plane through θ_A (origin), θ_B (x = 1) and the curve's midpoint (y = 1)
  (:func:`landscape.geometry.connect.curve_plane`);
- ``curve_loss`` (S,): the minibatch loss of each curve-training step;
- root attributes: ``format`` (``landscape-curve``), ``format_version``, ``acc_unit``
  (``percent``), ``curve`` (``quadratic-bezier`` or ``none``) and ``provenance``, a JSON string
  (workload, runs, settings, barriers).
"""

from __future__ import annotations

import json
import os
from typing import Any, NamedTuple

import h5py
import numpy as np

from landscape.errors import ReadError, WriteError
from landscape.io.atomic import atomic_path, require_space
from landscape.io.h5tree import estimated_size, read_tree, tree_size, write_tree
from landscape.io.paths import check_file

FORMAT = "landscape-curve"
FORMAT_VERSION = 1
PLANE_NAMES = ("linear_x", "linear_y", "bezier_x", "bezier_y")


class CurveFile(NamedTuple):
    t: np.ndarray
    linear: dict[str, np.ndarray]
    bezier: dict[str, np.ndarray] | None
    start: Any  # params pytrees (nested dicts when read back)
    end: Any
    control: Any | None
    plane: dict[str, np.ndarray]
    curve_loss: np.ndarray
    provenance: dict[str, Any]


def write(path: str | os.PathLike, curve: CurveFile) -> None:
    """Write ``curve`` to ``path`` whole (temporary name, then rename).

    Raises:
      WriteError: the file cannot be written, or the paths' lengths disagree with ``t``.
    """
    n = len(curve.t)
    columns = {f"linear/{k}": v for k, v in curve.linear.items()}
    columns.update({f"bezier/{k}": v for k, v in (curve.bezier or {}).items()})
    columns.update({f"plane/{k}": v for k, v in curve.plane.items()})
    wrong = {name: len(v) for name, v in columns.items() if len(v) != n}
    if wrong:
        raise WriteError(f"cannot write curve {path}: {n} points in t but {wrong}")
    try:
        text = json.dumps(curve.provenance, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise WriteError(f"cannot write curve {path}: provenance is not JSON: {exc}") from exc
    sizes = [tree_size(tree) for tree in (curve.start, curve.end, curve.control)
             if tree is not None]
    data = sum(b for b, _ in sizes) + 8 * (n * (len(columns) + 1) + len(curve.curve_loss))
    require_space(path, estimated_size(data + len(text), sum(c for _, c in sizes)
                                       + len(columns) + 16), what="curve")
    try:
        with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
            handle.attrs.update({"format": FORMAT, "format_version": FORMAT_VERSION,
                                 "acc_unit": "percent", "provenance": text,
                                 "curve": "none" if curve.control is None else "quadratic-bezier"})
            handle.create_dataset("t", data=np.asarray(curve.t, np.float64))
            handle.create_dataset("curve_loss", data=np.asarray(curve.curve_loss, np.float64))
            for name, values in columns.items():
                handle.create_dataset(name, data=np.asarray(values, np.float64))
            for name, tree in (("start", curve.start), ("end", curve.end),
                               ("control", curve.control)):
                if tree is not None:
                    write_tree(handle.create_group(f"points/{name}"), tree)
    except OSError as exc:
        raise WriteError(f"cannot write curve {path}: {exc}") from exc


def read(path: str | os.PathLike) -> CurveFile:
    """Read a curve file written by :func:`write`.

    Raises:
      ReadError: the file is missing, not a curve file, or its arrays disagree.
    """
    if not os.path.exists(path) and not os.path.islink(path):
        raise ReadError(f"{path} not found")
    check_file(path, "curve file")
    try:
        with h5py.File(path, "r") as handle:
            if handle.attrs.get("format") != FORMAT:
                raise ReadError(f"{path}: not a curve file (attribute `format` is "
                                f"{handle.attrs.get('format')!r}, expected {FORMAT!r})")
            missing = [name for name in ("t", "curve_loss", "linear", "plane", "points/start",
                                         "points/end") if name not in handle]
            if missing:
                raise ReadError(f"{path}: curve file lacks {', '.join(missing)}")
            t = _vector(path, handle, "t")
            groups = {}
            for group in ("linear", "bezier", "plane"):
                if group in handle:
                    groups[group] = {name: _vector(path, handle, f"{group}/{name}", len(t))
                                     for name in handle[group]}
            points = {name: read_tree(handle[f"points/{name}"]) if f"points/{name}" in handle
                      else None for name in ("start", "end", "control")}
            provenance = json.loads(handle.attrs.get("provenance", "{}"))
            curve_loss = _vector(path, handle, "curve_loss")
    except OSError as exc:
        raise ReadError(f"cannot read curve {path}: {exc}") from exc
    except ValueError as exc:
        raise ReadError(f"{path}: malformed provenance attribute: {exc}") from exc
    return CurveFile(t, groups["linear"], groups.get("bezier"), points["start"], points["end"],
                     points["control"], groups["plane"], curve_loss, provenance)


def _vector(path, handle: h5py.File, name: str, length: int | None = None) -> np.ndarray:
    node = handle[name]
    if not isinstance(node, h5py.Dataset) or node.ndim != 1 or node.dtype.kind not in "iuf":
        raise ReadError(f"{path}: `{name}` must be a 1-D numeric dataset")
    if length is not None and node.shape[0] != length:
        raise ReadError(f"{path}: `{name}` has {node.shape[0]} values, `t` has {length}")
    return node[()].astype(np.float64)
