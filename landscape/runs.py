"""Run directories: what ``landscape train`` leaves behind for every later command.

``OUT/<optimizer>/`` holds

- ``run.json`` — workload, optimizer with all its hyperparameters, seed, steps, batch size,
  record interval, ``precision`` (:mod:`landscape.precision`; a run written before it was
  recorded reads as ``highest``), final metrics, wall time, package versions,
  ``micro_batches`` (more than 1 when the steps ran out of device memory and summed each
  minibatch's gradient over that many pieces) and ``status`` (always replaced whole: a
  temporary name, then a rename);
- ``trajectory.h5`` — every recorded step (:mod:`landscape.io.trajectory_h5`);
- ``final/`` — an Orbax checkpoint of ``{"params", "state"}`` (:mod:`landscape.io.checkpoint`).

``status`` is ``complete``; ``diverged`` when the loss became NaN/inf (the run holds the finite
records before ``diverged_at_step``, the last of them as ``final/``); or ``running`` while
:class:`RunWriter` trains into the folder. A running (or killed) run has no ``trajectory.h5``
and ``final/`` yet but ``trajectory.journal``: every record appended and synced as it is made
(:mod:`landscape.io.journal`), so :func:`load_run` reads it up to its last record, with that
record's params as the model.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import jax
import numpy as np

from landscape.errors import InputError, ReadError, WriteError
from landscape.io import atomic, checkpoint, journal, trajectory_h5
from landscape.precision import PRECISIONS, UNRECORDED
from landscape.io.paths import check_file
from landscape.tree import leaf_path
from landscape.train_loop import METRIC_NAMES, Divergence, Run, SharpnessTrack, Trajectory, versions

RUN_JSON = "run.json"
TRAJECTORY = "trajectory.h5"
CHECKPOINT = "final"
JOURNAL = "trajectory.journal"
FORMAT = "landscape-run"
FORMAT_VERSION = 1
SHARPNESS_RECORD = "sharpness"  # journal meta ``kind`` of a --track-sharpness measurement


def save_run(run: Run, directory: str | os.PathLike, *, extra: Mapping[str, Any] | None = None,
             overwrite: bool = False) -> Path:
    """Write ``run`` into ``directory`` (created if missing) and return its path.

    ``extra``: more JSON-ready entries for ``run.json`` (e.g. how the workload was named on the
    command line). An existing run there is replaced only with ``overwrite``.

    Raises:
      InputError: ``directory`` already holds a run and ``overwrite`` is false.
      WriteError: something cannot be written.
    """
    directory = Path(directory)
    _prepare(directory, overwrite)
    _write_final(run, directory, extra)
    return directory


def _remove(path: Path) -> None:
    """Remove a file, a folder's tree, or a symbolic link itself (never what it points at)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def _prepare(directory: Path, overwrite: bool) -> None:
    if directory.is_symlink():  # a run is never written (nor a run replaced) through a link
        raise WriteError(f"run directory {directory} is a symbolic link; remove it or choose "
                         "another directory (its target is left alone)")
    ours = [directory / name for name in (RUN_JSON, TRAJECTORY, CHECKPOINT, JOURNAL)]
    existing = [path for path in ours if os.path.lexists(path)]
    if existing and not overwrite:
        raise InputError(f"{directory} already holds a run ({existing[0].name}); choose another "
                         "`directory` or pass `overwrite=True` to replace it")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for path in existing:  # run.json first: a half-replaced run must not look complete
            _remove(path)
        for path in directory.glob(f".{CHECKPOINT}.*.part"):  # a killed save's private folder
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
    except OSError as exc:
        raise WriteError(f"cannot prepare run directory {directory}: {exc}") from exc


def _write_final(run: Run, directory: Path, extra: Mapping[str, Any] | None) -> None:
    trajectory_h5.write(directory / TRAJECTORY, run.trajectory)
    if os.path.lexists(directory / CHECKPOINT):  # left by a writer killed before its run.json
        try:
            _remove(directory / CHECKPOINT)
        except OSError as exc:
            raise WriteError(f"cannot replace {directory / CHECKPOINT}: {exc}") from exc
    checkpoint.save(directory / CHECKPOINT, run.params, run.state)
    document = _header(run.workload, run.optimizer, run.seed, run.num_steps, run.batch_size,
                       run.record_every, extra, run.versions, run.precision)
    document.update({
        "status": run.status,
        "num_recorded": len(run.trajectory),
        "epochs": int(run.trajectory.epoch[-1]),
        "final_metrics": {k: _finite_or_none(v) for k, v in run.final_metrics.items()},
        "wall_time_s": _finite_or_none(run.wall_time_s),
        "micro_batches": run.micro_batches,
    })
    if run.divergence is not None:
        document.update({"diverged_at_step": run.divergence.step,
                         "diverged_loss": str(run.divergence.loss),
                         "diverged_on": run.divergence.kind})
    _write_json_atomically(directory / RUN_JSON, document)
    journal.remove(directory / JOURNAL)  # last: until run.json says so, the journal is the run


