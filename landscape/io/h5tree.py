"""Pytrees of arrays stored in an HDF5 group, one dataset per leaf, named by its key path.

``{"dense0": {"kernel": ...}}`` becomes the dataset ``<group>/dense0/kernel``. Reading returns
nested dicts; pass ``like=`` a reference pytree to get its exact structure back.
"""

from __future__ import annotations

from typing import Any

import h5py
import jax
import numpy as np

from landscape.errors import ReadError
from landscape.tree import leaf_path


# HDF5 spends under 1 KiB of headers and index per dataset or group (measured with h5py 3:
# 700-900 bytes); twice that, plus a superblock's worth, bounds a new file's size.
BYTES_PER_OBJECT = 2048
BYTES_PER_FILE = 65536


def estimated_size(data_bytes: int, objects: int) -> int:
    """An upper estimate of the size of a new HDF5 file holding ``data_bytes`` of arrays and
    attributes in ``objects`` datasets and groups (for
    :func:`landscape.io.atomic.require_space`)."""
    return int(data_bytes) + BYTES_PER_OBJECT * int(objects) + BYTES_PER_FILE


def tree_size(tree: Any) -> tuple[int, int]:
    """``(bytes, objects)`` that :func:`write_tree` would store for ``tree``: its leaves' bytes,
    and its datasets and (at most as many) groups."""
    leaves = jax.tree.leaves(tree)
    nbytes = sum(int(leaf.nbytes if hasattr(leaf, "nbytes") else np.asarray(leaf).nbytes)
                 for leaf in leaves)
    return nbytes, 2 * len(leaves)


def write_tree(group: h5py.Group, tree: Any) -> None:
    """Write every leaf of ``tree`` as a dataset under ``group``."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        group.create_dataset(leaf_path(path), data=np.asarray(leaf))


def read_tree(group: h5py.Group, like: Any | None = None) -> Any:
    """Read a pytree written by :func:`write_tree` (as nested dicts, or shaped like ``like``)."""
    if like is not None:
        paths, treedef = jax.tree_util.tree_flatten_with_path(like)
        leaves = []
        for path, ref in paths:
            name = leaf_path(path)
            if name not in group:
                raise ReadError(f"{group.file.filename}: {group.name}/{name} is missing")
            value = group[name][()]
            if np.shape(value) != np.shape(ref):
                raise ReadError(
                    f"{group.file.filename}: {group.name}/{name} has shape {np.shape(value)}, "
                    f"expected {np.shape(ref)}"
                )
            leaves.append(value)
        return jax.tree.unflatten(treedef, leaves)

    def visit(node: h5py.Group) -> dict:
        return {
            key: visit(item) if isinstance(item, h5py.Group) else item[()]
            for key, item in node.items()
        }

    return visit(group)
