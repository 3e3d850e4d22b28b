"""Fingerprints of what a computation was made from: the model, the directions, the data and the
numeric environment, so that a resumed file can prove it continues the same computation.

A scan killed halfway and run again continues in the same file. Its arguments (the spec) may be
the same while what they name has changed — the run was retrained, the data files replaced,
``JAX_ENABLE_X64`` set — and the file would then join two computations' points with exit status
0. Each fingerprint is a short hash of the values themselves (leaf names, dtypes, shapes and
bytes), recorded in the file and compared on resume (:func:`differences`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import jax
import numpy as np

from landscape.tree import named_leaves

DIGEST_BYTES = 8  # 16 hex digits: a changed model is never mistaken for the same one by chance
KINDS = ("model", "directions", "data", "environment")  # the order messages name them in


def tree_fingerprint(tree: Any) -> str:
    """A hash of a pytree's leaves: their names (key paths), dtypes, shapes and bytes, in name
    order — the same for a pytree and for its copy read back from a file as nested dicts."""
    digest = hashlib.blake2b(digest_size=DIGEST_BYTES)
    leaves = named_leaves(jax.device_get(tree))
    for name in sorted(leaves):
        _update(digest, name, leaves[name])
    return digest.hexdigest()


def data_fingerprint(data: Mapping[str, Any]) -> str:
    """A hash of every split's samples (``{split: Dataset | Batches}``): the inputs and targets
    of in-memory data, every batch of a re-iterable (read once more, in order)."""
    digest = hashlib.blake2b(digest_size=DIGEST_BYTES)
    for split, dataset in data.items():
        digest.update(f"split {split}\0".encode())
        if hasattr(dataset, "inputs") and hasattr(dataset, "targets"):
            batches: Iterable[Any] = [(dataset.inputs, dataset.targets)]
        else:
            batches = dataset
        for number, batch in enumerate(batches):
            for name, leaf in named_leaves(batch).items():
                _update(digest, f"{number}/{name}", leaf)
    return digest.hexdigest()


def environment() -> dict[str, Any]:
    """The numeric settings that change every value computed: 64-bit mode
    (``JAX_ENABLE_X64``). The matmul precision is an argument of its own (the spec's
    ``precision``): every computation runs inside its context (:mod:`landscape.precision`),
    whatever the global setting."""
    return {"x64": bool(jax.config.jax_enable_x64)}


def of_surface(params: Any, state: Any, plane: Any, data: Mapping[str, Any]) -> dict[str, Any]:
    """The fingerprints of a surface: the model at the plane's origin (``params`` and its
    ``state``), the plane's directions, the evaluated ``data`` and the environment."""
    return {"model": tree_fingerprint({"params": params, "state": state}),
            "directions": directions_fingerprint(plane.d1, plane.d2),
            "data": data_fingerprint(data),
            "environment": environment()}


def directions_fingerprint(d1: Any, d2: Any | None) -> str:
    """The hash of a plane's directions (``d2`` None on a line)."""
    return tree_fingerprint({"d1": d1} if d2 is None else {"d1": d1, "d2": d2})


ARTICLES = {"model": "another model", "directions": "other directions", "data": "other data",
            "environment": "another environment"}


def differences(recorded: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """What differs between the fingerprints a file ``recorded`` and those computed ``now``,
    as phrases ("another model (fingerprint 1a2b… in the file, 3c4d… now)", "another
    environment (x64 off in the file, on now)"); only the kinds both hold are compared (a
    caller may know some of them only)."""
    found = []
    for kind in (*KINDS, *sorted(set(now) - set(KINDS))):
        if kind not in recorded or kind not in now or recorded[kind] == now[kind]:
            continue
        old, new = recorded[kind], now[kind]
        what = ARTICLES.get(kind, f"another {kind}")
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            changed = [f"{key} {_word(old.get(key))} in the file, {_word(new.get(key))} now"
                       for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]
            found.append(f"{what} ({'; '.join(changed)})")
        else:
            found.append(f"{what} (fingerprint {old} in the file, {new} now)")
    return found


def _word(value: Any) -> str:
    if value is None:
        return "default"
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def _update(digest: Any, name: str, leaf: Any) -> None:
    array = np.asarray(leaf)
    if array.dtype.kind in "OUS":  # not numbers: their text (objects are never pickled)
        digest.update(f"{name}\0{array.dtype.kind}\0{array.shape}\0{array.tolist()!r}\0".encode())
        return
    digest.update(f"{name}\0{array.dtype.str}{array.dtype.name}\0{array.shape}\0".encode())
    digest.update(np.ascontiguousarray(array).reshape(-1).view(np.uint8).data)
