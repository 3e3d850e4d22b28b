"""Surface files in HDF5, in the layout of Li et al.'s loss-landscape so their tools read ours.

Layout (https://github.com/tomgoldstein/loss-landscape, ``h5_util.py`` / ``plot_2D.py``):

- ``xcoordinates`` (nx,) float64, ``ycoordinates`` (ny,) float64 (2D only);
- one dataset per metric (``train_loss``, ``train_acc`` in percent, ``test_loss`` ...), shaped
  (ny, nx) — ``Z[iy, ix]`` — or (nx,) in 1D; unfinished points are NaN;
- ``done``: boolean mask of finished points, same shape (never inferred from values in our
  files; a file without one — Li et al.'s, whose unfinished points are ``-1`` — gets it by their
  rule, see :mod:`landscape.io.surface_layout`);
- group ``directions/`` holding ``origin``, ``d1`` and ``d2`` pytrees by leaf path (read back
  by :mod:`landscape.io.stored_directions`);
- group ``trajectories/<name>/`` with projected ``x``, ``y``, true ``loss`` and ``step``;
- anything else (Li et al.'s scalar string ``dir_file`` naming their direction file) is kept
  and shown by ``landscape info``, never fatal;
- root attributes: provenance (tool version, workload, direction kind, normalization, ignore
  rule, seed, grid spec), ``spec_hash``, the hash of the arguments that define the scan, and
  ``fingerprints`` of the model, directions, data and environment the points were computed from
  (:mod:`landscape.fingerprint`): a file is resumed only when all of them are the same.

Crash safety: the ``.h5`` file is never modified in place (an HDF5 write killed midway can
corrupt the whole file). It is only ever replaced whole — written under a temporary name,
synced, renamed (:mod:`landscape.io.atomic`). Finished chunks are appended to the journal
``PATH.journal`` beside it (:mod:`landscape.io.journal`: checksummed records, each written at
once and synced at least once a second by its writer), and :func:`compact` folds the journal
into a fresh copy of the file now and then and at
the end of a scan. :func:`read` and a resuming :func:`create` apply a pending journal, so a
scan killed at any moment loses at most the chunk it was computing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from typing import Any

import h5py
import numpy as np

from landscape.directions import Plane
from landscape.errors import ReadError, WriteError
from landscape.grid import Grid
from landscape.io import journal, killpoint
from landscape.io import surface_layout as layout
from landscape.io.atomic import atomic_path, require_space
from landscape.io.h5tree import BYTES_PER_OBJECT, estimated_size, tree_size, write_tree
from landscape.io.paths import check_file
from landscape.io.surface_record import check_resumable
from landscape.io.surface_record import spec_hash  # noqa: F401  (part of this module's API)

COORDINATE_NAMES = ("xcoordinates", "ycoordinates")
RESERVED = (*COORDINATE_NAMES, "done", "directions", "trajectories")
COMPACT_EVERY_S = 10.0  # fold the journal into the file at most this often during a scan ...
COMPACT_BYTES_PER_S = 1e7  # ... and, for big files, at most once per size / 10 MB seconds
# What h5py raises on a damaged file: OSError (unreadable blocks, bad signatures), KeyError
# (an object in the index that cannot be opened), ValueError and RuntimeError (invalid ids,
# unreadable headers). Not TypeError/AttributeError/MemoryError: those would hide our own bugs;
# a type numpy cannot hold is caught where it is read, and sizes are checked before reading.
DAMAGED = (OSError, KeyError, ValueError, RuntimeError)


@dataclasses.dataclass(frozen=True)
class Surface:
    """Everything a surface file holds."""

    grid: Grid
    values: dict[str, np.ndarray]  # name -> grid.shape, NaN where not done
    done: np.ndarray  # grid.shape, bool
    attrs: dict[str, Any]
    directions: dict[str, Any]  # "origin", "d1", "d2" -> nested dict pytrees (may be empty)
    trajectories: dict[str, dict[str, np.ndarray]]
    # Datasets and groups outside the layout (Li et al.'s scalar string `dir_file` ...), by name.
    others: dict[str, layout.OtherDataset] = dataclasses.field(default_factory=dict)
    done_rule: str = "mask"  # where `done` came from: a key of layout.DONE_RULES
    notes: tuple[str, ...] = ()  # how the reader had to interpret the file, for `info`
    # Each metric's own finished points where they differ from `done` (a file without a mask
    # whose `train_loss` is complete and `test_loss` not); missing: `done`.
    metric_done: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    def done_of(self, metric: str) -> np.ndarray:
        """The points of ``metric`` that are finished (``done`` unless the file says more)."""
        return self.metric_done.get(metric, self.done)


def journal_path(path: str | os.PathLike) -> str:
    """The journal of finished points beside the surface file ``path``."""
    return f"{os.fspath(path)}.journal"


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

    If ``path`` exists and it was made with the same arguments and from the same computation
    (:func:`~landscape.io.surface_record.check_resumable`), the file is kept, its pending journal folded in (:func:`compact`)
    and its values and ``done`` mask are returned, so the scan continues where it stopped. Any
    other file raises :class:`~landscape.errors.ResumeMismatch` unless ``overwrite``. A new
    file appears whole (atomic rename).

    Returns ``(values, done)`` as they stand in the file.
    """
    if os.path.exists(path) and not overwrite:
        try:
            existing = read(path)
        except ReadError as exc:
            raise ReadError(f"{exc}; use --overwrite to start the scan again") from exc
        check_resumable(path, existing, attrs)
        compact(path)
        return existing.values, existing.done
    journal.remove(journal_path(path))  # an old scan's points must not land in the new file
    message = f"cannot write surface file {path}"
    trees = [getattr(plane, key) for key in ("origin", "d1", "d2")]
    require_space(path, _new_file_size(grid, len(names), trees, attrs), what="surface file")
    try:
        with atomic_path(path, unique=False) as tmp, one_line_errors(message):
            with h5py.File(tmp, "w") as f:
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
                    f.attrs[key] = (value if isinstance(value, (int, float, str, bool))
                                    else json.dumps(value))
            killpoint.kill_if_reached("create-replace")
    except OSError as exc:
        raise WriteError(f"{message}: {reason(exc)}") from exc
    return {name: np.full(grid.shape, np.nan) for name in names}, np.zeros(grid.shape, bool)


