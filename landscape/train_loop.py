"""Training loop: minibatch steps of any optax transformation, recording the trajectory.

The step is jitted once per run and gathers its minibatch on the device from the training set
(placed there once), so the host loop only dispatches steps and never waits for the device.
Every ``record_every`` steps a copy of the params and state and an exact evaluation of the full
train and test sets are dispatched too; the host fetches them one record later, when they are
long done. Same workload, seed and arguments give bit-identical trajectories on the same
machine.

Divergence: the minibatch losses are checked every ``check_every`` steps (one wait for the
device, not one per step) and every recorded full-train-set loss and snapshot as it is fetched;
at the first NaN or infinity training stops and the run keeps the finite records before it
(``status="diverged"``, :class:`Divergence` says where).

Out of device memory: a step that fails with XLA's ``RESOURCE_EXHAUSTED`` is run again with its
minibatch cut into micro-batches of half the size (then a quarter ...), whose gradients are
summed weighted by their sizes inside the step — the minibatch's gradient up to float rounding,
so the optimization is unchanged. ``on_shrink`` hears of each halving and ``run.json`` records
``micro_batches``. A workload whose training-mode loss uses batch statistics (BatchNorm) cannot
be cut so (its gradient would change): it stops with :class:`~landscape.errors.OutOfMemory`.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import sys
import time
from collections.abc import Callable, Mapping
from importlib import metadata
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from landscape.engine.memory import OnShrink, halved, is_out_of_memory
from landscape.errors import (
    InputError,
    OutOfMemory,
    TrainingDiverged,
    blame_user_code,
    first_line,
    user_code,
)
from landscape.recorder import (  # noqa: F401 (METRIC_NAMES, host_metrics: public here too)
    METRIC_NAMES,
    Divergence,
    Recorder,
    first_nonfinite,
    host_metrics,
)
from landscape.trajectory import SharpnessTrack, Trajectory  # noqa: F401 (public here too)
from landscape.workload import Batch, Params, State, Workload, dataset_mean


@dataclasses.dataclass(frozen=True)
class OptimizerSpec:
    """An optimizer of the ``optimizers`` suite by name, with its hyperparameters.

    ``learning_rate=None`` takes the registry's default for ``name``; ``hyperparams`` are the
    other keyword arguments of ``optimizers.get``.
    """

    name: str
    learning_rate: float | None = None
    hyperparams: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def build(self) -> optax.GradientTransformation:
        """``optimizers.get(name, learning_rate=..., **hyperparams)``; a bad name or value is an
        :class:`InputError` that lists the valid names."""
        import optimizers

        valid = optimizers.names()
        if self.name not in valid:
            raise InputError(
                f"`--optimizer` (={self.name!r}) is not a known optimizer; choose one of "
                f"{', '.join(valid)}"
            )
        kwargs = dict(self.hyperparams)
        if self.learning_rate is not None:
            kwargs["learning_rate"] = self.learning_rate
        try:
            return optimizers.get(self.name, **kwargs)
        except (ValueError, TypeError) as exc:
            raise InputError(f"optimizer `{self.name}`: {exc}") from exc

    def resolved(self) -> dict[str, Any]:
        """Name, learning rate and every hyperparameter (given or default), JSON-ready."""
        import optimizers

        learning_rate = self.learning_rate
        if learning_rate is None and self.name != "lookahead":
            learning_rate = optimizers.default_learning_rate(self.name)
        hyperparams: dict[str, Any] = {}
        factory = getattr(optimizers, self.name, None)
        if callable(factory):
            for parameter in inspect.signature(factory).parameters.values():
                if parameter.default is not inspect.Parameter.empty:
                    hyperparams[parameter.name] = _json_value(parameter.default)
        hyperparams.pop("learning_rate", None)
        hyperparams.update({k: _json_value(v) for k, v in self.hyperparams.items()})
        return {"name": self.name, "learning_rate": learning_rate, "hyperparams": hyperparams}


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)):
        return [_json_value(v) for v in value]
    return repr(value)  # callables (masks, schedules): recorded by name only


@dataclasses.dataclass(frozen=True)
class Run:
    """A training run: its configuration, final model and recorded trajectory.

    Made by :func:`train`, written by :func:`landscape.runs.save_run` and read back by
    :func:`landscape.load_run` (then ``path`` is the run directory).
    """

    workload: str
    optimizer: dict[str, Any]  # {"name", "learning_rate", "hyperparams"}
    seed: int
    num_steps: int
    batch_size: int
    record_every: int
    params: Params
    state: State
    trajectory: Trajectory
    final_metrics: dict[str, float]
    versions: dict[str, str]
    wall_time_s: float = math.nan
    path: str | None = None
    status: str = "complete"  # "complete", "diverged", or "running" (read back mid-way/killed)
    divergence: Divergence | None = None
    precision: str = "highest"  # of float32 products and convolutions (landscape.precision)
    micro_batches: int = 1  # each minibatch's gradient summed over this many pieces (memory)

    @property
    def steps(self) -> np.ndarray:
        """The recorded steps (num_recorded,)."""
        return self.trajectory.step

    @property
    def losses(self) -> np.ndarray:
        """The full-train-set mean loss at the recorded steps (num_recorded,)."""
        return self.trajectory.train_loss

    def params_at(self, step: int) -> Params:
        """The params after ``step`` steps (a recorded step)."""
        return self.trajectory.params_at(step)

    def state_at(self, step: int) -> State:
        return self.trajectory.state_at(step)


TrainResult = Run  # the name this object had before run directories existed


def versions() -> dict[str, str]:
    """Versions of the packages that determine a run's numbers."""
    found = {"python": sys.version.split()[0]}
    for package in ("landscape", "jax", "jaxlib", "flax", "optax", "numpy"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "unknown"
    return found


def _announce(measurements: list, callback: Callable | None) -> list:
    for row in measurements if callback is not None else ():
        callback(*row)
    return measurements


def make_train_step(workload: Workload, optimizer: optax.GradientTransformation, *,
                    micro_batch: int | None = None) -> Callable:
    """The jitted update ``(params, opt_state, state, data, order, index) -> (params, opt_state,
    state, loss)``.

    ``data`` is the whole training set on the device, ``order`` (batches_per_epoch, batch_size)
    this epoch's sample order and ``index`` the batch number: the minibatch is gathered inside
    the step, so one dispatch per step is all the host does. Training mode: ``train_loss``
    (batch statistics, updated state) if the workload has one, else ``loss`` with the state
    unchanged.

    ``micro_batch``: the gradient is summed over pieces of at most this many samples, one after
    another (memory of one piece), each weighted by its size: the minibatch's mean gradient up to
    rounding. Only for a workload without ``train_loss`` (whose state the step leaves alone).
    """
    if workload.train_loss is not None:
        objective = workload.train_loss
    else:
        def objective(params, state, batch):
            value, metrics = workload.loss(params, state, batch)
            return value, (metrics, state)

    def gradient(params, state, data: Batch, rows: jax.Array):
        batch = Batch(data.inputs[rows], data.targets[rows])
        (loss, (_, new_state)), grads = jax.value_and_grad(objective, has_aux=True)(
            params, state, batch
        )
        return loss, new_state, grads

    def step(params, opt_state, state, data: Batch, order: jax.Array, index: jax.Array):
        rows = order[index]
        if micro_batch is None or micro_batch >= rows.shape[0]:
            loss, new_state, grads = gradient(params, state, data, rows)
        else:
            loss, grads = _micro_batched(gradient, params, state, data, rows, micro_batch)
            new_state = state
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, new_state, loss

    return jax.jit(step, donate_argnums=(0, 1, 2))


def _micro_batched(gradient: Callable, params, state, data: Batch, rows: jax.Array, size: int):
    """The minibatch ``rows``' mean loss and gradient, summed over pieces of ``size`` rows (a
    loop, so one piece's activations are alive at a time) and a shorter last piece, each
    weighted by its number of rows."""
    total = rows.shape[0]
    full = total // size

    def weighted(piece: jax.Array):
        loss, _, grads = gradient(params, state, data, piece)
        weight = piece.shape[0] / total
        return loss * weight, jax.tree.map(lambda g: g * weight, grads)

    def body(carry, piece):
        return jax.tree.map(jnp.add, carry, weighted(piece)), None

    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype),
                         jax.eval_shape(weighted, rows[:size]))
    sums, _ = jax.lax.scan(body, zeros, rows[: full * size].reshape(full, size))
    if full * size < total:
        sums = jax.tree.map(jnp.add, sums, weighted(rows[full * size:]))
    return sums


