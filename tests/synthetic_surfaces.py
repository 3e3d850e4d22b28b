"""Synthetic surface files for the export, plot and CLI tests (no model needed).

The values are asymmetric in x and y so that a transposed or mirrored array would be caught.
"""

from __future__ import annotations

import json

import h5py
import numpy as np

from landscape.directions import random_plane
from landscape.grid import Grid
from landscape.io import surface_h5

PARAMS = {"dense0": {"kernel": np.ones((2, 3), np.float32), "bias": np.zeros(3, np.float32)}}


def loss_fn(x, y):
    return 1.0 + (x - 0.2) ** 2 + 3.0 * (y - 0.1) ** 2 + 0.5 * x * y + 0.3 * x


def make_surface(path, *, nx: int = 7, ny: int | None = 4, nan_at=(1, 2), inf_at=(2, 3),
                 hessian: bool = False, density: bool = False, trajectories: bool = True,
                 explained_variance=(0.62, 0.21), done_fraction: float = 1.0) -> dict:
    """Write a surface file; returns the arrays written (``grid``, ``values``)."""
    grid = Grid(np.linspace(-1.0, 1.0, nx), None if ny is None else np.linspace(-0.5, 1.5, ny))
    names = ["train_loss", "train_acc"] + (["max_eig", "min_eig"] if hessian else [])
    attrs = {"spec_hash": "synthetic", "workload": "toy", "tool_version": "test",
             "direction_kind": "pca" if explained_variance else "random",
             "grid": {"x": [-1, 1, nx]}}
    if explained_variance:
        attrs["explained_variance"] = list(explained_variance)
    surface_h5.create(path, grid, names, random_plane(PARAMS, dims=grid.ndim), attrs)
    if ny is None:
        xx, yy = grid.x, np.zeros_like(grid.x)
    else:
        yy, xx = np.meshgrid(grid.y, grid.x, indexing="ij")  # (ny, nx)
    loss = loss_fn(xx, yy)
    if ny is not None:
        if nan_at is not None:
            loss[nan_at] = np.nan
        if inf_at is not None:
            loss[inf_at] = np.inf
    values = {"train_loss": loss, "train_acc": np.clip(100.0 - 20.0 * loss, 0, 100)}
    if hessian:
        values["max_eig"] = 2.0 + xx**2
        values["min_eig"] = -0.5 + yy
    count = int(round(done_fraction * grid.num_points))
    index = np.arange(count)
    if count:  # (write_points does not accept an empty index)
        surface_h5.write_points(path, index, {k: v.ravel()[index] for k, v in values.items()})
    if trajectories:
        t = np.linspace(0.0, 1.0, 9)
        surface_h5.write_trajectory(path, "sgd", x=0.9 - 0.8 * t, y=None if ny is None else 1.2 - t,
                                    loss=3.0 - 2.0 * t, step=np.arange(9) * 10)
        surface_h5.write_trajectory(path, "adam", x=-0.9 + t, y=None if ny is None else 0.3 * t,
                                    loss=2.0 - t, step=np.arange(9) * 5)
    if density:
        with h5py.File(path, "r+") as f:
            lam = np.linspace(-1.0, 10.0, 200)
            f.create_dataset("density/grid", data=lam)
            f.create_dataset("density/density", data=np.exp(-0.5 * (lam - 2.0) ** 2) + 1e-8)
    return {"grid": grid, "values": values, "attrs": json.loads(json.dumps(attrs))}