def _new_file_size(grid: Grid, metrics: int, trees, attrs: Mapping[str, Any]) -> int:
    """An upper estimate of a new surface file's size (see :func:`h5tree.estimated_size`)."""
    points = int(np.prod(grid.shape))
    data = 8 * (len(grid.x) + (0 if grid.y is None else len(grid.y))) + (8 * metrics + 1) * points
    objects = 4 + metrics + 1
    for tree in trees:
        if tree is not None:
            nbytes, count = tree_size(tree)
            data, objects = data + nbytes, objects + count + 1
    data += sum(len(str(value)) for value in attrs.values())
    return estimated_size(data, objects)


def write_points(
    path: str | os.PathLike, index: np.ndarray, values: Mapping[str, np.ndarray], *,
    sync: bool = True,
) -> None:
    """Store values at flat point indices and mark them done.

    The points are appended to the journal before this returns, so they survive the process
    being killed; ``sync`` also flushes the journal to disk (for a power cut: a sync costs
    milliseconds, more than a small model's chunk, so a writer may sync less often — see
    :class:`landscape.io.surface_writer.SurfaceWriter`). The journal is folded into the file
    when the last compaction is older than :data:`COMPACT_EVERY_S`. Call :func:`compact` when
    the scan ends.
    """
    index = np.asarray(index, np.int64).ravel()
    if index.size == 0:
        return
    columns = {"index": index}
    for name, value in values.items():
        value = np.asarray(value, np.float64).ravel()
        if value.shape != index.shape:
            raise WriteError(f"cannot update surface file {path}: `{name}` has {value.size} "
                             f"values for {index.size} points")
        columns[name] = value
    journal.append(journal_path(path), columns, {"kind": "points"}, sync=sync)
    if _compaction_due(path):
        compact(path)


