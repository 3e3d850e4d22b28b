"""Where a command's model comes from: trained on the spot (the default), or — once run
directories exist — loaded from one. Shared by ``scan``, ``hessian`` and friends."""

from __future__ import annotations

import dataclasses
from typing import Any

import click

from landscape.cli.options import USER_CODE_NOTE, FiniteFloat, progress


@dataclasses.dataclass(frozen=True)
class ModelSource:
    """A workload and the point in its parameter space to analyse."""

    workload: Any  # landscape.Workload
    params: Any
    state: Any
    train_loss: float  # full-train-set loss at ``params``
    description: dict  # provenance for output files (workload, optimizer, lr, steps, seed)


def model_options(command):
    """``--workload --steps --lr`` for commands that train their model on the spot."""
    command = click.option("--lr", type=FiniteFloat(min=0, min_open=True), default=1e-2,
                           show_default=True, help="Adam learning rate for training.")(command)
    command = click.option("--steps", type=click.IntRange(min=1), default=2000, show_default=True,
                           help="Training steps before the analysis.")(command)
    command = click.option("--workload", default="sine", show_default=True,
                           help="Built-in workload name (sine, spirals, digits ...) or "
                                "`package.module:function` returning a landscape.Workload. "
                                + USER_CODE_NOTE)(command)
    return command


def trained_model(workload_name: str, *, steps: int, lr: float, seed: int, quiet: bool,
                  workload: Any = None, precision: str | None = None) -> ModelSource:
    """Train ``workload_name`` with Adam for ``steps`` steps, with a progress bar
    (``workload``: that workload already loaded, e.g. to check options against it first), at
    ``precision`` (default ``highest``)."""
    import optax

    from landscape.data import get_workload
    from landscape.errors import TrainingDiverged
    from landscape.precision import DEFAULT as DEFAULT_PRECISION
    from landscape.train import train

    workload = workload or get_workload(workload_name)
    with progress(steps, "training", quiet=quiet, unit="step") as bar:
        result = train(workload, optax.adam(lr), steps=steps, seed=seed, record_every=steps,
                       callback=lambda step, loss: bar.update(1),
                       precision=precision or DEFAULT_PRECISION)
    if result.divergence is not None:  # its params would be the starting point: not the model
        raise TrainingDiverged(
            f"training `{workload_name}` with Adam (--lr {lr}) diverged at "
            f"{result.divergence.describe()}; lower `--lr` or train fewer `--steps`"
        )
    description = {"workload": workload_name, "optimizer": "adam", "lr": lr, "steps": steps,
                   "seed": seed}
    return ModelSource(workload, result.params, result.state, float(result.losses[-1]), description)


def param_shapes(workload: Any) -> Any:
    """The params pytree ``workload.init`` makes, as ``jax.ShapeDtypeStruct`` leaves: its
    shapes without training or even computing it, to check a file against the model before
    minutes of training."""
    from landscape.workload import init_shapes

    return init_shapes(workload)[0]


def loaded_run(path: str, *, user_workload: str | None = None):
    """The model saved in a run directory (``landscape train``'s output) and the run itself.

    A run of a user workload (``run.json`` has ``workload_source``, ``package.module:function``)
    is loaded only when ``user_workload`` (the ``--workload`` given on the command line) names
    the same code: a module named inside a file is never imported on the file's word alone."""
    from landscape.data import get_workload
    from landscape.errors import InputError, ReadError
    from landscape.runs import load_run
    from landscape.workload import check_params_fit

    run = load_run(path)
    name = _workload_source(path) or run.workload
    if name != run.workload and user_workload != name:
        raise ReadError(f"run {path} was trained on the user workload {name!r}; loading it "
                        f"imports and runs that code: pass `--workload {name}` to confirm")
    # The run directory is the culprit here, not an option: ReadError, naming it.
    try:
        workload = get_workload(name)
    except InputError as exc:
        raise ReadError(f"run {path} names workload {name!r}, which cannot be loaded: {exc}"
                        ) from exc
    try:
        check_params_fit(workload, run.params, run.state)
    except InputError as exc:
        raise ReadError(f"run {path}: {exc}") from exc
    description = {"workload": name, "run": str(path),
                   "optimizer": run.optimizer.get("name"), "steps": run.num_steps,
                   "seed": run.seed}
    train_loss = float(run.final_metrics.get("train_loss", float("nan")))
    return ModelSource(workload, run.params, run.state, train_loss, description), run


def _workload_source(path: str) -> str | None:
    """The ``package.module:function`` a run of a user workload was trained with (``run.json``'s
    ``workload_source``, written by ``landscape train``), else None."""
    import json
    import os

    try:
        with open(os.path.join(path, "run.json")) as handle:
            source = json.load(handle).get("workload_source")
    except (OSError, ValueError, AttributeError):
        return None  # load_run has already read it; it reports what is wrong with it
    return source if isinstance(source, str) else None
