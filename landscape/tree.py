"""Pytree leaves by name: key paths as ``dense0/kernel`` strings, and shape comparison.

One place for what checkpoints, surface files and fit checks all need: a leaf's name is its key
path joined by ``/`` (dict keys, sequence indices and attribute names alike), the name HDF5
groups store it under.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

PyTree = Any


def leaf_path(path: tuple) -> str:
    """A jax key path as a name: ``(DictKey('dense0'), DictKey('kernel'))`` → ``dense0/kernel``."""
    parts = []
    for entry in path:
        for attr in ("key", "idx", "name"):
            if hasattr(entry, attr):
                parts.append(str(getattr(entry, attr)))
                break
        else:
            parts.append(str(entry))
    return "/".join(parts) or "_"


def named_leaves(tree: PyTree) -> dict[str, Any]:
    """``{"dense0/kernel": leaf, ...}`` in flattening order."""
    return {leaf_path(path): leaf for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def leaf_shapes(tree: PyTree) -> dict[str, tuple[int, ...]]:
    """``{"dense0/kernel": shape, ...}``: leaves by name, whatever the container types (leaves may
    be arrays or ``jax.ShapeDtypeStruct``)."""
    return {name: tuple(np.shape(leaf)) for name, leaf in named_leaves(tree).items()}


def get_leaf(tree: PyTree, path: tuple[str, ...]) -> Any:
    """``tree[path[0]][path[1]]...``"""
    for key in path:
        tree = tree[key]
    return tree


def shape_difference(found: PyTree, wanted: PyTree, *, expected: str = "expected") -> str | None:
    """How ``found``'s leaves differ from ``wanted``'s by name and shape, as a phrase for a
    message ("has no leaf 'dense0/bias'", "has 'dense0/kernel' shaped (3, 4), expected (4, 4)";
    ``expected`` words the last part), or None when they agree. The first difference in name
    order is named."""
    has, needs = leaf_shapes(found), leaf_shapes(wanted)
    for name in sorted(has.keys() | needs.keys()):
        if has.get(name) != needs.get(name):
            if name not in has:
                return f"has no leaf {name!r}"
            if name not in needs:
                return f"has an extra leaf {name!r}"
            return f"has {name!r} shaped {has[name]}, {expected} {needs[name]}"
    return None
