"""What a surface file must hold to be read, checked before anything is drawn from it
(the layout itself is described in :mod:`landscape.io.surface_h5`).

- Axes: strictly increasing, and equal to the recorded grid spec (the ``grid`` JSON attribute,
  ``{"x": [min, max, n], "y": [min, max, n] | null, ...}``) when the file has one.
- Metrics: real numbers shaped like the grid; a complex dataset is refused, not cast.
- ``done`` where the file has none (Li et al.'s files): their resume rule — a loss ``<= 0`` is
  "not computed yet" (``scheduler.get_unplotted_indices`` in tomgoldstein/loss-landscape; their
  ``crunch`` fills every metric with ``-1`` first) — applied to each ``*_loss`` dataset and its
  ``*_acc`` partner, whose values become NaN there.
- Trajectories: a group per path of equally long 1-D real arrays with ``x``, ``loss``, ``step``
  (and ``y`` on a 2D grid).
- Anything else (Li et al.'s scalar string ``dir_file``, a dataset of another shape) is kept as
  an :class:`OtherDataset`, described, never fatal.

Every check raises :class:`~landscape.errors.ReadError` naming the file and what is wrong.
"""

from __future__ import annotations

import json
import math
from typing import Any, NamedTuple

import h5py
import numpy as np

from landscape.errors import ReadError
from landscape.grid import MAX_AXIS_POINTS, Grid, available_memory_bytes

KNOWN_METRICS = ("train_loss", "train_acc", "test_loss", "test_acc", "max_eig", "min_eig")
SMALL = 16  # an unknown dataset of at most this many elements is read and shown whole
DONE_RULES = {
    "mask": "the file's `done` mask",
    "li": "no `done` mask: derived by Li et al.'s rule, a loss <= 0 is not computed",
    "finite": "no `done` mask and no loss dataset: finite values count as done",
}


class OtherDataset(NamedTuple):
    """A dataset that is not part of the surface layout, kept for ``landscape info``."""

    shape: tuple[int, ...]
    dtype: str
    value: Any  # the value when small (a str for a string), else None


def items(group: h5py.Group, path, where: str = "") -> list[tuple[str, Any]]:
    """``group.items()``, refusing a member h5py cannot open (it yields None for a link to a
    damaged or missing object)."""
    out = list(group.items())
    for name, item in out:
        if item is None:
            inside = f"`{where}/{name}`" if where else f"`{name}`"
            raise ReadError(f"{path}: {inside} cannot be opened (a dangling link or a damaged "
                            "file)")
    return out


def check_size(item: h5py.Dataset, what: str, path) -> None:
    """Refuse (before reading it) a dataset that claims more bytes than a quarter of the free
    memory: a damaged header must not turn into a MemoryError."""
    size = math.prod(item.shape or ()) * max(item.dtype.itemsize, 1)
    if size > available_memory_bytes() // 4:
        raise ReadError(f"{path}: {what} claims shape {item.shape} ({size / 2**30:.1f} GiB), "
                        "more than this machine can hold; a damaged file?")


def read_array(item: h5py.Dataset, what: str, path) -> np.ndarray:
    """A dataset's values; h5py's TypeError for a type numpy has no equivalent for (a bitfield,
    a reference ...) is a property of the file and becomes a ReadError."""
    check_size(item, what, path)
    try:
        return np.asarray(item[()])
    except TypeError as exc:
        raise ReadError(f"{path}: {what} has a type that cannot be read ({exc})") from exc