def _compaction_due(path: str | os.PathLike) -> bool:
    # The file is only ever replaced whole, so its mtime is the time of the last compaction.
    try:
        stat = os.stat(path)
    except OSError:
        return False
    wait = max(COMPACT_EVERY_S, stat.st_size / COMPACT_BYTES_PER_S)
    return time.time() - stat.st_mtime >= wait


def compact(path: str | os.PathLike) -> None:
    """Fold the pending journal into the file: a copy of the file gets the journal's points
    (values first, then ``done``), is synced and renamed over ``path``; then the journal is
    deleted. Killed at any moment, it leaves the old or the new file, plus a journal whose
    replay is harmless (applying a record twice changes nothing). No journal: nothing to do."""
    if os.path.exists(journal_path(path)):
        _rewrite(path)


def _rewrite(path: str | os.PathLike, edit=None, *, extra_bytes: int = 0) -> None:
    """Replace ``path`` whole by a copy with the journal applied and ``edit(h5py.File)`` done."""
    jpath = journal_path(path)
    records = journal.read(jpath).records
    message = f"cannot update surface file {path}"
    with contextlib.suppress(OSError):  # the copy, and what the edit adds (see estimated_size)
        require_space(path, estimated_size(os.path.getsize(path) + extra_bytes, 16),
                      what="surface file")
    try:
        with atomic_path(path, unique=False) as tmp, one_line_errors(message):
            shutil.copyfile(path, tmp)
            with h5py.File(tmp, "r+") as f:
                if records:
                    names = {name for record in records for name in record.arrays} - {"index"}
                    values = {name: f[name][()] for name in names if name in f}
                    done = f["done"][()]
                    _apply(values, done, records, jpath)
                    for name, value in values.items():
                        f[name][...] = value
                    f["done"][...] = done
                if edit is not None:
                    edit(f)
            killpoint.kill_if_reached("compact-replace")
    except (OSError, KeyError, ValueError) as exc:
        raise WriteError(f"{message}: {reason(exc)}") from exc
    killpoint.kill_if_reached("compact-unlink")
    journal.remove(jpath)


def _apply(values: dict[str, np.ndarray], done: np.ndarray, records, jpath: str) -> None:
    """Apply journal records to in-memory ``values`` and ``done`` (each record's values, then
    its points' ``done``)."""
    n = done.size
    for number, record in enumerate(records, 1):
        index = record.arrays.get("index")
        if (index is None or index.ndim != 1 or index.dtype.kind not in "iu"
                or (index.size and (index.min() < 0 or index.max() >= n))):
            raise ReadError(f"{jpath}: record {number} has no valid point index for a grid of "
                            f"{n} points; delete the journal (its points will be scanned again)")
        for name, value in record.arrays.items():
            if name == "index":
                continue
            if name not in values or value.shape != index.shape:
                raise ReadError(f"{jpath}: record {number} holds `{name}` {value.shape}, which "
                                f"the surface file has no place for; delete the journal (its "
                                f"points will be scanned again)")
            values[name].flat[index] = value
        done.flat[index] = True


def set_attrs(path: str | os.PathLike, attrs: Mapping[str, Any]) -> None:
    """Set root attributes (e.g. a scan's strategy once chosen), in one rewrite of the file
    (the pending journal folded in); values that are not scalars are stored as JSON."""

    def store(f: h5py.File) -> None:
        for key, value in attrs.items():
            f.attrs[key] = (value if isinstance(value, (int, float, str, bool))
                            else json.dumps(value))

    _rewrite(path, store)


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
    write_trajectories(path, {name: {"x": x, "y": y, "loss": loss, "step": step, **extra}})


