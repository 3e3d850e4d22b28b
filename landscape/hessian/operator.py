"""The Hessian of a workload's full-dataset mean loss as a matrix-free operator on flat vectors.

With θ = unravel(w) the parameters as a flat vector w ∈ ℝⁿ (``jax.flatten_util.ravel_pytree``),

.. math::

    L(w) = \\frac{1}{N} \\sum_{i=1}^{N} \\ell(\\theta; x_i, y_i), \\qquad
    H v = \\frac{d}{dt} \\nabla L(w + t v) \\Big|_{t=0}
    \\qquad \\text{(forward-over-reverse: ``jax.jvp`` of ``jax.grad``)},

    v^\\top H v = \\frac{d^2}{dt^2} L(w + t v) \\Big|_{t=0}
    \\qquad \\text{(forward-over-forward: no reverse pass, used for traces)}.

L is the *exact* dataset mean (:func:`landscape.workload.dataset_mean`: batches scanned, a short
last batch weighted by its size). Li et al.'s ``loss-landscape`` sums per-batch HVPs, which scales
every eigenvalue by the number of batches; here the batch size changes nothing but memory.

The data travel as an argument (``problem.data``) of every jitted function rather than being
closed over, so they are never baked into a compiled program as constants. Each batch's samples
are split across the local devices (one per core on CPU, as the CLI sets up): jit then runs
every HVP data-parallel, with an all-reduce of n numbers, and the Lanczos loop replicated.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jax.sharding import Mesh, NamedSharding, PartitionSpec, SingleDeviceSharding

from landscape.errors import InputError
from landscape.workload import Params, State, Workload, dataset_mean

FlatLoss = Callable[[jax.Array, Any], jax.Array]
"""``loss(w (n,), data) -> scalar``: the mean loss at flat parameters ``w``."""

Matvec = Callable[[jax.Array, Any], jax.Array]
"""``matvec(v (n,), operands) -> (n,)``: a symmetric linear operator; ``operands`` (arrays) are
passed through jit as arguments."""


def hvp_of(loss: FlatLoss) -> Callable[[jax.Array, jax.Array, Any], jax.Array]:
    """``hvp(w, v, data) -> H(w) v`` for ``loss(w, data)``, by ``jax.jvp`` of ``jax.grad``."""

    def hvp(w: jax.Array, v: jax.Array, data: Any) -> jax.Array:
        return jax.jvp(lambda u: jax.grad(loss)(u, data), (w,), (v,))[1]

    return hvp


def quadratic_form_of(loss: FlatLoss) -> Callable[[jax.Array, jax.Array, Any], jax.Array]:
    """``vhv(w, v, data) -> vᵀ H(w) v`` as a second directional derivative (forward-over-forward:
    cheaper than an HVP followed by a dot product, and it stores no activations for a backward
    pass)."""

    def vhv(w: jax.Array, v: jax.Array, data: Any) -> jax.Array:
        first = lambda u: jax.jvp(lambda z: loss(z, data), (u,), (v,))[1]  # noqa: E731
        return jax.jvp(first, (w,), (v,))[1]

    return vhv


@dataclasses.dataclass(frozen=True, eq=False)
class HessianProblem:
    """The loss, the point and the data that define one Hessian.

    Attributes:
      loss: ``loss(w, data) -> scalar`` full-dataset mean loss at flat parameters ``w``.
      params: (n,) the flat parameters at which the Hessian is taken.
      unravel: flat vector (n,) → params pytree.
      data: ``(state, full batches, short batch)``, the second argument of ``loss``.
      matvec: ``matvec(v, (w, data)) -> H(w) v``.
      vhv: ``vhv(w, v, data) -> vᵀ H(w) v`` (forward-over-forward).

    ``matvec`` and ``vhv`` are made once per problem: jitted algorithms take them as static
    arguments, so repeated calls on one problem compile once.
    """

    loss: FlatLoss
    params: jax.Array
    unravel: Callable[[jax.Array], Params]
    data: Any
    matvec: Matvec
    vhv: Callable[[jax.Array, jax.Array, Any], jax.Array]

    @property
    def num_params(self) -> int:
        return int(self.params.size)

    @property
    def operands(self) -> tuple[jax.Array, Any]:
        """The operands of :attr:`matvec`: ``(w, data)``."""
        return self.params, self.data

    def hvp(self, v: jax.Array) -> jax.Array:
        """``H v`` at :attr:`params` (not jitted: for tests and one-off use)."""
        return self.matvec(v, self.operands)


def hessian_problem(
    workload: Workload,
    params: Params,
    state: State,
    *,
    split: str = "train",
    batch_size: int | None = None,
    devices: Sequence[jax.Device] | None = None,
) -> HessianProblem:
    """The Hessian of ``workload``'s mean ``split`` loss at ``params``.

    ``batch_size`` (default ``workload.batch_size``) bounds memory only: the loss is the exact
    mean over every sample whatever it is. Parameters keep their dtype (use float64 params and
    data under ``jax.enable_x64`` for reference-quality results). ``devices`` (default: the
    local devices) share each batch's samples; a batch that does not split evenly is replicated.
    """
    full, rest = workload.dataset(split).split_batches(batch_size or workload.batch_size)
    _, data = place(jnp.zeros(()), (state, full, rest), devices)
    return loss_problem(dataset_loss(workload.loss), params, data)


@functools.lru_cache(maxsize=16)
def dataset_loss(loss: Callable, metric: str = "loss") -> Callable[[Params, Any], jax.Array]:
    """``fn(params, (state, full, rest))``: the exact mean ``metric`` of a workload's ``loss``
    over the batches (differentiable: summed without a loop where there are few). One function
    per workload loss, so problems at every step of a run (a different state each) share their
    compilations."""

    def fn(params: Params, data: Any) -> jax.Array:
        state, full, rest = data
        return dataset_mean(loss, params, state, full, rest, unroll=True)[metric]

    return fn


def loss_problem(
    loss: Callable[[Params, Any], jax.Array],
    params: Params,
    data: Any = None,
    *,
    scale: Params | None = None,
) -> HessianProblem:
    """The Hessian of ``loss(params, data)`` (a scalar) at ``params``, for any loss.

    ``data`` travels through jit as an argument (a loss that closes over its data instead bakes
    them into every compiled program as constants). With ``scale`` (a pytree ``d`` shaped like
    the params) the operator is D H D with D = diag(d): for d = P^{-1/2} it is the
    preconditioned Hessian P^{-1/2} H P^{-1/2}, which has the eigenvalues of P⁻¹H.

    Problems made from the same ``loss`` object and parameter layout share their ``matvec`` and
    ``vhv``, so the jitted algorithms compile once for all of them (e.g. every recorded step of
    a run).
    """
    flat, unravel = ravel_pytree(params)
    layout = (jax.tree.structure(params),
              tuple((np.shape(leaf), jnp.result_type(leaf)) for leaf in jax.tree.leaves(params)))
    flat_loss, matvec, vhv = _operators(loss, layout, scale is not None)
    flat = jax.device_put(jnp.asarray(flat), _replicated(data))
    if scale is not None:
        d, _ = ravel_pytree(scale)
        if d.shape != flat.shape:
            raise InputError(f"`scale` has {d.size} entries, the parameters {flat.size}")
        data = (data, jax.device_put(jnp.asarray(d, flat.dtype), flat.sharding))
    return HessianProblem(flat_loss, flat, unravel, data, matvec, vhv)


def _replicated(data: Any) -> Any:
    """Replicated over the mesh the data were placed on (:func:`place`), or on their one
    device, else None (leave the parameters where they are): every call then sees the same
    placements and compiles once."""
    for leaf in jax.tree.leaves(data):
        sharding = getattr(leaf, "sharding", None)
        if isinstance(sharding, NamedSharding):
            return NamedSharding(sharding.mesh, PartitionSpec())
        if isinstance(sharding, SingleDeviceSharding):
            return sharding
    return None


@functools.lru_cache(maxsize=64)
def _operators(loss: Callable, layout: tuple, scaled: bool):
    """``(flat loss, matvec, vhv)`` for :func:`loss_problem`, made once per loss and layout."""
    treedef, leaves = layout
    unravel = ravel_pytree(jax.tree.unflatten(
        treedef, [jnp.zeros(shape, dtype) for shape, dtype in leaves]))[1]

    def flat_loss(w: jax.Array, data: Any) -> jax.Array:
        return loss(unravel(w), data[0] if scaled else data)

    hvp, form = hvp_of(flat_loss), quadratic_form_of(flat_loss)
    if not scaled:
        def matvec(v, operands):
            w, data = operands
            return hvp(w, v, data)

        return flat_loss, matvec, form

    def scaled_matvec(v, operands):  # D H D v
        w, data = operands
        return data[1] * hvp(w, data[1] * v, data)

    def scaled_form(w, v, data):  # (Dv)ᵀ H (Dv)
        return form(w, data[1] * v, data)

    return flat_loss, scaled_matvec, scaled_form


def place(flat: jax.Array, data: Any, devices: Sequence[jax.Device] | None = None
          ) -> tuple[jax.Array, Any]:
    """``(flat params, (state, full batches, short batch))`` on ``devices`` (default: the local
    ones) as :func:`hessian_problem` places them: samples split across the devices."""
    return _place(flat, data, list(devices) if devices is not None else jax.local_devices())


def _place(flat: jax.Array, data: Any, devices: list[jax.Device]) -> tuple[jax.Array, Any]:
    """Parameters and state replicated; the sample axis of whole batches (axis 1) and of the
    short batch (axis 0) split across ``devices`` where it divides evenly."""
    if len(devices) == 1:
        return jax.device_put((flat, data), devices[0])
    mesh = Mesh(np.array(devices), ("samples",))
    replicated = NamedSharding(mesh, PartitionSpec())

    def put(tree: Any, axis: int) -> Any:
        if tree is None:
            return None
        size = jax.tree.leaves(tree)[0].shape[axis]
        spec = PartitionSpec(*[None] * axis, "samples") if size % len(devices) == 0 else None
        return jax.device_put(tree, replicated if spec is None else NamedSharding(mesh, spec))

    state, full, rest = data
    return jax.device_put(flat, replicated), (jax.device_put(state, replicated), put(full, 1),
                                              put(rest, 0))
