"""Final-model checkpoints with Orbax (the Flax ecosystem's standard): ``{"params", "state"}``.

A checkpoint is an Orbax ``StandardCheckpointer`` directory (https://orbax.readthedocs.io/,
"Checkpointing PyTrees of arrays"); any Orbax user restores it without this package::

    import orbax.checkpoint as ocp
    tree = ocp.StandardCheckpointer().restore("/abs/path/final")
    tree["params"], tree["state"]
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from typing import Any

import jax
import numpy as np

from landscape.errors import ReadError, WriteError


def save(path: str | os.PathLike, params: Any, state: Any) -> None:
    """Write ``{"params": params, "state": state}`` to the new directory ``path``.

    Orbax writes into a folder of its own beside ``path`` with a predictable name
    (``NAME.orbax-checkpoint-tmp``), removing whatever stood there first — a link planted there
    would aim that at another folder. So the checkpoint is made inside a private folder
    (``tempfile.mkdtemp``: a new name, mode 0700) and renamed to ``path`` once complete.

    Raises:
      WriteError: ``path`` exists or cannot be written.
    """
    import orbax.checkpoint as ocp

    path = os.path.abspath(os.fspath(path))
    if os.path.lexists(path):
        raise WriteError(f"checkpoint {path} already exists")
    tree = {"params": _to_host(params), "state": _to_host(state)}
    folder, name = os.path.split(path)
    try:
        staging = tempfile.mkdtemp(prefix=f".{name}.", suffix=".part", dir=folder)
    except OSError as exc:
        raise WriteError(f"cannot write checkpoint {path}: {exc.strerror or exc}") from exc
    try:
        with ocp.StandardCheckpointer() as checkpointer:
            checkpointer.save(os.path.join(staging, name), tree)
            checkpointer.wait_until_finished()
        os.rename(os.path.join(staging, name), path)  # fails on anything now standing at path
    except (OSError, ValueError) as exc:
        raise WriteError(f"cannot write checkpoint {path}: {exc}") from exc
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(staging)


def restore(path: str | os.PathLike) -> tuple[Any, Any]:
    """``(params, state)`` from a checkpoint written by :func:`save`, as nested dicts of numpy
    arrays.

    Raises:
      ReadError: ``path`` is missing or not such a checkpoint.
    """
    import orbax.checkpoint as ocp

    path = os.path.abspath(os.fspath(path))
    if not os.path.isdir(path):
        raise ReadError(f"checkpoint {path} not found")
    try:
        with ocp.StandardCheckpointer() as checkpointer:
            tree = checkpointer.restore(path)
    except (OSError, ValueError, KeyError, FileNotFoundError) as exc:
        raise ReadError(f"cannot read checkpoint {path}: {' '.join(str(exc).split())}") from exc
    if not isinstance(tree, dict) or "params" not in tree:
        raise ReadError(f"checkpoint {path} does not hold {{'params', 'state'}}")
    return _from_host(tree["params"]), _from_host(tree.get("state", {}))


def _to_host(tree: Any) -> Any:
    return jax.tree.map(np.asarray, jax.device_get(tree))


def _from_host(tree: Any) -> Any:
    return jax.tree.map(np.asarray, tree)
