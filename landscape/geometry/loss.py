"""The one thing every geometry measure needs: a scalar loss of the parameters, and its Hessian.

Three forms are accepted wherever a ``loss`` is:

- :class:`DatasetLoss`: the exact mean of a per-batch loss over a data set (in memory, or a
  re-iterable of batches read one at a time). Its gradients and Hessian-vector products are
  summed batch by batch, so the memory is one batch's whatever the data set's size
  (:mod:`landscape.curvature.operator`). :func:`workload_loss` makes one from a workload.
- :class:`DataLoss`: ``fn(params, data)``, one expression with its data kept apart so that they
  travel through ``jit`` as an argument.
- any ``loss_fn(params) -> scalar``: one expression closing over its data (baked into every
  compiled program as constants: fine for a toy, slow for a data set).

:func:`problem_of` turns any of them into a :class:`~landscape.curvature.HessianProblem` at a
point: the loss, its gradient, HVPs and quadratic forms, summed the right way.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax

from landscape.errors import InputError
from landscape.curvature.operator import HessianProblem, dataset_problem, loss_problem
from landscape.curvature.products import CurvatureSpec, curvature_spec
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


class DatasetLoss(NamedTuple):
    """The exact mean of ``loss(params, state, batch)`` (the batch's mean loss, or ``(loss,
    metrics)``) over ``data``: a :class:`~landscape.Dataset` cut into batches of
    ``batch_size``, a :class:`~landscape.batches.Batches` stream, or the batches of an earlier
    problem (``problem.data``: already placed). Each batch's weight is its size."""

    loss: Callable[[Params, State, Any], Any]
    state: State
    data: Any
    batch_size: int = 1024
    devices: tuple | None = None

    def __call__(self, params: Params) -> jax.Array:
        return problem_of(self, params).value()


LossFn = Callable[[Params], jax.Array] | DataLoss | DatasetLoss


def problem_of(loss: LossFn, params: Params, *, scale: Params | None = None,
               operator: str | CurvatureSpec = "hessian") -> HessianProblem:
    """The Hessian (and the loss and gradient) of ``loss`` at ``params``; with ``scale`` (a
    pytree d like the params), D H D with D = diag(d). ``operator``: the GGN or the empirical
    Fisher instead (:mod:`landscape.curvature.products`), for a :class:`DatasetLoss` only."""
    curvature = curvature_spec(operator)
    if isinstance(loss, DatasetLoss):
        return dataset_problem(loss.loss, params, loss.state, loss.data,
                               batch_size=loss.batch_size, devices=loss.devices, scale=scale,
                               operator=curvature)
    if curvature.kind != "hessian":
        raise InputError(f"`operator` (={curvature.kind!r}) needs a per-batch loss over a data "
                         "set (a DatasetLoss: `workload_loss`); this loss is one expression",
                         param="operator")
    if isinstance(loss, DataLoss):
        return loss_problem(loss.fn, params, loss.data, scale=scale)
    return loss_problem(_ignoring_data(loss), params, None, scale=scale)


def placed(loss: LossFn, problem: HessianProblem) -> LossFn:
    """``loss`` with its data as ``problem`` placed them (a :class:`DatasetLoss` only): later
    problems of it then skip the copy to the devices."""
    return loss._replace(data=problem.data) if isinstance(loss, DatasetLoss) else loss


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
) -> DatasetLoss:
    """The exact mean ``split`` loss of ``workload`` in evaluation mode, at model ``state``.

    ``batch_size`` (default ``workload.batch_size``) bounds memory only. Each batch's samples are
    split across ``devices`` (default: the local devices), as
    :func:`landscape.curvature.hessian_problem` does.
    """
    return DatasetLoss(workload.loss, state, workload.dataset(split),
                       batch_size or workload.batch_size,
                       None if devices is None else tuple(devices))
