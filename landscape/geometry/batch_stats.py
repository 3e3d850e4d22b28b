"""BatchNorm statistics re-estimated at a new point of parameter space.

Running statistics belong to the weights they were averaged under; at a point on a path between
two models (or on a perturbed model) they are stale, and the evaluation-mode loss there is
wrong — often by far. Garipov et al. 2018 (their repository's ``utils.update_bn``) reset the
running statistics and re-estimate them with one pass over the training data in training mode,
with per-batch momentum b/(n + b): the result is the sample-weighted mean of the per-batch
statistics. This does the same through a workload's training-mode loss,
``train_loss(params, state, batch) -> (loss, (metrics, new_state))``, whatever its momentum m:
a running-average update is ``new = m·old + (1 − m)·stat``, so one call from ``old = 0`` gives
(1 − m)·stat, and m is measured once (:func:`state_momentum`) from a second call at ``old = 1``
(a third at ``old = 2`` checks that the update is of that form).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from landscape.errors import InputError
from landscape.workload import Params, State, mean_over_batches

TrainLoss = Callable[[Params, State, Any], tuple[jax.Array, tuple[dict, State]]]


def _floating(leaf: Any) -> bool:
    return jnp.issubdtype(jnp.result_type(leaf), jnp.floating)


@functools.partial(jax.jit, static_argnames=("train_loss",))
def _new_state(params, state, batch, *, train_loss):
    return train_loss(params, state, batch)[1][1]


def state_momentum(train_loss: TrainLoss, params: Params, state: State, batch: Any) -> State:
    """The momentum m of each floating state entry's running-average update (a pytree like
    ``state``; 1 where training does not change the entry, 0 for non-float leaves).

    Raises:
      InputError: the update is not ``new = m·old + (1 − m)·stat`` (the state is not running
        averages, so it cannot be re-estimated this way).
    """
    fill = lambda value: jax.tree.map(
        lambda leaf: jnp.full_like(leaf, value) if _floating(leaf) else leaf, state)
    new0, new1, new2 = (_new_state(params, fill(v), batch, train_loss=train_loss)
                        for v in (0.0, 1.0, 2.0))
    momentum = jax.tree.map(lambda a, b: b - a if _floating(a) else jnp.zeros_like(a), new0, new1)
    for a, m, c in zip(jax.tree.leaves(new0), jax.tree.leaves(momentum), jax.tree.leaves(new2)):
        if _floating(a) and not np.allclose(np.asarray(a + 2 * m), np.asarray(c), rtol=1e-4,
                                             atol=1e-5):
            raise InputError("the model state is not a running average of batch statistics "
                             "(its training-mode update is not new = m*old + (1-m)*stat): it "
                             "cannot be re-estimated")
    return momentum


@functools.partial(jax.jit, static_argnames=("train_loss",))
def _recompute(params, state, momentum, full, rest, *, train_loss):
    floats = [i for i, leaf in enumerate(jax.tree.leaves(state)) if _floating(leaf)]
    zeros = jax.tree.map(lambda leaf: jnp.zeros_like(leaf) if _floating(leaf) else leaf, state)
    treedef = jax.tree.structure(state)

    def batch_stats(batch):  # (1 − m)·stat from old = 0, as a dict for mean_over_batches
        leaves = jax.tree.leaves(train_loss(params, zeros, batch)[1][1])
        return {str(i): leaves[i] for i in floats}

    means = mean_over_batches(batch_stats, full, rest)
    leaves, m_leaves = jax.tree.leaves(state), jax.tree.leaves(momentum)
    out = []
    for i, (old, m) in enumerate(zip(leaves, m_leaves)):
        if i not in floats:
            out.append(old)
            continue
        keep = jnp.abs(1 - m) < 1e-6  # not updated by training: nothing to re-estimate
        out.append(jnp.where(keep, old, means[str(i)] / jnp.where(keep, 1.0, 1 - m)))
    return jax.tree.unflatten(treedef, out)


def recompute_batch_stats(
    train_loss: TrainLoss, params: Params, state: State, full: Any, rest: Any,
    momentum: State | None = None,
) -> State:
    """The running statistics at ``params`` re-estimated from the training batches ``full``
    (stacked, scanned) and ``rest`` (the short one or None): each entry is the
    sample-weighted mean over batches of its training-mode batch statistic, as Garipov et al.'s
    ``update_bn``. ``momentum``: :func:`state_momentum`'s result, if already measured (it is a
    property of the model, not of the point)."""
    if not jax.tree.leaves(state):
        return state
    if momentum is None:
        first = rest if full is None else jax.tree.map(lambda a: a[0], full)
        momentum = state_momentum(train_loss, params, state, first)
    return _recompute(params, state, momentum, full, rest, train_loss=train_loss)
