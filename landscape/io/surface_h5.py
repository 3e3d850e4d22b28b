"""Surface files in HDF5, in the layout of Li et al.'s loss-landscape so their tools read ours.

Layout (https://github.com/tomgoldstein/loss-landscape, ``h5_util.py`` / ``plot_2D.py``):

- ``xcoordinates`` (nx,) float64, ``ycoordinates`` (ny,) float64 (2D only);
- one dataset per metric (``train_loss``, ``train_acc`` in percent, ``test_loss`` ...), shaped
  (ny, nx) — ``Z[iy, ix]`` — or (nx,) in 1D; unfinished points are NaN;
- ``done``: boolean mask of finished points, same shape (never inferred from values);
- group ``directions/`` holding ``origin``, ``d1`` and ``d2`` pytrees by leaf path;
- group ``trajectories/<name>/`` with projected ``x``, ``y``, true ``loss`` and ``step``;
- root attributes: provenance (tool version, workload, direction kind, normalization, ignore
  rule, seed, grid spec) and ``spec_hash``, the hash of the arguments that define the scan.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any

import h5py
import numpy as np

from landscape.directions import Plane
from landscape.errors import ReadError, ResumeMismatch, WriteError
from landscape.grid import Grid
from landscape.io.h5tree import read_tree, write_tree

COORDINATE_NAMES = ("xcoordinates", "ycoordinates")
RESERVED = (*COORDINATE_NAMES, "done", "directions", "trajectories")


@dataclasses.dataclass(frozen=True)
class Surface:
    """Everything a surface file holds."""

    grid: Grid
    values: dict[str, np.ndarray]  # name -> grid.shape, NaN where not done
    done: np.ndarray  # grid.shape, bool
    attrs: dict[str, Any]
    directions: dict[str, Any]  # "origin", "d1", "d2" -> nested dict pytrees (may be empty)
    trajectories: dict[str, dict[str, np.ndarray]]


def spec_hash(spec: Mapping[str, Any]) -> str:
    """A short stable hash of the arguments that define a scan (JSON of the sorted mapping)."""
    text = json.dumps(spec, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def create(
    path: str | os.PathLike,
    grid: Grid,
    names: list[str],
    plane: Plane,
    attrs: Mapping[str, Any],
    *,
    overwrite: bool = False,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Create (or reopen for resuming) a surface file for a scan.

    If ``path`` exists and its ``spec_hash`` attribute equals ``attrs["spec_hash"]``, the file is
    kept and its values and ``done`` mask are returned, so the scan continues where it stopped.
    A file made with other arguments raises :class:`ResumeMismatch` unless ``overwrite``.

    Returns ``(values, done)`` as they stand in the file.
    """
    if os.path.exists(path) and not overwrite:
        existing = read(path)
        if existing.attrs.get("spec_hash") != attrs.get("spec_hash"):
            raise ResumeMismatch(
                f"{path} was made with other arguments (spec {existing.attrs.get('spec_hash')} "
                f"vs {attrs.get('spec_hash')}); use --overwrite to replace it or another --out"
            )
        return existing.values, existing.done
    try:
        with h5py.File(path, "w") as f:
            f.create_dataset("xcoordinates", data=np.asarray(grid.x, np.float64))
            if grid.y is not None:
                f.create_dataset("ycoordinates", data=np.asarray(grid.y, np.float64))
            for name in names:
                f.create_dataset(name, data=np.full(grid.shape, np.nan))
            f.create_dataset("done", data=np.zeros(grid.shape, bool))
            directions = f.create_group("directions")
            for key in ("origin", "d1", "d2"):
                tree = getattr(plane, key)
                if tree is not None:
                    write_tree(directions.create_group(key), tree)
            f.create_group("trajectories")
            for key, value in attrs.items():
                f.attrs[key] = value if isinstance(value, (int, float, str, bool)) else json.dumps(value)
    except OSError as exc:
        raise WriteError(f"cannot write surface file {path}: {exc}") from exc
    return {name: np.full(grid.shape, np.nan) for name in names}, np.zeros(grid.shape, bool)


def write_points(
    path: str | os.PathLike, index: np.ndarray, values: Mapping[str, np.ndarray]
) -> None:
    """Store values at flat point indices and mark them done; the file is flushed on return."""
    try:
        with h5py.File(path, "r+") as f:
            shape = f["done"].shape
            for row, cols, positions in _row_segments(np.asarray(index), shape[-1]):
                where = cols if len(shape) == 1 else (row, cols)
                for name, value in values.items():
                    f[name][where] = np.asarray(value)[positions]
                f["done"][where] = True  # after the values: a point marked done has its values
    except (OSError, KeyError) as exc:
        raise WriteError(f"cannot update surface file {path}: {exc}") from exc