def json_attribute(value: Any, name: str, path) -> Any:
    """An attribute that holds JSON text, parsed; any nesting depth is refused cleanly."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except (ValueError, RecursionError) as exc:
        problem = "is nested too deeply" if isinstance(exc, RecursionError) else "is not JSON"
        raise ReadError(f"{path}: attribute `{name}` {problem}") from None


def check_attributes(attrs: dict[str, Any], path) -> None:
    """The attributes readers interpret: ``explained_variance`` a list of numbers, ``grid`` an
    object (checked against the axes by :func:`check_axes`)."""
    if "explained_variance" in attrs:
        value = json_attribute(attrs["explained_variance"], "explained_variance", path)
        try:
            numbers = np.ravel(value) if isinstance(value, (list, tuple, np.ndarray)) else None
        except ValueError:  # a ragged list
            numbers = None
        if (numbers is None or numbers.dtype.kind not in "fiu"
                or not np.isfinite(numbers.astype(np.float64)).all()):
            raise ReadError(f"{path}: attribute `explained_variance` must be a list of finite "
                            f"numbers, found {str(attrs['explained_variance'])[:60]!r}")
    if "grid" in attrs and not isinstance(json_attribute(attrs["grid"], "grid", path), dict):
        raise ReadError(f"{path}: attribute `grid` must be a JSON object (the grid spec)")


def read_axis(f: h5py.File, name: str, path) -> np.ndarray:
    item = f[name]
    if not isinstance(item, h5py.Dataset) or item.ndim != 1 or item.shape[0] < 1:
        raise ReadError(f"{path}: `{name}` must be a non-empty 1-D dataset")
    if item.shape[0] > MAX_AXIS_POINTS:
        raise ReadError(f"{path}: `{name}` has {item.shape[0]:,} points, more than "
                        f"{MAX_AXIS_POINTS:,} per axis")
    if item.dtype.kind not in "fiu":
        raise ReadError(f"{path}: `{name}` holds {item.dtype} values, not real numbers")
    axis = read_array(item, f"`{name}`", path).astype(np.float64)
    if not np.isfinite(axis).all():
        raise ReadError(f"{path}: `{name}` holds NaN/inf coordinates")
    step = np.diff(axis)
    if (step <= 0).any():
        i = int(np.flatnonzero(step <= 0)[0])
        raise ReadError(f"{path}: `{name}` must be strictly increasing; point {i + 1} "
                        f"({axis[i + 1]:.6g}) follows {axis[i]:.6g}")
    return axis


def check_axes(grid: Grid, attrs: dict[str, Any], path) -> None:
    """Each axis equals ``np.linspace(min, max, n)`` of the recorded spec, where there is one
    (the spec's ``y`` is null for a line)."""
    if "grid" not in attrs:
        return
    spec = json_attribute(attrs["grid"], "grid", path)
    for key, name, axis in (("x", "xcoordinates", grid.x), ("y", "ycoordinates", grid.y)):
        if key not in spec:
            continue
        want = spec[key]
        if want is None or axis is None:
            if want is not None or axis is not None:
                has = "has" if axis is not None else "has no"
                raise ReadError(f"{path}: the file {has} `{name}`, but its `grid` attribute "
                                f"records a {'line' if want is None else 'plane'}")
            continue
        if (not isinstance(want, list) or len(want) != 3
                or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in want)
                or want[2] != int(want[2]) or not 1 <= want[2] <= MAX_AXIS_POINTS):
            raise ReadError(f"{path}: attribute `grid` has `{key}` = {str(want)[:60]}, not "
                            "[min, max, n]")
        lo, hi, n = float(want[0]), float(want[1]), int(want[2])
        recorded = f"{lo:.6g}:{hi:.6g}:{n}"
        if len(axis) != n:
            raise ReadError(f"{path}: `{name}` has {len(axis)} points, the recorded grid spec "
                            f"{key} = {recorded} has {n}")
        expected = np.linspace(lo, hi, n)
        # linspace is deterministic, so a file we wrote matches to the bit; the tolerance is
        # for other writers' rounding.
        off = np.abs(axis - expected) > 1e-9 * max(abs(hi - lo), abs(lo), abs(hi), 1e-300)
        if off.any():
            i = int(np.flatnonzero(off)[0])
            raise ReadError(f"{path}: `{name}` does not match the recorded grid spec {key} = "
                            f"{recorded}: point {i} is {axis[i]:.6g}, the spec gives "
                            f"{expected[i]:.6g}")


def check_fits(grid: Grid, num_arrays: int, path) -> None:
    needed = grid.num_points * 8 * (num_arrays + 2)
    if needed > available_memory_bytes() // 2:
        raise ReadError(f"{path}: a grid of {grid.num_points:,} points needs "
                        f"{needed / 2**30:.1f} GiB to read, more than this machine has free")


