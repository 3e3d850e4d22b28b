"""``landscape connect``: the loss between two trained models, along the straight line and a
trained quadratic Bezier curve, with the barrier on each."""

from __future__ import annotations

import os

import click

from landscape.cli.options import (ExistingPath, FiniteFloat, USER_CODE_NOTE, compute_in,
                                   echo_outputs, library_errors, out_option, precision_option,
                                   progress, quiet_option, seed_option)
from landscape.io.folders import make_output_folder

EXAMPLES = """
\b
Examples:
  landscape train --optimizer adam --out runs/a --seed 0
  landscape train --optimizer adam --out runs/b --seed 1
  landscape connect runs/a/adam runs/b/adam --out connect
  landscape connect runs/a/adam runs/b/adam --curve-steps 0     # the straight line only
"""


@click.command(epilog=EXAMPLES)
@click.argument("run_a", type=ExistingPath(folder=True))
@click.argument("run_b", type=ExistingPath(folder=True))
@click.option("--points", type=click.IntRange(min=3), default=21, show_default=True,
              help="Evaluated points along each path, t evenly spaced in [0, 1].")
@click.option("--curve-steps", type=click.IntRange(min=0), default=1000, show_default=True,
              help="Minibatch steps training the Bezier curve's control point (0: no curve).")
@click.option("--lr", type=FiniteFloat(min=0, min_open=True), default=1e-3, show_default=True,
              help="Adam learning rate for the curve.")
@click.option("--batch-size", type=click.IntRange(min=1), default=128, show_default=True,
              help="Minibatch size for the curve (at most the training set size).")
@click.option("--split", "splits", default="train,test", show_default=True,
              help="Comma-separated splits to evaluate along the paths: train,test (test is "
                   "skipped when the workload has none).")
@click.option("--workload", "user_workload", default=None,
              help="Confirms the `package.module:function` of runs of a user workload. "
                   + USER_CODE_NOTE)
@precision_option
@out_option
@seed_option
@quiet_option
@library_errors
def connect(run_a, run_b, points, curve_steps, lr, batch_size, splits, user_workload, precision,
            out, seed, quiet):
    """Mode connectivity between the final models of two runs of one workload.

    Evaluates the exact mean loss (and accuracy) along the line θ(t) = (1−t)θ_A + tθ_B and along
    a quadratic Bezier curve θ(t) = (1−t)²θ_A + 2t(1−t)θ_b + t²θ_B whose control point θ_b is
    trained from the midpoint to minimize E_t L(θ(t)) (Garipov et al. 2018), and reports each
    path's barrier: its maximum minus the mean of the endpoints (Frankle et al. 2020), for the
    loss and the error. With BatchNorm, every evaluated point gets running statistics
    re-estimated over the training set. Writes OUT/connect.json (barriers, settings, timings),
    OUT/connect.csv (t and every metric along both paths), OUT/curve.h5 (the curve, its
    endpoints and its coordinates on the plane through A, B and the curve's midpoint) and
    OUT/connect.png. The curve is trained and the paths evaluated at --precision (recorded in
    connect.json and curve.h5). While it runs it holds OUT/curve.h5.lock: a second connect
    into the same --out stops at once, naming the first one's pid.
    """
    from landscape.connectivity import STAGES, check_same_workload, connect_runs
    from landscape.sources import open_runs

    wanted = [s.strip() for s in splits.split(",") if s.strip()]
    if not wanted or any(s not in ("train", "test") for s in wanted):
        raise click.BadParameter(f"(={splits}) must be a comma-separated list of: train, test",
                                 param_hint="--split")
    if os.path.realpath(run_a) == os.path.realpath(run_b):
        raise click.UsageError(f"RUN_A and RUN_B are the same run ({run_a}): there is no path "
                               "between a model and itself")
    check_same_workload(run_a, run_b)  # before loading either model
    precision = compute_in(precision)
    (model_a, _), (model_b, _) = open_runs([run_a, run_b], workload=user_workload)
    bars = {}

    def on_progress(stage, count):  # a bar per stage: curve training, then each path
        if stage not in bars:
            for bar in bars.values():
                bar.close()
            bars[stage] = progress(curve_steps if stage == "curve" else points, STAGES[stage],
                                   quiet=quiet, unit="step" if stage == "curve" else "pt")
        bars[stage].update(1)

    try:
        connection = connect_runs(model_a, model_b, make_output_folder(out), points=points,
                                  curve_steps=curve_steps, lr=lr, batch_size=batch_size,
                                  splits=wanted, seed=seed, precision=precision,
                                  on_progress=on_progress)
    finally:
        for bar in bars.values():
            bar.close()
    click.echo("\n".join(connection.barrier_lines()))
    echo_outputs(connection.paths)