def _header(workload: str, optimizer: Mapping[str, Any], seed: int, steps: int, batch_size: int,
            record_every: int, extra: Mapping[str, Any] | None,
            package_versions: Mapping[str, str], precision: str) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "workload": workload,
        **dict(extra or {}),
        "optimizer": dict(optimizer),
        "seed": seed,
        "steps": steps,
        "batch_size": batch_size,
        "record_every": record_every,
        "precision": precision,
        "versions": {**package_versions, "orbax-checkpoint": _version("orbax-checkpoint"),
                     "h5py": _version("h5py")},
        "files": {"trajectory": TRAJECTORY, "checkpoint": CHECKPOINT},
    }


class RunWriter:
    """A run directory written while training runs, so a killed run keeps its records.

    Made by :func:`start_run`: ``run.json`` says ``running`` from the start, each record goes to
    ``trajectory.journal`` (synced) through :meth:`record` — pass it as ``train``'s
    ``on_snapshot`` — and :meth:`finish` writes the usual files and drops the journal.
    """

    def __init__(self, directory: Path, extra: Mapping[str, Any] | None):
        self.directory = directory
        self.extra = extra
        self.started = time.perf_counter()

    def record(self, metrics: Mapping[str, float], params: Any, state: Any,
               opt_state: Any = None) -> None:
        arrays = {"step": np.asarray(metrics["step"], np.int64),
                  "epoch": np.asarray(metrics["epoch"], np.int64),
                  **{name: np.asarray(metrics[name], np.float64) for name in METRIC_NAMES}}
        trees = [("params", params), ("state", state)]
        if opt_state is not None:
            trees.append(("opt_state", opt_state))
        for prefix, tree in trees:
            for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
                arrays[f"{prefix}/{leaf_path(path)}"] = np.asarray(leaf)
        journal.append(self.directory / JOURNAL, arrays)

    def record_sharpness(self, step: int, lambda_max: float, residual: float) -> None:
        """One ``--track-sharpness`` measurement, journaled beside the records (pass it as
        ``train``'s ``on_sharpness``); not synced on its own (the next record syncs it)."""
        journal.append(self.directory / JOURNAL,
                       {"step": np.asarray(step, np.int64),
                        "lambda_max": np.asarray(lambda_max, np.float64),
                        "residual": np.asarray(residual, np.float64)},
                       {"kind": SHARPNESS_RECORD}, sync=False)

    def finish(self, run: Run) -> Path:
        """Write ``trajectory.h5``, ``final/`` and the final ``run.json``; remove the journal."""
        _write_final(run, self.directory, self.extra)
        return self.directory


def start_run(directory: str | os.PathLike, *, workload: str, optimizer: Mapping[str, Any],
              seed: int, steps: int, batch_size: int, record_every: int,
              extra: Mapping[str, Any] | None = None, overwrite: bool = False,
              precision: str = "highest") -> RunWriter:
    """Prepare ``directory`` for a run about to train: ``run.json`` with ``status: running``.

    Raises:
      InputError: ``directory`` already holds a run and ``overwrite`` is false.
      WriteError: something cannot be written.
    """
    directory = Path(directory)
    _prepare(directory, overwrite)
    document = _header(workload, optimizer, seed, steps, batch_size, record_every, extra,
                       versions(), precision)
    _write_json_atomically(directory / RUN_JSON, {**document, "status": "running"})
    return RunWriter(directory, extra)