def classify(name: str, item: h5py.Dataset, grid: Grid, *, li_order: bool, path
             ) -> tuple[str, tuple[int, ...] | None]:
    """``("metric", shape to read it as)`` or ``("other", None)`` for a root dataset.

    ``li_order``: the file has no ``done`` mask (one of Li et al.'s); their ``crunch``
    allocates a non-square grid as (nx, ny) but fills it in meshgrid order, flat index
    iy * nx + ix, so such an array read flat and shaped (ny, nx) is the surface."""
    if item.shape is None:  # an empty (null-dataspace) dataset
        return "other", None
    shape, kind = tuple(item.shape), item.dtype.kind
    transposed = grid.ndim == 2 and grid.shape[0] != grid.shape[1] and shape == grid.shape[::-1]
    if shape == grid.shape or (li_order and transposed):
        if kind == "c":
            raise ReadError(f"{path}: dataset `{name}` holds complex values; a metric must be "
                            "real")
        if kind in "fiu":
            return "metric", shape
        if name in KNOWN_METRICS:  # the shape is right: the type is not
            raise ReadError(f"{path}: dataset `{name}` holds {_dtype_words(item.dtype)}; a "
                            "metric must be real numbers")
    if name in KNOWN_METRICS:
        raise ReadError(f"{path}: dataset `{name}` has shape {shape}, expected {grid.shape}")
    return "other", None


def _dtype_words(dtype: np.dtype) -> str:
    """"byte strings (|S10)", "booleans (bool)" ... for a message."""
    words = {"S": "byte strings", "U": "strings", "O": "objects (variable-length strings?)",
             "b": "booleans", "V": "compound records", "M": "dates", "m": "time spans"}
    return f"{words.get(dtype.kind, 'values')} ({dtype.str if dtype.kind in 'SUV' else dtype})"


def other_dataset(item: h5py.Dataset, name: str, path) -> OtherDataset:
    value = None
    size = math.prod(item.shape) if item.shape is not None else 0
    if item.shape is not None and size <= SMALL:
        try:
            value = np.asarray(item[()])
        except (TypeError, OSError):  # a type numpy cannot hold: shown by shape and dtype
            value = None
        if value is not None and value.dtype.kind in "SOU" and value.ndim == 0:
            raw = value.item()
            value = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
    return OtherDataset(tuple(item.shape or ()), str(item.dtype), value)


def read_datasets(f: h5py.File, grid: Grid, path, *, skip: tuple[str, ...]
                  ) -> tuple[dict[str, np.ndarray], dict[str, OtherDataset]]:
    """``(metrics as float64 grid.shape arrays, other datasets and groups)`` of the file's root,
    the names in ``skip`` aside."""
    values, others = {}, {}
    li_order = "done" not in f
    for name, item in items(f, path):
        if name in skip:
            continue
        if not isinstance(item, h5py.Dataset):
            others[name] = OtherDataset((), "group", None)
            continue
        kind, _ = classify(name, item, grid, li_order=li_order, path=path)
        if kind == "other":
            others[name] = other_dataset(item, name, path)
            continue
        check_fits(grid, len(values) + 1, path)
        # A transposed (nx, ny) array of Li et al.'s is in meshgrid order: reshaped, not
        # transposed (see classify).
        values[name] = read_array(item, f"dataset `{name}`", path).astype(
            np.float64).reshape(grid.shape)
    return values, others


def read_done(f: h5py.File, values: dict[str, np.ndarray], grid: Grid, path
              ) -> tuple[np.ndarray, str, tuple[str, ...], dict[str, np.ndarray]]:
    """``(done, rule, notes, metric_done)``: the file's ``done`` mask (``values`` become NaN
    where it is false, whatever the file holds there), or one derived by :func:`derive_done`;
    ``metric_done`` holds, for a derived mask, each metric's own points computed (a file's
    ``train_loss`` may be complete where its ``test_loss`` is not)."""
    if "done" in f:
        item = f["done"]
        if (not isinstance(item, h5py.Dataset) or tuple(item.shape or ()) != grid.shape
                or item.dtype.kind not in "biu"):
            found = (f"shape {item.shape}, {item.dtype}" if isinstance(item, h5py.Dataset)
                     else "a group")
            raise ReadError(f"{path}: `done` must be a boolean dataset of shape {grid.shape}, "
                            f"found {found}")
        done = read_array(item, "`done`", path).astype(bool)
        for name in values:
            values[name][~done] = np.nan
        return done, "mask", (), {}
    done, rule, metric_done = derive_done(values, grid.shape)
    notes = ()
    if grid.ndim == 2 and grid.shape[0] != grid.shape[1] and any(
            f[name].shape != grid.shape for name in values):
        notes = (f"metrics stored (nx, ny) = {grid.shape[::-1]}, as Li et al.'s "
                 "plot_surface.py allocates a non-square grid; read in the meshgrid order it "
                 f"fills them in, as (ny, nx) = {grid.shape}",)
    return done, rule, notes, metric_done


