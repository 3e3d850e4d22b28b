"""Training runs into run directories: one workload, several optimizers, one run directory
each (``OUT/<optimizer>/``, :mod:`landscape.runs`), all from the same initial parameters and
batch order. What ``landscape train`` does, as one call::

    runs = landscape.train_runs("digits", ["sgd", "adam"], "runs", steps=1000)
    model, run = landscape.open_run(runs[0].path)

Every run directory is locked (``OUT/<optimizer>.lock``, :mod:`landscape.io.lock`) from before
the workload is loaded until its run is written, and every record streams to its journal as it
is made (:class:`landscape.runs.RunWriter`): a killed run keeps its trajectory up to its last
record. A run whose loss became NaN/inf is kept with its finite records (``run.divergence``);
the other optimizers still train. Nothing here prints: progress goes to callbacks.
"""

from __future__ import annotations

import contextlib
import numbers
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from landscape.errors import InputError, WriteError
from landscape.train_loop import OptimizerSpec, Run
from landscape.workload import Workload

CHECK_EVERY = 25  # steps between divergence checks (each waits for the device once)


def train_runs(
    workload: str | Workload,
    optimizers: Sequence[str | OptimizerSpec],
    out: str | os.PathLike,
    *,
    steps: int,
    batch_size: int = 128,
    learning_rate: float | None = None,
    seed: int = 0,
    record_every: int = 50,
    record_opt_state: bool = False,
    track_sharpness: int | None = None,
    sharpness_steps: int = 10,
    sharpness_samples: int | None = None,
    precision: str = "highest",
    overwrite: bool = False,
    on_run: Callable[[str], None] | None = None,
    on_step: Callable[[int, Any], None] | None = None,
    on_record: Callable[[dict[str, float]], None] | None = None,
    on_shrink: Callable[[int, int, str], None] | None = None,
    on_batch_cut: Callable[[int, int], None] | None = None,
) -> list[Run]:
    """Train ``workload`` with each of ``optimizers`` into ``out/<optimizer>/``; returns the
    runs in that order, each with ``path`` (its run directory; :func:`landscape.open_run`
    loads it) and ``divergence`` (None unless its loss became NaN/inf).

    Args:
      workload: a built-in name, ``package.module:function`` (recorded in ``run.json`` as
        ``workload_source``) or a loaded :class:`landscape.Workload` (recorded by its ``name``,
        which is what :func:`landscape.open_run` will load).
      optimizers: suite names (built with ``learning_rate``, default: each one's own) or
        :class:`landscape.train_loop.OptimizerSpec` (a learning rate and hyperparameters of its own);
        one run directory each, so a name may appear once.
      steps, batch_size, seed, record_every, record_opt_state, precision: as
        :func:`landscape.train` (a ``batch_size`` beyond the training set is cut to its size:
        ``on_batch_cut(batch_size, train_size)`` hears of it).
      track_sharpness: measure λmax every this many steps while training
        (:class:`landscape.geometry.tracking.SharpnessTracker`: ``sharpness_steps`` Lanczos
        steps, on the full training set or a fixed subset of ``sharpness_samples``).
      overwrite: replace existing runs in ``out/<optimizer>/`` and write into such a folder even
        when it holds other files (left as they are); without it either is an ``InputError``.
      on_run: ``on_run(name)`` when an optimizer starts training (its directory prepared);
        ``on_step(step, loss)`` (a device scalar: ``float`` waits), ``on_record(metrics)`` and
        ``on_shrink(old, new, what)`` are :func:`landscape.train`'s ``callback``, ``on_record``
        and ``on_shrink`` for the run that is training.

    Raises:
      InputError: a bad optimizer, name or value, or a run directory taken (see
        ``overwrite``).
      FileInUse: another process trains into one of the directories.
    """
    from landscape.precision import check_precision, computing_in

    precision = check_precision(precision)
    if isinstance(optimizers, (str, OptimizerSpec)):  # one optimizer, not its letters
        optimizers = [optimizers]
    specs = [o if isinstance(o, OptimizerSpec) else OptimizerSpec(o, learning_rate)
             for o in optimizers]
    names = [spec.name for spec in specs]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated or not specs:
        raise InputError(f"`optimizers` ({', '.join(names) or 'none'}) must name each optimizer "
                         "once: each gets one run directory", param="optimizers")
    for name, value in (("steps", steps), ("batch_size", batch_size),
                        ("record_every", record_every)):
        if not isinstance(value, numbers.Integral) or value < 1:
            raise InputError(f"`{name}` (={value!r}) must be a whole number >= 1", param=name)
    for spec in specs:
        spec.build()  # a bad hyperparameter fails now, not after the first run
    out = os.fspath(out)
    directories = [os.path.join(out, name) for name in names]
    refuse_existing_runs(directories, overwrite)  # cheap: before anything is loaded
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as exc:
        raise WriteError(f"cannot create folder {out}: {exc.strerror}") from exc
    with computing_in(precision), contextlib.ExitStack() as locks:
        from landscape.io.lock import exclusive

        # Each run directory is locked (OUT/<optimizer>.lock) until its run is written, as a
        # scan locks its surface file: a second train here stops at once with "... is in use by
        # another train (pid N)" instead of both replacing the same directory.
        for directory in directories:
            locks.enter_context(exclusive(directory, what="train"))
        refuse_existing_runs(directories, overwrite)  # again: no other train can write now
        wl, setup = _setup(workload, batch_size, seed, track_sharpness, sharpness_steps,
                           sharpness_samples, record_opt_state, on_batch_cut)
        return [_train_one(wl, spec, directory, **setup, steps=steps, batch_size=batch_size,
                           seed=seed, record_every=record_every, overwrite=overwrite,
                           precision=precision, on_run=on_run, on_step=on_step,
                           on_record=on_record, on_shrink=on_shrink)
                for spec, directory in zip(specs, directories)]