def load_run(path: str | os.PathLike) -> Run:
    """Read a run directory written by :func:`save_run` (``path`` is the directory or its
    ``run.json``).

    Raises:
      ReadError: a file is missing, unreadable or inconsistent with the others.
    """
    directory = Path(path)
    if directory.name == RUN_JSON:
        directory = directory.parent
    document = _read_json(directory / RUN_JSON)
    status = document.get("status", "complete")
    if status == "running":
        trajectory = _journal_trajectory(directory / JOURNAL)
        params = jax.tree.map(lambda leaf: leaf[-1], trajectory.params)
        state = jax.tree.map(lambda leaf: leaf[-1], trajectory.state)
        final = {name: float(getattr(trajectory, name)[-1]) for name in METRIC_NAMES}
    else:
        params, state = checkpoint.restore(directory / CHECKPOINT)
        trajectory = trajectory_h5.read(directory / TRAJECTORY, like=params, like_state=state)
        final = None
    try:
        divergence = None
        if status == "diverged":
            divergence = Divergence(int(document["diverged_at_step"]),
                                    float(document["diverged_loss"]), document["diverged_on"])
        return Run(
            workload=document["workload"],
            optimizer=document["optimizer"],
            seed=int(document["seed"]),
            num_steps=int(document["steps"]),
            batch_size=int(document["batch_size"]),
            record_every=int(document["record_every"]),
            params=params,
            state=state,
            trajectory=trajectory,
            final_metrics=final or {name: _nan_if_none(document["final_metrics"].get(name))
                                    for name in METRIC_NAMES},
            versions=dict(document.get("versions", {})),
            wall_time_s=_nan_if_none(document.get("wall_time_s")),
            path=str(directory),
            status=str(status),
            divergence=divergence,
            precision=_precision(document.get("precision", UNRECORDED), directory),
            micro_batches=int(document.get("micro_batches", 1)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ReadError(f"{directory / RUN_JSON}: missing or malformed entry {exc}") from exc


def _precision(value: Any, directory: Path) -> str:
    if value not in PRECISIONS:
        raise ReadError(f"{directory / RUN_JSON}: `precision` is {value!r}, none of "
                        f"{', '.join(PRECISIONS)}")
    return value


def _journal_trajectory(path: Path) -> Trajectory:
    """The trajectory streamed into a run's journal: its records up to the first torn or
    inconsistent one; leaves come back as nested dicts (like :func:`trajectory_h5.read`)."""
    records = journal.read(path).records
    measured = [r for r in records if r.meta.get("kind") == SHARPNESS_RECORD]
    records = [r for r in records if r.meta.get("kind") != SHARPNESS_RECORD]
    if records:
        layout = {name: (a.dtype, a.shape) for name, a in records[0].arrays.items()}
        for count, record in enumerate(records):
            if {n: (a.dtype, a.shape) for n, a in record.arrays.items()} != layout:
                records = records[:count]
                break
    if not records or not {"step", "epoch", *METRIC_NAMES} <= set(records[0].arrays):
        raise ReadError(f"{path.parent}: the run was stopped before its first record "
                        f"({path.name} holds none); nothing to load")
    columns = {name: np.stack([r.arrays[name] for r in records]) for name in records[0].arrays}
    trees: dict[str, dict] = {"params": {}, "state": {}, "opt_state": {}}
    for name, value in columns.items():
        prefix, _, rest = name.partition("/")
        if prefix in trees and rest:
            node = trees[prefix]
            *parents, leaf = rest.split("/")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
    sharpness = None
    if measured:
        last = int(columns["step"][-1])
        rows = [r.arrays for r in measured if r.arrays.keys() == {"step", "lambda_max", "residual"}
                and int(r.arrays["step"]) <= last]
        sharpness = SharpnessTrack(
            step=np.asarray([r["step"] for r in rows], np.int64).reshape(-1),
            lambda_max=np.asarray([r["lambda_max"] for r in rows], np.float64).reshape(-1),
            residual=np.asarray([r["residual"] for r in rows], np.float64).reshape(-1))
    return Trajectory(params=trees["params"], state=trees["state"],
                      opt_state=trees["opt_state"] or None, sharpness=sharpness,
                      **{name: columns[name] for name in ("step", "epoch", *METRIC_NAMES)})


def _write_json_atomically(path: Path, document: Mapping[str, Any]) -> None:
    try:
        text = json.dumps(document, indent=2, allow_nan=False) + "\n"
    except ValueError as exc:
        raise WriteError(f"cannot write {path}: {exc}") from exc
    atomic.write_text(path, text)


def _read_json(path: Path) -> dict[str, Any]:
    if os.path.lexists(path):
        check_file(path)  # (a FIFO would block the open forever)
    try:
        with open(path) as handle:
            document = json.load(handle)
    except FileNotFoundError as exc:
        raise ReadError(f"{path} not found: not a run directory (made by `landscape train`)") from exc
    except (OSError, ValueError) as exc:
        raise ReadError(f"cannot read {path}: {' '.join(str(exc).split())}") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ReadError(f"{path}: not a run file (`format` should be {FORMAT!r})")
    return document


def _finite_or_none(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _nan_if_none(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"