class _Steps:
    """The training step, compiled for the current micro-batch size (the whole minibatch until
    a step runs out of device memory; then half of it, and so on)."""

    def __init__(self, workload: Workload, optimizer: optax.GradientTransformation,
                 batch_size: int, blame: Callable, on_shrink: OnShrink | None):
        self.workload, self.optimizer, self.blame = workload, optimizer, blame
        self.batch_size = self.size = batch_size
        self.on_shrink = on_shrink
        self.tried: list[int] = []
        self._programs: dict[int, Callable] = {}

    @property
    def micro_batches(self) -> int:
        return -(-self.batch_size // self.size)

    def __call__(self, params, opt_state, state, *args):
        while True:
            if self.size not in self._programs:
                micro = None if self.size >= self.batch_size else self.size
                self._programs[self.size] = self.blame(
                    make_train_step(self.workload, self.optimizer, micro_batch=micro))
            try:
                return self._programs[self.size](params, opt_state, state, *args)
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                self._halve(exc, (params, opt_state, state))

    def _halve(self, exc: Exception, inputs: Any) -> None:
        self.tried.append(self.size)
        where = (f"out of device memory in a training step of {self.batch_size} samples"
                 + (f" (micro-batches of {self.size})" if self.size < self.batch_size else ""))
        why = None
        if self.workload.train_loss is not None:
            why = (f"`{self.workload.name}` trains with batch statistics (BatchNorm), which "
                   "micro-batches would change")
        elif self.size == 1:
            why = "even one sample at a time does not fit"
        elif any(leaf.is_deleted() for leaf in jax.tree.leaves(inputs)
                 if isinstance(leaf, jax.Array)):
            why = "the step had already taken over its inputs"
        if why is not None:
            raise OutOfMemory(f"{where}: {why}; use a smaller `batch_size` "
                              f"({first_line(exc)})", what="micro-batch",
                              sizes=tuple(self.tried)) from exc
        new = halved(self.size)
        if self.on_shrink is not None:
            self.on_shrink(self.size, new, "micro-batch")
        self.size = new


def check_loss(workload: Workload, params: Params, state: State, batch_size: int) -> None:
    """Trace the workload's losses once on abstract batches (``jax.eval_shape``: nothing is
    computed), so that an error in them — a raise, inputs of the wrong shape, a loss that is
    not a scalar — is a one-line :class:`InputError` naming the workload, not a JAX traceback
    from inside the training step."""
    inputs, targets = workload.train.inputs, workload.train.targets

    def batch(size: int) -> Batch:
        return Batch(jax.ShapeDtypeStruct((size, *inputs.shape[1:]), inputs.dtype),
                     jax.ShapeDtypeStruct((size, *targets.shape[1:]), targets.dtype))

    objective = workload.train_loss or workload.loss
    with user_code(f"the loss of workload {workload.name!r}"):
        jax.eval_shape(jax.grad(lambda p, s, b: objective(p, s, b)[0]), params, state,
                       batch(batch_size))
        jax.eval_shape(workload.loss, params, state,
                       batch(min(workload.batch_size, len(workload.train))))


def make_evaluator(workload: Workload) -> Callable[[Params, State], dict[str, Any]]:
    """``evaluate(params, state)``: exact full-dataset means of the loss and metrics on the train
    and test sets, in evaluation mode, as device arrays (one compiled call, dispatched without
    waiting; :func:`host_metrics` turns them into numbers)."""
    splits = {"train": workload.train.split_batches(workload.batch_size)}
    if workload.test is not None:
        splits["test"] = workload.test.split_batches(workload.batch_size)
    splits = jax.device_put(splits)

    @jax.jit
    def means(params, state, splits):
        return {name: dataset_mean(workload.loss, params, state, *batches)
                for name, batches in splits.items()}

    return lambda params, state: means(params, state, splits)


def train(
    workload: Workload,
    optimizer: str | OptimizerSpec | optax.GradientTransformation,
    *,
    steps: int,
    batch_size: int | None = None,
    seed: int = 0,
    record_every: int = 1,
    learning_rate: float | None = None,
    hyperparams: Mapping[str, Any] | None = None,
    init: tuple[Params, State] | None = None,
    callback: Callable[[int, jax.Array], None] | None = None,
    on_record: Callable[[dict[str, float]], None] | None = None,
    on_snapshot: Callable[[dict[str, float], Params, State], None] | None = None,
    check_every: int = 25,
    record_opt_state: bool = False,
    tracker: Any = None,
    on_sharpness: Callable[[int, float, float], None] | None = None,
    precision: str = "highest",
    on_shrink: OnShrink | None = None,
) -> Run:
    """Train ``workload`` for ``steps`` minibatch steps and record its trajectory.

    Args:
      optimizer: a suite name (``"adam"``; built with ``learning_rate`` — default: the
        registry's — and ``hyperparams``), an :class:`OptimizerSpec`, or any optax
        transformation (recorded as ``custom``).
      batch_size: minibatch size (default: the workload's evaluation batch size), at most the
        training set size. Each epoch is a fresh seeded permutation; its short last batch is
        dropped, so every step has the same shape (one compilation).
      seed: seeds the initial params (unless ``init`` is given) and the batch order.
      record_every: record params, state and full train/test metrics every this many steps
        (step 0 and the last step are always recorded).
      init: starting ``(params, state)``, so that several optimizers start from the same point.
      callback: ``callback(step, loss)`` after every step; ``loss`` is the minibatch loss as a
        device scalar — converting it with ``float`` waits for the device, so do it rarely.
      on_record: ``on_record(metrics)`` for every recorded step, with ``step``, ``epoch`` and the
        full-dataset ``train_loss``, ``test_loss``, ``train_acc``, ``test_acc`` (host floats);
        called when the next record is made (or at the end), so training never waits for it.
      on_snapshot: ``on_snapshot(metrics, params, state)`` for every recorded step, with host
        copies of that step's params and state (before ``on_record``): lets a caller stream the
        trajectory to disk as it grows.
      check_every: check the minibatch losses for NaN/inf every this many steps (each check
        waits for the device once). At a non-finite loss — or a non-finite recorded train loss
        or snapshot — training stops: the run returned has ``status="diverged"``, its
        ``divergence``, only the finite records before that step, and the last of them as its
        params and state.
      record_opt_state: record the optimizer state too at every recorded step
        (``trajectory.opt_state``, leaves with the step axis; ``on_snapshot`` then gets it as
        its ``opt_state`` keyword). Adaptive optimizers' preconditioned sharpness needs it.
      tracker: a measurement made while training, every ``tracker.every`` steps and at step 0
        (:class:`landscape.geometry.SharpnessTracker`: λmax by a few warm-started Lanczos
        steps): ``tracker(step, params, state)`` dispatches it without waiting,
        ``tracker.fetch(before=step)`` returns the ``(step, value, residual)`` rows made so far;
        they become ``trajectory.sharpness``. Training knows nothing else of it.
        ``on_sharpness(step, lambda_max, residual)`` hears of it about one record later.
      precision: of every float32 product and convolution of the steps, evaluations and
        measurements (:mod:`landscape.precision`: ``highest``, ``default``, ``bfloat16``);
        recorded as ``run.precision``. Bit-identical trajectories need ``highest`` on an
        accelerator.
      on_shrink: ``on_shrink(old, new, "micro-batch")`` when a step ran out of device memory
        and is run again in micro-batches of ``new`` samples (see the module's docstring;
        ``run.micro_batches`` says how many pieces each minibatch ended in).

    Raises:
      TrainingDiverged: the loss is not finite even at the initial parameters.
    """
    from landscape.precision import check_precision, computing_in

    with computing_in(check_precision(precision)):
        return dataclasses.replace(_train(
            workload, optimizer, steps=steps, batch_size=batch_size, seed=seed,
            record_every=record_every, learning_rate=learning_rate, hyperparams=hyperparams,
            init=init, callback=callback, on_record=on_record, on_snapshot=on_snapshot,
            check_every=check_every, record_opt_state=record_opt_state,
            tracker=tracker, on_sharpness=on_sharpness,
            on_shrink=on_shrink), precision=precision)


def _train(workload, optimizer, *, steps, batch_size, seed, record_every, learning_rate,
           hyperparams, init, callback, on_record, on_snapshot, check_every, record_opt_state,
           tracker, on_sharpness, on_shrink) -> Run:
    """:func:`train`'s loop, inside its precision."""
    if steps < 1:
        raise InputError(f"`steps` (={steps}) must be >= 1")
    if record_every < 1:
        raise InputError(f"`record_every` (={record_every}) must be >= 1")
    if check_every < 1:
        raise InputError(f"`check_every` (={check_every}) must be >= 1")
    if tracker is not None and not (isinstance(getattr(tracker, "every", None), int)
                                    and tracker.every >= 1):
        raise InputError("`tracker` must have `every` (a whole number >= 1), be callable with "
                         "(step, params, state) and have `fetch`", param="tracker")
    if isinstance(optimizer, str):
        optimizer = OptimizerSpec(optimizer, learning_rate, dict(hyperparams or {}))
    if isinstance(optimizer, OptimizerSpec):
        spec, transformation = optimizer.resolved(), optimizer.build()
    else:
        spec = {"name": "custom", "learning_rate": learning_rate,
                "hyperparams": {k: _json_value(v) for k, v in (hyperparams or {}).items()}}
        transformation = optimizer
    if batch_size is not None and batch_size < 1:
        raise InputError(f"`batch_size` (={batch_size}) must be >= 1")
    batch_size = min(batch_size or workload.batch_size, len(workload.train))
    started = time.perf_counter()

    key_init, key_data = jax.random.split(jax.random.key(seed))
    if init is None:
        with user_code(f"the init of workload {workload.name!r}"):
            init = workload.init(key_init)
    params, state = init
    # Private copies: the step donates its buffers, and the caller's arrays must survive.
    params = jax.tree.map(jnp.array, params)
    state = jax.tree.map(jnp.array, state)
    # Copied too: an optimizer may keep the params themselves in its state (Lookahead's slow
    # weights), and a buffer donated twice in one call is an error.
    opt_state = jax.tree.map(jnp.array, transformation.init(params))
    # Should a call fail, the loss alone is traced to tell the user's errors from ours (on
    # shapes: the params' buffers are donated to the step).
    blame = blame_user_code(check_loss, workload, *jax.eval_shape(lambda: (params, state)),
                            batch_size)
    step_fn = _Steps(workload, transformation, batch_size, blame, on_shrink)
    evaluate = blame(make_evaluator(workload))
    data = jax.device_put(Batch(workload.train.inputs, workload.train.targets))
    batches_per_epoch = len(workload.train) // batch_size

    recorder = Recorder(evaluate, on_record, on_snapshot)
    measured: list = []
    if tracker is not None:
        tracker(0, params, state)
    recorder.record(0, 0, params, state, opt_state if record_opt_state else None)
    step, epoch, losses, divergence, last_record = 0, 0, [], None, 0
    while step < steps and divergence is None:
        order = jax.random.permutation(jax.random.fold_in(key_data, epoch), len(workload.train))
        order = order[: batches_per_epoch * batch_size].reshape(batches_per_epoch, batch_size)
        for index in range(batches_per_epoch):
            params, opt_state, state, loss = step_fn(params, opt_state, state, data, order, index)
            step += 1
            losses.append(loss)
            if callback is not None:
                callback(step, loss)
            if step % check_every == 0 or step == steps:
                divergence, losses = first_nonfinite(losses, step), []
            finished_epoch = index == batches_per_epoch - 1
            if tracker is not None and divergence is None and step % tracker.every == 0:
                tracker(step, params, state)
            if divergence is None and (step % record_every == 0 or step == steps):
                recorder.record(step, epoch + finished_epoch, params, state,
                                opt_state if record_opt_state else None)
                divergence = recorder.divergence
                if tracker is not None:  # done by now: the last record has been fetched
                    measured += _announce(tracker.fetch(before=last_record + 1), on_sharpness)
                last_record = step
            if step == steps or divergence is not None:
                break
        epoch += 1
    if divergence is not None:
        recorder.divergence = divergence  # the records from this step on are dropped
    recorder.fetch()
    divergence = recorder.divergence  # perhaps an earlier step, found in the last record
    if divergence is not None:
        if not recorder.records:
            raise TrainingDiverged(f"the loss is {divergence.loss} at the initial parameters "
                                   f"of `{workload.name}`: nothing to train")
        params, state = recorder.snapshots[-1]
    columns = recorder.columns()
    if tracker is not None:
        measured += _announce(tracker.fetch(), on_sharpness)
        end = divergence.step if divergence is not None else steps + 1
        kept = [m for m in measured if m[0] < end]
        columns["sharpness"] = SharpnessTrack(
            step=np.asarray([m[0] for m in kept], np.int64),
            lambda_max=np.asarray([m[1] for m in kept], np.float64),
            residual=np.asarray([m[2] for m in kept], np.float64))
    trajectory = Trajectory(**columns)
    return Run(
        workload=workload.name,
        optimizer=spec,
        seed=seed,
        num_steps=steps,
        batch_size=batch_size,
        record_every=record_every,
        params=params,
        state=state,
        trajectory=trajectory,
        final_metrics={name: float(getattr(trajectory, name)[-1]) for name in METRIC_NAMES},
        versions=versions(),
        wall_time_s=time.perf_counter() - started,
        status="complete" if divergence is None else "diverged",
        divergence=divergence,
        micro_batches=step_fn.micro_batches,
    )
