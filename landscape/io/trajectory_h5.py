"""Trajectory files (``trajectory.h5`` of a run directory) in HDF5.

Layout (HDF5: https://docs.hdfgroup.org/hdf5/develop/_h5_d_m__u_g.html), one entry per recorded
training step, all sharing the leading step axis of length n:

- ``step`` (n,) int64 and ``epoch`` (n,) int64 (epochs finished at that step);
- ``train_loss``, ``test_loss``, ``train_acc``, ``test_acc`` (n,) float64: full-dataset means,
  accuracies as fractions in [0, 1], NaN where they do not apply;
- ``params/<leaf path>`` (n, *leaf_shape): one dataset per params leaf, named by its key path
  (``params/dense0/kernel``), in the leaf's own dtype;
- ``state/<leaf path>`` (n, *leaf_shape): the model state (BatchNorm statistics) likewise;
- optional ``opt_state/<leaf path>`` (n, *leaf_shape): the optimizer state at every recorded step
  (``landscape train --record-opt-state``), leaves named by their key paths in the optimizer's
  state (``opt_state/0/nu/dense0/kernel`` is Adam's second moment in ``optax.chain``'s first
  slot); read back as nested dicts;
- optional group ``sharpness/`` (``landscape train --track-sharpness EVERY``), on its own step
  axis of length m: ``step`` (m,) int64, ``lambda_max`` and ``residual`` (m,) float64; attribute
  ``what``: what was measured;
- root attributes: ``format`` (``landscape-trajectory``), ``format_version`` and
  ``acc_unit`` (``fraction``).
"""

from __future__ import annotations

import os
from typing import Any

import h5py
import jax
import numpy as np

from landscape.errors import ReadError, WriteError
from landscape.io.atomic import atomic_path, require_space
from landscape.io.h5tree import estimated_size, read_tree, tree_size, write_tree
from landscape.io.paths import check_file
from landscape.recorder import METRIC_NAMES
from landscape.trajectory import SharpnessTrack, Trajectory

FORMAT = "landscape-trajectory"
FORMAT_VERSION = 1
COUNTERS = ("step", "epoch")
SHARPNESS_COLUMNS = {"step": np.int64, "lambda_max": np.float64, "residual": np.float64}
SHARPNESS_WHAT = ("top Ritz value of the full-train-set mean-loss Hessian (evaluation mode) "
                  "after a fixed number of warm-started Lanczos steps, and its residual")


def write(path: str | os.PathLike, trajectory: Trajectory) -> None:
    """Write ``trajectory`` to ``path`` (replacing the file whole: a temporary name, then a
    rename). The caller's arrays are not changed.

    Raises:
      WriteError: the file cannot be created, or the arrays disagree on the number of steps.
    """
    n = len(trajectory.step)
    lengths = {name: len(getattr(trajectory, name)) for name in (*COUNTERS, *METRIC_NAMES)}
    for leaf in (_leaves(trajectory.params) + _leaves(trajectory.state)
                 + _leaves(trajectory.opt_state)):
        lengths[f"a leaf of shape {np.shape(leaf)}"] = np.shape(leaf)[0] if np.ndim(leaf) else 0
    if trajectory.sharpness is not None:
        sizes = {len(getattr(trajectory.sharpness, name)) for name in SHARPNESS_COLUMNS}
        if len(sizes) != 1:
            raise WriteError(f"cannot write trajectory {path}: the sharpness columns have "
                             f"lengths {sorted(sizes)}")
    wrong = {name: length for name, length in lengths.items() if length != n}
    if wrong:
        raise WriteError(f"cannot write trajectory {path}: {n} recorded steps but {wrong}")
    sizes = [tree_size(tree) for tree in (trajectory.params, trajectory.state,
                                          trajectory.opt_state, trajectory.sharpness)
             if tree is not None]
    require_space(path, estimated_size(sum(b for b, _ in sizes) + 64 * n,
                                       sum(c for _, c in sizes) + 16), what="trajectory")
    try:
        with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
            handle.attrs["format"] = FORMAT
            handle.attrs["format_version"] = FORMAT_VERSION
            handle.attrs["acc_unit"] = "fraction"
            handle.create_dataset("step", data=np.asarray(trajectory.step, dtype=np.int64))
            handle.create_dataset("epoch", data=np.asarray(trajectory.epoch, dtype=np.int64))
            for name in METRIC_NAMES:
                handle.create_dataset(name, data=np.asarray(getattr(trajectory, name), np.float64))
            write_tree(handle.create_group("params"), trajectory.params)
            write_tree(handle.create_group("state"), trajectory.state)
            if trajectory.opt_state is not None:
                write_tree(handle.create_group("opt_state"), trajectory.opt_state)
            if trajectory.sharpness is not None:
                group = handle.create_group("sharpness")
                group.attrs["what"] = SHARPNESS_WHAT
                for name, dtype in SHARPNESS_COLUMNS.items():
                    group.create_dataset(name, data=np.asarray(getattr(trajectory.sharpness,
                                                                       name), dtype))
    except OSError as exc:
        raise WriteError(f"cannot write trajectory {path}: {exc}") from exc


