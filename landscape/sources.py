"""The model an analysis starts from, as one value: a workload and a point in its parameter
space, trained on the spot (``trained_model``) or loaded from run directories of ``landscape
train`` (``open_run``, ``open_runs``) with the run itself (trajectory, optimizer settings and
state). Every scan and probe, from the command line or from Python, starts here.

    model, run = landscape.open_run("runs/adam")
    landscape.scan_model(model, run, out="scan-adam", kind="pca")
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Callable

from landscape.errors import InputError, ReadError, TrainingDiverged


@dataclasses.dataclass(frozen=True)
class ModelSource:
    """A workload and the point in its parameter space to analyse."""

    workload: Any  # landscape.Workload
    params: Any
    state: Any
    train_loss: float  # full-train-set loss at ``params``
    description: dict  # provenance for output files (workload, optimizer, lr, steps, seed)


def trained_model(workload_name: str, *, steps: int, lr: float, seed: int = 0,
                  workload: Any = None, precision: str | None = None,
                  on_step: Callable[[], None] | None = None) -> ModelSource:
    """``workload_name`` trained with Adam (learning rate ``lr``) for ``steps`` steps at
    ``precision`` (default ``highest``); ``workload``: that workload already loaded (e.g. to
    check options against it first); ``on_step()`` after every step (a progress bar).
    Raises ``TrainingDiverged`` if training diverges: its params would be the starting point,
    not a model."""
    import optax

    from landscape.data import get_workload
    from landscape.precision import DEFAULT as DEFAULT_PRECISION
    from landscape.train_loop import train

    workload = workload or get_workload(workload_name)
    callback = None if on_step is None else (lambda step, loss: on_step())
    result = train(workload, optax.adam(lr), steps=steps, seed=seed, record_every=steps,
                   callback=callback, precision=precision or DEFAULT_PRECISION)
    if result.divergence is not None:
        raise TrainingDiverged(
            f"training `{workload_name}` with Adam (`lr`={lr}) diverged at "
            f"{result.divergence.describe()}; lower `lr` or train fewer `steps`",
            param=("lr", "steps"))
    return ModelSource(workload, result.params, result.state, float(result.losses[-1]),
                       adam_description(workload_name, lr=lr, steps=steps, seed=seed))


def adam_description(workload_name: str, *, lr: float, steps: int, seed: int) -> dict:
    """The provenance :func:`trained_model` gives its model (output files record it)."""
    return {"workload": workload_name, "optimizer": "adam", "lr": lr, "steps": steps,
            "seed": seed}


def open_run(path: str | os.PathLike, *, workload: str | None = None) -> tuple[ModelSource, Any]:
    """The final model of a run directory (``landscape train``'s output) and the run itself
    (``landscape.Run``: trajectory, optimizer settings and state, metrics).

    A run of a user workload (``run.json`` has ``workload_source``, ``package.module:function``)
    is loaded only when ``workload`` names the same code: a module named inside a file is never
    imported on the file's word alone."""
    from landscape.data import get_workload
    from landscape.runs import load_run
    from landscape.workload import check_params_fit

    path = os.fspath(path)
    run = load_run(path)
    name = _workload_source(path) or run.workload
    if name != run.workload and workload != name:
        raise ReadError(f"run {path} was trained on the user workload {name!r}; loading it "
                        f"imports and runs that code: pass `--workload {name}` to confirm")
    # The run directory is the culprit here, not an argument: ReadError, naming it.
    try:
        loaded = get_workload(name)
    except InputError as exc:
        raise ReadError(f"run {path} names workload {name!r}, which cannot be loaded: {exc}"
                        ) from exc
    try:
        check_params_fit(loaded, run.params, run.state)
    except InputError as exc:
        raise ReadError(f"run {path}: {exc}") from exc
    description = {"workload": name, "run": path, "optimizer": run.optimizer.get("name"),
                   "steps": run.num_steps, "seed": run.seed}
    train_loss = float(run.final_metrics.get("train_loss", float("nan")))
    return ModelSource(loaded, run.params, run.state, train_loss, description), run


def open_runs(paths: list[str], *, workload: str | None = None) -> list[tuple[ModelSource, Any]]:
    """``[(ModelSource, Run)]`` for ``paths``, as ``open_run``. ``workload`` (or None) only
    confirms a run's own workload: a run of another one is an input error. Runs of one workload
    share its first loaded copy, and with it every compiled program."""
    if len(set(map(os.path.realpath, paths))) != len(paths):
        raise InputError("a run is given twice")
    loaded, first = [], {}
    for path in paths:
        model, run = open_run(path, workload=workload)
        name = model.description["workload"]
        if workload is not None and name != workload:
            raise InputError(f"`workload` ({workload}) does not match run {path}, trained on "
                             f"{name!r}", param="workload")
        loaded.append((dataclasses.replace(model, workload=first.setdefault(name, model.workload)),
                       run))
    return loaded


def _workload_source(path: str) -> str | None:
    """The ``package.module:function`` a run of a user workload was trained with (``run.json``'s
    ``workload_source``, written by ``landscape train``), else None."""
    try:
        with open(os.path.join(path, "run.json")) as handle:
            source = json.load(handle).get("workload_source")
    except (OSError, ValueError, AttributeError):
        return None  # load_run has already read it; it reports what is wrong with it
    return source if isinstance(source, str) else None
