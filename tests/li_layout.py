"""Files in the exact layout of Li et al.'s loss-landscape scripts (tomgoldstein/loss-landscape),
written and read with the same h5py calls as their code, for the interoperability tests.

Transcribed call for call (no torch: their tensors reach h5py through ``.numpy()``, i.e. as the
float32 arrays used here):

- ``setup_surface_file`` (plot_surface.py): a scalar string dataset ``dir_file``, then
  ``xcoordinates`` / ``ycoordinates`` from ``np.linspace``;
- ``crunch`` (plot_surface.py): each metric allocated ``-np.ones(shape)`` with shape
  ``(len(x), len(y))`` in 2D, filled at the flat indices of ``scheduler.get_unplotted_indices``
  (``vals.ravel() <= 0``, coordinates from ``np.meshgrid(x, y)``), the whole array written back
  after every point;
- ``h5_util.write_list`` / ``read_list`` and ``net_plotter.load_directions`` for direction files,
  ``projection.setup_PCA_directions`` for the PCA datasets, ``projection.nplist_to_tensor`` (as
  numpy) for the flat vector their projection uses;
- the reads of ``plot_2D.plot_trajectory`` / ``plot_contour_trajectory``.
"""

from __future__ import annotations

import h5py
import numpy as np


def setup_surface_file(surf_file, dir_file: str, x: tuple[float, float, int],
                       y: tuple[float, float, int] | None = None) -> None:
    f = h5py.File(surf_file, "a")
    f["dir_file"] = dir_file
    xcoordinates = np.linspace(x[0], x[1], num=x[2])
    f["xcoordinates"] = xcoordinates
    if y:
        ycoordinates = np.linspace(y[0], y[1], num=y[2])
        f["ycoordinates"] = ycoordinates
    f.close()


def get_unplotted_indices(vals, xcoordinates, ycoordinates=None):
    inds = np.array(range(vals.size))
    inds = inds[vals.ravel() <= 0]
    if ycoordinates is not None:
        xcoord_mesh, ycoord_mesh = np.meshgrid(xcoordinates, ycoordinates)
        s1 = xcoord_mesh.ravel()[inds]
        s2 = ycoord_mesh.ravel()[inds]
        return inds, np.c_[s1, s2]
    return inds, xcoordinates.ravel()[inds]


def crunch(surf_file, evaluate, loss_key: str = "train_loss", acc_key: str = "train_acc", *,
           stop_after: int | None = None) -> None:
    """Their crunch with ``evaluate(coord) -> (loss, acc)`` in place of the network; stops after
    ``stop_after`` points (a run killed midway)."""
    f = h5py.File(surf_file, "r+")
    xcoordinates = f["xcoordinates"][:]
    ycoordinates = f["ycoordinates"][:] if "ycoordinates" in f.keys() else None
    if loss_key not in f.keys():
        shape = xcoordinates.shape if ycoordinates is None else (len(xcoordinates),
                                                                 len(ycoordinates))
        losses = -np.ones(shape=shape)
        accuracies = -np.ones(shape=shape)
        f[loss_key] = losses
        f[acc_key] = accuracies
    else:
        losses = f[loss_key][:]
        accuracies = f[acc_key][:]
    inds, coords = get_unplotted_indices(losses, xcoordinates, ycoordinates)
    for count, ind in enumerate(inds):
        if stop_after is not None and count >= stop_after:
            break
        loss, acc = evaluate(coords[count])
        losses.ravel()[ind] = loss
        accuracies.ravel()[ind] = acc
        f[loss_key][:] = losses
        f[acc_key][:] = accuracies
        f.flush()
    f.close()


def write_list(f, name, direction):
    grp = f.create_group(name)
    for i, l in enumerate(direction):
        grp.create_dataset(str(i), data=l)


def read_list(f, name):
    grp = f[name]
    return [grp[str(i)] for i in range(len(grp))]


def load_directions(dir_file):
    f = h5py.File(dir_file, "r")
    if "ydirection" in f.keys():
        directions = [[np.asarray(d) for d in read_list(f, "xdirection")],
                      [np.asarray(d) for d in read_list(f, "ydirection")]]
    else:
        directions = [[np.asarray(d) for d in read_list(f, "xdirection")]]
    f.close()
    return directions


def nplist_to_vector(nplist) -> np.ndarray:
    """``projection.nplist_to_tensor`` in numpy: ≥ 1-D arrays flattened and concatenated in list
    order (their ``torch.tensor(d * np.float64(1.0))`` makes them float64), 0-D ones skipped."""
    v = []
    for d in nplist:
        w = np.asarray(d * np.float64(1.0))
        if w.ndim > 1:
            v.append(w.reshape(w.size))
        elif w.ndim == 1:
            v.append(w)
    return np.concatenate(v)


def write_pca_direction_file(dir_name, xdirection, ydirection, pca) -> None:
    """The file ``setup_PCA_directions`` writes, from a fitted sklearn ``PCA``."""
    f = h5py.File(dir_name, "w")
    write_list(f, "xdirection", xdirection)
    write_list(f, "ydirection", ydirection)
    f["explained_variance_ratio_"] = pca.explained_variance_ratio_
    f["singular_values_"] = pca.singular_values_
    f["explained_variance_"] = pca.explained_variance_
    f.close()


def write_projection_file(proj_file, xcoord, ycoord) -> None:
    """The file ``project_trajectory`` writes (``xcoord``, ``ycoord``: lists of floats)."""
    f = h5py.File(proj_file, "w")
    f["proj_xcoord"] = np.array(xcoord)
    f["proj_ycoord"] = np.array(ycoord)
    f.close()


def plot_trajectory_reads(proj_file, dir_file) -> dict:
    """What ``plot_2D.plot_trajectory`` and ``plot_contour_trajectory`` read from these files."""
    f = h5py.File(proj_file, "r")
    out = {"x": np.asarray(f["proj_xcoord"]), "y": np.asarray(f["proj_ycoord"])}
    f.close()
    f2 = h5py.File(dir_file, "r")
    if "explained_variance_ratio_" in f2.keys():
        out["ratio_x"] = f2["explained_variance_ratio_"][0]
        out["ratio_y"] = f2["explained_variance_ratio_"][1]
    f2.close()
    return out


def layout(path) -> dict:
    """Every object of an HDF5 file: name -> (kind, shape, dtype) (datasets) or "group"."""
    found = {}

    def visit(name, item):
        found[name] = ("group" if isinstance(item, h5py.Group)
                       else ("dataset", item.shape, item.dtype.str if item.dtype.kind != "O"
                             else "vlen-str"))

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return found
