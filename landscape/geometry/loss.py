"""The one thing every geometry measure needs: a scalar loss of the parameters, and its Hessian.

Three forms are accepted wherever a ``loss`` is (:data:`Loss`):

- an :class:`~landscape.objective.Objective` (the type the surface engine and
  :func:`landscape.hessian` take): the exact mean of its per-batch loss over one split of its
  data (the first; ``split=`` where a function takes one), in memory or a re-iterable of
  batches read one at a time. Its gradients and Hessian-vector products are summed batch by
  batch, so the memory is one batch's whatever the data set's size
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

from landscape.curvature.operator import HessianProblem, dataset_problem, loss_problem
from landscape.curvature.products import CurvatureSpec, curvature_spec
from landscape.errors import InputError
from landscape.objective import Objective, Params, State
from landscape.workload import Workload


class DataLoss(NamedTuple):
    """``loss(params) = fn(params, data)``, with ``data`` kept apart from ``fn``.

    ``fn`` is a static argument of compiled functions (reuse the same object and they compile
    once); ``data`` is a pytree of arrays passed as an argument.
    """

    fn: Callable[[Params, Any], jax.Array]
    data: Any

    def __call__(self, params: Params) -> jax.Array:
        return self.fn(params, self.data)


Loss = Objective | DataLoss | Callable[[Params], jax.Array]
"""What a geometry measure takes as its ``loss``: see the module docstring."""


def problem_of(loss: Loss, params: Params, *, split: str | None = None,
               scale: Params | None = None, operator: str | CurvatureSpec = "hessian",
               devices: Sequence[jax.Device] | None = None) -> HessianProblem:
    """The Hessian (and the loss and gradient) of ``loss`` at ``params``; with ``scale`` (a
    pytree d like the params), D H D with D = diag(d).

    For an :class:`~landscape.objective.Objective` only: ``split`` (default: its first),
    ``operator`` (the GGN or the empirical Fisher instead, :mod:`landscape.curvature.products`)
    and ``devices`` (those that share each batch's samples; default: the local devices). A
    one-expression loss sits where its data are."""
    curvature = curvature_spec(operator)
    if isinstance(loss, Objective):
        data = loss.dataset(loss.splits[0] if split is None else split)
        return dataset_problem(loss.loss, params, loss.state, data, batch_size=loss.batch_size,
                               devices=devices, scale=scale, operator=curvature)
    for name, value, default in (("operator", curvature.kind, "hessian"),
                                 ("split", split, None), ("devices", devices, None)):
        if value != default:
            raise InputError(f"`{name}` (={value!r}) needs a per-batch loss over a data set (an "
                             "Objective: `workload_loss`); this loss is one expression",
                             param=name)
    if isinstance(loss, DataLoss):
        return loss_problem(loss.fn, params, loss.data, scale=scale)
    return loss_problem(_ignoring_data(loss), params, None, scale=scale)


def placed(loss: Loss, problem: HessianProblem, *, split: str | None = None) -> Loss:
    """``loss`` with its ``split`` data (default: the first) as ``problem`` placed them on the
    devices, for an :class:`~landscape.objective.Objective` (the other forms as they are):
    later problems of it skip the copy. For :func:`problem_of` only: the surface engine takes
    data sets and streams, not an earlier problem's batches."""
    if not isinstance(loss, Objective):
        return loss
    # Replacing an existing key keeps the order of the splits, so the first stays first.
    return loss.replace(data={**loss.data, loss.splits[0] if split is None else split:
                              problem.data})


@functools.lru_cache(maxsize=64)
def _ignoring_data(loss: Callable[[Params], jax.Array]) -> Callable[[Params, Any], jax.Array]:
    return lambda params, data: loss(params)


def workload_loss(
    workload: Workload,
    state: State,
    *,
    split: str = "train",
    batch_size: int | None = None,
) -> Objective:
    """The exact mean ``split`` loss of ``workload`` in evaluation mode, at model ``state``: the
    workload's :class:`~landscape.objective.Objective` on that one split.

    ``batch_size`` (default ``workload.batch_size``) bounds memory only. Each batch's samples are
    split across the local devices (``devices=`` of :func:`problem_of` for others), as
    :func:`landscape.curvature.hessian_problem` does.
    """
    objective = workload.objective(state, (split,))
    return objective if batch_size is None else objective.replace(batch_size=batch_size)
