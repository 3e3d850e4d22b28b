"""Run directories: what ``landscape train`` leaves behind for every later command.

``OUT/<optimizer>/`` holds

- ``run.json`` — workload, optimizer with all its hyperparameters, seed, steps, batch size,
  record interval, final metrics, wall time and package versions (written last, via a temporary
  name and a rename: a directory with ``run.json`` holds a complete run);
- ``trajectory.h5`` — every recorded step (:mod:`landscape.io.trajectory_h5`);
- ``final/`` — an Orbax checkpoint of ``{"params", "state"}`` (:mod:`landscape.io.checkpoint`).
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from landscape.errors import InputError, ReadError, WriteError
from landscape.io import atomic, checkpoint, trajectory_h5
from landscape.train import METRIC_NAMES, Run

RUN_JSON = "run.json"
TRAJECTORY = "trajectory.h5"
CHECKPOINT = "final"
FORMAT = "landscape-run"
FORMAT_VERSION = 1


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
    ours = [directory / name for name in (RUN_JSON, TRAJECTORY, CHECKPOINT)]
    existing = [path for path in ours if path.exists()]
    if existing and not overwrite:
        raise InputError(f"{directory} already holds a run ({existing[0].name}); choose another "
                         "`--out` or pass `--overwrite` to replace it")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for path in existing:  # run.json first: a half-replaced run must not look complete
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
    except OSError as exc:
        raise WriteError(f"cannot prepare run directory {directory}: {exc}") from exc
    trajectory_h5.write(directory / TRAJECTORY, run.trajectory)
    checkpoint.save(directory / CHECKPOINT, run.params, run.state)
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "workload": run.workload,
        **dict(extra or {}),
        "optimizer": run.optimizer,
        "seed": run.seed,
        "steps": run.num_steps,
        "batch_size": run.batch_size,
        "record_every": run.record_every,
        "num_recorded": len(run.trajectory),
        "epochs": int(run.trajectory.epoch[-1]),
        "final_metrics": {k: _finite_or_none(v) for k, v in run.final_metrics.items()},
        "wall_time_s": _finite_or_none(run.wall_time_s),
        "versions": {**run.versions, "orbax-checkpoint": _version("orbax-checkpoint"),
                     "h5py": _version("h5py")},
        "files": {"trajectory": TRAJECTORY, "checkpoint": CHECKPOINT},
    }
    _write_json_atomically(directory / RUN_JSON, document)
    return directory


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
    params, state = checkpoint.restore(directory / CHECKPOINT)
    trajectory = trajectory_h5.read(directory / TRAJECTORY, like=params, like_state=state)
    try:
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
            final_metrics={name: _nan_if_none(document["final_metrics"].get(name))
                           for name in METRIC_NAMES},
            versions=dict(document.get("versions", {})),
            wall_time_s=_nan_if_none(document.get("wall_time_s")),
            path=str(directory),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ReadError(f"{directory / RUN_JSON}: missing or malformed entry {exc}") from exc


def _write_json_atomically(path: Path, document: Mapping[str, Any]) -> None:
    try:
        text = json.dumps(document, indent=2, allow_nan=False) + "\n"
    except ValueError as exc:
        raise WriteError(f"cannot write {path}: {exc}") from exc
    atomic.write_text(path, text)


def _read_json(path: Path) -> dict[str, Any]:
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
