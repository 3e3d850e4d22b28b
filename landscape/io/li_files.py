"""Li et al.'s direction and projection files, written beside one of our surface files so that
their trajectory views work on our scans:
``python plot_2D.py --surf_file S.h5 --dir_file S_li_directions.h5 --proj_file S_li_proj_adam.h5``.

Layouts as their code writes them (https://github.com/tomgoldstein/loss-landscape:
``h5_util.write_list``, ``net_plotter.setup_direction``, ``projection.setup_PCA_directions`` and
``projection.project_trajectory``):

- direction file: groups ``xdirection`` and (for a plane) ``ydirection``, each holding one
  dataset per parameter tensor named ``"0"``, ``"1"``, ... in parameter order, in the
  parameters' dtype. A PCA plane adds ``explained_variance_ratio_``, ``singular_values_`` and
  ``explained_variance_`` (2,), in that dtype too (sklearn's ``PCA`` keeps the float32 of their
  rows).
- projection file: ``proj_xcoord`` and ``proj_ycoord``, float64 (n,), one per recorded step.

Order and layout of the tensors: ours, not PyTorch's. The tensors are the leaves of our params
pytree in ``jax.tree`` order (dict keys sorted; keys made only of digits in numeric order, as
jax orders an int-keyed dict) — the order ``jax.flatten_util.ravel_pytree`` concatenates them, so
their ``projection.nplist_to_tensor`` of a direction list is exactly our flat direction — and in
Flax layout (a dense kernel is (in, out), a conv kernel (h, w, in, out): the output filter is the
*last* axis, where PyTorch puts it first) — or, for an Equinox model or a pytree scanned with
``output_axis="first"``, in that model's own layout. The file's attributes say which:
``leaf_paths`` (JSON list), ``layout`` (``"flax"``, ``"torch"`` or ``"per-leaf"``) and, unless
Flax's, ``output_axis`` as the surface file records it; their readers ignore attributes. To
perturb a PyTorch model with Flax-laid-out directions, map each leaf to its tensor and move the
last axis first.

The projected coordinates are the surface file's (least squares onto the plane; for PCA planes,
whose directions are orthonormal, equal to their cosine projection ``w·d / ‖d‖``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any

import h5py
import numpy as np

from landscape.errors import InputError
from landscape.io.atomic import atomic_path
from landscape.io.surface_h5 import Surface, one_line_errors
from landscape.io.surface_layout import json_attribute


def flatten_leaves(tree: Mapping[str, Any], prefix: str = "") -> list[tuple[str, np.ndarray]]:
    """``(leaf path, array)`` in ``jax.tree`` order (see the module docstring)."""
    keys = list(tree)
    digits = bool(keys) and all(isinstance(k, str) and k.isdigit() for k in keys)
    out = []
    for key in sorted(keys, key=int if digits else str):
        path = f"{prefix}/{key}" if prefix else str(key)
        value = tree[key]
        out += (flatten_leaves(value, path) if isinstance(value, Mapping)
                else [(path, np.asarray(value))])
    return out


def pca_statistics(surface: Surface, dtype: np.dtype) -> dict[str, np.ndarray] | None:
    """sklearn's ``explained_variance_ratio_``, ``singular_values_`` and ``explained_variance_``
    of a PCA plane's file, or None if it is not one.

    The ratios are the file's ``explained_variance``. The other two are not stored, but follow
    from a path that is the PCA's own rows (``scan RUN --directions pca`` stores the run's path):
    its coordinates are the rows' dot products with orthonormal components, so component k's
    singular value is ‖x_k − mean x_k‖ and its variance that squared over n − 1. They are given
    only when the file holds exactly one path and its coordinate variances are in the ratio the
    file records (else, e.g. several paths on one plane, only the ratios)."""
    if surface.attrs.get("direction_kind") != "pca" or "explained_variance" not in surface.attrs:
        return None
    ratios = np.asarray(json_attribute(surface.attrs["explained_variance"],
                                       "explained_variance", "surface"), np.float64).ravel()
    out = {"explained_variance_ratio_": ratios.astype(dtype)}
    if len(surface.trajectories) != 1 or surface.grid.ndim != len(ratios):
        return out
    (path,) = surface.trajectories.values()
    coords = [np.asarray(path[key], np.float64) for key in ("x", "y")[: len(ratios)]]
    if len(coords[0]) < 2 or not all(np.isfinite(c).all() for c in coords):
        return out
    singular = np.array([np.linalg.norm(c - c.mean()) for c in coords])
    variance = singular**2 / (len(coords[0]) - 1)
    if len(ratios) == 2 and not np.isclose(variance[0] * ratios[1], variance[1] * ratios[0],
                                           rtol=1e-3):
        return out  # this path is not the one the components were computed from
    out["singular_values_"] = singular.astype(dtype)
    out["explained_variance_"] = variance.astype(dtype)
    return out


def write_direction_file(path: str | os.PathLike, surface: Surface) -> None:
    """Li et al.'s direction file of the plane stored in ``surface`` (see the module
    docstring); a file without stored directions (one of Li et al.'s own) is refused."""
    d1, d2 = surface.directions.get("d1"), surface.directions.get("d2")
    if not isinstance(d1, Mapping) or not d1:
        raise InputError("the surface file stores no directions (`directions/d1`): only "
                         "`landscape scan` and `compare` files can be exported for Li et al.")
    x = flatten_leaves(d1)
    y = flatten_leaves(d2) if isinstance(d2, Mapping) and surface.grid.ndim == 2 else None
    floats = [a.dtype for _, a in x if a.dtype.kind == "f"]
    dtype = np.result_type(*floats) if floats else np.dtype(np.float32)
    stats = pca_statistics(surface, dtype)
    with atomic_path(path) as tmp, one_line_errors(f"cannot write {path}"):
        with h5py.File(tmp, "w") as f:
            for name, leaves in (("xdirection", x), ("ydirection", y)):
                if leaves is None:
                    continue
                group = f.create_group(name)  # h5_util.write_list
                for i, (_, value) in enumerate(leaves):
                    group.create_dataset(str(i), data=value)
            for name, value in (stats or {}).items():
                f[name] = value
            f.attrs["leaf_paths"] = json.dumps([name for name, _ in x])
            f.attrs.update(_layout_attrs(surface.attrs.get("output_axis")))


def _layout_attrs(output_axis: Any) -> dict[str, str]:
    """``layout`` (``"flax"``: every output filter on the last axis, as files before the axis was
    recorded; ``"torch"``: on the first, Equinox's and PyTorch's; ``"per-leaf"``) and, unless
    Flax's, ``output_axis`` as the surface file records it (JSON)."""
    if output_axis is None or output_axis == "last":
        return {"layout": "flax"}
    if output_axis == "first":
        return {"layout": "torch", "output_axis": "first"}
    return {"layout": "per-leaf", "output_axis": str(output_axis)}


def write_projection_file(path: str | os.PathLike, x: np.ndarray, y: np.ndarray) -> None:
    """Li et al.'s projection file: ``proj_xcoord``, ``proj_ycoord`` float64 (n,)."""
    with atomic_path(path) as tmp, one_line_errors(f"cannot write {path}"):
        with h5py.File(tmp, "w") as f:
            f["proj_xcoord"] = np.asarray(x, np.float64)
            f["proj_ycoord"] = np.asarray(y, np.float64)


def file_part(name: str) -> str:
    """A trajectory name as a safe part of a file name."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name).strip(".") or "path"


def export(surface: Surface, out_dir: str | os.PathLike, *, stem: str = "surface") -> list[str]:
    """Write ``<stem>_li_directions.h5`` and, on a plane, one ``<stem>_li_proj_<name>.h5`` per
    trajectory into ``out_dir``; returns their paths."""
    out_dir = os.fspath(out_dir)
    written = [os.path.join(out_dir, f"{stem}_li_directions.h5")]
    write_direction_file(written[0], surface)
    if surface.grid.ndim == 2:  # their projection (project_2D) is for planes only
        used = set()
        for name in sorted(surface.trajectories):
            part = file_part(name)
            while part in used:  # two names that differ only in unsafe characters
                part += "_"
            used.add(part)
            entry = surface.trajectories[name]
            written.append(os.path.join(out_dir, f"{stem}_li_proj_{part}.h5"))
            write_projection_file(written[-1], entry["x"], entry["y"])
    return written
