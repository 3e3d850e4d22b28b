"""The one thing every geometry measure needs: a scalar loss of the parameters.

Any ``loss_fn(params) -> scalar`` will do (the full-dataset mean loss, say). A loss that closes
over its data bakes them into every compiled program as constants, which is fine for a toy
and slow for a data set; :class:`DataLoss` carries them beside the function instead, so that
they travel through ``jit`` as an argument. Both are accepted wherever a ``loss_fn`` is.

:func:`workload_loss` is the glue from a :class:`~landscape.workload.Workload`: its exact
full-dataset mean (:func:`landscape.workload.dataset_mean`) of one split, in evaluation mode.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax

from landscape.workload import Params, State, Workload


class DataLoss(NamedTuple):
    """``loss(params) = fn(params, data)``, with ``data`` kept apart from ``fn``.

    ``fn`` is a static argument of compiled functions (reuse the same object and they compile
    once); ``data`` is a pytree of arrays passed as an argument.
    """

    fn: Callable[[Params, Any], jax.Array]
    data: Any

    def __call__(self, params: Params) -> jax.Array:
        return self.fn(params, self.data)


LossFn = Callable[[Params], jax.Array] | DataLoss


def split_loss(loss: LossFn) -> tuple[Callable[[Params, Any], jax.Array], Any]:
    """``(fn, data)`` with ``loss(params) == fn(params, data)``; a plain closure gets data
    None and the same ``fn`` wrapper every time (so compilations are reused)."""
    if isinstance(loss, DataLoss):
        return loss.fn, loss.data
    return _ignoring_data(loss), None


@functools.lru_cache(maxsize=64)
def _ignoring_data(loss: Callable[[Params], jax.Array]) -> Callable[[Params, Any], jax.Array]:
    return lambda params, data: loss(params)


def workload_loss(
    workload: Workload,
    state: State,
    *,
    split: str = "train",
    batch_size: int | None = None,
    devices: Sequence[jax.Device] | None = None,
) -> DataLoss:
    """The exact mean ``split`` loss of ``workload`` in evaluation mode, at model ``state``.

    ``batch_size`` (default ``workload.batch_size``) bounds memory only. Each batch's samples are
    split across ``devices`` (default: the local devices), as :func:`landscape.hessian.hessian_problem`
    does.
    """
    from landscape.hessian.operator import dataset_loss, place

    full, rest = workload.dataset(split).split_batches(batch_size or workload.batch_size)
    _, data = place(jax.numpy.zeros(()), (state, full, rest), devices)
    return DataLoss(dataset_loss(workload.loss), data)