def _setup(workload, batch_size, seed, track_every, sharpness_steps, sharpness_samples,
           record_opt_state, on_batch_cut) -> tuple[Workload, dict[str, Any]]:
    """The workload loaded, the shared initial params, ``run.json``'s extra entries and the
    tracking options: ``(workload, {"init", "extra", "tracking"})``."""
    import jax

    from landscape.data import get_workload
    from landscape.errors import user_code
    from landscape.train_loop import check_loss

    wl = workload if isinstance(workload, Workload) else get_workload(workload)
    source = workload if isinstance(workload, str) else wl.name
    train_size = len(wl.train)
    if batch_size > train_size and on_batch_cut is not None:
        on_batch_cut(batch_size, train_size)
    with user_code(f"the init of workload {source!r}"):
        init = wl.init(jax.random.split(jax.random.key(seed))[0])  # as train(seed=...) draws
    check_loss(wl, *init, min(batch_size, train_size))  # before any run directory is made
    extra: dict[str, Any] = {} if source == wl.name else {"workload_source": source}
    tracking: dict[str, Any] = {"record_opt_state": record_opt_state}
    if track_every is not None:  # what trajectory.h5's sharpness/ measured
        whole = not sharpness_samples or sharpness_samples >= train_size
        extra["track_sharpness"] = {
            "every": track_every, "lanczos_steps": sharpness_steps,
            "samples": min(sharpness_samples or train_size, train_size),
            "of": "full training set" if whole else "fixed random subset of the training set"}
        from landscape.geometry.tracking import SharpnessTracker

        tracking["new_tracker"] = lambda: SharpnessTracker(  # one of its own for every run
            wl, every=track_every, num_steps=sharpness_steps, samples=sharpness_samples,
            seed=seed)
    if record_opt_state:
        extra["opt_state_recorded"] = True
    return wl, {"init": init, "extra": extra, "tracking": tracking}