def _row_segments(index: np.ndarray, nx: int):
    """Split flat point indices into runs consecutive within one row of width ``nx``:
    yields (row, column slice, slice of positions in ``index``)."""
    if index.size == 0:
        return
    rows, cols = np.divmod(index, nx)
    breaks = np.flatnonzero((np.diff(rows) != 0) | (np.diff(cols) != 1)) + 1
    starts = np.concatenate([[0], breaks])
    stops = np.concatenate([breaks, [index.size]])
    for a, b in zip(starts, stops):
        yield int(rows[a]), slice(int(cols[a]), int(cols[a]) + int(b - a)), slice(int(a), int(b))


def write_trajectory(
    path: str | os.PathLike,
    name: str,
    *,
    x: np.ndarray,
    y: np.ndarray | None,
    loss: np.ndarray,
    step: np.ndarray,
    **extra: np.ndarray,
) -> None:
    """Store (or replace) ``trajectories/<name>/`` with projected ``x``, ``y``, the true ``loss``
    and ``step`` (all shaped (num_recorded,)), plus any ``extra`` arrays (e.g. ``residual``)."""
    columns = {"x": x, "loss": loss, "step": step, **extra}
    if y is not None:
        columns["y"] = y
    lengths = {key: np.shape(value) for key, value in columns.items()}
    if len({shape for shape in lengths.values()}) != 1:
        raise WriteError(f"trajectory {name!r}: arrays must have one common shape, got {lengths}")
    try:
        with h5py.File(path, "r+") as f:
            group = f.require_group("trajectories")
            if name in group:
                del group[name]
            entry = group.create_group(name)
            for key, value in columns.items():
                entry.create_dataset(key, data=np.asarray(value))
    except OSError as exc:
        raise WriteError(f"cannot write trajectory {name!r} to {path}: {exc}") from exc


def read(path: str | os.PathLike) -> Surface:
    """Read a surface file (ours, or one of Li et al.'s: ``done`` is then ~isnan of the values)."""
    try:
        with h5py.File(path, "r") as f:
            if "xcoordinates" not in f:
                raise ReadError(f"{path}: no `xcoordinates` dataset; not a surface file")
            x = f["xcoordinates"][()].astype(np.float64)
            y = f["ycoordinates"][()].astype(np.float64) if "ycoordinates" in f else None
            grid = Grid(x, y)
            values = {}
            for name, item in f.items():
                if name in RESERVED or not isinstance(item, h5py.Dataset):
                    continue
                if item.shape != grid.shape:
                    raise ReadError(
                        f"{path}: dataset `{name}` has shape {item.shape}, expected {grid.shape}"
                    )
                values[name] = item[()].astype(np.float64)
            if "done" in f:
                done = f["done"][()].astype(bool)
            else:
                done = np.all([np.isfinite(v) for v in values.values()], axis=0) if values else np.zeros(grid.shape, bool)
            directions = read_tree(f["directions"]) if "directions" in f else {}
            trajectories = read_tree(f["trajectories"]) if "trajectories" in f else {}
            attrs = {key: _attr(value) for key, value in f.attrs.items()}
    except OSError as exc:
        raise ReadError(f"cannot read surface file {path}: {exc}") from exc
    return Surface(grid, values, done, attrs, directions, trajectories)


def read_directions(path: str | os.PathLike, like: Any) -> tuple[Any, Any | None]:
    """The ``d1`` and ``d2`` (None on a line) stored in a surface file, shaped like the params
    pytree ``like``; a leaf missing or of another shape raises :class:`ReadError`."""
    try:
        with h5py.File(path, "r") as f:
            if "directions/d1" not in f:
                raise ReadError(f"{path}: no `directions/d1` group; not a surface file of ours")
            d1 = read_tree(f["directions/d1"], like=like)
            d2 = read_tree(f["directions/d2"], like=like) if "directions/d2" in f else None
    except OSError as exc:
        raise ReadError(f"cannot read directions from {path}: {exc}") from exc
    return d1, d2


def _attr(value: Any) -> Any:
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, np.generic):
        value = value.item()
    return value


def read_density(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray] | None:
    """The Hessian spectral density stored in group ``density/`` (datasets ``grid``, the
    eigenvalues, and ``density``, both (num_bins,)), or None if the file has none."""
    try:
        with h5py.File(path, "r") as f:
            if "density" not in f or not isinstance(f["density"], h5py.Group):
                return None
            group = f["density"]
            if "grid" not in group or "density" not in group:
                raise ReadError(f"{path}: group `density` needs datasets `grid` and `density`, "
                                f"found {', '.join(group) or 'none'}")
            eigenvalues = group["grid"][()].astype(np.float64)
            density = group["density"][()].astype(np.float64)
    except OSError as exc:
        raise ReadError(f"cannot read surface file {path}: {exc}") from exc
    if eigenvalues.shape != density.shape or eigenvalues.ndim != 1:
        raise ReadError(f"{path}: density/grid {eigenvalues.shape} and density/density "
                        f"{density.shape} must be equal 1-D shapes")
    return eigenvalues, density
