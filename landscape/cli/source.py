"""Where a command's model comes from (``landscape.sources``): its options, and training on
the spot with a progress bar."""

from __future__ import annotations

import click

from landscape.cli.options import FiniteFloat, USER_CODE_NOTE, progress


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
                  workload=None, precision: str | None = None):
    """``landscape.sources.trained_model`` with a progress bar."""
    from landscape.sources import trained_model as train_model

    with progress(steps, "training", quiet=quiet, unit="step") as bar:
        return train_model(workload_name, steps=steps, lr=lr, seed=seed, workload=workload,
                           precision=precision, on_step=lambda: bar.update(1))
