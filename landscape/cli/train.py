"""``landscape train``: train a workload with one or more optimizers, one run directory each."""

from __future__ import annotations

import contextlib
import os
import sys

import click

from landscape.data import names as workload_names

from landscape.cli.options import (
    USER_CODE_NOTE,
    FiniteFloat,
    compute_in,
    echo_outputs,
    library_errors,
    make_out_dir,
    out_option,
    precision_option,
    progress,
    quiet_option,
    seed_option,
    warn_if_batch_exceeds,
)

POSTFIX_EVERY = 25  # steps between progress-bar postfix updates (each one waits for the device)

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


def _optimizer_names(ctx, param, values: tuple[str, ...]) -> tuple[str, ...]:
    import optimizers

    valid = optimizers.names()
    for name in values:
        if name not in valid:
            raise click.BadParameter(
                f"(={name!r}) is not a known optimizer; choose one of {', '.join(valid)}"
            )
    repeated = sorted({name for name in values if values.count(name) > 1})
    if repeated:
        raise click.BadParameter(f"(={repeated[0]!r}) is given twice; each optimizer gets one "
                                 "run directory")
    return values


@click.command(epilog=EXAMPLES)
@click.option("--workload", default="digits", show_default=True,
              help=f"Built-in workload ({', '.join(workload_names())}) or "
                   "`package.module:function` returning a landscape.Workload. " + USER_CODE_NOTE)
@click.option("--optimizer", "optimizer_names", multiple=True, default=("adam",),
              show_default=True, callback=_optimizer_names,
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
    import jax

    from landscape.data import get_workload
    from landscape.data.files import ENV_VAR
    from landscape.errors import user_code
    from landscape.io.lock import exclusive
    from landscape.train import OptimizerSpec, check_loss

    if data_dir is not None:
        os.environ[ENV_VAR] = os.path.abspath(os.path.expanduser(data_dir))
    precision = compute_in(precision)
    specs = [OptimizerSpec(name, lr) for name in optimizer_names]
    for spec in specs:
        spec.build()  # a bad hyperparameter fails now, not after the first run
    directories = [os.path.join(out, spec.name) for spec in specs]
    _refuse_existing_runs(directories, overwrite)  # cheap: before anything is loaded
    make_out_dir(out)
    with contextlib.ExitStack() as locks:
        # Each run directory is locked (OUT/<optimizer>.lock) until its run is written, as
        # `landscape scan` locks its surface file: a second train here stops at once with "...
        # is in use by another train (pid N)" instead of both replacing the same directory.
        for directory in directories:
            locks.enter_context(exclusive(directory, what="train"))
        _refuse_existing_runs(directories, overwrite)  # again: no other train can write now
        wl = get_workload(workload)
        warn_if_batch_exceeds(batch_size, workload, len(wl.train))
        with user_code(f"the init of workload {workload!r}"):
            init = wl.init(jax.random.split(jax.random.key(seed))[0])  # as train(seed=...) draws
        check_loss(wl, *init, min(batch_size, len(wl.train)))  # before any run directory is made
        extra = {} if workload == wl.name else {"workload_source": workload}
        if track_every is not None:  # what trajectory.h5's sharpness/ measured
            extra["track_sharpness"] = {
                "every": track_every, "lanczos_steps": sharpness_steps,
                "samples": min(sharpness_samples or len(wl.train), len(wl.train)),
                "of": "full training set" if not sharpness_samples or sharpness_samples >= len(
                    wl.train) else "fixed random subset of the training set"}
        if record_opt_state:
            extra["opt_state_recorded"] = True
        tracking = dict(record_opt_state=record_opt_state)
        if track_every is not None:  # a tracker of its own for every run
            from landscape.geometry.tracking import SharpnessTracker

            tracking["new_tracker"] = lambda: SharpnessTracker(
                wl, every=track_every, num_steps=sharpness_steps, samples=sharpness_samples,
                seed=seed)
        paths, summaries, diverged = [], [], []
        for spec, directory in zip(specs, directories):
            run = _train_one(wl, spec, directory, init=init, steps=steps, batch_size=batch_size,
                             record_every=record_every, seed=seed, extra=extra,
                             overwrite=overwrite, quiet=quiet, tracking=tracking,
                             precision=precision)
            paths.append(directory)
            summaries.append(_summary(run))
            if run.divergence is not None:
                last = int(run.trajectory.step[-1])
                count = len(run.trajectory)
                diverged.append(f"{spec.name} diverged at {run.divergence.describe()}; run kept "
                                f"in {directory} with {count} record{'s' * (count != 1)} up to "
                                f"step {last}")
    for line in summaries:
        click.echo(line, err=True)
    echo_outputs(paths)
    if diverged:
        raise click.ClickException("; ".join(diverged))


def _refuse_existing_runs(directories: list[str], overwrite: bool) -> None:
    """A folder that holds a run, or anything that is not part of one, is written into only
    with ``--overwrite`` (a run beside unrelated files would look like it owned them)."""
    from landscape.runs import CHECKPOINT, RUN_JSON

    if overwrite:
        return
    for directory in directories:
        for name in (RUN_JSON, CHECKPOINT):
            if os.path.exists(os.path.join(directory, name)):
                raise click.UsageError(f"{directory} already holds a run; choose another "
                                       "`--out` or pass `--overwrite` to replace it")
        others = _not_a_run(directory)
        if others:
            shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if others[3:] else "")
            raise click.UsageError(f"{directory} holds files that are not part of a run "
                                   f"({shown}); choose another `--out` or pass `--overwrite` to "
                                   "write the run beside them (they are left as they are)")