def read(path: str | os.PathLike, *, like: Any | None = None, like_state: Any | None = None
         ) -> Trajectory:
    """Read a trajectory written by :func:`write`.

    ``like`` / ``like_state``: optional pytrees of *single-step* leaves (e.g. the final params)
    whose structure the result takes; otherwise leaves come back as nested dicts.

    Raises:
      ReadError: the file is missing, is not a trajectory file, or its arrays disagree.
    """
    if not os.path.exists(path) and not os.path.islink(path):
        raise ReadError(f"{path} not found: the run directory is incomplete")
    check_file(path, "trajectory")
    try:
        with h5py.File(path, "r") as handle:
            if handle.attrs.get("format") != FORMAT:
                raise ReadError(f"{path}: not a trajectory file (attribute `format` is "
                                f"{handle.attrs.get('format')!r}, expected {FORMAT!r})")
            missing = [name for name in (*COUNTERS, *METRIC_NAMES, "params", "state")
                       if name not in handle]
            if missing:
                raise ReadError(f"{path}: trajectory file lacks {', '.join(missing)}")
            arrays = {name: handle[name][()] for name in (*COUNTERS, *METRIC_NAMES)}
            params = _read_stacked(handle["params"], like)
            state = _read_stacked(handle["state"], like_state)
            opt_state = None
            if "opt_state" in handle:
                if not isinstance(handle["opt_state"], h5py.Group):
                    raise ReadError(f"{path}: `opt_state` must be a group")
                opt_state = read_tree(handle["opt_state"])
            sharpness = _read_sharpness(path, handle) if "sharpness" in handle else None
    except OSError as exc:
        raise ReadError(f"cannot read trajectory {path}: {exc}") from exc
    n = len(arrays["step"])
    lengths = [len(v) for v in arrays.values()]
    lengths += [np.shape(leaf)[0] if np.ndim(leaf) else -1
                for leaf in _leaves(params) + _leaves(state) + _leaves(opt_state)]
    if any(length != n for length in lengths):
        raise ReadError(
            f"{path}: arrays disagree on the number of recorded steps ({sorted(set(lengths))})"
        )
    return Trajectory(params=params, state=state, opt_state=opt_state, sharpness=sharpness,
                      **arrays)


def _read_sharpness(path: Any, handle: h5py.File) -> SharpnessTrack:
    group = handle["sharpness"]
    if not isinstance(group, h5py.Group) or any(
            not isinstance(group.get(name), h5py.Dataset) or group[name].ndim != 1
            for name in SHARPNESS_COLUMNS):
        raise ReadError(f"{path}: `sharpness` must be a group of 1-D datasets "
                        f"{', '.join(SHARPNESS_COLUMNS)}")
    columns = {}
    for name, dtype in SHARPNESS_COLUMNS.items():
        data = group[name][()]
        if data.dtype.kind not in ("i", "u", "f"):
            raise ReadError(f"{path}: `sharpness/{name}` has dtype {data.dtype}, not numbers")
        columns[name] = data.astype(dtype)
    if len({len(c) for c in columns.values()}) != 1:
        raise ReadError(f"{path}: the `sharpness` datasets have different lengths")
    return SharpnessTrack(**columns)


def _read_stacked(group: h5py.Group, like: Any | None) -> Any:
    if like is None:
        return read_tree(group)
    # ``like`` has single-step leaves: check everything but the leading step axis.
    first = next(iter(group.values()), None)
    steps = _first_dataset(first).shape[0] if first is not None else 0
    stacked_like = jax.tree.map(
        lambda leaf: np.broadcast_to(np.int8(0), (steps, *np.shape(leaf))), like
    )
    return read_tree(group, like=stacked_like)


def _first_dataset(node: Any) -> h5py.Dataset:
    while isinstance(node, h5py.Group):
        node = next(iter(node.values()))
    return node


def _leaves(tree: Any) -> list:
    return jax.tree.leaves(tree)