def write_trajectories(path: str | os.PathLike,
                       trajectories: Mapping[str, Mapping[str, np.ndarray | None]]) -> None:
    """Several :func:`write_trajectory` at once, ``{name: {"x": ..., "y": ..., "loss": ...,
    "step": ..., extra...}}`` (``y`` None on a line), in one rewrite of the file."""
    stored = {}
    for name, arrays in trajectories.items():
        if not name or "/" in name or name in (".", ".."):
            raise WriteError(f"trajectory name {name!r} cannot name an HDF5 group (empty, or "
                             "holds '/')")
        columns = {key: value for key, value in arrays.items() if value is not None}
        lengths = {key: np.shape(value) for key, value in columns.items()}
        if len(set(lengths.values())) != 1:
            raise WriteError(f"trajectory {name!r}: arrays must have one common shape, got "
                             f"{lengths}")
        stored[name] = columns

    def store(f: h5py.File) -> None:
        group = f.require_group("trajectories")
        for name, columns in stored.items():
            if name in group:
                del group[name]
            entry = group.create_group(name)
            for key, value in columns.items():
                entry.create_dataset(key, data=np.asarray(value))

    added = sum(np.asarray(value).nbytes + BYTES_PER_OBJECT for columns in stored.values()
                for value in columns.values())
    # A new file, renamed over the old one (with the journal folded in).
    _rewrite(path, store, extra_bytes=added)


def read(path: str | os.PathLike) -> Surface:
    """Read a surface file — ours, or one of Li et al.'s (no ``done`` mask: derived by their
    rule, see :mod:`landscape.io.surface_layout`) — with the points of a pending journal (a
    scan running or killed) applied; the files are not changed. A missing, truncated, corrupt
    or inconsistent file raises :class:`ReadError` naming it and what is wrong."""
    check_file(path, "surface file")  # (a FIFO would block the open forever)
    # The journal first: a compaction that lands between the two reads then only means that
    # the file already holds some of these records, and applying them again changes nothing.
    pending = journal.read(journal_path(path)).records
    try:
        with h5py.File(path, "r") as f:
            surface = _read_open(f, path)
    except DAMAGED as exc:
        raise ReadError(f"cannot read surface file {path}: {reason(exc)}") from exc
    if pending:
        _apply(surface.values, surface.done, pending, journal_path(path))
    return surface


def read_attrs(path: str | os.PathLike) -> dict[str, Any]:
    """The root attributes of a surface file alone (its provenance: what a resume checks
    first), as :func:`read` gives them; a file that cannot be read raises :class:`ReadError`."""
    try:
        with h5py.File(path, "r") as f:
            return _read_attributes(f, path)
    except DAMAGED as exc:
        raise ReadError(f"cannot read surface file {path}: {reason(exc)}") from exc


def _read_open(f: h5py.File, path) -> Surface:
    if "xcoordinates" not in f:
        raise ReadError(f"{path}: no `xcoordinates` dataset; not a surface file")
    attrs = _read_attributes(f, path)
    layout.check_attributes(attrs, path)
    grid = Grid(layout.read_axis(f, "xcoordinates", path),
                layout.read_axis(f, "ycoordinates", path) if "ycoordinates" in f else None)
    layout.check_axes(grid, attrs, path)
    values, others = layout.read_datasets(f, grid, path, skip=(*RESERVED, "density"))
    done, rule, notes, metric_done = layout.read_done(f, values, grid, path)
    directions = (layout.read_tree_checked(f["directions"], path, "directions")
                  if "directions" in f else {})
    trajectories = (layout.read_trajectories(f["trajectories"], grid, path)
                    if "trajectories" in f else {})
    return Surface(grid, values, done, attrs, directions, trajectories, others, rule, notes,
                   metric_done)


def _read_attributes(f: h5py.File, path) -> dict[str, Any]:
    attrs = {}
    for key in f.attrs:
        try:
            attrs[key] = attr_value(f.attrs[key])
        except TypeError as exc:  # a type numpy has no equivalent for
            raise ReadError(f"{path}: attribute `{key}` has a type that cannot be read "
                            f"({exc})") from exc
    return attrs


