"""The one writer of a surface file while a scan runs: its lock, its creation or resumption, its
journal of finished points, and the final fold of that journal into the file.

::

    with SurfaceWriter(path, what="scan") as writer:      # PATH.lock held (flock) throughout
        values, done = writer.open(grid, names, plane, record, overwrite=False)
        writer.set_attrs({"strategy": ...})               # e.g. once the engine has chosen
        writer.write_points(index, values)                # per finished chunk (journaled)
        writer.finish(trajectories)                       # the journal folded in (one rewrite)

A second writer of the same file stops at once with :class:`~landscape.errors.FileInUse`
("PATH is in use by another scan (pid N)"); the lock dies with its process.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from landscape.io import surface_h5
from landscape.io.lock import exclusive
from landscape.io.surface_record import SurfaceRecord

SYNC_EVERY_S = 1.0  # fsync the journal at most this often: a power cut loses at most this much


class SurfaceWriter:
    """Writes one surface file (see the module docstring). ``lock=False``: the caller already
    holds the file's lock (``compare`` holds it over all its outputs)."""

    def __init__(self, path: str | os.PathLike, *, what: str = "scan", lock: bool = True):
        self.path = os.fspath(path)
        self.what = what
        self.lock = lock
        self._stack = contextlib.ExitStack()
        self._last_sync = -float("inf")

    def __enter__(self) -> SurfaceWriter:
        if self.lock:
            self._stack.enter_context(exclusive(self.path, what=self.what))
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._stack.close()

    def open(self, grid, names: list[str], plane, record: SurfaceRecord, *,
             overwrite: bool = False) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Create the file, or reopen it to resume when its spec equals ``record``'s (else
        :class:`~landscape.errors.ResumeMismatch` unless ``overwrite``). Returns the values
        and ``done`` mask as they stand."""
        return surface_h5.create(self.path, grid, names, plane, record.to_attrs(),
                                 overwrite=overwrite)

    def set_attrs(self, attrs: Mapping[str, Any]) -> None:
        surface_h5.set_attrs(self.path, attrs)

    def write_points(self, index: np.ndarray, values: Mapping[str, np.ndarray]) -> None:
        """Journal finished points (synced to disk at most every :data:`SYNC_EVERY_S`)."""
        now = time.monotonic()
        sync = now - self._last_sync >= SYNC_EVERY_S
        surface_h5.write_points(self.path, index, values, sync=sync)
        if sync:
            self._last_sync = now

    def finish(self, trajectories: Mapping[str, Mapping[str, np.ndarray | None]] | None = None
               ) -> None:
        """Fold the journal into the file, with ``trajectories`` (``{name: {"x", "y", "loss",
        "step", ...}}``) written in the same rewrite when given."""
        if trajectories:
            surface_h5.write_trajectories(self.path, trajectories)
        else:
            surface_h5.compact(self.path)
