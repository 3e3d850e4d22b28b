"""``landscape train``: train a workload with one or more optimizers, one run directory each."""

from __future__ import annotations

import os
import sys

import click

from landscape.data import names as workload_names

from landscape.cli.options import (FiniteFloat, USER_CODE_NOTE, compute_in, echo_outputs,
                                   library_errors, optimizer_names, out_option, precision_option,
                                   progress, quiet_option, seed_option, warn_if_batch_exceeds)
from landscape.io.folders import make_output_folder

BAR_METRICS = ("train_loss", "test_loss", "test_acc")  # no train_acc: test accuracy counts
EXAMPLES = """
\b
Examples:
  landscape train --workload digits --optimizer sgd --optimizer adam --optimizer ranger
  landscape train --workload spirals --optimizer adam --lr 0.01 --steps 3000 --out runs/spirals
  landscape train --workload mnist --data-dir ~/data --optimizer sgd --batch-size 256
  landscape train --workload mypackage.tasks:my_workload --optimizer adam
  landscape train --optimizer sgd --optimizer adam --batch-size 1437 --record-opt-state \\
      --track-sharpness 10                         # full batch, for the edge of stability
"""


@click.command(epilog=EXAMPLES)
@click.option("--workload", default="digits", show_default=True,
              help=f"Built-in workload ({', '.join(workload_names())}) or "
                   "`package.module:function` returning a landscape.Workload. " + USER_CODE_NOTE)
@click.option("--optimizer", "optimizer_names", multiple=True, default=("adam",),
              show_default=True,
              callback=optimizer_names(twice="; each optimizer gets one run directory"),
              help="Optimizer from the suite; repeat for several (all start from the same "
                   "initial parameters).")
@click.option("--steps", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Minibatch steps per optimizer.")
@click.option("--batch-size", type=click.IntRange(min=1), default=128, show_default=True,
              help="Minibatch size; a larger one than the training set is cut to its size "
                   "(with a warning).")
@click.option("--lr", type=FiniteFloat(min=0, min_open=True), default=None,
              help="Learning rate for every optimizer [default: each optimizer's own default].")
@click.option("--record-every", type=click.IntRange(min=1), default=50, show_default=True,
              help="Record params and full train/test metrics every this many steps.")
@click.option("--record-opt-state", is_flag=True,
              help="Record the optimizer state too at every recorded step (trajectory.h5 "
                   "opt_state/): `landscape hessian RUN --steps all` then measures adaptive "
                   "optimizers' preconditioned sharpness.")
@click.option("--track-sharpness", "track_every", type=click.IntRange(min=1), default=None,
              metavar="EVERY",
              help="Measure λmax every EVERY steps while training (trajectory.h5 sharpness/): "
                   "--sharpness-steps warm-started Lanczos steps on the Hessian of the full "
                   "training set's mean loss (evaluation mode).")
@click.option("--sharpness-steps", type=click.IntRange(min=2), default=10, show_default=True,
              help="Lanczos steps (Hessian-vector products) per --track-sharpness measurement.")
@click.option("--sharpness-samples", type=click.IntRange(min=1), default=None,
              help="--track-sharpness on a fixed random subset of this many training samples "
                   "(cheaper; another matrix) [default: the full training set].")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Folder holding <workload>/ data folders for mnist, fashion-mnist, cifar10 "
                   "(every cifar10-* workload reads cifar10/) "
                   "[default: $LANDSCAPE_DATA or ~/.cache/landscape/data].")
@precision_option
@click.option("--overwrite", is_flag=True,
              help="Replace existing runs in OUT/<optimizer>/ (and write into such a folder "
                   "even when it holds other files, which are left as they are).")
@out_option
@seed_option
@quiet_option
@library_errors
def train(workload, optimizer_names, steps, batch_size, lr, record_every, record_opt_state,
          track_every, sharpness_steps, sharpness_samples, data_dir, precision, overwrite, out,
          seed, quiet):
    """Train a workload with each optimizer, recording its trajectory.

    Every optimizer starts from the same initial parameters (drawn with --seed) and sees the
    same batch order. Each run goes to OUT/<optimizer>/: run.json (configuration, versions,
    final metrics), trajectory.h5 (params and train/test loss and accuracy at every recorded
    step) and final/ (an Orbax checkpoint of the params and model state). run.json records
    the --precision the run was trained at.

    \b
    Every record is written to OUT/<optimizer>/trajectory.journal as it is made: a run that is
    killed keeps its trajectory up to the last record (run.json says "status": "running"), and
    `landscape scan OUT/<optimizer>` still works on it.
    \b
    A loss that becomes NaN or infinite stops that optimizer: its run is kept with the finite
    records before that step (run.json "status": "diverged", "diverged_at_step"), the other
    optimizers still train, and the command ends with exit status 1.
    \b
    A step that runs out of device memory is run again with its minibatch cut into
    micro-batches of half the size (then a quarter ...), their gradients summed weighted by
    size (the same gradient up to rounding); one line says so and run.json records
    "micro_batches". BatchNorm models, whose batch statistics would change, stop instead.
    """
    from tqdm.auto import tqdm

    from landscape import training
    from landscape.data.files import ENV_VAR
    from landscape.engine.memory import shrink_message

    if data_dir is not None:
        os.environ[ENV_VAR] = os.path.abspath(os.path.expanduser(data_dir))
    bars, shown = [], {}

    def on_run(name):  # one bar per optimizer
        while bars:
            bars.pop().close()
        shown.clear()
        bars.append(progress(steps, name, quiet=quiet, unit="step"))

    def on_step(step, loss):
        bars[-1].update(1)
        if step % training.CHECK_EVERY == 0:  # float() waits: only where training checks
            shown["loss"] = f"{float(loss):.3g}"
            bars[-1].set_postfix(shown, refresh=False)

    def on_record(metrics):
        shown.update(epoch=metrics["epoch"], **training.short_metrics(metrics, BAR_METRICS))
        bars[-1].set_postfix(shown, refresh=False)

    try:
        runs = training.train_runs(
            workload, optimizer_names, make_output_folder(out), steps=steps, batch_size=batch_size,
            learning_rate=lr, seed=seed, record_every=record_every,
            record_opt_state=record_opt_state, track_sharpness=track_every,
            sharpness_steps=sharpness_steps, sharpness_samples=sharpness_samples,
            precision=compute_in(precision), overwrite=overwrite, on_run=on_run,
            on_step=on_step, on_record=on_record,
            on_shrink=lambda *shrink: tqdm.write(shrink_message(*shrink), file=sys.stderr),
            on_batch_cut=lambda size, n: warn_if_batch_exceeds(size, workload, n))
    finally:
        while bars:
            bars.pop().close()
    click.echo("\n".join(map(training.run_summary, runs)), err=True)
    echo_outputs([run.path for run in runs])
    diverged = [training.divergence_note(run) for run in runs if run.divergence is not None]
    if diverged:
        raise click.ClickException("; ".join(diverged))
