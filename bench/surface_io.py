"""Cost of crash-safe surface files: writing a scan's chunks the old way (h5py ``r+`` in place,
one open per chunk, no fsync) side by side with the journal (one synced record per chunk) plus
the final compaction (copy, apply, fsync, rename), for surface files whose ``directions/``
(origin, d1, d2) make them small or large.

Run: ``python bench/surface_io.py [--json out.json] [--quick]``. Numbers depend on the disk
(fsync) and on the page cache; nothing here is asserted by the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import h5py
import numpy as np

from landscape.directions import Plane
from landscape.grid import Grid
from landscape.io import surface_h5


def _old_write_points(path, index, values) -> None:
    """The writer before the journal (commit 96f9375): values then ``done``, in place."""
    with h5py.File(path, "r+") as f:
        shape = f["done"].shape
        for row, cols, positions in _row_segments(np.asarray(index), shape[-1]):
            where = cols if len(shape) == 1 else (row, cols)
            for name, value in values.items():
                f[name][where] = np.asarray(value)[positions]
            f["done"][where] = True


def _row_segments(index: np.ndarray, nx: int):
    rows, cols = np.divmod(index, nx)
    breaks = np.flatnonzero((np.diff(rows) != 0) | (np.diff(cols) != 1)) + 1
    starts = np.concatenate([[0], breaks])
    stops = np.concatenate([breaks, [index.size]])
    for a, b in zip(starts, stops):
        yield int(rows[a]), slice(int(cols[a]), int(cols[a]) + int(b - a)), slice(int(a), int(b))


def _plane(num_params: int) -> Plane:
    rng = np.random.default_rng(0)
    leaf = lambda: {"w": rng.standard_normal(num_params).astype(np.float32)}  # noqa: E731
    return Plane(leaf(), leaf(), leaf(), kind="random", normalization="none", ignore="none",
                 seed=0)


def bench(num_params: int, *, side: int, chunk: int, folder: str) -> dict:
    grid = Grid(np.linspace(-1, 1, side), np.linspace(-1, 1, side))
    names = ["train_loss", "train_acc"]
    plane = _plane(num_params)
    chunks = [np.arange(a, min(a + chunk, grid.num_points))
              for a in range(0, grid.num_points, chunk)]
    values = {name: np.random.default_rng(1).random(grid.num_points) for name in names}
    row = {"params": num_params, "grid": f"{side}x{side}", "chunks": len(chunks)}
    for how in ("old", "journal"):
        path = os.path.join(folder, f"{how}.h5")
        surface_h5.create(path, grid, names, plane, {"spec_hash": "b"}, overwrite=True)
        row["file_MB"] = os.path.getsize(path) / 1e6
        started = time.perf_counter()
        for index in chunks:
            part = {name: value[index] for name, value in values.items()}
            if how == "old":
                _old_write_points(path, index, part)
            else:
                surface_h5.write_points(path, index, part)
        row[f"{how}_chunks_ms"] = 1e3 * (time.perf_counter() - started)
        if how == "journal":
            started = time.perf_counter()
            surface_h5.compact(path)
            row["compact_ms"] = 1e3 * (time.perf_counter() - started)
        got = surface_h5.read(path)
        assert got.done.all() and np.array_equal(got.values["train_loss"].ravel(),
                                                 values["train_loss"])
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=None, help="Also write the rows to this JSON file.")
    parser.add_argument("--quick", action="store_true", help="Small files only.")
    args = parser.parse_args()
    sizes = [10_000, 1_000_000] if args.quick else [10_000, 1_000_000, 10_000_000]
    rows = []
    with tempfile.TemporaryDirectory(dir=".") as folder:
        for num_params in sizes:
            rows.append(bench(num_params, side=51, chunk=256, folder=folder))
    header = ("params", "grid", "chunks", "file_MB", "old_chunks_ms", "journal_chunks_ms",
              "compact_ms")
    print(" | ".join(f"{h:>17}" for h in header))
    for row in rows:
        print(" | ".join(f"{row[h]:>17.1f}" if isinstance(row[h], float) else f"{row[h]:>17}"
                         for h in header))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=2)


if __name__ == "__main__":
    main()