def derive_done(values: dict[str, np.ndarray], shape: tuple[int, ...]
                ) -> tuple[np.ndarray, str, dict[str, np.ndarray]]:
    """``(done, rule, metric_done)`` for a file without a ``done`` mask: the points every
    metric has, and each metric's own; ``values`` get NaN where a point is not computed (see
    the module docstring). A NaN loss counts as computed, as in Li et al."""
    losses = [name for name in values if name.endswith("loss")]
    if not losses:
        metric_done = {name: np.isfinite(v) for name, v in values.items()}
        done = (np.all(list(metric_done.values()), axis=0) if values
                else np.zeros(shape, bool))
        return done, "finite", metric_done
    done = np.ones(shape, bool)
    metric_done = {}
    for name in losses:
        computed = ~(values[name] <= 0)
        partners = [name, name[: -len("loss")] + "acc"]
        for partner in partners:
            if partner in values:
                values[partner] = np.where(computed, values[partner], np.nan)
                metric_done[partner] = computed
        done &= computed
    for name, value in values.items():  # metrics of no loss: done where every loss is
        metric_done.setdefault(name, done)
    return done, "li", metric_done


def read_tree_checked(group: Any, path, where: str) -> dict[str, Any]:
    """A group of arrays (``directions/``) as nested dicts, each size checked before reading."""
    if not isinstance(group, h5py.Group):
        raise ReadError(f"{path}: `{where}` must be a group")
    tree = {}
    for key, item in items(group, path, where):
        inner = f"{where}/{key}"
        tree[key] = (read_tree_checked(item, path, inner) if isinstance(item, h5py.Group)
                     else read_array(item, f"`{inner}`", path))
    return tree


def read_trajectories(group: Any, grid: Grid, path) -> dict[str, dict[str, np.ndarray]]:
    """``{name: {"x", "y", "loss", "step", extra...}}`` from group ``trajectories/``, each
    path checked (see the module docstring)."""
    if not isinstance(group, h5py.Group):
        raise ReadError(f"{path}: `trajectories` must be a group (one group per path)")
    required = ("x", "y", "loss", "step") if grid.ndim == 2 else ("x", "loss", "step")
    out = {}
    for name, entry in items(group, path, "trajectories"):
        where = f"{path}: trajectory `{name}`"
        if not isinstance(entry, h5py.Group):
            raise ReadError(f"{where} must be a group of 1-D arrays ({', '.join(required)}), "
                            "found a dataset")
        missing = [key for key in required if key not in entry]
        if missing:
            raise ReadError(f"{where} has no {', '.join(f'`{k}`' for k in missing)} (it needs "
                            f"{', '.join(required)})")
        arrays = {}
        for key, item in items(entry, path, f"trajectories/{name}"):
            if not isinstance(item, h5py.Dataset) or item.ndim != 1:
                found = "a group" if isinstance(item, h5py.Group) else f"shape {item.shape}"
                raise ReadError(f"{where}: `{key}` must be a 1-D array, found {found}")
            if item.dtype.kind not in "fiu":
                raise ReadError(f"{where}: `{key}` holds {item.dtype} values, not real numbers")
            value = read_array(item, f"trajectory `{name}`: `{key}`", path)
            arrays[key] = value if key == "step" else value.astype(np.float64)
        lengths = {key: len(value) for key, value in arrays.items()}
        if len(set(lengths.values())) != 1:
            text = ", ".join(f"{key} {n}" for key, n in lengths.items())
            raise ReadError(f"{where}: its arrays must have one length, found {text}")
        if not lengths["x"]:
            raise ReadError(f"{where} has no points")
        if not np.isfinite(arrays["step"]).all():
            raise ReadError(f"{where}: `step` holds NaN/inf")
        out[name] = arrays
    return out