def refuse_existing_runs(directories: Sequence[str], overwrite: bool) -> None:
    """An ``InputError`` unless ``overwrite`` or every folder of ``directories`` is free: a
    folder that holds a run, or anything that is not part of one, is written into only with
    ``overwrite`` (a run beside unrelated files would look like it owned them)."""
    from landscape.runs import CHECKPOINT, RUN_JSON

    if overwrite:
        return
    for directory in directories:
        for name in (RUN_JSON, CHECKPOINT):
            if os.path.exists(os.path.join(directory, name)):
                raise InputError(f"{directory} already holds a run; choose another `out` or "
                                 "pass `overwrite` to replace it", param=("out", "overwrite"))
        others = _not_a_run(directory)
        if others:
            shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if others[3:] else "")
            raise InputError(f"{directory} holds files that are not part of a run ({shown}); "
                             "choose another `out` or pass `overwrite` to write the run beside "
                             "them (they are left as they are)", param=("out", "overwrite"))


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


def _train_one(wl: Workload, spec: OptimizerSpec, directory: str, *, init, steps: int,
               batch_size: int, record_every: int, seed: int, extra: dict, overwrite: bool,
               tracking: dict, precision: str, on_run, on_step, on_record, on_shrink) -> Run:
    """Train one optimizer into ``directory`` (its lock held by the caller), streaming every
    record to its journal; ``tracking``: what else to record (optimizer state, λmax while
    training: :func:`landscape.train_loop.train`'s options). Returns the run, with its ``path``."""
    import dataclasses

    from landscape import train_loop  # its `train` looked up at every call (tests replace it)
    from landscape.runs import start_run

    train = train_loop.train

    tracking = dict(tracking)
    new_tracker = tracking.pop("new_tracker", None)
    if new_tracker is not None:
        tracking["tracker"] = new_tracker()
    writer = start_run(directory, workload=wl.name, optimizer=spec.resolved(), seed=seed,
                       steps=steps, batch_size=min(batch_size, len(wl.train)),
                       record_every=record_every, extra=extra, overwrite=overwrite,
                       precision=precision)
    if on_run is not None:
        on_run(spec.name)
    run = train(wl, spec, steps=steps, batch_size=batch_size, seed=seed,
                record_every=record_every, init=init, callback=on_step, on_record=on_record,
                on_snapshot=writer.record, check_every=CHECK_EVERY,
                on_sharpness=writer.record_sharpness, on_shrink=on_shrink, precision=precision,
                **tracking)
    writer.finish(run)
    return dataclasses.replace(run, path=directory)


def short_metrics(metrics: Mapping[str, float],
                  names: Sequence[str] = ("train_loss", "test_loss", "train_acc", "test_acc"),
                  ) -> dict[str, str]:
    """The full-dataset metrics of ``names`` that apply (not NaN), rounded for a progress bar or
    a summary: ``{"train_loss": "0.0123", "test_acc": "97.1%", ...}``."""
    shown = {}
    for name in names:
        value = metrics[name]
        if value == value:  # not NaN
            shown[name] = f"{value:.1%}" if name.endswith("acc") else f"{value:.3g}"
    return shown


def run_summary(run: Run) -> str:
    """One line on a trained run: "adam: step 1000, epoch 90, train_loss 0.01, ..., 3.2 s"."""
    step = run.num_steps if run.divergence is None else int(run.trajectory.step[-1])
    parts = [f"{run.optimizer['name']}: step {step}, epoch {int(run.trajectory.epoch[-1])}"]
    parts += [f"{name} {value}" for name, value in short_metrics(run.final_metrics).items()]
    parts.append(f"{run.wall_time_s:.1f} s")
    return ", ".join(parts)


def divergence_note(run: Run) -> str | None:
    """Where a diverged run stopped and what was kept of it (None if it did not diverge)."""
    if run.divergence is None:
        return None
    count = len(run.trajectory)
    return (f"{run.optimizer['name']} diverged at {run.divergence.describe()}; run kept in "
            f"{run.path} with {count} record{'s' * (count != 1)} up to step "
            f"{int(run.trajectory.step[-1])}")
