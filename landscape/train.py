"""Training loop: minibatch steps of any optax transformation, recording the trajectory.

The step is jitted once; the host loop only feeds batches and reads back the loss every
``record_every`` steps, so recording does not slow training down.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import numpy as np
import optax

from landscape.errors import InputError
from landscape.workload import Batch, Params, State, Workload, dataset_mean


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """The outcome of :func:`train`.

    ``trajectory`` holds the params at each recorded step (step 0 = the initial params and the
    last step always included); ``losses`` the full-train-set mean loss at those steps.
    """

    params: Params
    state: State
    steps: np.ndarray  # (num_recorded,) int
    losses: np.ndarray  # (num_recorded,) float
    trajectory: list[Params]


def make_train_step(workload: Workload, optimizer: optax.GradientTransformation):
    """The jitted update ``(params, opt_state, state, batch) -> (params, opt_state, loss)``."""

    def step(params, opt_state, state, batch: Batch):
        (loss, _), grads = jax.value_and_grad(workload.loss, has_aux=True)(params, state, batch)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return jax.jit(step, donate_argnums=(0, 1))


def train(
    workload: Workload,
    optimizer: optax.GradientTransformation,
    *,
    steps: int,
    batch_size: int | None = None,
    seed: int = 0,
    record_every: int = 1,
    init: tuple[Params, State] | None = None,
    callback: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Train ``workload`` for ``steps`` minibatch steps of ``optimizer``.

    ``init`` gives the starting ``(params, state)`` (so several optimizers can start from the same
    point); by default they come from ``workload.init`` with ``seed``. ``callback(step, loss)`` is
    called after every step with the minibatch loss (for progress bars).
    """
    if steps < 1:
        raise InputError(f"`steps` (={steps}) must be >= 1")
    if record_every < 1:
        raise InputError(f"`record_every` (={record_every}) must be >= 1")
    batch_size = min(batch_size or workload.batch_size, len(workload.train))
    key_init, key_data = jax.random.split(jax.random.key(seed))
    params, state = init if init is not None else workload.init(key_init)
    params = jax.tree.map(jax.numpy.array, params)  # private copy: the step donates its buffers
    opt_state = optimizer.init(params)
    step_fn = make_train_step(workload, optimizer)
    full, rest = workload.train.split_batches(workload.batch_size)
    evaluate = jax.jit(lambda p, s: dataset_mean(workload.loss, p, s, full, rest)["loss"])

    recorded_steps, losses, trajectory = [], [], []

    def record(step: int) -> None:
        recorded_steps.append(step)
        losses.append(float(evaluate(params, state)))
        trajectory.append(jax.tree.map(np.asarray, params))

    record(0)
    step, epoch = 0, 0
    while step < steps:
        for batch in workload.train.shuffled_batches(batch_size, jax.random.fold_in(key_data, epoch)):
            params, opt_state, loss = step_fn(params, opt_state, state, batch)
            step += 1
            if callback is not None:
                callback(step, float(loss))
            if step % record_every == 0 or step == steps:
                record(step)
            if step == steps:
                break
        epoch += 1
    return TrainResult(
        params=params,
        state=state,
        steps=np.asarray(recorded_steps),
        losses=np.asarray(losses),
        trajectory=trajectory,
    )