def _not_a_run(directory: str) -> list[str]:
    """The entries of ``directory`` that a run (or a killed run's leftovers) does not make."""
    from landscape.runs import CHECKPOINT, JOURNAL, RUN_JSON, TRAJECTORY

    try:
        entries = sorted(os.listdir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return []
    ours = {RUN_JSON, TRAJECTORY, CHECKPOINT, JOURNAL}
    # ".NAME.PID.part.EXT": a killed writer's temporary (landscape.io.atomic)
    return [e for e in entries if e not in ours and not (e.startswith(".") and ".part" in e)]


def _train_one(wl, spec, directory: str, *, init, steps: int, batch_size: int,
               record_every: int, seed: int, extra: dict, overwrite: bool, quiet: bool,
               tracking: dict, precision: str):
    """Train one optimizer into ``directory`` (its lock held by the caller), streaming every
    record to its journal; ``tracking``: what else to record (optimizer state, λmax while
    training: :func:`landscape.train.train`'s options). Returns the run."""
    from landscape.engine.memory import shrink_message
    from landscape.runs import start_run
    from landscape.train import train as train_run

    tracking = dict(tracking)
    new_tracker = tracking.pop("new_tracker", None)
    if new_tracker is not None:
        tracking["tracker"] = new_tracker()
    writer = start_run(directory, workload=wl.name, optimizer=spec.resolved(), seed=seed,
                       steps=steps, batch_size=min(batch_size, len(wl.train)),
                       record_every=record_every, extra=extra, overwrite=overwrite,
                       precision=precision)
    with progress(steps, spec.name, quiet=quiet, unit="step") as bar:
        shown = {}

        def on_record(metrics):
            short = _short(metrics)
            short.pop("train_acc", None)  # keep the bar narrow: test accuracy is what counts
            shown.update(epoch=metrics["epoch"], **short)
            bar.set_postfix(shown, refresh=False)

        def callback(step, loss):
            bar.update(1)
            if step % POSTFIX_EVERY == 0:  # float() waits for the device: not every step
                shown["loss"] = f"{float(loss):.3g}"
                bar.set_postfix(shown, refresh=False)

        def shrunk(old: int, new: int, what: str) -> None:  # said even with --quiet
            bar.write(shrink_message(old, new, what), file=sys.stderr)

        run = train_run(wl, spec, steps=steps, batch_size=batch_size, seed=seed,
                        record_every=record_every, init=init, callback=callback,
                        on_record=on_record, on_snapshot=writer.record, check_every=POSTFIX_EVERY,
                        on_sharpness=writer.record_sharpness, on_shrink=shrunk,
                        precision=precision, **tracking)
    writer.finish(run)
    return run


def _short(metrics: dict) -> dict[str, str]:
    """The full-dataset metrics that apply, rounded for a progress bar."""
    shown = {}
    for name in ("train_loss", "test_loss", "train_acc", "test_acc"):
        value = metrics[name]
        if value == value:  # not NaN
            shown[name] = f"{value:.1%}" if name.endswith("acc") else f"{value:.3g}"
    return shown


def _summary(run) -> str:
    step = run.num_steps if run.divergence is None else int(run.trajectory.step[-1])
    parts = [f"{run.optimizer['name']}: step {step}, epoch {int(run.trajectory.epoch[-1])}"]
    parts += [f"{name} {value}" for name, value in _short(run.final_metrics).items()]
    parts.append(f"{run.wall_time_s:.1f} s")
    return ", ".join(parts)
