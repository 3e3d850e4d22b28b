"""The directions stored in a surface file (group ``directions/``: ``d1`` and, for a plane,
``d2``, pytrees by leaf path; see :mod:`landscape.io.surface_h5`), read back for
``landscape scan --directions-from``.

:func:`read_stored_directions` needs no model, so a bad file is refused before any training;
:meth:`StoredDirections.fit` then shapes them like the model's params (or checks them against
shapes from ``jax.eval_shape``), naming the first leaf that differs.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

import h5py
import jax
import numpy as np

from landscape.errors import ReadError
from landscape.tree import leaf_path
from landscape.io.paths import check_file
from landscape.io.surface_h5 import DAMAGED, attr_value, reason
from landscape.io.surface_layout import read_tree_checked
from landscape.io.surface_record import SurfaceRecord


@dataclasses.dataclass(frozen=True)
class StoredDirections:
    """The ``d1`` and ``d2`` of a surface file by leaf path (``dense0/kernel`` -> array), read
    before the model they are for exists; :meth:`fit` shapes them like its params."""

    path: str
    d1: dict[str, np.ndarray]
    d2: dict[str, np.ndarray] | None  # None: the file's directions span a line
    workload: str | None  # the file's ``workload`` attribute, for messages
    # a PCA plane's explained variance ratios: a scan of the same directions is labelled
    # "PC1 (65.6 % of variance)" as the file it reuses them from
    explained_variance: tuple[float, ...] | None = None

    @property
    def ndim(self) -> int:
        return 1 if self.d2 is None else 2

    def check_fit(self, like: Any) -> None:
        """Raise :class:`ReadError` unless the params pytree ``like`` (arrays, or shapes from
        ``jax.eval_shape``) has exactly the stored leaves and shapes; the message names the
        first leaf that differs, its shape in the file and in the model."""
        wanted = {leaf_path(key): tuple(np.shape(leaf))
                  for key, leaf in jax.tree_util.tree_flatten_with_path(like)[0]}
        name, has, needs = _first_difference(self.d1, wanted)
        if name is not None:
            made = f" (the file is a scan of workload `{self.workload}`)" if self.workload else ""
            raise ReadError(f"{self.path}: the stored directions do not fit the model: leaf "
                            f"`{name}` is {has} in the file, {needs} in the model{made}; use a "
                            f"surface file of this model")

    def fit(self, like: Any) -> tuple[Any, Any | None]:
        """``(d1, d2)`` shaped like the params pytree ``like`` (``d2`` None on a line)."""
        self.check_fit(like)
        keys, treedef = jax.tree_util.tree_flatten_with_path(like)
        names = [leaf_path(key) for key, _ in keys]
        d1 = treedef.unflatten([self.d1[name] for name in names])
        d2 = None if self.d2 is None else treedef.unflatten([self.d2[name] for name in names])
        return d1, d2


def read_stored_directions(path: str | os.PathLike) -> StoredDirections:
    """The directions stored in a surface file, without the params they are for: the file must
    be HDF5 with a ``directions/d1`` group (and optionally ``d2`` of the same leaves and shapes)
    of finite numeric arrays. Anything else raises :class:`ReadError` naming the file."""
    check_file(path, "surface file")
    try:
        if not h5py.is_hdf5(path):
            raise ReadError(f"cannot read directions from {path}: not an HDF5 file")
        with h5py.File(path, "r") as f:
            group = f.get("directions")
            if not isinstance(group, h5py.Group) or "d1" not in group:
                what = ("a surface file without stored directions (e.g. one of Li et al.'s); "
                        "only `landscape scan` stores them" if "xcoordinates" in f
                        else "not a surface file of `landscape scan`")
                raise ReadError(f"{path}: no `directions/d1` group; {what}")
            d1 = _direction_leaves(group, "d1", path)
            d2 = _direction_leaves(group, "d2", path) if "d2" in group else None
            workload = attr_value(f.attrs["workload"]) if "workload" in f.attrs else None
            attrs = {key: attr_value(f.attrs[key]) for key in ("explained_variance",)
                     if key in f.attrs}
    except DAMAGED as exc:
        raise ReadError(f"cannot read directions from {path}: {reason(exc)}") from exc
    if d2 is not None:
        name, in_d1, in_d2 = _first_difference(d1, {k: np.shape(v) for k, v in d2.items()})
        if name is not None:
            raise ReadError(f"{path}: `directions/d2` does not match `directions/d1`: leaf "
                            f"`{name}` is {in_d1} in d1, {in_d2} in d2")
    variance = SurfaceRecord.from_attrs(attrs).explained_variance
    return StoredDirections(os.fspath(path), d1, d2,
                            workload if isinstance(workload, str) else None,
                            variance if variance and len(variance) == (2 if d2 else 1) else None)


def _direction_leaves(group: h5py.Group, key: str, path) -> dict[str, np.ndarray]:
    item = group.get(key)
    if not isinstance(item, h5py.Group):
        raise ReadError(f"{path}: `directions/{key}` must be a group (one dataset per "
                        f"parameter), found {type(item).__name__}")
    leaves = {leaf_path(name): np.asarray(value) for name, value
              in jax.tree_util.tree_flatten_with_path(
                  read_tree_checked(item, path, f"directions/{key}"))[0]}
    if not leaves:
        raise ReadError(f"{path}: `directions/{key}` holds no arrays")
    for name, value in leaves.items():
        if value.dtype.kind not in "fiu":
            raise ReadError(f"{path}: `directions/{key}/{name}` holds {value.dtype} values, "
                            f"not numbers")
        if not np.isfinite(value).all():
            raise ReadError(f"{path}: `directions/{key}/{name}` holds NaN/inf values")
    return leaves


def _first_difference(stored: Mapping[str, np.ndarray], wanted: Mapping[str, tuple]):
    """``(leaf, shape in stored, shape wanted)`` of the first leaf path (in sorted order) that
    is missing on one side or shaped otherwise, shapes as text; ``(None, None, None)`` if none."""
    shapes = {name: tuple(np.shape(value)) for name, value in stored.items()}
    for name in sorted(shapes.keys() | wanted.keys()):
        has, needs = shapes.get(name), wanted.get(name)
        if has != needs:
            return name, "absent" if has is None else has, "absent" if needs is None else needs
    return None, None, None


def read_directions(path: str | os.PathLike, like: Any) -> tuple[Any, Any | None]:
    """The ``d1`` and ``d2`` (None on a line) stored in a surface file, shaped like the params
    pytree ``like``; a leaf missing, extra or of another shape raises :class:`ReadError`."""
    return read_stored_directions(path).fit(like)