@contextlib.contextmanager
def one_line_errors(message: str) -> Iterator[None]:
    """h5py's OSError — or its RuntimeError when a close cannot flush, as on a full disk — as
    a one-line :class:`WriteError` ``"{message}: {reason}"`` (HDF5's messages span lines)."""
    try:
        yield
    except (OSError, RuntimeError) as exc:
        raise WriteError(f"{message}: {reason(exc)}") from exc


def reason(exc: BaseException) -> str:
    """An exception as one line for a message: its type and its text, whitespace folded."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def attr_value(value: Any) -> Any:
    """An HDF5 attribute as a plain Python value (bytes decoded, numpy scalars unwrapped)."""
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, np.generic):
        value = value.item()
    return value


def read_density(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray] | None:
    """The Hessian spectral density stored in group ``density/`` (datasets ``grid``, the
    eigenvalues, and ``density``, both (num_bins,)), or None if the file has none."""
    check_file(path, "surface file")
    try:
        with h5py.File(path, "r") as f:
            if "density" not in f or not isinstance(f["density"], h5py.Group):
                return None
            group = f["density"]
            if "grid" not in group or "density" not in group:
                raise ReadError(f"{path}: group `density` needs datasets `grid` and `density`, "
                                f"found {', '.join(group) or 'none'}")
            arrays = []
            for key in ("grid", "density"):
                item = group[key]
                if not isinstance(item, h5py.Dataset) or item.dtype.kind not in "fiu":
                    raise ReadError(f"{path}: `density/{key}` must be a dataset of real numbers")
                arrays.append(layout.read_array(item, f"`density/{key}`", path).astype(np.float64))
            eigenvalues, density = arrays
    except DAMAGED as exc:
        raise ReadError(f"cannot read surface file {path}: {reason(exc)}") from exc
    if eigenvalues.shape != density.shape or eigenvalues.ndim != 1:
        raise ReadError(f"{path}: density/grid {eigenvalues.shape} and density/density "
                        f"{density.shape} must be equal 1-D shapes")
    return eigenvalues, density


def write(path: str | os.PathLike, surface: Surface) -> None:
    """Write ``surface`` whole as a new file at ``path`` (a temporary name, synced, renamed):
    coordinates, every value array, ``done``, directions, trajectories and attributes."""
    journal.remove(journal_path(path))  # another scan's points must not land in this file
    message = f"cannot write surface file {path}"
    extra = sum(np.asarray(value).nbytes + BYTES_PER_OBJECT
                for columns in surface.trajectories.values() for value in columns.values()
                if value is not None)
    size = _new_file_size(surface.grid, len(surface.values), surface.directions.values(),
                          surface.attrs) + extra
    require_space(path, size, what="surface file")
    with atomic_path(path, unique=False) as tmp, one_line_errors(message):
        with h5py.File(tmp, "w") as f:
            f.create_dataset("xcoordinates", data=np.asarray(surface.grid.x, np.float64))
            if surface.grid.y is not None:
                f.create_dataset("ycoordinates", data=np.asarray(surface.grid.y, np.float64))
            for name, value in surface.values.items():
                f.create_dataset(name, data=np.asarray(value, np.float64))
            f.create_dataset("done", data=np.asarray(surface.done, bool))
            directions = f.create_group("directions")
            for key, tree in surface.directions.items():
                if tree is not None:
                    write_tree(directions.create_group(key), tree)
            group = f.create_group("trajectories")
            for name, columns in surface.trajectories.items():
                entry = group.create_group(name)
                for key, value in columns.items():
                    if value is not None:
                        entry.create_dataset(key, data=np.asarray(value))
            for key, value in surface.attrs.items():
                f.attrs[key] = (value if isinstance(value, (int, float, str, bool))
                                else json.dumps(value))
