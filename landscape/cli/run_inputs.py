"""Run directories given on the command line to the geometry commands (``hessian RUN``,
``sharpness``, ``connect``): loaded once, checked against ``--workload``, sharing one workload."""

from __future__ import annotations

import dataclasses
import os

import click

from landscape.cli.source import loaded_run


def load_runs(paths: list[str], user_workload: str | None) -> list[tuple]:
    """``[(ModelSource, Run)]`` for ``paths``. ``user_workload`` (``--workload``, or None) only
    confirms a run's own workload: a run of another one is a usage error. Runs of one workload
    share its first loaded copy, and with it every compiled program."""
    if len(set(map(os.path.realpath, paths))) != len(paths):
        raise click.UsageError("a run is given twice")
    loaded, first = [], {}
    for path in paths:
        model, run = loaded_run(path, user_workload=user_workload)
        name = model.description["workload"]
        if user_workload is not None and name != user_workload:
            raise click.UsageError(f"`--workload {user_workload}` does not match run {path}, "
                                   f"trained on {name!r}")
        loaded.append((dataclasses.replace(model, workload=first.setdefault(name, model.workload)),
                       run))
    return loaded
